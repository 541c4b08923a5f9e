"""Benchmark: robustness of SAC trained with and without DomainRandomization on AdvRL/Pendulum-v0.

For each seed, one SAC agent is trained on nominal physics (m = l = 1) and one with
``DomainRandomization`` over m in [0.5, 2.0] and l in [0.5, 1.5] (same hyperparameters and
budget). Both are evaluated, deterministically and on identical start states, on a grid of
pole masses and lengths that were never trained on exactly (including values outside the
training ranges). Prints markdown tables (mean +- std over seeds) and writes a PNG of the two
robustness curves: return vs mass (averaged over lengths) and return vs length (averaged over
masses).

    python benchmarks/domain_randomization.py [--timesteps 8000] [--seeds 0 1 2] [--plot PATH]

Runs are saved under ``benchmarks/results/domain_randomization/`` (the plot too, unless ``--plot``
says otherwise). Seeds can be split over processes (``--seeds 0 1`` and ``--seeds 2``) and
reported together with ``--from-results FILE FILE``; ``--from-results`` alone redraws the latest.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import RESULTS_ROOT, Results, add_results_argument, markdown_table, mean_std, measure_or_load

ROOT = Path(__file__).resolve().parent.parent
MASSES = [0.6, 0.9, 1.3, 1.7, 2.2, 2.6]
LENGTHS = [0.6, 0.9, 1.2, 1.6, 1.9]


def load_example():
    """The training and evaluation code of ``examples/domain_randomization.py`` (one source of truth)."""
    spec = importlib.util.spec_from_file_location("dr_example", ROOT / "examples" / "domain_randomization.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plot(results: dict[str, np.ndarray], ranges: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, axis, values, name in ((axes[0], 2, MASSES, "m"), (axes[1], 1, LENGTHS, "l")):
        for label, color in (("nominal", "tab:blue"), ("randomized", "tab:orange")):
            per_seed = results[label].mean(axis=axis)  # (seeds, len(values))
            mean, std = per_seed.mean(axis=0), per_seed.std(axis=0)
            ax.plot(values, mean, "o-", color=color, label=f"SAC, {label} training")
            ax.fill_between(values, mean - std, mean + std, color=color, alpha=0.2)
        ax.axvspan(*ranges[name], color="grey", alpha=0.12, label="randomized training range")
        ax.axvline(1.0, color="grey", linestyle=":", label="nominal value")
        ax.set_xlabel(
            "pole mass m (averaged over lengths)" if name == "m" else "pole length l (averaged over masses)"
        )
    axes[0].set_ylabel("episode return (200 steps)")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("AdvRL/Pendulum-v0: SAC robustness to unseen physics (mean +- std over seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def train_and_evaluate(
    results: Results, example, timesteps: int, seeds: list[int], eval_episodes: int
) -> None:
    """One run per seed and training condition: its mean returns on the ``(masses, lengths)`` grid."""
    start = time.time()
    for seed in seeds:
        for label in ("nominal", "randomized"):
            model = example.train_sac(timesteps, seed, randomize=label == "randomized")
            grid = example.evaluate_on_physics(model, MASSES, LENGTHS, eval_episodes, seed=10_000)
            run = {"seed": seed, "training": label, "timesteps": timesteps, "eval_episodes": eval_episodes}
            results.add({**run, "returns": grid})
            print(
                f"seed {seed} {label}: mean over grid {grid.mean():.1f} ({time.time() - start:.0f} s)",
                flush=True,
            )


def grids(record: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per training condition, the returns of every seed: an array ``(seeds, masses, lengths)``."""
    labels = dict.fromkeys(run["training"] for run in record["runs"])
    return {
        label: np.array([run["returns"] for run in record["runs"] if run["training"] == label])
        for label in labels
    }


def report(record: dict[str, Any], ranges: dict) -> str:
    arrays, first = grids(record), record["runs"][0]
    seeds = list(dict.fromkeys(run["seed"] for run in record["runs"]))
    near_nominal = (MASSES.index(0.9), LENGTHS.index(0.9))
    by_mass = []
    for label, arr in arrays.items():
        per_mass = [mean_std(arr[:, i, :].mean(axis=1)) for i in range(len(MASSES))]
        near = arr[:, near_nominal[0], near_nominal[1]]
        by_mass.append(
            [
                label,
                mean_std(arr.mean(axis=(1, 2))),
                mean_std(arr.min(axis=(1, 2))),
                mean_std(near),
                *per_mass,
            ]
        )
    by_length = [
        [label, *(mean_std(arr[:, :, j].mean(axis=1)) for j in range(len(LENGTHS)))]
        for label, arr in arrays.items()
    ]
    mass_columns = ("training", "grid mean", "worst (m, l) cell", "m=0.9, l=0.9", *(f"m={m}" for m in MASSES))
    length_columns = ("training", *(f"l={length}" for length in LENGTHS))
    return (
        f"\nSAC on AdvRL/Pendulum-v0, {first['timesteps']:,} steps per agent, seeds {seeds}, "
        f"{first['eval_episodes']} evaluation episodes per (m, l); randomized training: {ranges}\n\n"
        + markdown_table(mass_columns, by_mass, "l" + "r" * (len(mass_columns) - 1))
        + "\n\n"
        + markdown_table(length_columns, by_length, "l" + "r" * len(LENGTHS))
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timesteps", type=int, default=8_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=RESULTS_ROOT / "domain_randomization" / "robustness.png")
    add_results_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    example = load_example()
    start = time.time()

    def measure(results: Results) -> None:
        train_and_evaluate(results, example, args.timesteps, args.seeds, args.eval_episodes)

    record = measure_or_load("domain_randomization", args, measure)
    if len({(run["timesteps"], run["eval_episodes"]) for run in record["runs"]}) > 1:
        raise ValueError("--from-results needs runs with the same --timesteps and --eval-episodes")
    print(report(record, example.TRAIN_RANGES))
    plot(grids(record), example.TRAIN_RANGES, args.plot)
    print(f"\nplot written to {args.plot.relative_to(ROOT) if args.plot.is_relative_to(ROOT) else args.plot}")
    print(f"total time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
