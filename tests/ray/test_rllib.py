"""RLlib on the gym_advrl envs with remote env runners, which never import gym_advrl by themselves:
the plain ``AdvRL/`` ids after :func:`gym_advrl.rllib.register_envs`, the ``"gym_advrl:AdvRL/..."``
form without it, and the multi-agent envs with one shared policy and with one policy per team."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray.rllib")

from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig  # noqa: E402
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModuleSpec  # noqa: E402

import gym_advrl  # noqa: E402, F401
from gym_advrl.rllib import MARL_ENVS, policy_per_team, register_envs, shared_policy  # noqa: E402

#: Small enough that two iterations take seconds: 200 steps per iteration, one epoch, tiny networks.
BATCH = 200


def small_ppo(env: str, num_env_runners: int, env_config: dict | None = None) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env, env_config=env_config or {})
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1, num_cpus_per_env_runner=1)
        .training(train_batch_size_per_learner=BATCH, minibatch_size=100, num_epochs=1, lr=3e-4)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[16]))
        .debugging(seed=0)
    )


def remote_env_classes(algo) -> list[str]:
    """The class of the env each remote env runner built, found in that runner's own process."""

    def env_class(runner) -> str:
        env = runner.env.unwrapped
        single = env.envs[0].unwrapped if hasattr(env, "envs") else env
        return f"{type(single).__module__}:{type(single).__name__}"

    return algo.env_runner_group.foreach_env_runner(env_class, local_env_runner=False)


@pytest.mark.parametrize("env_id", ["AdvRL/GridWorld-v0", "AdvRL/Pendulum-v0", "AdvRL/QuantumGate-v0"])
def test_ppo_trains_on_the_plain_id_with_two_remote_env_runners(local_ray, env_id: str) -> None:
    register_envs()
    algo = small_ppo(env_id, num_env_runners=2).build_algo()
    try:
        assert algo.env_runner_group.num_healthy_remote_workers() == 2
        assert remote_env_classes(algo) == [gym.spec(env_id).entry_point] * 2
        for iteration in (1, 2):
            result = algo.train()
            assert result["training_iteration"] == iteration
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert sampled >= 2 * BATCH
        assert np.isfinite(result["learners"]["default_policy"]["policy_loss"])
    finally:
        algo.stop()


def test_module_prefixed_id_works_without_registering(local_ray) -> None:
    """``"gym_advrl:AdvRL/..."``: Gymnasium imports gym_advrl in each runner before resolving the id."""
    algo = small_ppo("gym_advrl:AdvRL/GridWorld-v0", num_env_runners=1, env_config={"size": 3}).build_algo()
    try:
        assert remote_env_classes(algo) == ["gym_advrl.envs.grid_world:GridWorldEnv"]
        assert algo.train()["env_runners"]["num_env_steps_sampled_lifetime"] >= BATCH
    finally:
        algo.stop()


def test_registered_creator_builds_every_env_in_a_fresh_worker_process(local_ray) -> None:
    """Every registered name resolves in a Ray task (a process that never imported gym_advrl), with
    the env_config as keyword arguments; a ``num_envs`` entry gives the native vector version."""
    ray = local_ray
    names = register_envs()
    advrl = sorted(k for k in gym.registry if k.startswith("AdvRL/"))
    assert names == [*advrl, *MARL_ENVS]

    @ray.remote(num_cpus=1)
    def build(name: str, config: dict) -> tuple[str, int]:
        from ray.tune.registry import ENV_CREATOR, _global_registry

        env = _global_registry.get(ENV_CREATOR, name)(config)
        if hasattr(env, "possible_agents"):  # the RLlib multi-agent wrapper
            env.reset(seed=0)
            return type(env).__name__, len(env.possible_agents)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        return type(env.unwrapped).__name__, getattr(env, "num_envs", 1)

    built = ray.get([build.remote(env_id, {}) for env_id in advrl])
    assert [cls for cls, _ in built] == [gym.spec(env_id).entry_point.rsplit(":")[1] for env_id in advrl]
    assert ray.get(build.remote("AdvRL/GridWorld-v0", {"size": 3})) == ("GridWorldEnv", 1)
    assert ray.get(build.remote("AdvRL/Pendulum-v0", {"num_envs": 3})) == ("PendulumVectorEnv", 3)
    for module_name in MARL_ENVS:
        assert ray.get(build.remote(module_name, {"n_agents": 4})) == ("ParallelPettingZooEnv", 4)


def test_native_vector_env_on_a_remote_runner(local_ray) -> None:
    """``gym_env_vectorize_mode="vector_entry_point"``: each runner steps the env's own vector version."""
    register_envs()
    config = small_ppo("AdvRL/Pendulum-v0", num_env_runners=1).env_runners(
        num_envs_per_env_runner=4, gym_env_vectorize_mode="vector_entry_point"
    )
    algo = config.build_algo()
    try:
        kinds = algo.env_runner_group.foreach_env_runner(
            lambda runner: (type(runner.env.unwrapped).__name__, runner.env.num_envs), local_env_runner=False
        )
        assert kinds == [("PendulumVectorEnv", 4)]
        assert algo.train()["env_runners"]["num_env_steps_sampled_lifetime"] >= BATCH
    finally:
        algo.stop()


def marl_ppo(module_name: str, policies: list[str], mapping, env_config: dict) -> PPOConfig:
    return (
        small_ppo(module_name, num_env_runners=1, env_config=env_config)
        .multi_agent(policies=set(policies), policy_mapping_fn=mapping)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={p: RLModuleSpec() for p in policies}))
    )


def test_multi_agent_ppo_with_one_shared_policy_on_cooperative(local_ray) -> None:
    register_envs()
    policies, mapping = shared_policy()
    config = {"n_agents": 3, "max_cycles": 25}
    algo = marl_ppo("gym_advrl.marl.cooperative_v0", policies, mapping, config).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert result["training_iteration"] == 2
        assert algo.get_module("shared") is not None
        assert set(result["learners"]) - {"__all_modules__"} == {"shared"}
        assert np.isfinite(result["learners"]["shared"]["policy_loss"])
    finally:
        algo.stop()


def test_multi_agent_ppo_with_one_policy_per_team_on_mixed(local_ray) -> None:
    register_envs()
    config = {"n_agents": 3, "max_cycles": 25}
    policies, mapping = policy_per_team("gym_advrl.marl.mixed_v0", config)
    assert policies == ["red", "blue"]
    algo = marl_ppo("gym_advrl.marl.mixed_v0", policies, mapping, config).build_algo()
    try:
        before = {p: algo.get_module(p).get_state() for p in policies}
        for _ in range(2):
            result = algo.train()
        assert result["training_iteration"] == 2
        for team in policies:  # each team's own network was trained on its own agents' data
            assert np.isfinite(result["learners"][team]["policy_loss"])
            after = algo.get_module(team).get_state()
            assert any(not np.allclose(before[team][k], after[k]) for k in after)
    finally:
        algo.stop()
