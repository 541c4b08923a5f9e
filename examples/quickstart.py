"""Quick start: make an AdvRL environment, train a Stable-Baselines3 agent on it, evaluate.

    python examples/quickstart.py [--timesteps 6000] [--env AdvRL/Pendulum-v0]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)


def random_policy_return(env_id: str, n_episodes: int, seed: int) -> tuple[float, float]:
    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns = []
    for episode in range(n_episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="AdvRL/Pendulum-v0")
    parser.add_argument("--timesteps", type=int, default=6_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = gym.make(args.env)
    model = SAC("MlpPolicy", env, learning_starts=min(1_000, args.timesteps // 2), seed=args.seed, verbose=0)
    model.learn(total_timesteps=args.timesteps, progress_bar=True)

    eval_env = gym.make(args.env)
    eval_env.reset(seed=args.seed + 1_000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    random_mean, random_std = random_policy_return(args.env, args.eval_episodes, args.seed + 1_000)
    print(f"\n{args.env}: SAC after {args.timesteps:,} steps, {args.eval_episodes} evaluation episodes\n")
    print("| policy | mean return +- std |")
    print("|---|---:|")
    print(f"| SAC (deterministic) | {mean:.1f} +- {std:.1f} |")
    print(f"| random | {random_mean:.1f} +- {random_std:.1f} |")


if __name__ == "__main__":
    main()
