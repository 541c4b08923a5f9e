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
    """

    def __init__(self, obs_dim: int, n_agents: int, n_actions: int, net_arch: Sequence[int]) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.net = nn.Sequential(*create_mlp(obs_dim + n_agents, n_actions, list(net_arch)))

    def forward_agents(self, observations: th.Tensor, agent_ids: th.Tensor) -> th.Tensor:
        """Q-values ``(..., n_actions)`` of observations ``(..., obs_dim)`` of the agents ``agent_ids``
        (same leading shape, integer columns)."""
        one_hot = nn.functional.one_hot(agent_ids.long(), self.n_agents).to(observations.dtype)
        return self.net(th.cat([observations, one_hot], dim=-1))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """Q-values ``(B, N, n_actions)`` of joint observations ``(B, N, obs_dim)`` (agent ``i`` in column ``i``)."""
        ids = th.arange(self.n_agents, device=observations.device).expand(observations.shape[:-1])
        return self.forward_agents(observations, ids)


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
