"""Shared API tests that every ``sb3_ext`` algorithm must pass.

Modelled on sb3-contrib's ``test_run.py`` / ``test_save_load.py``. For each row of
:data:`ALGORITHMS` the suite checks that the algorithm

* learns for ``learn_steps`` steps (``num_timesteps`` advances and every floating-point tensor of
  ``get_parameters()`` changes),
  then predicts for a single observation and for a batch of three (actions inside the action
  space, with the right shapes);
* after ``save`` / ``load`` acts identically (``deterministic=True``) over a rollout, carrying
  the ``state`` returned by ``predict`` (recurrent or option state) and ``episode_start``;
  the saved and loaded parameters are equal;
* trains on a ``DummyVecEnv`` of 2 envs when ``supports_vec_env`` is True;
* is reproducible: the same ``seed`` gives identical parameters and actions after ``learn``,
  a different seed gives different parameters;
* refuses an env with unsupported spaces (``bad_env_id``) with a ``ValueError`` (preferred) or
  SB3's ``AssertionError``, whose message mentions the space.

Adding an algorithm is one line in :data:`ALGORITHMS`::

    AlgoCase("MyAlgo", MyAlgo, "AdvRL/GridWorld-v0", dict(learning_starts=50, **TINY), bad_env_id="AdvRL/Pendulum-v0"),

Fields (see :class:`AlgoCase`): ``name`` (the test id), ``algo`` (the class), ``env_id`` (a
registered id; ``env_kwargs`` are passed to ``gym.make``), ``kwargs`` (constructor keyword
arguments: keep networks tiny and training short, each case should take a few seconds),
``policy`` (default ``"MlpPolicy"``), ``supports_vec_env`` (default True; set False if the
algorithm only runs on one env), ``bad_env_id`` (an env whose spaces the algorithm must reject, or
None), ``learn_steps`` (default 300). Do not pass ``seed`` or ``verbose`` in ``kwargs``.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
import sb3_ext
from sb3_ext import PERDQN, PERQRDQN, PERSAC, PERTD3
from sb3_ext.aux_dqn import AuxDQN, PERAuxDQN
from sb3_ext.dreamer import Dreamer
from sb3_ext.dyna import Dyna, TabularDynaQ
from sb3_ext.feudal import FeudalAgent
from sb3_ext.hac import HAC
from sb3_ext.latent_mpc import LatentMPC
from sb3_ext.mbpo import MBPO
from sb3_ext.mpc import WorldModelMPC
from sb3_ext.option_critic import OptionCritic
from tests import image_envs  # noqa: F401  (registers Test/PointImage-v0: images with Box actions)


@dataclass(frozen=True)
class AlgoCase:
    """One algorithm configuration checked by every test of this file."""

    name: str
    algo: type[BaseAlgorithm]
    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    supports_vec_env: bool = True
    bad_env_id: str | None = None
    policy: str = "MlpPolicy"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    learn_steps: int = 300


# Small networks and buffers keep each case at a few seconds of CPU.
TINY = dict(policy_kwargs=dict(net_arch=[32, 32]), buffer_size=2_000, device="cpu")
TINY_DQN = dict(learning_starts=100, batch_size=32, train_freq=4, target_update_interval=100, **TINY)
TINY_AC = dict(learning_starts=100, batch_size=32, train_freq=2, gradient_steps=1, **TINY)
TINY_MPC = dict(
    learning_starts=100,
    train_freq=100,
    batch_size=64,
    n_model_epochs=2,
    horizon=5,
    population_size=20,
    n_elites=4,
    n_iterations=2,
    n_particles=2,
    buffer_size=2_000,
    device="cpu",
    policy_kwargs=dict(net_arch=[32, 32], n_members=2),
)
TINY_DREAMER = dict(
    learning_starts=100,
    batch_size=4,
    sequence_length=8,
    train_ratio=4,
    imagination_horizon=3,
    buffer_size=2_000,
    device="cpu",
    policy_kwargs=dict(
        net_arch=[16],
        # Below the free nats the prior gets no gradient: a tiny latent's KL stays under the default 1 nat.
        world_model_kwargs=dict(
            deter_size=16,
            stoch_size=4,
            classes=4,
            hidden_size=16,
            mlp_layers=[16],
            embed_dim=16,
            cnn_depth=2,
            free_nats=0.0,
        ),
    ),
)
TINY_LATENT_MPC = dict(
    learning_starts=100,
    batch_size=4,
    sequence_length=8,
    train_ratio=4,
    horizon=3,
    population_size=16,
    n_elites=4,
    n_iterations=2,
    buffer_size=2_000,
    device="cpu",
    policy_kwargs=dict(
        world_model_kwargs=dict(
            deter_size=16,
            stoch_size=4,
            hidden_size=16,
            mlp_layers=[16],
            embed_dim=16,
            cnn_depth=2,
            free_nats=0.0,
        )
    ),
)

ALGORITHMS: list[AlgoCase] = [
    AlgoCase("PERDQN", PERDQN, "AdvRL/GridWorld-v0", TINY_DQN, bad_env_id="AdvRL/Pendulum-v0"),
    AlgoCase(
        "PERQRDQN",
        PERQRDQN,
        "AdvRL/SequenceTracking-v0",
        dict(TINY_DQN, policy_kwargs=dict(net_arch=[32], n_quantiles=8)),
        bad_env_id="AdvRL/Pendulum-v0",
    ),
    AlgoCase("PERSAC", PERSAC, "AdvRL/Pendulum-v0", TINY_AC, bad_env_id="AdvRL/GridWorld-v0"),
    AlgoCase("PERTD3", PERTD3, "AdvRL/NonlinearRegulator-v0", TINY_AC, bad_env_id="AdvRL/GridWorld-v0"),
    # Vector observations (Gaussian-noise augmentation) and images (CNN encoder, random shift, double Q).
    AlgoCase("AuxDQN", AuxDQN, "AdvRL/GridWorld-v0", TINY_DQN, bad_env_id="AdvRL/Pendulum-v0"),
    AlgoCase(
        "AuxDQN-rgb",
        AuxDQN,
        "AdvRL/GridWorld-v0",
        dict(
            TINY_DQN,
            double_q=True,
            policy_kwargs=dict(
                net_arch=[32], aux_net_arch=[32], features_extractor_kwargs=dict(features_dim=64)
            ),
        ),
        policy="CnnPolicy",
        env_kwargs=dict(obs_mode="rgb"),
    ),
    AlgoCase("PERAuxDQN", PERAuxDQN, "AdvRL/SequenceTracking-v0", TINY_DQN, bad_env_id="AdvRL/Pendulum-v0"),
    AlgoCase(
        "Dyna",
        Dyna,
        "AdvRL/GridWorld-v0",
        dict(
            TINY_DQN,
            planning_steps=4,
            model_train_freq=100,
            model_gradient_steps=10,
            model_kwargs=dict(n_members=2, hidden_sizes=(16,)),
        ),
        bad_env_id="AdvRL/Pendulum-v0",
    ),
    # Discrete observations only (GridWorld obs_mode="index"); Box observations are refused.
    AlgoCase(
        "TabularDynaQ",
        TabularDynaQ,
        "AdvRL/GridWorld-v0",
        dict(planning_steps=5),
        policy="TabularPolicy",
        env_kwargs=dict(obs_mode="index"),
        bad_env_id="AdvRL/SequenceTracking-v0",
    ),
    # Discrete(169) FourRooms observations are one-hot encoded; the option state goes through predict().
    AlgoCase(
        "OptionCritic",
        OptionCritic,
        "AdvRL/FourRooms-v0",
        dict(n_options=3, target_update_interval=50, policy_kwargs=dict(net_arch=[32]), device="cpu"),
        bad_env_id="AdvRL/Pendulum-v0",
    ),
    # One-hot FourRooms cells again; both LSTM states and the last c goals go through predict().
    AlgoCase(
        "FeudalAgent",
        FeudalAgent,
        "AdvRL/FourRooms-v0",
        dict(
            c=2,
            n_steps=5,
            policy_kwargs=dict(
                net_arch=[16], latent_dim=8, goal_embedding_dim=4, manager_hidden_size=8, worker_hidden_size=8
            ),
            device="cpu",
        ),
        bad_env_id="AdvRL/Pendulum-v0",
    ),
    # Known reward/termination (the env's reward_fn), learned heads, and Discrete actions (random shooting).
    AlgoCase("WorldModelMPC", WorldModelMPC, "AdvRL/Pendulum-v0", TINY_MPC, bad_env_id="AdvRL/FourRooms-v0"),
    AlgoCase(
        "WorldModelMPC-learned",
        WorldModelMPC,
        "AdvRL/NonlinearRegulator-v0",
        dict(TINY_MPC, use_env_functions=False),
    ),
    AlgoCase("WorldModelMPC-discrete", WorldModelMPC, "AdvRL/SequenceTracking-v0", TINY_MPC),
    # Box + Discrete actions, flat + image observations (categorical and Gaussian latents).
    AlgoCase("Dreamer", Dreamer, "AdvRL/Pendulum-v0", TINY_DREAMER, bad_env_id="AdvRL/FourRooms-v0"),
    AlgoCase(
        "Dreamer-discrete-gaussian",
        Dreamer,
        "AdvRL/SequenceTracking-v0",
        dict(
            TINY_DREAMER,
            policy_kwargs=dict(
                net_arch=[16],
                world_model_kwargs=dict(
                    TINY_DREAMER["policy_kwargs"]["world_model_kwargs"], latent="gaussian"
                ),
            ),
        ),
    ),
    AlgoCase(
        "Dreamer-rgb-discrete",
        Dreamer,
        "AdvRL/GridWorld-v0",
        TINY_DREAMER,
        policy="CnnPolicy",
        env_kwargs=dict(obs_mode="rgb", size=4, cell_px=4),
        bad_env_id="AdvRL/FourRooms-v0",
    ),
    AlgoCase("Dreamer-pixels-box", Dreamer, "Test/PointImage-v0", TINY_DREAMER, policy="CnnPolicy"),
    # Planning in latent space: Box + Discrete actions, vector + image observations, no reward_fn.
    AlgoCase("LatentMPC", LatentMPC, "AdvRL/Pendulum-v0", TINY_LATENT_MPC, bad_env_id="AdvRL/FourRooms-v0"),
    AlgoCase("LatentMPC-discrete", LatentMPC, "AdvRL/SequenceTracking-v0", TINY_LATENT_MPC),
    AlgoCase(
        "LatentMPC-rgb-discrete",
        LatentMPC,
        "AdvRL/GridWorld-v0",
        TINY_LATENT_MPC,
        policy="CnnPolicy",
        env_kwargs=dict(obs_mode="rgb", size=4, cell_px=4),
    ),
    AlgoCase("LatentMPC-pixels-box", LatentMPC, "Test/PointImage-v0", TINY_LATENT_MPC, policy="CnnPolicy"),
    # SAC on branched rollouts of the ensemble; the ensemble is saved and loaded with the networks.
    AlgoCase(
        "MBPO",
        MBPO,
        "AdvRL/Pendulum-v0",
        dict(
            TINY_AC,
            utd_ratio=2,
            rollout_batch_size=100,
            model_train_freq=100,
            model_gradient_steps=10,
            model_kwargs=dict(n_members=2, n_elites=1, hidden_sizes=(32,)),
        ),
        bad_env_id="AdvRL/GridWorld-v0",
    ),
    # Goal-conditioned Dict observations: 2 levels, subgoals over the cells of the 8x8 grid.
    AlgoCase(
        "HAC",
        HAC,
        "AdvRL/GoalGridWorld-v0",
        dict(TINY, learning_starts=50, batch_size=32, subgoal_horizon=5),
        policy="MultiInputPolicy",
        bad_env_id="AdvRL/GridWorld-v0",
    ),
]

CASES = [pytest.param(case, id=case.name) for case in ALGORITHMS]


def make_env(case: AlgoCase, env_id: str | None = None) -> gym.Env:
    """The case's env; another ``env_id`` (the bad env) is made with its default arguments."""
    if env_id is not None and env_id != case.env_id:
        return gym.make(env_id)
    return gym.make(case.env_id, **case.env_kwargs)


