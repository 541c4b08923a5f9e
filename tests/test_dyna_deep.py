"""Deep Dyna, unit by unit: defaults and argument errors, the target-sync interval, exact
imagined transitions (actions, clipping, early stop, bonus), the model-fit schedule, mixed and
normalized batches, one exact Q-learning step, the logged values and save/load of
:class:`sb3_ext.dyna.Dyna`."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from torch.nn import functional as F

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.dyna import Dyna, ModelReplayBuffer

TINY = dict(
    model_kwargs=dict(n_members=2, hidden_sizes=(8,)),
    policy_kwargs=dict(net_arch=[8]),
    model_gradient_steps=2,
    model_batch_size=16,
    device="cpu",
    seed=0,
)


def exact(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern that accepts exactly ``message``."""
    return f"^{re.escape(message)}$"


def tiny_dyna(env=None, **kwargs) -> Dyna:
    model = Dyna(
        "MlpPolicy", env if env is not None else gym.make("AdvRL/GridWorld-v0", size=4), **{**TINY, **kwargs}
    )
    model.set_logger(configure(None, [""]))
    return model


def fill_replay(model: Dyna, n: int = 64, action_of=lambda obs: 0) -> np.ndarray:
    """Add ``n`` real transitions from the cells of the 4x4 grid (row-major, repeating) with the
    action ``action_of(cell)``; returns their observations."""
    cells = np.array([[r, c] for r in range(4) for c in range(4)], dtype=np.float32)
    obs = cells[np.arange(n) % 16]
    for row in obs:
        model.replay_buffer.add(
            row[None], row[None], np.array([action_of(row)]), np.array([-0.1]), np.array([False]), [{}]
        )
    return obs


