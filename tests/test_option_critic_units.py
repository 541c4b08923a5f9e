"""OptionCritic's pieces one at a time, with exact expected values: the rollout buffer, the
network heads and the policy's call-and-return execution, the option statistics and logs, the
argument checks and the defaults of the public API."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch._dynamo  # noqa: F401  (imported by the first optimizer; once at collection, not in every forked test run)
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from stable_baselines3.common.utils import get_device, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnvWrapper

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.option_critic import CnnPolicy, OptionCritic, OptionCriticPolicy, OptionRolloutBuffer
from sb3_ext.option_critic.policies import OptionCriticNetwork


def image_spaces() -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    return gym.spaces.Box(0, 255, (3, 36, 36), dtype=np.uint8), gym.spaces.Discrete(3)


@pytest.mark.parametrize("by_position", [False, True])
def test_cnn_policy_defaults_to_nature_cnn_and_accepts_every_argument_by_position(by_position: bool) -> None:
    obs_space, act_space = image_spaces()
    if by_position:
        policy = CnnPolicy(obs_space, act_space, lambda _: 1e-3, 2, None, th.nn.ReLU, None)
    else:
        policy = CnnPolicy(obs_space, act_space, lambda _: 1e-3, n_options=2)
    assert isinstance(policy.net.features_extractor, NatureCNN)
    assert policy.net_arch == [] and policy.n_options == 2
    # The features extractor class given by position (the eighth argument) or by name wins.
    flat = CnnPolicy(obs_space, act_space, lambda _: 1e-3, 2, [8], th.nn.ReLU, None, FlattenExtractor)
    named = CnnPolicy(obs_space, act_space, lambda _: 1e-3, features_extractor_class=FlattenExtractor)
    for policy in (flat, named):
        assert type(policy.net.features_extractor) is FlattenExtractor
    assert flat.net_arch == [8] and named.net_arch == [64, 64]
    assert issubclass(CnnPolicy, OptionCriticPolicy)


# --------------------------------------------------------------------------- rollout buffer
def test_rollout_buffer_layout_returns_and_errors() -> None:
    """Storage dtypes and shapes, the n-step returns G_t = r_t + gamma (1 - done_t) G_{t+1} by hand,
    the time-major flattening of get(), and the errors of a misused buffer."""
    obs_space = gym.spaces.Box(0, 255, (2,), dtype=np.uint8)
    buffer = OptionRolloutBuffer(3, obs_space, 2, n_options=4)
    assert (buffer.n_steps, buffer.n_envs, buffer.n_options) == (3, 2, 4)
    assert buffer.obs_shape == (2,) and buffer.obs_dtype == np.uint8
    assert buffer.observations.shape == (4, 2, 2) and buffer.observations.dtype == np.uint8
    for name, dtype in [("actions", np.int64), ("options", np.int64)] + [
        (name, np.float32) for name in ("rewards", "dones", "returns")
    ]:
        assert getattr(buffer, name).shape == (3, 2) and getattr(buffer, name).dtype == dtype, name
    assert buffer.pos == 0 and buffer.full is False
    with pytest.raises(
        ValueError, match=r"^the rollout is not complete: call finish\(\) after n_steps add\(\) calls$"
    ):
        buffer.get()
    with pytest.raises(ValueError, match=r"^finish\(\) needs 3 stored steps, got 0$"):
        buffer.finish(np.zeros((2, 2)), np.zeros(2), 0.5)

    obs = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]], [[13, 14], [15, 16]]])
    rewards = np.array([[1.0, 2.0], [0.5, -1.0], [0.25, 4.0]])
    dones = np.array([[0, 1], [0, 0], [1, 0]])
    for t in range(3):
        # Flat observations and (n_envs, 1) actions are reshaped to the buffer's layout.
        buffer.add(obs[t].reshape(-1), np.array([[t], [t + 1]]), np.array([t, 3 - t]), rewards[t], dones[t])
    assert buffer.pos == 3 and buffer.full is False
    with pytest.raises(ValueError, match=r"^the rollout buffer holds 3 steps; call reset\(\) first$"):
        buffer.add(obs[0], np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="^the rollout is not complete"):
        buffer.get()
    buffer.finish(obs[3].reshape(-1).tolist(), np.array([[8.0], [-2.0]]), 0.5)  # flat obs, (n_envs, 1) values
    assert buffer.full is True
    # env 0: G_2 = 0.25 (episode ends), G_1 = 0.5 + 0.5 * 0.25, G_0 = 1 + 0.5 * G_1;
    # env 1: G_2 = 4 + 0.5 * (-2), G_1 = -1 + 0.5 * G_2, G_0 = 2 (episode ends).
    expected = np.array([[1.3125, 2.0], [0.625, 0.5], [0.25, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(buffer.returns, expected)
    np.testing.assert_array_equal(buffer.observations, obs)

    data = buffer.get()
    np.testing.assert_array_equal(data.observations.numpy(), obs.reshape(8, 2))
    assert data.observations.dtype == th.uint8
    np.testing.assert_array_equal(data.actions.numpy(), [0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(data.options.numpy(), [0, 3, 1, 2, 2, 1])
    np.testing.assert_array_equal(data.returns.numpy(), expected.reshape(-1))
    np.testing.assert_array_equal(data.dones.numpy(), [0, 1, 0, 0, 1, 0])
    assert data.actions.dtype == data.options.dtype == th.int64
    assert data.returns.dtype == data.dones.dtype == th.float32
    on_meta = buffer.get("meta")  # every tensor on the requested device
    assert all(tensor.device.type == "meta" for tensor in on_meta)

    buffer.reset()
    assert buffer.pos == 0 and buffer.full is False
    with pytest.raises(ValueError, match="^the rollout is not complete"):
        buffer.get()
    buffer.add(obs[0], np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))  # room again after reset()
    assert buffer.pos == 1


def test_rollout_returns_are_accumulated_in_float32() -> None:
    """Bootstrap values given in float64 are converted first: the recursion runs in float32."""
    buffer = OptionRolloutBuffer(4, gym.spaces.Discrete(3), 1, n_options=2)
    rewards = [0.1, -0.1, 0.6, 0.1]
    for t in range(4):
        buffer.add(np.array([t % 3]), np.zeros(1), np.zeros(1), np.array([rewards[t]]), np.zeros(1))
    buffer.finish(np.array([0]), np.array([-0.536]), 0.99)
    ret = np.float32(-0.536)
    expected = []
    for r in reversed(rewards):
        ret = np.float32(r) + np.float32(0.99) * np.float32(1.0) * ret
        expected.append(ret)
    np.testing.assert_array_equal(buffer.returns[:, 0], np.array(expected[::-1], dtype=np.float32))


# --------------------------------------------------------------------------- arguments
def four_rooms(n_envs: int = 1):
    return make_vec_env("AdvRL/FourRooms-v0", n_envs=n_envs, seed=0)


def test_defaults_are_the_documented_ones() -> None:
    model = OptionCritic("MlpPolicy", four_rooms())
    expected = dict(
        learning_rate=7e-4,
        n_options=4,
        n_steps=5,
        gamma=0.99,
        ent_coef=0.01,
        vf_coef=0.5,
        termination_reg=0.01,
        max_grad_norm=0.5,
        exploration_fraction=0.1,
        exploration_initial_eps=1.0,
        exploration_final_eps=0.05,
        exploration_rate=1.0,
        target_update_interval=1000,
        tau=1.0,
        verbose=0,
        seed=None,
        tensorboard_log=None,
        n_envs=1,
    )
    for name, value in expected.items():
        assert getattr(model, name) == value, name
        assert type(getattr(model, name)) is type(value), name
    assert model.device == get_device("auto")
    assert model._stats_window_size == 100 and model.option_durations.maxlen == 100
    assert model.policy_kwargs == {} and model.policy.n_options == 4
    assert model.policy.net_arch == [64, 64] and model.policy.fixed_termination_prob is None
    assert model._last_options is None and model._last_target_update == 0
    assert model.rollout_buffer.observations.shape == (6, 1) and model.rollout_buffer.n_options == 4
    # A plain policy: 64-unit hidden layers, learned terminations, Adam at the initial rate.
    assert isinstance(model.policy.optimizer, th.optim.Adam)
    assert model.policy.optimizer.param_groups[0]["lr"] == 7e-4
    # The model is built at creation, with the policy over the options.
    assert isinstance(model.policy, OptionCriticPolicy) and model.policy.net.q_head.out_features == 4


def test_arguments_are_kept_as_given() -> None:
    model = OptionCritic(
        "MlpPolicy",
        four_rooms(2),
        learning_rate=lambda progress: 0.01 * progress,
        n_options=2,
        n_steps=3,
        gamma=0.0,
        ent_coef=0,
        vf_coef=0,
        termination_reg=-0.5,
        max_grad_norm=2,
        exploration_fraction=0.5,
        exploration_initial_eps=0.7,
        exploration_final_eps=0.2,
        target_update_interval=1,
        tau=0.25,
        stats_window_size=7,
        policy_kwargs=dict(net_arch=[8], optimizer_kwargs=dict(eps=0.125)),
        verbose=1,
        seed=3,
        device="cpu",
    )
    for name, value in dict(
        n_options=2,
        n_steps=3,
        gamma=0.0,
        ent_coef=0.0,
        vf_coef=0.0,
        termination_reg=-0.5,
        max_grad_norm=2.0,
        exploration_fraction=0.5,
        exploration_initial_eps=0.7,
        exploration_final_eps=0.2,
        exploration_rate=0.7,
        target_update_interval=1,
        tau=0.25,
        verbose=1,
        seed=3,
        n_envs=2,
    ).items():
        assert getattr(model, name) == value, name
    for name in ("ent_coef", "vf_coef", "max_grad_norm", "gamma"):
        assert type(getattr(model, name)) is float, name
    assert model.option_durations.maxlen == 7 and model._stats_window_size == 7
    assert model.policy.net_arch == [8] and model.policy.n_options == 2
    # The optimizer starts at lr_schedule(1) = 0.01, with the given keyword arguments.
    group = model.policy.optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(0.01) and group["eps"] == 0.125
    assert model.rollout_buffer.actions.shape == (3, 2) and model._running_durations.shape == (2,)
    assert model._option_steps.shape == (2,) and model._option_steps.dtype == np.int64
    assert model._running_durations.dtype == np.int64


def test_an_unbuilt_model_checks_its_arguments() -> None:
    """_init_setup_model=False builds no policy, and every argument is still checked."""
    model = OptionCritic("MlpPolicy", None, n_options=3, _init_setup_model=False)
    assert not hasattr(model, "policy") and model.env is None and model.n_options == 3
    env = four_rooms()
    with pytest.raises(ValueError, match="^n_options must be"):
        OptionCritic("MlpPolicy", env, n_options=0, _init_setup_model=False)
    model = OptionCritic("MlpPolicy", env, _init_setup_model=False)
    assert not hasattr(model, "policy") and not hasattr(model, "rollout_buffer")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_options=0), r"^n_options must be an? integer in \[1, inf\), got 0$"),
        (dict(n_options=1.0), "^n_options must be an integer"),
        (dict(n_steps=0), r"^n_steps must be an? integer in \[1, inf\), got 0$"),
        (dict(gamma=1.5), r"^gamma must be a number in \[0, 1\], got 1.5$"),
        (dict(gamma=-0.1), "^gamma must"),
        (dict(learning_rate=0.0), "^learning_rate must be a finite number > 0"),
        (dict(ent_coef=-0.01), r"^ent_coef must be a number in \[0, inf\), got -0.01$"),
        (dict(vf_coef=-0.01), r"^vf_coef must be a number in \[0, inf\), got -0.01$"),
        (dict(termination_reg=float("nan")), "^termination_reg must be finite"),
        (dict(termination_reg="0.1"), "^termination_reg must be a real number"),
        (dict(max_grad_norm=0.0), r"^max_grad_norm must be a number in \(0, inf\), got 0.0$"),
        (dict(exploration_fraction=0.0), "^exploration_fraction must"),
        (dict(exploration_initial_eps=1.5), "^exploration_initial_eps must"),
        (dict(exploration_final_eps=-0.5), "^exploration_final_eps must"),
        (
            dict(target_update_interval=0),
            r"^target_update_interval must be an? integer in \[1, inf\), got 0$",
        ),
        (dict(tau=0.0), r"^tau must be a number in \(0, 1\], got 0.0$"),
        (dict(tau=1.5), r"^tau must be a number in \(0, 1\], got 1.5$"),
        (dict(policy_kwargs=dict(n_options=2)), r"^pass n_options to OptionCritic, not in policy_kwargs$"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OptionCritic("MlpPolicy", four_rooms(), _init_setup_model=False, **kwargs)


class DictObservations(gym.Env):
    observation_space = gym.spaces.Dict({"cell": gym.spaces.Discrete(3)})
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return {"cell": 0}, {}

    def step(self, action):
        return {"cell": 0}, 0.0, True, False, {}


def test_unsupported_spaces_are_refused() -> None:
    pendulum = gym.make("AdvRL/Pendulum-v0")
    message = (
        "OptionCritic supports only a Discrete action space (softmax intra-option policies), "
        f"got {pendulum.action_space}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        OptionCritic("MlpPolicy", pendulum)
    with pytest.raises(ValueError, match="^OptionCritic does not support a Dict observation space"):
        OptionCritic(OptionCriticPolicy, DictObservations())
    with pytest.raises(ValueError, match="^OptionCriticPolicy supports only a Discrete action space"):
        OptionCriticPolicy(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Box(-1, 1, (1,)), lambda _: 1e-3)


# --------------------------------------------------------------------------- statistics and logs
class Capture(KVWriter):
    """Keeps every dump: (values, exclusions, step)."""

    def __init__(self) -> None:
        self.dumps: list[tuple[dict, dict, int]] = []

    def write(self, key_values, key_excluded, step=0) -> None:
        self.dumps.append((dict(key_values), dict(key_excluded), step))


def capture_logs(model: OptionCritic) -> Capture:
    capture = Capture()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    model._setup_learn(10)
    return capture


def test_option_statistics_count_steps_and_durations() -> None:
    """An option ends when a new one is selected in its environment or its episode ends; the
    shares are the steps spent in each option since the last dump."""
    model = OptionCritic("MlpPolicy", four_rooms(2), n_options=3, stats_window_size=3, device="cpu")
    capture = capture_logs(model)
    model.dump_logs()  # nothing tracked yet: shares of 0, no duration, no iteration count
    values, excluded, step = capture.dumps[-1]
    assert {key: values[key] for key in values if key.startswith("rollout/option")} == {
        "rollout/option_share_0": 0.0,
        "rollout/option_share_1": 0.0,
        "rollout/option_share_2": 0.0,
    }
    assert "time/iterations" not in values and step == 0

    model._running_durations[:] = 0
    model._track_options(np.array([2, 2]), np.array([True, True]))  # first options: nothing ends
    assert list(model.option_durations) == [] and model._running_durations.tolist() == [1, 1]
    model.num_timesteps = 1
    model.dump_logs(iteration=1)  # one step counted per env: 2 steps in option 2
    values, excluded, step = capture.dumps[-1]
    assert values["rollout/option_share_2"] == 1.0 and values["rollout/option_share_0"] == 0.0
    assert values["time/iterations"] == 1 and excluded["time/iterations"] == ("tensorboard",)
    assert "rollout/option_duration_mean" not in values and step == 1
    assert model._option_steps.tolist() == [0, 0, 0]  # reset by the dump

    model._track_options(np.array([2, 0]), np.array([False, True]))  # env 1 switches after 1 step
    assert list(model.option_durations) == [1] and model._running_durations.tolist() == [2, 1]
    model.dump_logs(iteration=2)
    assert capture.dumps[-1][0]["rollout/option_duration_mean"] == 1.0
    model._track_options(np.array([2, 0]), np.array([False, False]))
    model._finish_options(np.array([True, False]))  # env 0's episode ends: its option lasted 3 steps
    assert list(model.option_durations) == [1, 3] and model._running_durations.tolist() == [0, 2]
    model._track_options(np.array([1, 1]), np.array([True, True]))  # env 0 had ended: no extra duration
    assert list(model.option_durations) == [1, 3, 2] and model._running_durations.tolist() == [1, 1]
    model._track_options(np.array([1, 0]), np.array([False, True]))
    assert list(model.option_durations) == [3, 2, 1]  # a window of stats_window_size durations
    model.num_timesteps = 9
    model.dump_logs(iteration=4)
    values, excluded, step = capture.dumps[-1]
    assert values["rollout/option_duration_mean"] == 2.0 and step == 9
    # steps since the last dump (6): option 0 in 2, option 1 in 3, option 2 in 1
    assert [values[f"rollout/option_share_{w}"] for w in range(3)] == [2 / 6, 3 / 6, 1 / 6]
    assert values["time/iterations"] == 4


def test_a_single_counted_step_has_a_share_of_one() -> None:
    model = OptionCritic("MlpPolicy", four_rooms(), n_options=2, device="cpu")
    capture = capture_logs(model)
    model._track_options(np.array([1]), np.array([True]))
    model.dump_logs()
    values, _, _ = capture.dumps[-1]
    assert values["rollout/option_share_1"] == 1.0 and values["rollout/option_share_0"] == 0.0


def test_train_logs_the_losses_it_descends() -> None:
    model = OptionCritic("MlpPolicy", four_rooms(2), n_options=3, n_steps=2, device="cpu", seed=0)
    capture = capture_logs(model)
    _, callback = model._setup_learn(100)
    assert model.logger.output_formats == [capture]
    assert model.collect_rollouts(model.env, callback, model.n_steps)
    expected = {f"train/{name}": value.item() for name, value in model.compute_losses().items()}
    assert set(expected) == {
        "train/loss",
        "train/policy_loss",
        "train/critic_loss",
        "train/entropy_loss",
        "train/termination_loss",
        "train/termination_prob",
    }
    model.train()
    model.logger.dump(step=4)
    values, excluded, step = capture.dumps[-1]
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-6) and excluded[key] == ("",), key
    assert values["train/n_updates"] == 1 and excluded["train/n_updates"] == ("tensorboard",)
    model.train()
    model.logger.dump(step=5)
    values, _, _ = capture.dumps[-1]
    assert values["train/n_updates"] == 2 and model._n_updates == 2
    model._n_updates = 0
    model.train()
    model.logger.dump(step=6)
    values, _, _ = capture.dumps[-1]
    assert values["train/n_updates"] == 1


# --------------------------------------------------------------------------- learn
def tiny_model(n_envs: int = 1, **kwargs) -> OptionCritic:
    kwargs.setdefault("policy_kwargs", dict(net_arch=[8]))
    return OptionCritic(
        "MlpPolicy", four_rooms(n_envs), n_steps=1, n_options=2, device="cpu", seed=0, **kwargs
    )


def test_learn_counts_iterations_and_dumps_every_log_interval() -> None:
    model = tiny_model()
    capture = Capture()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    assert model.learn(6, log_interval=2) is model
    assert model.num_timesteps == 6 and model._n_updates == 6
    assert [values["time/iterations"] for values, _, _ in capture.dumps] == [2, 4, 6]
    assert [step for _, _, step in capture.dumps] == [2, 4, 6]
    capture.dumps.clear()
    model.learn(6, log_interval=None)  # no dumps; the steps start again from 0
    assert capture.dumps == [] and model.num_timesteps == 6 and model._n_updates == 12
    model.learn(4, log_interval=1, reset_num_timesteps=False)  # 4 more steps: from 6 to 10
    assert model.num_timesteps == 10 and [values["time/iterations"] for values, _, _ in capture.dumps] == [
        1,
        2,
        3,
        4,
    ]


@pytest.mark.filterwarnings("ignore:rich is experimental")
def test_learn_defaults_dump_every_hundred_iterations_into_an_option_critic_run(tmp_path, capsys) -> None:
    model = tiny_model(tensorboard_log=str(tmp_path))
    model.learn(2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["OptionCritic_1"]
    model.learn(2)  # reset_num_timesteps=True by default: a new run, counted from 0
    assert model.num_timesteps == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["OptionCritic_1", "OptionCritic_2"]
    logged = sorted(path.name for path in (tmp_path / "OptionCritic_2").iterdir())
    assert len(logged) == 1 and logged[0].startswith("events.out.tfevents")
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # verbose=0, no progress bar
    model._setup_learn(10)  # the defaults of _setup_learn: a run named "run"
    assert "run_1" in [path.name for path in tmp_path.iterdir()]
    capture = Capture()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    model.learn(100)  # log_interval=100 by default
    assert [values["time/iterations"] for values, _, _ in capture.dumps] == [100]
    model.learn(3, progress_bar=True)
    out, _ = capsys.readouterr()
    assert "3/3" in out


class StopAt(BaseCallback):
    """Stops the training at the ``stop``-th environment step."""

    def __init__(self, stop: int) -> None:
        super().__init__()
        self.stop, self.ended = stop, False

    def _on_step(self) -> bool:
        assert "new_obs" in self.locals and "acting" in self.locals
        return self.n_calls < self.stop

    def _on_training_start(self) -> None:
        assert self.locals["total_timesteps"] == 100 and self.globals["OptionCritic"] is OptionCritic

    def _on_training_end(self) -> None:
        self.ended = True


def test_a_callback_stops_the_rollout_and_the_training() -> None:
    model = tiny_model(n_envs=2)
    model.n_steps = 5
    model.rollout_buffer = OptionRolloutBuffer(5, model.observation_space, 2, 2)
    callback = StopAt(3)
    assert model.learn(100, callback=callback) is model
    assert callback.ended and callback.n_calls == 3
    assert model.num_timesteps == 6 and model._n_updates == 0
    assert model.rollout_buffer.pos == 2 and not model.rollout_buffer.full


def test_continued_training_keeps_the_running_options(tmp_path) -> None:
    model = tiny_model(n_envs=2)
    model.learn(4)
    model._last_options = np.array([1, 0])
    model._last_episode_starts = np.array([False, True])
    model._running_durations = np.array([3, 5])
    model._last_target_update = 3
    model._setup_learn(10, reset_num_timesteps=False)
    assert model._last_options.tolist() == [1, 0] and model._last_episode_starts.tolist() == [False, True]
    assert model._running_durations.tolist() == [3, 5] and model._last_target_update == 3
    assert model.num_timesteps == 4
    model._setup_learn(10)  # a new run: new options everywhere
    assert model._last_options.tolist() == [0, 0] and model._last_options.dtype == np.int64
    assert model._last_episode_starts.tolist() == [True, True] and model._last_episode_starts.dtype == bool
    assert model._running_durations.tolist() == [0, 0] and model._running_durations.dtype == np.int64
    assert model._last_target_update == 0 and model.num_timesteps == 0
    # A first run that does not reset the step count still starts every environment afresh,
    first = tiny_model(n_envs=2)
    first.learn(2, reset_num_timesteps=False)
    assert first.num_timesteps == 2
    # and so does continued training with a different number of environments.
    model.num_timesteps = 7
    model.save(tmp_path / "model.zip")
    model = OptionCritic.load(tmp_path / "model.zip", env=four_rooms(3), device="cpu")
    assert model._last_options.tolist() == [0, 0]
    model._setup_learn(10, reset_num_timesteps=False)
    assert model._last_options.tolist() == [0, 0, 0] and model._last_episode_starts.tolist() == [True] * 3
    assert model._running_durations.tolist() == [0, 0, 0] and model._last_target_update == 7


# --------------------------------------------------------------------------- target network, training modes
class BatchNormExtractor(BaseFeaturesExtractor):
    """Linear features with batch normalization: running statistics (buffers) that move only in
    training mode."""

    def __init__(self, observation_space: gym.spaces.Space, features_dim: int = 6) -> None:
        super().__init__(observation_space, features_dim)
        self.linear = th.nn.Linear(get_flattened_obs_dim(observation_space), features_dim)
        self.norm = th.nn.BatchNorm1d(features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.norm(self.linear(observations.flatten(1)))


def batch_norm_model(**kwargs) -> OptionCritic:
    policy_kwargs = dict(net_arch=[4], features_extractor_class=BatchNormExtractor)
    return tiny_model(n_envs=2, policy_kwargs=policy_kwargs, **kwargs)


def norm_stats(net) -> list[th.Tensor]:
    return [buffer.detach().clone() for buffer in net.buffers()]


def test_rollouts_and_predictions_run_in_evaluation_mode_and_updates_in_training_mode() -> None:
    model = batch_norm_model(target_update_interval=10**6)
    policy = model.policy
    assert not policy.net_target.training  # the target network is always evaluated
    before = norm_stats(policy.net)
    _, callback = model._setup_learn(100)
    assert model.collect_rollouts(model.env, callback, 1)
    model.predict(np.array([3, 4]))
    assert not policy.training and not policy.net.training
    for old, new in zip(before, norm_stats(policy.net), strict=True):
        assert th.equal(old, new)  # evaluation mode: running statistics untouched
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.train()
    assert policy.training and policy.net.training and not policy.net_target.training
    assert int(policy.net.features_extractor.norm.num_batches_tracked) == 1
    assert not th.equal(before[0], norm_stats(policy.net)[0])
    model.predict(np.array([3, 4]))
    assert not policy.training and not policy.net.training


def test_target_network_updates_every_target_update_interval_steps() -> None:
    """tau-soft update of the parameters, a copy of the buffers (batch-norm statistics), once
    ``num_timesteps - last update >= target_update_interval``."""
    model = batch_norm_model(target_update_interval=10, tau=0.25)
    model.set_logger(Logger(folder=None, output_formats=[]))
    _, callback = model._setup_learn(100)
    assert model.collect_rollouts(model.env, callback, 1)
    policy = model.policy
    target_before = [param.detach().clone() for param in policy.net_target.parameters()]
    model._last_target_update, model.num_timesteps = 5, 14  # 9 steps since the last update
    model.train()
    for old, param in zip(target_before, policy.net_target.parameters(), strict=True):
        assert th.equal(old, param)
    assert model._last_target_update == 5
    model.num_timesteps = 15  # 10 steps since the last update
    model.train()
    assert model._last_target_update == 15
    for old, online, param in zip(
        target_before, policy.net.parameters(), policy.net_target.parameters(), strict=True
    ):
        th.testing.assert_close(param, 0.75 * old + 0.25 * online.detach(), rtol=1e-6, atol=1e-7)
    for online, target in zip(policy.net.buffers(), policy.net_target.buffers(), strict=True):
        assert th.equal(online, target)
    assert int(policy.net_target.features_extractor.norm.num_batches_tracked) == 2


def test_policy_save_and_load_restore_the_constructor_arguments(tmp_path) -> None:
    obs_space, act_space = gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2)
    policy = OptionCriticPolicy(
        obs_space,
        act_space,
        lambda _: 1e-3,
        n_options=3,
        net_arch=[5],
        activation_fn=th.nn.Tanh,
        fixed_termination_prob=0.25,
        features_extractor_class=BatchNormExtractor,
        features_extractor_kwargs=dict(features_dim=7),
        optimizer_class=th.optim.SGD,
        optimizer_kwargs=dict(momentum=0.5),
    )
    policy.save(tmp_path / "policy.pt")
    loaded = OptionCriticPolicy.load(tmp_path / "policy.pt")
    assert loaded.n_options == 3 and loaded.net_arch == [5] and loaded.activation_fn is th.nn.Tanh
    assert loaded.fixed_termination_prob == 0.25 and loaded.net.termination_head is None
    assert loaded.features_extractor_kwargs == dict(features_dim=7)
    assert isinstance(loaded.optimizer, th.optim.SGD) and loaded.optimizer_kwargs == dict(momentum=0.5)
    assert loaded.optimizer.param_groups[0]["momentum"] == 0.5
    obs = th.tensor([[0.1, -0.5, 0.9], [0.3, 0.2, -0.7]])
    for net, loaded_net in ((policy.net, loaded.net), (policy.net_target, loaded.net_target)):
        net.set_training_mode(False)
        loaded_net.set_training_mode(False)
        for got, expected in zip(loaded_net(obs), net(obs), strict=True):
            assert th.equal(got, expected)
    # The network alone round-trips too.
    policy.net.save(tmp_path / "net.pt")
    net = type(policy.net).load(tmp_path / "net.pt")
    assert (net.n_options, net.net_arch, net.activation_fn, net.fixed_termination_prob) == (
        3,
        [5],
        th.nn.Tanh,
        0.25,
    )
    assert net.features_dim == 7
    net.set_training_mode(False)
    assert th.equal(net(obs).q_values, policy.net(obs).q_values)


# --------------------------------------------------------------------------- call-and-return execution
def linear_policy(fixed_termination_prob: float | None = None) -> OptionCriticPolicy:
    """Three options over four actions in five one-hot states, with hand-set linear heads: greedy
    option 2 in state 0, 0 in state 1, 1 in state 2; beta = sigmoid(2, -2, 0) for options 0, 1, 2
    (0.5 exactly for option 2); modal actions 3, 0, 1 of options 0, 1, 2 with small logits."""
    policy = OptionCriticPolicy(
        gym.spaces.Discrete(5),
        gym.spaces.Discrete(4),
        lambda _: 1e-3,
        n_options=3,
        net_arch=[],
        fixed_termination_prob=fixed_termination_prob,
    )
    net = policy.net
    with th.no_grad():
        net.q_head.weight.zero_()
        net.q_head.bias.zero_()
        for state, option in ((0, 2), (1, 0), (2, 1)):
            net.q_head.weight[option, state] = 1.0
        if net.termination_head is not None:
            net.termination_head.weight.zero_()
            net.termination_head.bias.copy_(th.tensor([2.0, -2.0, 0.0]))
        net.policy_head.weight.zero_()
        bias = th.zeros(3, 4)
        bias[0, 3] = bias[1, 0] = bias[2, 1] = 0.2
        net.policy_head.bias.copy_(bias.view(-1))
    return policy


def test_deterministic_act_is_call_and_return() -> None:
    policy = linear_policy()
    acting = policy.act(
        th.tensor([0, 1, 2, 0]),
        th.tensor([0, 1, 2, 1]),
        th.tensor([False, False, False, True]),
        deterministic=True,
        epsilon=1.0,  # ignored when deterministic
    )
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    # option 0 terminates (beta 0.88 > 0.5) and the greedy option 2 of state 0 takes over;
    # options 1 (beta 0.12) and 2 (beta exactly 0.5) go on; episode start: greedy option 2.
    np.testing.assert_array_equal(acting.options.numpy(), [2, 1, 2, 2])
    np.testing.assert_array_equal(acting.new_option.numpy(), [True, False, False, True])
    np.testing.assert_allclose(
        acting.termination_probs.detach().numpy(), sigmoid(np.array([2.0, -2.0, 0.0, -2.0])), rtol=1e-6
    )
    np.testing.assert_array_equal(acting.actions.numpy(), [1, 0, 1, 1])  # the modal action of each option
    assert acting.options.dtype == acting.actions.dtype == th.int64


def test_stochastic_act_samples_terminations_options_and_actions() -> None:
    th.manual_seed(0)
    policy = linear_policy()
    n = 3000
    obs, starts = th.full((n,), 1), th.zeros(n, dtype=th.bool)
    # Terminations are drawn with probability beta; a terminated option is replaced by the greedy
    # one (epsilon defaults to 0), here option 0 of state 1.
    acting = policy.act(obs, th.zeros(n, dtype=th.long), starts)
    share = acting.new_option.float().mean().item()
    assert abs(share - 1.0 / (1.0 + np.exp(-2.0))) < 0.03
    assert th.all(acting.options == 0)
    acting = policy.act(obs, th.ones(n, dtype=th.long), starts)
    assert abs(acting.new_option.float().mean().item() - 1.0 / (1.0 + np.exp(2.0))) < 0.03
    np.testing.assert_array_equal(acting.options.numpy(), np.where(acting.new_option.numpy(), 0, 1))
    # Actions are sampled from pi_w: every action, at its softmax probability.
    counts = (
        np.bincount(acting.actions[acting.options == 1].numpy(), minlength=4)
        / (acting.options == 1).sum().item()
    )
    probs = th.softmax(th.tensor([0.2, 0.0, 0.0, 0.0]), dim=0).numpy()
    np.testing.assert_allclose(counts, probs, atol=0.04)
    # Epsilon-greedy selection: uniform options with probability epsilon.
    all_start = th.ones(n, dtype=th.bool)
    for epsilon in (1.0, 0.3):
        options = policy.act(obs, th.zeros(n, dtype=th.long), all_start, epsilon=epsilon).options.numpy()
        shares = np.bincount(options, minlength=3) / n
        expected = np.full(3, epsilon / 3) + np.array([1.0 - epsilon, 0.0, 0.0])
        np.testing.assert_allclose(shares, expected, atol=0.035)


def test_fixed_termination_probabilities() -> None:
    for prob, expected_new in ((0.0, False), (1.0, True)):
        policy = linear_policy(fixed_termination_prob=prob)
        out = policy.net(th.tensor([0, 3, 4, 1, 2, 0, 1]))  # 7 observations, 3 options
        assert out.termination_probs.shape == (7, 3) and out.termination_probs.dtype == th.float32
        assert th.all(out.termination_probs == prob)
        acting = policy.act(th.tensor([2, 2]), th.tensor([0, 2]), th.tensor([False, False]))
        assert acting.new_option.tolist() == [expected_new] * 2
        assert acting.options.tolist() == ([1, 1] if expected_new else [0, 2])


def test_stateless_forward_selects_a_new_option_in_every_observation() -> None:
    policy = linear_policy()
    np.testing.assert_array_equal(policy(th.tensor([0, 1, 2]), deterministic=True).numpy(), [1, 3, 0])
    th.manual_seed(1)
    actions = policy(th.full((400,), 1)).numpy()  # sampled by default
    assert set(actions.tolist()) == {0, 1, 2, 3}
    actions = policy._predict(th.full((400,), 1)).numpy()
    assert set(actions.tolist()) == {0, 1, 2, 3}
    assert policy._predict(th.tensor([0, 1, 2]), deterministic=True).tolist() == [1, 3, 0]


def test_predict_state_episode_starts_and_shapes() -> None:
    policy = linear_policy()
    policy.set_training_mode(True)
    actions, (options,) = policy.predict(np.array([0, 1, 2]), deterministic=True)
    assert not policy.training  # predict evaluates
    np.testing.assert_array_equal(options, [2, 0, 1])  # no state: every env selects greedily
    np.testing.assert_array_equal(actions, [1, 3, 0])
    assert options.dtype == np.int64 and actions.shape == (3,)
    # The state is taken as given (any integer dtype or shape); no episode start: options go on.
    actions, (options,) = policy.predict(
        np.array([1, 1]), state=(np.array([[1], [2]], dtype=np.int32),), deterministic=True
    )
    np.testing.assert_array_equal(options, [1, 2])
    np.testing.assert_array_equal(actions, [0, 1])
    _, (options,) = policy.predict(
        np.array([1, 1]), state=([1, 2],), episode_start=[True, False], deterministic=True
    )
    np.testing.assert_array_equal(options, [0, 2])
    # Options as floats (e.g. read back from a file) and episode starts as a column.
    _, (options,) = policy.predict(
        np.array([1, 1]),
        state=(np.array([2.0, 1.0]),),
        episode_start=np.array([[False], [True]]),
        deterministic=True,
    )
    np.testing.assert_array_equal(options, [2, 0])
    assert options.dtype == np.int64
    # A single observation gives a single action.
    action, (options,) = policy.predict(np.int64(2), deterministic=True)
    assert action.shape == () and int(action) == 0 and options.tolist() == [1]
    # Defaults: sampled actions, greedy options (no exploration).
    th.manual_seed(2)
    actions, (options,) = policy.predict(np.full(400, 1))
    assert set(actions.tolist()) == {0, 1, 2, 3} and np.all(options == 0)
    # predict's option_epsilon explores.
    _, (options,) = policy.predict(np.full(600, 1), option_epsilon=1.0)
    assert set(options.tolist()) == {0, 1, 2}


@pytest.mark.parametrize("options", [[0, 3], [-1, 0], [0], [0, 1, 2]])
def test_predict_refuses_a_bad_state(options: list[int]) -> None:
    policy = linear_policy()
    message = rf"^state must be \(options,\) with 2 option indices in \[0, 2\], got {re.escape(repr(np.array(options)))}$"
    with pytest.raises(ValueError, match=message):
        policy.predict(np.array([0, 1]), state=(np.array(options),))


def test_model_predict_explores_with_the_current_exploration_rate() -> None:
    model = OptionCritic(
        "MlpPolicy",
        make_vec_env("AdvRL/GridWorld-v0", env_kwargs=dict(size=2, obs_mode="index")),
        n_options=3,
        device="cpu",
        seed=0,
        policy_kwargs=dict(net_arch=[]),
    )
    model.policy = linear_policy()
    th.manual_seed(3)
    model.exploration_rate = 1.0
    actions, (options,) = model.predict(np.full(600, 1))
    assert set(options.tolist()) == {0, 1, 2} and set(actions.tolist()) == {0, 1, 2, 3}
    model.exploration_rate = 0.0
    actions, (options,) = model.predict(np.full(600, 1), state=(np.full(600, 1),), episode_start=np.ones(600))
    assert np.all(options == 0) and set(actions.tolist()) == {0, 1, 2, 3}
    model.exploration_rate = 1.0
    actions, (options,) = model.predict(np.array([0, 1]), deterministic=True)
    assert options.tolist() == [2, 0] and actions.tolist() == [1, 3]


def test_a_policy_over_dict_observations() -> None:
    """OptionCriticPolicy on its own takes Dict observations (SB3's CombinedExtractor)."""
    space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,)), "b": gym.spaces.Discrete(3)})
    policy = OptionCriticPolicy(
        space,
        gym.spaces.Discrete(2),
        lambda _: 1e-3,
        n_options=2,
        net_arch=[4],
        features_extractor_class=CombinedExtractor,
    )
    obs = {"a": np.zeros((5, 2), dtype=np.float32), "b": np.array([0, 1, 2, 0, 1])}
    actions, (options,) = policy.predict(obs)
    assert actions.shape == (5,) and options.shape == (5,)
    assert policy(policy.obs_to_tensor(obs)[0]).shape == (5,)