def build(case: AlgoCase, seed: int = 0, env: Any = None) -> BaseAlgorithm:
    # Deep copy: SB3 writes into policy_kwargs, and the tables share their dicts.
    kwargs = copy.deepcopy(case.kwargs)
    return case.algo(case.policy, env if env is not None else make_env(case), seed=seed, verbose=0, **kwargs)


def parameters(model: BaseAlgorithm) -> dict[str, np.ndarray]:
    """Every tensor of ``model.get_parameters()`` as a flat name -> array dict."""
    flat = {}
    for module, state in model.get_parameters().items():
        for key, value in state.items():
            if isinstance(value, th.Tensor):
                flat[f"{module}.{key}"] = value.detach().cpu().numpy().copy()
    return flat


def same_parameters(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> bool:
    return first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)


def rollout_actions(
    model: BaseAlgorithm, case: AlgoCase, n_steps: int = 40, seed: int = 123
) -> list[np.ndarray]:
    """Deterministic actions along a rollout, threading ``state`` and ``episode_start`` like SB3."""
    env = make_env(case)
    obs, _ = env.reset(seed=seed)
    state, episode_start, actions = None, np.array([True]), []
    for _ in range(n_steps):
        action, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=True)
        actions.append(np.array(action, copy=True))
        obs, _, terminated, truncated, _ = env.step(action)
        episode_start = np.array([terminated or truncated])
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return actions