class ShiftModel(ProbabilisticEnsemble):
    """A fixed model: ``next = obs + shift[action]``, reward ``rewards[action]``, termination
    where ``terminal[action]``; counts its queries and keeps the ``deterministic`` flags it got."""

    shift = th.tensor([[-1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])
    rewards = th.tensor([1.0, 2.0, 3.0, 4.0])
    terminal = th.tensor([False, False, False, False])
    learn = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.flags = 0, []

    def sample(self, obs, actions, member_indices=None, deterministic=False, generator=None):
        self.calls += 1
        self.flags.append(deterministic)
        obs, actions = th.as_tensor(obs, device="cpu"), th.as_tensor(actions, device="cpu").long()
        rewards = self.rewards[actions] if self.learn else None
        return obs + self.shift[actions], rewards, self.terminal[actions]


class AlwaysTerminates(ShiftModel):
    terminal = th.tensor([True, True, True, True])


class FarModel(ShiftModel):
    shift = th.tensor([[-100.0, 0.0], [0.0, 100.0], [100.0, 0.0], [0.0, -100.0]])


class NoRewardModel(ShiftModel):
    """No reward head (``learn_reward=False``) and a disagreement of ``obs_row + 1`` per sample."""

    learn = False

    def disagreement(self, obs, actions):
        return th.as_tensor(obs, device="cpu")[:, 0] + 1.0


# ---------------------------------------------------------------------------- construction
def test_dyna_defaults():
    """DQN's defaults (SB3's) and the Dyna defaults the docstring states."""
    model = Dyna("MlpPolicy", gym.make("AdvRL/GridWorld-v0", size=4))
    assert model.device == get_device("auto")  # SB3's default: the GPU when there is one
    assert (model.learning_rate, model.buffer_size, model.learning_starts, model.batch_size) == (
        1e-4,
        1_000_000,
        100,
        32,
    )
    assert (model.tau, model.gamma, model.gradient_steps, model.target_update_interval) == (
        1.0,
        0.99,
        1,
        10000,
    )
    assert (model.train_freq.frequency, model.train_freq.unit.value) == (4, "step")
    assert (model.exploration_fraction, model.exploration_initial_eps, model.exploration_final_eps) == (
        0.1,
        1.0,
        0.05,
    )
    assert (model.max_grad_norm, model._stats_window_size, model.verbose, model.tensorboard_log) == (
        10,
        100,
        0,
        None,
    )
    assert (model.planning_steps, model.real_ratio, model.planning_updates, model.rollout_length) == (
        10,
        0.5,
        0,
        1,
    )
    assert (model.model_train_freq, model.model_learning_starts, model.model_buffer_size) == (
        250,
        100,
        20_000,
    )
    assert (model.model_gradient_steps, model.model_batch_size, model.imagined_actions) == (
        200,
        256,
        "uniform",
    )
    assert (model.model_noise, model.exploration_bonus, model.planning_gamma) == (True, 0.0, None)
    assert model.model_class is ProbabilisticEnsemble and model.model_kwargs == {"nll_beta": 0.5}
    # DQN's 1 update per 4 steps and a sync every 10000 steps: 2500 updates between two syncs.
    assert model.planning_target_update_interval == 2500
    assert type(model.dynamics_model) is ProbabilisticEnsemble and model.dynamics_model.nll_beta == 0.5
    assert model.dynamics_model.n_members == 5  # the ensemble's own default
    assert model.model_buffer.buffer_size == 20_000 and model.model_buffer.gamma == 0.99
    assert model.model_buffer.device == model.device and model.model_buffer.size() == 0
    assert (
        model._model_fits == 0 and model._planning_updates_done == 0 and model._pending_planning_updates == 0
    )
    low, high = model._obs_bounds
    assert low.tolist() == [0.0, 0.0] and high.tolist() == [3.0, 3.0] and low.dtype == th.float32
    # model_learning_starts follows learning_starts unless given; model_kwargs override nll_beta.
    other = Dyna(
        "MlpPolicy",
        gym.make("AdvRL/GridWorld-v0", size=4),
        learning_starts=7,
        model_kwargs={"nll_beta": 0.0, "n_members": 2},
    )
    assert other.model_learning_starts == 7 and other.model_kwargs == {"nll_beta": 0.0, "n_members": 2}
    assert other.dynamics_model.nll_beta == 0.0 and other.dynamics_model.n_members == 2
    assert (
        Dyna(
            "MlpPolicy", gym.make("AdvRL/GridWorld-v0", size=4), learning_starts=7, model_learning_starts=3
        ).model_learning_starts
        == 3
    )


def test_dyna_keeps_every_argument():
    """Non-default values of every argument reach the learner (DQN's through SB3's constructor)."""
    model = Dyna(
        "MlpPolicy",
        gym.make("AdvRL/GridWorld-v0", size=4),
        learning_rate=3e-3, buffer_size=500, learning_starts=11, batch_size=17, tau=0.5, gamma=0.8,
        train_freq=3, gradient_steps=2, target_update_interval=77, exploration_fraction=0.3,
        exploration_initial_eps=0.9, exploration_final_eps=0.2, max_grad_norm=4.0, planning_steps=3,
        real_ratio=0.7, planning_updates=2, planning_target_update_interval=9, rollout_length=2,
        model_train_freq=13, model_learning_starts=12, model_buffer_size=300, model_gradient_steps=7,
        model_batch_size=19, imagined_actions="policy", model_noise=False, exploration_bonus=0.3,
        planning_gamma=0.6, model_kwargs=dict(n_members=3, hidden_sizes=(8,)), stats_window_size=7,
        tensorboard_log="runs", policy_kwargs=dict(net_arch=[5]), verbose=1, seed=4, device="cpu",
    )  # fmt: skip
    assert (model.learning_rate, model.buffer_size, model.learning_starts, model.batch_size) == (
        3e-3,
        500,
        11,
        17,
    )
    assert (model.tau, model.gamma, model.train_freq.frequency, model.gradient_steps) == (0.5, 0.8, 3, 2)
    assert (model.target_update_interval, model.exploration_fraction) == (77, 0.3)
    assert (model.exploration_initial_eps, model.exploration_final_eps, model.max_grad_norm) == (
        0.9,
        0.2,
        4.0,
    )
    assert (
        model.planning_steps,
        model.real_ratio,
        model.planning_updates,
        model.planning_target_update_interval,
    ) == (3, 0.7, 2, 9)
    assert (model.rollout_length, model.model_train_freq, model.model_learning_starts) == (2, 13, 12)
    assert (model.model_buffer_size, model.model_gradient_steps, model.model_batch_size) == (300, 7, 19)
    assert (model.imagined_actions, model.model_noise, model.exploration_bonus, model.planning_gamma) == (
        "policy",
        False,
        0.3,
        0.6,
    )
    assert model.model_kwargs == {"nll_beta": 0.5, "n_members": 3, "hidden_sizes": (8,)}
    assert model.dynamics_model.n_members == 3
    assert (model._stats_window_size, model.tensorboard_log, model.verbose, model.seed) == (7, "runs", 1, 4)
    assert model.policy_kwargs == {"net_arch": [5]} and model.q_net.q_net[0].out_features == 5
    assert model.replay_buffer.buffer_size == 500 and model.model_buffer.buffer_size == 300
    assert model.model_buffer.gamma == 0.6 and model.lr_schedule(1.0) == 3e-3


def test_dyna_builds_everything_on_its_device():
    """The Q-networks, the ensemble, both buffers and the observation bounds on the learner's device
    (PyTorch's meta device here: nothing is computed)."""
    model = Dyna("MlpPolicy", gym.make("AdvRL/GridWorld-v0", size=4), device="meta", buffer_size=100,
                 model_kwargs=dict(n_members=2, hidden_sizes=(8,)))  # fmt: skip
    assert model.device == th.device("meta") and model.dynamics_model.device == th.device("meta")
    assert next(model.q_net.parameters()).device == th.device("meta")
    assert model.replay_buffer.device == model.model_buffer.device == th.device("meta")
    assert all(bound.device == th.device("meta") for bound in model._obs_bounds)


class GridImage(gym.Env):
    """A Box observation that is not flat: (2, 2)."""

    observation_space = spaces.Box(0.0, 1.0, (2, 2))
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((2, 2), np.float32), {}

    def step(self, action):
        return np.zeros((2, 2), np.float32), 0.0, False, False, {}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"planning_steps": -1}, "planning_steps must be an integer in [0, inf), got -1"),
        ({"real_ratio": 1.5}, "real_ratio must be a number in [0, 1], got 1.5"),
        ({"real_ratio": -0.5}, "real_ratio must be a number in [0, 1], got -0.5"),
        ({"planning_updates": -1}, "planning_updates must be an integer in [0, inf), got -1"),
        ({"rollout_length": 0}, "rollout_length must be an integer in [1, inf), got 0"),
        ({"planning_target_update_interval": 0}, "planning_target_update_interval must be an integer in [1, inf), got 0"),
        ({"model_train_freq": 0}, "model_train_freq must be an integer in [1, inf), got 0"),
        ({"model_learning_starts": -1}, "model_learning_starts must be an integer in [0, inf), got -1"),
        ({"learning_starts": -1}, "learning_starts must be an integer >= 0, got -1"),
        ({"model_buffer_size": 0}, "model_buffer_size must be an integer in [1, inf), got 0"),
        ({"model_gradient_steps": 0}, "model_gradient_steps must be an integer in [1, inf), got 0"),
        ({"model_batch_size": 0}, "model_batch_size must be an integer in [1, inf), got 0"),
        ({"imagined_actions": "random"}, "imagined_actions must be one of ('uniform', 'policy', 'replay'), got 'random'"),
        ({"model_noise": "no"}, "model_noise must be True or False, got 'no'"),
        ({"exploration_bonus": -0.5}, "exploration_bonus must be a number in [0, inf), got -0.5"),
        ({"planning_gamma": 1.5}, "planning_gamma must be a number in [0, 1], got 1.5"),
        ({"planning_gamma": -0.1}, "planning_gamma must be a number in [0, 1], got -0.1"),
        ({"model_class": dict}, "model_class must be ProbabilisticEnsemble or a subclass of it, got <class 'dict'>"),
        ({"model_class": "ProbabilisticEnsemble"}, "model_class must be ProbabilisticEnsemble or a subclass of it, got 'ProbabilisticEnsemble'"),
        ({"model_kwargs": [("n_members", 2)]}, "model_kwargs must be a dict of ProbabilisticEnsemble arguments or None, got [('n_members', 2)]"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"buffer_size": 10, "batch_size": 16}, "buffer_size must be an integer >= 16 (batch_size), got 10"),
        ({"gamma": 2.0}, "gamma must be a number in [0, 1], got 2.0"),
    ],
)  # fmt: skip
def test_dyna_argument_errors_are_exact(kwargs, message):
    with pytest.raises(ValueError, match=exact(message)):
        Dyna("MlpPolicy", gym.make("AdvRL/GridWorld-v0", size=4), **kwargs)


