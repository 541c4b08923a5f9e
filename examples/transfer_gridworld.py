"""Transfer between grid-world goals: fine-tune a DQN trained on one goal vs train from scratch.

A DQN agent learns ``AdvRL/GridWorld-v0`` (random start cell, coordinate observations) with the
goal at ``--source`` until its greedy policy is optimal. ``GoalSchedule`` then moves the goal to ``--target`` through the VecEnv
(``env_method("set_goal", 1)``), and two agents with identical settings learn the new goal: one
starts from the source agent's Q-network, the other from random weights. After every training
episode the greedy policy is run from every start cell; the reported figure is the number of
training episodes (and environment steps) until it is optimal from all of them, i.e. reaches the
goal along a shortest path and so earns the optimal return.

    python examples/transfer_gridworld.py [--timesteps 6000] [--source 4 4] [--target 0 4] [--seed 0]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback

import gym_advrl  # noqa: F401  (registers the AdvRL/ environments)
from gym_advrl.wrappers import GoalSchedule

SIZE = 5
#: DQN settings for a 5x5 grid on a small CPU budget.
DQN_KWARGS = {
    "learning_rate": 1e-3,
    "buffer_size": 20_000,
    "learning_starts": 200,
    "batch_size": 64,
    "train_freq": 1,
    "target_update_interval": 200,
    "exploration_fraction": 0.3,
    "exploration_final_eps": 0.05,
    "policy_kwargs": {"net_arch": [64, 64]},
}


def make_env(source: tuple[int, int], target: tuple[int, int]) -> GoalSchedule:
    """A grid world with random start cells whose goal is switched manually between source and target."""
    return GoalSchedule(
        gym.make("AdvRL/GridWorld-v0", size=SIZE, start=None, obs_mode="coords"), goals=[source, target]
    )


class GreedyOptimality:
    """Checks whether a policy's greedy actions reach ``goal`` along a shortest path from every start cell.

    One environment per start cell (made once), rolled out in lockstep with one batched
    ``predict`` per step. On the wall-free grid the shortest path from a cell is its Manhattan
    distance to the goal, and reaching the goal in that many steps is the optimal return.
    """

    def __init__(self, goal: tuple[int, int]) -> None:
        cells = [(r, c) for r in range(SIZE) for c in range(SIZE) if (r, c) != goal]
        self.envs = [
            gym.make("AdvRL/GridWorld-v0", size=SIZE, start=cell, goal=goal, obs_mode="coords")
            for cell in cells
        ]
        self.distances = np.array([abs(r - goal[0]) + abs(c - goal[1]) for r, c in cells])

    def __call__(self, model: DQN) -> bool:
        obs = np.stack([env.reset()[0] for env in self.envs])
        active = np.ones(len(self.envs), dtype=bool)
        for step in range(1, self.distances.max() + 1):
            actions, _ = model.predict(obs, deterministic=True)
            for i in np.flatnonzero(active):
                obs[i], _, terminated, _, _ = self.envs[i].step(actions[i])
                active[i] = not terminated
            # Every cell whose shortest path has this length must have arrived by now.
            if np.any(active & (self.distances == step)):
                return False
        return True


class EpisodesToOptimal(BaseCallback):
    """Counts training episodes until the greedy policy is optimal from every start cell; then stops."""

    def __init__(self, goal: tuple[int, int]) -> None:
        super().__init__()
        self.is_optimal = GreedyOptimality(goal)
        self.episodes = 0
        self.solved_at: tuple[int, int] | None = None

    def _on_step(self) -> bool:
        for done in self.locals["dones"]:
            if done:
                self.episodes += 1
                if self.is_optimal(self.model):
                    self.solved_at = (self.episodes, self.num_timesteps)
                    return False
        return True


def learn_target(
    source: tuple[int, int], target: tuple[int, int], timesteps: int, seed: int, init_from: DQN | None
) -> tuple[int, int] | None:
    """Train on the target goal (from ``init_from``'s Q-network if given); ``(episodes, steps)`` to optimal."""
    model = DQN("MlpPolicy", make_env(source, target), seed=seed, verbose=0, **DQN_KWARGS)
    model.get_env().env_method("set_goal", 1)
    if init_from is not None:
        model.policy.load_state_dict(init_from.policy.state_dict())
    callback = EpisodesToOptimal(target)
    model.learn(total_timesteps=timesteps, callback=callback, progress_bar=True)
    return callback.solved_at


def train_source(
    source: tuple[int, int], target: tuple[int, int], timesteps: int, seed: int
) -> tuple[DQN, bool]:
    """Train DQN on the source goal until its greedy policy is optimal (or the budget is spent)."""
    model = DQN("MlpPolicy", make_env(source, target), seed=seed, verbose=0, **DQN_KWARGS)
    callback = EpisodesToOptimal(source)
    model.learn(total_timesteps=timesteps, callback=callback, progress_bar=True)
    return model, callback.solved_at is not None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=6_000, help="budget of each training phase")
    parser.add_argument("--source", type=int, nargs=2, default=(4, 4))
    parser.add_argument("--target", type=int, nargs=2, default=(0, 4))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest for small networks)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    source, target = tuple(args.source), tuple(args.target)

    source_model, source_solved = train_source(source, target, args.timesteps, args.seed)
    print(f"source goal {source}: greedy policy optimal from every start: {source_solved}")
    rows = {
        "fine-tuned from the source agent": learn_target(
            source, target, args.timesteps, args.seed + 1, source_model
        ),
        "from scratch": learn_target(source, target, args.timesteps, args.seed + 1, None),
    }
    print(
        f"\nAdvRL/GridWorld-v0 {SIZE}x{SIZE}, goal moved {source} -> {target}, DQN, budget {args.timesteps:,} steps\n"
    )
    print("| agent on the new goal | episodes to optimal | env steps to optimal |")
    print("|---|---:|---:|")
    for name, solved in rows.items():
        cells = (
            (str(solved[0]), f"{solved[1]:,}") if solved else (f"not within {args.timesteps:,} steps", "-")
        )
        print(f"| {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
