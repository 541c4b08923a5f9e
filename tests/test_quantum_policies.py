"""The variational circuit against independent references, and the VQC policies in SB3."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO

from gym_advrl.envs.quantum.statevector import PAULIS, TWO_QUBIT_GATES, dense_operator, gate_matrix
from sb3_ext.quantum import VariationalCircuit, VQCDQNPolicy, VQCPolicy
from sb3_ext.quantum.circuit import default_observables, pauli_permutation

CONFIGS = [
    {"n_inputs": 3, "n_layers": 2},
    {"n_inputs": 4, "n_layers": 3, "entangling_gate": "cx", "input_transform": "arctan"},
    {"n_inputs": 5, "n_qubits": 2, "n_layers": 2, "reuploading": False, "entangler": "line"},
    {"n_inputs": 2, "n_qubits": 3, "n_layers": 2, "entangler": "none", "observables": ["XYZ", "-ZIX"]},
    {"n_inputs": 1, "n_qubits": 1, "n_layers": 3},
]


def make_circuit(seed: int = 0, **kwargs) -> VariationalCircuit:
    th.manual_seed(seed)
    circuit = VariationalCircuit(**kwargs)
    with th.no_grad():  # input scalings away from 1 so that a mix-up of lambda and x shows
        circuit.input_scaling.uniform_(0.5, 1.5)
    return circuit


def reference_state(circuit: VariationalCircuit, x: np.ndarray) -> np.ndarray:
    """The circuit written gate by gate from the module docstring, applied as dense 2**n x 2**n
    matrices (``statevector.dense_operator``) in numpy."""
    n = circuit.n_qubits
    scaling = circuit.input_scaling.detach().numpy()
    weights = circuit.weights.detach().numpy()
    inputs = np.arctan(x) if circuit.input_transform == "arctan" else x
    state = np.zeros(2**n, dtype=np.complex128)
    state[0] = 1.0

    def apply(matrix: np.ndarray, qubits: tuple[int, ...]) -> None:
        nonlocal state
        state = dense_operator(matrix, qubits, n) @ state

    for layer in range(circuit.n_layers):
        if layer == 0 or circuit.reuploading:
            row = scaling[layer if circuit.reuploading else 0]
            for j, value in enumerate(inputs):
                apply(gate_matrix("r" + "xyz"[j // n], row[j] * value), (j % n,))
        for qubit in range(n):
            apply(gate_matrix("ry", weights[layer, qubit, 0]), (qubit,))
            apply(gate_matrix("rz", weights[layer, qubit, 1]), (qubit,))
        pairs = [] if circuit.entangler == "none" or n == 1 else [(q, q + 1) for q in range(n - 1)]
        if circuit.entangler == "ring" and n > 2:
            pairs.append((n - 1, 0))
        for pair in pairs:
            apply(TWO_QUBIT_GATES[circuit.entangling_gate], pair)
    return state


def dense_pauli(label: str) -> np.ndarray:
    sign = -1.0 if label.startswith("-") else 1.0
    matrix = np.ones((1, 1), dtype=np.complex128)
    for letter in label.lstrip("+-"):  # leftmost letter on the highest qubit
        matrix = np.kron(matrix, PAULIS[letter.lower()])
    return sign * matrix


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_states_and_expectations_equal_a_dense_gate_by_gate_reference(config: dict) -> None:
    circuit = make_circuit(**config)
    x = np.random.default_rng(1).normal(size=(4, circuit.n_inputs))
    with th.no_grad():
        states = circuit.states_from_angles(circuit.angles(th.as_tensor(x))).numpy()
        values = circuit(th.as_tensor(x)).numpy()
    for b in range(len(x)):
        expected = reference_state(circuit, x[b])
        np.testing.assert_allclose(states[b], expected, atol=1e-12)
        for k, label in enumerate(circuit.observables):
            np.testing.assert_allclose(
                values[b, k], np.vdot(expected, dense_pauli(label) @ expected).real, atol=1e-12
            )


@pytest.mark.parametrize("label", ["Z", "XI", "IY", "-ZZ", "+XYZ", "YXZI"])
def test_pauli_permutation_is_the_dense_pauli_string(label: str) -> None:
    n = len(label.lstrip("+-"))
    source, phase = pauli_permutation(label, n)
    psi = np.random.default_rng(0).normal(size=2**n) + 1j * np.random.default_rng(1).normal(size=2**n)
    np.testing.assert_allclose(phase * psi[source], dense_pauli(label) @ psi, atol=1e-14)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_backprop_gradients_equal_parameter_shift_gradients(config: dict) -> None:
    backprop = make_circuit(seed=3, **config)
    shift = make_circuit(seed=3, gradient="parameter_shift", **config)
    x = th.as_tensor(np.random.default_rng(2).normal(size=(5, backprop.n_inputs)))
    upstream = th.as_tensor(np.random.default_rng(3).normal(size=(5, backprop.n_outputs)))
    grads = [
        th.autograd.grad((circuit(x) * upstream).sum(), [circuit.weights, circuit.input_scaling])
        for circuit in (backprop, shift)
    ]
    for by_backprop, by_shift in zip(*grads, strict=True):
        assert by_backprop.abs().max() > 1e-3  # not a vacuous comparison
        np.testing.assert_allclose(by_shift.numpy(), by_backprop.numpy(), atol=1e-6)


def test_parameter_shift_rule_is_the_finite_difference_of_one_angle() -> None:
    circuit = make_circuit(n_inputs=2, n_layers=2, gradient="parameter_shift")
    angles = circuit.angles(th.as_tensor([[0.3, -0.7]])).detach().requires_grad_(True)
    from sb3_ext.quantum.circuit import _ParameterShift

    (grad,) = th.autograd.grad(_ParameterShift.apply(angles, circuit)[0, 0], [angles])
    eps = 1e-6
    for g in range(angles.shape[1]):
        bump = th.zeros_like(angles)
        bump[0, g] = eps
        with th.no_grad():
            diff = circuit.expectations_from_angles(angles + bump) - circuit.expectations_from_angles(
                angles - bump
            )
        assert grad[0, g].item() == pytest.approx(diff[0, 0].item() / (2 * eps), abs=1e-7)


@pytest.mark.parametrize("config", CONFIGS[:4], ids=str)
def test_expectations_equal_qiskit_on_the_exported_circuit(config: dict) -> None:
    qiskit = pytest.importorskip("qiskit")
    from qiskit.quantum_info import SparsePauliOp, Statevector

    circuit = make_circuit(**config)
    x = np.random.default_rng(4).normal(size=circuit.n_inputs)
    program = circuit.to_qasm(x)
    assert program.startswith('OPENQASM 2.0;\ninclude "qelib1.inc";\n')
    state = Statevector.from_instruction(qiskit.QuantumCircuit.from_qasm_str(program))
    with th.no_grad():
        values = circuit(th.as_tensor(x[None]))[0].numpy()
        ours = circuit.states_from_angles(circuit.angles(th.as_tensor(x[None])))[0].numpy()
    np.testing.assert_allclose(state.data, ours, atol=1e-12)
    for k, label in enumerate(circuit.observables):
        assert values[k] == pytest.approx(state.expectation_value(SparsePauliOp(label)).real, abs=1e-12)


def test_default_observables_split_the_qubits_into_z_products() -> None:
    assert default_observables(2, 4) == ("IIZZ", "ZZII")  # Skolik et al.: Z0 Z1 and Z2 Z3
    assert default_observables(1, 3) == ("ZZZ",)
    assert default_observables(3, 3) == ("IIZ", "IZI", "ZII")
    # More outputs than qubits: single-qubit Z, X, Y by qubit, then products by weight.
    assert default_observables(4, 2) == ("IZ", "IX", "IY", "ZI")
    assert default_observables(8, 2)[-2:] == ("ZZ", "XZ")
    assert len(set(default_observables(15, 2))) == 15
    with pytest.raises(ValueError, match="outputs <= 4\\*\\*n_qubits - 1 = 15"):
        default_observables(16, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_inputs": 0}, "n_inputs"),
        ({"n_inputs": 7, "n_qubits": 2}, "n_inputs must be at most 3 \\* n_qubits = 6"),
        ({"n_inputs": 2, "n_qubits": 21}, "n_qubits must be in \\[1, 20\\]"),
        ({"n_inputs": 2, "n_layers": 0}, "n_layers"),
        ({"n_inputs": 2, "encoding": "amplitude"}, "encoding"),
        ({"n_inputs": 2, "entangler": "all"}, "entangler"),
        ({"n_inputs": 2, "entangling_gate": "swap"}, "entangling_gate"),
        ({"n_inputs": 2, "input_transform": "tanh"}, "input_transform"),
        ({"n_inputs": 2, "gradient": "spsa"}, "gradient"),
        ({"n_inputs": 2, "observables": ["ZA"]}, "observables: 'ZA' is not a Pauli string of 2 letters"),
        ({"n_inputs": 2, "observables": ["ZZZ"]}, "observables"),
        ({"n_inputs": 2, "observables": "ZZ"}, "observables must be a non-empty sequence"),
        ({"n_inputs": 2, "observables": ["ZZ"], "n_outputs": 2}, "n_outputs is 2 but 1 observables"),
    ],
)
def test_bad_circuit_arguments_raise_value_errors_naming_them(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VariationalCircuit(**kwargs)


def test_inputs_of_the_wrong_shape_are_rejected() -> None:
    circuit = VariationalCircuit(3, n_layers=1)
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 3\)"):
        circuit(th.zeros(2, 4))


class SignBandit(gym.Env):
    """One-step task: observe ``(s, -s)`` with ``s = +-1``; action 1 pays 1 when ``s > 0``, action 0
    when ``s < 0``. Chance is 0.5."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.sign = 1.0 if self.np_random.random() < 0.5 else -1.0
        return np.array([self.sign, -self.sign], dtype=np.float32), {}

    def step(self, action):
        reward = float((action == 1) == (self.sign > 0))
        obs, _ = self.reset()
        return obs, reward, True, False, {}