# --------------------------------------------------------------------------- rollouts
class Recorder(VecEnvWrapper):
    """Records what the algorithm sends and receives; optionally drops the ``TimeLimit.truncated``
    key where it is False (a VecEnv that only marks truncations)."""

    def __init__(self, venv, drop_false_truncations: bool = False) -> None:
        super().__init__(venv)
        self.drop = drop_false_truncations
        self.observations, self.actions, self.steps = [], [], []

    def reset(self):
        obs = self.venv.reset()
        self.observations.append(obs.copy())
        return obs

    def step_async(self, actions) -> None:
        self.actions.append(np.array(actions))
        self.venv.step_async(actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for info, reward in zip(infos, rewards, strict=True):
            info["is_success"] = bool(reward > 0)
        if self.drop:
            for info in infos:
                if not info.get("TimeLimit.truncated", False):
                    info.pop("TimeLimit.truncated", None)
        self.observations.append(obs.copy())
        self.steps.append((rewards.copy(), dones.copy(), [dict(info) for info in infos]))
        return obs, rewards, dones, infos


def arrival(model: OptionCritic, states, options) -> np.ndarray:
    """U(s, w) = (1 - beta_w(s)) Q_target(s, w) + beta_w(s) max_w' Q_target(s, w'), from the heads."""
    with th.no_grad():
        q = model.policy.net_target(th.as_tensor(np.asarray(states))).q_values.numpy()
        beta = model.policy.net(th.as_tensor(np.asarray(states))).termination_probs.numpy()
    rows = np.arange(len(states))
    return (1 - beta[rows, options]) * q[rows, options] + beta[rows, options] * q.max(axis=1)


@pytest.mark.parametrize("drop_false_truncations", [False, True])
def test_rollout_bootstraps_truncated_episodes_only(drop_false_truncations: bool) -> None:
    """2x2 GridWorld cut after 2 steps: episodes reach the goal (terminal, reward as is) or are
    truncated (reward + gamma U(final observation, option)), several at the same step. A VecEnv
    may leave out ``TimeLimit.truncated`` where it is False."""
    venv = make_vec_env(
        "AdvRL/GridWorld-v0", n_envs=4, seed=0, env_kwargs=dict(size=2, obs_mode="index", max_episode_steps=2)
    )
    env = Recorder(venv, drop_false_truncations)
    model = OptionCritic(
        "MlpPolicy",
        env,
        n_options=3,
        n_steps=6,
        gamma=0.9,
        seed=0,
        device="cpu",
        policy_kwargs=dict(net_arch=[]),
    )
    gen = th.Generator().manual_seed(1)
    with th.no_grad():
        for param in model.policy.net.parameters():
            param.copy_(th.randn(param.shape, generator=gen))
        model.policy.net_target.q_head.weight.copy_(
            th.randn(model.policy.net_target.q_head.weight.shape, generator=gen)
        )
    _, callback = model._setup_learn(1000)
    assert model.collect_rollouts(model.env, callback, 6)
    assert model.num_timesteps == 24
    buffer = model.rollout_buffer
    truncated_counts, terminal = [], 0
    for t, (rewards, dones, infos) in enumerate(env.steps):
        truncated = [i for i in range(4) if infos[i].get("TimeLimit.truncated", False)]
        terminal += sum(bool(dones[i]) and i not in truncated for i in range(4))
        truncated_counts.append(len(truncated))
        expected = rewards.astype(np.float32)
        if truncated:
            final = np.array([infos[i]["terminal_observation"] for i in truncated])
            expected[truncated] += 0.9 * arrival(model, final, buffer.options[t][truncated])
        np.testing.assert_allclose(buffer.rewards[t], expected, rtol=1e-6, err_msg=f"step {t}")
        np.testing.assert_array_equal(buffer.dones[t], dones)
    assert max(truncated_counts) >= 2 and terminal >= 1  # both kinds of episode ends, truncations together
    # Successes are read at episode ends only.
    ends = [
        bool(info["is_success"])
        for _, dones, infos in env.steps
        for done, info in zip(dones, infos, strict=True)
        if done
    ]
    assert list(model.ep_success_buffer) == ends and len(ends) < 24
    # Observations the actions were taken in, the actions sent, and the state left for the next rollout.
    np.testing.assert_array_equal(buffer.observations, np.array(env.observations))
    np.testing.assert_array_equal(buffer.actions, np.array(env.actions))
    np.testing.assert_array_equal(model._last_options, buffer.options[-1])
    np.testing.assert_array_equal(model._last_episode_starts, env.steps[-1][1])
    assert buffer.full
    model._last_obs = None  # collecting needs the last observation of learn()'s setup
    with pytest.raises(AssertionError):
        model.collect_rollouts(model.env, callback, 1)
    # Epsilon follows its schedule: 24 of 1000 steps, annealed over the first 10%.
    assert model.exploration_rate == pytest.approx(1.0 + (0.05 - 1.0) * 0.024 / 0.1)


# --------------------------------------------------------------------------- devices, networks
@pytest.fixture
def without_distribution_checks():
    """Distribution argument checks read values, which the meta device does not have."""
    previous = th.distributions.Distribution._validate_args
    th.distributions.Distribution.set_default_validate_args(False)
    yield
    th.distributions.Distribution.set_default_validate_args(previous)


def test_tensors_are_made_on_the_models_device(without_distribution_checks) -> None:
    """On the meta device (shapes without data, standing in for an accelerator) the losses, the
    option values upon arrival and the policy's actions are computed where the networks live."""
    model = OptionCritic(
        "MlpPolicy", four_rooms(2), n_steps=2, n_options=3, device="meta", policy_kwargs=dict(net_arch=[8])
    )
    buffer = model.rollout_buffer
    for _ in range(2):
        buffer.add(np.array([1, 2]), np.zeros(2), np.array([0, 1]), np.zeros(2), np.zeros(2))
    buffer.finish(np.array([3, 4]), np.zeros(2), 0.9)
    for name, value in model.compute_losses().items():
        assert value.device.type == "meta" and value.shape == (), name
    meta = dict(device="meta")
    value = model.option_value_upon_arrival(th.tensor([1, 2], **meta), th.tensor([0, 1], **meta))
    assert value.device.type == "meta" and value.shape == (2,)
    policy = model.policy
    acting = policy.act(
        th.tensor([1, 2], **meta), th.tensor([0, 1], **meta), th.tensor([True, False], **meta), epsilon=0.5
    )
    assert all(tensor.device.type == "meta" for tensor in acting)
    assert policy._predict(th.tensor([1, 2, 3], **meta)).device.type == "meta"
    assert next(policy.make_network().parameters()).device.type == "meta"
    fixed = OptionCriticPolicy(
        gym.spaces.Discrete(5),
        gym.spaces.Discrete(2),
        lambda _: 1e-3,
        n_options=2,
        fixed_termination_prob=0.5,
    ).to("meta")
    assert fixed.net(th.tensor([1, 2, 3], **meta)).termination_probs.device.type == "meta"


def test_image_observations_are_scaled_to_the_unit_interval(tmp_path) -> None:
    """normalize_images (on by default) divides uint8 images by 255 before the features."""
    space = gym.spaces.Box(0, 255, (1, 4, 4), dtype=np.uint8)
    image = th.full((1, 1, 4, 4), 255, dtype=th.uint8)
    net = OptionCriticNetwork(
        space, gym.spaces.Discrete(2), FlattenExtractor(space), 16, n_options=2, net_arch=[]
    )
    expected = net.q_head.weight.sum(dim=1) + net.q_head.bias
    th.testing.assert_close(net(image).q_values[0], expected.detach())
    policy = OptionCriticPolicy(space, gym.spaces.Discrete(2), lambda _: 1e-3, n_options=2, net_arch=[])
    expected = policy.net.q_head.weight.sum(dim=1) + policy.net.q_head.bias
    th.testing.assert_close(policy.net(image).q_values[0], expected.detach())
    policy.save(tmp_path / "policy.pt")  # the setting survives a save and load
    th.testing.assert_close(
        OptionCriticPolicy.load(tmp_path / "policy.pt").net(image).q_values[0], expected.detach()
    )
    raw = OptionCriticPolicy(
        space, gym.spaces.Discrete(2), lambda _: 1e-3, n_options=2, net_arch=[], normalize_images=False
    )
    expected = 255 * raw.net.q_head.weight.sum(dim=1) + raw.net.q_head.bias
    th.testing.assert_close(raw.net(image).q_values[0], expected.detach())
    raw.save(tmp_path / "raw.pt")
    th.testing.assert_close(
        OptionCriticPolicy.load(tmp_path / "raw.pt").net(image).q_values[0], expected.detach()
    )


def test_network_heads_and_shapes() -> None:
    """Shared MLP body, then linear heads: Q (B, n_options), beta (B, n_options), logits
    (B, n_options, n_actions); a target network starting equal to the online one."""
    obs_space, act_space = gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(4)
    policy = OptionCriticPolicy(
        obs_space, act_space, lambda _: 1e-3, n_options=2, net_arch=[6, 5], activation_fn=th.nn.Tanh
    )
    net = policy.net
    assert [type(layer) for layer in net.body] == [th.nn.Linear, th.nn.Tanh, th.nn.Linear, th.nn.Tanh]
    assert [net.body[0].in_features, net.body[0].out_features, net.body[2].out_features] == [3, 6, 5]
    assert net.q_head.in_features == net.termination_head.in_features == net.policy_head.in_features == 5
    assert (net.q_head.out_features, net.termination_head.out_features, net.policy_head.out_features) == (
        2,
        2,
        8,
    )
    obs = th.tensor([[0.1, 0.2, 0.3], [-0.5, 0.4, 0.9], [0.0, 0.0, 1.0]])
    out = net(obs)
    latent = net.body(obs)
    th.testing.assert_close(out.q_values, net.q_head(latent))
    th.testing.assert_close(out.termination_probs, th.sigmoid(net.termination_head(latent)))
    th.testing.assert_close(out.action_logits, net.policy_head(latent).view(3, 2, 4))
    for online, target in zip(
        net.state_dict().values(), policy.net_target.state_dict().values(), strict=True
    ):
        assert th.equal(online, target)
    assert net.features_extractor is not policy.net_target.features_extractor
    # Without hidden layers the heads read the features directly.
    flat = OptionCriticPolicy(obs_space, act_space, lambda _: 1e-3, n_options=3, net_arch=[]).net
    assert len(flat.body) == 0 and flat.q_head.in_features == 3 and flat.policy_head.out_features == 12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_options=0), r"^n_options must be an? integer in \[1, inf\), got 0$"),
        (dict(fixed_termination_prob=1.5), r"^fixed_termination_prob must be a number in \[0, 1\], got 1.5$"),
        (
            dict(fixed_termination_prob=-0.1),
            r"^fixed_termination_prob must be a number in \[0, 1\], got -0.1$",
        ),
    ],
)
def test_policy_arguments_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OptionCriticPolicy(gym.spaces.Discrete(3), gym.spaces.Discrete(2), lambda _: 1e-3, **kwargs)


