"""Evaluation helpers shared by examples, benchmarks and the command line."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def random_policy_returns(
    env_id: str, n_episodes: int, seed: int = 0, env_kwargs: dict[str, Any] | None = None
) -> np.ndarray:
    """Undiscounted returns of a uniformly random policy: the baseline printed beside a trained agent.

    Episode ``i`` is reset with ``seed + i`` and actions come from the action space seeded with
    ``seed``, so the baseline is reproducible.
    """
    env = gym.make(env_id, **(env_kwargs or {}))
    env.action_space.seed(seed)
    returns = np.zeros(n_episodes)
    for episode in range(n_episodes):
        env.reset(seed=seed + episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            returns[episode] += reward
            done = terminated or truncated
    env.close()
    return returns
