"""A small, exact state-vector simulator for gates on one or two qubits.

Qubit ordering
--------------
Little-endian, as in Qiskit: the amplitude of the basis state with qubit ``k`` in state ``b_k``
sits at index ``sum_k b_k 2**k`` of the state vector. Qubit 0 is therefore the least
significant bit, and in the tensor view ``state.reshape((2,) * n)`` qubit ``k`` is axis
``n - 1 - k``. A state produced here equals ``qiskit.quantum_info.Statevector`` of the same
circuit element for element.

Two-qubit gate matrices are written in the textbook basis ``|b_a b_b>`` of their qubit pair
``(a, b)``, ``a`` the more significant: ``CX`` with ``qubits=(control, target)`` is
``[[1,0,0,0],[0,1,0,0],[0,0,0,1],[0,0,1,0]]`` whatever the positions of the two qubits.

How gates are applied
---------------------
A gate never becomes a ``2**n x 2**n`` matrix. In the tensor view ``(2,) * n`` of the state, a
one-qubit gate's ``2 x 2`` matrix is contracted with its qubit's axis and a two-qubit gate's
``(2, 2, 2, 2)`` tensor with its two qubits' axes; every other axis is untouched.
:func:`compile_gate` prepares that contraction once per gate as at most ``2**w`` flat gathers
and products (``w`` the gate's number of qubits, one term for permutation-like gates), so
applying a gate costs a few numpy calls on contiguous arrays: ``O(2**n)`` work and memory, and
a per-gate time close to numpy's call overhead for small states. Every function accepts leading
batch dimensions ``(..., 2**n)``, so a batch of states (for example a breadth-first search
frontier) is advanced in one call.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "CompiledGate",
    "FIXED_GATES",
    "PAULIS",
    "ROTATION_GATES",
    "TWO_QUBIT_GATES",
    "apply_1q",
    "apply_2q",
    "apply_compiled",
    "apply_gate",
    "basis_state",
    "compile_gate",
    "dense_operator",
    "fidelity",
    "gate_matrix",
    "gate_num_qubits",
    "pauli_errors",
]

_R2 = 1.0 / math.sqrt(2.0)
_COMPLEX = np.dtype(np.complex128)

#: Pauli matrices, the error alphabet of the stochastic depolarizing channel.
PAULIS: dict[str, np.ndarray] = {
    "i": np.eye(2, dtype=np.complex128),
    "x": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "z": np.array([[1, 0], [0, -1]], dtype=np.complex128),
}

#: Parameter-free one-qubit gates (OpenQASM 2.0 ``qelib1.inc`` names).
FIXED_GATES: dict[str, np.ndarray] = {
    "h": np.array([[_R2, _R2], [_R2, -_R2]], dtype=np.complex128),
    "x": PAULIS["x"],
    "y": PAULIS["y"],
    "z": PAULIS["z"],
    "s": np.diag([1.0, 1j]).astype(np.complex128),
    "sdg": np.diag([1.0, -1j]).astype(np.complex128),
    "t": np.diag([1.0, np.exp(1j * math.pi / 4)]).astype(np.complex128),
    "tdg": np.diag([1.0, np.exp(-1j * math.pi / 4)]).astype(np.complex128),
    "sx": 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=np.complex128),
}

#: One-qubit rotations ``exp(-i angle P / 2)`` for ``P`` in X, Y, Z (Qiskit's conventions).
ROTATION_GATES: tuple[str, ...] = ("rx", "ry", "rz")

#: Two-qubit gates in the basis ``|b_a b_b>`` of their qubit pair ``(a, b)``.
TWO_QUBIT_GATES: dict[str, np.ndarray] = {
    "cx": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=np.complex128),
    "cz": np.diag([1.0, 1.0, 1.0, -1.0]).astype(np.complex128),
    "swap": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.complex128),
}


def gate_num_qubits(name: str) -> int:
    """Number of qubits gate ``name`` acts on (1 or 2); ``ValueError`` for an unknown name."""
    if name in FIXED_GATES or name in ROTATION_GATES:
        return 1
    if name in TWO_QUBIT_GATES:
        return 2
    allowed = (*FIXED_GATES, *ROTATION_GATES, *TWO_QUBIT_GATES)
    raise ValueError(f"unknown gate {name!r}; allowed gates are {allowed}")


def gate_matrix(name: str, angle: float = math.pi / 4) -> np.ndarray:
    """The unitary of gate ``name`` (``angle`` is used by ``rx``, ``ry`` and ``rz`` only)."""
    gate_num_qubits(name)
    if name in FIXED_GATES:
        return FIXED_GATES[name].copy()
    if name in TWO_QUBIT_GATES:
        return TWO_QUBIT_GATES[name].copy()
    cos, sin = math.cos(angle / 2.0), math.sin(angle / 2.0)
    if name == "rx":
        return np.array([[cos, -1j * sin], [-1j * sin, cos]], dtype=np.complex128)
    if name == "ry":
        return np.array([[cos, -sin], [sin, cos]], dtype=np.complex128)
    return np.diag([np.exp(-0.5j * angle), np.exp(0.5j * angle)]).astype(np.complex128)


def basis_state(n_qubits: int, index: int = 0, batch_shape: tuple[int, ...] = ()) -> np.ndarray:
    """The computational basis state ``|index>`` on ``n_qubits`` qubits, complex128."""
    state = np.zeros((*batch_shape, 2**n_qubits), dtype=np.complex128)
    state[..., index] = 1.0
    return state


def _check_qubit(qubit: int, n_qubits: int) -> None:
    if not 0 <= qubit < n_qubits:
        raise ValueError(f"qubit must be in [0, {n_qubits - 1}], got {qubit}")


class CompiledGate(NamedTuple):
    """A gate prepared for repeated application to states of a fixed number of qubits.

    Applying it computes ``sum(coefficients * state[..., source] for source, coefficients in
    terms)``, where a ``None`` source means the state itself and ``None`` coefficients mean 1.
    """

    qubits: tuple[int, ...]
    n_qubits: int
    terms: tuple[tuple[np.ndarray | None, np.ndarray | None], ...]


def compile_gate(matrix: np.ndarray, qubits: Sequence[int], n_qubits: int) -> CompiledGate:
    """Prepare a one- or two-qubit unitary on ``qubits`` for :func:`apply_compiled`.

    In the ``(2,) * n`` tensor view the gate contracts only its own qubit axes:
    ``out[.., i, .., j, ..] = sum_kl U[ij, kl] psi[.., k, .., l, ..]``. The sum is regrouped by
    flip pattern ``(k, l) = (i ^ dk, j ^ dl)``: each pattern with a non-zero coefficient becomes
    one gather of the state with those qubit axes flipped and one product with a length-``2**n``
    vector of matrix entries. A gate with one non-zero entry per row (X, Y, Z, S, T, Rz, CX, CZ,
    SWAP) needs a single term, with no gather when it is diagonal and no product when its
    entries are 1; H, Rx, Ry and SX need two. Memory is ``O(2**n)`` per gate, never
    ``O(4**n)``. Few, flat, contiguous numpy calls keep the cost near numpy's per-call overhead
    for small states, where tiny matrix products or broadcasts would dominate.
    """
    qubits = tuple(int(q) for q in qubits)
    width = len(qubits)
    if width not in (1, 2):
        raise ValueError(f"qubits must hold one or two qubit indices, got {qubits}")
    for qubit in qubits:
        _check_qubit(qubit, n_qubits)
    if width == 2 and qubits[0] == qubits[1]:
        raise ValueError(f"a two-qubit gate needs two different qubits, got {qubits[0]} twice")
    matrix = np.asarray(matrix, dtype=np.complex128)
    if matrix.shape != (2**width, 2**width):
        raise ValueError(
            f"matrix must have shape {(2**width, 2**width)} for {width} qubit(s), got {matrix.shape}"
        )

    index = np.arange(2**n_qubits, dtype=np.intp)
    # The matrix row of every basis state: the bits of its gate qubits, first qubit most significant.
    row = np.zeros_like(index)
    for qubit in qubits:
        row = (row << 1) | ((index >> qubit) & 1)

    def source_of(columns: np.ndarray) -> np.ndarray | None:
        """Basis index whose gate-qubit bits are ``columns`` and other bits those of ``index``."""
        source = index.copy()
        for position, qubit in enumerate(qubits):
            bit = (columns >> (width - 1 - position)) & 1
            source = (source & ~(1 << qubit)) | (bit << qubit)
        return None if np.array_equal(source, index) else source

    def coefficients_of(values: np.ndarray) -> np.ndarray | None:
        return None if np.all(values == 1) else values

    nonzero = matrix != 0
    if np.all(nonzero.sum(axis=1) == 1):  # one entry per row: a phased permutation
        columns = np.argmax(nonzero, axis=1)[row]
        terms = [(source_of(columns), coefficients_of(matrix[row, columns]))]
    else:
        terms = []
        for pattern in range(2**width):
            values = matrix[row, row ^ pattern]
            if np.any(values != 0):
                terms.append((source_of(row ^ pattern), coefficients_of(values)))
    return CompiledGate(qubits, n_qubits, tuple(terms))


def apply_compiled(state: np.ndarray, gate: CompiledGate) -> np.ndarray:
    """Apply a :class:`CompiledGate` to ``state`` (shape ``(..., 2**n_qubits)``); returns a new array."""
    if state.shape[-1] != 1 << gate.n_qubits:
        raise ValueError(
            f"state must have {2**gate.n_qubits} amplitudes in its last axis, got shape {state.shape}"
        )
    if state.dtype != _COMPLEX:
        state = state.astype(_COMPLEX)
    source, coefficients = gate.terms[0]
    if source is None:
        out = state.copy() if coefficients is None else state * coefficients
    else:
        out = state.take(source, axis=-1)  # a fresh array: scale it in place
        if coefficients is not None:
            out *= coefficients
    for source, coefficients in gate.terms[1:]:  # further terms are flip patterns: always a gather
        term = state.take(source, axis=-1)
        if coefficients is not None:
            term *= coefficients
        out += term
    return out


def apply_1q(state: np.ndarray, matrix: np.ndarray, qubit: int, n_qubits: int) -> np.ndarray:
    """Apply a ``2 x 2`` unitary to ``qubit`` of ``state`` (shape ``(..., 2**n_qubits)``).

    Returns a new array; ``state`` is not modified.
    """
    return apply_compiled(state, compile_gate(matrix, (qubit,), n_qubits))


def apply_2q(state: np.ndarray, matrix: np.ndarray, qubits: Sequence[int], n_qubits: int) -> np.ndarray:
    """Apply a ``4 x 4`` unitary (basis ``|b_a b_b>``) to the qubit pair ``qubits = (a, b)``.

    Returns a new array; ``state`` is not modified.
    """
    if len(qubits) != 2:
        raise ValueError(f"qubits must be a pair of qubit indices, got {tuple(qubits)}")
    return apply_compiled(state, compile_gate(matrix, qubits, n_qubits))


def apply_gate(state: np.ndarray, matrix: np.ndarray, qubits: Sequence[int], n_qubits: int) -> np.ndarray:
    """Apply a one- or two-qubit unitary to ``qubits`` (length 1 or 2) of ``state``.

    For repeated use of the same gate, :func:`compile_gate` once and :func:`apply_compiled`.
    """
    return apply_compiled(state, compile_gate(matrix, qubits, n_qubits))


def fidelity(state: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """Pure-state fidelity ``|<target|state>|**2`` (batched over leading dimensions of ``state``)."""
    if np.ndim(state) == 1:
        return float(abs(np.vdot(target, state)) ** 2)
    return np.abs(np.asarray(state) @ np.conj(target)) ** 2


def pauli_errors(n_gate_qubits: int) -> tuple[str, ...]:
    """The non-identity Pauli strings on 1 or 2 qubits: ``('x', 'y', 'z')`` or the 15 pairs.

    A string's k-th letter acts on the gate's k-th qubit; ``'i'`` is the identity.
    """
    words = ("".join(word) for word in itertools.product("ixyz", repeat=n_gate_qubits))
    return tuple(word for word in words if word != "i" * n_gate_qubits)


def dense_operator(matrix: np.ndarray, qubits: Sequence[int], n_qubits: int) -> np.ndarray:
    """The full ``2**n x 2**n`` matrix of a gate, by Kronecker products (slow; reference only).

    Used by the tests and by the speed benchmark as the dense baseline. The gate matrix is
    expanded as ``sum U[ij, kl] |i><k|_a (x) |j><l|_b`` and each term placed by ``np.kron``
    with qubit ``n - 1`` leftmost (the little-endian order above).
    """
    qubits = [int(q) for q in qubits]
    width = len(qubits)
    units = np.eye(2, dtype=np.complex128)
    operator = np.zeros((2**n_qubits, 2**n_qubits), dtype=np.complex128)
    tensor = np.asarray(matrix, dtype=np.complex128).reshape((2,) * (2 * width))
    for index in itertools.product(range(2), repeat=2 * width):
        coefficient = tensor[index]
        if coefficient == 0:
            continue
        outs, ins = index[:width], index[width:]
        factors = [units] * n_qubits
        for position, qubit in enumerate(qubits):
            factors[qubit] = np.outer(units[outs[position]], units[ins[position]])
        term = np.ones((1, 1), dtype=np.complex128)
        for qubit in reversed(range(n_qubits)):
            term = np.kron(term, factors[qubit])
        operator += coefficient * term
    return operator