def test_dyna_boundary_arguments_are_accepted():
    model = tiny_dyna(planning_steps=0, real_ratio=0.0, rollout_length=1, model_learning_starts=0,
                      model_buffer_size=1, planning_gamma=0.0, exploration_bonus=0.0, planning_updates=0,
                      planning_target_update_interval=1, model_train_freq=1)  # fmt: skip
    assert (model.planning_steps, model.real_ratio, model.planning_gamma, model._planning_gamma) == (
        0,
        0.0,
        0.0,
        0.0,
    )
    assert (model.model_learning_starts, model.model_buffer_size, model.planning_target_update_interval) == (
        0,
        1,
        1,
    )
    assert tiny_dyna(real_ratio=1.0, planning_gamma=1.0)._planning_gamma == 1.0
    assert tiny_dyna(model_noise=np.bool_(False)).model_noise is False


def test_dyna_space_errors_are_exact():
    index = gym.make("AdvRL/GridWorld-v0", obs_mode="index")
    for env in (index, GridImage()):
        message = (
            f"Dyna needs a flat Box observation space (its model predicts observations), got {env.observation_space}; "
            "use TabularDynaQ for Discrete observation spaces"
        )
        with pytest.raises(ValueError, match=exact(message)):
            Dyna("MlpPolicy", env, device="cpu")


class OtherBuffer(ReplayBuffer):
    pass


def test_dyna_needs_the_plain_replay_buffer():
    message = (
        "Dyna needs SB3's plain ReplayBuffer without optimize_memory_usage (the model is fitted "
        "to its arrays), got {}"
    )
    model = tiny_dyna(_init_setup_model=False)
    model.replay_buffer_class = OtherBuffer
    with pytest.raises(ValueError, match=exact(message.format("OtherBuffer"))):
        model._setup_model()
    model = tiny_dyna(_init_setup_model=False)
    model.optimize_memory_usage = True
    model.replay_buffer_kwargs = {"handle_timeout_termination": False}
    with pytest.raises(ValueError, match=exact(message.format("ReplayBuffer"))):
        model._setup_model()


@pytest.mark.parametrize(
    "kwargs, n_envs, expected",
    [
        (dict(target_update_interval=100, train_freq=(1, "episode"), gradient_steps=2), 1, 200),
        (dict(target_update_interval=100, train_freq=4, gradient_steps=-1), 1, 100),
        (dict(target_update_interval=1, train_freq=8, gradient_steps=1), 1, 1),
        (dict(target_update_interval=2, train_freq=1, gradient_steps=3), 4, 3),
        (dict(target_update_interval=400, train_freq=2, gradient_steps=1), 2, 100),
        (dict(target_update_interval=7, train_freq=1, gradient_steps=1), 2, 3),
        (dict(target_update_interval=100, train_freq=(2, "episode"), gradient_steps=3), 1, 300),
        (dict(target_update_interval=100, train_freq=4, gradient_steps=0), 1, 100),
        (dict(target_update_interval=100, planning_target_update_interval=7), 1, 7),
    ],
)
def test_planning_target_update_interval_matches_dqn_updates_between_syncs(kwargs, n_envs, expected):
    """gradient_steps per train_freq call (-1: one per call), syncs every target_update_interval //
    n_envs calls (at least 1): their product, rounded, at least 1; an explicit value is kept."""
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=n_envs, env_kwargs=dict(size=4)) if n_envs > 1 else None
    assert tiny_dyna(env, **kwargs).planning_target_update_interval == expected


