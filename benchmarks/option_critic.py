"""OptionCritic benchmarks.

1. ``fourrooms`` -- the option-critic paper's experiment (Bacon, Harb & Precup 2017, section
   6.1) on ``AdvRL/FourRooms-v0`` (one-hot cell observations, moves fail w.p. 1/3, reward 1 at
   the goal, 500-step limit): ``--steps`` environment steps with the goal in the east hallway,
   then the goal moves into the lower-right room (``--new-goal``) and learning goes on for
   ``--steps`` more steps. OptionCritic with 4 options against SB3 A2C (and PPO with
   ``--baselines a2c ppo``) with the same number of environments, n-step length, network and
   learning rate, in the same run (OptionCritic's deliberation cost: ``--termination-reg``). Reported: steps per episode over the last 100 episodes
   before the move, over the first 100 after it and the last 100 at the end, the environment
   steps after the move until the 50-episode moving average is back within 20% of its
   pre-move level, and the mean duration of the last 1000 finished options in each phase.
2. ``cartpole`` -- OptionCritic (2 options) on ``CartPole-v1`` until the deterministic policy
   (option state threaded through ``evaluate_policy``) scores a mean return >= 475 over 20
   episodes, evaluated every ``--eval-freq`` steps.

    python benchmarks/option_critic.py fourrooms [--seeds 3] [--steps 100000] [--baselines a2c]
    python benchmarks/option_critic.py cartpole [--seeds 1] [--budget 300000]

Each part saves its runs under ``benchmarks/results/option_critic/<part>/`` (``fourrooms`` also
its plot, unless ``--plot`` says otherwise); ``--from-results`` prints the tables (and draws the
plot) of saved runs again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _common import RESULTS_ROOT, Results, add_results_argument, markdown_table, mean_std, measure_or_load
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.env_util import make_vec_env

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.option_critic import OptionCritic

ROOT = Path(__file__).resolve().parents[1]
N_ENVS = 8


class EpisodeLengths(BaseCallback):
    """Length of every finished training episode, with the step count at which it ended."""

    def __init__(self) -> None:
        super().__init__()
        self.lengths: list[int] = []
        self.ends: list[int] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.lengths.append(int(info["episode"]["l"]))
                self.ends.append(self.num_timesteps)
        return True


def fourrooms_model(name: str, env, seed: int, args: argparse.Namespace) -> BaseAlgorithm:
    n_steps = args.n_steps
    common = dict(
        learning_rate=args.lr, ent_coef=0.01, seed=seed, device="cpu", policy_kwargs=dict(net_arch=[64])
    )
    if name == "OptionCritic":
        return OptionCritic(
            "MlpPolicy",
            env,
            n_options=4,
            n_steps=n_steps,
            termination_reg=args.termination_reg,
            target_update_interval=2000,
            stats_window_size=1000,
            **common,
        )
    if name == "A2C":
        return A2C("MlpPolicy", env, n_steps=n_steps, **common)
    return PPO("MlpPolicy", env, n_steps=128, batch_size=256, **common)


def recovery_steps(lengths: np.ndarray, ends: np.ndarray, before: float, move_step: int) -> float:
    """Steps after the move until the 50-episode moving average is within 20% of ``before``."""
    after = ends > move_step
    if after.sum() < 50:
        return float("nan")
    moving = np.convolve(lengths[after], np.ones(50) / 50, mode="valid")
    hits = np.flatnonzero(moving <= 1.2 * before)
    return float(ends[after][hits[0] + 49] - move_step) if len(hits) else float("nan")


def run_fourrooms(name: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    env = make_vec_env("AdvRL/FourRooms-v0", n_envs=N_ENVS, seed=seed)
    model = fourrooms_model(name, env, seed, args)
    recorder = EpisodeLengths()
    start = time.perf_counter()
    model.learn(args.steps, callback=recorder)
    durations = [float(np.mean(model.option_durations))] if name == "OptionCritic" else []
    # Move the goal (it persists over resets) and go on learning from the same model.
    env.set_options({"goal": tuple(args.new_goal)})
    model.set_env(env, force_reset=True)  # the next learn() starts new episodes
    model.learn(args.steps, callback=recorder, reset_num_timesteps=False)
    if name == "OptionCritic":
        durations.append(float(np.mean(model.option_durations)))
    lengths, ends = np.array(recorder.lengths), np.array(recorder.ends)
    before = lengths[ends <= args.steps][-100:].mean()
    return dict(
        algorithm=name,
        seed=seed,
        lengths=lengths,
        ends=ends,
        before=before,
        first_after=lengths[ends > args.steps][:100].mean(),
        last=lengths[-100:].mean(),
        recovery=recovery_steps(lengths, ends, before, args.steps),
        durations=durations,
        seconds=time.perf_counter() - start,
    )


def fmt(values: list[float], spec: str = ".1f") -> str:
    """``mean_std`` over the runs that recovered, and how many did not."""
    not_recovered = int(np.isnan(np.asarray(values, dtype=float)).sum())
    return mean_std(values, spec) + (f" ({not_recovered} not recovered)" if not_recovered else "")


def by_algorithm(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    for run in record["runs"]:
        results.setdefault(run["algorithm"], []).append(run)
    return results


def fourrooms_table(record: dict[str, Any]) -> str:
    args = record["args"]
    results = by_algorithm(record)
    rows = []
    for name, runs in results.items():
        if name == "OptionCritic":
            dur = f"{fmt([r['durations'][0] for r in runs])} / {fmt([r['durations'][1] for r in runs])}"
        else:
            dur = "-"
        rows.append(
            [
                name,
                fmt([r["before"] for r in runs]),
                fmt([r["first_after"] for r in runs]),
                fmt([r["last"] for r in runs]),
                fmt([r["recovery"] for r in runs], ".0f"),
                dur,
                f"{np.mean([r['seconds'] for r in runs]):.0f}",
            ]
        )
    columns = (
        "algorithm",
        "steps/episode before the move",
        "first 100 after",
        "last 100",
        "steps to recover",
        "mean option duration (phase 1 / 2)",
        "wall s",
    )
    seeds = len(next(iter(results.values())))
    return (
        f"\nAdvRL/FourRooms-v0, {seeds} seeds, {N_ENVS} envs, {args['steps']} steps with the goal at (7, 9), "
        f"then {args['steps']} with the goal at {tuple(args['new_goal'])} (mean +- std over seeds)\n\n"
        + markdown_table(columns, rows)
    )


def fourrooms(args: argparse.Namespace) -> None:
    names = ["OptionCritic"] + [{"a2c": "A2C", "ppo": "PPO"}[b] for b in args.baselines]

    def measure(results: Results) -> None:
        for name in names:
            for seed in range(args.seeds):
                results.add(run_fourrooms(name, seed, args))

    record = measure_or_load("option_critic/fourrooms", args, measure)
    print(fourrooms_table(record))
    if args.plot:
        plot_fourrooms(record, args.plot)


def plot_fourrooms(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = record["args"]["steps"]
    results = by_algorithm(record)
    fig, ax = plt.subplots(figsize=(7, 4))
    grid = np.linspace(0, 2 * steps, 200)
    for name, runs in results.items():
        # Steps per episode against environment steps: 20-episode moving average, then
        # interpolated on a common grid so seeds can be averaged.
        curves = []
        for run in runs:
            smooth = np.convolve(run["lengths"], np.ones(20) / 20, mode="valid")
            curves.append(np.interp(grid, np.asarray(run["ends"])[19:], smooth))
        curves = np.array(curves)
        ax.plot(grid, curves.mean(0), label=name)
        ax.fill_between(grid, curves.min(0), curves.max(0), alpha=0.2)
    ax.axvline(steps, color="k", linestyle="--", linewidth=1, label="goal moved")
    ax.set_yscale("log")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("steps per episode (20-episode average)")
    ax.set_title(f"AdvRL/FourRooms-v0, {len(next(iter(results.values())))} seeds (band: min-max)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"\nplot: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def run_cartpole(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Steps until OptionCritic's deterministic policy scores >= 475 (None if not within the budget)."""
    env = make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=seed)
    model = OptionCritic(
        "MlpPolicy",
        env,
        n_options=2,
        n_steps=args.n_steps,
        learning_rate=args.lr,
        ent_coef=0.0,
        termination_reg=0.01,
        target_update_interval=2000,
        stats_window_size=1000,
        seed=seed,
        device="cpu",
        policy_kwargs=dict(net_arch=[64, 64]),
    )
    eval_env = gym.make("CartPole-v1")
    eval_env.reset(seed=1000 + seed)  # seeds the evaluation episodes' start states
    stop = StopTrainingOnRewardThreshold(reward_threshold=475, verbose=0)
    evaluation = EvalCallback(
        eval_env,
        callback_on_new_best=stop,
        n_eval_episodes=20,
        eval_freq=max(args.eval_freq // N_ENVS, 1),
        deterministic=True,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(args.budget, callback=evaluation)
    best = float(evaluation.best_mean_reward)
    reached = evaluation.last_mean_reward >= 475
    return dict(
        seed=seed,
        steps=model.num_timesteps if reached else None,
        best=best,
        duration=float(np.mean(model.option_durations)),
        seconds=time.perf_counter() - start,
    )


def cartpole_table(record: dict[str, Any]) -> str:
    budget = record["args"]["budget"]
    rows = [
        [
            run["seed"],
            run["steps"] if run["steps"] is not None else f"not within {budget}",
            f"{run['best']:.1f}",
            f"{run['duration']:.1f}",
            f"{run['seconds']:.0f}",
        ]
        for run in record["runs"]
    ]
    columns = (
        "seed",
        "env steps to mean return >= 475",
        "best evaluated mean return",
        "mean option duration",
        "wall s",
    )
    return (
        f"\nCartPole-v1, OptionCritic with 2 options, {N_ENVS} envs, evaluation: 20 deterministic episodes "
        f"every {record['args']['eval_freq']} steps\n\n" + markdown_table(columns, rows)
    )


def cartpole(args: argparse.Namespace) -> None:
    def measure(results: Results) -> None:
        for seed in range(args.seeds):
            results.add(run_cartpole(seed, args))

    print(cartpole_table(measure_or_load("option_critic/cartpole", args, measure)))


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="task", required=True)
    rooms = sub.add_parser("fourrooms")
    rooms.add_argument("--seeds", type=int, default=3)
    rooms.add_argument("--steps", type=int, default=100_000, help="environment steps per goal")
    rooms.add_argument("--new-goal", type=int, nargs=2, default=(10, 10))
    rooms.add_argument("--baselines", nargs="*", default=["a2c"], choices=["a2c", "ppo"])
    rooms.add_argument("--lr", type=float, default=1e-3)
    rooms.add_argument("--n-steps", type=int, default=5)
    rooms.add_argument("--termination-reg", type=float, default=0.01, help="OptionCritic deliberation cost")
    rooms.add_argument("--plot", type=Path, default=RESULTS_ROOT / "option_critic" / "fourrooms.png")
    add_results_argument(rooms)
    pole = sub.add_parser("cartpole")
    pole.add_argument("--seeds", type=int, default=1)
    pole.add_argument("--budget", type=int, default=300_000)
    pole.add_argument("--eval-freq", type=int, default=10_000)
    pole.add_argument("--lr", type=float, default=1e-3)
    pole.add_argument("--n-steps", type=int, default=8)
    add_results_argument(pole)
    args = parser.parse_args()
    fourrooms(args) if args.task == "fourrooms" else cartpole(args)


if __name__ == "__main__":
    main()
