"""SB3 SAC on ``AdvRL/CausalSCM-v0`` (additive actions, seed graph) against the analytic optimum.

Every step of the env is an independent draw of the SCM, so the expected return of any
deterministic policy ``pi(X1)`` is exactly ``50 * E_X1[ E[reward | X1, pi(X1)] ]``, with
``E[reward | X1, a] = -((.86 X1 + .4 a - target)^2 + .2176)``. This script computes it with
Gauss-Hermite quadrature over ``X1 ~ N(0, .5^2)`` for

* the analytic optimum ``a* = clip((target - .86 X1) / .4, -1, 1)`` (``env.optimal_action``),
* a uniformly random policy (Gauss-Legendre quadrature over ``a ~ U(-1, 1)`` as well),
* SAC's deterministic policy after ``--timesteps`` environment steps (SB3 defaults; ``--ent-coef``
  can change the entropy coefficient),

and reports SAC's normalized score ``(R_sac - R_random) / (R_opt - R_random)`` (1 = optimal, 0 =
random; the goal is >= 0.9) together with Monte Carlo returns over ``--eval-episodes`` episodes
as a cross-check of the quadrature.

    python benchmarks/causal_sac.py [--timesteps 10000] [--seeds 3] [--workers 3]

The README's passing configuration:

    python benchmarks/causal_sac.py --timesteps 5000 --seeds 5 --workers 2 \\
        --ent-coef auto_0.1 --target-entropy -3 --gamma 0

Runs are saved under ``benchmarks/results/causal_sac/``; ``--from-results`` prints their table again
and draws the plot (``--plot``): exact and Monte Carlo returns of the optimum, the random policy
and SAC (mean +- std over seeds), with the return of the 0.9 goal.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
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
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.causal import CausalSCMEnv

EPISODE_STEPS = 50


def x1_quadrature(env: CausalSCMEnv, order: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``(order, 1)`` and weights (summing to 1) for ``E[f(X1)]``, ``X1 ~ N(0, Var X1)``."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    sd = float(np.sqrt(env.scm.interventional_covariance()[0, 0]))
    return (sd * nodes)[:, None], weights / weights.sum()


def expected_return(env: CausalSCMEnv, policy) -> float:
    """Exact expected episode return of a deterministic policy ``obs (n, 1) -> action (n, 1)``."""
    obs, weights = x1_quadrature(env)
    return EPISODE_STEPS * float(weights @ env.expected_reward(obs, policy(obs)))


def random_policy_return(env: CausalSCMEnv, order: int = 40) -> float:
    """Exact expected episode return of ``a ~ U(-1, 1)``."""
    actions, action_weights = np.polynomial.legendre.leggauss(order)
    values = [expected_return(env, lambda obs, a=a: np.full_like(obs, a)) for a in actions]
    return float(np.dot(action_weights / 2.0, values))


class FnPolicy:
    """A ``predict``-compatible wrapper for evaluate_policy."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return self.fn(np.asarray(obs, dtype=np.float64)).astype(np.float32), state


