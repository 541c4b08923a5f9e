"""HAC (Levy et al. 2019): one gradient step against the paper's clipped target computed here, the
three kinds of transition of a scripted episode by content, learning on a grid, save/load, errors."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.logger import configure

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from sb3_ext.hac import HAC, TransitionKind
from sb3_ext.hac.buffers import GoalTransitionSamples

TINY = dict(policy_kwargs=dict(net_arch=[16]), device="cpu")


def grid_model(size: int = 4, **kwargs: Any) -> HAC:
    env = gym.make("AdvRL/GoalGridWorld-v0", size=size, start=(0, 0), goal=(size - 1, size - 1))
    return HAC("MultiInputPolicy", env, **{**TINY, "seed": 0, **kwargs})


def fixed_batch(rows: list[tuple], discrete: bool) -> GoalTransitionSamples:
    """A batch from rows ``(s, g, a, r, s', done)``."""
    observations, goals, actions, rewards, next_observations, dones = zip(*rows, strict=True)

    def tensor(values: Any, dtype: th.dtype = th.float32) -> th.Tensor:
        return th.tensor(np.array(values), dtype=dtype)

    return GoalTransitionSamples(
        tensor(observations),
        tensor(goals),
        tensor(actions, th.int64 if discrete else th.float32),
        tensor(rewards),
        tensor(next_observations),
        tensor(dones),
    )


def train_on(model: HAC, level: int, batch: GoalTransitionSamples) -> None:
    """One ``train`` call whose only batch is ``batch`` (the other levels' buffers stay empty)."""
    buffer = model.level_buffers[level]
    buffer.sample = lambda batch_size: batch  # type: ignore[method-assign]
    buffer.size = lambda: len(batch.rewards)  # type: ignore[method-assign]
    model.set_logger(configure(None, []))
    model.train(gradient_steps=1, batch_size=len(batch.rewards))


# --------------------------------------------------------------------------- (a) exact updates
def test_discrete_level_step_is_double_dqn_on_the_clipped_hac_target() -> None:
    horizon, gamma, tau = 3, 0.9, 0.3
    model = grid_model(subgoal_horizon=horizon, gamma=gamma, tau=tau, learning_rate=1e-2)
    level = model.policy.levels[0]
    # Rows: an ordinary step, a reached goal (done), a failed subgoal test (-H, done), a step from
    # the goal, and a reward low enough for the target to fall below -H (clipped).
    rows = [
        ([0, 0], [0, 2], 1, -1.0, [0, 1], 0.0),
        ([0, 1], [0, 2], 1, 0.0, [0, 2], 1.0),
        ([1, 1], [3, 3], 2, -float(horizon), [2, 1], 1.0),
        ([3, 3], [0, 0], 3, -1.0, [3, 2], 0.0),
        ([2, 2], [0, 3], 0, -2.9, [1, 2], 0.0),
    ]
    batch = fixed_batch(rows, discrete=True)

    online, target_net = copy.deepcopy(level.q_net), copy.deepcopy(level.q_net_target)
    target_before = copy.deepcopy(level.q_net_target)

    def net_in(obs: th.Tensor, goals: th.Tensor) -> th.Tensor:  # cells 0..3 -> [-1, 1]
        return th.cat([obs, goals], dim=1) / 1.5 - 1.0

    with th.no_grad():
        next_in = net_in(batch.next_observations, batch.goals)
        best = online(next_in).argmax(dim=1)
        next_q = target_net(next_in)[th.arange(5), best]
        unclipped = batch.rewards + gamma * (1 - batch.dones) * next_q
        expected = unclipped.clamp(-horizon, 0.0)
    assert expected[1] == 0.0 and expected[2] == -horizon  # the done rows do not bootstrap
    assert unclipped[4] < -horizon and expected[4] == -horizon
    assert th.all(expected <= 0) and th.all(expected >= -horizon)
    np.testing.assert_allclose(level.critic_losses(batch, gamma)["target"], expected, atol=1e-6)

    optimizer = th.optim.Adam(online.parameters(), lr=1e-2)
    q = online(net_in(batch.observations, batch.goals))[th.arange(5), batch.actions]
    ((q - expected) ** 2).mean().backward()
    optimizer.step()

    train_on(model, 0, batch)
    for mine, theirs in zip(level.q_net.parameters(), online.parameters(), strict=True):
        np.testing.assert_allclose(mine.detach(), theirs.detach(), atol=1e-6)
    # Soft update of the target network after the step.
    for new, old, updated in zip(
        level.q_net_target.parameters(), target_before.parameters(), online.parameters(), strict=True
    ):
        np.testing.assert_allclose(new, tau * updated.detach() + (1 - tau) * old.detach(), atol=1e-6)
    # Q-values are bounded by the negative sigmoid head.
    assert th.all(level.q_net(th.randn(64, 4) * 10) <= 0) and th.all(
        level.q_net(th.randn(64, 4) * 10) >= -horizon
    )


def test_continuous_level_step_is_ddpg_on_the_clipped_hac_target() -> None:
    horizon, gamma, tau = 4, 0.95, 1.0
    env = gym.make("AdvRL/GoalPointMass-v0")
    model = HAC(
        "MultiInputPolicy",
        env,
        subgoal_horizon=horizon,
        gamma=gamma,
        tau=tau,
        learning_rate=1e-2,
        seed=0,
        **TINY,
    )
    level = model.policy.levels[0]
    rows = [
        ([0.1, 0.0, 0.2, 0.0], [0.5, 0.5], [0.3, -0.2], -1.0, [0.1, 0.0, 0.2, 0.0], 0.0),
        ([0.4, 0.4, 0.0, 0.1], [0.45, 0.45], [1.0, 1.0], 0.0, [0.45, 0.45, 0.1, 0.1], 1.0),
        ([-0.3, 0.2, 0.0, 0.0], [0.9, -0.9], [-1.0, 0.5], -float(horizon), [-0.3, 0.25, 0.0, 0.05], 1.0),
        ([0.0, 0.0, 0.0, 0.0], [-0.9, 0.9], [0.0, 0.0], -3.9, [0.0, 0.0, 0.0, 0.0], 0.0),
    ]
    batch = fixed_batch(rows, discrete=False)
    actor, critic = copy.deepcopy(level.actor), copy.deepcopy(level.critic)
    actor_target, critic_target = copy.deepcopy(level.actor_target), copy.deepcopy(level.critic_target)

    # Observations, goals and actions have bounds [-1, 1] or none: the networks see them as they are.
    def q(net: th.nn.Module, obs: th.Tensor, goals: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return net(th.cat([obs, goals, actions], dim=1)).squeeze(1)

    with th.no_grad():
        next_actions = actor_target(th.cat([batch.next_observations, batch.goals], dim=1))
        next_q = q(critic_target, batch.next_observations, batch.goals, next_actions)
        unclipped = batch.rewards + gamma * (1 - batch.dones) * next_q
        expected = unclipped.clamp(-horizon, 0.0)
    assert expected[1] == 0.0 and expected[2] == -horizon
    assert unclipped[3] < -horizon and expected[3] == -horizon
    np.testing.assert_allclose(level.critic_losses(batch, gamma)["target"], expected, atol=1e-6)

    critic_optimizer = th.optim.Adam(critic.parameters(), lr=1e-2)
    ((q(critic, batch.observations, batch.goals, batch.actions) - expected) ** 2).mean().backward()
    critic_optimizer.step()
    actor_optimizer = th.optim.Adam(actor.parameters(), lr=1e-2)
    own_actions = actor(th.cat([batch.observations, batch.goals], dim=1))
    (-q(critic, batch.observations, batch.goals, own_actions).mean()).backward()
    actor_optimizer.step()

    train_on(model, 0, batch)
    for mine, theirs in [
        *zip(level.critic.parameters(), critic.parameters(), strict=True),
        *zip(level.actor.parameters(), actor.parameters(), strict=True),
        *zip(level.critic_target.parameters(), critic.parameters(), strict=True),  # tau = 1: a copy
    ]:
        np.testing.assert_allclose(mine.detach(), theirs.detach(), atol=1e-6)


# --------------------------------------------------------------------------- (b) transitions
def test_scripted_episode_writes_the_three_kinds_of_transition() -> None:
    """4x4 grid, start (0, 0), goal (3, 3), H = 2, every subgoal tested. Level 1 proposes (0, 2)
    (reached in 2 steps), (3, 2) (missed: (2, 2) after 2 steps) and (3, 3) (the goal)."""
    horizon = 2
    model = grid_model(
        n_levels=2, subgoal_horizon=horizon, subgoal_test_rate=1.0, n_sampled_goal=2, learning_starts=10**6
    )
    proposals = iter([[0, 2], [3, 2], [3, 3]])
    moves = iter([1, 1, 2, 2, 2, 1])  # right, right, down, down, down, right
    explored: list[tuple[int, bool]] = []

    def scripted(level: int, observations: np.ndarray, goals: np.ndarray, explore: np.ndarray) -> np.ndarray:
        explored.append((level, bool(explore[0])))
        if level == 1:
            return np.array([next(proposals)], np.float32)
        return np.array([next(moves)])

    model.select_actions = scripted  # type: ignore[method-assign]
    model.learn(6)
    assert model.successes[-1] and model._episode_num == 1
    # Level 1 explores (it is the top level); level 0 acts greedily under every test.
    assert explored == [
        (1, True),
        (0, False),
        (0, False),
        (1, True),
        (0, False),
        (0, False),
        (1, True),
        (0, False),
        (0, False),
    ]

    def rows(level: int, kind: TransitionKind) -> list[tuple]:
        buffer = model.level_buffers[level]
        keep = np.flatnonzero(buffer.kinds[: buffer.size()] == kind)
        return [
            (
                tuple(buffer.observations[i]),
                tuple(buffer.goals[i]),
                buffer.actions[i].item() if buffer.discrete else tuple(buffer.actions[i]),
                float(buffer.rewards[i]),
                tuple(buffer.next_observations[i]),
                float(buffer.dones[i]),
            )
            for i in keep
        ]

    # Level 0: the actions taken, with the subgoal in force; reward 0 and done where it is reached.
    assert rows(0, TransitionKind.ACTION) == [
        ((0, 0), (0, 2), 1, -1.0, (0, 1), 0.0),
        ((0, 1), (0, 2), 1, 0.0, (0, 2), 1.0),
        ((0, 2), (3, 2), 2, -1.0, (1, 2), 0.0),
        ((1, 2), (3, 2), 2, -1.0, (2, 2), 0.0),
        ((2, 2), (3, 3), 2, -1.0, (3, 2), 0.0),
        ((3, 2), (3, 3), 1, 0.0, (3, 3), 1.0),
    ]
    # Level 1: hindsight actions (the cell reached, as a lattice index row * 4 + col) for the goal.
    assert rows(1, TransitionKind.ACTION) == [
        ((0, 0), (3, 3), 0 * 4 + 2, -1.0, (0, 2), 0.0),
        ((0, 2), (3, 3), 2 * 4 + 2, -1.0, (2, 2), 0.0),
        ((2, 2), (3, 3), 3 * 4 + 3, 0.0, (3, 3), 1.0),
    ]
    # The missed test: the proposed subgoal (3, 2), penalty -H, no bootstrap.
    assert rows(1, TransitionKind.SUBGOAL_TEST) == [((0, 2), (3, 3), 3 * 4 + 2, -float(horizon), (2, 2), 1.0)]
    assert rows(0, TransitionKind.SUBGOAL_TEST) == []

    # Hindsight goals: 2 per action transition, each a cell reached at or after it in its level episode.
    level_episodes = {0: [[0, 1], [2, 3], [4, 5]], 1: [[0, 1, 2]]}
    for level, episodes in level_episodes.items():
        actions = rows(level, TransitionKind.ACTION)
        relabelled = rows(level, TransitionKind.GOAL)
        assert len(relabelled) == 2 * len(actions)
        for episode in episodes:
            for t in episode:
                obs, _, action, _, next_obs, _ = actions[t]
                reachable = {actions[u][4] for u in episode if u >= t}
                mine = [row for row in relabelled if (row[0], row[2], row[4]) == (obs, action, next_obs)]
                assert len(mine) == 2
                for _, goal, _, reward, _, done in mine:
                    assert goal in reachable
                    assert (reward, done) == ((0.0, 1.0) if goal == next_obs else (-1.0, 0.0))


# --------------------------------------------------------------------------- (c) learning
def greedy_success(model: HAC, env_kwargs: dict, episodes: int = 30) -> float:
    env = gym.make("AdvRL/GoalGridWorld-v0", **env_kwargs)
    successes = 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=1_000 + episode)
        state, start, terminated, truncated = None, np.array([True]), False, False
        while not (terminated or truncated):
            action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action)
            start = np.array([False])
        successes += bool(terminated)
    return successes / episodes


