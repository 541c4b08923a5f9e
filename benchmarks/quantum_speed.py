"""Time per gate application of the QuantumGate-v0 state-vector core against two baselines.

For each number of qubits the same gate is applied to a state over and over by

* ours: ``apply_compiled`` of ``gym_advrl.envs.quantum.statevector`` with the gate compiled
  once (as ``QuantumGateEnv`` does for each action; ``O(2**n)`` work per gate);
* dense: a ``2**n x 2**n`` matrix built once by Kronecker products (not timed), then one
  matrix-vector product per gate (``O(4**n)``);
* qiskit: ``Statevector.evolve(Operator(gate), qargs)`` with the ``Operator`` built once (faster
  than passing the gate object), when qiskit is installed.

Gates: ``H`` on the middle qubit and ``CX`` from qubit 0 to qubit n-1. Each figure is the best
of ``--repeats`` runs of ``--gates`` applications (the methods take turns in every repeat, so
they share the machine's load), in microseconds per gate. BLAS is limited to
one thread so that the dense baseline runs on one core like the others. The three final states
are checked to agree.

    python benchmarks/quantum_speed.py [--qubits 2 4 6 8 10] [--gates 200] [--repeats 30]

Measurements are saved under ``benchmarks/results/quantum_speed/``; ``--from-results`` prints
their table again.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    Results,
    add_plot_argument,
    add_results_argument,
    markdown_table,
    measure_or_load,
    save_ratio_plot,
)

from gym_advrl.envs.quantum.statevector import apply_compiled, compile_gate, dense_operator, gate_matrix  # noqa: E402

try:
    from qiskit.quantum_info import Operator, Statevector
except ImportError:  # qiskit is the optional [quantum] extra
    Operator = Statevector = None


def time_per_gate(
    steps: dict[str, Callable[[object], object]],
    starts: dict[str, object],
    n_gates: dict[str, int],
    repeats: int,
) -> tuple[dict[str, float], dict[str, object]]:
    """Microseconds per gate of ``state = step(state)`` for each method, and its final state.

    The methods take turns within every repeat, so they share the machine's load; each figure is
    the fastest repeat (the one least disturbed by other processes).
    """
    best = dict.fromkeys(steps, float("inf"))
    finals: dict[str, object] = {}
    for _ in range(repeats):
        for name, step in steps.items():
            state = starts[name]
            begin = time.perf_counter()
            for _ in range(n_gates[name]):
                state = step(state)
            best[name] = min(best[name], (time.perf_counter() - begin) / n_gates[name] * 1e6)
            finals[name] = state
    return best, finals


def qiskit_matrix(name: str, matrix: np.ndarray) -> np.ndarray:
    """Qiskit's Operator takes qargs[0] as the least significant index; ours lists it first."""
    if name == "h":
        return matrix
    return matrix.reshape(2, 2, 2, 2).transpose(1, 0, 3, 2).reshape(4, 4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qubits", type=int, nargs="+", default=[2, 4, 6, 8, 10])
    parser.add_argument("--gates", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=30)
    add_results_argument(parser)
    add_plot_argument(parser, "quantum_speed")
    args = parser.parse_args()
    record = measure_or_load("quantum_speed", args, lambda results: measure(results, args))
    print(table(record))
    plot(record, args.plot)


def plot(record: dict[str, Any], path) -> None:
    """How many times ours is faster than the dense product and than qiskit, per gate and size."""
    ratios = {}
    for baseline in ("dense", "qiskit"):
        for run in record["runs"]:
            if run.get(baseline) is not None:
                ratios[f"{baseline}, {run['gate']}, {run['qubits']} qubits"] = [run[baseline] / run["ours"]]
    save_ratio_plot(
        path,
        ratios,
        title=f"time per gate of the baseline / ours (best of {record['args']['repeats']} x "
        f"{record['args']['gates']} applications)",
        xlabel="speed-up of ours, baseline time / our time (log scale; < 1: the baseline is faster)",
        log=True,
    )


def measure(results: Results, args: argparse.Namespace) -> None:
    """Microseconds per gate of each method, for H and CX on every number of qubits."""
    for n in args.qubits:
        rng = np.random.default_rng(n)
        start = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
        start /= np.linalg.norm(start)
        for name, qubits in (("h", (n // 2,)), ("cx", (0, n - 1))):
            matrix = gate_matrix(name)
            compiled = compile_gate(matrix, qubits, n)  # once per gate, as the env does per action
            dense = dense_operator(matrix, qubits, n)
            steps = {"ours": lambda s, g=compiled: apply_compiled(s, g), "dense": lambda s, d=dense: d @ s}
            starts = {"ours": start, "dense": start}
            # Fewer applications of the large dense products: the figure is per gate either way.
            n_gates = {"ours": args.gates, "dense": max(10, min(args.gates, args.gates * 256 // 4**n))}
            if Statevector is not None:
                operator = Operator(qiskit_matrix(name, matrix))
                steps["qiskit"] = lambda s, o=operator, q=list(qubits): s.evolve(o, qargs=q)
                starts["qiskit"], n_gates["qiskit"] = Statevector(start), args.gates
            timings, finals = time_per_gate(steps, starts, n_gates, args.repeats)
            # H and CX are involutions: after k applications the state is U^(k mod 2) start.
            expected = np.linalg.matrix_power(dense, args.gates % 2) @ start
            np.testing.assert_allclose(finals["ours"], expected, atol=1e-9)
            if Statevector is not None:
                np.testing.assert_allclose(finals["qiskit"].data, expected, atol=1e-9)
            results.add({"qubits": n, "gate": "H" if name == "h" else "CX", **timings})


def table(record: dict[str, Any]) -> str:
    args = record["args"]
    rows, slower_than_dense, has_qiskit = [], [], False
    for run in record["runs"]:
        n, ours, dense_us, qiskit = run["qubits"], run["ours"], run["dense"], run.get("qiskit")
        has_qiskit = qiskit is not None
        qiskit_cell = ratio_cell = "n/a"
        if has_qiskit:
            qiskit_cell, ratio_cell = f"{qiskit:.1f}", f"{qiskit / ours:.1f}x"
        if n >= 6 and ours >= dense_us:
            slower_than_dense.append(f"{run['gate'].lower()} on {n} qubits")
        rows.append(
            [
                n,
                run["gate"],
                f"{ours:.1f}",
                f"{dense_us:.1f}",
                qiskit_cell,
                f"{dense_us / ours:.1f}x",
                ratio_cell,
            ]
        )
    columns = (
        "qubits",
        "gate",
        "ours (us)",
        "dense (us)",
        "qiskit evolve (us)",
        "dense / ours",
        "qiskit / ours",
    )
    lines = [
        f"microseconds per gate, best of {args['repeats']} x {args['gates']} applications, one thread\n",
        markdown_table(columns, rows, "rlrrrrr"),
        "",
    ]
    if slower_than_dense:
        lines.append("slower than dense for n >= 6: " + ", ".join(slower_than_dense))
    else:
        lines.append("faster than the dense baseline for every n >= 6")
    if not has_qiskit:
        lines.append('qiskit not installed: pip install "gym-advrl[quantum]" for the qiskit column')
    return "\n".join(lines)


if __name__ == "__main__":
    main()
