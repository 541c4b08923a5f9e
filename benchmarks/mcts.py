"""MCTS: success and path length against breadth-first search, and planning time per action, as the
number of simulations grows.

Tasks: ``AdvRL/FourRooms-v0`` (its random start per episode; the optimum is the BFS distance to the
goal) and ``AdvRL/QuantumGate-v0`` state preparation (bell on 2 qubits, ghz on 3 and 4, a random
depth-4 target on 3 qubits; the optimum is the fewest gates that reach the fidelity threshold, by
BFS over the env's gate set on exact state vectors). Each episode plans every action with
``MCTS(env, n_simulations=N)``; success means reaching the goal (fidelity threshold) within the
env's step limit. The table reports, per task and N: success rate, mean steps per solved episode
over the optimum, and the median planning time per action.

    python benchmarks/mcts.py [--tasks fourrooms bell ghz3 ghz4 random3] [--simulations 50 200 800]
        [--episodes 10] [--seeds 0 1 2]

Runs are saved under ``benchmarks/results/mcts/``; ``--from-results`` prints the table again and
``--plot`` draws success rate against simulations.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    mean_std,
    measure_or_load,
    save_learning_curves,
)

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.grid_world import MOVES
from gym_advrl.envs.quantum.statevector import apply_compiled, basis_state, fidelity
from sb3_ext.mcts import MCTS

#: name -> (label, env id, make kwargs, MCTS kwargs)
TASKS = {
    "fourrooms": ("FourRooms", "AdvRL/FourRooms-v0", {}, {"gamma": 0.95, "rollout_depth": 30}),
    "bell": ("Bell, 2 qubits", "AdvRL/QuantumGate-v0", {"n_qubits": 2}, {"gamma": 0.99, "rollout_depth": 3}),
    "ghz3": ("GHZ, 3 qubits", "AdvRL/QuantumGate-v0", {"n_qubits": 3}, {"gamma": 0.99, "rollout_depth": 3}),
    "ghz4": ("GHZ, 4 qubits", "AdvRL/QuantumGate-v0", {"n_qubits": 4}, {"gamma": 0.99, "rollout_depth": 3}),
    "random3": (
        "random depth-4 target, 3 qubits",
        "AdvRL/QuantumGate-v0",
        {"n_qubits": 3, "target": "random", "target_depth": 4},
        {"gamma": 0.99, "rollout_depth": 3},
    ),
}


def grid_optimum(grid: Any) -> int:
    """Breadth-first-search distance from the current position to the goal."""
    rows, cols, walls = grid.rows, grid.cols, grid.walls
    start, goal = tuple(grid.position), tuple(grid.goal)
    seen, queue = {start: 0}, deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            return seen[cell]
        for move in MOVES:
            r, c = cell[0] + int(move[0]), cell[1] + int(move[1])
            if 0 <= r < rows and 0 <= c < cols and not walls[r, c] and (r, c) not in seen:
                seen[(r, c)] = seen[cell] + 1
                queue.append((r, c))
    raise ValueError("the goal is unreachable")


def circuit_optimum(env: Any, max_depth: int = 8) -> int | None:
    """Fewest gates of the env's gate set from |0...0> to the threshold, by BFS over states (rounded
    amplitudes identify states already reached)."""
    target, threshold = env.target_state, env.threshold
    start = basis_state(env.n_qubits)
    frontier, seen = [start], {np.round(start, 9).tobytes()}
    for depth in range(1, max_depth + 1):
        following = []
        for state in frontier:
            for action in env.actions:
                new = apply_compiled(state, action.compiled)
                if fidelity(new, target) >= threshold:
                    return depth
                key = np.round(new, 9).tobytes()
                if key not in seen:
                    seen.add(key)
                    following.append(new)
        frontier = following
    return None


def run_episode(env: gym.Env, simulations: int, mcts_kwargs: dict, seed: int) -> dict[str, Any]:
    obs, _ = env.reset(seed=seed)
    base = env.unwrapped
    optimum = grid_optimum(base) if hasattr(base, "walls") else circuit_optimum(base)
    planner = MCTS(env, n_simulations=simulations, seed=seed, **mcts_kwargs)
    times, done, steps, success = [], False, 0, False
    while not done:
        start = time.perf_counter()
        action, _ = planner.predict(obs)
        times.append(time.perf_counter() - start)
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        done = terminated or truncated
        success = bool(info.get("is_success", terminated))
    return {
        "success": success,
        "steps": steps,
        "optimum": optimum,
        "ms_per_action": 1e3 * float(np.median(times)),
    }


def measure(results: Results, args: argparse.Namespace) -> None:
    for task in args.tasks:
        _, env_id, kwargs, mcts_kwargs = TASKS[task]
        for simulations in args.simulations:
            for seed in args.seeds:
                env = gym.make(env_id, **kwargs)
                episodes = [
                    run_episode(env, simulations, mcts_kwargs, seed * 1_000 + e) for e in range(args.episodes)
                ]
                solved = [e for e in episodes if e["success"] and e["optimum"]]
                run = {
                    "task": task,
                    "simulations": simulations,
                    "seed": seed,
                    "success": float(np.mean([e["success"] for e in episodes])),
                    "steps_over_optimum": float(np.mean([e["steps"] / e["optimum"] for e in solved]))
                    if solved
                    else None,
                    "ms_per_action": float(np.median([e["ms_per_action"] for e in episodes])),
                }
                results.add(run)
                print(run, flush=True)


def table(record: dict[str, Any]) -> str:
    runs, rows = record["runs"], []
    for task in dict.fromkeys(r["task"] for r in runs):
        for simulations in sorted({r["simulations"] for r in runs if r["task"] == task}):
            mine = [r for r in runs if r["task"] == task and r["simulations"] == simulations]
            rows.append(
                [
                    TASKS[task][0],
                    simulations,
                    len(mine),
                    mean_std([r["success"] for r in mine], ".2f"),
                    mean_std([r["steps_over_optimum"] for r in mine], ".2f"),
                    f"{np.median([r['ms_per_action'] for r in mine]):.1f}",
                ]
            )
    columns = ("task", "simulations", "seeds", "success rate", "steps / optimum (solved)", "ms per action")
    return f"{record['args']['episodes']} episodes per seed\n\n" + markdown_table(columns, rows, "lrrrrr")


def plot(record: dict[str, Any], path) -> None:
    runs = record["runs"]
    series = {
        TASKS[task][0]: [
            [(r["simulations"], r["success"]) for r in runs if r["task"] == task and r["seed"] == seed]
            for seed in sorted({r["seed"] for r in runs})
        ]
        for task in dict.fromkeys(r["task"] for r in runs)
    }
    save_learning_curves(
        path, {"success rate": series}, ylabel="success rate", xlabel="simulations per action"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--simulations", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add_results_argument(parser)
    add_plot_argument(parser, "mcts")
    args = parser.parse_args()
    record = measure_or_load("mcts", args, lambda results: measure(results, args))
    print(table(record))
    plot(record, args.plot)


if __name__ == "__main__":
    main()
