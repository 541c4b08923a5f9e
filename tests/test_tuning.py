"""``advrl tune``'s parts that need no Ray: search spaces, the reporting callback, the trial table,
the best configuration as ``advrl train --hp-file`` reads it. The sweeps themselves run in the Ray
venv (tests/ray/)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_ext import PERDQN
from sb3_ext.cli import main
from sb3_ext.tuning.results import (
    EvalReportCallback,
    TrialRecord,
    best_record,
    plot_trials,
    read_records,
    sort_by_score,
    trial_table,
    write_best_hyperparameters,
    write_records,
)
from sb3_ext.tuning.space import Distribution, parse_search_space, read_space_file


def test_search_space_splits_fixed_and_searched() -> None:
    fixed, searched = parse_search_space(
        [
            "learning_rate=loguniform(1e-4, 1e-2)",
            "gamma=uniform(0.9, 0.999)",
            "batch_size=choice([32, 64])",
            "policy_kwargs=choice([{'net_arch': [64]}, {'net_arch': [32, 32]}])",
            "target_update_interval=500",
        ],
        PERDQN,
    )
    assert fixed == {"target_update_interval": 500}
    assert searched == {
        "learning_rate": Distribution("loguniform", (1e-4, 1e-2)),
        "gamma": Distribution("uniform", (0.9, 0.999)),
        "batch_size": Distribution("choice", ([32, 64],)),
        "policy_kwargs": Distribution("choice", ([{"net_arch": [64]}, {"net_arch": [32, 32]}],)),
    }
    assert str(searched["learning_rate"]) == "loguniform(0.0001, 0.01)"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("learning_rate=normal(0, 1)", "unknown distribution 'normal'; use one of loguniform(low, high)"),
        ("learning_rate=loguniform(0, 1e-2)", "learning_rate=loguniform(0, 1e-2): expected 0 < low < high"),
        ("learning_rate=loguniform(1e-2, 1e-4)", "expected 0 < low < high"),
        ("gamma=uniform(0.5)", "gamma=uniform(0.5): expected uniform(low, high) with two numbers"),
        ("gamma=uniform(0.5, 1.5)", "--hp gamma=1.5: must lie in [0, 1]"),
        ("gamma=uniform(a, b)", "the arguments are not Python literals; expected uniform(low, high)"),
        ("batch_size=uniform(16, 128)", "batch_size takes int, not a float; use choice([...]) for it"),
        ("batch_size=choice([])", "expected choice([v1, v2, ...]) with at least one value"),
        ("batch_size=choice([32, 0.5])", "--hp batch_size=0.5: expected int, got float"),
        ("no_such=choice([1])", "unknown hyperparameter 'no_such' for PERDQN"),
        ("gamma=0.9;gamma=uniform(0.9, 0.99)", "--hp gamma is given twice"),
        ("gamma=uniform(0.9, 0.99);gamma=0.9", "--hp gamma is given twice"),
        ("learning_rate", "--hp expects key=value, got 'learning_rate'"),
    ],
)
def test_bad_search_spaces_name_the_entry(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=None) as error:
        parse_search_space(entry.split(";"), PERDQN)
    assert message in str(error.value)


def test_space_file_reads_as_the_command_line(tmp_path: Path) -> None:
    space = tmp_path / "space.yml"
    space.write_text(
        "learning_rate: loguniform(1e-4, 1e-2)\n"
        "exploration_fraction: 1e-1\n"  # a string to YAML 1.1, a number to us (as after --hp)
        "policy_kwargs: {net_arch: [64, 64]}\n"
        "batch_size: choice([32, 64])\n"
    )
    pairs = read_space_file(str(space), "--space")
    assert pairs == [
        "learning_rate=loguniform(1e-4, 1e-2)",
        "exploration_fraction=1e-1",
        "policy_kwargs={'net_arch': [64, 64]}",
        "batch_size=choice([32, 64])",
    ]
    fixed, searched = parse_search_space(pairs, PERDQN)
    assert fixed == {"exploration_fraction": 0.1, "policy_kwargs": {"net_arch": [64, 64]}}
    assert set(searched) == {"learning_rate", "batch_size"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("learning_rate: [unclosed\n", "--space '{path}' is not valid YAML"),
        ("- 1\n- 2\n", "--space '{path}': expected a mapping of hyperparameter names to values"),
    ],
)
def test_bad_space_files_name_the_option(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "space.yml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        read_space_file(str(path), "--space")
    assert message.format(path=path) in str(error.value)
    with pytest.raises(ValueError, match="cannot be read"):
        read_space_file(str(tmp_path / "missing.yml"), "--space")


def test_eval_report_callback_reports_each_evaluation_exactly(tmp_path: Path) -> None:
    """Every report is the mean return and the step of one EvalCallback evaluation, as in its
    evaluations.npz, plus the constant extras."""
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    model = DQN("MlpPolicy", env, learning_starts=50, seed=0, policy_kwargs={"net_arch": [8]})
    reports: list[dict] = []
    evaluation = EvalCallback(
        eval_env,
        eval_freq=100,
        n_eval_episodes=2,
        log_path=str(tmp_path),
        callback_after_eval=EvalReportCallback(reports.append, extra={"node_id": "n0"}),
        verbose=0,
    )
    model.learn(350, callback=evaluation)
    logged = np.load(tmp_path / "evaluations.npz")
    assert [r["timesteps"] for r in reports] == [100, 200, 300] == logged["timesteps"].tolist()
    assert [r["eval_return"] for r in reports] == pytest.approx(logged["results"].mean(axis=1).tolist())
    assert all(r["node_id"] == "n0" for r in reports)


def test_eval_report_callback_outside_an_eval_callback_is_an_error() -> None:
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=10, policy_kwargs={"net_arch": [8]})
    with pytest.raises(ValueError, match="callback_after_eval"):
        model.learn(5, callback=EvalReportCallback(print))


def _records() -> list[TrialRecord]:
    return [
        TrialRecord("a_00000", {"learning_rate": 1e-3}, [100, 200], [10.0, 30.0], node_id="n1", wall_s=3.0),
        TrialRecord("a_00001", {"learning_rate": 2e-3}, [100, 200, 300], [50.0, 40.0, 45.0], node_id="n2"),
        TrialRecord("a_00002", {"learning_rate": 3e-3}, error="TypeError: bad net_arch"),
        TrialRecord("a_00003", {"learning_rate": 4e-3}, [100], [20.0], node_id="n1"),
    ]


def test_trials_sort_by_best_evaluation_and_crashes_come_last() -> None:
    records = _records()
    assert [r.trial_id for r in sort_by_score(records)] == ["a_00001", "a_00000", "a_00003", "a_00002"]
    assert best_record(records).trial_id == "a_00001"
    assert best_record([records[2]]) is None
    assert [r.status(300) for r in records] == ["stopped early", "completed", "error", "stopped early"]


def test_trial_table_lists_every_trial_in_score_order() -> None:
    lines = trial_table(_records(), total_timesteps=300).splitlines()
    assert lines[0] == (
        "| rank | trial | status | best eval return | last eval return | steps | node | learning_rate | error |"
    )
    assert lines[2] == "| 1 | a_00001 | completed | 50.00 | 45.00 | 300 | node 1 | 0.002 | - |"
    assert lines[3] == "| 2 | a_00000 | stopped early | 30.00 | 30.00 | 200 | node 0 | 0.001 | - |"
    assert lines[5] == "| 4 | a_00002 | error | - | - | 0 | - | 0.003 | TypeError: bad net_arch |"
    assert len(lines) == 6


def test_records_round_trip_and_plot(tmp_path: Path) -> None:
    records = _records()
    write_records(tmp_path / "trials.json", records, {"algo": "PERDQN"})
    again, settings = read_records(tmp_path / "trials.json")
    assert again == records and settings == {"algo": "PERDQN"}
    if importlib.util.find_spec("matplotlib") is not None:
        png = plot_trials(tmp_path / "curves.png", records, "PERDQN")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_best_configuration_retrains_with_advrl_train(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The file ``advrl tune`` writes is read back by ``advrl train --hp-file`` into the same
    hyperparameters (floats, ints, nested dicts), and --hp overrides it."""
    hyperparameters = {
        "learning_rate": 0.00012345678901234,
        "batch_size": 32,
        "policy_kwargs": {"net_arch": [16, 16]},
        "learning_starts": 20,
        "exploration_fraction": 1e-05,
    }
    best = write_best_hyperparameters(tmp_path / "best.yml", hyperparameters, "advrl train ...", 12.5)
    assert best.read_text().startswith(
        "# best trial: best evaluation mean return 12.50\n# retrain: advrl train"
    )
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "PERDQN",
            "CartPole-v1",
            "--timesteps",
            "40",
            "--eval-points",
            "1",
            "--eval-episodes",
            "1",
            "--no-progress-bar",
            "--out",
            str(out),
            "--hp-file",
            str(best),
            "--hp",
            "batch_size=16",
        ]
    )
    assert code == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["hyperparameters"] == {**hyperparameters, "batch_size": 16}


