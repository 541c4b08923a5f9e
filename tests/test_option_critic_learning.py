"""OptionCritic learning a task: a longer run than the unit tests of ``tests/test_option_critic.py``
and ``tests/test_option_critic_units.py`` (kept apart so that the mutation runs of
``sb3_ext/option_critic`` select the fast tests only)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.option_critic import OptionCritic


@pytest.fixture
def one_thread():
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


def test_learns_gridworld(one_thread) -> None:
    """5x5 GridWorld (one-hot cells): the greedy options reach the goal on a shortest path."""
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=4, seed=0, env_kwargs=dict(obs_mode="index"))
    model = OptionCritic(
        "MlpPolicy",
        env,
        n_options=2,
        learning_rate=3e-3,
        target_update_interval=200,
        exploration_fraction=0.2,
        policy_kwargs=dict(net_arch=[32]),
        seed=0,
        device="cpu",
    )
    model.learn(10_000)
    eval_env = gym.make("AdvRL/GridWorld-v0", obs_mode="index")
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=True, warn=False)
    assert mean_return > 9.2  # 8 moves from (0, 0) to (4, 4): 10 - 7 * 0.1 = 9.3; a loop scores -10
    assert np.mean(model.option_durations) > 2.0  # options outlast single steps
