"""Learning curves of ``advrl train`` runs: deterministic evaluations first, training episodes beside.

A run directory holds SB3 ``Monitor`` files (one line per training episode), the
``evaluations.npz`` written by SB3's ``EvalCallback`` (deterministic evaluations during training)
and ``config.json`` (algorithm, warm-up length, random-policy baseline). :func:`load_run` reads
them into a :class:`RunData`; :func:`plot_runs` draws one PNG:

* the evaluation curve: the mean return of each evaluation, exactly as in ``evaluations.npz``
  (averaged over seeds when a group has several runs), with its spread shaded;
* every training episode as a faint point, and a centered moving average of them whose window is
  named in the legend. Episodes that began during the warm-up (random actions, before
  ``learning_starts``) are smoothed apart from the later ones, so no point averages the two;
* the warm-up phase as a shaded band, and the random policy's mean return as a dashed line.

Reading needs numpy only; drawing needs matplotlib (in the ``[sb3]`` extra).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_FILE = "config.json"
EVALUATIONS_FILE = "evaluations.npz"


@dataclass
class RunData:
    """One training run, as :func:`plot_runs` draws it.

    :param episode_ends: environment step at which each training episode ended (sorted)
    :param episode_returns: the return of each training episode
    :param episode_lengths: the length of each training episode
    :param eval_steps: environment steps of the evaluations, shape ``(n_evaluations,)`` (empty if none)
    :param eval_returns: returns of each evaluation's episodes, shape ``(n_evaluations, n_episodes)``
    :param warmup_steps: steps of random actions before learning started (``learning_starts``)
    :param random_return: mean return of a uniformly random policy, or None if unknown
    """

    episode_ends: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    eval_steps: np.ndarray
    eval_returns: np.ndarray
    warmup_steps: int = 0
    random_return: float | None = None

    @property
    def episode_starts(self) -> np.ndarray:
        return self.episode_ends - self.episode_lengths

    @property
    def in_warmup(self) -> np.ndarray:
        """True for the episodes that took at least one warm-up (random) action."""
        return self.episode_starts < self.warmup_steps


def read_monitor_files(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(episode_ends, returns, lengths)`` from every ``*monitor.csv`` under ``run_dir``.

    Episodes of parallel envs are merged in wall-clock order (each file's ``t_start`` plus the
    episode's ``t``), as SB3's ``load_results`` does, and steps are the running sum of lengths.
    """
    files = sorted(Path(run_dir).rglob("*monitor.csv"))
    if not files:
        raise ValueError(f"no monitor files (*.monitor.csv) found under {str(run_dir)!r}")
    rows: list[tuple[float, float, int]] = []
    for file in files:
        with open(file, newline="") as handle:
            header = json.loads(handle.readline().lstrip("#"))
            for row in csv.DictReader(handle):
                rows.append((header["t_start"] + float(row["t"]), float(row["r"]), int(row["l"])))
    rows.sort(key=lambda row: row[0])
    returns = np.array([r for _, r, _ in rows], dtype=float)
    lengths = np.array([length for _, _, length in rows], dtype=np.int64)
    return np.cumsum(lengths), returns, lengths


def load_run(run_dir: str | Path) -> tuple[str, RunData]:
    """The algorithm name (from ``config.json``, else the directory's name) and the run's data."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run directory {str(run_dir)!r} does not exist")
    config_path = run_dir / CONFIG_FILE
    config: dict[str, Any] = json.loads(config_path.read_text()) if config_path.exists() else {}
    ends, returns, lengths = read_monitor_files(run_dir)
    eval_steps, eval_returns = np.zeros(0, dtype=np.int64), np.zeros((0, 0))
    if (run_dir / EVALUATIONS_FILE).exists():
        with np.load(run_dir / EVALUATIONS_FILE) as data:
            eval_steps, eval_returns = data["timesteps"], data["results"]
    data = RunData(
        ends,
        returns,
        lengths,
        eval_steps,
        eval_returns,
        int(config.get("learning_starts", 0)),
        config.get("random_return"),
    )
    return config.get("algo", run_dir.name), data


def centered_moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over ``window`` neighbours centered on each point; the window narrows symmetrically at
    the ends, so every point is the mean of episodes on both sides of it equally."""
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) <= 1:
        return values.copy()
    half = window // 2
    index = np.arange(len(values))
    reach = np.minimum(np.minimum(index, len(values) - 1 - index), half)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    return (cumulative[index + reach + 1] - cumulative[index - reach]) / (2 * reach + 1)


