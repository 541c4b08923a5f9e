"""Dyna benchmarks: planning from a model versus learning from real experience only.

1. ``tabular`` -- the Dyna maze of Sutton & Barto (2018, Example 8.1, Figure 8.2), built from
   ``AdvRL/GridWorld-v0`` with walls (a 6x9 layout, reward 0 per step and 1 at the goal, gamma
   0.95, alpha 0.1, epsilon 0.1, no step limit). TabularDynaQ with 50 and 5 planning steps
   against plain Q-learning (0 planning steps, otherwise identical): the number of episodes
   after which the greedy path from the start is a shortest path and stays one until the end
   of the run.
2. ``deep`` -- Dyna (DQN + learned ensemble model) against SB3 DQN with the same
   hyperparameters on ``AdvRL/GridWorld-v0`` size 8 with coordinate observations: environment
   steps until the deterministic policy reaches the optimal return.

    python benchmarks/dyna.py tabular [--seeds 10] [--episodes 50]
"""

from __future__ import annotations

import argparse
from collections import deque

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.dyna import TabularDynaQ

#: Sutton & Barto's Dyna maze (Figure 8.2): start S, goal G, 14 steps on a shortest path.
DYNA_MAZE = """\
.......#G
..#....#.
S.#....#.
..#......
.....#...
........."""


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


def episodes_until_optimal(optimal: list[bool]) -> int | None:
    """First episode (1-based) after which the greedy path is optimal for the rest of the run."""
    if not optimal or not optimal[-1]:
        return None
    last_bad = max((i for i, ok in enumerate(optimal) if not ok), default=-1)
    return last_bad + 2


def run_tabular(seeds: int, n_episodes: int, planning: tuple[int, ...]) -> None:
    maze = {"layout": DYNA_MAZE, "obs_mode": "index", "step_reward": 0.0, "goal_reward": 1.0}
    optimal_steps = shortest_path_length(gym.make("AdvRL/GridWorld-v0", **maze))
    results: dict[int, list[int | None]] = {n: [] for n in planning}
    first_episode: dict[int, list[int]] = {n: [] for n in planning}
    for n in planning:
        for seed in range(seeds):
            env = gym.make("AdvRL/GridWorld-v0", max_episode_steps=1_000_000, **maze)
            eval_env = gym.make("AdvRL/GridWorld-v0", max_episode_steps=4 * optimal_steps, **maze)
            model = TabularDynaQ(
                "TabularPolicy", env, learning_rate=0.1, gamma=0.95, planning_steps=n, seed=seed
            )
            callback = GreedyPathEveryEpisode(eval_env, optimal_steps, n_episodes)
            model.learn(10_000_000, callback=callback)
            results[n].append(episodes_until_optimal(callback.optimal))
            first_episode[n].append(callback.episode_lengths[0])

    def summary(values: list[int | None]) -> str:
        done = [v for v in values if v is not None]
        text = f"{np.mean(done):.1f} +- {np.std(done):.1f}" if done else "-"
        return text + ("" if len(done) == len(values) else f" ({len(values) - len(done)} runs never)")

    print(
        f"Dyna maze (Sutton & Barto Fig. 8.2), shortest path {optimal_steps} steps, {seeds} seeds, {n_episodes} episodes\n"
    )
    print("| agent | planning steps n | episodes until the greedy path is optimal | steps in episode 1 |")
    print("|---|---:|---:|---:|")
    for n in planning:
        name = "Q-learning" if n == 0 else "Dyna-Q"
        print(f"| {name} | {n} | {summary(results[n])} | {np.mean(first_episode[n]):.0f} |")
    if 0 in planning:
        base = [v if v is not None else n_episodes + 1 for v in results[0]]
        for n in planning:
            if n:
                ours = [v if v is not None else n_episodes + 1 for v in results[n]]
                print(f"\nn={n}: {np.mean(base) / np.mean(ours):.1f}x fewer episodes than Q-learning")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="part", required=True)
    tab = sub.add_parser("tabular", help="TabularDynaQ vs Q-learning on the Dyna maze")
    tab.add_argument("--seeds", type=int, default=10)
    tab.add_argument("--episodes", type=int, default=50)
    tab.add_argument("--planning", type=int, nargs="+", default=[0, 5, 50])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part == "tabular":
        run_tabular(args.seeds, args.episodes, tuple(args.planning))


if __name__ == "__main__":
    main()
