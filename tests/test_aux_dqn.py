"""AuxDQN: shared-encoder gradients, equivalence with DQN, augmentation, target encoder, errors, learning."""

from __future__ import annotations

import copy
import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.evaluation import evaluate_policy

import gym_advrl  # noqa: F401
from sb3_ext.aux_dqn import AuxDQN, PERAuxDQN
from sb3_ext.aux_dqn.augmentation import gaussian_noise, random_shift, resolve_augmentation
from sb3_ext.common.buffers import PrioritizedReplayBuffer

TASKS = ("reward", "latent", "inverse")
NO_AUX = dict(reward_coef=0.0, latent_coef=0.0, inverse_coef=0.0)


def make_env(kind: str) -> gym.Env:
    if kind == "image":
        return gym.make("AdvRL/GridWorld-v0", obs_mode="rgb")
    return gym.make("CartPole-v1")


def filled_model(cls, kind: str, steps: int = 300, **kwargs):
    """A model whose replay buffer holds ``steps`` random transitions (no gradient step taken)."""
    policy = "CnnPolicy" if kind == "image" else "MlpPolicy"
    model = cls(policy, make_env(kind), learning_starts=10 * steps, buffer_size=1000, seed=0, **kwargs)
    model.learn(steps)
    return model


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Small networks: intra-op threads only add overhead, and the suite runs two workers on two cores.
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


@pytest.fixture(scope="module", params=["vector", "image"])
def aux_model(request):
    return filled_model(AuxDQN, request.param), request.param


@pytest.mark.parametrize("task", TASKS)
def test_every_aux_loss_reaches_the_shared_encoder(aux_model, task):
    model, kind = aux_model
    policy = model.policy
    batch = model.replay_buffer.sample(32)
    policy.optimizer.zero_grad(set_to_none=True)
    latent = policy.latent(batch.observations)
    if task == "reward":
        loss = policy.reward_loss(latent, batch.actions, batch.rewards)
    elif task == "latent":
        loss = policy.latent_prediction_loss(latent, batch.actions, batch.next_observations)
    else:
        loss = policy.inverse_dynamics_loss(latent, policy.latent(batch.next_observations), batch.actions)
    assert loss.shape == (32,)
    loss.mean().backward()

    encoder = policy.encoder_parameters()
    # The image encoder is the CNN itself; the vector one is the hidden Q layers (Flatten has no weights).
    shared = (
        list(policy.q_net.features_extractor.parameters())
        if kind == "image"
        else list(policy.torso.parameters())
    )
    assert len(shared) > 0
    assert {id(p) for p in encoder} == {id(p) for p in shared}
    for param in shared:
        assert param.grad.abs().sum() > 0
    # The Q head is not on the path of any auxiliary loss, the target encoder never gets gradients.
    assert all(p.grad is None for p in policy.q_head.parameters())
    assert all(p.grad is None for p in policy.target_encoder_parameters())
    assert all(p.grad is None for p in policy.q_net_target.parameters())


@pytest.mark.parametrize("kind", ["vector", "image"])
def test_zero_aux_weights_without_augmentation_update_exactly_as_dqn(kind):
    dqn = filled_model(DQN, kind)
    aux = filled_model(AuxDQN, kind, augmentation=None, **NO_AUX)
    # Same seed, and the Q-networks are built first: identical initial weights.
    for p_dqn, p_aux in zip(dqn.q_net.parameters(), aux.q_net.parameters(), strict=True):
        assert th.equal(p_dqn, p_aux)
    aux.replay_buffer = copy.deepcopy(dqn.replay_buffer)
    for step in range(3):
        for model in (dqn, aux):
            np.random.seed(step)  # noqa: NPY002  (SB3's buffers sample with numpy's global generator)
            model.train(gradient_steps=1, batch_size=32)
        for p_dqn, p_aux in zip(dqn.q_net.parameters(), aux.q_net.parameters(), strict=True):
            assert th.equal(p_dqn, p_aux)
    assert not th.equal(next(dqn.q_net.parameters()), next(filled_model(DQN, kind).q_net.parameters()))


