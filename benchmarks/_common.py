"""What the benchmark scripts share: their results files, summary statistics, markdown tables and plots.

Every benchmark keeps what it measures under ``benchmarks/results/<name>/`` (git-ignored): one
JSON file per invocation, holding the command, its arguments, the machine and one record per run,
and written again after every run, so that an interrupted benchmark keeps the runs it finished.
Its tables are computed from that file alone, so ``--from-results`` prints them again without
measuring anything: from the latest file, or from the files named, whose runs are merged (a
benchmark split over processes or machines is tabulated as one). Plots are drawn the same way,
from the record alone (matplotlib, Agg backend, PNG), by one of three helpers: ratios to a baseline
(:func:`save_ratio_plot`), grouped mean +- std bars (:func:`save_bar_plot`) and learning curves
with a +- std band (:func:`save_learning_curves`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_ROOT = Path(__file__).resolve().parent / "results"

#: A curve of evaluations: ``(environment step, value)`` pairs in step order.
Curve = Sequence[tuple[int, float]]


# ---------------------------------------------------------------------------- results files
def add_results_argument(parser: argparse.ArgumentParser) -> None:
    """``--from-results [JSON ...]``: print the tables of saved results instead of measuring."""
    parser.add_argument(
        "--from-results",
        nargs="*",
        type=Path,
        default=None,
        metavar="JSON",
        help="do not measure: print the tables of the latest results file under benchmarks/results/<name>/, "
        "or of the files given (their runs merged)",
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


class Results:
    """The runs of one benchmark invocation, saved to ``benchmarks/results/<name>/`` after each run."""

    def __init__(self, name: str, args: argparse.Namespace | dict[str, Any]) -> None:
        settings = vars(args) if isinstance(args, argparse.Namespace) else args
        settings = {key: value for key, value in settings.items() if key != "from_results"}
        stamp, folder = time.strftime("%Y%m%d-%H%M%S"), RESULTS_ROOT / name
        self.path = folder / f"{stamp}-{os.getpid()}.json"
        count = 1
        while self.path.exists():  # another invocation in this process and second
            count += 1
            self.path = folder / f"{stamp}-{os.getpid()}-{count}.json"
        self.record: dict[str, Any] = {
            "benchmark": name,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "args": _jsonable(settings),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": platform.platform(),
            "processor": platform.processor(),
            "runs": [],
        }

    @property
    def args(self) -> dict[str, Any]:
        return self.record["args"]

    @property
    def runs(self) -> list[dict[str, Any]]:
        return self.record["runs"]

    def describe(self, **settings: Any) -> None:
        """Keep what the tables need besides the arguments and runs (e.g. hyperparameters), as ``settings``."""
        self.record.setdefault("settings", {}).update(_jsonable(settings))
        self.save()

    def add(self, run: dict[str, Any]) -> dict[str, Any]:
        """Keep one run (JSON-serializable once numpy values are converted) and save; returns it as saved."""
        run = _jsonable(run)
        self.runs.append(run)
        self.save()
        return run

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.record, indent=1, default=repr))


def load_results(name: str, paths: Sequence[Path] = ()) -> dict[str, Any]:
    """The record of ``paths`` (default: the latest file of benchmark ``name``), their runs merged.

    The other fields (arguments, command, machine) are the first file's; ``sources`` lists the files.
    """
    if not paths:
        saved = sorted((RESULTS_ROOT / name).glob("*.json"), key=lambda path: path.stat().st_mtime)
        if not saved:
            raise SystemExit(
                f"--from-results: no results under {RESULTS_ROOT / name}; run the benchmark first"
            )
        paths = saved[-1:]
    records = [json.loads(Path(path).read_text()) for path in paths]
    merged = dict(records[0])
    merged["runs"] = [run for record in records for run in record["runs"]]
    merged["sources"] = [str(path) for path in paths]
    return merged


def measure_or_load(
    name: str, args: argparse.Namespace, measure: Callable[[Results], None]
) -> dict[str, Any]:
    """The record to tabulate: loaded with ``--from-results``, else measured now.

    ``measure(results)`` runs the benchmark and hands each finished run to ``results.add``.
    """
    if getattr(args, "from_results", None) is not None:
        return load_results(name, args.from_results)
    results = Results(name, args)
    results.save()
    measure(results)
    print(f"results: {results.path}", file=sys.stderr)
    return results.record


# ---------------------------------------------------------------------------- statistics
def _present(values: Iterable[float | None]) -> np.ndarray:
    array = np.array([np.nan if value is None else value for value in values], dtype=float)
    return array[~np.isnan(array)]


def mean_std(values: Iterable[float | None], spec: str = ".0f", empty: str = "-") -> str:
    """``"mean +- std"`` (population std) of the values, each formatted with ``spec``.

    ``None`` and NaN (a run that never got there) are left out; ``empty`` when nothing is left.
    """
    present = _present(values)
    if present.size == 0:
        return empty
    return f"{present.mean():{spec}} +- {present.std():{spec}}"


def first_reaching(values: Sequence[float], threshold: float, window: int = 1) -> int | None:
    """Index of the first value at which the mean of the last ``window`` values reaches ``threshold``."""
    array = np.asarray(values, dtype=float)
    for end in range(window, len(array) + 1):
        if array[end - window : end].mean() >= threshold:
            return end - 1
    return None


def steps_to_threshold(curve: Curve, threshold: float | None, window: int = 1) -> int | None:
    """Step of the first point of ``curve`` where the mean of the last ``window`` values reaches
    ``threshold``; ``None`` if no point does or there is no threshold."""
    if threshold is None:
        return None
    index = first_reaching([value for _, value in curve], threshold, window)
    return None if index is None else int(curve[index][0])


def value_at(curve: Curve, step: int) -> float | None:
    """The value evaluated at ``step``, ``None`` if the curve has no point there."""
    return next((value for at, value in curve if at == step), None)


def curve_mean(curve: Curve) -> float:
    """Mean value over the steps the curve spans (the trapezoid area under it over its length):
    one number for how early and how well a run learned."""
    steps = np.array([at for at, _ in curve], dtype=float)
    values = np.array([value for _, value in curve], dtype=float)
    if steps.size < 2 or steps[-1] == steps[0]:
        return float(values.mean())
    area = float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(steps)))
    return area / float(steps[-1] - steps[0])


# ---------------------------------------------------------------------------- tables
def table_row(cells: Iterable[object]) -> str:
    """``| a | b |``; an empty cell is ``| |``."""
    return "|" + "|".join(f" {cell} " if str(cell) else " " for cell in cells) + "|"


def markdown_table(header: Sequence[str], rows: Iterable[Iterable[object]], align: str | None = None) -> str:
    """A markdown table; ``align`` has one letter per column: ``l`` (``---``) or ``r`` (``---:``)."""
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align needs one letter per column ({len(header)}), got {align!r}")
    separator = "|" + "|".join("---:" if side == "r" else "---" for side in align) + "|"
    return "\n".join([table_row(header), separator, *(table_row(row) for row in rows)])


# ---------------------------------------------------------------------------- plots
#: Where the docs pages find their plots (``--plot`` of each benchmark defaults under RESULTS_ROOT).
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def add_plot_argument(parser: argparse.ArgumentParser, name: str, filename: str | None = None) -> None:
    """``--plot PNG``: where the benchmark draws its plot (default ``benchmarks/results/<name>/<name>.png``)."""
    parser.add_argument(
        "--plot",
        type=Path,
        default=RESULTS_ROOT / name / (filename or f"{name}.png"),
        metavar="PNG",
        help="where to draw the plot of the results (e.g. docs/images/<name>.png for the docs page)",
    )


def spread(values: Iterable[float]) -> tuple[float, float, float]:
    """``(min, median, max)`` of the values."""
    array = np.asarray(list(values), dtype=float)
    return float(array.min()), float(np.median(array)), float(array.max())


def curve_band(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, mean, std)`` over the curves at every step any of them was evaluated at.

    Each step's mean and (population) std are over the curves that have a point there, so runs that
    stop early (e.g. once past a threshold) leave the later steps to the others.
    """
    steps = np.array(sorted({int(step) for curve in curves for step, _ in curve}), dtype=int)
    mean, std = np.empty(len(steps)), np.empty(len(steps))
    for i, step in enumerate(steps):
        values = [value for value in (value_at(curve, step) for curve in curves) if value is not None]
        mean[i], std[i] = np.mean(values), np.std(values)
    return steps, mean, std


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"plot: {path}", file=sys.stderr)
    return path


