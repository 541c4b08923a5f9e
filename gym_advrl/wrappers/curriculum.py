"""Task schedules: a success-driven curriculum over task levels, and goal schedules for transfer."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.core import ActType, ObsType

from gym_advrl.utils.validation import (
    cell_pair,
    check_choice,
    check_float,
    check_int,
    options_dict,
    reject_unknown_kwargs,
)
from gym_advrl.wrappers._common import SeededWrapperRNG, env_name, probe_reset_options

#: ``success_fn(episode_return, terminated, info) -> bool`` judges a finished episode.
SuccessFn = Callable[[float, bool, dict], bool]

GOAL_ORDERS = ("sequential", "cycle", "random")

# Counts are compared with the thresholds with this slack so that e.g. 8 successes out of 10
# meet 0.8 despite binary floating point (0.8 * 10 = 8.000000000000002 is not what users mean).
_EPS = 1e-9


class Curriculum(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs):
    """Moves the agent between task levels according to its recent success rate.

    ``levels`` is an ordered list of task settings, easiest first, each a dict of reset
    options that the environment accepts, e.g. start states closer to upright for
    ``AdvRL/Pendulum-v0`` (``{"x_init": 0.3, "y_init": 0.5}``), heavier poles for
    ``AdvRL/ContinuousCartPole-v0`` (``{"physics": {"masspole": 0.3}}``) or goals farther away
    for ``AdvRL/GridWorld-v0`` (``{"goal": (4, 4)}``). Every ``reset`` uses the current level's
    options; options passed to ``reset`` take precedence, dict-valued ones (``physics``) key by
    key, so an outer :class:`DomainRandomization` composes with physics levels.

    Each finished episode (terminated or truncated) is judged a success or a failure and added
    to a window of the last ``window`` episodes played at the current level. Once the window is
    full, a success rate ``>= promote_threshold`` moves to the next level and a rate ``<=
    demote_threshold`` back to the previous one (where they exist); the window then starts
    afresh, so each decision rests on ``window`` episodes of the level being judged. Defaults
    are 0.8, 0.3 and 10 episodes. The new level applies from the next ``reset``.

    An episode is a success when, in this order of precedence: ``success_fn(episode_return,
    terminated, info)`` is true if given; its return is ``>= success_threshold`` if given;
    ``info["is_success"]`` (the SB3 convention) is true if the final info has it; otherwise when
    it was terminated rather than truncated, which is right for goal-reaching tasks such as the
    grid worlds, but not for tasks where termination is failure (cart-pole): give a
    ``success_threshold`` there.

    ``info["curriculum_level"]`` is the level of the current episode; at the end of an episode
    ``info["curriculum_success"]`` judges it and ``info["curriculum_success_rate"]`` is the
    rate over the window so far. Level changes can also be forced with :meth:`set_level`
    (``vec_env.env_method("set_level", k)`` in SB3).

    Example:
        >>> import gymnasium as gym
        >>> import gym_advrl
        >>> from gym_advrl.wrappers import Curriculum
        >>> levels = [{"goal": (0, 2)}, {"goal": (2, 2)}, {"goal": (4, 4)}]
        >>> env = Curriculum(gym.make("AdvRL/GridWorld-v0"), levels)
        >>> obs, info = env.reset(seed=0)
        >>> info["curriculum_level"], info["goal"]
        (0, (0, 2))
        >>> for _ in range(10):  # ten successful episodes: 0 -> right -> right
        ...     _ = env.reset()
        ...     _ = env.step(1)
        ...     _, _, terminated, _, info = env.step(1)
        >>> terminated, info["curriculum_success_rate"]
        (True, 1.0)
        >>> env.reset()[1]["goal"], env.level
        ((2, 2), 1)

    Change logs:
     * v0.1.0 - Initially added
    """

    @reject_unknown_kwargs
    def __init__(
        self,
        env: gym.Env[ObsType, ActType],
        levels: Sequence[Mapping[str, Any]],
        success_threshold: float | None = None,
        success_fn: SuccessFn | None = None,
        promote_threshold: float = 0.8,
        demote_threshold: float = 0.3,
        window: int = 10,
        start_level: int = 0,
    ) -> None:
        """Wrap ``env`` with a curriculum over ``levels``.

        Args:
            env: an environment whose ``reset(options=...)`` accepts every level's options.
            levels: reset-options dicts, easiest first (at least one).
            success_threshold: episode return at or above which an episode is a success.
            success_fn: ``(episode_return, terminated, info) -> bool``; overrides the others.
                Must be picklable (a module-level function) for ``SubprocVecEnv``.
            promote_threshold: success rate in ``(0, 1]`` at or above which the level goes up.
            demote_threshold: success rate in ``[0, promote_threshold)`` at or below which it goes down.
            window: number of episodes a decision is based on (>= 1).
            start_level: index of the first level.
        """
        gym.utils.RecordConstructorArgs.__init__(
            self,
            levels=levels,
            success_threshold=success_threshold,
            success_fn=success_fn,
            promote_threshold=promote_threshold,
            demote_threshold=demote_threshold,
            window=window,
            start_level=start_level,
        )
        gym.Wrapper.__init__(self, env)
        if isinstance(levels, Mapping | str) or not isinstance(levels, Sequence) or len(levels) == 0:
            raise ValueError(f"levels must be a non-empty list of reset-options dicts, got {levels!r}")
        for i, level in enumerate(levels):
            if not isinstance(level, Mapping):
                raise ValueError(f"levels[{i}] must be a dict of reset options, got {level!r}")
        self.levels = [dict(level) for level in levels]
        self.promote_threshold = check_float(
            "promote_threshold", promote_threshold, 0.0, 1.0, low_inclusive=False
        )
        self.demote_threshold = check_float("demote_threshold", demote_threshold, 0.0, 1.0)
        if self.demote_threshold >= self.promote_threshold:
            raise ValueError(
                f"demote_threshold must be < promote_threshold, got {self.demote_threshold} >= {self.promote_threshold}"
            )
        self.window = check_int("window", window, 1)
        self.success_threshold = (
            None if success_threshold is None else check_float("success_threshold", success_threshold)
        )
        if success_fn is not None and not callable(success_fn):
            raise ValueError(
                f"success_fn must be callable (episode_return, terminated, info) -> bool, got {success_fn!r}"
            )
        self.success_fn = success_fn
        self.level = check_int("start_level", start_level, 0, len(self.levels) - 1)
        probe_reset_options(env, self.levels, f"levels of Curriculum around {env_name(env)}")
        self.outcomes: deque[bool] = deque(maxlen=self.window)
        self._episode_level = self.level
        self._episode_return = 0.0

    @property
    def n_levels(self) -> int:
        """Number of levels."""
        return len(self.levels)

    def set_level(self, level: int) -> None:
        """Jump to ``level`` from the next reset on, with an empty success window."""
        self.level = check_int("level", level, 0, self.n_levels - 1)
        self.outcomes.clear()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset with the current level's options (``options`` override them)."""
        merged = dict(self.levels[self.level])
        for name, value in options_dict(options).items():
            # Dict-valued options (physics) are merged key by key, so that e.g. a level's
            # max_torque and an outer DomainRandomization's sampled mass both apply.
            both_dicts = isinstance(value, Mapping) and isinstance(merged.get(name), Mapping)
            merged[name] = {**merged[name], **value} if both_dicts else value
        obs, info = self.env.reset(seed=seed, options=merged)
        self._episode_level = self.level
        self._episode_return = 0.0
        info["curriculum_level"] = self._episode_level
        return obs, info

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step; at the end of an episode judge it and update the level."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._episode_return += float(reward)
        info["curriculum_level"] = self._episode_level
        if terminated or truncated:
            success = self._judge(bool(terminated), info)
            self.outcomes.append(success)
            info["curriculum_success"] = success
            info["curriculum_success_rate"] = sum(self.outcomes) / len(self.outcomes)
            self._update_level()
        return obs, reward, terminated, truncated, info

    def _judge(self, terminated: bool, info: dict[str, Any]) -> bool:
        if self.success_fn is not None:
            return bool(self.success_fn(self._episode_return, terminated, info))
        if self.success_threshold is not None:
            return self._episode_return >= self.success_threshold
        if "is_success" in info:
            return bool(info["is_success"])
        return terminated

    def _update_level(self) -> None:
        # Decisions are only taken on a full window of episodes played at the current level.
        if self._episode_level != self.level or len(self.outcomes) < self.window:
            return
        successes = sum(self.outcomes)
        if successes >= self.promote_threshold * self.window - _EPS and self.level < self.n_levels - 1:
            self.set_level(self.level + 1)
        elif successes <= self.demote_threshold * self.window + _EPS and self.level > 0:
            self.set_level(self.level - 1)


