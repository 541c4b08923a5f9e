"""Quick start: make an AdvRL environment, train a Stable-Baselines3 agent on it, evaluate.

python examples/quickstart.py [--timesteps 6000] [--env AdvRL/Pendulum-v0]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from sb3_ext.common.evaluation import random_policy_returns


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="AdvRL/Pendulum-v0")
    parser.add_argument("--timesteps", type=int, default=6_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for small networks)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    env = gym.make(args.env)
    model = SAC("MlpPolicy", env, learning_starts=min(1_000, args.timesteps // 2), seed=args.seed, verbose=0)
    model.learn(total_timesteps=args.timesteps, progress_bar=True)

    eval_env = Monitor(gym.make(args.env))
    eval_env.reset(seed=args.seed + 1_000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    random_returns = random_policy_returns(args.env, args.eval_episodes, seed=args.seed + 1_000)
    print(f"\n{args.env}: SAC after {args.timesteps:,} steps, {args.eval_episodes} evaluation episodes\n")
    print("| policy | mean return +- std |")
    print("|---|---:|")
    print(f"| SAC (deterministic) | {mean:.1f} +- {std:.1f} |")
    print(f"| random | {random_returns.mean():.1f} +- {random_returns.std():.1f} |")


if __name__ == "__main__":
    main()
