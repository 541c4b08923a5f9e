"""The agent network and the mixers of QMIX and VDN."""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn


class AgentQNetwork(nn.Module):
    """
    One Q-network shared by all agents: ``Q(o_i, id_i, .)``, the agent's one-hot id appended to its
    observation so that shared weights can still tell the agents apart.

    :param obs_dim: size of an agent's observation
    :param n_agents: number of agents (size of the one-hot id)
    :param n_actions: number of Discrete actions
    :param net_arch: hidden layer sizes (ReLU)
    :param agent_id: append the agent's one-hot id to its observation
    """

    def __init__(
        self, obs_dim: int, n_agents: int, n_actions: int, net_arch: Sequence[int], agent_id: bool = True
    ) -> None:
        super().__init__()
        self.n_agents, self.agent_id = n_agents, agent_id
        self.net = nn.Sequential(
            *create_mlp(obs_dim + (n_agents if agent_id else 0), n_actions, list(net_arch))
        )

    def forward_agents(self, observations: th.Tensor, agent_ids: th.Tensor) -> th.Tensor:
        """Q-values ``(..., n_actions)`` of observations ``(..., obs_dim)`` of the agents ``agent_ids``
        (same leading shape, integer columns)."""
        if not self.agent_id:
            return self.net(observations)
        one_hot = nn.functional.one_hot(agent_ids.long(), self.n_agents).to(observations.dtype)
        return self.net(th.cat([observations, one_hot], dim=-1))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """Q-values ``(B, N, n_actions)`` of joint observations ``(B, N, obs_dim)`` (agent ``i`` in column ``i``)."""
        ids = th.arange(self.n_agents, device=observations.device).expand(observations.shape[:-1])
        return self.forward_agents(observations, ids)


class RecurrentAgentQNetwork(nn.Module):
    """
    The recurrent agent network of QMIX (Rashid et al. 2018, as in PyMARL's ``RNNAgent``), shared
    by all agents: ``x = relu(fc1([o_i, a_i^{t-1}, id_i]))``, ``h_i^t = GRUCell(x, h_i^{t-1})``,
    ``Q(tau_i, .) = fc2(h_i^t)``, so that the Q-values depend on the agent's whole
    action-observation history ``tau_i``, not only on its current observation.

    :param obs_dim: size of an agent's observation
    :param n_agents: number of agents (size of the one-hot id)
    :param n_actions: number of Discrete actions
    :param hidden_dim: width of ``fc1`` and of the GRU's hidden state
    :param agent_id: append the agent's one-hot id to its input
    :param last_action: append the agent's previous action (one-hot; zeros at the episode start)
        to its input
    """

    def __init__(
        self,
        obs_dim: int,
        n_agents: int,
        n_actions: int,
        hidden_dim: int = 64,
        agent_id: bool = True,
        last_action: bool = True,
    ) -> None:
        super().__init__()
        self.n_agents, self.n_actions, self.hidden_dim = n_agents, n_actions, hidden_dim
        self.agent_id, self.last_action = agent_id, last_action
        input_dim = obs_dim + (n_actions if last_action else 0) + (n_agents if agent_id else 0)
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.rnn = nn.GRUCell(hidden_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, n_actions)

    def step(
        self,
        observations: th.Tensor,
        last_actions: th.Tensor,
        agent_ids: th.Tensor,
        hidden: th.Tensor,
    ) -> tuple[th.Tensor, th.Tensor]:
        """One step of agents ``agent_ids`` (integer columns, shape ``(M,)``): observations
        ``(M, obs_dim)``, previous actions one-hot ``(M, n_actions)`` (zeros: none), hidden states
        ``(M, hidden_dim)``; returns the Q-values ``(M, n_actions)`` and the next hidden states."""
        inputs = [observations]
        if self.last_action:
            inputs.append(last_actions.to(observations.dtype))
        if self.agent_id:
            inputs.append(nn.functional.one_hot(agent_ids.long(), self.n_agents).to(observations.dtype))
        hidden = self.rnn(nn.functional.relu(self.fc1(th.cat(inputs, dim=-1))), hidden)
        return self.fc2(hidden), hidden

    def forward(self, observations: th.Tensor, actions: th.Tensor, present: th.Tensor) -> th.Tensor:
        """Q-values ``(B, T + 1, N, n_actions)`` of episodes unrolled from zero hidden states:
        observations ``(B, T + 1, N, obs_dim)``, the actions taken ``(B, T, N)`` (the input of the
        next step) and ``present`` ``(B, T + 1, N)``, 1 where the agent is in play. An agent out of
        play keeps its hidden state and its last action, as when acting."""
        batch, steps, n = observations.shape[:3]
        ids = th.arange(n, device=observations.device).repeat(batch)
        hidden = observations.new_zeros(batch * n, self.hidden_dim)
        last = observations.new_zeros(batch * n, self.n_actions)
        q_values = []
        for t in range(steps):
            q, stepped = self.step(observations[:, t].reshape(batch * n, -1), last, ids, hidden)
            mask = present[:, t].reshape(batch * n, 1)
            hidden = mask * stepped + (1.0 - mask) * hidden
            q_values.append(q.view(batch, n, -1))
            if t < steps - 1:
                taken = nn.functional.one_hot(actions[:, t].reshape(-1).long(), self.n_actions)
                last = mask * taken.to(observations.dtype) + (1.0 - mask) * last
        return th.stack(q_values, dim=1)


