"""Actors and centralized critics of MADDPG: MLP critics (Lowe et al. 2017) and the attention
critic of MAAC (Iqbal & Sha 2019)."""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn


def _mlp(n_in: int, n_out: int, net_arch: Sequence[int], squash: bool = False) -> nn.Sequential:
    return nn.Sequential(*create_mlp(n_in, n_out, list(net_arch), squash_output=squash))


class AgentModules(nn.Module):
    """One network per agent, or one shared network that also reads the agent's one-hot id
    (``share_parameters``)."""

    def __init__(
        self, n_agents: int, n_in: int, n_out: int, net_arch: Sequence[int], share: bool, squash: bool
    ):
        super().__init__()
        self.n_agents, self.share = n_agents, share
        if share:
            self.nets = nn.ModuleList([_mlp(n_in + n_agents, n_out, net_arch, squash)])
        else:
            self.nets = nn.ModuleList([_mlp(n_in, n_out, net_arch, squash) for _ in range(n_agents)])

    def forward_agent(self, agent: int, inputs: th.Tensor) -> th.Tensor:
        """The output of agent ``agent``'s network for ``inputs (..., n_in)``."""
        if self.share:
            one_hot = th.zeros(*inputs.shape[:-1], self.n_agents, dtype=inputs.dtype, device=inputs.device)
            one_hot[..., agent] = 1.0
            return self.nets[0](th.cat([inputs, one_hot], dim=-1))
        return self.nets[agent](inputs)

    def forward(self, inputs: th.Tensor) -> th.Tensor:
        """Every agent's output ``(B, N, n_out)`` for per-agent inputs ``(B, N, n_in)``."""
        return th.stack([self.forward_agent(i, inputs[:, i]) for i in range(self.n_agents)], dim=1)


class Actors(AgentModules):
    """Deterministic actors ``mu_i(o_i)`` in ``[-1, 1]^action_dim`` (tanh)."""

    def __init__(self, n_agents: int, obs_dim: int, action_dim: int, net_arch: Sequence[int], share: bool):
        super().__init__(n_agents, obs_dim, action_dim, net_arch, share, squash=True)


class MLPCritics(nn.Module):
    """Centralized critics ``Q_i(o_1..o_N, a_1..a_N)``: each an MLP on every agent's observation
    and action (Lowe et al. 2017); agents out of play enter as zeros."""

    def __init__(self, n_agents: int, obs_dim: int, action_dim: int, net_arch: Sequence[int], share: bool):
        super().__init__()
        self.n_agents = n_agents
        self.heads = AgentModules(
            n_agents, n_agents * (obs_dim + action_dim), 1, net_arch, share, squash=False
        )

    def forward(self, observations: th.Tensor, actions: th.Tensor, active: th.Tensor) -> th.Tensor:
        """``Q (B, N)`` for observations ``(B, N, obs_dim)``, actions ``(B, N, action_dim)`` and
        the in-play mask ``(B, N)``."""
        mask = active.unsqueeze(-1)
        joint = th.cat([(observations * mask).flatten(1), (actions * mask).flatten(1)], dim=-1)
        return th.cat([self.heads.forward_agent(i, joint) for i in range(self.n_agents)], dim=-1)

    def own_action_values(
        self, observations: th.Tensor, actions: th.Tensor, own_actions: th.Tensor, active: th.Tensor
    ) -> th.Tensor:
        """``Q_i(o, a_1..own_i..a_N) (B, N)``: each agent's critic with that agent's action replaced
        by ``own_actions[:, i]`` and the others' from ``actions`` (MADDPG's actor objective), one
        critic head per agent instead of every head for every replacement."""
        mask = active.unsqueeze(-1)
        observed = (observations * mask).flatten(1)
        own = th.eye(self.n_agents, dtype=th.bool, device=actions.device)[..., None]  # (N, N, 1)
        values = []
        for i in range(self.n_agents):
            joint_actions = th.where(own[i], own_actions, actions) * mask
            values.append(self.heads.forward_agent(i, th.cat([observed, joint_actions.flatten(1)], dim=-1)))
        return th.cat(values, dim=-1)


class LocalCritics(nn.Module):
    """Independent critics ``Q_i(o_i, a_i)`` on the agent's own observation and action only: with
    them MADDPG is independent DDPG, the baseline that centralized critics improve on."""

    def __init__(self, n_agents: int, obs_dim: int, action_dim: int, net_arch: Sequence[int], share: bool):
        super().__init__()
        self.heads = AgentModules(n_agents, obs_dim + action_dim, 1, net_arch, share, squash=False)

    def forward(self, observations: th.Tensor, actions: th.Tensor, active: th.Tensor) -> th.Tensor:
        """``Q (B, N)``; see :meth:`MLPCritics.forward`."""
        return self.heads(th.cat([observations, actions], dim=-1)).squeeze(-1)

    def own_action_values(
        self, observations: th.Tensor, actions: th.Tensor, own_actions: th.Tensor, active: th.Tensor
    ) -> th.Tensor:
        """``Q_i(o_i, own_i) (B, N)``; see :meth:`MLPCritics.own_action_values`."""
        return self(observations, own_actions * active.unsqueeze(-1), active)


