"""MBPO: arguments, the rollout-length schedule, branched rollouts from the model, mixed minibatches,
the exact SAC update on them, and save/load with the ensemble."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import configure

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.mbpo import MBPO, ModelBuffer
from sb3_ext.mbpo.mbpo import rollout_length_at

PENDULUM = "AdvRL/Pendulum-v0"
TINY = dict(
    learning_starts=50,
    batch_size=32,
    buffer_size=2_000,
    utd_ratio=1,
    rollout_batch_size=64,
    model_train_freq=100,
    model_gradient_steps=10,
    model_kwargs=dict(n_members=2, n_elites=2, hidden_sizes=(16,)),
    policy_kwargs=dict(net_arch=[16, 16]),
    device="cpu",
)


def make(env_id: str = PENDULUM, seed: int = 0, **kwargs) -> MBPO:
    model = MBPO("MlpPolicy", gym.make(env_id), seed=seed, **{**copy.deepcopy(TINY), **kwargs})
    model.set_logger(configure(None, []))  # rollouts and updates log without learn()
    return model


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    "name, bad",
    [
        ("real_ratio", dict(real_ratio=-0.1)),
        ("real_ratio", dict(real_ratio=1.5)),
        ("real_ratio", dict(real_ratio=float("nan"))),
        ("rollout_schedule", dict(rollout_schedule=(0, 5, 0, 10))),
        ("rollout_schedule", dict(rollout_schedule=(6, 5, 0, 10))),
        ("rollout_schedule", dict(rollout_schedule=(1, 5, 10, 0))),
        ("rollout_schedule", dict(rollout_schedule=(1, 5, 10))),
        ("rollout_schedule", dict(rollout_schedule=(1.5, 5, 0, 10))),
        ("utd_ratio", dict(utd_ratio=0)),
        ("utd_ratio", dict(utd_ratio=-2.0)),
        ("model_train_freq", dict(model_train_freq=0)),
        ("rollout_batch_size", dict(rollout_batch_size=0)),
        ("epoch_length", dict(epoch_length=0)),
        ("model_retain_refits", dict(model_retain_refits=0)),
        ("model_class", dict(model_class=th.nn.Linear)),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(name: str, bad: dict) -> None:
    with pytest.raises(ValueError, match=name):
        make(**bad)


def test_discrete_actions_are_refused_naming_the_action_space() -> None:
    with pytest.raises(ValueError, match="action_space must be a gymnasium.spaces.Box"):
        make("AdvRL/GridWorld-v0")


def test_learned_heads_only_without_env_functions() -> None:
    known = make()
    assert known.uses_env_reward and known.uses_env_termination
    assert not known.dynamics_model.learn_reward and not known.dynamics_model.learn_termination
    learned = make(use_env_functions=False)
    assert learned.reward_fn is None and learned.termination_fn is None
    assert learned.dynamics_model.learn_reward and learned.dynamics_model.learn_termination


# ------------------------------------------------------------------ rollout-length schedule
@pytest.mark.parametrize(
    "schedule, epoch, expected",
    [
        # Janner et al.'s linear schedule: min_length up to first_epoch, then
        # floor(min + (epoch - first) / (last - first) * (max - min)), max_length from last_epoch on.
        ((1, 15, 20, 100), 0, 1),
        ((1, 15, 20, 100), 20, 1),
        ((1, 15, 20, 100), 26, 2),  # 1 + 6/80 * 14 = 2.05
        ((1, 15, 20, 100), 60, 8),  # 1 + 40/80 * 14 = 8
        ((1, 15, 20, 100), 99, 14),  # 1 + 79/80 * 14 = 14.825
        ((1, 15, 20, 100), 100, 15),
        ((1, 15, 20, 100), 500, 15),
        ((2, 5, 3, 3), 3, 2),
        ((2, 5, 3, 3), 4, 5),
        ((4, 4, 0, 10), 7, 4),
    ],
)
def test_rollout_length_schedule_is_the_papers_linear_interpolation(schedule, epoch, expected) -> None:
    assert rollout_length_at(epoch, schedule) == expected


def test_rollout_length_follows_the_environment_steps() -> None:
    model = make(rollout_schedule=(1, 5, 2, 6), epoch_length=100)
    for steps, expected in [(0, 1), (299, 1), (300, 2), (450, 3), (599, 4), (600, 5), (10_000, 5)]:
        model.num_timesteps = steps
        assert model.rollout_length() == expected, steps


# ------------------------------------------------------------------ rollouts come from the model
class PendulumPhysics(ProbabilisticEnsemble):
    """The pendulum's equations of motion (Pendulum-v1, default physics) in place of the network;
    ``mirror=True`` flips the sign of gravity, a deliberately wrong model."""

    mirror = False

    def sample(self, obs, actions, member_indices=None, deterministic=False, generator=None):
        obs = self._tensor(obs).double()
        u = th.clamp(self._tensor(actions)[..., 0].double(), -2.0, 2.0)
        theta, thetadot = th.atan2(obs[..., 1], obs[..., 0]), obs[..., 2]
        gravity = -10.0 if self.mirror else 10.0
        new_thetadot = th.clamp(thetadot + (3 * gravity / 2 * th.sin(theta) + 3.0 * u) * 0.05, -8.0, 8.0)
        new_theta = theta + new_thetadot * 0.05
        next_obs = th.stack([th.cos(new_theta), th.sin(new_theta), new_thetadot], dim=-1).float()
        return next_obs, None, None


class MirroredPendulum(PendulumPhysics):
    mirror = True


def env_transitions(env: gym.Env, model: MBPO) -> tuple[np.ndarray, np.ndarray]:
    """The env's own next observations and rewards for every transition in the model buffer."""
    stored = model.model_buffer.transitions()
    next_obs, rewards = [], []
    for obs, scaled in zip(stored.observations, stored.actions, strict=True):
        env.reset(seed=0)
        env.unwrapped.state = np.array([np.arctan2(obs[1], obs[0]), obs[2]], dtype=np.float64)
        o, r, *_ = env.step(model.policy.unscale_action(scaled))
        next_obs.append(o)
        rewards.append(r)
    return np.array(next_obs), np.array(rewards)


