"""Dyna benchmarks: planning from a model versus learning from real experience only.

1. ``tabular`` -- the Dyna maze of Sutton & Barto (2018, Example 8.1, Figure 8.2), built from
   ``AdvRL/GridWorld-v0`` with walls (the 6x9 layout, gamma 0.95, alpha 0.1, epsilon 0.1, Q
   initialized to 0, no step limit), with GridWorld's rewards (-0.1 a step, +10 at the goal)
   and with the book's (0 a step, 1 at the goal). TabularDynaQ with 50 and 5 planning steps
   against plain Q-learning (0 planning steps, otherwise identical): the number of episodes
   until the greedy path from the start is a shortest path for the first time, and until it
   stays one to the end of the run.
2. ``deep`` -- Dyna (DQN + learned ensemble model) against SB3 DQN with the same
   hyperparameters on ``AdvRL/GridWorld-v0`` size 8 with coordinate observations: environment
   steps until the deterministic policy reaches the optimal return.

    python benchmarks/dyna.py tabular [--seeds 10] [--episodes 150] [--reward gridworld|classic|both]
    python benchmarks/dyna.py deep [--seeds 5] [--first-seed 0] [--budget 20000] [--eval-freq 250] [--stable-evals 1]

   ``--imagined-actions``, ``--nll-beta``, ``--exploration-bonus`` and ``--planning-gamma`` set
   Dyna's arguments of those names, ``--model-mean`` imagines with member means
   (``model_noise=False``), ``--model-hidden-sizes`` sets the hidden layers of each ensemble member.
   The best setting measured is ``--exploration-bonus 3 --planning-gamma 0.95 --model-mean``.
   ``--stable-evals K`` counts a run as solved only once K evaluations in a row earn the optimal
   return (at the first of them); with ``--eval-freq 50 --stable-evals 5`` the greedy policy has
   to stay optimal for 200 steps. ``benchmarks/dyna_diagnostics.py`` runs ``deep`` with a model
   report after every fit, or with parts of the learned model replaced by GridWorld's own.

Each part saves its runs under ``benchmarks/results/dyna/<part>/``; ``--from-results`` prints the
tables of saved runs again (several files: their runs together, e.g. seeds run as two halves) and
draws the part's plot (``--plot``): ``tabular``, steps per episode (mean +- std over seeds) as in
the book's Figure 8.2; ``deep``, env steps until the optimal return per agent (mean +- std over
seeds, unsolved runs at the budget).
"""

from __future__ import annotations

import argparse
from collections import deque
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
    save_bar_plot,
    save_learning_curves,
)
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.grid_world import DYNA_MAZE
from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.dyna import Dyna, TabularDynaQ
from sb3_ext.dyna.dyna import IMAGINED_ACTIONS

#: The deep benchmark's task.
DEEP_ENV_KWARGS = {"size": 8}


def shortest_path_length(env: gym.Env) -> int:
    """Breadth-first search from the start to the goal of a deterministic GridWorld."""
    grid = env.unwrapped
    dist = {grid.start: 0}
    frontier = deque([grid.start])
    moves = ((-1, 0), (0, 1), (1, 0), (0, -1))
    while frontier:
        cell = frontier.popleft()
        if cell == grid.goal:
            return dist[cell]
        for dr, dc in moves:
            nxt = (cell[0] + dr, cell[1] + dc)
            if (
                0 <= nxt[0] < grid.rows
                and 0 <= nxt[1] < grid.cols
                and not grid.walls[nxt]
                and nxt not in dist
            ):
                dist[nxt] = dist[cell] + 1
                frontier.append(nxt)
    raise ValueError("the goal is unreachable from the start")


def greedy_steps_to_goal(model, env: gym.Env, max_steps: int) -> int | None:
    """Steps the deterministic policy takes from the start to the goal, None if it never arrives."""
    obs, _ = env.reset()
    for step in range(1, max_steps + 1):
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated:
            return step
        if truncated:
            return None
    return None


