"""The reward and termination functions of ``sb3_ext.common.env_functions``: finding them on an env,
calling them on tensors, the choice between them and a model's heads, and the decision an algorithm
keeps through ``set_env`` and ``load``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

from sb3_ext.common.env_functions import (
    EnvFunctionsMixin,
    call_env_function,
    find_env_function,
    rewards_and_terminations,
)


class PointEnv(gym.Env):
    """A 2-D point whose reward and termination functions carry a tag, so that a test can tell
    which instance's function it got."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, tag: float = 0.0) -> None:
        self.tag = tag

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}

    def reward_fn(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        return self.tag - (next_obs**2).sum(-1)

    def termination_fn(self, next_obs: np.ndarray) -> np.ndarray:
        return np.abs(next_obs[..., 0]) > self.tag


class RewardOnlyEnv(PointEnv):
    """Has a reward function only; its ``termination_fn`` is a number, not a function."""

    termination_fn = 3.0  # type: ignore[assignment]


class PlainEnv(gym.Env):
    observation_space = PointEnv.observation_space
    action_space = PointEnv.action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


def vec(*envs: gym.Env) -> DummyVecEnv:
    return DummyVecEnv([lambda env=env: env for env in envs])


def test_find_env_function_takes_the_first_instances_callable_or_none() -> None:
    first, second = PointEnv(tag=1.0), PointEnv(tag=2.0)
    env = vec(first, second)
    # The first sub-environment's bound method, through gymnasium's wrappers too.
    assert find_env_function(env, "reward_fn") == first.reward_fn
    assert find_env_function(env, "termination_fn") == first.termination_fn
    wrapped = vec(gym.wrappers.TimeLimit(PointEnv(tag=5.0), 10))
    assert find_env_function(wrapped, "reward_fn")(None, None, np.zeros((1, 2))).tolist() == [5.0]
    # Missing, or present but not callable.
    assert find_env_function(vec(PlainEnv()), "reward_fn") is None
    assert find_env_function(vec(RewardOnlyEnv()), "termination_fn") is None
    assert find_env_function(vec(RewardOnlyEnv()), "reward_fn") is not None


def test_find_env_function_reads_only_the_first_instance_and_treats_attribute_errors_as_missing() -> None:
    class Recording(DummyVecEnv):
        """Records which instances each get_attr asks for."""

        asked: list

        def get_attr(self, attr_name, indices=None):
            self.asked = [*getattr(self, "asked", []), (attr_name, indices)]
            return super().get_attr(attr_name, indices)

    env = Recording([lambda: PointEnv(tag=1.0), lambda: PointEnv(tag=2.0)])
    env.asked = []
    assert find_env_function(env, "reward_fn")(None, None, np.zeros((1, 2))).tolist() == [1.0]
    # has_attr reads every instance; the function itself is read from the first only.
    assert env.asked == [("reward_fn", None), ("reward_fn", [0])]

    class Broken(DummyVecEnv):
        """Claims every attribute, then fails to read it."""

        def has_attr(self, attr_name):
            return True

        def get_attr(self, attr_name, indices=None):
            if attr_name == "render_mode":  # read once by VecEnv.__init__
                return [None] * self.num_envs
            raise AttributeError(attr_name)

    assert find_env_function(Broken([PlainEnv]), "reward_fn") is None


class OnAnotherDevice:
    """A CPU tensor that reports the meta device: where ``call_env_function`` must put its result."""

    device = th.device("meta")

    def __init__(self, tensor: th.Tensor) -> None:
        self.tensor = tensor

    def detach(self) -> th.Tensor:
        return self.tensor


def test_call_env_function_calls_numpy_and_returns_a_tensor_on_the_inputs_device() -> None:
    obs = th.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = call_env_function(lambda x, y: x[:, 0] * y[:, 1], "reward_fn", (2,), obs, obs + 1)
    assert isinstance(out, th.Tensor) and out.device == obs.device
    np.testing.assert_array_equal(out.numpy(), [3.0, 15.0])
    moved = call_env_function(lambda x: x.sum(-1), "reward_fn", (2,), OnAnotherDevice(obs.detach()))
    assert moved.device.type == "meta" and tuple(moved.shape) == (2,)
    message = (
        r"^termination_fn must return one value per transition, i\.e\. an array shaped like the "
        r"inputs' leading dims \(2,\), got shape \(2, 1\)$"
    )
    with pytest.raises(ValueError, match=message):
        call_env_function(lambda x: x[:, :1] > 0, "termination_fn", (2,), obs)


def test_rewards_and_terminations_prefer_the_env_functions_over_the_model_heads() -> None:
    env = PointEnv(tag=1.5)
    obs = th.zeros(3, 4, 2)
    actions = th.zeros(3, 4, 2)
    next_obs = th.linspace(-2.0, 2.0, 24).reshape(3, 4, 2)
    model_rewards = th.full((3, 4), 7.0, dtype=th.float64)
    model_terminations = th.tensor([[0, 1, 0, 1]] * 3)
    expected_rewards = 1.5 - (next_obs**2).sum(-1)
    expected_terminations = next_obs[..., 0].abs() > 1.5

    rewards, terminations = rewards_and_terminations(
        obs, actions, next_obs, model_rewards, model_terminations, env.reward_fn, env.termination_fn
    )
    assert rewards.dtype == th.float32 and terminations.dtype == th.bool
    np.testing.assert_allclose(rewards.numpy(), expected_rewards.numpy(), rtol=1e-6)
    assert th.equal(terminations, expected_terminations)

    rewards, terminations = rewards_and_terminations(
        obs, actions, next_obs, model_rewards, model_terminations
    )
    assert rewards.dtype == th.float32 and th.equal(rewards, th.full((3, 4), 7.0))
    assert terminations.dtype == th.bool and th.equal(terminations, model_terminations.bool())

    rewards, terminations = rewards_and_terminations(obs, actions, next_obs, model_rewards, None)
    assert terminations is None
    rewards, terminations = rewards_and_terminations(
        obs, actions, next_obs, None, None, env.reward_fn, env.termination_fn
    )
    np.testing.assert_allclose(rewards.numpy(), expected_rewards.numpy(), rtol=1e-6)
    assert th.equal(terminations, expected_terminations)
    with pytest.raises(ValueError, match=r"^reward_fn must return one value per transition"):
        rewards_and_terminations(obs, actions, next_obs, None, None, lambda o, a, n: n)
    message = r"^a reward_fn is required when the model has no reward head \(learn_reward=False\)$"
    with pytest.raises(ValueError, match=message):
        rewards_and_terminations(obs, actions, next_obs, None, model_terminations, None, env.termination_fn)


class Algorithm(EnvFunctionsMixin):
    """What an algorithm sets before its first ``_resolve_env_functions``."""

    def __init__(self, env, use_env_functions: bool = True) -> None:
        self.env, self.use_env_functions = env, use_env_functions
        self.reward_fn = self.termination_fn = None
        self.uses_env_reward = self.uses_env_termination = None


def test_the_first_env_decides_and_later_envs_only_supply_the_functions() -> None:
    first = PointEnv(tag=1.0)
    algo = Algorithm(VecMonitor(vec(first)))
    algo._resolve_env_functions()
    assert (algo.uses_env_reward, algo.uses_env_termination) == (True, True)
    assert algo.reward_fn == first.reward_fn and algo.termination_fn == first.termination_fn
    # A new env with its own functions supplies them; one without keeps the old ones.
    second = PointEnv(tag=2.0)
    algo.env = vec(second)
    algo._resolve_env_functions()
    assert algo.reward_fn == second.reward_fn and algo.termination_fn == second.termination_fn
    algo.env = vec(RewardOnlyEnv(tag=3.0))
    algo._resolve_env_functions()
    assert algo.reward_fn(None, None, np.zeros((1, 2))).tolist() == [3.0]
    assert algo.termination_fn == second.termination_fn
    algo.env = vec(PlainEnv())
    algo._resolve_env_functions()
    assert algo.reward_fn(None, None, np.zeros((1, 2))).tolist() == [3.0]
    assert algo.termination_fn == second.termination_fn
    assert (algo.uses_env_reward, algo.uses_env_termination) == (True, True)


def test_an_env_with_a_reward_function_only_decides_for_a_learned_termination() -> None:
    algo = Algorithm(vec(RewardOnlyEnv(tag=4.0)))
    algo._resolve_env_functions()
    assert (algo.uses_env_reward, algo.uses_env_termination) == (True, False)
    assert algo.reward_fn is not None and algo.termination_fn is None
    # Decided for a learned termination: a later env's termination_fn is not taken.
    algo.env = vec(PointEnv(tag=5.0))
    algo._resolve_env_functions()
    assert algo.termination_fn is None and algo.uses_env_termination is False
    assert algo.reward_fn(None, None, np.zeros((1, 2))).tolist() == [5.0]


def test_an_env_without_functions_or_use_env_functions_false_decides_for_learned_heads() -> None:
    for algo in (Algorithm(vec(PlainEnv())), Algorithm(vec(PointEnv()), use_env_functions=False)):
        algo._resolve_env_functions()
        assert (algo.uses_env_reward, algo.uses_env_termination) == (False, False)
        assert algo.reward_fn is None and algo.termination_fn is None
        # Decided: a later env with functions changes nothing.
        algo.env = vec(PointEnv(tag=1.0))
        algo._resolve_env_functions()
        assert (algo.uses_env_reward, algo.uses_env_termination) == (False, False)
        assert algo.reward_fn is None and algo.termination_fn is None
    # Built without an env (load): nothing found, so learned heads, and no error.
    algo = Algorithm(None)
    algo._resolve_env_functions()
    assert (algo.uses_env_reward, algo.uses_env_termination) == (False, False)


def test_a_loaded_model_that_uses_the_env_reward_needs_an_env_that_has_it() -> None:
    algo = Algorithm(None)
    algo.uses_env_reward, algo.uses_env_termination = True, True  # as load() restores them
    with pytest.raises(
        ValueError, match=r"^this model uses the environment's reward_fn, but none was found$"
    ):
        algo._resolve_env_functions()
    algo.env = vec(PlainEnv())
    with pytest.raises(
        ValueError, match=r"^this model uses the environment's reward_fn, but none was found$"
    ):
        algo._resolve_env_functions()
    env = PointEnv(tag=1.0)
    algo.env = vec(env)
    algo._resolve_env_functions()
    assert algo.reward_fn == env.reward_fn and algo.termination_fn == env.termination_fn
    # A missing termination_fn is not an error here (the algorithm decides what that means).
    fresh = Algorithm(vec(RewardOnlyEnv()))
    fresh.uses_env_reward, fresh.uses_env_termination = True, True
    fresh._resolve_env_functions()
    assert fresh.reward_fn is not None and fresh.termination_fn is None


def test_observation_normalization_anywhere_in_the_wrappers_is_rejected() -> None:
    message = (
        r"^Algorithm's model predicts the environment's own observation units: do not wrap the env in "
        r"VecNormalize\(norm_obs=True\) \(the ensemble normalizes its inputs itself\)$"
    )
    for env in (VecNormalize(vec(PointEnv())), VecMonitor(VecNormalize(vec(PointEnv())))):
        with pytest.raises(ValueError, match=message):
            Algorithm(env)._resolve_env_functions()
    # Reward normalization alone is fine, and so are other wrappers (which have no norm_obs).
    for env in (VecNormalize(vec(PointEnv()), norm_obs=False), VecMonitor(VecMonitor(vec(PointEnv())))):
        algo = Algorithm(env)
        algo._resolve_env_functions()
        assert (algo.uses_env_reward, algo.uses_env_termination) == (True, True)
