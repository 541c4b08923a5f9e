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


# --------------------------------------------------------------------------- exact values and losses
# With net_arch=[] on one-hot cells every head is linear in the one-hot vector: the value of head
# row k in cell s is weight[k, s] + bias[k]. The tests below read the heads that way.
def head_values(head: th.nn.Linear, states) -> th.Tensor:
    """``(len(states), out_features)``: weight[:, s] + bias for each cell ``s``."""
    return (head.weight[:, th.as_tensor(states)].T + head.bias).detach()


def distinct_heads(model: OptionCritic, termination_bias: list[float]) -> None:
    """Seeded random heads; termination biases far from 0 (beta away from 0.5), and a target
    network whose option values differ from the online ones."""
    gen = th.Generator().manual_seed(0)
    net, target = model.policy.net, model.policy.net_target
    with th.no_grad():
        # Near-uniform intra-option policies (every move gets tried), terminations near their bias.
        for head, scale in ((net.q_head, 1.0), (net.termination_head, 0.2), (net.policy_head, 0.3)):
            head.weight.copy_(scale * th.randn(head.weight.shape, generator=gen))
            head.bias.copy_(scale * th.randn(head.bias.shape, generator=gen))
        net.termination_head.bias.copy_(th.tensor(termination_bias))
        target.load_state_dict(net.state_dict())
        target.q_head.weight.add_(th.randn(target.q_head.weight.shape, generator=gen))


def arrival_values(model: OptionCritic, states, options) -> np.ndarray:
    """U(s, w) = (1 - beta_w(s)) Q_target(s, w) + beta_w(s) max_w' Q_target(s, w'), by hand."""
    q = head_values(model.policy.net_target.q_head, states).numpy()
    beta = th.sigmoid(head_values(model.policy.net.termination_head, states)).numpy()
    rows = np.arange(len(states))
    beta_w = beta[rows, options]
    assert np.all(np.abs(beta_w - 0.5) > 0.15) and np.all((beta_w > 0.05) & (beta_w < 0.95))
    return (1 - beta_w) * q[rows, options] + beta_w * q.max(axis=1)


def test_option_value_upon_arrival_is_exact_with_three_options() -> None:
    model = make_model(n_options=3)
    distinct_heads(model, termination_bias=[-1.5, 1.2, 2.0])
    states, options = np.array([5, 5, 5, 40, 77, 100]), np.array([0, 1, 2, 2, 1, 0])
    got = model.option_value_upon_arrival(th.as_tensor(states), th.as_tensor(options)).numpy()
    np.testing.assert_allclose(got, arrival_values(model, states, options), rtol=1e-5)


def test_rollout_returns_bootstrap_with_the_arrival_value() -> None:
    """G_t = r_t + gamma (1 - done_t) G_{t+1} with G_n = U(s_n, w_{n-1}), on a rollout that
    crosses episode ends (2x2 grid: the goal is two moves away)."""
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=4, seed=0, env_kwargs=dict(size=2, obs_mode="index"))
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
    distinct_heads(model, termination_bias=[-1.5, 1.2, 2.0])
    _, callback = model._setup_learn(1000)
    assert model.collect_rollouts(model.env, callback, model.n_steps)
    buffer = model.rollout_buffer
    assert buffer.dones.any() and not buffer.dones.all()
    assert np.all(
        np.isclose(buffer.rewards, -0.1) | (buffer.rewards == 10.0)
    )  # the env's rewards: no truncation
    returns = arrival_values(model, buffer.observations[-1], buffer.options[-1])
    expected = np.zeros_like(buffer.rewards)
    for t in reversed(range(6)):
        returns = buffer.rewards[t] + 0.9 * (1 - buffer.dones[t]) * returns
        expected[t] = returns
    np.testing.assert_allclose(buffer.returns, expected, rtol=1e-5)


def test_losses_are_the_papers_equations() -> None:
    """compute_losses on a hand-made two-step rollout of two envs equals the option-critic losses
    written out from the heads: critic (G - Q(s, w))^2, intra-option policy gradient
    -(G - Q(s, w)) log pi_w(a | s), entropy, and termination beta_w(s') (Q(s', w) - V(s') + xi)
    on non-terminal steps, with V the epsilon-greedy value over options."""
    xi, eps, gamma = 0.05, 0.2, 0.9
    model = make_model(
        n_envs=2, n_options=3, n_steps=2, gamma=gamma, termination_reg=xi, ent_coef=0.03, vf_coef=0.7
    )
    distinct_heads(model, termination_bias=[-1.5, 1.2, 2.0])
    model.exploration_rate = eps
    states = np.array([[10, 20], [11, 30], [12, 31]])  # s_0, s_1 and the last observation s_2 of each env
    actions, options = np.array([[0, 3], [2, 1]]), np.array([[0, 2], [1, 2]])
    rewards, dones = np.array([[0.5, -1.0], [0.0, 2.0]], dtype=np.float32), np.array([[0.0, 1.0], [0.0, 0.0]])
    last_values = np.array([0.3, -0.4], dtype=np.float32)
    buffer = model.rollout_buffer
    buffer.reset()
    for t in range(2):
        buffer.add(states[t], actions[t], options[t], rewards[t], dones[t])
    buffer.finish(states[2], last_values, gamma)
    losses = model.compute_losses()

    net = model.policy.net
    g1 = rewards[1] + gamma * (1 - dones[1]) * last_values
    g0 = rewards[0] + gamma * (1 - dones[0]) * g1
    returns = th.as_tensor(np.concatenate([g0, g1]))
    s, s_next = states[:2].reshape(-1), states[1:].reshape(-1)
    a, w, not_done = (
        th.as_tensor(actions.reshape(-1)),
        th.as_tensor(options.reshape(-1)),
        th.as_tensor(1 - dones.reshape(-1)),
    )
    rows = th.arange(4)
    q = head_values(net.q_head, s)[rows, w]
    logits = head_values(net.policy_head, s).view(4, 3, -1)[rows, w]
    log_pi = logits - th.logsumexp(logits, dim=1, keepdim=True)
    q_next = head_values(net.q_head, s_next)
    v_next = (1 - eps) * q_next.max(dim=1).values + eps * q_next.mean(dim=1)
    beta_next = th.sigmoid(head_values(net.termination_head, s_next))[rows, w]
    expected = dict(
        critic_loss=((returns - q) ** 2).mean(),
        policy_loss=-((returns - q) * log_pi[rows, a]).mean(),
        entropy_loss=(log_pi.exp() * log_pi).sum(dim=1).mean(),
        termination_loss=(beta_next * (q_next[rows, w] - v_next + xi) * not_done).mean(),
        termination_prob=(beta_next * not_done).sum() / not_done.sum(),
    )
    expected["loss"] = (
        expected["policy_loss"]
        + 0.03 * expected["entropy_loss"]
        + 0.7 * expected["critic_loss"]
        + expected["termination_loss"]
    )
    for name, value in expected.items():
        assert losses[name].item() == pytest.approx(float(value), rel=1e-5, abs=1e-7), name


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