class GreedyPathEveryEpisode(BaseCallback):
    """After every training episode, record whether the greedy path is a shortest path; stop after
    ``n_episodes`` episodes."""

    def __init__(self, eval_env: gym.Env, optimal_steps: int, n_episodes: int) -> None:
        super().__init__()
        self.eval_env, self.optimal_steps, self.n_episodes = eval_env, optimal_steps, n_episodes
        self.optimal: list[bool] = []
        self.episode_lengths: list[int] = []
        self._length = 0

    def _on_step(self) -> bool:
        self._length += 1
        if self.locals["dones"][0]:
            steps = greedy_steps_to_goal(self.model, self.eval_env, 4 * self.optimal_steps)
            self.optimal.append(steps == self.optimal_steps)
            self.episode_lengths.append(self._length)
            self._length = 0
        return len(self.optimal) < self.n_episodes


def first_optimal_episode(optimal: list[bool]) -> int | None:
    """First episode (1-based) after which the greedy path is optimal, None if never."""
    return optimal.index(True) + 1 if True in optimal else None


def stays_optimal_episode(optimal: list[bool]) -> int | None:
    """First episode (1-based) after which the greedy path is optimal for the rest of the run."""
    if not optimal or not optimal[-1]:
        return None
    last_bad = max((i for i, ok in enumerate(optimal) if not ok), default=-1)
    return last_bad + 2


#: Reward schemes of the maze: GridWorld's own (-0.1 a step, +10 at the goal) and Sutton & Barto's.
REWARDS = {"gridworld": (-0.1, 10.0), "classic": (0.0, 1.0)}


def maze_kwargs(reward: str) -> dict[str, Any]:
    step_reward, goal_reward = REWARDS[reward]
    return {"layout": DYNA_MAZE, "obs_mode": "index", "step_reward": step_reward, "goal_reward": goal_reward}


def run_tabular(
    results: Results, seeds: int, n_episodes: int, planning: tuple[int, ...], reward: str
) -> None:
    """TabularDynaQ with each number of planning steps on the maze; one run per seed."""
    maze = maze_kwargs(reward)
    optimal_steps = shortest_path_length(gym.make("AdvRL/GridWorld-v0", **maze))
    for n in planning:
        for seed in range(seeds):
            env = gym.make("AdvRL/GridWorld-v0", max_episode_steps=1_000_000, **maze)
            eval_env = gym.make("AdvRL/GridWorld-v0", max_episode_steps=4 * optimal_steps, **maze)
            model = TabularDynaQ(
                "TabularPolicy", env, learning_rate=0.1, gamma=0.95, planning_steps=n, seed=seed
            )
            callback = GreedyPathEveryEpisode(eval_env, optimal_steps, n_episodes)
            model.learn(100_000_000, callback=callback)
            results.add(
                dict(
                    reward=reward,
                    planning_steps=n,
                    seed=seed,
                    optimal_steps=optimal_steps,
                    first=first_optimal_episode(callback.optimal),
                    stays=stays_optimal_episode(callback.optimal),
                    episode_lengths=callback.episode_lengths,
                )
            )


TABULAR_COLUMNS = (
    "agent",
    "planning steps n",
    "episodes until the greedy path is optimal",
    "episodes until it stays optimal to the end",
)


