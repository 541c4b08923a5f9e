"""OptionCritic behaviour: the termination gradient of Bacon et al. (2017), option state across
episodes, and the reduction to an actor-critic (SB3's A2C) with one never-ending option.

The API contract (learn/predict, save/load with the option state, VecEnv, seeding, space
checks) is covered by ``tests/test_algorithms.py``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import A2C
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import obs_as_tensor

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.option_critic import OptionCritic


def make_model(env_id: str = "AdvRL/FourRooms-v0", n_envs: int = 1, **kwargs) -> OptionCritic:
    kwargs.setdefault("policy_kwargs", dict(net_arch=[]))
    env = make_vec_env(env_id, n_envs=n_envs, seed=0)
    return OptionCritic("MlpPolicy", env, seed=0, device="cpu", **kwargs)


def set_heads(model: OptionCritic, q_bias: list[float], termination_bias: float | None = None) -> None:
    """Constant option values Q(s, w) = q_bias[w] and termination probabilities sigmoid(bias)."""
    net = model.policy.net
    with th.no_grad():
        net.q_head.weight.zero_()
        net.q_head.bias.copy_(th.tensor(q_bias))
        if termination_bias is not None:
            net.termination_head.weight.zero_()
            net.termination_head.bias.fill_(termination_bias)
    model.policy.net_target.load_state_dict(net.state_dict())


def fill_rollout(model: OptionCritic, state: int, next_state: int, options: list[int]) -> None:
    """A one-step rollout: every env acts in ``state`` with its option and lands in ``next_state``."""
    n = len(options)
    buffer = model.rollout_buffer
    buffer.reset()
    buffer.add(np.full(n, state), np.zeros(n), np.array(options), np.zeros(n), np.zeros(n, dtype=bool))
    buffer.finish(np.full(n, next_state), np.zeros(n), model.gamma)


def termination_probs(model: OptionCritic, state: int) -> np.ndarray:
    with th.no_grad():
        return model.policy.net(th.tensor([state])).termination_probs[0].numpy()


# --------------------------------------------------------------------------- termination gradient
@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_termination_gradient_matches_the_paper(epsilon: float) -> None:
    """d loss / d beta_w(s') = Q(s', w) - V(s') + xi, with V the epsilon-greedy value over options."""
    xi = 0.05
    model = make_model(n_envs=3, n_options=3, n_steps=1, termination_reg=xi)
    model.exploration_rate = epsilon
    q = [0.0, 1.0, 0.5]
    set_heads(model, q, termination_bias=0.3)
    fill_rollout(model, state=10, next_state=11, options=[0, 1, 2])
    model.policy.optimizer.zero_grad()
    model.compute_losses()["termination_loss"].backward()

    v = (1 - epsilon) * max(q) + epsilon * np.mean(q)
    beta = 1 / (1 + np.exp(-0.3))
    # Mean over the 3 samples; d beta / d bias = beta (1 - beta).
    expected = beta * (1 - beta) * (np.array(q) - v + xi) / 3
    np.testing.assert_allclose(model.policy.net.termination_head.bias.grad.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("xi", "expected_direction"),
    [
        (0.0, [+1, 0]),  # the worse option (Q < V) terminates more; A = 0 for the greedy one
        (0.5, [+1, -1]),  # Q(s, 0) = V - 1 < V - xi: terminates more; the greedy option less
        (1.5, [-1, -1]),  # Q(s, 0) = V - 1 > V - xi: the deliberation cost keeps it going
    ],
)
def test_training_moves_terminations_as_the_paper_says(xi: float, expected_direction: list[int]) -> None:
    """One update raises beta_w(s') exactly where Q_Omega(s', w) < V(s') - deliberation cost."""
    model = make_model(
        n_envs=2,
        n_options=2,
        n_steps=1,
        termination_reg=xi,
        exploration_initial_eps=0.0,
        exploration_final_eps=0.0,
        learning_rate=0.5,
        policy_kwargs=dict(net_arch=[], optimizer_class=th.optim.SGD),
    )
    model.exploration_rate = 0.0
    set_heads(model, [0.0, 1.0], termination_bias=0.0)
    fill_rollout(model, state=10, next_state=11, options=[0, 1])
    model.set_logger(configure(None, []))
    before = termination_probs(model, 11)
    model.train()
    change = termination_probs(model, 11) - before
    np.testing.assert_array_equal(np.sign(change), expected_direction)


def test_no_termination_gradient_across_episode_ends() -> None:
    model = make_model(n_envs=2, n_options=2, n_steps=1)
    set_heads(model, [0.0, 1.0], termination_bias=0.0)
    buffer = model.rollout_buffer
    buffer.reset()
    buffer.add(np.full(2, 10), np.zeros(2), np.array([0, 1]), np.zeros(2), np.ones(2, dtype=bool))
    buffer.finish(np.full(2, 11), np.zeros(2), model.gamma)
    model.policy.optimizer.zero_grad()
    model.compute_losses()["termination_loss"].backward()
    assert th.count_nonzero(model.policy.net.termination_head.bias.grad) == 0


# --------------------------------------------------------------------------- option state
def test_predict_resets_options_at_episode_start() -> None:
    model = make_model(n_options=3, policy_kwargs=dict(net_arch=[], fixed_termination_prob=0.0))
    set_heads(model, [0.0, 0.2, 1.0])  # the greedy option is 2
    obs = np.array([5, 6])
    for deterministic in (True, False):
        _, (options,) = model.predict(
            obs, state=(np.array([0, 1]),), episode_start=np.array([True, False]), deterministic=deterministic
        )
        if deterministic:
            np.testing.assert_array_equal(options, [2, 1])
        else:
            assert options[1] == 1  # never terminates: the running option is kept
    _, (options,) = model.predict(obs, deterministic=True)  # no state: every env starts
    np.testing.assert_array_equal(options, [2, 2])
    _, (options,) = model.predict(np.int64(5), state=(np.array([1]),), episode_start=np.array([False]))
    np.testing.assert_array_equal(options, [1])


def test_deterministic_termination_threshold() -> None:
    model = make_model(n_options=2)
    set_heads(model, [0.0, 1.0], termination_bias=1.0)  # beta = 0.73 > 0.5: terminate, pick 1
    _, (options,) = model.predict(
        np.array([5]), state=(np.array([0]),), episode_start=np.array([False]), deterministic=True
    )
    np.testing.assert_array_equal(options, [1])
    set_heads(model, [0.0, 1.0], termination_bias=-1.0)  # beta = 0.27: keep option 0
    _, (options,) = model.predict(
        np.array([5]), state=(np.array([0]),), episode_start=np.array([False]), deterministic=True
    )
    np.testing.assert_array_equal(options, [0])


def test_training_options_change_only_at_episode_start() -> None:
    """With terminations off, options last exactly one episode; durations are episode lengths."""
    model = make_model(
        "AdvRL/GridWorld-v0",
        n_envs=2,
        n_options=3,
        n_steps=150,
        exploration_initial_eps=1.0,
        exploration_final_eps=1.0,
        policy_kwargs=dict(net_arch=[16], fixed_termination_prob=0.0),
    )
    model.learn(300)
    options, dones = model.rollout_buffer.options, model.rollout_buffer.dones.astype(bool)
    switched = options[1:] != options[:-1]
    assert not np.any(switched & ~dones[:-1]), "an option changed inside an episode"
    assert np.any(switched & dones[:-1]), "no new option was selected at an episode start"
    episode_lengths = [info["l"] for info in model.ep_info_buffer]
    assert len(episode_lengths) >= 2
    assert list(model.option_durations) == episode_lengths


def test_bad_arguments() -> None:
    env = make_vec_env("AdvRL/FourRooms-v0", n_envs=1)
    with pytest.raises(ValueError, match="n_options"):
        OptionCritic("MlpPolicy", env, n_options=0)
    with pytest.raises(ValueError, match="n_options"):
        OptionCritic("MlpPolicy", env, policy_kwargs=dict(n_options=2))
    with pytest.raises(ValueError, match="fixed_termination_prob"):
        OptionCritic("MlpPolicy", env, policy_kwargs=dict(fixed_termination_prob=1.5))
    with pytest.raises(ValueError, match="action space"):
        OptionCritic("MlpPolicy", gym.make("AdvRL/Pendulum-v0"))
    model = OptionCritic("MlpPolicy", env, n_options=2, device="cpu")
    with pytest.raises(ValueError, match="state"):
        model.predict(np.array([3]), state=(np.array([2]),))


# --------------------------------------------------------------------------- learning
@pytest.fixture
def one_thread():
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


def test_learns_gridworld(one_thread) -> None:
    """5x5 GridWorld (one-hot cells): the greedy options reach the goal on a shortest path."""
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=4, seed=0, env_kwargs=dict(obs_mode="index"))
    model = OptionCritic(
        "MlpPolicy",
        env,
        n_options=2,
        learning_rate=3e-3,
        target_update_interval=200,
        exploration_fraction=0.2,
        policy_kwargs=dict(net_arch=[32]),
        seed=0,
        device="cpu",
    )
    model.learn(10_000)
    eval_env = gym.make("AdvRL/GridWorld-v0", obs_mode="index")
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=True, warn=False)
    assert mean_return > 9.2  # 8 moves from (0, 0) to (4, 4): 10 - 7 * 0.1 = 9.3; a loop scores -10
    assert np.mean(model.option_durations) > 2.0  # options outlast single steps