def probe_observations(case: AlgoCase, n: int = 8) -> Any:
    """``n`` samples of the observation space as one batch (for a ``Dict`` space, a dict of batches)."""
    env = make_env(case)
    env.observation_space.seed(7)
    samples = [env.observation_space.sample() for _ in range(n)]
    env.close()
    if isinstance(samples[0], dict):
        return {key: np.stack([sample[key] for sample in samples]) for key in samples[0]}
    return np.stack(samples)


def batch_length(batch: Any) -> int:
    return len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch)


_TRAINED: dict[str, tuple[BaseAlgorithm, dict[str, np.ndarray]]] = {}


def trained(case: AlgoCase) -> tuple[BaseAlgorithm, dict[str, np.ndarray]]:
    """The case's model after ``learn(learn_steps)`` with seed 0 and its initial parameters (cached)."""
    if case.name not in _TRAINED:
        model = build(case, seed=0)
        initial = parameters(model)
        model.learn(case.learn_steps)
        _TRAINED[case.name] = (model, initial)
    return _TRAINED[case.name]


@pytest.mark.parametrize("case", CASES)
def test_learn_and_predict(case: AlgoCase) -> None:
    model, initial = trained(case)
    assert model.num_timesteps >= case.learn_steps
    # Every floating-point tensor moves: weights of every network and head, target networks,
    # normalization statistics, Q-tables (integer buffers such as elite indices may stay).
    after = parameters(model)
    assert initial.keys() == after.keys() and initial
    unchanged = [k for k, v in initial.items() if v.dtype.kind == "f" and np.array_equal(v, after[k])]
    assert not unchanged, f"learn() left these tensors unchanged: {unchanged}"

    env = make_env(case)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert np.shape(action) == env.action_space.shape
    assert env.action_space.contains(
        np.asarray(action, dtype=env.action_space.dtype).reshape(env.action_space.shape)
    )

    batch = probe_observations(case, n=3)
    actions, _ = model.predict(batch, episode_start=np.ones(3, dtype=bool), deterministic=True)
    assert np.shape(actions) == (3, *env.action_space.shape)
    for single in actions:
        assert env.action_space.contains(np.asarray(single, dtype=env.action_space.dtype))


