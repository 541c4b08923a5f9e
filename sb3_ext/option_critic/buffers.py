"""Rollout storage of :class:`~sb3_ext.option_critic.OptionCritic`: n-step segments of every
environment with the option in force at each step."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces


class OptionRolloutSamples(NamedTuple):
    """A rollout flattened time-major (row ``t * n_envs + i``); observations have one more step."""

    observations: th.Tensor  #: s_0 .. s_n of every environment, ``(n_steps + 1) * n_envs`` rows
    actions: th.Tensor
    options: th.Tensor
    returns: th.Tensor  #: n-step returns G_t
    dones: th.Tensor  #: 1.0 where the episode ended after step t (s_{t+1} is a reset observation)


class OptionRolloutBuffer:
    """
    Observations, actions, options, rewards and episode ends of ``n_steps`` steps in each of
    ``n_envs`` environments, and the n-step returns computed from them.

    :param n_steps: steps per environment
    :param observation_space: observation space (not a ``Dict``)
    :param n_envs: number of environments
    :param n_options: number of options (for validation)
    """

    def __init__(self, n_steps: int, observation_space: spaces.Space, n_envs: int, n_options: int) -> None:
        self.n_steps, self.n_envs, self.n_options = n_steps, n_envs, n_options
        self.obs_shape = observation_space.shape
        self.obs_dtype = observation_space.dtype
        self.observations = np.zeros((n_steps + 1, n_envs, *self.obs_shape), dtype=self.obs_dtype)
        self.actions = np.zeros((n_steps, n_envs), dtype=np.int64)
        self.options = np.zeros((n_steps, n_envs), dtype=np.int64)
        self.rewards = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.dones = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.returns = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.pos = 0
        self.full = False

    def reset(self) -> None:
        self.pos, self.full = 0, False

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        options: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
    ) -> None:
        """Store one step of every environment (``obs`` is the observation the action was taken in)."""
        if self.pos >= self.n_steps:
            raise ValueError(f"the rollout buffer holds {self.n_steps} steps; call reset() first")
        self.observations[self.pos] = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))
        self.actions[self.pos] = np.asarray(actions).reshape(self.n_envs)
        self.options[self.pos] = options
        self.rewards[self.pos] = rewards
        self.dones[self.pos] = dones
        self.pos += 1

    def finish(self, last_obs: np.ndarray, last_values: np.ndarray, gamma: float) -> None:
        """
        Store the final observation and compute the n-step returns
        ``G_t = r_t + gamma (1 - done_t) G_{t+1}``, with ``G_n = last_values`` (U(s_n, w_{n-1})).
        """
        if self.pos != self.n_steps:
            raise ValueError(f"finish() needs {self.n_steps} stored steps, got {self.pos}")
        self.observations[self.n_steps] = np.asarray(last_obs).reshape((self.n_envs, *self.obs_shape))
        ret = np.asarray(last_values, dtype=np.float32).reshape(self.n_envs)
        for t in reversed(range(self.n_steps)):
            ret = self.rewards[t] + gamma * (1.0 - self.dones[t]) * ret
            self.returns[t] = ret
        self.full = True

    def get(self, device: th.device | str = "cpu") -> OptionRolloutSamples:
        """The whole rollout as tensors on ``device``."""
        if not self.full:
            raise ValueError("the rollout is not complete: call finish() after n_steps add() calls")
        flat = self.n_steps * self.n_envs
        return OptionRolloutSamples(
            observations=th.as_tensor(
                self.observations.reshape(flat + self.n_envs, *self.obs_shape), device=device
            ),
            actions=th.as_tensor(self.actions.reshape(flat), device=device),
            options=th.as_tensor(self.options.reshape(flat), device=device),
            returns=th.as_tensor(self.returns.reshape(flat), device=device),
            dones=th.as_tensor(self.dones.reshape(flat), device=device),
        )
