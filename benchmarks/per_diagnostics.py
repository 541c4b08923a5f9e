"""What prioritized replay replays: terminal transitions' share of the buffer vs of the sampling.

Trains PER-DQN with the settings of ``benchmarks/per_learning.py`` and, every ``--every`` steps,
reports for the transitions in the buffer that end an episode for real (goal reached in
GridWorld, pole fallen in CartPole; time-limit truncations excluded) their share of the buffer
and of the sampling probability, the sampling share of the newest 1% of the transitions, the
priority new transitions enter with (the largest seen, ``max_priority^alpha``) and the median
priority.

    python benchmarks/per_diagnostics.py [--envs cartpole gridworld] [--seed 0] [--every 4000]

Runs are saved under ``benchmarks/results/per_diagnostics/``; ``--from-results`` prints their tables again.
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from _common import Results, add_results_argument, markdown_table, measure_or_load
from per_learning import TASKS
from stable_baselines3.common.callbacks import BaseCallback

from sb3_ext import PERDQN


class ReplayShares(BaseCallback):
    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.rows: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every:
            return True
        buffer = self.model.replay_buffer
        n = buffer.size() * buffer.n_envs
        terminal = ((buffer.dones * (1.0 - buffer.timeouts)).reshape(-1)[:n]) > 0
        priorities = buffer.tree.priorities[:n]  # p_i^alpha
        probabilities = priorities / priorities.sum()
        share = probabilities[terminal].sum()
        # The most recent 1% of the transitions (single env: rows pos-1, pos-2, ...).
        newest = (buffer.pos - 1 - np.arange(max(n // 100, 1))) % n
        self.rows.append(
            dict(
                step=self.num_timesteps,
                terminal_share=float(terminal.mean()),
                terminal_sampling=float(share),
                newest_sampling=float(probabilities[newest].sum()),
                insertion_priority=float(buffer.max_priority**buffer.alpha),
                median_priority=float(np.median(priorities)),
            )
        )
        return True


COLUMNS = (
    "env step",
    "terminal share of buffer",
    "terminal share of sampling",
    "oversampling",
    "newest 1%: share of sampling",
    "insertion priority",
    "median priority",
)


def tables(record: dict[str, Any]) -> str:
    out = []
    for run in record["runs"]:
        task = TASKS[run["env"]]
        rows = [
            [
                row["step"],
                f"{row['terminal_share']:.2%}",
                f"{row['terminal_sampling']:.2%}",
                f"{row['terminal_sampling'] / max(row['terminal_share'], 1e-12):.1f}x",
                f"{row['newest_sampling']:.2%}",
                f"{row['insertion_priority']:.3g}",
                f"{row['median_priority']:.3g}",
            ]
            for row in run["rows"]
        ]
        out += [
            f"\n{task.env_id} {task.env_kwargs or ''}, PER-DQN seed {run['seed']} (priorities are p^alpha)\n",
            markdown_table(COLUMNS, rows, "r" * len(COLUMNS)),
        ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=4000)
    add_results_argument(parser)
    args = parser.parse_args()
    th.set_num_threads(1)

    def measure(results: Results) -> None:
        for name in args.envs:
            task = TASKS[name]
            env = gym.make(task.env_id, **task.env_kwargs)
            model = PERDQN("MlpPolicy", env, seed=args.seed, verbose=0, **task.dqn_kwargs)
            callback = ReplayShares(args.every)
            model.learn(task.budget, callback=callback)
            results.add({"env": name, "seed": args.seed, "rows": callback.rows})

    print(tables(measure_or_load("per_diagnostics", args, measure)))


if __name__ == "__main__":
    main()
