"""Networks of :class:`~sb3_ext.hac.HAC`: one goal-conditioned learner per level of the hierarchy."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.utils import polyak_update
from torch import nn
from torch.nn import functional as F

from sb3_ext.common.td import bootstrapped_target
from sb3_ext.hac.buffers import GoalTransitionSamples

#: Largest lattice of subgoal cells a discrete subgoal head enumerates.
MAX_SUBGOAL_CELLS = 4096


def goal_lattice(goal_space: spaces.Box) -> np.ndarray | None:
    """The integer cells ``(n_cells, goal_dim)`` of a goal Box with finite integer bounds (a grid's
    cell coordinates), row-major; None when the bounds are not integers or the cells too many."""
    low, high = goal_space.low.astype(np.float64), goal_space.high.astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        return None
    if np.any(low != np.round(low)) or np.any(high != np.round(high)):
        return None
    sizes = (high - low + 1).astype(np.int64)
    if np.prod(sizes, dtype=np.float64) > MAX_SUBGOAL_CELLS:
        return None
    grids = np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij")
    return (np.stack([g.reshape(-1) for g in grids], axis=1) + low).astype(np.float32)


def _scaler(low: np.ndarray, high: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
    """Shift and scale that map ``[low, high]`` to ``[-1, 1]`` (identity where a bound is infinite)."""
    low, high = low.astype(np.float64), high.astype(np.float64)
    finite = np.isfinite(low) & np.isfinite(high) & (high > low)
    low, high = np.where(finite, low, -1.0), np.where(finite, high, 1.0)
    shift, scale = (high + low) / 2, (high - low) / 2
    return th.as_tensor(shift, dtype=th.float32), th.as_tensor(scale, dtype=th.float32)


class BoundedQ(nn.Module):
    """An MLP whose outputs are Q-values in ``[-q_bound, 0]``: ``-q_bound * sigmoid(f(x))``, the
    paper's negative-sigmoid critic (HAC's Q-values are bounded by the subgoal horizon ``H``)."""

    def __init__(
        self, in_dim: int, out_dim: int, net_arch: list[int], activation_fn: type[nn.Module], q_bound: float
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(*create_mlp(in_dim, out_dim, net_arch, activation_fn))
        self.q_bound = q_bound

    def forward(self, x: th.Tensor) -> th.Tensor:
        return -self.q_bound * th.sigmoid(self.net(x))


class CellQ(nn.Module):
    """``Q(s, c, g)`` for every cell ``c`` of a lattice, ``(B, n_cells)``, from one critic that takes
    the cell as an input (scaled like the goals): what it learns about one cell carries over to its
    neighbours, which one output per cell would have to learn cell by cell.

    :param in_dim: size of the scaled ``[s, g]`` inputs
    :param cells: the cells ``(n_cells, goal_dim)``, scaled like the goals
    :param net_arch: hidden layer sizes
    :param activation_fn: activation of the hidden layers
    :param q_bound: ``H``: Q-values lie in ``[-H, 0]``
    """

    def __init__(
        self,
        in_dim: int,
        cells: th.Tensor,
        net_arch: list[int],
        activation_fn: type[nn.Module],
        q_bound: float,
    ) -> None:
        super().__init__()
        self.critic = BoundedQ(in_dim + cells.shape[1], 1, net_arch, activation_fn, q_bound)
        self.register_buffer("cells", cells, persistent=False)

    def forward(self, x: th.Tensor) -> th.Tensor:
        batch, n_cells = len(x), len(self.cells)
        pairs = th.cat(
            [x[:, None, :].expand(batch, n_cells, -1), self.cells[None].expand(batch, n_cells, -1)], dim=-1
        )
        return self.critic(pairs).squeeze(-1)

    def at(self, x: th.Tensor, indices: th.Tensor) -> th.Tensor:
        """``Q(s, c, g)`` of one cell per row, ``(B,)``: what training needs, without the other cells."""
        return self.critic(th.cat([x, self.cells[indices]], dim=-1)).squeeze(-1)


class GoalLevel(nn.Module):
    """What both kinds of level share: inputs ``[s, g]`` scaled to about ``[-1, 1]`` from the
    spaces' bounds, the Q bound ``H`` and the target networks' soft update."""

    discrete: bool

    def __init__(self, obs_space: spaces.Box, goal_space: spaces.Box, q_bound: float) -> None:
        super().__init__()
        self.q_bound = q_bound
        shift, scale = _scaler(
            np.concatenate([obs_space.low.reshape(-1), goal_space.low]),
            np.concatenate([obs_space.high.reshape(-1), goal_space.high]),
        )
        # Not saved (persistent=False): they follow from the spaces and never change.
        self.register_buffer("input_shift", shift, persistent=False)
        self.register_buffer("input_scale", scale, persistent=False)
        self.in_dim = len(shift)

    def inputs(self, observations: th.Tensor, goals: th.Tensor) -> th.Tensor:
        return (th.cat([observations, goals], dim=-1) - self.input_shift) / self.input_scale

    def target(self, batch: GoalTransitionSamples, gamma: float, next_values: th.Tensor) -> th.Tensor:
        """The paper's target ``r + gamma (1 - done) Q'(s', pi(s'), g)``, clipped to ``[-H, 0]``."""
        return bootstrapped_target(batch.rewards, batch.dones, gamma, next_values).clamp(-self.q_bound, 0.0)

    def pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, target) network pairs."""
        raise NotImplementedError

    def update_targets(self, tau: float) -> None:
        for online, target in self.pairs():
            polyak_update(online.parameters(), target.parameters(), tau)


