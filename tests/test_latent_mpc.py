"""LatentMPC: the latent-space score, the plans it leads to (hand-set world models), the update, errors."""

from __future__ import annotations

import copy
import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from torch import nn

import gym_advrl  # noqa: F401
from sb3_ext.common.planners import CEMPlanner, RandomShootingPlanner, latent_returns
from sb3_ext.common.world_model import LatentWorldModel
from sb3_ext.latent_mpc import LatentMPC

TANH1 = math.tanh(1.0)
TINY_WORLD_MODEL = dict(
    deter_size=4, stoch_size=2, hidden_size=4, mlp_layers=[8], embed_dim=8, symlog=False, free_nats=0.0
)


def hand_set_model(
    action_space: spaces.Space, observation_space: spaces.Space | None = None
) -> LatentWorldModel:
    """
    A world model whose GRU state after an action depends on that action only:
    ``h'_i = tanh(ELU(x_i))`` where ``x_i`` is the i-th entry of the action vector (one-hot for
    Discrete), with the update gate shut (bias -40) and no recurrence; the prior's and the
    posterior's modes are 0.
    """
    observation_space = observation_space or spaces.Box(-1, 1, (3,), np.float32)
    model = LatentWorldModel(observation_space, action_space, **TINY_WORLD_MODEL)
    rssm = model.rssm
    with th.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        linear = rssm.img_in[0]
        stoch = rssm.stoch_flat_size
        for i in range(model.action_dim):
            linear.weight[i, stoch + i] = 1.0  # hidden i = action entry i
        size = rssm.deter_size
        # GRUCell gates are stacked (reset, update, new): shut the update gate, new = tanh(W x).
        rssm.gru.bias_ih[size : 2 * size] = -40.0
        for i in range(model.action_dim):
            rssm.gru.weight_ih[2 * size + i, i] = 1.0
    return model


def discrete_model(observation_space: spaces.Space | None = None) -> LatentWorldModel:
    """
    Discrete(2): action 1 earns 2 and ends the episode (continuation ~ 0), action 0 earns 1 and
    goes on. Over 3 steps the best sequence is (0, 0, 1), return 4; ignoring the continuation it
    would be (1, 1, 1), return 6.
    """
    model = hand_set_model(spaces.Discrete(2), observation_space)
    # h'_0 = tanh(1) after action 0, h'_1 = tanh(1) after action 1.
    reward, continuation = nn.Linear(model.feature_size, 1), nn.Linear(model.feature_size, 1)
    with th.no_grad():
        reward.weight.zero_(), reward.bias.zero_(), continuation.weight.zero_()
        reward.weight[0, 0], reward.weight[0, 1] = 1.0 / TANH1, 2.0 / TANH1
        continuation.weight[0, 1] = -40.0 / TANH1
        continuation.bias.fill_(20.0)
    model.reward_head, model.continuation_head = reward, continuation
    return model


def expected_return(sequence: tuple[int, ...], use_continuation: bool, discount: float = 1.0) -> float:
    """The hand-computed objective: rewards 1 / 2, continuation sigmoid(20) / sigmoid(-20)."""
    total, weight = 0.0, 1.0
    for t, action in enumerate(sequence):
        total += weight * (2.0 if action == 1 else 1.0)
        weight *= discount
        if use_continuation:
            weight *= 1.0 / (1.0 + math.exp(20.0 if action == 1 else -20.0))
        del t
    return total


SEQUENCES = list(itertools.product([0, 1], repeat=3))


@pytest.mark.parametrize("use_continuation", [True, False])
@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_latent_returns_match_hand_computed_values(use_continuation: bool, discount: float) -> None:
    model = discrete_model()
    start = model.initial_state(2)
    candidates = th.tensor(SEQUENCES).expand(2, -1, -1)
    returns = latent_returns(model, start, candidates, discount=discount, use_continuation=use_continuation)
    expected = th.tensor([expected_return(s, use_continuation, discount) for s in SEQUENCES])
    assert returns.shape == (2, len(SEQUENCES))
    th.testing.assert_close(returns, expected.expand(2, -1), atol=1e-5, rtol=0)


