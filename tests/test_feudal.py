"""FeudalAgent behaviour: the FeUdal equations (intrinsic reward, transition-policy gradient, Worker
policy softmax(U w)) written out independently, learning on a small grid, the recurrent state
through save/load, and the argument checks.

The API contract (learn/predict, save/load with the state, VecEnv, seeding, space checks) is also
covered by ``tests/test_algorithms.py``.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.common.evaluation import random_policy_returns
from sb3_ext.feudal import FeudalAgent, FeudalState
from sb3_ext.feudal.feudal import episode_ids, intrinsic_rewards

SMALL = dict(latent_dim=8, goal_embedding_dim=4, manager_hidden_size=8, worker_hidden_size=8, net_arch=[16])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return 0.0 if norm == 0 else float(a @ b / norm)


def make_model(n_envs: int = 2, env_kwargs: dict | None = None, **kwargs) -> FeudalAgent:
    kwargs.setdefault("policy_kwargs", dict(SMALL))
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=n_envs, seed=0, env_kwargs=env_kwargs)
    return FeudalAgent("MlpPolicy", env, seed=0, device="cpu", **kwargs)


# --------------------------------------------------------------------------- intrinsic reward
def test_intrinsic_reward_of_a_hand_made_sequence() -> None:
    """r^I_{t+1} = 1/c sum_{i=1..c} cos(s_{t+1} - s_{t+1-i}, g_{t+1-i}) with c = 2 on a square walk
    s = (0,0), (1,0), (1,1), (0,1), (0,0); the goals point along the walk; a new episode starts at
    step 3, so its term of the previous episode counts 0."""
    s = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=np.float32)
    g = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float32)
    starts = np.array([1, 0, 0, 1], dtype=np.float32)
    got = intrinsic_rewards(
        th.as_tensor(s[:-1, None]),
        th.as_tensor(s[1:, None]),
        th.as_tensor(g[:, None]),
        episode_ids(th.as_tensor(starts[:, None])),
        c=2,
    )[:, 0].numpy()
    r = 1 / math.sqrt(2)
    # Step 0: cos((1,0),(1,0)) and nothing before the episode; steps 1, 2: 1 and cos 45 degrees;
    # step 3: cos((0,-1),(0,-1)) and the previous episode's term 0.
    np.testing.assert_allclose(got, [0.5, (1 + r) / 2, (1 + r) / 2, 0.5], rtol=1e-6)


def test_intrinsic_reward_matches_the_sum_written_out() -> None:
    rng = np.random.default_rng(0)
    steps, n_envs, dim, c = 7, 3, 4, 3
    s = rng.normal(size=(steps + 1, n_envs, dim)).astype(np.float32)
    g = rng.normal(size=(steps, n_envs, dim)).astype(np.float32)
    starts = (rng.random((steps, n_envs)) < 0.3).astype(np.float32)
    got = intrinsic_rewards(
        th.as_tensor(s[:-1]), th.as_tensor(s[1:]), th.as_tensor(g), episode_ids(th.as_tensor(starts)), c
    ).numpy()
    expected = np.zeros((steps, n_envs))
    for e in range(n_envs):
        for t in range(steps):
            for i in range(1, c + 1):
                k = t + 1 - i
                if k >= 0 and not starts[k + 1 : t + 1, e].any():
                    expected[t, e] += cosine(s[t + 1, e] - s[k, e], g[k, e]) / c
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- Worker policy
def test_worker_logits_are_u_times_phi_of_the_last_c_goals() -> None:
    """pi = softmax(U_t w_t), w_t = phi(g_{t-c+1} + ... + g_t), phi linear without bias; goals of a
    previous episode are forgotten at episode_start."""
    c = 3
    model = make_model(n_envs=1, c=c, n_steps=6)
    policy = model.policy
    assert policy.phi.bias is None
    env = gym.make("AdvRL/GridWorld-v0")
    obs, _ = env.reset(seed=0)
    state, goals = policy.initial_state(1), []
    for t in range(6):
        start = t in (0, 4)
        if start:
            goals = []
        with th.no_grad():
            step = policy.step(th.as_tensor(obs[None]), state, th.tensor([start]), deterministic=True)
        goals.append(step.goals[0].numpy())
        state = step.state
        u = policy.worker_head(state.worker_hidden).detach().numpy().reshape(env.action_space.n, -1)
        w = policy.phi.weight.detach().numpy() @ np.sum(goals[-c:], axis=0)
        np.testing.assert_allclose(step.action_logits[0].numpy(), u @ w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(step.goals[0].numpy()), 1.0, rtol=1e-5)
        obs, *_ = env.step(int(step.actions[0]))


def test_no_gradient_flows_from_the_worker_into_the_goals() -> None:
    model = make_model(c=2, n_steps=4)
    policy = model.policy
    goals = th.randn(5, policy.latent_dim, requires_grad=True)
    logits = policy.action_logits(th.randn(5, policy.worker_hidden_size), goals)
    logits.sum().backward()
    assert goals.grad is None and policy.phi.weight.grad is not None
    # Through a whole update: the Worker's losses leave the Manager's goal head untouched.
    _, callback = model._setup_learn(1000)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    losses = model.compute_losses()
    manager_parameters = [policy.goal_head.weight, policy.goal_head.bias]
    for name in ("worker_policy_loss", "entropy_loss"):
        grads = th.autograd.grad(losses[name], manager_parameters, retain_graph=True, allow_unused=True)
        assert all(grad is None or not grad.any() for grad in grads), name
    grads = th.autograd.grad(losses["manager_loss"], manager_parameters, retain_graph=True)
    assert all(grad.abs().sum() > 0 for grad in grads)


# --------------------------------------------------------------------------- losses on a rollout
def expected_losses(model: FeudalAgent) -> dict[str, float]:
    """The FeUdal losses of the stored window, step by step from the policy's acting path."""
    data = model.rollout_buffer.get("cpu")
    policy, c, prefix = model.policy, model.c, data.prefix_length
    obs, starts = data.observations.numpy(), data.episode_starts.numpy().astype(bool)
    actions, rewards, dones = data.actions.numpy(), data.rewards.numpy(), data.dones.numpy().astype(bool)
    goals, final_obs = data.goals.numpy(), data.final_observations
    steps, n_envs = actions.shape
    gm, gw, alpha = model.gamma_manager, model.gamma_worker, model.alpha

    g_net = np.zeros((steps + 1, n_envs, policy.latent_dim))
    v_m, v_d = np.zeros((steps + 1, n_envs)), np.zeros((steps + 1, n_envs))
    u = np.zeros((steps + 1, n_envs, policy.n_actions, policy.goal_embedding_dim))
    state = FeudalState(*data.initial_state[:4], policy.initial_state(n_envs).goals)
    with th.no_grad():
        for t in range(steps + 1):
            step = policy.step(th.as_tensor(obs[t]), state, th.as_tensor(starts[t]), deterministic=True)
            state = step.state
            g_net[t] = step.goals.numpy()
            v_m[t], v_d[t] = step.manager_values.numpy(), step.worker_values.numpy()
            u[t] = policy.worker_head(state.worker_hidden).view(n_envs, policy.n_actions, -1).numpy()
        # s_t of every observation, and s_{t+1} of every step: the next observation's latent, or
        # the final observation's where the episode ended (one batch, so that a step into a wall
        # moves the latent by exactly zero, as in the update).
        all_obs = th.cat([data.observations.flatten(0, 1), final_obs.flatten(0, 1)])
        all_latents = policy.latents(all_obs).numpy()
    s = all_latents[: (steps + 1) * n_envs].reshape(steps + 1, n_envs, -1)
    s_final = all_latents[(steps + 1) * n_envs :].reshape(steps, n_envs, -1)
    s_next = np.where(dones[..., None], s_final, s[1:])
    phi = policy.phi.weight.detach().numpy()

    def same_episode(k: int, t: int, e: int) -> bool:
        return k >= 0 and not starts[k + 1 : t + 1, e].any()

    out = {key: [] for key in ("manager", "worker", "entropy", "v_m", "v_d")}
    for e in range(n_envs):
        r_m, r_d = np.zeros(steps), np.zeros(steps)
        ret_m, ret_d = v_m[steps, e], v_d[steps, e]
        for t in reversed(range(steps)):
            intrinsic = sum(
                cosine(s_next[t, e] - s[t + 1 - i, e], goals[t + 1 - i, e])
                for i in range(1, c + 1)
                if same_episode(t + 1 - i, t, e)
            )
            ret_m = rewards[t, e] + gm * data.manager_bootstrap[t, e].item() + gm * (1 - dones[t, e]) * ret_m
            ret_d = (
                rewards[t, e]
                + alpha * intrinsic / c
                + gw * data.worker_bootstrap[t, e].item()
                + gw * (1 - dones[t, e]) * ret_d
            )
            r_m[t], r_d[t] = ret_m, ret_d
        for t in range(steps - c):
            target = s[t + c, e]
            for j in range(c):
                if dones[t + j, e]:
                    target = s_next[t + j, e]
                    break
            out["manager"].append(-(r_m[t] - v_m[t, e]) * cosine(target - s[t, e], g_net[t, e]))
        for t in range(prefix, steps):
            window = [goals[k, e] for k in range(t - c + 1, t + 1) if same_episode(k, t, e)]
            logits = u[t, e] @ (phi @ np.sum(window, axis=0))
            log_pi = logits - np.log(np.exp(logits).sum())
            out["worker"].append(-(r_d[t] - v_d[t, e]) * log_pi[actions[t, e]])
            out["entropy"].append((np.exp(log_pi) * log_pi).sum())
            out["v_m"].append((r_m[t] - v_m[t, e]) ** 2)
            out["v_d"].append((r_d[t] - v_d[t, e]) ** 2)
    expected = dict(
        manager_loss=np.mean(out["manager"]),
        worker_policy_loss=np.mean(out["worker"]),
        entropy_loss=np.mean(out["entropy"]),
        manager_value_loss=np.mean(out["v_m"]),
        worker_value_loss=np.mean(out["v_d"]),
    )
    expected["loss"] = (
        expected["manager_loss"]
        + expected["worker_policy_loss"]
        + model.ent_coef * expected["entropy_loss"]
        + model.vf_coef * (expected["manager_value_loss"] + expected["worker_value_loss"])
    )
    return expected


