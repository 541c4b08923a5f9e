"""Benchmark: episodes to the optimal return after a goal move, fine-tuning vs learning from scratch.

For each seed a DQN agent learns ``AdvRL/GridWorld-v0`` (5x5, random start cells) with the goal
at the source cell until its greedy policy is optimal from every start (budget
``--source-timesteps``). For each target goal, two agents with identical settings then learn the
moved goal (switched by ``GoalSchedule``): one initialized with the source agent's Q-network,
one from random weights. The figure is the number of training episodes (and env steps) until
the greedy policy is optimal from every start cell; an agent that does not get there within
the budget counts as the budget. Prints a markdown table, mean +- std over seeds.

    python benchmarks/transfer_gridworld.py [--source-timesteps 4000] [--timesteps 4000] [--seeds 0 1 2 3 4]

Runs are saved under ``benchmarks/results/transfer_gridworld/``; ``--from-results`` prints their table
again and draws the plot (``--plot``): env steps to optimal per target, mean +- std over seeds.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

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

ROOT = Path(__file__).resolve().parent.parent
SOURCE = (4, 4)
TARGETS = [(3, 4), (2, 2), (0, 4)]
#: Where each target lies relative to the source goal, for the table and the plot.
WHERE = {(3, 4): "next to the source", (2, 2): "centre", (0, 4): "opposite corner"}
AGENTS = {"fine-tuned": "fine-tuned", "scratch": "from scratch"}


def load_example():
    """The training code of ``examples/transfer_gridworld.py`` (one source of truth)."""
    spec = importlib.util.spec_from_file_location(
        "transfer_example", ROOT / "examples" / "transfer_gridworld.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source-timesteps", type=int, default=4_000)
    parser.add_argument("--timesteps", type=int, default=4_000, help="budget on each target goal")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    add_results_argument(parser)
    add_plot_argument(parser, "transfer_gridworld")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()

    def measure(results: Results) -> None:
        example = load_example()
        for seed in args.seeds:
            source_model, source_ok = example.train_source(SOURCE, TARGETS[0], args.source_timesteps, seed)
            for target in TARGETS:
                entries = {}
                for agent, init in (("fine-tuned", source_model), ("scratch", None)):
                    solved = example.learn_target(SOURCE, target, args.timesteps, seed + 100, init)
                    entries[agent] = (
                        (solved[0], solved[1], True) if solved else (np.nan, args.timesteps, False)
                    )
                    episodes, steps, ok = entries[agent]
                    results.add(
                        {
                            "seed": seed,
                            "target": target,
                            "agent": agent,
                            "episodes": episodes,
                            "steps": steps,
                            "solved": ok,
                        }
                    )
                print(
                    f"seed {seed} (source optimal: {source_ok}) target {target}: "
                    f"fine-tuned {entries['fine-tuned']}, scratch {entries['scratch']} "
                    f"({time.time() - start:.0f} s)",
                    flush=True,
                )

    record = measure_or_load("transfer_gridworld", args, measure)
    print(table(record))
    plot(record, args.plot)
    print(f"total time {time.time() - start:.0f} s")


def target_name(target: tuple[int, int]) -> str:
    return f"{target}, {WHERE[target]}" if target in WHERE else str(target)


def plot(record: dict[str, Any], path) -> None:
    runs = record["runs"]
    groups = {
        target_name(target): {
            AGENTS[agent]: [
                run["steps"] for run in runs if tuple(run["target"]) == target and run["agent"] == agent
            ]
            for agent in AGENTS
        }
        for target in dict.fromkeys(tuple(run["target"]) for run in runs)
    }
    save_bar_plot(
        path,
        groups,
        title=f"DQN on a moved grid-world goal, {len(record['args']['seeds'])} seeds (dots: seeds; "
        f"unsolved runs count as the {record['args']['timesteps']:,}-step budget)",
        ylabel="env steps until optimal from every start",
    )


def table(record: dict[str, Any]) -> str:
    args, runs = record["args"], record["runs"]
    rows = []
    for target in dict.fromkeys(tuple(run["target"]) for run in runs):
        for agent in ("fine-tuned", "scratch"):
            agent_runs = [run for run in runs if tuple(run["target"]) == target and run["agent"] == agent]
            solved = sum(run["solved"] for run in agent_runs)
            episodes = mean_std([run["episodes"] for run in agent_runs])
            steps = mean_std([run["steps"] for run in agent_runs])
            rows.append([target_name(target), AGENTS[agent], f"{solved}/{len(agent_runs)}", episodes, steps])
    return (
        f"\nDQN on AdvRL/GridWorld-v0 5x5 (random starts), source goal {SOURCE} trained to optimal "
        f"(at most {args['source_timesteps']:,} steps); budget {args['timesteps']:,} steps per target; seeds {args['seeds']}\n\n"
        + markdown_table(
            ("target goal", "agent", "solved", "episodes to optimal", "env steps to optimal"), rows, "llrrr"
        )
        + "\n\nEpisodes are averaged over the solved runs; steps count an unsolved run as the full budget."
    )


if __name__ == "__main__":
    main()