def smoothed_segments(
    episode_ends: np.ndarray, returns: np.ndarray, in_warmup: np.ndarray, window: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(phase, episode_ends, smoothed returns)`` for the warm-up episodes and the later ones,
    each smoothed on its own (``phase`` is ``"warm-up"`` or ``"learning"``; empty phases left out)."""
    segments = []
    for phase, mask in (("warm-up", in_warmup), ("learning", ~in_warmup)):
        if mask.any():
            segments.append((phase, episode_ends[mask], centered_moving_average(returns[mask], window)))
    return segments


def evaluation_curve(runs: Sequence[RunData]) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Steps, mean and spread of the evaluation returns of one group of runs, and what the spread is.

    One run: the mean and standard deviation over each evaluation's episodes. Several runs (seeds):
    the mean over seeds of each run's evaluation mean, and the standard deviation over seeds, at
    the evaluation steps all runs share.
    """
    runs = [run for run in runs if len(run.eval_steps)]
    if not runs:
        return np.zeros(0), np.zeros(0), np.zeros(0), ""
    if len(runs) == 1:
        returns = runs[0].eval_returns
        episodes = returns.shape[1]
        return (
            runs[0].eval_steps,
            returns.mean(axis=1),
            returns.std(axis=1),
            f"std over {episodes} episode{'s' * (episodes > 1)}",
        )
    shared = runs[0].eval_steps
    for run in runs[1:]:
        shared = np.intersect1d(shared, run.eval_steps)
    means = np.array([run.eval_returns.mean(axis=1)[np.searchsorted(run.eval_steps, shared)] for run in runs])
    return shared, means.mean(axis=0), means.std(axis=0), f"std over {len(runs)} seeds"


def build_figure(groups: Mapping[str, Sequence[RunData]], title: str = "", smoothing: int = 10) -> Any:
    """The matplotlib figure of :func:`plot_runs` (lines carry ``gid``s such as
    ``"evaluation:PPO"`` and ``"training:PPO:learning"``, so tests can read what was drawn)."""
    if smoothing < 1:
        raise ValueError(f"smoothing must be a window of at least 1 episode, got {smoothing}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    baselines = {
        run.random_return for runs in groups.values() for run in runs if run.random_return is not None
    }
    warmups = sorted({run.warmup_steps for runs in groups.values() for run in runs if run.warmup_steps > 0})
    for index, warmup in enumerate(warmups):
        ax.axvspan(
            0, warmup, color="0.5", alpha=0.12, lw=0, label="warm-up (random actions)" if index == 0 else None
        )
    window = f"centered mean of {smoothing} episodes" if smoothing > 1 else "unsmoothed"
    for group_index, (label, runs) in enumerate(groups.items()):
        color = colors[group_index % len(colors)]
        seeds = f", {len(runs)} seeds" if len(runs) > 1 else ""
        ends, returns, in_warmup = _pool(runs)
        ax.scatter(ends, returns, s=5, color=color, alpha=0.2, lw=0, gid=f"episodes:{label}")
        segments = smoothed_segments(ends, returns, in_warmup, smoothing)
        for segment_index, (phase, phase_ends, smoothed) in enumerate(segments):
            ax.plot(
                phase_ends,
                smoothed,
                color=color,
                lw=1,
                alpha=0.6,
                ls="--",
                gid=f"training:{label}:{phase}",
                label=f"{label}: training episodes ({window}{seeds})" if segment_index == 0 else None,
            )
        steps, mean, spread, what = evaluation_curve(runs)
        if len(steps):
            ax.plot(
                steps,
                mean,
                color=color,
                lw=2,
                marker="o",
                ms=3,
                gid=f"evaluation:{label}",
                label=f"{label}: deterministic evaluation (mean, {what} shaded)",
            )
            ax.fill_between(steps, mean - spread, mean + spread, color=color, alpha=0.2, lw=0)
            if len(steps) == 1:  # a band of one point is invisible: show the spread as an error bar
                ax.errorbar(steps, mean, yerr=spread, fmt="none", color=color, capsize=4)
    for index, baseline in enumerate(sorted(baselines)):
        ax.axhline(
            baseline, color="0.3", ls=":", lw=1.2, gid="random", label="random policy" if index == 0 else None
        )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_runs(
    groups: Mapping[str, Sequence[RunData]], out_file: str | Path, title: str = "", smoothing: int = 10
) -> Path:
    """Draw each group's runs (one group per algorithm, one run per seed) and save a PNG."""
    import matplotlib.pyplot as plt

    fig = build_figure(groups, title, smoothing)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def _pool(runs: Sequence[RunData]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(episode_ends, returns, in_warmup)`` of several seeds' training episodes, ordered by the
    step they ended at; each episode keeps its own run's warm-up flag."""
    ends = np.concatenate([run.episode_ends for run in runs])
    order = np.argsort(ends, kind="stable")
    returns = np.concatenate([run.episode_returns for run in runs])
    in_warmup = np.concatenate([run.in_warmup for run in runs])
    return ends[order], returns[order], in_warmup[order]
