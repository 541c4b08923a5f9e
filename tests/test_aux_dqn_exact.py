"""AuxDQN: exact behaviour of the policy, the augmentations and the update, value by value."""

from __future__ import annotations

import inspect
import re

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from stable_baselines3.dqn.policies import DQNPolicy
from torch import nn

import gym_advrl  # noqa: F401
from sb3_ext.aux_dqn import AuxDQN, AuxDQNPolicy, PERAuxDQN
from sb3_ext.aux_dqn.augmentation import random_shift, resolve_augmentation
from sb3_ext.common.buffers import PrioritizedReplayBuffer

th.set_num_threads(1)


@pytest.mark.parametrize(
    ("policy", "env_kwargs", "extractor", "net_arch"),
    [
        ("MlpPolicy", {}, FlattenExtractor, [64, 64]),
        ("CnnPolicy", {"obs_mode": "rgb"}, NatureCNN, []),
    ],
)
def test_default_encoder_follows_the_policy_class(policy, env_kwargs, extractor, net_arch):
    env = gym.make("AdvRL/GridWorld-v0", **env_kwargs)
    model = AuxDQN(policy, env, learning_starts=10, buffer_size=100, seed=0)
    assert type(model.policy.q_net.features_extractor) is extractor
    assert model.policy.features_extractor_class is extractor
    assert model.policy.net_arch == net_arch
    assert model.policy.aux_net_arch == [128]
    assert model.policy.reward_head[0].in_features == model.policy.latent_dim + 4


def test_explicit_encoder_overrides_the_class_default():
    env = gym.make("AdvRL/GridWorld-v0")
    model = AuxDQN(
        "MlpPolicy",
        env,
        policy_kwargs={"features_extractor_class": FlattenExtractor, "net_arch": [8]},
        learning_starts=10,
        buffer_size=100,
        seed=0,
    )
    assert type(model.policy.q_net.features_extractor) is FlattenExtractor
    assert model.policy.latent_dim == 8
    assert th.equal(th.tensor(model.policy.target_torso[0].weight.shape), th.tensor([8, 2]))


def grid_model(cls=AuxDQN, **kwargs):
    """A model whose replay buffer holds 200 random GridWorld transitions (no gradient step yet)."""
    kwargs = {"learning_starts": 1000, "buffer_size": 500, "seed": 0, **kwargs}
    kwargs.setdefault("policy_kwargs", dict(net_arch=[16], aux_net_arch=[8]))
    model = cls("MlpPolicy", gym.make("AdvRL/GridWorld-v0"), **kwargs)
    model.learn(200)
    model.set_logger(configure(None, []))
    return model


def test_defaults_are_the_documented_settings():
    model = AuxDQN("MlpPolicy", gym.make("AdvRL/GridWorld-v0"))
    assert (model.learning_rate, model.buffer_size, model.learning_starts, model.batch_size) == (
        1e-4,
        1_000_000,
        100,
        32,
    )
    assert (model.tau, model.gamma, model.gradient_steps, model.n_steps) == (1.0, 0.99, 1, 1)
    assert model.train_freq == TrainFreq(4, TrainFrequencyUnit.STEP)
    assert model.optimize_memory_usage is False and model.target_update_interval == 10000
    assert (model.exploration_fraction, model.exploration_initial_eps, model.exploration_final_eps) == (
        0.1,
        1.0,
        0.05,
    )
    assert model.max_grad_norm == 10
    assert (model.reward_coef, model.latent_coef, model.inverse_coef) == (0.1, 0.1, 0.1)
    assert (model.target_encoder_tau, model.double_q, model.augmentation) == (0.01, False, "auto")
    assert (model.shift_pad, model.noise_std, model._augmentation) == (4, 0.01, "noise")
    assert (model._stats_window_size, model.verbose, model.device) == (100, 0, th.device("cpu"))
    assert isinstance(model.policy, AuxDQNPolicy) and model.policy.normalize_images is True
    assert model.aux_coefs == {"reward": 0.1, "latent": 0.1, "inverse": 0.1}
    # The training entry point's own default batch size is DQN's.
    assert inspect.signature(AuxDQN.train).parameters["batch_size"].default == 100


