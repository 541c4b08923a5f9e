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
    assert "| AdvRL/Pendulum-v0 | Box(-8..8, (3,), float32) | Box(-2..2, (1,), float32) | 200 steps |" in result.stdout
    assert "gym_advrl.marl.cooperative_v0" in result.stdout


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for seed in (0, 1):
        out = root / f"ppo-s{seed}"
        args = ["train", "ppo", "AdvRL/GridWorld-v0", "--timesteps", "512", "--seed", str(seed), "--n-envs", "2",
                "--out", str(out), "--no-progress-bar", "--eval-points", "2", "--eval-episodes", "2",
                "--hp", "n_steps=128", "batch_size=64", "learning_rate=1e-3"]
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
    assert sorted(p.name for p in (out / "monitor").iterdir()) == ["0.monitor.csv", "1.monitor.csv"]
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluations = np.load(out / "evaluations.npz")
    assert evaluations["results"].shape == (2, 2)
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "PPO" and config["env"] == "AdvRL/GridWorld-v0"
    assert config["hyperparameters"] == {"n_steps": 128, "batch_size": 64, "learning_rate": 1e-3}


def test_eval_reports_return_and_writes_gif(two_runs: list[Path], tmp_path: Path) -> None:
    gif = tmp_path / "episode.gif"
    result = advrl("eval", str(two_runs[0]), "AdvRL/GridWorld-v0", "--episodes", "2", "--gif", str(gif), "--gif-frames", "20")
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
    assert "unknown algorithm 'NoSuchAlgo'; choose one of:" in result.stderr and "WorldModelMPC" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "ppo", "AdvRL/NoSuchEnv-v0"], "unknown environment 'AdvRL/NoSuchEnv-v0'"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "nsteps=3"], "unknown hyperparameter 'nsteps' for PPO; valid ones:"),
        (["train", "ppo", "AdvRL/GridWorld-v0", "--hp", "n_steps"], "--hp expects key=value"),
        (["eval", "does/not/exist", "AdvRL/GridWorld-v0"], "no saved model"),
        (["plot", "does/not/exist"], "run directory 'does/not/exist' does not exist"),
    ],
)
def test_errors_are_clear(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err
