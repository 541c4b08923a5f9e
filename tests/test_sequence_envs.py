"""SequenceMemory needs memory; SequenceTracking's reward and observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.envs import SequenceMemoryEnv, SequenceTrackingEnv


def run_episode(env: gym.Env, policy) -> tuple[float, dict]:
    obs, info = env.reset()
    history = [obs]
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(history))
        history.append(obs)
        if terminated or truncated:
            return reward, info


@pytest.mark.parametrize("distractors", [False, True])
def test_memoryless_policies_cannot_beat_chance(distractors: bool) -> None:
    env = gym.make("AdvRL/SequenceMemory-v0", distractors=distractors)
    env.reset(seed=0)
    # A memoryless policy sees only the current observation; at the query step that observation
    # is the same whatever the cue, so its answer there is a fixed (possibly random) choice.
    query_obs = set()
    for _ in range(50):
        env.reset()
        obs = None
        for _ in range(6):
            obs, *_ = env.step(0)
        query_obs.add(obs.tobytes())
    assert len(query_obs) == 1
    n = 4000
    for answer in range(4):
        wins = sum(run_episode(env, lambda h, a=answer: a)[1]["success"] for _ in range(n))
        assert abs(wins / n - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)


@pytest.mark.parametrize(("n_symbols", "delay", "distractors"), [(4, 5, False), (6, 12, True), (2, 0, False)])
def test_oracle_with_memory_always_succeeds(n_symbols: int, delay: int, distractors: bool) -> None:
    env = gym.make("AdvRL/SequenceMemory-v0", n_symbols=n_symbols, delay=delay, distractors=distractors)
    env.reset(seed=0)

    def oracle(history: list[np.ndarray]) -> int:
        return int(np.argmax(history[0][:n_symbols]))  # remembers the first observation

    results = [run_episode(env, oracle) for _ in range(200)]
    assert all(reward == 1.0 and info["success"] for reward, info in results)


def test_sequence_memory_episode_structure() -> None:
    env = SequenceMemoryEnv(delay=3)
    obs, info = env.reset(seed=5)
    assert obs[info["cue"]] == 1.0 and obs[4] == 1.0 and obs[5] == 0.0
    for t in range(1, 5):
        obs, reward, terminated, truncated, _ = env.step(0)
        assert reward == 0.0 and not terminated and not truncated
        assert obs[5] == (1.0 if t == 4 else 0.0) and obs[:5].sum() == 0.0
    _, reward, terminated, _, info = env.step((info["cue"] + 1) % 4)
    assert terminated and reward == -1.0 and info["success"] is False


def test_sequence_tracking_reward_and_observation() -> None:
    env = SequenceTrackingEnv(episode_length=6)
    obs, _ = env.reset(seed=0)
    env.history = [0.95]
    values = [0.95]
    for step, action in enumerate([1, 0, 0, 0, 1, 1], start=1):
        obs, reward, terminated, truncated, _ = env.step(action)
        values.append(min(max(values[-1] + (0.1 if action else -0.1), 0.0), 1.0))
        mean3 = np.mean(values[-3:])
        assert reward == pytest.approx(1 - 2 * abs(mean3 - 0.5))
        np.testing.assert_allclose(obs, [values[-1], mean3, 1.0 if action else -1.0, step / 6], rtol=1e-6)
        assert not terminated and truncated == (step == 6)
    assert max(values) == 1.0, "the value is clipped to [0, 1]"
