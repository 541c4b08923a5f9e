"""Bad input to ``advrl tune``: one line on stderr naming the argument, exit status 2, and no Ray
process started or left behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("ray")

import ray  # noqa: E402

from sb3_ext.cli import main  # noqa: E402
from sb3_ext.tuning.cluster import free_port  # noqa: E402
from tests.ray.conftest import ray_processes  # noqa: E402

BASE = ["tune", "PERDQN", "CartPole-v1", "--timesteps", "100"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--hp", "learning_rate=loguniform(1e-4"],
            "--hp learning_rate=loguniform(1e-4: not a Python literal",
        ),
        (["--hp", "learning_rate=lognormal(1, 2)"], "unknown distribution 'lognormal'"),
        (["--scheduler", "hyperband"], "argument --scheduler: invalid choice: 'hyperband'"),
        (["--num-samples", "0"], "argument --num-samples: expected an integer >= 1, got 0"),
        (["--address", "127.0.0.1:{port}"], "--address '127.0.0.1:{port}': no Ray cluster answers there"),
        (["--address", "nowhere"], "--address 'nowhere': expected HOST:PORT"),
        (["--address", "127.0.0.1:{port}", "--cpus", "2"], "--cpus sets the CPUs of a local cluster"),
    ],
)
def test_bad_input_is_one_line_naming_the_argument(
    args: list[str], message: str, capsys: pytest.CaptureFixture, tmp_path
) -> None:
    port = str(free_port())
    args = [a.replace("{port}", port) for a in args]
    before = ray_processes()
    try:
        code = main([*BASE, "--out", str(tmp_path / "run"), *args])
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("advrl tune: error: ") and err.count("\n") == 1, err
    assert message.replace("{port}", port) in err
    assert not ray.is_initialized() and ray_processes() <= before
    assert not (tmp_path / "run").exists()


def test_unreachable_address_in_a_subprocess_leaves_no_ray_process(tmp_path) -> None:
    before = ray_processes()
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "sb3_ext.cli", *BASE, "--address", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"advrl tune: error: --address '127.0.0.1:{port}': no Ray cluster answers"
    )
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert ray_processes() <= before
