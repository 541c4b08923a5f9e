"""Exact behaviour of the quantum gate-synthesis env and its state-vector simulator.

Complements test_quantum.py (reachability, noise statistics, QASM round trips, learning) and
test_quantum_statevector.py (gates against dense references) with the exact texts, labels,
error messages, bookkeeping and frames that those leave open.
"""

from __future__ import annotations

import colorsys
import copy
import math
import pickle

import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.envs.quantum import QuantumGateEnv
from gym_advrl.envs.quantum._render import _phase_colors, circuit_text
from gym_advrl.envs.quantum.env import MAX_DRAWN_OPS, named_target, qasm_angle
from gym_advrl.envs.quantum.qasm import qasm_program, qasm_statement
from gym_advrl.envs.quantum.statevector import (
    apply_2q,
    apply_compiled,
    basis_state,
    compile_gate,
    fidelity,
    gate_matrix,
    gate_num_qubits,
    pauli_errors,
)

PAULI = {
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "z": np.diag([1.0, -1.0]).astype(complex),
}


def action_index(env: QuantumGateEnv, label: str) -> int:
    return [a.label for a in env.actions].index(label)


def apply_label(state: np.ndarray, label: str, n_qubits: int) -> np.ndarray:
    """Apply a Pauli error label such as ``"y q[1]"`` with the simulator (a reference gate)."""
    letter, qubit = label.split(" ")
    return apply_compiled(state, compile_gate(PAULI[letter], (int(qubit[2:-1]),), n_qubits))


# ---------------------------------------------------------------------------- QASM angles
@pytest.mark.parametrize(
    ("angle", "text"),
    [
        (math.pi, "pi"),
        (-math.pi, "-pi"),
        (math.pi / 4, "pi/4"),
        (-math.pi / 2, "-pi/2"),
        (3 * math.pi / 4, "3*pi/4"),
        (2 * math.pi, "2*pi"),
        (-3 * math.pi / 2, "-3*pi/2"),
        (math.pi / 64, "pi/64"),
        (0.0, "0"),
        (0.7, "0.7"),
        (math.pi / 128, repr(math.pi / 128)),  # beyond the denominators written as fractions
        (math.pi / 65, repr(math.pi / 65)),
        (1e-12, "0"),  # within the 1e-12 tolerance of 0 (the bound included)
        (-1e-12, "0"),
        (2e-12, "2e-12"),
    ],
)
def test_qasm_angle_writes_small_rational_multiples_of_pi(angle: float, text: str) -> None:
    assert qasm_angle(angle) == text


def test_qasm_statements_take_an_angle_for_rotations_only() -> None:
    assert qasm_statement("rx", (1,), math.pi / 2) == "rx(pi/2) q[1];"
    assert qasm_statement("cx", (2, 0)) == "cx q[2],q[0];"
    message = r"^angle must be given for \('rx', 'ry', 'rz'\) and only for them; got 'rx' with angle=None$"
    with pytest.raises(ValueError, match=message):
        qasm_statement("rx", (0,))
    with pytest.raises(ValueError, match="^angle must be given for .* got 'h' with angle=0.1$"):
        qasm_statement("h", (0,), 0.1)
    assert qasm_program(1, ["h q[0];"]) == 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nh q[0];\n'


# ---------------------------------------------------------------------------- targets
def test_named_targets_are_the_textbook_states() -> None:
    r2 = 1 / math.sqrt(2)
    bell3 = np.zeros(8, dtype=complex)
    bell3[[0, 3]] = r2  # qubits 0 and 1 entangled, qubit 2 stays |0>
    np.testing.assert_array_equal(named_target("bell", 3), bell3)
    ghz3 = np.zeros(8, dtype=complex)
    ghz3[[0, 7]] = r2
    np.testing.assert_array_equal(named_target("ghz", 3), ghz3)
    np.testing.assert_allclose(named_target("plus", 3), np.full(8, 8**-0.5), rtol=1e-15)
    np.testing.assert_allclose(named_target("plus", 1), [r2, r2], rtol=1e-15)
    assert named_target("ghz", 2).dtype == np.complex128
    assert named_target("plus", 2).dtype == np.complex128 and named_target("plus", 1).dtype == np.complex128
    assert QuantumGateEnv(n_qubits=1).target_state.dtype == np.complex128
    for name in ("bell", "ghz"):
        with pytest.raises(ValueError, match=rf"target='{name}' needs n_qubits >= 2, got n_qubits=1"):
            named_target(name, 1)


@pytest.mark.parametrize(("n_qubits", "name"), [(1, "plus"), (2, "bell"), (3, "ghz"), (5, "ghz")])
def test_default_target_depends_on_the_number_of_qubits(n_qubits: int, name: str) -> None:
    env = QuantumGateEnv(n_qubits=n_qubits)
    assert env.target_name == name and not env.random_target
    np.testing.assert_array_equal(env.target_state, named_target(name, n_qubits))
    assert env.observation_space.shape == (2 * 2**n_qubits,)