def greedy_accuracy(model, n: int = 200) -> float:
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    obs = np.stack([signs, -signs], axis=1).astype(np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    return float(np.mean((actions == 1) == (signs > 0)))


@functools.cache
def trained_ppo() -> PPO:
    model = PPO(
        VQCPolicy,
        SignBandit(),
        learning_rate=0.05,
        n_steps=64,
        batch_size=32,
        n_epochs=4,
        seed=0,
        policy_kwargs={"circuit_kwargs": {"n_layers": 2}, "vf_net_arch": [16], "output_scale": 2.0},
    )
    return model.learn(512)


def test_ppo_with_a_vqc_policy_learns_the_bandit_above_chance() -> None:
    assert greedy_accuracy(trained_ppo()) == 1.0  # chance is 0.5
    probs = trained_ppo().policy.get_distribution(th.as_tensor([[1.0, -1.0]])).distribution.probs
    assert probs[0, 1].item() > 0.8


def test_vqc_policy_logits_are_the_scaled_expectations(tmp_path) -> None:
    policy_kwargs = {"output_scale": 3.0, "output_init": 0.5}
    model = PPO(VQCPolicy, SignBandit(), n_steps=8, batch_size=8, seed=1, policy_kwargs=policy_kwargs)
    head = model.policy.action_net
    obs = th.as_tensor([[0.2, -0.9], [1.0, 0.4]])
    with th.no_grad():
        expected = 0.5 * head.circuit(obs)  # the output weights start at output_init
        np.testing.assert_allclose(3.0 * head.output_weights.numpy(), [0.5, 0.5])
        logits = model.policy.get_distribution(obs).distribution.logits
    np.testing.assert_allclose(
        logits.numpy(), th.log_softmax(expected, dim=1).numpy().astype(np.float32), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("algo", [PPO, A2C])
def test_actor_critic_save_load_gives_identical_actions_and_values(algo, tmp_path) -> None:
    kwargs = {"n_steps": 16} if algo is A2C else {"n_steps": 16, "batch_size": 16}
    policy_kwargs = {"circuit_kwargs": {"n_layers": 2, "gradient": "parameter_shift"}, "vf_net_arch": [8]}
    model = algo(VQCPolicy, SignBandit(), seed=2, policy_kwargs=policy_kwargs, **kwargs).learn(32)
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model")
    obs = np.random.default_rng(0).uniform(-1, 1, size=(6, 2)).astype(np.float32)
    with th.no_grad():
        for a, b in [(model.policy, loaded.policy)]:
            pa = a.get_distribution(th.as_tensor(obs)).distribution.probs
            pb = b.get_distribution(th.as_tensor(obs)).distribution.probs
            np.testing.assert_array_equal(pa.numpy(), pb.numpy())
            np.testing.assert_array_equal(
                a.predict_values(th.as_tensor(obs)).numpy(), b.predict_values(th.as_tensor(obs)).numpy()
            )
    assert loaded.policy.action_net.circuit.gradient == "parameter_shift"


def test_dqn_with_a_vqc_q_network_saves_and_loads(tmp_path) -> None:
    model = DQN(
        VQCDQNPolicy,
        SignBandit(),
        learning_starts=8,
        batch_size=8,
        seed=3,
        policy_kwargs={"output_scale": 5.0, "circuit_kwargs": {"n_layers": 2, "observables": ["ZI", "IZ"]}},
    ).learn(32)
    model.save(tmp_path / "dqn")
    loaded = DQN.load(tmp_path / "dqn")
    obs = th.as_tensor(np.random.default_rng(1).uniform(-1, 1, size=(5, 2)).astype(np.float32))
    with th.no_grad():
        q = model.q_net(obs)
        np.testing.assert_array_equal(q.numpy(), loaded.q_net(obs).numpy())
        head = model.q_net.q_net
        np.testing.assert_allclose(
            q.numpy(), (5.0 * head.output_weights * head.circuit(obs)).numpy().astype(np.float32), rtol=1e-6
        )
    assert model.q_net_target.q_net.circuit.observables == ("ZI", "IZ")


def test_dqn_exact_update_of_the_circuit_q_network() -> None:
    """One DQN gradient step on a fixed batch: the new output weights equal an SGD step on the
    Huber TD loss computed here from the circuit's expectations."""
    model = DQN(
        VQCDQNPolicy,
        SignBandit(),
        learning_starts=0,
        batch_size=4,
        gamma=0.9,
        seed=4,
        learning_rate=0.1,
        policy_kwargs={
            "output_scale": 2.0,
            "circuit_kwargs": {"n_layers": 1},
            "optimizer_class": th.optim.SGD,
        },
    )
    model.learn(4)  # fills the buffer (learning_starts=0 already trains: start from its state)
    head = model.q_net.q_net
    obs = th.as_tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]])
    next_obs = obs.flip(0)
    actions = th.as_tensor([1, 0, 0, 1])
    rewards = th.as_tensor([1.0, 1.0, 0.0, 0.0])
    dones = th.as_tensor([1.0, 0.0, 1.0, 0.0])
    with th.no_grad():
        next_q = model.q_net_target(next_obs).max(dim=1).values
        target = rewards + 0.9 * (1 - dones) * next_q
        expectations = head.circuit(obs)
    weights = head.output_weights.detach().clone().requires_grad_(True)
    q_taken = (2.0 * weights * expectations).float().gather(1, actions[:, None])[:, 0]
    loss = th.nn.functional.smooth_l1_loss(q_taken, target.float())
    (grad,) = th.autograd.grad(loss, [weights])
    expected_weights = weights.detach() - 0.1 * grad

    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    batch = ReplayBufferSamples(obs, actions[:, None], next_obs, dones[:, None], rewards[:, None])
    model.replay_buffer.sample = lambda *args, **kwargs: batch
    model.policy.optimizer.param_groups[0]["lr"] = 0.1
    model._current_progress_remaining = 1.0
    model.train(gradient_steps=1, batch_size=4)
    np.testing.assert_allclose(
        head.output_weights.detach().numpy(), expected_weights.numpy(), rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: PPO(VQCPolicy, "Pendulum-v1"), "Discrete action space"),
        (lambda: PPO(VQCPolicy, SignBandit(), policy_kwargs={"net_arch": [8]}), "vf_net_arch, not net_arch"),
        (
            lambda: PPO(VQCPolicy, SignBandit(), policy_kwargs={"circuit_kwargs": {"depth": 2}}),
            "unknown circuit argument",
        ),
        (lambda: PPO(VQCPolicy, SignBandit(), policy_kwargs={"output_scale": 0.0}), "output_scale"),
        (lambda: DQN(VQCDQNPolicy, SignBandit(), policy_kwargs={"output_init": -1.0}), "output_init"),
        (lambda: DQN(VQCDQNPolicy, SignBandit(), policy_kwargs={"net_arch": [8]}), "net_arch is not used"),
        (
            lambda: DQN(
                VQCDQNPolicy, SignBandit(), policy_kwargs={"circuit_kwargs": {"observables": ["ZI"]}}
            ),
            "n_outputs is 2 but 1 observables",
        ),
    ],
)
def test_bad_policy_arguments_raise_value_errors(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()