class DiscreteGoalLevel(GoalLevel):
    """
    A goal-conditioned DQN level, ``Q(s, ., g)`` over ``n_actions`` actions, trained on the Double
    DQN target ``r + gamma (1 - done) Q'(s', argmax_a Q(s', a, g), g)`` clipped to ``[-H, 0]``.
    The actions are primitive ones (level 0), or the cells of a subgoal lattice (upper levels).

    :param obs_space: the ``observation`` space
    :param goal_space: the goal space
    :param n_actions: number of actions
    :param net_arch: hidden layer sizes
    :param activation_fn: activation of the hidden layers
    :param q_bound: ``H``: Q-values lie in ``[-H, 0]``
    :param learning_rate: initial learning rate of the Adam optimizer
    :param cells: for a subgoal level, the lattice's cells ``(n_actions, goal_dim)``: the Q-values
        come from a :class:`CellQ` critic that takes the cell as an input; None: one output per action
    """

    discrete = True

    def __init__(
        self,
        obs_space: spaces.Box,
        goal_space: spaces.Box,
        n_actions: int,
        net_arch: list[int],
        activation_fn: type[nn.Module],
        q_bound: float,
        learning_rate: float,
        cells: np.ndarray | None = None,
    ) -> None:
        super().__init__(obs_space, goal_space, q_bound)
        self.n_actions = n_actions
        if cells is None:
            self.q_net: nn.Module = BoundedQ(self.in_dim, n_actions, net_arch, activation_fn, q_bound)
        else:
            goal_dim = cells.shape[1]
            shift, scale = self.input_shift[-goal_dim:], self.input_scale[-goal_dim:]
            scaled = (th.as_tensor(cells, dtype=th.float32) - shift) / scale
            self.q_net = CellQ(self.in_dim, scaled, net_arch, activation_fn, q_bound)
        self.q_net_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.optimizer = th.optim.Adam(self.q_net.parameters(), lr=learning_rate)

    def pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.q_net, self.q_net_target)]

    def greedy(self, observations: th.Tensor, goals: th.Tensor) -> th.Tensor:
        """``argmax_a Q(s, a, g)``, ``(B,)``."""
        return self.q_net(self.inputs(observations, goals)).argmax(dim=1)

    @staticmethod
    def q_value(network: nn.Module, inputs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``Q(s, a, g)`` of the given actions, ``(B,)`` (a :class:`CellQ` evaluates those cells only)."""
        if isinstance(network, CellQ):
            return network.at(inputs, actions)
        return network(inputs).gather(1, actions[:, None]).squeeze(1)

    def critic_losses(self, batch: GoalTransitionSamples, gamma: float) -> dict[str, th.Tensor]:
        """The TD loss on ``batch``, with its target and Q-values."""
        with th.no_grad():
            next_inputs = self.inputs(batch.next_observations, batch.goals)
            next_actions = self.q_net(next_inputs).argmax(dim=1)
            next_values = self.q_value(self.q_net_target, next_inputs, next_actions)
            target = self.target(batch, gamma, next_values)
        q = self.q_value(self.q_net, self.inputs(batch.observations, batch.goals), batch.actions)
        return {"critic_loss": F.mse_loss(q, target), "q_values": q, "target": target}

    def update(self, batch: GoalTransitionSamples, gamma: float) -> dict[str, float]:
        """One gradient step on ``batch``; the losses for the logger."""
        losses = self.critic_losses(batch, gamma)
        self.optimizer.zero_grad()
        losses["critic_loss"].backward()
        self.optimizer.step()
        return {"critic_loss": losses["critic_loss"].item(), "q_values": losses["q_values"].mean().item()}

    def optimizers(self) -> list[th.optim.Optimizer]:
        return [self.optimizer]


class ContinuousGoalLevel(GoalLevel):
    """
    A goal-conditioned DDPG level: a deterministic actor ``pi(s, g)`` in the Box ``[low, high]``
    (tanh, rescaled) and a critic ``Q(s, a, g)`` in ``[-H, 0]``, trained on the target
    ``r + gamma (1 - done) Q'(s', pi'(s', g), g)`` clipped to ``[-H, 0]`` (primed: the target
    networks; ``tau=1`` gives the paper's updates without target networks). The actions are
    primitive ones (level 0) or subgoals (upper levels).

    :param obs_space: the ``observation`` space
    :param goal_space: the goal space
    :param action_space: the bounded Box of the actions
    :param net_arch: hidden layer sizes of the actor and of the critic
    :param activation_fn: activation of the hidden layers
    :param q_bound: ``H``: Q-values lie in ``[-H, 0]``
    :param learning_rate: initial learning rate of the two Adam optimizers
    """

    discrete = False

    def __init__(
        self,
        obs_space: spaces.Box,
        goal_space: spaces.Box,
        action_space: spaces.Box,
        net_arch: list[int],
        activation_fn: type[nn.Module],
        q_bound: float,
        learning_rate: float,
    ) -> None:
        super().__init__(obs_space, goal_space, q_bound)
        self.action_dim = int(np.prod(action_space.shape))
        shift, scale = _scaler(action_space.low.reshape(-1), action_space.high.reshape(-1))
        self.register_buffer("action_shift", shift, persistent=False)
        self.register_buffer("action_scale", scale, persistent=False)
        self.actor = nn.Sequential(
            *create_mlp(self.in_dim, self.action_dim, net_arch, activation_fn, squash_output=True)
        )
        self.critic = BoundedQ(self.in_dim + self.action_dim, 1, net_arch, activation_fn, q_bound)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = th.optim.Adam(self.actor.parameters(), lr=learning_rate)
        self.critic_optimizer = th.optim.Adam(self.critic.parameters(), lr=learning_rate)

    def pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.actor, self.actor_target), (self.critic, self.critic_target)]

    def act(self, inputs: th.Tensor, target: bool = False) -> th.Tensor:
        """``pi(s, g)`` in the action Box (``inputs`` already scaled)."""
        squashed = (self.actor_target if target else self.actor)(inputs)
        return squashed * self.action_scale + self.action_shift

    def q_value(self, inputs: th.Tensor, actions: th.Tensor, target: bool = False) -> th.Tensor:
        """``Q(s, a, g)``, ``(B,)``, for actions in the Box."""
        scaled = (actions - self.action_shift) / self.action_scale
        return (self.critic_target if target else self.critic)(th.cat([inputs, scaled], dim=-1)).squeeze(-1)

    def greedy(self, observations: th.Tensor, goals: th.Tensor) -> th.Tensor:
        return self.act(self.inputs(observations, goals))

    def critic_losses(self, batch: GoalTransitionSamples, gamma: float) -> dict[str, th.Tensor]:
        """The critic's TD loss on ``batch``, with its target and Q-values."""
        with th.no_grad():
            next_inputs = self.inputs(batch.next_observations, batch.goals)
            next_values = self.q_value(next_inputs, self.act(next_inputs, target=True), target=True)
            target = self.target(batch, gamma, next_values)
        q = self.q_value(self.inputs(batch.observations, batch.goals), batch.actions)
        return {"critic_loss": F.mse_loss(q, target), "q_values": q, "target": target}

    def update(self, batch: GoalTransitionSamples, gamma: float) -> dict[str, float]:
        """One step of the critic, then one of the actor on the updated critic; the losses."""
        losses = self.critic_losses(batch, gamma)
        self.critic_optimizer.zero_grad()
        losses["critic_loss"].backward()
        self.critic_optimizer.step()
        inputs = self.inputs(batch.observations, batch.goals)
        actor_loss = -self.q_value(inputs, self.act(inputs)).mean()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()  # the critic's gradients it leaves are cleared before the critic's next step
        self.actor_optimizer.step()
        return {
            "critic_loss": losses["critic_loss"].item(),
            "actor_loss": actor_loss.item(),
            "q_values": losses["q_values"].mean().item(),
        }

    def optimizers(self) -> list[th.optim.Optimizer]:
        return [self.actor_optimizer, self.critic_optimizer]


class HACPolicy(BasePolicy):
    """
    The levels of :class:`~sb3_ext.hac.HAC`, bottom (level 0, primitive actions) to top.

    Level 0 is a :class:`DiscreteGoalLevel` over the ``Discrete`` actions, or a
    :class:`ContinuousGoalLevel` in the action ``Box``. Each upper level proposes subgoals in the
    goal space (the ``desired_goal`` Box): a :class:`DiscreteGoalLevel` over the lattice of its
    integer cells when ``discrete_subgoals`` (grids), else a :class:`ContinuousGoalLevel` in the
    Box, its proposals rounded to the lattice when the bounds are integers and the primitive
    actions ``Discrete``.

    :param observation_space: a ``Dict`` with ``observation``, ``achieved_goal``, ``desired_goal``
    :param action_space: the primitive actions (``Discrete`` or bounded ``Box``)
    :param lr_schedule: learning rate schedule (``lr_schedule(1)`` is the initial rate)
    :param n_levels: number of levels
    :param subgoal_horizon: ``H``, the Q bound of every level
    :param discrete_subgoals: upper levels choose among the cells of the goal lattice
    :param net_arch: hidden layer sizes of every network (default ``[64, 64]``)
    :param activation_fn: activation of the hidden layers
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        n_levels: int = 2,
        subgoal_horizon: int = 10,
        discrete_subgoals: bool = False,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__(observation_space, action_space)
        self.n_levels, self.subgoal_horizon = n_levels, subgoal_horizon
        self.discrete_subgoals = discrete_subgoals
        self.net_arch = [64, 64] if net_arch is None else list(net_arch)
        self.activation_fn = activation_fn
        obs_space = observation_space["observation"]
        self.goal_space: spaces.Box = observation_space["desired_goal"]
        self.cells = goal_lattice(self.goal_space)
        self.round_subgoals = self.cells is not None and isinstance(action_space, spaces.Discrete)
        lr, horizon = lr_schedule(1), float(subgoal_horizon)
        levels: list[GoalLevel] = []
        if isinstance(action_space, spaces.Discrete):
            levels.append(
                DiscreteGoalLevel(
                    obs_space, self.goal_space, int(action_space.n), self.net_arch, activation_fn, horizon, lr
                )
            )
        else:
            levels.append(
                ContinuousGoalLevel(
                    obs_space, self.goal_space, action_space, self.net_arch, activation_fn, horizon, lr
                )
            )
        for _ in range(1, n_levels):
            if discrete_subgoals:
                assert self.cells is not None
                level: GoalLevel = DiscreteGoalLevel(
                    obs_space,
                    self.goal_space,
                    len(self.cells),
                    self.net_arch,
                    activation_fn,
                    horizon,
                    lr,
                    cells=self.cells,
                )
            else:
                level = ContinuousGoalLevel(
                    obs_space, self.goal_space, self.goal_space, self.net_arch, activation_fn, horizon, lr
                )
            levels.append(level)
        self.levels = nn.ModuleList(levels)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            n_levels=self.n_levels,
            subgoal_horizon=self.subgoal_horizon,
            discrete_subgoals=self.discrete_subgoals,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
        )
        return data

    def optimizers(self) -> list[th.optim.Optimizer]:
        return [optimizer for level in self.levels for optimizer in level.optimizers()]

    # ------------------------------------------------------------------ actions
    def greedy_actions(self, level: int, observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """The greedy actions of ``level`` as the env (level 0) or the level below (subgoals) takes them."""
        with th.no_grad():
            actions = self.levels[level].greedy(
                th.as_tensor(observations, dtype=th.float32, device=self.device),
                th.as_tensor(goals, dtype=th.float32, device=self.device),
            )
        return self.decode(level, actions.cpu().numpy())

    def random_actions(self, level: int, n: int) -> np.ndarray:
        """``n`` uniformly random actions of ``level`` (numpy's global generator)."""
        network = self.levels[level]
        if network.discrete:
            return self.decode(level, np.random.randint(network.n_actions, size=n))  # noqa: NPY002
        space = self.action_space if level == 0 else self.goal_space
        return self.decode(level, np.random.uniform(space.low, space.high, size=(n, *space.shape)))  # noqa: NPY002

    def noisy(self, level: int, actions: np.ndarray, std: float) -> np.ndarray:
        """Continuous ``actions`` plus Gaussian noise of ``std`` times the Box's half-width, clipped."""
        space = self.action_space if level == 0 else self.goal_space
        noise = np.random.normal(size=actions.shape) * std * (space.high - space.low) / 2  # noqa: NPY002
        return self.decode(level, actions + noise)

    def decode(self, level: int, raw: np.ndarray) -> np.ndarray:
        """Network outputs -> actions: Discrete actions (from the space's ``start``), Box actions
        clipped, subgoal cells or points."""
        network = self.levels[level]
        if level == 0 and network.discrete:
            return raw.astype(np.int64) + int(self.action_space.start)
        if level == 0:
            return np.clip(raw, self.action_space.low, self.action_space.high)
        if network.discrete:
            return self.cells[raw.astype(np.int64)]
        subgoals = np.clip(raw, self.goal_space.low, self.goal_space.high)
        return (np.round(subgoals) if self.round_subgoals else subgoals).astype(np.float32)

    def encode(self, level: int, actions: np.ndarray) -> np.ndarray:
        """Actions (or subgoals, or achieved goals used as hindsight actions) as the buffer stores them."""
        if level == 0 and self.levels[0].discrete:
            return np.asarray(actions, np.int64) - int(self.action_space.start)
        if not self.levels[level].discrete:
            return actions
        assert self.cells is not None
        low = self.goal_space.low.astype(np.float64)
        sizes = (self.goal_space.high - self.goal_space.low + 1).astype(np.int64)
        offsets = np.clip(np.round(np.asarray(actions, np.float64) - low), 0, sizes - 1).astype(np.int64)
        return np.ravel_multi_index(tuple(offsets.T), tuple(sizes))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """The greedy primitive action of a hierarchy that starts afresh: every level proposes top
        down. :meth:`HAC.predict <sb3_ext.hac.HAC.predict>` carries the subgoals between steps."""
        assert isinstance(observation, dict)
        obs = observation["observation"].float().reshape(len(observation["observation"]), -1).cpu().numpy()
        goals = observation["desired_goal"].float().cpu().numpy()
        for level in range(self.n_levels - 1, 0, -1):
            goals = self.greedy_actions(level, obs, goals)
        return th.as_tensor(self.greedy_actions(0, obs, goals), device=self.device)
