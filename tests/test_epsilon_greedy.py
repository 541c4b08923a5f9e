"""EpsilonGreedyAlgorithm: the exploration schedule and the statistics its subclasses log
(exercised through TabularDynaQ, the smallest of them)."""

from __future__ import annotations

import types
from collections import deque

import gymnasium as gym
import pytest
import torch as th
from stable_baselines3.common.logger import configure

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext import TabularDynaQ
from sb3_ext.common import epsilon_greedy


def tabular_model(**kwargs) -> TabularDynaQ:
    model = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), **kwargs)
    model.set_logger(configure(None, []))
    return model


def test_epsilon_anneals_linearly_over_the_exploration_fraction() -> None:
    model = tabular_model(exploration_fraction=0.5, exploration_initial_eps=1.0, exploration_final_eps=0.1)
    assert model.exploration_rate == 1.0  # before learn()
    for steps, expected in [(0, 1.0), (25, 0.55), (40, 0.28), (50, 0.1), (80, 0.1)]:
        model.num_timesteps = steps
        model._update_exploration_rate(100)
        assert model._current_progress_remaining == pytest.approx(1.0 - steps / 100)
        assert model.exploration_rate == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(exploration_fraction=0.0),
            r"^exploration_fraction must be a number in \(0(\.0)?, 1(\.0)?\], got 0.0",
        ),
        (
            dict(exploration_fraction=1.5),
            r"^exploration_fraction must be a number in \(0(\.0)?, 1(\.0)?\], got 1.5",
        ),
        (
            dict(exploration_initial_eps=-0.1),
            r"^exploration_initial_eps must be a number in \[0(\.0)?, 1(\.0)?\]",
        ),
        (
            dict(exploration_initial_eps=1.1),
            r"^exploration_initial_eps must be a number in \[0(\.0)?, 1(\.0)?\]",
        ),
        (
            dict(exploration_final_eps=-0.1),
            r"^exploration_final_eps must be a number in \[0(\.0)?, 1(\.0)?\]",
        ),
        (dict(exploration_final_eps=1.1), r"^exploration_final_eps must be a number in \[0(\.0)?, 1(\.0)?\]"),
    ],
)
def test_exploration_arguments_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tabular_model(**kwargs)
    # The bounds themselves are accepted: a schedule over all of learn(), from 0 or to 1.
    model = tabular_model(exploration_fraction=1.0, exploration_initial_eps=0.0, exploration_final_eps=1.0)
    assert (model.exploration_fraction, model.exploration_initial_eps, model.exploration_final_eps) == (
        1.0,
        0.0,
        1.0,
    )


def test_episode_statistics_are_recorded_when_there_are_episodes() -> None:
    model = tabular_model(exploration_initial_eps=0.3, exploration_final_eps=0.3)
    model.ep_info_buffer = deque(maxlen=100)
    model._record_episodes()
    assert model.logger.name_to_value == {"rollout/exploration_rate": 0.3}
    model.ep_info_buffer.append({"r": 7.0, "l": 3})  # one episode is enough
    model._record_episodes()
    assert model.logger.name_to_value["rollout/ep_rew_mean"] == 7.0
    assert model.logger.name_to_value["rollout/ep_len_mean"] == 3.0
    model.ep_info_buffer.clear()
    model.ep_info_buffer.extend([{"r": 1.0, "l": 4}, {"r": -2.0, "l": 10}, {"r": 4.0, "l": 1}])
    model._record_episodes()
    assert model.logger.name_to_value == {
        "rollout/exploration_rate": 0.3,
        "rollout/ep_rew_mean": pytest.approx(1.0),
        "rollout/ep_len_mean": pytest.approx(5.0),
    }


