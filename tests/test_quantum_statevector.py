"""The QuantumGate-v0 state-vector core against a dense Kronecker-product reference: every
gate on every qubit placement, every two-qubit ordering, qubit order, batching, compiled-term
structure and norm preservation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_advrl.envs.quantum import QuantumGateEnv
from gym_advrl.envs.quantum.statevector import (
    apply_1q,
    apply_2q,
    apply_compiled,
    apply_gate,
    basis_state,
    compile_gate,
    dense_operator,
    gate_matrix,
)

I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]])
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1, -1])
P0, P1 = np.diag([1, 0]), np.diag([0, 1])
W = np.exp(1j * np.pi / 4)
TEXTBOOK_1Q = {
    "h": np.array([[1, 1], [1, -1]]) / np.sqrt(2),
    "x": X,
    "y": Y,
    "z": Z,
    "s": np.diag([1, 1j]),
    "sdg": np.diag([1, -1j]),
    "t": np.diag([1, W]),
    "tdg": np.diag([1, np.conj(W)]),
    "sx": np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2,
}


def textbook_rotation(name: str, angle: float) -> np.ndarray:
    pauli = {"rx": X, "ry": Y, "rz": Z}[name]
    return math.cos(angle / 2) * I2 - 1j * math.sin(angle / 2) * pauli  # exp(-i angle P / 2)


def kron_all(ops_by_qubit: dict[int, np.ndarray], n_qubits: int) -> np.ndarray:
    """Kronecker product with qubit n-1 leftmost (little-endian), identity on unlisted qubits."""
    out = np.ones((1, 1))
    for qubit in reversed(range(n_qubits)):
        out = np.kron(out, ops_by_qubit.get(qubit, I2))
    return out


def dense_reference(
    name: str, qubits: tuple[int, ...], n_qubits: int, angle: float = np.pi / 4
) -> np.ndarray:
    if name in TEXTBOOK_1Q:
        return kron_all({qubits[0]: TEXTBOOK_1Q[name]}, n_qubits)
    if name in ("rx", "ry", "rz"):
        return kron_all({qubits[0]: textbook_rotation(name, angle)}, n_qubits)
    a, b = qubits
    if name == "cx":  # |0><0|_control (x) I + |1><1|_control (x) X_target
        return kron_all({a: P0}, n_qubits) + kron_all({a: P1, b: X}, n_qubits)
    if name == "cz":
        return kron_all({a: P0}, n_qubits) + kron_all({a: P1, b: Z}, n_qubits)
    if name == "swap":  # (II + XX + YY + ZZ) / 2
        return sum(kron_all({a: p, b: p}, n_qubits) for p in (I2, X, Y, Z)) / 2
    raise AssertionError(name)


def operator_of(matrix: np.ndarray, qubits: tuple[int, ...], n_qubits: int) -> np.ndarray:
    """The full matrix the simulator implements: apply the gate to a batch of all basis states."""
    columns = apply_gate(np.eye(2**n_qubits, dtype=np.complex128), matrix, qubits, n_qubits)
    return columns.T


def random_state(rng: np.random.Generator, n_qubits: int) -> np.ndarray:
    state = rng.normal(size=2**n_qubits) + 1j * rng.normal(size=2**n_qubits)
    return state / np.linalg.norm(state)


ALL_1Q = sorted(TEXTBOOK_1Q) + ["rx", "ry", "rz"]
PAIRS_3 = list(itertools.permutations(range(3), 2))


@pytest.mark.parametrize("name", ALL_1Q)
def test_one_qubit_gates_equal_textbook_kron_on_every_qubit(name: str) -> None:
    for angle in (np.pi / 4, 0.3, -2.0):
        matrix = gate_matrix(name, angle)
        for qubit in range(3):
            reference = dense_reference(name, (qubit,), 3, angle)
            np.testing.assert_allclose(operator_of(matrix, (qubit,), 3), reference, atol=1e-12)
            np.testing.assert_allclose(dense_operator(matrix, (qubit,), 3), reference, atol=1e-12)


@pytest.mark.parametrize("name", ["cx", "cz", "swap"])
@pytest.mark.parametrize("pair", PAIRS_3)
def test_two_qubit_gates_equal_textbook_kron_for_every_ordering(name: str, pair: tuple[int, int]) -> None:
    reference = dense_reference(name, pair, 3)
    np.testing.assert_allclose(operator_of(gate_matrix(name), pair, 3), reference, atol=1e-12)
    np.testing.assert_allclose(dense_operator(gate_matrix(name), pair, 3), reference, atol=1e-12)


def test_every_env_action_equals_its_dense_reference() -> None:
    env = QuantumGateEnv(
        n_qubits=3,
        gates=["h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "cx", "cz", "swap"],
    )
    seen = set()
    for action in env.actions:
        reference = dense_reference(action.name, action.qubits, 3)
        np.testing.assert_allclose(operator_of(action.matrix, action.qubits, 3), reference, atol=1e-12)
        seen.add((action.name, action.qubits))
    assert {("cx", pair) for pair in PAIRS_3} <= seen  # every ordered CNOT is an action
    assert len(env.actions) == 12 * 3 + 6 + 3 + 3


def test_qubit_order_is_little_endian() -> None:
    for n in (1, 3, 5):
        for qubit in range(n):
            state = apply_1q(basis_state(n), gate_matrix("x"), qubit, n)
            assert np.flatnonzero(state).tolist() == [2**qubit]
    # CX with control 2, target 0 on |100> (index 4) gives |101> (index 5).
    assert np.flatnonzero(apply_2q(basis_state(3, 4), gate_matrix("cx"), (2, 0), 3)).tolist() == [5]


def test_norm_stays_one_over_10000_random_gates() -> None:
    rng = np.random.default_rng(0)
    n = 6
    names = ALL_1Q + ["cx", "cz", "swap"]
    state = basis_state(n)
    for _ in range(10_000):
        name = names[rng.integers(len(names))]
        if name in ("cx", "cz", "swap"):
            qubits = tuple(int(q) for q in rng.choice(n, size=2, replace=False))
        else:
            qubits = (int(rng.integers(n)),)
        state = apply_gate(state, gate_matrix(name, float(rng.uniform(-np.pi, np.pi))), qubits, n)
    assert abs(np.linalg.norm(state) - 1.0) < 1e-10


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5), seed=st.integers(0, 2**31 - 1), depth=st.integers(1, 8), batch=st.integers(1, 3))
def test_random_circuits_match_dense_products_batched(n: int, seed: int, depth: int, batch: int) -> None:
    rng = np.random.default_rng(seed)
    states = np.stack([random_state(rng, n) for _ in range(batch)])
    expected = states.copy()
    names = ALL_1Q + (["cx", "cz", "swap"] if n > 1 else [])
    for _ in range(depth):
        name = names[rng.integers(len(names))]
        width = 2 if name in ("cx", "cz", "swap") else 1
        qubits = tuple(int(q) for q in rng.choice(n, size=width, replace=False))
        angle = float(rng.uniform(-np.pi, np.pi))
        states = apply_gate(states, gate_matrix(name, angle), qubits, n)
        expected = expected @ dense_reference(name, qubits, n, angle).T
    np.testing.assert_allclose(states, expected, atol=1e-10)


@pytest.mark.parametrize(
    ("name", "n_terms", "gathers", "products"),
    [("x", 1, 1, 0), ("s", 1, 0, 1), ("rz", 1, 0, 1), ("h", 2, 1, 2), ("cx", 1, 1, 0), ("cz", 1, 0, 1),
     ("swap", 1, 1, 0)],
)  # fmt: skip
def test_compiled_gates_use_few_flat_terms(name: str, n_terms: int, gathers: int, products: int) -> None:
    n = 8
    qubits = (1,) if name in TEXTBOOK_1Q or name == "rz" else (6, 1)
    gate = compile_gate(gate_matrix(name), qubits, n)
    assert len(gate.terms) == n_terms
    assert sum(source is not None for source, _ in gate.terms) == gathers
    assert sum(coefficients is not None for _, coefficients in gate.terms) == products
    for source, coefficients in gate.terms:  # O(2**n) memory, never a 2**n x 2**n matrix
        for array in (source, coefficients):
            assert array is None or array.shape == (2**n,)
    state = random_state(np.random.default_rng(1), n)
    np.testing.assert_allclose(
        apply_compiled(state, gate), dense_reference(name, qubits, n) @ state, atol=1e-12
    )


def test_two_qubit_gates_get_one_term_per_flip_pattern_with_nonzero_entries() -> None:
    # H on the first qubit of the pair and the identity on the second: only the patterns "no
    # flip" and "flip the first qubit" have non-zero entries, so two terms, not one per pattern.
    gate = compile_gate(np.kron(TEXTBOOK_1Q["h"], I2), (2, 0), 3)
    assert len(gate.terms) == 2 and gate.qubits == (2, 0)
    state = random_state(np.random.default_rng(3), 3)
    np.testing.assert_allclose(
        apply_compiled(state, gate), kron_all({2: TEXTBOOK_1Q["h"]}, 3) @ state, atol=1e-12
    )


def test_compile_rejects_bad_gates() -> None:
    with pytest.raises(ValueError, match="matrix must have shape"):
        compile_gate(np.eye(4), (0,), 2)
    with pytest.raises(ValueError, match="qubit"):
        compile_gate(np.eye(2), (2,), 2)
    with pytest.raises(ValueError, match="two different qubits"):
        apply_2q(basis_state(2), gate_matrix("cx"), (1, 1), 2)
    with pytest.raises(ValueError, match="amplitudes"):
        apply_compiled(basis_state(3), compile_gate(gate_matrix("h"), (0,), 2))