def test_termination_probability_bounds_are_accepted() -> None:
    for prob in (0, 1):
        policy = OptionCriticPolicy(
            gym.spaces.Discrete(3),
            gym.spaces.Discrete(2),
            lambda _: 1e-3,
            n_options=1,
            fixed_termination_prob=prob,
        )
        assert policy.fixed_termination_prob == float(prob) and type(policy.fixed_termination_prob) is float
        assert policy.net.termination_head is None and policy.n_options == 1


def test_termination_probability_is_averaged_over_the_steps_that_go_on() -> None:
    """train/termination_prob: mean beta_w(s_{t+1}) over the steps whose episode goes on (0 if none)."""
    model = OptionCritic(
        "MlpPolicy", four_rooms(2), n_steps=1, n_options=2, device="cpu", policy_kwargs=dict(net_arch=[])
    )
    with th.no_grad():
        model.policy.net.termination_head.weight.zero_()
        model.policy.net.termination_head.bias.copy_(th.tensor([1.0, -1.0]))
    buffer = model.rollout_buffer
    for dones, expected in (([0.0, 1.0], 1.0 / (1.0 + np.exp(-1.0))), ([1.0, 1.0], 0.0)):
        buffer.reset()
        buffer.add(np.array([5, 6]), np.zeros(2), np.array([0, 1]), np.zeros(2), np.array(dones))
        buffer.finish(np.array([7, 8]), np.zeros(2), 0.9)
        assert model.compute_losses()["termination_prob"].item() == pytest.approx(expected, rel=1e-6)


