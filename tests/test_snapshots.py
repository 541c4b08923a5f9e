"""Exact clones mid-episode: ``get_state``/``set_state`` and ``copy.deepcopy`` for every env, copies of MARL envs."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest

from gym_advrl.envs import GridWorldEnv, PendulumEnv
from gym_advrl.marl import competitive_v0, cooperative_v0, mixed_v0
from gym_advrl.wrappers import DomainRandomization, ObservationNoise
from tests.conftest import ADVRL_IDS

N_STEPS = 200
#: Steps before the clone, so that it is taken mid-episode (after an episode end for short ones).
WARMUP = 7


def actions_for(space: gym.Space, seed: int, n: int = N_STEPS) -> list:
    space.seed(seed)
    return [space.sample() for _ in range(n)]


def as_array(obs) -> np.ndarray:
    """An observation as one array (a goal env's ``Dict`` concatenated in key order)."""
    if isinstance(obs, dict):
        return np.concatenate([np.ravel(obs[key]) for key in sorted(obs)])
    return np.array(obs, copy=True)


def run(env: gym.Env, actions: list, elapsed: int, limit: int | None) -> tuple[list, int]:
    """Step ``env`` through ``actions`` (resetting at episode ends); return the transitions and the step count."""
    transitions = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        elapsed += 1
        truncated = truncated or (limit is not None and elapsed >= limit)
        transitions.append((as_array(obs), float(reward), bool(terminated), bool(truncated)))
        if terminated or truncated:
            obs, _ = env.reset()
            elapsed = 0
            transitions.append((as_array(obs),))
    return transitions, elapsed


def assert_same(first: list, second: list) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_get_state_set_state_continue_identically(env_id: str) -> None:
    limit = gym.spec(env_id).max_episode_steps
    original = gym.make(env_id).unwrapped
    original.reset(seed=5)
    _, elapsed = run(original, actions_for(original.action_space, 0, WARMUP), 0, limit)
    snapshot = original.unwrapped.get_state()

    clone = gym.make(env_id).unwrapped
    clone.reset(seed=12345)  # a different generator and episode, overwritten by the snapshot
    clone.set_state(snapshot)
    actions = actions_for(original.action_space, 1)
    expected, _ = run(original, actions, elapsed, limit)
    assert any(len(t) == 1 for t in expected), "the run should include a reset (from the cloned generator)"
    assert_same(run(clone, actions, elapsed, limit)[0], expected)

    # A snapshot is reusable: restoring it again replays the same future.
    clone.set_state(snapshot)
    assert_same(run(clone, actions, elapsed, limit)[0], expected)


@pytest.mark.parametrize("env_id", ADVRL_IDS)
def test_deepcopy_of_a_made_env_continues_identically(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=3)
    run(env, actions_for(env.action_space, 0, WARMUP), 0, None)
    clone = copy.deepcopy(env)
    actions = actions_for(env.action_space, 2)
    assert_same(run(clone, actions, 0, None)[0], run(env, actions, 0, None)[0])


def test_deepcopy_of_wrappers_with_their_own_generators() -> None:
    env = ObservationNoise(DomainRandomization(gym.make("AdvRL/Pendulum-v0"), {"m": (0.5, 2.0)}), std=0.1)
    env.reset(seed=0)
    run(env, actions_for(env.action_space, 0, 250), 0, None)  # past the 200-step limit: a sampled episode
    clone = copy.deepcopy(env)
    actions = actions_for(env.action_space, 1, 450)
    assert_same(run(clone, actions, 0, None)[0], run(env, actions, 0, None)[0])


def test_snapshots_are_not_aliased() -> None:
    env = PendulumEnv()
    env.reset(seed=0)
    snapshot = env.get_state()
    env.step(np.ones(1, dtype=np.float32))
    env.set_state(snapshot)
    before = env.state.copy()
    env.step(np.ones(1, dtype=np.float32))
    assert not np.array_equal(env.state, before)
    env.set_state(snapshot)
    np.testing.assert_array_equal(env.state, before)


def test_snapshots_keep_per_episode_settings() -> None:
    pendulum = PendulumEnv()
    pendulum.reset(seed=0, options={"physics": {"m": 2.0}})
    other = PendulumEnv()
    other.reset(seed=1)
    other.set_state(pendulum.get_state())
    assert other.physics["m"] == 2.0
    grid = GridWorldEnv()
    grid.reset(seed=0, options={"goal": (2, 3)})
    moved = GridWorldEnv()
    moved.set_state(grid.get_state())
    assert moved.goal == (2, 3) and moved.step(0)[4]["goal"] == (2, 3)


@pytest.mark.parametrize("bad", [{}, None, "state", {"env": "PendulumEnv", "state": {}}])
def test_set_state_rejects_foreign_snapshots(bad) -> None:
    with pytest.raises(ValueError, match="snapshot"):
        PendulumEnv().set_state(bad)
    grid = GridWorldEnv()
    grid.reset(seed=0)
    with pytest.raises(ValueError, match="GridWorldEnv"):
        PendulumEnv().set_state(grid.get_state())


# ---------------------------------------------------------------------------- MARL
MARL_MODULES = [cooperative_v0, competitive_v0, mixed_v0]
COPIES: dict[str, Callable] = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda env: pickle.loads(pickle.dumps(env)),
    "cloudpickle": lambda env: pickle.loads(cloudpickle.dumps(env)),
}


