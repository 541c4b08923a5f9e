"""Grid worlds: a configurable GridWorld core and the four-rooms domain built on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_advrl.envs._snapshot import SnapshotMixin
from gym_advrl.utils.canvas import grid_image
from gym_advrl.utils.rendering import RenderMixin
from gym_advrl.utils.validation import (
    cell_pair,
    check_choice,
    check_float,
    check_int,
    check_options,
    discrete_action,
    reject_unknown_kwargs,
)

#: Row/column offsets of the actions 0 up, 1 right, 2 down, 3 left.
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)
ACTION_NAMES = ("up", "right", "down", "left")
OBS_MODES = ("coords", "index", "rgb")

_FREE, _WALL, _GOAL, _AGENT = (255, 255, 255), (40, 40, 40), (60, 180, 75), (230, 25, 75)

# Sutton, Precup & Singh (1999) four-rooms layout, as used in the option-critic experiments.
FOUR_ROOMS_LAYOUT = """\
#############
#     #     #
#     #     #
#           #
#     #     #
#     #     #
## ####     #
#     ### ###
#     #     #
#     #     #
#           #
#     #     #
#############"""

#: Sutton & Barto's Dyna maze (Figure 8.2): start S, goal G, 14 steps on a shortest path
#: (optimal return 8.7 with GridWorld's default rewards). Use as ``GridWorldEnv(layout=DYNA_MAZE)``.
DYNA_MAZE = """\
.......#G
..#....#.
S.#....#.
..#......
.....#...
........."""

#: Default four-rooms goal: the hallway between the two east rooms.
FOUR_ROOMS_GOAL = (7, 9)

#: Largest number of rows or columns.
MAX_SIZE = 1000
#: Largest ``cell_px``, and largest side in pixels of an ``"rgb"`` observation.
MAX_CELL_PX = 64
MAX_IMAGE_SIDE = 4096
#: Rendered frames (``render_mode="rgb_array"``) use up to 32 pixels per cell and at most about
#: this many pixels per side, so that a large grid does not make a huge frame.
RENDER_SIDE = 1024
#: Bound on the magnitude of the rewards, so that returns stay finite.
MAX_REWARD = 1e6


def parse_layout(layout: str) -> tuple[np.ndarray, tuple[int, int] | None, tuple[int, int] | None]:
    """Parse an ASCII layout: ``#`` wall, ``.`` or space free, ``S`` start, ``G`` goal.

    Returns ``(walls bool (rows, cols), start or None, goal or None)``.
    """
    if not isinstance(layout, str):
        raise ValueError(
            f"layout must be a string of rows made of '#', '.', ' ', 'S', 'G', got {type(layout).__name__}"
        )
    lines = [line for line in layout.splitlines() if line.strip("\n") != ""]
    if not lines:
        raise ValueError("layout must contain at least one row")
    width = max(len(line) for line in lines)
    if len(lines) > MAX_SIZE or width > MAX_SIZE:
        raise ValueError(f"layout may have at most {MAX_SIZE} rows and columns, got {len(lines)} x {width}")
    grid = np.array([list(line.ljust(width)) for line in lines])
    bad = sorted(set(np.unique(grid).tolist()) - set("#. SG"))
    if bad:
        raise ValueError(f"layout may only contain '#', '.', ' ', 'S', 'G'; found {bad}")
    markers = {}
    for mark in "SG":
        cells = np.argwhere(grid == mark)
        if len(cells) > 1:
            raise ValueError(f"layout may contain at most one '{mark}', found {len(cells)}")
        markers[mark] = tuple(int(v) for v in cells[0]) if len(cells) else None
    return grid == "#", markers["S"], markers["G"]


class GridWorldEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    A deterministic or slippery grid world. The agent moves between the cells of a ``rows x
    cols`` grid towards a goal cell; moves into walls or off the grid leave it in place. With
    probability ``slip`` the chosen move is replaced by one of the three other moves, uniformly.
    The goal can be moved between episodes with ``reset(options={"goal": (row, col)})`` (it stays
    there until moved again), which makes the environment a test bed for transfer learning.

    Coordinates are ``(row, col)`` with ``(0, 0)`` the top-left cell.

    ## Action Space

    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left. Other actions raise ``ValueError``.

    ## Observation Space

    | `obs_mode` | Space                                         | Content                          |
    |------------|-----------------------------------------------|----------------------------------|
    | `"coords"` | ``Box(0, (rows-1, cols-1), (2,), float32)``    | agent ``(row, col)``             |
    | `"index"`  | ``Discrete(rows * cols)``                      | ``row * cols + col`` (tabular)   |
    | `"rgb"`    | ``Box(0, 255, (rows*k, cols*k, 3), uint8)``    | top view, ``k = cell_px``        |

    In ``"rgb"`` observations walls are dark, free cells white, the goal green and the agent red.

    ## Rewards

    ``step_reward`` (-0.1) for every step that does not reach the goal; ``goal_reward`` (+10) for
    the step that reaches it. On the default 5x5 grid the optimal return is
    ``7 * -0.1 + 10 = 9.3`` (8 moves).

    ## Starting State

    The agent starts at ``start`` (default ``(0, 0)``); ``start=None`` draws a free, non-goal
    cell uniformly at every reset.

    ## Episode End

    Terminated on reaching the goal; truncated after 100 steps when made with
    ``gym.make("AdvRL/GridWorld-v0")``.

    ``info`` carries ``position`` and ``goal`` (both ``(row, col)``).

    ## Arguments

    | Argument      | Default           | Meaning                                                       |
    |---------------|-------------------|---------------------------------------------------------------|
    | `size`        | 5                 | an int for a square grid or ``(rows, cols)``; each in 2..1000 |
    | `start`       | ``(0, 0)``        | start cell, or ``None`` for a uniformly random free cell      |
    | `goal`        | bottom-right cell | goal cell                                                     |
    | `walls`       | ``()``            | cells that cannot be entered                                  |
    | `slip`        | 0.0               | probability in [0, 1] that a move goes another way            |
    | `layout`      | None              | ASCII map (``#`` wall, ``.``/space free, ``S``, ``G``), at most 1000 x 1000; sets size and walls |
    | `obs_mode`    | ``"coords"``      | ``"coords"``, ``"index"`` or ``"rgb"``                        |
    | `cell_px`     | 8                 | pixels per cell in ``"rgb"`` observations, 1..64, and at most 4096 pixels per image side |
    | `step_reward` | -0.1              | reward of a step that does not reach the goal, in [-1e6, 1e6] |
    | `goal_reward` | 10.0              | reward of the step that reaches the goal, in [-1e6, 1e6]      |
    | `render_mode` | None              | ``"rgb_array"``, ``"ansi"`` or ``"human"`` (pygame)           |

    Cells are ``(row, col)`` pairs of integers (integer-valued floats are accepted) on the grid.
    Invalid values (cells off the grid or on a wall, NaN, inf, unknown arguments) raise
    ``ValueError`` naming the argument. With ``start=None`` at least one free cell besides the
    goal must exist. Rendered frames use up to 32 pixels per cell and about 1024 pixels per side
    at most, so memory does not grow with the grid beyond that. ``get_state()`` /
    ``set_state(state)`` snapshot and restore a running episode exactly (the goal included).

    ## Version History

    * v0: initial version. Later within v0: cells checked without ``OverflowError``, sizes,
      ``cell_px`` and rewards bounded, rendered frames bounded, snapshots.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 8}
    _snapshot_attrs = ("position", "goal")

    @reject_unknown_kwargs
    def __init__(
        self,
        render_mode: str | None = None,
        size: int | Sequence[int] = 5,
        start: Sequence[int] | None = (0, 0),
        goal: Sequence[int] | None = None,
        walls: Sequence[Sequence[int]] = (),
        slip: float = 0.0,
        layout: str | None = None,
        obs_mode: str = "coords",
        cell_px: int = 8,
        step_reward: float = -0.1,
        goal_reward: float = 10.0,
    ) -> None:
        self._init_render(render_mode)
        self.obs_mode = check_choice("obs_mode", obs_mode, OBS_MODES)
        self.slip = check_float("slip", slip, 0.0, 1.0)
        self.cell_px = check_int("cell_px", cell_px, 1, MAX_CELL_PX)
        self.step_reward = check_float("step_reward", step_reward, -MAX_REWARD, MAX_REWARD)
        self.goal_reward = check_float("goal_reward", goal_reward, -MAX_REWARD, MAX_REWARD)

        layout_start = layout_goal = None
        if layout is not None:
            self.walls, layout_start, layout_goal = parse_layout(layout)
            self.rows, self.cols = self.walls.shape
        else:
            self.rows, self.cols = self._check_size(size)
            self.walls = np.zeros((self.rows, self.cols), dtype=bool)
            for cell in self._check_cells("walls", walls):
                self.walls[cell] = True
        if layout_start is not None and isinstance(start, tuple) and start == (0, 0):
            start = layout_start
        if goal is None:
            goal = layout_goal if layout_goal is not None else (self.rows - 1, self.cols - 1)
        self.goal = self._check_free_cell("goal", goal)
        self.start = None if start is None else self._check_free_cell("start", start)
        if self.start == self.goal:
            raise ValueError(f"start and goal must differ, both are {self.goal}")
        self.free_cells = np.argwhere(~self.walls)
        if self.start is None and len(self.free_cells) < 2:
            raise ValueError(
                f"start=None draws a free cell other than the goal, but walls (or layout) leave only the goal {self.goal} free"
            )
        if self.obs_mode == "rgb" and max(self.rows, self.cols) * self.cell_px > MAX_IMAGE_SIDE:
            raise ValueError(
                f"cell_px={self.cell_px} makes {self.rows * self.cell_px} x {self.cols * self.cell_px} rgb observations; "
                f"rows * cell_px and cols * cell_px must be at most {MAX_IMAGE_SIDE}"
            )
        self._render_px = max(1, min(32, RENDER_SIDE // max(self.rows, self.cols)))

        if self.obs_mode == "coords":
            high = np.array([self.rows - 1, self.cols - 1], dtype=np.float32)
            self.observation_space = spaces.Box(np.zeros(2, dtype=np.float32), high, dtype=np.float32)
        elif self.obs_mode == "index":
            self.observation_space = spaces.Discrete(self.rows * self.cols)
        else:
            shape = (self.rows * self.cell_px, self.cols * self.cell_px, 3)
            self.observation_space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(4)
        self.position: tuple[int, int] | None = None

    # ------------------------------------------------------------------ argument checks
    @staticmethod
    def _check_size(size: Any) -> tuple[int, int]:
        if isinstance(size, np.ndarray):
            size = size.tolist()
        if isinstance(size, int | np.integer) and not isinstance(size, bool):
            size = (size, size)
        if isinstance(size, str) or not isinstance(size, Sequence | np.ndarray) or len(size) != 2:
            raise ValueError(f"size must be an int in 2..{MAX_SIZE} or a (rows, cols) pair, got {size!r}")
        return (
            check_int("size[0] (rows)", size[0], 2, MAX_SIZE),
            check_int("size[1] (cols)", size[1], 2, MAX_SIZE),
        )

    def _check_cell(self, name: str, cell: Any) -> tuple[int, int]:
        row, col = cell_pair(name, cell)
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise ValueError(
                f"{name} must be a (row, col) cell with 0 <= row < {self.rows} and 0 <= col < {self.cols}, got {cell!r}"
            )
        return row, col

    def _check_cells(self, name: str, cells: Any) -> list[tuple[int, int]]:
        if isinstance(cells, str) or not isinstance(cells, Sequence | np.ndarray):
            raise ValueError(f"{name} must be a sequence of (row, col) cells, got {cells!r}")
        return [self._check_cell(f"{name}[{i}]", cell) for i, cell in enumerate(cells)]

    def _check_free_cell(self, name: str, cell: Any) -> tuple[int, int]:
        cell = self._check_cell(name, cell)
        if self.walls[cell]:
            raise ValueError(f"{name} {cell} is a wall (see walls or layout); it must be a free cell")
        return cell

    # ------------------------------------------------------------------ dynamics
    def _obs(self) -> np.ndarray | int:
        row, col = self.position
        if self.obs_mode == "coords":
            return np.array([row, col], dtype=np.float32)
        if self.obs_mode == "index":
            return row * self.cols + col
        return self._grid_image(self.cell_px)

    def _info(self) -> dict[str, Any]:
        return {"position": self.position, "goal": self.goal}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray | int, dict]:
        super().reset(seed=seed)
        options = check_options(options, ("goal",))
        if "goal" in options:
            goal = self._check_free_cell("goal", options["goal"])
            if self.start == goal:
                raise ValueError(f"goal {goal} must differ from the start cell")
            self.goal = goal
        if self.start is None:
            candidates = self.free_cells[np.any(self.free_cells != self.goal, axis=1)]
            self.position = tuple(int(v) for v in candidates[self.np_random.integers(len(candidates))])
        else:
            self.position = self.start
        self._render_human_step()
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray | int, float, bool, bool, dict]:
        if self.position is None:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        action = discrete_action(action, self.action_space)
        if self.slip > 0.0 and self.np_random.random() < self.slip:
            # Slip: one of the three other directions, uniformly.
            action = (action + 1 + int(self.np_random.integers(3))) % 4
        row, col = self.position[0] + MOVES[action, 0], self.position[1] + MOVES[action, 1]
        if 0 <= row < self.rows and 0 <= col < self.cols and not self.walls[row, col]:
            self.position = (int(row), int(col))
        terminated = self.position == self.goal
        reward = self.goal_reward if terminated else self.step_reward
        self._render_human_step()
        return self._obs(), reward, terminated, False, self._info()

    # ------------------------------------------------------------------ rendering
    def _grid_image(self, cell_px: int) -> np.ndarray:
        colors = np.empty((self.rows, self.cols, 3), dtype=np.uint8)
        colors[:] = _FREE
        colors[self.walls] = _WALL
        colors[self.goal] = _GOAL
        colors[self.position] = _AGENT
        return grid_image(colors, cell_px)

    def _render_ready(self) -> bool:
        return self.position is not None

    def _draw(self) -> np.ndarray:
        return self._grid_image(self._render_px)

    def _ansi(self) -> str:
        chars = np.where(self.walls, "#", ".")
        chars[self.goal] = "G"
        chars[self.position] = "A"
        return "\n".join("".join(row) for row in chars) + "\n"