def test_two_level_hac_learns_to_reach_goals_on_a_grid() -> None:
    env_kwargs = dict(size=8)
    model = HAC(
        "MultiInputPolicy",
        gym.make("AdvRL/GoalGridWorld-v0", **env_kwargs),
        n_levels=2,
        subgoal_horizon=8,
        learning_starts=500,
        batch_size=32,
        train_freq=2,
        policy_kwargs=dict(net_arch=[64, 64]),
        device="cpu",
        seed=0,
    )
    random_rate = greedy_success(model, env_kwargs)
    model.learn(4_000)
    assert greedy_success(model, env_kwargs) >= 0.8 > random_rate + 0.3


# --------------------------------------------------------------------------- (d) save / load
@pytest.mark.parametrize(
    "env_id, kwargs",
    [
        ("AdvRL/GoalGridWorld-v0", dict(n_levels=3, subgoal_horizon=3)),
        ("AdvRL/GoalPointMass-v0", dict(n_levels=2)),
    ],
)
def test_save_load_gives_identical_actions(env_id: str, kwargs: dict, tmp_path) -> None:
    model = HAC(
        "MultiInputPolicy", gym.make(env_id), learning_starts=100, batch_size=16, seed=0, **TINY, **kwargs
    ).learn(400)
    model.save(tmp_path / "hac.zip")
    loaded = HAC.load(tmp_path / "hac.zip", device="cpu")

    def rollout(agent: HAC) -> list[np.ndarray]:
        env = gym.make(env_id)
        obs, _ = env.reset(seed=5)
        state, start, actions = None, np.array([True]), []
        for _ in range(60):
            action, state = agent.predict(obs, state=state, episode_start=start, deterministic=True)
            actions.append(np.array(action))
            obs, _, terminated, truncated, _ = env.step(action)
            start = np.array([terminated or truncated])
            if terminated or truncated:
                obs, _ = env.reset()
        return actions

    for mine, theirs in zip(rollout(model), rollout(loaded), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert loaded.n_levels == kwargs["n_levels"] and loaded.subgoal_horizon == model.subgoal_horizon


# --------------------------------------------------------------------------- (e) errors
class TinyGoalEnv(gym.Env):
    """Dict goal observations; ``compute_reward`` only when asked for."""

    def __init__(self, action_space: spaces.Space, with_reward: bool = True, high: float = 3.0) -> None:
        box = spaces.Box(0.0, high, (2,), np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = action_space
        if with_reward:
            self.compute_reward = lambda achieved, desired, info: (
                -np.any(achieved != desired, axis=-1).astype(float)
            )

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        zeros = np.zeros(2, np.float32)
        return {"observation": zeros, "achieved_goal": zeros, "desired_goal": zeros + 3}, {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        return self.reset()[0], -1.0, False, False, {}


@pytest.mark.parametrize(
    "make_env, kwargs, match",
    [
        (lambda: gym.make("AdvRL/GridWorld-v0"), {}, "observation_space must be a Dict"),
        (lambda: TinyGoalEnv(spaces.Discrete(4), with_reward=False), {}, "compute_reward"),
        (
            lambda: TinyGoalEnv(spaces.MultiDiscrete([2, 2])),
            {},
            "action_space must be Discrete or a bounded Box",
        ),
        (
            lambda: TinyGoalEnv(spaces.Discrete(4), high=2.5),
            dict(subgoal_head="discrete"),
            "subgoal_head='discrete'",
        ),
        (lambda: TinyGoalEnv(spaces.Discrete(4)), dict(n_levels=1), r"n_levels must be 2 or 3, got 1"),
        (lambda: TinyGoalEnv(spaces.Discrete(4)), dict(n_levels=4), r"n_levels must be 2 or 3, got 4"),
        (
            lambda: TinyGoalEnv(spaces.Discrete(4)),
            dict(subgoal_horizon=0),
            r"subgoal_horizon must be an integer in .*1.*, got 0",
        ),
        (
            lambda: TinyGoalEnv(spaces.Discrete(4)),
            dict(subgoal_test_rate=-0.1),
            r"subgoal_test_rate must lie in \[0, 1\]",
        ),
        (
            lambda: TinyGoalEnv(spaces.Discrete(4)),
            dict(subgoal_test_rate=1.5),
            r"subgoal_test_rate must lie in \[0, 1\]",
        ),
        (lambda: TinyGoalEnv(spaces.Discrete(4)), dict(subgoal_head="grid"), r"subgoal_head must be one of"),
        (
            lambda: TinyGoalEnv(spaces.Discrete(4)),
            dict(policy_kwargs=dict(n_levels=2)),
            "pass n_levels to HAC",
        ),
    ],
)
def test_bad_arguments_and_spaces_raise_value_errors_naming_them(make_env, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HAC("MultiInputPolicy", make_env(), device="cpu", **kwargs)


def test_tiny_goal_env_is_accepted() -> None:
    """The error cases above differ from an accepted env only in the argument they name."""
    model = HAC(
        "MultiInputPolicy", TinyGoalEnv(spaces.Discrete(4)), device="cpu", learning_starts=0, batch_size=4
    )
    model.learn(20)
    assert model.policy.discrete_subgoals and model.num_timesteps == 20
