"""What the benchmark scripts share: their results files, summary statistics and markdown tables.

Every benchmark keeps what it measures under ``benchmarks/results/<name>/`` (git-ignored): one
JSON file per invocation, holding the command, its arguments, the machine and one record per run,
and written again after every run, so that an interrupted benchmark keeps the runs it finished.
Its tables are computed from that file alone, so ``--from-results`` prints them again without
measuring anything: from the latest file, or from the files named, whose runs are merged (a
benchmark split over processes or machines is tabulated as one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
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
