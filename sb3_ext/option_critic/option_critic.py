"""Option-critic (Bacon, Harb & Precup, *The Option-Critic Architecture*, AAAI 2017)."""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import obs_as_tensor, polyak_update, safe_mean
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_ext.common.epsilon_greedy import EpsilonGreedyAlgorithm
from sb3_ext.common.validation import (
    check_algorithm_arguments,
    check_discrete_actions,
    check_float,
    check_int,
    reject_policy_kwargs,
)
from sb3_ext.option_critic.buffers import OptionRolloutBuffer
from sb3_ext.option_critic.policies import CnnPolicy, MlpPolicy, OptionCriticPolicy

SelfOptionCritic = TypeVar("SelfOptionCritic", bound="OptionCritic")


class OptionCritic(EpsilonGreedyAlgorithm):
    """
    Option-critic (Bacon, Harb & Precup 2017) with n-step returns over parallel environments
    (the synchronous advantage option-critic setting of Harb et al. 2018).

    Every ``n_steps`` steps of each of the ``n_envs`` environments, one gradient step on

    * the critic: ``(G_t - Q_Omega(s_t, w_t))^2`` where ``G_t`` is the n-step return
      bootstrapped with the target network's option-value upon arrival
      ``U(s, w) = (1 - beta_w(s)) Q_Omega(s, w) + beta_w(s) max_w' Q_Omega(s, w')``
      (the paper's one-step target when ``n_steps=1``);
    * the intra-option policy gradient: ``-log pi_w(a_t | s_t) (G_t - Q_Omega(s_t, w_t))``
      with an entropy bonus ``ent_coef``;
    * the termination gradient (Theorem 2) with a deliberation cost (Harb et al. 2018):
      ``beta_w(s_{t+1}) (Q_Omega(s_{t+1}, w_t) - V_Omega(s_{t+1}) + termination_reg)``, where
      ``V_Omega`` is the value of the epsilon-greedy policy over options; descending it raises
      beta where the option is worse than the policy over options by more than the cost.

    Options are executed call-and-return: in each environment the running option terminates
    with probability beta_w(s), and a new option is then selected epsilon-greedily on Q_Omega
    (epsilon annealed linearly); a new option is always selected at the start of an episode.
    The running options travel through :meth:`predict` as ``state = (options,)``, like the
    hidden state of sb3-contrib's recurrent policies (see :class:`OptionCriticPolicy`).
    Truncated episodes are bootstrapped with U of the final observation.

    Logged: ``rollout/option_share_<w>`` (share of steps spent in each option),
    ``rollout/option_duration_mean`` (mean length of finished options),
    ``rollout/exploration_rate``, ``train/termination_prob`` (beta of the running option),
    ``train/policy_loss``, ``train/critic_loss``, ``train/termination_loss``,
    ``train/entropy_loss``, ``train/loss``.

    :param policy: the policy (``"MlpPolicy"``, ``"CnnPolicy"`` or an
        :class:`OptionCriticPolicy` subclass)
    :param env: the environment to learn from (if registered in Gymnasium, can be a str);
        ``Discrete`` actions, non-``Dict`` observations (``Discrete`` ones are one-hot encoded)
    :param learning_rate: learning rate of the optimizer, a float or a schedule of the progress
        remaining (from 1 to 0)
    :param n_options: number of options
    :param n_steps: number of steps per environment between two updates (n of the n-step return)
    :param gamma: the discount factor
    :param ent_coef: entropy coefficient of the intra-option policies
    :param vf_coef: weight of the critic loss
    :param termination_reg: deliberation cost xi added to the termination advantage (>= 0:
        larger values give longer options)
    :param max_grad_norm: maximum norm of the gradient (clipping)
    :param exploration_fraction: fraction of the training over which epsilon is annealed
    :param exploration_initial_eps: initial epsilon of the option selection
    :param exploration_final_eps: final epsilon of the option selection
    :param target_update_interval: environment steps (summed over environments) between two
        target network updates
    :param tau: soft update coefficient of the target network (1 for a hard copy)
    :param stats_window_size: number of episodes (and of finished options) the rollout
        statistics average over
    :param tensorboard_log: the log location for TensorBoard (if None, no logging)
    :param policy_kwargs: keyword arguments of the policy (e.g. ``net_arch``,
        ``fixed_termination_prob``)
    :param verbose: 0 no output, 1 info, 2 debug
    :param seed: seed for the pseudo-random generators
    :param device: device of the networks ("cpu", "cuda", "auto")
    :param _init_setup_model: whether to build the networks at creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
    policy: OptionCriticPolicy
    rollout_buffer: OptionRolloutBuffer

    def __init__(
        self,
        policy: str | type[OptionCriticPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 7e-4,
        n_options: int = 4,
        n_steps: int = 5,
        gamma: float = 0.99,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        termination_reg: float = 0.01,
        max_grad_norm: float = 0.5,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        target_update_interval: int = 1000,
        tau: float = 1.0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_algorithm_arguments(learning_rate=learning_rate, gamma=gamma)
        super().__init__(
            policy,
            env,
            learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
        )
        if self.env is not None:
            check_discrete_actions(
                "OptionCritic", self.observation_space, self.action_space, "softmax intra-option policies"
            )
        reject_policy_kwargs("OptionCritic", self.policy_kwargs, ("n_options",))
        self.n_options = check_int("n_options", n_options, 1)
        self.n_steps = check_int("n_steps", n_steps, 1)
        self.gamma = float(gamma)  # checked by check_algorithm_arguments
        self.ent_coef = check_float("ent_coef", ent_coef, 0.0)
        self.vf_coef = check_float("vf_coef", vf_coef, 0.0)
        self.termination_reg = check_float("termination_reg", termination_reg)
        self.max_grad_norm = check_float("max_grad_norm", max_grad_norm, 0.0, low_inclusive=False)
        self._set_exploration(exploration_fraction, exploration_initial_eps, exploration_final_eps)
        self.target_update_interval = check_int("target_update_interval", target_update_interval, 1)
        self.tau = check_float("tau", tau, 0.0, 1.0, False)
        self._last_options: np.ndarray | None = None
        self._last_target_update = 0
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_policy(n_options=self.n_options)
        self.rollout_buffer = OptionRolloutBuffer(
            self.n_steps, self.observation_space, self.n_envs, self.n_options
        )
        self.option_durations: deque[int] = deque(maxlen=self._stats_window_size)
        self._option_steps = np.zeros(self.n_options, dtype=np.int64)
        self._running_durations = np.zeros(self.n_envs, dtype=np.int64)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Action(s) and the running options ``state = (options,)``; pass the returned state and
        ``episode_start`` back at the next call. Without ``deterministic``, options are
        selected with the current exploration rate.
        """
        return self.policy.predict(
            observation, state, episode_start, deterministic, option_epsilon=self.exploration_rate
        )

    # ------------------------------------------------------------------ values
    def option_value_upon_arrival(self, obs: th.Tensor, options: th.Tensor) -> th.Tensor:
        """U(s, w) = (1 - beta_w(s)) Q(s, w) + beta_w(s) max_w' Q(s, w'), Q from the target net."""
        with th.no_grad():
            q_target = self.policy.net_target(obs).q_values
            beta = self.policy.net(obs).termination_probs
        rows = th.arange(len(options), device=q_target.device)
        beta_w = beta[rows, options]
        return (1.0 - beta_w) * q_target[rows, options] + beta_w * q_target.max(dim=1).values

    def value_of_options(self, q_values: th.Tensor) -> th.Tensor:
        """V_Omega(s) of the epsilon-greedy policy over options, from Q_Omega(s, .)."""
        eps = self.exploration_rate
        return (1.0 - eps) * q_values.max(dim=1).values + eps * q_values.mean(dim=1)

    # ------------------------------------------------------------------ acting
    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, n_rollout_steps: int) -> bool:
        """Run the options for ``n_rollout_steps`` steps in every environment; False if a callback stopped."""
        assert self._last_obs is not None and self._last_options is not None
        self.policy.set_training_mode(False)
        buffer = self.rollout_buffer
        buffer.reset()
        callback.on_rollout_start()
        for _ in range(n_rollout_steps):
            obs_tensor = obs_as_tensor(self._last_obs, self.device)
            starts = np.asarray(self._last_episode_starts, dtype=bool)
            with th.no_grad():
                acting = self.policy.act(
                    obs_tensor,
                    th.as_tensor(self._last_options, device=self.device),
                    th.as_tensor(starts, device=self.device),
                    epsilon=self.exploration_rate,
                )
            actions = acting.actions.cpu().numpy()
            options = acting.options.cpu().numpy()
            self._track_options(options, acting.new_option.cpu().numpy())

            new_obs, rewards, dones, infos = env.step(actions)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)

            rewards = rewards.astype(np.float32)
            truncated = [
                i
                for i, done in enumerate(dones)
                if done and infos[i].get("TimeLimit.truncated", False) and "terminal_observation" in infos[i]
            ]
            if truncated:
                # Time limits are not terminal: bootstrap with U of the final observation.
                final_obs = np.stack([infos[i]["terminal_observation"] for i in truncated])
                final_tensor = obs_as_tensor(
                    final_obs.reshape(len(truncated), *self.observation_space.shape), self.device
                )
                arrival = self.option_value_upon_arrival(
                    final_tensor, th.as_tensor(options[truncated], device=self.device)
                )
                rewards[truncated] += self.gamma * arrival.cpu().numpy()
            self._finish_options(dones)

            buffer.add(self._last_obs, actions, options, rewards, dones)
            self._last_obs, self._last_episode_starts, self._last_options = new_obs, dones, options
            self._update_exploration_rate(self._total_timesteps)

        last_tensor = obs_as_tensor(self._last_obs, self.device)
        arrival = self.option_value_upon_arrival(
            last_tensor, th.as_tensor(self._last_options, device=self.device)
        )
        buffer.finish(self._last_obs, arrival.cpu().numpy(), self.gamma)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _track_options(self, options: np.ndarray, new_option: np.ndarray) -> None:
        """Option usage counts and durations (an option ends when a new one is selected)."""
        self._finish_options(new_option & (self._running_durations > 0))
        self._running_durations += 1
        self._option_steps += np.bincount(options, minlength=self.n_options)

    def _finish_options(self, ended: np.ndarray) -> None:
        self.option_durations.extend(self._running_durations[ended].tolist())
        self._running_durations[ended] = 0

    # ------------------------------------------------------------------ learning
    def compute_losses(self) -> dict[str, th.Tensor]:
        """The option-critic losses on the current rollout (see the class docstring)."""
        data = self.rollout_buffer.get(self.device)
        n = len(data.actions)
        out = self.policy.net(data.observations)
        rows = th.arange(n, device=self.device)
        q_taken = out.q_values[:n][rows, data.options]
        critic_loss = F.mse_loss(q_taken, data.returns)

        distribution = th.distributions.Categorical(logits=out.action_logits[:n][rows, data.options])
        advantages = (data.returns - q_taken).detach()
        policy_loss = -(advantages * distribution.log_prob(data.actions)).mean()
        entropy_loss = -distribution.entropy().mean()

        # Termination gradient at s_{t+1} for the option w_t (only where the episode goes on).
        next_q = out.q_values[-n:].detach()
        next_beta = out.termination_probs[-n:][rows, data.options]
        termination_advantage = (
            next_q[rows, data.options] - self.value_of_options(next_q) + self.termination_reg
        )
        not_done = 1.0 - data.dones
        termination_loss = (next_beta * termination_advantage * not_done).mean()
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * critic_loss + termination_loss
        termination_prob = (next_beta.detach() * not_done).sum() / not_done.sum().clamp(min=1.0)
        return dict(
            loss=loss,
            policy_loss=policy_loss,
            critic_loss=critic_loss,
            entropy_loss=entropy_loss,
            termination_loss=termination_loss,
            termination_prob=termination_prob,
        )

    def train(self) -> None:
        """One gradient step on the rollout, then the target network update when it is due."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = self.compute_losses()
        self.policy.optimizer.zero_grad()
        losses["loss"].backward()
        th.nn.utils.clip_grad_norm_(self.policy.net.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1
        if self.num_timesteps - self._last_target_update >= self.target_update_interval:
            polyak_update(self.policy.net.parameters(), self.policy.net_target.parameters(), self.tau)
            # Buffers (batch-norm statistics, integer step counts included) are copied as they are.
            with th.no_grad():
                for name, buffer in self.policy.net.named_buffers():
                    self.policy.net_target.get_buffer(name).copy_(buffer)
            self._last_target_update = self.num_timesteps
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
        if reset_num_timesteps or self._last_options is None or len(self._last_options) != self.n_envs:
            self._last_options = np.zeros(self.n_envs, dtype=np.int64)
            self._last_episode_starts = np.ones(self.n_envs, dtype=bool)
            self._running_durations = np.zeros(self.n_envs, dtype=np.int64)
            self._last_target_update = self.num_timesteps
        return result

    def learn(
        self: SelfOptionCritic,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "OptionCritic",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfOptionCritic:
        """
        Train for ``total_timesteps`` environment steps (summed over environments).

        :param log_interval: number of updates between two logger dumps
        """
        iteration = 0
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None
        while self.num_timesteps < total_timesteps:
            if not self.collect_rollouts(self.env, callback, self.n_steps):
                break
            iteration += 1
            self.train()
            if log_interval is not None and iteration % log_interval == 0:
                self.dump_logs(iteration)
        callback.on_training_end()
        return self

    def dump_logs(self, iteration: int = 0) -> None:
        """Write the rollout, option and training statistics to the logger."""
        if iteration > 0:
            self.logger.record("time/iterations", iteration, exclude="tensorboard")
        self._record_episodes()
        if len(self.option_durations) > 0:
            self.logger.record("rollout/option_duration_mean", safe_mean(list(self.option_durations)))
        total = max(int(self._option_steps.sum()), 1)
        for option, steps in enumerate(self._option_steps):
            self.logger.record(f"rollout/option_share_{option}", steps / total)
        self._option_steps[:] = 0
        self._record_time()
        self.logger.dump(step=self.num_timesteps)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []
