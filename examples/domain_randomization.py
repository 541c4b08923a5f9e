"""Domain randomization: SAC on AdvRL/Pendulum-v0 trained with random pole masses and lengths.

Trains one SAC agent on nominal physics (m = l = 1) and one with ``DomainRandomization`` over
the pole mass and length, then evaluates both, on the same start states, on physics neither saw
exactly. The sampled parameters are logged to TensorBoard by ``WrapperInfoCallback`` when
``--tensorboard DIR`` is given.

    python examples/domain_randomization.py [--timesteps 8000] [--seed 0] [--tensorboard runs]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from gym_advrl.wrappers import DomainRandomization
from sb3_ext import WrapperInfoCallback

ENV_ID = "AdvRL/Pendulum-v0"
#: Training ranges of the randomized agent.
TRAIN_RANGES = {"m": (0.5, 2.0), "l": (0.5, 1.5)}
#: SAC settings for a small CPU budget (RL Zoo's Pendulum learning rate, smaller networks).
SAC_KWARGS = {"learning_rate": 1e-3, "policy_kwargs": {"net_arch": [128, 128]}}


def train_sac(timesteps: int, seed: int, randomize: bool, tensorboard_log: str | None = None) -> SAC:
    """Train SAC on the pendulum, with or without randomized mass and length."""
    env = gym.make(ENV_ID)
    if randomize:
        env = DomainRandomization(env, TRAIN_RANGES)
    model = SAC(
        "MlpPolicy",
        env,
        learning_starts=min(1_000, timesteps // 2),
        seed=seed,
        tensorboard_log=tensorboard_log,
        verbose=0,
        **SAC_KWARGS,
    )
    name = "sac_randomized" if randomize else "sac_nominal"
    model.learn(
        total_timesteps=timesteps, callback=WrapperInfoCallback(), tb_log_name=name, progress_bar=True
    )
    return model


def evaluate_on_physics(
    model: SAC, masses: list[float], lengths: list[float], n_episodes: int, seed: int
) -> np.ndarray:
    """Mean deterministic return on each ``(mass, length)``: an array ``(len(masses), len(lengths))``.

    All ``len(masses) * len(lengths) * n_episodes`` episodes run in lockstep with one batched
    ``predict`` per step. Episode ``k`` of every cell starts from the state drawn by seed
    ``seed + k``, so different models and cells are compared on identical start states.
    """
    cells = [(m, length, k) for m in masses for length in lengths for k in range(n_episodes)]
    envs = [gym.make(ENV_ID) for _ in cells]
    obs = np.stack(
        [
            env.reset(seed=seed + k, options={"physics": {"m": m, "l": length}})[0]
            for env, (m, length, k) in zip(envs, cells, strict=True)
        ]
    )
    returns = np.zeros(len(cells))
    done = np.zeros(len(cells), dtype=bool)
    while not done.all():
        actions, _ = model.predict(obs, deterministic=True)
        for i, env in enumerate(envs):
            if done[i]:
                continue
            obs[i], reward, terminated, truncated, _ = env.step(actions[i])
            returns[i] += reward
            done[i] = terminated or truncated
    return returns.reshape(len(masses), len(lengths), n_episodes).mean(axis=2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=8_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=2)
    parser.add_argument("--tensorboard", default=None, help="TensorBoard log directory (optional)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for small networks)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    masses, lengths = [0.7, 1.3, 1.8], [0.7, 1.2]
    table = {}
    for randomize in (False, True):
        model = train_sac(args.timesteps, args.seed, randomize, args.tensorboard)
        table[randomize] = evaluate_on_physics(model, masses, lengths, args.eval_episodes, seed=10_000)

    print(f"\nSAC on {ENV_ID}, {args.timesteps:,} steps, seed {args.seed}: mean return per (mass, length)\n")
    header = [f"m={m}, l={length}" for m in masses for length in lengths]
    print("| training physics | " + " | ".join(header) + " | mean |")
    print("|---|" + "---:|" * (len(header) + 1))
    for randomize, grid in table.items():
        label = (
            f"randomized m in {TRAIN_RANGES['m']}, l in {TRAIN_RANGES['l']}"
            if randomize
            else "nominal m = l = 1"
        )
        print(f"| {label} | " + " | ".join(f"{v:.0f}" for v in grid.ravel()) + f" | {grid.mean():.0f} |")


if __name__ == "__main__":
    main()
