"""What prioritized replay replays: terminal transitions' share of the buffer vs of the sampling.

Trains PER-DQN with the settings of ``benchmarks/per_learning.py`` and, every ``--every`` steps,
reports for the transitions in the buffer that end an episode for real (goal reached in
GridWorld, pole fallen in CartPole; time-limit truncations excluded) their share of the buffer
and of the sampling probability, the sampling share of the newest 1% of the transitions, the
priority new transitions enter with (the largest seen, ``max_priority^alpha``) and the median
priority.

    python benchmarks/per_diagnostics.py [--envs cartpole gridworld] [--seed 0] [--every 4000]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch as th
from per_learning import TASKS
from stable_baselines3.common.callbacks import BaseCallback

from sb3_ext import PERDQN


class ReplayShares(BaseCallback):
    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.rows: list[str] = []

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
            f"| {self.num_timesteps} | {terminal.mean():.2%} | {share:.2%} | {share / max(terminal.mean(), 1e-12):.1f}x "
            f"| {probabilities[newest].sum():.2%} | {buffer.max_priority**buffer.alpha:.3g} | {np.median(priorities):.3g} |"
        )
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=4000)
    args = parser.parse_args()
    th.set_num_threads(1)
    for name in args.envs:
        task = TASKS[name]
        model = PERDQN("MlpPolicy", gym.make(task.env_id, **task.env_kwargs), seed=args.seed, verbose=0, **task.dqn_kwargs)
        callback = ReplayShares(args.every)
        model.learn(task.budget, callback=callback)
        print(f"\n{task.env_id} {task.env_kwargs or ''}, PER-DQN seed {args.seed} (priorities are p^alpha)\n")
        print(
            "| env step | terminal share of buffer | terminal share of sampling | oversampling "
            "| newest 1%: share of sampling | insertion priority | median priority |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for row in callback.rows:
            print(row)


if __name__ == "__main__":
    main()
