"""Benchmark: robustness of SAC trained with and without DomainRandomization on AdvRL/Pendulum-v0.

For each seed, one SAC agent is trained on nominal physics (m = l = 1) and one with
``DomainRandomization`` over m in [0.5, 2.0] and l in [0.5, 1.5] (same hyperparameters and
budget). Both are evaluated, deterministically and on identical start states, on a grid of
pole masses and lengths that were never trained on exactly (including values outside the
training ranges). Prints markdown tables (mean +- std over seeds) and writes a PNG of the two
robustness curves: return vs mass (averaged over lengths) and return vs length (averaged over
masses).

    python benchmarks/domain_randomization.py [--timesteps 8000] [--seeds 0 1 2] [--plot PATH]

Seeds can be split over processes (``--seeds 0 1 --json a.json`` and ``--seeds 2 --json b.json``)
and reported together with ``--merge a.json b.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MASSES = [0.6, 0.9, 1.3, 1.7, 2.2, 2.6]
LENGTHS = [0.6, 0.9, 1.2, 1.6, 1.9]


def load_example():
    """The training and evaluation code of ``examples/domain_randomization.py`` (one source of truth)."""
    spec = importlib.util.spec_from_file_location("dr_example", ROOT / "examples" / "domain_randomization.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mean_std(values: np.ndarray) -> str:
    return f"{values.mean():.0f} +- {values.std():.0f}"


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
        ax.set_xlabel("pole mass m (averaged over lengths)" if name == "m" else "pole length l (averaged over masses)")
    axes[0].set_ylabel("episode return (200 steps)")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("AdvRL/Pendulum-v0: SAC robustness to unseen physics (mean +- std over seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def train_and_evaluate(example, timesteps: int, seeds: list[int], eval_episodes: int) -> dict[str, np.ndarray]:
    """Returns per training condition an array ``(seeds, masses, lengths)`` of mean returns."""
    results: dict[str, list[np.ndarray]] = {"nominal": [], "randomized": []}
    start = time.time()
    for seed in seeds:
        for label in results:
            model = example.train_sac(timesteps, seed, randomize=label == "randomized")
            grid = example.evaluate_on_physics(model, MASSES, LENGTHS, eval_episodes, seed=10_000)
            results[label].append(grid)
            print(f"seed {seed} {label}: mean over grid {grid.mean():.1f} ({time.time() - start:.0f} s)", flush=True)
    return {label: np.stack(grids) for label, grids in results.items()}


def report(arrays: dict[str, np.ndarray], seeds: list[int], timesteps: int, eval_episodes: int, ranges: dict) -> None:
    print(
        f"\nSAC on AdvRL/Pendulum-v0, {timesteps:,} steps per agent, seeds {seeds}, "
        f"{eval_episodes} evaluation episodes per (m, l); randomized training: {ranges}\n"
    )
    near_nominal = (MASSES.index(0.9), LENGTHS.index(0.9))
    print("| training | grid mean | worst (m, l) cell | m=0.9, l=0.9 | " + " | ".join(f"m={m}" for m in MASSES) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(MASSES))
    for label, arr in arrays.items():
        per_mass = [mean_std(arr[:, i, :].mean(axis=1)) for i in range(len(MASSES))]
        print(
            f"| {label} | {mean_std(arr.mean(axis=(1, 2)))} | {mean_std(arr.min(axis=(1, 2)))} | "
            f"{mean_std(arr[:, near_nominal[0], near_nominal[1]])} | " + " | ".join(per_mass) + " |"
        )
    print("\n| training | " + " | ".join(f"l={length}" for length in LENGTHS) + " |")
    print("|---|" + "---:|" * len(LENGTHS))
    for label, arr in arrays.items():
        print(f"| {label} | " + " | ".join(mean_std(arr[:, :, j].mean(axis=1)) for j in range(len(LENGTHS))) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=8_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "domain_randomization.png")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw returns here")
    parser.add_argument(
        "--merge", type=Path, nargs="+", default=None,
        help="instead of training, report the seeds of several --json files (runs split over processes)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    example = load_example()
    start = time.time()

    if args.merge:
        payloads = [json.loads(path.read_text()) for path in args.merge]
        if len({(p["timesteps"], p["eval_episodes"]) for p in payloads}) != 1:
            raise ValueError("--merge needs runs with the same --timesteps and --eval-episodes")
        args.timesteps, args.eval_episodes = payloads[0]["timesteps"], payloads[0]["eval_episodes"]
        args.seeds = [seed for p in payloads for seed in p["seeds"]]
        arrays = {label: np.concatenate([np.array(p[label]) for p in payloads]) for label in ("nominal", "randomized")}
    else:
        arrays = train_and_evaluate(example, args.timesteps, args.seeds, args.eval_episodes)
    report(arrays, args.seeds, args.timesteps, args.eval_episodes, example.TRAIN_RANGES)

    plot(arrays, example.TRAIN_RANGES, args.plot)
    print(f"\nplot written to {args.plot.relative_to(ROOT) if args.plot.is_relative_to(ROOT) else args.plot}")
    if args.json is not None:
        payload = {"masses": MASSES, "lengths": LENGTHS, "seeds": args.seeds, "timesteps": args.timesteps,
                   "eval_episodes": args.eval_episodes}
        payload.update({label: arr.tolist() for label, arr in arrays.items()})
        args.json.write_text(json.dumps(payload))
    print(f"total time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
