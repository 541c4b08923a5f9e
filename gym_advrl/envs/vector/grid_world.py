"""Natively vectorized GridWorld and FourRooms: every instance's move in one array pass, all obs modes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gym_advrl.envs.grid_world import (
    _AGENT,
    _FREE,
    _GOAL,
    _WALL,
    FOUR_ROOMS_GOAL,
    MOVES,
    FourRoomsEnv,
    GridWorldEnv,
)
from gym_advrl.envs.vector._base import TemplateVectorEnv, check_num_envs, per_instance, vector_metadata
from gym_advrl.envs.vector._streams import RawStream
from gym_advrl.utils.validation import Interval

SLIP_RANGE = Interval(0.0, 1.0)


class GridWorldVectorEnv(TemplateVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.grid_world.GridWorldEnv` stepped as arrays.

    Instance ``i`` reproduces ``gym.make("AdvRL/GridWorld-v0", ...)`` reset with the same seed and
    given the same actions, slips included (each instance draws from its own generator), in
    every ``obs_mode``: ``"coords"`` ``(num_envs, 2)`` float32, ``"index"`` ``(num_envs,)`` int64,
    ``"rgb"`` ``(num_envs, H, W, 3)`` uint8 drawn for all instances at once. All instances share
    the layout; ``slip`` takes a number or a sequence of ``num_envs`` numbers in ``[0, 1]``.
    ``reset(options={"goal": cell})`` moves the goal of the reset instances (a ``(row, col)``
    cell, or ``num_envs`` cells, one per instance); as in the single env it stays until moved
    again. ``info["position"]`` and ``info["goal"]`` are ``(num_envs, 2)`` int64 arrays.

    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s; the others are
    :class:`~gym_advrl.envs.grid_world.GridWorldEnv`'s.
    """

    metadata = vector_metadata(["rgb_array", "ansi"], 8)
    single_env_class = GridWorldEnv
    reset_option_keys = ("goal",)
    step_all_rows = False  # slips draw random numbers: only the instances that really step may draw
    reset_uses_generators = False  # starts and slips come from a RawStream

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 100,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        size: int | Sequence[int] = 5,
        start: Sequence[int] | None = (0, 0),
        goal: Sequence[int] | None = None,
        walls: Sequence[Sequence[int]] = (),
        slip: Any = 0.0,
        layout: str | None = None,
        obs_mode: str = "coords",
        cell_px: int = 8,
        step_reward: float = -0.1,
        goal_reward: float = 10.0,
        render_envs: int | None = None,
    ) -> None:
        template = GridWorldEnv(
            size=size,
            start=start,
            goal=goal,
            walls=walls,
            layout=layout,
            obs_mode=obs_mode,
            cell_px=cell_px,
            step_reward=step_reward,
            goal_reward=goal_reward,
        )
        self._setup(template, num_envs, max_episode_steps, render_mode, autoreset_mode, slip, render_envs)

    def _setup(
        self,
        template: GridWorldEnv,
        num_envs: int,
        max_episode_steps: int | None,
        render_mode: str | None,
        autoreset_mode: Any,
        slip: Any,
        render_envs: int | None,
    ) -> None:
        n = check_num_envs(num_envs)
        self.slip = per_instance("slip", slip, n, SLIP_RANGE)
        super().__init__(template, n, max_episode_steps, render_mode, autoreset_mode, render_envs)
        self.rows, self.cols, self.obs_mode, self.cell_px = (
            template.rows,
            template.cols,
            template.obs_mode,
            template.cell_px,
        )
        self.walls = template.walls
        self.start = template.start
        self.step_reward, self.goal_reward = template.step_reward, template.goal_reward
        self.free_cells = template.free_cells
        self._draws = self._add_stream(RawStream(self._rngs, keep_states=False))
        # Cells are numbered on the grid padded with a wall border, row-major: a move adds one
        # offset, and a move into a wall or off the grid lands on a wall cell (then stays).
        width = self.cols + 2
        padded = np.ones((self.rows + 2, width), dtype=bool)
        padded[1:-1, 1:-1] = self.walls
        self._blocked = padded.ravel()
        self._offsets = (MOVES[:, 0] * width + MOVES[:, 1]).astype(np.int64)
        rows_of, cols_of = np.divmod(np.arange(padded.size), width)
        self._cells = np.stack((rows_of - 1, cols_of - 1), axis=1)  # (row, col) of each number
        self._coords32 = self._cells.astype(np.float32)
        self._index_of = self._cells[:, 0] * self.cols + self._cells[:, 1]
        self._width = width
        self._free_flat = self._flat_of(self.free_cells)
        self._flat = np.zeros(n, dtype=np.int64)
        self.goal = np.tile(np.asarray(template.goal, dtype=np.int64), (n, 1))
        self._goal_flat = self._flat_of(self.goal)
        self._may_slip = self.slip > 0.0
        self._all_slip = bool(self._may_slip.all())
        # Index of each cell in free_cells (-1 for walls): the start draw picks among free cells.
        self._free_index = np.full((self.rows, self.cols), -1, dtype=np.int64)
        self._free_index[tuple(self.free_cells.T)] = np.arange(len(self.free_cells))
        self._background = np.empty((self.rows, self.cols, 3), dtype=np.uint8)
        self._background[:] = _FREE
        self._background[self.walls] = _WALL

    def _flat_of(self, cells: np.ndarray) -> np.ndarray:
        cells = np.asarray(cells, dtype=np.int64)
        return (cells[..., 0] + 1) * self._width + cells[..., 1] + 1

    @property
    def position(self) -> np.ndarray:
        """The ``(row, col)`` cell of every instance, ``(num_envs, 2)`` int64."""
        return self._cells[self._flat]

    def _check_goals(self, value: Any, rows: np.ndarray) -> np.ndarray:
        array = np.asarray(value, dtype=object)
        if array.ndim == 2 and array.shape == (self.num_envs, 2):
            cells = [value[i] for i in rows.tolist()]
        else:
            cells = [value] * len(rows)
        goals = np.array(
            [self.template._check_free_cell("goal", cell) for cell in cells], dtype=np.int64
        ).reshape(-1, 2)
        if self.start is not None and np.any(np.all(goals == self.start, axis=1)):
            raise ValueError(f"goal must differ from the start cell {self.start}")
        return goals

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        if "goal" in options:
            self.goal[rows] = self._check_goals(options["goal"], rows)
            self._goal_flat[rows] = self._flat_of(self.goal[rows])
        if self.start is None:
            # The single env draws integers(len(candidates)) over the free cells without the goal.
            count = len(self.free_cells) - 1
            picks = self._draws.integers(rows, count) if count > 1 else np.zeros(len(rows), dtype=np.int64)
            goal_index = self._free_index[self.goal[rows, 0], self.goal[rows, 1]]
            picks += picks >= goal_index
            self._flat[rows] = self._free_flat[picks]
        else:
            self._flat[rows] = self._flat_of(self.start)
        return {"position": self._cells[self._flat[rows]], "goal": self.goal[rows]}

    def _step_rows(self, actions: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict]:
        every = rows is None
        rows = self._all_rows if every else rows
        may_slip = self._may_slip if every else self._may_slip[rows]
        if every and self._all_slip:  # the common FourRooms step: every instance draws
            actions = actions.copy()
            slipped = np.flatnonzero(self._draws.random(None) < self.slip)
            if len(slipped):
                turn = self._draws.integers(slipped, 3)
                actions[slipped] = (actions[slipped] + 1 + turn) % 4
        elif may_slip.any():
            actions = actions.copy()
            slip_rows = np.flatnonzero(may_slip)
            slip = self.slip[rows[slip_rows]]
            slipped = slip_rows[self._draws.random(rows[slip_rows]) < slip]
            if len(slipped):
                # One of the three other directions, uniformly.
                turn = self._draws.integers(rows[slipped], 3)
                actions[slipped] = (actions[slipped] + 1 + turn) % 4
        flat = self._flat if every else self._flat[rows]
        target = flat + self._offsets[actions]
        flat = np.where(self._blocked[target], flat, target)
        goal_flat = self._goal_flat if every else self._goal_flat[rows]
        if every:
            self._flat = flat
        else:
            self._flat[rows] = flat
        terminated = flat == goal_flat
        reward = np.where(terminated, self.goal_reward, self.step_reward)
        goal = self.goal if every else self.goal[rows]
        return reward, terminated, {"position": self._cells[flat], "goal": goal}

    def _observations(self) -> np.ndarray:
        if self.obs_mode == "coords":
            return self._coords32[self._flat]
        if self.obs_mode == "index":
            return self._index_of[self._flat]
        return self._images(self.cell_px)

    def _images(self, cell_px: int) -> np.ndarray:
        n = self.num_envs
        colors = np.empty((n, self.rows, self.cols, 3), dtype=np.uint8)
        colors[:] = self._background
        colors[self._all_rows, self.goal[:, 0], self.goal[:, 1]] = _GOAL
        position = self.position
        colors[self._all_rows, position[:, 0], position[:, 1]] = _AGENT
        return np.repeat(np.repeat(colors, cell_px, axis=1), cell_px, axis=2)

    # ------------------------------------------------------------------ rendering
    def _painter_state(self, painter: gym.Env, i: int) -> None:
        row, col = self._cells[self._flat[i]].tolist()
        painter.position = (row, col)
        painter.goal = (int(self.goal[i, 0]), int(self.goal[i, 1]))


class FourRoomsVectorEnv(GridWorldVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.grid_world.FourRoomsEnv` stepped as arrays.

    As :class:`GridWorldVectorEnv` on the four-rooms layout (stochastic moves, random starts),
    each instance reproducing ``gym.make("AdvRL/FourRooms-v0", ...)`` with the same seed.

    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s; the others are
    :class:`~gym_advrl.envs.grid_world.FourRoomsEnv`'s.
    """

    single_env_class = FourRoomsEnv

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 500,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        goal: Sequence[int] = FOUR_ROOMS_GOAL,
        slip: Any = 1.0 / 3.0,
        obs_mode: str = "index",
        cell_px: int = 8,
        render_envs: int | None = None,
    ) -> None:
        template = FourRoomsEnv(goal=goal, slip=0.0, obs_mode=obs_mode, cell_px=cell_px)
        self._setup(template, num_envs, max_episode_steps, render_mode, autoreset_mode, slip, render_envs)


__all__ = ["FourRoomsVectorEnv", "GridWorldVectorEnv"]