def tabular_tables(record: dict[str, Any]) -> str:
    """One table per reward scheme: episodes until the greedy path is (and stays) optimal."""
    n_episodes = record["args"]["episodes"]
    lines = []
    for reward in dict.fromkeys(run["reward"] for run in record["runs"]):
        runs = [run for run in record["runs"] if run["reward"] == reward]
        planning = list(dict.fromkeys(run["planning_steps"] for run in runs))
        first = {n: [run["first"] for run in runs if run["planning_steps"] == n] for n in planning}
        stays = {n: [run["stays"] for run in runs if run["planning_steps"] == n] for n in planning}
        step_reward, goal_reward = REWARDS[reward]

        def median(values: list[int | None]) -> float:
            # Runs that never get there count as "later than the last episode" (the median is robust to that).
            return float(np.median([v if v is not None else np.inf for v in values]))

        def summary(values: list[int | None]) -> str:
            done = [v for v in values if v is not None]
            middle = median(values)
            text = f"{middle:g}" if np.isfinite(middle) else f"> {n_episodes}"
            text = f"{text} (mean {np.mean(done):.1f})" if done else "never"
            return text + (
                "" if len(done) == len(values) else f", {len(values) - len(done)}/{len(values)} never"
            )

        lines += [
            f"\nDyna maze (Sutton & Barto Fig. 8.2), reward {step_reward:g} a step and {goal_reward:g} at the goal, "
            f"shortest path {runs[0]['optimal_steps']} steps, {len(first[planning[0]])} seeds, {n_episodes} episodes; "
            "median over seeds (mean over the runs that got there)\n",
            markdown_table(
                TABULAR_COLUMNS,
                [
                    ["Dyna-Q" if n else "Q-learning", n, summary(first[n]), summary(stays[n])]
                    for n in planning
                ],
                "lrrr",
            ),
        ]
        if 0 in planning and np.isfinite(median(first[0])):
            for n in planning:
                if n and np.isfinite(median(first[n])):
                    ratio = median(first[0]) / median(first[n])
                    lines.append(
                        f"\nn={n}: {ratio:.1f}x fewer episodes than Q-learning (medians) until the greedy path is optimal"
                    )
    return "\n".join(lines)


def tabular_plot(record: dict[str, Any], path) -> None:
    """Steps per episode against episodes, one panel per reward scheme, one line per planning steps."""
    runs = [run for run in record["runs"] if "episode_lengths" in run]
    panels = {}
    for reward in dict.fromkeys(run["reward"] for run in runs):
        step_reward, goal_reward = REWARDS[reward]
        panels[f"reward {step_reward:g} a step, {goal_reward:g} at the goal"] = {
            ("Q-learning" if n == 0 else f"Dyna-Q, n={n}"): [
                list(enumerate(run["episode_lengths"], start=1))
                for run in runs
                if run["reward"] == reward and run["planning_steps"] == n
            ]
            for n in dict.fromkeys(run["planning_steps"] for run in runs if run["reward"] == reward)
        }
    if not panels:
        return
    shortest = runs[0]["optimal_steps"]
    save_learning_curves(
        path,
        panels,
        xlabel="episode",
        ylabel="steps per episode (log scale)",
        lines={panel: {f"shortest path ({shortest} steps)": shortest} for panel in panels},
        title="Dyna maze (Sutton & Barto, Figure 8.2): mean +- std over seeds",
        log=True,
    )


def deep_plot(record: dict[str, Any], path) -> None:
    """Env steps until the optimal return per agent; unsolved runs count as the budget."""
    budget, runs = record["args"]["budget"], record["runs"]
    seeds = sorted({run["seed"] for run in runs})
    agents = dict.fromkeys(run["agent"] for run in runs)
    save_bar_plot(
        path,
        {
            f"seeds {seeds[0]}-{seeds[-1]}": {
                agent: [
                    run["solved_at"] if run["solved_at"] is not None else budget
                    for run in runs
                    if run["agent"] == agent
                ]
                for agent in agents
            }
        },
        title="AdvRL/GridWorld-v0 size 8: Dyna vs DQN (dots: seeds)",
        ylabel="env steps until the optimal return",
    )


