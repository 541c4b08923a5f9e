"""The learning-curve plots draw what the run recorded: evaluations exactly, warm-up kept apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from sb3_ext.plotting import (  # noqa: E402
    RunData,
    build_figure,
    centered_moving_average,
    evaluation_curve,
    load_run,
    plot_runs,
    read_monitor_files,
)


def write_monitor(path: Path, t_start: float, episodes: list[tuple[float, int, float]]) -> None:
    """An SB3 Monitor file: a JSON header line, a CSV header, then (return, length, time) rows."""
    lines = ["#" + json.dumps({"t_start": t_start, "env_id": "test"}), "r,l,t"]
    lines += [f"{r},{length},{t}" for r, length, t in episodes]
    path.write_text("\n".join(lines) + "\n")


def make_run(tmp_path: Path, name: str, warmup: int, seed_offset: float = 0.0) -> Path:
    """20 episodes of 50 steps: the first 6 (steps 0-300) during a 300-step warm-up, returning -1000;
    the rest returning 0 + seed_offset. Four evaluations of three episodes each."""
    run = tmp_path / name
    (run / "monitor").mkdir(parents=True)
    episodes = [(-1000.0 if 50 * i < warmup else seed_offset, 50, float(i)) for i in range(20)]
    write_monitor(run / "monitor" / "0.monitor.csv", 100.0, episodes)
    results = (
        np.array([[-900.0, -950.0, -1000.0], [-10.0, -20.0, -30.0], [1.0, 2.0, 3.0], [5.0, 5.0, 8.0]])
        + seed_offset
    )
    np.savez(
        run / "evaluations.npz",
        timesteps=np.array([250, 500, 750, 1000]),
        results=results,
        ep_lengths=np.full((4, 3), 50),
    )
    (run / "config.json").write_text(
        json.dumps(
            {"algo": "DQN", "env": "AdvRL/GridWorld-v0", "learning_starts": warmup, "random_return": -500.0}
        )
    )
    return run


def lines_by_gid(fig) -> dict[str, object]:
    return {line.get_gid(): line for line in fig.axes[0].get_lines() if line.get_gid()}


def test_the_evaluation_curve_is_evaluations_npz(tmp_path: Path) -> None:
    label, run = load_run(make_run(tmp_path, "s0", warmup=300))
    fig = build_figure({label: [run]}, smoothing=5)
    evaluation = lines_by_gid(fig)["evaluation:DQN"]
    with np.load(tmp_path / "s0" / "evaluations.npz") as data:
        np.testing.assert_array_equal(evaluation.get_xdata(), data["timesteps"])
        np.testing.assert_array_equal(evaluation.get_ydata(), data["results"].mean(axis=1))


def test_several_seeds_plot_the_mean_of_their_evaluation_means(tmp_path: Path) -> None:
    runs = [
        load_run(make_run(tmp_path, f"s{seed}", warmup=300, seed_offset=10.0 * seed))[1] for seed in range(3)
    ]
    steps, mean, spread, what = evaluation_curve(runs)
    per_seed = np.array([run.eval_returns.mean(axis=1) for run in runs])
    np.testing.assert_array_equal(steps, [250, 500, 750, 1000])
    np.testing.assert_allclose(mean, per_seed.mean(axis=0))
    np.testing.assert_allclose(spread, per_seed.std(axis=0))
    assert what == "std over 3 seeds"
    evaluation = lines_by_gid(build_figure({"DQN": runs}))["evaluation:DQN"]
    np.testing.assert_allclose(evaluation.get_ydata(), per_seed.mean(axis=0))


def test_smoothing_never_mixes_warmup_and_learning_episodes(tmp_path: Path) -> None:
    label, run = load_run(make_run(tmp_path, "s0", warmup=300))
    fig = build_figure({label: [run]}, smoothing=9)  # wide enough to reach across the boundary
    lines = lines_by_gid(fig)
    warmup, learning = lines["training:DQN:warm-up"], lines["training:DQN:learning"]
    np.testing.assert_array_equal(warmup.get_ydata(), np.full(6, -1000.0))
    np.testing.assert_array_equal(learning.get_ydata(), np.zeros(14))
    assert warmup.get_xdata().max() < learning.get_xdata().min()
    # The warm-up is shown, as a labelled band up to learning_starts, and the raw episodes as points.
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert "warm-up (random actions)" in legend
    assert "DQN: training episodes (centered mean of 9 episodes)" in legend
    assert len(fig.axes[0].patches) >= 1 and fig.axes[0].patches[0].get_x() == 0
    (points,) = [c for c in fig.axes[0].collections if c.get_gid() == "episodes:DQN"]
    assert len(points.get_offsets()) == 20
    assert lines["random"].get_ydata()[0] == -500.0


def test_an_episode_that_straddles_the_warmup_counts_as_warmup(tmp_path: Path) -> None:
    # learning_starts 320 falls inside the 7th episode (steps 300-350): it took random actions.
    run = RunData(
        np.arange(1, 11) * 50,
        np.arange(10.0),
        np.full(10, 50),
        np.zeros(0),
        np.zeros((0, 0)),
        warmup_steps=320,
    )
    assert run.in_warmup.tolist() == [True] * 7 + [False] * 3


def test_centered_moving_average_matches_a_direct_computation() -> None:
    values = np.random.default_rng(0).normal(size=23)
    for window in (1, 2, 5, 8, 30):
        half = window // 2
        expected = [
            values[
                max(0, i - min(half, i, len(values) - 1 - i)) : i + min(half, i, len(values) - 1 - i) + 1
            ].mean()
            for i in range(len(values))
        ]
        np.testing.assert_allclose(centered_moving_average(values, window), expected)


def test_monitor_files_of_parallel_envs_merge_in_time_order(tmp_path: Path) -> None:
    write_monitor(tmp_path / "0.monitor.csv", 100.0, [(1.0, 10, 1.0), (3.0, 30, 5.0)])
    write_monitor(tmp_path / "1.monitor.csv", 101.0, [(2.0, 20, 1.0)])  # ends at t=102, between the two above
    ends, returns, lengths = read_monitor_files(tmp_path)
    assert (
        returns.tolist() == [1.0, 2.0, 3.0]
        and lengths.tolist() == [10, 20, 30]
        and ends.tolist() == [10, 30, 60]
    )


def test_plot_runs_writes_a_png_and_rejects_a_bad_window(tmp_path: Path) -> None:
    label, run = load_run(make_run(tmp_path, "s0", warmup=0))
    png = plot_runs({label: [run]}, tmp_path / "out" / "curve.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "training:DQN:warm-up" not in lines_by_gid(build_figure({label: [run]}))
    with pytest.raises(ValueError, match="smoothing"):
        build_figure({label: [run]}, smoothing=0)