# ---------------------------------------------------------------------------- imagination
def test_imagined_first_actions_follow_imagined_actions():
    """ "replay": the action taken in the replayed state; "policy" with epsilon 0: the greedy action
    of the Q-network, with epsilon 1: uniformly random; "uniform": uniformly random."""
    action_of = lambda obs: int(obs[0] + 2 * obs[1]) % 4  # noqa: E731
    model = tiny_dyna(imagined_actions="replay", model_class=ShiftModel, model_noise=False)
    fill_replay(model, action_of=action_of)
    model.imagine(200)
    buffer = model.model_buffer
    obs, actions = buffer.observations[:200, 0], buffer.actions[:200, 0, 0]
    np.testing.assert_array_equal(actions, [action_of(row) for row in obs])
    np.testing.assert_array_equal(
        buffer.next_observations[:200, 0], np.clip(obs + ShiftModel.shift.numpy()[actions], 0, 3)
    )
    np.testing.assert_array_equal(buffer.rewards[:200, 0], ShiftModel.rewards.numpy()[actions])
    assert model.dynamics_model.flags == [True]  # model_noise=False: the members' means

    greedy = tiny_dyna(imagined_actions="policy", model_class=ShiftModel)
    fill_replay(greedy)
    greedy.exploration_rate = 0.0
    greedy.imagine(200)
    obs = th.as_tensor(greedy.model_buffer.observations[:200, 0])
    np.testing.assert_array_equal(
        greedy.model_buffer.actions[:200, 0, 0], greedy.q_net(obs).argmax(dim=1).numpy()
    )
    assert greedy.dynamics_model.flags == [False]  # model_noise=True (default): sampled
    for imagined_actions, epsilon in (("policy", 1.0), ("uniform", 0.0)):
        model = tiny_dyna(imagined_actions=imagined_actions, model_class=ShiftModel)
        fill_replay(model)
        model.exploration_rate = epsilon
        model.imagine(4000)
        counts = np.bincount(model.model_buffer.actions[:4000, 0, 0].astype(int), minlength=4) / 4000
        np.testing.assert_allclose(counts, 0.25, atol=0.03)


@pytest.mark.parametrize("imagined_actions", ["uniform", "policy", "replay"])
def test_imagination_keeps_its_tensors_on_the_learner_device(imagined_actions):
    """With another default device (PyTorch's meta device, where nothing can be computed), imagining
    still works: every tensor it makes is on the learner's device."""
    model = tiny_dyna(model_class=ShiftModel, imagined_actions=imagined_actions, rollout_length=2)
    fill_replay(model)
    model.exploration_rate = 0.5
    with th.device("meta"):
        model.imagine(32)
    assert model.model_buffer.size() == 32
    np.testing.assert_allclose(model.model_buffer.discounts[:32, 0], 0.99**2, rtol=1e-6)


def test_imagined_states_are_clipped_to_the_observation_space():
    model = tiny_dyna(model_class=FarModel)
    fill_replay(model)
    model.imagine(100)
    buffer = model.model_buffer
    expected = np.clip(
        buffer.observations[:100, 0] + FarModel.shift.numpy()[buffer.actions[:100, 0, 0]], 0.0, 3.0
    )
    np.testing.assert_array_equal(buffer.next_observations[:100, 0], expected)
    assert {0.0, 3.0} <= set(np.unique(buffer.next_observations[:100, 0]).tolist())


def test_a_rollout_stops_querying_the_model_once_every_row_terminated():
    model = tiny_dyna(model_class=AlwaysTerminates, rollout_length=4, gamma=0.5)
    fill_replay(model)
    model.imagine(50)
    assert model.dynamics_model.calls == 1
    buffer = model.model_buffer
    np.testing.assert_array_equal(buffer.dones[:50, 0], 1.0)
    np.testing.assert_allclose(buffer.discounts[:50, 0], 0.5)  # one step taken: gamma^1
    np.testing.assert_array_equal(
        buffer.rewards[:50, 0], ShiftModel.rewards.numpy()[buffer.actions[:50, 0, 0]]
    )
    continuing = tiny_dyna(model_class=ShiftModel, rollout_length=4, gamma=0.5)
    fill_replay(continuing)
    continuing.imagine(50)
    assert continuing.dynamics_model.calls == 4
    np.testing.assert_allclose(continuing.model_buffer.discounts[:50, 0], 0.5**4)
    np.testing.assert_array_equal(continuing.model_buffer.dones[:50, 0], 0.0)