def test_time_statistics(monkeypatch) -> None:
    """fps counts the steps of this learn() call only; elapsed time and total steps stay out of TensorBoard."""
    model = tabular_model()
    model.start_time, model._num_timesteps_at_start, model.num_timesteps = 10**9, 300, 1300
    clock = types.SimpleNamespace(time_ns=lambda: 10**9 + 2_500_000_000)  # 2.5 s later
    monkeypatch.setattr(epsilon_greedy, "time", clock)
    model._record_time()
    logged, excluded = model.logger.name_to_value, model.logger.name_to_excluded
    assert logged == {"time/fps": 400, "time/time_elapsed": 2, "time/total_timesteps": 1300}
    assert type(logged["time/fps"]) is int and type(logged["time/time_elapsed"]) is int
    assert excluded["time/fps"] == ("",)
    assert excluded["time/time_elapsed"] == excluded["time/total_timesteps"] == ("tensorboard",)
    # Nanoseconds to seconds: exactly one second is 1 s elapsed.
    monkeypatch.setattr(epsilon_greedy, "time", types.SimpleNamespace(time_ns=lambda: 2 * 10**9))
    model._record_time()
    assert logged["time/time_elapsed"] == 1 and logged["time/fps"] == 1000
    # No time has passed (a coarse clock): the rate stays finite instead of dividing by zero.
    monkeypatch.setattr(epsilon_greedy, "time", types.SimpleNamespace(time_ns=lambda: 10**9))
    model._record_time()
    assert logged["time/time_elapsed"] == 0 and logged["time/fps"] > 10**15


class RecordingPolicy(th.nn.Module):
    """Records how it was built and where it was moved; its one weight is a draw of torch's RNG."""

    def __init__(self, observation_space, action_space, lr_schedule, **kwargs) -> None:
        super().__init__()
        self.spaces, self.lr_schedule, self.kwargs = (observation_space, action_space), lr_schedule, kwargs
        self.weight = th.nn.Parameter(th.randn(3))
        self.moved_to: list = []

    def to(self, device):
        self.moved_to.append(device)
        return super().to(device)


class MinimalEpsilonGreedy(epsilon_greedy.EpsilonGreedyAlgorithm):
    """The smallest subclass: builds its policy with one argument of its own."""

    def __init__(self, env, **kwargs) -> None:
        super().__init__(RecordingPolicy, env, **kwargs)
        self._set_exploration(0.5, 1.0, 0.2)
        self._setup_model()

    def _setup_model(self) -> None:
        self._setup_policy(width=7)

    def learn(self, *args, **kwargs):  # pragma: no cover - not needed here
        raise NotImplementedError


def test_setup_policy_seeds_then_builds_the_policy_with_its_arguments_and_the_schedule() -> None:
    env = gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index")
    model = MinimalEpsilonGreedy(env, learning_rate=0.25, seed=3, policy_kwargs=dict(depth=2))
    policy = model.policy
    assert isinstance(policy, RecordingPolicy)
    assert policy.spaces == (model.observation_space, model.action_space)
    assert policy.kwargs == {"width": 7, "depth": 2}
    assert policy.lr_schedule(1.0) == policy.lr_schedule(0.0) == 0.25
    assert policy.moved_to == [th.device("cpu")] == [model.device]
    # Seeded before the policy is built: its weights are torch's first draws after seed 3.
    th.manual_seed(3)
    expected = th.randn(3)
    th.manual_seed(12345)  # whatever the global state was before, the seed decides
    again = MinimalEpsilonGreedy(env, learning_rate=0.25, seed=3, policy_kwargs=dict(depth=2))
    assert th.equal(policy.weight.detach(), expected) and th.equal(again.policy.weight.detach(), expected)
    # The schedule goes from the initial to the final epsilon over the first half of learn().
    assert model.exploration_schedule(1.0) == 1.0
    assert model.exploration_schedule(0.75) == pytest.approx(0.6)
    assert model.exploration_schedule(0.5) == pytest.approx(0.2)
    assert model.exploration_schedule(0.0) == pytest.approx(0.2)