def start_states(n: int = 16) -> np.ndarray:
    rng = np.random.default_rng(3)
    theta, thetadot = rng.uniform(-np.pi, np.pi, n), rng.uniform(-6, 6, n)
    return np.stack([np.cos(theta), np.sin(theta), thetadot], axis=1).astype(np.float32)


@pytest.mark.parametrize("model_class, matches", [(PendulumPhysics, True), (MirroredPendulum, False)])
def test_rollouts_come_from_the_model(model_class: type, matches: bool) -> None:
    model = make(model_class=model_class, rollout_schedule=(3, 3, 0, 0))
    added = model.rollout_model(start_states(16))
    assert added == 16 * 3 == model.model_buffer.size()  # the pendulum never terminates
    stored = model.model_buffer.transitions()
    # Each step starts where the previous one ended: a 3-step branch from each start state.
    np.testing.assert_array_equal(stored.observations[16:], stored.next_observations[:-16])
    np.testing.assert_array_equal(stored.observations[:16], start_states(16))
    env = gym.make(PENDULUM)
    env_next, env_rewards = env_transitions(env, model)
    # Rewards come from the env's reward_fn (the model has no reward head) on the model's states.
    np.testing.assert_allclose(stored.rewards, env_rewards, rtol=1e-5, atol=1e-5)
    assert not stored.terminations.any()
    if matches:
        np.testing.assert_allclose(stored.next_observations, env_next, atol=1e-5)
    else:
        assert np.abs(stored.next_observations - env_next).max() > 0.01


