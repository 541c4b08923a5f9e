"""Inverted pendulum swing-up with per-episode physics (domain randomization ready)."""

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

#: Valid range of each physical parameter. The lower bounds keep ``3 / (m l^2)`` and
#: ``3 g / (2 l)`` finite in float32 (the torque term is float32, as in Pendulum-v1), the upper
#: bounds keep every term of the step and of the reward far from overflow; the angular velocity
#: is clipped to ``max_speed``, so observations stay finite however long an episode runs.
PHYSICS_RANGES: dict[str, Interval] = {
    "g": Interval(0.0, 1e3, low_open=True),
    "m": Interval(1e-3, 1e3),
    "l": Interval(1e-3, 1e3),
    "damping": Interval(0.0, 1e3),
    "max_torque": Interval(0.0, 1e3, low_open=True),
}
MAX_SPEED_RANGE = Interval(0.0, 1e3, low_open=True)
DT_RANGE = Interval(0.0, 1.0, low_open=True)


def angle_normalize(x: np.ndarray | float) -> np.ndarray | float:
    """Wrap an angle (or an array of angles) into ``[-pi, pi)``."""
    return ((x + np.pi) % (2 * np.pi)) - np.pi


# The dynamics as functions of numbers or arrays: the single env calls them with one instance's
# numbers, the vector env (gym_advrl.envs.vector.classic) with arrays over instances; the same
# operations in the same order give bit-identical results.
def pendulum_coefficients(g: Any, m: Any, length: Any, damping: Any) -> tuple[Any, Any, Any]:
    """``(3 g / (2 l), 3 / (m l^2), 3 damping / (m l^2))``: the gravity, torque and damping factors."""
    inertia_inv = 3.0 / (m * length**2)
    return 3 * g / (2 * length), inertia_inv, inertia_inv * damping


def pendulum_costs(th: Any, thdot: Any, u: Any) -> Any:
    """The step's cost ``angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2`` (the reward is its negative)."""
    return angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)


def pendulum_velocity(
    th: Any, thdot: Any, u: Any, gravity_term: Any, inertia_inv: Any, damping_term: Any, dt: float
) -> Any:
    """The angular velocity after one Euler step of ``dt``, before clipping to ``max_speed``."""
    return thdot + (gravity_term * np.sin(th) + inertia_inv * u - damping_term * thdot) * dt


class PendulumEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    The inverted pendulum swing-up problem of Gymnasium's ``Pendulum-v1``: a pole attached at one
    end to a fixed pivot starts at a random angle and must be swung up and balanced upright with
    a bounded torque. With default arguments this environment is step-for-step identical to
    ``Pendulum-v1``. The physical parameters are constructor arguments and can be changed for a
    single episode through ``reset(options={"physics": {...}})``, which is what domain
    randomization needs. A viscous ``damping`` term (default 0) is added to the dynamics:

    ``thdot' = thdot + (3 g / (2 l) sin(th) + 3 / (m l^2) (u - damping * thdot)) dt``, then
    ``thdot'`` is clipped to ``[-max_speed, max_speed]`` and ``th' = th + thdot' dt``.

    ``reward_fn`` and ``termination_fn`` are batched numpy versions of the reward and of the
    termination condition (never true) for planners that use the known reward.

    ## Action Space

    ``Box(-max_torque, max_torque, (1,), float32)``: the torque applied at the free end.
    Finite actions outside the box are clipped; NaN or inf raise ``ValueError``. If an episode's
    ``physics`` lowers ``max_torque``, the torque is further clipped to that episode's limit.

    ## Observation Space

    ``Box((-1, -1, -max_speed), (1, 1, max_speed), (3,), float32)``

    | Num | Observation      | Min        | Max       |
    |-----|------------------|------------|-----------|
    | 0   | x = cos(theta)   | -1.0       | 1.0       |
    | 1   | y = sin(theta)   | -1.0       | 1.0       |
    | 2   | angular velocity | -max_speed | max_speed |

    ## Rewards

    ``r = -(theta^2 + 0.1 thdot^2 + 0.001 u^2)`` on the state before the step, with ``theta``
    normalized to ``[-pi, pi)``. The minimum is about ``-16.27`` and the maximum ``0``.

    ## Starting State

    ``theta`` uniform in ``[-x_init, x_init]`` and angular velocity uniform in
    ``[-y_init, y_init]``. By default ``x_init = pi`` and ``y_init = min(1, max_speed)`` (so
    ``[-1, 1]`` as in Pendulum-v1 unless ``max_speed < 1``); ``reset(options={"x_init": ...,
    "y_init": ...})`` changes them for one episode, with ``x_init`` in ``[0, pi]`` and ``y_init``
    in ``[0, max_speed]`` so that the first observation is inside the observation space.

    ## Episode End

    Never terminated; truncated after 200 steps when made with ``gym.make("AdvRL/Pendulum-v0")``.

    ## Arguments

    | Argument      | Default | Valid range   | Meaning                                            |
    |---------------|---------|---------------|----------------------------------------------------|
    | `g`           | 10.0    | (0, 1000]     | gravitational acceleration                         |
    | `m`           | 1.0     | [0.001, 1000] | pole mass                                          |
    | `l`           | 1.0     | [0.001, 1000] | pole length                                        |
    | `damping`     | 0.0     | [0, 1000]     | viscous friction coefficient                       |
    | `max_torque`  | 2.0     | (0, 1000]     | torque limit, sets the action space                |
    | `max_speed`   | 8.0     | (0, 1000]     | angular velocity limit, sets the observation space |
    | `dt`          | 0.05    | (0, 1]        | integration time step                              |
    | `render_mode` | None    |               | `"rgb_array"` (numpy) or `"human"` (needs pygame) |
    | `width`       | 500     | [1, 4096]     | width of the rendered frames in pixels             |
    | `height`      | 500     | [1, 4096]     | height of the rendered frames in pixels            |

    Values outside their range (and NaN, inf, non-numbers, unknown arguments) raise
    ``ValueError`` naming the argument. The ranges keep every term of the dynamics finite (a
    mass of ``1e-39`` would overflow the float32 torque term, a length of ``1e-170`` divide by
    zero), so observations and rewards stay finite for any number of steps.

    ``reset(options={"physics": {"m": 1.3, "l": 0.8}})`` overrides any of ``g, m, l, damping,
    max_torque`` (same ranges) for that episode only; the next reset without ``physics`` returns
    to the constructor values. The physics in force is reported in ``info["physics"]`` by
    ``reset``. ``get_state()`` / ``set_state(state)`` snapshot and restore a running episode
    exactly (random generator included), see :mod:`gym_advrl.envs._snapshot`.

    ``width`` and ``height`` (named as in Gymnasium's MuJoCo environments) set the size of the
    frames drawn by ``render()``; they always show the same square of the world, so any size is a
    resampling of the default 500x500 picture (a non-square size stretches it, as resizing would).
    Small frames are drawn directly at their size, which is what makes pixel observations cheap:
    ``AddRenderObservation(gym.make("AdvRL/Pendulum-v0", render_mode="rgb_array", width=64,
    height=64))`` observes ``(64, 64, 3)`` uint8 frames. Parts thinner than a pixel are drawn one
    pixel thick so that no part disappears from a small frame.

    ## Version History

    * v0: initial version. Later within v0: the valid ranges above (``ValueError`` outside),
      the starting velocity bounded by ``max_speed``, ``x_init``/``y_init`` checked, snapshots,
      ``width``/``height`` of the rendered frames (default frames unchanged).
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 30}

    #: Parameters that ``reset(options={"physics": ...})`` may change.
    PHYSICS_KEYS = tuple(PHYSICS_RANGES)
    PHYSICS_RANGES = PHYSICS_RANGES
    _snapshot_attrs = ("state", "last_u", "physics")

    @reject_unknown_kwargs
    def __init__(
        self,
        render_mode: str | None = None,
        g: float = 10.0,
        m: float = 1.0,
        l: float = 1.0,  # noqa: E741 - the physics symbol
        damping: float = 0.0,
        max_torque: float = 2.0,
        max_speed: float = 8.0,
        dt: float = 0.05,
        width: int = 500,
        height: int = 500,
    ) -> None:
        self._init_render(render_mode)
        self.width, self.height = check_frame_size(width, height)
        self.default_physics = check_physics(
            {"g": g, "m": m, "l": l, "damping": damping, "max_torque": max_torque}, PHYSICS_RANGES
        )
        self.max_speed = MAX_SPEED_RANGE.check("max_speed", max_speed)
        self.dt = DT_RANGE.check("dt", dt)
        self.max_torque = self.default_physics["max_torque"]
        self.physics = dict(self.default_physics)

        high = np.array([1.0, 1.0, self.max_speed], dtype=np.float32)
        self.action_space = spaces.Box(-self.max_torque, self.max_torque, shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

        self.state: np.ndarray | None = None
        self.last_u: float | None = None

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.state is None:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        # The torque stays a float32 scalar, exactly as in Pendulum-v1 (NumPy promotion rules make
        # its terms float32), so default physics reproduce Pendulum-v1 bit for bit.
        u = np.float32(box_action(action, self.action_space)[0])
        p = self.physics
        if u > p["max_torque"] or u < -p["max_torque"]:
            u = np.float32(min(max(u, -p["max_torque"]), p["max_torque"]))
        th, thdot = self.state
        self.last_u = float(u)

        costs = pendulum_costs(th, thdot, u)

        dt = self.dt
        coefficients = pendulum_coefficients(p["g"], p["m"], p["l"], p["damping"])
        newthdot = pendulum_velocity(th, thdot, u, *coefficients, dt)
        newthdot = min(max(newthdot, -self.max_speed), self.max_speed)
        newth = th + newthdot * dt
        self.state = np.array([newth, newthdot])

        self._render_human_step()
        return self._get_obs(), -float(costs), False, False, {}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        options = check_options(options, ("physics", "x_init", "y_init"))
        self.physics = episode_physics(self.default_physics, options, PHYSICS_RANGES)
        x = check_float("x_init", options.get("x_init", np.pi), 0.0, np.pi)
        y = check_float("y_init", options.get("y_init", min(1.0, self.max_speed)), 0.0, self.max_speed)
        high = np.array([x, y])
        self.state = self.np_random.uniform(low=-high, high=high)
        self.last_u = None
        self._render_human_step()
        return self._get_obs(), {"physics": dict(self.physics)}

    def _get_obs(self) -> np.ndarray:
        theta, thetadot = self.state
        return np.array([math.cos(theta), math.sin(theta), thetadot], dtype=np.float32)

    # ------------------------------------------------------------------ planning interface
    def reward_fn(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Batched reward: ``obs (..., 3)``, ``action (..., 1)`` -> ``(...)`` (``next_obs`` unused)."""
        obs, action = as_batch("obs", obs, 3), as_batch("action", action, 1)
        theta = np.arctan2(obs[..., 1], obs[..., 0])
        u = np.clip(action[..., 0], -self.physics["max_torque"], self.physics["max_torque"])
        return -pendulum_costs(theta, obs[..., 2], u)

    def termination_fn(self, next_obs: np.ndarray) -> np.ndarray:
        """Batched termination: the pendulum never terminates; returns ``False`` of shape ``(...)``."""
        next_obs = as_batch("next_obs", next_obs, 3)
        return np.zeros(next_obs.shape[:-1], dtype=bool)

    # ------------------------------------------------------------------ rendering
    def _draw(self) -> np.ndarray:
        bound = 2.2
        canvas = Canvas(self.width, self.height, (-bound, bound), (-bound, bound))
        # Parts thinner than a pixel (only on small frames) are widened and faded, see Canvas.thin.
        disc = canvas.pixel / math.sqrt(2)  # the smallest radius sure to cover a pixel centre
        theta = float(self.state[0])
        # Rod drawn with a fixed on-screen length, as Gymnasium does, pointing up at theta = 0.
        tip_x, tip_y = math.sin(theta), math.cos(theta)
        canvas.draw_line(0.0, 0.0, tip_x, tip_y, *canvas.thin(0.2, canvas.pixel, (204, 77, 77)))
        canvas.fill_circle(tip_x, tip_y, *canvas.thin(0.1, disc, (204, 77, 77), power=2))
        if self.last_u is not None and self.last_u != 0.0:
            # A bar under the pivot shows the applied torque's sign and size.
            frac = self.last_u / self.physics["max_torque"]
            bar, bar_color = canvas.thin(0.1, canvas.pixel_height, (60, 60, 200))
            grow = (bar - 0.1) / 2
            canvas.fill_rect(min(0.0, -frac), -1.75 - grow, max(0.0, -frac), -1.65 + grow, bar_color)
        canvas.fill_circle(0.0, 0.0, *canvas.thin(0.05, disc, (0, 0, 0), power=2))
        return canvas.image

    def _render_ready(self) -> bool:
        return self.state is not None
