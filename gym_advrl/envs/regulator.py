"""A stochastic nonlinear regulation task with a known reward, for model-based control."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_advrl.envs._snapshot import SnapshotMixin
from gym_advrl.utils.canvas import Canvas
from gym_advrl.utils.rendering import RenderMixin
from gym_advrl.utils.validation import Interval, as_batch, box_action, check_options, reject_unknown_kwargs

#: Valid ``process_noise``: beyond 10 every episode terminates at once, and the state (whose
#: ``s0 s2`` coupling compounds the noise) would overflow over long runs without reset.
PROCESS_NOISE_RANGE = Interval(0.0, 10.0)
#: Steps of the trajectory kept for rendering (memory does not grow with the episode).
TRAIL_LENGTH = 50


class NonlinearRegulatorEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    Drive a coupled, noisy, four-dimensional nonlinear system to the origin. With action
    ``a = (a0, a1)`` and ``s = (s0, s1, s2, s3)`` the next state is

    | component | update                                        |
    |-----------|-----------------------------------------------|
    | ``s0'``   | ``s0 + 0.1 a0 + 0.05 sin(s1)``                |
    | ``s1'``   | ``s1 + 0.1 a1 + 0.02 s0 s2``                  |
    | ``s2'``   | ``0.9 s2 + 0.1 tanh(a0 + a1)``                |
    | ``s3'``   | ``0.95 s3 + 0.01 N(0, 1)`` (uncontrollable)   |

    and every component then receives independent ``N(0, process_noise^2)`` noise
    (``process_noise = 0.02``). ``s3`` cannot be controlled: it is a drifting nuisance state.
    ``reward_fn`` and ``termination_fn`` are batched numpy versions of the reward and termination.

    ## Action Space

    ``Box(-1, 1, (2,), float32)``. Finite actions outside the box are clipped; NaN or inf raise
    ``ValueError``.

    ## Observation Space

    ``Box(-inf, inf, (4,), float32)``: the state ``s`` itself.

    ## Rewards

    ``-sum(s'^2) - 0.01 sum(a^2)`` with ``s'`` the state after the step and ``a`` the clipped action.

    ## Starting State

    Each component uniform in ``[-1, 1]``.

    ## Episode End

    Terminated when the Euclidean norm of ``s'`` exceeds ``3``; truncated after 200 steps when made
    with ``gym.make("AdvRL/NonlinearRegulator-v0")``.

    ## Arguments

    | Argument        | Default | Valid range | Meaning                                   |
    |-----------------|---------|-------------|-------------------------------------------|
    | `process_noise` | 0.02    | [0, 10]     | standard deviation of the additive noise  |
    | `render_mode`   | None    |             | `"rgb_array"` or `"human"` (pygame)      |

    Values outside the range (and NaN, inf, unknown arguments) raise ``ValueError`` naming the
    argument. ``reset`` takes no options (any given raise ``ValueError``).
    ``get_state()`` / ``set_state(state)`` snapshot and restore a running episode exactly, see
    :mod:`gym_advrl.envs._snapshot`.

    ## Version History

    * v0: initial version. Later within v0: ``process_noise`` bounded, reset options checked,
      snapshots.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 20}
    STATE_LIMIT = 3.0
    _snapshot_attrs = ("state", "_trail")

    @reject_unknown_kwargs
    def __init__(self, render_mode: str | None = None, process_noise: float = 0.02) -> None:
        self._init_render(render_mode)
        self.process_noise = PROCESS_NOISE_RANGE.check("process_noise", process_noise)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
        self.state: np.ndarray | None = None
        self._trail: deque[np.ndarray] = deque(maxlen=TRAIL_LENGTH)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.state is None:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        a = box_action(action, self.action_space)
        s = self.state
        noise = self.np_random.normal(size=5)
        next_state = np.array(
            [
                s[0] + 0.1 * a[0] + 0.05 * np.sin(s[1]),
                s[1] + 0.1 * a[1] + 0.02 * s[0] * s[2],
                0.9 * s[2] + 0.1 * np.tanh(a[0] + a[1]),
                0.95 * s[3] + 0.01 * noise[4],
            ]
        )
        next_state += self.process_noise * noise[:4]
        self.state = next_state
        self._trail.append(next_state[:2].copy())
        reward = -float(np.sum(next_state**2)) - 0.01 * float(np.sum(a**2))
        terminated = bool(np.linalg.norm(next_state) > self.STATE_LIMIT)
        self._render_human_step()
        return next_state.astype(np.float32), reward, terminated, False, {}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        check_options(options, ())
        self.state = self.np_random.uniform(-1.0, 1.0, size=4)
        self._trail = deque([self.state[:2].copy()], maxlen=TRAIL_LENGTH)
        self._render_human_step()
        return self.state.astype(np.float32), {}

    # ------------------------------------------------------------------ planning interface
    def reward_fn(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Batched reward from ``action (..., 2)`` and ``next_obs (..., 4)``; shape ``(...)``."""
        action = np.clip(as_batch("action", action, 2), -1.0, 1.0)
        next_obs = as_batch("next_obs", next_obs, 4)
        return -np.sum(next_obs**2, axis=-1) - 0.01 * np.sum(action**2, axis=-1)

    def termination_fn(self, next_obs: np.ndarray) -> np.ndarray:
        """Batched termination: ``||next_obs|| > 3``; shape ``(...)``."""
        next_obs = as_batch("next_obs", next_obs, 4)
        return np.linalg.norm(next_obs, axis=-1) > self.STATE_LIMIT

    # ------------------------------------------------------------------ rendering
    def _render_ready(self) -> bool:
        return self.state is not None

    def _draw(self) -> np.ndarray:
        """The (s0, s1) plane: the limit circle, the trajectory so far and the current state."""
        canvas = Canvas(400, 400, (-3.2, 3.2), (-3.2, 3.2))
        canvas.fill_circle(0.0, 0.0, self.STATE_LIMIT, (235, 235, 245))
        canvas.fill_circle(0.0, 0.0, 0.06, (0, 150, 0))
        trail = list(self._trail)
        for start, end in zip(trail[:-1], trail[1:], strict=True):
            canvas.draw_line(start[0], start[1], end[0], end[1], 0.03, (150, 150, 200))
        canvas.fill_circle(self.state[0], self.state[1], 0.1, (200, 50, 50))
        return canvas.image
