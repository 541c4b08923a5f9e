"""Policies for :class:`~sb3_ext.feudal.FeudalAgent`: the FeUdal network of Vezhnevets et al. (2017),
a shared perceptual module feeding a Manager (latent space, goal directions, value) and a Worker
(action embeddings U, value) whose policy is softmax(U w) with w a projection of the recent goals."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F

from sb3_ext.common.validation import check_int


class FeudalState(NamedTuple):
    """Recurrent state of a batch of ``B`` environments (tensors, or numpy arrays in :meth:`FeudalPolicy.predict`)."""

    manager_hidden: th.Tensor  #: h of the Manager's LSTM, ``(B, manager_hidden_size)``
    manager_cell: th.Tensor  #: c of the Manager's LSTM
    worker_hidden: th.Tensor  #: h of the Worker's LSTM, ``(B, worker_hidden_size)``
    worker_cell: th.Tensor  #: c of the Worker's LSTM
    goals: th.Tensor  #: the last ``c`` goals, oldest first, ``(B, c, latent_dim)`` (zeros before the episode)


class FeudalStep(NamedTuple):
    """One step of :meth:`FeudalPolicy.step` for a batch of environments."""

    actions: th.Tensor  #: a_t ~ softmax(U_t w_t) (its mode if deterministic)
    action_logits: th.Tensor  #: U_t w_t, ``(B, n_actions)``
    goals: th.Tensor  #: g_t acted with (unit vectors; random ones where the Manager explored)
    latents: th.Tensor  #: s_t = f_Mspace(z_t)
    manager_values: th.Tensor  #: V^M(x_t)
    worker_values: th.Tensor  #: V^D(x_t)
    state: FeudalState  #: the state after this step


class FeudalSequence(NamedTuple):
    """:meth:`FeudalPolicy.evaluate_sequence` over ``T`` steps of ``E`` environments (time-major)."""

    latents: th.Tensor  #: s_t, ``(T, E, latent_dim)``
    goals: th.Tensor  #: the Manager's goals g_t(theta) (no exploration), ``(T, E, latent_dim)``
    manager_values: th.Tensor  #: V^M, ``(T, E)``
    worker_values: th.Tensor  #: V^D, ``(T, E)``
    worker_hidden: th.Tensor  #: the Worker's LSTM output, ``(T, E, worker_hidden_size)``
    final_latents: th.Tensor | None  #: latents of the ``final_observations`` (detached), if given


def unit_vectors(vectors: th.Tensor) -> th.Tensor:
    """Directions of ``vectors`` along the last axis (a zero vector stays zero)."""
    return F.normalize(vectors, dim=-1, eps=1e-8)


class FeudalPolicy(BasePolicy):
    """
    The FeUdal network (Vezhnevets et al. 2017, section 3), with plain LSTM cells for the Manager
    and the Worker (the paper's Manager uses a dilated LSTM):

    * perception ``z_t = f_percept(x_t)``: the features extractor and the MLP ``net_arch``;
    * Manager: ``s_t = f_Mspace(z_t)`` (a linear layer and the activation), an LSTM over s_t whose
      output gives the goal ``g_t = ghat_t / ||ghat_t||`` (a linear layer, then the unit
      direction) and the value ``V^M``;
    * Worker: an LSTM over z_t whose output gives the action embeddings ``U_t`` (an
      ``n_actions x goal_embedding_dim`` matrix) and the value ``V^D``; ``w_t = phi(sum of the
      last c goals)`` with ``phi`` linear and bias-free, applied to goals detached from the
      graph (no gradient flows from the Worker into the goals); ``pi(. | x_t) = softmax(U_t w_t)``.

    The policy is stateful like sb3-contrib's recurrent policies: :meth:`predict` takes and returns
    ``state = (manager_hidden, manager_cell, worker_hidden, worker_cell, goals)`` (numpy arrays,
    one row per environment; ``goals`` holds the last ``c`` goals), reset to zeros where
    ``episode_start`` is True or when ``state`` is None.

    :param observation_space: observation space (not a ``Dict``)
    :param action_space: action space (``Discrete``)
    :param lr_schedule: learning rate schedule (``lr_schedule(1)`` is the initial rate)
    :param c: the Manager's horizon: number of recent goals summed into the Worker's goal embedding
    :param net_arch: hidden layer sizes of the perception MLP after the features extractor
        (default ``[64]``, ``[]`` after a CNN)
    :param activation_fn: activation function of the perception MLP and of f_Mspace
    :param latent_dim: d, the dimension of the Manager's latent states s_t and goals g_t
    :param goal_embedding_dim: k, the dimension of the goal embedding w_t (columns of U_t)
    :param manager_hidden_size: size of the Manager's LSTM
    :param worker_hidden_size: size of the Worker's LSTM
    :param features_extractor_class: features extractor class (``Discrete`` observations are
        one-hot encoded by SB3's ``preprocess_obs``)
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: whether to divide image observations by 255
    :param optimizer_class: optimizer class (``th.optim.Adam`` by default)
    :param optimizer_kwargs: keyword arguments of the optimizer, excluding the learning rate
    """

    action_space: spaces.Discrete

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        *,
        c: int = 10,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        latent_dim: int = 64,
        goal_embedding_dim: int = 16,
        manager_hidden_size: int = 64,
        worker_hidden_size: int = 64,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=normalize_images,
        )
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"FeudalPolicy supports only a Discrete action space, got {action_space}")
        if net_arch is None:
            net_arch = [] if features_extractor_class == NatureCNN else [64]
        self.c = check_int("c", c, 1)
        self.net_arch, self.activation_fn = list(net_arch), activation_fn
        self.latent_dim = check_int("latent_dim", latent_dim, 1)
        self.goal_embedding_dim = check_int("goal_embedding_dim", goal_embedding_dim, 1)
        self.manager_hidden_size = check_int("manager_hidden_size", manager_hidden_size, 1)
        self.worker_hidden_size = check_int("worker_hidden_size", worker_hidden_size, 1)
        self.n_actions = int(action_space.n)
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.features_extractor = self.make_features_extractor()
        features_dim = self.features_extractor.features_dim
        self.perception = nn.Sequential(*create_mlp(features_dim, -1, self.net_arch, self.activation_fn))
        z_dim = self.net_arch[-1] if self.net_arch else features_dim
        # Manager: f_Mspace, its recurrent core, the goal and the value heads.
        self.manager_space = nn.Sequential(nn.Linear(z_dim, self.latent_dim), self.activation_fn())
        self.manager_rnn = nn.LSTMCell(self.latent_dim, self.manager_hidden_size)
        self.goal_head = nn.Linear(self.manager_hidden_size, self.latent_dim)
        self.manager_value_head = nn.Linear(self.manager_hidden_size, 1)
        # Worker: its recurrent core, U (n_actions x k), the value head, and phi (linear, no bias).
        self.worker_rnn = nn.LSTMCell(z_dim, self.worker_hidden_size)
        self.worker_head = nn.Linear(self.worker_hidden_size, self.n_actions * self.goal_embedding_dim)
        self.worker_value_head = nn.Linear(self.worker_hidden_size, 1)
        self.phi = nn.Linear(self.latent_dim, self.goal_embedding_dim, bias=False)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    # ------------------------------------------------------------------ building blocks
    def perceive(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """``(z, s)``: the shared perception z = f_percept(x) and the Manager's latent s = f_Mspace(z)."""
        z = self.perception(self.extract_features(obs, self.features_extractor))
        return z, self.manager_space(z)

    def latents(self, obs: PyTorchObs) -> th.Tensor:
        """The Manager's latent states s = f_Mspace(f_percept(x)) (they depend on x alone)."""
        return self.perceive(obs)[1]

    def goal_directions(self, manager_hidden: th.Tensor) -> th.Tensor:
        """The Manager's goals g = ghat / ||ghat|| from its LSTM output."""
        return unit_vectors(self.goal_head(manager_hidden))

    def action_logits(self, worker_hidden: th.Tensor, goal_sum: th.Tensor) -> th.Tensor:
        """
        Worker logits U w with ``U`` from the Worker's LSTM output (``(..., hidden)``) and
        ``w = phi(goal_sum)``; ``goal_sum`` (``(..., latent_dim)``) is detached, so no gradient
        reaches the goals from here.
        """
        batch_shape = worker_hidden.shape[:-1]
        embeddings = self.worker_head(worker_hidden).view(
            *batch_shape, self.n_actions, self.goal_embedding_dim
        )
        w = self.phi(goal_sum.detach())
        return (embeddings @ w.unsqueeze(-1)).squeeze(-1)

    def initial_state(self, n_envs: int) -> FeudalState:
        """Zero LSTM states and an empty (zero) goal history for ``n_envs`` environments."""
        return FeudalState(
            th.zeros(n_envs, self.manager_hidden_size, device=self.device),
            th.zeros(n_envs, self.manager_hidden_size, device=self.device),
            th.zeros(n_envs, self.worker_hidden_size, device=self.device),
            th.zeros(n_envs, self.worker_hidden_size, device=self.device),
            th.zeros(n_envs, self.c, self.latent_dim, device=self.device),
        )

    @staticmethod
    def reset_state(state: FeudalState, episode_start: th.Tensor) -> FeudalState:
        """``state`` with the rows where ``episode_start`` is True set to zero."""
        keep = (~episode_start.bool()).float()
        return FeudalState(
            *(part * keep.view(-1, *([1] * (part.dim() - 1))) for part in state)  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ acting
    def step(
        self,
        obs: PyTorchObs,
        state: FeudalState,
        episode_start: th.Tensor,
        deterministic: bool = False,
        goal_epsilon: float = 0.0,
    ) -> FeudalStep:
        """
        One step of the Manager and the Worker for a batch of environments.

        :param obs: observations (already a tensor)
        :param state: the state before this step (reset here where ``episode_start``)
        :param episode_start: bool of shape ``(B,)``, True where a new episode starts
        :param deterministic: no goal exploration, and the most likely action
        :param goal_epsilon: probability that the Manager's goal is replaced by a random unit
            vector (Manager exploration; ignored if ``deterministic``)
        """
        manager_hidden, manager_cell, worker_hidden, worker_cell, history = self.reset_state(
            state, episode_start
        )
        z, latents = self.perceive(obs)
        manager_hidden, manager_cell = self.manager_rnn(latents, (manager_hidden, manager_cell))
        goals = self.goal_directions(manager_hidden)
        if not deterministic and goal_epsilon > 0.0:
            explore = th.rand(len(goals), device=goals.device) < goal_epsilon
            random_goals = unit_vectors(th.randn_like(goals))
            goals = th.where(explore.unsqueeze(1), random_goals, goals)
        history = th.cat([history[:, 1:], goals.unsqueeze(1)], dim=1)
        worker_hidden, worker_cell = self.worker_rnn(z, (worker_hidden, worker_cell))
        logits = self.action_logits(worker_hidden, history.sum(dim=1))
        if deterministic:
            actions = logits.argmax(dim=1)
        else:
            actions = th.distributions.Categorical(logits=logits).sample()
        return FeudalStep(
            actions,
            logits,
            goals,
            latents,
            self.manager_value_head(manager_hidden).squeeze(-1),
            self.worker_value_head(worker_hidden).squeeze(-1),
            FeudalState(manager_hidden, manager_cell, worker_hidden, worker_cell, history),
        )

    def evaluate_sequence(
        self,
        observations: th.Tensor,
        episode_starts: th.Tensor,
        state: FeudalState,
        final_observations: th.Tensor | None = None,
    ) -> FeudalSequence:
        """
        Run both LSTMs over ``T`` steps of ``E`` environments from ``state``, resetting where an
        episode starts, as :meth:`step` does (with the Manager's own goals, no exploration).

        :param observations: ``(T, E, *obs_shape)``
        :param episode_starts: ``(T, E)``, 1 where the observation starts an episode
        :param state: the state before the first step (its goal history is not used)
        :param final_observations: more observations ``(T', E, *obs_shape)`` whose latents are
            wanted (without gradient); they go through the perception in the same batch as
            ``observations``, so that equal observations get bitwise equal latents and a step
            that leaves the observation unchanged has a latent move of exactly zero
        """
        steps, n_envs = episode_starts.shape
        obs_shape = observations.shape[2:]
        batch = observations.reshape(steps * n_envs, *obs_shape)
        if final_observations is not None:
            batch = th.cat([batch, final_observations.reshape(-1, *obs_shape)])
        z, latents = self.perceive(batch)
        final_latents = None
        if final_observations is not None:
            final_latents = latents[steps * n_envs :].detach().view(-1, n_envs, self.latent_dim)
        z = z[: steps * n_envs].view(steps, n_envs, -1)
        latents = latents[: steps * n_envs].view(steps, n_envs, -1)
        manager_hidden, manager_cell, worker_hidden, worker_cell, _ = state
        manager_outputs, worker_outputs = [], []
        for t in range(steps):
            keep = (1.0 - episode_starts[t].float()).unsqueeze(1)
            manager_hidden, manager_cell = self.manager_rnn(
                latents[t], (manager_hidden * keep, manager_cell * keep)
            )
            worker_hidden, worker_cell = self.worker_rnn(z[t], (worker_hidden * keep, worker_cell * keep))
            manager_outputs.append(manager_hidden)
            worker_outputs.append(worker_hidden)
        manager_out, worker_out = th.stack(manager_outputs), th.stack(worker_outputs)
        return FeudalSequence(
            latents,
            self.goal_directions(manager_out),
            self.manager_value_head(manager_out).squeeze(-1),
            self.worker_value_head(worker_out).squeeze(-1),
            worker_out,
            final_latents,
        )

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """Stateless action: every observation starts an episode."""
        batch = len(observation)  # type: ignore[arg-type]
        starts = th.ones(batch, dtype=th.bool, device=self.device)
        return self.step(observation, self.initial_state(batch), starts, deterministic).actions

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        goal_epsilon: float = 0.0,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        Action(s) and recurrent state for an observation (or a batch of them, one per environment).

        :param observation: the observation(s)
        :param state: ``(manager_hidden, manager_cell, worker_hidden, worker_cell, goals)`` as
            returned by the previous call, or None at the start
        :param episode_start: bool per environment, True where the state must be reset
        :param deterministic: no goal exploration, and the most likely action
        :param goal_epsilon: the Manager's exploration rate when not ``deterministic``
        :return: the action(s) and the new state
        """
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        n_envs = len(obs_tensor)  # type: ignore[arg-type]
        if state is None:
            torch_state = self.initial_state(n_envs)
            episode_start = np.ones(n_envs, dtype=bool)
        else:
            expected = self.initial_state(n_envs)
            if len(state) != len(expected) or any(
                np.shape(part) != tuple(ref.shape) for part, ref in zip(state, expected, strict=False)
            ):
                shapes = [tuple(ref.shape) for ref in expected]
                raise ValueError(
                    "state must be (manager_hidden, manager_cell, worker_hidden, worker_cell, goals) "
                    f"with shapes {shapes}, got shapes {[np.shape(part) for part in state]}"
                )
            torch_state = FeudalState(
                *(th.as_tensor(np.asarray(part), dtype=th.float32, device=self.device) for part in state)
            )
        starts = (
            np.zeros(n_envs, dtype=bool) if episode_start is None else np.asarray(episode_start, dtype=bool)
        )
        with th.no_grad():
            step = self.step(
                obs_tensor,
                torch_state,
                th.as_tensor(starts.reshape(-1), device=self.device),
                deterministic=deterministic,
                goal_epsilon=goal_epsilon,
            )
        actions = step.actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        if not vectorized_env:
            actions = actions.squeeze(axis=0)
        return actions, tuple(part.cpu().numpy() for part in step.state)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            c=self.c,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            latent_dim=self.latent_dim,
            goal_embedding_dim=self.goal_embedding_dim,
            manager_hidden_size=self.manager_hidden_size,
            worker_hidden_size=self.worker_hidden_size,
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
        )
        return data


MlpPolicy = FeudalPolicy


class CnnPolicy(FeudalPolicy):
    """:class:`FeudalPolicy` with SB3's ``NatureCNN`` features extractor (image observations) by default."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
