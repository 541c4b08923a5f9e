"""Replay of whole sequences for latent world models: ``(batch, length)`` windows with ``is_first``.

The buffer keeps one stream of *time steps* per environment, in the layout of the Dreamer
papers: the step that shows observation ``o_t`` also holds the action ``a_{t-1}`` that led to it,
the reward ``r_t`` received on arrival, ``is_first`` (``o_t`` starts an episode; its action and
reward are zero) and ``is_terminal`` (``o_t`` is a terminal state, not a time-limit truncation).
It takes Stable-Baselines3 transitions ``(obs, next_obs, action, reward, done, infos)`` through
:meth:`SequenceReplayBuffer.add`, so it plugs into ``OffPolicyAlgorithm.collect_rollouts``: the
first transition of an episode writes two steps (the first observation, then the next one), every
other transition one.

Windows are contiguous in one environment's stream. Every episode opens with an ``is_first``
step, so a window that runs from one episode into the next has ``is_first`` set where the new
episode begins and the model resets its state there; windows never wrap past the newest step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.utils import get_device

from sb3_ext.common.validation import check_int

__all__ = ["SequenceBatch", "SequenceReplayBuffer", "check_sequence_length"]


class SequenceBatch(NamedTuple):
    """``B`` windows of ``T`` consecutive time steps (tensors with leading dims ``(B, T)``)."""

    #: Observations ``o_t`` as stored (``uint8`` images stay ``uint8``), ``(B, T, *obs_shape)``.
    observations: th.Tensor
    #: Actions ``a_{t-1}`` that led to ``o_t`` (zero where ``is_first``), ``(B, T, action_dim)``;
    #: SB3's buffer units (Box scaled to [-1, 1], Discrete as the index).
    actions: th.Tensor
    #: Rewards ``r_t`` received on arriving at ``o_t``, ``(B, T)``.
    rewards: th.Tensor
    #: Whether ``o_t`` is the first observation of an episode, ``(B, T)`` float 0/1.
    is_first: th.Tensor
    #: Whether ``o_t`` is terminal (not a time-limit truncation), ``(B, T)`` float 0/1.
    is_terminal: th.Tensor


def check_sequence_length(value: Any, name: str = "sequence_length") -> int:
    """A sequence length: an integer >= 2 (one transition at least)."""
    return check_int(name, value, 2)


class SequenceReplayBuffer:
    """
    Sequence replay (see the module docstring).

    :param buffer_size: maximum number of time steps kept, shared equally by the environments
        (oldest overwritten first)
    :param observation_space: observation space
    :param action_space: action space
    :param device: device of the sampled tensors
    :param n_envs: number of parallel environments (one stream each)
    :param optimize_memory_usage: not supported (each step is stored once already); accepted so
        that SB3's ``OffPolicyAlgorithm`` can build the buffer
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
    ) -> None:
        self.n_envs = check_int("n_envs", n_envs, 1)
        self.buffer_size = check_int("buffer_size", buffer_size, 2 * self.n_envs)
        if optimize_memory_usage:
            raise ValueError("optimize_memory_usage must be False for SequenceReplayBuffer")
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_shape = observation_space.shape
        self.action_dim = get_action_dim(action_space)
        self.device = get_device(device)
        self.capacity = self.buffer_size // self.n_envs
        shape = (self.capacity, self.n_envs)
        self.observations = np.zeros((*shape, *self.obs_shape), dtype=observation_space.dtype)
        self.actions = np.zeros((*shape, self.action_dim), dtype=np.float32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.is_first = np.zeros(shape, dtype=bool)
        self.is_terminal = np.zeros(shape, dtype=bool)
        self.positions = np.zeros(self.n_envs, dtype=np.int64)
        self.full = np.zeros(self.n_envs, dtype=bool)
        self._needs_first = np.ones(self.n_envs, dtype=bool)

    # ------------------------------------------------------------------ writing
    def _write(
        self, env: int, obs: np.ndarray, action: Any, reward: float, is_first: bool, is_terminal: bool
    ) -> None:
        pos = self.positions[env]
        self.observations[pos, env] = obs
        self.actions[pos, env] = np.asarray(action, dtype=np.float32).reshape(self.action_dim)
        self.rewards[pos, env] = reward
        self.is_first[pos, env] = is_first
        self.is_terminal[pos, env] = is_terminal
        self.positions[env] = (pos + 1) % self.capacity
        if self.positions[env] == 0:
            self.full[env] = True

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """
        Store one SB3 transition per environment; ``next_obs`` is the terminal observation where
        the episode ended (as ``OffPolicyAlgorithm._store_transition`` passes it).
        """
        obs = np.asarray(obs).reshape(self.n_envs, *self.obs_shape)
        next_obs = np.asarray(next_obs).reshape(self.n_envs, *self.obs_shape)
        action = np.asarray(action).reshape(self.n_envs, -1)
        reward, done = np.asarray(reward).reshape(-1), np.asarray(done).reshape(-1)
        zero = np.zeros(self.action_dim, dtype=np.float32)
        for env in range(self.n_envs):
            if self._needs_first[env]:
                self._write(env, obs[env], zero, 0.0, True, False)
            truncated = bool(infos[env].get("TimeLimit.truncated", False)) if infos else False
            self._write(
                env, next_obs[env], action[env], float(reward[env]), False, bool(done[env]) and not truncated
            )
            self._needs_first[env] = bool(done[env])

    def start_new_episodes(self) -> None:
        """Begin a new episode in every stream at the next :meth:`add` (after ``env.reset()``)."""
        self._needs_first[:] = True

    # ------------------------------------------------------------------ reading
    def stream_sizes(self) -> np.ndarray:
        """Number of stored steps per environment."""
        return np.where(self.full, self.capacity, self.positions)

    def size(self) -> int:
        """Number of stored time steps over all environments."""
        return int(self.stream_sizes().sum())

    def can_sample(self, sequence_length: int) -> bool:
        """Whether one environment holds at least ``sequence_length`` steps."""
        return bool((self.stream_sizes() >= sequence_length).any())

    def window_indices(self, batch_size: int, sequence_length: int) -> tuple[np.ndarray, np.ndarray]:
        """
        ``(envs, times)``: for each window its environment ``(B,)`` and the storage indices of its
        steps ``(B, T)``, drawn uniformly over all windows that lie in the stored part of a stream.
        """
        check_int("batch_size", batch_size, 1)
        check_sequence_length(sequence_length)
        sizes = self.stream_sizes()
        n_windows = np.maximum(sizes - sequence_length + 1, 0)
        if n_windows.sum() == 0:
            raise ValueError(
                f"sequence_length={sequence_length} is longer than every stored stream "
                f"(steps per environment: {sizes.tolist()})"
            )
        # numpy's global generator, seeded by SB3's set_random_seed, as SB3's own buffers sample.
        flat = np.random.randint(0, int(n_windows.sum()), size=batch_size)  # noqa: NPY002
        bounds = np.cumsum(n_windows)
        envs = np.searchsorted(bounds, flat, side="right")
        offsets = flat - (bounds[envs] - n_windows[envs])
        oldest = np.where(self.full[envs], self.positions[envs], 0)
        times = (oldest[:, None] + offsets[:, None] + np.arange(sequence_length)) % self.capacity
        return envs, times

    def sample(self, batch_size: int, sequence_length: int) -> SequenceBatch:
        """``batch_size`` windows of ``sequence_length`` steps (:class:`SequenceBatch` on ``device``)."""
        envs, times = self.window_indices(batch_size, sequence_length)
        columns = envs[:, None]

        def tensor(array: np.ndarray, dtype: th.dtype | None = None) -> th.Tensor:
            return th.as_tensor(array[times, columns], device=self.device, dtype=dtype)

        return SequenceBatch(
            observations=tensor(self.observations),
            actions=tensor(self.actions),
            rewards=tensor(self.rewards),
            is_first=tensor(self.is_first, th.float32),
            is_terminal=tensor(self.is_terminal, th.float32),
        )
