"""Does ``AdvRL/SequenceMemory-v0`` really test memory? RecurrentPPO vs PPO, same budget.

sb3-contrib's ``RecurrentPPO`` (LSTM policy) should learn to recall the cue, while SB3's
memoryless ``PPO`` cannot beat chance (1 / n_symbols = 25%). Success is measured with
deterministic actions over ``--eval-episodes`` episodes after training.

    python benchmarks/sequence_memory.py [--timesteps 80000] [--seeds 0 1]

Runs are saved under ``benchmarks/results/sequence_memory/``; ``--from-results`` prints their table
again and draws the plot (``--plot``): success rate per algorithm, mean +- std over seeds, and chance.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    mean_std,
    measure_or_load,
    save_bar_plot,
)
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

import gym_advrl  # noqa: F401

ENV_ID = "AdvRL/SequenceMemory-v0"
SHARED = dict(n_steps=64, batch_size=256, n_epochs=4, learning_rate=1e-3, gamma=0.9, ent_coef=0.01, verbose=0)


def success_rate(model, n_episodes: int, seed: int, recurrent: bool) -> float:
    env = gym.make(ENV_ID, delay=5)
    wins = 0
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed * 100_000 + episode)
        state, start = None, np.ones((1,), dtype=bool)
        while True:
            if recurrent:
                action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
            else:
                action, _ = model.predict(obs, deterministic=True)
            start = np.zeros((1,), dtype=bool)
            obs, reward, terminated, truncated, info = env.step(int(action))
            if terminated or truncated:
                wins += bool(info.get("success", False))
                break
    return wins / n_episodes


AGENTS = {
    "RecurrentPPO (LSTM)": (RecurrentPPO, "MlpLstmPolicy", {"policy_kwargs": {"lstm_hidden_size": 64}}),
    "PPO (memoryless MLP)": (PPO, "MlpPolicy", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=80_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval-episodes", type=int, default=400)
    add_results_argument(parser)
    add_plot_argument(parser, "sequence_memory")
    args = parser.parse_args()
    torch.set_num_threads(1)

    def measure(results: Results) -> None:
        for seed in args.seeds:
            for name, (cls, policy, extra) in AGENTS.items():
                env = make_vec_env(ENV_ID, n_envs=8, seed=seed, env_kwargs={"delay": 5})
                start = time.perf_counter()
                model = cls(policy, env, seed=seed, **SHARED, **extra)
                model.learn(args.timesteps)
                seconds = time.perf_counter() - start
                rate = success_rate(model, args.eval_episodes, seed, recurrent=cls is RecurrentPPO)
                results.add({"agent": name, "seed": seed, "success": rate, "seconds": seconds})
                print(f"seed {seed} {name}: success {rate:.1%}", flush=True)

    record = measure_or_load("sequence_memory", args, measure)
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    runs = record["runs"]
    groups = {
        name: {"success rate": [run["success"] for run in runs if run["agent"] == name]}
        for name in dict.fromkeys(run["agent"] for run in runs)
    }
    save_bar_plot(
        path,
        groups,
        title=f"{ENV_ID} (4 cues, delay 5) after {record['args']['timesteps']:,} steps, "
        f"{len(record['args']['seeds'])} seeds (dots: seeds)",
        ylabel="success rate (deterministic evaluation)",
        lines={"chance (1 / 4)": 0.25},
    )


def table(record: dict[str, Any]) -> str:
    args, runs = record["args"], record["runs"]
    rows = []
    for name in dict.fromkeys(run["agent"] for run in runs):
        rates = [run["success"] for run in runs if run["agent"] == name]
        seconds = sum(run["seconds"] for run in runs if run["agent"] == name)
        per_seed = ", ".join(f"{r:.0%}" for r in rates)
        rows.append([name, mean_std(rates, ".1%"), per_seed, f"{seconds / len(rates):.0f} s"])
    return (
        f"\n`{ENV_ID}` (n_symbols 4, delay 5), {args['timesteps']:,} steps, seeds {args['seeds']}, "
        f"{args['eval_episodes']} deterministic evaluation episodes each; chance = 25%\n\n"
        + markdown_table(
            ("algorithm", "success (mean +- std)", "per seed", "train time / seed"), rows, "lrlr"
        )
    )


if __name__ == "__main__":
    main()