def test_losses_are_the_papers_equations_across_rollouts_and_episode_ends() -> None:
    """On a 2x2 grid with a 3-step time limit (goals reached and time limits within the window):
    the Manager's loss -A^M_t cos(s_{t+c} - s_t, g_t) (s_{t+c} replaced by the episode's final
    latent where it ends sooner), the Worker's -A^D_t log pi(a_t) with the reward r + alpha r^I,
    the entropy and both value losses, for the first rollout and for the next one, whose window
    starts with the last c steps of the first."""
    model = make_model(
        n_envs=2,
        env_kwargs=dict(size=2, max_episode_steps=3),
        c=2,
        n_steps=5,
        alpha=0.7,
        gamma_manager=0.9,
        gamma_worker=0.8,
        goal_epsilon=0.5,
        ent_coef=0.03,
        vf_coef=0.6,
    )
    _, callback = model._setup_learn(1000)
    buffer = model.rollout_buffer
    previous_actions = np.zeros(0)
    for rollout in range(2):
        assert model.collect_rollouts(model.env, callback, buffer, model.n_steps)
        data = buffer.get()
        assert data.prefix_length == (0 if rollout == 0 else 2)
        if rollout == 1:
            np.testing.assert_array_equal(data.actions[:2].numpy(), previous_actions[-2:])
        assert data.dones.any() and data.worker_bootstrap.any()  # both kinds of episode end
        losses = model.compute_losses()
        for name, value in expected_losses(model).items():
            assert losses[name].item() == pytest.approx(float(value), rel=1e-4, abs=1e-6), (rollout, name)
        previous_actions = data.actions.numpy().copy()
        model.train()


