"""DQN vs PER-DQN (same hyperparameters) on CartPole-v1 and AdvRL/GridWorld-v0 (size 8).

For each env and seed both algorithms train for the same budget. Reported per algorithm, as
mean +- std over seeds: the env steps until the mean return of the last 10 training episodes
first reaches the threshold (over the seeds that reach it, with their count), the number of
episodes until then, and the final return (deterministic policy, 20 evaluation episodes).

    python benchmarks/per_learning.py [--seeds 5] [--envs cartpole gridworld] [--exploration-fraction F]

Runs are saved under ``benchmarks/results/per_learning/`` (every training episode's end step and
return included); ``--from-results`` prints their table again and draws the plot (``--plot``): the
mean of the last 10 training returns against env steps, mean +- std over seeds.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    first_reaching,
    markdown_table,
    mean_std,
    measure_or_load,
    save_learning_curves,
)
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext import PERDQN


@dataclass
class Task:
    env_id: str
    env_kwargs: dict[str, Any]
    budget: int
    threshold: float
    dqn_kwargs: dict[str, Any] = field(default_factory=dict)


COMMON = dict(
    batch_size=64,
    gamma=0.99,
    train_freq=4,
    gradient_steps=1,
    exploration_final_eps=0.05,
    policy_kwargs=dict(net_arch=[64, 64]),
    device="cpu",
)
TASKS = {
    "cartpole": Task(
        "CartPole-v1",
        {},
        budget=40_000,
        # CartPole-v0's "solved" level; few 40k-step DQN runs of this size reach v1's 475.
        threshold=195.0,
        dqn_kwargs=dict(
            COMMON,
            learning_rate=1e-3,
            buffer_size=50_000,
            learning_starts=1_000,
            target_update_interval=500,
            exploration_fraction=0.2,
        ),
    ),
    "gridworld": Task(
        "AdvRL/GridWorld-v0",
        {"size": 8},
        budget=20_000,
        # The shortest path takes 14 moves: 10 - 14 * 0.1 = 8.6 at best; 8.0 allows 6 detours.
        threshold=8.0,
        dqn_kwargs=dict(
            COMMON,
            learning_rate=5e-4,
            buffer_size=20_000,
            learning_starts=500,
            target_update_interval=250,
            exploration_fraction=0.3,
        ),
    ),
}


class EpisodeLog(BaseCallback):
    """Records (env step, return) of every finished training episode (from SB3's Monitor)."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.episodes.append((self.num_timesteps, float(info["episode"]["r"])))
        return True


def steps_to_threshold(
    episodes: list[tuple[int, float]], threshold: float, window: int = 10
) -> tuple[int, int] | None:
    """(env steps, episodes) when the mean of the last ``window`` returns first reaches ``threshold``."""
    index = first_reaching([r for _, r in episodes], threshold, window)
    return None if index is None else (episodes[index][0], index + 1)


def run(task: Task, algo: type[DQN], seed: int) -> dict[str, Any]:
    env = gym.make(task.env_id, **task.env_kwargs)
    model = algo("MlpPolicy", env, seed=seed, verbose=0, **task.dqn_kwargs)
    log = EpisodeLog()
    start = time.process_time()
    model.learn(task.budget, callback=log)
    cpu = time.process_time() - start
    eval_env = gym.make(task.env_id, **task.env_kwargs)
    eval_env.reset(seed=10_000 + seed)
    final, _ = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    return {
        "reached": steps_to_threshold(log.episodes, task.threshold),
        "final": float(final),
        "cpu": cpu,
        "episodes": log.episodes,
    }


def training_curve(episodes: list[tuple[int, float]], budget: int, every: int, window: int = 10):
    """The mean of the last ``window`` training returns finished by each multiple of ``every`` steps
    (from the first step by which ``window`` episodes have finished)."""
    ends = np.array([step for step, _ in episodes])
    returns = np.array([value for _, value in episodes])
    curve = []
    for step in range(every, budget + 1, every):
        done = int(np.searchsorted(ends, step, side="right"))
        if done >= window:
            curve.append((step, float(returns[done - window : done].mean())))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--envs", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument(
        "--exploration-fraction", type=float, default=None, help="override the tasks' epsilon-decay fraction"
    )
    add_results_argument(parser)
    add_plot_argument(parser, "per_learning")
    args = parser.parse_args()
    if args.exploration_fraction is not None:
        for task in TASKS.values():
            task.dqn_kwargs["exploration_fraction"] = args.exploration_fraction
    th.set_num_threads(1)

    def measure(results: Results) -> None:
        for name in args.envs:
            for algo in (DQN, PERDQN):
                for seed in range(args.seeds):
                    r = results.add(
                        {"env": name, "algo": algo.__name__, "seed": seed, **run(TASKS[name], algo, seed)}
                    )
                    print(
                        f"# {name} {algo.__name__} seed {seed}: reached {tuple(r['reached']) if r['reached'] else None}, "
                        f"final {r['final']:.2f}, cpu {r['cpu']:.0f}s",
                        flush=True,
                    )

    record = measure_or_load("per_learning", args, measure)
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    runs = [run for run in record["runs"] if "episodes" in run]
    panels, lines = {}, {}
    for name in dict.fromkeys(run["env"] for run in runs):
        task = TASKS[name]
        panel = f"{task.env_id}" + (f" {task.env_kwargs}" if task.env_kwargs else "")
        panels[panel] = {
            algo: [
                training_curve(run["episodes"], task.budget, task.budget // 80)
                for run in runs
                if run["env"] == name and run["algo"] == algo
            ]
            for algo in dict.fromkeys(run["algo"] for run in runs if run["env"] == name)
        }
        lines[panel] = {f"threshold {task.threshold:g}": task.threshold}
    if panels:
        save_learning_curves(
            path, panels, ylabel="mean of the last 10 training returns", lines=lines, title="DQN vs PERDQN"
        )


def table(record: dict[str, Any]) -> str:
    rows, runs = [], record["runs"]
    for name in dict.fromkeys(run["env"] for run in runs):
        task = TASKS[name]
        for algo in dict.fromkeys(run["algo"] for run in runs if run["env"] == name):
            results = [run for run in runs if run["env"] == name and run["algo"] == algo]
            reached = [r["reached"] for r in results if r["reached"] is not None]
            rows.append(
                [
                    task.env_id,
                    algo,
                    f"{task.threshold:g}",
                    f"{len(reached)}/{len(results)}",
                    mean_std([s for s, _ in reached]),
                    mean_std([e for _, e in reached]),
                    mean_std([r["final"] for r in results], ".2f"),
                    f"{np.mean([r['cpu'] for r in results]):.0f}",
                ]
            )
    seeds = len({run["seed"] for run in runs})
    columns = (
        "env",
        "algorithm",
        "threshold",
        "seeds reaching",
        "env steps to threshold",
        "episodes to threshold",
        "final return",
        "CPU s/run",
    )
    return (
        f"\n{seeds} seeds; steps/episodes until the mean of the last 10 training returns reaches the threshold\n"
        "(over the seeds that reach it); final return of the deterministic policy over 20 episodes.\n\n"
        + markdown_table(columns, rows, "llrrrrrr")
    )


if __name__ == "__main__":
    main()