@pytest.mark.parametrize("case", CASES)
def test_save_load_identical_actions(case: AlgoCase, tmp_path) -> None:
    model, _ = trained(case)
    path = tmp_path / f"{case.name}.zip"
    model.save(path)
    loaded = case.algo.load(path, device="cpu")

    assert type(loaded) is type(model)
    assert same_parameters(parameters(model), parameters(loaded))
    for before, after in zip(rollout_actions(model, case), rollout_actions(loaded, case), strict=True):
        np.testing.assert_array_equal(before, after)
    batch = probe_observations(case)
    episode_start = np.ones(batch_length(batch), dtype=bool)
    np.testing.assert_array_equal(
        model.predict(batch, episode_start=episode_start, deterministic=True)[0],
        loaded.predict(batch, episode_start=episode_start, deterministic=True)[0],
    )


@pytest.mark.parametrize("case", CASES)
def test_vec_env_with_two_envs(case: AlgoCase) -> None:
    if not case.supports_vec_env:
        pytest.skip(f"{case.name} runs on a single env only")
    vec_env = make_vec_env(case.env_id, n_envs=2, seed=0, env_kwargs=case.env_kwargs)
    model = build(case, env=vec_env)
    assert model.n_envs == 2
    model.learn(case.learn_steps)
    assert model.num_timesteps >= case.learn_steps
    actions, _ = model.predict(vec_env.reset(), episode_start=np.ones(2, dtype=bool), deterministic=True)
    assert np.shape(actions) == (2, *vec_env.action_space.shape)
    vec_env.close()


