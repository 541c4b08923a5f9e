"""Use the environments without Stable-Baselines3 or torch: tabular Q-learning in plain numpy.

``gym_advrl`` depends only on gymnasium, numpy and pettingzoo, so its envs drop into any code
base. Here the four-rooms domain (index observations) is solved by Q-learning, and the learned
greedy policy is compared with a random one.

    python examples/standalone_env.py [--timesteps 100000]
"""

from __future__ import annotations

import argparse
import sys

import gymnasium as gym
import numpy as np

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)


def q_learning(
    env: gym.Env, timesteps: int, seed: int, alpha: float = 0.1, gamma: float = 0.99, epsilon: float = 0.1
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q_table = np.zeros((env.observation_space.n, env.action_space.n))
    obs, _ = env.reset(seed=seed)
    for _ in range(timesteps):
        if rng.random() < epsilon:
            action = int(rng.integers(env.action_space.n))
        else:  # greedy with random tie-breaking
            best = np.flatnonzero(q_table[obs] == q_table[obs].max())
            action = int(rng.choice(best))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        target = reward + (0.0 if terminated else gamma * q_table[next_obs].max())
        q_table[obs, action] += alpha * (target - q_table[obs, action])
        obs = env.reset()[0] if terminated or truncated else next_obs
    return q_table


def mean_episode_length(env: gym.Env, policy, episodes: int, seed: int) -> float:
    lengths = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        steps, done = 0, False
        while not done:  # the registered time limit truncates episodes
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            steps, done = steps + 1, terminated or truncated
        lengths.append(steps)
    return float(np.mean(lengths))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = gym.make("AdvRL/FourRooms-v0")  # Discrete(169) observations, 2/3 move success, 500-step limit
    q_table = q_learning(env, args.timesteps, args.seed)
    rng = np.random.default_rng(args.seed)
    greedy = mean_episode_length(env, lambda obs: int(np.argmax(q_table[obs])), args.episodes, seed=10_000)
    random = mean_episode_length(env, lambda obs: int(rng.integers(4)), args.episodes, seed=10_000)
    print(
        f"AdvRL/FourRooms-v0, Q-learning for {args.timesteps:,} steps: mean steps to the goal "
        f"{greedy:.1f} (greedy) vs {random:.1f} (random policy), {args.episodes} episodes"
    )
    print(
        f"torch imported: {'torch' in sys.modules}; stable_baselines3 imported: {'stable_baselines3' in sys.modules}"
    )


if __name__ == "__main__":
    main()