def test_rollouts_with_learned_heads_are_the_ensembles_predictions() -> None:
    model = make(use_env_functions=False, rollout_schedule=(2, 2, 0, 0))
    ensemble = model.dynamics_model
    with th.no_grad():  # one member, (almost) no aleatoric noise: a sample is the predicted mean
        ensemble.max_logvar.fill_(-40.0)
        ensemble.min_logvar.fill_(-50.0)
        ensemble.head.bias[..., -1] = 0.0
        ensemble.head.weight[..., -1] = 0.0
        ensemble.head.bias[1, 0, -1] = 5.0  # termination logit 5 in member 1: every transition ends
    ensemble.elite_indices.copy_(th.tensor([1, 1]))
    start = start_states(8)
    model.rollout_model(start)
    stored = model.model_buffer.transitions()
    assert stored.observations.shape[0] == 8  # one step of two: every row terminated
    raw = model.policy.unscale_action(stored.actions)
    prediction = ensemble.predict(start, raw)
    np.testing.assert_allclose(stored.next_observations, start + prediction.delta_mean[1].numpy(), atol=1e-5)
    np.testing.assert_allclose(stored.rewards, prediction.reward_mean[1].numpy(), atol=1e-5)
    np.testing.assert_array_equal(stored.terminations, np.ones(8))
    env_rewards = gym.make(PENDULUM).unwrapped.reward_fn(start, raw, stored.next_observations)
    assert np.abs(stored.rewards - env_rewards).max() > 0.01  # not the env's reward


def test_learn_fits_the_model_and_fills_the_model_buffer() -> None:
    model = make(rollout_schedule=(2, 2, 0, 0), model_retain_refits=2)
    model.learn(260)
    # Fits at 50 (model_learning_starts = learning_starts), 150 and 250: each adds 64 x 2 transitions.
    assert model.model_fits == 3
    assert model.model_buffer.capacity == 2 * 64 * 2
    assert model.model_buffer.size() == 2 * 64 * 2
    # SAC trained on the mixed batches: real_ratio 0.05 of 32 is 1 real transition.
    assert model.logger.name_to_value["train/model_fraction"] == pytest.approx(31 / 32)


# ------------------------------------------------------------------ mixed minibatches
def add_real_transitions(model: MBPO, n: int) -> None:
    """``n`` real pendulum transitions (rewards <= 0) in the replay buffer."""
    env = model.get_env()
    obs = env.reset()
    for _ in range(n):
        action = np.array([model.action_space.sample()])
        next_obs, reward, done, infos = env.step(action)
        model.replay_buffer.add(obs, next_obs, model.policy.scale_action(action), reward, done, infos)
        obs = next_obs


def filled(real_ratio: float, **kwargs) -> MBPO:
    """30 real transitions and 40 model transitions with rewards 1..40."""
    model = make(real_ratio=real_ratio, **kwargs)
    add_real_transitions(model, 30)
    n_model = 40
    rng = np.random.default_rng(0)
    model.model_buffer.add(
        rng.normal(size=(n_model, 3)),
        rng.uniform(-1, 1, size=(n_model, 1)),
        rng.normal(size=(n_model, 3)),
        np.arange(1, n_model + 1, dtype=np.float32),  # model rewards 1..n: positive, distinct
        (np.arange(n_model) % 2).astype(np.float32),
    )
    return model


