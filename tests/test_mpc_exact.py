"""WorldModelMPC: exact behaviour of the defaults, the argument checks, the model fits, the acting
loop (random actions, planning, warm starts, exploration noise), the logs and saving, value by value."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from torch import nn

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext import WorldModelMPC
from sb3_ext.common.planners import CEMPlanner, RandomShootingPlanner
from sb3_ext.mpc import mpc as mpc_module
from sb3_ext.mpc.policies import MPCPolicy

th.set_num_threads(1)

# A planner and an ensemble small enough that every planned step costs about a millisecond.
TINY = dict(
    batch_size=16,
    n_model_epochs=1,
    horizon=2,
    population_size=6,
    n_elites=2,
    n_iterations=1,
    n_particles=1,
    policy_kwargs=dict(net_arch=[8], n_members=1),
)
FIT_STATS = {
    "gradient_steps": 7,
    "train_loss": 1.5,
    "train_nll": 2.5,
    "train_mse": 3.5,
    "train_termination_bce": 4.5,
    "holdout_mse": 5.5,
}


class FitRecorder:
    """Stands in for ``ProbabilisticEnsemble.fit``: records its arguments, returns fixed statistics."""

    def __init__(self, model: WorldModelMPC, stats: dict | None = None) -> None:
        self.model, self.calls = model, []
        self.stats = dict(FIT_STATS if stats is None else stats)
        model.policy.dynamics.fit = self

    def __call__(self, obs, actions, next_obs, rewards, terminations, **kwargs):
        # The ensemble is fitted in training mode.
        self.calls.append(
            dict(
                obs=obs,
                actions=actions,
                next_obs=next_obs,
                rewards=rewards,
                terminations=terminations,
                training=self.model.policy.training and self.model.policy.dynamics.training,
                **kwargs,
            )
        )
        return dict(self.stats)


class PlanRecorder:
    """Wraps ``MPCPolicy.plan``: records the observation, warm start and episode starts of each call."""

    def __init__(self, model: WorldModelMPC) -> None:
        self.calls, self.plan = [], model.policy.plan
        model.policy.plan = self

    def __call__(self, obs, state=None, episode_start=None, generator=None):
        result, shifted = self.plan(obs, state, episode_start, generator)
        self.calls.append(
            dict(
                obs=obs.clone(),
                state=None if state is None else np.array(state),
                episode_start=None if episode_start is None else np.array(episode_start),
                action=result.action.clone(),
                shifted=shifted.copy(),
            )
        )
        return result, shifted


class AlternatingNoise(ActionNoise):
    """+2.5, -2.5, +2.5, ...: pushes every scaled action past one end of [-1, 1], alternately."""

    def __init__(self) -> None:
        super().__init__()
        self.sign = 1.0

    def __call__(self) -> np.ndarray:
        self.sign = -self.sign
        return np.array([-2.5 * self.sign], dtype=np.float32)


class FakeClock:
    """``time`` stand-in whose ``perf_counter`` advances by 4 ms per call."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        self.now += 0.004
        return self.now


def pendulum(**kwargs) -> WorldModelMPC:
    return WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", **{"seed": 0, **TINY, **kwargs})