def test_exploration_bonus_is_the_whole_reward_without_a_reward_head():
    """No learned reward: each imagined reward is kappa times the disagreement (here row + 1 of the
    state the model is queried from); the logged bonus is the mean of the first step's; a k-step
    return sums the discounted bonuses of its steps."""
    model = tiny_dyna(model_class=NoRewardModel, exploration_bonus=0.5, imagined_actions="replay")
    fill_replay(model, action_of=lambda obs: 2)  # down: row + 1 (clipped at 3)
    model.imagine(64)
    rows = model.model_buffer.observations[:64, 0, 0]
    np.testing.assert_allclose(model.model_buffer.rewards[:64, 0], 0.5 * (rows + 1.0))
    assert model.logger.name_to_value["model/exploration_bonus"] == pytest.approx(0.5 * (rows + 1.0).mean())
    two = tiny_dyna(model_class=NoRewardModel, exploration_bonus=0.5, imagined_actions="replay",
                    rollout_length=2, gamma=0.5)  # fmt: skip
    fill_replay(two, action_of=lambda obs: 2)
    two.imagine(64)
    rows = two.model_buffer.observations[:64, 0, 0]
    first, second = 0.5 * (rows + 1.0), 0.5 * (np.clip(rows + 1.0, 0.0, 3.0) + 1.0)
    np.testing.assert_allclose(two.model_buffer.rewards[:64, 0], first + 0.5 * second, rtol=1e-6)
    assert two.logger.name_to_value["model/exploration_bonus"] == pytest.approx(first.mean())
    # Without a bonus and without a reward head, imagined rewards are 0.
    plain = tiny_dyna(model_class=NoRewardModel, imagined_actions="replay")
    fill_replay(plain, action_of=lambda obs: 2)
    plain.imagine(16)
    np.testing.assert_array_equal(plain.model_buffer.rewards[:16, 0], 0.0)
    assert "model/exploration_bonus" not in plain.logger.name_to_value


def test_greedy_actions_see_normalized_observations():
    """With VecNormalize, the Q-network works on normalized observations: imagined greedy actions
    come from the normalized replayed state."""
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("AdvRL/GridWorld-v0", size=4)]), norm_reward=False)
    venv.obs_rms.mean[:] = [1.5, 1.5]
    venv.obs_rms.var[:] = [0.25, 4.0]
    model = tiny_dyna(venv, imagined_actions="policy", model_class=ShiftModel)
    model.exploration_rate = 0.0
    raw = th.tensor([[0.0, 0.0], [3.0, 3.0], [0.0, 3.0], [3.0, 0.0]])
    normalized = th.as_tensor(venv.normalize_obs(raw.numpy()))
    assert not th.allclose(raw, normalized)
    np.testing.assert_array_equal(
        model._greedy_actions(raw).numpy(), model.q_net(normalized).argmax(dim=1).numpy()
    )
    # The replay buffer of a VecNormalize learner holds raw observations, which imagine() replays.
    fill_replay(model)
    model.imagine(64)
    obs = model.model_buffer.observations[:64, 0]
    expected = model.q_net(th.as_tensor(venv.normalize_obs(obs))).argmax(dim=1).numpy()
    np.testing.assert_array_equal(model.model_buffer.actions[:64, 0, 0], expected)


# ---------------------------------------------------------------------------- schedule
def test_model_fits_and_imagination_follow_the_schedule_with_two_envs():
    """2 envs, learning_starts 10, model_train_freq 8: the first fit at step 10 (call 5), then every
    8 // 2 = 4 calls (calls 8, 12, 16, 20); from call 5 on every call imagines 2 x 2 transitions
    and owes 3 x 2 planning updates."""
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=2, seed=0, env_kwargs=dict(size=4))
    model = tiny_dyna(env, learning_starts=10, model_train_freq=8, planning_steps=2, planning_updates=3,
                      train_freq=1, gradient_steps=0, target_update_interval=1000)  # fmt: skip
    fits = []
    original = model.train_model
    model.train_model = lambda: (fits.append(model.num_timesteps), original())[1]
    model.learn(40)
    assert fits == [10, 16, 24, 32, 40]
    assert model._model_fits == 5 and model.model_buffer.size() == 16 * 2 * 2
    assert model._pending_planning_updates == 16 * 3 * 2  # train() never ran (gradient_steps 0)
    late = tiny_dyna(learning_starts=4, model_learning_starts=9, model_train_freq=3, planning_steps=1,
                     train_freq=1, gradient_steps=0)  # fmt: skip
    fits = []
    original_late = late.train_model
    late.train_model = lambda: (fits.append(late.num_timesteps), original_late())[1]
    late.learn(15)
    assert fits == [9, 12, 15] and late.model_buffer.size() == 7
    # model_train_freq 3 with 2 envs: 3 // 2 = 1 call between fits, every call.
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=2, seed=0, env_kwargs=dict(size=4))
    often = tiny_dyna(env, learning_starts=0, model_train_freq=3, planning_steps=0, planning_updates=2,
                      train_freq=1, gradient_steps=0)  # fmt: skip
    often.learn(10)
    # planning_steps=0: the model is fitted, but nothing is imagined and no planning update is owed.
    assert often._model_fits == 5 and often.model_buffer.size() == 0 and often._pending_planning_updates == 0