#: Hyperparameters shared by DQN and Dyna in the deep benchmark.
DQN_HYPERPARAMETERS = dict(
    learning_rate=1e-3,
    buffer_size=50_000,
    learning_starts=500,
    batch_size=64,
    train_freq=4,
    gradient_steps=1,
    target_update_interval=250,
    exploration_fraction=0.3,
    exploration_final_eps=0.05,
    gamma=0.99,
    policy_kwargs=dict(net_arch=[64, 64]),
    device="cpu",
)
#: Dyna's own arguments.
DYNA_HYPERPARAMETERS = dict(
    planning_steps=10,
    real_ratio=0.5,
    planning_updates=8,
    model_train_freq=250,
    model_gradient_steps=100,
    model_kwargs=dict(hidden_sizes=(64, 64)),
)
#: The ``deep`` flags that set DQN's arguments (for both agents) and Dyna's, in the order they are passed.
SHARED_FLAGS = ("train_freq", "gradient_steps", "target_update_interval")
DYNA_FLAGS = (
    "real_ratio",
    "planning_steps",
    "planning_updates",
    "planning_target_update_interval",
    "rollout_length",
    "model_gradient_steps",
    "model_train_freq",
    "model_buffer_size",
    "model_noise",
    "imagined_actions",
    "exploration_bonus",
    "planning_gamma",
)


class StopAtOptimalReturn(BaseCallback):
    """Every ``eval_freq`` steps, run the deterministic policy for one episode (the env is
    deterministic); stop training once it has earned ``optimal_return`` at ``stable_evals``
    evaluations in a row, and report the step of the first of them (``stable_evals=1``: the first
    evaluation that earns it). The evaluations draw no random numbers, so they do not change
    training."""

    def __init__(
        self, eval_env: gym.Env, optimal_return: float, eval_freq: int, stable_evals: int = 1
    ) -> None:
        super().__init__()
        self.eval_env, self.optimal_return, self.eval_freq = eval_env, optimal_return, eval_freq
        self.stable_evals = stable_evals
        self.solved_at: int | None = None
        self._streak_start: int | None = None  # first evaluation of the current optimal run, if any
        self.goal_visits: list[int] = []  # env steps at which a real transition reached the goal

    def _on_step(self) -> bool:
        if np.any(self.locals["rewards"] > 0):
            self.goal_visits.append(self.num_timesteps)
        if self.num_timesteps % self.eval_freq:
            return True
        obs, _ = self.eval_env.reset()
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = self.eval_env.step(
                self.model.predict(obs, deterministic=True)[0]
            )
            total, done = total + reward, terminated or truncated
        if total < self.optimal_return - 1e-6:
            self._streak_start = None
            return True
        if self._streak_start is None:
            self._streak_start = self.num_timesteps
        if self.num_timesteps - self._streak_start < (self.stable_evals - 1) * self.eval_freq:
            return True
        self.solved_at = self._streak_start
        return False


def deep_optimal_return() -> float:
    """The deep task's optimal return: a shortest path's step rewards and the goal reward."""
    probe = gym.make("AdvRL/GridWorld-v0", **DEEP_ENV_KWARGS).unwrapped
    return (shortest_path_length(probe) - 1) * probe.step_reward + probe.goal_reward


def deep_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """DQN's hyperparameters (both agents) and Dyna's own arguments, from ``deep``'s flags."""
    dyna = {name: getattr(args, name) for name in DYNA_FLAGS}
    dyna["model_kwargs"] = {
        **DYNA_HYPERPARAMETERS["model_kwargs"],
        "hidden_sizes": tuple(args.model_hidden_sizes),
    }
    if args.nll_beta is not None:
        dyna["model_kwargs"]["nll_beta"] = args.nll_beta
    shared = {**DQN_HYPERPARAMETERS, **{name: getattr(args, name) for name in SHARED_FLAGS}}
    return shared, {**DYNA_HYPERPARAMETERS, **dyna}


