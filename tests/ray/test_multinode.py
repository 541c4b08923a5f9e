"""A real two-node Ray cluster on the loopback address (a head and a worker node, one CPU each, started
with ``ray start``): ``advrl tune --address`` joins it, its trials run on both nodes, and both nodes are
stopped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

from sb3_ext.tuning.cluster import JOIN_ENV, loopback_cluster, ray_command  # noqa: E402
from sb3_ext.tuning.results import RECORDS_FILE, read_records  # noqa: E402
from tests.ray.conftest import ray_processes  # noqa: E402


@pytest.fixture(scope="module")
def two_node_cluster() -> Iterator[str]:
    """``ray start --head`` and ``ray start --address`` on 127.0.0.1, one CPU each; ``ray stop`` after."""
    with loopback_cluster(nodes=2, cpus_per_node=1) as address:
        yield address


def test_tune_against_a_two_node_loopback_cluster(two_node_cluster: str, tmp_path: Path) -> None:
    """``advrl tune --address`` in its own process, as a user runs it (with the cluster's token)."""
    out = tmp_path / "sweep"
    args = [
        "tune",
        "PERDQN",
        "CartPole-v1",
        "--num-samples",
        "2",
        "--timesteps",
        "400",
        "--scheduler",
        "fifo",
    ]
    args += ["--eval-points", "2", "--eval-episodes", "1", "--address", two_node_cluster, "--out", str(out)]
    args += ["--hp", "learning_rate=loguniform(1e-4, 1e-3)", "learning_starts=100"]
    result = subprocess.run(
        [sys.executable, "-m", "sb3_ext.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **JOIN_ENV},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records, settings = read_records(out / RECORDS_FILE)
    assert settings["address"] == two_node_cluster
    assert len(records) == 2 and all(r.returns and not r.error for r in records)
    # One CPU per node and one CPU per trial: the two trials ran on the two different nodes.
    assert len({r.node_id for r in records}) == 2
    assert "node 0" in result.stdout and "node 1" in result.stdout


def test_joining_without_the_token_is_one_line(two_node_cluster: str, tmp_path: Path) -> None:
    """Without ``RAY_AUTH_MODE=token`` the join fails: one line naming --address and saying how to
    authenticate, exit status 2, Ray's retry messages held back, and no Ray process added."""
    before = ray_processes()
    env = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_MODE"}
    result = subprocess.run(
        [sys.executable, "-m", "sb3_ext.cli", "tune", "PERDQN", "CartPole-v1", "--address", two_node_cluster],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"advrl tune: error: --address '{two_node_cluster}': cannot join the Ray")
    assert result.stderr.count("\n") == 1 and "set RAY_AUTH_MODE=token" in result.stderr
    assert ray_processes() == before


def test_stopping_the_cluster_leaves_no_ray_process(two_node_cluster: str) -> None:
    """Runs last in this module: after ``ray stop`` no raylet or GCS server of ours is left."""
    cluster = ray_processes()
    assert len(cluster) >= 3  # two raylets and the head's GCS server
    ray_command("stop", "--force")
    deadline = time.monotonic() + 60
    while ray_processes() & cluster and time.monotonic() < deadline:
        time.sleep(1)
    assert not ray_processes() & cluster