class GoalSchedule(
    gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs, SeededWrapperRNG
):
    """Switches the goal of a grid world between episodes, for transfer and multi-task experiments.

    Applies to ``AdvRL/GridWorld-v0`` and ``AdvRL/FourRooms-v0`` (any env whose reset accepts
    ``options={"goal": (row, col)}``). With ``switch_every=n`` the goal changes every ``n``
    resets: ``order="sequential"`` walks through ``goals`` once and stays on the last one (train
    on a source goal, then transfer to a target), ``"cycle"`` starts over after the last, and
    ``"random"`` draws a goal uniformly from the wrapper's generator (seeded by
    ``reset(seed=...)``). With ``switch_every=None`` the goal only changes when
    :meth:`set_goal` is called (``vec_env.env_method("set_goal", i)`` in SB3). Every reset counts
    as an episode. A ``goal`` passed to ``reset(options=...)`` takes precedence for that reset.

    Goals are checked against the env when the wrapper is built: walls, cells off the grid and
    the start cell raise ``ValueError``. ``info["goal"]`` is the goal in force and
    ``info["goal_index"]`` its index in ``goals`` (``-1`` for a goal given to ``reset``).

    Example:
        >>> import gymnasium as gym
        >>> import gym_advrl
        >>> from gym_advrl.wrappers import GoalSchedule
        >>> env = GoalSchedule(gym.make("AdvRL/GridWorld-v0"), goals=[(4, 4), (0, 4)], switch_every=2)
        >>> [env.reset(seed=0 if i == 0 else None)[1]["goal"] for i in range(5)]
        [(4, 4), (4, 4), (0, 4), (0, 4), (0, 4)]

    Change logs:
     * v0.1.0 - Initially added
    """

    _rng_salt = 2

    @reject_unknown_kwargs
    def __init__(
        self,
        env: gym.Env[ObsType, ActType],
        goals: Sequence[Sequence[int]],
        switch_every: int | None = None,
        order: str = "sequential",
    ) -> None:
        """Wrap a grid world with a goal schedule.

        Args:
            env: an environment accepting ``reset(options={"goal": (row, col)})``.
            goals: the goal cells ``(row, col)`` (at least one).
            switch_every: resets between goal changes (>= 1), or ``None`` for manual switching.
            order: ``"sequential"``, ``"cycle"`` or ``"random"``.
        """
        gym.utils.RecordConstructorArgs.__init__(self, goals=goals, switch_every=switch_every, order=order)
        gym.Wrapper.__init__(self, env)
        if isinstance(goals, str) or not isinstance(goals, Sequence | np.ndarray) or len(goals) == 0:
            raise ValueError(f"goals must be a non-empty list of (row, col) cells, got {goals!r}")
        self.goals = [self._check_goal(i, goal) for i, goal in enumerate(goals)]
        self.switch_every = None if switch_every is None else check_int("switch_every", switch_every, 1)
        self.order = check_choice("order", order, GOAL_ORDERS)
        probe_reset_options(
            env, [{"goal": goal} for goal in self.goals], f"goals of GoalSchedule around {env_name(env)}"
        )
        self.goal_index = 0
        self.episodes = 0
        self._info_goal: tuple[tuple[int, int], int] = (self.goal, self.goal_index)

    @staticmethod
    def _check_goal(i: int, goal: Any) -> tuple[int, int]:
        return cell_pair(f"goals[{i}]", goal)

    @property
    def goal(self) -> tuple[int, int]:
        """The scheduled goal cell."""
        return self.goals[self.goal_index]

    def set_goal(self, index: int) -> None:
        """Use ``goals[index]`` from the next reset on (the automatic schedule continues from it)."""
        self.goal_index = check_int("index", index, 0, len(self.goals) - 1)

    def _scheduled_index(self) -> int:
        if self.switch_every is None or self.episodes % self.switch_every != 0:
            return self.goal_index
        if self.order == "random":
            return int(self._rng.integers(len(self.goals)))
        if self.episodes == 0:
            return self.goal_index
        if self.order == "sequential":
            return min(self.goal_index + 1, len(self.goals) - 1)
        return (self.goal_index + 1) % len(self.goals)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset with the scheduled goal and report it in ``info``."""
        self._seed_rng(seed)
        self.goal_index = self._scheduled_index()
        self.episodes += 1
        options = options_dict(options)
        explicit = "goal" in options
        options.setdefault("goal", self.goal)
        obs, info = self.env.reset(seed=seed, options=options)
        self._info_goal = (info.get("goal", options["goal"]), -1 if explicit else self.goal_index)
        return obs, self._add_info(info)

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; ``info`` carries the goal and its index."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._add_info(info)

    def _add_info(self, info: dict[str, Any]) -> dict[str, Any]:
        info["goal"], info["goal_index"] = self._info_goal
        return info