def test_train_model_fits_all_real_transitions_and_logs_the_fit():
    model = tiny_dyna(model_gradient_steps=3, model_batch_size=8)
    fill_replay(model, n=40, action_of=lambda obs: int(obs[1]) % 4)
    received = {}
    fit = model.dynamics_model.fit

    def recording_fit(*data, **kwargs):
        received.update(kwargs, n=len(data[0]))
        return fit(*data, **kwargs)

    model.dynamics_model.fit = recording_fit
    stats = model.train_model()
    assert received["n"] == 40 and received["batch_size"] == 8 and received["max_gradient_steps"] == 3
    assert received["generator"] is model._model_rng
    assert stats["gradient_steps"] == 3
    logged = model.logger.name_to_value
    assert {key: logged[f"model/{key}"] for key in stats} == stats
    assert logged["model/fits"] == 1 and model._model_fits == 1
    excluded = model.logger.name_to_excluded  # counters stay out of TensorBoard, as SB3's own
    assert excluded["model/fits"] == ("tensorboard",) and excluded["model/train_nll"] == ("",)
    model.train_model()
    assert model.logger.name_to_value["model/fits"] == 2
    # Many small epochs: the step cap, not a number of epochs, ends the fit.
    capped = tiny_dyna(model_gradient_steps=30, model_batch_size=16)
    fill_replay(capped, n=40)
    assert capped.train_model()["gradient_steps"] == 30
    # The fit is reproducible: the same seed fits the same weights (the model's own generator).
    twin = tiny_dyna(model_gradient_steps=3, model_batch_size=8)
    fill_replay(twin, n=40, action_of=lambda obs: int(obs[1]) % 4)
    again = tiny_dyna(model_gradient_steps=3, model_batch_size=8)
    fill_replay(again, n=40, action_of=lambda obs: int(obs[1]) % 4)
    twin.train_model()
    again.train_model()
    for a, b in zip(twin.dynamics_model.parameters(), again.dynamics_model.parameters(), strict=True):
        assert th.equal(a, b)


# ---------------------------------------------------------------------------- Q-learning
def marked(model: Dyna, n: int = 40) -> ModelReplayBuffer:
    """A model buffer of ``n`` rows whose observations (>= 10) no real one resembles."""
    obs = (10 + np.arange(2 * n, dtype=np.float32)).reshape(n, 2)
    buffer = ModelReplayBuffer(n, model.observation_space, model.action_space, "cpu", gamma=0.5)
    buffer.extend(obs, np.arange(n) % 4, obs + 1, np.ones(n), np.zeros(n))
    model.model_buffer = buffer
    return buffer


@pytest.mark.parametrize(
    "real_ratio, batch_size, n_imagined",
    [(0.0, 10, 10), (1.0, 10, 0), (0.3, 10, 7), (0.25, 10, 8), (0.35, 10, 6)],
)
def test_mixed_batch_sizes(real_ratio, batch_size, n_imagined):
    """round(real_ratio * batch_size) real rows (round half to even) first, then the imagined rest;
    each row bootstraps with its own discount (gamma for real rows); all-real batches are SB3's
    own samples (discount gamma, no discounts field)."""
    model = tiny_dyna(real_ratio=real_ratio, gamma=0.9)
    fill_replay(model)
    marked(model)
    batch, count = model.mixed_batch(batch_size)
    assert count == n_imagined and len(batch.observations) == batch_size
    imagined = (batch.observations >= 10).all(dim=1).numpy()
    np.testing.assert_array_equal(imagined, np.arange(batch_size) >= batch_size - n_imagined)
    if n_imagined == 0:
        assert batch.discounts is None
    else:
        np.testing.assert_allclose(batch.discounts.numpy()[:, 0], np.where(imagined, 0.5, 0.9), rtol=1e-6)
        assert batch.discounts.shape == (batch_size, 1) and batch.discounts.dtype == th.float32
    assert batch.actions.dtype == th.int64 and batch.observations.dtype == th.float32
    assert batch.rewards.shape == batch.dones.shape == (batch_size, 1)
    np.testing.assert_array_equal(batch.rewards.numpy()[:, 0], np.where(imagined, 1.0, np.float32(-0.1)))
    np.testing.assert_array_equal(
        batch.next_observations.numpy()[imagined], batch.observations.numpy()[imagined] + 1
    )
    # An empty model buffer: all real.
    model.model_buffer = ModelReplayBuffer(5, model.observation_space, model.action_space, "cpu")
    batch, count = model.mixed_batch(batch_size)
    assert count == 0 and not (batch.observations >= 10).any()


def test_batches_are_normalized_by_vec_normalize():
    """Real and imagined rows, and planning batches, are normalized by the VecNormalize statistics."""
    venv = VecNormalize(
        DummyVecEnv([lambda: gym.make("AdvRL/GridWorld-v0", size=4)]), norm_reward=True, clip_obs=100.0
    )
    venv.obs_rms.mean[:] = 2.0
    venv.obs_rms.var[:] = 4.0
    venv.ret_rms.var = np.array(9.0)
    model = tiny_dyna(venv, real_ratio=0.5, planning_updates=1)
    fill_replay(model)
    buffer = marked(model)
    batch, count = model.mixed_batch(8)
    assert count == 4
    stored = set(map(tuple, buffer.observations[:, 0].tolist())) | {
        (float(r), float(c)) for r in range(4) for c in range(4)
    }
    raw = batch.observations.numpy() * np.sqrt(4.0 + 1e-8) + 2.0
    assert {tuple(np.round(row, 4).tolist()) for row in raw} <= {tuple(np.round(row, 4)) for row in stored}
    np.testing.assert_allclose(batch.rewards.numpy()[4:, 0], 1.0 / np.sqrt(9.0 + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(batch.rewards.numpy()[:4, 0], -0.1 / np.sqrt(9.0 + 1e-8), rtol=1e-5)
    seen = []
    model._q_update = lambda data: (seen.append(data), 0.0)[1]
    model._pending_planning_updates = 1
    model.train(gradient_steps=0, batch_size=6)
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0].rewards.numpy(), 1.0 / np.sqrt(9.0 + 1e-8), rtol=1e-5)
    assert (seen[0].observations.numpy() >= (10 - 2.0) / 2.0 - 1e-4).all()


