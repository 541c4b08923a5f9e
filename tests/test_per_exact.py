"""Prioritized replay algorithms: exact behaviour of the updates and the defaults, value by value."""

from __future__ import annotations
