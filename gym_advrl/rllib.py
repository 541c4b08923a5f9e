"""Ray RLlib: every ``AdvRL/`` id and every ``gym_advrl.marl`` env, resolvable on remote env runners.

RLlib builds environments inside its env-runner processes, which never import ``gym_advrl``
themselves, and Gymnasium 1.x has no plugin entry points: there a plain ``"AdvRL/GridWorld-v0"``
fails with ``NamespaceNotFound``. :func:`register_envs` puts a creator for every id into Ray's
cluster-wide env registry (``ray.tune.registry.register_env``), which every Ray process reads, so
the plain id then works with any number of remote runners::

    from ray.rllib.algorithms.ppo import PPOConfig
    from gym_advrl.rllib import register_envs

    register_envs()
    config = PPOConfig().environment("AdvRL/GridWorld-v0", env_config={"size": 4}).env_runners(num_env_runners=2)
    algo = config.build_algo()

Without registering, the module-prefixed form ``"gym_advrl:AdvRL/GridWorld-v0"`` also works,
since Gymnasium imports the module named before the colon in each process.

The multi-agent envs are registered under their module names (``"gym_advrl.marl.mixed_v0"``, see
:data:`MARL_ENVS`) as RLlib ``ParallelPettingZooEnv``\\ s. :func:`policy_per_team` gives the
policies and the agent-to-policy mapping for one policy per team; :func:`shared_policy` the same for
one policy that every agent shares.

Ray is imported only inside these functions: ``import gym_advrl.rllib`` works without Ray, and
``import gym_advrl`` never imports this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import gymnasium as gym

#: Module of each multi-agent env, under the name it is registered with in Ray's registry.
MARL_ENVS: tuple[str, ...] = (
    "gym_advrl.marl.cooperative_v0",
    "gym_advrl.marl.competitive_v0",
    "gym_advrl.marl.mixed_v0",
)

#: The one policy of :func:`shared_policy`.
SHARED_POLICY = "shared"


def advrl_ids() -> list[str]:
    """Every registered ``AdvRL/`` id."""
    import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)

    return sorted(env_id for env_id in gym.registry if env_id.startswith("AdvRL/"))


def make_env(env_id: str, config: Mapping[str, Any] | None = None) -> gym.Env | gym.vector.VectorEnv:
    """Build ``env_id`` from RLlib's ``env_config`` in any process (``gym_advrl`` imported first).

    :param env_id: a Gymnasium id, e.g. ``"AdvRL/Pendulum-v0"``.
    :param config: keyword arguments of the env (RLlib passes its ``EnvContext``, a dict). A
        ``num_envs`` entry, which RLlib adds with ``gym_env_vectorize_mode="VECTOR_ENTRY_POINT"``,
        returns the env's native vector version with that many copies.
    :return: the environment (or vector environment).
    """
    import gym_advrl  # noqa: F401  (registers the AdvRL/ ids in this process)

    kwargs = dict(config or {})
    num_envs = kwargs.pop("num_envs", None)
    if num_envs is not None:
        return gym.make_vec(env_id, num_envs=int(num_envs), vectorization_mode="vector_entry_point", **kwargs)
    return gym.make(env_id, **kwargs)


def make_marl_env(module_name: str, config: Mapping[str, Any] | None = None) -> Any:
    """A ``gym_advrl.marl`` module's ``parallel_env(**config)`` as an RLlib ``ParallelPettingZooEnv``.

    :param module_name: one of :data:`MARL_ENVS`.
    :param config: keyword arguments of ``parallel_env`` (``n_agents``, ``continuous_actions``, ...).
    :return: the RLlib multi-agent env.
    """
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    return ParallelPettingZooEnv(_marl_module(module_name).parallel_env(**dict(config or {})))


def register_envs() -> list[str]:
    """Register every ``AdvRL/`` id and every :data:`MARL_ENVS` name with Ray's env registry.

    Call it once in the driver, before or after ``ray.init``, before building an RLlib algorithm
    (Ray Tune trials and remote env runners then find the ids by name). The creators are pickled by
    reference, so ``gym_advrl`` must be installed where the workers run.

    :return: the registered names.
    """
    from ray.tune.registry import register_env

    names = []
    for env_id in advrl_ids():
        register_env(env_id, partial(make_env, env_id))
        names.append(env_id)
    for module_name in MARL_ENVS:
        register_env(module_name, partial(make_marl_env, module_name))
        names.append(module_name)
    return names


def team_of(agent_id: str) -> str:
    """The team prefix of an agent name: ``"red_1"`` -> ``"red"``."""
    team, separator, index = agent_id.rpartition("_")
    if not separator or not index.isdigit():
        raise ValueError(f"agent_id must look like '<team>_<index>', got {agent_id!r}")
    return team


def policy_per_team(module_name: str, config: Mapping[str, Any] | None = None) -> tuple[list[str], Callable]:
    """One policy per team: ``red`` and ``blue`` in ``mixed_v0``; in ``competitive_v0``, where every
    agent plays for itself, one per agent; in ``cooperative_v0``, one team, so one policy.

    Use the result as ``config.multi_agent(policies=set(policies), policy_mapping_fn=mapping)``.

    :param module_name: one of :data:`MARL_ENVS`.
    :param config: the env's keyword arguments (``n_agents`` decides the agents).
    :return: the policy ids (in agent order) and ``policy_mapping_fn(agent_id, episode, **kwargs)``.
    """
    env = _marl_module(module_name).parallel_env(**dict(config or {}))
    agents = list(env.possible_agents)
    env.close()
    if module_name.endswith("competitive_v0"):
        return agents, _agent_is_policy
    return list(dict.fromkeys(team_of(agent) for agent in agents)), _team_policy


def shared_policy() -> tuple[list[str], Callable]:
    """One policy for every agent (parameter sharing): ``([SHARED_POLICY], mapping)``."""
    return [SHARED_POLICY], _shared_policy


def _agent_is_policy(agent_id: str, *args: Any, **kwargs: Any) -> str:
    return agent_id


def _team_policy(agent_id: str, *args: Any, **kwargs: Any) -> str:
    return team_of(agent_id)


def _shared_policy(agent_id: str, *args: Any, **kwargs: Any) -> str:
    return SHARED_POLICY


def _marl_module(module_name: str) -> Any:
    if module_name not in MARL_ENVS:
        raise ValueError(f"module_name must be one of {', '.join(MARL_ENVS)}; got {module_name!r}")
    return importlib.import_module(module_name)
