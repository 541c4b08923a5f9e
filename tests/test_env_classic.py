"""Exact behaviour of the continuous-control envs: physics, rewards, episode ends, rendering, arguments."""

from __future__ import annotations
