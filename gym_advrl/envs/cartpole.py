"""Cart-pole balancing with a continuous force and per-episode physics."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_advrl.envs._snapshot import SnapshotMixin
from gym_advrl.utils.canvas import Canvas
from gym_advrl.utils.rendering import RenderMixin, check_frame_size
from gym_advrl.utils.validation import (
    Interval,
    as_batch,
    box_action,
    check_float,
    check_options,
    check_physics,
    episode_physics,
    reject_unknown_kwargs,
)

X_THRESHOLD = 2.4
THETA_THRESHOLD = 12 * 2 * math.pi / 360

#: Valid range of each physical parameter: with these (and ``tau`` in ``(0, 0.1]``) every state
#: of an episode stays finite in float32, whatever the actions, up to the terminating step.
PHYSICS_RANGES: dict[str, Interval] = {
    "gravity": Interval(0.0, 1e3, low_open=True),
    "masscart": Interval(1e-3, 1e3),
    "masspole": Interval(1e-3, 1e3),
    "length": Interval(1e-3, 1e3),
    "force_mag": Interval(0.0, 1e3, low_open=True),
}
TAU_RANGE = Interval(0.0, 0.1, low_open=True)
#: Bound on ``|low|`` and ``|high|`` of ``reset(options=...)``: start inside the non-terminal region.
START_BOUND = 0.2


# The dynamics as functions of numbers or arrays: the single env calls them with one instance's
# numbers, the vector env (gym_advrl.envs.vector.classic) with arrays over instances; the same
# operations in the same order give bit-identical results.
def cartpole_masses(masscart: Any, masspole: Any, length: Any) -> tuple[Any, Any]:
    """``(total_mass, polemass_length)``: ``masspole + masscart`` and ``masspole * length``."""
    return masspole + masscart, masspole * length


def cartpole_accelerations(
    force: Any,
    theta_dot: Any,
    costheta: Any,
    sintheta: Any,
    gravity: Any,
    length: Any,
    masspole: Any,
    total_mass: Any,
    polemass_length: Any,
) -> tuple[Any, Any]:
    """``(xacc, thetaacc)``: Gymnasium CartPole-v1's equations (Florian 2007, corrected)."""
    temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (4.0 / 3.0 - masspole * costheta**2 / total_mass)
    )
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    return xacc, thetaacc


class ContinuousCartPoleEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    The cart-pole of Barto, Sutton & Anderson (1983) with Gymnasium ``CartPole-v1``'s physics
    (Euler integration), but with a continuous force: the action in ``[-1, 1]`` is multiplied by
    ``force_mag``, so actions ``+1``/``-1`` reproduce ``CartPole-v1``'s pushes right/left exactly.
    The physical parameters are constructor arguments and can be changed for a single episode
    with ``reset(options={"physics": {...}})``.

    ``reward_fn`` and ``termination_fn`` are batched numpy versions of the reward and of the
    termination test, for planners.

    ## Action Space

    ``Box(-1, 1, (1,), float32)``: the force on the cart as a fraction of ``force_mag``.
    Finite actions outside the box are clipped; NaN or inf raise ``ValueError``.

    ## Observation Space

    | Num | Observation           | Min                 | Max               |
    |-----|-----------------------|---------------------|-------------------|
    | 0   | cart position         | -4.8                | 4.8               |
    | 1   | cart velocity         | -inf                | inf               |
    | 2   | pole angle (rad)      | ~ -0.419 (-24 deg)  | ~ 0.419 (24 deg)  |
    | 3   | pole angular velocity | -inf                | inf               |

    The bounds of position and angle are twice the termination thresholds, as in ``CartPole-v1``.
    With extreme physics one step can jump past them: the terminating observation's position and
    angle are then clipped to the bounds (termination itself is decided on the true state).

    ## Rewards

    ``+1`` for every step taken, including the terminating one (as in ``CartPole-v1``).

    ## Starting State

    All four state variables uniform in ``[low, high]``, by default ``[-0.05, 0.05]``;
    ``reset(options={"low": ..., "high": ...})`` changes them for one episode, within
    ``[-0.2, 0.2]`` (inside the termination thresholds, so the first observation is valid).

    ## Episode End

    Terminated when ``|x| > 2.4`` or ``|theta| > 12 deg``; truncated after 500 steps when made with
    ``gym.make("AdvRL/ContinuousCartPole-v0")``. As in ``CartPole-v1``, stepping on after
    termination without ``reset`` logs a warning and returns reward 0; here the state also stays
    frozen at the terminal state (explicit Euler integration of a falling pole can otherwise
    grow without bound).

    ## Arguments

    | Argument      | Default | Valid range   | Meaning                                     |
    |---------------|---------|---------------|---------------------------------------------|
    | `gravity`     | 9.8     | (0, 1000]     | gravitational acceleration                  |
    | `masscart`    | 1.0     | [0.001, 1000] | cart mass                                   |
    | `masspole`    | 0.1     | [0.001, 1000] | pole mass                                   |
    | `length`      | 0.5     | [0.001, 1000] | half the pole's length                      |
    | `force_mag`   | 10.0    | (0, 1000]     | force for action 1.0                        |
    | `tau`         | 0.02    | (0, 0.1]      | seconds between state updates               |
    | `render_mode` | None    |               | `"rgb_array"` (numpy) or `"human"` (pygame) |
    | `width`       | 600     | [1, 4096]     | width of the rendered frames in pixels      |
    | `height`      | 400     | [1, 4096]     | height of the rendered frames in pixels     |

    Values outside their range (and NaN, inf, non-numbers, unknown arguments) raise
    ``ValueError`` naming the argument. Within the ranges every observation of an episode is
    finite, whatever the actions (a ``length`` of ``1e-300`` or a ``gravity`` of ``1e300``
    would overflow in the first steps).

    ``reset(options={"physics": {"masspole": 0.2}})`` overrides any of ``gravity, masscart,
    masspole, length, force_mag`` (same ranges) for that episode only; ``info["physics"]``
    reports the values in force. ``get_state()`` / ``set_state(state)`` snapshot and restore a
    running episode exactly, see :mod:`gym_advrl.envs._snapshot`.

    ``width`` and ``height`` (named as in Gymnasium's MuJoCo environments) set the size of the
    frames drawn by ``render()``; they always show the same part of the world (the track from
    ``-2.4`` to ``2.4``), so any size is a resampling of the default 600x400 picture (another
    aspect ratio stretches it, as resizing would). Small frames are drawn directly at their size,
    which is what makes pixel observations cheap: ``AddRenderObservation(gym.make(
    "AdvRL/ContinuousCartPole-v0", render_mode="rgb_array", width=64, height=64))`` observes
    ``(64, 64, 3)`` uint8 frames. Parts thinner than a pixel (the track, the pole of a 64-pixel
    frame) are drawn one pixel thick so that none disappears from a small frame.

    ## Version History

    * v0: initial version. Later within v0: the valid ranges above (``ValueError`` outside),
      ``low``/``high`` checked, terminal observations clipped into the space, the state frozen
      after termination, snapshots, ``width``/``height`` of the rendered frames (default frames
      unchanged).
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    PHYSICS_KEYS = tuple(PHYSICS_RANGES)
    PHYSICS_RANGES = PHYSICS_RANGES
    _snapshot_attrs = ("state", "last_force", "physics", "total_mass", "polemass_length", "_terminated")

    @reject_unknown_kwargs
    def __init__(
        self,
        render_mode: str | None = None,
        gravity: float = 9.8,
        masscart: float = 1.0,
        masspole: float = 0.1,
        length: float = 0.5,
        force_mag: float = 10.0,
        tau: float = 0.02,
        width: int = 600,
        height: int = 400,
    ) -> None:
        self._init_render(render_mode)
        self.width, self.height = check_frame_size(width, height)
        self.default_physics = check_physics(
            {
                "gravity": gravity,
                "masscart": masscart,
                "masspole": masspole,
                "length": length,
                "force_mag": force_mag,
            },
            PHYSICS_RANGES,
        )
        self.tau = TAU_RANGE.check("tau", tau)
        self._set_physics(self.default_physics)

        high = np.array([X_THRESHOLD * 2, np.inf, THETA_THRESHOLD * 2, np.inf], dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.state: tuple[float, float, float, float] | None = None
        self.last_force = 0.0
        self._terminated = False
        self._obs_low, self._obs_high = self.observation_space.low, self.observation_space.high

    def _set_physics(self, physics: dict[str, float]) -> None:
        self.physics = dict(physics)
        self.total_mass, self.polemass_length = cartpole_masses(
            physics["masscart"], physics["masspole"], physics["length"]
        )

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.state is None:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        p = self.physics
        force = p["force_mag"] * float(box_action(action, self.action_space)[0])
        if self._terminated:
            gym.logger.warn(
                "You are calling step() after the episode terminated; call reset(). The state stays at "
                "the terminal state and the reward is 0."
            )
            return self._obs(), 0.0, True, False, {}
        self.last_force = force
        x, x_dot, theta, theta_dot = self.state
        costheta, sintheta = math.cos(theta), math.sin(theta)

        # Gymnasium CartPole-v1 equations (Florian 2007, corrected), Euler integration.
        xacc, thetaacc = cartpole_accelerations(
            force,
            theta_dot,
            costheta,
            sintheta,
            p["gravity"],
            p["length"],
            p["masspole"],
            self.total_mass,
            self.polemass_length,
        )
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = (x, x_dot, theta, theta_dot)

        terminated = (
            x < -X_THRESHOLD or x > X_THRESHOLD or theta < -THETA_THRESHOLD or theta > THETA_THRESHOLD
        )
        self._terminated = bool(terminated)
        self._render_human_step()
        return self._obs(), 1.0, self._terminated, False, {}

    def _obs(self) -> np.ndarray:
        obs = np.array(self.state, dtype=np.float32)
        if self._terminated:  # only a terminating step can jump past the position/angle bounds
            np.clip(obs, self._obs_low, self._obs_high, out=obs)
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        options = check_options(options, ("physics", "low", "high"))
        self._set_physics(episode_physics(self.default_physics, options, PHYSICS_RANGES))
        low = check_float("low", options.get("low", -0.05), -START_BOUND, START_BOUND)
        high = check_float("high", options.get("high", 0.05), -START_BOUND, START_BOUND)
        if low > high:
            raise ValueError(f"reset options low must be <= high, got low={low}, high={high}")
        self.state = tuple(float(v) for v in self.np_random.uniform(low=low, high=high, size=(4,)))
        self.last_force = 0.0
        self._terminated = False
        self._render_human_step()
        return self._obs(), {"physics": dict(self.physics)}

    # ------------------------------------------------------------------ planning interface
    def reward_fn(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Batched reward: ``+1`` for every transition; shape ``obs.shape[:-1]``."""
        obs = as_batch("obs", obs, 4)
        return np.ones(obs.shape[:-1], dtype=np.float64)

    def termination_fn(self, next_obs: np.ndarray) -> np.ndarray:
        """Batched termination test on ``next_obs (..., 4)``."""
        next_obs = as_batch("next_obs", next_obs, 4)
        return (np.abs(next_obs[..., 0]) > X_THRESHOLD) | (np.abs(next_obs[..., 2]) > THETA_THRESHOLD)

    # ------------------------------------------------------------------ rendering
    def _draw(self) -> np.ndarray:
        world_width = X_THRESHOLD * 2
        # The default 600x400 frame's world box (3.2 units high), whatever the frame's size.
        canvas = Canvas(
            self.width,
            self.height,
            (-world_width / 2, world_width / 2),
            (-1.0, world_width * 400 / 600 - 1.0),
        )
        x, _, theta, _ = self.state
        cart_w, cart_h, track_y = 0.4, 0.24, 0.0
        # Parts thinner than a pixel (only on small frames) are widened and faded, see Canvas.thin.
        track, track_color = canvas.thin(0.01, canvas.pixel_height, (0, 0, 0))
        canvas.fill_rect(
            -world_width / 2, track_y - track / 2, world_width / 2, track_y + track / 2, track_color
        )
        canvas.fill_rect(
            x - cart_w / 2, track_y - cart_h / 2, x + cart_w / 2, track_y + cart_h / 2, (0, 0, 0)
        )
        pole_len = 2 * self.physics["length"]
        axle_y = track_y + cart_h / 4
        canvas.draw_line(
            x,
            axle_y,
            x + pole_len * math.sin(theta),
            axle_y + pole_len * math.cos(theta),
            *canvas.thin(0.08, canvas.pixel, (202, 152, 101)),
        )
        canvas.fill_circle(
            x, axle_y, *canvas.thin(0.04, canvas.pixel / math.sqrt(2), (129, 132, 203), power=2)
        )
        return np.ascontiguousarray(canvas.image)

    def _render_ready(self) -> bool:
        return self.state is not None
