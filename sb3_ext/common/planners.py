"""Sampling-based trajectory optimizers for model predictive control (PETS, Chua et al. 2018).

Planners search open-loop action sequences of length ``horizon`` for a batch of start observations
at once. They are agnostic of the model: a *score function* maps ``obs (B, obs_dim)`` and candidate
sequences ``(B, P, horizon, ...)`` to returns ``(B, P)``. :func:`trajectory_sampling_returns`
builds that score from a :class:`~sb3_ext.common.dynamics.ProbabilisticEnsemble` with
TS-infinity particles (each particle keeps one ensemble member for the whole horizon);
:func:`latent_returns` builds it from a :class:`~sb3_ext.common.world_model.LatentWorldModel`,
whose "observation" is then the packed latent state (PlaNet's planning in latent space).

Everything is batched in torch over start states, candidates, particles and ensemble members: one
model call per planning step and CEM iteration, never a Python loop over samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.common.env_functions import RewardFn, TerminationFn, rewards_and_terminations
from sb3_ext.common.validation import check_positive_int

if TYPE_CHECKING:
    from sb3_ext.common.rssm import RSSMState
    from sb3_ext.common.world_model import LatentWorldModel

ScoreFn = Callable[[th.Tensor, th.Tensor], th.Tensor]


class PlanResult(NamedTuple):
    """Outcome of one planning call for a batch of ``B`` start observations."""

    action: th.Tensor  #: first action to execute: CEM mean ``(B, A)`` or best discrete action ``(B,)``
    action_std: th.Tensor | None  #: std of the final CEM distribution for the first action ``(B, A)``
    plan: th.Tensor  #: the full planned sequence ``(B, horizon, ...)``
    expected_return: th.Tensor  #: model-predicted return of the elites (CEM) / best candidate ``(B,)``


#: The hyperparameters of :class:`CEMPlanner` (the first two are all :class:`RandomShootingPlanner` takes).
CEM_ARGUMENTS = ("horizon", "population_size", "n_elites", "n_iterations", "alpha", "initial_std")


def check_cem_arguments(
    horizon: int, population_size: int, n_elites: int, n_iterations: int, alpha: float, initial_std: float
) -> None:
    """Raise ``ValueError`` naming the first :class:`CEMPlanner` argument outside its allowed values."""
    check_positive_int("horizon", horizon)
    check_positive_int("population_size", population_size)
    check_positive_int("n_elites", n_elites)
    check_positive_int("n_iterations", n_iterations)
    if n_elites > population_size:
        raise ValueError(f"n_elites must be <= population_size={population_size}, got {n_elites}")
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    if not initial_std > 0.0:
        raise ValueError(f"initial_std must be > 0, got {initial_std}")


class SamplingPlanner:
    """
    What the sampling planners share: a ``horizon``, a ``population_size`` of candidate sequences,
    a device, cold starts and warm starts (the previous plan shifted by one step).

    :param horizon: planning horizon (steps).
    :param population_size: candidate sequences per planning call (CEM: per iteration).
    :param device: torch device.
    """

    #: dtype of a plan: float actions (Box), int64 indices (Discrete)
    plan_dtype: th.dtype = th.float32

    def __init__(self, horizon: int, population_size: int, device: th.device | str = "cpu") -> None:
        self.horizon = check_positive_int("horizon", horizon)
        self.population_size = check_positive_int("population_size", population_size)
        self.device = th.device(device)

    @property
    def plan_shape(self) -> tuple[int, ...]:
        """Shape of one plan: ``(horizon, action_dim)`` (Box) or ``(horizon,)`` (Discrete)."""
        raise NotImplementedError

    def to(self, device: th.device | str) -> SamplingPlanner:
        """Plan on ``device`` from now on."""
        self.device = th.device(device)
        return self

    def initial_plan(self, batch_size: int, generator: th.Generator | None = None) -> th.Tensor:
        """The cold start of ``batch_size`` plans."""
        raise NotImplementedError

    def shift(self, plan: th.Tensor, generator: th.Generator | None = None) -> th.Tensor:
        """Warm start for the next step: drop the executed action, append a cold-start one."""
        return th.cat([plan[:, 1:], self.initial_plan(plan.shape[0], generator)[:, :1]], dim=1)

    def plan(
        self,
        obs: th.Tensor,
        score_fn: ScoreFn,
        warm_start: th.Tensor | None = None,
        generator: th.Generator | None = None,
    ) -> PlanResult:
        """
        Optimize action sequences for a batch of observations ``obs (B, obs_dim)``.

        :param score_fn: ``score_fn(obs, sequences (B, P, *plan_shape)) -> returns (B, P)``.
        :param warm_start: a plan ``(B, *plan_shape)`` per observation to start from (usually
            :meth:`shift` of the last plan); ``None`` starts cold.
        :param generator: torch generator for the candidate samples.
        """
        if warm_start is not None:
            expected = (obs.shape[0], *self.plan_shape)
            if tuple(warm_start.shape) != expected:
                raise ValueError(f"warm_start must have shape {expected}, got {tuple(warm_start.shape)}")
            warm_start = warm_start.to(self.device, self.plan_dtype)
        return self._search(obs, score_fn, warm_start, generator)

    def _search(
        self, obs: th.Tensor, score_fn: ScoreFn, warm: th.Tensor | None, generator: th.Generator | None
    ) -> PlanResult:
        raise NotImplementedError


class CEMPlanner(SamplingPlanner):
    """
    Cross-entropy method over Box action sequences, with warm start and smoothed updates.

    Each of ``n_iterations`` rounds samples ``population_size`` sequences from a diagonal Gaussian
    (clipped to the action bounds; the current mean is always one of the candidates), scores them,
    and moves the distribution towards the ``n_elites`` best:
    ``mean <- alpha * mean + (1 - alpha) * elite_mean`` (same for the variance).

    :param action_space: the Box action space (plans are in its raw units).
    :param horizon: planning horizon (steps).
    :param population_size: candidate sequences per iteration.
    :param n_elites: candidates kept to refit the sampling distribution.
    :param n_iterations: CEM iterations per planning call.
    :param alpha: smoothing of the distribution update (0: no memory of the previous iterate).
    :param initial_std: initial sampling std as a fraction of the action range ``high - low``
        (PETS: 0.25).
    :param device: torch device.
    """

    def __init__(
        self,
        action_space: spaces.Box,
        horizon: int = 15,
        population_size: int = 100,
        n_elites: int = 10,
        n_iterations: int = 3,
        alpha: float = 0.1,
        initial_std: float = 0.25,
        device: th.device | str = "cpu",
    ) -> None:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
            raise ValueError(f"CEMPlanner needs a flat Box action space, got {action_space}")
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError("CEMPlanner needs finite action bounds")
        check_cem_arguments(horizon, population_size, n_elites, n_iterations, alpha, initial_std)
        super().__init__(horizon, population_size, device)
        self.n_elites, self.n_iterations = int(n_elites), int(n_iterations)
        self.alpha, self.initial_std = float(alpha), float(initial_std)
        self.low = th.as_tensor(action_space.low, dtype=th.float32, device=self.device)
        self.high = th.as_tensor(action_space.high, dtype=th.float32, device=self.device)
        self.action_dim = int(action_space.shape[0])

    def to(self, device: th.device | str) -> CEMPlanner:
        super().to(device)
        self.low, self.high = self.low.to(self.device), self.high.to(self.device)
        return self

    def initial_plan(self, batch_size: int, generator: th.Generator | None = None) -> th.Tensor:
        """The cold-start mean: the middle of the action box, ``(B, horizon, A)`` (draws nothing)."""
        mid = (self.low + self.high) / 2
        return mid.expand(batch_size, self.horizon, self.action_dim).clone()

    @property
    def plan_shape(self) -> tuple[int, ...]:
        return (self.horizon, self.action_dim)

    def _search(
        self, obs: th.Tensor, score_fn: ScoreFn, warm: th.Tensor | None, generator: th.Generator | None
    ) -> PlanResult:
        """CEM from the mean ``warm`` (default: :meth:`initial_plan`)."""
        batch = obs.shape[0]
        mean = self.initial_plan(batch) if warm is None else warm
        std = (self.initial_std * (self.high - self.low)).expand_as(mean).clone()
        shape = (batch, self.population_size - 1, self.horizon, self.action_dim)
        for _ in range(self.n_iterations):
            noise = th.randn(shape, device=self.device, generator=generator)
            samples = mean.unsqueeze(1) + std.unsqueeze(1) * noise
            candidates = th.cat([mean.unsqueeze(1), samples], dim=1)
            candidates = th.maximum(th.minimum(candidates, self.high), self.low)
            returns = _sanitize(score_fn(obs, candidates), (batch, self.population_size))
            elite_returns, elite_idx = th.topk(returns, self.n_elites, dim=1)
            elites = th.gather(
                candidates, 1, elite_idx[:, :, None, None].expand(-1, -1, self.horizon, self.action_dim)
            )
            mean = self.alpha * mean + (1 - self.alpha) * elites.mean(dim=1)
            std = (self.alpha * std**2 + (1 - self.alpha) * elites.var(dim=1, unbiased=False)).sqrt()
        return PlanResult(mean[:, 0], std[:, 0], mean, elite_returns.mean(dim=1))


class RandomShootingPlanner(SamplingPlanner):
    """
    Random shooting over Discrete action sequences: the best of ``population_size`` uniform samples.

    With a warm start, the shifted previous best sequence is one of the candidates, so the plan
    only changes when a better sequence is found.

    :param action_space: the Discrete action space.
    :param horizon: planning horizon (steps).
    :param population_size: candidate sequences per planning call.
    :param device: torch device.
    """

    plan_dtype = th.long

    def __init__(
        self,
        action_space: spaces.Discrete,
        horizon: int = 15,
        population_size: int = 200,
        device: th.device | str = "cpu",
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"RandomShootingPlanner needs a Discrete action space, got {action_space}")
        super().__init__(horizon, population_size, device)
        self.n_actions, self.start = int(action_space.n), int(action_space.start)

    def initial_plan(self, batch_size: int, generator: th.Generator | None = None) -> th.Tensor:
        """A uniformly random sequence ``(B, horizon)`` of action indices (offset by ``start``)."""
        shape = (batch_size, self.horizon)
        return th.randint(self.n_actions, shape, device=self.device, generator=generator) + self.start

    @property
    def plan_shape(self) -> tuple[int, ...]:
        return (self.horizon,)

    def _search(
        self, obs: th.Tensor, score_fn: ScoreFn, warm: th.Tensor | None, generator: th.Generator | None
    ) -> PlanResult:
        """The best of random candidates, ``warm`` (if any) among them."""
        batch = obs.shape[0]
        shape = (batch, self.population_size, self.horizon)
        candidates = th.randint(self.n_actions, shape, device=self.device, generator=generator) + self.start
        if warm is not None:
            candidates[:, 0] = warm
        returns = _sanitize(score_fn(obs, candidates), (batch, self.population_size))
        best_return, best = returns.max(dim=1)
        plan = candidates[th.arange(batch, device=self.device), best]
        return PlanResult(plan[:, 0], None, plan, best_return)


def _sanitize(returns: th.Tensor, shape: tuple[int, int]) -> th.Tensor:
    if tuple(returns.shape) != shape:
        raise ValueError(
            f"score_fn must return shape {shape} (batch, population), got {tuple(returns.shape)}"
        )
    # A diverging model rollout must never be selected.
    return th.nan_to_num(returns, nan=-float("inf"))


@th.no_grad()
def trajectory_sampling_returns(
    model: ProbabilisticEnsemble,
    obs: th.Tensor,
    action_sequences: th.Tensor,
    n_particles: int,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
    discount: float = 1.0,
    generator: th.Generator | None = None,
) -> th.Tensor:
    """
    Expected returns of candidate action sequences under the ensemble, by TS-infinity sampling.

    Every candidate is rolled out by ``n_particles`` particles; particle ``k`` is propagated by
    member ``k % n_members`` for the whole horizon, sampling the member's Gaussian at each step.
    Rewards come from ``reward_fn(obs, action, next_obs)`` when given (the environment's batched
    numpy function, called once on the whole ``(horizon, n_members, rows, ...)`` rollout) else
    from the model's reward head; terminations likewise from ``termination_fn(next_obs)`` or the
    model's termination head (never, if it has neither). Rewards after a predicted termination
    are not counted.

    :param obs: start observations ``(B, obs_dim)``.
    :param action_sequences: ``(B, P, horizon, A)`` (Box) or ``(B, P, horizon)`` (Discrete).
    :param n_particles: particles per candidate, a multiple of ``model.n_members``.
    :return: mean particle return of every candidate, ``(B, P)``.
    """
    n_members = model.n_members
    if n_particles % n_members != 0:
        raise ValueError(f"n_particles must be a multiple of n_members={n_members}, got {n_particles}")
    if reward_fn is None and not model.learn_reward:
        raise ValueError("a reward_fn is required when the model has no reward head (learn_reward=False)")
    batch, population, horizon = action_sequences.shape[:3]
    repeats = n_particles // n_members
    rows = batch * population * repeats
    tail = action_sequences.shape[3:]
    obs_dim = obs.shape[-1]
    # Layout (horizon, E, B, P, r, ...) -> (horizon, E, rows, ...): member e propagates block e.
    state = obs[None, :, None, None, :].expand(n_members, batch, population, repeats, obs_dim)
    state = state.reshape(n_members, rows, obs_dim)
    actions = action_sequences.movedim(2, 0)[:, None, :, :, None]
    actions = actions.expand(horizon, n_members, batch, population, repeats, *tail).reshape(
        horizon, n_members, rows, *tail
    )
    states, model_rewards, model_dones = [state], [], []
    for t in range(horizon):
        state, reward, done = model.sample(state, actions[t], generator=generator)
        states.append(state)
        model_rewards.append(reward)
        model_dones.append(done)
    trajectory = th.stack(states)  # (horizon + 1, E, rows, obs_dim)
    rewards, dones = rewards_and_terminations(
        trajectory[:-1],
        actions,
        trajectory[1:],
        th.stack(model_rewards) if model.learn_reward else None,
        th.stack(model_dones) if model.learn_termination else None,
        reward_fn,
        termination_fn,
    )
    weights = (discount ** th.arange(horizon, dtype=th.float32, device=obs.device)).view(horizon, 1, 1)
    if dones is not None:
        # The transition at step t counts if no earlier transition terminated.
        alive = th.cumprod((~dones).float(), dim=0)
        weights = weights * th.cat([th.ones_like(alive[:1]), alive[:-1]], dim=0)
    total = (weights * rewards.float()).sum(dim=0)
    return total.reshape(n_members, batch, population, repeats).mean(dim=(0, 3))


@th.no_grad()
def latent_returns(
    model: LatentWorldModel,
    start: RSSMState,
    action_sequences: th.Tensor,
    discount: float = 1.0,
    use_continuation: bool = True,
    sample: bool = False,
    generator: th.Generator | None = None,
) -> th.Tensor:
    """
    Returns of candidate action sequences imagined in the latent space of a world model (PlaNet,
    Hafner et al. 2019, section 4: the sum of the reward head's means along the prior's rollout).

    Every candidate is rolled out from its start state by the prior ``s_{t+1} ~ p(s_{t+1} | s_t,
    a_t)`` (its mode unless ``sample``), and scored with the reward head ``r(s_{t+1})`` and, with
    ``use_continuation``, the continuation head ``c(s_{t+1})`` (the probability that the episode
    goes on after arriving there):

    ``G = sum_t discount^t (prod_{k <= t-1} c(s_{k+1})) r(s_{t+1})``, ``t = 0 .. horizon - 1``,

    so the reward of a terminating step counts and the rewards after it are weighted by the odds
    that the episode had not ended.

    :param model: the world model (its reward and continuation heads are the objective).
    :param start: latent start states ``(B, ...)`` (usually posteriors filtered from observations).
    :param action_sequences: ``(B, P, horizon, A)`` Box actions in the model's units (scaled to
        ``[-1, 1]``) or ``(B, P, horizon)`` Discrete indices.
    :param discount: discount per step.
    :param use_continuation: weight later rewards by the predicted continuation probabilities.
    :param sample: sample the prior at each step instead of taking its mode.
    :param generator: torch generator of the samples.
    :return: the returns ``(B, P)``.
    """
    batch, population, horizon = action_sequences.shape[:3]
    actions = action_sequences.reshape(batch * population, horizon, *action_sequences.shape[3:])
    state = start.map(lambda t: t.repeat_interleave(population, dim=0))
    total = th.zeros(batch * population, device=actions.device)
    weight = th.ones_like(total)
    for t in range(horizon):
        state = model.imagine_step(state, actions[:, t], generator, sample)
        features = model.features(state)
        total = total + weight * model.reward(features)
        weight = weight * discount
        if use_continuation:
            weight = weight * model.continuation(features)
    return total.reshape(batch, population)
