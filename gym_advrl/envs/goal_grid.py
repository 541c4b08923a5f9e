"""Goal-conditioned grid worlds in Gymnasium-Robotics' ``GoalEnv`` conventions, for hindsight replay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_advrl.envs.grid_world import FOUR_ROOMS_LAYOUT, GridWorldEnv, parse_layout
from gym_advrl.utils.validation import check_choice, check_options, reject_unknown_kwargs

REWARD_TYPES = ("sparse", "dense")


def placeholder_goal(
    size: int | Sequence[int], walls: Sequence[Sequence[int]], layout: str | None, start: Sequence[int] | None
) -> tuple[int, int] | None:
    """A free cell other than ``start`` for GridWorld's constructor, which needs a goal; the
    episodes draw their own. ``None`` when there is none (GridWorld's checks then report it)."""
    try:
        if layout is not None:
            grid = parse_layout(layout)[0]
        else:
            rows, cols = (size, size) if isinstance(size, int | np.integer) else tuple(size)
            grid = np.zeros((int(rows), int(cols)), dtype=bool)
            for cell in walls:
                if 0 <= cell[0] < grid.shape[0] and 0 <= cell[1] < grid.shape[1]:
                    grid[cell[0], cell[1]] = True
        try:
            start = None if start is None else tuple(int(v) for v in start)
        except (TypeError, ValueError):  # a bad start: GridWorld's own check names it
            start = None
        free = [
            tuple(int(v) for v in cell) for cell in np.argwhere(~grid) if tuple(int(v) for v in cell) != start
        ]
    except (TypeError, ValueError, IndexError):  # bad arguments: GridWorld's own checks name them
        return None
    return free[-1] if free else None


class GoalGridWorldEnv(GridWorldEnv):
    """
    ## Description

    A goal-conditioned :class:`~gym_advrl.envs.grid_world.GridWorldEnv` with the conventions of
    Gymnasium-Robotics' ``GoalEnv``, so that SB3's ``HerReplayBuffer`` (DQN, and any off-policy
    algorithm with Discrete actions) relabels its transitions with the goals it reached: every
    episode draws a new goal among the free cells (or takes ``goal``), and the agent sees it.

    ## Action Space

    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left (as GridWorld; ``slip`` as GridWorld).

    ## Observation Space

    ``Dict`` of three ``Box(0, max(rows, cols) - 1, (2,), float32)``: ``observation`` (the agent's
    ``(row, col)``), ``achieved_goal`` (the same cell: reaching a goal means standing on it) and
    ``desired_goal`` (the goal's cell).

    ## Rewards

    ``compute_reward(achieved_goal, desired_goal, info)``, vectorized over leading dimensions:
    ``reward_type="sparse"`` (default) gives ``-1`` until the goal and ``0`` on it (Andrychowicz et
    al. 2017); ``"dense"`` gives minus the Manhattan distance. ``step`` returns exactly
    ``compute_reward`` of its own goals.

    ## Starting State

    ``start`` (default ``(0, 0)``; ``None``: a random free cell other than the goal); the goal is
    drawn uniformly among the other free cells when ``goal=None`` (the default), or is ``goal``;
    ``reset(options={"goal": (r, c)})`` sets it for one episode (a wall or an off-grid cell is a
    ``ValueError``).

    ## Episode End

    ``compute_terminated``: on the goal. ``compute_truncated``: never; the registered ids add a time
    limit (``AdvRL/GoalGridWorld-v0``: 50 steps, ``AdvRL/GoalFourRooms-v0``: 100).

    ## Arguments

    | Argument      | Default  | Meaning                                                         |
    |---------------|----------|-----------------------------------------------------------------|
    | `size`        | 8        | grid size (or `(rows, cols)`), as GridWorld                     |
    | `start`       | (0, 0)   | start cell; `None`: random                                      |
    | `goal`        | None     | fixed goal; `None`: a random free cell each episode             |
    | `walls`       | ()       | wall cells, as GridWorld                                        |
    | `layout`      | None     | a text layout, as GridWorld (its `S`/`G` cells are ignored)     |
    | `slip`        | 0.0      | probability of moving in another direction                      |
    | `reward_type` | "sparse" | `"sparse"` (-1 / 0) or `"dense"` (minus the Manhattan distance) |
    | `render_mode` | None     | `"rgb_array"`, `"ansi"` or `"human"`, as GridWorld              |

    ## Version History

    * v0: initial version.
    """

    metadata = GridWorldEnv.metadata

    @reject_unknown_kwargs
    def __init__(
        self,
        render_mode: str | None = None,
        size: int | Sequence[int] = 8,
        start: Sequence[int] | None = (0, 0),
        goal: Sequence[int] | None = None,
        walls: Sequence[Sequence[int]] = (),
        layout: str | None = None,
        slip: float = 0.0,
        reward_type: str = "sparse",
        cell_px: int = 8,
    ) -> None:
        self.reward_type = check_choice("reward_type", reward_type, REWARD_TYPES)
        super().__init__(
            render_mode=render_mode,
            size=size,
            start=start,
            goal=goal if goal is not None else placeholder_goal(size, walls, layout, start),
            walls=walls,
            slip=slip,
            layout=layout,
            obs_mode="coords",
            cell_px=cell_px,
        )
        self.fixed_goal = None if goal is None else self.goal
        if len(self.free_cells) < 2:
            raise ValueError("walls (or layout) must leave at least two free cells: a start and a goal")
        high = float(max(self.rows, self.cols) - 1)
        cell = spaces.Box(0.0, high, (2,), np.float32)
        self.observation_space = spaces.Dict(
            {"observation": cell, "achieved_goal": cell, "desired_goal": cell}
        )

    # ------------------------------------------------------------------ GoalEnv API
    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray | float:
        """``-1`` off the goal and ``0`` on it (``"sparse"``), or minus the Manhattan distance
        (``"dense"``), for goals ``(..., 2)``; a float for a single pair."""
        achieved, desired = np.asarray(achieved_goal, np.float64), np.asarray(desired_goal, np.float64)
        if self.reward_type == "sparse":
            reward = np.where(np.any(achieved != desired, axis=-1), -1.0, 0.0)
        else:
            reward = -np.abs(achieved - desired).sum(axis=-1)
        return float(reward) if np.ndim(reward) == 0 else reward.astype(np.float32)

    def compute_terminated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray | bool:
        done = np.all(np.asarray(achieved_goal) == np.asarray(desired_goal), axis=-1)
        return bool(done) if np.ndim(done) == 0 else done

    def compute_truncated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray | bool:
        shape = np.shape(np.asarray(achieved_goal))[:-1]
        return False if shape == () else np.zeros(shape, dtype=bool)

    # ------------------------------------------------------------------ dynamics
    def _goal_obs(self) -> dict[str, np.ndarray]:
        position = np.array(self.position, dtype=np.float32)
        return {
            "observation": position,
            "achieved_goal": position.copy(),
            "desired_goal": np.array(self.goal, np.float32),
        }

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict]:
        options = check_options(options, ("goal",))
        if "goal" in options:
            super().reset(seed=seed, options=options)  # validates the cell
        else:
            gym.Env.reset(self, seed=seed)
            if self.fixed_goal is None:
                cells = (
                    self.free_cells
                    if self.start is None
                    else self.free_cells[np.any(self.free_cells != self.start, axis=1)]
                )
                self.goal = tuple(int(v) for v in cells[self.np_random.integers(len(cells))])
            else:
                self.goal = self.fixed_goal
            GridWorldEnv.reset(self, options={"goal": self.goal})
        return self._goal_obs(), self._info()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        _, _, _, _, info = super().step(action)
        obs = self._goal_obs()
        reward = self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
        terminated = self.compute_terminated(obs["achieved_goal"], obs["desired_goal"], info)
        return obs, reward, terminated, False, info


class GoalFourRoomsEnv(GoalGridWorldEnv):
    """
    ## Description

    :class:`GoalGridWorldEnv` on the four-rooms layout (Sutton, Precup & Singh 1999): a random
    start and a random goal in any room every episode, so that far goals lie in other rooms; the
    hierarchical and goal-conditioned agents' test bed. Spaces, rewards and arguments are those of
    ``AdvRL/GoalGridWorld-v0`` (without ``size``, ``walls`` and ``layout``).

    ## Version History

    * v0: initial version.
    """

    @reject_unknown_kwargs
    def __init__(
        self,
        render_mode: str | None = None,
        start: Sequence[int] | None = None,
        goal: Sequence[int] | None = None,
        slip: float = 0.0,
        reward_type: str = "sparse",
        cell_px: int = 8,
    ) -> None:
        super().__init__(
            render_mode=render_mode,
            start=start,
            goal=goal,
            layout=FOUR_ROOMS_LAYOUT,
            slip=slip,
            reward_type=reward_type,
            cell_px=cell_px,
        )
        self.start = None if start is None else self._check_free_cell("start", start)
