"""Prioritized experience replay (Schaul et al., 2016) as a Stable-Baselines3 ``ReplayBuffer``."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from sb3_ext.common.segment_tree import SumTree
from sb3_ext.common.validation import check_nonnegative, check_positive, check_unit_interval


class PrioritizedReplayBufferSamples(NamedTuple):
    """``ReplayBufferSamples`` plus the importance-sampling weights and the sampled indices.

    Field order and names match SB3's ``ReplayBufferSamples``, so code written for uniform
    replay reads these samples unchanged.
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    #: Importance-sampling weights ``(N P(i))^-beta / max_j w_j``, shape ``(batch_size, 1)``.
    weights: th.Tensor
    #: Flat transition indices (``row * n_envs + env``) to pass to ``update_priorities``.
    indices: np.ndarray


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay buffer.

    Transition ``i`` is sampled with probability ``P(i) = p_i^alpha / sum_k p_k^alpha`` where
    ``p_i = |delta_i| + eps`` is its last absolute TD error (alpha is applied exactly once, when
    a priority is stored). New transitions enter with the largest priority seen so far, so that
    they are likely replayed soon. Each batch comes with importance-sampling weights
    ``w_i = (N P(i))^-beta`` (``N`` transitions stored) divided by the largest weight in the batch (as in Dopamine's
    Rainbow), so they only ever scale updates down; ``beta`` moves linearly from ``beta`` to
    ``final_beta`` as :meth:`set_progress` goes from 0 to 1 (the PER algorithms call it with the
    fraction of ``learn()`` done).

    Sampling is stratified: the total priority is split into ``batch_size`` equal segments and
    one prefix sum is drawn uniformly in each, which lowers the variance of the batch
    composition without changing each draw's marginal probability ``P(i)``. The binary sum tree
    (:class:`~sb3_ext.common.segment_tree.SumTree`, compiled with numba) makes sampling and priority
    updates ``O(batch_size * log(buffer_size))`` work.

    Storage, ``n_envs``, time-out handling (``TimeLimit.truncated`` transitions keep
    bootstrapping) and ``optimize_memory_usage`` behave as in SB3's ``ReplayBuffer``. Each
    ``(row, env)`` pair is one transition with its own priority.

    :param buffer_size: Max number of transitions in the buffer (split evenly between envs).
    :param observation_space: Observation space (``Dict`` spaces are not supported).
    :param action_space: Action space.
    :param device: PyTorch device for the sampled tensors.
    :param n_envs: Number of parallel environments.
    :param optimize_memory_usage: Store each observation once (see SB3's ``ReplayBuffer``);
        cannot be combined with ``handle_timeout_termination``.
    :param handle_timeout_termination: Treat time-limit truncations as non-terminal.
    :param alpha: Prioritization exponent (0 gives uniform sampling), default 0.6.
    :param beta: Initial importance-sampling exponent, default 0.4.
    :param final_beta: Importance-sampling exponent at the end of training, default 1.0.
    :param eps: Added to ``|TD error|`` so that no transition gets probability 0, default 1e-6.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        alpha: float = 0.6,
        beta: float = 0.4,
        final_beta: float = 1.0,
        eps: float = 1e-6,
    ) -> None:
        if isinstance(observation_space, spaces.Dict):
            raise ValueError(
                "observation_space: PrioritizedReplayBuffer does not support Dict observation spaces"
            )
        alpha = check_nonnegative("alpha", alpha)
        eps = check_positive("eps", eps)
        beta, final_beta = check_unit_interval("beta", beta), check_unit_interval("final_beta", final_beta)
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.alpha = alpha
        self.initial_beta = beta
        self.final_beta = final_beta
        self.eps = eps
        self.progress = 0.0
        self.max_priority = 1.0
        self.tree = SumTree(self.buffer_size * self.n_envs)

    @property
    def beta(self) -> float:
        """Current importance-sampling exponent."""
        return self.initial_beta + (self.final_beta - self.initial_beta) * self.progress

    def set_progress(self, progress: float) -> None:
        """Set the fraction of training done (clipped to [0, 1]); it anneals ``beta``."""
        self.progress = float(np.clip(progress, 0.0, 1.0))

    def reset(self) -> None:
        """Empty the buffer and forget all priorities."""
        super().reset()
        self.max_priority = 1.0
        if hasattr(self, "tree"):
            self.tree = SumTree(self.buffer_size * self.n_envs)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store one transition per env, each at the maximum priority seen so far."""
        row = self.pos
        super().add(obs, next_obs, action, reward, done, infos)
        self.tree.update_range(row * self.n_envs, self.n_envs, self.max_priority**self.alpha)
        if self.optimize_memory_usage:
            # The next row's observation slot now holds this row's next observation, so the
            # transition stored there (if any) is broken until it is overwritten.
            self.tree.update_range(((row + 1) % self.buffer_size) * self.n_envs, self.n_envs, 0.0)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedReplayBufferSamples:  # type: ignore[override]
        """Sample a batch proportionally to the stored priorities.

        :param batch_size: Number of transitions to sample.
        :param env: Associated VecNormalize, to normalize observations and rewards.
        :return: The transitions, their importance-sampling weights and their indices.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.size() == 0:
            raise ValueError("cannot sample from an empty PrioritizedReplayBuffer")
        # The global numpy RNG, like SB3's ReplayBuffer, so that the algorithm's seed applies.
        indices, priorities = self.tree.sample_stratified(np.random.random_sample(batch_size))  # noqa: NPY002
        # (N P(i))^-beta / max_j (N P(j))^-beta simplifies to (min_j p_j / p_i)^beta.
        weights = np.divide(priorities.min(), priorities, dtype=np.float32)
        weights **= np.float32(self.beta)
        # Index (row, env) pairs as flat transitions: take() on a (buffer_size * n_envs, ...) view
        # is several times faster than fancy indexing with a row and an env index array.
        flat = self.buffer_size * self.n_envs
        if self.optimize_memory_usage:
            next_obs = self.observations.reshape(flat, *self.obs_shape).take(
                (indices + self.n_envs) % flat, axis=0
            )
        else:
            next_obs = self.next_observations.reshape(flat, *self.obs_shape).take(indices, axis=0)
        # Time-limit truncations are not terminal: keep bootstrapping through them.
        dones = self.dones.reshape(flat).take(indices)
        dones *= 1.0 - self.timeouts.reshape(flat).take(indices)
        data = (
            self._normalize_obs(self.observations.reshape(flat, *self.obs_shape).take(indices, axis=0), env),
            self.actions.reshape(flat, self.action_dim).take(indices, axis=0),
            self._normalize_obs(next_obs, env),
            dones.reshape(-1, 1),
            self._normalize_reward(self.rewards.reshape(flat).take(indices).reshape(-1, 1), env),
            weights.reshape(-1, 1),
        )
        # take() already returned fresh arrays: wrap them without a second copy.
        if self.device.type == "cpu":
            tensors = tuple(th.from_numpy(array) for array in data)
        else:
            tensors = tuple(th.from_numpy(array).to(self.device) for array in data)
        return PrioritizedReplayBufferSamples(*tensors[:5], None, tensors[5], indices)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray | th.Tensor) -> None:
        """Store ``(|td_errors| + eps)^alpha`` as the priorities of ``indices``.

        :param indices: The ``indices`` field of the sampled batch.
        :param td_errors: One TD error per index (any sign, any shape with that many elements).
        """
        if isinstance(td_errors, th.Tensor):
            td_errors = td_errors.detach().cpu().numpy()
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64).reshape(-1))
        indices = np.asarray(indices).reshape(-1)
        if priorities.shape != indices.shape:
            raise ValueError(
                f"td_errors must hold one value per index: got {priorities.size} for {indices.size} indices"
            )
        if not priorities.size:
            return
        priorities += self.eps
        largest = float(priorities.max())  # NaN propagates through max
        if not math.isfinite(largest):
            raise ValueError("td_errors must be finite")
        priorities **= self.alpha
        self.tree.update(indices, priorities)  # checks the indices; a repeated index keeps its last priority
        self.max_priority = max(self.max_priority, largest)
