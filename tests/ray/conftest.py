"""Fixtures of the Ray tests: Ray processes only on 127.0.0.1, dashboard and usage statistics off, and
always shut down. These tests run in the Ray venv (``make test-ray``); without Ray each module is
skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray would otherwise wrap workers in `uv run` when the driver runs under uv.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

#: Processes every local Ray cluster starts; none may outlive a test.
RAY_PROCESS_NAMES = ("raylet", "gcs_server")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[object]:
    """A local two-CPU Ray cluster for the module, shut down after it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()


def ray_processes() -> set[int]:
    """Pids of the running Ray cluster processes (raylet, GCS server) on this machine, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(f"/{name} " in command or command.startswith(f"{name} ") for name in RAY_PROCESS_NAMES):
            found.add(int(entry.name))
    return found