def test_defaults_are_the_documented_pets_settings():
    model = WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0")
    assert model.learning_rate == 1e-3 and model.buffer_size == 1_000_000
    assert model.learning_starts == 200 and model.batch_size == 256
    assert model.train_freq == TrainFreq(200, TrainFrequencyUnit.STEP) and model.gradient_steps == 1
    assert (model.n_model_epochs, model.max_model_steps, model.holdout_ratio) == (100, 400, 0.1)
    assert (model.horizon, model.population_size, model.n_elites) == (15, 100, 10)
    assert (model.n_iterations, model.alpha, model.initial_std) == (3, 0.1, 0.25)
    assert (model.n_particles, model.gamma, model.use_env_functions) == (5, 1.0, True)
    assert model.action_noise is None and model._stats_window_size == 100 and model.verbose == 0
    assert model.device == th.device("cpu") and model.model_fitted is False
    assert model.policy_kwargs == {}
    policy = model.policy  # built on construction
    assert isinstance(policy, MPCPolicy)
    assert policy.net_arch == (64, 64) and policy.activation_fn is nn.SiLU
    assert (policy.n_members, policy.weight_decay, policy.n_particles, policy.gamma) == (5, 5e-5, 5, 1.0)
    assert policy.planner_kwargs == dict(
        horizon=15, population_size=100, n_elites=10, n_iterations=3, alpha=0.1, initial_std=0.25
    )
    planner = policy.planner
    assert isinstance(planner, CEMPlanner)
    assert (planner.horizon, planner.population_size, planner.n_elites, planner.n_iterations) == (
        15,
        100,
        10,
        3,
    )
    assert (planner.alpha, planner.initial_std) == (0.1, 0.25)
    assert [group["lr"] for group in policy.optimizer.param_groups] == [1e-3, 1e-3]
    assert [group["weight_decay"] for group in policy.optimizer.param_groups] == [5e-5, 0.0]
    # A model fit without an explicit batch size uses 256, like the constructor's batch_size.
    model.set_logger(configure(None, []))
    recorder = FitRecorder(model)
    for _ in range(3):
        obs = model.observation_space.sample()[None]
        model.replay_buffer.add(obs, obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    model.train(gradient_steps=1)
    assert recorder.calls[0]["batch_size"] == 256


def test_policy_defaults():
    obs_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    act_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    policy = MPCPolicy(obs_space, act_space, lambda _: 3e-4)
    assert policy.net_arch == (64, 64) and policy.activation_fn is nn.SiLU
    assert (policy.n_members, policy.weight_decay, policy.n_particles, policy.gamma) == (5, 5e-5, 5, 1.0)
    assert policy.learn_reward is True and policy.learn_termination is True
    assert policy.planner_kwargs == {} and policy.reward_fn is None and policy.termination_fn is None
    dynamics = policy.dynamics
    assert dynamics.n_members == 5 and dynamics.learn_reward and dynamics.learn_termination
    assert [layer.out_features for layer in dynamics.hidden_layers] == [64, 64]
    assert isinstance(dynamics.activation, nn.SiLU)
    assert [group["lr"] for group in policy.optimizer.param_groups] == [3e-4, 3e-4]
    assert [group["weight_decay"] for group in policy.optimizer.param_groups] == [5e-5, 0.0]
    planner = policy.planner  # CEMPlanner's own defaults
    reference = CEMPlanner(act_space)
    for name in ("horizon", "population_size", "n_elites", "n_iterations", "alpha", "initial_std"):
        assert getattr(planner, name) == getattr(reference, name), name
    params = policy._get_constructor_parameters()
    assert params["observation_space"] == obs_space and params["action_space"] == act_space
    assert {
        k: v for k, v in params.items() if k not in ("observation_space", "action_space", "normalize_images")
    } == dict(
        net_arch=(64, 64),
        activation_fn=nn.SiLU,
        n_members=5,
        weight_decay=5e-5,
        learn_reward=True,
        learn_termination=True,
        planner_kwargs={},
        n_particles=5,
        gamma=1.0,
    )


def test_every_argument_reaches_the_model_the_ensemble_and_the_planner(tmp_path):
    class TaggedBuffer(ReplayBuffer):
        pass

    noise = AlternatingNoise()
    user_policy_kwargs = dict(net_arch=[12, 6], n_members=2, activation_fn=nn.Tanh, weight_decay=1e-3)
    model = WorldModelMPC(
        "MlpPolicy",
        "AdvRL/Pendulum-v0",
        learning_rate=2e-3,
        buffer_size=500,
        learning_starts=7,
        batch_size=9,
        train_freq=(3, "episode"),
        n_model_epochs=4,
        max_model_steps=None,
        holdout_ratio=0.25,
        horizon=4,
        population_size=12,
        n_elites=3,
        n_iterations=2,
        alpha=0.3,
        initial_std=0.5,
        n_particles=4,
        gamma=0.9,
        action_noise=noise,
        replay_buffer_class=TaggedBuffer,
        replay_buffer_kwargs=dict(handle_timeout_termination=False),
        policy_kwargs=user_policy_kwargs,
        stats_window_size=7,
        tensorboard_log=str(tmp_path),
        verbose=1,
        seed=3,
        device="cpu",
    )
    assert (model.learning_rate, model.buffer_size, model.learning_starts, model.batch_size) == (
        2e-3,
        500,
        7,
        9,
    )
    assert model.train_freq == TrainFreq(3, TrainFrequencyUnit.EPISODE)
    assert (model.n_model_epochs, model.max_model_steps, model.holdout_ratio) == (4, None, 0.25)
    assert (model.n_particles, model.gamma, model.action_noise) == (4, 0.9, noise)
    assert type(model.replay_buffer) is TaggedBuffer and not model.replay_buffer.handle_timeout_termination
    assert model.replay_buffer.buffer_size == 500
    assert (model._stats_window_size, model.tensorboard_log, model.verbose, model.seed) == (
        7,
        str(tmp_path),
        1,
        3,
    )
    # The user's policy_kwargs stay as given (they are saved); the algorithm's settings go to the policy.
    assert model.policy_kwargs == dict(
        net_arch=[12, 6], n_members=2, activation_fn=nn.Tanh, weight_decay=1e-3
    )
    policy = model.policy
    assert policy.net_arch == (12, 6) and policy.activation_fn is nn.Tanh and policy.n_members == 2
    assert (policy.weight_decay, policy.n_particles, policy.gamma) == (1e-3, 4, 0.9)
    assert [group["lr"] for group in policy.optimizer.param_groups] == [2e-3, 2e-3]
    assert policy.planner_kwargs == dict(
        horizon=4, population_size=12, n_elites=3, n_iterations=2, alpha=0.3, initial_std=0.5
    )
    planner = policy.planner
    assert (planner.horizon, planner.population_size, planner.n_elites, planner.n_iterations) == (4, 12, 3, 2)
    assert (planner.alpha, planner.initial_std) == (0.3, 0.5)
    # Pendulum has reward_fn and termination_fn: no learned heads, and the policy plans with them.
    unwrapped = model.get_env().envs[0].unwrapped
    assert model.uses_env_reward is True and model.uses_env_termination is True
    assert policy.learn_reward is False and policy.learn_termination is False
    assert policy.reward_fn.__self__ is unwrapped and policy.termination_fn.__self__ is unwrapped
    # Random shooting (Discrete actions) takes the horizon and the population size.
    discrete = WorldModelMPC(
        "MlpPolicy",
        "AdvRL/SequenceTracking-v0",
        horizon=3,
        population_size=11,
        **{k: v for k, v in TINY.items() if k not in ("horizon", "population_size")},
    )
    assert isinstance(discrete.policy.planner, RandomShootingPlanner)
    assert (discrete.policy.planner.horizon, discrete.policy.planner.population_size) == (3, 11)


def test_learned_heads_plan_without_env_functions():
    model = pendulum(use_env_functions=False)
    assert model.reward_fn is None and model.termination_fn is None
    assert model.uses_env_reward is False and model.uses_env_termination is False
    assert model.policy.learn_reward and model.policy.learn_termination
    assert model.policy.reward_fn is None and model.policy.termination_fn is None
    obs = model.observation_space.sample()
    action, state = model.predict(obs, deterministic=True)
    assert action.shape == (1,) and state.shape == (1, 2, 1)


def test_unbuilt_model_has_no_env_functions_yet():
    model = WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", _init_setup_model=False)
    assert getattr(model, "policy", None) is None and model.model_fitted is False
    assert (model.reward_fn, model.termination_fn, model.uses_env_reward, model.uses_env_termination) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_model_epochs=0), r"^n_model_epochs must be .* got 0$"),
        (dict(n_model_epochs=2.0), r"^n_model_epochs must be an integer, got 2.0"),
        (dict(max_model_steps=0), r"^max_model_steps must be an integer >= 1 or None, got 0$"),
        (dict(max_model_steps=1.5), r"^max_model_steps must be an integer >= 1 or None, got 1.5$"),
        (dict(max_model_steps=True), r"^max_model_steps must be an integer >= 1 or None, got True$"),
        (dict(max_model_steps="3"), r"^max_model_steps must be an integer >= 1 or None, got '3'$"),
        (dict(holdout_ratio=1.0), r"^holdout_ratio must be in \[0, 1\), got 1.0"),
        (dict(use_env_functions=1), r"^use_env_functions must be True or False, got 1"),
        (dict(n_particles=0), r"^n_particles must be a positive int, got 0"),
        (dict(horizon=0), r"^horizon must be a positive int"),
        (dict(population_size=0), r"^population_size must be a positive int"),
        (dict(n_elites=7), r"^n_elites must be <= population_size=6, got 7"),
        (dict(n_iterations=0), r"^n_iterations must be a positive int"),
        (dict(alpha=1.0), r"^alpha must be in \[0, 1\), got 1.0"),
        (dict(initial_std=0.0), r"^initial_std must be > 0, got 0.0"),
        (dict(gamma=1.5), r"^gamma must"),
        (dict(learning_starts=-1), r"^learning_starts must"),
        (dict(buffer_size=8), r"^buffer_size must"),
        (dict(learning_rate=0.0), r"^learning_rate must"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pendulum(**kwargs)


def test_smallest_valid_arguments_are_accepted():
    model = pendulum(n_model_epochs=1, max_model_steps=1, holdout_ratio=0.0)
    assert (model.n_model_epochs, model.max_model_steps, model.holdout_ratio) == (1, 1, 0.0)
    assert pendulum(max_model_steps=np.int64(3)).max_model_steps == 3
    assert pendulum(max_model_steps=None).max_model_steps is None


def test_observation_and_buffer_requirements():
    with pytest.raises(ValueError, match=r"^WorldModelMPC needs a flat Box observation space, got Discrete"):
        WorldModelMPC("MlpPolicy", gym.make("AdvRL/GridWorld-v0", obs_mode="index"), **TINY)
    with pytest.raises(ValueError, match=r"^WorldModelMPC needs a flat Box observation space, got Box"):
        WorldModelMPC("MlpPolicy", gym.make("AdvRL/GridWorld-v0", obs_mode="rgb"), **TINY)
    with pytest.raises(
        ValueError,
        match=r"^WorldModelMPC needs next observations in the buffer: optimize_memory_usage=False$",
    ):
        model = pendulum(_init_setup_model=False)
        model.optimize_memory_usage = True
        model._setup_model()


def fill(model: WorldModelMPC, n: int, done_every: int = 0) -> None:
    rng = np.random.default_rng(1)
    space = model.observation_space
    for i in range(n):
        obs, next_obs = (rng.uniform(-1, 1, (1, *space.shape)).astype(np.float32) for _ in range(2))
        scaled_action = rng.uniform(-1, 1, (1, 1)).astype(np.float32)
        done = np.array([done_every > 0 and i % done_every == done_every - 1])
        model.replay_buffer.add(obs, next_obs, scaled_action, rng.normal(size=1), done, [{}])


@pytest.mark.parametrize("use_env_functions", [True, False])
def test_train_fits_every_transition_with_the_model_settings(use_env_functions):
    model = pendulum(
        use_env_functions=use_env_functions,
        n_model_epochs=3,
        max_model_steps=11,
        holdout_ratio=0.2,
        learning_rate=lambda progress: 1e-2 * progress,
    )
    model.set_logger(configure(None, []))
    recorder = FitRecorder(model)
    fill(model, 1)
    model.train(gradient_steps=1, batch_size=5)  # one transition: nothing to fit yet
    assert recorder.calls == [] and model.model_fitted is False
    fill(model, 1)
    model._current_progress_remaining = 0.5
    model.policy.set_training_mode(False)
    model.train(gradient_steps=1, batch_size=5)  # two transitions: the first fit
    assert len(recorder.calls) == 1 and model.model_fitted is True
    call = recorder.calls[0]
    buffer = model.replay_buffer
    np.testing.assert_array_equal(call["obs"], buffer.observations[:2, 0])
    np.testing.assert_array_equal(call["next_obs"], buffer.next_observations[:2, 0])
    # Actions are stored scaled to [-1, 1] and fitted in the env's units (Pendulum: [-2, 2]).
    np.testing.assert_allclose(call["actions"], 2.0 * buffer.actions[:2, 0], rtol=1e-6)
    if use_env_functions:
        assert call["rewards"] is None and call["terminations"] is None
    else:
        np.testing.assert_array_equal(call["rewards"], buffer.rewards[:2, 0])
        np.testing.assert_array_equal(call["terminations"], [0.0, 0.0])
    assert (call["n_epochs"], call["batch_size"], call["holdout_ratio"], call["max_gradient_steps"]) == (
        3,
        5,
        0.2,
        11,
    )
    assert call["generator"] is model._fit_rng and isinstance(call["generator"], np.random.Generator)
    assert call["training"] is True
    assert model.policy.training is False  # back to evaluation mode for planning
    assert [group["lr"] for group in model.policy.optimizer.param_groups] == [5e-3, 5e-3]
    logged = model.logger.name_to_value
    assert logged["train/n_updates"] == 7 and model.logger.name_to_excluded["train/n_updates"] == (
        "tensorboard",
    )
    assert logged["train/model_transitions"] == 2
    for key, value in (
        ("loss", 1.5),
        ("nll", 2.5),
        ("mse", 3.5),
        ("termination_bce", 4.5),
        ("holdout_mse", 5.5),
    ):
        assert logged[f"train/model_{key}"] == value, key
    assert 0.0 <= logged["train/model_fit_time_s"] < 60.0
    # Statistics a fit does not report are not logged; the update count adds up over fits.
    recorder.stats = {"gradient_steps": 5, "train_loss": 0.25}
    model.set_logger(configure(None, []))
    model.train(gradient_steps=1, batch_size=5)
    logged = model.logger.name_to_value
    assert logged["train/n_updates"] == 12 and logged["train/model_loss"] == 0.25
    assert not any(key in logged for key in ("train/model_nll", "train/model_mse", "train/model_holdout_mse"))


def test_the_fit_generator_is_seeded_by_the_model_seed():
    def fit_permutation(seed: int) -> np.ndarray:
        model = pendulum(seed=seed)
        return model._fit_rng.permutation(1000)

    np.testing.assert_array_equal(fit_permutation(4), fit_permutation(4))
    assert not np.array_equal(fit_permutation(4), fit_permutation(5))


@pytest.mark.parametrize(("learning_starts", "first_fit"), [(1, 2), (5, 5)])
def test_first_fit_as_soon_as_learning_starts_transitions_are_stored(learning_starts, first_fit):
    """The first fit comes right after the ``learning_starts``-th transition (at least two), the
    next ones every ``train_freq`` steps once SB3 trains; every fit sees all the data so far."""
    model = pendulum(learning_starts=learning_starts, train_freq=6)
    recorder = FitRecorder(model)
    model.learn(12)
    assert [len(call["obs"]) for call in recorder.calls] == [first_fit, 6, 12]
    assert all(call["batch_size"] == 16 for call in recorder.calls)


def test_random_actions_until_the_first_fit_then_planned_ones_with_warm_starts_and_noise():
    env = gym.make("AdvRL/Pendulum-v0", max_episode_steps=6)
    model = WorldModelMPC(
        "MlpPolicy", env, seed=0, learning_starts=4, train_freq=15, action_noise=AlternatingNoise(), **TINY
    )
    FitRecorder(model)
    plans = PlanRecorder(model)
    model.learn(15)
    # Steps 0..3 act randomly; the model is fitted after step 4's transition is stored (num_timesteps
    # == 4), so steps 4..14 are planned: 11 plans, each from the observation the env returned.
    assert len(plans.calls) == 11
    buffer = model.replay_buffer
    for step, call in zip(range(4, 15), plans.calls, strict=True):
        np.testing.assert_array_equal(call["obs"].numpy(), buffer.observations[step])
    # The warm start of each plan is the previous plan shifted, except at the first planned step of
    # learn() and after an episode end (steps 6 and 12), whose episode_start flags say so.
    assert plans.calls[0]["state"] is None
    for previous, call in zip(plans.calls, plans.calls[1:], strict=False):
        np.testing.assert_array_equal(call["state"], previous["shifted"])
    starts = [bool(call["episode_start"][0]) for call in plans.calls]
    assert starts == [False, False, True, False, False, False, False, False, True, False, False]
    # Every executed (and stored) action, random or planned, is scaled to [-1, 1], plus the noise,
    # clipped: the +-2.5 noise pushes it to the bounds, alternately.
    np.testing.assert_array_equal(buffer.actions[:15, 0, 0], [1.0, -1.0] * 7 + [1.0])


def test_planned_actions_without_noise_are_the_plans_first_actions():
    model = pendulum(learning_starts=2, train_freq=6)
    FitRecorder(model)
    plans = PlanRecorder(model)
    model.learn(6)
    assert len(plans.calls) == 4
    planned = np.array([call["action"].numpy().reshape(-1)[0] for call in plans.calls])
    np.testing.assert_allclose(model.replay_buffer.actions[2:6, 0, 0], planned / 2.0, rtol=1e-6)


def test_planning_latency_is_per_env_and_logged_as_median_and_p90(monkeypatch):
    vec_env = make_vec_env("AdvRL/Pendulum-v0", n_envs=2, seed=0)
    model = WorldModelMPC("MlpPolicy", vec_env, seed=0, learning_starts=2, train_freq=5, **TINY)
    FitRecorder(model)
    plans = PlanRecorder(model)
    monkeypatch.setattr(mpc_module, "time", FakeClock())
    model.learn(10)  # 5 vectorized steps, the first one random
    assert len(plans.calls) == 4 and plans.calls[0]["obs"].shape == (2, 3)
    # Each plan took one clock tick (4 ms) for two envs: 2 ms per action.
    np.testing.assert_allclose(model.planning_latency_ms, [2.0] * 4, rtol=1e-9)
    assert model.planning_latency_ms.dtype == np.float64
    model._planning_latency_ms.clear()
    model._planning_latency_ms.extend(float(v) for v in range(1, 11))
    model.set_logger(configure(None, []))
    model.logger.dump = lambda step=0: None  # keep the recorded values
    model.dump_logs()
    assert model.logger.name_to_value["time/planning_ms_median"] == 5.5
    assert model.logger.name_to_value["time/planning_ms_p90"] == pytest.approx(9.1, rel=1e-12)


def test_latency_window_holds_the_last_thousand_plans():
    model = pendulum()
    assert model._planning_latency_ms.maxlen == 1000
    model._planning_latency_ms.extend(range(1500))
    assert model.planning_latency_ms[0] == 500.0


def test_a_second_learn_call_plans_cold_on_its_first_step():
    model = pendulum(learning_starts=2, train_freq=2)
    FitRecorder(model)
    model.learn(4)
    plans = PlanRecorder(model)
    model._plan_state = np.zeros((1, 2, 1))
    model._episode_starts = np.zeros(1, dtype=bool)
    model.learn(2, reset_num_timesteps=False)
    assert plans.calls[0]["state"] is None and plans.calls[1]["state"] is not None
    np.testing.assert_array_equal(plans.calls[0]["episode_start"], [True])


def test_set_env_rebinds_the_env_functions(tmp_path):
    model = pendulum(learning_starts=2, train_freq=3)
    FitRecorder(model)
    model.learn(3)
    assert model._last_obs is not None
    kept = model._last_obs
    other = gym.make("AdvRL/Pendulum-v0")
    model.set_env(other, force_reset=False)
    assert model._last_obs is kept
    assert model.policy.reward_fn.__self__ is other.unwrapped
    assert model.policy.termination_fn.__self__ is other.unwrapped
    third = gym.make("AdvRL/Pendulum-v0")
    model.set_env(third)
    assert model._last_obs is None
    assert model.reward_fn.__self__ is third.unwrapped and model.policy.reward_fn.__self__ is third.unwrapped


def test_save_leaves_out_the_run_time_state_and_load_restores_the_plans(tmp_path):
    model = pendulum(learning_starts=2, train_freq=4)
    model.learn(4)
    model.save(tmp_path / "mpc")
    data, params, _ = load_from_zip_file(tmp_path / "mpc")
    for name in ("_fit_rng", "_plan_state", "_episode_starts", "_planning_latency_ms"):
        assert name not in data, name
    assert data["model_fitted"] is True and data["uses_env_reward"] is True
    assert set(params) == {"policy", "policy.optimizer"}
    env = gym.make("AdvRL/Pendulum-v0")
    loaded = WorldModelMPC.load(tmp_path / "mpc", env=env)
    assert loaded.model_fitted is True and loaded.policy.reward_fn.__self__ is env.unwrapped
    obs = model.observation_space.sample()
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def box_policy(**kwargs) -> MPCPolicy:
    th.manual_seed(0)
    obs_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    act_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    kwargs = {"net_arch": [8], "n_members": 1, "n_particles": 1, **kwargs}
    kwargs.setdefault("planner_kwargs", dict(horizon=3, population_size=8, n_elites=2, n_iterations=1))
    return MPCPolicy(obs_space, act_space, lambda progress: 3e-4 * progress, **kwargs)


def test_policy_builds_its_ensemble_from_its_arguments():
    policy = box_policy(
        net_arch=[6, 5], activation_fn=nn.Tanh, n_members=2, n_particles=4, weight_decay=1e-3, gamma=0.5
    )
    dynamics = policy.dynamics
    assert [layer.out_features for layer in dynamics.hidden_layers] == [6, 5]
    assert isinstance(dynamics.activation, nn.Tanh) and dynamics.n_members == 2
    # The learning rate is the schedule's value at the start of training (progress remaining 1).
    assert [group["lr"] for group in policy.optimizer.param_groups] == [3e-4, 3e-4]
    assert [group["weight_decay"] for group in policy.optimizer.param_groups] == [1e-3, 0.0]
    assert policy.optimizer is dynamics.optimizer and policy.squash_output is False
    no_heads = box_policy(learn_reward=False, learn_termination=False)
    assert not no_heads.dynamics.learn_reward and not no_heads.dynamics.learn_termination
    assert no_heads.learn_reward is False and no_heads.learn_termination is False


def test_policy_argument_errors():
    with pytest.raises(ValueError, match=r"^n_particles must be a multiple of n_members=2, got 3$"):
        box_policy(n_members=2, n_particles=3)
    assert box_policy(n_members=2, n_particles=2).n_particles == 2
    policy = box_policy(learn_reward=False)
    with pytest.raises(ValueError, match=r"^this policy has no reward head: a reward_fn is required$"):
        policy.set_env_functions(None, None)
    box_policy().set_env_functions(None, None)  # a learned reward head needs no reward_fn


@pytest.mark.parametrize("terminate", [False, True])
def test_scores_use_the_env_functions_and_the_discount(terminate):
    """With reward 1 on every step, an undiscounted return over the horizon 3 is 3, discounted by 0.5 it
    is 1 + 0.5 + 0.25; a termination after the first step leaves the first reward only."""
    policy = box_policy(gamma=0.5, learn_reward=False, learn_termination=False)
    policy.set_env_functions(
        lambda obs, action, next_obs: np.ones(obs.shape[:-1], dtype=np.float32),
        lambda next_obs: np.full(next_obs.shape[:-1], terminate),
    )
    sequences = th.zeros(2, 5, 3, 1)
    returns = policy.score(th.zeros(2, 3), sequences, th.Generator().manual_seed(0))
    assert returns.shape == (2, 5)
    expected = 1.0 if terminate else 1.75
    th.testing.assert_close(returns, th.full((2, 5), expected))


def test_predict_defaults_to_sampling_from_the_final_cem_distribution():
    policy = box_policy()
    obs = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    state = policy.generator.get_state()
    action, _ = policy.predict(obs)
    # The same draws by hand: the plan with the running generator, then one normal draw per action.
    policy.generator.set_state(state)
    result, _ = policy.plan(th.as_tensor(obs[None]))
    noise = th.randn(result.action.shape, generator=policy.generator)
    expected = (result.action + result.action_std * noise).clamp(-2.0, 2.0)
    assert result.action_std is not None and float(result.action_std.min()) > 0.0
    np.testing.assert_allclose(action, expected.numpy().reshape(1), rtol=1e-6)
    assert action.shape == (1,)
    mean, _ = policy.predict(obs, deterministic=True)
    assert not np.allclose(action, mean)
    # _predict (SB3's interface for a batch tensor) plans with the same deterministic generator.
    th.testing.assert_close(
        policy._predict(th.as_tensor(obs[None]), deterministic=True).reshape(1), th.as_tensor(mean)
    )
    # A tuple observation is an observation; an (obs, info) pair is refused.
    np.testing.assert_array_equal(policy.predict(tuple(obs.tolist()), deterministic=True)[0], mean)
    with pytest.raises(
        ValueError, match=r"^predict\(\) got an \(obs, info\) tuple: pass the observation only$"
    ):
        policy.predict((obs, {}))


def test_sampled_actions_are_clipped_to_the_action_box():
    from sb3_ext.common.planners import PlanResult

    policy = box_policy()
    result = PlanResult(
        action=th.tensor([[1.5], [-1.5], [0.0], [0.0]]),
        action_std=th.tensor([[4.0], [4.0], [4.0], [40.0]]),
        plan=th.zeros(4, 3, 1),
        expected_return=th.zeros(4),
    )
    policy.generator.manual_seed(3)
    sampled = policy._first_action(result, deterministic=False)
    noise = th.randn((4, 1), generator=th.Generator().manual_seed(3))
    expected = (result.action + result.action_std * noise).clamp(-2.0, 2.0)
    th.testing.assert_close(sampled, expected)
    assert (sampled == 2.0).any() and (sampled == -2.0).any() and (sampled.abs() < 2.0).any()
    assert th.equal(policy._first_action(result, deterministic=True), result.action)


def test_predict_puts_the_policy_in_evaluation_mode():
    policy = box_policy()
    policy.set_training_mode(True)
    policy.predict(np.zeros(3, dtype=np.float32), deterministic=True)
    assert policy.training is False and policy.dynamics.training is False


def test_predicted_actions_stay_in_the_box_from_an_out_of_box_warm_start():
    """A warm start is the user's to give: one far outside the action box pulls the CEM mean
    (alpha = 0.1 of it) outside too, and predict() clips the action back to the box."""
    policy = box_policy()
    obs = np.zeros(3, dtype=np.float32)
    high, _ = policy.predict(obs, state=np.full((1, 3, 1), 50.0, np.float32), deterministic=True)
    low, _ = policy.predict(obs, state=np.full((1, 3, 1), -50.0, np.float32), deterministic=True)
    np.testing.assert_array_equal(high, [2.0])
    np.testing.assert_array_equal(low, [-2.0])


def test_learn_calls_the_callback_every_step():
    from stable_baselines3.common.callbacks import BaseCallback

    class Count(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.steps = 0

        def _on_step(self) -> bool:
            self.steps += 1
            return True

    model = pendulum(learning_starts=2, train_freq=4)
    FitRecorder(model)
    counter = Count()
    model.learn(4, callback=counter)
    assert counter.steps == 4 and counter.model is model


def test_actions_are_random_until_both_learning_starts_and_the_first_fit():
    """With learning_starts=1 the first fit needs two transitions: step 1 is still random. A second
    learn() that restarts the step count acts randomly for learning_starts steps although fitted."""
    model = pendulum(learning_starts=1, train_freq=4)
    FitRecorder(model)
    plans = PlanRecorder(model)
    model.learn(4)
    assert len(plans.calls) == 2 and model.model_fitted
    refit = pendulum(learning_starts=3, train_freq=4)
    FitRecorder(refit)
    refit.learn(4)
    plans = PlanRecorder(refit)
    refit.learn(4)  # num_timesteps restarts at 0: steps 0..2 random, step 3 planned
    assert len(plans.calls) == 1


def test_batch_predict_samples_by_default():
    """``_predict`` (SB3's batch-tensor interface) samples the final CEM distribution unless asked for
    the deterministic plan, as ``predict`` does."""
    policy = box_policy()
    obs = th.tensor([[0.1, -0.2, 0.3]])
    state = policy.generator.get_state()
    sampled = policy._predict(obs)
    policy.generator.set_state(state)
    th.testing.assert_close(sampled.reshape(1), th.as_tensor(policy.predict(obs.numpy()[0])[0]))
    assert not th.allclose(sampled, policy._predict(obs, deterministic=True))


def test_the_default_device_is_the_cpu_even_with_a_gpu_and_the_device_is_passed_on(monkeypatch):
    monkeypatch.setattr(th.cuda, "is_available", lambda: True)
    assert WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", _init_setup_model=False).device == th.device("cpu")
    auto = WorldModelMPC("MlpPolicy", "AdvRL/Pendulum-v0", device="auto", _init_setup_model=False)
    assert auto.device == th.device("cuda")


class MultiDiscreteActions(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.MultiDiscrete([2, 2])


def test_only_box_and_discrete_actions_are_supported():
    message = (
        "The algorithm only supports (<class 'gymnasium.spaces.box.Box'>, "
        "<class 'gymnasium.spaces.discrete.Discrete'>) as action spaces but MultiDiscrete([2 2]) was provided"
    )
    with pytest.raises(AssertionError, match=f"^{re.escape(message)}$"):
        WorldModelMPC("MlpPolicy", MultiDiscreteActions(), _init_setup_model=False)


def test_the_fit_generator_is_seeded_with_the_next_31_bit_draw_of_torch_after_the_policy(monkeypatch):
    states = []
    set_env_functions = MPCPolicy.set_env_functions

    def recording(self, *args):
        states.append(th.get_rng_state())
        return set_env_functions(self, *args)

    monkeypatch.setattr(MPCPolicy, "set_env_functions", recording)
    for seed in range(3):
        model = pendulum(seed=seed)
        th.set_rng_state(states[-1])
        expected = int(th.randint(2**31, (1,)).item())
        assert model._fit_rng.bit_generator.seed_seq.entropy == expected


class RewardRecorder(gym.Wrapper):
    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.rewards: list[float] = []

    def step(self, action):
        result = self.env.step(action)
        self.rewards.append(result[1])
        return result


@pytest.mark.parametrize("use_env_functions", [True, False])
def test_the_replay_buffer_stores_the_envs_rewards(use_env_functions):
    """The transitions the ensemble is fitted on carry the rewards the env gave, also when the
    env's reward function is used for planning."""
    env = RewardRecorder(gym.make("AdvRL/Pendulum-v0"))
    model = WorldModelMPC("MlpPolicy", env, seed=0, train_freq=3, use_env_functions=use_env_functions, **TINY)
    model.learn(6)
    assert len(env.rewards) == model.replay_buffer.size() == 6
    np.testing.assert_array_equal(model.replay_buffer.rewards[:6, 0], np.float32(env.rewards))
