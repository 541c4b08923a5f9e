"""The replay buffer of :class:`~sb3_ext.dyna.Dyna`'s imagined transitions."""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class ModelReplayBuffer(ReplayBuffer):
    """A replay buffer of imagined transitions, written a whole batch at a time by :meth:`extend`.

    Each transition also stores the discount of its bootstrap term: ``gamma`` for a one-step
    transition, ``gamma ** k`` for a ``k``-step imagined rollout whose ``rewards`` are the
    discounted sum of its ``k`` rewards (SB3's ``ReplayBufferSamples.discounts``).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gamma: float = 0.99,
    ) -> None:
        super().__init__(
            buffer_size, observation_space, action_space, device, n_envs=1, handle_timeout_termination=False
        )
        self.gamma = float(gamma)
        self.discounts = np.full((self.buffer_size, 1), self.gamma, dtype=np.float32)

    def extend(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        next_obs: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        discounts: np.ndarray | None = None,
    ) -> None:
        """Store ``len(obs)`` transitions (batch-first arrays), overwriting the oldest when full.

        ``discounts`` (default: ``gamma`` for every transition) multiply the bootstrap term."""
        n = len(obs)
        if discounts is None:
            discounts = np.full(n, self.gamma, dtype=np.float32)
        if n > self.buffer_size:  # only the newest ``buffer_size`` transitions can be kept
            obs, actions, next_obs, rewards, dones, discounts = (
                x[-self.buffer_size :] for x in (obs, actions, next_obs, rewards, dones, discounts)
            )
            n = self.buffer_size
        rows = (self.pos + np.arange(n)) % self.buffer_size
        self.observations[rows, 0] = obs.reshape(n, *self.obs_shape)
        self.next_observations[rows, 0] = next_obs.reshape(n, *self.obs_shape)
        self.actions[rows, 0] = actions.reshape(n, self.action_dim)
        self.rewards[rows, 0] = rewards.reshape(n)
        self.dones[rows, 0] = dones.reshape(n)
        self.discounts[rows, 0] = discounts.reshape(n)
        self.full = self.full or self.pos + n >= self.buffer_size
        self.pos = int((self.pos + n) % self.buffer_size)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        samples = super()._get_samples(batch_inds, env)
        return samples._replace(discounts=self.to_torch(self.discounts[batch_inds]))