@pytest.mark.parametrize(
    "changed",
    [dict(reward_coef=0.1), dict(latent_coef=0.1), dict(inverse_coef=0.1), dict(augmentation="auto")],
)
def test_each_aux_task_or_augmentation_changes_the_update(changed):
    kwargs = {**NO_AUX, "augmentation": None, **changed}
    reference = filled_model(AuxDQN, "vector", augmentation=None, **NO_AUX)
    model = filled_model(AuxDQN, "vector", **kwargs)
    model.replay_buffer = copy.deepcopy(reference.replay_buffer)
    for m in (reference, model):
        np.random.seed(0)  # noqa: NPY002
        th.manual_seed(0)
        m.train(gradient_steps=1, batch_size=32)
    first = next(iter(model.policy.torso.parameters()))
    assert not th.equal(first, next(iter(reference.policy.torso.parameters())))
    for task in TASKS:
        logged = f"train/{task}_loss" in model.logger.name_to_value
        assert logged == (changed.get(f"{task}_coef", 0) > 0)


def test_double_q_target_uses_online_argmax_and_target_values():
    model = filled_model(AuxDQN, "vector", double_q=True)
    # Make online and target networks disagree.
    with th.no_grad():
        for param in model.q_net_target.parameters():
            param.add_(0.5 * th.randn_like(param))
    batch = model.replay_buffer.sample(64)
    target = model.td_target(batch, batch.next_observations)
    online_argmax = model.q_net(batch.next_observations).argmax(dim=1)
    q_target = model.q_net_target(batch.next_observations)
    expected = (
        batch.rewards[:, 0] + model.gamma * (1 - batch.dones[:, 0]) * q_target[th.arange(64), online_argmax]
    )
    th.testing.assert_close(target[:, 0], expected)
    model.double_q = False
    expected_dqn = batch.rewards[:, 0] + model.gamma * (1 - batch.dones[:, 0]) * q_target.max(dim=1).values
    th.testing.assert_close(model.td_target(batch, batch.next_observations)[:, 0], expected_dqn)
    assert not th.allclose(expected, expected_dqn)


def test_target_encoder_is_a_polyak_average_updated_every_gradient_step():
    model = filled_model(AuxDQN, "vector", target_encoder_tau=0.25)
    policy = model.policy
    for online, target in zip(policy.encoder_parameters(), policy.target_encoder_parameters(), strict=True):
        assert th.equal(online, target) and online is not target
    before = [p.clone() for p in policy.target_encoder_parameters()]
    model.train(gradient_steps=1, batch_size=32)
    for online, target, old in zip(
        policy.encoder_parameters(), policy.target_encoder_parameters(), before, strict=True
    ):
        th.testing.assert_close(target, 0.75 * old + 0.25 * online)
        assert not th.equal(target, online)


def test_prioritized_replay_weights_the_td_loss_and_writes_back_td_errors():
    model = filled_model(PERAuxDQN, "vector", augmentation=None)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    # Give the stored transitions different priorities, so that the IS weights differ from 1.
    n = buffer.size()
    buffer.update_priorities(np.arange(n), np.linspace(0.1, 5.0, n))
    np.random.seed(3)  # noqa: NPY002
    batch = model._sample_prioritized(32)
    with th.no_grad():
        td_errors = model.td_target(batch, batch.next_observations) - th.gather(
            model.q_net(batch.observations), 1, batch.actions.long()
        )
        huber = th.nn.functional.smooth_l1_loss(td_errors, th.zeros_like(td_errors), reduction="none")
    assert batch.weights.min() < 1.0
    np.random.seed(3)  # noqa: NPY002
    model.train(gradient_steps=1, batch_size=32)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(
        float((batch.weights * huber).mean()), rel=1e-5
    )
    expected = (np.abs(td_errors.numpy().reshape(-1)) + buffer.eps) ** buffer.alpha
    np.testing.assert_allclose(buffer.tree[batch.indices], expected, rtol=1e-5)
    for task in TASKS:
        assert f"train/{task}_loss" in model.logger.name_to_value
    with pytest.raises(ValueError, match="PERAuxDQN"):
        AuxDQN("MlpPolicy", make_env("vector"), replay_buffer_class=PrioritizedReplayBuffer)


