"""Exact behaviour of the causal SCM env: graphs, sampling, interventions, rewards, arguments."""

from __future__ import annotations
