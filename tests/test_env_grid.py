"""Exact behaviour of the grid-world and sequence envs: moves, rewards, layouts, rendering, arguments."""

from __future__ import annotations
