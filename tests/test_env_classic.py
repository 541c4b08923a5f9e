"""Exact behaviour of the continuous-control envs: physics, rewards, episode ends, rendering, arguments.

Complements test_classic_envs.py (parity with Gymnasium, physics options, planner functions)
with each dynamics term against the equations written out here, both sides of every limit,
reset options, the frames and the snapshot checks.
"""

from __future__ import annotations

import copy
import math
import re

import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.envs import ContinuousCartPoleEnv, NonlinearRegulatorEnv, PendulumEnv
from gym_advrl.envs.cartpole import THETA_THRESHOLD, cartpole_accelerations, cartpole_masses
from gym_advrl.envs.pendulum import angle_normalize, pendulum_coefficients, pendulum_costs

F32 = np.float32


# ---------------------------------------------------------------------------- Pendulum
def test_angle_normalize_wraps_into_minus_pi_to_pi() -> None:
    assert angle_normalize(math.pi) == pytest.approx(-math.pi)
    assert angle_normalize(-math.pi) == pytest.approx(-math.pi)
    assert angle_normalize(0.5) == pytest.approx(0.5)
    assert angle_normalize(3 * math.pi + 0.25) == pytest.approx(-math.pi + 0.25)
    np.testing.assert_allclose(
        angle_normalize(np.array([2 * math.pi, -0.1 - 2 * math.pi])), [0.0, -0.1], atol=1e-12
    )


def test_pendulum_terms_are_the_documented_equation() -> None:
    assert pendulum_coefficients(10.0, 2.0, 0.5, 0.3) == pytest.approx((30.0, 6.0, 1.8))
    th, thdot, u = 4.0, 2.0, 1.5
    assert pendulum_costs(th, thdot, u) == pytest.approx((4.0 - 2 * math.pi) ** 2 + 0.1 * 4.0 + 0.001 * 2.25)
    env = PendulumEnv(g=9.0, m=2.0, l=0.5, damping=0.3, dt=0.04, max_speed=20.0)
    env.reset(seed=0)
    env.state = np.array([0.7, -1.2])
    obs, reward, terminated, truncated, info = env.step(np.array([1.5], dtype=F32))
    # thdot' = thdot + (3 g / (2 l) sin th + 3 / (m l^2) (u - damping thdot)) dt; th' = th + thdot' dt.
    thdot = -1.2 + (27.0 * math.sin(0.7) + 6.0 * (1.5 - 0.3 * -1.2)) * 0.04
    th = 0.7 + thdot * 0.04
    np.testing.assert_allclose(env.state, [th, thdot], rtol=1e-6)
    np.testing.assert_allclose(obs, [math.cos(th), math.sin(th), thdot], rtol=1e-6)
    assert reward == pytest.approx(-(0.49 + 0.1 * 1.44 + 0.001 * 2.25), rel=1e-6)
    assert (terminated, truncated, info) == (False, False, {}) and env.last_u == 1.5


def test_pendulum_speed_is_clipped_on_both_sides() -> None:
    env = PendulumEnv(max_speed=3.0)
    env.reset(seed=0)
    for sign in (1.0, -1.0):
        env.state = np.array([0.0, 2.9 * sign])
        env.step(np.array([2.0 * sign], dtype=F32))
        assert env.state[1] == 3.0 * sign and env.state[0] == pytest.approx(0.15 * sign)
    env.state = np.array([0.0, 2.0])
    env.step(np.array([0.0], dtype=F32))
    assert env.state[1] == pytest.approx(2.0)  # inside the limit: unchanged by the clip
    np.testing.assert_array_equal(env.observation_space.high, [1.0, 1.0, 3.0])
    np.testing.assert_array_equal(env.observation_space.low, [-1.0, -1.0, -3.0])


def test_pendulum_episode_torque_limit_clips_both_signs() -> None:
    env = PendulumEnv(max_torque=3.0)
    assert env.action_space.high[0] == 3.0 and env.action_space.low[0] == -3.0
    _, info = env.reset(seed=0, options={"physics": {"max_torque": 1.0}})
    assert info == {"physics": {"g": 10.0, "m": 1.0, "l": 1.0, "damping": 0.0, "max_torque": 1.0}}
    for action, applied in ((2.5, 1.0), (-2.5, -1.0), (0.5, 0.5), (-1.0, -1.0), (1.0, 1.0)):
        env.state = np.array([0.0, 0.0])
        _, reward, *_ = env.step(np.array([action], dtype=F32))
        assert env.last_u == applied and reward == pytest.approx(-0.001 * applied**2)
        assert env.state[1] == pytest.approx(3.0 * applied * 0.05)
    _, info = env.reset(seed=0)
    assert info["physics"]["max_torque"] == 3.0
    env.state = np.array([0.0, 0.0])
    env.step(np.array([2.5], dtype=F32))
    assert env.last_u == 2.5


