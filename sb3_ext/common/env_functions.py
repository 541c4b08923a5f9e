"""Known rewards and terminations: the env's ``reward_fn`` / ``termination_fn`` when present, else
the ensemble's learned heads.

Continuous-control envs of this package expose batched numpy functions
``reward_fn(obs, action, next_obs)`` and ``termination_fn(next_obs)``. A model-based algorithm
that finds them on its env uses them for the transitions it imagines and gives its ensemble no
reward (termination) head; without them the ensemble learns one. The decision is made once, from
the first env, and kept through ``save`` / ``load`` (it fixes the ensemble's outputs):

* :class:`EnvFunctionsMixin` finds the functions and records the decision
  (``WorldModelMPC``, ``MBPO``);
* :func:`rewards_and_terminations` applies the rule to a batch of imagined transitions (the PETS
  planner's trajectories, MBPO's branched rollouts).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvWrapper

RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
TerminationFn = Callable[[np.ndarray], np.ndarray]


def find_env_function(env: VecEnv, name: str) -> Callable | None:
    """The callable attribute ``name`` of the first sub-environment (through wrappers), or ``None``."""
    try:
        if not env.has_attr(name):
            return None
        fn = env.get_attr(name, indices=[0])[0]
    except AttributeError:
        return None
    return fn if callable(fn) else None


def call_env_function(fn: Callable, name: str, expected: tuple[int, ...], *args: th.Tensor) -> th.Tensor:
    """Call a batched numpy ``reward_fn`` / ``termination_fn`` on tensors and check its output shape."""
    out = np.asarray(fn(*(a.detach().cpu().numpy() for a in args)))
    if out.shape != expected:
        raise ValueError(
            f"{name} must return one value per transition, i.e. an array shaped like the inputs' "
            f"leading dims {expected}, got shape {out.shape}"
        )
    return th.as_tensor(out, device=args[0].device)


def rewards_and_terminations(
    obs: th.Tensor,
    actions: th.Tensor,
    next_obs: th.Tensor,
    model_rewards: th.Tensor | None,
    model_terminations: th.Tensor | None,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
) -> tuple[th.Tensor, th.Tensor | None]:
    """
    Rewards and terminations of imagined transitions ``(obs, actions) -> next_obs``.

    Rewards come from ``reward_fn(obs, actions, next_obs)`` when given, else from the model's
    reward head (``model_rewards``); terminations from ``termination_fn(next_obs)`` when given,
    else from the model's termination head, else ``None`` (the episode never ends in the model).
    The env functions are called once on the whole batch, whatever its leading dims.

    :param obs: ``(*batch, obs_dim)`` observations.
    :param actions: ``(*batch, action_dim)`` (Box, in the env's units) or ``(*batch,)`` (Discrete).
    :param next_obs: ``(*batch, obs_dim)`` predicted next observations.
    :param model_rewards: ``(*batch,)`` rewards of the model's head, or ``None`` without one.
    :param model_terminations: ``(*batch,)`` boolean terminations of the model's head, or ``None``.
    :return: float rewards ``(*batch,)`` and boolean terminations ``(*batch,)`` (or ``None``).
    """
    expected = tuple(obs.shape[:-1])
    if reward_fn is not None:
        rewards = call_env_function(reward_fn, "reward_fn", expected, obs, actions, next_obs).float()
    elif model_rewards is not None:
        rewards = model_rewards.float()
    else:
        raise ValueError("a reward_fn is required when the model has no reward head (learn_reward=False)")
    if termination_fn is not None:
        terminations = call_env_function(termination_fn, "termination_fn", expected, next_obs).bool()
    elif model_terminations is not None:
        terminations = model_terminations.bool()
    else:
        terminations = None
    return rewards, terminations


class EnvFunctionsMixin:
    """
    Finds the env's ``reward_fn`` / ``termination_fn`` for an SB3 algorithm and records whether
    its model uses them (``uses_env_reward`` / ``uses_env_termination``) or learned heads instead.

    The algorithm sets ``use_env_functions`` and ``uses_env_reward = uses_env_termination = None``
    in ``__init__`` and calls :meth:`_resolve_env_functions` in ``_setup_model`` and ``set_env``.
    The first call decides from the env; later calls (after ``load``, or with a new env) keep the
    decision and take the functions from the new env when it has them.
    """

    env: VecEnv | None
    use_env_functions: bool
    reward_fn: RewardFn | None
    termination_fn: TerminationFn | None
    uses_env_reward: bool | None
    uses_env_termination: bool | None

    def _resolve_env_functions(self) -> None:
        env = self.env
        if env is not None:
            wrapper: VecEnv = env
            while isinstance(wrapper, VecEnvWrapper):
                if isinstance(wrapper, VecNormalize) and wrapper.norm_obs:
                    raise ValueError(
                        f"{type(self).__name__}'s model predicts the environment's own observation units: "
                        "do not wrap the env in VecNormalize(norm_obs=True) (the ensemble normalizes its "
                        "inputs itself)"
                    )
                wrapper = wrapper.venv
        found = (None, None)
        if env is not None and self.use_env_functions:
            found = (find_env_function(env, "reward_fn"), find_env_function(env, "termination_fn"))
        if self.uses_env_reward is None:  # first setup: the env decides
            self.uses_env_reward = found[0] is not None
            self.uses_env_termination = found[1] is not None
        if self.uses_env_reward and found[0] is not None:
            self.reward_fn = found[0]
        if self.uses_env_termination and found[1] is not None:
            self.termination_fn = found[1]
        if self.uses_env_reward and self.reward_fn is None:
            raise ValueError("this model uses the environment's reward_fn, but none was found")
