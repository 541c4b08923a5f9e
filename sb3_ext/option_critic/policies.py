"""Policies for :class:`~sb3_ext.option_critic.OptionCritic`: one network with shared features
and three heads (option values, terminations, intra-option policies), plus its target copy."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from gym_advrl.utils.validation import check_float, check_int

# Index of features_extractor_class among OptionCriticPolicy's positional parameters.
_FEATURES_EXTRACTOR_INDEX = 7


def _batch_size(obs: PyTorchObs) -> int:
    return len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)


class OptionCriticOutput(NamedTuple):
    """Heads of :class:`OptionCriticNetwork` for a batch of ``B`` observations."""

    #: Option values Q_Omega(s, w), shape ``(B, n_options)``.
    q_values: th.Tensor
    #: Termination probabilities beta_w(s), shape ``(B, n_options)``.
    termination_probs: th.Tensor
    #: Intra-option policy logits of pi_w(a | s), shape ``(B, n_options, n_actions)``.
    action_logits: th.Tensor


class OptionCriticNetwork(BaseModel):
    """
    Shared features phi(s) (features extractor + MLP ``net_arch``) feeding three linear heads:
    option values Q_Omega(s, .), sigmoid terminations beta_.(s) and softmax intra-option
    policies pi_.(. | s), as in Bacon, Harb & Precup (2017), section 5.

    :param observation_space: observation space
    :param action_space: action space (``Discrete``)
    :param features_extractor: the features extractor
    :param features_dim: number of features it outputs
    :param n_options: number of options
    :param net_arch: hidden layer sizes of the shared MLP after the features extractor
    :param activation_fn: activation function of the MLP
    :param fixed_termination_prob: if not None, every option terminates with this constant
        probability in every state and no termination head is learned (0.0: options never
        terminate, 1.0: a new option every step)
    :param normalize_images: whether to divide image observations by 255
    """

    action_space: spaces.Discrete

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        n_options: int,
        net_arch: list[int],
        activation_fn: type[nn.Module] = nn.ReLU,
        fixed_termination_prob: float | None = None,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
        )
        self.features_dim, self.n_options = features_dim, n_options
        self.net_arch, self.activation_fn = net_arch, activation_fn
        self.fixed_termination_prob = fixed_termination_prob
        self.n_actions = int(action_space.n)
        self.body = nn.Sequential(*create_mlp(features_dim, -1, net_arch, activation_fn))
        latent_dim = net_arch[-1] if net_arch else features_dim
        self.q_head = nn.Linear(latent_dim, n_options)
        self.termination_head = nn.Linear(latent_dim, n_options) if fixed_termination_prob is None else None
        self.policy_head = nn.Linear(latent_dim, n_options * self.n_actions)

    def forward(self, obs: PyTorchObs) -> OptionCriticOutput:
        latent = self.body(self.extract_features(obs, self.features_extractor))
        if self.termination_head is None:
            termination_probs = th.full(
                (latent.shape[0], self.n_options), float(self.fixed_termination_prob), device=latent.device
            )
        else:
            termination_probs = th.sigmoid(self.termination_head(latent))
        logits = self.policy_head(latent).view(-1, self.n_options, self.n_actions)
        return OptionCriticOutput(self.q_head(latent), termination_probs, logits)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            features_extractor=self.features_extractor,
            features_dim=self.features_dim,
            n_options=self.n_options,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            fixed_termination_prob=self.fixed_termination_prob,
        )
        return data


class OptionActing(NamedTuple):
    """Result of :meth:`OptionCriticPolicy.act` for a batch of environments."""

    actions: th.Tensor  #: primitive actions a ~ pi_w(. | s)
    options: th.Tensor  #: options in force after this step's termination / selection
    new_option: th.Tensor  #: bool, a new option was selected in this state
    termination_probs: th.Tensor  #: beta of the previous option in this state


class OptionCriticPolicy(BasePolicy):
    """
    Option-critic policy: an :class:`OptionCriticNetwork` and its target copy (used for the
    bootstrapped option values), with one optimizer over the online network.

    The policy is stateful like sb3-contrib's recurrent policies: :meth:`predict` takes and
    returns ``state = (options,)``, the option in force in each environment (an int64 array of
    shape ``(n_envs,)``), and selects a new option where ``episode_start`` is True or where
    ``state`` is None. With ``deterministic=True`` the option with the largest Q_Omega is
    selected, an option terminates when beta > 0.5 and the action is the mode of pi_w;
    otherwise the termination is sampled, options are selected epsilon-greedily and actions
    are sampled from pi_w.

    :param observation_space: observation space
    :param action_space: action space (``Discrete``)
    :param lr_schedule: learning rate schedule (``lr_schedule(1)`` is the initial rate)
    :param n_options: number of options
    :param net_arch: hidden layer sizes of the shared MLP (default ``[64, 64]``, ``[]`` after
        a CNN features extractor)
    :param activation_fn: activation function
    :param fixed_termination_prob: constant termination probability instead of learned
        terminations (None: learned, the default)
    :param features_extractor_class: features extractor class (one-hot for ``Discrete``
        observations through SB3's ``preprocess_obs``)
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: whether to divide image observations by 255
    :param optimizer_class: optimizer class (``th.optim.Adam`` by default)
    :param optimizer_kwargs: keyword arguments of the optimizer, excluding the learning rate
    """

    action_space: spaces.Discrete
    net: OptionCriticNetwork
    net_target: OptionCriticNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_options: int = 4,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        fixed_termination_prob: float | None = None,
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
            raise ValueError(f"OptionCriticPolicy supports only a Discrete action space, got {action_space}")
        if net_arch is None:
            net_arch = [] if features_extractor_class == NatureCNN else [64, 64]
        if fixed_termination_prob is not None:
            fixed_termination_prob = check_float("fixed_termination_prob", fixed_termination_prob, 0.0, 1.0)
        self.n_options = check_int("n_options", n_options, 1)
        self.net_arch, self.activation_fn = list(net_arch), activation_fn
        self.fixed_termination_prob = fixed_termination_prob
        self.net_args = dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            n_options=self.n_options,
            net_arch=self.net_arch,
            activation_fn=activation_fn,
            fixed_termination_prob=fixed_termination_prob,
            normalize_images=normalize_images,
        )
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.net = self.make_network()
        self.net_target = self.make_network()
        self.net_target.load_state_dict(self.net.state_dict())
        self.net_target.set_training_mode(False)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.net.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def make_network(self) -> OptionCriticNetwork:
        """A fresh network with its own features extractor."""
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return OptionCriticNetwork(**net_args).to(self.device)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def act(
        self,
        obs: PyTorchObs,
        options: th.Tensor,
        episode_start: th.Tensor,
        deterministic: bool = False,
        epsilon: float = 0.0,
    ) -> OptionActing:
        """
        One step of call-and-return execution for a batch of environments: the previous option
        terminates with probability beta_w(s) (or when beta > 0.5 if ``deterministic``), a new
        option is selected epsilon-greedily on Q_Omega(s, .) where it terminated or an episode
        starts, and the action is drawn from its intra-option policy.

        :param obs: observations (already a tensor)
        :param options: previous options, int64 of shape ``(B,)``
        :param episode_start: bool of shape ``(B,)``, True where a new episode starts
        :param deterministic: greedy option selection, thresholded terminations, modal actions
        :param epsilon: probability of a uniformly random option at selection (stochastic mode)
        """
        out = self.net(obs)
        rows = th.arange(len(options), device=options.device)
        beta = out.termination_probs[rows, options]
        terminated = beta > 0.5 if deterministic else th.rand_like(beta) < beta
        new_option = episode_start | terminated
        chosen = out.q_values.argmax(dim=1)
        if not deterministic and epsilon > 0.0:
            explore = th.rand(len(options), device=options.device) < epsilon
            random_options = th.randint(self.n_options, (len(options),), device=options.device)
            chosen = th.where(explore, random_options, chosen)
        options = th.where(new_option, chosen, options)
        logits = out.action_logits[rows, options]
        if deterministic:
            actions = logits.argmax(dim=1)
        else:
            actions = th.distributions.Categorical(logits=logits).sample()
        return OptionActing(actions, options, new_option, beta)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """Stateless action: a new option is selected in every observation."""
        batch = _batch_size(observation)
        options = th.zeros(batch, dtype=th.long, device=self.device)
        starts = th.ones(batch, dtype=th.bool, device=self.device)
        return self.act(observation, options, starts, deterministic).actions

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        option_epsilon: float = 0.0,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        Action and option state for an observation (or a batch of them, one per environment).

        :param observation: the observation(s)
        :param state: ``(options,)`` as returned by the previous call, or None at the start
        :param episode_start: bool per environment, True where the option must be reset
        :param deterministic: greedy options, thresholded terminations and modal actions
        :param option_epsilon: epsilon of the option selection when not ``deterministic``
        :return: the action(s) and the new state ``(options,)``
        """
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        n_envs = _batch_size(obs_tensor)
        if state is None:
            options = np.zeros(n_envs, dtype=np.int64)
            episode_start = np.ones(n_envs, dtype=bool)
        else:
            options = np.asarray(state[0], dtype=np.int64).reshape(-1)
            if len(options) != n_envs or options.min() < 0 or options.max() >= self.n_options:
                raise ValueError(
                    f"state must be (options,) with {n_envs} option indices in [0, {self.n_options - 1}], "
                    f"got {state[0]!r}"
                )
        starts = (
            np.zeros(n_envs, dtype=bool) if episode_start is None else np.asarray(episode_start, dtype=bool)
        )
        with th.no_grad():
            acting = self.act(
                obs_tensor,
                th.as_tensor(options, device=self.device),
                th.as_tensor(starts.reshape(-1), device=self.device),
                deterministic=deterministic,
                epsilon=option_epsilon,
            )
        actions = acting.actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        if not vectorized_env:
            actions = actions.squeeze(axis=0)
        return actions, (acting.options.cpu().numpy(),)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            n_options=self.n_options,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            fixed_termination_prob=self.fixed_termination_prob,
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
        )
        return data

    def set_training_mode(self, mode: bool) -> None:
        self.net.set_training_mode(mode)
        self.training = mode


MlpPolicy = OptionCriticPolicy


class CnnPolicy(OptionCriticPolicy):
    """:class:`OptionCriticPolicy` with SB3's ``NatureCNN`` features extractor (image
    observations): the same parameters in the same order, only the default of
    ``features_extractor_class`` differs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # features_extractor_class is the eighth parameter: default it only where it is not
        # given, by position or by name.
        if len(args) <= _FEATURES_EXTRACTOR_INDEX:
            kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)
