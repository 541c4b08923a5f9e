"""SB3 DQN and PPO on AdvRL/QuantumGate-v0 state preparation, with a random policy in the same run.

Tasks: the Bell state on 2 qubits, the same with Pauli noise after every gate (``noise_prob``),
and the GHZ state on 3 qubits. Each agent trains for a fixed step budget per seed and is then
evaluated greedily (``deterministic=True``) on ``--episodes`` episodes; success means reaching
fidelity >= 0.99 within the 20-step limit. The table reports success rate and circuit length
(mean +- std over seeds) and training time.

    python benchmarks/quantum_learning.py [--seeds 0 1 2] [--episodes 100] [--tasks bell noisy-bell ghz]
        [--algos DQN PPO] [--steps N (overrides every task's budget)]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
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
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(f"greedy evaluation on {args.episodes} episodes per seed, seeds {args.seeds}\n")
    print("| task | agent | training steps | success rate | gates per episode | training time (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for task in args.tasks:
        label, kwargs, budget = TASKS[task]
        budget = args.steps or budget
        rows = {"random policy": [], **{algo: [] for algo in args.algos}}
        times = {algo: [] for algo in args.algos}
        for seed in args.seeds:
            env = gym.make("AdvRL/QuantumGate-v0", **kwargs)
            env.action_space.seed(seed)
            rows["random policy"].append(
                evaluate(env, lambda _obs, e=env: e.action_space.sample(), args.episodes, seed)
            )
            for algo in args.algos:
                model = make_model(algo, gym.make("AdvRL/QuantumGate-v0", **kwargs), seed)
                start = time.perf_counter()
                model.learn(budget)
                times[algo].append(time.perf_counter() - start)
                greedy = lambda obs, m=model: int(m.predict(obs, deterministic=True)[0])  # noqa: E731
                rows[algo].append(evaluate(env, greedy, args.episodes, seed))
        for agent, results in rows.items():
            success, gates = np.array(results).T
            steps = "-" if agent == "random policy" else f"{budget:,}"
            seconds = f"{np.mean(times[agent]):.0f}" if agent in times else "-"
            print(
                f"| {label} | {agent} | {steps} | {success.mean():.2f} +- {success.std():.2f} | "
                f"{gates.mean():.1f} +- {gates.std():.1f} | {seconds} |"
            )


if __name__ == "__main__":
    main()