@pytest.mark.parametrize(
    "real_ratio, batch_size, n_real", [(0.05, 256, 12), (0.25, 10, 2), (0.5, 7, 3), (1.0, 8, 8), (0.0, 8, 0)]
)
def test_minibatch_mixes_real_and_model_transitions_as_specified(real_ratio, batch_size, n_real) -> None:
    model = filled(real_ratio)
    batch, n_model = model.mixed_batch(batch_size)
    assert n_model == batch_size - n_real
    rewards = batch.rewards.numpy().reshape(-1)
    assert rewards.shape == (batch_size,)
    assert (rewards[:n_real] <= 0).all() and (rewards[n_real:] >= 1).all()
    stored = model.model_buffer.transitions()
    for row in range(n_real, batch_size):  # every model row is one stored transition, fields together
        index = int(rewards[row]) - 1
        np.testing.assert_allclose(batch.observations[row].numpy(), stored.observations[index], rtol=1e-6)
        np.testing.assert_allclose(batch.actions[row].numpy(), stored.actions[index], rtol=1e-6)
        np.testing.assert_allclose(
            batch.next_observations[row].numpy(), stored.next_observations[index], rtol=1e-6
        )
        assert batch.dones[row].item() == stored.terminations[index]
    real = model.replay_buffer
    for row in range(n_real):  # every real row is a stored real transition
        matches = np.isclose(real.rewards[: real.pos, 0], rewards[row]).nonzero()[0]
        assert matches.size > 0
        np.testing.assert_allclose(
            batch.observations[row].numpy(), real.observations[matches[0], 0], rtol=1e-6
        )


def test_minibatch_is_all_real_while_the_model_buffer_is_empty() -> None:
    model = make()
    add_real_transitions(model, 5)
    batch, n_model = model.mixed_batch(16)
    assert n_model == 0 and batch.rewards.shape == (16, 1)


def test_utd_ratio_sets_the_gradient_steps_per_environment_step() -> None:
    model = filled(0.5)
    model.utd_ratio = 2.5
    model.train(gradient_steps=3, batch_size=8)  # 7.5 updates owed: 7 now, 0.5 carried
    assert model._n_updates == 7
    model.train(gradient_steps=1, batch_size=8)  # 2.5 + 0.5 = 3
    assert model._n_updates == 10


def test_one_sac_update_on_the_mixed_batch_is_the_soft_bellman_step() -> None:
    """Critic step of Haarnoja et al. (2018) on a mixed real/model batch, computed here:
    y = r + gamma (1 - d) (min_j Qbar_j(s', a') - alpha log pi(a'|s')), a' ~ pi(.|s');
    J_Q = 1/2 sum_j mean (Q_j(s, a) - y)^2; Adam's first step moves each weight by lr * g / (|g| + eps);
    the target critic then moves by Polyak averaging with tau."""
    model = filled(0.25, ent_coef=0.2)
    model.utd_ratio, model.gamma, model.tau = 1.0, 0.9, 0.1
    batch, n_model = model.mixed_batch(8)
    assert n_model == 6
    model.mixed_batch = lambda batch_size, replay_buffer=None: (batch, n_model)
    critic, critic_target, actor = (
        copy.deepcopy(net) for net in (model.critic, model.critic_target, model.actor)
    )
    rng_state = th.get_rng_state()

    model.train(gradient_steps=1, batch_size=8)

    th.set_rng_state(rng_state)
    actor.action_log_prob(batch.observations)  # SAC draws a ~ pi(.|s) first (actor loss)
    with th.no_grad():
        next_actions, next_log_prob = actor.action_log_prob(batch.next_observations)
        q_next = th.min(th.cat(critic_target(batch.next_observations, next_actions), dim=1), dim=1).values
        soft_value = q_next - 0.2 * next_log_prob
        y = batch.rewards[:, 0] + 0.9 * (1 - batch.dones[:, 0]) * soft_value
    loss = 0.5 * sum(((q[:, 0] - y) ** 2).mean() for q in critic(batch.observations, batch.actions))
    params = list(critic.parameters())
    grads = th.autograd.grad(loss, params)
    lr, eps = model.critic.optimizer.param_groups[0]["lr"], model.critic.optimizer.param_groups[0]["eps"]
    for (name, updated), before, grad in zip(model.critic.named_parameters(), params, grads, strict=True):
        expected = before.detach() - lr * grad / (grad.abs() + eps)
        th.testing.assert_close(updated.detach(), expected, rtol=1e-5, atol=1e-6, msg=name)
    for target, old, new in zip(
        model.critic_target.parameters(), critic_target.parameters(), model.critic.parameters(), strict=True
    ):
        th.testing.assert_close(
            target.detach(), 0.1 * new.detach() + 0.9 * old.detach(), rtol=1e-5, atol=1e-6
        )


