"""WorldModelMPC specifics: env reward/termination discovery, planning API, errors, logging, learning."""

from __future__ import annotations

import copy
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
    # Discrete actions plan by random shooting, which ignores the CEM arguments: still checked.
    for name, bad in [
        ("n_elites", 0),
        ("n_iterations", 1.5),
        ("alpha", 1.0),
        ("initial_std", -0.1),
        ("horizon", 0),
    ]:
        with pytest.raises(ValueError, match=name):
            WorldModelMPC("MlpPolicy", "AdvRL/SequenceTracking-v0", **{**SMALL, name: bad})


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
    fits = []
    fit = model.policy.dynamics.fit

    def record_fit(*args, **kwargs):
        fits.append(fit(*args, **kwargs))
        return fits[-1]

    model.policy.dynamics.fit = record_fit
    model.learn(400, log_interval=1)
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    last = rows[-1]
    # Fits at 100 (learning_starts), 200, 300 and 400 steps, each on all data so far; the dump at
    # step 400 (end of the second episode) comes before the fit at 400, so it reports the third.
    assert len(fits) == 4
    assert float(last["train/model_transitions"]) == 300
    for key in ("nll", "mse", "termination_bce", "loss"):
        if f"train_{key}" in fits[2]:
            assert float(last[f"train/model_{key}"]) == pytest.approx(fits[2][f"train_{key}"], rel=1e-6), key
    assert float(last["train/model_holdout_mse"]) == pytest.approx(fits[2]["holdout_mse"], rel=1e-6)
    assert 0.0 < float(last["train/model_fit_time_s"]) < 60.0
    assert model.planning_latency_ms.shape == (300,)  # steps 0..99 random, 100..399 planned
    assert float(last["time/planning_ms_median"]) == pytest.approx(
        np.median(model.planning_latency_ms), rel=1e-6
    )
    assert float(last["time/planning_ms_p90"]) == pytest.approx(
        np.percentile(model.planning_latency_ms, 90), rel=1e-6
    )


def test_time_limit_truncations_are_not_terminations_for_the_model():
    """The learned termination head is fitted with termination = done and not truncated: a
    Pendulum episode only ever ends by its time limit, so every target is 0."""
    env = gym.make("AdvRL/Pendulum-v0", max_episode_steps=50)
    model = WorldModelMPC(
        "MlpPolicy", env, seed=0, use_env_functions=False, **{**SMALL, "learning_starts": 150}
    )
    assert model.policy.dynamics.learn_termination
    calls = []
    fit = model.policy.dynamics.fit

    def record_fit(obs, actions, next_obs, rewards, terminations, **kwargs):
        calls.append(np.asarray(terminations).copy())
        return fit(obs, actions, next_obs, rewards, terminations, **kwargs)

    model.policy.dynamics.fit = record_fit
    model.learn(200)  # fitted at step 150 and after step 200, on episodes cut by the time limit
    assert [len(terminations) for terminations in calls] == [150, 200]
    assert model.replay_buffer.dones[:200].sum() == 4 and model.replay_buffer.timeouts[:200].sum() == 4
    for terminations in calls:
        np.testing.assert_array_equal(terminations, 0.0)


def test_terminations_are_dones_that_are_not_time_limits():
    model = WorldModelMPC(
        "MlpPolicy", "AdvRL/NonlinearRegulator-v0", seed=0, use_env_functions=False, **SMALL
    )
    space = model.observation_space
    endings = [
        ({}, False),
        ({}, True),
        ({"TimeLimit.truncated": True}, True),
        ({"TimeLimit.truncated": False}, True),
    ]
    for info, done in endings:
        obs = space.sample()[None]
        model.replay_buffer.add(obs, obs, np.zeros((1, 2)), np.zeros(1), np.array([done]), [info])
    np.testing.assert_array_equal(model._transitions().terminations, [0.0, 1.0, 0.0, 1.0])


