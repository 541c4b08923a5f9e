"""SB3 DQN and PPO on AdvRL/QuantumGate-v0 state preparation, with a random policy in the same run.

Tasks: the Bell state on 2 qubits, the same with Pauli noise after every gate (``noise_prob``),
and the GHZ state on 3 qubits. Each agent trains for a fixed step budget per seed and is then
evaluated greedily (``deterministic=True``) on ``--episodes`` episodes; success means reaching
fidelity >= 0.99 within the 20-step limit. The table reports success rate and circuit length
(mean +- std over seeds) and training time.

    python benchmarks/quantum_learning.py [--seeds 0 1 2] [--episodes 100] [--tasks bell noisy-bell ghz]
        [--algos DQN PPO] [--steps N (overrides every task's budget)]

Runs are saved under ``benchmarks/results/quantum_learning/``; ``--from-results`` prints their table
again and draws the plot (``--plot``): greedy success rate per task and agent, mean +- std over seeds.
"""

from __future__ import annotations

import argparse
import time
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
)
from stable_baselines3 import DQN, PPO

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)

#: name -> (label, make kwargs, default step budget)
TASKS = {
    "bell": ("Bell, 2 qubits", {}, 5_000),
    "noisy-bell": ("Bell, 2 qubits, noise_prob 0.05", {"noise_prob": 0.05}, 20_000),
    "ghz": ("GHZ, 3 qubits", {"n_qubits": 3}, 30_000),
}


def make_model(algo: str, env: gym.Env, seed: int) -> DQN | PPO:
    if algo == "DQN":
        return DQN(
            "MlpPolicy", env, learning_rate=1e-3, buffer_size=50_000, learning_starts=500, batch_size=64,
            gamma=0.95, train_freq=4, target_update_interval=250, exploration_fraction=0.3,
            exploration_final_eps=0.05, policy_kwargs={"net_arch": [64, 64]}, seed=seed,
        )  # fmt: skip
    return PPO(
        "MlpPolicy", env, learning_rate=1e-3, n_steps=512, batch_size=64, n_epochs=10, gamma=0.95,
        ent_coef=0.01, policy_kwargs={"net_arch": [64, 64]}, seed=seed,
    )  # fmt: skip


def evaluate(env: gym.Env, policy, episodes: int, seed: int) -> tuple[float, float]:
    """Success rate and mean number of gates over ``episodes`` greedy episodes."""
    successes, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed * 10_000 + episode)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            done = terminated or truncated
        successes.append(info["is_success"])
        lengths.append(len(info["gates"]))
    return float(np.mean(successes)), float(np.mean(lengths))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--algos", nargs="+", choices=["DQN", "PPO"], default=["DQN", "PPO"])
    parser.add_argument("--steps", type=int, default=None)
    add_results_argument(parser)
    add_plot_argument(parser, "quantum_learning")
    args = parser.parse_args()
    torch.set_num_threads(1)
    record = measure_or_load("quantum_learning", args, lambda results: measure(results, args))
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    runs = record["runs"]
    groups = {}
    for task in dict.fromkeys(run["task"] for run in runs):
        task_runs = [run for run in runs if run["task"] == task]
        budgets = sorted({run["steps"] for run in task_runs if "steps" in run})
        label = TASKS[task][0] + "".join(f", {steps:,} steps" for steps in budgets)
        groups[label] = {
            agent: [run["success"] for run in task_runs if run["agent"] == agent]
            for agent in dict.fromkeys(run["agent"] for run in task_runs)
        }
    save_bar_plot(
        path,
        groups,
        title=f"AdvRL/QuantumGate-v0: greedy success (fidelity >= 0.99), {record['args']['episodes']} episodes "
        f"per seed, {len(record['args']['seeds'])} seeds (dots: seeds)",
        ylabel="success rate",
    )


def measure(results: Results, args: argparse.Namespace) -> None:
    """Per task and seed: the random policy, then each algorithm trained and evaluated greedily."""
    for task in args.tasks:
        _, kwargs, budget = TASKS[task]
        budget = args.steps or budget
        for seed in args.seeds:
            env = gym.make("AdvRL/QuantumGate-v0", **kwargs)
            env.action_space.seed(seed)
            success, gates = evaluate(env, lambda _obs, e=env: e.action_space.sample(), args.episodes, seed)
            results.add(
                {"task": task, "agent": "random policy", "seed": seed, "success": success, "gates": gates}
            )
            for algo in args.algos:
                model = make_model(algo, gym.make("AdvRL/QuantumGate-v0", **kwargs), seed)
                start = time.perf_counter()
                model.learn(budget)
                seconds = time.perf_counter() - start
                greedy = lambda obs, m=model: int(m.predict(obs, deterministic=True)[0])  # noqa: E731
                success, gates = evaluate(env, greedy, args.episodes, seed)
                run = {"task": task, "agent": algo, "seed": seed, "steps": budget, "seconds": seconds}
                results.add({**run, "success": success, "gates": gates})


def table(record: dict[str, Any]) -> str:
    args, runs = record["args"], record["runs"]
    rows = []
    for task in dict.fromkeys(run["task"] for run in runs):
        for agent in dict.fromkeys(run["agent"] for run in runs if run["task"] == task):
            agent_runs = [run for run in runs if run["task"] == task and run["agent"] == agent]
            trained = "seconds" in agent_runs[0]
            rows.append(
                [
                    TASKS[task][0],
                    agent,
                    f"{agent_runs[0]['steps']:,}" if trained else "-",
                    mean_std([run["success"] for run in agent_runs], ".2f"),
                    mean_std([run["gates"] for run in agent_runs], ".1f"),
                    f"{np.mean([run['seconds'] for run in agent_runs]):.0f}" if trained else "-",
                ]
            )
    columns = ("task", "agent", "training steps", "success rate", "gates per episode", "training time (s)")
    return (
        f"greedy evaluation on {args['episodes']} episodes per seed, seeds {args['seeds']}\n\n"
        + markdown_table(columns, rows, "llrrrr")
    )


if __name__ == "__main__":
    main()
