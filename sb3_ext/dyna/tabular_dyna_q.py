"""Tabular Dyna-Q and Dyna-Q+ (Sutton & Barto, *Reinforcement Learning*, 2nd ed., section 8.2-8.3)."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from sb3_ext.common.epsilon_greedy import EpsilonGreedyAlgorithm
from sb3_ext.common.validation import check_algorithm_arguments, check_float, check_int
from sb3_ext.dyna.policies import TabularQPolicy, check_tabular_spaces

SelfTabularDynaQ = TypeVar("SelfTabularDynaQ", bound="TabularDynaQ")


class TabularTransitions(NamedTuple):
    """A batch of real transitions of a finite MDP, one per environment: 0-based state and action
    indices (int64), rewards (float64) and terminations (bool; time-limit truncations are not)."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_states: np.ndarray
    terminals: np.ndarray


class TabularModel:
    """
    Sample model of a finite MDP for Dyna planning: for every ``(state, action)`` tried in the
    real environment, the last outcome observed (next state, reward, termination), as in
    Sutton & Barto's Dyna-Q, which assumes deterministic dynamics. Actions never tried from a
    visited state are modelled as leading back to the same state with reward 0 (the Dyna-Q+
    convention); they are only planned with when ``include_untried=True``.

    :param n_states: number of states
    :param n_actions: number of actions
    """

    def __init__(self, n_states: int, n_actions: int) -> None:
        self.n_states, self.n_actions = n_states, n_actions
        self.next_state = np.repeat(np.arange(n_states, dtype=np.int64)[:, None], n_actions, axis=1)
        self.reward = np.zeros((n_states, n_actions), dtype=np.float64)
        self.terminal = np.zeros((n_states, n_actions), dtype=bool)
        self.tried = np.zeros((n_states, n_actions), dtype=bool)
        #: Real time step at which each pair was last tried (for the Dyna-Q+ bonus).
        self.last_tried = np.zeros((n_states, n_actions), dtype=np.int64)
        self.visited = np.zeros(n_states, dtype=bool)
        # Lists of tried pairs (flat indices) and visited states, for O(1) uniform sampling.
        self._tried_pairs = np.empty(n_states * n_actions, dtype=np.int64)
        self._visited_states = np.empty(n_states, dtype=np.int64)
        self.n_tried = 0
        self.n_visited = 0

    def update(self, batch: TabularTransitions, time_step: int) -> None:
        """Record a batch of real transitions (one per environment), tried at real step ``time_step``."""
        states, actions = batch.states, batch.actions
        self.next_state[states, actions] = batch.next_states
        self.reward[states, actions] = batch.rewards
        self.terminal[states, actions] = batch.terminals
        self.last_tried[states, actions] = time_step
        flat = states * self.n_actions + actions
        new_pairs = np.unique(flat[~self.tried.reshape(-1)[flat]])
        self._tried_pairs[self.n_tried : self.n_tried + len(new_pairs)] = new_pairs
        self.n_tried += len(new_pairs)
        self.tried.reshape(-1)[new_pairs] = True
        new_states = np.unique(states[~self.visited[states]])
        self._visited_states[self.n_visited : self.n_visited + len(new_states)] = new_states
        self.n_visited += len(new_states)
        self.visited[new_states] = True

    def sample(
        self, n: int, rng: np.random.Generator, include_untried: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """
        Draw ``n`` state-action pairs to plan from, uniformly with replacement: among the pairs
        tried so far, or, with ``include_untried``, any action from a uniformly drawn visited state.
        """
        if include_untried:
            states = self._visited_states[rng.integers(self.n_visited, size=n)]
            return states, rng.integers(self.n_actions, size=n)
        flat = self._tried_pairs[rng.integers(self.n_tried, size=n)]
        return flat // self.n_actions, flat % self.n_actions


class TabularDynaQ(EpsilonGreedyAlgorithm):
    """
    Tabular Dyna-Q, with the Dyna-Q+ exploration bonus (Sutton & Barto 2018, section 8.2-8.3).

    After every real step the agent (a) takes a one-step Q-learning update on the real
    transition, (b) records it in a :class:`TabularModel`, (c) takes ``planning_steps``
    Q-learning updates on transitions *simulated by that model* from previously tried
    state-action pairs drawn uniformly at random. ``planning_steps=0`` is plain Q-learning.
    With ``kappa > 0`` (Dyna-Q+), a simulated reward gets the bonus ``kappa * sqrt(tau)``, where
    ``tau`` is the number of real steps since the pair was last tried, and planning also
    considers actions never tried from visited states.

    The planning updates of one step are applied together, as one synchronous sweep over the
    drawn pairs (vectorized with numpy); with one environment and ``planning_steps=1`` this is
    exactly Sutton & Barto's algorithm. Works with ``n_envs > 1`` (one update per environment).
    Observation and action spaces must be ``Discrete``; anything else raises ``ValueError``.

    :param policy: the policy (``"TabularPolicy"``, or a :class:`TabularQPolicy` subclass)
    :param env: the environment to learn from (if registered in Gymnasium, can be a str)
    :param learning_rate: step size alpha of the Q-learning updates, a float or a schedule of
        the progress remaining (from 1 to 0)
    :param gamma: the discount factor
    :param planning_steps: number ``n`` of simulated updates after every real step
    :param kappa: Dyna-Q+ exploration bonus coefficient (0 gives Dyna-Q)
    :param exploration_fraction: fraction of the training over which epsilon is annealed
    :param exploration_initial_eps: initial probability of a random action
    :param exploration_final_eps: final probability of a random action (the defaults give a
        constant epsilon of 0.1, as in Sutton & Barto)
    :param stats_window_size: number of episodes over which the rollout statistics are averaged
    :param tensorboard_log: the log location for TensorBoard (if None, no logging)
    :param policy_kwargs: keyword arguments of the policy, e.g. ``initial_value``
    :param verbose: 0 no output, 1 info, 2 debug
    :param seed: seed for the pseudo-random generators
    :param device: accepted for API compatibility; the table always lives on the CPU
    :param _init_setup_model: whether to build the table at creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"TabularPolicy": TabularQPolicy}
    policy: TabularQPolicy

    def __init__(
        self,
        policy: str | type[TabularQPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 0.1,
        gamma: float = 0.95,
        planning_steps: int = 10,
        kappa: float = 0.0,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 0.1,
        exploration_final_eps: float = 0.1,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "cpu",
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
            device="cpu",  # the table is shared with numpy, which needs host memory
            support_multi_env=True,
            seed=seed,
        )
        if self.env is not None:
            check_tabular_spaces(self.observation_space, self.action_space, type(self).__name__)
        self.gamma = check_float("gamma", gamma, 0.0, 1.0)
        self.planning_steps = check_int("planning_steps", planning_steps, 0)
        self.kappa = check_float("kappa", kappa, 0.0)
        self._set_exploration(exploration_fraction, exploration_initial_eps, exploration_final_eps)
        self._n_planning_updates = 0
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_policy()
        # A loaded model brings its table model and random generator state with it.
        if getattr(self, "model", None) is None:
            self.model = TabularModel(int(self.observation_space.n), int(self.action_space.n))
        if getattr(self, "_rng", None) is None:
            self._rng = np.random.default_rng(self.seed)

    @property
    def q_table(self) -> np.ndarray:
        """The action-value table ``Q[state, action]`` (a numpy view of the policy's buffer)."""
        return self.policy.q_table.numpy()

    # ------------------------------------------------------------------ acting
    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Greedy action (``deterministic=True``: ties go to the lowest action) or epsilon-greedy
        action with ties among maximal actions broken uniformly at random (the behaviour
        policy used during training).
        """
        if deterministic:
            return self.policy.predict(observation, state, episode_start, deterministic=True)
        obs = np.asarray(observation)
        vectorized = obs.ndim > 0
        states = obs.reshape(-1).astype(np.int64) - int(self.observation_space.start)
        actions = self._epsilon_greedy(states) + int(self.action_space.start)
        return (actions if vectorized else actions[0]), state

    def _epsilon_greedy(self, states: np.ndarray) -> np.ndarray:
        q = self.q_table[states]
        # Random tie-breaking: among the maximal actions, the one with the largest uniform key.
        keys = self._rng.random(q.shape) * (q == q.max(axis=1, keepdims=True))
        greedy = keys.argmax(axis=1)
        explore = self._rng.random(len(states)) < self.exploration_rate
        return np.where(explore, self._rng.integers(q.shape[1], size=len(states)), greedy)

    # ------------------------------------------------------------------ learning
    def _q_update(
        self, states: np.ndarray, actions: np.ndarray, targets: np.ndarray, alpha: float
    ) -> np.ndarray:
        q = self.q_table
        td_errors = targets - q[states, actions]
        q[states, actions] += alpha * td_errors
        return td_errors

    def _targets(self, rewards: np.ndarray, next_states: np.ndarray, terminals: np.ndarray) -> np.ndarray:
        return rewards + self.gamma * np.where(terminals, 0.0, self.q_table[next_states].max(axis=1))

    def train(self, batch: TabularTransitions) -> None:
        """Direct RL update on real transitions, model learning, then planning (Dyna-Q steps d-f)."""
        alpha = self.lr_schedule(self._current_progress_remaining)
        targets = self._targets(batch.rewards, batch.next_states, batch.terminals)
        td_errors = self._q_update(batch.states, batch.actions, targets, alpha)
        self.model.update(batch, self.num_timesteps)
        self._n_updates += len(batch.states)
        if self.planning_steps > 0:
            plus = self.kappa > 0.0
            p_states, p_actions = self.model.sample(self.planning_steps, self._rng, include_untried=plus)
            p_rewards = self.model.reward[p_states, p_actions]
            if plus:
                tau = self.num_timesteps - self.model.last_tried[p_states, p_actions]
                p_rewards = p_rewards + self.kappa * np.sqrt(tau)
            p_targets = self._targets(
                p_rewards,
                self.model.next_state[p_states, p_actions],
                self.model.terminal[p_states, p_actions],
            )
            plan_errors = self._q_update(p_states, p_actions, p_targets, alpha)
            self._n_planning_updates += self.planning_steps
            self.logger.record_mean("train/planning_td_error", float(np.abs(plan_errors).mean()))
        self.logger.record("train/learning_rate", alpha)
        self.logger.record_mean("train/td_error", float(np.abs(td_errors).mean()))

    def learn(
        self: SelfTabularDynaQ,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 10,
        tb_log_name: str = "TabularDynaQ",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfTabularDynaQ:
        """
        Train for ``total_timesteps`` environment steps (summed over environments).

        :param log_interval: number of episodes between two logger dumps
        """
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        assert self.env is not None
        start = int(self.observation_space.start)
        while self.num_timesteps < total_timesteps:
            callback.on_rollout_start()
            states = np.asarray(self._last_obs).reshape(-1).astype(np.int64) - start
            actions = self._epsilon_greedy(states)
            new_obs, rewards, dones, infos = self.env.step(actions + int(self.action_space.start))
            self.num_timesteps += self.env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                break
            self._update_info_buffer(infos, dones)
            next_states = np.asarray(new_obs).reshape(-1).astype(np.int64) - start
            truncated = np.array([info.get("TimeLimit.truncated", False) for info in infos], dtype=bool)
            for idx in np.flatnonzero(dones):
                # The VecEnv already reset: the transition ends in the stored terminal observation.
                next_states[idx] = int(infos[idx]["terminal_observation"]) - start
            rewards = np.asarray(rewards, dtype=np.float64)
            self.train(TabularTransitions(states, actions, rewards, next_states, dones & ~truncated))
            self._last_obs = new_obs
            self._last_episode_starts = dones
            self._update_exploration_rate(total_timesteps)
            callback.on_rollout_end()
            for _ in range(int(dones.sum())):
                self._episode_num += 1
                if log_interval is not None and self._episode_num % log_interval == 0:
                    self.dump_logs()
        callback.on_training_end()
        return self

    def dump_logs(self) -> None:
        """Write the rollout and training statistics to the logger."""
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        self._record_episodes()
        self._record_time()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/n_planning_updates", self._n_planning_updates, exclude="tensorboard")
        self.logger.record("train/model_pairs", self.model.n_tried)
        self.logger.dump(step=self.num_timesteps)