# --------------------------------------------------------------------------- reduction to A2C
def test_one_option_without_terminations_is_a2c() -> None:
    """One option that never terminates: Q_Omega is a state value and the update is A2C's."""
    hyper = dict(learning_rate=7e-4, n_steps=32, gamma=0.99, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5)
    optimizer = dict(
        optimizer_class=th.optim.RMSprop, optimizer_kwargs=dict(alpha=0.99, eps=1e-5, weight_decay=0)
    )
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    oc = OptionCritic(
        "MlpPolicy",
        env,
        n_options=1,
        seed=0,
        device="cpu",
        policy_kwargs=dict(net_arch=[], fixed_termination_prob=0.0, **optimizer),
        **hyper,
    )
    _, callback = oc._setup_learn(64)
    assert oc.collect_rollouts(oc.env, callback, oc.n_steps)
    data = oc.rollout_buffer
    assert data.dones.any(), "the rollout should cross an episode end"

    a2c = A2C(
        "MlpPolicy",
        env,
        gae_lambda=1.0,
        normalize_advantage=False,
        device="cpu",
        policy_kwargs=dict(net_arch=[]),
        **hyper,
    )
    net = oc.policy.net
    with th.no_grad():
        a2c.policy.action_net.weight.copy_(net.policy_head.weight)
        a2c.policy.action_net.bias.copy_(net.policy_head.bias)
        a2c.policy.value_net.weight.copy_(net.q_head.weight)
        a2c.policy.value_net.bias.copy_(net.q_head.bias)
        buffer = a2c.rollout_buffer
        buffer.reset()
        for t in range(oc.n_steps):
            obs = obs_as_tensor(data.observations[t], "cpu")
            actions = th.as_tensor(data.actions[t])
            values, log_probs, _ = a2c.policy.evaluate_actions(obs, actions)
            starts = np.ones(2, dtype=bool) if t == 0 else data.dones[t - 1]
            buffer.add(
                data.observations[t], data.actions[t][:, None], data.rewards[t], starts, values, log_probs
            )
        last_values = a2c.policy.predict_values(obs_as_tensor(data.observations[-1], "cpu"))
        buffer.compute_returns_and_advantage(last_values=last_values, dones=data.dones[-1])
    np.testing.assert_allclose(buffer.returns, data.returns, rtol=1e-5, atol=1e-5)

    initial = net.policy_head.weight.detach().clone()
    oc.train()
    a2c.set_logger(configure(None, []))
    a2c.train()
    assert not th.equal(initial, net.policy_head.weight.detach()), "the update changed nothing"
    np.testing.assert_allclose(
        net.policy_head.weight.detach(), a2c.policy.action_net.weight.detach(), atol=1e-6
    )
    np.testing.assert_allclose(net.policy_head.bias.detach(), a2c.policy.action_net.bias.detach(), atol=1e-6)
    np.testing.assert_allclose(net.q_head.weight.detach(), a2c.policy.value_net.weight.detach(), atol=1e-6)
    np.testing.assert_allclose(net.q_head.bias.detach(), a2c.policy.value_net.bias.detach(), atol=1e-6)
