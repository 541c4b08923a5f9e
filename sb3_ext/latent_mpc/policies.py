"""Latent MPC policy: a latent world model, a Bayes filter over its states, and a sampling planner."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule

from sb3_ext.common.planners import (
    PlanResult,
    latent_returns,
)
from sb3_ext.common.planning_policy import PlanningPolicyMixin
from sb3_ext.common.rssm import RSSMState
from sb3_ext.common.validation import check_bool, check_float
from sb3_ext.common.world_model import LatentWorldModel

#: Seed of the planner's generator for ``deterministic=True``: a deterministic action is then a
#: pure function of the observation, the carried state and the weights (as in ``MPCPolicy``).
DETERMINISTIC_PLANNING_SEED = 0

#: The world model PlaNet plans with: Gaussian latents (Hafner et al. 2019). Every other default
#: is :class:`~sb3_ext.common.world_model.LatentWorldModel`'s.
DEFAULT_WORLD_MODEL_KWARGS: dict[str, Any] = {"latent": "gaussian"}

#: The recurrent state carried through ``predict``: GRU state, latent sample, previous action (in
#: the model's units: Box scaled to [-1, 1], Discrete as the index), warm-start plan.
LatentMPCState = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class LatentMPCPolicy(PlanningPolicyMixin, BasePolicy):
    """
    PlaNet-style policy: filters the observations into the posterior state of a
    :class:`~sb3_ext.common.world_model.LatentWorldModel` and plans from it in latent space with
    the shared planners of :mod:`sb3_ext.common.planners` (CEM for Box actions, random shooting
    for Discrete ones), scoring candidates by :func:`~sb3_ext.common.planners.latent_returns`
    (reward head, continuation head): no ``reward_fn`` and no low-dimensional state needed.

    ``predict(obs, state, episode_start)`` carries the filter's state, the action just taken and
    the warm start like sb3-contrib's ``RecurrentPPO`` carries its LSTM state, so
    ``evaluate_policy`` works unchanged; ``state=None`` or ``episode_start=True`` starts afresh.

    :param observation_space: flat ``Box`` or ``uint8`` image observations
    :param action_space: ``Box`` (1-D) or ``Discrete`` actions
    :param lr_schedule: learning-rate schedule of the world model's optimizer
    :param world_model_kwargs: keyword arguments of the world model (default: Gaussian latents)
    :param planner_kwargs: :class:`~sb3_ext.common.planners.CEMPlanner`'s arguments (``horizon``,
        ``population_size``, ``n_elites``, ``n_iterations``, ``alpha``, ``initial_std``), of which
        random shooting (Discrete actions) takes the first two; CEM plans in the model's action
        units ``[-1, 1]``
    :param gamma: discount of the planned return
    :param use_continuation: weight planned rewards by the predicted continuation
    :param sample_latents: sample the prior while planning instead of taking its mode
    :param optimizer_eps: Adam's epsilon (PlaNet: 1e-4)
    """

    constructor_parameter_names = (
        "world_model_kwargs",
        "planner_kwargs",
        "gamma",
        "use_continuation",
        "sample_latents",
        "optimizer_eps",
    )

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        world_model_kwargs: dict[str, Any] | None = None,
        planner_kwargs: dict[str, Any] | None = None,
        gamma: float = 1.0,
        use_continuation: bool = True,
        sample_latents: bool = False,
        optimizer_eps: float = 1e-4,
    ) -> None:
        super().__init__(observation_space, action_space, squash_output=False)
        self.world_model_kwargs = {**DEFAULT_WORLD_MODEL_KWARGS, **(world_model_kwargs or {})}
        self.planner_kwargs = dict(planner_kwargs or {})
        self.gamma = check_float("gamma", gamma, 0.0, 1.0)
        self.use_continuation = check_bool("use_continuation", use_continuation)
        self.sample_latents = check_bool("sample_latents", sample_latents)
        self.optimizer_eps = check_float("optimizer_eps", optimizer_eps, 0.0, low_inclusive=False)
        self.world_model = LatentWorldModel(observation_space, action_space, **self.world_model_kwargs)
        self.optimizer = th.optim.Adam(self.world_model.parameters(), lr=lr_schedule(1), eps=optimizer_eps)
        if isinstance(action_space, spaces.Box):
            # The world model takes Box actions scaled to [-1, 1]: so does the planner.
            action_space = spaces.Box(-1.0, 1.0, action_space.shape, np.float32)
        self._init_planner(action_space, self.planner_kwargs)

    @property
    def planner_device(self) -> th.device:
        return self.world_model.device

    # ------------------------------------------------------------------ latent states
    def _pack(self, state: RSSMState) -> th.Tensor:
        """A latent state as one ``(B, feature_size)`` tensor, the planner's "observation"."""
        return self.world_model.features(state)

    def _unpack(self, packed: th.Tensor) -> RSSMState:
        rssm = self.world_model.rssm
        deter, stoch = packed[:, : rssm.deter_size], packed[:, rssm.deter_size :]
        if rssm.latent == "categorical":
            stoch = stoch.reshape(len(packed), rssm.stoch_size, rssm.classes)
        return RSSMState(deter, stoch, ())

    def score(self, packed: th.Tensor, action_sequences: th.Tensor, generator: th.Generator) -> th.Tensor:
        """Predicted returns ``(B, P)`` of candidate sequences from packed latent states."""
        return latent_returns(
            self.world_model,
            self._unpack(packed),
            action_sequences,
            discount=self.gamma,
            use_continuation=self.use_continuation,
            sample=self.sample_latents,
            generator=generator,
        )

    def initial_state(self, batch_size: int) -> LatentMPCState:
        """The carried state of ``batch_size`` fresh episodes."""
        latent = self.world_model.initial_state(batch_size)
        action_size = self.action_space.shape[0] if isinstance(self.action_space, spaces.Box) else 1
        return (
            latent.deter.cpu().numpy(),
            latent.stoch.cpu().numpy(),
            np.zeros((batch_size, action_size), dtype=np.float32),
            # A placeholder: a fresh state always comes with episode_start, which plans cold.
            self.planner.initial_plan(batch_size, th.Generator().manual_seed(0)).cpu().numpy(),
        )

    # ------------------------------------------------------------------ acting
    @th.no_grad()
    def act(
        self,
        obs: th.Tensor,
        state: LatentMPCState | None,
        episode_start: np.ndarray | None,
        deterministic: bool,
        generator: th.Generator | None = None,
    ) -> tuple[th.Tensor, PlanResult, LatentMPCState]:
        """
        Filter ``obs (B, ...)`` into the posterior (its mode) and plan from it.

        :return: the actions in the model's units ``(B, A)`` (Box, in ``[-1, 1]``) or ``(B,)``
            (Discrete), the plan, and the next carried state (which records these actions).
        """
        generator = self.generator if generator is None else generator
        batch = obs.shape[0]
        if state is None:
            state, episode_start = self.initial_state(batch), np.ones(batch, dtype=bool)
        deter, stoch, prev_action, plan = state
        if len(deter) != batch:
            raise ValueError(f"state holds {len(deter)} latent states, got {batch} observations")
        starts = (
            np.zeros(batch, dtype=bool) if episode_start is None else np.asarray(episode_start, dtype=bool)
        )
        starts = starts.reshape(batch)
        wm = self.world_model
        latent = RSSMState(
            th.as_tensor(deter, device=self.device),
            th.as_tensor(stoch, device=self.device),
            wm.initial_state(batch).stats,
        )
        posterior, _ = wm.observe_step(
            latent,
            self._model_actions(prev_action),
            obs,
            th.as_tensor(starts, device=self.device),
            sample=False,
        )
        warm = th.as_tensor(plan, device=self.device)
        if starts.any():
            cold = self.planner.initial_plan(batch, generator).to(warm.dtype)
            reset = th.as_tensor(starts, device=self.device).view(-1, *([1] * (warm.dim() - 1)))
            warm = th.where(reset, cold, warm)
        result = self.planner.plan(
            self._pack(posterior), lambda packed, seqs: self.score(packed, seqs, generator), warm, generator
        )
        action = result.action
        if not deterministic and result.action_std is not None:
            # A sample of the final CEM distribution, inside the model's action box.
            noise = th.randn(action.shape, device=self.device, generator=generator)
            action = (action + result.action_std * noise).clamp(-1.0, 1.0)
        next_state = (
            posterior.deter.cpu().numpy(),
            posterior.stoch.cpu().numpy(),
            action.reshape(batch, -1).float().cpu().numpy(),
            self.planner.shift(result.plan, generator).cpu().numpy(),
        )
        return action, result, next_state

    def _model_actions(self, actions: np.ndarray) -> th.Tensor:
        """Carried actions as the world model takes them (Discrete: ``(B, 1)`` indices, which
        ``action_vector`` one-hot encodes for any ``B``; ``(B,)`` would read as one index when
        ``B == 1``)."""
        tensor = th.as_tensor(actions, device=self.device)
        if isinstance(self.action_space, spaces.Discrete):
            return tensor.reshape(-1, 1).long()
        return tensor

    def _generator_for(self, deterministic: bool) -> th.Generator:
        if deterministic:
            return th.Generator(device=self.device).manual_seed(DETERMINISTIC_PLANNING_SEED)
        return self.generator

    def env_actions(self, model_actions: th.Tensor) -> np.ndarray:
        """Actions in the model's units -> the env's (Box unscaled from ``[-1, 1]``), ``(B, ...)``."""
        actions = model_actions.cpu().numpy()
        if isinstance(self.action_space, spaces.Box):
            actions = actions.reshape((-1, *self.action_space.shape))
            return np.clip(self.unscale_action(actions), self.action_space.low, self.action_space.high)
        return actions.reshape(-1).astype(np.int64)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        # Without a carried state every call starts a fresh episode.
        action, _, _ = self.act(observation, None, None, deterministic, self._generator_for(deterministic))
        return th.as_tensor(self.env_actions(action))

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        Plan actions for one observation or a batch.

        :param observation: the observation(s).
        :param state: the state returned by the previous call (``None``: new episodes).
        :param episode_start: per-observation flags; true rows start a new episode.
        :param deterministic: the CEM mean (random shooting: the best sequence's first action),
            planned with a fixed random seed, so identical inputs give identical actions; else the
            running generator and, for Box actions, a sample of the final CEM distribution.
        :return: the action(s) and the state to pass to the next call.
        """
        self.set_training_mode(False)
        if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
            raise ValueError("predict() got an (obs, info) tuple: pass the observation only")
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        action, _, next_state = self.act(
            obs_tensor, state, episode_start, deterministic, self._generator_for(deterministic)
        )
        actions = self.env_actions(action)
        if not vectorized_env:
            actions = actions.squeeze(axis=0)
        return actions, next_state


MlpPolicy = LatentMPCPolicy
CnnPolicy = LatentMPCPolicy
