"""WorldModelMPC (PETS-style model predictive control) swings up ``AdvRL/Pendulum-v0``.

Trains for a few thousand environment steps with a progress bar, evaluates the planner beside a
random policy, and writes the learning curve to a PNG. This is what ``make demo`` runs.

    python examples/world_model_mpc.py [--timesteps 3000] [--out runs/demo]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from sb3_ext import WorldModelMPC
from sb3_ext.common.evaluation import random_policy_returns
from sb3_ext.plotting import RunData, plot_runs, read_monitor_files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="AdvRL/Pendulum-v0")
    parser.add_argument("--timesteps", type=int, default=3_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default="runs/demo", help="directory for the monitor log and the learning-curve PNG"
    )
    parser.add_argument(
        "--horizon", type=int, default=None, help="planning horizon (default: WorldModelMPC's)"
    )
    parser.add_argument(
        "--population-size",
        type=int,
        default=None,
        help="CEM candidates per iteration (default: WorldModelMPC's)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: planning runs many small matrix products, faster on one)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = Monitor(gym.make(args.env), filename=str(out / "train"))
    planner = {
        key: value
        for key, value in (("horizon", args.horizon), ("population_size", args.population_size))
        if value
    }
    if args.population_size:
        planner["n_elites"] = max(2, args.population_size // 10)
    model = WorldModelMPC(
        "MlpPolicy", env, learning_starts=min(200, args.timesteps // 2), seed=args.seed, **planner
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps, progress_bar=True)
    train_seconds = time.perf_counter() - start

    eval_env = Monitor(gym.make(args.env))
    eval_env.reset(seed=args.seed + 10_000)
    mpc_returns, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True, return_episode_rewards=True
    )
    rand_returns = random_policy_returns(args.env, args.eval_episodes, seed=args.seed + 10_000)

    # Training episodes (the warm-up's random ones marked), the final evaluation and the random baseline.
    env.close()  # flushes the monitor file
    ends, returns, lengths = read_monitor_files(out)
    run = RunData(
        ends,
        returns,
        lengths,
        eval_steps=np.array([model.num_timesteps]),
        eval_returns=np.array([mpc_returns]),
        warmup_steps=model.learning_starts,
        random_return=float(np.mean(rand_returns)),
    )
    png = plot_runs(
        {"WorldModelMPC": [run]},
        out / "learning_curve.png",
        title=f"WorldModelMPC on {args.env}",
        smoothing=1,
    )
    print(
        f"\n{args.env}: WorldModelMPC trained for {args.timesteps:,} environment steps ({train_seconds:.0f} s); "
        f"{args.eval_episodes} evaluation episodes\n"
    )
    print("| policy | mean return +- std |")
    print("|---|---:|")
    print(f"| WorldModelMPC (CEM mean) | {np.mean(mpc_returns):.1f} +- {np.std(mpc_returns):.1f} |")
    print(f"| random | {np.mean(rand_returns):.1f} +- {np.std(rand_returns):.1f} |")
    print(f"\nlearning curve: {png}")


if __name__ == "__main__":
    main()
