"""The ``advrl`` console script, driven in a subprocess as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sb3_ext.cli import main

ADVRL = [str(Path(sys.executable).with_name("advrl"))]
if not Path(ADVRL[0]).exists():  # not installed as a script: run the module
    ADVRL = [sys.executable, "-m", "sb3_ext.cli"]


def advrl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ADVRL, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_in_a_subprocess() -> None:
    result = advrl("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: advrl")
    for command in ("envs", "train", "eval", "plot"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["envs", "train", "eval", "plot"])
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: advrl {command}")
    if command == "train":
        for option in ("--timesteps", "--seed", "--n-envs", "--out", "--hp"):
            assert option in out


def test_envs_lists_every_environment() -> None:
    import gymnasium as gym

    import gym_advrl  # noqa: F401

    result = advrl("envs")
    assert result.returncode == 0, result.stderr
    for env_id in (k for k in gym.registry if k.startswith("AdvRL/")):
        assert f"| {env_id} |" in result.stdout
    assert (
        "| AdvRL/Pendulum-v0 | Box(-8..8, (3,), float32) | Box(-2..2, (1,), float32) | 200 steps |"
        in result.stdout
    )
    assert "gym_advrl.marl.cooperative_v0" in result.stdout


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for seed in (0, 1):
        out = root / f"ppo-s{seed}"
        args = [
            "train",
            "ppo",
            "AdvRL/GridWorld-v0",
            "--timesteps",
            "512",
            "--seed",
            str(seed),
            "--n-envs",
            "2",
            "--out",
            str(out),
            "--no-progress-bar",
            "--eval-points",
            "2",
            "--eval-episodes",
            "2",
            "--hp",
            "n_steps=128",
            "batch_size=64",
            "learning_rate=1e-3",
        ]
        if seed == 0:  # the console script, as a user runs it
            result = advrl(*args)
            assert result.returncode == 0, result.stderr
        else:  # a second seed in-process, to keep the suite fast
            assert main(args) == 0
        runs.append(out)
    return runs


def test_train_writes_model_monitor_tensorboard_curve_and_config(two_runs: list[Path]) -> None:
    out = two_runs[0]
    assert (out / "model.zip").is_file()
    # GridWorld has a native vector env: --n-envs 2 trains on it, monitored as one file.
    assert sorted(p.name for p in (out / "monitor").iterdir()) == ["vector.monitor.csv"]
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluations = np.load(out / "evaluations.npz")
    assert evaluations["results"].shape == (2, 2)
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "PPO" and config["env"] == "AdvRL/GridWorld-v0"
    assert config["hyperparameters"] == {"n_steps": 128, "batch_size": 64, "learning_rate": 1e-3}


def test_eval_reports_return_and_writes_gif(two_runs: list[Path], tmp_path: Path) -> None:
    gif = tmp_path / "episode.gif"
    result = advrl(
        "eval",
        str(two_runs[0]),
        "AdvRL/GridWorld-v0",
        "--episodes",
        "2",
        "--gif",
        str(gif),
        "--gif-frames",
        "20",
    )
    assert result.returncode == 0, result.stderr
    assert "PPO on AdvRL/GridWorld-v0: mean return" in result.stdout and "over 2 episodes" in result.stdout
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_eval_accepts_the_model_zip(two_runs: list[Path], capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(two_runs[0] / "model.zip"), "AdvRL/GridWorld-v0", "--episodes", "1"]) == 0
    assert "over 1 episodes" in capsys.readouterr().out


def test_plot_groups_seeds(two_runs: list[Path], tmp_path: Path) -> None:
    png = tmp_path / "compare.png"
    result = advrl("plot", *map(str, two_runs), "--out", str(png))
    assert result.returncode == 0, result.stderr
    assert "PPO (2 runs)" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_error_in_a_subprocess_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = advrl("train", "NoSuchAlgo", "AdvRL/GridWorld-v0", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "unknown algorithm 'NoSuchAlgo'; choose one of:" in result.stderr and "WorldModelMPC" in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "ppo", "AdvRL/NoSuchEnv-v0"], "unknown environment 'AdvRL/NoSuchEnv-v0'"),
        (
            ["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "nsteps=3"],
            "unknown hyperparameter 'nsteps' for PPO; valid ones:",
        ),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "n_steps"], "--hp expects key=value"),
        (["eval", "does/not/exist", "AdvRL/GridWorld-v0"], "no saved model"),
        (["plot", "does/not/exist"], "run directory 'does/not/exist' does not exist"),
    ],
)
def test_errors_are_clear(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


TRAIN = [
    "train",
    "ppo",
    "AdvRL/GridWorld-v0",
    "--timesteps",
    "256",
    "--no-progress-bar",
    "--hp",
    "n_steps=128",
]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["train", "ppo", "AdvRL/GridWorld-v0", "--n-envs", "0"], "--n-envs"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--n-envs", "-1"], "--n-envs"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--eval-points", "0"], "--eval-points"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--eval-episodes", "0"], "--eval-episodes"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--eval-fraction", "0"], "--eval-fraction"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--seed", "-1"], "--seed"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--timesteps", "-5"], "--timesteps"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--timesteps", "1e3"], "--timesteps"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--torch-threads", "0"], "--torch-threads"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "learning_rate=abc"], "learning_rate"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "learning_rate=-1"], "learning_rate"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "learning_rate=nan"], "learning_rate"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "batch_size=0"], "batch_size"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "batch_size=True"], "batch_size"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "n_steps=-1"], "n_steps"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "gamma=[1]"], "gamma"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "gamma=1.5"], "gamma"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "policy_kwargs=dict(net_arch=[8])"], "policy_kwargs"),
        (["train", "perdqn", "AdvRL/GridWorld-v0", "--hp", "buffer_size=0"], "buffer_size"),
        (["train", "sac", "AdvRL/GridWorld-v0"], "SAC cannot train on AdvRL/GridWorld-v0"),
        (["eval", "run", "--episodes", "0"], "--episodes"),
        (["eval", "run", "--gif-frames", "0"], "--gif-frames"),
        (["plot", "run", "--smoothing", "0"], "--smoothing"),
        (["plot", "run", "--smoothing", "-5"], "--smoothing"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_every_bad_argument_is_one_line_naming_it(
    args: list[str], names: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    if args[0] == "train":
        args = [*args, "--out", str(tmp_path / "out")]
    try:
        status = main(args)
    except SystemExit as exit_info:  # argparse's own errors
        status = exit_info.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_a_bad_option_in_a_subprocess_is_one_line() -> None:
    result = advrl("train", "ppo", "AdvRL/GridWorld-v0", "--n-envs", "0")
    assert result.returncode == 2
    assert (
        result.stderr
        == "advrl train: error: argument --n-envs: expected an integer >= 1, got 0 (see 'advrl train --help')\n"
    )


def test_unwritable_outputs_are_refused_before_any_work(
    two_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cases = [
        (["train", *TRAIN[1:], "--out", str(blocker)], "--out"),
        (["train", *TRAIN[1:], "--out", str(blocker / "run")], "--out"),
        (["eval", str(two_runs[0]), "--gif", str(blocker / "x.gif")], "--gif"),
        (["eval", str(two_runs[0]), "--gif", str(tmp_path)], "--gif"),
        (["plot", str(two_runs[0]), "--out", str(blocker / "x.png")], "--out"),
        (["plot", str(two_runs[0]), "--out", str(tmp_path)], "--out"),
    ]
    for args, option in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and option in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_failed_model_construction_leaves_no_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert main(["train", "sac", "AdvRL/GridWorld-v0", "--out", str(out)]) == 2
    assert "only supports" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    ("timesteps", "episode_steps", "given", "expected"),
    [
        (3000, 200, (None, None), (3, 1)),  # WorldModelMPC on the pendulum: 600 of 3000 steps
        (10_000, 100, (None, None), (10, 2)),
        (100_000, 200, (None, None), (10, 5)),
        (512, 100, (None, None), (1, 1)),  # never fewer than one final evaluation of one episode
        (3000, 200, (5, None), (5, 1)),
        (3000, 200, (None, 3), (1, 3)),
        (3000, 200, (4, 4), (4, 4)),  # given explicitly: kept, even beyond the budget
    ],
)
def test_evaluation_budget(timesteps: int, episode_steps: int, given: tuple, expected: tuple) -> None:
    from sb3_ext.cli import plan_evaluations

    points, episodes = plan_evaluations(timesteps, episode_steps, 0.2, *given)
    assert (points, episodes) == expected
    if given == (None, None) and timesteps * 0.2 >= episode_steps:
        assert points * episodes * episode_steps <= 0.2 * timesteps


def test_train_evaluates_within_the_budget_and_records_the_warmup(tmp_path: Path) -> None:
    out = tmp_path / "dqn"
    args = [
        "train",
        "dqn",
        "AdvRL/GridWorld-v0",
        "--timesteps",
        "1000",
        "--out",
        str(out),
        "--no-progress-bar",
        "--hp",
        "learning_starts=300",
        "buffer_size=1000",
    ]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["learning_starts"] == 300 and (config["eval_points"], config["eval_episodes"]) == (2, 1)
    assert config["random_return"] < 0
    evaluations = np.load(out / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [500, 1000] and evaluations["results"].shape == (2, 1)


def test_eval_takes_the_env_from_the_run_and_shows_each_episode(
    two_runs: list[Path], capsys: pytest.CaptureFixture
) -> None:
    assert main(["eval", str(two_runs[0]), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "evaluating PPO on AdvRL/GridWorld-v0 for 2 episodes" in out
    episode_lines = [line for line in out.splitlines() if line.strip().startswith("episode ")]
    assert [line.split(":")[0].strip() for line in episode_lines] == ["episode 1/2", "episode 2/2"]
    returns = [float(line.split("return ")[1].split(",")[0]) for line in episode_lines]
    summary = out.strip().splitlines()[-1]
    assert f"mean return {np.mean(returns):.2f}" in summary


def test_eval_checks_the_gif_dependency_first(
    two_runs: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "imageio" else real_find_spec(name, *a)
    )
    assert main(["eval", "no/such/run", "--gif", str(tmp_path / "x.gif")]) == 2
    assert "gym-advrl[gif]" in capsys.readouterr().err  # before looking for the model
