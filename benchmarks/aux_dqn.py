"""AuxDQN vs DQN: sample efficiency on vector (CartPole-v1) and image (GridWorld-v0, obs_mode="rgb") observations.

Both algorithms get identical hyperparameters per task; AuxDQN adds its three auxiliary losses
(default weights 0.1) and its default augmentation (Gaussian noise on CartPole, random shift on
the image grid). Every ``eval_freq`` environment steps the greedy policy is evaluated on a
separate environment. Reported per algorithm, mean +- std over seeds:

- steps to threshold: first evaluation at which the mean evaluation return reaches the task's
  threshold (a run that never reaches it counts as the full budget; "reached" says how many did);
- AUC: area under the evaluation-return curve divided by the budget, i.e. the mean evaluation
  return over training (higher = learns earlier);
- final: the mean evaluation return of the last evaluation.

    python benchmarks/aux_dqn.py [--tasks cartpole grid_rgb] [--seeds 0 1 2 3 4]
        [--algos DQN AuxDQN] [--aux-kwargs JSON] [--budget N]

Runs are saved under ``benchmarks/results/aux_dqn/``; ``--from-results`` rebuilds the table from
saved runs (several files: their runs together, so runs can be split across processes, e.g. by
``--seeds``). The table compares configurations on the seeds all of them finished. ``--budget``
replaces every task's budget (a quick check). The plot (``--plot``) shows the evaluation returns
of those runs, mean +- std over seeds, one panel per task.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
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
    save_learning_curves,
    steps_to_threshold,
)
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy

import gym_advrl  # noqa: F401  (registers AdvRL/ ids)
from sb3_ext.aux_dqn import AuxDQN

# Hyperparameters shared by DQN and AuxDQN on each task. CartPole: RL Zoo's tuned DQN settings, with
# SB3's default [64, 64] network and a 30k-step budget to keep the benchmark cheap on a small CPU.
TASKS: dict[str, dict[str, Any]] = {
    "cartpole": dict(
        env_id="CartPole-v1",
        env_kwargs={},
        policy="MlpPolicy",
        budget=30_000,
        eval_freq=1_500,
        eval_episodes=5,
        threshold=475.0,
        hyperparams=dict(
            learning_rate=2.3e-3,
            batch_size=64,
            buffer_size=100_000,
            learning_starts=1_000,
            gamma=0.99,
            target_update_interval=10,
            train_freq=256,
            gradient_steps=128,
            exploration_fraction=0.16,
            exploration_final_eps=0.04,
        ),
    ),
    "grid_rgb": dict(
        env_id="AdvRL/GridWorld-v0",
        env_kwargs=dict(obs_mode="rgb"),
        policy="CnnPolicy",
        budget=12_000,
        eval_freq=500,
        eval_episodes=1,  # fixed start, no slip: the greedy policy's return is deterministic
        threshold=9.0,  # optimal return 9.3 (8 moves)
        hyperparams=dict(
            learning_rate=5e-4,
            batch_size=64,
            buffer_size=20_000,
            learning_starts=500,
            gamma=0.99,
            target_update_interval=500,
            train_freq=4,
            gradient_steps=1,
            exploration_fraction=0.25,
            exploration_final_eps=0.05,
        ),
    ),
}

ALGOS: dict[str, Callable[..., Any]] = {"DQN": DQN, "AuxDQN": AuxDQN}


class LearningCurve(BaseCallback):
    """Evaluates the greedy policy every ``eval_freq`` steps (and at step 0) on a separate env."""

    def __init__(self, eval_env: gym.Env, eval_freq: int, n_episodes: int) -> None:
        super().__init__()
        self.eval_env, self.eval_freq, self.n_episodes = eval_env, eval_freq, n_episodes
        self.steps: list[int] = []
        self.returns: list[float] = []

    def _evaluate(self) -> None:
        mean_return, _ = evaluate_policy(
            self.model, self.eval_env, n_eval_episodes=self.n_episodes, deterministic=True
        )
        self.steps.append(int(self.num_timesteps))
        self.returns.append(float(mean_return))

    def _on_training_start(self) -> None:
        self._evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_freq == 0:
            self._evaluate()
        return True


def run(
    task_name: str, algo: str, seed: int, extra: dict[str, Any] | None = None, budget: int | None = None
) -> dict[str, Any]:
    task = TASKS[task_name] if budget is None else {**TASKS[task_name], "budget": budget}
    env = gym.make(task["env_id"], **task["env_kwargs"])
    eval_env = gym.make(task["env_id"], **task["env_kwargs"])
    eval_env.reset(seed=10_000 + seed)
    model = ALGOS[algo](task["policy"], env, seed=seed, verbose=0, **task["hyperparams"], **(extra or {}))
    curve = LearningCurve(eval_env, task["eval_freq"], task["eval_episodes"])
    start = time.perf_counter()
    model.learn(task["budget"], callback=curve)
    return dict(
        task=task_name,
        algo=algo,
        seed=seed,
        budget=task["budget"],
        extra=extra or {},
        steps=curve.steps,
        returns=curve.returns,
        seconds=time.perf_counter() - start,
    )


def summarize(result: dict[str, Any]) -> tuple[float, bool, float, float]:
    """(steps to threshold, reached, AUC, final return) of one run."""
    steps, returns = np.asarray(result["steps"], dtype=float), np.asarray(result["returns"])
    hit = steps_to_threshold(
        list(zip(result["steps"], result["returns"], strict=True)), TASKS[result["task"]]["threshold"]
    )
    reached = hit is not None
    to_threshold = float(hit) if reached else float(result.get("budget", TASKS[result["task"]]["budget"]))
    auc = float(np.trapezoid(returns, steps) / (steps[-1] - steps[0]))
    return to_threshold, reached, auc, float(returns[-1])


def config(run: dict[str, Any]) -> tuple[str, str]:
    """The algorithm and its extra arguments (as sorted JSON) of a run."""
    return run["algo"], json.dumps(run["extra"], sort_keys=True)


def paired(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of the seeds that every configuration finished, task by task."""
    kept = []
    for task_name in dict.fromkeys(r["task"] for r in results):
        runs = [r for r in results if r["task"] == task_name]
        configs = {config(r) for r in runs}
        seeds = {
            seed
            for seed in {r["seed"] for r in runs}
            if configs <= {config(r) for r in runs if r["seed"] == seed}
        }
        kept += [r for r in runs if r["seed"] in seeds]
    return kept


