"""Natively vectorized QuantumGate: a batched state vector, each instance with its own gate."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gym_advrl.envs.quantum.env import _MAX_TARGET_DRAWS, _PAULI_LETTERS, QuantumGateEnv
from gym_advrl.envs.quantum.statevector import apply_compiled, basis_state, pauli_errors
from gym_advrl.envs.vector._base import TemplateVectorEnv, check_num_envs, vector_metadata
from gym_advrl.envs.vector._streams import RawStream


def batched_fidelity(states: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``|<target_i|state_i>|^2`` for each row of ``states`` and ``targets`` (both ``(n, 2**q)``)."""
    return np.abs(np.einsum("ij,ij->i", np.conj(targets), states)) ** 2


class QuantumGateVectorEnv(TemplateVectorEnv):
    """``num_envs`` instances of :class:`~gym_advrl.envs.quantum.env.QuantumGateEnv` on one batched state vector.

    The states of all instances are one ``(num_envs, 2**n_qubits)`` complex128 array
    (:attr:`tensor_states` views it as ``(num_envs, 2, ..., 2)``); a step applies each instance's
    gate by grouping the instances that chose the same action, so the cost is one gate
    application per distinct action, whatever ``num_envs``. Instance ``i`` reproduces
    ``gym.make("AdvRL/QuantumGate-v0", ...)`` reset with the same seed and given the same
    actions, random targets and Pauli noise included.

    Infos carry ``fidelity``, ``is_success`` and ``error`` as arrays over instances. The single
    env's ``gates`` and ``target_circuit`` (Python sequences per step and instance) are left out:
    read them with :meth:`gate_labels`, :meth:`to_qasm` and :meth:`target_circuit`.

    :param env_kwargs: :class:`~gym_advrl.envs.quantum.env.QuantumGateEnv`'s arguments
        (``n_qubits``, ``target``, ``gates``, ``threshold``, ``noise_prob``, ...), checked by it
    The vector arguments ``num_envs``, ``max_episode_steps``, ``render_mode``, ``autoreset_mode``
    and ``render_envs`` are :class:`~gym_advrl.envs.vector.AdvRLVectorEnv`'s.
    """

    metadata = vector_metadata(["rgb_array", "ansi"], 4)
    single_env_class = QuantumGateEnv
    step_all_rows = False  # with Pauli noise only the instances that really step may draw
    reset_uses_generators = False  # random targets and noise come from a RawStream

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 20,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_envs: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        n = check_num_envs(num_envs)
        t = QuantumGateEnv(**env_kwargs)
        super().__init__(t, n, max_episode_steps, render_mode, autoreset_mode, render_envs)
        self.n_qubits, self.actions, self.threshold, self.noise_prob = (
            t.n_qubits,
            t.actions,
            t.threshold,
            t.noise_prob,
        )
        self.random_target, self.target_depth = t.random_target, t.target_depth
        # Without Pauli noise a step draws nothing: every row may step, finished ones included
        # (their results are discarded and their circuits restarted by the reset).
        self.step_all_rows = self.noise_prob == 0.0
        self._draws = self._add_stream(RawStream(self._rngs, keep_states=False))
        dim = 2**self.n_qubits
        self.states = basis_state(self.n_qubits, batch_shape=(n,))
        fixed = np.zeros(dim, dtype=np.complex128) if t._target is None else t._target
        self.targets = np.tile(fixed, (n, 1))
        self.fidelities = np.zeros(n)
        self._target_codes = np.zeros((n, self.target_depth), dtype=np.int64)
        # Each instance's circuit as codes (as the single env's ``_circuit``), grown on demand.
        self._circuits = np.zeros((n, 32), dtype=np.int64)
        self._circuit_length = np.zeros(n, dtype=np.int64)
        self._pauli_words = {width: pauli_errors(width) for width in (1, 2)}
        self._build_gate_tables()

    @property
    def tensor_states(self) -> np.ndarray:
        """The states as a ``(num_envs, 2, ..., 2)`` view (qubit ``n - 1`` first, as ``reshape`` gives)."""
        return self.states.reshape((self.num_envs,) + (2,) * self.n_qubits)

    def _build_gate_tables(self) -> None:
        """Every action's compiled terms as tables: ``(actions, terms, 2**n)`` gather indices and
        coefficients (a missing term: coefficient 0; an identity gather or unit coefficients made
        explicit). Memory is ``O(actions * 2**n)``, never ``O(4**n)``."""
        dim = 2**self.n_qubits
        terms = max(len(action.compiled.terms) for action in self.actions)
        sources = np.tile(np.arange(dim), (len(self.actions), terms, 1))
        coefficients = np.zeros((len(self.actions), terms, dim), dtype=np.complex128)
        for a, action in enumerate(self.actions):
            for t, (source, values) in enumerate(action.compiled.terms):
                if source is not None:
                    sources[a, t] = source
                coefficients[a, t] = 1.0 if values is None else values
        self._sources, self._coefficients = sources, coefficients

    def _apply_actions(self, states: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Apply action ``codes[k]`` to ``states[k]`` for every row at once.

        Each row gathers its amplitudes by its gate's terms and sums the scaled gathers, the
        products and sums of :func:`~gym_advrl.envs.quantum.statevector.apply_compiled` (a padded
        term adds an exact zero)."""
        dim = states.shape[1]
        # One flat gather: row k's amplitudes start at k * dim in the flattened states.
        flat = self._sources[codes] + (np.arange(len(codes)) * dim)[:, None, None]
        gathered = states.reshape(-1)[flat]
        gathered *= self._coefficients[codes]
        out = gathered[:, 0]
        for t in range(1, gathered.shape[1]):
            out += gathered[:, t]
        return out

    def _append(self, rows: np.ndarray, codes: np.ndarray) -> None:
        if len(rows) == 0:
            return
        needed = int(self._circuit_length[rows].max()) + 1
        if needed > self._circuits.shape[1]:
            grown = np.zeros((self.num_envs, 2 * needed), dtype=np.int64)
            grown[:, : self._circuits.shape[1]] = self._circuits
            self._circuits = grown
        self._circuits[rows, self._circuit_length[rows]] = codes
        self._circuit_length[rows] += 1

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        start = basis_state(self.n_qubits, batch_shape=(len(rows),))
        if self.random_target:
            self._draw_random_targets(rows)
        self.states[rows] = start
        self.fidelities[rows] = batched_fidelity(start, self.targets[rows])
        self._circuit_length[rows] = 0
        return {
            "fidelity": self.fidelities[rows].copy(),
            "is_success": self.fidelities[rows] >= self.threshold,
            "error": np.full(len(rows), None, dtype=object),
        }

    def _draw_random_targets(self, rows: np.ndarray) -> None:
        # As the single env: target_depth random gates from |0...0>, redrawn while the circuit
        # leaves the state within the threshold of |0...0>.
        todo = rows
        for _ in range(_MAX_TARGET_DRAWS):
            codes = np.empty((len(todo), self.target_depth), dtype=np.int64)
            for k in range(self.target_depth):
                codes[:, k] = self._draws.integers(todo, len(self.actions))
            states = basis_state(self.n_qubits, batch_shape=(len(todo),))
            for k in range(self.target_depth):
                states = self._apply_actions(states, codes[:, k])
            self.targets[todo] = states
            self._target_codes[todo] = codes
            start_fidelity = np.abs(states[:, 0]) ** 2  # |<0...0|state>|^2
            todo = todo[~(start_fidelity < self.threshold)]
            if not len(todo):
                return
        raise ValueError(
            f"target='random': {_MAX_TARGET_DRAWS} random circuits of target_depth={self.target_depth} "
            f"over gates={self.template.gates} all left |0...0> within the threshold; use more gates or a "
            "deeper circuit"
        )

    def _step_rows(self, actions: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict]:
        sel = slice(None) if rows is None else rows
        rows = self._all_rows if rows is None else rows
        states = self._apply_actions(self.states[sel], actions)
        self._append(rows, actions)
        error = np.full(len(rows), None, dtype=object)
        if self.noise_prob > 0.0:
            hit = np.flatnonzero(self._draws.random(rows) < self.noise_prob)
            for k in hit.tolist():  # rare when noise_prob is small: one instance at a time
                states[k], error[k] = self._pauli_error(int(rows[k]), states[k], int(actions[k]))
        self.states[sel] = states
        previous = self.fidelities[sel].copy()  # a view when sel is a slice
        fidelity = batched_fidelity(states, self.targets[sel])
        self.fidelities[sel] = fidelity
        terminated = fidelity >= self.threshold
        reward = fidelity - previous + np.where(terminated, 1.0, 0.0)
        return reward, terminated, {"fidelity": fidelity, "is_success": terminated.copy(), "error": error}

    def _pauli_error(self, i: int, state: np.ndarray, action: int) -> tuple[np.ndarray, str]:
        qubits = self.actions[action].qubits
        words = self._pauli_words[len(qubits)]
        word = words[int(self._draws.integers(np.array([i]), len(words))[0])]
        labels = []
        for letter, qubit in zip(word, qubits, strict=True):
            if letter == "i":
                continue
            code = len(self.actions) + len(_PAULI_LETTERS) * qubit + _PAULI_LETTERS.index(letter)
            state = apply_compiled(state, self.template._pauli_gate(code))
            self._append(np.array([i]), np.array([code]))
            labels.append(f"{letter} q[{qubit}]")
        return state, "; ".join(labels)

    def _observations(self) -> np.ndarray:
        dim = self.states.shape[1]
        obs = np.empty((self.num_envs, self.single_observation_space.shape[0]), dtype=np.float32)
        obs[:, :dim] = self.states.real
        obs[:, dim : 2 * dim] = self.states.imag
        if self.random_target:
            obs[:, 2 * dim : 3 * dim] = self.targets.real
            obs[:, 3 * dim :] = self.targets.imag
        return np.clip(obs, -1.0, 1.0, out=obs)

    # ------------------------------------------------------------------ circuits
    def _load(self, i: int, env: QuantumGateEnv | None = None) -> QuantumGateEnv:
        """Copy instance ``i`` into ``env`` (the template by default), whose methods then answer for it."""
        env = self.template if env is None else env
        circuit = self._circuits[i, : self._circuit_length[i]].tolist()
        env._state, env._target, env._fidelity = (
            self.states[i].copy(),
            self.targets[i].copy(),
            float(self.fidelities[i]),
        )
        env._circuit = circuit
        env._gate_codes = [code for code in circuit if code < len(self.actions)]
        if self.random_target:
            env.target_circuit = tuple(self.actions[c].label for c in self._target_codes[i].tolist())
        return env

    def gate_labels(self, i: int) -> tuple[str, ...]:
        """The labels of the gates instance ``i`` applied this episode (the single env's ``info["gates"]``)."""
        return tuple(self._load(i)._info()["gates"])

    def to_qasm(self, i: int, include_noise: bool = False) -> str:
        """Instance ``i``'s circuit as OpenQASM 2.0 (see :meth:`QuantumGateEnv.to_qasm`)."""
        return self._load(i).to_qasm(include_noise)

    def target_circuit(self, i: int) -> tuple[str, ...]:
        """The gates that prepared instance ``i``'s random target (empty for a fixed target)."""
        return self._load(i).target_circuit if self.random_target else ()

    # ------------------------------------------------------------------ rendering
    def _painter_state(self, painter: gym.Env, i: int) -> None:
        self._load(i, painter)