def test_pendulum_reset_options_and_starting_state() -> None:
    env = PendulumEnv()
    obs, _ = env.reset(seed=0, options={"x_init": 0.0, "y_init": 0.0})
    np.testing.assert_array_equal(obs, [1.0, 0.0, 0.0])
    assert env.last_u is None
    starts = np.array([env.reset(seed=s)[0] for s in range(300)])
    assert np.abs(starts[:, 2]).max() <= 1.0 and np.abs(starts[:, 2]).max() > 0.95
    assert starts[:, 0].min() < -0.99  # angles over the whole circle
    slow = PendulumEnv(max_speed=0.5)
    velocities = np.array([slow.reset(seed=s)[0][2] for s in range(200)])
    assert np.abs(velocities).max() <= 0.5 and np.abs(velocities).max() > 0.45
    narrow = np.array([env.reset(seed=s, options={"x_init": 0.1, "y_init": 2.0})[0] for s in range(200)])
    assert np.all(narrow[:, 0] >= math.cos(0.1)) and np.abs(narrow[:, 2]).max() > 1.5
    env.reset(seed=0, options={"x_init": math.pi, "y_init": 8.0})  # the bounds are inclusive
    for options, match in (
        ({"x_init": 3.2}, "x_init"),
        ({"x_init": -0.1}, "x_init"),
        ({"y_init": 8.5}, "y_init"),
        ({"y_init": -1.0}, "y_init"),
        ({"speed": 1.0}, r"unknown reset option\(s\) \['speed'\]"),
    ):
        with pytest.raises(ValueError, match="^" + match):
            env.reset(options=options)


def test_pendulum_planning_functions() -> None:
    env = PendulumEnv(max_torque=1.5)
    env.reset(seed=0)
    obs = np.array([[math.cos(3.0), math.sin(3.0), 2.0], [1.0, 0.0, -1.0]])
    action = np.array([[4.0], [-0.5]])
    expected = -np.array([9.0 + 0.4 + 0.001 * 2.25, 0.1 + 0.001 * 0.25])
    np.testing.assert_allclose(env.reward_fn(obs, action, obs), expected, rtol=1e-9)
    done = env.termination_fn(np.zeros((2, 5, 3)))
    assert done.shape == (2, 5) and done.dtype == bool and not done.any()
    with pytest.raises(ValueError, match="^obs"):
        env.reward_fn(np.zeros((2, 4)), action, obs)
    with pytest.raises(ValueError, match="^action"):
        env.reward_fn(obs, np.zeros((2, 2)), obs)
    with pytest.raises(ValueError, match="^next_obs"):
        env.termination_fn(np.zeros(4))


def test_pendulum_frames() -> None:
    env = PendulumEnv(render_mode="rgb_array", width=220, height=220)
    env.reset(seed=0, options={"x_init": 0.0, "y_init": 0.0})
    frame = env.render()
    assert frame.shape == (220, 220, 3) and frame.dtype == np.uint8

    def pixel(x: float, y: float) -> tuple[int, ...]:  # world box [-2.2, 2.2]^2, 50 px per unit
        return tuple(int(v) for v in frame[int((2.2 - y) * 50), int((x + 2.2) * 50)])

    rod = (204, 77, 77)
    assert pixel(0.0, 0.5) == rod and pixel(0.0, 1.05) == rod  # upright rod and its end disc
    assert pixel(0.0, -0.5) == (255, 255, 255) and pixel(0.0, 0.0) == (0, 0, 0)  # the pivot
    assert pixel(0.08, 0.5) == rod and pixel(0.12, 0.5) == (255, 255, 255)  # 0.2 wide
    assert pixel(0.3, -1.7) == (255, 255, 255)  # no torque bar before a step
    env.step(np.array([-1.0], dtype=F32))  # half the torque limit, to the left: the bar points right
    frame = env.render()
    bar = (60, 60, 200)
    assert pixel(0.45, -1.7) == bar and pixel(0.55, -1.7) == (255, 255, 255) and pixel(-0.1, -1.7) != bar
    assert pixel(0.2, -1.62) == (255, 255, 255) and pixel(0.2, -1.78) == (255, 255, 255)  # 0.1 high
    env.step(np.array([2.0], dtype=F32))
    frame = env.render()
    assert pixel(-0.95, -1.7) == bar and pixel(0.05, -1.7) != bar
    env.step(np.array([0.0], dtype=F32))
    frame = env.render()
    assert pixel(-0.5, -1.7) == (255, 255, 255)  # no torque, no bar
    theta = float(env.state[0])
    assert pixel(0.6 * math.sin(theta), 0.6 * math.cos(theta)) == rod  # the rod follows the angle
    default = PendulumEnv(render_mode="rgb_array")
    default.reset(seed=0)
    assert default.render().shape == (500, 500, 3)
    with pytest.raises(gym.error.ResetNeeded):
        PendulumEnv(render_mode="rgb_array").render()
    for kwargs, name in (({"width": 0}, "width"), ({"height": 4097}, "height"), ({"dt": 0.0}, "dt"),
                         ({"max_speed": 0.0}, "max_speed"), ({"g": 0.0}, "g"), ({"m": 1e-4}, "m")):  # fmt: skip
        with pytest.raises(ValueError, match="^" + name):
            PendulumEnv(**kwargs)
    PendulumEnv(dt=1.0, max_speed=1e3, g=1e3, m=1e-3, l=1e3, damping=1e3, max_torque=1e3)