class AttentionCritics(nn.Module):
    """
    The MAAC critic (Iqbal & Sha 2019): ``Q_i(o, a) = f_i(e_i, x_i)``, where ``e_j = g_j(o_j, a_j)``
    embeds each agent's observation and action and ``x_i`` attends over the other agents in play:
    ``x_i = sum_{j != i} alpha_ij h(V e_j)``, ``alpha_ij = softmax_j((W_k e_j)^T (W_q e_i) / sqrt(d))``,
    with ``attention_heads`` heads whose key, query and value projections are shared by all agents.
    The critic's size does not grow with the number of agents, and each agent weighs the others it
    needs.

    :param embed_dim: size of each embedding ``e_j`` (split across the heads)
    :param attention_heads: number of attention heads (dividing ``embed_dim``)
    """

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        action_dim: int,
        net_arch: Sequence[int],
        share: bool,
        embed_dim: int = 64,
        attention_heads: int = 4,
    ):
        super().__init__()
        if embed_dim % attention_heads:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be a multiple of attention_heads ({attention_heads})"
            )
        self.n_agents, self.heads, self.head_dim = n_agents, attention_heads, embed_dim // attention_heads
        self.encoders = AgentModules(n_agents, obs_dim + action_dim, embed_dim, [], share, squash=False)
        self.keys = nn.Linear(embed_dim, embed_dim, bias=False)
        self.queries = nn.Linear(embed_dim, embed_dim, bias=False)
        self.values = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.LeakyReLU())
        self.outputs = AgentModules(n_agents, 2 * embed_dim, 1, net_arch, share, squash=False)

    def attention(
        self, embeddings: th.Tensor, active: th.Tensor, query_embeddings: th.Tensor | None = None
    ) -> tuple[th.Tensor, th.Tensor]:
        """``(x (B, N, embed), alpha (B, heads, N, N))``: each agent's attention over the other
        agents in play (an agent with nobody to attend to gets ``x = 0``). The queries come from
        ``query_embeddings`` when given (default: ``embeddings``), keys and values always from
        ``embeddings``."""
        b, n, _ = embeddings.shape
        split = lambda t: t.view(b, n, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        if query_embeddings is None:
            query_embeddings = embeddings
        keys, queries, values = (
            split(self.keys(embeddings)),
            split(self.queries(query_embeddings)),
            split(self.values(embeddings)),
        )
        scores = queries @ keys.transpose(-1, -2) / self.head_dim**0.5  # (B, heads, N query, N key)
        allowed = active[:, None, None, :].bool() & ~th.eye(n, dtype=th.bool, device=embeddings.device)
        scores = scores.masked_fill(~allowed, float("-inf"))
        alpha = th.softmax(scores, dim=-1).nan_to_num(0.0)  # rows with no allowed key: all zeros
        attended = (alpha @ values).transpose(1, 2).reshape(b, n, -1)
        return attended, alpha

    def embed(self, observations: th.Tensor, actions: th.Tensor, active: th.Tensor) -> th.Tensor:
        """Every agent's embedding ``e_j = g_j(o_j, a_j) (B, N, embed)``, zeros in for agents out
        of play."""
        inputs = th.cat([observations, actions], dim=-1) * active.unsqueeze(-1)
        return nn.functional.leaky_relu(self.encoders(inputs))

    def forward(self, observations: th.Tensor, actions: th.Tensor, active: th.Tensor) -> th.Tensor:
        """``Q (B, N)``; see :meth:`MLPCritics.forward`."""
        embeddings = self.embed(observations, actions, active)
        attended, _ = self.attention(embeddings, active)
        return self.outputs(th.cat([embeddings, attended], dim=-1)).squeeze(-1)

    def own_action_values(
        self, observations: th.Tensor, actions: th.Tensor, own_actions: th.Tensor, active: th.Tensor
    ) -> th.Tensor:
        """``Q_i(o, a_1..own_i..a_N) (B, N)`` for every agent in one pass: agent ``i`` attends only
        to the others, so replacing its action changes only its own embedding, which enters ``Q_i``
        directly and as the query of its attention; keys and values stay those of ``actions``."""
        embeddings = self.embed(observations, actions, active)
        own = self.embed(observations, own_actions, active)
        attended, _ = self.attention(embeddings, active, query_embeddings=own)
        return self.outputs(th.cat([own, attended], dim=-1)).squeeze(-1)