def run_deep(
    results: Results,
    args: argparse.Namespace,
    dyna_class: type[Dyna] = Dyna,
    model_class: type[ProbabilisticEnsemble] = ProbabilisticEnsemble,
    model_kwargs: dict[str, Any] | None = None,
) -> None:
    """DQN and Dyna (``dyna_class``, imagining with ``model_class``, which also gets ``model_kwargs``)
    on every seed until the greedy policy is optimal or the budget is spent."""
    optimal_return = deep_optimal_return()
    shared, dyna = deep_settings(args)
    results.describe(optimal_return=optimal_return, shared=repr(shared), dyna=repr(dyna))
    model = {"model_class": model_class, "model_kwargs": {**dyna["model_kwargs"], **(model_kwargs or {})}}
    agents = {"DQN (SB3)": (DQN, {}), "Dyna": (dyna_class, {**dyna, **model})}
    agents = {name: agent for name, agent in agents.items() if name.split()[0] in args.agents}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, (algo, extra) in agents.items():
            env = gym.make("AdvRL/GridWorld-v0", **DEEP_ENV_KWARGS)
            model = algo("MlpPolicy", env, seed=seed, **shared, **extra)
            callback = StopAtOptimalReturn(
                gym.make("AdvRL/GridWorld-v0", **DEEP_ENV_KWARGS),
                optimal_return,
                args.eval_freq,
                args.stable_evals,
            )
            model.learn(args.budget, callback=callback)
            visits = callback.goal_visits
            results.add(dict(agent=name, seed=seed, solved_at=callback.solved_at, goal_visits=visits))
            print(
                f"seed {seed} {name}: solved at {callback.solved_at}; goal reached {len(visits)} times before, "
                f"first at {visits[0] if visits else '-'}, {sum(v <= 1000 for v in visits)} times by step 1000",
                flush=True,
            )


def deep_tables(record: dict[str, Any]) -> str:
    """Environment steps until the optimal return, per agent (unsolved runs count as the budget)."""
    args, settings = record["args"], record["settings"]
    budget, stable_evals = args["budget"], args["stable_evals"]
    solved: dict[str, list[int | None]] = {}
    for run in record["runs"]:
        solved.setdefault(run["agent"], []).append(run["solved_at"])
    seeds = sorted({run["seed"] for run in record["runs"]})
    lines = [
        f"\nAdvRL/GridWorld-v0 size 8, coordinate observations, optimal return {settings['optimal_return']:g}; "
        f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]}), budget {budget} steps, "
        f"deterministic evaluation every {args['eval_freq']} steps"
        + (
            f", solved when optimal at {stable_evals} evaluations in a row (the first counts)"
            if stable_evals > 1
            else ""
        )
        + "\n",
        f"shared: {settings['shared']}\nDyna: {settings['dyna']}",
    ]
    rows = []
    for name, values in solved.items():
        never = sum(v is None for v in values)
        mean = mean_std([v if v is not None else budget for v in values])
        rows.append(
            [
                name,
                mean + (f" (unsolved counted as {budget})" if never else ""),
                f"{len(values) - never}/{len(values)}",
                ", ".join("-" if v is None else str(v) for v in values),
            ]
        )
    columns = ("agent", "env steps until the optimal return", "runs solved", "per seed")
    lines += [*settings.get("notes", []), "", markdown_table(columns, rows, "lrrl")]
    if len(solved) == 2:
        dqn, dyna = ([v if v is not None else budget for v in values] for values in solved.values())
        lines.append(
            f"\nDyna needs {np.mean(dqn) / np.mean(dyna):.1f}x fewer environment steps than DQN (means)"
        )
        lines.append(
            f"Dyna needs {np.median(dqn) / np.median(dyna):.1f}x fewer environment steps than DQN (medians)"
        )
    return "\n".join(lines)


