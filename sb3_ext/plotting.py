"""Learning curves from SB3 ``Monitor`` files: one run, or several runs averaged over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def load_curve(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Episode returns against cumulative environment steps for every ``*.monitor.csv`` under ``run_dir``.

    Episodes of parallel envs are merged in wall-clock order, as SB3's ``load_results`` does.
    """
    from stable_baselines3.common.monitor import load_results

    run_dir = Path(run_dir)
    files = sorted(run_dir.rglob("*monitor.csv"))
    if not files:
        raise ValueError(f"no monitor files (*.monitor.csv) found under {str(run_dir)!r}")
    frames = [load_results(str(folder)) for folder in sorted({f.parent for f in files})]
    import pandas as pd

    data = pd.concat(frames).sort_values("t")
    return np.cumsum(data["l"].to_numpy()), data["r"].to_numpy(dtype=float)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter windows at the start)."""
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    end = np.arange(1, len(values) + 1)
    begin = np.maximum(end - window, 0)
    return (cumulative[end] - cumulative[begin]) / (end - begin)


def plot_curves(
    groups: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    out_file: str | Path,
    title: str = "",
    smoothing: int = 10,
    n_points: int = 100,
) -> Path:
    """Plot each group's mean +- std over its runs (seeds) on a shared step grid and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, runs in groups.items():
        runs = [(x, smooth(y, smoothing)) for x, y in runs if len(x) > 0]
        if not runs:
            continue
        end = min(x[-1] for x, _ in runs)
        start = max(x[0] for x, _ in runs)
        grid = np.linspace(start, end, n_points) if end > start else np.array([end])
        curves = np.array([np.interp(grid, x, y) for x, y in runs])
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        suffix = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
        ax.plot(grid, mean, label=f"{label}{suffix}")
        if len(runs) > 1:
            ax.fill_between(grid, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"episode return (moving average of {smoothing})" if smoothing > 1 else "episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file
