"""Rollout storage of :class:`~sb3_ext.feudal.FeudalAgent`: ``n_steps`` steps of every environment,
preceded by the last ``c`` steps of the previous rollout (the prefix).

The Manager's transition-policy gradient at step t needs the latent state c steps later, and the
Worker's intrinsic reward and goal embedding at step t need the c goals before it. Keeping the
previous rollout's last c steps lets the update see both across the rollout boundary: every step
gets its Manager gradient exactly once (in the rollout where s_{t+c} is observed).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_ext.feudal.policies import FeudalState


class FeudalRolloutSamples(NamedTuple):
    """The window ``prefix + rollout`` of ``T = prefix_length + n_steps`` steps, time-major ``(T, E, ...)``."""

    observations: th.Tensor  #: x_0 .. x_T (``T + 1`` rows; the last is the observation after the rollout)
    episode_starts: th.Tensor  #: 1.0 where observation t starts an episode (``T + 1`` rows)
    final_observations: th.Tensor  #: the observation step t led to (the terminal one where the episode ended)
    actions: th.Tensor
    rewards: th.Tensor  #: extrinsic rewards r_t
    dones: th.Tensor  #: 1.0 where the episode ended after step t (terminated or truncated)
    manager_bootstrap: th.Tensor  #: V^M of the final observation where a time limit cut the episode, else 0
    worker_bootstrap: th.Tensor  #: V^D of the final observation where a time limit cut the episode, else 0
    goals: th.Tensor  #: the goals the Worker acted with (``(T, E, latent_dim)``)
    initial_state: FeudalState  #: the recurrent state before step 0 of the window
    prefix_length: int  #: 0 (first rollout after a reset) or c


class FeudalRolloutBuffer:
    """
    Observations, actions, rewards, episode ends, goals and recurrent states of ``n_steps`` steps
    in each of ``n_envs`` environments, after the last ``c`` steps of the previous rollout.

    :param n_steps: steps per environment and rollout (at least ``c``)
    :param observation_space: observation space (not a ``Dict``)
    :param n_envs: number of environments
    :param c: the Manager's horizon (length of the prefix)
    :param latent_dim: dimension of the goals
    :param manager_hidden_size: size of the Manager's LSTM state
    :param worker_hidden_size: size of the Worker's LSTM state
    """

    def __init__(
        self,
        n_steps: int,
        observation_space: spaces.Space,
        n_envs: int,
        c: int,
        latent_dim: int,
        manager_hidden_size: int,
        worker_hidden_size: int,
    ) -> None:
        if n_steps < c:
            raise ValueError(f"n_steps must be >= c ({c}), got {n_steps}")
        self.n_steps, self.n_envs, self.c = n_steps, n_envs, c
        self.obs_shape = observation_space.shape
        length = c + n_steps
        obs_dtype = observation_space.dtype
        self.observations = np.zeros((length + 1, n_envs, *self.obs_shape), dtype=obs_dtype)
        self.final_observations = np.zeros((length, n_envs, *self.obs_shape), dtype=obs_dtype)
        self.episode_starts = np.zeros((length + 1, n_envs), dtype=np.float32)
        self.actions = np.zeros((length, n_envs), dtype=np.int64)
        self.rewards = np.zeros((length, n_envs), dtype=np.float32)
        self.dones = np.zeros((length, n_envs), dtype=np.float32)
        self.manager_bootstrap = np.zeros((length, n_envs), dtype=np.float32)
        self.worker_bootstrap = np.zeros((length, n_envs), dtype=np.float32)
        self.goals = np.zeros((length, n_envs, latent_dim), dtype=np.float32)
        sizes = (manager_hidden_size, manager_hidden_size, worker_hidden_size, worker_hidden_size)
        self.states = [np.zeros((length, n_envs, size), dtype=np.float32) for size in sizes]
        self._step_arrays = [
            self.final_observations,
            self.actions,
            self.rewards,
            self.dones,
            self.manager_bootstrap,
            self.worker_bootstrap,
            self.goals,
            *self.states,
        ]
        self.prefix_length = 0
        self.pos = 0
        self.full = False

    def reset(self) -> None:
        """Start a new rollout; a complete previous rollout leaves its last ``c`` steps as the prefix."""
        c = self.c
        if self.full:
            for array in self._step_arrays:
                array[:c] = array[self.n_steps : self.n_steps + c]
            self.observations[:c] = self.observations[self.n_steps : self.n_steps + c]
            self.episode_starts[:c] = self.episode_starts[self.n_steps : self.n_steps + c]
            self.prefix_length = c
        self.pos, self.full = 0, False

    def drop_prefix(self) -> None:
        """Forget the previous rollout (the environments were reset)."""
        self.prefix_length, self.pos, self.full = 0, 0, False

    def add(
        self,
        obs: np.ndarray,
        episode_starts: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        final_obs: np.ndarray,
        goals: np.ndarray,
        state: FeudalState,
        manager_bootstrap: np.ndarray,
        worker_bootstrap: np.ndarray,
    ) -> None:
        """
        Store one step of every environment.

        :param obs: the observations the actions were taken in
        :param episode_starts: True where ``obs`` starts an episode
        :param actions: the actions
        :param rewards: the extrinsic rewards
        :param dones: True where the episode ended after this step
        :param final_obs: the observation the step led to (the terminal one where ``dones``)
        :param goals: the goals the Worker acted with
        :param state: the recurrent state before the step (numpy arrays)
        :param manager_bootstrap: V^M of the final observation where a time limit ended the episode
        :param worker_bootstrap: V^D of the final observation where a time limit ended the episode
        """
        if self.pos >= self.n_steps:
            raise ValueError(f"the rollout buffer holds {self.n_steps} steps; call reset() first")
        t = self.c + self.pos
        self.observations[t] = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))
        self.episode_starts[t] = episode_starts
        self.final_observations[t] = np.asarray(final_obs).reshape((self.n_envs, *self.obs_shape))
        self.actions[t] = np.asarray(actions).reshape(self.n_envs)
        self.rewards[t] = rewards
        self.dones[t] = dones
        self.goals[t] = goals
        for array, part in zip(self.states, state[:4], strict=True):
            array[t] = part
        self.manager_bootstrap[t] = manager_bootstrap
        self.worker_bootstrap[t] = worker_bootstrap
        self.pos += 1

    def finish(self, last_obs: np.ndarray, last_episode_starts: np.ndarray) -> None:
        """Store the observation after the last step and whether it starts an episode."""
        if self.pos != self.n_steps:
            raise ValueError(f"finish() needs {self.n_steps} stored steps, got {self.pos}")
        end = self.c + self.n_steps
        self.observations[end] = np.asarray(last_obs).reshape((self.n_envs, *self.obs_shape))
        self.episode_starts[end] = last_episode_starts
        self.full = True

    def get(self, device: th.device | str = "cpu") -> FeudalRolloutSamples:
        """The window ``prefix + rollout`` as tensors on ``device``."""
        if not self.full:
            raise ValueError("the rollout is not complete: call finish() after n_steps add() calls")
        start = self.c - self.prefix_length

        def tensor(array: np.ndarray) -> th.Tensor:
            return th.as_tensor(array[start:], device=device)

        return FeudalRolloutSamples(
            observations=tensor(self.observations),
            episode_starts=tensor(self.episode_starts),
            final_observations=tensor(self.final_observations),
            actions=tensor(self.actions),
            rewards=tensor(self.rewards),
            dones=tensor(self.dones),
            manager_bootstrap=tensor(self.manager_bootstrap),
            worker_bootstrap=tensor(self.worker_bootstrap),
            goals=tensor(self.goals),
            initial_state=FeudalState(
                *(th.as_tensor(array[start], device=device) for array in self.states),
                th.zeros(0, device=device),  # the goal history is rebuilt from ``goals``
            ),
            prefix_length=self.prefix_length,
        )