def test_vector_targets_are_checked_and_normalized() -> None:
    vector = np.array([1.0, 0.0, 0.0, 1.0 + 1e-6]) / math.sqrt(2)  # norm 1 + 5e-7: accepted
    env = QuantumGateEnv(target=vector, render_mode="ansi")
    assert env.target_name == "vector"
    assert np.linalg.norm(env.target_state) == pytest.approx(1.0, abs=1e-15)
    env.reset()
    assert env.render().startswith("target: vector  fidelity: 0.5000  gates: 0\n")
    with pytest.raises(
        ValueError, match=r"^target vector must have shape \(4,\) for n_qubits=2, got \(2, 2\)"
    ):
        QuantumGateEnv(target=np.eye(2) / math.sqrt(2))
    with pytest.raises(ValueError, match=r"^target vector must have shape \(4,\) for n_qubits=2, got \(8,\)"):
        QuantumGateEnv(target=np.ones(8) / math.sqrt(8))
    with pytest.raises(ValueError, match="^target must be one of .* or a complex vector, got"):
        QuantumGateEnv(target=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"^target vector must be finite \(no NaN or inf\)"):
        QuantumGateEnv(target=[np.inf, 0, 0, 0])
    with pytest.raises(
        ValueError, match=r"^target vector must be normalized \(norm 1 within 1e-6\), got norm 1\.00001"
    ):
        QuantumGateEnv(target=np.array([1.0 + 1e-5, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"^target must be one of \('bell', 'ghz', 'plus', 'random'\)"):
        QuantumGateEnv(target="w")


def test_random_target_redraws_circuits_that_leave_the_start_state() -> None:
    # Z leaves |0> unchanged (fidelity 1, the threshold itself), X flips it: every drawn target
    # must be X|0> = |1>.
    env = QuantumGateEnv(n_qubits=1, target="random", gates=["z", "x"], target_depth=1, threshold=1.0)
    for seed in range(8):
        obs, info = env.reset(seed=seed)
        assert info["target_circuit"] == ("x q[0]",)
        np.testing.assert_array_equal(env.target_state, [0, 1])
        np.testing.assert_array_equal(obs, [1, 0, 0, 0, 0, 1, 0, 0])  # state, then target
        assert info["fidelity"] == 0.0
    with pytest.raises(gym.error.ResetNeeded, match="^A random target is drawn at reset"):
        QuantumGateEnv(target="random").target_state  # noqa: B018
    message = (
        r"target='random': 100 random circuits of target_depth=2 over gates=\('z', 's'\) all left "
        r"\|0\.\.\.0> within the threshold; use more gates or a deeper circuit"
    )
    with pytest.raises(ValueError, match=message):
        QuantumGateEnv(n_qubits=1, target="random", gates=["z", "s"], target_depth=2).reset(seed=0)


def test_a_noiseless_step_draws_no_randomness() -> None:
    """The next random target depends only on the seed, not on how many gates were applied."""
    stepped, fresh = QuantumGateEnv(target="random"), QuantumGateEnv(target="random")
    stepped.reset(seed=3)
    fresh.reset(seed=3)
    for action in range(10):
        stepped.step(action)
    stepped.reset()
    fresh.reset()
    np.testing.assert_array_equal(stepped.target_state, fresh.target_state)
    assert stepped.target_circuit == fresh.target_circuit


# ---------------------------------------------------------------------------- gates and actions
def test_gate_names_are_case_insensitive_with_aliases_and_checked() -> None:
    env = QuantumGateEnv(gates=["Hadamard", "CNOT", "RX"])
    assert env.gates == ("h", "cx", "rx")
    assert [a.label for a in env.actions] == [
        "h q[0]", "h q[1]", "cx q[0],q[1]", "cx q[1],q[0]", "rx q[0]", "rx q[1]",
    ]  # fmt: skip
    assert env.actions[4].qasm == "rx(pi/4) q[0];" and env.actions[2].qasm == "cx q[0],q[1];"
    assert QuantumGateEnv(n_qubits=1).gates == ("h", "x", "s", "t", "rx", "ry", "rz")
    with pytest.raises(ValueError, match=r"^gates must hold gate names \(str\), got 3"):
        QuantumGateEnv(gates=["h", 3])
    with pytest.raises(ValueError, match="^gates must be a non-empty sequence of gate names, got 'h'"):
        QuantumGateEnv(gates="h")
    with pytest.raises(ValueError, match="^gates must be a non-empty sequence of gate names, got 5"):
        QuantumGateEnv(gates=5)
    with pytest.raises(ValueError, match="^gates: unknown gate 'ccx'; allowed gates are"):
        QuantumGateEnv(gates=["ccx"])
    with pytest.raises(ValueError, match="^gates: 'swap' acts on 2 qubits but n_qubits=1"):
        QuantumGateEnv(n_qubits=1, gates=["swap"])
    with pytest.raises(ValueError, match="^gates must not repeat a gate, 'cx' appears twice"):
        QuantumGateEnv(gates=["cx", "cnot"])


def test_symmetric_two_qubit_gates_act_once_per_unordered_pair() -> None:
    env = QuantumGateEnv(n_qubits=3, gates=["cz", "swap", "cx", "ry"], rotation_angle=math.pi / 2)
    labels = [a.label for a in env.actions]
    assert labels[:6] == ["cz q[0],q[1]", "cz q[0],q[2]", "cz q[1],q[2]"] + [
        "swap q[0],q[1]", "swap q[0],q[2]", "swap q[1],q[2]",
    ]  # fmt: skip
    assert labels[6:12] == [f"cx q[{a}],q[{b}]" for a in range(3) for b in range(3) if a != b]
    assert labels[12:] == ["ry q[0]", "ry q[1]", "ry q[2]"]
    assert env.actions[12].qasm == "ry(pi/2) q[0];" and env.actions[3].qasm == "swap q[0],q[1];"
    assert env.action_space.n == 15
    assert all(a.qubits == tuple(int(q) for q in a.label.replace("q[", "").replace("]", "").split()[1].split(",")) for a in env.actions)  # fmt: skip
    # The default set on n qubits: 7 n one-qubit actions and n (n - 1) CNOTs.
    for n in (2, 3, 4):
        assert QuantumGateEnv(n_qubits=n).action_space.n == 7 * n + n * (n - 1)


def test_gate_helpers() -> None:
    assert [gate_num_qubits(g) for g in ("h", "sdg", "rz", "cx", "cz", "swap")] == [1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match=r"^unknown gate 'u3'; allowed gates are \('h', 'x'"):
        gate_num_qubits("u3")
    with pytest.raises(ValueError, match="^unknown gate"):
        gate_matrix("u3")
    x = gate_matrix("x")
    x[0, 0] = 5.0  # a copy: the gate table stays intact
    np.testing.assert_array_equal(gate_matrix("x"), [[0, 1], [1, 0]])
    cx = gate_matrix("cx")
    cx[:] = 0.0
    np.testing.assert_array_equal(gate_matrix("cx"), np.eye(4)[[0, 1, 3, 2]])
    np.testing.assert_allclose(
        gate_matrix("rz"), np.diag([np.exp(-1j * math.pi / 8), np.exp(1j * math.pi / 8)]), atol=1e-15
    )  # the default angle is pi/4
    # Every matrix is complex128, the real-valued ones (Ry, H, X, CX, ...) included.
    for name in ("h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "cx", "cz", "swap"):
        assert gate_matrix(name, 0.3).dtype == np.complex128, name
    np.testing.assert_allclose(gate_matrix("ry", math.pi), [[0, -1], [1, 0]], atol=1e-15)
    assert pauli_errors(1) == ("x", "y", "z")
    assert pauli_errors(2) == tuple(a + b for a in "ixyz" for b in "ixyz")[1:]
    state = basis_state(2, index=2, batch_shape=(3,))
    assert state.shape == (3, 4) and state.dtype == np.complex128
    np.testing.assert_array_equal(state, np.tile([0, 0, 1, 0], (3, 1)))
    np.testing.assert_array_equal(basis_state(1), [1, 0])


def test_fidelity_is_batched_and_conjugates_the_target() -> None:
    target = np.array([1, 1j]) / math.sqrt(2)
    states = np.array([[1, 1j], [1, -1j], [1, 0]]) / np.array([[math.sqrt(2)], [math.sqrt(2)], [1]])
    np.testing.assert_allclose(fidelity(states, target), [1.0, 0.0, 0.5], atol=1e-15)
    assert fidelity(states[0], target) == pytest.approx(1.0, abs=1e-15)
    assert type(fidelity(states[2], target)) is float  # a Python float for one state
    assert fidelity(states[2], target) == pytest.approx(0.5, abs=1e-15)


def test_simulator_argument_errors_and_real_input() -> None:
    with pytest.raises(ValueError, match=r"^qubits must hold one or two qubit indices, got \(0, 1, 2\)"):
        compile_gate(np.eye(8), (0, 1, 2), 3)
    with pytest.raises(ValueError, match=r"^qubit must be in \[0, 1\], got -1"):
        compile_gate(np.eye(2), (-1,), 2)
    with pytest.raises(ValueError, match=r"^qubit must be in \[0, 2\], got 3"):
        compile_gate(np.eye(4), (0, 3), 3)
    with pytest.raises(ValueError, match=r"^matrix must have shape \(4, 4\) for 2 qubit\(s\), got \(2, 2\)"):
        compile_gate(np.eye(2), (0, 1), 2)
    with pytest.raises(ValueError, match=r"^a two-qubit gate needs two different qubits, got 1 twice"):
        compile_gate(np.eye(4), (1, 1), 2)
    with pytest.raises(ValueError, match=r"^qubits must be a pair of qubit indices, got \(0,\)"):
        apply_2q(basis_state(2), gate_matrix("cx"), (0,), 2)
    with pytest.raises(ValueError, match=r"^state must have 4 amplitudes in its last axis, got shape \(8,\)"):
        apply_compiled(basis_state(3), compile_gate(gate_matrix("h"), (0,), 2))
    with pytest.raises(
        ValueError, match=r"^state must have 8 amplitudes in its last axis, got shape \(4,\)$"
    ):
        apply_compiled(basis_state(2), compile_gate(gate_matrix("h"), (0,), 3))
    # Real and integer matrices compile to complex128 coefficients (the tables of the vector env
    # and of the variational circuits are complex), and the gate keeps its qubits.
    for matrix, qubits in (
        (np.array([[1, 0], [0, -1]]), [np.int64(1)]),
        (np.array([[1.0, 1.0], [1.0, -1.0]]), (1,)),
    ):
        gate = compile_gate(matrix, qubits, 2)
        assert gate.qubits == (1,) and type(gate.qubits[0]) is int and gate.n_qubits == 2
        assert all(c is None or c.dtype == np.complex128 for _, c in gate.terms)
        assert any(c is not None for _, c in gate.terms)
    real = np.array([1.0, 0.0])  # float64 input: converted, not modified
    out = apply_compiled(real, compile_gate(gate_matrix("y"), (0,), 1))
    assert out.dtype == np.complex128
    np.testing.assert_array_equal(out, [0, 1j])
    np.testing.assert_array_equal(real, [1.0, 0.0])
    state = basis_state(1)  # identity-like gates return a new array, never the input
    for name in ("z", "s"):
        out = apply_compiled(state, compile_gate(gate_matrix(name), (0,), 1))
        assert out is not state
        out[0] = 7.0
        np.testing.assert_array_equal(state, [1, 0])
    identity = compile_gate(np.eye(2), (0,), 1)
    assert identity.terms == ((None, None),)
    out = apply_compiled(state, identity)
    assert out is not state and np.array_equal(out, state)


# ---------------------------------------------------------------------------- episode bookkeeping
def test_properties_and_calls_before_reset() -> None:
    env = QuantumGateEnv()
    with pytest.raises(gym.error.ResetNeeded, match="^Cannot read the state before reset"):
        env.state  # noqa: B018
    with pytest.raises(gym.error.ResetNeeded, match="^Cannot export a circuit before reset"):
        env.to_qasm()
    with pytest.raises(gym.error.ResetNeeded, match=r"^Cannot call step\(\) before reset\(\)"):
        env.step(0)
    env.reset()
    state = env.state
    state[0] = 0.0  # a copy
    assert env.state[0] == 1.0 and env.fidelity == pytest.approx(0.5)
    target = env.target_state
    target[:] = 0.0
    assert env.fidelity == pytest.approx(fidelity(env.state, env.target_state))


def test_info_keys_and_success_flag() -> None:
    env = QuantumGateEnv(target=[1, 0, 0, 0], threshold=1.0)
    _, info = env.reset()
    assert set(info) == {"fidelity", "is_success", "gates", "error"}
    assert info["is_success"] and info["fidelity"] == 1.0  # F >= threshold counts, F = 1 included
    flip = QuantumGateEnv(n_qubits=1, gates=["x"], target=[0, 1], threshold=1.0)
    flip.reset()
    _, reward, terminated, _, info = flip.step(0)
    assert info["fidelity"] == 1.0 and terminated and info["is_success"] and reward == 2.0
    _, info = QuantumGateEnv(target="random").reset(seed=0)
    assert set(info) == {"fidelity", "is_success", "gates", "error", "target_circuit"}


def test_rewards_telescope_and_the_success_bonus_is_paid_once() -> None:
    env = QuantumGateEnv()
    _, info = env.reset()
    fidelities, rewards = [info["fidelity"]], []
    for label in ("h q[1]", "h q[1]", "h q[0]", "cx q[0],q[1]"):
        _, reward, terminated, truncated, info = env.step(action_index(env, label))
        rewards.append(reward)
        fidelities.append(info["fidelity"])
        assert isinstance(reward, float) and isinstance(terminated, bool) and truncated is False
    assert terminated and info["is_success"]
    np.testing.assert_allclose(rewards, np.diff(fidelities) + [0, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(fidelities, [0.5, 0.25, 0.5, 0.25, 1.0], atol=1e-12)


def test_pauli_errors_are_recorded_and_exported_in_order() -> None:
    env = QuantumGateEnv(n_qubits=3, gates=["cx", "h"], noise_prob=1.0)
    env.reset(seed=5)
    expected = basis_state(3)
    lines = []
    for label in ("h q[2]", "cx q[2],q[0]", "h q[1]", "cx q[1],q[2]"):
        action = env.actions[action_index(env, label)]
        _, _, _, _, info = env.step(action_index(env, label))
        expected = apply_compiled(expected, action.compiled)
        lines.append(action.qasm)
        assert info["error"]
        for error in info["error"].split("; "):
            assert error.split(" ")[1] in [f"q[{q}]" for q in action.qubits]
            expected = apply_label(expected, error, 3)
            lines.append(error + ";")
    np.testing.assert_allclose(env.state, expected, atol=1e-12)
    qasm = env.to_qasm(include_noise=True).splitlines()
    assert qasm[:3] == ["OPENQASM 2.0;", 'include "qelib1.inc";', "qreg q[3];"] and qasm[3:] == lines
    assert env.to_qasm().splitlines()[3:] == [line for line in lines if "," in line or line.startswith("h")]
    assert env.to_qasm().endswith(";\n")


def test_gate_labels_are_an_immutable_tuple_like_view() -> None:
    env = QuantumGateEnv()
    env.reset()
    h0, cx = action_index(env, "h q[0]"), action_index(env, "cx q[0],q[1]")
    infos = [env.step(h0)[4], env.step(cx)[4], env.step(h0)[4]]
    gates = infos[-1]["gates"]
    expected = ("h q[0]", "cx q[0],q[1]", "h q[0]")
    assert len(gates) == 3 and tuple(gates) == expected and list(iter(gates)) == list(expected)
    assert gates[0] == "h q[0]" and gates[-1] == "h q[0]" and gates[1] == "cx q[0],q[1]"
    assert gates[1:] == expected[1:] and gates[::-1] == expected[::-1] and gates[5:] == ()
    with pytest.raises(IndexError):
        gates[3]  # noqa: B018
    assert infos[0]["gates"] == ("h q[0]",) and len(infos[0]["gates"]) == 1  # earlier views keep length
    with pytest.raises(IndexError):
        infos[0]["gates"][1]  # noqa: B018
    assert gates == list(expected) and gates != expected[:2] and gates != ("h q[0]", "x", "y")
    assert gates != "h q[0]" and (gates == 3) is False
    assert hash(gates) == hash(expected) and {gates: 1}[expected] == 1
    assert repr(gates) == repr(expected)
    assert pickle.loads(pickle.dumps(gates)) == expected and type(pickle.loads(pickle.dumps(gates))) is tuple
    assert copy.deepcopy(gates) == expected
    env.reset()
    env.step(cx)
    assert tuple(gates) == expected  # a reset starts new lists: the old view keeps its episode


# ---------------------------------------------------------------------------- rendering
def test_circuit_text_draws_every_kind_of_operation() -> None:
    ops = [("cz", (0, 2), False), ("swap", (2, 1), False), ("x", (1,), True), ("sdg", (0,), False)]
    assert circuit_text(ops, 3) == (
        "q[0]: ---@-------------Sdg--\n"
        "         |\n"
        "q[1]: ---|----x----~X-------\n"
        "         |    |\n"
        "q[2]: ---@----x-------------\n"
    )
    assert circuit_text([("cx", (1, 0), False), ("rz", (0,), False)], 2) == (
        "q[0]: ---X----Rz--\n         |\nq[1]: ---@--------\n"
    )
    assert circuit_text([], 1) == "q[0]: --\n"


def test_ansi_shows_the_last_operations_and_says_how_many_are_hidden() -> None:
    env = QuantumGateEnv(n_qubits=1, gates=["x", "h"], render_mode="ansi")
    env.reset()
    for _ in range(MAX_DRAWN_OPS):
        env.step(0)
    text = env.render()
    assert text.splitlines()[0] == "target: plus  fidelity: 0.5000  gates: 60"
    assert text.splitlines()[1] == "q[0]: -" + "--X--" * 60 + "-"
    env.step(1)
    assert env.render().splitlines()[0] == (
        "target: plus  fidelity: 1.0000  gates: 61  (first 1 operations not shown)"
    )
    env.step(1)
    header, wire = env.render().splitlines()
    assert header == "target: plus  fidelity: 0.5000  gates: 62  (first 2 operations not shown)"
    assert wire == "q[0]: -" + "--X--" * 58 + "--H--" * 2 + "-"


def test_ansi_marks_noise_with_a_tilde() -> None:
    env = QuantumGateEnv(n_qubits=1, gates=["h"], noise_prob=1.0, render_mode="ansi")
    env.reset(seed=0)
    error = env.step(0)[4]["error"]
    letter = error[0].upper()
    assert env.render().splitlines()[1] == f"q[0]: ---H----~{letter}--"


def test_phase_colours_are_the_hsv_colour_wheel() -> None:
    phases = np.linspace(-np.pi, np.pi, 97)[:-1]
    expected = [
        [int(255 * c) for c in colorsys.hsv_to_rgb((p + np.pi) / (2 * np.pi), 0.75, 0.9)] for p in phases
    ]
    np.testing.assert_array_equal(_phase_colors(phases).astype(int), expected)
    assert _phase_colors(phases).dtype == np.uint8
    np.testing.assert_array_equal(_phase_colors(np.array([np.pi])), _phase_colors(np.array([-np.pi])))


def _bar_row_runs(row: np.ndarray) -> dict[tuple[int, ...], int]:
    colors, counts = np.unique(row.reshape(-1, 3), axis=0, return_counts=True)
    return {tuple(int(v) for v in c): int(n) for c, n in zip(colors, counts, strict=True)}


def test_frame_fidelity_bar_fills_with_the_fidelity_and_turns_green_at_the_threshold() -> None:
    env = QuantumGateEnv(render_mode="rgb_array")
    env.reset()
    frame = env.render()
    assert frame.shape == (18 + 28 * 2 + 110 + 34, 400, 3) and frame.dtype == np.uint8
    # The bar row 18 pixels above the bottom: grey track, blue fill, black threshold tick.
    runs = _bar_row_runs(frame[-18])
    blue, grey, green = (66, 133, 244), (225, 225, 225), (60, 180, 75)
    assert set(runs) >= {blue, grey} and green not in runs
    assert runs[blue] / (runs[blue] + runs[grey] + runs.get((40, 40, 40), 0)) == pytest.approx(0.5, abs=0.01)
    fill_end = np.flatnonzero(np.all(frame[-18] == blue, axis=1)).max()
    tick = np.flatnonzero(np.all(frame[-18] == (40, 40, 40), axis=1))
    assert len(tick) == 2 and tick.min() > fill_end
    assert tick.tolist() == [385, 386]  # 2 wide around 16 + 374 * 0.99 = 386.3
    width = np.flatnonzero(np.any(frame[-18] != 255, axis=1))
    assert (tick.mean() - width.min()) / (width.max() + 1 - width.min()) == pytest.approx(0.99, abs=0.01)
    # The tick reaches 3 pixels beyond the bar on both sides; the bar is 20 pixels high.
    column = frame[:, tick[0]]
    assert np.all(column[-32:-4] == (40, 40, 40)) and np.all(column[-33] == 255) and np.all(column[-4] == 255)
    bar_column = frame[:, width.min() + 5]
    assert (
        np.all(bar_column[-28:-8] == blue)
        and np.all(bar_column[-29] == 255)
        and np.all(bar_column[-8] == 255)
    )
    env.step(action_index(env, "h q[0]"))
    env.step(action_index(env, "cx q[0],q[1]"))
    runs = _bar_row_runs(env.render()[-18])
    assert green in runs and grey not in runs and blue not in runs  # F = 1: full and green


def test_frame_bar_is_green_when_the_fidelity_equals_the_threshold() -> None:
    env = QuantumGateEnv(target=[1, 0, 0, 0], threshold=1.0, render_mode="rgb_array")
    env.reset()
    assert env.fidelity == 1.0
    runs = _bar_row_runs(env.render()[-18])
    assert (60, 180, 75) in runs and (66, 133, 244) not in runs
    assert len(env._ops()) == 0
    env.step(0)
    env.step(0)
    assert env._ops() == [("h", (0,), False)] * 2  # no argument: every operation


def test_frame_probability_bars_follow_the_state_and_the_target() -> None:
    env = QuantumGateEnv(render_mode="rgb_array")
    env.reset()
    frame = env.render()
    left, right = 16, 390
    centers = [int(left + (right - left) * (i + 0.5) / 4) for i in range(4)]
    base_row = frame.shape[0] - 40  # the probability axis, 40 pixels above the bottom

    def bar_height(image: np.ndarray, index: int) -> int:
        column = image[:base_row, centers[index]]
        colored = np.flatnonzero(np.any(column != 255, axis=1) & ~np.all(column == (40, 40, 40), axis=1))
        colored = colored[colored > 18 + 28 * 2]  # below the circuit
        return 0 if len(colored) == 0 else base_row - int(colored.min())

    full = bar_height(frame, 0)
    assert full == pytest.approx(110 - 16, abs=1) and [bar_height(frame, i) for i in (1, 2, 3)] == [0, 0, 0]
    assert tuple(frame[base_row - 10, centers[0]]) == tuple(_phase_colors(np.array([0.0]))[0])
    # Target ticks (black) at half height for |00> and |11> of the Bell target, at zero elsewhere.
    for index, level in zip(range(4), (0.5, 0.0, 0.0, 0.5), strict=True):
        column = frame[:, centers[index]]
        ticks = np.flatnonzero(np.all(column == (40, 40, 40), axis=1))
        ticks = ticks[(ticks > 18 + 28 * 2) & (ticks < base_row - 3)]  # above the axis line
        if level:
            assert abs(base_row - ticks.mean() - full * level) <= 1.5, index
        else:
            assert len(ticks) == 0, index
    env.step(action_index(env, "h q[0]"))  # |00> and |01> with probability 1/2 each
    env.step(action_index(env, "s q[0]"))  # the phase of |01> becomes pi/2
    frame = env.render()
    heights = [bar_height(frame, i) for i in range(4)]
    assert heights[0] == pytest.approx(full / 2, abs=1) and heights[1] == pytest.approx(full / 2, abs=1)
    assert heights[2:] == [0, 0]
    assert tuple(frame[base_row - 10, centers[1]]) == tuple(_phase_colors(np.array([np.pi / 2]))[0])
    # Bars sit within their slot: a white gap of at least one pixel between neighbours.
    row = frame[base_row - 10]
    assert np.all(row[int(left + (right - left) / 4)] == 255)


def test_frame_draws_gates_on_their_wires() -> None:
    env = QuantumGateEnv(n_qubits=3, gates=["h", "cx", "cz", "swap"], render_mode="rgb_array", noise_prob=0.0)
    env.reset()
    wire_rows = [18 + 28 * q for q in range(3)]  # rows from the top of the frame
    left, right = 16.0, 390.0
    col_w = (right - left - 10.0) / 20

    def x_of(column: int) -> int:
        return int(left + 10.0 + col_w * (column + 0.5))

    blank = env.render()
    assert np.all(blank[wire_rows[0], 20:380] == (150, 150, 150))  # the bare wire
    env.step(action_index(env, "h q[1]"))
    frame = env.render()
    assert tuple(frame[wire_rows[1], x_of(0)]) == (66, 133, 244)
    assert tuple(frame[wire_rows[0], x_of(0)]) == (150, 150, 150)
    box = np.flatnonzero(np.all(frame[wire_rows[1]] == (66, 133, 244), axis=1))
    assert abs(len(box) - min(col_w * 0.8, 18.0)) <= 1
    env.step(action_index(env, "cx q[2],q[0]"))  # control on wire 2, target (a ring) on wire 0
    frame = env.render()
    x = x_of(1)
    assert tuple(frame[wire_rows[1], x]) == (40, 40, 40)  # the vertical line crosses wire 1
    assert tuple(frame[wire_rows[2], x]) == (40, 40, 40)
    ring = frame[wire_rows[0] - 6 : wire_rows[0] + 7, x - 6 : x + 7]
    assert np.any(np.all(ring == 255, axis=-1))  # the white inside of the target ring
    assert tuple(frame[wire_rows[0] - 3, x - 3]) == (255, 255, 255)
    env.step(action_index(env, "cz q[0],q[1]"))
    frame = env.render()
    x = x_of(2)
    assert tuple(frame[wire_rows[0], x]) == (40, 40, 40) and tuple(frame[wire_rows[1], x]) == (40, 40, 40)
    assert tuple(frame[wire_rows[2], x]) == (150, 150, 150)
    assert tuple(frame[wire_rows[0] - 3, x - 3]) != (40, 40, 40)  # small dots, not rings
    env.step(action_index(env, "swap q[1],q[2]"))
    frame = env.render()
    x = x_of(3)
    for wire in (1, 2):  # a cross on each wire: ink on the diagonals, not beside the centre
        assert tuple(frame[wire_rows[wire] - 3, x - 3]) == (40, 40, 40)
        assert tuple(frame[wire_rows[wire] + 3, x - 3]) == (40, 40, 40)
        assert tuple(frame[wire_rows[wire], x + 5]) == (150, 150, 150)
    assert tuple(frame[wire_rows[0], x]) == (150, 150, 150)


def test_frame_layout_by_number_of_qubits_and_operations() -> None:
    # Probability bars up to 6 qubits (64 amplitudes), none beyond: the frame is 110 pixels lower.
    for n_qubits, height in ((6, 18 + 28 * 6 + 110 + 34), (7, 18 + 28 * 7 + 34)):
        env = QuantumGateEnv(n_qubits=n_qubits, target="plus", render_mode="rgb_array")
        env.reset()
        assert env.render().shape == (height, 400, 3)
    # The fidelity bar spans pixels 16 to 389 of the 400-pixel width.
    env = QuantumGateEnv(render_mode="rgb_array")
    env.reset()
    drawn = np.flatnonzero(np.any(env.render()[-18] != 255, axis=1))
    assert (drawn.min(), drawn.max()) == (16, 389)
    # Only the last 60 operations are drawn: an X applied first leaves the frame after 60 more gates.
    env = QuantumGateEnv(n_qubits=1, gates=["x", "h"], render_mode="rgb_array")
    env.reset()
    orange = (244, 160, 0)
    env.step(0)
    assert np.all(env.render()[18, 30:40] == orange)
    for _ in range(MAX_DRAWN_OPS - 1):
        env.step(1)
    assert np.any(np.all(env.render()[:40] == orange, axis=-1))
    env.step(1)
    assert not np.any(np.all(env.render()[:40] == orange, axis=-1))


INK, WIRE = (40, 40, 40), (150, 150, 150)


def _segment_mask(
    frame: np.ndarray, start: tuple[float, float], end: tuple[float, float], width: float
) -> np.ndarray:
    """Pixels whose centre lies within ``width / 2`` of a segment (a dot if it has no length), in
    frame units (y up from the bottom)."""
    height, frame_width = frame.shape[:2]
    xs, ys = (np.arange(frame_width) + 0.5)[None, :], (height - np.arange(height) - 0.5)[:, None]
    (ax, ay), (bx, by) = start, end
    dx, dy = bx - ax, by - ay
    length_sq = dx * dx + dy * dy
    t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / length_sq, 0.0, 1.0) if length_sq else 0.0
    return (xs - ax - t * dx) ** 2 + (ys - ay - t * dy) ** 2 <= (width / 2) ** 2


def _box_mask(frame: np.ndarray, x_min: float, y_min: float, x_max: float, y_max: float) -> np.ndarray:
    """Pixels whose centre lies in the box (bounds included), in frame units (y up from the bottom)."""
    height, frame_width = frame.shape[:2]
    xs, ys = (np.arange(frame_width) + 0.5)[None, :], (height - np.arange(height) - 0.5)[:, None]
    return (xs >= x_min) & (xs <= x_max) & (ys >= y_min) & (ys <= y_max)


def test_frame_cz_and_swap_symbols_pixel_by_pixel() -> None:
    """CZ: a dot of radius r / 2.5 on each wire; SWAP: on each wire a cross of two diagonals from
    (x - r/2, y - r/2) to (x + r/2, y + r/2) and from (x - r/2, y + r/2) to (x + r/2, y - r/2); both
    joined by a vertical line. Lines are 2 pixels wide, r = 0.4 * 364 / 20, wires 28 pixels apart."""
    env = QuantumGateEnv(n_qubits=2, gates=["cz", "swap"], render_mode="rgb_array")
    env.reset()
    env.step(action_index(env, "cz q[0],q[1]"))
    env.step(action_index(env, "swap q[0],q[1]"))
    frame = env.render()
    height = frame.shape[0]
    col_w = (390.0 - 16.0 - 10.0) / 20
    r = min(0.8 * col_w, 18.0) / 2
    wires = (height - 18.0, height - 46.0)
    expected = np.full(frame.shape, 255, dtype=np.uint8)
    for y in wires:
        expected[_segment_mask(frame, (16.0, y), (390.0, y), 2.0)] = WIRE
    for column, name in enumerate(("cz", "swap")):
        x = 16.0 + 10.0 + col_w * (column + 0.5)
        ink = _segment_mask(frame, (x, wires[0]), (x, wires[1]), 2.0)
        for y in wires:
            if name == "cz":
                ink |= _segment_mask(frame, (x, y), (x, y), 2 * r / 2.5)  # a dot: a zero-length segment
            else:
                ink |= _segment_mask(frame, (x - r / 2, y - r / 2), (x + r / 2, y + r / 2), 2.0)
                ink |= _segment_mask(frame, (x - r / 2, y + r / 2), (x + r / 2, y - r / 2), 2.0)
        expected[ink] = INK
    circuit = slice(0, 18 + 28 * 2)
    np.testing.assert_array_equal(frame[circuit], expected[circuit])


def test_frame_gate_columns_share_the_width_after_a_10_pixel_margin() -> None:
    # 20 columns over 390 - 16 - 10 = 364 pixels: the last box is centred at 26 + 18.2 * 19.5 = 380.9
    # with half-width 0.4 * 18.2 = 7.28, covering the pixel centres 374.5 .. 387.5.
    env = QuantumGateEnv(n_qubits=1, gates=["x", "h"], render_mode="rgb_array")
    env.reset()
    for _ in range(20):
        env.step(1)
    blue = np.flatnonzero(np.all(env.render()[18] == (66, 133, 244), axis=1))
    assert blue[-14:].tolist() == list(range(374, 388))
    assert blue[:14].tolist() == list(range(28, 42))  # the first box: 35.1 +- 7.28


def test_frame_probability_panel_pixel_by_pixel() -> None:
    """Slot i of the 4 spans x0 = 16 + 93.5 i .. x0 + 93.5. Its bar (the amplitude's phase colour)
    fills x0 + 1 .. x0 + 92.5 from the axis at y = 40 up to 40 + 94 p; its target tick is a
    2-pixel-wide line from x0 + 2 to x0 + 91.5 at 40 + 94 p_target; the axis, 1 pixel wide, runs
    from x = 16 to 390 (y counted up from the bottom of the frame)."""
    env = QuantumGateEnv(render_mode="rgb_array")
    env.reset()
    env.step(action_index(env, "h q[0]"))
    env.step(action_index(env, "s q[0]"))  # |00> and |01> with probability 1/2, the second with phase pi/2
    frame = env.render()
    expected = np.full(frame.shape, 255, dtype=np.uint8)
    colors = _phase_colors(np.array([0.0, np.pi / 2, 0.0, 0.0]))
    probs, target_probs = np.abs(env.state) ** 2, np.abs(env.target_state) ** 2
    np.testing.assert_allclose([probs, target_probs], [[0.5, 0.5, 0, 0], [0.5, 0, 0, 0.5]], atol=1e-15)
    for index, (p, target_p) in enumerate(zip(probs, target_probs, strict=True)):
        x0 = 16.0 + 93.5 * index
        if p > 1e-6:
            expected[_box_mask(frame, x0 + 1, 40.0, x0 + 92.5, 40.0 + 94 * p)] = colors[index]
        level = 40.0 + 94 * target_p
        expected[_segment_mask(frame, (x0 + 2, level), (x0 + 91.5, level), 2.0)] = INK
    expected[_segment_mask(frame, (16.0, 40.0), (390.0, 40.0), 1.0)] = INK
    panel = slice(frame.shape[0] - 150, frame.shape[0] - 32)  # y from 32 to 150, below the circuit
    np.testing.assert_array_equal(frame[panel], expected[panel])


def test_frame_symbols_of_two_qubit_gates_and_noise() -> None:
    """CX: a control dot (radius r / 2.5) and a ring (r, white inside r - 2) crossed by a plus;
    CZ: two dots; SWAP: a cross (half-diagonals r / 2) on each wire; all lines 2 pixels wide.
    Here r = 0.4 * 364 / 20 = 7.28 pixels and the wires are 28 pixels apart."""
    env = QuantumGateEnv(n_qubits=2, gates=["cx", "cz", "swap", "h"], render_mode="rgb_array", noise_prob=1.0)
    env.reset(seed=0)
    ink, wire, white = (40, 40, 40), (150, 150, 150), (255, 255, 255)
    top, bottom = 18, 18 + 28  # rows of the wires of qubits 0 and 1
    col_w = (400 - 10 - 16 - 10) / 20

    def center(column: int) -> float:  # the column's centre in pixel units, on pixel edges
        return 16 + 10 + col_w * (column + 0.5)

    def at(frame: np.ndarray, x: float, row: float) -> tuple[int, ...]:
        return tuple(int(v) for v in frame[int(row), int(x)])

    env.step(action_index(env, "cx q[0],q[1]"))
    frame = env.render()
    x = center(0)
    # The control dot on wire 0 (radius 2.9) and the vertical line (2 wide) down to the ring.
    assert (
        at(frame, x + 2.5, top) == ink and at(frame, x + 4.0, top) == wire and at(frame, x - 4.0, top) == wire
    )
    assert at(frame, x + 0.5, top + 14) == ink and at(frame, x + 1.5, top + 14) == white
    # The ring: ink between radius 5.28 and 7.28, white inside, plus lines 2 wide through it.
    assert at(frame, x + 4.5, bottom + 4.5) == ink and at(frame, x + 3.3, bottom + 3.3) == white
    assert at(frame, x - 5.0, bottom) == ink and at(frame, x + 5.0, bottom) == ink
    assert at(frame, x, bottom - 5.0) == ink and at(frame, x, bottom + 5.0) == ink
    assert at(frame, x - 4.0, bottom + 1.5) == white and at(frame, x + 1.5, bottom + 4.0) == white
    # The bare wire is 2 pixels wide.
    assert (
        at(frame, 300, top - 1) == wire and at(frame, 300, top) == wire and at(frame, 300, top - 2) == white
    )
    assert at(frame, 300, top + 1) == white
    env.step(action_index(env, "cz q[0],q[1]"))
    frame = env.render()
    x = center(env._ops(60).index(("cz", (0, 1), False)))
    for row in (top, bottom):
        assert at(frame, x + 2.0, row) == ink and at(frame, x + 4.0, row) == wire
    env.step(action_index(env, "swap q[0],q[1]"))
    frame = env.render()
    x = center(env._ops(60).index(("swap", (0, 1), False)))
    for row in (top, bottom):
        for dx, dy in ((2.5, 2.5), (-2.5, -2.5), (2.5, -2.5), (-2.5, 2.5)):
            assert at(frame, x + dx, row + dy) == ink, (dx, dy)
        assert at(frame, x + 5.5, row + 5.5) != ink and at(frame, x - 5.5, row - 5.5) != ink
        assert at(frame, x + 2.5, row) == wire and at(frame, x + 3.5, row + 1.5) != ink  # 2 wide
    # Noise: a red box a third of a gate box wide (half-width r / 3 against r / 2).
    ops = env._ops(60)
    noisy = [i for i, op in enumerate(ops) if op[2] and op[1] == (0,)]
    assert noisy
    x = center(noisy[0])
    red = np.flatnonzero(np.all(frame[top] == (230, 25, 75), axis=1))
    red = red[np.abs(red + 0.5 - x) < 8]  # the first noise box's pixels
    assert abs(red.mean() + 0.5 - x) < 1 and abs(len(red) - 2 * 14.56 / 3) <= 1
