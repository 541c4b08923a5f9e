"""A differentiable variational quantum circuit on a batched torch state vector.

The circuit follows the data re-uploading architecture of the quantum reinforcement-learning
papers (Jerbi et al. 2021, "Parametrized quantum policies for reinforcement learning"; Skolik et
al. 2022, "Quantum agents in the Gym"): starting from ``|0...0>``, each of ``n_layers`` layers

1. encodes the input ``x`` (in the first layer only, or in every layer with ``reuploading``):
   feature ``j`` becomes the rotation ``R_P(lambda_lj * f(x_j))`` on qubit ``j mod n``, with
   axis ``P = X, Y, Z`` for ``j // n = 0, 1, 2`` (so up to ``3 n`` features fit on ``n`` qubits),
   ``lambda`` a trainable input scaling (initialized to 1) and ``f`` the identity or ``arctan``
   (``input_transform``, Skolik et al.'s squashing of unbounded inputs);
2. applies trainable rotations ``RY(theta_lq0)`` then ``RZ(theta_lq1)`` on every qubit;
3. entangles neighbouring qubits with ``entangling_gate`` (CZ by default) on a ring or a line;

and returns the expectation values ``<psi(x)| O_k |psi(x)>`` of the Pauli-string observables.

Conventions are those of :mod:`gym_advrl.envs.quantum.statevector` (and Qiskit): little-endian
qubit order, ``R_P(a) = exp(-i a P / 2)`` with the Pauli matrices of ``statevector.PAULIS``, and
the entangling gates are ``statevector.TWO_QUBIT_GATES`` prepared by ``statevector.compile_gate``.
Observables are Qiskit Pauli labels, the rightmost letter acting on qubit 0, with an optional
sign: ``"ZZII"`` is ``Z_3 Z_2``, ``"-ZZZZ"`` its negation on four qubits.

Cost: every gate touches the ``2**n`` amplitudes of each sample once (the single-qubit gates of a
layer are fused into one ``2 x 2`` matrix per qubit and sample, the diagonal entanglers of a
layer into one phase vector), so a pass costs ``O(n_layers * n * 2**n)`` per sample, never
``O(4**n)``. Gradients come from backpropagation through the simulation (``gradient="backprop"``)
or from the parameter-shift rule (``gradient="parameter_shift"``): each rotation angle ``a``
enters one gate ``exp(-i a P / 2)``, so ``d<O>/da = (<O>(a + pi/2) - <O>(a - pi/2)) / 2``,
evaluated on the simulator as it would be on hardware; the angles' own dependence on the
parameters (``lambda_lj * f(x_j)``, ``theta``) is then differentiated by torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch as th
from torch import nn

from gym_advrl.envs.quantum.qasm import qasm_program, qasm_statement
from gym_advrl.envs.quantum.statevector import PAULIS, TWO_QUBIT_GATES, compile_gate
from gym_advrl.utils.validation import check_choice
from sb3_ext.common.validation import check_bool, check_positive_int

ENCODING_AXES = ("x", "y", "z")
#: The trainable rotations of each layer, in order, on every qubit.
VARIATIONAL_AXES = ("y", "z")
ENTANGLERS = ("ring", "line", "none")
ENTANGLING_GATES = ("cz", "cx")
INPUT_TRANSFORMS = ("none", "arctan")
GRADIENTS = ("backprop", "parameter_shift")
MAX_QUBITS = 20


class Rotation(NamedTuple):
    """One rotation gate of the circuit: its axis, qubit and the index of its angle."""

    layer: int
    axis: str
    qubit: int
    angle_index: int


def pauli_permutation(label: str, n_qubits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(source, phase)`` with ``(P psi)[i] = phase[i] * psi[source[i]]`` for the Pauli string
    ``label`` (Qiskit's order, optional leading sign), built from ``statevector.PAULIS``.

    A Pauli matrix has one non-zero entry per row, so a tensor product of them maps each basis
    state to one basis state times a phase.
    """
    sign = 1.0
    body = label
    if label[:1] in "+-":
        sign, body = (-1.0 if label[0] == "-" else 1.0), label[1:]
    if len(body) != n_qubits or any(letter not in "IXYZ" for letter in body):
        raise ValueError(
            f"observables: {label!r} is not a Pauli string of {n_qubits} letters from I, X, Y, Z "
            "(Qiskit's order, the rightmost letter on qubit 0; an optional leading + or -)"
        )
    index = np.arange(2**n_qubits)
    source, phase = index.copy(), np.full(2**n_qubits, sign, dtype=np.complex128)
    for qubit, letter in enumerate(reversed(body)):
        matrix = PAULIS[letter.lower()]
        row_bit = (index >> qubit) & 1
        column_bit = np.argmax(matrix != 0, axis=1)[row_bit]
        source = (source & ~(1 << qubit)) | (column_bit << qubit)
        phase = phase * matrix[row_bit, column_bit]
    return source, phase


