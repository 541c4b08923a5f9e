"""Goal-conditioned agents on the goal envs: success rate against environment steps.

Parts (``--parts``; all by default):

1. ``her`` -- hindsight experience replay (Andrychowicz et al. 2017) against the same agent
   without it, on sparse rewards (-1 until the goal, 0 on it): DQN+HER vs DQN on
   ``AdvRL/GoalGridWorld-v0`` (8x8, a random goal each episode, 50 steps), and SAC+HER vs SAC
   on ``AdvRL/GoalPointMass-v0`` (50 steps).
2. ``hac`` -- HAC (Levy et al. 2019, 2 levels, subgoals over the cells) vs flat DQN+HER on
   ``AdvRL/GoalFourRooms-v0`` (random start and goal in any room, 100 steps), evaluated on far
   goals: start and goal at least ``--min-distance`` cells apart (Manhattan), mostly in other rooms.
3. ``feudal`` -- FeudalAgent (Vezhnevets et al. 2017, horizon c = 10) vs SB3 A2C and PPO on
   ``AdvRL/FourRooms-v0`` (one-hot cells, goal in the east hallway, random start, moves fail
   w.p. 1/3, 500 steps; the return is 1 exactly when the goal is reached, so the success rate is
   the mean return), each on 8 envs with the same learning rate and perception layer, evaluated
   from any start cell (8 steps at a time: evaluations fall on the multiples of ``--eval-freq``
   that are multiples of 8).

Every ``--eval-freq`` steps the deterministic policy (HAC's subgoals threaded through ``predict``)
runs ``--eval-episodes`` evaluation episodes, the same fixed start/goal pairs for every algorithm,
seed and evaluation; success = the episode ends on the goal. Reported per env and algorithm, mean
+- std over seeds: the success rate at the end, the best one, the environment steps to the first
evaluation at ``--target`` (default 0.9) success, and the wall-clock time.

    python benchmarks/goals.py [--parts her hac feudal] [--seeds 3] [--timesteps N] [--eval-freq N]
        [--eval-episodes 50] [--plot PNG | --no-plot] [--from-results [JSON ...]]

``--timesteps N`` replaces every run's budget (a quick end-to-end check). Runs are saved under
``benchmarks/results/goals/`` after each run; ``--from-results`` rebuilds the tables and the plot.

Adding a part: a function returning its :class:`Series` (env, algorithm, model builder, budget)
and one entry in :data:`PARTS`; the measurement, tables and plot are shared.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _common import (
    DOCS_IMAGES,
    Results,
    add_results_argument,
    curve_mean,
    markdown_table,
    mean_std,
    measure_or_load,
    save_learning_curves,
    steps_to_threshold,
)
from stable_baselines3 import A2C, DQN, PPO, SAC, HerReplayBuffer
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext import HAC, FeudalAgent

Builder = Callable[[gym.Env, int], BaseAlgorithm]


@dataclass(frozen=True)
class Series:
    """One curve per seed: ``algorithm`` trained on ``env_id`` for ``timesteps`` steps."""

    env_id: str
    algorithm: str
    build: Builder
    timesteps: int
    #: Evaluation episodes must start at least this far (Manhattan, in cells) from their goal (0: any).
    min_distance: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)


HER = dict(
    replay_buffer_class=HerReplayBuffer,
    replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
)


def dqn(her: bool, **overrides: Any) -> Builder:
    def build(env: gym.Env, seed: int) -> BaseAlgorithm:
        settings = dict(
            learning_starts=500,
            exploration_fraction=0.3,
            target_update_interval=500,
            gamma=0.95,
            learning_rate=1e-3,
            batch_size=64,
            policy_kwargs=dict(net_arch=[64, 64]),
        )
        settings.update(overrides)
        return DQN("MultiInputPolicy", env, seed=seed, device="cpu", **settings, **(HER if her else {}))

    return build


def sac(her: bool) -> Builder:
    def build(env: gym.Env, seed: int) -> BaseAlgorithm:
        return SAC(
            "MultiInputPolicy",
            env,
            learning_starts=1_000,
            gamma=0.95,
            batch_size=256,
            policy_kwargs=dict(net_arch=[64, 64]),
            seed=seed,
            device="cpu",
            **(HER if her else {}),
        )

    return build


def hac(env: gym.Env, seed: int) -> BaseAlgorithm:
    return HAC(
        "MultiInputPolicy",
        env,
        n_levels=2,
        subgoal_horizon=10,
        learning_starts=1_000,
        batch_size=64,
        train_freq=2,
        policy_kwargs=dict(net_arch=[64, 64]),
        seed=seed,
        device="cpu",
    )


def her_part(args: argparse.Namespace) -> list[Series]:
    grid, point = "AdvRL/GoalGridWorld-v0", "AdvRL/GoalPointMass-v0"
    return [
        Series(grid, "DQN+HER", dqn(her=True), 10_000),
        Series(grid, "DQN", dqn(her=False), 10_000),
        Series(point, "SAC+HER", sac(her=True), 20_000),
        Series(point, "SAC", sac(her=False), 20_000),
    ]


def hac_part(args: argparse.Namespace) -> list[Series]:
    rooms = "AdvRL/GoalFourRooms-v0"
    return [
        Series(rooms, "HAC", hac, 60_000, min_distance=args.min_distance),
        Series(
            rooms, "DQN+HER", dqn(her=True, exploration_fraction=0.2), 60_000, min_distance=args.min_distance
        ),
    ]


def on_eight_envs(algo: type[BaseAlgorithm], **settings: Any) -> Builder:
    """An on-policy agent trained on 8 seeded copies of the env (synchronous n-step updates), not
    on the one env given; the same learning rate, entropy bonus and perception layer for each."""

    def build(env: gym.Env, seed: int) -> BaseAlgorithm:
        envs = make_vec_env(env.spec.id, n_envs=8, seed=seed)  # type: ignore[union-attr]
        return algo("MlpPolicy", envs, learning_rate=1e-3, ent_coef=0.01, seed=seed, device="cpu", **settings)

    return build


def feudal_part(args: argparse.Namespace) -> list[Series]:
    rooms = "AdvRL/FourRooms-v0"
    feudal = dict(
        c=10,
        n_steps=20,
        alpha=0.5,
        gamma_manager=0.99,
        gamma_worker=0.95,
        policy_kwargs=dict(net_arch=[64], latent_dim=32, goal_embedding_dim=16),
    )
    return [
        Series(rooms, "FeudalAgent", on_eight_envs(FeudalAgent, **feudal), 200_000),
        Series(rooms, "A2C", on_eight_envs(A2C, n_steps=20, policy_kwargs=dict(net_arch=[64])), 200_000),
        Series(
            rooms,
            "PPO",
            on_eight_envs(PPO, n_steps=128, batch_size=256, policy_kwargs=dict(net_arch=[64])),
            200_000,
        ),
    ]


#: Part name -> the series it measures.
PARTS: dict[str, Callable[[argparse.Namespace], list[Series]]] = {
    "her": her_part,
    "hac": hac_part,
    "feudal": feudal_part,
}


# ---------------------------------------------------------------------------- measuring
def evaluation_starts(series: Series, n_episodes: int) -> list[int]:
    """Reset seeds of ``n_episodes`` evaluation episodes whose goal is at least ``min_distance`` away."""
    env, seeds, seed = gym.make(series.env_id, **series.env_kwargs), [], 10_000
    while len(seeds) < n_episodes:
        obs, _ = env.reset(seed=seed)
        if (
            series.min_distance == 0
            or np.abs(obs["achieved_goal"] - obs["desired_goal"]).sum() >= series.min_distance
        ):
            seeds.append(seed)
        seed += 1
    env.close()
    return seeds


def success_rate(model: BaseAlgorithm, series: Series, seeds: list[int]) -> float:
    """Share of the evaluation episodes the deterministic policy ends on the goal."""
    env, successes = gym.make(series.env_id, **series.env_kwargs), 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        state, start, terminated, truncated = None, np.array([True]), False, False
        while not (terminated or truncated):
            action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action)
            start = np.array([False])
        successes += bool(terminated)
    env.close()
    return successes / len(seeds)


class SuccessCurve(BaseCallback):
    """The success rate every ``eval_freq`` steps (and at step 0)."""

    def __init__(self, series: Series, seeds: list[int], eval_freq: int) -> None:
        super().__init__()
        self.series, self.seeds, self.eval_freq = series, seeds, eval_freq
        self.curve: list[tuple[int, float]] = []

    def _on_training_start(self) -> None:
        self.curve.append((0, success_rate(self.model, self.series, self.seeds)))

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_freq == 0:
            self.curve.append((self.num_timesteps, success_rate(self.model, self.series, self.seeds)))
        return True


def run(part: str, series: Series, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    timesteps = args.timesteps or series.timesteps
    eval_freq = args.eval_freq or max(timesteps // 10, 1)
    seeds = evaluation_starts(series, args.eval_episodes)
    model = series.build(gym.make(series.env_id, **series.env_kwargs), seed)
    curve = SuccessCurve(series, seeds, eval_freq)
    start = time.perf_counter()
    model.learn(timesteps, callback=curve)
    seconds = time.perf_counter() - start
    if curve.curve[-1][0] != model.num_timesteps:
        curve.curve.append((model.num_timesteps, success_rate(model, series, seeds)))
    return dict(
        part=part,
        env=series.env_id,
        algorithm=series.algorithm,
        seed=seed,
        timesteps=timesteps,
        min_distance=series.min_distance,
        curve=curve.curve,
        seconds=seconds,
    )


# ---------------------------------------------------------------------------- tables and plot
def grouped(record: dict[str, Any]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run_ in record["runs"]:
        groups.setdefault((run_["part"], run_["env"], run_["algorithm"]), []).append(run_)
    return groups


def table(record: dict[str, Any]) -> str:
    args, groups = record["args"], grouped(record)
    target = args["target"]
    rows = []
    for (part, env_id, algorithm), runs in groups.items():
        reached = [steps_to_threshold(r["curve"], target) for r in runs]
        n_reached = sum(step is not None for step in reached)
        rows.append(
            [
                part,
                env_id
                + (f" (goals >= {runs[0]['min_distance']} cells away)" if runs[0]["min_distance"] else ""),
                algorithm,
                len(runs),
                runs[0]["timesteps"],
                mean_std([r["curve"][-1][1] for r in runs], ".2f"),
                mean_std([max(v for _, v in r["curve"]) for r in runs], ".2f"),
                mean_std([curve_mean(r["curve"]) for r in runs], ".2f"),
                f"{mean_std(reached, '.0f')} ({n_reached}/{len(runs)})",
                f"{np.mean([r['seconds'] for r in runs]):.0f}",
            ]
        )
    header = (
        "part",
        "env",
        "algorithm",
        "seeds",
        "steps",
        "final success",
        "best success",
        "mean success over training",
        f"steps to {target:.0%} success (runs reaching it)",
        "wall s / run",
    )
    return (
        f"\nSuccess rate of the deterministic policy on {args['eval_episodes']} fixed evaluation episodes "
        f"(mean +- std over seeds)\n\n" + markdown_table(header, rows) + paired_table(groups)
    )


#: (with, without) pairs compared seed by seed, per env.
PAIRS = (("DQN+HER", "DQN"), ("SAC+HER", "SAC"), ("HAC", "DQN+HER"))


def paired_table(groups: dict[tuple[str, str, str], list[dict[str, Any]]]) -> str:
    """Seed-by-seed comparison of each pair in :data:`PAIRS` on the same env: the mean success over
    training (the area under the curve) of each, and on how many seeds the first is higher."""
    rows = []
    for part, env_id, first in groups:
        for mine, other in PAIRS:
            theirs = groups.get((part, env_id, other))
            if first != mine or not theirs:
                continue
            by_seed = {r["seed"]: curve_mean(r["curve"]) for r in theirs}
            pairs = [
                (curve_mean(r["curve"]), by_seed[r["seed"]])
                for r in groups[(part, env_id, mine)]
                if r["seed"] in by_seed
            ]
            cells = ", ".join(f"{a:.2f} vs {b:.2f}" for a, b in pairs)
            rows.append([env_id, f"{mine} vs {other}", cells, f"{sum(a > b for a, b in pairs)}/{len(pairs)}"])
    if not rows:
        return ""
    header = ("env", "pair", "mean success over training, seed by seed", "seeds the first is higher")
    return "\n\nSeed by seed (same seed, same evaluation episodes)\n\n" + markdown_table(header, rows)


def plot(record: dict[str, Any], path: Path) -> None:
    panels: dict[str, dict[str, list[Any]]] = {}
    for (_, env_id, algorithm), runs in grouped(record).items():
        panels.setdefault(env_id, {})[algorithm] = [r["curve"] for r in runs]
    save_learning_curves(path, panels, ylabel="success rate")


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 of every series")
    parser.add_argument(
        "--timesteps", type=int, default=None, help="every run's budget (default: the part's)"
    )
    parser.add_argument("--eval-freq", type=int, default=None, help="default: a tenth of the budget")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument(
        "--min-distance", type=int, default=10, help="hac part: evaluation goals this far away"
    )
    parser.add_argument("--target", type=float, default=0.9, help="success rate whose first step is reported")
    parser.add_argument("--plot", type=Path, default=DOCS_IMAGES / "goals_success.png")
    parser.add_argument("--no-plot", action="store_true")
    add_results_argument(parser)
    args = parser.parse_args()

    def measure(results: Results) -> None:
        for part in args.parts:
            for series in PARTS[part](args):
                for seed in range(args.seeds):
                    finished = results.add(run(part, series, seed, args))
                    print(
                        f"{part} {series.algorithm} on {series.env_id}, seed {seed}: final success "
                        f"{finished['curve'][-1][1]:.2f} ({finished['seconds']:.0f} s)",
                        flush=True,
                    )

    record = measure_or_load("goals", args, measure)
    print(table(record))
    if not args.no_plot:
        plot(record, args.plot)


if __name__ == "__main__":
    main()
