"""Prioritized experience replay: PERDQN next to SB3's DQN, same hyperparameters.

``PERDQN`` is SB3's ``DQN`` with ``sb3_ext.PrioritizedReplayBuffer`` (``PERQRDQN``, ``PERSAC`` and
``PERTD3`` work the same way); the buffer and its priorities survive ``save_replay_buffer``.

    python examples/per_dqn.py [--timesteps 30000] [--env CartPole-v1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from sb3_ext import PERDQN

HYPERPARAMS = dict(
    learning_rate=1e-3,
    buffer_size=50_000,
    learning_starts=1_000,
    batch_size=64,
    train_freq=4,
    target_update_interval=500,
    exploration_fraction=0.2,
    exploration_final_eps=0.05,
    gamma=0.99,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--timesteps", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for small networks)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    hyperparams = {**HYPERPARAMS, "learning_starts": min(HYPERPARAMS["learning_starts"], args.timesteps // 2)}
    results = {}
    for cls in (DQN, PERDQN):
        extra = {"replay_buffer_kwargs": {"alpha": 0.6, "beta": 0.4}} if cls is PERDQN else {}
        model = cls("MlpPolicy", args.env, seed=args.seed, **hyperparams, **extra)
        model.learn(args.timesteps, progress_bar=True)
        env = Monitor(gym.make(args.env))
        env.reset(seed=args.seed + 1_000)
        results[cls.__name__] = evaluate_policy(model, env, n_eval_episodes=10)
    print(f"\n{args.env}, {args.timesteps:,} steps, seed {args.seed}\n")
    print("| algorithm | mean return +- std (10 episodes) |")
    print("|---|---:|")
    for name, (mean, std) in results.items():
        print(f"| {name} | {mean:.1f} +- {std:.1f} |")

    with tempfile.TemporaryDirectory() as folder:  # priorities are saved with the transitions
        model.save_replay_buffer(Path(folder) / "buffer")
        reloaded = PERDQN("MlpPolicy", args.env, **hyperparams)
        reloaded.load_replay_buffer(Path(folder) / "buffer")
        print(
            f"\nreloaded buffer: {reloaded.replay_buffer.size():,} transitions, "
            f"total priority {reloaded.replay_buffer.tree.total:.3g}"
        )


if __name__ == "__main__":
    main()