# ------------------------------------------------------------------ save / load
def test_a_loaded_model_continues_learning_with_the_same_ensemble(tmp_path) -> None:
    model = make(model_train_freq=10_000)
    model.learn(120)
    assert model.model_fits == 1
    model.save(tmp_path / "mbpo.zip")
    model.save_replay_buffer(tmp_path / "replay.pkl")
    loaded = MBPO.load(tmp_path / "mbpo.zip", env=gym.make(PENDULUM), device="cpu")
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    loaded.set_logger(configure(None, []))
    assert loaded.model_fits == 1 and loaded.uses_env_reward
    state, loaded_state = model.dynamics_model.state_dict(), loaded.dynamics_model.state_dict()
    assert state.keys() == loaded_state.keys()
    for key in state:
        assert th.equal(state[key], loaded_state[key]), key
    # The same rollouts from the same start states and random draws.
    for algo in (model, loaded):
        th.manual_seed(5)
        algo.model_buffer = ModelBuffer(64, 3, 1)
        algo.rollout_model(start_states(16))
    for first, second in zip(
        model.model_buffer.transitions(), loaded.model_buffer.transitions(), strict=True
    ):
        np.testing.assert_array_equal(first, second)
    # Learning goes on with the loaded ensemble: SAC trains, the model is not refitted (not due).
    actor_before = copy.deepcopy(loaded.actor.state_dict())
    loaded.learn(60, reset_num_timesteps=False)
    assert loaded.num_timesteps == 180 and loaded.model_fits == 1
    for key, value in loaded.dynamics_model.state_dict().items():
        assert th.equal(value, state[key]), key
    assert any(not th.equal(actor_before[k], v) for k, v in loaded.actor.state_dict().items())


def test_model_buffer_keeps_the_newest_transitions() -> None:
    buffer = ModelBuffer(4, obs_dim=1, action_dim=1)
    for start in (0, 3):
        values = np.arange(start, start + 3, dtype=np.float32)
        buffer.add(values[:, None], values[:, None], values[:, None], values, np.zeros(3))
    np.testing.assert_array_equal(buffer.transitions().rewards, [2, 3, 4, 5])
    buffer.resize(2)
    np.testing.assert_array_equal(buffer.transitions().rewards, [4, 5])
    buffer.resize(5)
    buffer.add(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.array([6.0]), np.zeros(1))
    np.testing.assert_array_equal(buffer.transitions().rewards, [4, 5, 6])
    assert buffer.size() == 3


# ------------------------------------------------------------------ command line
def test_the_advrl_command_line_trains_and_evaluates_mbpo(tmp_path, capsys) -> None:
    from sb3_ext.cli import main

    out = tmp_path / "run"
    hyperparameters = [
        "learning_starts=100",
        "utd_ratio=1",
        "model_train_freq=100",
        "rollout_batch_size=100",
        "model_gradient_steps=5",
        "model_kwargs={'n_members': 2, 'n_elites': 1, 'hidden_sizes': (16,)}",
        "policy_kwargs={'net_arch': [16]}",
    ]
    args = ["train", "MBPO", PENDULUM, "--timesteps", "200", "--out", str(out), "--no-progress-bar"]
    assert main([*args, "--eval-points", "1", "--eval-episodes", "1", "--hp", *hyperparameters]) == 0
    loaded = MBPO.load(out / "model.zip", device="cpu")
    assert loaded.num_timesteps == 200 and loaded.model_fits == 2  # at 100 and at 200 steps
    assert main(["eval", str(out), "--episodes", "1"]) == 0
    assert "MBPO on AdvRL/Pendulum-v0: mean return" in capsys.readouterr().out