def test_every_argument_reaches_the_model(tmp_path):
    class TaggedBuffer(ReplayBuffer):
        pass

    model = AuxDQN(
        "MlpPolicy",
        gym.make("AdvRL/GridWorld-v0"),
        learning_rate=5e-4,
        buffer_size=300,
        learning_starts=7,
        batch_size=9,
        tau=0.5,
        gamma=0.8,
        train_freq=(2, "episode"),
        gradient_steps=3,
        replay_buffer_class=TaggedBuffer,
        replay_buffer_kwargs=dict(handle_timeout_termination=False),
        target_update_interval=11,
        exploration_fraction=0.3,
        exploration_initial_eps=0.9,
        exploration_final_eps=0.2,
        max_grad_norm=2.5,
        reward_coef=0.2,
        latent_coef=0.0,
        inverse_coef=0.4,
        target_encoder_tau=0.5,
        double_q=True,
        augmentation=None,
        shift_pad=2,
        noise_std=0.3,
        stats_window_size=5,
        tensorboard_log=str(tmp_path),
        policy_kwargs=dict(net_arch=[12], aux_net_arch=[6], activation_fn=nn.Tanh),
        verbose=1,
        seed=4,
        device="cpu",
    )
    assert (model.learning_rate, model.buffer_size, model.learning_starts, model.batch_size) == (
        5e-4,
        300,
        7,
        9,
    )
    assert (model.tau, model.gamma, model.gradient_steps) == (0.5, 0.8, 3)
    assert model.train_freq == TrainFreq(2, TrainFrequencyUnit.EPISODE)
    assert type(model.replay_buffer) is TaggedBuffer and not model.replay_buffer.handle_timeout_termination
    assert model.target_update_interval == 11
    assert (model.exploration_fraction, model.exploration_initial_eps, model.exploration_final_eps) == (
        0.3,
        0.9,
        0.2,
    )
    assert model.max_grad_norm == 2.5
    assert (model.reward_coef, model.latent_coef, model.inverse_coef) == (0.2, 0.0, 0.4)
    assert model.aux_coefs == {"reward": 0.2, "inverse": 0.4}
    assert (model.target_encoder_tau, model.double_q, model.augmentation, model._augmentation) == (
        0.5,
        True,
        None,
        None,
    )
    assert (model.shift_pad, model.noise_std) == (2, 0.3)
    assert (model._stats_window_size, model.tensorboard_log, model.verbose, model.seed) == (
        5,
        str(tmp_path),
        1,
        4,
    )
    policy = model.policy
    assert policy.net_arch == [12] and policy.aux_net_arch == [6] and policy.activation_fn is nn.Tanh
    assert any(isinstance(layer, nn.Tanh) for layer in policy.q_net.q_net)
    for head in (policy.reward_head, policy.transition_head, policy.inverse_head):
        assert [type(layer) for layer in head] == [nn.Linear, nn.Tanh, nn.Linear]
    assert [layer.out_features for layer in policy.reward_head if isinstance(layer, nn.Linear)] == [6, 1]
    assert [layer.out_features for layer in policy.transition_head if isinstance(layer, nn.Linear)] == [6, 12]
    assert [layer.out_features for layer in policy.inverse_head if isinstance(layer, nn.Linear)] == [6, 4]
    assert policy.reward_head[0].in_features == 12 + 4 and policy.transition_head[0].in_features == 12 + 4
    assert policy.inverse_head[0].in_features == 2 * 12
    # Integer-like and boundary values are accepted.
    assert AuxDQN("MlpPolicy", "CartPole-v1", shift_pad=np.int64(0), target_encoder_tau=1).shift_pad == 0


