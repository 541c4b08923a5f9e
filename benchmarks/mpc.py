"""WorldModelMPC vs SB3 SAC: environment steps to a return threshold, returns at equal steps, latency.

Every ``eval_every`` environment steps the deterministic policy is evaluated on ``eval_episodes``
episodes from fixed start states (the same for every algorithm, seed and evaluation; episodes run
side by side in a DummyVecEnv, so WorldModelMPC plans for all of them in one batched call).
Reported per env and algorithm, mean +- std over seeds:

- steps to threshold: the first evaluation whose mean return reaches the env's threshold
  ("-" when a run never does within its budget; SAC on Pendulum runs until it does, up to
  ``sac_budget`` steps);
- the mean evaluation return at ``budget`` steps (equal steps for both algorithms);
- WorldModelMPC's median planning latency per action during ``learn`` (wall clock) and, measured
  after training on 200 single-observation ``predict`` calls, wall-clock and CPU time.

    python benchmarks/mpc.py [--envs pendulum cartpole regulator] [--seeds 0 1 2]
        [--algos WorldModelMPC SAC] [--budget N] [--plot PNG | --no-plot] [--latency-only]

Runs are saved under ``benchmarks/results/mpc/`` (``--latency-only``: ``mpc/latency/``), and the
learning curves plotted to ``benchmarks/results/mpc/learning_curves.png`` unless ``--plot`` says
otherwise; ``--from-results`` rebuilds the tables and the plot from saved runs (several files:
their runs together, e.g. runs split across processes). ``--budget`` replaces every env's budget
(for a quick check). Torch uses one thread (intra-op threads only add overhead at these sizes).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _common import (
    RESULTS_ROOT,
    Results,
    add_results_argument,
    markdown_table,
    mean_std,
    measure_or_load,
    steps_to_threshold,
    value_at,
)
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import gym_advrl  # noqa: F401  (registers AdvRL/ ids)
from sb3_ext import WorldModelMPC

EVAL_SEED = 10_000

# WorldModelMPC runs at its defaults except where stated. CartPole's reward is +1 per step, so only
# a predicted termination distinguishes plans: it needs a long horizon (150 steps, 3 s) to see the
# cart drifting towards a track end in time to stop it (at 40-100 steps it drifts there on some seeds).
# SAC: SB3 defaults with the RL Zoo's Pendulum learning rate (1e-3).
ENVS: dict[str, dict[str, Any]] = {
    "pendulum": dict(
        env_id="AdvRL/Pendulum-v0",
        budget=3_000,
        sac_budget=15_000,
        eval_every=100,
        eval_episodes=5,
        threshold=-200.0,
        mpc_kwargs={},
        sac_kwargs=dict(learning_rate=1e-3),
    ),
    "cartpole": dict(
        env_id="AdvRL/ContinuousCartPole-v0",
        budget=3_000,
        sac_budget=3_000,
        eval_every=1_500,
        eval_episodes=5,
        threshold=450.0,
        mpc_kwargs=dict(horizon=150, population_size=100),
        sac_kwargs=dict(learning_rate=1e-3),
    ),
    "regulator": dict(
        env_id="AdvRL/NonlinearRegulator-v0",
        budget=3_000,
        sac_budget=3_000,
        eval_every=1_000,
        eval_episodes=5,
        threshold=None,
        mpc_kwargs={},
        sac_kwargs=dict(learning_rate=1e-3),
    ),
}
ALGOS = ("WorldModelMPC", "SAC")
# Evaluation steps listed in the second table (mean return at equal steps).
EVAL_TABLE_STEPS = (500, 1000, 1500, 2000, 3000)


class EvalCallback(BaseCallback):
    """Evaluates every ``eval_every`` steps; stops training once past ``stop_at`` and the threshold."""

    def __init__(self, cfg: dict[str, Any], budget: int, stop_on_threshold: bool) -> None:
        super().__init__()
        self.cfg, self.budget, self.stop_on_threshold = cfg, budget, stop_on_threshold
        self.eval_env = make_vec_env(cfg["env_id"], n_envs=cfg["eval_episodes"])
        self.curve: list[tuple[int, float]] = []

    def evaluate(self) -> float:
        self.eval_env.seed(EVAL_SEED)  # identical start states at every evaluation
        mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.cfg["eval_episodes"])
        self.curve.append((self.num_timesteps, float(mean)))
        print(
            f"  {self.cfg['env_id']} {type(self.model).__name__} step {self.num_timesteps}: {mean:.1f}",
            flush=True,
        )
        return float(mean)

    def _on_step(self) -> bool:
        if self.num_timesteps % self.cfg["eval_every"] != 0:
            return True
        mean = self.evaluate()
        threshold = self.cfg["threshold"]
        reached = threshold is not None and mean >= threshold
        return not (self.stop_on_threshold and reached and self.num_timesteps >= self.budget)


def planning_latency(model: WorldModelMPC, env_id: str, n_calls: int = 200) -> dict[str, float]:
    """Wall-clock and CPU time of single-observation planning (warm-started, as in an episode)."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=EVAL_SEED)
    state, wall, cpu = None, [], []
    for _ in range(n_calls):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        action, state = model.predict(obs, state=state, deterministic=True)
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
            state = None
    return {"predict_wall_ms": 1000 * float(np.median(wall)), "predict_cpu_ms": 1000 * float(np.median(cpu))}


