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
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
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


def run_fourrooms(name: str, seed: int, args: argparse.Namespace) -> dict:
    env = make_vec_env("AdvRL/FourRooms-v0", n_envs=N_ENVS, seed=seed)
    model = fourrooms_model(name, env, seed, args)
    recorder = EpisodeLengths()
    start = time.perf_counter()
    model.learn(args.steps, callback=recorder)
    durations = [float(np.mean(model.option_durations))] if name == "OptionCritic" else []
    # Move the goal (it persists over resets) and go on learning from the same model.
    env.set_options({"goal": tuple(args.new_goal)})
    model._last_obs = env.reset()
    model._last_episode_starts = np.ones(N_ENVS, dtype=bool)
    model.learn(args.steps, callback=recorder, reset_num_timesteps=False)
    if name == "OptionCritic":
        durations.append(float(np.mean(model.option_durations)))
    lengths, ends = np.array(recorder.lengths), np.array(recorder.ends)
    before = lengths[ends <= args.steps][-100:].mean()
    return dict(
        lengths=lengths,
        ends=ends,
        before=before,
        first_after=lengths[ends > args.steps][:100].mean(),
        last=lengths[-100:].mean(),
        recovery=recovery_steps(lengths, ends, before, args.steps),
        durations=durations,
        seconds=time.perf_counter() - start,
    )


def fmt(values: list[float], digits: int = 1) -> str:
    values = np.asarray(values, dtype=float)
    if np.isnan(values).any():
        return f"{np.nanmean(values):.{digits}f} +- {np.nanstd(values):.{digits}f} ({int(np.isnan(values).sum())} not recovered)"
    return f"{values.mean():.{digits}f} +- {values.std():.{digits}f}"


def fourrooms(args: argparse.Namespace) -> None:
    names = ["OptionCritic"] + [{"a2c": "A2C", "ppo": "PPO"}[b] for b in args.baselines]
    results = {name: [run_fourrooms(name, seed, args) for seed in range(args.seeds)] for name in names}
    print(
        f"\nAdvRL/FourRooms-v0, {args.seeds} seeds, {N_ENVS} envs, {args.steps} steps with the goal at (7, 9), "
        f"then {args.steps} with the goal at {tuple(args.new_goal)} (mean +- std over seeds)\n"
    )
    print(
        "| algorithm | steps/episode before the move | first 100 after | last 100 | steps to recover "
        "| mean option duration (phase 1 / 2) | wall s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        if name == "OptionCritic":
            dur = f"{fmt([r['durations'][0] for r in runs])} / {fmt([r['durations'][1] for r in runs])}"
        else:
            dur = "-"
        print(
            f"| {name} | {fmt([r['before'] for r in runs])} | {fmt([r['first_after'] for r in runs])} "
            f"| {fmt([r['last'] for r in runs])} | {fmt([r['recovery'] for r in runs], 0)} | {dur} "
            f"| {np.mean([r['seconds'] for r in runs]):.0f} |"
        )
    if args.plot:
        plot_fourrooms(results, args)


def plot_fourrooms(results: dict, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    grid = np.linspace(0, 2 * args.steps, 200)
    for name, runs in results.items():
        # Steps per episode against environment steps: 20-episode moving average, then
        # interpolated on a common grid so seeds can be averaged.
        curves = []
        for run in runs:
            smooth = np.convolve(run["lengths"], np.ones(20) / 20, mode="valid")
            curves.append(np.interp(grid, run["ends"][19:], smooth))
        curves = np.array(curves)
        ax.plot(grid, curves.mean(0), label=name)
        ax.fill_between(grid, curves.min(0), curves.max(0), alpha=0.2)
    ax.axvline(args.steps, color="k", linestyle="--", linewidth=1, label="goal moved")
    ax.set_yscale("log")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("steps per episode (20-episode average)")
    ax.set_title(f"AdvRL/FourRooms-v0, {args.seeds} seeds (band: min-max)")
    ax.legend()
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=120)
    print(f"\nplot: {args.plot.relative_to(ROOT) if args.plot.is_relative_to(ROOT) else args.plot}")


def cartpole(args: argparse.Namespace) -> None:
    rows = []
    for seed in range(args.seeds):
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
        rows.append(
            (
                seed,
                model.num_timesteps if reached else None,
                best,
                float(np.mean(model.option_durations)),
                time.perf_counter() - start,
            )
        )
    print(
        f"\nCartPole-v1, OptionCritic with 2 options, {N_ENVS} envs, evaluation: 20 deterministic episodes every {args.eval_freq} steps\n"
    )
    print(
        "| seed | env steps to mean return >= 475 | best evaluated mean return | mean option duration | wall s |"
    )
    print("|---|---|---|---|---|")
    for seed, steps, best, duration, seconds in rows:
        print(
            f"| {seed} | {steps if steps is not None else f'not within {args.budget}'} | {best:.1f} | {duration:.1f} | {seconds:.0f} |"
        )


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
    rooms.add_argument(
        "--plot", type=Path, default=ROOT / "benchmarks" / "results" / "option_critic_fourrooms.png"
    )
    pole = sub.add_parser("cartpole")
    pole.add_argument("--seeds", type=int, default=1)
    pole.add_argument("--budget", type=int, default=300_000)
    pole.add_argument("--eval-freq", type=int, default=10_000)
    pole.add_argument("--lr", type=float, default=1e-3)
    pole.add_argument("--n-steps", type=int, default=8)
    args = parser.parse_args()
    fourrooms(args) if args.task == "fourrooms" else cartpole(args)


if __name__ == "__main__":
    main()
