"""What the sb3_ext algorithms with their own ``learn()`` loop on SB3's ``BaseAlgorithm`` share
(:class:`~sb3_ext.dyna.TabularDynaQ`, :class:`~sb3_ext.option_critic.OptionCritic`): an epsilon
annealed linearly as in SB3's DQN, the policy built from ``policy_kwargs``, and the rollout and
time statistics SB3's own ``dump_logs`` records."""

from __future__ import annotations

import sys
import time
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import LinearSchedule, safe_mean

from sb3_ext.common.validation import check_float


class EpsilonGreedyAlgorithm(BaseAlgorithm):
    """An SB3 ``BaseAlgorithm`` whose exploration rate goes linearly from
    ``exploration_initial_eps`` to ``exploration_final_eps`` over the first
    ``exploration_fraction`` of ``learn()``, then stays there.

    A subclass calls :meth:`_set_exploration` in ``__init__``, :meth:`_setup_policy` in
    ``_setup_model``, :meth:`_update_exploration_rate` after every environment step, and
    :meth:`_record_episodes` and :meth:`_record_time` in its ``dump_logs``.
    """

    exploration_rate: float

    def _set_exploration(self, fraction: float, initial_eps: float, final_eps: float) -> None:
        """Check and keep the schedule's arguments; epsilon starts at ``initial_eps``."""
        self.exploration_fraction = check_float("exploration_fraction", fraction, 0.0, 1.0, False)
        self.exploration_initial_eps = check_float("exploration_initial_eps", initial_eps, 0.0, 1.0)
        self.exploration_final_eps = check_float("exploration_final_eps", final_eps, 0.0, 1.0)
        self.exploration_rate = self.exploration_initial_eps

    def _setup_policy(self, **policy_arguments: Any) -> None:
        """Seed, then build the policy (``policy_arguments`` before ``policy_kwargs``) and the schedule."""
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space,
            self.action_space,
            self.lr_schedule,
            **policy_arguments,
            **self.policy_kwargs,
        )
        self.policy = self.policy.to(self.device)
        self.exploration_schedule = LinearSchedule(
            self.exploration_initial_eps, self.exploration_final_eps, self.exploration_fraction
        )

    def _update_exploration_rate(self, total_timesteps: int) -> None:
        """Move epsilon to where the schedule is after ``num_timesteps`` of ``total_timesteps``."""
        self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)

    def _record_episodes(self) -> None:
        """Mean return and length of the recent episodes, and the exploration rate."""
        assert self.ep_info_buffer is not None
        if len(self.ep_info_buffer) > 0:
            self.logger.record("rollout/ep_rew_mean", safe_mean([info["r"] for info in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([info["l"] for info in self.ep_info_buffer]))
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def _record_time(self) -> None:
        """Steps per second of this ``learn()`` call, its duration and the steps taken in all."""
        time_elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        self.logger.record(
            "time/fps", int((self.num_timesteps - self._num_timesteps_at_start) / time_elapsed)
        )
        self.logger.record("time/time_elapsed", int(time_elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