# ---------------------------------------------------------------------------- cart-pole
def florian_accelerations(force: float, theta: float, theta_dot: float, g: float, mc: float, mp: float, half: float) -> tuple[float, float]:  # fmt: skip
    """Barto, Sutton & Anderson's cart-pole with Florian's (2007) correction, frictionless."""
    total = mc + mp
    sin, cos = math.sin(theta), math.cos(theta)
    thetaacc = (g * sin - cos * (force + mp * half * theta_dot**2 * sin) / total) / (
        half * (4.0 / 3.0 - mp * cos**2 / total)
    )
    xacc = (force + mp * half * (theta_dot**2 * sin - thetaacc * cos)) / total
    return xacc, thetaacc


def test_cartpole_accelerations_are_the_corrected_equations() -> None:
    assert cartpole_masses(1.5, 0.2, 0.7) == pytest.approx((1.7, 0.14))
    for force, theta, theta_dot in ((3.0, 0.1, -0.5), (-7.0, -0.2, 1.5), (0.0, 0.05, 0.0)):
        total, pml = cartpole_masses(1.5, 0.2, 0.7)
        got = cartpole_accelerations(
            force, theta_dot, math.cos(theta), math.sin(theta), 9.0, 0.7, 0.2, total, pml
        )
        assert got == pytest.approx(
            florian_accelerations(force, theta, theta_dot, 9.0, 1.5, 0.2, 0.7), rel=1e-12
        )


def test_cartpole_step_is_one_euler_step_with_the_scaled_force() -> None:
    env = ContinuousCartPoleEnv(gravity=9.0, masscart=1.5, masspole=0.2, length=0.7, force_mag=7.0, tau=0.03)
    env.reset(seed=0)
    state = (0.1, -0.4, 0.05, 0.3)
    env.state = state
    obs, reward, terminated, truncated, info = env.step(np.array([-0.5], dtype=F32))
    xacc, thetaacc = florian_accelerations(-3.5, 0.05, 0.3, 9.0, 1.5, 0.2, 0.7)
    expected = (0.1 + 0.03 * -0.4, -0.4 + 0.03 * xacc, 0.05 + 0.03 * 0.3, 0.3 + 0.03 * thetaacc)
    np.testing.assert_allclose(env.state, expected, rtol=1e-12)
    np.testing.assert_allclose(obs, expected, rtol=1e-6)
    assert obs.dtype == np.float32 and env.last_force == -3.5
    assert (reward, terminated, truncated, info) == (1.0, False, False, {})


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cartpole_terminates_strictly_beyond_each_limit(sign: float) -> None:
    env = ContinuousCartPoleEnv()
    zero = np.zeros(1, dtype=F32)
    for state, terminal in (
        ((2.4 * sign, 0.0, 0.0, 0.0), False),  # on the limit: not beyond
        ((2.4 * sign, 0.01 * sign, 0.0, 0.0), True),
        ((0.0, 0.0, THETA_THRESHOLD * sign, 0.0), False),
        ((0.0, 0.0, THETA_THRESHOLD * sign, 0.01 * sign), True),
    ):
        env.reset(seed=0)
        env.state = state
        _, reward, terminated, _, _ = env.step(zero)
        assert terminated is terminal, state
        assert reward == 1.0
    assert THETA_THRESHOLD == pytest.approx(math.radians(12))


def test_cartpole_terminal_observations_are_clipped_and_the_state_frozen() -> None:
    env = ContinuousCartPoleEnv()
    env.reset(seed=0)
    env.state = (4.79, 10.0, 0.0, 0.0)
    obs, reward, terminated, _, _ = env.step(np.ones(1, dtype=F32))
    assert terminated and reward == 1.0
    assert env.state[0] == pytest.approx(4.99) and obs[0] == np.float32(4.8)
    assert env.observation_space.contains(obs)
    frozen = env.state
    with pytest.warns(UserWarning, match="after the episode terminated"):
        again = env.step(np.ones(1, dtype=F32))
    np.testing.assert_array_equal(again[0], obs)
    assert again[1:] == (0.0, True, False, {}) and env.state == frozen and env.last_force == 10.0
    np.testing.assert_array_equal(
        env.observation_space.high, np.float32([4.8, np.inf, THETA_THRESHOLD * 2, np.inf])
    )