def test_policy_arguments_reach_the_networks_and_the_optimizer():
    env = gym.make("AdvRL/GridWorld-v0", obs_mode="rgb")
    model = AuxDQN(
        "CnnPolicy",
        env,
        learning_rate=lambda progress: 2e-3 * progress,
        buffer_size=100,
        policy_kwargs=dict(
            features_extractor_kwargs=dict(features_dim=32),
            normalize_images=False,
            optimizer_class=th.optim.SGD,
            optimizer_kwargs=dict(momentum=0.5),
            aux_net_arch=[1],
        ),
    )
    policy = model.policy
    assert policy.q_net.features_extractor.features_dim == 32 and policy.latent_dim == 32
    assert policy.normalize_images is False
    assert isinstance(policy.optimizer, th.optim.SGD)
    # The learning rate is the schedule's value at the start (progress remaining 1).
    assert [(g["lr"], g["momentum"]) for g in policy.optimizer.param_groups] == [(2e-3, 0.5)]
    optimized = {id(p) for g in policy.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in [*policy.q_net.parameters(), *policy.aux_head_parameters()]}
    assert policy._get_constructor_parameters()["aux_net_arch"] == [1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(reward_coef=-0.1), r"^reward_coef must be a finite float >= 0, got -0.1$"),
        (dict(latent_coef=-1), r"^latent_coef must be a finite float >= 0, got -1$"),
        (dict(inverse_coef=-2.0), r"^inverse_coef must be a finite float >= 0, got -2.0$"),
        (dict(noise_std=-1.0), r"^noise_std must be a finite float >= 0, got -1.0$"),
        (dict(target_encoder_tau=0.0), r"^target_encoder_tau must be a float in \(0, 1\], got 0.0$"),
        (dict(target_encoder_tau=1.5), r"^target_encoder_tau must be a float in \(0, 1\], got 1.5$"),
        (dict(target_encoder_tau=True), r"^target_encoder_tau must be a float in \(0, 1\], got True$"),
        (dict(target_encoder_tau="0.5"), r"^target_encoder_tau must be a float in \(0, 1\], got '0.5'$"),
        (dict(shift_pad=-1), r"^shift_pad must be an int >= 0, got -1$"),
        (dict(shift_pad=2.0), r"^shift_pad must be an int >= 0, got 2.0$"),
        (dict(shift_pad=True), r"^shift_pad must be an int >= 0, got True$"),
        (dict(double_q="yes"), r"^double_q must be True or False, got 'yes'$"),
        (
            dict(policy_kwargs=dict(aux_net_arch=[0])),
            r"^aux_net_arch must be a list of positive ints, got \[0\]$",
        ),
        (
            dict(policy_kwargs=dict(aux_net_arch=[2.5])),
            r"^aux_net_arch must be a list of positive ints, got \[2.5\]$",
        ),
        (
            dict(policy_kwargs=dict(net_arch=[])),
            r"^the auxiliary tasks need a shared encoder with parameters, but the features extractor has none "
            r"and policy_kwargs\['net_arch'\] is empty: give net_arch at least one hidden layer$",
        ),
        (
            dict(replay_buffer_class=PrioritizedReplayBuffer),
            r"^replay_buffer_class=PrioritizedReplayBuffer needs importance weights and priority updates: "
            r"use PERAuxDQN instead of AuxDQN$",
        ),
        (dict(gamma=2.0), r"^gamma must"),
        (dict(batch_size=0), r"^batch_size must"),
        (dict(buffer_size=10, batch_size=32), r"^buffer_size must"),
        (dict(learning_starts=-1), r"^learning_starts must"),
        (dict(learning_rate=-1.0), r"^learning_rate must"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AuxDQN("MlpPolicy", gym.make("CartPole-v1"), **kwargs)


def test_a_policy_that_is_not_an_aux_policy_is_refused():
    with pytest.raises(
        ValueError, match=r"^AuxDQN needs an AuxDQNPolicy \(MlpPolicy or CnnPolicy\), got DQNPolicy$"
    ):
        AuxDQN(DQNPolicy, gym.make("CartPole-v1"))
    # Without auxiliary tasks an encoder without parameters is allowed (a linear Q-function).
    model = AuxDQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        reward_coef=0,
        latent_coef=0,
        inverse_coef=0,
        policy_kwargs=dict(net_arch=[]),
    )
    assert model.aux_coefs == {} and model.policy.encoder_parameters() == []
    PERAuxDQN("MlpPolicy", gym.make("CartPole-v1"))  # prioritized replay is PERAuxDQN's default


def test_targets_stay_in_evaluation_mode_and_never_get_gradients():
    model = grid_model()
    policy = model.policy
    assert all(not p.requires_grad for p in policy.target_encoder_parameters())
    assert policy.target_encoder_parameters() and all(p.requires_grad for p in policy.encoder_parameters())
    policy.set_training_mode(False)
    model.train(gradient_steps=1, batch_size=8)  # train() switches to training mode
    heads = (policy.reward_head, policy.transition_head, policy.inverse_head)
    assert policy.training and policy.q_net.training and all(head.training for head in heads)
    assert not policy.q_net_target.training
    assert not policy.target_torso.training and not policy.target_features_extractor.training
    policy.set_training_mode(False)
    assert not policy.training and not any(head.training for head in heads)


