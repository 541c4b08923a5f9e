"""Natively vectorized Pendulum and ContinuousCartPole: one array pass per step for all instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from gym_advrl.envs import cartpole, pendulum
from gym_advrl.envs.cartpole import ContinuousCartPoleEnv, cartpole_accelerations, cartpole_masses
from gym_advrl.envs.pendulum import PendulumEnv, pendulum_coefficients, pendulum_costs, pendulum_velocity
from gym_advrl.envs.vector._base import AdvRLVectorEnv, check_num_envs, per_instance, vector_metadata
from gym_advrl.envs.vector._infos import FullRows
from gym_advrl.envs.vector._streams import RawStream
from gym_advrl.utils.rendering import check_frame_size
from gym_advrl.utils.validation import Interval, check_float, check_options


def episode_physics_rows(
    defaults: dict[str, np.ndarray], options: dict[str, Any], ranges: dict, num_envs: int, rows: np.ndarray
) -> dict[str, np.ndarray]:
    """The physics of new episodes of ``rows``: the constructor's, overridden by ``options["physics"]``.

    An override is a number (every reset instance) or an array of ``num_envs`` numbers.
    """
    physics = {key: value[rows] for key, value in defaults.items()}
    overrides = options.get("physics")
    if overrides is None:
        return physics
    if not isinstance(overrides, dict):
        raise ValueError(f"physics must be a dict with keys from {tuple(ranges)}, got {overrides!r}")
    unknown = sorted(map(str, set(overrides) - set(ranges)))
    if unknown:
        raise ValueError(f"unknown physics parameter(s) {unknown}; allowed are {tuple(ranges)}")
    for key, value in overrides.items():
        physics[key] = per_instance(key, value, num_envs, ranges[key])[rows]
    return physics


class _EpisodePhysics:
    """Per-instance physics of the current episodes; rewritten only where an episode changed it.

    The subclass names its single env's ``PHYSICS_RANGES`` as :attr:`physics_ranges`, sets the
    constructor's physics with :meth:`_set_default_physics` and, once the base class is set up,
    calls :meth:`_start_physics`.
    """

    #: The physical parameters that take a number per instance, with their ranges.
    physics_ranges: ClassVar[Mapping[str, Interval]]
    num_envs: int
    _all_rows: np.ndarray
    default_physics: dict[str, np.ndarray]
    physics: dict[str, np.ndarray]
    _overridden: np.ndarray

    def _set_coefficients(self, rows: np.ndarray) -> None:
        raise NotImplementedError

    def _set_default_physics(self, given: dict[str, Any], num_envs: int) -> None:
        """The constructor's physics: each of ``given`` a number or ``num_envs`` numbers in its range."""
        ranges = self.physics_ranges
        self.default_physics = {
            key: per_instance(key, value, num_envs, ranges[key]) for key, value in given.items()
        }

    def _start_physics(self) -> None:
        """Give every instance the constructor's physics and compute their coefficients."""
        self.physics = {key: value.copy() for key, value in self.default_physics.items()}
        self._overridden = np.zeros(self.num_envs, dtype=bool)
        self._set_coefficients(self._all_rows)

    def _episode_physics(self, rows: np.ndarray, options: dict[str, Any]) -> None:
        """Set the physics of new episodes of ``rows``: ``options["physics"]`` over the constructor's."""
        overridden = "physics" in options
        # Most resets bring back the constructor's physics, already in place: skip the rewrite.
        if overridden or (self._overridden.any() and self._overridden[rows].any()):
            physics = episode_physics_rows(
                self.default_physics, options, self.physics_ranges, self.num_envs, rows
            )
            for key, value in physics.items():
                self.physics[key][rows] = value
            self._set_coefficients(rows)
            self._overridden[rows] = overridden

    def _physics_info(self) -> dict[str, Any]:
        """The reset info ``{"physics": {key: one value per instance}}``."""
        return {"physics": {key: FullRows(value) for key, value in self.physics.items()}}

    def _instance_physics(self, i: int) -> dict[str, float]:
        """Instance ``i``'s physics, as the single env holds them."""
        return {key: float(value[i]) for key, value in self.physics.items()}