def test_cartpole_reset_range_options() -> None:
    env = ContinuousCartPoleEnv()
    starts = np.array([env.reset(seed=s)[0] for s in range(200)])
    assert np.abs(starts).max() <= 0.05 and np.abs(starts).max() > 0.045
    obs, info = env.reset(seed=0, options={"low": 0.1, "high": 0.2})
    assert np.all((obs >= 0.1) & (obs <= 0.2))
    assert info == {
        "physics": {"gravity": 9.8, "masscart": 1.0, "masspole": 0.1, "length": 0.5, "force_mag": 10.0}
    }
    obs, _ = env.reset(seed=0, options={"low": -0.2, "high": -0.2})
    np.testing.assert_allclose(obs, -0.2)
    assert env.last_force == 0.0
    with pytest.raises(ValueError, match=r"^reset options low must be <= high, got low=0.1, high=0.0"):
        env.reset(options={"low": 0.1, "high": 0.0})
    for options, match in (
        ({"low": -0.25}, "low"),
        ({"high": 0.21}, "high"),
        ({"tilt": 0.1}, r"unknown reset option\(s\) \['tilt'\]"),
    ):
        with pytest.raises(ValueError, match="^" + match):
            env.reset(options=options)
    _, info = env.reset(seed=0, options={"physics": {"length": 1.0}})
    assert info["physics"]["length"] == 1.0 and env.polemass_length == pytest.approx(0.1)
    env.reset(seed=0)
    assert env.polemass_length == pytest.approx(0.05) and env.total_mass == pytest.approx(1.1)


def test_cartpole_planning_functions() -> None:
    env = ContinuousCartPoleEnv()
    reward = env.reward_fn(np.zeros((2, 3, 4)), np.zeros((2, 3, 1)), np.zeros((2, 3, 4)))
    assert reward.shape == (2, 3) and reward.dtype == np.float64 and np.all(reward == 1.0)
    with pytest.raises(ValueError, match="^obs"):
        env.reward_fn(np.zeros(3), np.zeros(1), np.zeros(4))
    with pytest.raises(ValueError, match="^next_obs"):
        env.termination_fn(np.zeros(3))
    edge = np.array([[2.4, 0, 0, 0], [-2.41, 0, 0, 0], [0, 0, THETA_THRESHOLD, 0], [0, 0, -0.21, 0]])
    np.testing.assert_array_equal(env.termination_fn(edge), [False, True, False, True])


def test_cartpole_frames() -> None:
    env = ContinuousCartPoleEnv(render_mode="rgb_array")
    env.reset(seed=0, options={"low": 0.0, "high": 0.0})
    frame = env.render()
    assert frame.shape == (400, 600, 3) and frame.flags["C_CONTIGUOUS"]
    scale = 600 / 4.8  # pixels per world unit; the world box is x in [-2.4, 2.4], y in [-1, 2.2]

    def pixel(x: float, y: float) -> tuple[int, ...]:
        return tuple(int(v) for v in frame[int((2.2 - y) * scale), int((x + 2.4) * scale)])

    assert pixel(0.0, -0.05) == (0, 0, 0) and pixel(0.19, 0.1) == (0, 0, 0)  # the 0.4 x 0.24 cart
    assert pixel(0.22, 0.0) == (0, 0, 0)  # the track
    assert pixel(0.22, 0.02) == (255, 255, 255) and pixel(0.0, -0.14) == (255, 255, 255)
    assert pixel(0.0, 0.06) == (129, 132, 203)  # the axle
    assert pixel(0.0, 0.5) == (202, 152, 101) and pixel(0.0, 1.0) == (202, 152, 101)  # the pole, 1.0 long
    assert pixel(0.0, 1.1) == (255, 255, 255) and pixel(0.05, 0.5) == (255, 255, 255)
    env.state = (1.0, 0.0, 0.3, 0.0)
    frame = env.render()
    assert pixel(1.0, -0.05) == (0, 0, 0) and pixel(0.0, -0.05) == (255, 255, 255)
    assert pixel(1.0 + 0.7 * math.sin(0.3), 0.06 + 0.7 * math.cos(0.3)) == (202, 152, 101)
    env.reset(seed=0, options={"physics": {"length": 0.25}, "low": 0.0, "high": 0.0})
    frame = env.render()
    assert pixel(0.0, 0.4) == (202, 152, 101) and pixel(0.0, 0.7) == (255, 255, 255)
    small = ContinuousCartPoleEnv(render_mode="rgb_array", width=60, height=40)
    small.reset(seed=0)
    assert small.render().shape == (40, 60, 3)
    with pytest.raises(gym.error.ResetNeeded):
        ContinuousCartPoleEnv(render_mode="rgb_array").render()
    for kwargs, name in (({"tau": 0.11}, "tau"), ({"tau": 0.0}, "tau"), ({"width": 0}, "width"),
                         ({"force_mag": 0.0}, "force_mag"), ({"masspole": 2e3}, "masspole")):  # fmt: skip
        with pytest.raises(ValueError, match="^" + name):
            ContinuousCartPoleEnv(**kwargs)
    ContinuousCartPoleEnv(tau=0.1, gravity=1e3, masscart=1e-3, masspole=1e3, length=1e-3, force_mag=1e3)


