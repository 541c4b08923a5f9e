"""Causal discovery with PC on ``AdvRL/CausalSCM-v0``: structural Hamming distance to the truth.

For the seed graph and for ``--graphs`` seeded random graphs (``graph="random"``, ``n_vars`` 6,
``edge_prob`` 0.3, ``graph_seed`` 0..graphs-1) it rolls out a uniformly random policy for
``--steps`` steps, runs PC (causal-learn, Fisher-z, ``alpha`` 0.01) and reports the SHD:

* ``PC(a, X)``: PC over the action and every variable, compared with the true DAG including the
  action's edges (the randomized action is exogenous, which orients edges through colliders);
* ``PC(a, X) + exogenous a``: the same with the background knowledge that nothing causes ``a``;
* ``PC(X)`` vs DAG: observational data without the action, compared with the true DAG;
* ``PC(X)`` vs CPDAG: the same estimate compared with the true CPDAG -- the best any method can do
  from observational data alone, so this column is the statistical error only;
* ``CPDAG`` vs DAG: the SHD of the true CPDAG itself, the identifiability floor of ``PC(X)`` vs DAG.

    python benchmarks/causal_discovery.py [--graphs 10] [--steps 5000]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.causal.discovery import cpdag, pc, random_policy_data, shd

COLUMNS = ("PC(a, X)", "PC(a, X) + exogenous a", "PC(X) vs DAG", "PC(X) vs CPDAG", "CPDAG vs DAG")


def evaluate(env: gym.Env, steps: int, seed: int, alpha: float) -> tuple[int, list[int]]:
    """(number of true edges incl. the action's, SHD per column) for one graph."""
    scm = env.unwrapped.scm
    data, names = random_policy_data(env, steps, seed=seed)
    with_action = scm.augmented_adjacency
    dag = scm.adjacency
    equivalence_class = cpdag(dag)
    observational = pc(data[:, 1:], alpha=alpha)
    scores = [
        shd(pc(data, alpha=alpha, node_names=names), with_action),
        shd(pc(data, alpha=alpha, node_names=names, exogenous=("a",)), with_action),
        shd(observational, dag),
        shd(observational, equivalence_class),
        shd(equivalence_class, dag),
    ]
    return int(with_action.sum()), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--alpha", type=float, default=0.01)
    args = parser.parse_args()

    print(f"| graph | true edges | {' | '.join(COLUMNS)} |")
    print("|---|---:|" + "---:|" * len(COLUMNS))
    edges, scores = evaluate(gym.make("AdvRL/CausalSCM-v0"), args.steps, seed=0, alpha=args.alpha)
    print(f"| seed graph | {edges} | {' | '.join(map(str, scores))} |")
    table = []
    for graph_seed in range(args.graphs):
        env = gym.make("AdvRL/CausalSCM-v0", graph="random", n_vars=6, edge_prob=0.3, graph_seed=graph_seed)
        edges, scores = evaluate(env, args.steps, seed=graph_seed, alpha=args.alpha)
        table.append(scores)
        print(f"| random, graph_seed {graph_seed} | {edges} | {' | '.join(map(str, scores))} |")
    table = np.array(table, dtype=float)
    cells = " | ".join(f"**{m:.1f} +- {s:.1f}**" for m, s in zip(table.mean(0), table.std(0), strict=True))
    print(f"| **mean +- std, {args.graphs} random graphs** | | {cells} |")


if __name__ == "__main__":
    main()