def save_ratio_plot(
    path: Path,
    ratios: Mapping[str, Iterable[float]],
    *,
    title: str,
    xlabel: str,
    target: float | None = None,
    log: bool = False,
) -> Path:
    """Horizontal bars of ratios to a baseline measured in the same run: one bar per label at the
    median of its values, whiskers from their min to their max (none for a single value), the
    value written beside the bar; a line at 1x (the baseline) and one at ``target`` if given."""
    plt = _pyplot()
    labels = list(ratios)
    stats = np.array([spread(ratios[label]) for label in labels])
    low, median, high = stats[:, 0], stats[:, 1], stats[:, 2]
    fig, ax = plt.subplots(figsize=(7.5, max(2.0, 0.9 + 0.38 * len(labels))))
    y = np.arange(len(labels))[::-1]
    whiskers = [median - low, high - median] if np.any(high > low) else None
    ax.barh(y, median, color="tab:blue", alpha=0.75, xerr=whiskers, capsize=3)
    for row, value, right in zip(y, median, high, strict=True):
        ax.annotate(
            f"{value:.2f}x" if value < 10 else f"{value:.0f}x",
            (right, row),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.axvline(1.0, color="black", linewidth=1, label="1x (baseline)")
    if target is not None:
        ax.axvline(target, color="tab:red", linestyle="--", linewidth=1, label=f"target {target:g}x")
    if log:
        ax.set_xscale("log")
    ax.set_xlim(right=ax.get_xlim()[1] * (3 if log else 1.15))
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def save_bar_plot(
    path: Path,
    groups: Mapping[str, Mapping[str, Iterable[float]]],
    *,
    title: str,
    ylabel: str,
    lines: Mapping[str, float] | None = None,
    log: bool = False,
) -> Path:
    """Grouped bars: for each group (a tick on the x axis) one bar per series at the mean of its
    values (e.g. one per seed) with a +- std error bar, the values themselves as dots; ``lines``
    draws labelled horizontal reference lines (e.g. a threshold or the optimum)."""
    plt = _pyplot()
    series = list(dict.fromkeys(name for group in groups.values() for name in group))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(groups) * max(1, len(series) / 2)), 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, name in enumerate(series):
        color = colors[k % len(colors)]
        for g, group in enumerate(groups.values()):
            if name not in group:
                continue
            values = np.asarray(list(group[name]), dtype=float)
            x = g - 0.4 + width * (k + 0.5)
            ax.bar(
                x,
                values.mean(),
                width * 0.9,
                yerr=values.std(),
                capsize=3,
                color=color,
                alpha=0.75,
                label=name if g == next(i for i, gr in enumerate(groups.values()) if name in gr) else None,
            )
            ax.plot(np.full(len(values), x), values, ".", color="black", markersize=3)
    for k, (label, value) in enumerate((lines or {}).items()):
        ax.axhline(value, color="grey", linestyle=("--", ":", "-.")[k % 3], linewidth=1, label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(range(len(groups)), [textwrap.fill(group, 18) for group in groups], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def save_learning_curves(
    path: Path,
    panels: Mapping[str, Mapping[str, Sequence[Curve]]],
    *,
    ylabel: str,
    xlabel: str = "environment steps",
    lines: Mapping[str, Mapping[str, float]] | None = None,
    title: str | None = None,
    log: bool = False,
) -> Path:
    """Learning curves, one panel per key of ``panels`` and one line per series in it: the mean over
    its curves (e.g. one per seed) with a +- std band (:func:`curve_band`); ``lines[panel]`` draws
    labelled horizontal reference lines in that panel; ``log`` puts the y axis on a log scale."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (panel, curves_by_series) in zip(axes[0], panels.items(), strict=True):
        for name, curves in curves_by_series.items():
            if not curves:
                continue
            steps, mean, std = curve_band(curves)
            (line,) = ax.plot(
                steps,
                mean,
                marker="." if len(steps) <= 40 else None,
                label=f"{name}, {len(curves)} run{'' if len(curves) == 1 else 's'}",
            )
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        for k, (label, value) in enumerate(((lines or {}).get(panel) or {}).items()):
            ax.axhline(value, color="grey", linestyle=("--", ":", "-.")[k % 3], linewidth=1, label=label)
        if log:
            ax.set_yscale("log")
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