def test_rollouts_and_predictions_hand_the_policy_tensors_on_its_device(monkeypatch) -> None:
    """collect_rollouts and predict convert observations, options and episode starts to tensors
    on the model's device (here the meta device, recorded by a stand-in for the policy's act)."""
    # Every episode of this 2x2 GridWorld is cut after one step: U of the final observations too.
    env = make_vec_env(
        "AdvRL/GridWorld-v0", n_envs=2, seed=0, env_kwargs=dict(size=2, obs_mode="index", max_episode_steps=1)
    )
    model = OptionCritic(
        "MlpPolicy", env, n_options=2, n_steps=1, device="cpu", policy_kwargs=dict(net_arch=[])
    )
    policy, act, arrival_value = model.policy, model.policy.act, model.option_value_upon_arrival
    seen = []

    def recording_act(obs, options, episode_start, **kwargs):
        seen.append({obs.device.type, options.device.type, episode_start.device.type})
        # The stand-in acts on the CPU copies of what it was given.
        return act(
            obs_as_tensor(current["obs"], "cpu"),
            th.as_tensor(current["options"]),
            th.as_tensor(current["starts"]),
            **kwargs,
        )

    def recording_arrival(obs, options):
        seen.append({obs.device.type, options.device.type})
        return arrival_value(obs_as_tensor(current["final"], "cpu"), th.as_tensor(current["final_options"]))

    _, callback = model._setup_learn(100)
    current = dict(obs=model._last_obs, options=model._last_options, starts=model._last_episode_starts)
    current.update(final=model._last_obs, final_options=model._last_options)
    monkeypatch.setattr(policy, "act", recording_act)
    monkeypatch.setattr(model, "option_value_upon_arrival", recording_arrival)
    model.device = th.device("meta")
    assert model.collect_rollouts(model.env, callback, 1)
    assert seen == [{"meta"}, {"meta"}, {"meta"}]  # act, U of the truncated episodes, U of the last state

    seen.clear()
    monkeypatch.setattr(OptionCriticPolicy, "device", property(lambda self: th.device("meta")))
    obs = np.array([3, 2])
    for state, starts in (
        (None, None),
        ((np.array([1, 0]),), np.array([True, False])),
        ((np.array([1, 0]),), None),
    ):
        current.update(
            obs=obs,
            options=np.zeros(2, dtype=np.int64) if state is None else state[0],
            starts=np.array([True, True])
            if state is None
            else (np.zeros(2, bool) if starts is None else starts),
        )
        policy.predict(obs, state=state, episode_start=starts)
    assert seen == [{"meta"}] * 3