@pytest.mark.parametrize("real_ratio", [0.5, 1.0])
def test_one_q_update_is_a_clipped_gradient_step_on_the_huber_loss(real_ratio):
    """SGD makes the step visible: theta' = theta - lr * g * min(1, max_grad_norm / |g|), where g
    is the gradient of the mean Huber loss of r + d (1 - done) max_a Q_target(s', a) - Q(s, a),
    computed here on a copy of the Q-network; d is each row's discount in a mixed batch, gamma in
    an all-real one (SB3's samples carry no discounts)."""
    model = tiny_dyna(learning_rate=0.1, max_grad_norm=0.05, gamma=0.9, real_ratio=real_ratio,
                      policy_kwargs=dict(net_arch=[8], optimizer_class=th.optim.SGD))  # fmt: skip
    fill_replay(model)
    marked(model)
    data, _ = model.mixed_batch(12)
    assert (data.discounts is None) == (real_ratio == 1.0)
    discounts = th.full_like(data.rewards, 0.9) if data.discounts is None else data.discounts
    data = data._replace(rewards=data.rewards * 5.0)  # TD errors both inside and outside the Huber kink
    # The target network differs from the online one, so the bootstrap is the target's.
    with th.no_grad():
        for p in model.q_net_target.parameters():
            p.add_(0.3)
    before = [p.detach().clone() for p in model.q_net.parameters()]
    q_copy = type(model.q_net)(**model.q_net._get_constructor_parameters())
    q_copy.load_state_dict(model.q_net.state_dict())
    with th.no_grad():
        bootstrap = model.q_net_target(data.next_observations).max(dim=1, keepdim=True).values
        target = data.rewards + discounts * (1 - data.dones) * bootstrap
    current = q_copy(data.observations).gather(1, data.actions.long())
    delta = (target - current).abs()
    assert (delta < 1).any() and (delta > 1).any()
    loss = th.where(delta < 1, 0.5 * delta**2, delta - 0.5).mean()
    assert loss.item() == pytest.approx(F.smooth_l1_loss(current, target).item())
    grads = th.autograd.grad(loss, list(q_copy.parameters()))
    norm = th.sqrt(sum((g**2).sum() for g in grads))
    assert norm > 0.05  # the clipping is active
    returned = model._q_update(data)
    assert returned == pytest.approx(loss.item(), rel=1e-6)
    for p, p0, g in zip(model.q_net.parameters(), before, grads, strict=True):
        th.testing.assert_close(p.detach(), p0 - 0.1 * g * (0.05 / norm), rtol=1e-4, atol=1e-7)


def test_train_sets_the_learning_rate_training_mode_and_logs():
    model = tiny_dyna(learning_rate=lambda progress: 0.01 * progress, real_ratio=0.5)
    fill_replay(model)
    marked(model, n=20)
    model._current_progress_remaining = 0.5
    model.policy.set_training_mode(False)
    model.train(gradient_steps=3, batch_size=10)
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    assert model.policy.training and model.q_net.training
    logged = model.logger.name_to_value
    assert logged["train/learning_rate"] == pytest.approx(0.005)
    assert logged["train/imagined_fraction"] == 0.5 and logged["train/planning_updates"] == 0
    assert logged["train/model_buffer_size"] == 20 and logged["train/n_updates"] == 3
    excluded = model.logger.name_to_excluded
    assert excluded["train/n_updates"] == ("tensorboard",) and excluded["train/loss"] == ("",)
    # No gradient step and no planning update: no loss, no imagined fraction; the counters still.
    quiet = tiny_dyna()
    fill_replay(quiet)
    quiet.train(gradient_steps=0, batch_size=10)
    logged = quiet.logger.name_to_value
    assert "train/loss" not in logged and "train/imagined_fraction" not in logged
    assert (
        logged["train/planning_updates"] == 0
        and logged["train/model_buffer_size"] == 0
        and logged["train/n_updates"] == 0
    )


def test_a_planning_sync_is_a_polyak_update_with_tau():
    model = tiny_dyna(tau=0.25, planning_updates=1, planning_target_update_interval=2, learning_rate=0.05)
    fill_replay(model)
    marked(model)
    target0 = [p.detach().clone() for p in model.q_net_target.parameters()]
    model._pending_planning_updates = 1
    model.train(gradient_steps=0, batch_size=8)  # 1 planning update: no sync yet
    for p, p0 in zip(model.q_net_target.parameters(), target0, strict=True):
        assert th.equal(p, p0)
    model._pending_planning_updates = 1
    model.train(gradient_steps=0, batch_size=8)  # the second: target = 0.25 q + 0.75 target
    for p, q, p0 in zip(model.q_net_target.parameters(), model.q_net.parameters(), target0, strict=True):
        th.testing.assert_close(p.detach(), 0.25 * q.detach() + 0.75 * p0)
    assert model._planning_updates_done == 2


