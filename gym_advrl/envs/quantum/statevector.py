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
A gate never becomes a ``2**n x 2**n`` matrix. For a one-qubit gate the state is viewed as the
tensor ``(left, 2, right)`` (the ``(2,) * n`` view with the untouched axes on either side merged)
and the gate's ``2 x 2`` matrix is contracted with the middle axis: ``O(2**n)`` work and memory.
A two-qubit gate contracts its ``(2, 2, 2, 2)`` tensor with the two axes of its qubits in the
view ``(left, 2, middle, 2, right)``. Every function accepts leading batch dimensions
``(..., 2**n)``, so a batch of states (for example a breadth-first search frontier) is advanced
in one call.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "FIXED_GATES",
    "PAULIS",
    "ROTATION_GATES",
    "TWO_QUBIT_GATES",
    "apply_1q",
    "apply_2q",
    "apply_gate",
    "basis_state",
    "dense_operator",
    "fidelity",
    "gate_matrix",
    "gate_num_qubits",
    "pauli_errors",
]

_R2 = 1.0 / math.sqrt(2.0)

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


def apply_1q(state: np.ndarray, matrix: np.ndarray, qubit: int, n_qubits: int) -> np.ndarray:
    """Apply a ``2 x 2`` unitary to ``qubit`` of ``state`` (shape ``(..., 2**n_qubits)``).

    Returns a new array; ``state`` is not modified.
    """
    _check_qubit(qubit, n_qubits)
    left, right = 2 ** (n_qubits - 1 - qubit), 2**qubit
    tensor = state.reshape((*state.shape[:-1], left, 2, right))
    # (2, 2) @ (..., left, 2, right): numpy broadcasts the matrix over the (..., left) axes and
    # contracts its column index with the qubit's axis.
    return np.matmul(matrix, tensor).reshape(state.shape)


def apply_2q(state: np.ndarray, matrix: np.ndarray, qubits: Sequence[int], n_qubits: int) -> np.ndarray:
    """Apply a ``4 x 4`` unitary (basis ``|b_a b_b>``) to the qubit pair ``qubits = (a, b)``.

    Returns a new array; ``state`` is not modified.
    """
    qubit_a, qubit_b = int(qubits[0]), int(qubits[1])
    _check_qubit(qubit_a, n_qubits)
    _check_qubit(qubit_b, n_qubits)
    if qubit_a == qubit_b:
        raise ValueError(f"a two-qubit gate needs two different qubits, got {qubit_a} twice")
    high, low = max(qubit_a, qubit_b), min(qubit_a, qubit_b)
    # The (2,) * n view with the untouched axes merged: (..., left, 2_high, middle, 2_low, right).
    shape = (*state.shape[:-1], 2 ** (n_qubits - 1 - high), 2, 2 ** (high - low - 1), 2, 2**low)
    gate = matrix.reshape(2, 2, 2, 2)  # (out_a, out_b, in_a, in_b)
    if qubit_a < qubit_b:
        gate = gate.transpose(1, 0, 3, 2)  # index order (high, low) as in the view
    # Contract the gate's input indices (k, l) with the two qubit axes (b, d).
    out = np.einsum("ijkl,...akblc->...aibjc", gate, state.reshape(shape))
    return out.reshape(state.shape)


def apply_gate(state: np.ndarray, matrix: np.ndarray, qubits: Sequence[int], n_qubits: int) -> np.ndarray:
    """Apply a one- or two-qubit unitary to ``qubits`` (length 1 or 2) of ``state``."""
    if len(qubits) == 1:
        return apply_1q(state, matrix, int(qubits[0]), n_qubits)
    if len(qubits) == 2:
        return apply_2q(state, matrix, qubits, n_qubits)
    raise ValueError(f"qubits must hold one or two qubit indices, got {tuple(qubits)}")


def fidelity(state: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """Pure-state fidelity ``|<target|state>|**2`` (batched over leading dimensions of ``state``)."""
    overlap = np.abs(np.tensordot(state, np.conj(target), axes=((-1,), (-1,)))) ** 2
    return float(overlap) if np.ndim(overlap) == 0 else overlap


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
