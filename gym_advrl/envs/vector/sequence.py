"""Natively vectorized SequenceMemory and SequenceTracking."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gym_advrl.envs.sequence import SequenceMemoryEnv, SequenceTrackingEnv
from gym_advrl.envs.vector._base import RecentValues, TemplateVectorEnv, check_num_envs, vector_metadata
from gym_advrl.envs.vector._infos import Partial
from gym_advrl.envs.vector._streams import RawStream


class SequenceMemoryVectorEnv(TemplateVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.sequence.SequenceMemoryEnv` stepped as arrays.

    Instance ``i`` reproduces ``gym.make("AdvRL/SequenceMemory-v0", ...)`` reset with the same
    seed and given the same actions, cues and distractors included. Infos as the single env's:
    ``cue`` and ``t`` every step, ``success`` (with its mask) on the judged step only.

    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s; the others are
    :class:`~gym_advrl.envs.sequence.SequenceMemoryEnv`'s.
    """

    metadata = vector_metadata(["rgb_array", "ansi"], 10)
    single_env_class = SequenceMemoryEnv
    step_all_rows = False  # distractors are drawn: only the instances that really step may draw
    reset_uses_generators = False  # cues and distractors come from a RawStream

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 1000,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        n_symbols: int = 4,
        delay: int = 5,
        distractors: bool = False,
        render_envs: int | None = None,
    ) -> None:
        n = check_num_envs(num_envs)
        template = SequenceMemoryEnv(n_symbols=n_symbols, delay=delay, distractors=distractors)
        super().__init__(template, n, max_episode_steps, render_mode, autoreset_mode, render_envs)
        self.n_symbols, self.delay, self.distractors = (
            template.n_symbols,
            template.delay,
            template.distractors,
        )
        self.query_step = template.query_step
        self._draws = self._add_stream(RawStream(self._rngs, keep_states=False))
        self.cue = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.shown = np.zeros(n, dtype=np.int64)  # -1: nothing shown
        self.last_action = np.full(n, -1, dtype=np.int64)  # -1: no action yet

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        self.cue[rows] = self._draws.integers(rows, self.n_symbols)
        self.t[rows] = 0
        self.shown[rows] = self.cue[rows]
        self.last_action[rows] = -1
        return {"cue": self.cue[rows].copy(), "t": np.zeros(len(rows), dtype=np.int64)}

    def _step_rows(self, actions: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict]:
        rows = self._all_rows if rows is None else rows
        self.last_action[rows] = actions
        cue, t = self.cue[rows], self.t[rows]
        judged = t >= self.query_step
        success = actions == cue
        reward = np.where(judged, np.where(success, 1.0, -1.0), 0.0)
        moving = rows[~judged]
        t_next = self.t[moving] + 1
        self.t[moving] = t_next
        blank = np.ones(len(moving), dtype=bool) if not self.distractors else t_next == self.query_step
        self.shown[moving[blank]] = -1
        distracted = moving[~blank]
        if len(distracted):
            self.shown[distracted] = self._draws.integers(distracted, self.n_symbols)
        info = {"cue": cue, "success": Partial(success, judged), "t": self.t[rows].copy()}
        return reward, judged, info

    def _observations(self) -> np.ndarray:
        obs = np.zeros((self.num_envs, self.n_symbols + 2), dtype=np.float32)
        showing = np.flatnonzero(self.shown >= 0)
        obs[showing, self.shown[showing]] = 1.0
        obs[self.t == 0, self.n_symbols] = 1.0
        obs[self.t == self.query_step, self.n_symbols + 1] = 1.0
        return obs

    def _painter_state(self, painter: gym.Env, i: int) -> None:
        painter.cue, painter.t = int(self.cue[i]), int(self.t[i])
        painter._shown = None if self.shown[i] < 0 else int(self.shown[i])
        painter._last_action = None if self.last_action[i] < 0 else int(self.last_action[i])


