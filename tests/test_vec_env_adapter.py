"""``GymnasiumVecEnv``: a Gymnasium vector env seen by SB3 exactly as a ``DummyVecEnv`` of its single envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import gym_advrl  # noqa: F401
from sb3_ext.common.vec_env import GymnasiumVecEnv, split_infos

N = 4


def _dummy(env_id: str, **kwargs: Any) -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(N)])


def _assert_same_step(a: tuple, b: tuple, t: int) -> None:
    obs_a, rew_a, done_a, infos_a = a
    obs_b, rew_b, done_b, infos_b = b
    np.testing.assert_allclose(obs_a, obs_b, rtol=1e-6, atol=1e-6, err_msg=f"step {t} obs")
    np.testing.assert_allclose(rew_a, rew_b, rtol=1e-6, err_msg=f"step {t} reward")
    np.testing.assert_array_equal(done_a, done_b, err_msg=f"step {t} dones")
    for i in range(N):
        assert ("terminal_observation" in infos_a[i]) == ("terminal_observation" in infos_b[i])
        if "terminal_observation" in infos_b[i]:
            np.testing.assert_allclose(
                infos_a[i]["terminal_observation"], infos_b[i]["terminal_observation"], rtol=1e-6, atol=1e-6
            )
            assert infos_a[i]["TimeLimit.truncated"] == infos_b[i]["TimeLimit.truncated"]


@pytest.mark.parametrize(
    "make",
    [
        lambda env_id: gym.make_vec(env_id, N),
        lambda env_id: gym.make_vec(env_id, N, autoreset_mode=AutoresetMode.SAME_STEP),
        lambda env_id: SyncVectorEnv([lambda: gym.make(env_id) for _ in range(N)]),
        lambda env_id: SyncVectorEnv(
            [lambda: gym.make(env_id) for _ in range(N)], autoreset_mode=AutoresetMode.SAME_STEP
        ),
    ],
    ids=["native-next-step", "native-same-step", "sync-next-step", "sync-same-step"],
)
@pytest.mark.parametrize("env_id", ["AdvRL/Pendulum-v0", "AdvRL/ContinuousCartPole-v0", "AdvRL/GridWorld-v0"])
def test_adapter_steps_like_dummy_vec_env(env_id: str, make: Any) -> None:
    adapted = GymnasiumVecEnv(make(env_id))
    dummy = _dummy(env_id)
    adapted.seed(3)
    dummy.seed(3)
    np.testing.assert_allclose(adapted.reset(), dummy.reset())
    for i in range(N):
        assert adapted.reset_infos[i].keys() == dummy.reset_infos[i].keys()
    rng = np.random.default_rng(0)
    ends = 0
    for t in range(250):
        if isinstance(dummy.action_space, gym.spaces.Discrete):
            actions = rng.integers(dummy.action_space.n, size=N)
        else:
            actions = rng.uniform(-1, 1, size=(N, *dummy.action_space.shape)).astype(np.float32)
        result = adapted.step(actions)
        _assert_same_step(result, dummy.step(actions), t)
        ends += int(result[2].sum())
        for i in np.flatnonzero(result[2]):
            assert adapted.reset_infos[i].keys() == dummy.reset_infos[i].keys()
    assert ends >= N


def test_split_infos_gives_each_instance_its_entries() -> None:
    infos = {
        "a": np.array([1.0, 2.0, 3.0]),
        "_a": np.array([True, False, True]),
        "nested": {"b": np.array([5, 6, 7]), "_b": np.array([False, True, False])},
        "_nested": np.array([False, True, False]),
    }
    assert split_infos(infos, 3) == [{"a": 1.0}, {"nested": {"b": 6}}, {"a": 3.0}]
    assert split_infos(infos, 3, rows=[2]) == [{}, {}, {"a": 3.0}]


def test_attributes_methods_and_errors() -> None:
    env = GymnasiumVecEnv(gym.make_vec("AdvRL/Pendulum-v0", 3, m=[1.0, 1.5, 2.0]))
    assert env.render_mode is None
    assert env.get_attr("max_speed") == [8.0, 8.0, 8.0]
    # A per-instance array (leading num_envs axis) gives each instance its entry; others are shared.
    env.env.unwrapped.last_u[:] = [0.5, 1.0, 1.5]
    assert env.get_attr("last_u", indices=[1, 2]) == [1.0, 1.5]
    assert env.get_attr("state", indices=[1])[0].shape == (2, 3)
    env.set_attr("last_u", 0.0, indices=[2])
    assert env.env.unwrapped.last_u.tolist() == [0.5, 1.0, 0.0]
    env.set_attr("max_speed", 6.0)
    assert env.env.unwrapped.max_speed == 6.0
    with pytest.raises(ValueError, match="indices=None"):
        env.set_attr("max_speed", 5.0, indices=[0])
    assert env.env_is_wrapped(gym.Wrapper) == [False, False, False]
    obs = np.zeros((2, 3))
    rewards = env.env_method("reward_fn", obs, np.zeros((2, 1)), obs, indices=[0, 2])
    assert len(rewards) == 2 and rewards[0].shape == (2,)
    env.set_options({"x_init": 0.0, "y_init": 0.0})
    first = env.reset()
    np.testing.assert_allclose(first, np.tile([1.0, 0.0, 0.0], (3, 1)))
    env.set_options([{"x_init": 0.0}, {}, {}])
    with pytest.raises(ValueError, match="one options dict"):
        env.reset()
    with pytest.raises(ValueError, match="vector_env"):
        GymnasiumVecEnv(gym.make("AdvRL/Pendulum-v0"))  # type: ignore[arg-type]


def test_quantum_methods_with_an_instance_index_are_called_per_instance() -> None:
    env = GymnasiumVecEnv(gym.make_vec("AdvRL/QuantumGate-v0", 2))
    env.reset()
    env.step(np.array([0, 1]))
    qasm = env.env_method("to_qasm")
    assert qasm[0] != qasm[1] and all(q.startswith("OPENQASM 2.0;") for q in qasm)


def _trained_ppo(env: Any, seed: int = 0) -> PPO:
    # Built and trained one after the other: PPO seeds torch's global generator at construction.
    model = PPO("MlpPolicy", VecMonitor(env), n_steps=32, batch_size=64, n_epochs=2, seed=seed, device="cpu")
    return model.learn(2 * 32 * N)


def test_ppo_through_the_adapter_equals_ppo_on_dummy_vec_env() -> None:
    """The same seeds give the same rollouts, hence the same PPO updates, through either VecEnv."""
    native = _trained_ppo(GymnasiumVecEnv(gym.make_vec("AdvRL/Pendulum-v0", N)))
    dummy = _trained_ppo(_dummy("AdvRL/Pendulum-v0"))
    np.testing.assert_allclose(
        native.rollout_buffer.observations, dummy.rollout_buffer.observations, atol=1e-6
    )
    for p, q in zip(native.policy.parameters(), dummy.policy.parameters(), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-4, atol=1e-6)
    # The comparison can fail: another seed learns other parameters.
    other = _trained_ppo(GymnasiumVecEnv(gym.make_vec("AdvRL/Pendulum-v0", N)), seed=1)
    assert any(
        not np.allclose(p.detach().numpy(), q.detach().numpy())
        for p, q in zip(other.policy.parameters(), dummy.policy.parameters(), strict=True)
    )


class RecordingVectorEnv(gym.vector.VectorEnv):
    """Three instances of nothing: methods that return their arguments, and a settable frame stack."""

    def __init__(self) -> None:
        self.num_envs = 3
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, (2,))
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 3)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 3)
        self.frames: np.ndarray | None = None

    def per_instance(self, i: int, factor: float, offset: float = 0.0) -> float:
        return i * factor + offset

    def shared(self, factor: float, offset: float = 0.0) -> tuple[float, float]:
        return (factor, offset)

    def render(self) -> np.ndarray | None:
        return self.frames


def test_env_method_passes_positional_and_keyword_arguments() -> None:
    env = GymnasiumVecEnv(RecordingVectorEnv())
    assert env.env_method("per_instance", 10.0, offset=0.5) == [0.5, 10.5, 20.5]
    assert env.env_method("per_instance", 2.0, indices=[2]) == [4.0]
    assert env.env_method("shared", 3.0, offset=1.0, indices=[0, 1]) == [(3.0, 1.0), (3.0, 1.0)]
    assert env.env_method("shared", 3.0) == [(3.0, 0.0)] * 3


def test_images_are_the_vector_envs_frames_or_none_per_instance() -> None:
    vector_env = RecordingVectorEnv()
    env = GymnasiumVecEnv(vector_env)
    assert env.get_images() == [None, None, None]
    vector_env.frames = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    images = env.get_images()
    assert isinstance(images, list) and len(images) == 3
    for image, frame in zip(images, vector_env.frames, strict=True):
        np.testing.assert_array_equal(image, frame)


def test_set_attr_creates_a_shared_attribute_and_names_the_call_when_indices_are_given() -> None:
    vector_env = RecordingVectorEnv()
    env = GymnasiumVecEnv(vector_env)
    env.set_attr("brand_new", 4.5)
    assert vector_env.brand_new == 4.5 and env.get_attr("brand_new") == [4.5, 4.5, 4.5]
    message = (
        r"^set_attr\('brand_new'\) with indices=\[1\]: the vector env holds one value for all "
        r"instances; pass indices=None$"
    )
    with pytest.raises(ValueError, match=message):
        env.set_attr("brand_new", 1.0, indices=[1])
    assert vector_env.brand_new == 4.5


def test_env_is_wrapped_answers_for_the_chosen_instances() -> None:
    env = GymnasiumVecEnv(RecordingVectorEnv())
    assert env.autoreset_mode is AutoresetMode.NEXT_STEP  # Gymnasium's default, when metadata is silent
    assert env.env_is_wrapped(gym.Wrapper) == [False, False, False]
    assert env.env_is_wrapped(gym.Wrapper, indices=[1]) == [False]
    assert env.env_is_wrapped(gym.Wrapper, indices=2) == [False]


class ScriptedVectorEnv(gym.vector.VectorEnv):
    """Three instances whose terminations, truncations and infos follow a script, in any autoreset
    mode; it records every reset call. Step ``t`` observes ``10 t + i`` in instance ``i``; a reset
    observes ``-(number of resets so far)``."""

    def __init__(self, mode: AutoresetMode, terminated: list, truncated: list) -> None:
        self.num_envs = 3
        self.metadata = {"autoreset_mode": mode.value}  # Gymnasium may store the mode's string
        self.single_observation_space = gym.spaces.Box(-1000.0, 1000.0, (1,))
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 3)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 3)
        self.script = list(zip(terminated, truncated, strict=True))
        self.resets: list[tuple] = []
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.resets.append((seed, options))
        mask = np.ones(3, bool) if not options or "reset_mask" not in options else options["reset_mask"]
        obs = np.full((3, 1), -float(len(self.resets)), np.float32)
        return obs, {"episode_id": np.array([len(self.resets)] * 3), "_episode_id": mask.copy()}

    def step(self, actions):
        self.t += 1
        terminated, truncated = (np.array(flags) for flags in self.script[self.t - 1])
        obs = (10.0 * self.t + np.arange(3, dtype=np.float32))[:, None]
        infos = {"step": np.array([self.t] * 3), "_step": np.array([True, False, True])}
        done = terminated | truncated
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP.value and done.any():
            final_obs = np.empty(3, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = obs[i].copy()
            reset_obs, reset_infos = self.reset(options={"reset_mask": done})
            infos = {
                **infos,
                "final_obs": final_obs,
                "_final_obs": done,
                "final_info": {"last": np.array([7, 8, 9]), "_last": done},
                "_final_info": done,
                **reset_infos,
            }
            obs = np.where(done[:, None], reset_obs, obs)
        return obs, np.array([0.5, 1, 2], np.float64), terminated, truncated, infos


SCRIPT = dict(
    terminated=[[False, False, False], [True, False, True]],
    truncated=[[False, False, False], [False, True, True]],
)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED])
def test_finished_instances_are_reset_at_once_with_their_terminal_observation(mode) -> None:
    vector_env = ScriptedVectorEnv(mode, **SCRIPT)
    env = GymnasiumVecEnv(vector_env)
    assert env.autoreset_mode is mode
    env.reset()
    obs, rewards, dones, infos = env.step(np.zeros(3, np.int64))
    assert rewards.dtype == np.float32 and rewards.tolist() == [0.5, 1.0, 2.0]
    assert dones.tolist() == [False, False, False] and len(vector_env.resets) == 1
    assert infos == [{"step": 1}, {}, {"step": 1}]
    obs, rewards, dones, infos = env.step(np.zeros(3, np.int64))
    assert dones.tolist() == [True, True, True]
    # One reset of the finished instances, with their mask; their first observation is returned.
    (seed, options) = vector_env.resets[-1]
    assert seed is None and options.keys() == {"reset_mask"}
    assert options["reset_mask"].tolist() == [True, True, True]
    np.testing.assert_array_equal(obs, np.full((3, 1), -2.0))
    for i in range(3):
        np.testing.assert_array_equal(infos[i]["terminal_observation"], [20.0 + i])
    # A truncation that is not also a termination is a time limit.
    assert [info["TimeLimit.truncated"] for info in infos] == [False, True, False]
    assert [info.get("step") for info in infos] == [2, None, 2]
    assert env.reset_infos == [{"episode_id": 2}] * 3


def test_only_the_finished_instances_are_reset_and_get_terminal_observations() -> None:
    vector_env = ScriptedVectorEnv(
        AutoresetMode.NEXT_STEP, terminated=[[False, True, False]], truncated=[[False, False, False]]
    )
    env = GymnasiumVecEnv(vector_env)
    env.reset()
    obs, _, dones, infos = env.step(np.zeros(3, np.int64))
    assert dones.tolist() == [False, True, False]
    assert vector_env.resets[-1][1]["reset_mask"].tolist() == [False, True, False]
    assert "terminal_observation" not in infos[0] and "terminal_observation" not in infos[2]
    np.testing.assert_array_equal(infos[1]["terminal_observation"], [11.0])
    assert infos[1]["TimeLimit.truncated"] is False and "TimeLimit.truncated" not in infos[0]
    # The reset instance gets its reset info; the others keep theirs.
    assert env.reset_infos == [{"episode_id": 1}, {"episode_id": 2}, {"episode_id": 1}]


def test_same_step_mode_hands_over_the_final_observation_and_info() -> None:
    vector_env = ScriptedVectorEnv(AutoresetMode.SAME_STEP, **SCRIPT)
    env = GymnasiumVecEnv(vector_env)
    assert env.autoreset_mode is AutoresetMode.SAME_STEP
    env.reset()
    env.step(np.zeros(3, np.int64))
    obs, _, dones, infos = env.step(np.zeros(3, np.int64))
    assert dones.tolist() == [True, True, True] and len(vector_env.resets) == 2  # the env's own reset
    np.testing.assert_array_equal(obs, np.full((3, 1), -2.0))
    for i in range(3):
        # The finished episode's info (the env's final_info), its last observation and time limit.
        assert infos[i]["last"] == 7 + i
        np.testing.assert_array_equal(infos[i]["terminal_observation"], [20.0 + i])
        assert "final_obs" not in infos[i] and "final_info" not in infos[i]
    assert [info["TimeLimit.truncated"] for info in infos] == [False, True, False]
    # The step's own entries (the reset infos among them) describe the new episode.
    assert env.reset_infos == [{"step": 2, "episode_id": 2}, {"episode_id": 2}, {"step": 2, "episode_id": 2}]


def test_seeds_and_options_reach_the_next_reset_only() -> None:
    vector_env = ScriptedVectorEnv(AutoresetMode.NEXT_STEP, [], [])
    env = GymnasiumVecEnv(vector_env)
    env.reset()
    assert vector_env.resets[-1] == (None, None)
    env.seed(5)
    env.set_options({"level": 2})
    env.reset()
    assert vector_env.resets[-1] == ([5, 6, 7], {"level": 2})
    env.reset()  # used once, as in SB3
    assert vector_env.resets[-1] == (None, None)
    message = (
        r"^set_options: a Gymnasium vector env takes one options dict for all instances; got "
        r"different options per env: \[\{'level': 1\}, \{\}, \{\}\]$"
    )
    env.set_options([{"level": 1}, {}, {}])
    with pytest.raises(ValueError, match=message):
        env.reset()


def test_split_infos_skips_unmasked_keys_and_masks_and_gives_python_scalars() -> None:
    """Only keys with a ``_key`` mask are entries; ``_``-keys are masks (an env's own ``_x`` has the
    mask ``__x`` in Gymnasium's layout and is left out like every mask); a key that no chosen
    instance reports does not hide the keys after it; numpy scalars become Python numbers."""
    infos = {
        "unmasked": np.array([1, 2]),
        "_x": np.array([3, 4]),
        "__x": np.array([True, True]),
        "only_first": np.array([5, 6]),
        "_only_first": np.array([True, False]),
        "n": np.array([7, 8], np.int64),
        "_n": np.array([True, True]),
        "f": np.array([0.5, 1.5], np.float32),
        "_f": np.array([True, True]),
    }
    out = split_infos(infos, 2, rows=[1])
    assert out == [{}, {"n": 8, "f": 1.5}]
    assert type(out[1]["n"]) is int and type(out[1]["f"]) is float
    assert split_infos(infos, 2) == [{"only_first": 5, "n": 7, "f": 0.5}, {"n": 8, "f": 1.5}]


def test_a_wrong_vector_env_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match=r"^vector_env must be a gymnasium.vector.VectorEnv, got object$"):
        GymnasiumVecEnv(object())  # type: ignore[arg-type]


class RenderModeWrapper(gym.vector.VectorWrapper):
    """A wrapper that renders in its own mode (as Gymnasium's rendering wrappers do) and has its own
    ``label``."""

    render_mode = "human"
    label = "wrapper"


def test_render_mode_is_the_outer_envs_and_other_attributes_the_unwrapped_envs() -> None:
    inner = RecordingVectorEnv()
    inner.render_mode = "rgb_array"
    inner.label = "inner"
    inner.per_env = np.array([1.0, 2.0, 3.0])
    env = GymnasiumVecEnv(RenderModeWrapper(inner))
    assert env.get_attr("render_mode") == ["human"] * 3
    assert env.get_attr("label") == ["inner"] * 3
    assert env.get_attr("per_env", indices=[2]) == [3.0]


class OneInstanceVectorEnv(gym.vector.VectorEnv):
    """One instance that records its resets."""

    def __init__(self) -> None:
        self.num_envs = 1
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 1)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 1)
        self.resets: list[tuple] = []

    def reset(self, *, seed=None, options=None):
        self.resets.append((seed, options))
        return np.zeros((1, 1), np.float32), {}


def test_one_instance_resets_with_its_options() -> None:
    vector_env = OneInstanceVectorEnv()
    env = GymnasiumVecEnv(vector_env)
    np.testing.assert_array_equal(env.reset(), [[0.0]])
    assert vector_env.resets[-1] == (None, None)
    env.set_options({"level": 3})
    env.reset()
    assert vector_env.resets[-1] == (None, {"level": 3})


class NoFinalInfoVectorEnv(ScriptedVectorEnv):
    """A same-step vector env that reports the final observation but no ``final_info``."""

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = super().step(actions)
        return obs, rewards, terminated, truncated, {k: v for k, v in infos.items() if "final_info" not in k}


def test_same_step_mode_without_final_info_gives_empty_infos_with_the_terminal_observation() -> None:
    vector_env = NoFinalInfoVectorEnv(
        AutoresetMode.SAME_STEP, terminated=[[False, True, False]], truncated=[[False, False, False]]
    )
    env = GymnasiumVecEnv(vector_env)
    env.reset()
    _, _, dones, infos = env.step(np.zeros(3, np.int64))
    assert dones.tolist() == [False, True, False]
    assert infos[1].keys() == {"terminal_observation", "TimeLimit.truncated"}
    np.testing.assert_array_equal(infos[1]["terminal_observation"], [11.0])


class StructuredObsEnv(gym.Env):
    """Counts steps in a Dict (or Tuple) observation; an episode lasts ``length`` steps."""

    def __init__(self, length: int, kind: str) -> None:
        self.length, self.kind = length, kind
        parts = {"t": gym.spaces.Box(0.0, 100.0, (1,)), "goal": gym.spaces.Box(-1.0, 1.0, (2,))}
        self.observation_space = (
            gym.spaces.Dict(parts) if kind == "dict" else gym.spaces.Tuple(tuple(parts.values()))
        )
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def _obs(self) -> dict | tuple:
        parts = {"t": np.array([self.t], np.float32), "goal": np.array([self.length, -1.0], np.float32) / 10}
        return parts if self.kind == "dict" else tuple(parts.values())

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, False, self.t >= self.length, {}


def _parts(obs: dict | tuple) -> dict:
    return dict(obs) if isinstance(obs, dict) else dict(enumerate(obs))


@pytest.mark.parametrize("kind", ["dict", "tuple"])
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_dict_and_tuple_observations_get_their_terminal_observation_in_their_structure(mode, kind) -> None:
    """A finished instance's ``terminal_observation`` is its last observation, a dict for a Dict
    space (SB3 bootstraps a truncated episode from it), as a DummyVecEnv gives it."""
    makers = [lambda length=length: StructuredObsEnv(length, kind) for length in (2, 3)]
    env = GymnasiumVecEnv(SyncVectorEnv(makers, autoreset_mode=mode))
    dummy = DummyVecEnv(makers)
    env.reset()
    dummy.reset()
    for _ in range(3):
        obs, _, dones, infos = env.step(np.zeros(2, np.int64))
        expected_obs, _, expected_dones, expected_infos = dummy.step(np.zeros(2, np.int64))
        assert dones.tolist() == expected_dones.tolist()
        for key, value in _parts(obs).items():
            np.testing.assert_array_equal(value, _parts(expected_obs)[key])
        for i in np.flatnonzero(dones):
            terminal, expected = infos[i]["terminal_observation"], expected_infos[i]["terminal_observation"]
            assert type(terminal) is type(expected) and len(terminal) == len(expected) == 2
            for key, value in _parts(expected).items():
                np.testing.assert_array_equal(_parts(terminal)[key], value)
            assert infos[i]["TimeLimit.truncated"] is True
    assert dones.tolist() == [False, True]  # instance 0 ended at step 2, instance 1 at step 3
