"""SAC and TD3 with prioritized experience replay: the critics learn from weighted TD errors."""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.utils import polyak_update

from sb3_ext.common.td import bootstrapped_target
from sb3_ext.per.mixin import PrioritizedReplayMixin, weighted_mean


def weighted_critic_loss(
    current_q_values: tuple[th.Tensor, ...], target_q_values: th.Tensor, weights: th.Tensor
) -> tuple[th.Tensor, th.Tensor]:
    """Sum over critics of the importance-weighted mean squared TD error, and the priorities' TD errors.

    :param current_q_values: One ``(batch_size, 1)`` tensor per critic.
    :param target_q_values: ``(batch_size, 1)`` TD targets.
    :param weights: ``(batch_size, 1)`` importance-sampling weights.
    :return: The loss, and the TD error of each transition averaged over the critics.
    """
    td_errors = th.cat([target_q_values - current_q for current_q in current_q_values], dim=1)
    loss = sum(weighted_mean(td_errors[:, k] ** 2, weights) for k in range(td_errors.shape[1]))
    return loss, td_errors.detach().abs().mean(dim=1)


class PERSAC(PrioritizedReplayMixin, SAC):
    """Soft Actor-Critic (Haarnoja et al., 2018) with proportional prioritized replay.

    Takes every argument of SB3's ``SAC``; ``replay_buffer_class`` defaults to
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (configure it through
    ``replay_buffer_kwargs``). The critics' squared TD errors are importance-weighted; the actor
    and entropy-coefficient losses are the plain batch means, as the weights correct the bias of
    the TD (critic) update only. A transition's new priority is its absolute TD error averaged
    over the critics. ``n_steps`` must be 1.
    """

    _accepted_action_spaces = (spaces.Box,)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)

        ent_coef_losses, ent_coefs, actor_losses, critic_losses = [], [], [], []
        for gradient_step in range(gradient_steps):
            replay_data = self._sample_prioritized(batch_size)
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
            log_prob = log_prob.reshape(-1, 1)

            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                # Detached so that only the entropy-coefficient loss moves log_ent_coef.
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                ent_coef_losses.append(ent_coef_loss.item())
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())

            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)
                next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q_values = next_q_values.min(
                    dim=1, keepdim=True
                ).values - ent_coef * next_log_prob.reshape(-1, 1)
                target_q_values = bootstrapped_target(
                    replay_data.rewards, replay_data.dones, self.gamma, next_q_values
                )

            current_q_values = self.critic(replay_data.observations, replay_data.actions)
            critic_loss, td_errors = weighted_critic_loss(
                current_q_values, target_q_values, replay_data.weights
            )
            critic_loss = 0.5 * critic_loss
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            self._update_priorities(replay_data, td_errors)

            min_qf_pi = (
                th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
                .min(dim=1, keepdim=True)
                .values
            )
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        self._record_prioritized_replay()


class PERTD3(PrioritizedReplayMixin, TD3):
    """Twin Delayed DDPG (Fujimoto et al., 2018) with proportional prioritized replay.

    Takes every argument of SB3's ``TD3``; ``replay_buffer_class`` defaults to
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (configure it through
    ``replay_buffer_kwargs``). The critics' squared TD errors are importance-weighted, the
    delayed actor update is the plain batch mean, and a transition's new priority is its
    absolute TD error averaged over the critics. ``n_steps`` must be 1.
    """

    _accepted_action_spaces = (spaces.Box,)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])

        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            replay_data = self._sample_prioritized(batch_size)
            with th.no_grad():
                # Target policy smoothing: clipped Gaussian noise on the target action.
                noise = replay_data.actions.clone().normal_(0, self.target_policy_noise)
                noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
                next_actions = (self.actor_target(replay_data.next_observations) + noise).clamp(-1, 1)
                next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q_values = next_q_values.min(dim=1, keepdim=True).values
                target_q_values = bootstrapped_target(
                    replay_data.rewards, replay_data.dones, self.gamma, next_q_values
                )

            current_q_values = self.critic(replay_data.observations, replay_data.actions)
            critic_loss, td_errors = weighted_critic_loss(
                current_q_values, target_q_values, replay_data.weights
            )
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            self._update_priorities(replay_data, td_errors)

            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self.critic.q1_forward(
                    replay_data.observations, self.actor(replay_data.observations)
                ).mean()
                actor_losses.append(actor_loss.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self._record_prioritized_replay()
