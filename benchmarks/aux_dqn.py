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
        [--algos DQN AuxDQN] [--results-dir /tmp/aux_dqn_bench] [--aggregate-only]

Each run is written to ``results-dir`` as JSON, so runs can be split across processes and the
table rebuilt with ``--aggregate-only``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
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
        mean_return, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_episodes, deterministic=True)
        self.steps.append(int(self.num_timesteps))
        self.returns.append(float(mean_return))

    def _on_training_start(self) -> None:
        self._evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_freq == 0:
            self._evaluate()
        return True


def run(task_name: str, algo: str, seed: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    task = TASKS[task_name]
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
        extra=extra or {},
        steps=curve.steps,
        returns=curve.returns,
        seconds=time.perf_counter() - start,
    )


def summarize(result: dict[str, Any]) -> tuple[float, bool, float, float]:
    """(steps to threshold, reached, AUC, final return) of one run."""
    task = TASKS[result["task"]]
    steps, returns = np.asarray(result["steps"], dtype=float), np.asarray(result["returns"])
    hit = np.nonzero(returns >= task["threshold"])[0]
    reached = len(hit) > 0
    to_threshold = float(steps[hit[0]]) if reached else float(task["budget"])
    auc = float(np.trapezoid(returns, steps) / (steps[-1] - steps[0]))
    return to_threshold, reached, auc, float(returns[-1])


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| task | algorithm | seeds | steps to threshold | reached | AUC (mean eval return) | final return | s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["task"], r["algo"], json.dumps(r["extra"], sort_keys=True)) for r in results})
    for task_name, algo, extra in keys:
        runs = [r for r in results if (r["task"], r["algo"], json.dumps(r["extra"], sort_keys=True)) == (task_name, algo, extra)]
        stats = np.array([summarize(r)[0:1] + summarize(r)[2:] for r in runs])
        reached = sum(summarize(r)[1] for r in runs)
        task = TASKS[task_name]
        label = algo if extra == "{}" else f"{algo} {extra}"
        lines.append(
            f"| {task['env_id']}{' rgb' if task_name == 'grid_rgb' else ''} (>= {task['threshold']:g}) | {label} | "
            f"{len(runs)} | {stats[:, 0].mean():,.0f} +- {stats[:, 0].std():,.0f} | {reached}/{len(runs)} | "
            f"{stats[:, 1].mean():.2f} +- {stats[:, 1].std():.2f} | {stats[:, 2].mean():.2f} +- {stats[:, 2].std():.2f} | "
            f"{np.mean([r['seconds'] for r in runs]):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--aux-kwargs", type=json.loads, default={}, help="JSON dict of extra AuxDQN arguments")
    parser.add_argument("--results-dir", type=pathlib.Path, default=pathlib.Path("/tmp/aux_dqn_bench"))
    parser.add_argument("--aggregate-only", action="store_true", help="only rebuild the table from results-dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.results_dir.mkdir(parents=True, exist_ok=True)

    if not args.aggregate_only:
        for task_name in args.tasks:
            for seed in args.seeds:
                for algo in args.algos:
                    extra = args.aux_kwargs if algo == "AuxDQN" else {}
                    tag = "-".join(f"{k}={v}" for k, v in sorted(extra.items())).replace("/", "_")
                    path = args.results_dir / f"{task_name}_{algo}{'_' + tag if tag else ''}_{seed}.json"
                    claim = path.with_suffix(".running")  # lets several processes share the runs
                    if path.exists() or claim.exists():
                        continue
                    claim.touch()
                    result = run(task_name, algo, seed, extra)
                    path.write_text(json.dumps(result))
                    claim.unlink()
                    to_threshold, reached, auc, final = summarize(result)
                    print(
                        f"{task_name} {algo} {extra or ''} seed {seed}: steps to threshold {to_threshold:,.0f}"
                        f"{'' if reached else ' (not reached)'}, AUC {auc:.2f}, final {final:.2f}, {result['seconds']:.0f} s",
                        flush=True,
                    )

    results = [json.loads(p.read_text()) for p in sorted(args.results_dir.glob("*.json"))]
    results = [r for r in results if r["task"] in args.tasks and r["seed"] in args.seeds]
    # Compare on paired seeds only: a seed counts for a task when every configuration finished it.
    for task_name in {r["task"] for r in results}:
        configs = {(r["algo"], json.dumps(r["extra"], sort_keys=True)) for r in results if r["task"] == task_name}
        seeds = {
            seed
            for seed in args.seeds
            if all(
                any(r["task"] == task_name and r["seed"] == seed and (r["algo"], json.dumps(r["extra"], sort_keys=True)) == c for r in results)
                for c in configs
            )
        }
        results = [r for r in results if r["task"] != task_name or r["seed"] in seeds]
    print(table(results))


if __name__ == "__main__":
    main()