# --------------------------------------------------------------------------- learning
def test_learns_a_small_grid_world_far_above_random() -> None:
    """5x5 grid from (0, 0) to (4, 4): the optimum is 8 moves, 7 * -0.1 + 10 = 9.3; a random policy
    scores about -0.4 (most episodes time out after 100 steps). The learned policy is judged as it
    acts, by sampling (its argmax can bump into an edge for good when two moves are equally good)."""
    model = FeudalAgent(
        "MlpPolicy",
        make_vec_env("AdvRL/GridWorld-v0", n_envs=4, seed=0),
        c=4,
        n_steps=16,
        learning_rate=3e-3,
        policy_kwargs=dict(SMALL, net_arch=[32]),
        seed=0,
        device="cpu",
    )
    model.learn(6_000)
    env = gym.make("AdvRL/GridWorld-v0")
    env.reset(seed=0)
    mean_return, _ = evaluate_policy(model, env, n_eval_episodes=20, deterministic=False, warn=False)
    random_return = random_policy_returns("AdvRL/GridWorld-v0", 50, seed=0).mean()
    assert random_return < 1.0
    assert mean_return > 7.5, (mean_return, random_return)


# --------------------------------------------------------------------------- state, save and load
def rollout(model: FeudalAgent, n_steps: int = 60, deterministic: bool = True) -> tuple[list, list]:
    env = gym.make("AdvRL/GridWorld-v0", size=3, max_episode_steps=7)
    obs, _ = env.reset(seed=5)
    state, start, actions, states = None, np.array([True]), [], []
    for _ in range(n_steps):
        action, state = model.predict(obs, state=state, episode_start=start, deterministic=deterministic)
        actions.append(int(action))
        states.append(state)
        obs, _, terminated, truncated, _ = env.step(action)
        start = np.array([terminated or truncated])
        if start[0]:
            obs, _ = env.reset()
    return actions, states