def test_a_bad_hp_file_is_one_line_naming_the_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "best.yml"
    bad.write_text("gamma: 2.0\n")
    code = main(["train", "PERDQN", "CartPole-v1", "--out", str(tmp_path / "run"), "--hp-file", str(bad)])
    assert code == 2
    assert (
        capsys.readouterr().err
        == f"advrl train: error: --hp-file {str(bad)!r}: --hp gamma=2.0: must lie in [0, 1]\n"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="Ray is installed here")
def test_tune_without_ray_says_how_to_install_it(capsys: pytest.CaptureFixture) -> None:
    assert main(["tune", "PERDQN", "CartPole-v1"]) == 2
    assert (
        capsys.readouterr().err == 'advrl tune: error: advrl tune needs Ray: pip install "gym-advrl[ray]"\n'
    )


def test_error_line_finds_the_exception_under_rays_wrapping() -> None:
    from sb3_ext.tuning.sweep import error_line

    wrapped = RuntimeError(
        'ray::ImplicitFunc.train() (pid=1, ip=127.0.0.1)\n  File "x.py", line 3, in f\n'
        "    raise TypeError('bad')\nTypeError: empty(): argument 'size' must be tuple of ints\n"
    )
    assert error_line(wrapped) == "TypeError: empty(): argument 'size' must be tuple of ints"
    assert error_line(RuntimeError("no exception line here\nlast words")) == "last words"
    assert error_line(RuntimeError("")) == "RuntimeError"


def test_check_address_refuses_before_ray_starts() -> None:
    from sb3_ext.tuning.cluster import free_port
    from sb3_ext.tuning.sweep import check_address

    port = free_port()
    with pytest.raises(ValueError, match=rf"--address '127.0.0.1:{port}': no Ray cluster answers there"):
        check_address(f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        check_address("127.0.0.1")
    check_address("auto")  # left to Ray
    check_address("ray://head:10001")


def test_active_nodes_counts_the_active_section_of_ray_status() -> None:
    from sb3_ext.tuning.cluster import active_nodes

    status = (
        "======== Autoscaler status ========\nNode status\n-----\nActive:\n 1 node_d551a3\n 1 node_97cd5a\n"
        "Pending:\n (no pending nodes)\nRecent failures:\n 1 node_ffff00\n"
    )
    assert active_nodes(status) == 2
    assert active_nodes("No cluster status.") == 0
