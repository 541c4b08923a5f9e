"""Dreamer: lambda-returns, percentile return normalization and the actor and critic losses against
independent computations; the train_ratio arithmetic; learning a tiny task; recurrent prediction
with evaluate_policy; clear errors on bad input. (The shared API suite is tests/test_algorithms.py.)"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.common.rssm import RSSMState
from sb3_ext.dreamer import Dreamer, lambda_returns, update_return_range
from sb3_ext.latent_mpc import LatentMPC
from tests.image_envs import ActionRewardEnv, PointImageEnv

SMALL_MODEL = dict(
    deter_size=16, stoch_size=4, classes=4, hidden_size=16, mlp_layers=[16], embed_dim=16, cnn_depth=2
)
SMALL = dict(
    learning_starts=50,
    batch_size=4,
    sequence_length=8,
    train_ratio=8,
    imagination_horizon=4,
    buffer_size=2_000,
    device="cpu",
    policy_kwargs=dict(net_arch=[16], world_model_kwargs=SMALL_MODEL),
)


def test_lambda_returns_match_a_hand_loop() -> None:
    rng = np.random.default_rng(0)
    horizon, n, gamma, lam = 5, 3, 0.9, 0.7
    rewards, continuations = rng.normal(size=(horizon, n)), rng.uniform(size=(horizon, n))
    values = rng.normal(size=(horizon + 1, n))
    expected = np.zeros((horizon, n))
    for i in range(n):
        following = values[horizon, i]  # R_H = v(s_H)
        for t in reversed(range(horizon)):
            bootstrap = (1 - lam) * values[t + 1, i] + lam * following
            following = rewards[t, i] + gamma * continuations[t, i] * bootstrap
            expected[t, i] = following
    got = lambda_returns(*(th.as_tensor(x) for x in (rewards, values, continuations)), gamma, lam)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    # lambda = 0: one-step TD targets; lambda = 1 with c = 1: discounted rewards plus the final value.
    td = lambda_returns(*(th.as_tensor(x) for x in (rewards, values, continuations)), gamma, 0.0)
    np.testing.assert_allclose(td.numpy(), rewards + gamma * continuations * values[1:], rtol=1e-12)
    ones = np.ones((horizon, n))
    mc = lambda_returns(th.as_tensor(rewards), th.as_tensor(values), th.as_tensor(ones), gamma, 1.0)
    discounts = gamma ** np.arange(horizon)
    np.testing.assert_allclose(
        mc[0].numpy(), (discounts[:, None] * rewards).sum(0) + gamma**horizon * values[-1], rtol=1e-12
    )


def test_return_normalization_tracks_numpy_percentiles() -> None:
    rng = np.random.default_rng(1)
    low, high = th.tensor(0.0), th.tensor(0.0)
    expected_low = expected_high = 0.0
    for scale in (50.0, 50.0, 0.01):
        returns = rng.normal(scale=scale, size=(15, 64))
        low, high, norm = update_return_range(th.as_tensor(returns), low, high, decay=0.9)
        expected_low = 0.9 * expected_low + 0.1 * np.percentile(returns, 5)
        expected_high = 0.9 * expected_high + 0.1 * np.percentile(returns, 95)
        assert low.item() == pytest.approx(expected_low, rel=1e-5)
        assert high.item() == pytest.approx(expected_high, rel=1e-5)
        assert norm.item() == pytest.approx(max(1.0, expected_high - expected_low), rel=1e-5)
    # Small returns are never scaled up: the scale is at least 1.
    _, _, norm = update_return_range(th.full((10,), 0.001), th.tensor(0.0), th.tensor(0.0))
    assert norm.item() == 1.0


def start_states(model: Dreamer, n: int = 6) -> RSSMState:
    """Posterior states of a few random observation sequences."""
    wm = model.policy.world_model
    g = th.Generator().manual_seed(3)
    obs = th.randn(n, 3, 2, generator=g)
    actions = (
        th.randint(0, 2, (n, 3, 1), generator=g)
        if model.policy.actor.discrete
        else th.rand(n, 3, 1, generator=g)
    )
    is_first = th.tensor([[1.0, 0.0, 0.0]] * n)
    with th.no_grad():
        posteriors, _ = wm.observe(obs, actions, is_first)
    return posteriors.map(lambda t: t[:, -1])


def independent_losses(model: Dreamer, start: RSSMState, seed: int) -> dict[str, float]:
    """Imagine with the same random draws, then the DreamerV3 losses written out with numpy."""
    policy, wm = model.policy, model.policy.world_model
    actor = policy.actor
    th.manual_seed(seed)
    state, features, log_probs, entropies = start, [wm.features(start)], [], []
    with th.no_grad():
        for _ in range(model.imagination_horizon):
            out = actor.net(features[-1])
            if actor.discrete:
                probs = 0.99 * th.softmax(out, -1) + 0.01 / 2
                index = th.distributions.Categorical(probs=probs).sample()
                action = th.nn.functional.one_hot(index, 2).float()
                log_probs.append(th.log(probs.gather(1, index[:, None])[:, 0]).numpy())
                entropies.append(-(probs * th.log(probs)).sum(-1).numpy())
            else:
                mean, raw = out.chunk(2, -1)
                std = 0.9 * th.sigmoid(raw + 2.0) + 0.1
                action = th.distributions.Normal(th.tanh(mean), std).rsample().clamp(-1, 1)
                entropies.append(th.log(std * np.sqrt(2 * np.pi * np.e)).sum(-1).numpy())
            state = wm.rssm.imagine_step(state, action)
            features.append(wm.features(state))
        feats = th.stack(features)
        rewards = wm.reward(feats[1:]).numpy()
        conts = th.sigmoid(wm.continuation_head(feats[1:])[..., 0]).numpy()
        target_values = policy.critic_target(feats)[..., 0].numpy()
        values = policy.critic(feats[:-1])[..., 0].numpy()
    horizon, gamma, lam = model.imagination_horizon, model.gamma, model.gae_lambda
    returns = np.zeros_like(rewards)
    following = target_values[-1]
    for t in reversed(range(horizon)):
        following = rewards[t] + gamma * conts[t] * ((1 - lam) * target_values[t + 1] + lam * following)
        returns[t] = following
    weights = np.ones_like(rewards)
    for t in range(1, horizon):
        weights[t] = weights[t - 1] * gamma * conts[t - 1]
    decay = model.return_decay
    low, high = (1 - decay) * np.percentile(returns, 5), (1 - decay) * np.percentile(returns, 95)
    scale = max(1.0, high - low)
    entropy = np.stack(entropies)
    if actor.discrete:
        advantage = (returns - target_values[:-1]) / scale
        objective = np.stack(log_probs) * advantage
    else:
        objective = returns / scale
    return dict(
        actor_loss=-np.mean(weights * (objective + model.ent_coef * entropy)),
        critic_loss=0.5 * np.mean(weights * (values - returns) ** 2),
        return_scale=scale,
        return_low=low,
        return_high=high,
    )


@pytest.mark.parametrize("discrete", [True, False], ids=["reinforce", "dynamics"])
def test_actor_and_critic_losses_match_an_independent_computation(discrete: bool) -> None:
    env = ActionRewardEnv(discrete=discrete)
    # A large reward scale and entropy bonus make every term count.
    model = Dreamer("MlpPolicy", env, seed=0, ent_coef=0.1, **SMALL)
    with th.no_grad():
        model.policy.world_model.reward_head[-1].bias.fill_(3.0)
    start = start_states(model)
    th.manual_seed(11)
    losses = model.actor_critic_losses(start)
    expected = independent_losses(model, start, seed=11)
    for name in ("actor_loss", "critic_loss", "return_scale"):
        assert losses[name].item() == pytest.approx(expected[name], rel=1e-4), name
    assert model.policy.return_low.item() == pytest.approx(expected["return_low"], rel=1e-4)
    assert model.policy.return_high.item() == pytest.approx(expected["return_high"], rel=1e-4)

    # Gradients: the actor and the critic get theirs; the world model and the slow critic none.
    (losses["actor_loss"] + losses["critic_loss"]).backward()
    policy = model.policy
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.actor.parameters())
    assert all(p.grad is not None for p in policy.critic.parameters())
    assert all(p.grad is None for p in policy.world_model.parameters())
    assert all(p.grad is None for p in policy.critic_target.parameters())


def test_dynamics_gradient_reaches_the_actor_through_the_model_only_for_box_actions() -> None:
    model = Dreamer("MlpPolicy", ActionRewardEnv(), seed=0, ent_coef=0.0, **SMALL)
    start = start_states(model)
    losses = model.actor_critic_losses(start)
    grads = th.autograd.grad(losses["actor_loss"], list(model.policy.actor.parameters()), allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    assert model.uses_dynamics_gradient
    discrete = Dreamer("MlpPolicy", ActionRewardEnv(discrete=True), seed=0, **SMALL)
    assert not discrete.uses_dynamics_gradient
    assert (
        Dreamer("MlpPolicy", ActionRewardEnv(), actor_gradient="reinforce", **SMALL).uses_dynamics_gradient
        is False
    )


def test_train_ratio_sets_the_number_of_updates() -> None:
    # 8 x 8 = 64 replayed steps per update; train_ratio 16 -> one update per 4 env steps after learning_starts.
    model = Dreamer("MlpPolicy", ActionRewardEnv(), seed=0, **{**SMALL, "train_ratio": 16, "batch_size": 8})
    model.learn(150)
    assert model._n_updates == (150 - 50) // 4
    model.learn(40, reset_num_timesteps=False)
    assert model._n_updates == (190 - 50) // 4


def test_one_update_changes_the_model_actor_critic_and_slow_critic() -> None:
    model = Dreamer("MlpPolicy", ActionRewardEnv(), seed=0, **SMALL)
    model.learn(60)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    values = model.update(model.replay_buffer.sample(4, 8))
    after = model.policy.state_dict()
    for prefix in ("world_model.", "actor.", "critic.", "critic_target."):
        assert any(not th.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    # The slow critic moved by tau towards the critic: target' = (1 - tau) target + tau critic.
    for key in (k for k in before if k.startswith("critic_target.")):
        critic_key = key.replace("critic_target.", "critic.")
        th.testing.assert_close(after[key], (1 - model.tau) * before[key] + model.tau * after[critic_key])
    assert {"world_model_loss", "kl", "actor_loss", "critic_loss", "return_scale"} <= set(values)


@pytest.mark.parametrize("discrete", [True, False], ids=["discrete", "box"])
def test_dreamer_learns_to_take_the_rewarding_action(discrete: bool) -> None:
    """Reward = action: the maximum return is 10 per episode; uniform actions earn 5 (Discrete) or 0 (Box)."""
    env = gym.wrappers.TimeLimit(ActionRewardEnv(discrete=discrete), 10)
    kwargs = {
        **SMALL,
        "train_ratio": 16,
        "learning_rate": 1e-3,
        "actor_learning_rate": 1e-3,
        "critic_learning_rate": 1e-3,
    }
    model = Dreamer("MlpPolicy", env, seed=0, **kwargs)
    model.learn(300)  # 125 updates
    mean_return, _ = evaluate_policy(model, env, n_eval_episodes=5, deterministic=True, warn=False)
    assert mean_return > 9.5


def test_predict_threads_the_recurrent_state_and_resets_it_at_episode_starts() -> None:
    model = Dreamer("MlpPolicy", "AdvRL/Pendulum-v0", seed=0, **SMALL)
    env = gym.make("AdvRL/Pendulum-v0")
    obs, _ = env.reset(seed=0)
    _, state = model.predict(obs, deterministic=True)
    deter, stoch, previous = state
    assert deter.shape == (1, 16) and stoch.shape == (1, 4, 4) and previous.shape == (1, 1)
    # The next action depends on the carried state; a start flag forgets it.
    fresh, _ = model.predict(obs, deterministic=True)
    again, state2 = model.predict(obs, state=state, episode_start=np.array([False]), deterministic=True)
    reset, _ = model.predict(obs, state=state, episode_start=np.array([True]), deterministic=True)
    np.testing.assert_array_equal(reset, fresh)
    assert not np.array_equal(state2[0], state[0])
    with pytest.raises(ValueError, match="state"):
        model.predict(obs, state=(deter,), deterministic=True)


def test_image_observations_with_box_actions() -> None:
    model = Dreamer("CnnPolicy", PointImageEnv(), seed=0, **SMALL)
    model.learn(80)
    assert model._n_updates > 0
    obs, _ = PointImageEnv().reset(seed=0)
    action, state = model.predict(obs, deterministic=True)
    assert action.shape == (1,) and -1 <= action[0] <= 1


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(imagination_horizon=0), "imagination_horizon"),
        (dict(train_ratio=0), "train_ratio"),
        (dict(train_ratio=-2.0), "train_ratio"),
        (dict(sequence_length=1), "sequence_length"),
        (dict(gae_lambda=1.5), "gae_lambda"),
        (dict(actor_gradient="pathwise"), "actor_gradient"),
        (dict(tau=0.0), "tau"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Dreamer("MlpPolicy", ActionRewardEnv(), **{**SMALL, **kwargs})


def test_dynamics_gradient_needs_box_actions() -> None:
    with pytest.raises(ValueError, match="actor_gradient"):
        Dreamer("MlpPolicy", ActionRewardEnv(discrete=True), actor_gradient="dynamics", **SMALL)


@pytest.mark.parametrize(
    "env_id, env_kwargs",
    [
        ("AdvRL/FourRooms-v0", {}),  # Discrete observations
        ("AdvRL/GridWorld-v0", dict(obs_mode="rgb", size=5, cell_px=4)),  # 20x20 images do not halve to 4
    ],
)
def test_unsupported_observation_spaces_are_value_errors(env_id: str, env_kwargs: dict) -> None:
    with pytest.raises(ValueError, match="observation_space"):
        Dreamer("MlpPolicy", gym.make(env_id, **env_kwargs), **SMALL)


@pytest.mark.parametrize("algo", ["Dreamer", "LatentMPC"])
def test_replay_buffer_save_and_load_resume_learning(algo: str, tmp_path) -> None:
    """``save_replay_buffer``/``load_replay_buffer``, SB3's way to go on learning in a new process."""
    if algo == "Dreamer":
        cls, kwargs = Dreamer, SMALL
    else:
        planner = dict(horizon=3, population_size=16, n_elites=4, n_iterations=2)
        shared = {k: v for k, v in SMALL.items() if k not in ("imagination_horizon", "policy_kwargs")}
        cls, kwargs = LatentMPC, {**shared, **planner, "policy_kwargs": dict(world_model_kwargs=SMALL_MODEL)}
    model = cls("MlpPolicy", "AdvRL/Pendulum-v0", seed=0, **kwargs)
    model.learn(70)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    saved = model.replay_buffer
    loaded = cls.load(tmp_path / "model.zip", env=gym.make("AdvRL/Pendulum-v0"), device="cpu")
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    buffer = loaded.replay_buffer
    assert buffer.size() == saved.size() == 71  # the first observation and 70 steps
    for name in ("observations", "actions", "rewards", "is_first", "is_terminal"):
        np.testing.assert_array_equal(getattr(buffer, name), getattr(saved, name))
    # Learning goes on from the saved steps; the new first observation starts a new episode.
    updates = loaded._n_updates
    loaded.learn(30, reset_num_timesteps=False)
    assert loaded.num_timesteps == 100 and loaded._n_updates > updates
    assert buffer.size() == 102 and buffer.is_first[71, 0] and not buffer.is_first[72:102, 0].any()
    # Another algorithm's buffer is refused by name.
    SAC("MlpPolicy", "AdvRL/Pendulum-v0", buffer_size=100, device="cpu").save_replay_buffer(tmp_path / "sac")
    with pytest.raises(ValueError, match="path must hold a SequenceReplayBuffer"):
        loaded.load_replay_buffer(tmp_path / "sac.pkl")
