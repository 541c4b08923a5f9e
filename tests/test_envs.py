"""API contract tests run on every registered ``AdvRL/`` environment."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tests.conftest import ADVRL_IDS

EXPECTED_IDS = {
    "AdvRL/GridWorld-v0",
    "AdvRL/FourRooms-v0",
    "AdvRL/ContinuousCartPole-v0",
    "AdvRL/Pendulum-v0",
    "AdvRL/SequenceMemory-v0",
    "AdvRL/SequenceTracking-v0",
    "AdvRL/NonlinearRegulator-v0",
    "AdvRL/QuantumGate-v0",
}


def allow_deliberate_design_warnings() -> None:
    """Checker warnings that flag deliberate choices; every other warning fails the test.

    Unbounded velocities mirror CartPole-v1, and Pendulum's action space keeps Pendulum-v1's
    torque units ([-2, 2]) so that it stays step-for-step identical to it.
    """
    warnings.filterwarnings("ignore", message=".*infinity.*", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*symmetric and normalized.*", category=UserWarning)


def as_array(obs) -> np.ndarray:
    """An observation as one array (a goal env's ``Dict`` concatenated in key order)."""
    if isinstance(obs, dict):
        return np.concatenate([np.ravel(obs[key]) for key in sorted(obs)])
    return np.array(obs, copy=True)


def rollout(env: gym.Env, seed: int, n_steps: int = 60) -> list[tuple]:
    """A trajectory under actions drawn from a seeded action space, resetting at episode ends."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trajectory = [(as_array(obs),)]
    for _ in range(n_steps):
        action = env.action_space.sample()
        obs, reward, terminated, truncated, _ = env.step(action)
        trajectory.append((as_array(obs), reward, terminated, truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            trajectory.append((as_array(obs),))
    return trajectory


def test_import_registers_all_ids_without_torch() -> None:
    code = (
        "import sys, gymnasium as gym, gym_advrl;"
        "ids = sorted(k for k in gym.registry if k.startswith('AdvRL/'));"
        "print(ids);"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "assert 'stable_baselines3' not in sys.modules, 'stable_baselines3 imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    registered = set(eval(result.stdout))  # noqa: S307 - our own subprocess output
    assert EXPECTED_IDS <= registered


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_registered_with_time_limit(env_id: str) -> None:
    spec = gym.spec(env_id)
    assert spec.max_episode_steps is not None and spec.max_episode_steps > 0


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        allow_deliberate_design_warnings()
        gym_check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_sb3_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        allow_deliberate_design_warnings()
        # SB3's checker calls a goal env's compute_reward on the env it is given, which Gymnasium
        # 1.x wrappers do not forward (SB3's HerReplayBuffer reaches it through the VecEnv).
        sb3_check_env(env.unwrapped if hasattr(env.unwrapped, "compute_reward") else env, warn=True)
    env.close()


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_same_seed_same_trajectory(env_id: str) -> None:
    first = rollout(gym.make(env_id), seed=123)
    second = rollout(gym.make(env_id), seed=123)
    other = rollout(gym.make(env_id), seed=7)
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    differs = len(first) != len(other) or any(
        not np.array_equal(x, y)
        for a, b in zip(first, other, strict=False)
        for x, y in zip(a, b, strict=False)
    )
    assert differs, "a different seed should give a different trajectory"


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_render_rgb_array(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frames = [env.render()]
    env.step(env.action_space.sample())
    frames.append(env.render())
    for frame in frames:
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] >= 16 and frame.shape[1] >= 16
        assert frame.min() < frame.max(), "a frame should not be a single flat colour"
    env.close()


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_render_ansi_where_supported(env_id: str) -> None:
    env = gym.make(env_id)
    if "ansi" not in env.metadata.get("render_modes", []):
        pytest.skip("no text rendering for this env")
    env = gym.make(env_id, render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str) and text.strip()


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_pickle_roundtrip_keeps_state(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=3)
    clone = pickle.loads(pickle.dumps(env))
    action = env.action_space.sample()
    np.testing.assert_array_equal(as_array(env.step(action)[0]), as_array(clone.step(action)[0]))


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_bad_render_mode_rejected(env_id: str) -> None:
    with pytest.raises(ValueError, match="render_mode"):
        gym.make(env_id, render_mode="unknown-mode")


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_bad_actions_rejected(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        for bad in (space.start + space.n, space.start - 1, 1.5, np.nan):
            with pytest.raises(ValueError, match="action"):
                env.step(bad)
    elif isinstance(space, spaces.Box):
        for bad_value in (np.nan, np.inf, -np.inf):
            action = np.zeros(space.shape, dtype=np.float32)
            action.flat[0] = bad_value
            with pytest.raises(ValueError, match="action"):
                env.step(action)
        with pytest.raises(ValueError, match="action"):
            env.step(np.zeros((space.shape[0] + 1,), dtype=np.float32))
    else:  # pragma: no cover - every single-agent env uses Discrete or Box actions
        pytest.fail(f"untested action space {space}")


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_out_of_range_box_actions_are_clipped(env_id: str) -> None:
    env_a, env_b = gym.make(env_id), gym.make(env_id)
    if not isinstance(env_a.action_space, spaces.Box):
        pytest.skip("Discrete actions")
    space = env_a.action_space
    env_a.reset(seed=11)
    env_b.reset(seed=11)
    for scale in (10.0, -10.0, 3.0):
        big = np.full(space.shape, scale, dtype=np.float32) * np.maximum(np.abs(space.high), 1.0)
        clipped = np.clip(big, space.low, space.high)
        out_a, out_b = env_a.step(big), env_b.step(clipped)
        np.testing.assert_array_equal(as_array(out_a[0]), as_array(out_b[0]))
        assert out_a[1] == out_b[1]