def run(env_name: str, algo: str, seed: int, budget: int | None = None) -> dict[str, Any]:
    """One training run with evaluations; ``budget`` replaces the env's budgets (both algorithms)."""
    cfg = ENVS[env_name] if budget is None else {**ENVS[env_name], "budget": budget, "sac_budget": budget}
    start = time.perf_counter()
    if algo == "WorldModelMPC":
        model = WorldModelMPC("MlpPolicy", cfg["env_id"], seed=seed, **cfg["mpc_kwargs"])
        budget = cfg["budget"]
    else:
        model = SAC("MlpPolicy", cfg["env_id"], seed=seed, device="cpu", **cfg["sac_kwargs"])
        budget = cfg["sac_budget"]
    callback = EvalCallback(cfg, cfg["budget"], stop_on_threshold=algo == "SAC")
    model.learn(budget, callback=callback)
    result: dict[str, Any] = {
        "env": env_name,
        "env_id": cfg["env_id"],
        "algo": algo,
        "seed": seed,
        "budget": cfg["budget"],
        "curve": callback.curve,
        "train_seconds": time.perf_counter() - start,
        "load_average": os.getloadavg()[0],
    }
    if algo == "WorldModelMPC":
        result["learn_latency_ms_median"] = float(np.median(model.planning_latency_ms))
        result.update(planning_latency(model, cfg["env_id"]))
    return result


