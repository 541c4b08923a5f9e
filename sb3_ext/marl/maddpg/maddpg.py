"""MADDPG: centralized critics, decentralized deterministic actors, for Box actions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.utils import polyak_update
from torch import nn

from sb3_ext.common.validation import check_bool, check_positive, check_positive_int, check_unit_interval
from sb3_ext.marl.common.base import MultiAgentAlgorithm
from sb3_ext.marl.maddpg.networks import Actors, AttentionCritics, LocalCritics, MLPCritics

CRITICS = ("mlp", "attention", "local")


class MADDPG(MultiAgentAlgorithm):
    """
    MADDPG (Lowe et al. 2017): each agent ``i`` has a deterministic actor ``mu_i(o_i)`` that acts on
    its own observation, and a centralized critic ``Q_i(o_1..o_N, a_1..a_N)`` that sees every
    agent's observation and action during training.

    - Critic: ``y_i = r_i + gamma (1 - d_i) Q_i^-(o', mu^-_1(o'_1)..mu^-_N(o'_N))`` with target
      actors and critics, squared error.
    - Actor: ``max E[Q_i(o, a_1..mu_i(o_i)..a_N)]``, the other agents' actions from the buffer.
    - ``critic="local"``: each critic sees only its agent's observation and action: independent
      DDPG, the baseline of the paper.
    - ``critic="attention"``: the critics of MAAC (Iqbal & Sha 2019), attending over the other
      agents (:class:`~sb3_ext.marl.maddpg.networks.AttentionCritics`), instead of one MLP on the
      concatenation (``"mlp"``).
    - ``share_parameters``: one actor and one critic network for all agents, reading the agent's
      one-hot id (for homogeneous agents).
    - Exploration: Gaussian noise of standard deviation ``exploration_noise`` (in units of half the
      action range) on the actor's action, clipped to the bounds. Targets are updated softly by
      ``tau`` after every gradient step.
    - Agents out of play (left the arena) enter every network as zeros, are not attended to, and
      their terms are masked out of the losses.
    - ``communication=True``: each actor also outputs a message of ``message_dim`` numbers in
      ``[-1, 1]``, broadcast to the others: at the next step every agent observes the messages of
      all other agents (zeros at the start of an episode and from agents out of play). The message
      is part of the agent's action for the critics, so it is learned by the same deterministic
      policy gradient, differentiably; ``predict`` carries the messages in its ``state``.

    :param env: a PettingZoo ``ParallelEnv`` with ``Box`` actions (every agent the same spaces)
    :param critic: ``"mlp"``, ``"attention"`` or ``"local"`` (independent learners)
    :param net_arch: hidden layers of the actors and of the critics' output networks
    :param share_parameters: one network for all agents (with their one-hot id)
    :param embed_dim: embedding size of the attention critic
    :param attention_heads: attention heads of the attention critic
    :param tau: soft update coefficient of the target networks
    :param exploration_noise: std of the Gaussian action noise (fraction of half the action range)
    :param max_grad_norm: gradient clipping norm (actors and critics)
    :param communication: add a broadcast message to every agent's action
    :param message_dim: size of a message
    :param learning_rate: learning rate of the actors and critics (Lowe et al.: 0.01)
    :param kwargs: :class:`~sb3_ext.marl.common.base.MultiAgentAlgorithm`'s arguments
    """

    hyperparameters: ClassVar[tuple[str, ...]] = (
        "critic",
        "net_arch",
        "share_parameters",
        "embed_dim",
        "attention_heads",
        "tau",
        "exploration_noise",
        "max_grad_norm",
        "communication",
        "message_dim",
    )
    saved_modules: ClassVar[tuple[str, ...]] = (
        "actors",
        "actors_target",
        "critics",
        "critics_target",
        "actor_optimizer",
        "critic_optimizer",
    )

    def __init__(
        self,
        env: Any,
        critic: str = "mlp",
        net_arch: Sequence[int] = (64, 64),
        share_parameters: bool = False,
        embed_dim: int = 64,
        attention_heads: int = 4,
        tau: float = 0.01,
        exploration_noise: float = 0.1,
        max_grad_norm: float = 0.5,
        communication: bool = False,
        message_dim: int = 4,
        learning_rate: float = 1e-2,
        **kwargs: Any,
    ) -> None:
        if critic not in CRITICS:
            raise ValueError(f"critic must be one of {CRITICS}, got {critic!r}")
        self.critic = critic
        self.net_arch = [check_positive_int("net_arch", width) for width in net_arch]
        self.share_parameters = check_bool("share_parameters", share_parameters)
        self.embed_dim = check_positive_int("embed_dim", embed_dim)
        self.attention_heads = check_positive_int("attention_heads", attention_heads)
        if critic == "attention" and embed_dim % attention_heads:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be a multiple of attention_heads ({attention_heads})"
            )
        self.tau = check_unit_interval("tau", tau)
        self.exploration_noise = (
            check_positive("exploration_noise", exploration_noise) if exploration_noise else 0.0
        )
        self.max_grad_norm = check_positive("max_grad_norm", max_grad_norm)
        self.communication = check_bool("communication", communication)
        self.message_dim = check_positive_int("message_dim", message_dim)
        super().__init__(env, learning_rate=learning_rate, **kwargs)

    def _check_spaces(self) -> None:
        space = self.action_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(
                f"action_space: MADDPG needs flat Box actions, got {space} (it has no Gumbel-softmax option "
                "for Discrete actions: use QMIX or VDN, or continuous_actions=True)"
            )
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f"action_space: MADDPG needs finite action bounds, got {space}")

    def _setup_model(self) -> None:
        self.env_action_dim = int(self.action_space.shape[0])
        self.messages_dim = self.message_dim if self.communication else 0
        self.action_dim = self.env_action_dim + self.messages_dim
        self.input_dim = self.obs_dim + (self.n_agents - 1) * self.messages_dim
        super()._setup_model()
        self._low = np.asarray(self.action_space.low, dtype=np.float32)
        self._high = np.asarray(self.action_space.high, dtype=np.float32)
        args = (self.n_agents, self.input_dim, self.action_dim, self.net_arch, self.share_parameters)
        self.actors, self.actors_target = Actors(*args).to(self.device), Actors(*args).to(self.device)
        self.critics, self.critics_target = self._make_critics(args), self._make_critics(args)
        for online, target in ((self.actors, self.actors_target), (self.critics, self.critics_target)):
            target.load_state_dict(online.state_dict())
            target.requires_grad_(False)
        self.actor_optimizer = th.optim.Adam(self.actors.parameters(), lr=self.learning_rate)
        self.critic_optimizer = th.optim.Adam(self.critics.parameters(), lr=self.learning_rate)

    def _buffer_spaces(self) -> tuple[spaces.Box, spaces.Box]:
        """Observations with the received messages, actions in the networks' units with the message."""
        observations = spaces.Box(-np.inf, np.inf, (self.input_dim,), np.float32)
        return observations, spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)

    def _make_critics(self, args: tuple) -> nn.Module:
        if self.critic == "mlp":
            return MLPCritics(*args).to(self.device)
        if self.critic == "local":
            return LocalCritics(*args).to(self.device)
        return AttentionCritics(*args, embed_dim=self.embed_dim, attention_heads=self.attention_heads).to(
            self.device
        )

    # ------------------------------------------------------------------ acting
    def _to_env_action(self, action: np.ndarray) -> np.ndarray:
        """A network action (``[-1, 1]``, the message last) as the env takes it: its first
        ``action_space`` dimensions scaled to the bounds."""
        unit = np.asarray(action, dtype=np.float32)[: self.env_action_dim]
        return (self._low + (unit + 1.0) * 0.5 * (self._high - self._low)).astype(self.action_space.dtype)

    def _model_observations(
        self, observations: dict[str, np.ndarray], state: Any = None
    ) -> dict[str, np.ndarray]:
        """With communication, each observation followed by the other agents' last messages (in
        agent order; ``state`` holds them, ``None``: zeros)."""
        if not self.communication:
            return observations
        messages = (
            np.zeros((self.n_agents, self.message_dim), np.float32) if state is None else np.asarray(state)
        )
        received = {}
        for name, observation in observations.items():
            i = self.agent_index[name]
            others = np.concatenate([messages[:i], messages[i + 1 :]]).reshape(-1)
            received[name] = np.concatenate([np.asarray(observation, np.float32).reshape(-1), others])
        return received

    def _next_state(
        self, actions: dict[str, Any], observations: dict[str, np.ndarray], state: Any = None
    ) -> np.ndarray | None:
        """With communication, the messages just sent ``(n_agents, message_dim)`` (zeros for agents
        that did not act)."""
        if not self.communication:
            return None
        messages = np.zeros((self.n_agents, self.message_dim), np.float32)
        for name, action in actions.items():
            messages[self.agent_index[name]] = np.asarray(action, np.float32)[self.env_action_dim :]
        return messages

    def _actor_units(self, observations: th.Tensor, columns: list[int]) -> np.ndarray:
        with th.no_grad():
            units = [self.actors.forward_agent(i, observations[k : k + 1]) for k, i in enumerate(columns)]
        return th.cat(units).cpu().numpy()

    def _noisy(self, units: np.ndarray) -> np.ndarray:
        return np.clip(units + self.exploration_noise * self.rng.normal(size=units.shape), -1.0, 1.0)

    def _explore(self, observations: dict[str, np.ndarray], state: Any = None) -> dict[str, Any]:
        names = [name for name in self.agents if name in observations]
        if self.num_timesteps < self.learning_starts:  # uniform random actions first, as SB3's TD3
            units = self.rng.uniform(-1.0, 1.0, size=(len(names), self.action_dim))
        else:
            columns = [self.agent_index[n] for n in names]
            units = self._noisy(self._actor_units(self._obs_tensor(observations, names), columns))
        return {name: unit.astype(np.float32) for name, unit in zip(names, units, strict=True)}

    def _predict(self, observations: th.Tensor, deterministic: bool, state: Any = None) -> np.ndarray:
        units = self._actor_units(observations, self._predict_index)
        return units if deterministic else self._noisy(units)

    # ------------------------------------------------------------------ training
    def critic_targets(self, batch: Any) -> th.Tensor:
        """``y_i = r_i + gamma (1 - d_i) Q_i^-(o', mu^-(o'))`` for every agent, ``(B, N)``."""
        with th.no_grad():
            next_actions = self.actors_target(batch.next_observations) * batch.next_active.unsqueeze(-1)
            next_q = self.critics_target(batch.next_observations, next_actions, batch.next_active)
            return batch.rewards + self.gamma * (1.0 - batch.terminations) * next_q

    def critic_loss(self, batch: Any) -> th.Tensor:
        """Mean over the agents in play of ``(Q_i(o, a) - y_i)^2``."""
        q = self.critics(batch.observations, batch.actions, batch.active)
        squared = (q - self.critic_targets(batch)) ** 2
        return (squared * batch.active).sum() / batch.active.sum().clamp(min=1.0)

    def actor_loss(self, batch: Any) -> th.Tensor:
        """Mean over the agents in play of ``-Q_i(o, a_1..mu_i(o_i)..a_N)``: agent ``i``'s action
        replaced by its actor's, the others' taken from the buffer."""
        active = batch.active
        values = self.critics.own_action_values(
            batch.observations, batch.actions, self.actors(batch.observations), active
        )
        return -(values * active).sum() / active.sum().clamp(min=1.0)

    def train(self, gradient_steps: int, batch_size: int) -> None:
        critic_losses, actor_losses = [], []
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, self.rng)
            critic_loss = self.critic_loss(batch)
            self.critic_optimizer.zero_grad()
            critic_loss.backward()
            nn.utils.clip_grad_norm_(self.critics.parameters(), self.max_grad_norm)
            self.critic_optimizer.step()
            actor_loss = self.actor_loss(batch)  # with the updated critics
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            nn.utils.clip_grad_norm_(self.actors.parameters(), self.max_grad_norm)
            self.actor_optimizer.step()
            polyak_update(self.actors.parameters(), self.actors_target.parameters(), self.tau)
            polyak_update(self.critics.parameters(), self.critics_target.parameters(), self.tau)
            critic_losses.append(critic_loss.item())
            actor_losses.append(actor_loss.item())
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/critic_loss", float(np.mean(critic_losses)))
        self.logger.record("train/actor_loss", float(np.mean(actor_losses)))