def add_deep_arguments(deep: argparse.ArgumentParser) -> None:
    """The flags of ``deep`` (also taken by ``benchmarks/dyna_diagnostics.py``)."""
    deep.add_argument("--seeds", type=int, default=5)
    deep.add_argument(
        "--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1"
    )
    deep.add_argument("--budget", type=int, default=20_000)
    deep.add_argument("--eval-freq", type=int, default=250)
    deep.add_argument(
        "--stable-evals",
        type=int,
        default=1,
        help="count a run as solved once this many evaluations in a row earn the optimal return (at the first of them)",
    )
    deep.add_argument("--agents", nargs="+", choices=["DQN", "Dyna"], default=["DQN", "Dyna"])
    for name in SHARED_FLAGS:
        deep.add_argument(f"--{name.replace('_', '-')}", type=int, default=DQN_HYPERPARAMETERS[name])
    dyna_flags: dict[str, dict[str, Any]] = {
        "real_ratio": dict(type=float),
        "planning_steps": dict(type=int),
        "planning_updates": dict(
            type=int,
            help="Dyna's Q-learning updates on imagined batches per env step (Dyna-Q's planning updates)",
        ),
        "planning_target_update_interval": dict(
            type=int,
            default=None,
            help="planning updates between target syncs (default: DQN's updates per target sync)",
        ),
        "rollout_length": dict(type=int, default=1, help="Dyna's model steps per imagined transition"),
        "model_gradient_steps": dict(type=int),
        "model_train_freq": dict(type=int),
        "model_buffer_size": dict(type=int, default=20_000, help="Dyna's imagined-transition buffer"),
        "imagined_actions": dict(
            choices=IMAGINED_ACTIONS, default="uniform", help="actions of Dyna's imagined transitions"
        ),
        "exploration_bonus": dict(
            type=float,
            default=0.0,
            help="Dyna's exploration_bonus: imagined rewards + this times the ensemble's next-state disagreement",
        ),
        "planning_gamma": dict(type=float, default=None, help="Dyna's planning_gamma (default: gamma)"),
    }
    for name, options in dyna_flags.items():
        options.setdefault("default", DYNA_HYPERPARAMETERS.get(name))
        deep.add_argument(f"--{name.replace('_', '-')}", **options)
    deep.add_argument(
        "--model-mean",
        dest="model_noise",
        action="store_false",
        help="imagine with member means (model_noise=False)",
    )
    deep.add_argument(
        "--nll-beta", type=float, default=None, help="beta-NLL exponent of Dyna's model (default: Dyna's 0.5)"
    )
    deep.add_argument(
        "--model-hidden-sizes",
        type=int,
        nargs="+",
        default=list(DYNA_HYPERPARAMETERS["model_kwargs"]["hidden_sizes"]),
        help="hidden layer sizes of each ensemble member",
    )
    add_results_argument(deep)


def check_deep_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.first_seed < 0:
        parser.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.stable_evals < 1:
        parser.error(f"--stable-evals must be >= 1, got {args.stable_evals}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="part", required=True)
    tab = sub.add_parser("tabular", help="TabularDynaQ vs Q-learning on the Dyna maze")
    tab.add_argument("--seeds", type=int, default=10)
    tab.add_argument("--episodes", type=int, default=150)
    tab.add_argument("--planning", type=int, nargs="+", default=[0, 5, 50])
    tab.add_argument("--reward", choices=[*REWARDS, "both"], default="both")
    add_results_argument(tab)
    add_plot_argument(tab, "dyna/tabular", "tabular.png")
    deep = sub.add_parser("deep", help="Dyna vs DQN on GridWorld size 8 (coordinates)")
    add_deep_arguments(deep)
    add_plot_argument(deep, "dyna/deep", "deep.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part == "tabular":

        def measure(results: Results) -> None:
            for reward in REWARDS if args.reward == "both" else [args.reward]:
                run_tabular(results, args.seeds, args.episodes, tuple(args.planning), reward)

        record = measure_or_load("dyna/tabular", args, measure)
        print(tabular_tables(record))
        tabular_plot(record, args.plot)
    else:
        check_deep_arguments(parser, args)
        record = measure_or_load("dyna/deep", args, lambda results: run_deep(results, args))
        print(deep_tables(record))
        deep_plot(record, args.plot)


if __name__ == "__main__":
    main()