class SequenceTrackingVectorEnv(TemplateVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.sequence.SequenceTrackingEnv` stepped as arrays.

    Instance ``i`` reproduces ``gym.make("AdvRL/SequenceTracking-v0", ...)`` reset with the same
    seed and given the same actions. The env's own ``episode_length`` truncation and
    ``max_episode_steps`` both apply (the smaller wins, as with the single env in a ``TimeLimit``).

    :param episode_length: steps per episode, >= 2 (the single env's argument)
    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s.
    """

    metadata = vector_metadata(["rgb_array", "ansi"], 10)
    single_env_class = SequenceTrackingEnv
    reset_uses_generators = False  # starting values come from a RawStream
    STEP_SIZE = SequenceTrackingEnv.STEP_SIZE

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 50,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        episode_length: int = 50,
        render_envs: int | None = None,
    ) -> None:
        n = check_num_envs(num_envs)
        template = SequenceTrackingEnv(episode_length=episode_length)
        super().__init__(template, n, max_episode_steps, render_mode, autoreset_mode, render_envs)
        self.episode_length = template.episode_length
        if self.max_episode_steps is None or self.max_episode_steps > self.episode_length:
            self.max_episode_steps = self.episode_length  # the env truncates itself at episode_length
        self._draws = self._add_stream(RawStream(self._rngs, keep_states=False))
        # The last three values, newest in column 2, and how many of them exist (1 to 3).
        self.history = np.zeros((n, 3))
        self.history_length = np.ones(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.last_move = np.zeros(n)
        # The values the single env charts, for the instances render() draws.
        self._drawn = (
            None if render_mode is None else RecentValues(self.render_envs, template.RENDER_STEPS + 1)
        )

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        self.history[rows] = 0.0
        self.history[rows, 2] = self._draws.uniform(rows, 0.0, 1.0, 1)[:, 0]
        self.history_length[rows] = 1
        self.t[rows] = 0
        self.last_move[rows] = 0.0
        self._mean = self._running_mean()
        if self._drawn is not None:
            self._drawn.start(rows, self.history[rows, 2])
        return {}

    def _running_mean(self) -> np.ndarray:
        # Python's sum over the deque, left to right, divided by its length: with the missing
        # entries held at 0.0, (0 + 0) + x = x and (0 + x) + y = x + y exactly, so one formula
        # serves every length.
        h = self.history
        return ((h[:, 0] + h[:, 1]) + h[:, 2]) / self.history_length

    def _step_rows(self, actions: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict]:
        sel = slice(None) if rows is None else rows
        move = np.where(actions == 1, 1.0, -1.0)
        self.last_move[sel] = move
        history = self.history[sel]  # a view for all rows, a copy for some
        value = np.clip(history[:, 2] + self.STEP_SIZE * move, 0.0, 1.0)
        history[:, :2] = history[:, 1:]
        history[:, 2] = value
        if rows is not None:
            self.history[rows] = history
        self.history_length[sel] = np.minimum(self.history_length[sel] + 1, 3)
        self.t[sel] += 1
        if self._drawn is not None:
            self._drawn.append(self.history[:, 2], rows)
        self._mean = self._running_mean()
        reward = 1.0 - 2.0 * np.abs(self._mean[sel] - 0.5)
        return reward, np.zeros(len(reward), dtype=bool), {}

    def _observations(self) -> np.ndarray:
        obs = np.empty((self.num_envs, 4), dtype=np.float32)
        obs[:, 0] = self.history[:, 2]
        obs[:, 1] = self._mean
        obs[:, 2] = self.last_move
        obs[:, 3] = np.minimum(self.t / self.episode_length, 1.0)
        return obs

    def _painter_state(self, painter: gym.Env, i: int) -> None:
        count = int(self.history_length[i])
        values = self.history[i, 3 - count :].tolist()
        painter.history = values
        painter._drawn = deque(self._drawn.get(i).tolist(), maxlen=painter.RENDER_STEPS + 1)
        painter.t, painter.last_move = int(self.t[i]), float(self.last_move[i])
