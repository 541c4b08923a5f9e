"""Physics, rewards and arguments of the continuous-control envs against their references."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.envs import ContinuousCartPoleEnv, NonlinearRegulatorEnv, PendulumEnv

CONTINUOUS_IDS = ["AdvRL/ContinuousCartPole-v0", "AdvRL/Pendulum-v0", "AdvRL/NonlinearRegulator-v0"]


# ---------------------------------------------------------------------------- Pendulum
def test_pendulum_matches_gymnasium_pendulum_v1_step_for_step() -> None:
    ours, ref = gym.make("AdvRL/Pendulum-v0"), gym.make("Pendulum-v1")
    for seed in (0, 1, 2):
        obs, _ = ours.reset(seed=seed)
        ref_obs, _ = ref.reset(seed=seed)
        np.testing.assert_array_equal(obs, ref_obs)
        actions = np.random.default_rng(seed).uniform(-3.0, 3.0, size=(200, 1)).astype(np.float32)
        max_diff = 0.0
        for t, action in enumerate(actions):
            obs, reward, terminated, truncated, _ = ours.step(action)
            ref_obs, ref_reward, ref_terminated, ref_truncated, _ = ref.step(action)
            max_diff = max(max_diff, float(np.max(np.abs(obs - ref_obs))), abs(reward - ref_reward))
            assert (terminated, truncated) == (ref_terminated, ref_truncated), t
        assert truncated, "200 steps should end in truncation, as Pendulum-v1"
        assert max_diff <= 1e-6


@pytest.mark.parametrize(
    "physics", [{"g": 5.0}, {"m": 2.0}, {"l": 0.5}, {"damping": 0.5}, {"max_torque": 0.5}]
)
def test_pendulum_physics_kwargs_and_reset_options_take_effect(physics: dict) -> None:
    def trajectory(env: gym.Env, options: dict | None = None) -> np.ndarray:
        env.reset(seed=4, options=options)
        return np.array([env.step(np.array([1.5], dtype=np.float32))[0] for _ in range(20)])

    default = trajectory(gym.make("AdvRL/Pendulum-v0"))
    with_kwargs = trajectory(gym.make("AdvRL/Pendulum-v0", **physics))
    env = gym.make("AdvRL/Pendulum-v0")
    with_options = trajectory(env, {"physics": physics})
    assert not np.allclose(default, with_kwargs)
    np.testing.assert_array_equal(with_kwargs, with_options)
    # The override lasts one episode: the next plain reset is back to the constructor physics.
    np.testing.assert_array_equal(trajectory(env), default)
    _, info = env.reset(seed=0, options={"physics": physics})
    assert all(info["physics"][key] == value for key, value in physics.items())


def test_pendulum_analytic_step_with_changed_physics() -> None:
    env = PendulumEnv(g=9.0, m=2.0, l=0.5, damping=0.3)
    env.reset(seed=0)
    env.state = np.array([0.4, -0.7])
    obs, reward, *_ = env.step(np.array([1.2], dtype=np.float32))
    thdot = -0.7 + (3 * 9.0 / (2 * 0.5) * np.sin(0.4) + 3.0 / (2.0 * 0.25) * (1.2 - 0.3 * -0.7)) * 0.05
    th = 0.4 + thdot * 0.05
    np.testing.assert_allclose(obs, [np.cos(th), np.sin(th), thdot], rtol=1e-6)
    assert reward == pytest.approx(-(0.4**2 + 0.1 * 0.49 + 0.001 * 1.44))


# ---------------------------------------------------------------------------- CartPole
def test_continuous_cartpole_matches_cartpole_v1_pushes() -> None:
    ours, ref = ContinuousCartPoleEnv(), gym.make("CartPole-v1").unwrapped
    rng = np.random.default_rng(0)
    for seed in range(5):
        ours.reset(seed=seed)
        ref.reset(seed=seed)
        ours.state = tuple(float(v) for v in ref.state)
        for _ in range(200):
            push = int(rng.integers(2))
            obs, reward, terminated, *_ = ours.step(np.array([2.0 * push - 1.0], dtype=np.float32))
            ref_obs, ref_reward, ref_terminated, *_ = ref.step(push)
            np.testing.assert_allclose(obs, ref_obs, rtol=0, atol=1e-6)
            assert (reward, terminated) == (ref_reward, ref_terminated)
            if terminated:
                break


def test_continuous_cartpole_physics_options_take_effect() -> None:
    env = gym.make("AdvRL/ContinuousCartPole-v0")
    env.reset(seed=0)
    default = env.step(np.array([1.0], dtype=np.float32))[0]
    _, info = env.reset(seed=0, options={"physics": {"masscart": 3.0, "force_mag": 5.0}})
    assert info["physics"]["masscart"] == 3.0 and info["physics"]["force_mag"] == 5.0
    changed = env.step(np.array([1.0], dtype=np.float32))[0]
    assert changed[1] < default[1] / 4, "a heavier cart and a weaker push must accelerate less"
    heavy = gym.make("AdvRL/ContinuousCartPole-v0", masscart=3.0, force_mag=5.0)
    heavy.reset(seed=0)
    np.testing.assert_array_equal(heavy.step(np.array([1.0], dtype=np.float32))[0], changed)


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        ((2.39, 1.0, 0.0, 0.0), True),  # over the right end of the track
        ((-2.39, -1.0, 0.0, 0.0), True),  # over the left end
        ((0.0, 0.0, 0.205, 1.0), True),  # the pole falls to the right
        ((0.0, 0.0, -0.205, -1.0), True),  # the pole falls to the left
        ((2.39, -1.0, 0.2, -1.0), False),  # near the right limits, moving back
        ((-2.39, 1.0, -0.2, 1.0), False),  # near the left limits, moving back
    ],
)
def test_cartpole_termination_fn_agrees_with_step_on_both_sides(state: tuple, terminal: bool) -> None:
    """Random rollouts rarely end on the left or with the pole to the left first: test each limit."""
    env = ContinuousCartPoleEnv()
    env.reset(seed=0)
    env.state = state
    next_obs, _, terminated, _, _ = env.step(np.zeros(1, dtype=np.float32))
    assert terminated is terminal
    assert env.termination_fn(next_obs).item() is terminal
    # The same observation inside a batch, and its mirror image (both sides at once).
    batch = np.stack([next_obs, -next_obs, np.zeros(4)])
    np.testing.assert_array_equal(env.termination_fn(batch), [terminal, terminal, False])


# ---------------------------------------------------------------------------- Regulator
def test_regulator_dynamics_without_noise() -> None:
    env = NonlinearRegulatorEnv(process_noise=0.0)
    env.reset(seed=0)
    s = np.array([0.3, -0.5, 0.2, 0.4])
    env.state = s.copy()
    a = np.array([0.5, -0.25])
    obs, reward, terminated, *_ = env.step(a.astype(np.float32))
    expected = np.array(
        [
            s[0] + 0.1 * a[0] + 0.05 * np.sin(s[1]),
            s[1] + 0.1 * a[1] + 0.02 * s[0] * s[2],
            0.9 * s[2] + 0.1 * np.tanh(a[0] + a[1]),
        ]
    )
    np.testing.assert_allclose(obs[:3], expected, rtol=1e-6)
    assert abs(obs[3] - 0.95 * s[3]) < 0.1  # only the nuisance state carries noise here
    assert reward == pytest.approx(-float(np.sum(env.state**2)) - 0.01 * float(np.sum(a**2)))
    assert not terminated
    env.state = np.array([2.5, 2.0, 0.0, 0.0])
    assert env.step(np.zeros(2, dtype=np.float32))[2], "norm above 3 must terminate"


# ---------------------------------------------------------------------------- planning interface
@pytest.mark.parametrize("env_id", CONTINUOUS_IDS)
def test_reward_and_termination_fn_agree_with_step_on_random_batches(env_id: str) -> None:
    env = gym.make(env_id)
    base = env.unwrapped
    obs_batch, action_batch, next_batch, rewards, terms = [], [], [], [], []
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(300):
        action = env.action_space.sample() * 1.5  # includes out-of-range actions, which are clipped
        next_obs, reward, terminated, truncated, _ = env.step(action)
        obs_batch.append(obs), action_batch.append(action), next_batch.append(next_obs)
        rewards.append(reward), terms.append(terminated)
        obs = env.reset()[0] if terminated or truncated else next_obs
    obs_b, act_b, next_b = (np.array(x).reshape(3, 100, -1) for x in (obs_batch, action_batch, next_batch))
    predicted = base.reward_fn(obs_b, act_b, next_b)
    assert predicted.shape == (3, 100)
    np.testing.assert_allclose(predicted.ravel(), rewards, rtol=1e-5, atol=1e-5)
    predicted_terms = base.termination_fn(next_b)
    assert predicted_terms.shape == (3, 100) and predicted_terms.dtype == bool
    np.testing.assert_array_equal(predicted_terms.ravel(), terms)
    if env_id != "AdvRL/Pendulum-v0":
        assert any(terms), "the random batch should include terminal transitions"
    with pytest.raises(ValueError, match="next_obs must have trailing dim"):
        base.termination_fn(np.zeros((5, 7)))
    with pytest.raises(ValueError, match="must have trailing dim"):
        base.reward_fn(np.zeros((5, 7)), np.zeros((5, 7)), np.zeros((5, 7)))


# ---------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("env_id", "kwargs", "name"),
    [
        ("AdvRL/Pendulum-v0", {"m": -1.0}, "m"),
        ("AdvRL/Pendulum-v0", {"g": float("nan")}, "g"),
        ("AdvRL/Pendulum-v0", {"damping": -0.1}, "damping"),
        ("AdvRL/Pendulum-v0", {"max_torque": 0.0}, "max_torque"),
        ("AdvRL/Pendulum-v0", {"dt": "fast"}, "dt"),
        ("AdvRL/ContinuousCartPole-v0", {"length": 0.0}, "length"),
        ("AdvRL/ContinuousCartPole-v0", {"tau": -0.02}, "tau"),
        ("AdvRL/NonlinearRegulator-v0", {"process_noise": -1.0}, "process_noise"),
        ("AdvRL/GridWorld-v0", {"size": 1}, "size"),
        ("AdvRL/GridWorld-v0", {"size": (3, 4, 5)}, "size"),
        ("AdvRL/GridWorld-v0", {"goal": (5, 5)}, "goal"),
        ("AdvRL/GridWorld-v0", {"walls": [(4, 4)]}, "goal"),
        ("AdvRL/GridWorld-v0", {"walls": [(9, 0)]}, "walls"),
        ("AdvRL/GridWorld-v0", {"slip": 1.5}, "slip"),
        ("AdvRL/GridWorld-v0", {"obs_mode": "pixels"}, "obs_mode"),
        ("AdvRL/GridWorld-v0", {"layout": "#.X\n..."}, "layout"),
        ("AdvRL/GridWorld-v0", {"start": (4, 4)}, "start and goal"),
        ("AdvRL/FourRooms-v0", {"goal": (0, 0)}, "goal"),
        ("AdvRL/SequenceMemory-v0", {"n_symbols": 1}, "n_symbols"),
        ("AdvRL/SequenceMemory-v0", {"delay": -1}, "delay"),
        ("AdvRL/SequenceMemory-v0", {"distractors": "yes"}, "distractors"),
        ("AdvRL/SequenceTracking-v0", {"episode_length": 0}, "episode_length"),
    ],
)
def test_invalid_constructor_arguments_name_the_argument(env_id: str, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        gym.make(env_id, **kwargs)


@pytest.mark.parametrize(
    ("env_id", "options", "name"),
    [
        ("AdvRL/Pendulum-v0", {"physics": {"mass": 2.0}}, "mass"),
        ("AdvRL/Pendulum-v0", {"physics": {"m": 0.0}}, "m"),
        ("AdvRL/ContinuousCartPole-v0", {"physics": {"gravity": -9.8}}, "gravity"),
        ("AdvRL/ContinuousCartPole-v0", {"gravitty": 9.8}, "gravitty"),
        ("AdvRL/GridWorld-v0", {"goal": (7, 7)}, "goal"),
    ],
)
def test_invalid_reset_options_name_the_argument(env_id: str, options: dict, name: str) -> None:
    env = gym.make(env_id)
    with pytest.raises(ValueError, match=name):
        env.reset(seed=0, options=options)


def test_step_before_reset_is_an_error() -> None:
    env = PendulumEnv()
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros(1, dtype=np.float32))
