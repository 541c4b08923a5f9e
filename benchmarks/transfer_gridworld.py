"""Benchmark: episodes to the optimal return after a goal move, fine-tuning vs learning from scratch.

For each seed a DQN agent learns ``AdvRL/GridWorld-v0`` (5x5, random start cells) with the goal
at the source cell until its greedy policy is optimal from every start (budget
``--source-timesteps``). For each target goal, two agents with identical settings then learn the
moved goal (switched by ``GoalSchedule``): one initialized with the source agent's Q-network,
one from random weights. The figure is the number of training episodes (and env steps) until
the greedy policy is optimal from every start cell; an agent that does not get there within
the budget counts as the budget. Prints a markdown table, mean +- std over seeds.

    python benchmarks/transfer_gridworld.py [--source-timesteps 4000] [--timesteps 4000] [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SOURCE = (4, 4)
TARGETS = [(3, 4), (2, 2), (0, 4)]


def load_example():
    """The training code of ``examples/transfer_gridworld.py`` (one source of truth)."""
    spec = importlib.util.spec_from_file_location("transfer_example", ROOT / "examples" / "transfer_gridworld.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-timesteps", type=int, default=4_000)
    parser.add_argument("--timesteps", type=int, default=4_000, help="budget on each target goal")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    torch.set_num_threads(1)
    example = load_example()

    # results[target][agent] -> list of (episodes, steps, solved)
    results = {target: {"fine-tuned": [], "scratch": []} for target in TARGETS}
    start = time.time()
    for seed in args.seeds:
        source_model, source_ok = example.train_source(SOURCE, TARGETS[0], args.source_timesteps, seed)
        for target in TARGETS:
            for agent, init in (("fine-tuned", source_model), ("scratch", None)):
                solved = example.learn_target(SOURCE, target, args.timesteps, seed + 100, init)
                entry = (solved[0], solved[1], True) if solved else (np.nan, args.timesteps, False)
                results[target][agent].append(entry)
            print(f"seed {seed} (source optimal: {source_ok}) target {target}: "
                  f"fine-tuned {results[target]['fine-tuned'][-1]}, scratch {results[target]['scratch'][-1]} "
                  f"({time.time() - start:.0f} s)", flush=True)

    print(
        f"\nDQN on AdvRL/GridWorld-v0 5x5 (random starts), source goal {SOURCE} trained to optimal (at most {args.source_timesteps:,} steps); "
        f"budget {args.timesteps:,} steps per target; seeds {args.seeds}\n"
    )
    print("| target goal | agent | solved | episodes to optimal | env steps to optimal |")
    print("|---|---|---:|---:|---:|")
    for target, agents in results.items():
        for agent, runs in agents.items():
            episodes = np.array([r[0] for r in runs], dtype=float)
            steps = np.array([r[1] for r in runs], dtype=float)
            solved = sum(r[2] for r in runs)
            ep = f"{np.nanmean(episodes):.0f} +- {np.nanstd(episodes):.0f}" if solved else "-"
            print(f"| {target} | {agent} | {solved}/{len(runs)} | {ep} | {steps.mean():.0f} +- {steps.std():.0f} |")
    print("\nEpisodes are averaged over the solved runs; steps count an unsolved run as the full budget.")
    print(f"total time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
