"""OptionCritic on the four-rooms domain; the running options are the ``predict`` state.

python examples/option_critic.py [--timesteps 50000]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.env_util import make_vec_env

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from sb3_ext import OptionCritic


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for small networks)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    vec_env = make_vec_env("AdvRL/FourRooms-v0", n_envs=4, seed=args.seed)  # n-step returns over 4 envs
    model = OptionCritic("MlpPolicy", vec_env, n_options=4, termination_reg=0.01, seed=args.seed)
    model.learn(args.timesteps, progress_bar=True)

    # Like sb3-contrib's recurrent policies: pass the state back in, and episode_start at resets.
    env = gym.make("AdvRL/FourRooms-v0")
    lengths, options_used = [], []
    for episode in range(5):
        obs, _ = env.reset(seed=args.seed + 1_000 + episode)
        state, start, done, steps = None, np.ones((1,), dtype=bool), False, 0
        while not done:
            action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
            options_used.append(int(np.asarray(state).ravel()[0]))
            obs, _, terminated, truncated, _ = env.step(int(action))
            start, done, steps = np.zeros((1,), dtype=bool), terminated or truncated, steps + 1
        lengths.append(steps)
    shares = np.bincount(options_used, minlength=4) / len(options_used)
    print(
        f"OptionCritic on FourRooms-v0 after {args.timesteps:,} steps: mean steps to the goal {np.mean(lengths):.1f} "
        f"(random policy ~300); option shares {np.round(shares, 2).tolist()}"
    )


if __name__ == "__main__":
    main()
