"""OpenQASM 2.0 text for circuits of the gates in :mod:`gym_advrl.envs.quantum.statevector`:
the writer shared by ``QuantumGateEnv.to_qasm`` and the variational circuits of ``sb3_ext``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

ROTATIONS = ("rx", "ry", "rz")


def qasm_angle(angle: float) -> str:
    """An angle as OpenQASM text: ``pi/4``, ``-3*pi/2`` for small rational multiples of pi, else
    the float's ``repr`` (exact)."""
    ratio = Fraction(angle / math.pi).limit_denominator(64)
    if abs(float(ratio) * math.pi - angle) > 1e-12:
        return repr(float(angle))
    if ratio == 0:
        return "0"
    sign = "-" if ratio < 0 else ""
    num, den = abs(ratio.numerator), ratio.denominator
    text = "pi" if num == 1 else f"{num}*pi"
    return f"{sign}{text}" if den == 1 else f"{sign}{text}/{den}"


def qasm_statement(name: str, qubits: Sequence[int], angle: float | None = None) -> str:
    """One gate statement, e.g. ``"rx(pi/4) q[1];"`` or ``"cx q[0],q[1];"`` (``angle`` for
    ``rx``, ``ry`` and ``rz`` only)."""
    if (name in ROTATIONS) != (angle is not None):
        raise ValueError(
            f"angle must be given for {ROTATIONS} and only for them; got {name!r} with angle={angle!r}"
        )
    head = f"{name}({qasm_angle(angle)})" if angle is not None else name
    return f"{head} " + ",".join(f"q[{q}]" for q in qubits) + ";"


def qasm_program(n_qubits: int, statements: Iterable[str]) -> str:
    """A complete OpenQASM 2.0 program on one register ``q`` of ``n_qubits`` qubits."""
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n_qubits}];", *statements]
    return "\n".join(lines) + "\n"