@pytest.mark.parametrize("case", CASES)
def test_seed_reproducibility(case: AlgoCase) -> None:
    model, _ = trained(case)
    again = build(case, seed=0)
    again.learn(case.learn_steps)
    assert same_parameters(parameters(model), parameters(again))
    batch = probe_observations(case)
    episode_start = np.ones(batch_length(batch), dtype=bool)
    np.testing.assert_array_equal(
        model.predict(batch, episode_start=episode_start, deterministic=True)[0],
        again.predict(batch, episode_start=episode_start, deterministic=True)[0],
    )
    if parameters(model):
        other = build(case, seed=1)
        other.learn(case.learn_steps)
        assert not same_parameters(parameters(model), parameters(other)), "the seed has no effect"


@pytest.mark.parametrize("case", CASES)
def test_rejects_unsupported_spaces(case: AlgoCase) -> None:
    if case.bad_env_id is None:
        pytest.skip(f"{case.name} accepts every space")
    with pytest.raises((ValueError, AssertionError), match=r"(?i)space"):
        build(case, env=make_env(case, case.bad_env_id))


# --------------------------------------------------------------------------- inherited arguments
#: Bad values of the Stable-Baselines3 arguments every sb3_ext algorithm inherits (where it has them).
BAD_INHERITED_ARGUMENTS = [
    ("batch_size", dict(batch_size=0)),
    ("buffer_size", dict(buffer_size=16, batch_size=32)),
    ("gamma", dict(gamma=1.5)),
    ("gamma", dict(gamma=-0.1)),
    ("learning_starts", dict(learning_starts=-1)),
    ("learning_rate", dict(learning_rate=float("nan"))),
    ("learning_rate", dict(learning_rate=-1.0)),
]


def constructor_arguments(algo: type[BaseAlgorithm]) -> set[str]:
    """Keyword arguments of the first constructor in the MRO that lists them (a mixin's takes ``**kwargs``):
    the first that takes ``learning_rate``, which every algorithm has."""
    for cls in algo.__mro__:
        parameters = inspect.signature(cls.__init__).parameters
        if "learning_rate" in parameters:
            return set(parameters)
    raise AssertionError(f"no constructor of {algo.__name__} takes learning_rate")


def algorithm_classes() -> list[AlgoCase]:
    """One case per algorithm class (the first in the table)."""
    seen: dict[type, AlgoCase] = {}
    for case in ALGORITHMS:
        seen.setdefault(case.algo, case)
    return list(seen.values())


BAD_ARGUMENT_CASES = [
    pytest.param(case, name, bad, id=f"{case.algo.__name__}-{'-'.join(f'{k}={v}' for k, v in bad.items())}")
    for case in algorithm_classes()
    for name, bad in BAD_INHERITED_ARGUMENTS
    if set(bad) <= constructor_arguments(case.algo)
]


def test_every_algorithm_class_is_checked_for_bad_arguments() -> None:
    exported = {
        obj for obj in vars(sb3_ext).values() if isinstance(obj, type) and issubclass(obj, BaseAlgorithm)
    }
    assert exported == {case.algo for case in algorithm_classes()}
    # Each class meets gamma and learning_rate, the off-policy ones all seven bad values.
    counts = {
        case.algo: sum(1 for param in BAD_ARGUMENT_CASES if param.values[0].algo is case.algo)
        for case in algorithm_classes()
    }
    assert counts[TabularDynaQ] == counts[OptionCritic] == 4
    assert counts[FeudalAgent] == 2  # learning_rate; its gamma_manager and gamma_worker: tests/test_feudal.py
    assert all(
        count == 7 for algo, count in counts.items() if algo not in (TabularDynaQ, OptionCritic, FeudalAgent)
    )


@pytest.mark.parametrize("case, name, bad", BAD_ARGUMENT_CASES)
def test_bad_inherited_arguments_are_value_errors_naming_them(case: AlgoCase, name: str, bad: dict) -> None:
    kwargs = {**copy.deepcopy(case.kwargs), **bad}
    with pytest.raises(ValueError, match=name):
        case.algo(case.policy, make_env(case), **kwargs)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.algo.__name__) for case in algorithm_classes()])
def test_a_learning_rate_schedule_is_accepted(case: AlgoCase) -> None:
    model = case.algo(
        case.policy,
        make_env(case),
        **{**copy.deepcopy(case.kwargs), "learning_rate": lambda progress: 1e-3 * progress},
    )
    assert model.lr_schedule(0.5) == pytest.approx(5e-4)