# ---------------------------------------------------------------------------- save / load
def test_save_load_restores_the_model_but_not_the_imagined_data(tmp_path):
    model = tiny_dyna(learning_starts=20, model_train_freq=20, planning_steps=2)
    model.learn(60)
    assert model.model_buffer.size() > 0 and model._model_fits == 3
    model.save(tmp_path / "dyna")
    loaded = Dyna.load(tmp_path / "dyna", env=gym.make("AdvRL/GridWorld-v0", size=4), device="cpu")
    for a, b in zip(
        model.dynamics_model.state_dict().values(), loaded.dynamics_model.state_dict().values(), strict=True
    ):
        assert th.equal(a, b)
    assert (
        loaded.dynamics_model.optimizer.state_dict()["state"].keys()
        == model.dynamics_model.optimizer.state_dict()["state"].keys()
    )
    step = next(iter(loaded.dynamics_model.optimizer.state_dict()["state"].values()))["step"]
    assert step == next(iter(model.dynamics_model.optimizer.state_dict()["state"].values()))["step"] > 0
    assert loaded.model_buffer.size() == 0 and loaded._model_fits == 3
    assert loaded._model_rng.bit_generator.state == model._model_rng.bit_generator.state
    low, high = loaded._obs_bounds
    assert low.tolist() == [0.0, 0.0] and high.tolist() == [3.0, 3.0]
    obs = np.array([[r, c] for r in range(4) for c in range(4)], dtype=np.float32)
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
    excluded = model._excluded_save_params()
    assert "model_buffer" in excluded and "_obs_bounds" in excluded and "replay_buffer" in excluded
    assert model._get_torch_save_params() == (
        ["policy", "policy.optimizer", "dynamics_model", "dynamics_model.optimizer"],
        [],
    )


class BatchNormExtractor(BaseFeaturesExtractor):
    """Features with batch normalization, whose running statistics the target network copies."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=4)
        self.net = th.nn.Sequential(th.nn.Linear(2, 4), th.nn.BatchNorm1d(4))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.net(obs)


def test_a_planning_sync_copies_batch_norm_statistics_whatever_tau():
    """As in SB3's DQN: weights move by tau, batch-norm running statistics are copied."""
    model = tiny_dyna(tau=0.5, planning_updates=1, planning_target_update_interval=1,
                      policy_kwargs=dict(net_arch=[8], features_extractor_class=BatchNormExtractor))  # fmt: skip
    fill_replay(model)
    marked(model)
    assert len(model.batch_norm_stats) == 2  # running mean and variance
    weights_before = [p.detach().clone() for p in model.q_net_target.parameters()]
    model._pending_planning_updates = 1
    model.train(gradient_steps=0, batch_size=8)
    for online, target in zip(model.batch_norm_stats, model.batch_norm_stats_target, strict=True):
        th.testing.assert_close(target, online)
    for p, q, p0 in zip(
        model.q_net_target.parameters(), model.q_net.parameters(), weights_before, strict=True
    ):
        th.testing.assert_close(p.detach(), 0.5 * q.detach() + 0.5 * p0)
    assert not th.equal(model.batch_norm_stats_target[0], th.zeros(4))  # the statistics moved


def test_train_default_batch_size_and_all_real_batches_normalized():
    """train(gradient_steps) draws batches of 100 by default (SB3's signature); an all-real batch
    (the model buffer still empty) is normalized by VecNormalize like a mixed one."""
    model = tiny_dyna(real_ratio=0.5)
    fill_replay(model)
    marked(model, n=200)
    model.train(1)
    assert model.logger.name_to_value["train/imagined_fraction"] == 0.5  # 50 of 100
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("AdvRL/GridWorld-v0", size=4)]), norm_reward=True)
    venv.obs_rms.mean[:] = 2.0
    venv.obs_rms.var[:] = 4.0
    venv.ret_rms.var = np.array(9.0)
    normalized = tiny_dyna(venv)
    fill_replay(normalized)
    batch, count = normalized.mixed_batch(8)
    assert count == 0
    raw = batch.observations.numpy() * np.sqrt(4.0 + 1e-8) + 2.0
    np.testing.assert_allclose(raw, np.round(raw), atol=1e-4)  # grid cells, once un-normalized
    assert (batch.observations.numpy() < 0).any()
    np.testing.assert_allclose(batch.rewards.numpy(), -0.1 / np.sqrt(9.0 + 1e-8), rtol=1e-5)


class Float64Grid(gym.ObservationWrapper):
    """The 4x4 GridWorld with float64 observations."""

    def __init__(self) -> None:
        super().__init__(gym.make("AdvRL/GridWorld-v0", size=4))
        self.observation_space = spaces.Box(0.0, 3.0, (2,), np.float64)

    def observation(self, observation):
        return observation.astype(np.float64)


def test_float64_observations_roll_out_in_float32():
    """The clipping bounds are float32 whatever the space's dtype, so a multi-step rollout feeds
    the float32 Q-network float32 states."""
    model = tiny_dyna(Float64Grid(), model_class=ShiftModel, rollout_length=2)
    assert all(bound.dtype == th.float32 for bound in model._obs_bounds)
    fill_replay(model)
    model.imagine(16)
    assert model.model_buffer.size() == 16