def test_latent_returns_equal_a_step_by_step_rollout_of_an_untrained_model() -> None:
    """Against the world model's own ``rollout`` and heads, one candidate at a time."""
    th.manual_seed(0)
    model = LatentWorldModel(
        spaces.Box(-1, 1, (3,), np.float32), spaces.Box(-1, 1, (2,), np.float32), **TINY_WORLD_MODEL
    )
    start = model.initial_state(3).map(lambda t: t + th.randn_like(t))
    candidates = th.rand(3, 5, 4, 2) * 2 - 1
    returns = latent_returns(model, start, candidates, discount=0.95)
    for b, p in itertools.product(range(3), range(5)):
        one = start.map(lambda t, b=b: t[b : b + 1])
        features = model.features(model.rollout(one, candidates[b : b + 1, p], sample=False))[0]
        rewards, continuations = model.reward(features), model.continuation(features)
        weights = th.cumprod(th.cat([th.ones(1), 0.95 * continuations[:-1]]), 0)
        th.testing.assert_close(returns[b, p], (weights * rewards).sum(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("use_continuation", "best"), [(True, (0, 0, 1)), (False, (1, 1, 1))])
def test_random_shooting_in_latent_space_finds_the_best_sequence(use_continuation: bool, best: tuple) -> None:
    model = discrete_model()
    planner = RandomShootingPlanner(spaces.Discrete(2), horizon=3, population_size=64)
    start = model.initial_state(1)
    result = planner.plan(
        model.features(start),
        lambda packed, seqs: latent_returns(model, start, seqs, use_continuation=use_continuation),
        generator=th.Generator().manual_seed(0),
    )
    assert tuple(result.plan[0].tolist()) == best
    assert result.expected_return.item() == pytest.approx(expected_return(best, use_continuation), abs=1e-5)


class SquaredDistance(nn.Module):
    """Reward head ``-(h_0 - target)^2``: the best action makes ``tanh(ELU(a)) = target``."""

    def __init__(self, target: float) -> None:
        super().__init__()
        self.target = target

    def forward(self, features: th.Tensor) -> th.Tensor:
        return -((features[..., :1] - self.target) ** 2)


def test_cem_in_latent_space_converges_to_the_analytic_optimum() -> None:
    """Reward ``-(tanh(ELU(a_t)) - tanh(0.3))^2`` each step: the optimum is ``a_t = 0.3`` for all t."""
    model = hand_set_model(spaces.Box(-1, 1, (1,), np.float32))
    model.reward_head = SquaredDistance(math.tanh(0.3))
    planner = CEMPlanner(
        spaces.Box(-1, 1, (1,), np.float32), horizon=4, population_size=300, n_elites=30, n_iterations=8
    )
    start = model.initial_state(1)
    result = planner.plan(
        model.features(start),
        lambda packed, seqs: latent_returns(model, start, seqs),
        generator=th.Generator().manual_seed(0),
    )
    np.testing.assert_allclose(result.plan[0, :, 0].numpy(), 0.3, atol=0.02)
    assert result.expected_return.item() > -1e-3


def tiny_algo(env, **kwargs) -> LatentMPC:
    defaults = dict(
        learning_starts=20,
        batch_size=3,
        sequence_length=5,
        train_ratio=4,
        horizon=3,
        population_size=16,
        n_elites=4,
        n_iterations=2,
        buffer_size=500,
        device="cpu",
        seed=0,
        policy_kwargs=dict(world_model_kwargs=TINY_WORLD_MODEL),
    )
    return LatentMPC("MlpPolicy", env, **{**defaults, **kwargs})


def test_policy_plans_with_the_hand_set_model_and_carries_its_state() -> None:
    """The policy acts on the plan's first action: (0, 0, 1) starts with 0, ignoring termination 1."""
    env = gym.make("AdvRL/SequenceTracking-v0")
    algo = tiny_algo(env, population_size=64)
    for use_continuation, first in [(True, 0), (False, 1)]:
        policy = algo.policy
        policy.world_model = discrete_model(env.observation_space)
        policy.use_continuation = use_continuation
        obs = np.zeros((2, *env.observation_space.shape), dtype=np.float32)
        action, state = policy.predict(obs, deterministic=True)
        assert action.tolist() == [first, first]
        deter, stoch, previous, plan = state
        assert previous.reshape(-1).tolist() == [first, first] and plan.shape == (2, 3)
        np.testing.assert_array_equal(plan[:, :2], np.array([[0, 1]] * 2) if use_continuation else 1)


def test_one_update_is_one_clipped_adam_step_on_the_world_model_loss() -> None:
    """``train(1)`` equals the world model's loss on the same sampled batch, clipped, one Adam step."""
    algo = tiny_algo(gym.make("AdvRL/Pendulum-v0"), max_grad_norm=0.5)
    algo.learn(30)  # fills the buffer (20 random steps, then planned ones) and updates a few times
    reference = copy.deepcopy(algo.policy.world_model)
    optimizer = th.optim.Adam(reference.parameters(), lr=algo.learning_rate, eps=1e-4)
    # A copy: loading a state dict would share the moment tensors, which the algorithm's step updates.
    optimizer.load_state_dict(copy.deepcopy(algo.policy.optimizer.state_dict()))

    # The buffer samples from numpy's global generator, the latents from torch's.
    numpy_state, torch_state = np.random.get_state(), th.get_rng_state()  # noqa: NPY002
    batch = algo.replay_buffer.sample(algo.batch_size, algo.sequence_length)
    np.random.set_state(numpy_state)  # noqa: NPY002
    algo.train(gradient_steps=1, batch_size=algo.batch_size)

    th.set_rng_state(torch_state)
    total, terms = reference.loss(batch)
    expected_total = (
        terms["reconstruction_loss"] + terms["reward_loss"] + terms["continuation_loss"] + terms["kl_loss"]
    )
    th.testing.assert_close(total, expected_total)
    optimizer.zero_grad()
    total.backward()
    norm = th.sqrt(sum((p.grad**2).sum() for p in reference.parameters() if p.grad is not None))
    assert norm > 0.5, "the test needs a batch whose gradient is clipped"
    for p in reference.parameters():
        if p.grad is not None:
            p.grad.mul_(0.5 / (norm + 1e-6))
    optimizer.step()
    for name, p in reference.named_parameters():
        th.testing.assert_close(algo.policy.world_model.get_parameter(name), p, msg=name)


def test_the_reward_model_is_learned_without_reward_fn() -> None:
    """
    The planner's objective is learned: on pendulum states (random actions), 200 updates bring the
    reward head's squared error on 32 windows of the buffer below 20% of their rewards' variance
    (the error of predicting the mean); measured 7% with this seed.
    """
    wm = dict(TINY_WORLD_MODEL, deter_size=32, stoch_size=8, hidden_size=32, mlp_layers=[32])
    algo = tiny_algo(
        gym.make("AdvRL/Pendulum-v0"),
        learning_starts=200,
        batch_size=8,
        sequence_length=10,
        learning_rate=3e-3,
        policy_kwargs=dict(world_model_kwargs=wm),
    )
    algo.learn(200)  # random steps only: the buffer fills
    batch = algo.replay_buffer.sample(32, 10)
    algo.train(gradient_steps=200, batch_size=8)
    with th.no_grad():
        trained = algo.policy.world_model.loss(batch)[1]["reward_loss"].item()
    assert trained < 0.2 * batch.rewards.var(unbiased=False).item()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(sequence_length=1), "sequence_length"),
        (dict(train_ratio=0), "train_ratio"),
        (dict(train_ratio=-1.0), "train_ratio"),
        (dict(horizon=0), "horizon"),
        (dict(n_elites=50, population_size=10), "n_elites"),
        (dict(max_grad_norm=0.0), "max_grad_norm"),
        (dict(gamma=1.5), "gamma"),
        (dict(policy_kwargs=dict(planner_kwargs={})), "planner_kwargs"),
        (dict(policy_kwargs=dict(world_model_kwargs=dict(latent="beta"))), "latent"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        tiny_algo(gym.make("AdvRL/Pendulum-v0"), **kwargs)


def test_unsupported_observation_spaces_are_refused() -> None:
    env = gym.make("AdvRL/GridWorld-v0", obs_mode="index")  # Discrete observations
    with pytest.raises(ValueError, match="observation_space"):
        tiny_algo(env)
    odd = gym.wrappers.AddRenderObservation(
        gym.make("AdvRL/Pendulum-v0", render_mode="rgb_array", width=30, height=30)
    )
    with pytest.raises(ValueError):
        tiny_algo(odd)