def default_observables(n_outputs: int, n_qubits: int) -> tuple[str, ...]:
    """One observable per output.

    With at most ``n_qubits`` outputs: the Z product over a contiguous group of qubits, the groups
    splitting the qubits as evenly as possible (Skolik et al.'s CartPole read-out on 4 qubits:
    ``Z_0 Z_1`` and ``Z_2 Z_3``). With more: the first ``n_outputs`` Pauli strings by weight, then
    qubits, then letters (Z, X, Y): every single-qubit Z, X, Y, then the two-qubit products, ...
    """
    if not 1 <= n_outputs <= 4**n_qubits - 1:
        raise ValueError(
            f"the default observables need 1 <= outputs <= 4**n_qubits - 1 = {4**n_qubits - 1} (the "
            f"non-identity Pauli strings), got {n_outputs} outputs on {n_qubits} qubits"
        )
    labels = []
    if n_outputs <= n_qubits:
        bounds = np.linspace(0, n_qubits, n_outputs + 1).round().astype(int)
        for low, high in zip(bounds[:-1], bounds[1:], strict=True):
            letters = ["Z" if low <= qubit < high else "I" for qubit in range(n_qubits)]
            labels.append("".join(reversed(letters)))
        return tuple(labels)
    for weight in range(1, n_qubits + 1):
        for qubits in itertools.combinations(range(n_qubits), weight):
            for word in itertools.product("ZXY", repeat=weight):
                letters = ["I"] * n_qubits
                for qubit, letter in zip(qubits, word, strict=True):
                    letters[qubit] = letter
                labels.append("".join(reversed(letters)))
                if len(labels) == n_outputs:
                    return tuple(labels)
    raise AssertionError("unreachable: the bound above counts every string")


class _ParameterShift(th.autograd.Function):
    """Expectation values of the circuit as a function of its rotation angles, with the gradient
    of the parameter-shift rule."""

    @staticmethod
    def forward(ctx: Any, angles: th.Tensor, circuit: VariationalCircuit) -> th.Tensor:
        ctx.circuit = circuit
        ctx.save_for_backward(angles)
        return circuit.expectations_from_angles(angles)

    @staticmethod
    def backward(ctx: Any, grad_output: th.Tensor) -> tuple[th.Tensor, None]:
        (angles,) = ctx.saved_tensors
        batch, n_angles = angles.shape
        shift = th.eye(n_angles, dtype=angles.dtype, device=angles.device) * (math.pi / 2)
        shifted = th.cat([angles[:, None, :] + shift, angles[:, None, :] - shift], dim=1)
        with th.no_grad():
            values = ctx.circuit.expectations_from_angles(shifted.reshape(-1, n_angles))
        values = values.reshape(batch, 2, n_angles, -1)
        derivative = (values[:, 0] - values[:, 1]) / 2  # (batch, angles, outputs)
        return th.einsum("bo,bgo->bg", grad_output, derivative), None


