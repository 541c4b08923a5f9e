"""A multi-node Ray cluster on one machine's loopback address, for tests and benchmarks of ``--address``.

:func:`loopback_cluster` starts a head node (``ray start --head --port ...``) and further nodes
(``ray start --address 127.0.0.1:...``), each with its own CPUs, waits until all have joined, yields
the address to pass to ``advrl tune --address``, and stops them with ``ray stop`` (which stops every
Ray node of this machine: use it where no other Ray cluster runs). The nodes are real raylets with
their own object stores and worker processes; only the network between them is the loopback.

Ray 2.60's ``ray start --head`` turns on token authentication when a token exists (Ray keeps it in
``~/.ray/auth_token``) or ``RAY_AUTH_MODE=token`` is set; otherwise the cluster runs unauthenticated,
open to anyone who reaches its ports. These clusters use it: the head's machine gets a token first
(``ray get-auth-token --generate``, which keeps one that exists), and every process that joins, the
other nodes and the driver (``advrl tune --address``), needs ``RAY_AUTH_MODE=token`` in its
environment and that token. :data:`JOIN_ENV` holds that setting; the nodes here are started with it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Seconds one ``ray start`` (or the wait for all nodes) may take.
START_TIMEOUT_S = 180
#: Environment of every process that joins a cluster started by ``ray start`` (token authentication).
JOIN_ENV = {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}


def ray_command(*args: str) -> subprocess.CompletedProcess:
    """Run the ``ray`` command line of this Python environment, with :data:`JOIN_ENV`."""
    executable = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, **JOIN_ENV}
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, timeout=START_TIMEOUT_S, env=env
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def loopback_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[str]:
    """``nodes`` Ray nodes on 127.0.0.1 with ``cpus_per_node`` CPUs each; yields ``"127.0.0.1:<port>"``.

    :param nodes: number of nodes, the head included (at least 1).
    :param cpus_per_node: CPUs each node offers to tasks.
    :raises RuntimeError: if a node does not start or join within :data:`START_TIMEOUT_S`.
    """
    if nodes < 1 or cpus_per_node < 1:
        raise ValueError(f"nodes and cpus_per_node must be >= 1, got {nodes} and {cpus_per_node}")
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", str(cpus_per_node), "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    try:
        token = ray_command("get-auth-token", "--generate")  # prints the token: not kept
        if token.returncode != 0:
            raise RuntimeError(f"ray get-auth-token --generate failed: {token.stderr.strip()[-500:]}")
        head = ray_command("start", "--head", "--port", str(port), "--include-dashboard", "false", *common)
        if head.returncode != 0:
            raise RuntimeError(f"ray start --head failed: {head.stderr.strip()[-500:]}")
        for _ in range(nodes - 1):
            node = ray_command("start", "--address", address, *common)
            if node.returncode != 0:
                raise RuntimeError(f"ray start --address {address} failed: {node.stderr.strip()[-500:]}")
        wait_for_nodes(address, nodes)
        yield address
    finally:
        ray_command("stop", "--force")


def wait_for_nodes(address: str, nodes: int) -> None:
    """Block until ``nodes`` nodes of the cluster at ``address`` are active (as ``ray status`` lists them)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        status = ray_command("status", "--address", address)
        active = active_nodes(status.stdout)
        if active >= nodes:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {active} of {nodes} Ray nodes joined: {status.stderr.strip()[-300:]}")
        time.sleep(1.0)


def active_nodes(status: str) -> int:
    """The number of active nodes in the output of ``ray status``."""
    section = status.split("Active:", 1)[1].split("Pending:", 1)[0] if "Active:" in status else ""
    return sum(int(line.split()[0]) for line in section.splitlines() if " node_" in f" {line.strip()}")
