"""Throughput of ``LinearGaussianSCM.sample`` against a per-sample Python loop.

The vectorized sampler solves the structural equations once per variable over the whole batch;
the baseline draws one sample at a time, as a straightforward loop over the equations would (the
course notebooks' approach). Both are timed in the same run on the seed graph (3 variables) and on
a seeded random 6-variable graph; a sample is one joint draw of every variable.

    python benchmarks/causal_sample_speed.py [--repeats 5]

Measurements are saved under ``benchmarks/results/causal_sample_speed/``; ``--from-results`` prints
their table again.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import (
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    measure_or_load,
    save_ratio_plot,
)

from gym_advrl.envs.causal import LinearGaussianSCM


def loop_sample(scm: LinearGaussianSCM, n: int, action: float, rng: np.random.Generator) -> np.ndarray:
    """One sample at a time: the baseline."""
    out = np.empty((n, scm.n_vars))
    for k in range(n):
        for j in range(scm.n_vars):
            value = scm.noise_std[j] * rng.standard_normal() + scm.action_weights[j] * action
            for i in range(j):
                value += scm.weights[i, j] * out[k, i]
            out[k, j] = value
    return out


def best_rate(fn, n: int, repeats: int) -> float:
    """Samples per second of the fastest of ``repeats`` runs (the least disturbed by other load)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_results_argument(parser)
    add_plot_argument(parser, "causal_sample_speed")
    args = parser.parse_args()
    graphs = {
        "seed graph (3 vars)": LinearGaussianSCM.seed_graph(),
        "random DAG (6 vars, seed 0)": LinearGaussianSCM.random_dag(6, 0.3, seed=0),
    }

    def measure(results: Results) -> None:
        for label, scm in graphs.items():
            rng = np.random.default_rng(0)
            for n in (10_000, 100_000, 1_000_000):
                rate = best_rate(
                    lambda n, scm=scm, rng=rng: scm.sample(n, action=0.5, rng=rng), n, args.repeats
                )
                results.add(
                    {"graph": label, "method": "`scm.sample`", "batch": n, "samples_per_second": rate}
                )
            rate = best_rate(
                lambda n, scm=scm, rng=rng: loop_sample(scm, n, 0.5, rng), 20_000, max(1, args.repeats // 2)
            )
            results.add(
                {"graph": label, "method": "per-sample loop", "batch": 20_000, "samples_per_second": rate}
            )

    record = measure_or_load("causal_sample_speed", args, measure)
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    """Speed-up of ``scm.sample`` over the per-sample loop on the same graph, per batch size."""
    loop = {
        run["graph"]: run["samples_per_second"]
        for run in record["runs"]
        if run["method"] == "per-sample loop"
    }
    ratios = {
        f"{run['graph']}, batch {run['batch']:,}": [run["samples_per_second"] / loop[run["graph"]]]
        for run in record["runs"]
        if run["method"] != "per-sample loop" and run["graph"] in loop
    }
    save_ratio_plot(
        path,
        ratios,
        title=f"LinearGaussianSCM.sample: samples/s relative to a per-sample Python loop "
        f"(best of {record['args']['repeats']})",
        xlabel="samples/s ratio, scm.sample / per-sample loop (log scale)",
        log=True,
    )


def table(record: dict[str, Any]) -> str:
    rows = [
        [run["graph"], run["method"], f"{run['batch']:,}", f"{run['samples_per_second']:,.0f}"]
        for run in record["runs"]
    ]
    return markdown_table(("graph", "method", "batch", "samples/s"), rows, "llrr")


if __name__ == "__main__":
    main()