def test_save_load_gives_identical_actions_and_states(tmp_path) -> None:
    model = make_model(c=3, n_steps=6)
    model.learn(600)
    model.save(tmp_path / "feudal.zip")
    loaded = FeudalAgent.load(tmp_path / "feudal.zip", device="cpu")
    assert loaded.c == 3 and loaded.gamma_manager == model.gamma_manager
    actions, states = rollout(model)
    loaded_actions, loaded_states = rollout(loaded)
    assert actions == loaded_actions
    for state, loaded_state in zip(states, loaded_states, strict=True):
        for part, loaded_part in zip(state, loaded_state, strict=True):
            np.testing.assert_array_equal(part, loaded_part)
    th.manual_seed(3)
    sampled = rollout(model, deterministic=False)[0]
    th.manual_seed(3)
    assert rollout(loaded, deterministic=False)[0] == sampled


def test_the_state_carries_goals_and_resets_at_episode_start() -> None:
    model = make_model(c=3, n_steps=6)
    obs = np.array([1.0, 2.0], dtype=np.float32)
    _, fresh = model.predict(obs, deterministic=True)
    manager_hidden, _, _, _, goals = fresh
    assert goals.shape == (1, 3, model.policy.latent_dim)
    assert not goals[0, :2].any() and np.linalg.norm(goals[0, 2]) == pytest.approx(1.0, rel=1e-5)
    _, carried = model.predict(obs, state=fresh, episode_start=np.array([False]), deterministic=True)
    np.testing.assert_array_equal(carried[4][0, 1], goals[0, 2])  # the history shifts by one goal
    assert not np.array_equal(carried[0], manager_hidden)
    _, restarted = model.predict(obs, state=carried, episode_start=np.array([True]), deterministic=True)
    for part, fresh_part in zip(restarted, fresh, strict=True):
        np.testing.assert_array_equal(part, fresh_part)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(c=0), r"c must be an integer in \[1"),
        (dict(c=2.5), r"c must be an integer"),
        (dict(alpha=-0.1), r"alpha must be a number in \[0"),
        (dict(gamma_manager=1.5), r"gamma_manager must be a number in \[0(\.0)?, 1"),
        (dict(gamma_worker=-0.01), r"gamma_worker must be a number in \[0(\.0)?, 1"),
        (dict(c=8, n_steps=4), r"n_steps must be an integer >= c \(8\)"),
        (dict(goal_epsilon=2.0), r"goal_epsilon must be a number in \[0"),
        (dict(policy_kwargs=dict(c=3)), r"pass c to FeudalAgent"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeudalAgent("MlpPolicy", "AdvRL/GridWorld-v0", device="cpu", **kwargs)


def test_non_discrete_actions_are_refused() -> None:
    with pytest.raises(ValueError, match=r"Discrete action space.*got Box"):
        FeudalAgent("MlpPolicy", "AdvRL/Pendulum-v0", device="cpu")


def test_a_state_of_the_wrong_shape_is_refused() -> None:
    model = make_model(c=3, n_steps=6)
    obs = np.zeros(2, dtype=np.float32)
    _, state = model.predict(obs)
    with pytest.raises(ValueError, match=r"state must be \(manager_hidden"):
        model.predict(obs, state=state[:4])
    with pytest.raises(ValueError, match=r"state must be \(manager_hidden"):
        model.predict(np.zeros((2, 2), dtype=np.float32), state=state)
