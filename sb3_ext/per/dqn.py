"""DQN and QR-DQN with prioritized experience replay."""

from __future__ import annotations

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import DQN

from sb3_ext.common.buffers import PrioritizedReplayBufferSamples
from sb3_ext.common.td import bootstrapped_target, q_learning_target
from sb3_ext.per.mixin import PrioritizedReplayMixin, weighted_mean


class _PrioritizedValueLearning(PrioritizedReplayMixin):
    """The ``train()`` of a prioritized value learner with one network and one optimizer (DQN,
    QR-DQN): each gradient step samples a prioritized batch, descends :meth:`prioritized_loss` and
    writes the returned TD errors back as priorities."""

    _accepted_action_spaces = (spaces.Discrete,)

    def prioritized_loss(self, replay_data: PrioritizedReplayBufferSamples) -> tuple[th.Tensor, th.Tensor]:
        """The importance-weighted loss of a batch and the TD error of each of its transitions."""
        raise NotImplementedError

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        losses = []
        for _ in range(gradient_steps):
            replay_data = self._sample_prioritized(batch_size)
            loss, td_errors = self.prioritized_loss(replay_data)
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            self._update_priorities(replay_data, td_errors)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        self._record_prioritized_replay()


class PERDQN(_PrioritizedValueLearning, DQN):
    """Deep Q-Network (Mnih et al., 2015) with proportional prioritized replay (Schaul et al., 2016).

    Takes every argument of SB3's ``DQN``; ``replay_buffer_class`` defaults to
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer`, configured through
    ``replay_buffer_kwargs=dict(alpha=0.6, beta=0.4, final_beta=1.0, eps=1e-6)``. Each
    transition's Huber loss is multiplied by its importance-sampling weight and its new priority
    is ``|r + gamma (1 - done) max_a' Q_target(s', a') - Q(s, a)|``. ``n_steps`` must be 1.
    """

    def prioritized_loss(self, replay_data: PrioritizedReplayBufferSamples) -> tuple[th.Tensor, th.Tensor]:
        target_q_values = q_learning_target(replay_data, self.q_net_target, self.gamma)
        current_q_values = th.gather(
            self.q_net(replay_data.observations), dim=1, index=replay_data.actions.long()
        )
        huber = F.smooth_l1_loss(current_q_values, target_q_values, reduction="none")
        return weighted_mean(huber, replay_data.weights), target_q_values - current_q_values


def quantile_huber_per_sample(current_quantiles: th.Tensor, target_quantiles: th.Tensor) -> th.Tensor:
    """Quantile Huber loss of QR-DQN (Dabney et al., 2018, eq. 10) for each transition.

    Summed over the current quantiles and averaged over the target quantiles, as in SB3-contrib's
    ``quantile_huber_loss(..., sum_over_quantiles=True)`` before its batch mean.

    :param current_quantiles: Shape ``(batch_size, n_quantiles)``.
    :param target_quantiles: Shape ``(batch_size, n_target_quantiles)``.
    :return: Shape ``(batch_size,)``.
    """
    n_quantiles = current_quantiles.shape[1]
    tau_hat = (
        th.arange(n_quantiles, device=current_quantiles.device, dtype=current_quantiles.dtype) + 0.5
    ) / n_quantiles
    # u[b, i, j] = T theta_j - theta_i
    u = target_quantiles.unsqueeze(1) - current_quantiles.unsqueeze(2)
    huber = F.smooth_l1_loss(
        current_quantiles.unsqueeze(2).expand_as(u),
        target_quantiles.unsqueeze(1).expand_as(u),
        reduction="none",
    )
    rho = th.abs(tau_hat.view(1, -1, 1) - (u.detach() < 0).float()) * huber
    return rho.mean(dim=2).sum(dim=1)


class PERQRDQN(_PrioritizedValueLearning, QRDQN):
    """Quantile-regression DQN (Dabney et al., 2018) with proportional prioritized replay.

    Takes every argument of SB3-contrib's ``QRDQN``; ``replay_buffer_class`` defaults to
    :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (configure it through
    ``replay_buffer_kwargs``). Each transition's quantile Huber loss is multiplied by its
    importance-sampling weight; its new priority is the TD error of the mean, i.e.
    ``|mean_j T theta_j(s', a*) - mean_i theta_i(s, a)|``. ``n_steps`` must be 1.
    """

    def prioritized_loss(self, replay_data: PrioritizedReplayBufferSamples) -> tuple[th.Tensor, th.Tensor]:
        batch_size = replay_data.rewards.shape[0]
        with th.no_grad():
            next_quantiles = self.quantile_net_target(replay_data.next_observations)
            # Greedy action of the target network's mean over quantiles.
            greedy = next_quantiles.mean(dim=1, keepdim=True).argmax(dim=2, keepdim=True)
            next_quantiles = next_quantiles.gather(
                dim=2, index=greedy.expand(batch_size, self.n_quantiles, 1)
            ).squeeze(2)
            target_quantiles = bootstrapped_target(
                replay_data.rewards, replay_data.dones, self.gamma, next_quantiles
            )

        actions = replay_data.actions[..., None].long().expand(batch_size, self.n_quantiles, 1)
        current_quantiles = th.gather(
            self.quantile_net(replay_data.observations), dim=2, index=actions
        ).squeeze(2)
        loss = weighted_mean(
            quantile_huber_per_sample(current_quantiles, target_quantiles), replay_data.weights
        )
        return loss, target_quantiles.mean(dim=1) - current_quantiles.mean(dim=1)