# ---------------------------------------------------------------------------- regulator
def test_regulator_step_with_its_noise() -> None:
    env = NonlinearRegulatorEnv(process_noise=0.1)
    env.reset(seed=3)
    s = np.array([0.3, -0.5, 0.2, 0.4])
    env.state = s.copy()
    noise = copy.deepcopy(env.np_random).normal(size=5)  # the draws the step will make
    a = np.array([1.0, -1.0])
    obs, reward, terminated, truncated, info = env.step(np.array([3.0, -2.0], dtype=F32))  # clipped
    expected = (
        np.array(
            [
                s[0] + 0.1 * a[0] + 0.05 * math.sin(s[1]),
                s[1] + 0.1 * a[1] + 0.02 * s[0] * s[2],
                0.9 * s[2] + 0.1 * math.tanh(a[0] + a[1]),
                0.95 * s[3] + 0.01 * noise[4],
            ]
        )
        + 0.1 * noise[:4]
    )
    np.testing.assert_allclose(env.state, expected, rtol=1e-12)
    np.testing.assert_allclose(obs, expected, rtol=1e-6)
    assert obs.dtype == np.float32
    assert reward == pytest.approx(-np.sum(expected**2) - 0.01 * 2.0, rel=1e-12)
    assert (terminated, truncated, info) == (False, False, {})
    quiet = NonlinearRegulatorEnv(process_noise=0.0)
    quiet.reset(seed=3)
    quiet.state = s.copy()
    noise = copy.deepcopy(quiet.np_random).normal(size=5)
    quiet.step(np.zeros(2, dtype=F32))
    assert quiet.state[3] == pytest.approx(0.95 * 0.4 + 0.01 * noise[4], rel=1e-12)  # s3 drifts anyway


def test_regulator_terminates_strictly_beyond_norm_three() -> None:
    env = NonlinearRegulatorEnv(process_noise=0.0)
    env.reset(seed=0)
    env.state = np.array([0.0, 0.0, 10.0 / 3.0, 0.0])  # s2' = 0.9 s2 = 3 exactly, the others ~0
    noise = copy.deepcopy(env.np_random).normal(size=5)
    _, _, terminated, _, _ = env.step(np.zeros(2, dtype=F32))
    assert np.linalg.norm(env.state) == pytest.approx(math.hypot(3.0, 0.01 * noise[4]))
    assert terminated == (np.linalg.norm(env.state) > 3.0)
    env.state = np.array([0.0, 0.0, -3.4, 0.0])
    assert env.step(np.zeros(2, dtype=F32))[2] is True
    env.state = np.array([0.0, 0.0, 3.3, 0.0])
    assert env.step(np.zeros(2, dtype=F32))[2] is False
    np.testing.assert_array_equal(
        env.termination_fn(np.array([[3.0, 0, 0, 0], [0, 0, 0, -3.01], [1.8, 1.8, 1.8, 0]])),
        [False, True, True],
    )
    reward = env.reward_fn(np.zeros((2, 4)), np.array([[2.0, 0.0], [0.5, -0.5]]), np.ones((2, 4)))
    np.testing.assert_allclose(reward, [-4.0 - 0.01, -4.0 - 0.005])


