"""MBPO vs SB3 SAC vs WorldModelMPC: environment steps to SAC's final return, returns at fixed
budgets, per-action predict latency.

Every ``eval_every`` environment steps the deterministic policy is evaluated on ``eval_episodes``
episodes from fixed start states (the same for every algorithm, seed and evaluation; episodes run
side by side in a DummyVecEnv). Each algorithm has its own budget per env: SAC runs 3x MBPO's, so
that "MBPO reaches SAC's final return in at least 3x fewer environment steps" is measured directly:
SAC's final return is the mean over seeds of SAC's last evaluation, and MBPO meets the target on a
seed if one of its evaluations at or before a third of SAC's budget reaches it. Reported per env
and algorithm, mean +- std over seeds:

- steps to the env's return threshold ("-" when a run never reaches it within its budget);
- steps to SAC's final return, and how many runs reach it within a third of SAC's budget;
- the mean evaluation return at each fixed budget (``EVAL_TABLE_STEPS``);
- the median wall-clock time of a single-observation ``predict`` (200 calls after training).

    python benchmarks/mbpo.py [--envs pendulum cartpole regulator invertedpendulum] [--seeds 0 1 2]
        [--algos MBPO SAC WorldModelMPC] [--budget N] [--plot PNG | --no-plot] [--from-results [JSON ...]]

Runs are saved under ``benchmarks/results/mbpo/`` after each run; ``--from-results`` rebuilds the
tables and the plot from saved runs (several files: their runs together, e.g. runs split across
processes). ``--budget N`` gives every algorithm N steps (SAC 3N) and evaluates every N/2 steps
(a quick end-to-end check). ``invertedpendulum`` (Gymnasium MuJoCo ``InvertedPendulum-v5``) needs
``gymnasium[mujoco]``. Torch uses one thread (intra-op threads only add overhead at these sizes).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _common import (
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
from sb3_ext import MBPO, WorldModelMPC

EVAL_SEED = 10_000
DOCS_IMAGES = pathlib.Path(__file__).resolve().parent.parent / "docs" / "images"

#: MBPO's settings, scaled to a 2-core CPU (sb3_ext/hyperparams/mbpo.yml): the paper's update-to-data
#: ratio is 20 and its rollout batch 100,000 start states. SAC settings are shared by SAC and MBPO.
MBPO_KWARGS: dict[str, Any] = dict(
    learning_starts=250,
    utd_ratio=10,
    rollout_batch_size=50_000,
    model_gradient_steps=300,
    model_kwargs=dict(hidden_sizes=(200, 200, 200)),
)
#: SAC's networks are [64, 64] instead of SB3's [256, 256] (about 4x less CPU per update on the shared
#: 2 cores) and its learning rate the RL Zoo's Pendulum setting.
SAC_KWARGS: dict[str, Any] = dict(learning_rate=1e-3, policy_kwargs=dict(net_arch=[64, 64]))

ENVS: dict[str, dict[str, Any]] = {
    "pendulum": dict(
        env_id="AdvRL/Pendulum-v0",
        budgets=dict(MBPO=1_500, SAC=4_500, WorldModelMPC=1_500),
        eval_every=250,
        eval_episodes=5,
        threshold=-200.0,
        mpc_kwargs={},
    ),
    "cartpole": dict(
        env_id="AdvRL/ContinuousCartPole-v0",
        budgets=dict(MBPO=1_000, SAC=3_000, WorldModelMPC=1_000),
        eval_every=250,
        eval_episodes=5,
        threshold=450.0,
        # benchmarks/mpc.py: CartPole needs a 150-step horizon to see a track end in time. That
        # planner costs ~160 ms per action, so WorldModelMPC is evaluated every 500 steps only.
        mpc_kwargs=dict(horizon=150, population_size=100),
        mpc_eval_every=500,
    ),
    "regulator": dict(
        env_id="AdvRL/NonlinearRegulator-v0",
        budgets=dict(MBPO=1_000, SAC=3_000, WorldModelMPC=1_000),
        eval_every=250,
        eval_episodes=5,
        threshold=-10.0,
        mpc_kwargs={},
    ),
    "invertedpendulum": dict(
        env_id="InvertedPendulum-v5",
        budgets=dict(MBPO=2_000, SAC=6_000, WorldModelMPC=2_000),
        eval_every=500,
        eval_episodes=5,
        threshold=950.0,
        mpc_kwargs={},
    ),
}
ALGOS = ("MBPO", "SAC", "WorldModelMPC")
# Environment steps listed in the fixed-budget table.
EVAL_TABLE_STEPS = (250, 500, 1000, 1500, 3000, 4500)


def mujoco_available() -> bool:
    return importlib.util.find_spec("mujoco") is not None


class EvalCallback(BaseCallback):
    """Evaluates the deterministic policy every ``eval_every`` steps from fixed start states."""

    def __init__(self, cfg: dict[str, Any], eval_every: int) -> None:
        super().__init__()
        self.cfg, self.eval_every = cfg, eval_every
        self.eval_env = make_vec_env(cfg["env_id"], n_envs=cfg["eval_episodes"])
        self.curve: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_every == 0:
            self.eval_env.seed(EVAL_SEED)  # identical start states at every evaluation
            mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.cfg["eval_episodes"])
            self.curve.append((self.num_timesteps, float(mean)))
            print(
                f"  {self.cfg['env_id']} {type(self.model).__name__} step {self.num_timesteps}: {mean:.1f}",
                flush=True,
            )
        return True


def predict_latency(model: Any, env_id: str, n_calls: int = 200) -> dict[str, float]:
    """Median wall-clock and CPU time of single-observation ``predict`` calls along an episode."""
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


def make_model(algo: str, env_id: str, seed: int, cfg: dict[str, Any]) -> Any:
    if algo == "MBPO":
        return MBPO("MlpPolicy", env_id, seed=seed, device="cpu", **{**SAC_KWARGS, **MBPO_KWARGS})
    if algo == "SAC":
        return SAC("MlpPolicy", env_id, seed=seed, device="cpu", **SAC_KWARGS)
    return WorldModelMPC("MlpPolicy", env_id, seed=seed, **cfg["mpc_kwargs"])


def run(env_name: str, algo: str, seed: int, budget: int | None = None) -> dict[str, Any]:
    """One training run with evaluations; ``budget`` replaces the env's budgets (SAC: 3x)."""
    cfg = ENVS[env_name]
    steps = cfg["budgets"][algo]
    eval_every = (
        cfg.get("mpc_eval_every", cfg["eval_every"]) if algo == "WorldModelMPC" else cfg["eval_every"]
    )
    if budget is not None:
        steps = 3 * budget if algo == "SAC" else budget
        eval_every = max(budget // 2, 1)
    start = time.perf_counter()
    model = make_model(algo, cfg["env_id"], seed, cfg)
    callback = EvalCallback(cfg, eval_every)
    model.learn(steps, callback=callback)
    result: dict[str, Any] = {
        "env": env_name,
        "env_id": cfg["env_id"],
        "algo": algo,
        "seed": seed,
        "budget": steps,
        "learning_rate": model.learning_rate,
        "rollout_batch_size": getattr(model, "rollout_batch_size", None),
        "curve": callback.curve,
        "train_seconds": time.perf_counter() - start,
        "load_average": os.getloadavg()[0],
    }
    result.update(predict_latency(model, cfg["env_id"]))
    return result


def label(run: dict[str, Any]) -> str:
    """The row of a run: its algorithm, MBPO with its learning rate and rollout batch size (the
    first runs, saved before these were recorded, used lr 1e-3 and 5,000 start states)."""
    if run["algo"] != "MBPO":
        return run["algo"]
    return f"MBPO (lr {run.get('learning_rate', 1e-3):g}, {run.get('rollout_batch_size') or 5000} rollouts)"


def labels(results: list[dict[str, Any]]) -> list[str]:
    """Every row label present, MBPO's first, in the order of ALGOS."""
    present = {label(r) for r in results}
    return [name for algo in ALGOS for name in sorted(present) if name.split(" ")[0] == algo]


def runs_of(results: list[dict[str, Any]], env_name: str, name: str) -> list[dict[str, Any]]:
    """The runs on ``env_name`` of row ``name`` (``"MBPO"``: every MBPO run)."""
    return [r for r in results if r["env"] == env_name and name in (label(r), r["algo"])]


def sac_final_return(results: list[dict[str, Any]], env_name: str) -> tuple[float, int] | None:
    """SAC's final return on the env (mean over seeds of the last evaluation) and SAC's budget."""
    sac = runs_of(results, env_name, "SAC")
    if not sac:
        return None
    return float(np.mean([r["curve"][-1][1] for r in sac])), int(sac[0]["budget"])


def aggregate(results: list[dict[str, Any]], env_names: list[str]) -> str:
    rows = []
    for env_name in env_names:
        cfg = ENVS[env_name]
        target = sac_final_return(results, env_name)
        for algo in labels(results):
            runs = runs_of(results, env_name, algo)
            if not runs:
                continue
            hits = [steps_to_threshold(r["curve"], cfg["threshold"]) for r in runs]
            reached = [h for h in hits if h is not None]
            to_threshold = f"{mean_std(reached)} ({len(reached)}/{len(runs)})"
            to_sac = "-"
            if target is not None:
                sac_return, sac_budget = target
                steps = [steps_to_threshold(r["curve"], sac_return) for r in runs]
                within = [s for s in steps if s is not None and 3 * s <= sac_budget]
                found = [s for s in steps if s is not None]
                to_sac = f"{mean_std(found)} ({len(within)}/{len(runs)} within {sac_budget // 3})"
            final = [r["curve"][-1][1] for r in runs]
            wall = np.median([r["predict_wall_ms"] for r in runs])
            cpu = np.median([r["predict_cpu_ms"] for r in runs])
            rows.append(
                [
                    cfg["env_id"],
                    algo,
                    len(runs),
                    runs[0]["budget"],
                    f"{mean_std(final, '.1f')}",
                    to_threshold,
                    to_sac,
                    f"{wall:.2f} / {cpu:.2f}",
                ]
            )
    columns = (
        "env",
        "algorithm",
        "seeds",
        "budget (steps)",
        "return at budget",
        "steps to threshold (reached)",
        "steps to SAC's final return (runs within SAC budget / 3)",
        "predict ms (median wall / CPU)",
    )
    lines = [markdown_table(columns, rows), ""]
    thresholds = [
        f"{ENVS[e]['env_id']}: {ENVS[e]['threshold']:g}" + _sac_target_note(results, e) for e in env_names
    ]
    lines.append("Thresholds: " + "; ".join(thresholds) + ".")
    lines.append("")
    evaluated = sorted({step for r in results for step, _ in r["curve"]})
    steps_shown = [s for s in EVAL_TABLE_STEPS if s in evaluated] or evaluated
    rows = []
    for env_name in env_names:
        for algo in labels(results):
            runs = runs_of(results, env_name, algo)
            if runs:
                cells = []
                for step in steps_shown:
                    values = [v for v in (value_at(r["curve"], step) for r in runs) if v is not None]
                    cells.append(mean_std(values, ".1f") if values else "-")
                rows.append([ENVS[env_name]["env_id"], algo, *cells])
    lines.append(markdown_table(("env", "algorithm", *(f"{s} steps" for s in steps_shown)), rows))
    latency = _latency_ratio(results, env_names)
    if latency:
        lines += ["", latency]
    return "\n".join(lines)


def _sac_target_note(results: list[dict[str, Any]], env_name: str) -> str:
    target = sac_final_return(results, env_name)
    return "" if target is None else f" (SAC's final return {target[0]:.1f} at {target[1]} steps)"


def _latency_ratio(results: list[dict[str, Any]], env_names: list[str]) -> str:
    notes = []
    for env_name in env_names:
        mpc = runs_of(results, env_name, "WorldModelMPC")
        for name in [n for n in labels(results) if n.startswith("MBPO")]:
            mbpo = runs_of(results, env_name, name)
            if not (mbpo and mpc):
                continue
            ratios = []
            for clock in ("wall", "cpu"):
                fast = np.median([r[f"predict_{clock}_ms"] for r in mbpo])
                slow = np.median([r[f"predict_{clock}_ms"] for r in mpc])
                ratios.append(f"{clock} {fast:.2f} vs {slow:.2f} ms, {slow / fast:.0f}x")
            notes.append(f"{ENVS[env_name]['env_id']}, {name}: {'; '.join(ratios)}")
    if not notes:
        return ""
    return "MBPO vs WorldModelMPC predict latency per action (medians): " + " | ".join(notes) + "."


def plot(results: list[dict[str, Any]], env_names: list[str], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(env_names), figsize=(5 * len(env_names), 3.6), squeeze=False)
    for ax, env_name in zip(axes[0], env_names, strict=True):
        cfg = ENVS[env_name]
        palette = ("tab:green", "tab:olive", "tab:purple", "tab:orange", "tab:blue")
        names = labels(results)
        colors = dict(zip([n for n in names if n.startswith("MBPO")], palette, strict=False))
        colors.update({"SAC": "tab:orange", "WorldModelMPC": "tab:blue"})
        for algo in names:
            color = colors[algo]
            runs = runs_of(results, env_name, algo)
            if not runs:
                continue
            steps = sorted({s for r in runs for s, _ in r["curve"]})
            per_step = [[v for v in (value_at(r["curve"], s) for r in runs) if v is not None] for s in steps]
            mean = np.array([np.mean(v) for v in per_step])
            std = np.array([np.std(v) for v in per_step])
            ax.plot(steps, mean, marker="o", markersize=3, color=color, label=f"{algo} ({len(runs)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
        ax.axhline(cfg["threshold"], color="gray", linestyle="--", linewidth=1)
        target = sac_final_return(results, env_name)
        if target is not None:
            ax.axvline(target[1] / 3, color="tab:orange", linestyle=":", linewidth=1)
        ax.set_title(cfg["env_id"])
        ax.set_xlabel("environment steps")
        ax.set_ylabel("mean evaluation return")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_envs = [e for e in ENVS if e != "invertedpendulum" or mujoco_available()]
    parser.add_argument("--envs", nargs="+", default=default_envs, choices=list(ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    parser.add_argument(
        "--budget", type=int, default=None, help="every algorithm N steps, SAC 3N (a quick check)"
    )
    parser.add_argument("--plot", type=pathlib.Path, default=DOCS_IMAGES / "mbpo_learning_curves.png")
    parser.add_argument("--no-plot", action="store_true", help="skip the learning-curve PNG")
    add_results_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if "invertedpendulum" in args.envs and not mujoco_available() and args.from_results is None:
        parser.error("--envs invertedpendulum needs gymnasium[mujoco] (import mujoco failed)")

    def measure(results: Results) -> None:
        # Seed by seed, so that an interrupted benchmark has every algorithm on its first seeds.
        for env_name in args.envs:
            for seed in args.seeds:
                for algo in args.algos:
                    results.add(run(env_name, algo, seed, args.budget))

    runs = measure_or_load("mbpo", args, measure)["runs"]
    env_names = list(dict.fromkeys(run["env"] for run in runs))
    print(aggregate(runs, env_names))
    if not args.no_plot:
        plot(runs, env_names, args.plot)
        print(f"learning curves: {args.plot}")


if __name__ == "__main__":
    main()
