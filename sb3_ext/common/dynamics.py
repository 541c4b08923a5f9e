"""Probabilistic ensemble dynamics model (PETS, Chua et al. 2018), shared by WorldModelMPC and Dyna.

Each ensemble member is an MLP that maps a normalized ``(observation, encoded action)`` input to a
diagonal Gaussian over the normalized targets ``[next_obs - obs, reward]`` and, optionally, a
Bernoulli logit for termination. All members are evaluated at once with batched matrix products
(``BatchedLinear``), so a forward pass takes inputs of shape ``(n_members, batch, features)``.

The predicted log-variance is softly bounded by learned ``max_logvar`` / ``min_logvar`` (PETS,
appendix A.1): ``logvar = max - softplus(max - raw)``, ``logvar = min + softplus(logvar - min)``,
with a small penalty ``logvar_loss_coef * (sum(max_logvar) - sum(min_logvar))`` that keeps the
bounds tight. Members are trained on their own bootstrap resamples of the data, and the
``n_elites`` members with the lowest hold-out error are used for sampling.

Typical use::

    model = ProbabilisticEnsemble(env.observation_space, env.action_space)
    stats = model.fit(obs, actions, next_obs, rewards, terminations)   # numpy or torch, batch-first
    next_obs, reward, terminated = model.sample(obs_batch, action_batch)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from sb3_ext.common.validation import check_holdout_ratio, check_positive_int, check_unit_interval

ArrayLike = np.ndarray | th.Tensor


class BatchedLinear(nn.Module):
    """``n_members`` independent linear layers applied to ``x`` of shape ``(n_members, batch, in)``."""

    def __init__(self, n_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.n_members, self.in_features, self.out_features = n_members, in_features, out_features
        self.weight = nn.Parameter(th.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(th.zeros(n_members, 1, out_features))
        # Truncated normal with std 1 / (2 sqrt(fan_in)), the initialization of the PETS code.
        nn.init.trunc_normal_(self.weight, std=1.0 / (2.0 * math.sqrt(in_features)))

    def forward(self, x: th.Tensor) -> th.Tensor:
        return th.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"n_members={self.n_members}, in_features={self.in_features}, out_features={self.out_features}"


class EnsemblePrediction(NamedTuple):
    """Per-member predictions in environment units; leading dims ``(n_members, batch)``."""

    delta_mean: th.Tensor  #: mean of ``next_obs - obs``, ``(E, N, obs_dim)``
    delta_var: th.Tensor  #: aleatoric variance of the delta, ``(E, N, obs_dim)``
    reward_mean: th.Tensor | None  #: ``(E, N)``, ``None`` without a reward head
    reward_var: th.Tensor | None  #: ``(E, N)``
    termination_prob: th.Tensor | None  #: ``(E, N)``, ``None`` without a termination head


class ProbabilisticEnsemble(nn.Module):
    """
    Bootstrapped ensemble of probabilistic MLPs predicting state deltas, rewards and terminations.

    :param observation_space: flat ``Box`` observation space.
    :param action_space: ``Box`` (actions used raw) or ``Discrete`` (one-hot encoded).
    :param n_members: number of ensemble members (bootstrap models).
    :param n_elites: members with the lowest hold-out error used by :meth:`sample`
        (default: all members).
    :param hidden_sizes: hidden layer widths of every member.
    :param activation_fn: activation class between hidden layers.
    :param learn_reward: predict the reward as an extra Gaussian output.
    :param learn_termination: predict termination with a Bernoulli (logit) head.
    :param learning_rate: Adam learning rate used by :meth:`train_step` / :meth:`fit`.
    :param weight_decay: L2 weight decay on the network weights (not on the log-variance bounds).
    :param logvar_loss_coef: weight of the penalty on the learned log-variance bounds.
    :param nll_beta: beta-NLL exponent in [0, 1] (Seitzer et al. 2022): each NLL term is weighted
        by the detached predicted variance to the power ``beta``, so that rare, poorly fitted
        targets (sparse rewards) still pull the mean instead of being explained away as noise.
        0 (default) is the plain Gaussian NLL; 1 gives the mean the gradient of the MSE.
    :param device: torch device.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        n_members: int = 5,
        n_elites: int | None = None,
        hidden_sizes: Sequence[int] = (200, 200, 200),
        activation_fn: type[nn.Module] = nn.SiLU,
        learn_reward: bool = True,
        learn_termination: bool = True,
        learning_rate: float = 1e-3,
        weight_decay: float = 5e-5,
        logvar_loss_coef: float = 0.01,
        device: th.device | str = "cpu",
        nll_beta: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(
                f"observation_space must be a flat gymnasium.spaces.Box, got {observation_space}"
            )
        if isinstance(action_space, spaces.Box):
            if len(action_space.shape) != 1:
                raise ValueError(
                    f"action_space must be a flat Box or Discrete, got shape {action_space.shape}"
                )
            self.action_dim = int(action_space.shape[0])
        elif isinstance(action_space, spaces.Discrete):
            self.action_dim = int(action_space.n)
        else:
            raise ValueError(
                f"action_space must be gymnasium.spaces.Box or Discrete, got {type(action_space).__name__}"
            )
        n_members = check_positive_int("n_members", n_members)
        n_elites = n_members if n_elites is None else check_positive_int("n_elites", n_elites)
        if n_elites > n_members:
            raise ValueError(f"n_elites must be in [1, n_members={n_members}], got {n_elites}")
        if len(hidden_sizes) == 0 or any(int(h) < 1 for h in hidden_sizes):
            raise ValueError(
                f"hidden_sizes must be a non-empty sequence of positive ints, got {hidden_sizes}"
            )
        self.observation_space, self.action_space = observation_space, action_space
        self.discrete_actions = isinstance(action_space, spaces.Discrete)
        self.obs_dim = int(observation_space.shape[0])
        self.n_members, self.n_elites = n_members, n_elites
        self.learn_reward, self.learn_termination = bool(learn_reward), bool(learn_termination)
        self.logvar_loss_coef = float(logvar_loss_coef)
        self.nll_beta = check_unit_interval("nll_beta", nll_beta)
        self.input_dim = self.obs_dim + self.action_dim
        self.gauss_dim = self.obs_dim + int(self.learn_reward)

        widths = [self.input_dim, *(int(h) for h in hidden_sizes)]
        self.hidden_layers = nn.ModuleList(
            BatchedLinear(self.n_members, w_in, w_out)
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.activation = activation_fn()
        self.head = BatchedLinear(
            self.n_members, widths[-1], 2 * self.gauss_dim + int(self.learn_termination)
        )
        # Bounds live in normalized-target units, where a unit Gaussian has logvar 0.
        self.max_logvar = nn.Parameter(th.full((self.gauss_dim,), 0.5))
        self.min_logvar = nn.Parameter(th.full((self.gauss_dim,), -10.0))

        for name, dim in (("input", self.input_dim), ("target", self.gauss_dim)):
            self.register_buffer(f"{name}_mean", th.zeros(dim))
            self.register_buffer(f"{name}_std", th.ones(dim))
        self.register_buffer("elite_indices", th.arange(self.n_elites))
        self.to(device)

        weights = [p for n, p in self.named_parameters() if n.endswith("weight")]
        others = [p for n, p in self.named_parameters() if not n.endswith("weight")]
        self.optimizer = th.optim.Adam(
            [{"params": weights, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}],
            lr=learning_rate,
        )

    @property
    def device(self) -> th.device:
        return self.max_logvar.device

    # ------------------------------------------------------------------ encoding
    def _tensor(self, x: ArrayLike, dtype: th.dtype = th.float32) -> th.Tensor:
        return th.as_tensor(x, dtype=dtype, device=self.device)

    def encode_actions(self, actions: ArrayLike, batch_shape: tuple[int, ...] | None = None) -> th.Tensor:
        """Box actions as float ``(..., action_dim)``; Discrete actions ``(...)`` or ``(..., 1)`` one-hot.

        :param batch_shape: the batch shape the actions belong to, if known (the observations'
            shape without the last dim): it settles whether a trailing dim of 1 is the batch's
            own (a minibatch of one) or the Discrete actions' column.
        """
        if self.discrete_actions:
            idx = self._tensor(actions, th.long) - int(self.action_space.start)
            if (
                idx.ndim > 0
                and idx.shape[-1] == 1
                and (batch_shape is None or tuple(idx.shape) != tuple(batch_shape))
            ):
                idx = idx[..., 0]
            return F.one_hot(idx.clamp(0, self.action_dim - 1), self.action_dim).float()
        actions = self._tensor(actions)
        if actions.shape[-1:] != (self.action_dim,):
            raise ValueError(
                f"actions must have trailing dim {self.action_dim}, got shape {tuple(actions.shape)}"
            )
        return actions

    def _batch_tensors(
        self,
        obs: ArrayLike,
        actions: ArrayLike,
        next_obs: ArrayLike,
        rewards: ArrayLike | None,
        terminations: ArrayLike | None,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor | None, th.Tensor | None]:
        """A batch of transitions as tensors on the model's device: float32, Discrete actions int64."""
        return (
            self._tensor(obs),
            self._tensor(actions, th.long if self.discrete_actions else th.float32),
            self._tensor(next_obs),
            None if rewards is None else self._tensor(rewards),
            None if terminations is None else self._tensor(terminations),
        )

    def _inputs(self, obs: th.Tensor, actions: ArrayLike) -> th.Tensor:
        if obs.shape[-1:] != (self.obs_dim,):
            raise ValueError(f"obs must have trailing dim {self.obs_dim}, got shape {tuple(obs.shape)}")
        return th.cat([obs, self.encode_actions(actions, obs.shape[:-1])], dim=-1)

    def _targets(self, obs: th.Tensor, next_obs: th.Tensor, rewards: th.Tensor | None) -> th.Tensor:
        delta = next_obs - obs
        if not self.learn_reward:
            return delta
        if rewards is None:
            raise ValueError("rewards are required when learn_reward=True")
        return th.cat([delta, rewards.reshape(*delta.shape[:-1], 1)], dim=-1)

    @staticmethod
    def _safe_std(x: th.Tensor) -> th.Tensor:
        std = x.std(dim=0) if x.shape[0] > 1 else th.ones_like(x[0])
        return th.where(std < 1e-6, th.ones_like(std), std)

    def set_normalization(
        self, obs: ArrayLike, actions: ArrayLike, next_obs: ArrayLike, rewards: ArrayLike | None = None
    ) -> None:
        """Set input and target mean/std from a data set (``fit`` calls this on all its data)."""
        obs_t, next_t = self._tensor(obs), self._tensor(next_obs)
        inputs = self._inputs(obs_t, actions)
        targets = self._targets(obs_t, next_t, None if rewards is None else self._tensor(rewards))
        self.input_mean.copy_(inputs.mean(0))
        self.input_std.copy_(self._safe_std(inputs))
        self.target_mean.copy_(targets.mean(0))
        self.target_std.copy_(self._safe_std(targets))

    # ------------------------------------------------------------------ model
    def forward(self, inputs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """
        Raw network outputs for normalized ``inputs`` of shape ``(n_members, batch, input_dim)``.

        :return: normalized Gaussian mean and bounded log-variance, each ``(E, N, gauss_dim)``,
            and the termination logit ``(E, N)`` (``None`` without a termination head).
        """
        # Layers applied functionally: this runs once per planning step, where call overhead shows.
        x = inputs
        for layer in self.hidden_layers:
            x = self.activation(th.baddbmm(layer.bias, x, layer.weight))
        out = th.baddbmm(self.head.bias, x, self.head.weight)
        mean, raw_logvar = out[..., : self.gauss_dim], out[..., self.gauss_dim : 2 * self.gauss_dim]
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw_logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        term_logit = out[..., -1] if self.learn_termination else None
        return mean, logvar, term_logit

    def _member_inputs(self, obs: th.Tensor, actions: ArrayLike) -> th.Tensor:
        """Normalized inputs shaped ``(E, N, input_dim)``; 2-D inputs are shared by all members."""
        inputs = (self._inputs(obs, actions) - self.input_mean) / self.input_std
        if inputs.ndim == 2:
            return inputs.unsqueeze(0).expand(self.n_members, -1, -1)
        if inputs.ndim != 3 or inputs.shape[0] != self.n_members:
            raise ValueError(
                f"obs must be (batch, {self.obs_dim}) or ({self.n_members}, batch, {self.obs_dim}), got {tuple(obs.shape)}"
            )
        return inputs

    def loss(
        self,
        obs: th.Tensor,
        actions: th.Tensor,
        next_obs: th.Tensor,
        rewards: th.Tensor | None = None,
        terminations: th.Tensor | None = None,
    ) -> tuple[th.Tensor, dict[str, float]]:
        """
        Training loss on a batch shaped ``(n_members, batch, ...)`` (or ``(batch, ...)``, shared).

        Gaussian negative log-likelihood of the normalized targets (up to a constant), plus binary
        cross-entropy of the termination head, plus the log-variance bound penalty.
        """
        inputs = self._member_inputs(obs, actions)
        targets = (self._targets(obs, next_obs, rewards) - self.target_mean) / self.target_std
        mean, logvar, term_logit = self(inputs)
        nll_terms = (mean - targets) ** 2 * th.exp(-logvar) + logvar
        if self.nll_beta > 0.0:
            nll_terms = nll_terms * th.exp(logvar).detach() ** self.nll_beta
        nll = 0.5 * nll_terms.mean()
        bound = self.logvar_loss_coef * (self.max_logvar.sum() - self.min_logvar.sum())
        total = nll + bound
        info = {"nll": nll.item(), "mse": F.mse_loss(mean, targets.expand_as(mean)).item()}
        if self.learn_termination:
            if terminations is None:
                raise ValueError("terminations are required when learn_termination=True")
            bce = F.binary_cross_entropy_with_logits(term_logit, terminations.float().expand_as(term_logit))
            total = total + bce
            info["termination_bce"] = bce.item()
        info["loss"] = total.item()
        return total, info

    def train_step(
        self,
        obs: ArrayLike,
        actions: ArrayLike,
        next_obs: ArrayLike,
        rewards: ArrayLike | None = None,
        terminations: ArrayLike | None = None,
    ) -> dict[str, float]:
        """One Adam step on a batch (see :meth:`loss` for shapes); returns the loss terms."""
        self.train()
        loss, info = self.loss(*self._batch_tensors(obs, actions, next_obs, rewards, terminations))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return info

    # ------------------------------------------------------------------ prediction
    @th.no_grad()
    def predict(self, obs: ArrayLike, actions: ArrayLike) -> EnsemblePrediction:
        """
        Predictions of every member in environment units.

        :param obs: ``(N, obs_dim)`` (every member sees the same rows) or ``(n_members, N, obs_dim)``
            (member ``e`` sees row block ``e``, as trajectory sampling needs).
        :param actions: matching actions (Discrete: integer indices).
        """
        mean, logvar, term_logit = self(self._member_inputs(self._tensor(obs), actions))
        mean = mean * self.target_std + self.target_mean
        var = th.exp(logvar) * self.target_std**2
        d = self.obs_dim
        return EnsemblePrediction(
            delta_mean=mean[..., :d],
            delta_var=var[..., :d],
            reward_mean=mean[..., d] if self.learn_reward else None,
            reward_var=var[..., d] if self.learn_reward else None,
            termination_prob=th.sigmoid(term_logit) if term_logit is not None else None,
        )

    @th.no_grad()
    def disagreement(self, obs: ArrayLike, actions: ArrayLike) -> th.Tensor:
        """
        Epistemic uncertainty about the next state: the standard deviation across the elite
        members of their predicted mean state delta, in units of the delta's standard deviation in
        the training data, averaged over the observation dimensions. It is near 0 where the members
        agree (state-action pairs like those they were fitted on) and grows away from the data. It
        is 0 with a single elite.

        :param obs: ``(N, obs_dim)`` observations.
        :param actions: ``N`` matching actions (Discrete: integer indices).
        :return: ``(N,)`` disagreement.
        """
        obs_t = self._tensor(obs)
        if obs_t.ndim != 2:
            raise ValueError(f"obs must have shape (N, {self.obs_dim}), got {tuple(obs_t.shape)}")
        deltas = self.predict(obs_t, actions).delta_mean[self.elite_indices]
        spread = deltas.std(dim=0, correction=0) / self.target_std[: self.obs_dim]
        return spread.mean(dim=-1)

    @th.no_grad()
    def sample(
        self,
        obs: ArrayLike,
        actions: ArrayLike,
        member_indices: ArrayLike | None = None,
        deterministic: bool = False,
        generator: th.Generator | None = None,
    ) -> tuple[th.Tensor, th.Tensor | None, th.Tensor | None]:
        """
        Sample next observations (and learned rewards / terminations) from the ensemble.

        :param obs: ``(N, obs_dim)``: each row uses one member, ``member_indices[i]`` or a random
            elite (TS-1); ``(n_members, N, obs_dim)``: block ``e`` is propagated by member ``e``
            (TS-infinity particles, as in the planner).
        :param actions: matching actions.
        :param member_indices: ``(N,)`` members for 2-D inputs (default: uniform over elites).
        :param deterministic: return the predicted mean instead of a Gaussian sample.
        :param generator: torch random generator for reproducible sampling.
        :return: ``next_obs``, ``reward`` (``None`` without a reward head) and boolean
            ``terminated`` (termination probability > 0.5; ``None`` without a termination head),
            with the leading dims of ``obs``.
        """
        obs_t = self._tensor(obs)
        pred = self.predict(obs_t, actions)
        mean, var = pred.delta_mean, pred.delta_var
        reward, reward_var, term = pred.reward_mean, pred.reward_var, pred.termination_prob
        if obs_t.ndim == 2:
            n = obs_t.shape[0]
            if member_indices is None:
                pick = th.randint(self.n_elites, (n,), device=self.device, generator=generator)
                members = self.elite_indices[pick]
            else:
                members = self._tensor(member_indices, th.long)
            rows = th.arange(n, device=self.device)
            mean, var = mean[members, rows], var[members, rows]
            reward = reward[members, rows] if reward is not None else None
            reward_var = reward_var[members, rows] if reward_var is not None else None
            term = term[members, rows] if term is not None else None
        if not deterministic:
            mean = mean + var.sqrt() * th.randn(mean.shape, device=self.device, generator=generator)
            if reward is not None:
                reward = reward + reward_var.sqrt() * th.randn(
                    reward.shape, device=self.device, generator=generator
                )
        terminated = term > 0.5 if term is not None else None
        return obs_t + mean, reward, terminated

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        obs: ArrayLike,
        actions: ArrayLike,
        next_obs: ArrayLike,
        rewards: ArrayLike | None = None,
        terminations: ArrayLike | None = None,
        n_epochs: int = 5,
        batch_size: int = 256,
        holdout_ratio: float = 0.1,
        max_gradient_steps: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> dict[str, float]:
        """
        Fit the ensemble to a transition data set (batch-first arrays or tensors).

        Refreshes the normalization statistics, trains every member for ``n_epochs`` passes over its
        own bootstrap resample of the training split (at most ``max_gradient_steps`` steps), then
        ranks members by hold-out MSE and keeps the ``n_elites`` best for :meth:`sample`.

        :return: mean training loss terms, ``holdout_mse`` (normalized units, elites) and
            ``gradient_steps``.
        """
        rng = generator if generator is not None else np.random.default_rng()
        obs_t, act_t, next_t, rew_t, term_t = self._batch_tensors(
            obs, actions, next_obs, rewards, terminations
        )
        rew_t = rew_t.reshape(-1) if rew_t is not None else None
        term_t = term_t.reshape(-1) if term_t is not None else None
        n = obs_t.shape[0]
        if n < 2:
            raise ValueError(f"fit needs at least 2 transitions, got {n}")
        check_holdout_ratio(holdout_ratio)
        batch_size = check_positive_int("batch_size", batch_size)
        perm = self._tensor(rng.permutation(n), th.long)
        n_hold = min(int(n * holdout_ratio), 5000)
        hold, train = perm[:n_hold], perm[n_hold:]

        def take(idx: th.Tensor) -> tuple:
            return (
                obs_t[idx],
                act_t[idx],
                next_t[idx],
                rew_t[idx] if rew_t is not None else None,
                term_t[idx] if term_t is not None else None,
            )

        self.set_normalization(
            obs_t[train], act_t[train], next_t[train], rew_t[train] if rew_t is not None else None
        )
        n_train = train.shape[0]
        bootstrap = self._tensor(rng.integers(0, n_train, size=(self.n_members, n_train)), th.long)
        steps_per_epoch = max(1, math.ceil(n_train / batch_size))
        total_steps = n_epochs * steps_per_epoch
        if max_gradient_steps is not None:
            total_steps = min(total_steps, int(max_gradient_steps))
        sums: dict[str, float] = {}
        for step in range(total_steps):
            if step % steps_per_epoch == 0:  # new epoch: reshuffle each member's bootstrap sample
                order = th.argsort(self._tensor(rng.random((self.n_members, n_train)), th.float64), dim=1)
                epoch_idx = th.gather(bootstrap, 1, order)
            k = step % steps_per_epoch
            idx = train[epoch_idx[:, k * batch_size : (k + 1) * batch_size]]
            info = self.train_step(*take(idx))
            for key, value in info.items():
                sums[key] = sums.get(key, 0.0) + value
        stats = {f"train_{k}": v / max(total_steps, 1) for k, v in sums.items()}
        stats["gradient_steps"] = float(total_steps)
        stats["holdout_mse"] = self._select_elites(*take(hold)) if n_hold > 0 else float("nan")
        return stats

    @th.no_grad()
    def _select_elites(self, obs, actions, next_obs, rewards, terminations) -> float:
        """Rank members by normalized hold-out MSE; keep the best ``n_elites``; return their mean MSE."""
        self.eval()
        targets = (self._targets(obs, next_obs, rewards) - self.target_mean) / self.target_std
        mean, _, _ = self(self._member_inputs(obs, actions))
        mse = ((mean - targets) ** 2).mean(dim=(1, 2))
        elites = th.argsort(mse)[: self.n_elites]
        self.elite_indices.copy_(th.sort(elites).values)
        return float(mse[elites].mean())
