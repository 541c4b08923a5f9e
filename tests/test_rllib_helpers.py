"""The parts of :mod:`gym_advrl.rllib` that need no Ray: env creators and agent-to-policy mappings
(tests/ray/test_rllib.py runs them inside RLlib)."""

from __future__ import annotations

import pytest

from gym_advrl.rllib import MARL_ENVS, make_env, policy_per_team, shared_policy, team_of


def test_make_env_matches_gym_make() -> None:
    env = make_env("AdvRL/Pendulum-v0", {"g": 9.81})
    assert env.unwrapped.physics["g"] == pytest.approx(9.81)
    assert env.spec.max_episode_steps == 200


def test_make_env_with_num_envs_gives_the_native_vector_env() -> None:
    env = make_env("AdvRL/GridWorld-v0", {"num_envs": 3, "size": 4})
    assert type(env).__name__ == "GridWorldVectorEnv" and env.num_envs == 3
    observations, _ = env.reset(seed=0)
    assert observations.shape == (3, 2)


def test_per_team_mapping() -> None:
    policies, mapping = policy_per_team("gym_advrl.marl.competitive_v0", {"n_agents": 3})
    assert policies == ["agent_0", "agent_1", "agent_2"] and mapping("agent_2", None) == "agent_2"
    policies, mapping = policy_per_team("gym_advrl.marl.mixed_v0", {"n_agents": 5})
    assert policies == ["red", "blue"] and [mapping(a, None) for a in ("red_2", "blue_0")] == ["red", "blue"]
    assert policy_per_team("gym_advrl.marl.cooperative_v0")[0] == ["agent"]
    with pytest.raises(ValueError, match="module_name must be one of"):
        policy_per_team("gym_advrl.marl.nope_v0")
    with pytest.raises(ValueError, match="agent_id must look like"):
        team_of("red")
    assert shared_policy()[0] == ["shared"] and shared_policy()[1]("blue_1", None) == "shared"


def test_marl_env_names_are_importable_modules() -> None:
    import importlib

    for name in MARL_ENVS:
        assert hasattr(importlib.import_module(name), "parallel_env")
