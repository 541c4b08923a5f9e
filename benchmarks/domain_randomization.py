"""Benchmark: robustness of SAC trained with and without DomainRandomization on AdvRL/Pendulum-v0.

For each seed, one SAC agent is trained on nominal physics (m = l = 1) and one with
``DomainRandomization`` over m in [0.5, 2.0] and l in [0.5, 1.5] (same hyperparameters and
budget). Both are evaluated, deterministically and on identical start states, on a grid of
pole masses and lengths that were never trained on exactly (including values outside the
training ranges). Prints markdown tables (mean +- std over seeds) and writes a PNG of the two
robustness curves: return vs mass (averaged over lengths) and return vs length (averaged over
masses).

    python benchmarks/domain_randomization.py [--timesteps 8000] [--seeds 0 1 2] [--plot PATH]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=8_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "results" / "domain_randomization.png")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw returns here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    example = load_example()

    results: dict[str, list[np.ndarray]] = {"nominal": [], "randomized": []}
    start = time.time()
    for seed in args.seeds:
        for label in results:
            model = example.train_sac(args.timesteps, seed, randomize=label == "randomized")
            grid = example.evaluate_on_physics(model, MASSES, LENGTHS, args.eval_episodes, seed=10_000)
            results[label].append(grid)
            print(f"seed {seed} {label}: mean over grid {grid.mean():.1f} ({time.time() - start:.0f} s)", flush=True)
    arrays = {label: np.stack(grids) for label, grids in results.items()}  # (seeds, masses, lengths)

    print(
        f"\nSAC on AdvRL/Pendulum-v0, {args.timesteps:,} steps per agent, seeds {args.seeds}, "
        f"{args.eval_episodes} evaluation episodes per (m, l); randomized training: {example.TRAIN_RANGES}\n"
    )
    nominal_index = (MASSES.index(0.9), LENGTHS.index(0.9))
    print("| training | grid mean | worst (m, l) cell | m=0.9, l=0.9 | " + " | ".join(f"m={m}" for m in MASSES) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(MASSES))
    for label, arr in arrays.items():
        per_mass = [mean_std(arr[:, i, :].mean(axis=1)) for i in range(len(MASSES))]
        print(
            f"| {label} | {mean_std(arr.mean(axis=(1, 2)))} | {mean_std(arr.min(axis=(1, 2)))} | "
            f"{mean_std(arr[:, nominal_index[0], nominal_index[1]])} | " + " | ".join(per_mass) + " |"
        )
    print("\n| training | " + " | ".join(f"l={length}" for length in LENGTHS) + " |")
    print("|---|" + "---:|" * len(LENGTHS))
    for label, arr in arrays.items():
        print(f"| {label} | " + " | ".join(mean_std(arr[:, :, j].mean(axis=1)) for j in range(len(LENGTHS))) + " |")

    plot(arrays, example.TRAIN_RANGES, args.plot)
    print(f"\nplot written to {args.plot.relative_to(ROOT) if args.plot.is_relative_to(ROOT) else args.plot}")
    if args.json is not None:
        payload = {"masses": MASSES, "lengths": LENGTHS, "seeds": args.seeds, "timesteps": args.timesteps}
        payload.update({label: arr.tolist() for label, arr in arrays.items()})
        args.json.write_text(json.dumps(payload))
    print(f"total time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
