"""AuxDQN: exact behaviour of the policy, the augmentations and the update, value by value."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch as th
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN

import gym_advrl  # noqa: F401
from sb3_ext.aux_dqn import AuxDQN


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
