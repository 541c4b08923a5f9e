"""AuxDQN on an image grid world: auxiliary tasks and random-shift augmentation on a CNN.

The Q-network's CNN encoder is shared with reward-prediction, next-latent-prediction and
inverse-dynamics heads (``*_coef`` weights); image observations are augmented by random shifts.
Each auxiliary loss is logged as ``train/<task>_loss`` (TensorBoard with ``tensorboard_log=...``).

    python examples/aux_dqn.py [--timesteps 20000]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from sb3_ext import AuxDQN

ENV_KWARGS = {"size": 5, "obs_mode": "rgb"}  # (40, 40, 3) uint8 top views


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for small networks)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    env = gym.make("AdvRL/GridWorld-v0", **ENV_KWARGS)
    model = AuxDQN(
        "CnnPolicy", env, reward_coef=0.1, latent_coef=0.1, inverse_coef=0.1, augmentation="shift", double_q=True,
        learning_starts=min(1_000, args.timesteps // 2), exploration_fraction=0.3, buffer_size=20_000,
        policy_kwargs={"normalize_images": True}, seed=args.seed,
    )  # fmt: skip
    model.learn(args.timesteps, progress_bar=True)
    eval_env = Monitor(gym.make("AdvRL/GridWorld-v0", **ENV_KWARGS))
    eval_env.reset(seed=args.seed + 1_000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=5)
    print(
        f"AuxDQN (CNN, shift augmentation) on GridWorld-v0 rgb after {args.timesteps:,} steps: "
        f"mean return {mean:.2f} +- {std:.2f} (optimal 9.3)"
    )


if __name__ == "__main__":
    main()
