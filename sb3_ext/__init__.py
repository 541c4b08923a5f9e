"""Stable-Baselines3 algorithms for gym-advrl."""