def table(results: list[dict[str, Any]]) -> str:
    rows = []
    keys = sorted({(r["task"], *config(r)) for r in results})
    for task_name, algo, extra in keys:
        runs = [r for r in results if (r["task"], *config(r)) == (task_name, algo, extra)]
        stats = np.array([summarize(r)[0:1] + summarize(r)[2:] for r in runs])
        reached = sum(summarize(r)[1] for r in runs)
        task = TASKS[task_name]
        rows.append(
            [
                f"{task['env_id']}{' rgb' if task_name == 'grid_rgb' else ''} (>= {task['threshold']:g})",
                algo if extra == "{}" else f"{algo} {extra}",
                len(runs),
                mean_std(stats[:, 0], ",.0f"),
                f"{reached}/{len(runs)}",
                mean_std(stats[:, 1], ".2f"),
                mean_std(stats[:, 2], ".2f"),
                f"{np.mean([r['seconds'] for r in runs]):.0f}",
            ]
        )
    columns = (
        "task",
        "algorithm",
        "seeds",
        "steps to threshold",
        "reached",
        "AUC (mean eval return)",
        "final return",
        "s/run",
    )
    return markdown_table(columns, rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--aux-kwargs", type=json.loads, default={}, help="JSON dict of extra AuxDQN arguments"
    )
    parser.add_argument(
        "--budget", type=int, default=None, help="replace every task's budget (a quick check)"
    )
    add_results_argument(parser)
    add_plot_argument(parser, "aux_dqn")
    args = parser.parse_args()
    torch.set_num_threads(1)

    def measure(results: Results) -> None:
        for task_name in args.tasks:
            for seed in args.seeds:
                for algo in args.algos:
                    extra = args.aux_kwargs if algo == "AuxDQN" else {}
                    result = results.add(run(task_name, algo, seed, extra, args.budget))
                    to_threshold, reached, auc, final = summarize(result)
                    print(
                        f"{task_name} {algo} {extra or ''} seed {seed}: steps to threshold {to_threshold:,.0f}"
                        f"{'' if reached else ' (not reached)'}, AUC {auc:.2f}, final {final:.2f}, {result['seconds']:.0f} s",
                        flush=True,
                    )

    runs = paired(measure_or_load("aux_dqn", args, measure)["runs"])
    print(table(runs))
    plot(runs, args.plot)


def plot(results: list[dict[str, Any]], path) -> None:
    panels, lines = {}, {}
    for task_name in dict.fromkeys(r["task"] for r in results):
        task = TASKS[task_name]
        panel = f"{task['env_id']}{' rgb' if task_name == 'grid_rgb' else ''}"
        runs = [r for r in results if r["task"] == task_name]
        panels[panel] = {
            (algo if extra == "{}" else f"{algo} {extra}"): [
                list(zip(r["steps"], r["returns"], strict=True)) for r in runs if config(r) == (algo, extra)
            ]
            for algo, extra in sorted({config(r) for r in runs})
        }
        lines[panel] = {f"threshold {task['threshold']:g}": task["threshold"]}
    save_learning_curves(path, panels, ylabel="mean evaluation return (greedy)", lines=lines)


if __name__ == "__main__":
    main()
