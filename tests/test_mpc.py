"""WorldModelMPC specifics: env reward/termination discovery, planning API, errors, logging, learning."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext import WorldModelMPC

# Intra-op threads only add contention at these sizes (and stall badly on a busy 2-core machine).
th.set_num_threads(1)

SMALL = dict(
    learning_starts=100,
    train_freq=100,
    batch_size=64,
    n_model_epochs=5,
    horizon=6,
    population_size=30,
    n_elites=5,
    n_iterations=2,
    n_particles=2,
    policy_kwargs=dict(net_arch=[32, 32], n_members=2),
    device="cpu",
)


class ShapeBreakingReward(gym.Wrapper):
    """A wrapper whose ``reward_fn`` wrongly keeps a trailing dimension."""

    def reward_fn(self, obs, action, next_obs):
        return -(next_obs[..., :1] ** 2)


def test_env_functions_found_through_wrappers_and_vec_env():
    vec_env = make_vec_env(
        "AdvRL/Pendulum-v0", n_envs=2, seed=0, wrapper_class=gym.wrappers.RecordEpisodeStatistics
    )
    model = WorldModelMPC("MlpPolicy", vec_env, seed=0, **SMALL)
    unwrapped = vec_env.envs[0].unwrapped
    assert model.reward_fn.__self__ is unwrapped and model.termination_fn.__self__ is unwrapped
    assert not model.policy.dynamics.learn_reward and not model.policy.dynamics.learn_termination
    learned = WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", use_env_functions=False, seed=0, **SMALL)
    assert learned.reward_fn is None and learned.policy.dynamics.learn_reward
    assert learned.policy.dynamics.learn_termination


def test_vec_normalize_observations_are_refused():
    env = VecNormalize(make_vec_env("AdvRL/Pendulum-v0", n_envs=1, seed=0))
    with pytest.raises(ValueError, match="VecNormalize"):
        WorldModelMPC("MlpPolicy", env, **SMALL)


def test_invalid_hyperparameters_name_the_argument():
    with pytest.raises(ValueError, match="n_particles"):
        WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", **{**SMALL, "n_particles": 3})
    with pytest.raises(ValueError, match="n_elites"):
        WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", **{**SMALL, "n_elites": 31})
    for name, bad in [
        ("n_model_epochs", 0),
        ("max_model_steps", 0),
        ("holdout_ratio", 1.0),
        ("use_env_functions", "yes"),
        ("batch_size", 0),  # used to be a ZeroDivisionError inside the first model fit
    ]:
        with pytest.raises(ValueError, match=name):
            WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", **{**SMALL, name: bad})


def test_unbatched_and_batched_predict_with_warm_start_state():
    model = WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", seed=0, **SMALL)
    env = gym.make("AdvRL/Pendulum-v0")
    obs, _ = env.reset(seed=0)
    action, state = model.predict(obs, deterministic=True)
    assert action.shape == (1,) and state.shape == (1, SMALL["horizon"], 1)
    assert env.action_space.contains(action.astype(np.float32))
    again, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(action, again)  # deterministic planning is a pure function
    # A warm start changes the plan; episode_start=True discards it (cold start again).
    warm, _ = model.predict(obs, state=state, episode_start=np.array([False]), deterministic=True)
    cold, _ = model.predict(obs, state=state, episode_start=np.array([True]), deterministic=True)
    np.testing.assert_array_equal(cold, action)
    assert not np.array_equal(warm, action)
    batch = np.stack([env.observation_space.sample() for _ in range(4)])
    actions, states = model.predict(batch, deterministic=False)
    assert actions.shape == (4, 1) and states.shape == (4, SMALL["horizon"], 1)
    assert np.all(np.abs(actions) <= 2.0)
    with pytest.raises(ValueError, match="state holds plans for 4 observations, got 1"):
        model.predict(obs, state=states)


def test_discrete_actions_predict_shapes():
    model = WorldModelMPC("MlpPolicy", "AdvRL/SequenceTracking-v0", seed=0, **SMALL)
    obs, _ = gym.make("AdvRL/SequenceTracking-v0").reset(seed=0)
    action, state = model.predict(obs, deterministic=True)
    assert action.shape == () and action in (0, 1) and state.shape == (1, SMALL["horizon"])
    actions, _ = model.predict(np.stack([obs, obs, obs]))
    assert actions.shape == (3,)


def test_wrong_shaped_reward_fn_is_a_clear_error():
    env = ShapeBreakingReward(gym.make("AdvRL/Pendulum-v0"))
    model = WorldModelMPC("MlpPolicy", env, seed=0, **SMALL)
    assert model.reward_fn.__func__ is ShapeBreakingReward.reward_fn
    obs, _ = env.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"reward_fn must return one value per transition.*got shape \(6, 2, 30, 1\)"
    ):
        model.predict(obs)


def test_learn_logs_model_losses_and_planning_latency(tmp_path):
    model = WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", seed=0, **SMALL)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(400, log_interval=1)
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    last = rows[-1]
    for key in (
        "train/model_nll",
        "train/model_holdout_mse",
        "train/model_fit_time_s",
        "time/planning_ms_median",
    ):
        assert last[key] != "", key
    # Fits at 100 (learning_starts), 200 and 300 steps, each on all data so far; the dump at step 400
    # (end of the second episode) comes before the fit at 400.
    assert float(last["train/model_transitions"]) == 300
    assert model.planning_latency_ms.shape == (300,)  # steps 0..99 random, 100..399 planned


def test_learns_nonlinear_regulator_quickly():
    """With the env's reward, 400 steps of data give a controller 5x better than doing nothing."""
    kwargs = dict(SMALL, n_model_epochs=20, horizon=8, population_size=60, n_iterations=3)
    kwargs["policy_kwargs"] = dict(net_arch=[64, 64], n_members=3)
    model = WorldModelMPC("MlpPolicy", "AdvRL/NonlinearRegulator-v0", seed=0, **{**kwargs, "n_particles": 3})
    model.learn(400)
    env = gym.make("AdvRL/NonlinearRegulator-v0")
    env.reset(seed=11)
    mpc_return, _ = evaluate_policy(model, env, n_eval_episodes=2)
    env.reset(seed=11)
    zero_returns = []
    for _ in range(2):
        env.reset()
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
            total, done = total + reward, terminated or truncated
        zero_returns.append(total)
    assert mpc_return > 0.2 * np.mean(zero_returns), (mpc_return, zero_returns)  # returns are negative
