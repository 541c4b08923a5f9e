"""WorldModelMPC: exact behaviour of the planner, the model fitting and the defaults, value by value."""

from __future__ import annotations
