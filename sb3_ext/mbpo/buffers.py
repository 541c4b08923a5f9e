"""The buffer of :class:`~sb3_ext.mbpo.MBPO`'s model-generated transitions."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sb3_ext.common.validation import check_positive_int


class ModelTransitions(NamedTuple):
    """Batch-first arrays of model-generated transitions (actions as the policy outputs them)."""

    observations: np.ndarray  #: ``(N, obs_dim)``
    actions: np.ndarray  #: ``(N, action_dim)``, scaled to [-1, 1] like SAC's replay buffer
    next_observations: np.ndarray  #: ``(N, obs_dim)``
    rewards: np.ndarray  #: ``(N,)``
    terminations: np.ndarray  #: ``(N,)``, 1.0 where the model (or ``termination_fn``) ended the episode


class ModelBuffer:
    """
    First-in-first-out store of model rollouts, written a whole batch at a time.

    MBPO keeps the rollouts of the last few model refits: its capacity is ``retained refits x
    rollout_batch_size x rollout length``, so it grows with the rollout-length schedule.
    :meth:`resize` keeps the newest transitions (Janner et al. 2019, Algorithm 2 and their code).

    :param capacity: the number of transitions kept.
    :param obs_dim: observation size.
    :param action_dim: action size.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int) -> None:
        self.capacity = check_positive_int("capacity", capacity)
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self._data = self._empty(self.capacity)
        self.pos, self.full = 0, False

    def _empty(self, capacity: int) -> ModelTransitions:
        return ModelTransitions(
            observations=np.zeros((capacity, self.obs_dim), dtype=np.float32),
            actions=np.zeros((capacity, self.action_dim), dtype=np.float32),
            next_observations=np.zeros((capacity, self.obs_dim), dtype=np.float32),
            rewards=np.zeros(capacity, dtype=np.float32),
            terminations=np.zeros(capacity, dtype=np.float32),
        )

    def size(self) -> int:
        """The number of transitions stored."""
        return self.capacity if self.full else self.pos

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        next_observations: np.ndarray,
        rewards: np.ndarray,
        terminations: np.ndarray,
    ) -> None:
        """Store a batch of transitions, overwriting the oldest when full."""
        batch = ModelTransitions(
            np.asarray(observations, dtype=np.float32).reshape(-1, self.obs_dim),
            np.asarray(actions, dtype=np.float32).reshape(-1, self.action_dim),
            np.asarray(next_observations, dtype=np.float32).reshape(-1, self.obs_dim),
            np.asarray(rewards, dtype=np.float32).reshape(-1),
            np.asarray(terminations, dtype=np.float32).reshape(-1),
        )
        n = batch.observations.shape[0]
        if n > self.capacity:  # only the newest ``capacity`` can be kept
            batch = ModelTransitions(*(field[-self.capacity :] for field in batch))
            n = self.capacity
        rows = (self.pos + np.arange(n)) % self.capacity
        for stored, new in zip(self._data, batch, strict=True):
            stored[rows] = new
        self.full = self.full or self.pos + n >= self.capacity
        self.pos = int((self.pos + n) % self.capacity)

    def transitions(self) -> ModelTransitions:
        """Every stored transition, oldest first."""
        if not self.full:
            return ModelTransitions(*(field[: self.pos].copy() for field in self._data))
        order = (self.pos + np.arange(self.capacity)) % self.capacity
        return ModelTransitions(*(field[order] for field in self._data))

    def resize(self, capacity: int) -> None:
        """Change the capacity, keeping the newest ``min(size, capacity)`` transitions."""
        capacity = check_positive_int("capacity", capacity)
        if capacity == self.capacity:
            return
        kept = ModelTransitions(*(field[-capacity:] for field in self.transitions()))
        self.capacity, self._data = capacity, self._empty(capacity)
        self.pos, self.full = 0, False
        if kept.observations.shape[0] > 0:
            self.add(*kept)

    def sample(self, n: int, generator: np.random.Generator) -> ModelTransitions:
        """``n`` transitions drawn uniformly with replacement."""
        if self.size() == 0:
            raise ValueError("the model buffer is empty: no rollout has been made yet")
        indices = generator.integers(0, self.size(), size=n)
        return ModelTransitions(*(field[indices] for field in self._data))