class VariationalCircuit(nn.Module):
    """
    A data re-uploading variational quantum circuit returning expectation values (see the module
    docstring for the architecture and conventions).

    :param n_inputs: number of input features (at most ``3 n_qubits``)
    :param n_qubits: number of qubits (default: ``n_inputs``, at most 20)
    :param n_layers: number of encoding + variational + entangling layers
    :param observables: Pauli strings measured, one output each (default:
        :func:`default_observables` for ``n_outputs``)
    :param n_outputs: number of outputs when ``observables`` is left out
    :param encoding: ``"angle"``: one rotation per feature (the only encoding)
    :param reuploading: encode the input in every layer (else in the first only)
    :param entangler: ``"ring"``, ``"line"`` or ``"none"``
    :param entangling_gate: ``"cz"`` or ``"cx"`` (control the lower qubit)
    :param input_transform: ``"none"`` or ``"arctan"`` applied to the inputs before scaling
    :param gradient: ``"backprop"`` or ``"parameter_shift"``
    :param init_std: the variational angles start from ``N(0, init_std^2)``; ``None``: uniform
        in ``[0, 2 pi)`` as in Jerbi et al.
    """

    def __init__(
        self,
        n_inputs: int,
        n_qubits: int | None = None,
        n_layers: int = 5,
        observables: Sequence[str] | None = None,
        n_outputs: int | None = None,
        encoding: str = "angle",
        reuploading: bool = True,
        entangler: str = "ring",
        entangling_gate: str = "cz",
        input_transform: str = "none",
        gradient: str = "backprop",
        init_std: float | None = None,
    ) -> None:
        super().__init__()
        self.n_inputs = check_positive_int("n_inputs", n_inputs)
        n_qubits = n_inputs if n_qubits is None else n_qubits
        self.n_qubits = check_positive_int("n_qubits", n_qubits)
        if self.n_qubits > MAX_QUBITS:
            raise ValueError(f"n_qubits must be in [1, {MAX_QUBITS}], got {n_qubits}")
        if self.n_inputs > 3 * self.n_qubits:
            raise ValueError(
                f"n_inputs must be at most 3 * n_qubits = {3 * self.n_qubits} (one X, Y and Z rotation per "
                f"qubit), got {n_inputs}: add qubits"
            )
        self.n_layers = check_positive_int("n_layers", n_layers)
        self.encoding = check_choice("encoding", encoding, ("angle",))
        self.reuploading = check_bool("reuploading", reuploading)
        self.entangler = check_choice("entangler", entangler, ENTANGLERS)
        self.entangling_gate = check_choice("entangling_gate", entangling_gate, ENTANGLING_GATES)
        self.input_transform = check_choice("input_transform", input_transform, INPUT_TRANSFORMS)
        self.gradient = check_choice("gradient", gradient, GRADIENTS)
        if observables is None:
            observables = default_observables(1 if n_outputs is None else int(n_outputs), self.n_qubits)
        elif isinstance(observables, str) or len(observables) == 0:
            raise ValueError(
                f"observables must be a non-empty sequence of Pauli strings, got {observables!r}"
            )
        self.observables = tuple(str(label) for label in observables)
        if n_outputs is not None and n_outputs != len(self.observables):
            raise ValueError(f"n_outputs is {n_outputs} but {len(self.observables)} observables are given")
        self.n_outputs = len(self.observables)

        encoded_layers = self.n_layers if self.reuploading else 1
        self.input_scaling = nn.Parameter(th.ones(encoded_layers, self.n_inputs, dtype=th.float64))
        shape = (self.n_layers, self.n_qubits, len(VARIATIONAL_AXES))
        if init_std is None:
            initial = th.rand(shape, dtype=th.float64) * (2 * math.pi)
        else:
            initial = th.randn(shape, dtype=th.float64) * float(init_std)
        self.weights = nn.Parameter(initial)
        self.rotations = self._rotation_table()
        # Slots: each layer holds, per qubit, the encoding rounds (axis X, Y, Z for features
        # j // n = 0, 1, 2) then the variational axes; a slot without a gate has angle 0 (identity).
        # The rotations of a (layer, qubit) are fused into one 2x2 matrix, all qubits at once.
        self.n_slots = -(-self.n_inputs // self.n_qubits) + len(VARIATIONAL_AXES)
        self._slot_axes = [*ENCODING_AXES[: self.n_slots - len(VARIATIONAL_AXES)], *VARIATIONAL_AXES]
        self._slot_of_angle = th.as_tensor([self._slot(r) for r in self.rotations])
        self._register_constants()

    # ------------------------------------------------------------------ structure
    def _rotation_table(self) -> tuple[Rotation, ...]:
        """Every rotation gate in circuit order; its angle index orders :meth:`angles`' columns."""
        table = []
        for layer in range(self.n_layers):
            if layer == 0 or self.reuploading:
                for feature in range(self.n_inputs):
                    axis = ENCODING_AXES[feature // self.n_qubits]
                    table.append(Rotation(layer, axis, feature % self.n_qubits, len(table)))
            for qubit in range(self.n_qubits):
                for axis in VARIATIONAL_AXES:
                    table.append(Rotation(layer, axis, qubit, len(table)))
        return tuple(table)

    def _slot(self, rotation: Rotation) -> int:
        """Index of ``rotation``'s angle in the flattened ``(layer, slot, qubit)`` table."""
        position = rotation.angle_index - next(
            r.angle_index for r in self.rotations if r.layer == rotation.layer
        )
        if position < self.n_inputs and (rotation.layer == 0 or self.reuploading):
            slot = position // self.n_qubits  # the encoding round
        else:
            slot = self.n_slots - len(VARIATIONAL_AXES) + VARIATIONAL_AXES.index(rotation.axis)
        return (rotation.layer * self.n_slots + slot) * self.n_qubits + rotation.qubit

    def entangling_pairs(self) -> tuple[tuple[int, int], ...]:
        """The ``(control, target)`` pairs of each layer's entangler, in order."""
        n = self.n_qubits
        if self.entangler == "none" or n == 1:
            return ()
        pairs = [(q, q + 1) for q in range(n - 1)]
        if self.entangler == "ring" and n > 2:
            pairs.append((n - 1, 0))
        return tuple(pairs)

    def _register_constants(self) -> None:
        n = self.n_qubits
        paulis = {axis: th.as_tensor(PAULIS[axis]) for axis in ENCODING_AXES}
        self.register_buffer("_identity", th.eye(2, dtype=th.complex128), persistent=False)
        slot_paulis = th.stack([paulis[axis] for axis in self._slot_axes])  # (slots, 2, 2)
        self.register_buffer("_slot_paulis", slot_paulis[:, None], persistent=False)  # (slots, 1, 2, 2)
        # One layer's entangler as a phase vector (diagonal gates) or gathers (CX).
        gate = TWO_QUBIT_GATES[self.entangling_gate]
        compiled = [compile_gate(gate, pair, n) for pair in self.entangling_pairs()]
        self._entangler_terms: list[tuple[th.Tensor | None, th.Tensor | None]] = []
        phase = np.ones(2**n, dtype=np.complex128)
        for gate_terms in compiled:
            if len(gate_terms.terms) == 1 and gate_terms.terms[0][0] is None:
                coefficients = gate_terms.terms[0][1]
                phase = phase * (1 if coefficients is None else coefficients)
            else:
                self._flush_phase(phase)
                phase = np.ones(2**n, dtype=np.complex128)
                ((source, coefficients),) = gate_terms.terms
                self._entangler_terms.append(
                    (
                        th.as_tensor(source),
                        None if coefficients is None else th.as_tensor(coefficients),
                    )
                )
        self._flush_phase(phase)
        sources, phases = zip(*(pauli_permutation(label, n) for label in self.observables), strict=True)
        self.register_buffer("_observable_sources", th.as_tensor(np.stack(sources)), persistent=False)
        self.register_buffer("_observable_phases", th.as_tensor(np.stack(phases)), persistent=False)

    def _flush_phase(self, phase: np.ndarray) -> None:
        if not np.all(phase == 1):
            self._entangler_terms.append((None, th.as_tensor(phase)))

    # ------------------------------------------------------------------ simulation
    def transform_inputs(self, x: th.Tensor) -> th.Tensor:
        """``f(x)``: the inputs as float64, ``arctan``-squashed if so configured."""
        x = x.to(th.float64)
        return th.atan(x) if self.input_transform == "arctan" else x

    def angles(self, x: th.Tensor) -> th.Tensor:
        """Every rotation angle of the circuit for the inputs ``x (B, n_inputs)``: ``(B, G)`` in
        the order of :attr:`rotations` (encoding angles ``lambda * f(x)``, then the weights)."""
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"inputs must have shape (batch, {self.n_inputs}), got {tuple(x.shape)}")
        inputs = self.transform_inputs(x)
        batch = inputs.shape[0]
        columns = []
        for layer in range(self.n_layers):
            if layer == 0 or self.reuploading:
                columns.append(inputs * self.input_scaling[layer])
            columns.append(self.weights[layer].reshape(1, -1).expand(batch, -1))
        return th.cat(columns, dim=1)

    def states_from_angles(self, angles: th.Tensor) -> th.Tensor:
        """The circuit's output states ``(B, 2**n)`` for the rotation angles ``(B, G)``."""
        n, batch = self.n_qubits, angles.shape[0]
        slots = self._slot_of_angle.to(angles.device)
        table = angles.new_zeros(batch, self.n_layers * self.n_slots * n).index_copy(1, slots, angles)
        half = table.view(batch, self.n_layers, self.n_slots, n, 1, 1).to(th.float64) / 2
        # exp(-i a P / 2) = cos(a/2) I - i sin(a/2) P for every slot: (B, layers, slots, n, 2, 2).
        matrices = th.cos(half) * self._identity - 1j * th.sin(half) * self._slot_paulis
        state = th.zeros(batch, 2**n, dtype=th.complex128, device=angles.device)
        state[:, 0] = 1.0
        # unbind, not indexing: its backward stacks the gradients once instead of zero-filling a
        # full-size gradient per selected piece.
        for layer_matrices in matrices.unbind(dim=1):
            per_slot = layer_matrices.unbind(dim=1)  # each (B, n, 2, 2)
            fused = per_slot[0]
            for matrix in per_slot[1:]:
                fused = matrix @ fused
            for qubit, matrix in enumerate(fused.unbind(dim=1)):
                view = state.reshape(batch, 2 ** (n - 1 - qubit), 2, 2**qubit)
                state = th.einsum("bij,bhjl->bhil", matrix, view).reshape(batch, 2**n)
            for source, coefficients in self._entangler_terms:
                if source is not None:
                    state = state[:, source]
                if coefficients is not None:
                    state = state * coefficients
        return state

    def expectations_of_states(self, states: th.Tensor) -> th.Tensor:
        """``<psi| O_k |psi>`` for states ``(B, 2**n)``: ``(B, n_outputs)`` float64."""
        gathered = states[:, self._observable_sources] * self._observable_phases  # (B, O, 2**n): O psi
        return th.einsum("bi,boi->bo", states.conj(), gathered).real

    def expectations_from_angles(self, angles: th.Tensor) -> th.Tensor:
        return self.expectations_of_states(self.states_from_angles(angles))

    def forward(self, x: th.Tensor) -> th.Tensor:
        """The expectation values ``(B, n_outputs)`` (float64) for the inputs ``x (B, n_inputs)``."""
        angles = self.angles(x)
        if self.gradient == "parameter_shift":
            return _ParameterShift.apply(angles, self)
        return self.expectations_from_angles(angles)

    # ------------------------------------------------------------------ export
    def to_qasm(self, x: np.ndarray | Sequence[float]) -> str:
        """The circuit for one input ``x`` as OpenQASM 2.0, every angle bound to its value.

        ``qiskit.quantum_info.Statevector`` of the program, and the expectation values of
        :attr:`observables` in it, equal :meth:`forward`'s for ``x``.
        """
        inputs = th.as_tensor(np.asarray(x, dtype=np.float64).reshape(1, -1))
        with th.no_grad():
            angles = self.angles(inputs)[0].cpu().numpy()
        statements = []
        for layer in range(self.n_layers):
            for rotation in self.rotations:
                if rotation.layer == layer:
                    angle = float(angles[rotation.angle_index])
                    statements.append(qasm_statement(f"r{rotation.axis}", (rotation.qubit,), angle))
            statements += [qasm_statement(self.entangling_gate, pair) for pair in self.entangling_pairs()]
        return qasm_program(self.n_qubits, statements)

    def extra_repr(self) -> str:
        return (
            f"n_inputs={self.n_inputs}, n_qubits={self.n_qubits}, n_layers={self.n_layers}, "
            f"observables={self.observables}, reuploading={self.reuploading}, entangler={self.entangler!r}, "
            f"gradient={self.gradient!r}"
        )
