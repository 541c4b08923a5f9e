"""Hierarchical Actor-Critic (Levy, Konidaris, Platt & Saenko, *Learning Multi-Level Hierarchies
with Hindsight*, ICLR 2019)."""

from __future__ import annotations

import copy
from collections import deque
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean

from sb3_ext.common.epsilon_greedy import EpsilonGreedyAlgorithm
from sb3_ext.common.validation import (
    check_algorithm_arguments,
    check_choice,
    check_float,
    check_int,
    check_nonnegative,
    check_unit_interval,
)
from sb3_ext.hac.buffers import GoalTransitionBuffer, TransitionKind
from sb3_ext.hac.hierarchy import HierarchyState
from sb3_ext.hac.policies import MAX_SUBGOAL_CELLS, HACPolicy, goal_lattice

SelfHAC = TypeVar("SelfHAC", bound="HAC")

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
SUBGOAL_HEADS = ("auto", "discrete", "continuous")


class Step(NamedTuple):
    """One action of one level, as its level episode keeps it until the episode ends."""

    observation: np.ndarray  #: ``s``: where the level acted
    action: np.ndarray  #: the primitive action (level 0) or the hindsight action (the goal achieved)
    next_observation: np.ndarray  #: ``s'``: where the action (the levels below) left the agent
    achieved_goal: np.ndarray  #: the goal achieved in ``s'``
    goal: np.ndarray  #: the level's goal