def test_policy_defaults() -> None:
    """Four options, [64, 64] hidden layers after a flattening extractor, learned terminations."""
    policy = OptionCriticPolicy(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2), lambda _: 1e-3)
    assert (
        policy.n_options == 4
        and policy.net.q_head.out_features == 4
        and policy.net.policy_head.out_features == 8
    )
    assert policy.net_arch == [64, 64] and policy.net.termination_head is not None
    assert type(policy.net.features_extractor) is FlattenExtractor and isinstance(
        policy.optimizer, th.optim.Adam
    )


class Float64Rewards(VecEnvWrapper):
    """Gives every reward as the float64 ``reward`` (a VecEnv may return float64 rewards)."""

    def __init__(self, venv, reward: float) -> None:
        super().__init__(venv)
        self.reward = reward

    def reset(self):
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs, np.full(len(rewards), self.reward, dtype=np.float64), dones, infos


def test_rewards_are_taken_in_float32_before_the_bootstrap_is_added() -> None:
    """Every step of this GridWorld is truncated; one option that never terminates gives
    U = Q_target = u with gamma u = 1 exactly in float32. A float64 reward 2^-24 + 2^-50 is
    2^-24 in float32, and 1 + 2^-24 rounds (to even) to 1 in float32 arithmetic."""
    env = make_vec_env(
        "AdvRL/GridWorld-v0", n_envs=2, seed=0, env_kwargs=dict(size=2, obs_mode="index", max_episode_steps=1)
    )
    reward = 2.0**-24 + 2.0**-50
    model = OptionCritic(
        "MlpPolicy",
        Float64Rewards(env, reward),
        n_options=1,
        n_steps=2,
        gamma=0.9,
        device="cpu",
        policy_kwargs=dict(net_arch=[], fixed_termination_prob=0.0),
    )
    u = np.float32(1.1111111640930176)
    assert np.float32(0.9) * u == np.float32(1.0)
    with th.no_grad():
        model.policy.net_target.q_head.weight.zero_()
        model.policy.net_target.q_head.bias.fill_(float(u))
    _, callback = model._setup_learn(100)
    assert model.collect_rollouts(model.env, callback, 2)
    expected = np.float32(reward) + np.float32(0.9) * u
    assert expected == np.float32(1.0)
    np.testing.assert_array_equal(model.rollout_buffer.rewards, np.full((2, 2), expected, dtype=np.float32))
