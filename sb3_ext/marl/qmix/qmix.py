"""QMIX and VDN: value decomposition for cooperative teams with Discrete actions."""

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
from sb3_ext.marl.common.buffers import MultiAgentEpisodeBuffer
from sb3_ext.marl.qmix.networks import (
    AgentQNetwork,
    IndependentValues,
    QMixer,
    RecurrentAgentQNetwork,
    VDNMixer,
)

MIXERS = ("qmix", "vdn", "none")
AGENT_NETWORKS = ("mlp", "gru")


class QMIX(MultiAgentAlgorithm):
    """
    QMIX (Rashid et al. 2018), and VDN (Sunehag et al. 2017) with ``mixer="vdn"``: per-agent
    Q-networks on local observations, mixed into a team value ``Q_tot(s, a)`` that is trained on
    the team reward and is monotonic in every agent's Q-value, so each agent acting greedily on
    its own Q maximizes ``Q_tot`` (decentralized execution).

    - Agent networks: one network shared by all agents, with the agent's one-hot id appended to
      its input (parameter sharing, as in both papers' implementations). ``agent_network="mlp"``:
      an MLP on the current observation, trained on transitions sampled one by one.
      ``agent_network="gru"``: the recurrent agent of Rashid et al. (``fc -> GRUCell -> fc``,
      optionally fed the agent's previous action), whose Q-values depend on the agent's whole
      history; whole episodes are stored and sampled (``batch_size`` counts episodes), the online
      and target networks are unrolled from zero hidden states at each episode start, and the
      targets, the mixing and the loss are taken at every step (padding masked out). ``predict``
      returns the agents' hidden states and last actions as its state, to pass back at the next
      step (``state=None`` or ``episode_start=True`` starts an episode).
    - Mixer: ``"qmix"``: a two-layer network whose non-negative weights and biases are produced by
      hypernetworks of the global state (``env.state()``; the concatenated observations when the
      env has none); ``"vdn"``: the sum of the agents' Q-values; ``"none"``: no mixing, each agent
      learns its own Q-value from its own reward (independent Q-learning with shared parameters,
      the baseline value decomposition improves on).
    - Target: double Q-learning, ``y = r_team + gamma (1 - done_team) Q_tot^-(s', argmax_a Q(o', a))``
      with the greedy actions of the online agent network evaluated by the target networks;
      ``r_team`` is the mean reward of the agents that acted (the shared reward of a cooperative
      env). Agents out of play (left the arena) are masked out of the mix.
    - Loss: squared TD error on ``Q_tot``, gradient norm clipped to ``max_grad_norm``, Adam.
    - Exploration: epsilon-greedy per agent, linearly annealed from ``exploration_initial_eps`` to
      ``exploration_final_eps`` over ``exploration_fraction`` of the timesteps (SB3's DQN schedule).

    :param env: a PettingZoo ``ParallelEnv`` with ``Discrete`` actions (every agent the same spaces)
    :param mixer: ``"qmix"``, ``"vdn"`` or ``"none"`` (independent Q-learning)
    :param agent_network: ``"mlp"`` (feed-forward agents) or ``"gru"`` (recurrent agents trained
        on whole episodes)
    :param net_arch: hidden layers of the MLP agent network
    :param rnn_hidden_dim: width of the GRU agent network (its ``fc1`` and hidden state)
    :param obs_agent_id: append each agent's one-hot id to its network input
    :param obs_last_action: append each agent's previous action (one-hot) to its input; GRU
        agents only (default: ``True`` for ``"gru"``, as in PyMARL)
    :param mixing_embed_dim: width of the mixing network's hidden layer (QMIX)
    :param hypernet_embed_dim: width of the hypernetworks' hidden layer (QMIX)
    :param target_update_interval: env steps between target-network updates
    :param tau: soft update coefficient of the target networks (1: hard copy)
    :param exploration_fraction: fraction of the timesteps over which epsilon is annealed
    :param exploration_initial_eps: initial epsilon
    :param exploration_final_eps: final epsilon
    :param max_grad_norm: gradient clipping norm
    :param double_q: use double Q-learning targets (else the target network's own max)
    :param kwargs: :class:`~sb3_ext.marl.common.base.MultiAgentAlgorithm`'s arguments (learning
        rate, buffer, batch, gamma, train frequency, logging, seed, device); with
        ``agent_network="gru"`` the ``batch_size`` is in episodes and ``buffer_size`` in steps kept
        as whole episodes
    """

    hyperparameters: ClassVar[tuple[str, ...]] = (
        "mixer",
        "agent_network",
        "net_arch",
        "rnn_hidden_dim",
        "obs_agent_id",
        "obs_last_action",
        "mixing_embed_dim",
        "hypernet_embed_dim",
        "target_update_interval",
        "tau",
        "exploration_fraction",
        "exploration_initial_eps",
        "exploration_final_eps",
        "max_grad_norm",
        "double_q",
    )
    saved_modules: ClassVar[tuple[str, ...]] = (
        "q_net",
        "q_net_target",
        "mixer_net",
        "mixer_net_target",
        "optimizer",
    )

    def __init__(
        self,
        env: Any,
        mixer: str = "qmix",
        agent_network: str = "mlp",
        net_arch: Sequence[int] = (64, 64),
        rnn_hidden_dim: int = 64,
        obs_agent_id: bool = True,
        obs_last_action: bool | None = None,
        mixing_embed_dim: int = 32,
        hypernet_embed_dim: int = 64,
        target_update_interval: int = 200,
        tau: float = 1.0,
        exploration_fraction: float = 0.5,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10.0,
        double_q: bool = True,
        **kwargs: Any,
    ) -> None:
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")
        self.mixer = mixer
        if agent_network not in AGENT_NETWORKS:
            raise ValueError(f"agent_network must be one of {AGENT_NETWORKS}, got {agent_network!r}")
        self.agent_network = agent_network
        self.net_arch = [check_positive_int("net_arch", width) for width in net_arch]
        self.rnn_hidden_dim = check_positive_int("rnn_hidden_dim", rnn_hidden_dim)
        self.obs_agent_id = check_bool("obs_agent_id", obs_agent_id)
        if obs_last_action is None:
            obs_last_action = agent_network == "gru"
        if check_bool("obs_last_action", obs_last_action) and agent_network != "gru":
            raise ValueError(
                "obs_last_action: only agent_network='gru' takes the previous action as input "
                "(the MLP agents see the current observation only)"
            )
        self.obs_last_action = obs_last_action
        self.mixing_embed_dim = check_positive_int("mixing_embed_dim", mixing_embed_dim)
        self.hypernet_embed_dim = check_positive_int("hypernet_embed_dim", hypernet_embed_dim)
        self.target_update_interval = check_positive_int("target_update_interval", target_update_interval)
        self.tau = check_unit_interval("tau", tau)
        self.exploration_fraction = check_unit_interval("exploration_fraction", exploration_fraction)
        self.exploration_initial_eps = check_unit_interval("exploration_initial_eps", exploration_initial_eps)
        self.exploration_final_eps = check_unit_interval("exploration_final_eps", exploration_final_eps)
        self.max_grad_norm = check_positive("max_grad_norm", max_grad_norm)
        if not isinstance(double_q, bool):
            raise ValueError(f"double_q must be True or False, got {double_q!r}")
        self.double_q = double_q
        self.exploration_rate = self.exploration_initial_eps
        super().__init__(env, **kwargs)

    def _check_spaces(self) -> None:
        if not isinstance(self.action_space, spaces.Discrete):
            raise ValueError(
                f"action_space: {type(self).__name__} needs Discrete actions, got {self.action_space} "
                "(MADDPG takes Box actions; the particle envs have continuous_actions=False)"
            )

    @property
    def recurrent(self) -> bool:
        """Whether the agents are recurrent (``agent_network="gru"``)."""
        return self.agent_network == "gru"

    def _setup_model(self) -> None:
        if self.recurrent:
            self.replay_buffer = MultiAgentEpisodeBuffer(
                self.buffer_size, self.agents, *self._buffer_spaces(), self.state_dim, self.device
            )
        else:
            super()._setup_model()
        self.q_net, self.q_net_target = self._make_agent_network(), self._make_agent_network()
        self.mixer_net, self.mixer_net_target = self._make_mixer(), self._make_mixer()
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.mixer_net_target.load_state_dict(self.mixer_net.state_dict())
        self.q_net_target.requires_grad_(False)
        self.mixer_net_target.requires_grad_(False)
        self.optimizer = th.optim.Adam(
            [*self.q_net.parameters(), *self.mixer_net.parameters()], lr=self.learning_rate
        )

    def _make_agent_network(self) -> nn.Module:
        n_actions = int(self.action_space.n)
        if self.recurrent:
            network: nn.Module = RecurrentAgentQNetwork(
                self.obs_dim,
                self.n_agents,
                n_actions,
                self.rnn_hidden_dim,
                self.obs_agent_id,
                self.obs_last_action,
            )
        else:
            network = AgentQNetwork(self.obs_dim, self.n_agents, n_actions, self.net_arch, self.obs_agent_id)
        return network.to(self.device)

    def _make_mixer(self) -> nn.Module:
        if self.mixer == "vdn":
            return VDNMixer().to(self.device)
        if self.mixer == "none":
            return IndependentValues().to(self.device)
        return QMixer(self.n_agents, self.state_dim, self.mixing_embed_dim, self.hypernet_embed_dim).to(
            self.device
        )

    # ------------------------------------------------------------------ acting
    def _on_step(self) -> None:
        progress = self.num_timesteps / max(self._total_timesteps, 1)
        fraction = min(progress / self.exploration_fraction, 1.0) if self.exploration_fraction > 0 else 1.0
        start, end = self.exploration_initial_eps, self.exploration_final_eps
        self.exploration_rate = start + fraction * (end - start)
        if self.num_timesteps % self.target_update_interval == 0:
            polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
            polyak_update(self.mixer_net.parameters(), self.mixer_net_target.parameters(), self.tau)
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def _carried(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        """The GRU agents' hidden states ``(n_agents, rnn_hidden_dim)`` and last actions (one-hot,
        ``(n_agents, n_actions)``) carried in ``state`` (``None``: zeros, an episode start)."""
        shapes = ((self.n_agents, self.rnn_hidden_dim), (self.n_agents, int(self.action_space.n)))
        if state is None:
            return np.zeros(shapes[0], np.float32), np.zeros(shapes[1], np.float32)
        if (
            not isinstance(state, tuple)
            or len(state) != 2
            or tuple(np.shape(state[0])) != shapes[0]
            or tuple(np.shape(state[1])) != shapes[1]
        ):
            raise ValueError(
                f"state: expected predict's (hidden states {shapes[0]}, last actions {shapes[1]}) or None"
            )
        return np.array(state[0], dtype=np.float32), np.array(state[1], dtype=np.float32)

    def _agent_step(
        self, observations: th.Tensor, columns: list[int], state: Any
    ) -> tuple[th.Tensor, th.Tensor | None]:
        """Q-values of the agents at ``columns`` and, for GRU agents, their next hidden states."""
        agent_ids = th.as_tensor(columns, device=self.device)
        if not self.recurrent:
            return self.q_net.forward_agents(observations, agent_ids), None
        hidden, last_actions = self._carried(state)
        return self.q_net.step(
            observations,
            th.as_tensor(last_actions[columns], device=self.device),
            agent_ids,
            th.as_tensor(hidden[columns], device=self.device),
        )

    def _greedy(self, observations: th.Tensor, columns: list[int], state: Any = None) -> np.ndarray:
        return self._agent_step(observations, columns, state)[0].argmax(dim=-1).cpu().numpy()

    def _next_state(
        self, actions: dict[str, Any], observations: dict[str, np.ndarray], state: Any = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """GRU agents: the hidden states after seeing ``observations`` and the actions just taken
        (one-hot); the agents that did not act keep theirs."""
        if not self.recurrent:
            return None
        hidden, last_actions = self._carried(state)
        names = [name for name in self.agents if name in actions]
        if names:
            columns = [self.agent_index[name] for name in names]
            with th.no_grad():
                _, stepped = self._agent_step(self._obs_tensor(observations, names), columns, state)
            hidden[columns] = stepped.cpu().numpy()
            last_actions[columns] = 0.0
            last_actions[columns, [int(actions[name]) for name in names]] = 1.0
        return hidden, last_actions

    def _epsilon_greedy(self, greedy: np.ndarray, epsilon: float) -> np.ndarray:
        explore = self.rng.random(len(greedy)) < epsilon
        random_actions = self.rng.integers(0, int(self.action_space.n), size=len(greedy))
        return np.where(explore, random_actions, greedy)

    def _explore(self, observations: dict[str, np.ndarray], state: Any = None) -> dict[str, Any]:
        names = [name for name in self.agents if name in observations]
        columns = [self.agent_index[name] for name in names]
        with th.no_grad():
            greedy = self._greedy(self._obs_tensor(observations, names), columns, state)
        actions = self._epsilon_greedy(greedy, self.exploration_rate)
        return {name: int(action) for name, action in zip(names, actions, strict=True)}

    def _predict(self, observations: th.Tensor, deterministic: bool, state: Any = None) -> np.ndarray:
        greedy = self._greedy(observations, self._predict_index, state)
        return greedy if deterministic else self._epsilon_greedy(greedy, self.exploration_rate)

    # ------------------------------------------------------------------ training
    @staticmethod
    def _mix(mixer: nn.Module, agent_qs: th.Tensor, states: th.Tensor) -> th.Tensor:
        """The mixer applied to agent Q-values ``(..., N)`` and states ``(..., state_dim)`` with any
        leading axes (batch, or batch and time: the mixing is per step)."""
        mixed = mixer(agent_qs.reshape(-1, agent_qs.shape[-1]), states.reshape(-1, states.shape[-1]))
        return mixed.reshape(*agent_qs.shape[:-1], *mixed.shape[1:])

    @staticmethod
    def _present(batch: Any) -> th.Tensor:
        """``(B, T + 1, N)``: 1 where an agent is in play, at every step of sampled episodes and at
        the last next observation (agents never come back after leaving)."""
        return th.cat([batch.active[:, :1], batch.next_active], dim=1)

    def _online_q(self, batch: Any) -> tuple[th.Tensor, th.Tensor | None]:
        """The online agent Q-values at the observations (with gradients), and for GRU agents at
        the next observations too (the same unroll, detached; ``None`` for the MLP)."""
        if self.recurrent:
            q = self.q_net(batch.observations, batch.actions, self._present(batch))
            return q[:, :-1], q[:, 1:].detach()
        return self.q_net(batch.observations), None

    def td_targets(self, batch: Any, next_online_q: th.Tensor | None = None) -> th.Tensor:
        """``r_team + gamma (1 - done_team) Q_tot^-(s', a')``, ``a'`` the online network's greedy
        next actions (double Q) or the target network's, masked to the agents still in play; for
        GRU agents at every step of the sampled episodes, ``(B, T)``. ``next_online_q``: the online
        Q-values at the next observations when already computed."""
        with th.no_grad():
            if self.recurrent:
                next_target_q = self.q_net_target(batch.observations, batch.actions, self._present(batch))[
                    :, 1:
                ]
            else:
                next_target_q = self.q_net_target(batch.next_observations)  # (B, N, A)
            if self.double_q:
                if next_online_q is None:
                    next_online_q = (
                        self._online_q(batch)[1] if self.recurrent else self.q_net(batch.next_observations)
                    )
                next_actions = next_online_q.argmax(dim=-1, keepdim=True)
                next_q = next_target_q.gather(-1, next_actions).squeeze(-1)
            else:
                next_q = next_target_q.max(dim=-1).values
            next_total = self._mix(self.mixer_net_target, next_q * batch.next_active, batch.next_states)
            if self.mixer == "none":  # each agent on its own reward: (B, N)
                return batch.rewards + self.gamma * (1.0 - batch.terminations) * next_total
            return batch.team_rewards + self.gamma * (1.0 - batch.team_terminations) * next_total

    def chosen_total(self, batch: Any, online_q: th.Tensor | None = None) -> th.Tensor:
        """``Q_tot(s, a)`` of the stored joint actions (inactive agents masked out); ``online_q``:
        the online agent Q-values at the observations when already computed."""
        if online_q is None:
            online_q = self._online_q(batch)[0]
        q = online_q.gather(-1, batch.actions.long().unsqueeze(-1)).squeeze(-1)
        return self._mix(self.mixer_net, q * batch.active, batch.states)

    def loss(self, batch: Any) -> th.Tensor:
        """Squared TD error of ``Q_tot`` (mean over the batch, for GRU agents over the steps of the
        episodes), or with ``mixer="none"`` of every agent's own Q-value (mean over the agents that
        acted)."""
        online_q, next_online_q = self._online_q(batch)
        errors = (self.chosen_total(batch, online_q) - self.td_targets(batch, next_online_q)) ** 2
        if self.mixer == "none":
            mask = batch.active
        elif self.recurrent:
            mask = batch.filled
        else:
            return errors.mean()
        return (errors * mask).sum() / mask.sum().clamp(min=1.0)

    def train(self, gradient_steps: int, batch_size: int) -> None:
        if self.replay_buffer.size() == 0:  # GRU agents: no episode is complete yet
            return
        losses = []
        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, self.rng)
            loss = self.loss(batch)
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(
                [*self.q_net.parameters(), *self.mixer_net.parameters()], self.max_grad_norm
            )
            self.optimizer.step()
            losses.append(loss.item())
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))


class VDN(QMIX):
    """VDN (Sunehag et al. 2017): :class:`QMIX` with the sum of the agents' Q-values as the mixer.

    :param env: a PettingZoo ``ParallelEnv`` with ``Discrete`` actions
    :param kwargs: :class:`QMIX`'s arguments except ``mixer``
    """

    def __init__(self, env: Any, **kwargs: Any) -> None:
        mixer = kwargs.pop("mixer", "vdn")
        if mixer != "vdn":
            raise ValueError(f"mixer: VDN always sums the agents' Q-values (use QMIX for {mixer!r})")
        super().__init__(env, mixer="vdn", **kwargs)