class HAC(EpsilonGreedyAlgorithm):
    """
    Hierarchical Actor-Critic (Levy et al. 2019) for goal-conditioned environments with the
    conventions of Gymnasium-Robotics' ``GoalEnv`` (``Dict`` observations with ``observation``,
    ``achieved_goal`` and ``desired_goal``, and a vectorized ``compute_reward``).

    ``n_levels`` goal-conditioned levels act in a call-and-return hierarchy: the top level pursues
    the env's ``desired_goal``; each level ``i > 0`` proposes a subgoal in the goal space for level
    ``i - 1``, which gets at most ``H = subgoal_horizon`` actions to reach it (and stops as soon
    as its own or a higher level's goal is reached); level 0 takes the primitive actions. Every
    level learns from the three kinds of transition of the paper (:class:`TransitionKind`):

    * **hindsight action transitions**: an upper level's action is replaced by the goal the
      levels below achieved, so it learns as if they were already optimal (level 0 stores the
      action it took);
    * **hindsight goal transitions**: every transition of a level's episode is relabelled with
      ``n_sampled_goal`` goals achieved at or after it in that episode (HER's ``future``);
    * **subgoal testing transitions**: a proposed subgoal is a test with probability
      ``subgoal_test_rate`` (and every subgoal below a test is one); during a test the levels
      below act greedily, and a subgoal they miss gives the proposing level the transition
      ``(s, subgoal, -H, s', g)`` with ``gamma = 0``. (A test cut short by the end of the env's
      episode gives no penalty: the levels below did not get their ``H`` actions.)

    Rewards are the env's ``compute_reward(achieved_goal, goal, info)``, with the level's goal:
    the paper's sparse ``-1`` until the goal and ``0`` on it; a goal counts as achieved where the
    reward is 0 (which ends the bootstrap). Every level's Q-values lie in ``[-H, 0]`` as in the
    paper: the critics end in ``-H sigmoid(.)`` and the targets
    ``r + gamma (1 - done) Q'(s', pi(s'), g)`` are clipped to ``[-H, 0]``.

    The levels (:class:`~sb3_ext.hac.HACPolicy`): level 0 is a goal-conditioned DQN with the
    Double DQN target and epsilon-greedy exploration for ``Discrete`` actions, a DDPG actor-critic
    with Gaussian action noise (and epsilon-random actions) for ``Box`` actions. An upper level
    with ``subgoal_head="discrete"`` is a DQN over the cells of the goal lattice (the goal Box's
    integer points), whose critic takes the cell as an input (:class:`~sb3_ext.hac.policies.CellQ`)
    and whose greedy subgoal is the exact argmax over the cells; with ``"continuous"``, a DDPG
    actor outputting a point in the goal Box, clipped, with Gaussian noise (rounded to the lattice
    when the primitive actions are ``Discrete``). ``"auto"`` picks the discrete head for
    ``Discrete`` primitive actions and a lattice of at most 4096 cells (the grid worlds: 64 cells
    on 8x8, 169 on four rooms), the continuous one otherwise. Why, on the grids: proposals and
    hindsight actions are then the same cells, the argmax needs no actor (a rounded actor gets no
    gradient between cells), and the critic generalizes between neighbouring cells. Measured on
    the 8x8 grid (seed 0, the settings of ``tests/test_hac.py``): greedy success 1.0 after 4,000
    steps with the discrete head, 0.93 with the rounded continuous one; a head with one output per
    cell instead of the cell as an input reached 0.33 after 6,000 steps (``batch_size=64``).

    The subgoals in force travel through :meth:`predict` as ``state`` (like the hidden state of
    sb3-contrib's recurrent policies); ``episode_start`` starts a hierarchy afresh.

    Logged: ``rollout/success_rate`` (the desired goal reached at the episode's end),
    ``rollout/subgoal_success_rate`` (share of level 1's subgoals that level 0 reached), per level
    ``train/level_<i>/critic_loss``, ``actor_loss`` (DDPG levels), ``q_values``.

    :param policy: the policy (``"MultiInputPolicy"`` or a :class:`~sb3_ext.hac.HACPolicy` subclass)
    :param env: the goal-conditioned environment (if registered in Gymnasium, can be a str)
    :param learning_rate: learning rate of every optimizer, a float or a schedule of the progress
        remaining (from 1 to 0)
    :param n_levels: number of levels, 2 or 3
    :param subgoal_horizon: ``H``, the most actions a level below the top gets per subgoal
    :param subgoal_test_rate: probability that a proposed subgoal is tested (lambda in the paper)
    :param buffer_size: size of each level's replay buffer
    :param learning_starts: environment steps before the first gradient step
    :param batch_size: minibatch size of every level
    :param gamma: the discount factor
    :param tau: soft update coefficient of the target networks, applied after each gradient step
    :param train_freq: environment steps (summed over environments) between two training phases
    :param gradient_steps: gradient steps of each level per training phase
    :param n_sampled_goal: hindsight goals per transition (HER's ``future`` strategy); 0: none
    :param subgoal_head: ``"auto"``, ``"discrete"`` (a Q-value per cell of the goal lattice) or
        ``"continuous"`` (a DDPG actor in the goal Box)
    :param action_noise_std: standard deviation of the Gaussian noise of the continuous levels,
        as a fraction of the half-width of their Box
    :param exploration_fraction: fraction of the training over which epsilon is annealed
    :param exploration_initial_eps: initial probability of a random action (every level)
    :param exploration_final_eps: final probability of a random action
    :param stats_window_size: number of episodes the rollout statistics average over
    :param tensorboard_log: the log location for TensorBoard (if None, no logging)
    :param policy_kwargs: keyword arguments of the policy (``net_arch``, ``activation_fn``)
    :param verbose: 0 no output, 1 info, 2 debug
    :param seed: seed for the pseudo-random generators
    :param device: device of the networks ("cpu", "cuda", "auto")
    :param _init_setup_model: whether to build the networks at creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MultiInputPolicy": HACPolicy}
    policy: HACPolicy

    def __init__(
        self,
        policy: str | type[HACPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 1e-3,
        n_levels: int = 2,
        subgoal_horizon: int = 10,
        subgoal_test_rate: float = 0.3,
        buffer_size: int = 100_000,
        learning_starts: int = 500,
        batch_size: int = 128,
        gamma: float = 0.98,
        tau: float = 0.05,
        train_freq: int = 4,
        gradient_steps: int = 1,
        n_sampled_goal: int = 4,
        subgoal_head: str = "auto",
        action_noise_std: float = 0.1,
        exploration_fraction: float = 0.3,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.1,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_algorithm_arguments(
            learning_rate=learning_rate,
            gamma=gamma,
            batch_size=batch_size,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
        )
        if isinstance(n_levels, bool) or n_levels not in (2, 3):
            raise ValueError(f"n_levels must be 2 or 3, got {n_levels!r}")
        self.n_levels = int(n_levels)
        self.subgoal_horizon = check_int("subgoal_horizon", subgoal_horizon, 1)
        self.subgoal_test_rate = check_unit_interval("subgoal_test_rate", subgoal_test_rate)
        self.subgoal_head = check_choice("subgoal_head", subgoal_head, SUBGOAL_HEADS)
        for name in ("n_levels", "subgoal_horizon", "discrete_subgoals"):
            if policy_kwargs and name in policy_kwargs:
                raise ValueError(f"pass {name} to HAC, not in policy_kwargs")
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
        self.buffer_size, self.learning_starts = int(buffer_size), int(learning_starts)
        self.batch_size, self.gamma = int(batch_size), float(gamma)
        self.tau = check_float("tau", tau, 0.0, 1.0, False)
        self.train_freq = check_int("train_freq", train_freq, 1)
        self.gradient_steps = check_int("gradient_steps", gradient_steps, 0)
        self.n_sampled_goal = check_int("n_sampled_goal", n_sampled_goal, 0)
        self.action_noise_std = check_nonnegative("action_noise_std", action_noise_std)
        self._set_exploration(exploration_fraction, exploration_initial_eps, exploration_final_eps)
        self.goal_env: Any = None
        if self.env is not None:
            self._check_spaces(self.observation_space, self.action_space)
            self.goal_env = self._goal_functions(self.env)
        self._hierarchy: HierarchyState | None = None
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ checks
    def _check_spaces(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        if not isinstance(observation_space, spaces.Dict) or not set(GOAL_KEYS) <= set(
            observation_space.spaces
        ):
            raise ValueError(
                "observation_space must be a Dict with 'observation', 'achieved_goal' and 'desired_goal' "
                f"(a goal-conditioned env with GoalEnv conventions), got {observation_space}"
            )
        boxes = [observation_space[key] for key in GOAL_KEYS]
        if not all(isinstance(box, spaces.Box) for box in boxes):
            raise ValueError(
                f"observation_space: HAC needs Box entries for {GOAL_KEYS}, got {observation_space}"
            )
        achieved, desired = observation_space["achieved_goal"], observation_space["desired_goal"]
        if achieved.shape != desired.shape or len(desired.shape) != 1:
            raise ValueError(
                f"observation_space: achieved_goal and desired_goal must be vectors of one shape, "
                f"got {achieved.shape} and {desired.shape}"
            )
        if not isinstance(action_space, spaces.Discrete | spaces.Box):  # SB3 refuses unbounded Boxes
            raise ValueError(f"action_space must be Discrete or a bounded Box, got {action_space}")
        lattice = goal_lattice(desired)
        discrete = self.subgoal_head == "discrete" or (
            self.subgoal_head == "auto" and lattice is not None and isinstance(action_space, spaces.Discrete)
        )
        if discrete and lattice is None:
            raise ValueError(
                "subgoal_head='discrete' needs a desired_goal space with finite integer bounds and at most "
                f"{MAX_SUBGOAL_CELLS} cells, got {desired}; use subgoal_head='continuous'"
            )
        if not discrete and not (np.all(np.isfinite(desired.low)) and np.all(np.isfinite(desired.high))):
            raise ValueError(f"observation_space: subgoals need a bounded desired_goal Box, got {desired}")
        self.discrete_subgoals = discrete

    @staticmethod
    def _goal_functions(env: Any) -> Any:
        """A copy of the (first) env, unwrapped, whose ``compute_reward`` gives every level's reward;
        kept with the model so that a loaded model runs its hierarchy without an env."""
        try:
            env.get_attr("compute_reward", indices=[0])
        except AttributeError:
            raise ValueError(
                "env must define compute_reward(achieved_goal, desired_goal, info) (GoalEnv conventions); "
                f"{env.get_attr('spec', indices=[0])[0] or env} has none"
            ) from None
        return copy.deepcopy(env.get_attr("unwrapped", indices=[0])[0])

    # ------------------------------------------------------------------ setup
    def _setup_model(self) -> None:
        self._setup_policy(
            n_levels=self.n_levels,
            subgoal_horizon=self.subgoal_horizon,
            discrete_subgoals=self.discrete_subgoals,
        )
        obs_dim = int(np.prod(self.observation_space["observation"].shape))
        goal_dim = int(self.observation_space["desired_goal"].shape[0])
        action_dims = [0 if self.policy.levels[0].discrete else int(np.prod(self.action_space.shape))]
        action_dims += [0 if self.discrete_subgoals else goal_dim] * (self.n_levels - 1)
        self.level_buffers = [
            GoalTransitionBuffer(self.buffer_size, obs_dim, goal_dim, action_dim, self.device)
            for action_dim in action_dims
        ]
        self.successes: deque[bool] = deque(maxlen=self._stats_window_size)
        self.subgoal_successes: deque[bool] = deque(maxlen=self._stats_window_size)

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
        if reset_num_timesteps or self._hierarchy is None or len(self._hierarchy.steps) != self.n_envs:
            self._start_episodes()
        return result

    def _start_episodes(self) -> None:
        """Fresh hierarchies in every env (after the env's reset)."""
        goal_dim = int(self.observation_space["desired_goal"].shape[0])
        obs_dim = int(np.prod(self.observation_space["observation"].shape))
        self._hierarchy = HierarchyState.fresh(self.n_envs, self.n_levels, goal_dim)
        self._start_observations = np.zeros((self.n_envs, self.n_levels, obs_dim), np.float32)
        self._desired_goals = np.zeros((self.n_envs, goal_dim), np.float32)
        self._level_episodes: list[list[list[Step]]] = [
            [[] for _ in range(self.n_levels)] for _ in range(self.n_envs)
        ]

    # ------------------------------------------------------------------ rewards
    def compute_rewards(self, achieved_goals: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """The env's ``compute_reward`` for a batch of ``(achieved_goal, goal)`` pairs, ``(B,)``."""
        infos = [{} for _ in range(len(goals))]
        rewards = self.goal_env.compute_reward(achieved_goals, goals, infos)
        return np.asarray(rewards, np.float32).reshape(len(goals))

    def goals_achieved(self, achieved_goals: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Where the reward is 0: the goal is achieved, ``(B,)`` bool."""
        return self.compute_rewards(achieved_goals, goals) >= 0.0

    # ------------------------------------------------------------------ acting
    def select_actions(
        self, level: int, observations: np.ndarray, goals: np.ndarray, explore: np.ndarray
    ) -> np.ndarray:
        """Actions of ``level`` (primitive ones for level 0, subgoals above) in states
        ``observations`` for ``goals``: greedy, and where ``explore`` random with the probability
        :attr:`exploration_rate`, else (continuous levels) with Gaussian noise."""
        actions = self.policy.greedy_actions(level, observations, goals)
        rows = np.flatnonzero(explore)
        if len(rows) > 0:
            if not self.policy.levels[level].discrete and self.action_noise_std > 0:
                actions[rows] = self.policy.noisy(level, actions[rows], self.action_noise_std)
            random = rows[np.random.rand(len(rows)) < self.exploration_rate]  # noqa: NPY002
            if len(random) > 0:
                actions[random] = self.policy.random_actions(level, len(random))
        return actions

    def _act(
        self,
        state: HierarchyState,
        observations: np.ndarray,
        desired_goals: np.ndarray,
        explore: np.ndarray,
        learning: bool,
    ) -> np.ndarray:
        """Top down: each level whose subgoal below is not in force proposes one; then level 0 acts.
        While ``learning``, the new subgoals are drawn for testing and the states are kept."""
        top = self.n_levels - 1
        for level in range(top, 0, -1):
            rows = np.flatnonzero(~state.active[:, level - 1])
            if len(rows) == 0:
                continue
            goals = desired_goals[rows] if level == top else state.subgoals[rows, level]
            tested = state.testing[rows, level] if level < top else np.zeros(len(rows), bool)
            state.subgoals[rows, level - 1] = self.select_actions(
                level, observations[rows], goals, explore[rows] & ~tested
            )
            state.active[rows, level - 1] = True
            state.steps[rows, level - 1] = 0
            if learning:
                state.testing[rows, level - 1] = tested | (np.random.rand(len(rows)) < self.subgoal_test_rate)  # noqa: NPY002
                self._start_observations[rows, level] = observations[rows]
        actions = self.select_actions(0, observations, state.subgoals[:, 0], explore & ~state.testing[:, 0])
        state.steps[:, 0] += 1
        return actions

    def _end_attempts(
        self, state: HierarchyState, achieved: np.ndarray, env_done: np.ndarray, acting: np.ndarray
    ) -> np.ndarray:
        """After a primitive step: which levels' attempts end, ``(n, n_levels)`` bool, bottom up.

        Level 0's attempt ends when the episode ends, when its goal or a higher level's is
        achieved, or after ``H`` actions; the action of level ``i`` is then complete, and level
        ``i``'s attempt ends in turn on the same conditions (the top level's only with the
        episode or its goal). ``achieved[:, i]``: level ``i``'s goal is achieved; ``acting``:
        the environments whose hierarchy is running.
        """
        top, horizon = self.n_levels - 1, self.subgoal_horizon
        reached_above = np.logical_or.accumulate(achieved[:, ::-1], axis=1)[:, ::-1]
        ended = np.zeros_like(achieved)
        ended[:, 0] = acting & (env_done | reached_above[:, 0] | (state.steps[:, 0] >= horizon))
        for level in range(1, self.n_levels):
            state.steps[ended[:, level - 1], level] += 1
            over = state.steps[:, level] >= horizon if level < top else np.zeros(len(ended), bool)
            ended[:, level] = ended[:, level - 1] & (env_done | reached_above[:, level] | over)
        state.active[ended[:, :top]] = False
        return ended

    def _achievements(
        self, state: HierarchyState, achieved_goals: np.ndarray, desired_goals: np.ndarray
    ) -> np.ndarray:
        """``(n, n_levels)``: each level's goal achieved in ``achieved_goals``."""
        goals = [state.subgoals[:, level] for level in range(self.n_levels - 1)] + [desired_goals]
        return np.stack([self.goals_achieved(achieved_goals, goal) for goal in goals], axis=1)

    # ------------------------------------------------------------------ predict
    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        Primitive action(s) and the hierarchy's ``state = (subgoals, active, steps)``; pass the
        returned state and ``episode_start`` back at the next call (``state=None`` starts
        afresh). Without ``deterministic``, every level acts epsilon-greedily with the current
        exploration rate (no subgoal tests).
        """
        if not isinstance(observation, dict) or not set(GOAL_KEYS) <= set(observation):
            raise ValueError(f"observation must be a dict with the keys {GOAL_KEYS}")
        goal_shape = self.observation_space["desired_goal"].shape
        single = np.ndim(observation["desired_goal"]) == len(goal_shape)
        obs = {key: np.asarray(observation[key], np.float32) for key in GOAL_KEYS}
        if single:
            obs = {key: value[None] for key, value in obs.items()}
        n = len(obs["desired_goal"])
        if state is None:
            hierarchy = HierarchyState.fresh(n, self.n_levels, goal_shape[0])
        else:
            hierarchy = HierarchyState.from_state(state, n, self.n_levels, goal_shape[0])
            if episode_start is not None:
                hierarchy.reset(np.asarray(episode_start, bool).reshape(n))
        achieved = self._achievements(hierarchy, obs["achieved_goal"], obs["desired_goal"])
        self._end_attempts(hierarchy, achieved, np.zeros(n, bool), hierarchy.active[:, 0].copy())
        self.policy.set_training_mode(False)
        actions = self._act(
            hierarchy,
            obs["observation"].reshape(n, -1),
            obs["desired_goal"],
            np.full(n, not deterministic),
            learning=False,
        )
        return (actions[0] if single else actions), hierarchy.as_state()

    # ------------------------------------------------------------------ learning
    def _collect_step(self, callback: BaseCallback, log_interval: int | None) -> bool:
        """One step of every env: act, record the levels' transitions; False if a callback stopped."""
        assert self._last_obs is not None and self._hierarchy is not None and self.env is not None
        state, n = self._hierarchy, self.n_envs
        last_obs: dict[str, np.ndarray] = self._last_obs  # type: ignore[assignment]
        observations = np.asarray(last_obs["observation"], np.float32).reshape(n, -1)
        self._desired_goals[:] = last_obs["desired_goal"]
        self.policy.set_training_mode(False)
        actions = self._act(state, observations, self._desired_goals, np.ones(n, bool), learning=True)
        new_obs, _, dones, infos = self.env.step(actions)
        self.num_timesteps += n
        callback.update_locals(locals())
        if not callback.on_step():
            return False
        self._update_info_buffer(infos, dones)
        next_obs = {key: np.array(new_obs[key], np.float32) for key in GOAL_KEYS}
        for env_index in np.flatnonzero(dones):
            for key in GOAL_KEYS:  # the state the episode ended in, not the reset one
                next_obs[key][env_index] = infos[env_index]["terminal_observation"][key]
        self.record_step(observations, actions, next_obs, np.asarray(dones, bool))
        self._last_obs, self._last_episode_starts = new_obs, dones
        for _ in np.flatnonzero(dones):
            self._episode_num += 1
            if log_interval is not None and self._episode_num % log_interval == 0:
                self.dump_logs()
        return True

    def record_step(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        next_obs: dict[str, np.ndarray],
        dones: np.ndarray,
    ) -> None:
        """The transitions of one primitive step in every env: level 0's, those of the levels whose
        action it completed (hindsight actions, subgoal-test penalties), and the hindsight goals of
        the level episodes it ended."""
        state, n, top = self._hierarchy, self.n_envs, self.n_levels - 1
        assert state is not None
        next_observations = next_obs["observation"].reshape(n, -1)
        achieved_goals = next_obs["achieved_goal"]
        goals = [state.subgoals[:, level].copy() for level in range(top)] + [self._desired_goals.copy()]
        tested = state.testing.copy()
        achieved = self._achievements(state, achieved_goals, self._desired_goals)
        ended = self._end_attempts(state, achieved, dones, np.ones(n, bool))
        for env_index in range(n):
            episodes = self._level_episodes[env_index]
            episodes[0].append(
                Step(
                    observations[env_index],
                    actions[env_index],
                    next_observations[env_index],
                    achieved_goals[env_index],
                    goals[0][env_index],
                )
            )
            for level in range(1, self.n_levels):
                if not ended[env_index, level - 1]:
                    break
                start = self._start_observations[env_index, level].copy()
                episodes[level].append(
                    Step(
                        start,
                        achieved_goals[env_index],
                        next_observations[env_index],
                        achieved_goals[env_index],
                        goals[level][env_index],
                    )
                )
                if level == 1:
                    self.subgoal_successes.append(bool(achieved[env_index, 0]))
                if (
                    tested[env_index, level - 1]
                    and not achieved[env_index, level - 1]
                    and not dones[env_index]
                ):
                    self.level_buffers[level].add(
                        start[None],
                        goals[level][env_index][None],
                        self.policy.encode(level, goals[level - 1][env_index][None]),
                        np.array([-float(self.subgoal_horizon)], np.float32),
                        next_observations[env_index][None],
                        np.ones(1, np.float32),
                        TransitionKind.SUBGOAL_TEST,
                    )
            for level in np.flatnonzero(ended[env_index]):
                self._store_level_episode(int(level), episodes[level])
                episodes[level] = []
            if dones[env_index]:
                self.successes.append(bool(achieved[env_index, top]))
        state.testing[~state.active] = False
        state.reset(dones)

    def _store_level_episode(self, level: int, episode: list[Step]) -> None:
        """A finished level episode into the level's buffer: its action transitions, and each
        relabelled with ``n_sampled_goal`` goals achieved at or after it (HER's ``future``)."""
        if not episode:
            return
        observations, actions, next_observations, achieved_goals, goals = (
            np.stack(part) for part in zip(*episode, strict=True)
        )
        actions = self.policy.encode(level, actions)
        buffer = self.level_buffers[level]
        rewards = self.compute_rewards(achieved_goals, goals)
        buffer.add(
            observations,
            goals,
            actions,
            rewards,
            next_observations,
            (rewards >= 0).astype(np.float32),
            TransitionKind.ACTION,
        )
        if self.n_sampled_goal == 0:
            return
        length = len(episode)
        times = np.repeat(np.arange(length), self.n_sampled_goal)
        futures = times + (np.random.rand(len(times)) * (length - times)).astype(np.int64)  # noqa: NPY002
        new_goals = achieved_goals[futures]
        rewards = self.compute_rewards(achieved_goals[times], new_goals)
        buffer.add(
            observations[times],
            new_goals,
            actions[times],
            rewards,
            next_observations[times],
            (rewards >= 0).astype(np.float32),
            TransitionKind.GOAL,
        )

    def train(self, gradient_steps: int, batch_size: int) -> None:
        """``gradient_steps`` gradient steps of every level whose buffer holds ``batch_size``
        transitions, each followed by the soft update of its target networks."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizers())
        for level, (network, buffer) in enumerate(zip(self.policy.levels, self.level_buffers, strict=True)):
            if buffer.size() < batch_size:
                continue
            losses: dict[str, list[float]] = {}
            for _ in range(gradient_steps):
                for name, value in network.update(buffer.sample(batch_size), self.gamma).items():
                    losses.setdefault(name, []).append(value)
                network.update_targets(self.tau)
            for name, values in losses.items():
                self.logger.record(f"train/level_{level}/{name}", float(np.mean(values)))
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def learn(
        self: SelfHAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "HAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfHAC:
        """
        Train for ``total_timesteps`` environment steps (summed over environments).

        :param total_timesteps: environment steps to train for
        :param callback: called at every step, as in SB3
        :param log_interval: episodes between two logger dumps
        :param tb_log_name: the run's name in TensorBoard
        :param reset_num_timesteps: start counting steps (and logging) from 0
        :param progress_bar: show a progress bar (needs ``tqdm`` and ``rich``)
        :return: the trained model
        """
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        since_training = 0
        while self.num_timesteps < total_timesteps:
            if not self._collect_step(callback, log_interval):
                break
            self._update_exploration_rate(self._total_timesteps)
            since_training += self.n_envs
            if since_training >= self.train_freq and self.num_timesteps >= self.learning_starts:
                since_training = 0
                if self.gradient_steps > 0:
                    self.train(self.gradient_steps, self.batch_size)
        callback.on_training_end()
        return self

    def dump_logs(self) -> None:
        """Write the rollout, success and training statistics to the logger."""
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        self._record_episodes()
        if self.successes:
            self.logger.record("rollout/success_rate", safe_mean(list(self.successes)))
        if self.subgoal_successes:
            self.logger.record("rollout/subgoal_success_rate", safe_mean(list(self.subgoal_successes)))
        self._record_time()
        self.logger.dump(step=self.num_timesteps)

    # ------------------------------------------------------------------ saving
    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "level_buffers",
            "_hierarchy",
            "_start_observations",
            "_desired_goals",
            "_level_episodes",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        optimizers = []
        for index, level in enumerate(self.policy.levels):
            names = ["optimizer"] if level.discrete else ["actor_optimizer", "critic_optimizer"]
            optimizers += [f"policy.levels.{index}.{name}" for name in names]
        return ["policy", *optimizers], []
