"""The SB3 contract for off-policy multi-agent algorithms on PettingZoo parallel environments."""

from __future__ import annotations

import io
import pathlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    ConvertCallback,
    ProgressBarCallback,
)
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file
from stable_baselines3.common.utils import configure_logger, get_device

from sb3_ext.common.validation import check_learning_rate, check_positive_int, check_unit_interval
from sb3_ext.marl.common.buffers import MultiAgentReplayBuffer

#: Hyperparameters every multi-agent algorithm stores and saves (with its own, listed by each class).
BASE_HYPERPARAMETERS = (
    "learning_rate",
    "buffer_size",
    "learning_starts",
    "batch_size",
    "gamma",
    "train_freq",
    "gradient_steps",
    "tensorboard_log",
    "verbose",
    "seed",
)


def check_parallel_env(
    env: Any, agents: Sequence[str] | None = None
) -> tuple[list[str], spaces.Box, spaces.Space, int]:
    """``(agents, observation_space, action_space, state_dim)`` of a PettingZoo parallel env whose
    ``agents`` (default: all, in ``possible_agents`` order) share one flat ``Box`` observation space
    and one action space; ``ValueError`` otherwise."""
    for attribute in ("possible_agents", "observation_space", "action_space", "reset", "step"):
        if not hasattr(env, attribute):
            raise ValueError(
                f"env must be a PettingZoo ParallelEnv (e.g. cooperative_v0.parallel_env()), got {type(env).__name__}"
            )
    if agents is None:
        agents = list(env.possible_agents)
    else:
        unknown = sorted(set(agents) - set(env.possible_agents))
        if unknown or not agents or len(set(agents)) != len(agents):
            raise ValueError(
                f"agents must be distinct agents of the env {list(env.possible_agents)}, got {list(agents)}"
            )
        agents = [name for name in env.possible_agents if name in set(agents)]
    observation_space, action_space = env.observation_space(agents[0]), env.action_space(agents[0])
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"observation_space: the agents need flat Box observations, got {observation_space}")
    for agent in agents[1:]:
        if env.observation_space(agent) != observation_space or env.action_space(agent) != action_space:
            raise ValueError(
                f"observation_space / action_space: every agent must have the same spaces; {agent} has "
                f"{env.observation_space(agent)} / {env.action_space(agent)}, {agents[0]} has "
                f"{observation_space} / {action_space}"
            )
    state_space = getattr(env, "state_space", None)
    state_dim = (
        int(np.prod(state_space.shape))
        if state_space is not None
        else len(agents) * int(observation_space.shape[0])
    )
    return agents, observation_space, action_space, state_dim


def global_state(
    env: Any, observations: dict[str, np.ndarray], agents: list[str], obs_dim: int
) -> np.ndarray:
    """The env's ``state()`` when it has one, else every agent's observation concatenated (zeros
    for agents out of play)."""
    if hasattr(env, "state_space"):
        return np.asarray(env.state(), dtype=np.float32)
    return np.concatenate(
        [np.asarray(observations.get(a, np.zeros(obs_dim)), dtype=np.float32) for a in agents]
    )