def test_regulator_reset_arguments_and_frames() -> None:
    env = NonlinearRegulatorEnv(render_mode="rgb_array")
    starts = np.array([env.reset(seed=s)[0] for s in range(100)])
    assert np.abs(starts).max() <= 1.0 and np.abs(starts).max() > 0.95 and starts.min() < -0.95
    with pytest.raises(
        ValueError, match=r"^unknown reset option\(s\) \['state'\]; allowed options are \(\)$"
    ):
        env.reset(options={"state": np.zeros(4)})
    for bad in (-0.1, 10.5, np.nan):
        with pytest.raises(ValueError, match="^process_noise"):
            NonlinearRegulatorEnv(process_noise=bad)
    NonlinearRegulatorEnv(process_noise=10.0)
    with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call step\(\) before reset\(\)"):
        NonlinearRegulatorEnv().step(np.zeros(2, dtype=F32))
    env.reset(seed=0)
    env.state = np.array([1.5, -1.0, 0.0, 0.0])
    frame = env.render()
    assert frame.shape == (400, 400, 3)
    scale = 400 / 6.4

    def pixel(x: float, y: float) -> tuple[int, ...]:
        return tuple(int(v) for v in frame[int((3.2 - y) * scale), int((x + 3.2) * scale)])

    assert pixel(1.5, -1.0) == (200, 50, 50)  # the current state
    assert pixel(0.0, 0.0) == (0, 150, 0)  # the origin
    assert pixel(2.0, 2.0) == (235, 235, 245) and pixel(2.3, 2.3) == (
        255,
        255,
        255,
    )  # inside the limit circle
    for _ in range(60):
        env.step(np.zeros(2, dtype=F32))
    assert len(env._trail) == 50  # the trail keeps the last 50 positions
    np.testing.assert_array_equal(env._trail[-1], env.state[:2])
    env.reset(seed=1)
    assert len(env._trail) == 1
    np.testing.assert_array_equal(env._trail[0], env.state[:2])
    env.state = np.array([0.0, 0.0, 0.0, 0.0])
    env._trail.clear()
    env._trail.extend([np.array([-2.0, 1.0]), np.array([-1.0, 1.0])])
    frame = env.render()
    assert pixel(-1.5, 1.0) == (150, 150, 200)  # the trail between its points


# ---------------------------------------------------------------------------- snapshots
def test_snapshot_messages_and_contents() -> None:
    env = ContinuousCartPoleEnv()
    env.reset(seed=0)
    state = env.get_state()
    assert state["env"] == "ContinuousCartPoleEnv"
    assert set(state["state"]) == set(env._snapshot_attrs) | {"np_random", "np_random_seed"}
    assert state["state"]["np_random_seed"] == 0
    with pytest.raises(
        ValueError,
        match=r"^state must be a snapshot returned by get_state\(\) of a PendulumEnv, got one of a ContinuousCartPoleEnv",
    ):
        PendulumEnv().set_state(state)
    with pytest.raises(
        ValueError, match=r"^state must be a snapshot returned by get_state\(\) of a PendulumEnv$"
    ):
        PendulumEnv().set_state({"env": 3})
    broken = copy.deepcopy(state)
    broken["state"]["extra"] = 1
    with pytest.raises(ValueError, match=r"^state must be a snapshot .* of a ContinuousCartPoleEnv$"):
        env.set_state(broken)
    broken = copy.deepcopy(state)
    broken["state"] = [1]
    with pytest.raises(
        ValueError, match=r"^state must be a snapshot returned by get_state\(\) of a ContinuousCartPoleEnv$"
    ):
        env.set_state(broken)
    other = ContinuousCartPoleEnv()
    other.set_state(state)
    assert other.np_random_seed == 0 and other.state == env.state
    state["state"]["state"] = (9.0, 9.0, 9.0, 9.0)  # restoring copied: later edits do not leak
    assert other.state == env.state


# ---------------------------------------------------------------------------- small frames and details
def test_pendulum_small_frames_widen_and_fade_thin_parts() -> None:
    # The torque bar (0.1 high) is one pixel row on frames under 44 pixels: the row holding y = -1.7.
    for size in (17, 18):
        env = PendulumEnv(render_mode="rgb_array", width=size, height=size)
        env.reset(seed=0)
        env.step(np.array([-2.0], dtype=F32))  # the full torque to the left: a bar over x in [0, 1]
        env.state = np.array([0.0, 0.0])
        frame = env.render()
        pixel = 4.4 / size
        column = frame[:, int((0.5 + 2.2) / pixel)]
        bar_rows = np.flatnonzero(np.any(column != 255, axis=1))
        assert bar_rows.tolist() == [int((2.2 + 1.7) / pixel)], size
    # The pivot disc (radius 0.05) on a 41-pixel frame (a pixel centred on the pivot): drawn a
    # pixel wide in black faded by its area share (0.05 / (pixel / sqrt 2))^2.
    env = PendulumEnv(render_mode="rgb_array", width=41, height=41)
    env.reset(seed=0, options={"x_init": 0.0, "y_init": 0.0})
    frame = env.render()
    share = (0.05 / (4.4 / 41 / math.sqrt(2))) ** 2
    assert tuple(frame[20, 20]) == (round(255 * (1 - share)),) * 3
    # The end disc (radius 0.1) on a 20-pixel frame, faded the same way from the rod's colour.
    env = PendulumEnv(render_mode="rgb_array", width=20, height=20)
    env.reset(seed=0, options={"x_init": 0.0, "y_init": 0.0})
    frame = env.render()
    share = (0.1 / (0.22 / math.sqrt(2))) ** 2
    expected = tuple(round(255 + share * (c - 255)) for c in (204, 77, 77))
    assert tuple(frame[int((2.2 - 1.0) / 0.22), 10]) == expected