class VDNMixer(nn.Module):
    """``Q_tot = sum_i Q_i`` (Sunehag et al. 2017); the state is not used."""

    def forward(self, agent_qs: th.Tensor, states: th.Tensor) -> th.Tensor:
        return agent_qs.sum(dim=-1)


class IndependentValues(nn.Module):
    """No mixing: the agents' Q-values ``(B, N)`` as they are (independent Q-learning)."""

    def forward(self, agent_qs: th.Tensor, states: th.Tensor) -> th.Tensor:
        return agent_qs


class QMixer(nn.Module):
    """
    The QMIX mixing network (Rashid et al. 2018): ``Q_tot = elu(q W1 + b1) w2 + V(s)``, with
    ``W1 = |hyper_w1(s)|`` (``n_agents x embed``), ``b1 = hyper_b1(s)``, ``w2 = |hyper_w2(s)|``
    (``embed``) and ``V(s)`` a two-layer network: the absolute values make ``Q_tot`` monotonic in
    every agent's Q-value, the state enters only through the weights and biases.

    :param n_agents: number of agents
    :param state_dim: size of the global state
    :param embed_dim: width of the mixing layer
    :param hypernet_embed_dim: hidden width of the two-layer weight hypernetworks
    """

    def __init__(
        self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_embed_dim: int = 64
    ) -> None:
        super().__init__()
        self.n_agents, self.embed_dim = n_agents, embed_dim
        self.hyper_w1 = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed_dim),
            nn.ReLU(),
            nn.Linear(hypernet_embed_dim, n_agents * embed_dim),
        )
        self.hyper_w2 = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed_dim), nn.ReLU(), nn.Linear(hypernet_embed_dim, embed_dim)
        )
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.value = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, agent_qs: th.Tensor, states: th.Tensor) -> th.Tensor:
        """``Q_tot (B,)`` of agent Q-values ``(B, N)`` in states ``(B, state_dim)``."""
        w1 = th.abs(self.hyper_w1(states)).view(-1, self.n_agents, self.embed_dim)
        b1 = self.hyper_b1(states)
        hidden = nn.functional.elu(th.bmm(agent_qs.unsqueeze(1), w1).squeeze(1) + b1)
        w2 = th.abs(self.hyper_w2(states))
        return (hidden * w2).sum(dim=-1) + self.value(states).squeeze(-1)
