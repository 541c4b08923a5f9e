"""QuantumGate-v0: reachability by breadth-first search, rewards and observations, noise
statistics, QASM export and round trip through qiskit, rendering, argument checks and a DQN
learning test. The simulator's physics is tested in test_quantum_statevector.py."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.envs.quantum import QuantumGateEnv
from gym_advrl.envs.quantum.env import MAX_EPISODE_STEPS
from gym_advrl.envs.quantum.statevector import apply_compiled, basis_state


# ---------------------------------------------------------------------------- reachability
def bfs_min_depth(env: QuantumGateEnv, max_depth: int) -> int | None:
    """Fewest env actions from |0...0> to fidelity >= threshold, by breadth-first search.

    Each depth advances the whole frontier through every action at once; states already seen
    (amplitudes rounded to 1e-9) are dropped.
    """
    target = env.target_state
    frontier = basis_state(env.n_qubits)[None, :]
    seen = {np.round(frontier[0], 9).tobytes()}
    for depth in range(1, max_depth + 1):
        children = np.concatenate([apply_compiled(frontier, a.compiled) for a in env.actions])
        if np.any(np.abs(children @ np.conj(target)) ** 2 >= env.threshold):
            return depth
        keys = [np.round(child, 9).tobytes() for child in children]
        fresh = [i for i, key in enumerate(keys) if key not in seen]
        seen.update(keys[i] for i in fresh)
        frontier = children[fresh]
    return None


@pytest.mark.parametrize(
    ("n_qubits", "target", "depth"),
    [(1, None, 1), (2, None, 2), (2, "plus", 2), (3, None, 3), (3, "plus", 3), (3, "bell", 2)],
)
def test_default_targets_reachable_by_bfs(n_qubits: int, target: str | None, depth: int) -> None:
    env = gym.make("AdvRL/QuantumGate-v0", n_qubits=n_qubits, target=target)
    env.reset(seed=0)
    assert bfs_min_depth(env.unwrapped, max_depth=depth) == depth <= env.spec.max_episode_steps


@pytest.mark.parametrize("n_qubits", range(2, 11))
def test_ghz_and_plus_prepared_within_step_limit_for_all_sizes(n_qubits: int) -> None:
    for target, labels in (
        ("ghz", ["h q[0]"] + [f"cx q[{q}],q[{q + 1}]" for q in range(n_qubits - 1)]),
        ("plus", [f"h q[{q}]" for q in range(n_qubits)]),
    ):
        env = gym.make("AdvRL/QuantumGate-v0", n_qubits=n_qubits, target=target)
        env.reset(seed=0)
        index = {a.label: i for i, a in enumerate(env.unwrapped.actions)}
        for step, label in enumerate(labels):
            _, _, terminated, truncated, info = env.step(index[label])
            assert terminated == (step == len(labels) - 1) and not truncated
        assert info["fidelity"] == pytest.approx(1.0, abs=1e-12)
        assert len(labels) <= env.spec.max_episode_steps


def test_random_target_is_prepared_by_its_recorded_circuit() -> None:
    env = gym.make("AdvRL/QuantumGate-v0", n_qubits=3, target="random")
    assert env.unwrapped.target_depth <= env.spec.max_episode_steps
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        assert len(info["target_circuit"]) == env.unwrapped.target_depth and info["fidelity"] < 0.99
        np.testing.assert_allclose(obs[16:24] + 1j * obs[24:], env.unwrapped.target_state, atol=1e-6)
        index = {a.label: i for i, a in enumerate(env.unwrapped.actions)}
        replay = QuantumGateEnv(n_qubits=3, target=env.unwrapped.target_state)
        replay.reset()
        for label in info["target_circuit"]:
            replay.step(index[label])
        assert replay.fidelity == pytest.approx(1.0, abs=1e-10)
    first = gym.make("AdvRL/QuantumGate-v0", target="random").reset(seed=1)[0]
    assert np.array_equal(first, gym.make("AdvRL/QuantumGate-v0", target="random").reset(seed=1)[0])
    with pytest.raises(ValueError, match="target_depth"):
        gym.make("AdvRL/QuantumGate-v0", target="random", target_depth=MAX_EPISODE_STEPS + 1)
    assert gym.spec("AdvRL/QuantumGate-v0").max_episode_steps == MAX_EPISODE_STEPS
    with pytest.raises(ValueError, match="gates"):  # diagonal gates never move |0...0>
        QuantumGateEnv(target="random", gates=["z", "s", "t"]).reset(seed=0)


# ---------------------------------------------------------------------------- env dynamics
def test_bell_rewards_fidelities_and_observation() -> None:
    env = gym.make("AdvRL/QuantumGate-v0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (8,) and obs.dtype == np.float32 and info["fidelity"] == pytest.approx(0.5)
    labels = [a.label for a in env.unwrapped.actions]
    assert (
        len(labels) == 16
        and labels[:2] == ["h q[0]", "h q[1]"]
        and labels[-2:] == ["cx q[0],q[1]", "cx q[1],q[0]"]
    )
    obs, reward, terminated, _, info = env.step(labels.index("h q[0]"))
    assert reward == pytest.approx(-0.25) and not terminated and info["fidelity"] == pytest.approx(0.25)
    np.testing.assert_allclose(
        obs, np.r_[[1, 1, 0, 0], [0, 0, 0, 0]] / np.r_[[np.sqrt(2)] * 4, [1] * 4], atol=1e-7
    )
    obs, reward, terminated, _, info = env.step(labels.index("cx q[0],q[1]"))
    assert reward == pytest.approx(0.75 + 1.0) and terminated and info["is_success"]
    assert info["gates"] == ("h q[0]", "cx q[0],q[1]") and info["error"] is None
    np.testing.assert_allclose(obs[:4], [2**-0.5, 0, 0, 2**-0.5], atol=1e-7)


def test_phase_is_observed_and_counts_in_fidelity() -> None:
    env = QuantumGateEnv(target=np.array([1, 0, 0, -1]) / np.sqrt(2))  # Bell state with a minus sign
    env.reset()
    labels = [a.label for a in env.actions]
    for label in ("h q[0]", "cx q[0],q[1]"):
        obs, _, terminated, _, info = env.step(labels.index(label))
    assert not terminated and info["fidelity"] == pytest.approx(0.0, abs=1e-12)
    for label in ("s q[0]", "s q[0]"):  # S^2 = Z puts the minus sign on |11>
        obs, _, terminated, _, info = env.step(labels.index(label))
    assert terminated and info["fidelity"] == pytest.approx(1.0)
    np.testing.assert_allclose(obs[:4], [2**-0.5, 0, 0, -(2**-0.5)], atol=1e-7)


def test_noise_statistics_match_the_depolarizing_channel() -> None:
    p, episodes = 0.3, 3000
    env = QuantumGateEnv(n_qubits=1, gates=["h"], noise_prob=p)
    env.reset(seed=0)
    errors, fidelities = [], []
    for _ in range(episodes):
        env.reset()
        _, _, _, _, info = env.step(0)
        errors.append(info["error"])
        fidelities.append(info["fidelity"])
    counts = {e: errors.count(e) for e in set(errors)}
    sigma = math.sqrt(episodes * p * (1 - p))
    assert abs(episodes - counts[None] - p * episodes) < 4 * sigma
    assert set(counts) == {None, "x q[0]", "y q[0]", "z q[0]"}
    # X keeps |+>, Y and Z flip it to |->: mean fidelity 1 - 2p/3.
    assert np.mean(fidelities) == pytest.approx(1 - 2 * p / 3, abs=4 * math.sqrt(2 * p / 3 / episodes))

    env = QuantumGateEnv(n_qubits=3, gates=["cx"], noise_prob=1.0, target="plus")
    env.reset(seed=1)
    words = set()
    for _ in range(600):
        error = env.step(0)[4]["error"]  # cx q[0],q[1]
        assert "q[2]" not in error
        words.add(error)
    assert len(words) == 15  # every non-identity two-qubit Pauli, never the identity


def test_noise_is_seeded_and_absent_by_default() -> None:
    def errors(seed: int, noise_prob: float) -> list:
        env = gym.make("AdvRL/QuantumGate-v0", n_qubits=3, noise_prob=noise_prob)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        return [env.step(env.action_space.sample())[4]["error"] for _ in range(15)]

    assert errors(4, 0.5) == errors(4, 0.5) and any(errors(4, 0.5))
    assert errors(4, 0.0) == [None] * 15


def test_qasm_text_and_noise_statements() -> None:
    env = QuantumGateEnv(n_qubits=2, noise_prob=1.0, gates=["rx", "cx"])
    env.reset(seed=0)
    env.step(0)
    lines = env.to_qasm().splitlines()
    assert lines[:4] == ["OPENQASM 2.0;", 'include "qelib1.inc";', "qreg q[2];", "rx(pi/4) q[0];"]
    noisy = env.to_qasm(include_noise=True).splitlines()
    assert len(noisy) == 5 and noisy[4] in ("x q[0];", "y q[0];", "z q[0];")
    custom = QuantumGateEnv(gates=["ry"], rotation_angle=-3 * np.pi / 2)
    custom.reset()
    custom.step(1)
    assert custom.to_qasm().splitlines()[-1] == "ry(-3*pi/2) q[1];"


@pytest.mark.parametrize(
    ("kwargs", "include_noise"),
    [
        ({"n_qubits": 2}, False),
        (
            {
                "n_qubits": 4,
                "gates": [
                    "h",
                    "x",
                    "y",
                    "z",
                    "s",
                    "sdg",
                    "t",
                    "tdg",
                    "sx",
                    "rx",
                    "ry",
                    "rz",
                    "cx",
                    "cz",
                    "swap",
                ],
            },
            False,
        ),
        ({"n_qubits": 3, "noise_prob": 0.4, "rotation_angle": 0.7}, True),
    ],
)
def test_qasm_round_trip_through_qiskit(kwargs: dict, include_noise: bool) -> None:
    qiskit = pytest.importorskip("qiskit")
    from qiskit.quantum_info import Statevector

    env = QuantumGateEnv(**kwargs)
    for seed in range(3):
        env.reset(seed=seed)
        env.action_space.seed(seed)
        for _ in range(20):
            env.step(env.action_space.sample())
        circuit = qiskit.QuantumCircuit.from_qasm_str(env.to_qasm(include_noise=include_noise))
        theirs = Statevector.from_instruction(circuit).data
        overlap = np.vdot(theirs, env.state)
        assert abs(overlap) == pytest.approx(1.0, abs=1e-10)
        np.testing.assert_allclose(
            theirs * overlap / abs(overlap), env.state, atol=1e-10
        )  # up to global phase


def test_ansi_shows_the_circuit_and_rgb_changes() -> None:
    env = gym.make("AdvRL/QuantumGate-v0", n_qubits=3, render_mode="ansi")
    env.reset(seed=0)
    labels = [a.label for a in env.unwrapped.actions]
    env.step(labels.index("h q[0]"))
    env.step(labels.index("cx q[0],q[2]"))
    text = env.render().splitlines()
    assert text[0].startswith("target: ghz") and "fidelity: 0.2500" in text[0]
    assert (
        text[1] == "q[0]: ---H----@---"
        and text[3] == "q[1]: --------|---"
        and text[5] == "q[2]: --------X---"
    )
    assert text[2].rstrip() == text[4].rstrip() == " " * 14 + "|"
    rgb = gym.make("AdvRL/QuantumGate-v0", render_mode="rgb_array")
    rgb.reset(seed=0)
    before = rgb.render()
    rgb.step(0)
    assert before.shape == rgb.render().shape and not np.array_equal(before, rgb.render())


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_qubits": 0}, "n_qubits"),
        ({"n_qubits": 11}, "n_qubits"),
        ({"n_qubits": 2.0}, "n_qubits"),
        ({"gates": ["h", "toffoli"]}, "gates.*toffoli"),
        ({"gates": []}, "gates"),
        ({"gates": "h"}, "gates"),
        ({"gates": ["h", "H"]}, "gates"),
        ({"n_qubits": 1, "gates": ["cx"]}, "gates"),
        ({"target": "w"}, "target"),
        ({"n_qubits": 1, "target": "bell"}, "target"),
        ({"target": [1, 0, 0, 1]}, "normalized"),
        ({"target": [1, 0]}, "target"),
        ({"target": [np.nan, 0, 0, 0]}, "target"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"noise_prob": -0.1}, "noise_prob"),
        ({"noise_prob": 1.1}, "noise_prob"),
        ({"target_depth": 0}, "target_depth"),
        ({"rotation_angle": np.inf}, "rotation_angle"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        QuantumGateEnv(**kwargs)


def test_bad_calls() -> None:
    env = QuantumGateEnv()
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)
    with pytest.raises(gym.error.ResetNeeded):
        env.to_qasm()
    with pytest.raises(ValueError, match="options"):
        env.reset(options={"goal": 1})


# ---------------------------------------------------------------------------- learning
def test_dqn_learns_bell_preparation() -> None:
    """SB3 DQN, 3,000 steps (about 3 s of one core): deterministic success on 100 episodes >= 95%."""
    torch = pytest.importorskip("torch")
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    env = gym.make("AdvRL/QuantumGate-v0")
    model = DQN(
        "MlpPolicy", env, learning_rate=1e-3, buffer_size=10_000, learning_starts=500, batch_size=64,
        gamma=0.95, train_freq=4, target_update_interval=250, exploration_fraction=0.3,
        exploration_final_eps=0.05, policy_kwargs={"net_arch": [64, 64]}, seed=0,
    )  # fmt: skip
    model.learn(3_000)
    successes, lengths = [], []
    for episode in range(100):
        obs, _ = env.reset(seed=episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(info["is_success"])
        lengths.append(len(info["gates"]))
    assert np.mean(successes) >= 0.95
    assert np.mean(lengths) <= 3  # the optimum is 2 gates (H then CNOT)