def test_per_sample_auxiliary_losses():
    model = grid_model()
    policy = model.policy
    np.random.seed(0)  # noqa: NPY002
    batch = model.replay_buffer.sample(6)
    with th.no_grad():
        latent, next_latent = policy.latent(batch.observations), policy.latent(batch.next_observations)
        one_hot = th.nn.functional.one_hot(batch.actions.long().reshape(-1), 4).float()
        error = policy.reward_head(th.cat([latent, one_hot], 1)).reshape(-1) - batch.rewards.reshape(-1)
        huber = th.where(error.abs() < 1, 0.5 * error**2, error.abs() - 0.5)
        reward = policy.reward_loss(latent, batch.actions, batch.rewards)
        assert reward.shape == (6,)
        th.testing.assert_close(reward, huber)
        logits = policy.inverse_head(th.cat([latent, next_latent], 1))
        expected = th.logsumexp(logits, 1) - logits[th.arange(6), batch.actions.long().reshape(-1)]
        inverse = policy.inverse_dynamics_loss(latent, next_latent, batch.actions)
        assert inverse.shape == (6,)
        th.testing.assert_close(inverse, expected)
        prediction = policy.transition_head(th.cat([latent, one_hot], 1))
        target = policy.target_torso(batch.next_observations.float())
        cosine = (prediction * target).sum(1) / (prediction.norm(dim=1) * target.norm(dim=1))
        latent_loss = policy.latent_prediction_loss(latent, batch.actions, batch.next_observations)
        assert latent_loss.shape == (6,)
        th.testing.assert_close(latent_loss, 2 - 2 * cosine)


def test_gradients_are_clipped_to_max_grad_norm(monkeypatch):
    model = grid_model(max_grad_norm=1e-3)
    policy = model.policy
    norms = []
    step = policy.optimizer.step

    def record_then_step(*args, **kwargs):
        grads = [p.grad.reshape(-1) for p in policy.parameters() if p.grad is not None]
        norms.append(float(th.cat(grads).norm()))
        return step(*args, **kwargs)

    monkeypatch.setattr(policy.optimizer, "step", record_then_step)
    model.train(gradient_steps=2, batch_size=16)
    assert norms == [pytest.approx(1e-3, rel=1e-4)] * 2


def test_update_count_and_loss_logs_add_up_over_train_calls():
    model = grid_model(latent_coef=0.0)
    model.train(gradient_steps=3, batch_size=8)
    model.train(gradient_steps=2, batch_size=8)
    logged = model.logger.name_to_value
    assert model._n_updates == 5 and logged["train/n_updates"] == 5
    assert model.logger.name_to_excluded["train/n_updates"] == ("tensorboard",)
    assert {key for key in logged if key.startswith("train/")} == {
        "train/n_updates",
        "train/learning_rate",
        "train/loss",
        "train/reward_loss",
        "train/inverse_loss",
    }


def test_latent_task_off_leaves_the_target_encoder_alone():
    model = grid_model(latent_coef=0.0, target_encoder_tau=0.5)
    before = [p.clone() for p in model.policy.target_encoder_parameters()]
    model.train(gradient_steps=2, batch_size=8)
    assert all(th.equal(b, a) for b, a in zip(before, model.policy.target_encoder_parameters(), strict=True))


def test_replayed_batches_are_normalized_by_a_vec_normalize_env():
    env = VecNormalize(DummyVecEnv([lambda: gym.make("AdvRL/GridWorld-v0")]), gamma=0.9)
    for cls in (AuxDQN, PERAuxDQN):
        model = cls("MlpPolicy", env, learning_starts=1000, buffer_size=300, seed=0)
        model.learn(100)
        np.random.seed(2)  # noqa: NPY002
        batch = model._sample_replay(8)
        np.random.seed(2)  # noqa: NPY002
        raw = model.replay_buffer.sample(8)
        assert batch.observations.shape == (8, 2)
        np.testing.assert_allclose(
            batch.observations.numpy(), env.normalize_obs(raw.observations.numpy()), rtol=1e-5
        )
        assert not np.allclose(batch.observations.numpy(), raw.observations.numpy())


def test_random_shift_by_one_pixel_and_on_the_images_device():
    th.manual_seed(1)
    images = th.randint(0, 256, (64, 2, 5, 6), dtype=th.uint8)
    shifted = random_shift(images, pad=1)
    padded = th.nn.functional.pad(images.float(), (1, 1, 1, 1), mode="replicate")
    offsets = set()
    for i in range(64):
        found = [
            (dy, dx)
            for dy in range(3)
            for dx in range(3)
            if th.equal(padded[i, :, dy : dy + 5, dx : dx + 6], shifted[i])
        ]
        assert found
        offsets.update(found)
    assert {dy for dy, _ in offsets} == {0, 1, 2} and {dx for _, dx in offsets} == {0, 1, 2}
    # Every index is built on the images' device (the meta device stands in for an accelerator).
    on_meta = random_shift(th.zeros(3, 2, 5, 6, device="meta"), pad=2)
    assert on_meta.device.type == "meta" and on_meta.shape == (3, 2, 5, 6)