def test_pendulum_frame_follows_the_angle_and_any_torque() -> None:
    env = PendulumEnv(render_mode="rgb_array", width=220, height=220)
    env.reset(seed=0)

    def pixel(frame: np.ndarray, x: float, y: float) -> tuple[int, ...]:
        return tuple(int(v) for v in frame[int((2.2 - y) * 50), int((x + 2.2) * 50)])

    env.step(np.array([1.0], dtype=F32))  # a torque of exactly 1 shows its bar (to the left)
    env.state = np.array([1.0, 0.0])
    frame = env.render()
    assert pixel(frame, 0.6 * math.sin(1.0), 0.6 * math.cos(1.0)) == (204, 77, 77)
    assert pixel(frame, 0.0, 0.6) == (255, 255, 255)
    assert pixel(frame, -0.45, -1.7) == (60, 60, 200) and pixel(frame, 0.1, -1.7) == (255, 255, 255)


def test_cartpole_frame_geometry() -> None:
    env = ContinuousCartPoleEnv(render_mode="rgb_array")
    env.reset(seed=0, options={"low": 0.0, "high": 0.0})
    env.state = (1.0, 0.0, 0.3, 0.0)
    frame = env.render()
    scale = 600 / 4.8

    def pixel(x: float, y: float) -> tuple[int, ...]:
        return tuple(int(v) for v in frame[int((2.2 - y) * scale), int((x + 2.4) * scale)])

    # The track: rows 274 and 275 (|y| <= 0.005) across the whole width.
    for column in (0, 100, 599):
        assert np.flatnonzero(np.all(frame[:, column] == 0, axis=1)).tolist() == [274, 275]
    # The cart: x in [0.8, 1.2], y in [-0.12, 0.12].
    assert pixel(0.82, 0.1) == (0, 0, 0) and pixel(1.18, -0.1) == (0, 0, 0)
    assert pixel(0.77, 0.1) == (255, 255, 255) and pixel(1.0, -0.14) == (255, 255, 255)
    assert pixel(1.15, 0.14) == (255, 255, 255)
    # The axle (radius 0.04) at a quarter of the cart's height, the pole (1.0 long) from it.
    assert pixel(1.0, 0.095) == (129, 132, 203)
    tip = np.array([1.0, 0.06]) + np.array([math.sin(0.3), math.cos(0.3)])
    assert pixel(*(np.array([1.0, 0.06]) + 0.95 * (tip - [1.0, 0.06]))) == (202, 152, 101)
    assert pixel(*(np.array([1.0, 0.06]) + 1.06 * (tip - [1.0, 0.06]))) == (255, 255, 255)
    # On a 60 x 40 frame the axle is drawn a pixel wide, faded by its area share.
    small = ContinuousCartPoleEnv(render_mode="rgb_array", width=60, height=40)
    small.reset(seed=0, options={"low": 0.0, "high": 0.0})
    share = (0.04 / (0.08 / math.sqrt(2))) ** 2
    expected = tuple(round(255 + share * (c - 255)) for c in (129, 132, 203))
    assert tuple(small.render()[26, 30]) == expected


def test_regulator_frame_sizes_and_planning_errors() -> None:
    env = NonlinearRegulatorEnv(render_mode="rgb_array")
    env.reset(seed=0)
    env.state = np.array([1.5, -1.0, 0.0, 0.0])
    env._trail.clear()
    env._trail.extend([np.array([-2.0, 1.0]), np.array([-1.0, 1.0])])
    frame = env.render()
    scale = 400 / 6.4

    def pixel(x: float, y: float) -> tuple[int, ...]:
        return tuple(int(v) for v in frame[int((3.2 - y) * scale), int((x + 3.2) * scale)])

    limit = (235, 235, 245)
    assert pixel(0.0, 0.0) == (0, 150, 0) and pixel(0.1, 0.0) == limit  # the origin, radius 0.06
    assert pixel(1.5, -0.95) == (200, 50, 50) and pixel(1.5, -0.85) == limit  # the state, radius 0.1
    assert pixel(-1.5, 1.0) == (150, 150, 200) and pixel(-1.5, 1.05) == limit  # the trail, 0.03 wide
    assert pixel(0.5, 1.0) == limit  # the trail ends at (-1, 1)
    for args, name in (
        ((np.zeros(4), np.zeros(3), np.zeros(4)), "action"),
        ((np.zeros(4), np.zeros(2), np.zeros(3)), "next_obs"),
    ):
        with pytest.raises(ValueError, match=f"^{name} must have trailing dim"):
            env.reward_fn(*args)


def test_step_before_reset_names_the_missing_call() -> None:
    for env in (ContinuousCartPoleEnv(), PendulumEnv(), NonlinearRegulatorEnv()):
        with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call step\(\) before reset\(\)$"):
            env.step(np.zeros(env.action_space.shape, dtype=F32))