def train_and_evaluate(
    job: tuple[int, int, str, str, float, int],
) -> tuple[int, float, tuple[float, float], float]:
    """Train SAC with one seed; return its exact expected return, Monte Carlo return and train time."""
    seed, timesteps, ent_coef, target_entropy, gamma, eval_episodes = job
    ent_coef = ent_coef if ent_coef.startswith("auto") else float(ent_coef)
    target_entropy = target_entropy if target_entropy == "auto" else float(target_entropy)
    torch.set_num_threads(1)
    analytic_env = CausalSCMEnv()
    model = SAC(
        "MlpPolicy",
        gym.make("AdvRL/CausalSCM-v0"),
        ent_coef=ent_coef,
        target_entropy=target_entropy,
        gamma=gamma,
        seed=seed,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(timesteps)
    seconds = time.perf_counter() - start
    learned = expected_return(analytic_env, lambda obs: model.predict(obs, deterministic=True)[0])
    mc = evaluate_policy(model, Monitor(gym.make("AdvRL/CausalSCM-v0")), eval_episodes, deterministic=True)
    return seed, learned, mc, seconds


def measure(results: Results, args: argparse.Namespace) -> None:
    """The analytic optimum and the random policy (exact and Monte Carlo returns), then SAC's seeds."""
    analytic_env = CausalSCMEnv()
    eval_env = Monitor(gym.make("AdvRL/CausalSCM-v0"))
    rng = np.random.default_rng(0)
    random_policy = FnPolicy(lambda obs: rng.uniform(-1.0, 1.0, size=(len(obs), 1)))
    references = {
        "analytic optimum a*": (
            expected_return(analytic_env, analytic_env.optimal_action),
            FnPolicy(analytic_env.optimal_action),
        ),
        "random policy": (random_policy_return(analytic_env), random_policy),
    }
    for name, (value, policy) in references.items():
        mean, std = evaluate_policy(policy, eval_env, args.eval_episodes, deterministic=True)
        results.add({"policy": name, "expected_return": value, "mc_mean": mean, "mc_std": std})
    jobs = [
        (seed, args.timesteps, args.ent_coef, args.target_entropy, args.gamma, args.eval_episodes)
        for seed in range(args.seeds)
    ]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for seed, learned, (mean, std), seconds in pool.map(train_and_evaluate, jobs):
            results.add(
                {
                    "policy": f"SAC seed {seed}",
                    "expected_return": learned,
                    "mc_mean": mean,
                    "mc_std": std,
                    "seconds": seconds,
                }
            )


def table(record: dict[str, Any]) -> str:
    args, runs = record["args"], record["runs"]
    optimum, random_return = (run["expected_return"] for run in runs[:2])
    gap = optimum - random_return
    rows, scores = [], []
    for run in runs:
        score = (run["expected_return"] - random_return) / gap
        if "seconds" in run:
            scores.append(score)
        rows.append(
            [
                run["policy"],
                f"{run['expected_return']:.2f}",
                f"{run['mc_mean']:.2f} +- {run['mc_std']:.2f}",
                f"{score:.3f}",
                f"{run['seconds']:.0f}" if "seconds" in run else "",
            ]
        )
    columns = (
        "policy",
        "expected return (exact)",
        "Monte Carlo return",
        "normalized score",
        "train time (s)",
    )
    verdict = "PASS" if np.mean(scores) >= 0.9 else "FAIL"
    return (
        f"SAC budget: {args['timesteps']} env steps per seed ({args['timesteps'] // EPISODE_STEPS} episodes); "
        f"SB3 defaults except ent_coef={args['ent_coef']!r}, target_entropy={args['target_entropy']!r}, gamma={args['gamma']}"
        "\n\n"
        + markdown_table(columns, rows, "lrrrr")
        + f"\n\nSAC normalized score {mean_std(scores, '.3f')} over {len(scores)} seeds "
        "(goal >= 0.9, i.e. within 10% of the optimum relative to random): " + verdict
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument(
        "--ent-coef", default="auto", help='SAC ent_coef (SB3 default "auto", i.e. "auto_1.0")'
    )
    parser.add_argument(
        "--target-entropy", default="auto", help='SAC target_entropy (SB3 default "auto", i.e. -dim(A) = -1)'
    )
    parser.add_argument(
        "--gamma",
        type=float,
        default=0.99,
        help="SAC discount (SB3 default 0.99; steps are independent draws)",
    )
    parser.add_argument("--workers", type=int, default=1, help="seeds trained in parallel processes")
    add_results_argument(parser)
    add_plot_argument(parser, "causal_sac")
    args = parser.parse_args()
    torch.set_num_threads(1)
    record = measure_or_load("causal_sac", args, lambda results: measure(results, args))
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    runs = record["runs"]
    optimum, random_policy = runs[:2]
    sac = [run for run in runs if "seconds" in run]
    groups = {
        run["policy"]: {
            "expected return (exact)": [run["expected_return"]],
            "Monte Carlo return": [run["mc_mean"]],
        }
        for run in (random_policy, optimum)
    }
    groups[f"SAC, {len(sac)} seeds"] = {
        "expected return (exact)": [run["expected_return"] for run in sac],
        "Monte Carlo return": [run["mc_mean"] for run in sac],
    }
    goal = random_policy["expected_return"] + 0.9 * (
        optimum["expected_return"] - random_policy["expected_return"]
    )
    save_bar_plot(
        path,
        groups,
        title=f"SAC on AdvRL/CausalSCM-v0 after {record['args']['timesteps']:,} steps (dots: seeds)",
        ylabel="episode return (50 steps)",
        lines={"normalized score 0.9 (the goal)": goal},
    )


if __name__ == "__main__":
    main()