@pytest.mark.parametrize("cls", [AuxDQN, PERAuxDQN])
@pytest.mark.parametrize("coefs", [(0.3, 0.05, 0.7), (2.0, 0.5, 1.5)])
@pytest.mark.parametrize("noise_std", [None, 0.3])
def test_one_step_gradient_is_td_loss_plus_weighted_aux_losses(cls, coefs, noise_std, monkeypatch):
    """The gradient of one update is that of L_TD + reward_coef L_reward + latent_coef L_latent +
    inverse_coef L_inverse, each loss written out here from the networks (the TD loss importance-
    weighted for PERAuxDQN), for two sets of weights; with Gaussian-noise augmentation every loss
    sees obs + std * N(0, I) and next_obs + std * N'(0, I), two independent draws in that order."""
    reward_coef, latent_coef, inverse_coef = coefs
    model = filled_model(
        cls,
        "vector",
        augmentation=None if noise_std is None else "noise",
        **({} if noise_std is None else {"noise_std": noise_std}),
        reward_coef=reward_coef,
        latent_coef=latent_coef,
        inverse_coef=inverse_coef,
        gamma=0.9,
        max_grad_norm=1e9,
        policy_kwargs=dict(net_arch=[16], aux_net_arch=[16]),
    )
    policy, buffer = model.policy, model.replay_buffer
    if cls is PERAuxDQN:  # distinct priorities: importance weights below 1
        buffer.update_priorities(np.arange(buffer.size()), np.linspace(0.1, 5.0, buffer.size()))
        buffer.set_progress(1.0)  # learn() has ended: beta is annealed to final_beta
    np.random.seed(4)  # noqa: NPY002  (the batch train() will draw)
    batch = buffer.sample(32)
    weights = batch.weights.reshape(-1) if cls is PERAuxDQN else th.ones(32)
    assert weights.min() < 0.9 or cls is AuxDQN
    reference = copy.deepcopy(policy)

    obs, next_obs, actions = (
        batch.observations.float(),
        batch.next_observations.float(),
        batch.actions.long().reshape(-1),
    )
    if noise_std is not None:  # the draws train() makes after th.manual_seed(7)
        th.manual_seed(7)
        obs = obs + noise_std * th.randn_like(obs)
        next_obs = next_obs + noise_std * th.randn_like(next_obs)
    one_hot = th.nn.functional.one_hot(actions, 2).float()
    torso, q_head = reference.q_net.q_net[:-1], reference.q_net.q_net[-1]
    z, z_next = torso(obs), torso(next_obs)  # the vector features extractor only flattens
    with th.no_grad():
        target = (
            batch.rewards.reshape(-1)
            + 0.9 * (1 - batch.dones.reshape(-1)) * reference.q_net_target(next_obs).max(dim=1).values
        )
        z_target = reference.target_torso(next_obs)
    td = (
        weights * th.nn.functional.huber_loss(q_head(z)[th.arange(32), actions], target, reduction="none")
    ).mean()
    reward = th.nn.functional.huber_loss(
        reference.reward_head(th.cat([z, one_hot], 1)).reshape(-1), batch.rewards.reshape(-1)
    )
    prediction = reference.transition_head(th.cat([z, one_hot], 1))
    cosine = (prediction * z_target).sum(1) / (prediction.norm(dim=1) * z_target.norm(dim=1))
    latent = (2 - 2 * cosine).mean()
    inverse = th.nn.functional.cross_entropy(reference.inverse_head(th.cat([z, z_next], 1)), actions)
    total = td + reward_coef * reward + latent_coef * latent + inverse_coef * inverse
    names, params = zip(*[(n, p) for n, p in reference.named_parameters() if p.requires_grad], strict=True)
    expected = dict(zip(names, th.autograd.grad(total, params, allow_unused=True), strict=True))

    grads = {}
    step = policy.optimizer.step

    def record_then_step(*args, **kwargs):
        grads.update((n, p.grad.clone()) for n, p in policy.named_parameters() if p.grad is not None)
        return step(*args, **kwargs)

    monkeypatch.setattr(policy.optimizer, "step", record_then_step)
    np.random.seed(4)  # noqa: NPY002
    th.manual_seed(7)
    model.train(gradient_steps=1, batch_size=32)
    logged = model.logger.name_to_value
    for key, value in (
        ("loss", td),
        ("reward_loss", reward),
        ("latent_loss", latent),
        ("inverse_loss", inverse),
    ):
        assert logged[f"train/{key}"] == pytest.approx(value.item(), rel=1e-5), key
    assert grads.keys() == {name for name, grad in expected.items() if grad is not None}
    for name, grad in grads.items():
        th.testing.assert_close(grad, expected[name], rtol=1e-4, atol=1e-7, msg=name)


