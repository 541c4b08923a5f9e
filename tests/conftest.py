"""Shared fixtures: every registered ``AdvRL/`` id, so a new env is covered by registering it."""

from __future__ import annotations

import gymnasium as gym

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)

ADVRL_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("AdvRL/"))
