"""Exact behaviour of the quantum gate-synthesis env and its state-vector simulator."""

from __future__ import annotations