class MultiAgentAlgorithm:
    """
    Base of the off-policy multi-agent algorithms: the SB3 contract on a PettingZoo parallel env.

    ``learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps,
    progress_bar)`` collects joint transitions into a :class:`MultiAgentReplayBuffer` (whole
    episodes into a :class:`~sb3_ext.marl.common.buffers.MultiAgentEpisodeBuffer` for recurrent
    agents) and calls :meth:`train` every ``train_freq`` env steps once ``learning_starts`` steps
    are stored;
    ``predict(observations, state, episode_start, deterministic)`` maps a dict of observations to
    a dict of actions and the state to carry to the next step (communicating or recurrent agents);
    ``save`` / ``load`` write SB3's zip format (hyperparameters, networks and optimizers);
    ``set_random_seed``, the SB3 logger (stdout with ``verbose=1``, TensorBoard with
    ``tensorboard_log``) and SB3 callbacks (``num_timesteps``, ``locals``, ``on_step`` returning
    False to stop) work as for SB3's algorithms. A timestep is one parallel-env step (every agent
    in play acts once).

    :param env: a PettingZoo ``ParallelEnv`` whose agents share their observation and action
        spaces
    :param learning_rate: learning rate (a float)
    :param buffer_size: joint transitions kept in the replay buffer
    :param learning_starts: env steps collected before the first update
    :param batch_size: joint transitions per gradient step
    :param gamma: discount factor
    :param train_freq: env steps between updates
    :param gradient_steps: gradient steps per update
    :param tensorboard_log: TensorBoard log folder (``None``: none)
    :param verbose: 0 silent, 1 training statistics
    :param seed: seed of numpy, torch, the env and the buffer's sampling
    :param device: torch device (``"auto"``: CUDA if available)
    :param agents: the agents the model controls (default: all); the others act by ``opponent``
        (e.g. one team of ``mixed_v0`` against a fixed policy; ``env.teams`` names the teams)
    :param opponent: ``opponent(agent, observation) -> action`` for the agents the model does not
        control (default: uniform random actions from the model's generator); not saved
    """

    #: The subclass's own hyperparameters (constructor arguments stored as attributes and saved).
    hyperparameters: ClassVar[tuple[str, ...]] = ()
    #: The torch modules and optimizers saved by ``save`` (attribute names).
    saved_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        env: Any,
        learning_rate: float = 5e-4,
        buffer_size: int = 100_000,
        learning_starts: int = 1_000,
        batch_size: int = 64,
        gamma: float = 0.99,
        train_freq: int = 1,
        gradient_steps: int = 1,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        agents: Sequence[str] | None = None,
        opponent: Callable[[str, np.ndarray], Any] | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        check_learning_rate(learning_rate)
        if callable(learning_rate):
            raise ValueError("learning_rate must be a number for the multi-agent algorithms, got a schedule")
        self.learning_rate = float(learning_rate)
        self.buffer_size = check_positive_int("buffer_size", buffer_size)
        if isinstance(learning_starts, bool) or not isinstance(learning_starts, int) or learning_starts < 0:
            raise ValueError(f"learning_starts must be an integer >= 0, got {learning_starts!r}")
        self.learning_starts = learning_starts
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.gamma = check_unit_interval("gamma", gamma)
        self.train_freq = check_positive_int("train_freq", train_freq)
        self.gradient_steps = check_positive_int("gradient_steps", gradient_steps)
        self.tensorboard_log, self.verbose, self.seed = tensorboard_log, int(verbose), seed
        self.device = get_device(device)
        self.env = env
        self.num_timesteps, self._episode_num, self._n_updates = 0, 0, 0
        self._logger: Logger | None = None
        self._last_obs: dict[str, np.ndarray] | None = None
        self._predict_state: Any = None
        self.ep_info_buffer: deque[dict[str, float]] = deque(maxlen=100)
        if opponent is not None and not callable(opponent):
            raise ValueError(f"opponent must be a callable (agent, observation) -> action, got {opponent!r}")
        self.opponent = opponent
        if env is not None:
            self._set_spaces(*check_parallel_env(env, agents))
            self._check_spaces()
        self.set_random_seed(seed)
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ to implement
    def _check_spaces(self) -> None:
        """Raise ``ValueError`` naming the space when the algorithm cannot use the env's spaces."""

    def _setup_model(self) -> None:
        """Build the networks, the optimizers and the replay buffer."""
        observation_space, action_space = self._buffer_spaces()
        self.replay_buffer = MultiAgentReplayBuffer(
            self.buffer_size, self.agents, observation_space, action_space, self.state_dim, self.device
        )

    def _buffer_spaces(self) -> tuple[spaces.Box, spaces.Space]:
        """The observation and action spaces of what the networks see and output (stored in the
        replay buffer); default: the env's."""
        return self.observation_space, self.action_space

    def _explore(self, observations: dict[str, np.ndarray], state: Any = None) -> dict[str, Any]:
        """The actions of the agents in play while collecting data (with exploration), given the
        state carried from the previous step (``None`` at an episode start)."""
        raise NotImplementedError

    def _predict(self, observations: th.Tensor, deterministic: bool, state: Any = None) -> np.ndarray:
        """Actions ``(n_in_play, ...)`` for observations ``(n_in_play, obs_dim)`` of the agents at
        ``self._predict_index`` (their columns), given the carried state (``None``: a new episode)."""
        raise NotImplementedError

    def train(self, gradient_steps: int, batch_size: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ spaces and seeding
    def _set_spaces(
        self, agents: list[str], observation_space: spaces.Box, action_space: spaces.Space, state_dim: int
    ) -> None:
        self.agents, self.observation_space, self.action_space = list(agents), observation_space, action_space
        self.state_dim, self.n_agents = int(state_dim), len(agents)
        self.obs_dim = int(observation_space.shape[0])
        self.agent_index = {name: i for i, name in enumerate(self.agents)}

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed numpy's generator of the algorithm (exploration, sampling), torch, and the env's
        next reset."""
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        if seed is not None:
            th.manual_seed(seed)
        self._next_reset_seed = seed

    def opponent_action(self, agent: str, observation: np.ndarray) -> Any:
        """The action of an agent the model does not control: ``opponent``'s, else uniform random."""
        if self.opponent is not None:
            return self.opponent(agent, observation)
        space = self.env.action_space(agent)
        if isinstance(space, spaces.Discrete):
            return int(space.start + self.rng.integers(space.n))
        return self.rng.uniform(space.low, space.high).astype(space.dtype)

    def get_env(self) -> Any:
        return self.env

    @property
    def logger(self) -> Logger:
        if self._logger is None:
            self._logger = configure_logger(self.verbose, None)
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        self._logger = logger

    # ------------------------------------------------------------------ acting
    def _obs_tensor(self, observations: dict[str, np.ndarray], names: list[str]) -> th.Tensor:
        stacked = np.stack([np.asarray(observations[name], dtype=np.float32).reshape(-1) for name in names])
        return th.as_tensor(stacked, device=self.device)

    def predict(
        self,
        observations: dict[str, np.ndarray],
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[dict[str, Any], Any]:
        """The action of every agent in ``observations`` (a parallel env's observation dict), as a
        dict, and the state to pass to the next call, as SB3's recurrent ``predict`` returns
        ``(actions, state)``: ``None`` unless the agents communicate (MADDPG's
        ``communication=True``: the messages just sent) or are recurrent (QMIX's
        ``agent_network="gru"``: the agents' hidden states and last actions). ``state=None``, or a
        true ``episode_start`` (a bool, or SB3's array with one entry for the one env), starts an
        episode."""
        if not isinstance(observations, dict) or not observations:
            raise ValueError(
                f"observations must be a non-empty dict agent -> observation, got {type(observations).__name__}"
            )
        unknown = sorted(set(observations) - set(self.agent_index))
        if unknown:
            raise ValueError(f"observations: unknown agents {unknown}; the model's agents are {self.agents}")
        if episode_start is not None and np.asarray(episode_start, dtype=bool).any():
            state = None
        names = [name for name in self.agents if name in observations]
        self._predict_index = [self.agent_index[name] for name in names]
        inputs = self._model_observations({name: observations[name] for name in names}, state)
        with th.no_grad():
            actions = self._predict(self._obs_tensor(inputs, names), deterministic, state)
        chosen = dict(zip(names, actions, strict=True))
        next_state = self._next_state(chosen, inputs, state)
        return {name: self._to_env_action(action) for name, action in chosen.items()}, next_state

    def _model_observations(
        self, observations: dict[str, np.ndarray], state: Any = None
    ) -> dict[str, np.ndarray]:
        """What the networks see of the env's observations (default: the observations)."""
        return observations

    def _next_state(
        self, actions: dict[str, Any], observations: dict[str, np.ndarray], state: Any = None
    ) -> Any:
        """The state ``predict`` returns after the agents chose ``actions`` on ``observations``
        (what the networks saw) with the carried ``state`` (default: ``None``)."""
        return None

    def _to_env_action(self, action: Any) -> Any:
        """A network action (as ``_explore`` and ``_predict`` give it) as the env takes it."""
        if isinstance(self.action_space, spaces.Discrete):
            return int(action)
        return np.asarray(action, dtype=self.action_space.dtype)

    # ------------------------------------------------------------------ learning
    def _init_callback(self, callback: Any, progress_bar: bool) -> BaseCallback:
        if isinstance(callback, list):
            callback = CallbackList(callback)
        if callback is None:
            callback = CallbackList([])
        elif not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        if progress_bar:
            callback = CallbackList([callback, ProgressBarCallback()])
        callback.init_callback(self)  # type: ignore[arg-type]
        return callback

    def learn(
        self,
        total_timesteps: int,
        callback: Any = None,
        log_interval: int = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> MultiAgentAlgorithm:
        """Collect ``total_timesteps`` parallel-env steps, training as configured; returns self."""
        check_positive_int("total_timesteps", total_timesteps)
        if self.env is None:
            raise ValueError("env: this model was loaded without an env; pass env= to load() to train it")
        if reset_num_timesteps or self._logger is None:
            name = tb_log_name or type(self).__name__
            self._logger = configure_logger(self.verbose, self.tensorboard_log, name, reset_num_timesteps)
        if reset_num_timesteps:
            self.num_timesteps, self._episode_num = 0, 0
            self._last_obs = None
        self._total_timesteps = self.num_timesteps + total_timesteps
        callback = self._init_callback(callback, progress_bar)
        start, start_steps = time.time_ns(), self.num_timesteps
        callback.on_training_start(locals(), globals())
        episode_return, episode_length = 0.0, 0
        while self.num_timesteps < self._total_timesteps:
            if self._last_obs is None or not self.env.agents:
                self.replay_buffer.end_episode()  # an episode cut short by a new learn() call
                self._last_obs, _ = self.env.reset(seed=self._next_reset_seed)
                self._next_reset_seed = None
                self._predict_state = None  # a new episode: predict's state starts afresh
                episode_return, episode_length = 0.0, 0
            observations = self._last_obs
            state = global_state(self.env, observations, self.agents, self.obs_dim)
            mine = self._model_observations(
                {name: obs for name, obs in observations.items() if name in self.agent_index},
                self._predict_state,
            )
            actions = self._explore(mine, self._predict_state) if mine else {}
            env_actions = {name: self._to_env_action(action) for name, action in actions.items()}
            others = {
                n: self.opponent_action(n, obs)
                for n, obs in observations.items()
                if n not in self.agent_index
            }
            next_observations, rewards, terminations, truncations, infos = self.env.step(
                {**env_actions, **others}
            )
            next_state = global_state(self.env, next_observations, self.agents, self.obs_dim)
            self._predict_state = self._next_state(actions, mine, self._predict_state)
            if actions:  # a step where none of the model's agents is in play teaches nothing
                next_mine = self._model_observations(
                    {name: next_observations[name] for name in actions}, self._predict_state
                )
                self.replay_buffer.add(mine, actions, rewards, next_mine, terminations, state, next_state)
                episode_return += float(np.mean([rewards[name] for name in actions]))
            self.num_timesteps += 1
            episode_length += 1
            self._last_obs = {name: next_observations[name] for name in self.env.agents}
            self._on_step()
            callback.update_locals(locals())
            if not callback.on_step():
                break
            if not self.env.agents:
                self.replay_buffer.end_episode()
                self._episode_num += 1
                self.ep_info_buffer.append({"r": episode_return, "l": episode_length})
                if log_interval and self._episode_num % log_interval == 0:
                    self._dump_logs(start, start_steps)
            if self.num_timesteps >= self.learning_starts and self.num_timesteps % self.train_freq == 0:
                self.train(self.gradient_steps, self.batch_size)
        callback.on_training_end()
        return self

    def _on_step(self) -> None:
        """Called after every env step (e.g. to update an exploration schedule)."""

    def _dump_logs(self, start_ns: int, start_steps: int) -> None:
        elapsed = max((time.time_ns() - start_ns) / 1e9, 1e-9)
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", float(np.mean([e["r"] for e in self.ep_info_buffer])))
            self.logger.record("rollout/ep_len_mean", float(np.mean([e["l"] for e in self.ep_info_buffer])))
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        self.logger.record("time/fps", int((self.num_timesteps - start_steps) / elapsed))
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    # ------------------------------------------------------------------ saving
    def _hyperparameter_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (*BASE_HYPERPARAMETERS, *self.hyperparameters)}

    def save(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """SB3's zip format: the hyperparameters, the spaces, the counters, and the state dicts of
        the networks and optimizers (not the replay buffer)."""
        data = {
            "hyperparameters": self._hyperparameter_values(),
            "spaces": (self.agents, self.observation_space, self.action_space, self.state_dim),
            "num_timesteps": self.num_timesteps,
            "n_updates": self._n_updates,
        }
        params = {name: getattr(self, name).state_dict() for name in self.saved_modules}
        save_to_zip_file(path, data=data, params=params)

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path | io.BufferedIOBase,
        env: Any = None,
        device: th.device | str = "auto",
        opponent: Callable[[str, np.ndarray], Any] | None = None,
    ) -> MultiAgentAlgorithm:
        """A saved model; ``env`` (with the same agents and spaces) is needed to train it further,
        ``opponent`` to act for the agents it does not control (default: uniform random)."""
        data, params, _ = load_from_zip_file(path, device=device)
        assert data is not None
        hyperparameters = dict(data["hyperparameters"])
        model = cls(env=None, device=device, opponent=opponent, _init_setup_model=False, **hyperparameters)
        model._set_spaces(*data["spaces"])
        if env is not None:
            saved = data["spaces"]
            found = check_parallel_env(env, saved[0])
            if found[0] != saved[0] or found[1] != saved[1] or found[2] != saved[2]:
                raise ValueError(
                    f"env: its agents and spaces {found[:3]} differ from the saved model's {saved[:3]}"
                )
            model.env = env
        model._check_spaces()
        model._setup_model()
        for name, state_dict in params.items():
            getattr(model, name).load_state_dict(state_dict)
        model.num_timesteps, model._n_updates = data["num_timesteps"], data["n_updates"]
        return model