# ---------------------------------------------------------------------------- review of mutation survivors
def test_angle_normalize_is_gymnasiums_bit_for_bit() -> None:
    """``((x + pi) mod 2 pi) - pi`` in Gymnasium's order of operations, so that the costs match
    Pendulum-v1's to the last bit (``x - pi`` first would round differently)."""
    from gymnasium.envs.classic_control.pendulum import angle_normalize as gymnasium_angle_normalize

    angles = np.random.default_rng(0).uniform(-20.0, 20.0, 2000)
    np.testing.assert_array_equal(angle_normalize(angles), gymnasium_angle_normalize(angles))
    for x in angles[:50]:
        assert angle_normalize(float(x)) == gymnasium_angle_normalize(float(x))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cartpole_terminal_observations_are_clipped_on_both_sides(sign: float) -> None:
    env = ContinuousCartPoleEnv()
    for state, clipped in (
        ((4.79 * sign, 10.0 * sign, 0.0, 0.0), 0),
        ((0.0, 0.0, 0.41 * sign, 10.0 * sign), 2),
    ):
        env.reset(seed=0)
        env.state = state
        obs, _, terminated, _, _ = env.step(np.zeros(1, dtype=F32))
        assert terminated and obs[clipped] == sign * env.observation_space.high[clipped]
        assert env.observation_space.contains(obs)


def test_cartpole_step_after_termination_warns_with_the_full_message() -> None:
    env = ContinuousCartPoleEnv()
    env.reset(seed=0)
    env.state = (2.4, 1.0, 0.0, 0.0)
    assert env.step(np.zeros(1, dtype=F32))[2] is True
    with pytest.warns(UserWarning) as record:
        env.step(np.zeros(1, dtype=F32))
    message = (
        "You are calling step() after the episode terminated; call reset(). The state stays at "
        "the terminal state and the reward is 0."
    )
    assert len(record) == 1 and message in str(record[0].message)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"low": 0.25}, "low must be a number in [-0.2, 0.2], got 0.25"),
        ({"high": -0.25}, "high must be a number in [-0.2, 0.2], got -0.25"),
    ],
)
def test_cartpole_reset_bounds_are_checked_on_both_sides(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ContinuousCartPoleEnv().reset(options=options)


def test_regulator_draws_five_normals_per_step() -> None:
    env = NonlinearRegulatorEnv(process_noise=0.1)
    env.reset(seed=4)
    rng = copy.deepcopy(env.np_random)
    for _ in range(3):
        s, noise = env.state.copy(), rng.normal(size=5)
        env.step(np.zeros(2, dtype=F32))
        expected = np.array(
            [s[0] + 0.05 * math.sin(s[1]), s[1] + 0.02 * s[0] * s[2], 0.9 * s[2], 0.95 * s[3]]
        )
        expected += np.array([0.0, 0.0, 0.0, 0.01 * noise[4]]) + 0.1 * noise[:4]
        np.testing.assert_allclose(env.state, expected, rtol=1e-12)


def test_regulator_state_exactly_on_norm_three_is_not_terminal() -> None:
    env = NonlinearRegulatorEnv(process_noise=0.0)
    env.reset(seed=0)
    n4 = copy.deepcopy(env.np_random).normal(size=5)[4]
    env.state = np.array([3.0, 0.0, 0.0, -0.01 * n4 / 0.95])  # s3' = 0.95 s3 + 0.01 n4 = 0 (to rounding)
    _, _, terminated, _, _ = env.step(np.zeros(2, dtype=F32))
    assert np.linalg.norm(env.state) == 3.0 and terminated is False


def test_snapshots_that_are_not_a_dict_of_this_env_are_refused() -> None:
    env = ContinuousCartPoleEnv()
    env.reset(seed=0)
    renamed = env.get_state()
    renamed["env"] = "OtherEnv"
    message = (
        "state must be a snapshot returned by get_state() of a ContinuousCartPoleEnv, got one of a OtherEnv"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        env.set_state(renamed)
    listed = env.get_state()
    listed["state"] = sorted(listed["state"])  # the right names, but not a dict
    message = "state must be a snapshot returned by get_state() of a ContinuousCartPoleEnv"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        env.set_state(listed)


def test_a_snapshot_changed_in_place_leaves_the_env_alone() -> None:
    """Snapshots are deep copies: the regulator's trail is a deque of arrays."""
    env = NonlinearRegulatorEnv()
    env.reset(seed=0)
    env.step(np.zeros(2, dtype=F32))
    trail = [point.copy() for point in env._trail]
    snapshot = env.get_state()
    for point in snapshot["state"]["_trail"]:
        point += 1.0
    snapshot["state"]["state"] += 1.0
    for point, before in zip(env._trail, trail, strict=True):
        np.testing.assert_array_equal(point, before)
    np.testing.assert_array_equal(env.state[:2], trail[-1])
