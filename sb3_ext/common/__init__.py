"""Machinery shared by the sb3_ext algorithms: replay buffers, dynamics models, planners."""
