"""Prioritized replay algorithms: exact behaviour of the updates and the defaults, value by value."""

from __future__ import annotations

import pytest
import torch as th

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext import PERDQN, PERSAC, PERTD3, PrioritizedReplayBuffer
from tests.test_per import BATCH, assert_priorities, batch_train_will_draw, critic_values, per_model

th.set_num_threads(1)


def test_pertd3_target_smoothing_noise_has_the_configured_scale_and_symmetric_clip() -> None:
    """Target policy smoothing (Fujimoto et al., 2018): eps ~ clip(N(0, sigma), -c, c) with the
    configured sigma = 0.6 and c = 0.2; the noise clip acts on both sides while the smoothed action
    stays inside [-1, 1], so that no other clip hides it."""
    model = per_model(
        PERTD3,
        "AdvRL/Pendulum-v0",
        target_policy_noise=0.6,
        target_noise_clip=0.2,
        policy_kwargs=dict(net_arch=[16]),
    )
    batch = batch_train_will_draw(model)
    with th.no_grad():
        th.manual_seed(5)  # the first draw of train()
        raw = batch.actions.clone().normal_(0.0, 1.0) * 0.6
        noise = raw.clamp(-0.2, 0.2)
        assert (noise == 0.2).any() and (noise == -0.2).any() and (noise.abs() < 0.2).any()
        smoothed = model.actor_target(batch.next_observations) + noise
        assert (smoothed.abs() < 1.0).all()
        bootstrap = (
            critic_values(model.critic_target, batch.next_observations, smoothed)
            .min(dim=1, keepdim=True)
            .values
        )
        target = batch.rewards + 0.9 * (1.0 - batch.dones) * bootstrap
        delta = target - critic_values(model.critic, batch.observations, batch.actions)
    th.manual_seed(5)
    model.train(gradient_steps=1, batch_size=BATCH)
    loss = sum((batch.weights.reshape(-1) * delta[:, k] ** 2).mean() for k in range(2))
    assert model.logger.name_to_value["train/critic_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert_priorities(model, batch, delta.abs().mean(dim=1))


def test_arguments_are_checked_whether_positional_or_keyword() -> None:
    """The inherited SB3 arguments are checked as the algorithm's own signature binds them: the third
    positional argument is DQN's learning_rate, and a registered env id is accepted as SB3 accepts it."""
    model = PERDQN("MlpPolicy", "AdvRL/GridWorld-v0", 5e-4, buffer_size=100)
    assert model.learning_rate == 5e-4 and isinstance(model.replay_buffer, PrioritizedReplayBuffer)
    with pytest.raises(ValueError, match=r"^learning_rate must be a finite number > 0"):
        PERDQN("MlpPolicy", "AdvRL/GridWorld-v0", -1.0)
    with pytest.raises(ValueError, match=r"^gamma must"):
        PERDQN("MlpPolicy", "AdvRL/GridWorld-v0", gamma=2.0)
    with pytest.raises(ValueError, match=r"^gamma must"):
        PERSAC("MlpPolicy", "AdvRL/Pendulum-v0", 3e-4, 100, 10, 32, 0.005, 2.0)