def test_augment_applies_the_configured_augmentation():
    vector = AuxDQN(
        "MlpPolicy", gym.make("CartPole-v1"), augmentation="noise", noise_std=0.5, buffer_size=100
    )
    obs = th.zeros(4000, 4)
    th.manual_seed(0)
    noisy = vector.augment(obs)
    assert abs(float(noisy.std()) - 0.5) < 0.02
    image = AuxDQN("CnnPolicy", gym.make("AdvRL/GridWorld-v0", obs_mode="rgb"), shift_pad=3, buffer_size=100)
    assert image._augmentation == "shift"
    frames = th.arange(2 * 3 * 40 * 40, dtype=th.float32).reshape(2, 3, 40, 40)
    th.manual_seed(5)
    augmented = image.augment(frames)
    th.manual_seed(5)
    th.testing.assert_close(augmented, random_shift(frames, 3))


def test_memory_optimization_n_steps_and_device_reach_dqn(monkeypatch):
    """Passed on to DQN: the device even where SB3's default ("auto") would choose a GPU."""
    monkeypatch.setattr(th.cuda, "is_available", lambda: True)
    model = AuxDQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        optimize_memory_usage=True,
        n_steps=3,
        replay_buffer_kwargs=dict(handle_timeout_termination=False),
        device="cpu",
        _init_setup_model=False,
    )
    assert (model.optimize_memory_usage, model.n_steps, model.device) == (True, 3, th.device("cpu"))


def test_image_and_index_augmentation_errors_are_exact():
    image = spaces.Box(0, 255, (3, 8, 8), np.uint8)
    assert resolve_augmentation("shift", image) == "shift"
    assert resolve_augmentation("shift", spaces.Box(-1.0, 1.0, (2, 5, 5), np.float32)) == "shift"
    vector = spaces.Box(-1.0, 1.0, (4,), np.float32)
    message = (
        f"augmentation='shift' needs image observations (a 3-D Box), got {vector}; "
        "use 'noise' for vector observations or None"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        resolve_augmentation("shift", vector)
    index = spaces.Discrete(5)
    message = (
        f"augmentation='noise' needs Box observations, got {index}; "
        "Discrete/MultiDiscrete/MultiBinary observations are never augmented: use None or 'auto'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        resolve_augmentation("noise", index)


class Constant(nn.Module):
    def __init__(self, value: th.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, *args) -> th.Tensor:
        return self.value


def test_latent_prediction_loss_bounds_each_norm_below_by_1e_6(monkeypatch):
    """``2 - 2 x.y / (max(|x|, 1e-6) max(|y|, 1e-6))``: latents shorter than 1e-6 are not scaled up to
    unit length (their cosine shrinks), longer ones give the plain cosine."""
    policy = AuxDQN("MlpPolicy", gym.make("AdvRL/GridWorld-v0"), buffer_size=100).policy
    latents = th.tensor([[1e-7, 0.0], [3.0, 4.0], [2e-6, 0.0]])
    targets = th.tensor([[1e-7, 0.0], [-4.0, 3.0], [5e-7, 5e-7]])
    monkeypatch.setattr(policy, "transition_head", Constant(latents))
    monkeypatch.setattr(policy, "target_latent", lambda next_obs: targets)
    loss = policy.latent_prediction_loss(th.zeros(3, policy.latent_dim), th.zeros(3, 1), th.zeros(3, 2))
    norms = (latents.norm(dim=1).clamp_min(1e-6), targets.norm(dim=1).clamp_min(1e-6))
    expected = 2.0 - 2.0 * (latents * targets).sum(1) / (norms[0] * norms[1])
    th.testing.assert_close(loss, expected)
    assert loss[0].item() == pytest.approx(1.98) and loss[1].item() == pytest.approx(2.0)


def test_train_without_a_batch_size_samples_dqns_default_of_100():
    model = grid_model()
    sizes = []
    sample = model.replay_buffer.sample
    model.replay_buffer.sample = lambda batch_size, env=None: (
        sizes.append(batch_size) or sample(batch_size, env)
    )
    model.train(gradient_steps=2)
    assert sizes == [100, 100]