def hand_forward(ensemble, inputs: th.Tensor):
    """The ensemble's forward pass written out: SiLU MLP per member, soft log-variance bounds
    (PETS appendix A.1), termination logit last."""
    x = inputs
    for layer in ensemble.hidden_layers:
        x = th.nn.functional.silu(th.einsum("eni,eio->eno", x, layer.weight) + layer.bias)
    out = th.einsum("eni,eio->eno", x, ensemble.head.weight) + ensemble.head.bias
    d = ensemble.gauss_dim
    mean, raw_logvar = out[..., :d], out[..., d : 2 * d]
    logvar = ensemble.max_logvar - th.nn.functional.softplus(ensemble.max_logvar - raw_logvar)
    logvar = ensemble.min_logvar + th.nn.functional.softplus(logvar - ensemble.min_logvar)
    return mean, logvar, out[..., -1]


@pytest.mark.parametrize("nll_beta", [0.0, 0.5])
def test_one_model_step_is_the_gaussian_nll_step(nll_beta):
    """One step of the ensemble WorldModelMPC fits (member e on its own block of the batch):
    loss = 1/2 mean[(mu - y)^2 / sigma^2 + log sigma^2] (times the detached sigma^(2 beta) for beta-NLL)
    + 0.01 (sum max_logvar - sum min_logvar) + BCE(termination logit, termination), on targets
    y = ([s' - s, r] - target_mean) / target_std and inputs ([s, a] - input_mean) / input_std with
    the statistics of the data; the gradient the optimizer applies is that loss's."""
    model = WorldModelMPC(
        "MlpPolicy", "AdvRL/NonlinearRegulator-v0", seed=0, use_env_functions=False, **SMALL
    )
    ensemble = model.policy.dynamics
    ensemble.nll_beta = nll_beta
    gen = th.Generator().manual_seed(0)
    n_members, n = ensemble.n_members, 8
    obs = th.randn(n_members, n, 4, generator=gen)
    actions = th.rand(n_members, n, 2, generator=gen) * 2 - 1
    next_obs = obs + 0.1 * th.randn(n_members, n, 4, generator=gen)
    rewards = th.randn(n_members, n, generator=gen)
    terminations = (th.arange(n_members * n).reshape(n_members, n) % 3 == 0).float()

    def flat(x: th.Tensor) -> th.Tensor:  # all members' blocks as one data set
        return x.reshape(n_members * n, *x.shape[2:])

    ensemble.set_normalization(flat(obs), flat(actions), flat(next_obs), flat(rewards))
    inputs, targets = th.cat([obs, actions], -1), th.cat([next_obs - obs, rewards[..., None]], -1)
    th.testing.assert_close(ensemble.input_mean, flat(inputs).mean(0))
    th.testing.assert_close(ensemble.input_std, flat(inputs).std(0))
    th.testing.assert_close(ensemble.target_std, flat(targets).std(0))

    reference = copy.deepcopy(ensemble)
    mean, logvar, logit = hand_forward(reference, (inputs - reference.input_mean) / reference.input_std)
    y = (targets - reference.target_mean) / reference.target_std
    terms = (mean - y) ** 2 * th.exp(-logvar) + logvar
    nll = 0.5 * (terms * th.exp(logvar).detach() ** nll_beta).mean()
    bce = -(
        terminations * th.nn.functional.logsigmoid(logit)
        + (1 - terminations) * th.nn.functional.logsigmoid(-logit)
    ).mean()
    bound = 0.01 * (reference.max_logvar.sum() - reference.min_logvar.sum())
    total = nll + bound + bce
    names, params = zip(*reference.named_parameters(), strict=True)
    expected_grads = th.autograd.grad(total, params)

    info = ensemble.train_step(obs, actions, next_obs, rewards, terminations)
    assert info["loss"] == pytest.approx(total.item(), rel=1e-5)
    assert info["nll"] == pytest.approx(nll.item(), rel=1e-5)
    assert info["termination_bce"] == pytest.approx(bce.item(), rel=1e-5)
    grads = dict(ensemble.named_parameters())
    for name, expected in zip(names, expected_grads, strict=True):
        th.testing.assert_close(grads[name].grad, expected, rtol=1e-4, atol=1e-7, msg=name)


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
