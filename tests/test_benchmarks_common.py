"""benchmarks/_common.py: the statistics, tables and results files every benchmark script shares."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _common  # noqa: E402


def test_mean_std_leaves_out_runs_that_never_got_there():
    assert _common.mean_std([1.0, 3.0]) == "2 +- 1"
    assert _common.mean_std([1000.0, None, 3000.0, math.nan], ",.0f") == "2,000 +- 1,000"
    assert _common.mean_std([None, math.nan]) == "-"
    assert _common.mean_std([0.5], ".1%") == "50.0% +- 0.0%"


def test_steps_to_threshold_and_value_at():
    curve = [(100, 1.0), (200, 5.0), (300, 2.0), (400, 6.0)]
    assert _common.steps_to_threshold(curve, 5.0) == 200
    assert _common.steps_to_threshold(curve, 4.0, window=2) == 400  # means 3, 3.5, 4
    assert _common.steps_to_threshold(curve, 7.0) is None
    assert _common.steps_to_threshold(curve, None) is None
    assert _common.first_reaching([1.0, 5.0], 5.0) == 1
    assert _common.value_at(curve, 300) == 2.0 and _common.value_at(curve, 250) is None


def test_markdown_table_aligns_columns_and_keeps_empty_cells_narrow():
    table = _common.markdown_table(("a", "b", "c"), [["x", 1, ""]], "lrr")
    assert table.splitlines() == ["| a | b | c |", "|---|---:|---:|", "| x | 1 | |"]
    with pytest.raises(ValueError, match="one letter per column"):
        _common.markdown_table(("a", "b"), [], "l")


def test_runs_are_saved_after_each_one_and_merged_from_several_files(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path)
    parser = argparse.ArgumentParser()
    _common.add_results_argument(parser)
    args = parser.parse_args([])
    assert args.from_results is None

    def measure(seed: int):
        def run(results: _common.Results) -> None:
            results.add({"seed": seed, "value": seed / 2})
            assert json.loads(results.path.read_text())["runs"] == [{"seed": seed, "value": seed / 2}]

        return run

    first = _common.measure_or_load("bench/part", args, measure(1))
    second = _common.measure_or_load("bench/part", args, measure(2))
    assert first["runs"] == [{"seed": 1, "value": 0.5}] and second["args"] == {}
    files = sorted((tmp_path / "bench" / "part").glob("*.json"))
    assert len(files) == 2
    merged = _common.measure_or_load(
        "bench/part", parser.parse_args(["--from-results", *map(str, files)]), None
    )
    assert sorted(run["seed"] for run in merged["runs"]) == [1, 2]
    latest = _common.load_results("bench/part")
    assert len(latest["runs"]) == 1
    with pytest.raises(SystemExit, match="no results"):
        _common.load_results("elsewhere")
