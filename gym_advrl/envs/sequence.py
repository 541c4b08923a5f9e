"""Sequence tasks: cue recall that needs memory, and a cheap value-tracking task."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_advrl.envs._snapshot import SnapshotMixin
from gym_advrl.utils.canvas import grid_image
from gym_advrl.utils.rendering import RenderMixin
from gym_advrl.utils.validation import check_int, check_options, discrete_action, reject_unknown_kwargs

_PALETTE = np.array(
    [
        [228, 26, 28],
        [55, 126, 184],
        [77, 175, 74],
        [152, 78, 163],
        [255, 127, 0],
        [166, 86, 40],
        [247, 129, 191],
        [153, 153, 153],
    ],
    dtype=np.uint8,
)


class SequenceMemoryEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    A cue-recall POMDP that cannot be solved without memory. At ``t = 0`` one of ``n_symbols``
    cues is shown; then come ``delay`` steps that show nothing (or, with ``distractors=True``, a
    random symbol each); then a query flag is shown and the action taken at that query step is
    judged: the agent must name the cue. Any memoryless policy succeeds with probability exactly
    ``1 / n_symbols``; a recurrent policy can reach 100%.

    ## Action Space

    ``Discrete(n_symbols)``: the symbol named. Only the action at the query step counts. An action
    outside the space raises ``ValueError``.

    ## Observation Space

    ``Box(0, 1, (n_symbols + 2,), float32)``:

    | Index           | Meaning                                                      |
    |-----------------|--------------------------------------------------------------|
    | 0 .. n-1        | one-hot symbol (the cue at t=0, a distractor, or all zeros) |
    | n               | cue flag: 1 at t=0 only                                      |
    | n + 1           | query flag: 1 at the query step only                         |

    ## Rewards

    ``+1`` if the action at the query step equals the cue, ``-1`` otherwise; ``0`` before.

    ## Starting State

    The cue is drawn uniformly from the ``n_symbols`` symbols.

    ## Episode End

    Terminated after the query step, i.e. after ``delay + 2`` steps. Registered with a 1,000-step
    time limit, so ``delay`` may be at most 998.

    ``info`` carries ``cue``, ``t`` and, at the query step, ``success``.

    ## Arguments

    | Argument      | Default | Meaning                                            |
    |---------------|---------|----------------------------------------------------|
    | `n_symbols`   | 4       | number of cues, 2..8                               |
    | `delay`       | 5       | steps between cue and query, 0..998                |
    | `distractors` | False   | show random symbols during the delay               |
    | `render_mode` | None    | `"rgb_array"`, `"ansi"` or `"human"` (pygame)     |

    Other values (and unknown arguments) raise ``ValueError`` naming the argument.
    ``get_state()`` / ``set_state(state)`` snapshot and restore a running episode exactly.

    ## Version History

    * v0: initial version. Later within v0: unknown arguments rejected, snapshots.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4}
    _snapshot_attrs = ("cue", "t", "_shown", "_last_action")

    @reject_unknown_kwargs
    def __init__(
        self, render_mode: str | None = None, n_symbols: int = 4, delay: int = 5, distractors: bool = False
    ) -> None:
        self._init_render(render_mode)
        self.n_symbols = check_int("n_symbols", n_symbols, 2, len(_PALETTE))
        self.delay = check_int("delay", delay, 0, 998)
        if not isinstance(distractors, bool | np.bool_):
            raise ValueError(f"distractors must be True or False, got {distractors!r}")
        self.distractors = bool(distractors)
        self.action_space = spaces.Discrete(self.n_symbols)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.n_symbols + 2,), dtype=np.float32)
        self.cue: int | None = None
        self.t = 0
        self._shown: int | None = None
        self._last_action: int | None = None

    @property
    def query_step(self) -> int:
        return self.delay + 1

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n_symbols + 2, dtype=np.float32)
        if self._shown is not None:
            obs[self._shown] = 1.0
        if self.t == 0:
            obs[self.n_symbols] = 1.0
        if self.t == self.query_step:
            obs[self.n_symbols + 1] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        check_options(options, ())
        self.cue = int(self.np_random.integers(self.n_symbols))
        self.t = 0
        self._shown = self.cue
        self._last_action = None
        self._render_human_step()
        return self._obs(), {"cue": self.cue, "t": 0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.cue is None:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        action = discrete_action(action, self.action_space)
        self._last_action = action
        info: dict[str, Any] = {"cue": self.cue}
        reward, terminated = 0.0, False
        if self.t >= self.query_step:
            success = action == self.cue
            reward, terminated = (1.0 if success else -1.0), True
            info["success"] = success
        else:
            self.t += 1
            if self.t == self.query_step or not self.distractors:
                self._shown = None
            else:
                self._shown = int(self.np_random.integers(self.n_symbols))
        info["t"] = self.t
        self._render_human_step()
        return self._obs(), reward, terminated, False, info

    def _render_ready(self) -> bool:
        return self.cue is not None

    def _ansi(self) -> str:
        shown = "-" if self._shown is None else str(self._shown)
        phase = "cue" if self.t == 0 else ("QUERY" if self.t == self.query_step else "delay")
        return f"t={self.t:3d} {phase:5s} symbol={shown} last_action={self._last_action}\n"

    def _draw(self) -> np.ndarray:
        """One cell per step: the cue's colour first, the query cell outlined in black."""
        colors = np.full((1, self.query_step + 1, 3), 240, dtype=np.uint8)
        colors[0, 0] = _PALETTE[self.cue]
        colors[0, self.query_step] = 0 if self._last_action is None else _PALETTE[self._last_action]
        colors[0, min(self.t, self.query_step)] //= 2
        return grid_image(colors, 32)


class SequenceTrackingEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    Keep a value near ``0.5``. The value starts uniform in ``[0, 1]``; each action moves it by
    ``-0.1`` (action 0) or ``+0.1`` (action 1), clipped to ``[0, 1]``. The reward depends on the
    mean of the last three values, so the task rewards smooth control and is a cheap test bed
    for recurrent world models (RSSM).

    ## Action Space

    ``Discrete(2)``: 0 moves the value down, 1 moves it up. Other actions raise ``ValueError``.

    ## Observation Space

    ``Box((0, 0, -1, 0), (1, 1, 1, 1), (4,), float32)``:

    | Index | Meaning                                                         |
    |-------|-----------------------------------------------------------------|
    | 0     | current value                                                   |
    | 1     | running mean of the last (up to) three values                   |
    | 2     | last move: -1 (down), +1 (up), 0 before the first step          |
    | 3     | time fraction ``min(t / episode_length, 1)``                    |

    ## Rewards

    ``1 - 2 |mean(last three values) - 0.5|``, in ``[0, 1]``.

    ## Starting State

    Value uniform in ``[0, 1]``; the value history holds only that value.

    ## Episode End

    Never terminated; truncated after ``episode_length`` steps (50, also the registered limit).

    ## Arguments

    | Argument         | Default | Meaning                                  |
    |------------------|---------|------------------------------------------|
    | `episode_length` | 50      | steps per episode, >= 2                  |
    | `render_mode`    | None    | `"rgb_array"`, `"ansi"` or `"human"`    |

    ``episode_length=1`` is rejected: Gymnasium's env checker refuses an environment that
    truncates after one step. Memory does not grow with ``episode_length``: the env keeps the
    last three values, and rendered frames show the last 250 steps at most.
    ``get_state()`` / ``set_state(state)`` snapshot and restore a running episode exactly.

    ## Version History

    * v0: initial version (the course notebook's version with its reward and observation fixed).
      Later within v0: ``episode_length >= 2``, the time fraction capped at 1 when stepping past
      truncation, frames and memory bounded, snapshots.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 10}
    STEP_SIZE = 0.1
    WINDOW = 3
    #: Steps shown in a rendered frame (the most recent ones).
    RENDER_STEPS = 250
    _snapshot_attrs = ("history", "_drawn", "t", "last_move")

    @reject_unknown_kwargs
    def __init__(self, render_mode: str | None = None, episode_length: int = 50) -> None:
        self._init_render(render_mode)
        self.episode_length = check_int("episode_length", episode_length, 2)
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(
            np.array([0.0, 0.0, -1.0, 0.0], dtype=np.float32), np.ones(4, dtype=np.float32), dtype=np.float32
        )
        self._history: deque[float] = deque(maxlen=self.WINDOW)
        self._drawn: deque[float] = deque(maxlen=self.RENDER_STEPS + 1)
        self.t = 0
        self.last_move = 0.0

    @property
    def history(self) -> deque[float]:
        """The last (up to) three values, the current one last (what the reward averages)."""
        return self._history

    @history.setter
    def history(self, values: Any) -> None:
        # Setting the history (tests, custom starts) keeps only what the reward can use.
        self._history = deque((float(v) for v in values), maxlen=self.WINDOW)

    def _running_mean(self) -> float:
        return sum(self.history) / len(self.history)

    def _obs(self) -> np.ndarray:
        fraction = min(self.t / self.episode_length, 1.0)
        return np.array([self.history[-1], self._running_mean(), self.last_move, fraction], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        check_options(options, ())
        value = float(self.np_random.uniform(0.0, 1.0))
        self.history = [value]
        self._drawn = deque([value], maxlen=self.RENDER_STEPS + 1)
        self.t = 0
        self.last_move = 0.0
        self._render_human_step()
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.history:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        action = discrete_action(action, self.action_space)
        self.last_move = 1.0 if action == 1 else -1.0
        value = min(max(self.history[-1] + self.STEP_SIZE * self.last_move, 0.0), 1.0)
        self.history.append(value)
        self._drawn.append(value)
        self.t += 1
        reward = 1.0 - 2.0 * abs(self._running_mean() - 0.5)
        truncated = self.t >= self.episode_length
        self._render_human_step()
        return self._obs(), reward, False, truncated, {}

    def _render_ready(self) -> bool:
        return bool(self.history)

    def _ansi(self) -> str:
        bar = [" "] * 21
        bar[10] = "|"
        bar[round(self.history[-1] * 20)] = "o"
        return (
            f"t={self.t:3d} [{''.join(bar)}] value={self.history[-1]:.2f} mean3={self._running_mean():.2f}\n"
        )

    def _draw(self) -> np.ndarray:
        """The value history as a bar chart, one column per step, the 0.5 target as a line."""
        height, width = 100, min(self.episode_length, self.RENDER_STEPS) + 1
        colors = np.full((height, width, 3), 255, dtype=np.uint8)
        levels = (np.asarray(self._drawn) * (height - 1)).round().astype(int)
        rows = np.arange(height)[::-1, None]
        bars = rows <= levels[None, :]
        colors[:, : len(levels)][bars] = (55, 126, 184)
        colors[height // 2, :] = (228, 26, 28)
        return grid_image(colors, 4)
