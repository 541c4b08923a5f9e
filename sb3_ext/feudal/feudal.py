"""FeUdal Networks (Vezhnevets et al., *FeUdal Networks for Hierarchical Reinforcement Learning*, ICML 2017)."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_ext.common.validation import (
    check_discrete_actions,
    check_float,
    check_int,
    check_learning_rate,
    reject_policy_kwargs,
)
from sb3_ext.feudal.buffers import FeudalRolloutBuffer
from sb3_ext.feudal.policies import CnnPolicy, FeudalPolicy, FeudalState, MlpPolicy

SelfFeudalAgent = TypeVar("SelfFeudalAgent", bound="FeudalAgent")


# ---------------------------------------------------------------------------- the paper's equations
def episode_ids(episode_starts: th.Tensor) -> th.Tensor:
    """Per environment, a counter of the episodes along time (``(T, E)``): equal ids, same episode."""
    return th.cumsum(episode_starts.long(), dim=0)


def goal_sums(goals: th.Tensor, ids: th.Tensor, c: int) -> th.Tensor:
    """
    Sum of the last ``c`` goals ``g_{t-c+1} + ... + g_t`` of each step's own episode (goals before
    the episode count as zero), ``(T, E, d)``; the Worker's embedding is ``w_t = phi(.)`` of it.
    """
    sums = th.zeros_like(goals)
    for lag in range(c):
        same = (ids[lag:] == ids[: len(ids) - lag]).unsqueeze(-1)
        sums[lag:] += goals[: len(goals) - lag] * same
    return sums


def intrinsic_rewards(
    latents: th.Tensor, next_latents: th.Tensor, goals: th.Tensor, ids: th.Tensor, c: int
) -> th.Tensor:
    """
    The Worker's intrinsic reward for each step t (``(T, E)``), earned on arriving in s_{t+1}:

    ``r^I_{t+1} = 1/c sum_{i=1..c} cos(s_{t+1} - s_{t+1-i}, g_{t+1-i})``

    where terms from before the episode (or before the window) are 0.

    :param latents: s_t of the steps, ``(T, E, d)``
    :param next_latents: s_{t+1}, the latent of the observation each step led to, ``(T, E, d)``
    :param goals: g_t, ``(T, E, d)``
    :param ids: episode ids of the steps (:func:`episode_ids`), ``(T, E)``
    :param c: the horizon
    """
    rewards = th.zeros(ids.shape, dtype=latents.dtype, device=latents.device)
    for i in range(1, c + 1):
        lag = i - 1  # s_{t+1-i} is the latent of step t - lag
        if lag >= len(ids):
            break
        cosine = F.cosine_similarity(
            next_latents[lag:] - latents[: len(ids) - lag], goals[: len(ids) - lag], dim=-1
        )
        rewards[lag:] += cosine * (ids[lag:] == ids[: len(ids) - lag])
    return rewards / c


def manager_targets(latents: th.Tensor, next_latents: th.Tensor, dones: th.Tensor, c: int) -> th.Tensor:
    """
    s_{t+c} for the steps t = 0 .. T-c-1 (``(T - c, E, d)``), or the latent of the episode's final
    observation where the episode ends within the c steps.

    :param latents: s_0 .. s_T, ``(T + 1, E, d)``
    :param next_latents: the latent each step led to (the final one where it ended), ``(T, E, d)``
    :param dones: 1 where the episode ended after step t, ``(T, E)``
    :param c: the horizon
    """
    count = len(dones) - c
    targets = latents[c : c + count].clone()
    for j in reversed(range(c)):  # the earliest end within the horizon wins
        ended = dones[j : j + count].bool().unsqueeze(-1)
        targets = th.where(ended, next_latents[j : j + count], targets)
    return targets


def discounted_returns(
    rewards: th.Tensor, dones: th.Tensor, last_values: th.Tensor, gamma: float
) -> th.Tensor:
    """n-step returns ``R_t = r_t + gamma (1 - done_t) R_{t+1}`` with ``R_T = last_values``, ``(T, E)``."""
    returns = th.zeros_like(rewards)
    running = last_values
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * (1.0 - dones[t]) * running
        returns[t] = running
    return returns


class FeudalAgent(OnPolicyAlgorithm):
    """
    FeUdal Networks (Vezhnevets et al. 2017): a Manager that sets goal directions in a learned
    latent space and a Worker rewarded for moving along them, trained by synchronous advantage
    actor-critic updates over ``n_envs`` environments (see :class:`FeudalPolicy` for the network).

    Every ``n_steps`` steps, one gradient step on the sum of

    * the Manager's transition-policy gradient:
      ``-A^M_t cos(s_{t+c} - s_t, g_t(theta))`` with ``A^M_t = R_t - V^M(x_t)``, the extrinsic
      return R_t discounted by ``gamma_manager``; s_{t+c} - s_t is a constant, the gradient flows
      through g_t only; where the episode ends within c steps, s_{t+c} is the latent of its final
      observation;
    * the Worker's policy gradient: ``-A^D_t log pi(a_t | x_t)`` with ``A^D_t = R^D_t - V^D(x_t)``,
      R^D the return of ``r + alpha r^I`` discounted by ``gamma_worker``, and the intrinsic reward
      ``r^I_{t+1} = 1/c sum_{i=1..c} cos(s_{t+1} - s_{t+1-i}, g_{t+1-i})`` for the
      action at step t (terms from before the episode are 0); an entropy bonus ``ent_coef``;
    * ``vf_coef`` times the squared errors of both value heads.

    Returns are n-step returns bootstrapped with the value heads, and with the values of the
    final observation where a time limit cut the episode. The update sees the last ``c`` steps of
    the previous rollout before its own (both LSTMs run again from the state stored before them),
    so that the Manager's gradient at step t is taken once s_{t+c} is known and the Worker's
    intrinsic reward and goal embedding see the c goals before each step across rollouts. The
    Manager explores by replacing its goal with a random unit vector with probability
    ``goal_epsilon``; the goals the Worker acted with are the ones its reward refers to.

    The recurrent state (both LSTMs and the last c goals) travels through :meth:`predict` as
    ``state``, reset where ``episode_start`` is True, like sb3-contrib's ``RecurrentPPO``.

    Logged: ``train/manager_loss``, ``train/worker_policy_loss``, ``train/entropy_loss``,
    ``train/manager_value_loss``, ``train/worker_value_loss``, ``train/intrinsic_reward`` (mean
    r^I), ``train/goal_cosine`` (mean cos(s_{t+c} - s_t, g_t)), ``train/loss``.

    :param policy: the policy (``"MlpPolicy"``, ``"CnnPolicy"`` or a :class:`FeudalPolicy` subclass)
    :param env: the environment to learn from (if registered in Gymnasium, can be a str);
        ``Discrete`` actions, non-``Dict`` observations (``Discrete`` ones are one-hot encoded)
    :param learning_rate: learning rate of the optimizer, a float or a schedule of the progress
        remaining (from 1 to 0)
    :param c: the Manager's horizon c (>= 1): goals are judged c steps later, and the Worker's
        reward and goal embedding use the last c goals
    :param n_steps: steps per environment between two updates (>= c)
    :param alpha: weight of the intrinsic reward in the Worker's reward (>= 0)
    :param gamma_manager: discount of the Manager's return, in [0, 1]
    :param gamma_worker: discount of the Worker's return, in [0, 1]
    :param goal_epsilon: probability that the Manager's goal is replaced by a random unit vector
        while learning (and in ``predict`` without ``deterministic``), in [0, 1]
    :param ent_coef: entropy coefficient of the Worker's policy
    :param vf_coef: weight of the two value losses
    :param max_grad_norm: maximum norm of the gradient (clipping)
    :param stats_window_size: number of episodes the rollout statistics average over
    :param tensorboard_log: the log location for TensorBoard (if None, no logging)
    :param policy_kwargs: keyword arguments of the policy (``net_arch``, ``latent_dim``,
        ``goal_embedding_dim``, ``manager_hidden_size``, ``worker_hidden_size``, ...)
    :param verbose: 0 no output, 1 info, 2 debug
    :param seed: seed for the pseudo-random generators
    :param device: device of the networks ("cpu", "cuda", "auto")
    :param _init_setup_model: whether to build the networks at creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
    policy: FeudalPolicy
    rollout_buffer: FeudalRolloutBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[FeudalPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 7e-4,
        c: int = 10,
        n_steps: int = 20,
        alpha: float = 0.5,
        gamma_manager: float = 0.99,
        gamma_worker: float = 0.95,
        goal_epsilon: float = 0.05,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_learning_rate(learning_rate)
        self.c = check_int("c", c, 1)
        n_steps = check_int("n_steps", n_steps, 1)
        if n_steps < self.c:
            raise ValueError(
                f"n_steps must be an integer >= c ({self.c}): the Manager's gradient at step t needs "
                f"s_(t+c), got {n_steps}"
            )
        self.alpha = check_float("alpha", alpha, 0.0)
        self.gamma_manager = check_float("gamma_manager", gamma_manager, 0.0, 1.0)
        self.gamma_worker = check_float("gamma_worker", gamma_worker, 0.0, 1.0)
        self.goal_epsilon = check_float("goal_epsilon", goal_epsilon, 0.0, 1.0)
        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate,
            n_steps=n_steps,
            # SB3's ``gamma`` is the Worker's discount (the Manager has its own).
            gamma=self.gamma_worker,
            gae_lambda=1.0,
            ent_coef=check_float("ent_coef", ent_coef, 0.0),
            vf_coef=check_float("vf_coef", vf_coef, 0.0),
            max_grad_norm=check_float("max_grad_norm", max_grad_norm, 0.0, low_inclusive=False),
            use_sde=False,
            sde_sample_freq=-1,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if self.env is not None:
            check_discrete_actions(
                "FeudalAgent",
                self.observation_space,
                self.action_space,
                "the Worker's policy is softmax(U w) over the actions",
            )
        reject_policy_kwargs("FeudalAgent", self.policy_kwargs, ("c",))
        self._last_state: FeudalState | None = None
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, c=self.c, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self.rollout_buffer = FeudalRolloutBuffer(
            self.n_steps,
            self.observation_space,
            self.n_envs,
            self.c,
            self.policy.latent_dim,
            self.policy.manager_hidden_size,
            self.policy.worker_hidden_size,
        )

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Action(s) and the recurrent state ``(manager_hidden, manager_cell, worker_hidden,
        worker_cell, goals)``; pass the returned state and ``episode_start`` back at the next call.
        Without ``deterministic``, the Manager explores with ``goal_epsilon``.
        """
        return self.policy.predict(
            observation, state, episode_start, deterministic, goal_epsilon=self.goal_epsilon
        )

    # ------------------------------------------------------------------ acting
    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: FeudalRolloutBuffer,  # type: ignore[override]
        n_rollout_steps: int,
    ) -> bool:
        """Run the Manager and the Worker for ``n_rollout_steps`` steps in every environment; False if a callback stopped."""
        assert self._last_obs is not None and self._last_state is not None
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        for _ in range(n_rollout_steps):
            starts = np.asarray(self._last_episode_starts, dtype=bool)
            with th.no_grad():
                step = self.policy.step(
                    obs_as_tensor(self._last_obs, self.device),  # type: ignore[arg-type]
                    self._last_state,
                    th.as_tensor(starts, device=self.device),
                    goal_epsilon=self.goal_epsilon,
                )
            actions = step.actions.cpu().numpy()
            new_obs, rewards, dones, infos = env.step(actions)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)

            final_obs = np.array(new_obs, copy=True)
            for i in np.flatnonzero(dones):
                if infos[i].get("terminal_observation") is not None:
                    final_obs[i] = infos[i]["terminal_observation"]
            manager_bootstrap, worker_bootstrap = self._time_limit_values(final_obs, dones, infos, step.state)
            rollout_buffer.add(
                self._last_obs,  # type: ignore[arg-type]
                starts,
                actions,
                rewards,
                dones,
                final_obs,
                step.goals.cpu().numpy(),
                FeudalState(*(part.cpu().numpy() for part in self._last_state)),
                manager_bootstrap,
                worker_bootstrap,
            )
            self._last_obs, self._last_episode_starts, self._last_state = new_obs, dones, step.state  # type: ignore[assignment]

        rollout_buffer.finish(self._last_obs, self._last_episode_starts)  # type: ignore[arg-type]
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _time_limit_values(
        self, final_obs: np.ndarray, dones: np.ndarray, infos: list[dict], state: FeudalState
    ) -> tuple[np.ndarray, np.ndarray]:
        """V^M and V^D of the final observation where a time limit ended the episode (0 elsewhere)."""
        manager_values = np.zeros(len(dones), dtype=np.float32)
        worker_values = np.zeros(len(dones), dtype=np.float32)
        truncated = [
            i
            for i, done in enumerate(dones)
            if done
            and infos[i].get("TimeLimit.truncated", False)
            and infos[i].get("terminal_observation") is not None
        ]
        if truncated:
            rows = th.as_tensor(truncated, device=self.device)
            with th.no_grad():
                after = self.policy.step(
                    obs_as_tensor(final_obs[truncated], self.device),  # type: ignore[arg-type]
                    FeudalState(*(part[rows] for part in state)),
                    th.zeros(len(truncated), dtype=th.bool, device=self.device),
                    deterministic=True,
                )
            manager_values[truncated] = after.manager_values.cpu().numpy()
            worker_values[truncated] = after.worker_values.cpu().numpy()
        return manager_values, worker_values

    # ------------------------------------------------------------------ learning
    def compute_losses(self) -> dict[str, th.Tensor]:
        """The FeUdal losses on the stored window (see the class docstring)."""
        data = self.rollout_buffer.get(self.device)
        c, prefix = self.c, data.prefix_length
        steps = len(data.actions)
        sequence = self.policy.evaluate_sequence(
            data.observations, data.episode_starts, data.initial_state, data.final_observations
        )
        latents = sequence.latents.detach()
        # s_{t+1} of each step: the latent of the next observation, or of the final one where the
        # episode ended (in the same batch: a step into a wall moves the latent by exactly zero).
        assert sequence.final_latents is not None
        next_latents = th.where(data.dones.bool().unsqueeze(-1), sequence.final_latents, latents[1:])
        ids = episode_ids(data.episode_starts[:-1])

        # Manager: transition-policy gradient on the steps whose s_{t+c} is known.
        manager_rewards = data.rewards + self.gamma_manager * data.manager_bootstrap
        manager_returns = discounted_returns(
            manager_rewards, data.dones, sequence.manager_values[-1].detach(), self.gamma_manager
        )
        manager_values = sequence.manager_values[:-1]
        manager_advantages = (manager_returns - manager_values).detach()
        count = steps - c
        directions = manager_targets(latents, next_latents, data.dones, c) - latents[:count]
        goal_cosine = F.cosine_similarity(directions, sequence.goals[:count], dim=-1)
        # (no step has its s_{t+c} yet in a first rollout of exactly c steps)
        manager_loss = -(manager_advantages[:count] * goal_cosine).sum() / max(goal_cosine.numel(), 1)

        # Worker: extrinsic plus alpha times intrinsic reward, on the goals it acted with.
        intrinsic = intrinsic_rewards(latents[:-1], next_latents, data.goals, ids, c)
        worker_rewards = data.rewards + self.alpha * intrinsic + self.gamma_worker * data.worker_bootstrap
        worker_returns = discounted_returns(
            worker_rewards, data.dones, sequence.worker_values[-1].detach(), self.gamma_worker
        )
        logits = self.policy.action_logits(
            sequence.worker_hidden[prefix:-1], goal_sums(data.goals, ids, c)[prefix:]
        )
        distribution = th.distributions.Categorical(logits=logits)
        worker_values = sequence.worker_values[prefix:-1]
        worker_advantages = (worker_returns[prefix:] - worker_values).detach()
        worker_policy_loss = -(worker_advantages * distribution.log_prob(data.actions[prefix:])).mean()
        entropy_loss = -distribution.entropy().mean()

        manager_value_loss = F.mse_loss(manager_values[prefix:], manager_returns[prefix:])
        worker_value_loss = F.mse_loss(worker_values, worker_returns[prefix:])
        loss = (
            manager_loss
            + worker_policy_loss
            + self.ent_coef * entropy_loss
            + self.vf_coef * (manager_value_loss + worker_value_loss)
        )
        return dict(
            loss=loss,
            manager_loss=manager_loss,
            worker_policy_loss=worker_policy_loss,
            entropy_loss=entropy_loss,
            manager_value_loss=manager_value_loss,
            worker_value_loss=worker_value_loss,
            intrinsic_reward=intrinsic[prefix:].mean(),
            goal_cosine=goal_cosine.detach().sum() / max(goal_cosine.numel(), 1),
        )

    def train(self) -> None:
        """One gradient step on the stored window."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = self.compute_losses()
        self.policy.optimizer.zero_grad()
        losses["loss"].backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1
        for name, value in losses.items():
            self.logger.record(f"train/{name}", value.item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        result = super()._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        if reset_num_timesteps or self._last_state is None or len(self._last_state.goals) != self.n_envs:
            self._last_state = self.policy.initial_state(self.n_envs)
            self._last_episode_starts = np.ones(self.n_envs, dtype=bool)
            self.rollout_buffer.drop_prefix()
        return result

    def learn(
        self: SelfFeudalAgent,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "FeudalAgent",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfFeudalAgent:
        """
        Train for ``total_timesteps`` environment steps (summed over environments).

        :param log_interval: number of updates between two logger dumps
        """
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        # The running recurrent state belongs to the training envs, which are not saved either.
        return [*super()._excluded_save_params(), "_last_state"]