def aggregate(results: list[dict[str, Any]], env_names: list[str]) -> str:
    rows = []
    for env_name in env_names:
        cfg = ENVS[env_name]
        for algo in ALGOS:
            runs = [r for r in results if r["env"] == env_name and r["algo"] == algo]
            if not runs:
                continue
            hits = [steps_to_threshold(r["curve"], cfg["threshold"]) for r in runs]
            reached = [h for h in hits if h is not None]
            threshold = (
                "n/a" if cfg["threshold"] is None else f"{mean_std(reached)} ({len(reached)}/{len(runs)})"
            )
            stopped = [r for r in runs if r.get("stopped_at") is not None]
            seeds = f"{len(runs)}" + (
                f" ({len(stopped)} stopped at {', '.join(str(r['stopped_at']) for r in stopped)} steps)"
                if stopped
                else ""
            )
            latency = wall_cpu = "-"
            timed = [r for r in runs if "predict_cpu_ms" in r]  # runs that completed their budget
            if algo == "WorldModelMPC" and timed:
                latency = f"{np.median([r['learn_latency_ms_median'] for r in timed]):.1f}"
                wall = np.median([r["predict_wall_ms"] for r in timed])
                cpu = np.median([r["predict_cpu_ms"] for r in timed])
                wall_cpu = f"{wall:.1f} / {cpu:.1f}"
            budget = runs[0].get("budget", cfg["budget"])
            at_budget = [value_at(r["curve"], budget) for r in runs]
            rows.append(
                [
                    cfg["env_id"],
                    algo,
                    seeds,
                    threshold,
                    f"{mean_std(at_budget, '.1f')} (at {budget})",
                    latency,
                    wall_cpu,
                ]
            )
    columns = (
        "env",
        "algorithm",
        "seeds",
        "steps to threshold (reached)",
        "return at budget",
        "planning ms (learn, wall)",
        "predict ms (wall / CPU)",
    )
    lines = [markdown_table(columns, rows), ""]
    rows = []
    for env_name in env_names:
        for algo in ALGOS:
            runs = [r for r in results if r["env"] == env_name and r["algo"] == algo]
            if runs:
                cells = []
                for step in EVAL_TABLE_STEPS:
                    values = [v for v in (value_at(r["curve"], step) for r in runs) if v is not None]
                    cells.append(f"{mean_std(values, '.1f')} (n={len(values)})" if values else "-")
                rows.append([ENVS[env_name]["env_id"], algo, *cells])
    lines.append(markdown_table(("env", "algorithm", *(f"{s} steps" for s in EVAL_TABLE_STEPS)), rows))
    for env_name in env_names:
        cfg = ENVS[env_name]
        if cfg["threshold"] is None:
            continue
        mpc = [
            steps_to_threshold(r["curve"], cfg["threshold"])
            for r in results
            if r["env"] == env_name and r["algo"] == "WorldModelMPC"
        ]
        sac = [
            steps_to_threshold(r["curve"], cfg["threshold"])
            for r in results
            if r["env"] == env_name and r["algo"] == "SAC"
        ]
        if mpc and sac and None not in mpc and None not in sac:
            lines.append(
                f"\n{cfg['env_id']}: SAC needs {np.mean(sac) / np.mean(mpc):.1f}x the environment steps of "
                f"WorldModelMPC to reach {cfg['threshold']:g} (mean over seeds)."
            )
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], env_names: list[str], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(env_names), figsize=(5 * len(env_names), 3.6), squeeze=False)
    for ax, env_name in zip(axes[0], env_names, strict=True):
        cfg = ENVS[env_name]
        for algo, color in zip(ALGOS, ("tab:blue", "tab:orange"), strict=True):
            runs = [r for r in results if r["env"] == env_name and r["algo"] == algo]
            if not runs:
                continue
            steps = sorted({s for r in runs for s, _ in r["curve"]})
            # Mean +- std over the runs evaluated at each step (SAC runs stop once past the threshold).
            per_step = [[v for v in (value_at(r["curve"], s) for r in runs) if v is not None] for s in steps]
            mean = np.array([np.mean(v) for v in per_step])
            std = np.array([np.std(v) for v in per_step])
            ax.plot(steps, mean, marker="o", color=color, label=f"{algo} ({len(runs)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
        if cfg["threshold"] is not None:
            ax.axhline(cfg["threshold"], color="gray", linestyle="--", linewidth=1)
        ax.set_title(cfg["env_id"])
        ax.set_xlabel("environment steps")
        ax.set_ylabel("mean evaluation return")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def latency_table(record: dict[str, Any]) -> str:
    rows = [
        [
            ENVS[run["env"]]["env_id"],
            f"{run['predict_wall_ms']:.1f}",
            f"{run['predict_cpu_ms']:.1f}",
            f"{run['load_average']:.1f}",
        ]
        for run in record["runs"]
    ]
    return markdown_table(("env", "predict ms, median wall", "median CPU", "load average"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    parser.add_argument("--budget", type=int, default=None, help="replace every env's budget (a quick check)")
    parser.add_argument("--plot", type=pathlib.Path, default=RESULTS_ROOT / "mpc" / "learning_curves.png")
    parser.add_argument("--no-plot", action="store_true", help="skip the learning-curve PNG")
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only time planning (untrained model: the compute does not depend on the weights)",
    )
    add_results_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.latency_only:

        def measure_latency(results: Results) -> None:
            for env_name in args.envs:
                cfg = ENVS[env_name]
                model = WorldModelMPC("MlpPolicy", cfg["env_id"], seed=0, **cfg["mpc_kwargs"])
                timing = planning_latency(model, cfg["env_id"], n_calls=300)
                results.add({"env": env_name, **timing, "load_average": os.getloadavg()[0]})

        print(latency_table(measure_or_load("mpc/latency", args, measure_latency)))
        return

    def measure(results: Results) -> None:
        for env_name in args.envs:
            for algo in args.algos:
                for seed in args.seeds:
                    results.add(run(env_name, algo, seed, args.budget))

    runs = measure_or_load("mpc", args, measure)["runs"]
    env_names = list(dict.fromkeys(run["env"] for run in runs))
    print(aggregate(runs, env_names))
    if not args.no_plot:
        plot(runs, env_names, args.plot)
        print(f"learning curves: {args.plot}")


if __name__ == "__main__":
    main()