def test_random_shift_crops_a_replicate_padded_image():
    th.manual_seed(0)
    images = th.randint(0, 256, (64, 3, 10, 12), dtype=th.uint8)
    shifted = random_shift(images, pad=2)
    assert shifted.shape == images.shape and shifted.dtype == th.float32
    padded = th.nn.functional.pad(images.float(), (2, 2, 2, 2), mode="replicate")
    offsets = []
    for i in range(len(images)):
        matches = [
            (dy, dx)
            for dy, dx in itertools.product(range(5), range(5))
            if th.equal(padded[i, :, dy : dy + 10, dx : dx + 12], shifted[i])
        ]
        assert len(matches) == 1, f"image {i} is not a crop of its padded version"
        offsets.append(matches[0])
    # Independent shifts per image, over the whole range [-pad, pad] on both axes (64 draws of 5
    # values: missing one would have probability 64 * 0.8**64 ~ 4e-5 without a bug).
    rows, cols = zip(*offsets, strict=True)
    assert set(rows) == set(cols) == set(range(5))
    th.testing.assert_close(random_shift(images, pad=0), images.float())


def test_gaussian_noise_has_the_requested_scale():
    th.manual_seed(0)
    obs = th.ones(20_000, 4)
    noisy = gaussian_noise(obs, std=0.3)
    assert abs(float((noisy - obs).std()) - 0.3) < 0.01 and abs(float((noisy - obs).mean())) < 0.01


def test_augmentation_choice_follows_the_observation_space():
    image = spaces.Box(0, 255, (3, 40, 40), np.uint8)
    vector = spaces.Box(-1, 1, (4,), np.float32)
    assert resolve_augmentation("auto", image) == "shift"
    assert resolve_augmentation("auto", vector) == "noise"
    for index_space in (spaces.Discrete(25), spaces.MultiDiscrete([5, 5]), spaces.MultiBinary(3)):
        assert resolve_augmentation("auto", index_space) is None
        for choice in ("shift", "noise"):
            with pytest.raises(ValueError, match="augmentation"):
                resolve_augmentation(choice, index_space)
    with pytest.raises(ValueError, match="augmentation='shift'"):
        resolve_augmentation("shift", vector)
    with pytest.raises(ValueError, match="augmentation must be one of"):
        resolve_augmentation("crop", vector)
    # Index observations are never augmented by the algorithm either.
    model = AuxDQN("MlpPolicy", gym.make("AdvRL/GridWorld-v0", obs_mode="index"), seed=0)
    obs = th.arange(8).reshape(8, 1)
    assert model.augment(obs) is obs


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(reward_coef=-0.1), "reward_coef"),
        (dict(latent_coef=float("nan")), "latent_coef"),
        (dict(inverse_coef="0.1"), "inverse_coef"),
        (dict(target_encoder_tau=0.0), "target_encoder_tau"),
        (dict(shift_pad=-1), "shift_pad"),
        (dict(noise_std=-1.0), "noise_std"),
        (dict(double_q="yes"), "double_q"),
        (dict(augmentation="shift"), "augmentation='shift'"),
        (dict(policy_kwargs=dict(net_arch=[])), "net_arch"),
        (dict(policy_kwargs=dict(aux_net_arch=[0])), "aux_net_arch"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AuxDQN("MlpPolicy", gym.make("CartPole-v1"), **kwargs)


def test_save_load_restores_heads_target_encoder_and_settings(tmp_path):
    model = AuxDQN(
        "CnnPolicy",
        make_env("image"),
        learning_starts=50,
        buffer_size=500,
        seed=1,
        double_q=True,
        shift_pad=2,
    )
    model.learn(150)
    model.save(tmp_path / "aux")
    loaded = AuxDQN.load(tmp_path / "aux")
    state, loaded_state = model.policy.state_dict(), loaded.policy.state_dict()
    assert state.keys() == loaded_state.keys()
    assert any(key.startswith("target_torso") or key.startswith("target_features_extractor") for key in state)
    for key in state:
        assert th.equal(state[key], loaded_state[key]), key
    assert (loaded.double_q, loaded.shift_pad, loaded._augmentation) == (True, 2, "shift")
    obs = np.stack([model.observation_space.sample() for _ in range(16)])
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def test_aux_dqn_learns_the_grid_world():
    env = gym.make("AdvRL/GridWorld-v0")  # coords observations, Gaussian-noise augmentation
    model = AuxDQN(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        learning_starts=200,
        batch_size=32,
        train_freq=1,
        gamma=0.9,
        target_update_interval=100,
        exploration_fraction=0.5,
        exploration_final_eps=0.1,
        policy_kwargs=dict(net_arch=[64]),
        seed=0,
    )
    model.learn(2500)
    mean_return, _ = evaluate_policy(model, gym.make("AdvRL/GridWorld-v0"), n_eval_episodes=1, warn=False)
    assert mean_return >= 9.0  # optimal 9.3 (8 moves); a greedy policy that never reaches the goal scores -10
