"""Run in a virtual environment holding only ``pip install -e .`` (no extras): the environments
work on their own, without torch or Stable-Baselines3, and pass Gymnasium's and PettingZoo's checks."""

from __future__ import annotations

import importlib.util
import sys

import gymnasium as gym
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import gym_advrl
from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0

for heavy in ("torch", "stable_baselines3"):
    assert heavy not in sys.modules, f"import gym_advrl imported {heavy}"
    assert importlib.util.find_spec(heavy) is None, (
        f"{heavy} is installed: this check needs a bare environment"
    )

env_ids = sorted(k for k in gym.registry if k.startswith("AdvRL/"))
for env_id in env_ids:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(100):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()
# The native vector envs (gym.make_vec) need numpy only: step them too, across autoresets.
for env_id in sorted(gym_advrl.VECTOR_ENTRY_POINTS):
    vector_env = gym.make_vec(env_id, 8, vectorization_mode="vector_entry_point")
    vector_env.reset(seed=0)
    vector_env.action_space.seed(0)
    for _ in range(100):
        vector_env.step(vector_env.action_space.sample())
    vector_env.close()
    assert "numba" not in sys.modules, f"gym.make_vec({env_id!r}) imported numba"
for module in (cooperative_v0, competitive_v0, mixed_v0):
    parallel_api_test(module.parallel_env(), num_cycles=50)
print(
    f"gym_advrl {getattr(gym_advrl, '__version__', '')} without extras: {len(env_ids)} environments, "
    f"{len(gym_advrl.VECTOR_ENTRY_POINTS)} native vector environments and 3 multi-agent environments step "
    "and pass the checkers"
)
