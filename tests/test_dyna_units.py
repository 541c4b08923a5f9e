"""Dyna, unit by unit: exact values of the tabular model, the model buffer, the planning
schedule, the mixed batches and the argument checks of ``sb3_ext.dyna``."""

from __future__ import annotations
