"""Quantum state preparation by gate synthesis: ``AdvRL/QuantumGate-v0``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_advrl.envs._snapshot import SnapshotMixin
from gym_advrl.envs.quantum._circuit import GateLabels
from gym_advrl.envs.quantum._render import circuit_text, draw_frame
from gym_advrl.envs.quantum.qasm import ROTATIONS, qasm_program, qasm_statement
from gym_advrl.envs.quantum.qasm import qasm_angle as qasm_angle  # re-exported: its former home
from gym_advrl.envs.quantum.statevector import (
    PAULIS,
    CompiledGate,
    apply_compiled,
    basis_state,
    compile_gate,
    fidelity,
    gate_matrix,
    gate_num_qubits,
    pauli_errors,
)
from gym_advrl.utils.rendering import RenderMixin
from gym_advrl.utils.validation import (
    check_float,
    check_int,
    check_options,
    discrete_action,
    reject_unknown_kwargs,
)

#: The default gate set: H, X, S, T, Rx, Ry, Rz on every qubit and CNOT on every ordered pair.
DEFAULT_GATES: tuple[str, ...] = ("h", "x", "s", "t", "rx", "ry", "rz", "cx")
TARGET_NAMES: tuple[str, ...] = ("bell", "ghz", "plus", "random")
_ALIASES = {"cnot": "cx", "hadamard": "h"}
#: The time limit ``AdvRL/QuantumGate-v0`` is registered with (``gym_advrl.ENV_SPECS`` reads it
#: from here); it also bounds ``target_depth``, so that a random target is reachable in an episode.
MAX_EPISODE_STEPS = 20
#: A random target is redrawn while |0...0> already meets the threshold (at most this often).
_MAX_TARGET_DRAWS = 100
#: Rendered circuits (text and frames) show the last this many operations, so that the cost of
#: a frame does not grow with the episode.
MAX_DRAWN_OPS = 60
_PAULI_LETTERS = "xyz"


class GateAction(NamedTuple):
    """One action of the env: a gate placed on specific qubits."""

    name: str
    qubits: tuple[int, ...]
    matrix: np.ndarray
    label: str  #: e.g. ``"cx q[0],q[1]"``
    qasm: str  #: the OpenQASM 2.0 statement, e.g. ``"rx(pi/4) q[1];"``
    compiled: CompiledGate  #: prepared for :func:`~gym_advrl.envs.quantum.statevector.apply_compiled`


def build_actions(n_qubits: int, gates: Sequence[str], angle: float) -> tuple[GateAction, ...]:
    """The action table: each gate of ``gates`` on every qubit / every ordered qubit pair, in order."""
    actions = []
    for name in gates:
        matrix = gate_matrix(name, angle)
        rotation_angle = angle if name in ROTATIONS else None
        if gate_num_qubits(name) == 1:
            placements = [(q,) for q in range(n_qubits)]
        elif name == "cx":
            placements = [(a, b) for a in range(n_qubits) for b in range(n_qubits) if a != b]
        else:  # cz and swap are symmetric: one action per unordered pair
            placements = [(a, b) for a in range(n_qubits) for b in range(a + 1, n_qubits)]
        for qubits in placements:
            operands = ",".join(f"q[{q}]" for q in qubits)
            compiled = compile_gate(matrix, qubits, n_qubits)
            actions.append(
                GateAction(
                    name,
                    qubits,
                    matrix,
                    f"{name} {operands}",
                    qasm_statement(name, qubits, rotation_angle),
                    compiled,
                )
            )
    return tuple(actions)


def named_target(name: str, n_qubits: int) -> np.ndarray:
    """The state vector of a named target (``"bell"``, ``"ghz"`` or ``"plus"``)."""
    state = np.zeros(2**n_qubits, dtype=np.complex128)
    if name == "plus":
        return np.full(2**n_qubits, 2.0 ** (-n_qubits / 2.0), dtype=np.complex128)
    if n_qubits < 2:
        raise ValueError(
            f'target={name!r} needs n_qubits >= 2, got n_qubits={n_qubits}; use "plus" or a vector'
        )
    last = 0b11 if name == "bell" else 2**n_qubits - 1  # bell: qubits 0 and 1 entangled, others |0>
    state[0] = state[last] = 1.0 / math.sqrt(2.0)
    return state


class QuantumGateEnv(SnapshotMixin, RenderMixin, gym.Env):
    """
    ## Description

    Quantum state preparation by gate synthesis. Starting from ``|0...0>`` on ``n_qubits``
    qubits, the agent appends one gate per step to a circuit and must bring the state close to
    a target state: an entangled Bell or GHZ state, the uniform superposition ``|+...+>``, a
    random state reachable by a short random circuit, or any normalized vector.

    The simulation is an exact state vector (``gym_advrl.envs.quantum.statevector``): each
    gate is contracted with its qubits' axes of the ``(2,) * n`` tensor view of the state, never
    expanded to a ``2**n x 2**n`` matrix. Qubit order is little-endian, as in Qiskit: amplitude
    index ``sum_k b_k 2**k`` holds the basis state with qubit ``k`` in ``|b_k>``, so the state
    equals ``qiskit.quantum_info.Statevector`` of ``QuantumCircuit.from_qasm_str(env.to_qasm())``.

    With ``noise_prob > 0`` every gate is followed, with that probability, by a uniformly random
    non-identity Pauli error on the qubit(s) it acted on (1 of 3 on one qubit, 1 of 15 on a
    pair): a stochastic depolarizing channel. ``to_qasm(include_noise=True)`` includes the
    sampled errors, so the exported circuit reproduces the noisy state exactly.

    ## Action Space

    ``Discrete(len(env.actions))``. Actions enumerate ``gates`` in order, each on every qubit
    (``cx``: every ordered pair; ``cz``/``swap``: every unordered pair). With the default gate
    set on ``n`` qubits that is ``7 n + n (n - 1)`` actions: ``h, x, s, t, rx, ry, rz`` on
    qubits ``0..n-1``, then ``cx`` on ``(0,1), (0,2), ..., (n-1,n-2)`` as ``(control, target)``.
    ``env.unwrapped.actions[i].label`` names action ``i`` (e.g. ``"cx q[0],q[1]"``).

    ## Observation Space

    ``Box(-1, 1, (2 * 2**n,), float32)``: real parts then imaginary parts of the current state.
    With ``target="random"`` the target changes every episode and its real and imaginary parts
    are appended: ``(4 * 2**n,)``.

    ## Rewards

    The fidelity improvement ``F_t - F_{t-1}``, with ``F = |<target|state>|^2``, plus ``+1`` on
    the step that reaches ``F >= threshold``. The shaping terms telescope, so an episode's
    return is ``F_T - F_0`` (+1 on success).

    ## Starting State

    ``|0...0>``. A ``"random"`` target is redrawn at every reset (from ``target_depth`` uniformly
    random actions, redrawn while ``|0...0>`` already meets the threshold).

    ## Episode End

    Terminated when ``F >= threshold``; truncated after 20 steps when made with
    ``gym.make("AdvRL/QuantumGate-v0")``. Every named target is reachable well within 20 steps
    (Bell: 2 gates, GHZ: ``n`` gates, plus: ``n`` gates).

    ``info`` holds ``fidelity``, ``is_success``, ``gates`` (labels of the gates applied so far,
    an immutable sequence equal to their tuple, built in constant time per step), ``error`` (the
    Pauli error of this step, e.g. ``"z q[1]"``, or None) and, for random targets,
    ``target_circuit`` (the labels of the circuit that prepared the target).

    ## Arguments

    | Argument         | Default        | Meaning                                                          |
    |------------------|----------------|------------------------------------------------------------------|
    | `n_qubits`       | 2              | number of qubits, 1..10                                           |
    | `target`         | None           | ``"bell"`` (qubits 0 and 1, others stay ``|0>``), ``"ghz"``, ``"plus"``, ``"random"`` or a normalized complex vector of length ``2**n``; None: ``"bell"`` for 2 qubits, ``"ghz"`` for more, ``"plus"`` for 1 |
    | `gates`          | None           | gate names from ``h x y z s sdg t tdg sx rx ry rz cx cz swap``; None: ``h x s t rx ry rz cx`` |
    | `threshold`      | 0.99           | fidelity that ends the episode with success, in (0, 1]           |
    | `noise_prob`     | 0.0            | probability of a Pauli error after each gate, in [0, 1]          |
    | `target_depth`   | 10             | gates in the random circuit of a ``"random"`` target, 1..20 (the step limit) |
    | `rotation_angle` | pi/4           | angle of ``rx``, ``ry``, ``rz`` (finite)                         |
    | `render_mode`    | None           | ``"rgb_array"``, ``"ansi"`` (circuit diagram) or ``"human"``     |

    Other values (and unknown arguments) raise ``ValueError`` naming the argument. Each step
    costs the same however long the episode: the circuit is stored as action indices, and
    rendered circuits show the last 60 operations. ``get_state()`` / ``set_state(state)``
    snapshot and restore a running episode exactly (random target and generator included).

    ## Version History

    * v0: initial version. Later within v0: ``info["gates"]`` built in constant time, bounded
      rendering cost, unknown arguments rejected, snapshots.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4}
    _snapshot_attrs = ("_state", "_fidelity", "_circuit", "_gate_codes", "_target", "target_circuit")

    @reject_unknown_kwargs
    def __init__(
        self,
        render_mode: str | None = None,
        n_qubits: int = 2,
        target: str | Sequence[complex] | np.ndarray | None = None,
        gates: Sequence[str] | None = None,
        threshold: float = 0.99,
        noise_prob: float = 0.0,
        target_depth: int = 10,
        rotation_angle: float = math.pi / 4,
    ) -> None:
        self._init_render(render_mode)
        self.n_qubits = check_int("n_qubits", n_qubits, 1, 10)
        self.threshold = check_float("threshold", threshold, 0.0, 1.0, low_inclusive=False)
        self.noise_prob = check_float("noise_prob", noise_prob, 0.0, 1.0)
        # A random target must stay reachable within the registered step limit.
        self.target_depth = check_int("target_depth", target_depth, 1, MAX_EPISODE_STEPS)
        self.rotation_angle = check_float("rotation_angle", rotation_angle)
        self.gates = self._check_gates(gates)
        self.actions = build_actions(self.n_qubits, self.gates, self.rotation_angle)

        dim = 2**self.n_qubits
        self.target_name, fixed_target = self._check_target(target, dim)
        self.random_target = self.target_name == "random"
        self._target = fixed_target
        obs_size = (4 if self.random_target else 2) * dim
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(obs_size,), dtype=np.float32)
        self.action_space = spaces.Discrete(len(self.actions))

        self._state: np.ndarray | None = None
        self._fidelity = 0.0
        # The episode's circuit as codes: an action index, or len(actions) + 3 * qubit + k for
        # the Pauli error "xyz"[k] on that qubit. ``_gate_codes`` holds the actions only.
        self._circuit: list[int] = []
        self._gate_codes: list[int] = []
        self._labels = tuple(action.label for action in self.actions)
        self.target_circuit: tuple[str, ...] = ()
        self._pauli_gates: dict[int, CompiledGate] = {}

    # ------------------------------------------------------------------ argument checks
    def _check_gates(self, gates: Sequence[str] | None) -> tuple[str, ...]:
        if gates is None:
            return tuple(g for g in DEFAULT_GATES if self.n_qubits > 1 or gate_num_qubits(g) == 1)
        if isinstance(gates, str) or not isinstance(gates, Sequence | np.ndarray) or len(gates) == 0:
            raise ValueError(f"gates must be a non-empty sequence of gate names, got {gates!r}")
        names = []
        for gate in gates:
            if not isinstance(gate, str):
                raise ValueError(f"gates must hold gate names (str), got {gate!r}")
            name = _ALIASES.get(gate.lower(), gate.lower())
            try:
                width = gate_num_qubits(name)
            except ValueError as err:
                raise ValueError(f"gates: {err}") from None
            if width > self.n_qubits:
                raise ValueError(f"gates: {name!r} acts on {width} qubits but n_qubits={self.n_qubits}")
            if name in names:
                raise ValueError(f"gates must not repeat a gate, {name!r} appears twice")
            names.append(name)
        return tuple(names)

    def _check_target(self, target: Any, dim: int) -> tuple[str, np.ndarray | None]:
        if target is None:
            target = "plus" if self.n_qubits == 1 else ("bell" if self.n_qubits == 2 else "ghz")
        if isinstance(target, str):
            if target not in TARGET_NAMES:
                raise ValueError(f"target must be one of {TARGET_NAMES} or a state vector, got {target!r}")
            return target, None if target == "random" else named_target(target, self.n_qubits)
        try:
            vector = np.asarray(target, dtype=np.complex128).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(
                f"target must be one of {TARGET_NAMES} or a complex vector, got {target!r}"
            ) from None
        if vector.size != dim or np.ndim(target) != 1:
            raise ValueError(
                f"target vector must have shape ({dim},) for n_qubits={self.n_qubits}, got {np.shape(target)}"
            )
        if not np.all(np.isfinite(vector)):
            raise ValueError("target vector must be finite (no NaN or inf)")
        norm = float(np.linalg.norm(vector))
        if abs(norm - 1.0) > 1e-6:
            raise ValueError(f"target vector must be normalized (norm 1 within 1e-6), got norm {norm:.6g}")
        return "vector", vector / norm

    # ------------------------------------------------------------------ public helpers
    @property
    def state(self) -> np.ndarray:
        """A copy of the current state vector (complex128, little-endian qubit order)."""
        if self._state is None:
            raise gym.error.ResetNeeded("Cannot read the state before reset()")
        return self._state.copy()

    @property
    def target_state(self) -> np.ndarray:
        """A copy of the current target state vector."""
        if self._target is None:
            raise gym.error.ResetNeeded("A random target is drawn at reset(); call reset() first")
        return self._target.copy()

    @property
    def fidelity(self) -> float:
        """``|<target|state>|^2`` of the current state."""
        return self._fidelity

    def to_qasm(self, include_noise: bool = False) -> str:
        """The episode's circuit as OpenQASM 2.0 (``include_noise``: with the sampled Pauli errors)."""
        if self._state is None:
            raise gym.error.ResetNeeded("Cannot export a circuit before reset()")
        lines = []
        n_actions = len(self.actions)
        for code in self._circuit:
            if code < n_actions:
                lines.append(self.actions[code].qasm)
            elif include_noise:
                letter, qubit = self._pauli(code)
                lines.append(qasm_statement(letter, (qubit,)))
        return qasm_program(self.n_qubits, lines)

    def _pauli(self, code: int) -> tuple[str, int]:
        """``(letter, qubit)`` of the Pauli error with circuit code ``code``."""
        qubit, k = divmod(code - len(self.actions), len(_PAULI_LETTERS))
        return _PAULI_LETTERS[k], qubit

    def _ops(self, last: int | None = None) -> list[tuple[str, tuple[int, ...], bool]]:
        """The circuit (its ``last`` operations) as ``(gate name, qubits, is_noise)`` for drawing."""
        codes = self._circuit if last is None else self._circuit[-last:]
        n_actions = len(self.actions)
        ops = []
        for code in codes:
            if code < n_actions:
                ops.append((self.actions[code].name, self.actions[code].qubits, False))
            else:
                letter, qubit = self._pauli(code)
                ops.append((letter, (qubit,), True))
        return ops

    # ------------------------------------------------------------------ dynamics
    def _obs(self) -> np.ndarray:
        dim = self._state.shape[0]
        obs = np.empty(self.observation_space.shape, dtype=np.float32)
        obs[:dim] = self._state.real
        obs[dim : 2 * dim] = self._state.imag
        if self.random_target:
            obs[2 * dim : 3 * dim] = self._target.real
            obs[3 * dim :] = self._target.imag
        # Amplitudes have modulus <= 1 up to rounding; keep the float32 values inside the Box.
        return np.clip(obs, -1.0, 1.0, out=obs)

    def _info(self, error: str | None = None) -> dict[str, Any]:
        info = {
            "fidelity": self._fidelity,
            "is_success": self._fidelity >= self.threshold,
            "gates": GateLabels(self._gate_codes, len(self._gate_codes), self._labels),
            "error": error,
        }
        if self.random_target:
            info["target_circuit"] = self.target_circuit
        return info

    def _draw_random_target(self) -> None:
        start = basis_state(self.n_qubits)
        for _ in range(_MAX_TARGET_DRAWS):
            indices = self.np_random.integers(len(self.actions), size=self.target_depth)
            state = start
            for index in indices:
                state = apply_compiled(state, self.actions[index].compiled)
            if fidelity(start, state) < self.threshold:
                break
        else:
            raise ValueError(
                f"target='random': {_MAX_TARGET_DRAWS} random circuits of target_depth={self.target_depth} "
                f"over gates={self.gates} all left |0...0> within the threshold; use more gates or a deeper circuit"
            )
        self._target = state
        self.target_circuit = tuple(self.actions[i].label for i in indices)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        check_options(options, ())
        if self.random_target:
            self._draw_random_target()
        self._state = basis_state(self.n_qubits)
        self._fidelity = fidelity(self._state, self._target)
        # New lists (not cleared ones): earlier infos' ``gates`` views keep their episode.
        self._circuit, self._gate_codes = [], []
        self._render_human_step()
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._state is None:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        code = discrete_action(action, self.action_space)
        gate = self.actions[code]
        self._state = apply_compiled(self._state, gate.compiled)
        self._circuit.append(code)
        self._gate_codes.append(code)
        error = None
        if self.noise_prob > 0.0 and self.np_random.random() < self.noise_prob:
            error = self._apply_pauli_error(gate.qubits)
        previous, self._fidelity = self._fidelity, fidelity(self._state, self._target)
        terminated = self._fidelity >= self.threshold
        reward = self._fidelity - previous + (1.0 if terminated else 0.0)
        self._render_human_step()
        return self._obs(), float(reward), bool(terminated), False, self._info(error)

    def _pauli_gate(self, code: int) -> CompiledGate:
        if code not in self._pauli_gates:
            letter, qubit = self._pauli(code)
            self._pauli_gates[code] = compile_gate(PAULIS[letter], (qubit,), self.n_qubits)
        return self._pauli_gates[code]

    def _apply_pauli_error(self, qubits: tuple[int, ...]) -> str:
        words = pauli_errors(len(qubits))
        word = words[int(self.np_random.integers(len(words)))]
        labels = []
        for letter, qubit in zip(word, qubits, strict=True):
            if letter == "i":
                continue
            code = len(self.actions) + len(_PAULI_LETTERS) * qubit + _PAULI_LETTERS.index(letter)
            self._state = apply_compiled(self._state, self._pauli_gate(code))
            self._circuit.append(code)
            labels.append(f"{letter} q[{qubit}]")
        return "; ".join(labels)

    # ------------------------------------------------------------------ rendering
    def _render_ready(self) -> bool:
        return self._state is not None

    def _ansi(self) -> str:
        header = f"target: {self.target_name}  fidelity: {self._fidelity:.4f}  gates: {len(self._gate_codes)}"
        hidden = len(self._circuit) - MAX_DRAWN_OPS
        if hidden > 0:
            header += f"  (first {hidden} operations not shown)"
        return header + "\n" + circuit_text(self._ops(MAX_DRAWN_OPS), self.n_qubits)

    def _draw(self) -> np.ndarray:
        ops = self._ops(MAX_DRAWN_OPS)
        return draw_frame(ops, self.n_qubits, self._state, self._target, self._fidelity, self.threshold)
