"""Shared fixtures: every registered ``AdvRL/`` id, so a new env is covered by registering it."""

from __future__ import annotations

import os

# render_mode="human" opens pygame windows; the dummy video driver runs them headless.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402

# Each pytest-xdist worker gets one core: small batched products are slower with two threads.
torch.set_num_threads(1)

import gym_advrl  # noqa: E402, F401  (registers the AdvRL/ ids)

ADVRL_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("AdvRL/"))
