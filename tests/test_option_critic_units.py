"""OptionCritic's pieces one at a time, with exact expected values: the rollout buffer, the
network heads and the policy's call-and-return execution, the option statistics and logs, the
argument checks and the defaults of the public API."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN

from sb3_ext.option_critic import CnnPolicy, OptionCriticPolicy


def image_spaces() -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    return gym.spaces.Box(0, 255, (3, 36, 36), dtype=np.uint8), gym.spaces.Discrete(3)


@pytest.mark.parametrize("by_position", [False, True])
def test_cnn_policy_defaults_to_nature_cnn_and_accepts_every_argument_by_position(by_position: bool) -> None:
    obs_space, act_space = image_spaces()
    if by_position:
        policy = CnnPolicy(obs_space, act_space, lambda _: 1e-3, 2, None, th.nn.ReLU, None)
    else:
        policy = CnnPolicy(obs_space, act_space, lambda _: 1e-3, n_options=2)
    assert isinstance(policy.net.features_extractor, NatureCNN)
    assert policy.net_arch == [] and policy.n_options == 2
    # The features extractor class given by position (the eighth argument) or by name wins.
    flat = CnnPolicy(obs_space, act_space, lambda _: 1e-3, 2, [8], th.nn.ReLU, None, FlattenExtractor)
    named = CnnPolicy(obs_space, act_space, lambda _: 1e-3, features_extractor_class=FlattenExtractor)
    for policy in (flat, named):
        assert type(policy.net.features_extractor) is FlattenExtractor
    assert flat.net_arch == [8] and named.net_arch == [64, 64]
    assert issubclass(CnnPolicy, OptionCriticPolicy)
