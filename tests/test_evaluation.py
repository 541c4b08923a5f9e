"""random_policy_returns: the seeded random baseline printed beside trained agents."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from sb3_ext.common.evaluation import random_policy_returns


def rollout_lengths(env_id: str, n_episodes: int, seed: int, **env_kwargs) -> list[int]:
    """Episode lengths of the documented protocol: episode i reset with seed + i, actions from the
    action space seeded once with seed."""
    env = gym.make(env_id, **env_kwargs)
    env.action_space.seed(seed)
    lengths = []
    for episode in range(n_episodes):
        env.reset(seed=seed + episode)
        steps, done = 0, False
        while not done:
            steps += 1
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
        lengths.append(steps)
    return lengths


def test_returns_follow_the_seeded_protocol():
    # CartPole pays 1 per step, so each return is its episode's length.
    returns = random_policy_returns("CartPole-v1", 6, seed=3)
    assert returns.shape == (6,) and returns.dtype == np.float64
    assert returns.tolist() == rollout_lengths("CartPole-v1", 6, seed=3)
    assert len(set(returns.tolist())) > 1  # each episode has its own reset seed
    assert random_policy_returns("CartPole-v1", 6, seed=3).tolist() == returns.tolist()
    assert random_policy_returns("CartPole-v1", 6, seed=4).tolist() != returns.tolist()


def test_env_kwargs_reach_the_env():
    returns = random_policy_returns("CartPole-v1", 4, seed=0, env_kwargs={"max_episode_steps": 5})
    assert returns.tolist() == rollout_lengths("CartPole-v1", 4, seed=0, max_episode_steps=5)
    assert returns.max() <= 5 < random_policy_returns("CartPole-v1", 4, seed=0).max()


def test_returns_sum_every_reward_of_an_episode():
    # Pendulum pays a negative reward each of its 200 steps; a random policy's return is a sum of them.
    env = gym.make("AdvRL/Pendulum-v0")
    env.action_space.seed(1)
    env.reset(seed=1)
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += reward
        done = terminated or truncated
    np.testing.assert_allclose(random_policy_returns("AdvRL/Pendulum-v0", 1, seed=1), [total])


def test_seed_defaults_to_zero():
    assert random_policy_returns("CartPole-v1", 3).tolist() == rollout_lengths("CartPole-v1", 3, seed=0)
