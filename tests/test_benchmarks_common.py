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


def test_curve_mean_is_the_area_under_the_curve_over_its_length():
    assert _common.curve_mean([(0, 0.0), (100, 1.0), (300, 1.0)]) == pytest.approx((50 + 200) / 300)
    assert _common.curve_mean([(0, 0.5), (10, 0.5)]) == 0.5
    assert _common.curve_mean([(7, 0.25)]) == 0.25


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


def test_curve_band_averages_the_curves_evaluated_at_each_step():
    steps, mean, std = _common.curve_band([[(0, 1.0), (10, 3.0)], [(0, 3.0), (10, 5.0), (20, 7.0)]])
    assert steps.tolist() == [0, 10, 20]
    assert mean.tolist() == [2.0, 4.0, 7.0]  # step 20: only the second curve
    assert std.tolist() == [1.0, 1.0, 0.0]
    assert _common.spread([3.0, 1.0, 2.0, 10.0]) == (1.0, 2.5, 10.0)


def test_plots_are_written_as_png_files(tmp_path, capsys):
    png = b"\x89PNG\r\n\x1a\n"
    ratio = _common.save_ratio_plot(
        tmp_path / "a" / "ratio.png", {"x": [0.9, 1.1, 1.0], "y": [2.0]}, title="t", xlabel="x", target=1.2
    )
    bars = _common.save_bar_plot(
        tmp_path / "bars.png",
        {"task 1": {"A": [1.0, 2.0], "B": [3.0]}, "task 2": {"B": [1.0]}},
        title="t",
        ylabel="y",
        lines={"optimum": 3.0},
    )
    curves = _common.save_learning_curves(
        tmp_path / "curves.png",
        {"env": {"A": [[(0, 1.0), (10, 2.0)], [(0, 0.0), (10, 3.0)]], "B": []}},
        ylabel="return",
        lines={"env": {"threshold": 2.5}},
    )
    for path in (ratio, bars, curves):
        assert path.read_bytes()[:8] == png and path.stat().st_size > 5_000
    assert "plot: " in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    _common.add_plot_argument(parser, "bench")
    assert parser.parse_args([]).plot == _common.RESULTS_ROOT / "bench" / "bench.png"