class FourRoomsEnv(GridWorldEnv):
    """
    ## Description

    The four-rooms domain of Sutton, Precup & Singh (1999), the benchmark of the option-critic
    paper (Bacon, Harb & Precup, 2017): a 13x13 grid (outer walls included) with 104 free cells
    in four rooms joined by four hallways. Moves are stochastic: the chosen move happens with
    probability 2/3, otherwise one of the three other moves, uniformly. Built on
    :class:`GridWorldEnv`; the goal can be moved with ``reset(options={"goal": (row, col)})``.

    ## Action Space

    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left.

    ## Observation Space

    As :class:`GridWorldEnv`, with ``obs_mode="index"`` by default: ``Discrete(169)``, the cell
    ``row * 13 + col``.

    ## Rewards

    ``1`` on reaching the goal, ``0`` otherwise.

    ## Starting State

    A free non-goal cell, uniformly at random.

    ## Episode End

    Terminated on reaching the goal; truncated after 500 steps when made with
    ``gym.make("AdvRL/FourRooms-v0")``.

    ## Arguments

    | Argument      | Default     | Meaning                                                   |
    |---------------|-------------|-----------------------------------------------------------|
    | `goal`        | ``(7, 9)``  | goal cell (a free cell); the default is the east hallway  |
    | `slip`        | 1/3         | probability in [0, 1] that a move goes another way        |
    | `obs_mode`    | ``"index"`` | ``"coords"``, ``"index"`` or ``"rgb"``                    |
    | `cell_px`     | 8           | pixels per cell in ``"rgb"`` observations, 1..64          |
    | `render_mode` | None        | ``"rgb_array"``, ``"ansi"`` or ``"human"`` (pygame)       |

    Invalid values (and unknown arguments) raise ``ValueError`` naming the argument.
    ``get_state()`` / ``set_state(state)`` snapshot and restore a running episode exactly.

    ## Version History

    * v0: initial version. Later within v0: as :class:`GridWorldEnv` (checks, snapshots).
    """

    @reject_unknown_kwargs
    def __init__(
        self,
        render_mode: str | None = None,
        goal: Sequence[int] = FOUR_ROOMS_GOAL,
        slip: float = 1.0 / 3.0,
        obs_mode: str = "index",
        cell_px: int = 8,
    ) -> None:
        super().__init__(
            render_mode=render_mode,
            layout=FOUR_ROOMS_LAYOUT,
            start=None,
            goal=goal,
            slip=slip,
            obs_mode=obs_mode,
            cell_px=cell_px,
            step_reward=0.0,
            goal_reward=1.0,
        )
