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

Runs are saved under ``benchmarks/results/causal_discovery/``; ``--from-results`` prints their table
again and draws the plot (``--plot``): SHD per column, mean +- std over the random graphs.
"""

from __future__ import annotations

import argparse
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
    save_bar_plot,
)

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


def table(record: dict[str, Any]) -> str:
    runs = record["runs"]
    rows = [[run["graph"], run["edges"], *run["scores"]] for run in runs]
    random_graphs = np.array([run["scores"] for run in runs if run["graph"] != "seed graph"], dtype=float)
    cells = [f"**{mean_std(column, '.1f')}**" for column in random_graphs.T]
    rows.append([f"**mean +- std, {len(random_graphs)} random graphs**", "", *cells])
    return markdown_table(("graph", "true edges", *COLUMNS), rows, "lr" + "r" * len(COLUMNS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--alpha", type=float, default=0.01)
    add_results_argument(parser)
    add_plot_argument(parser, "causal_discovery")
    args = parser.parse_args()

    def measure(results: Results) -> None:
        edges, scores = evaluate(gym.make("AdvRL/CausalSCM-v0"), args.steps, seed=0, alpha=args.alpha)
        results.add({"graph": "seed graph", "edges": edges, "scores": scores})
        for graph_seed in range(args.graphs):
            env = gym.make(
                "AdvRL/CausalSCM-v0", graph="random", n_vars=6, edge_prob=0.3, graph_seed=graph_seed
            )
            edges, scores = evaluate(env, args.steps, seed=graph_seed, alpha=args.alpha)
            results.add({"graph": f"random, graph_seed {graph_seed}", "edges": edges, "scores": scores})

    record = measure_or_load("causal_discovery", args, measure)
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    runs = record["runs"]
    random_graphs = [run["scores"] for run in runs if run["graph"] != "seed graph"]
    seed_graph = [run["scores"] for run in runs if run["graph"] == "seed graph"]
    groups = {}
    for i, column in enumerate(COLUMNS):
        groups[column] = {f"{len(random_graphs)} random graphs": [scores[i] for scores in random_graphs]}
        if seed_graph:
            groups[column]["seed graph"] = [seed_graph[0][i]]
    save_bar_plot(
        path,
        groups,
        title=f"PC on AdvRL/CausalSCM-v0, {record['args']['steps']:,} steps of a random policy per graph "
        "(dots: graphs)",
        ylabel="structural Hamming distance (lower is better)",
    )


if __name__ == "__main__":
    main()
