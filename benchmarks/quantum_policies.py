"""Variational-circuit policies (``VQCPolicy``, ``VQCDQNPolicy``) against MLPs of a similar size.

Agents, on each task, over the same seeds in the same run:

- ``vqc-ppo``: PPO with :class:`sb3_ext.VQCPolicy` (circuit actor, Jerbi et al. 2021; MLP critic);
- ``mlp-ppo``: PPO with an MLP actor of about the circuit's parameter count and the same critic;
- ``vqc-dqn``: DQN with :class:`sb3_ext.VQCDQNPolicy` (Skolik et al. 2022);
- ``mlp-dqn``: DQN with an MLP Q-network of about the circuit's parameter count.

Tasks: ``CartPole-v1`` (the papers' benchmark; solved at 500) and ``AdvRL/QuantumGate-v0``'s Bell
(2 qubits) and GHZ (3 qubits) state preparation (the return is the fidelity gained, from 0.5,
plus 1 on success: at least 1.49 when the target is reached, so 1.45 marks success). Every
``--eval-every`` steps the agent is evaluated greedily on ``--eval-episodes`` episodes; the table
reports the best and final evaluation, the episodes and steps to the first evaluation at the
task's threshold, the actor's (Q-network's) parameters and the wall time per gradient update.

    python benchmarks/quantum_policies.py [--tasks cartpole bell ghz] [--agents vqc-ppo mlp-ppo vqc-dqn mlp-dqn]
        [--seeds 0 1 2] [--steps N] [--eval-every N] [--eval-episodes 10]
    python benchmarks/quantum_policies.py --timing     # forward + backward of the circuit vs qubits

Runs are saved under ``benchmarks/results/quantum_policies/``; ``--from-results`` prints the tables
again and ``--plot`` draws the learning curves (mean +- std over seeds).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    mean_std,
    measure_or_load,
    save_learning_curves,
)
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.quantum import VariationalCircuit, VQCDQNPolicy, VQCPolicy

#: name -> (label, env id, make kwargs, step budget, threshold of a solved evaluation)
TASKS = {
    "cartpole": ("CartPole-v1", "CartPole-v1", {}, 100_000, 500.0),
    "bell": ("Bell, 2 qubits", "AdvRL/QuantumGate-v0", {}, 10_000, 1.45),
    "ghz": ("GHZ, 3 qubits", "AdvRL/QuantumGate-v0", {"n_qubits": 3}, 30_000, 1.45),
}
AGENTS = ("vqc-ppo", "mlp-ppo", "vqc-dqn", "mlp-dqn")
N_LAYERS = 5


def circuit_kwargs(task: str, n_inputs: int) -> dict[str, Any]:
    """4 qubits on CartPole (one per feature); enough qubits for the state vector's features (up to
    three rotations per qubit) on the quantum tasks."""
    kwargs: dict[str, Any] = {"n_layers": N_LAYERS, "n_qubits": max(1, -(-n_inputs // 3))}
    if task == "cartpole":
        kwargs.update(n_qubits=n_inputs, input_transform="arctan")
    return kwargs


def circuit_parameters(kwargs: dict[str, Any], n_inputs: int, n_actions: int) -> int:
    circuit = VariationalCircuit(n_inputs, n_outputs=n_actions, **kwargs)
    return sum(p.numel() for p in circuit.parameters()) + n_actions  # plus the output weights


def mlp_width(n_inputs: int, n_actions: int, budget: int) -> int:
    """Hidden width of a one-hidden-layer MLP with at most ``budget`` parameters (at least 2)."""
    return max(2, (budget - n_actions) // (n_inputs + 1 + n_actions))


def make_model(agent: str, task: str, env: gym.Env, seed: int) -> PPO | DQN:
    n_inputs, n_actions = int(env.observation_space.shape[0]), int(env.action_space.n)
    circuit = circuit_kwargs(task, n_inputs)
    width = mlp_width(n_inputs, n_actions, circuit_parameters(circuit, n_inputs, n_actions))
    cartpole = task == "cartpole"
    gamma = 0.99 if cartpole else 0.95
    if agent.endswith("ppo"):
        policy_kwargs = (
            {"circuit_kwargs": circuit, "vf_net_arch": [64, 64], "output_scale": 1.0}
            if agent == "vqc-ppo"
            else {"net_arch": {"pi": [width], "vf": [64, 64]}}
        )
        return PPO(
            VQCPolicy if agent == "vqc-ppo" else "MlpPolicy", env, learning_rate=0.01 if agent == "vqc-ppo" else 3e-3,
            n_steps=512, batch_size=64, n_epochs=10, gamma=gamma, ent_coef=0.0 if cartpole else 0.01,
            policy_kwargs=policy_kwargs, seed=seed,
        )  # fmt: skip
    policy_kwargs = (
        {"circuit_kwargs": circuit, "output_scale": 100.0 if cartpole else 10.0, "output_init": 1.0}
        if agent == "vqc-dqn"
        else {"net_arch": [width]}
    )
    return DQN(
        VQCDQNPolicy if agent == "vqc-dqn" else "MlpPolicy", env, learning_rate=1e-3, buffer_size=50_000,
        learning_starts=1_000 if cartpole else 500, batch_size=32 if agent == "vqc-dqn" else 64, gamma=gamma,
        train_freq=4 if cartpole else 1, target_update_interval=500, exploration_fraction=0.2,
        exploration_final_eps=0.01 if cartpole else 0.05, policy_kwargs=policy_kwargs, seed=seed,
    )  # fmt: skip


def actor_parameters(model: PPO | DQN) -> int:
    """Parameters of the part that picks the action: the actor (PPO) or the Q-network (DQN)."""
    if isinstance(model, DQN):
        return sum(p.numel() for p in model.q_net.parameters())
    policy = model.policy
    return sum(
        p.numel() for p in [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
    )


def evaluate(model: PPO | DQN, env: gym.Env, episodes: int, seed: int) -> float:
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed * 100_000 + episode)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


class Curve(BaseCallback):
    """Greedy evaluation every ``every`` steps: ``(step, episodes so far, mean return)``; stops the
    run once ``patience`` evaluations in a row reach ``threshold`` (the task is solved)."""

    def __init__(
        self, env: gym.Env, every: int, episodes: int, seed: int, threshold: float, patience: int = 3
    ):
        super().__init__()
        self.env, self.every, self.episodes, self.seed = env, every, episodes, seed
        self.threshold, self.patience = threshold, patience
        self.points: list[tuple[int, int, float]] = []
        self.finished_episodes = 0

    def _on_step(self) -> bool:
        self.finished_episodes += int(np.sum(self.locals["dones"]))
        if self.num_timesteps % self.every:
            return True
        value = evaluate(self.model, self.env, self.episodes, self.seed)
        self.points.append((self.num_timesteps, self.finished_episodes, value))
        recent = [v for _, _, v in self.points[-self.patience :]]
        return not (len(recent) == self.patience and min(recent) >= self.threshold)


def timed_train(model: PPO | DQN) -> dict[str, float]:
    """Wrap ``model.train`` to add up its wall time and its gradient updates (SB3's PPO counts
    epochs in ``_n_updates``: each is one update per minibatch of the rollout)."""
    stats = {"seconds": 0.0, "updates": 0}
    train = model.train
    per_count = 1 if isinstance(model, DQN) else -(-model.n_steps * model.n_envs // model.batch_size)

    def wrapped(*args: Any, **kwargs: Any) -> None:
        before = model._n_updates
        start = time.perf_counter()
        train(*args, **kwargs)
        stats["seconds"] += time.perf_counter() - start
        stats["updates"] += (model._n_updates - before) * per_count

    model.train = wrapped
    return stats


def measure(results: Results, args: argparse.Namespace) -> None:
    for task in args.tasks:
        _, env_id, kwargs, budget, threshold = TASKS[task]
        budget = args.steps or budget
        for seed in args.seeds:
            for agent in args.agents:
                model = make_model(agent, task, gym.make(env_id, **kwargs), seed)
                stats = timed_train(model)
                curve = Curve(
                    gym.make(env_id, **kwargs), args.eval_every, args.eval_episodes, seed, threshold
                )
                start = time.perf_counter()
                model.learn(budget, callback=curve)
                seconds = time.perf_counter() - start
                solved_at = next(((s, e) for s, e, v in curve.points if v >= threshold), (None, None))
                run = {
                    "task": task,
                    "agent": agent,
                    "seed": seed,
                    "budget": budget,
                    "curve": [(s, v) for s, _, v in curve.points],
                    "episodes": [e for _, e, _ in curve.points],
                    "best": max(v for _, _, v in curve.points),
                    "final": curve.points[-1][2],
                    "solved_step": solved_at[0],
                    "solved_episodes": solved_at[1],
                    "parameters": actor_parameters(model),
                    "ms_per_update": 1e3 * stats["seconds"] / max(stats["updates"], 1),
                    "seconds": seconds,
                }
                results.add(run)
                print(
                    f"{task} {agent} seed {seed}: best {run['best']:.2f}, final {run['final']:.2f}, solved at "
                    f"{run['solved_step']} steps / {run['solved_episodes']} episodes, {run['parameters']} parameters, "
                    f"{run['ms_per_update']:.2f} ms/update, {seconds:.0f} s",
                    flush=True,
                )


def table(record: dict[str, Any]) -> str:
    rows = []
    runs = record["runs"]
    for task in dict.fromkeys(run["task"] for run in runs):
        for agent in dict.fromkeys(run["agent"] for run in runs if run["task"] == task):
            mine = [run for run in runs if run["task"] == task and run["agent"] == agent]
            solved = [run for run in mine if run["solved_step"] is not None]
            rows.append(
                [
                    TASKS[task][0],
                    agent,
                    f"{mine[0]['budget']:,}",
                    str(mine[0]["parameters"]),
                    mean_std([run["best"] for run in mine], ".2f"),
                    mean_std([run["final"] for run in mine], ".2f"),
                    f"{len(solved)} of {len(mine)}",
                    mean_std([run["solved_episodes"] for run in solved], ".0f"),
                    mean_std([run["solved_step"] for run in solved], ".0f"),
                    mean_std([run["ms_per_update"] for run in mine], ".2f"),
                ]
            )
    columns = (
        "task",
        "agent",
        "step budget",
        "actor parameters",
        "best evaluation",
        "final evaluation",
        "seeds solved",
        "episodes to solve",
        "steps to solve",
        "ms per update",
    )
    seeds = sorted({run["seed"] for run in runs})
    thresholds = ", ".join(f"{TASKS[t][0]} {TASKS[t][4]:g}" for t in dict.fromkeys(r["task"] for r in runs))
    return (
        f"seeds {seeds}; greedy evaluation on {record['args']['eval_episodes']} episodes every "
        f"{record['args']['eval_every']:,} steps; solved: an evaluation at the threshold ({thresholds})\n\n"
        + markdown_table(columns, rows, "llrrrrrrrr")
    )


def plot(record: dict[str, Any], path) -> None:
    runs = record["runs"]
    panels = {}
    for task in dict.fromkeys(run["task"] for run in runs):
        panels[TASKS[task][0]] = {
            agent: [run["curve"] for run in runs if run["task"] == task and run["agent"] == agent]
            for agent in dict.fromkeys(run["agent"] for run in runs if run["task"] == task)
        }
    save_learning_curves(
        path,
        panels,
        ylabel="greedy evaluation return",
        lines={TASKS[t][0]: {"solved": TASKS[t][4]} for t in dict.fromkeys(r["task"] for r in runs)},
        title="VQC policies vs MLPs of a similar size (mean +- std over seeds)",
    )


def timing(repeats: int = 50) -> str:
    """Forward + backward of a 5-layer circuit on a batch of 64, per number of qubits."""
    th.set_num_threads(2)
    rows = []
    for n_qubits in (2, 4, 6, 8, 10, 12):
        circuit = VariationalCircuit(n_qubits, n_layers=N_LAYERS, n_outputs=2)
        x = th.randn(64, n_qubits, dtype=th.float64)
        for _ in range(3):
            circuit(x).sum().backward()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            circuit(x).sum().backward()
            times.append(time.perf_counter() - start)
        best, median = 1e3 * min(times), 1e3 * float(np.median(times))
        rows.append(
            [n_qubits, 2**n_qubits, f"{best:.2f}", f"{median:.2f}", f"{1e6 * median / 64 / 2**n_qubits:.2f}"]
        )
    return markdown_table(
        ("qubits", "amplitudes", "min (ms)", "median (ms)", "median per sample and amplitude (ns)"),
        rows,
        "rrrrr",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--agents", nargs="+", choices=AGENTS, default=list(AGENTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--steps", type=int, default=None, help="step budget of every task (default: the task's)"
    )
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--timing", action="store_true", help="only time the circuit's forward + backward")
    add_results_argument(parser)
    add_plot_argument(parser, "quantum_policies")
    args = parser.parse_args()
    if args.timing:
        print(timing())
        return
    th.set_num_threads(1)
    record = measure_or_load("quantum_policies", args, lambda results: measure(results, args))
    print(table(record))
    plot(record, args.plot)


if __name__ == "__main__":
    main()