def parallel_run(env, actions: list) -> list:
    transitions = []
    for joint in actions:
        if not env.agents:
            obs, _ = env.reset()
            transitions.append(sorted((a, o.tolist()) for a, o in obs.items()))
            continue
        out = env.step({agent: joint[agent] for agent in env.agents})
        transitions.append([sorted((a, np.asarray(v).tolist()) for a, v in part.items()) for part in out[:4]])
    return transitions


def aec_run(env, actions: list) -> list:
    transitions = []
    for joint in actions:
        if not env.agents:
            env.reset()
        agent = env.agent_selection
        obs, reward, terminated, truncated, _ = env.last()
        transitions.append((agent, obs.tolist(), reward, terminated, truncated))
        env.step(None if terminated or truncated else joint[agent])
    return transitions


def joint_actions(env, seed: int, n: int) -> list:
    spaces = {agent: env.action_space(agent) for agent in env.possible_agents}
    for i, space in enumerate(spaces.values()):
        space.seed(seed + i)
    return [{agent: space.sample() for agent, space in spaces.items()} for _ in range(n)]


@pytest.mark.parametrize("copy_name", COPIES)
@pytest.mark.parametrize("continuous", [True, False])
@pytest.mark.parametrize("mod", MARL_MODULES)
def test_marl_parallel_copies_continue_identically(mod, continuous: bool, copy_name: str) -> None:
    env = mod.parallel_env(n_agents=4, continuous_actions=continuous, max_cycles=60, arena_radius=2.0)
    env.reset(seed=0)
    parallel_run(env, joint_actions(env, 0, 25))
    clone = COPIES[copy_name](env)
    actions = joint_actions(env, 1, N_STEPS)
    expected = parallel_run(env, actions)
    assert sum(1 for t in expected if not isinstance(t[0], list)) >= 2, "the run should include resets"
    assert parallel_run(clone, actions) == expected


@pytest.mark.parametrize("copy_name", COPIES)
@pytest.mark.parametrize("continuous", [True, False])
@pytest.mark.parametrize("mod", MARL_MODULES)
def test_marl_aec_copies_continue_identically(mod, continuous: bool, copy_name: str) -> None:
    env = mod.env(n_agents=3, continuous_actions=continuous, max_cycles=40, arena_radius=2.0)
    env.reset(seed=0)
    aec_run(env, joint_actions(env, 0, 10))  # mid-cycle: some agents have acted, others not
    clone = COPIES[copy_name](env)
    assert clone.agent_selection == env.agent_selection
    actions = joint_actions(env, 1, N_STEPS)
    assert aec_run(clone, actions) == aec_run(env, actions)


def test_marl_copy_of_a_fresh_env_is_built_from_its_arguments() -> None:
    env = mixed_v0.parallel_env(n_agents=5, continuous_actions=False, max_cycles=7)
    clone = pickle.loads(pickle.dumps(env))
    assert (
        clone.possible_agents == env.possible_agents
        and clone.max_cycles == 7
        and not clone.continuous_actions
    )
    assert clone.world is not env.world
