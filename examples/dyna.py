"""Dyna: planning with a learned model, tabular and deep.

``TabularDynaQ`` (Sutton & Barto's Dyna-Q, with the Dyna-Q+ bonus ``kappa``) on a walled grid with
index observations, against the same agent without planning; then deep ``Dyna`` (DQN + a learned
ensemble that imagines transitions) on coordinate observations.

    python examples/dyna.py [--timesteps 3000]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from gym_advrl.envs.grid_world import DYNA_MAZE
from sb3_ext import Dyna, TabularDynaQ


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for small networks)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    greedy_returns = {}
    for planning_steps in (0, 50):
        env = Monitor(gym.make("AdvRL/GridWorld-v0", layout=DYNA_MAZE, obs_mode="index"))
        model = TabularDynaQ("TabularPolicy", env, planning_steps=planning_steps, seed=args.seed)
        model.learn(args.timesteps, progress_bar=True)
        greedy_returns[planning_steps], _ = evaluate_policy(model, env, n_eval_episodes=1)
    print(
        f"\nDyna maze (GridWorld layout, index observations), {args.timesteps:,} steps; optimal return 8.7\n"
    )
    print("| agent | greedy return |")
    print("|---|---:|")
    for planning_steps, mean in greedy_returns.items():
        print(f"| TabularDynaQ, {planning_steps} planning steps | {mean:.1f} |")

    env = Monitor(gym.make("AdvRL/GridWorld-v0", size=6))
    model = Dyna(
        "MlpPolicy",
        env,
        planning_steps=10,
        real_ratio=0.5,
        model_train_freq=250,
        learning_starts=min(500, args.timesteps // 2),
        seed=args.seed,
    )
    model.learn(args.timesteps, progress_bar=True)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=1)
    print(
        f"\ndeep Dyna on GridWorld-v0 6x6 (coordinates): greedy return {mean:.1f} (optimal 9.1); "
        f"imagined transitions stored: {model.model_buffer.size():,}"
    )


if __name__ == "__main__":
    main()