class PendulumVectorEnv(_EpisodePhysics, AdvRLVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.pendulum.PendulumEnv` stepped as arrays.

    Instance ``i`` is step-for-step identical to ``gym.make("AdvRL/Pendulum-v0")`` reset with the
    same seed and given the same actions. The physical parameters ``g, m, l, damping,
    max_torque`` take a number (all instances) or a sequence of ``num_envs`` numbers (one per
    instance, for domain randomization), in the single env's ranges; so does
    ``reset(options={"physics": {...}})`` for the instances it resets. With per-instance
    ``max_torque`` the action space spans the largest and each instance clips to its own.

    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s; the others are
    :class:`~gym_advrl.envs.pendulum.PendulumEnv`'s.
    """

    metadata = vector_metadata(["rgb_array"], 30)
    single_env_class = PendulumEnv
    physics_ranges = pendulum.PHYSICS_RANGES
    reset_option_keys = ("physics", "x_init", "y_init")
    reset_uses_generators = False  # the starting states come from a RawStream

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 200,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        g: Any = 10.0,
        m: Any = 1.0,
        l: Any = 1.0,  # noqa: E741 - the physics symbol
        damping: Any = 0.0,
        max_torque: Any = 2.0,
        max_speed: float = 8.0,
        dt: float = 0.05,
        width: int = 500,
        height: int = 500,
        render_envs: int | None = None,
    ) -> None:
        n = check_num_envs(num_envs)
        self._set_default_physics({"g": g, "m": m, "l": l, "damping": damping, "max_torque": max_torque}, n)
        self.max_speed = pendulum.MAX_SPEED_RANGE.check("max_speed", max_speed)
        self.dt = pendulum.DT_RANGE.check("dt", dt)
        self.width, self.height = check_frame_size(width, height)
        top = float(self.default_physics["max_torque"].max())
        high = np.array([1.0, 1.0, self.max_speed], dtype=np.float32)
        super().__init__(
            n,
            spaces.Box(-high, high, dtype=np.float32),
            spaces.Box(-top, top, shape=(1,), dtype=np.float32),
            max_episode_steps,
            render_mode,
            autoreset_mode,
            render_envs,
        )
        self._start = self._add_stream(RawStream(self._rngs, keep_states=False))
        self.state = np.zeros((2, n))  # rows: theta, theta_dot
        self.last_u = np.full(n, np.nan, dtype=np.float32)  # NaN: no action yet this episode
        self._start_physics()

    def _set_coefficients(self, rows: np.ndarray) -> None:
        # The single env's expressions, term by term and in its order, so that results are
        # bit-identical: the torque term is float32 there (a float times a float32 scalar).
        p = self.physics
        if rows is self._all_rows:
            self._gravity_term = np.empty(self.num_envs)
            self._inertia_inv32 = np.empty(self.num_envs, dtype=np.float32)
            self._damping_term = np.empty(self.num_envs)
            self._max_torque32 = np.empty(self.num_envs, dtype=np.float32)
        gravity_term, inertia_inv, damping_term = pendulum_coefficients(
            p["g"][rows], p["m"][rows], p["l"][rows], p["damping"][rows]
        )
        self._gravity_term[rows] = gravity_term
        self._inertia_inv32[rows] = inertia_inv.astype(np.float32)
        self._damping_term[rows] = damping_term
        self._max_torque32[rows] = p["max_torque"][rows].astype(np.float32)

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        self._episode_physics(rows, options)
        x = check_float("x_init", options.get("x_init", np.pi), 0.0, np.pi)
        y = check_float("y_init", options.get("y_init", min(1.0, self.max_speed)), 0.0, self.max_speed)
        high = np.array([x, y])
        self.state[:, rows] = self._start.uniform(rows, -high, high, 2).T
        self.last_u[rows] = np.nan
        return self._physics_info()

    def _step_rows(self, actions: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict]:
        sel = slice(None) if rows is None else rows
        max_torque = self._max_torque32[sel]
        u = np.clip(actions[:, 0].astype(np.float32), -max_torque, max_torque)
        th, thdot = self.state[0, sel], self.state[1, sel]
        costs = pendulum_costs(th, thdot, u)
        newthdot = pendulum_velocity(
            th, thdot, u, self._gravity_term[sel], self._inertia_inv32[sel], self._damping_term[sel], self.dt
        )
        np.clip(newthdot, -self.max_speed, self.max_speed, out=newthdot)
        self.state[0, sel] = th + newthdot * self.dt
        self.state[1, sel] = newthdot
        self.last_u[sel] = u
        return -costs, np.zeros(len(costs), dtype=bool), {}

    def _observations(self) -> np.ndarray:
        th, thdot = self.state
        obs = np.empty((self.num_envs, 3), dtype=np.float32)
        obs[:, 0] = np.cos(th)
        obs[:, 1] = np.sin(th)
        obs[:, 2] = thdot
        return obs

    # ------------------------------------------------------------------ planning interface
    def reward_fn(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Batched reward with instance 0's ``max_torque`` (see :meth:`PendulumEnv.reward_fn`)."""
        return PendulumEnv.reward_fn(self._planning_view(), obs, action, next_obs)

    def termination_fn(self, next_obs: np.ndarray) -> np.ndarray:
        """Batched termination: never; ``False`` of shape ``next_obs.shape[:-1]``."""
        return PendulumEnv.termination_fn(self._planning_view(), next_obs)

    def _planning_view(self) -> Any:
        view = type("_PhysicsView", (), {})()
        view.physics = {key: float(value[0]) for key, value in self.physics.items()}
        return view

    # ------------------------------------------------------------------ rendering
    def _make_painter(self) -> gym.Env:
        return PendulumEnv(
            render_mode=self.render_mode, max_speed=self.max_speed, width=self.width, height=self.height
        )

    def _painter_state(self, painter: gym.Env, i: int) -> None:
        painter.state = self.state[:, i].copy()
        painter.physics = self._instance_physics(i)
        last_u = float(self.last_u[i])
        painter.last_u = None if np.isnan(last_u) else last_u


class ContinuousCartPoleVectorEnv(_EpisodePhysics, AdvRLVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.cartpole.ContinuousCartPoleEnv` stepped as arrays.

    Instance ``i`` is step-for-step identical to ``gym.make("AdvRL/ContinuousCartPole-v0")``
    reset with the same seed and given the same actions. ``gravity, masscart, masspole, length,
    force_mag`` take a number or a sequence of ``num_envs`` numbers (per-instance physics), in
    the single env's ranges; so does ``reset(options={"physics": {...}})``.

    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s; the others are
    :class:`~gym_advrl.envs.cartpole.ContinuousCartPoleEnv`'s.
    """

    metadata = vector_metadata(["rgb_array"], 50)
    single_env_class = ContinuousCartPoleEnv
    physics_ranges = cartpole.PHYSICS_RANGES
    reset_option_keys = ("physics", "low", "high")
    reset_uses_generators = False  # the starting states come from a RawStream

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 500,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        gravity: Any = 9.8,
        masscart: Any = 1.0,
        masspole: Any = 0.1,
        length: Any = 0.5,
        force_mag: Any = 10.0,
        tau: float = 0.02,
        width: int = 600,
        height: int = 400,
        render_envs: int | None = None,
    ) -> None:
        n = check_num_envs(num_envs)
        given = {
            "gravity": gravity,
            "masscart": masscart,
            "masspole": masspole,
            "length": length,
            "force_mag": force_mag,
        }
        self._set_default_physics(given, n)
        self.tau = cartpole.TAU_RANGE.check("tau", tau)
        self.width, self.height = check_frame_size(width, height)
        high = np.array(
            [cartpole.X_THRESHOLD * 2, np.inf, cartpole.THETA_THRESHOLD * 2, np.inf], dtype=np.float32
        )
        super().__init__(
            n,
            spaces.Box(-high, high, dtype=np.float32),
            spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32),
            max_episode_steps,
            render_mode,
            autoreset_mode,
            render_envs,
        )
        self._obs_low, self._obs_high = self.single_observation_space.low, self.single_observation_space.high
        self._start = self._add_stream(RawStream(self._rngs, keep_states=False))
        self.state = np.zeros((4, n))  # rows: x, x_dot, theta, theta_dot
        self.last_force = np.zeros(n)
        self._terminated = np.zeros(n, dtype=bool)
        self._start_physics()

    def _set_coefficients(self, rows: np.ndarray) -> None:
        p = self.physics
        if rows is self._all_rows:
            self._total_mass = np.empty(self.num_envs)
            self._polemass_length = np.empty(self.num_envs)
        self._total_mass[rows], self._polemass_length[rows] = cartpole_masses(
            p["masscart"][rows], p["masspole"][rows], p["length"][rows]
        )

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        check_options(options, self.reset_option_keys)
        self._episode_physics(rows, options)
        bound = cartpole.START_BOUND
        low = check_float("low", options.get("low", -0.05), -bound, bound)
        high = check_float("high", options.get("high", 0.05), -bound, bound)
        if low > high:
            raise ValueError(f"reset options low must be <= high, got low={low}, high={high}")
        self.state[:, rows] = self._start.uniform(rows, low, high, 4).T
        self.last_force[rows] = 0.0
        self._terminated[rows] = False
        return self._physics_info()

    def _step_rows(self, actions: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict]:
        sel = slice(None) if rows is None else rows
        p = self.physics
        force = p["force_mag"][sel] * actions[:, 0]
        total_mass, polemass_length = self._total_mass[sel], self._polemass_length[sel]
        x, x_dot, theta, theta_dot = self.state if rows is None else self.state[:, rows]
        costheta, sintheta = np.cos(theta), np.sin(theta)
        xacc, thetaacc = cartpole_accelerations(
            force,
            theta_dot,
            costheta,
            sintheta,
            p["gravity"][sel],
            p["length"][sel],
            p["masspole"][sel],
            total_mass,
            polemass_length,
        )
        tau = self.tau
        if rows is None:  # update in place (each line reads only rows not yet updated)
            state = self.state
            x += tau * x_dot
            x_dot += tau * xacc
            theta += tau * theta_dot
            theta_dot += tau * thetaacc
            self.last_force = force
        else:
            state = np.stack(
                (x + tau * x_dot, x_dot + tau * xacc, theta + tau * theta_dot, theta_dot + tau * thetaacc)
            )
            self.state[:, rows] = state
            self.last_force[rows] = force
        # |v| > threshold is (v < -threshold) | (v > threshold) for every non-NaN v.
        terminated = (np.abs(state[0]) > cartpole.X_THRESHOLD) | (np.abs(state[2]) > cartpole.THETA_THRESHOLD)
        if rows is None:
            self._terminated = terminated.copy()  # a reset edits it; the returned array must not change
        else:
            self._terminated[rows] = terminated
        return np.ones(len(terminated)), terminated, {}

    def _observations(self) -> np.ndarray:
        obs = self.state.T.astype(np.float32)
        if self._terminated.any():
            # Only a terminating step can leave the position/angle bounds: clipping every row
            # changes only those.
            np.clip(obs, self._obs_low, self._obs_high, out=obs)
        return obs

    # ------------------------------------------------------------------ planning interface
    def reward_fn(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Batched reward: ``+1`` per transition (see :meth:`ContinuousCartPoleEnv.reward_fn`)."""
        return ContinuousCartPoleEnv.reward_fn(None, obs, action, next_obs)  # type: ignore[arg-type]

    def termination_fn(self, next_obs: np.ndarray) -> np.ndarray:
        """Batched termination test (see :meth:`ContinuousCartPoleEnv.termination_fn`)."""
        return ContinuousCartPoleEnv.termination_fn(None, next_obs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ rendering
    def _make_painter(self) -> gym.Env:
        return ContinuousCartPoleEnv(render_mode=self.render_mode, width=self.width, height=self.height)

    def _painter_state(self, painter: gym.Env, i: int) -> None:
        painter.state = tuple(float(v) for v in self.state[:, i])
        painter._set_physics(self._instance_physics(i))
