"""The goal-conditioned grid worlds: GoalEnv conventions, batched rewards equal to the step rewards,
goals, errors, and hindsight replay learning what plain DQN does not in the same budget."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN, HerReplayBuffer

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.goal_grid import GoalFourRoomsEnv, GoalGridWorldEnv

GOAL_IDS = ["AdvRL/GoalGridWorld-v0", "AdvRL/GoalFourRooms-v0"]


@pytest.mark.parametrize("env_id", GOAL_IDS)
@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
def test_batched_compute_reward_and_terminated_equal_the_steps(env_id: str, reward_type: str) -> None:
    env = gym.make(env_id, reward_type=reward_type)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    achieved, desired, rewards, terminated = [], [], [], []
    for _ in range(3_000):
        obs, reward, term, trunc, info = env.step(env.action_space.sample())
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
        rewards.append(reward)
        terminated.append(term)
        if term or trunc:
            obs, _ = env.reset()
    base = env.unwrapped
    batch = base.compute_reward(np.array(achieved), np.array(desired), [{}] * len(rewards))
    np.testing.assert_array_equal(batch, np.array(rewards, dtype=np.float32))
    np.testing.assert_array_equal(
        base.compute_terminated(np.array(achieved), np.array(desired), None), terminated
    )
    assert not base.compute_truncated(np.array(achieved), np.array(desired), None).any()
    assert any(terminated), "no goal reached: the comparison does not cover the goal reward"
    if reward_type == "sparse":
        assert set(rewards) == {-1.0, 0.0}
    else:
        distances = np.abs(np.array(achieved) - np.array(desired)).sum(axis=1)
        np.testing.assert_array_equal(rewards, -distances)


def test_observation_dict_and_goal_sampling() -> None:
    env = GoalGridWorldEnv(size=5, walls=[(2, 2)])
    goals = set()
    for seed in range(40):
        obs, info = env.reset(seed=seed)
        np.testing.assert_array_equal(obs["observation"], [0, 0])
        np.testing.assert_array_equal(obs["achieved_goal"], obs["observation"])
        assert tuple(obs["desired_goal"]) == info["goal"] != (0, 0) and info["goal"] != (2, 2)
        goals.add(info["goal"])
    assert len(goals) > 15  # uniform over the 23 other free cells
    assert env.reset(seed=3)[0]["desired_goal"].tolist() == env.reset(seed=3)[0]["desired_goal"].tolist()
    fixed = GoalGridWorldEnv(size=5, goal=(4, 0))
    assert {fixed.reset(seed=s)[1]["goal"] for s in range(5)} == {(4, 0)}
    obs, info = env.reset(seed=0, options={"goal": (1, 3)})
    assert info["goal"] == (1, 3)
    env.step(1)  # right
    obs, reward, terminated, *_ = env.step(1)
    assert reward == -1.0 and not terminated


def test_four_rooms_goals_and_starts_are_free_cells() -> None:
    env = GoalFourRoomsEnv()
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert not env.walls[info["position"]] and not env.walls[info["goal"]]
        assert info["position"] != info["goal"]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: GoalGridWorldEnv(size=5).reset(options={"goal": (7, 0)}), "goal"),
        (lambda: GoalGridWorldEnv(size=5, walls=[(1, 1)]).reset(options={"goal": (1, 1)}), "goal"),
        (lambda: GoalGridWorldEnv(size=5).reset(options={"goal": (0, 0)}), "must differ from the start"),
        (lambda: GoalGridWorldEnv(reward_type="shaped"), "reward_type"),
        (lambda: GoalGridWorldEnv(obs_mode="rgb"), "unknown argument"),
        (lambda: GoalFourRoomsEnv(goal=(0, 0)), "goal"),
    ],
)
def test_bad_goals_and_arguments_raise_value_errors(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def greedy_success(model: DQN, episodes: int = 30) -> float:
    env = gym.make("AdvRL/GoalGridWorld-v0")
    successes = 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=1_000 + episode)
        done = terminated = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        successes += bool(terminated)
    return successes / episodes


def test_dqn_with_hindsight_replay_learns_what_plain_dqn_does_not_in_the_same_budget() -> None:
    def train(her: bool) -> DQN:
        extra = (
            {
                "replay_buffer_class": HerReplayBuffer,
                "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
            }
            if her
            else {}
        )
        return DQN(
            "MultiInputPolicy", gym.make("AdvRL/GoalGridWorld-v0"), learning_starts=500, exploration_fraction=0.3,
            target_update_interval=500, gamma=0.95, learning_rate=1e-3, batch_size=64,
            policy_kwargs={"net_arch": [64, 64]}, seed=0, **extra,
        ).learn(2_500)  # fmt: skip

    with_her, without = greedy_success(train(True)), greedy_success(train(False))
    assert with_her >= 0.4 and without <= 0.1, (with_her, without)


@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
def test_point_mass_batched_rewards_equal_the_steps_and_physics_are_the_particle_worlds(
    reward_type: str,
) -> None:
    from gym_advrl.envs.goal_point import GoalPointMassEnv

    env = GoalPointMassEnv(reward_type=reward_type)
    obs, _ = env.reset(seed=0, options={"goal": (0.3, 0.0)})
    position, velocity = obs["observation"][:2].astype(np.float64), np.zeros(2)
    achieved, desired, rewards, terminated = [], [], [], []
    for _ in range(40):
        action = np.array([1.0, 0.0])
        velocity = 0.9 * (velocity + 0.1 * action)  # the particle worlds' update, written out
        position = np.clip(position + 0.1 * velocity, -1.0, 1.0)
        obs, reward, term, _, _ = env.step(action.astype(np.float32))
        np.testing.assert_allclose(
            obs["observation"], np.concatenate([position, velocity]), rtol=1e-6, atol=1e-7
        )
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
        rewards.append(reward)
        terminated.append(term)
        if term:
            break
    batch = env.compute_reward(np.array(achieved), np.array(desired), None)
    np.testing.assert_allclose(batch, rewards, rtol=1e-6)
    np.testing.assert_array_equal(
        env.compute_terminated(np.array(achieved), np.array(desired), None), terminated
    )
    assert terminated[-1] and not any(terminated[:-1])  # it reached the goal 0.3 to the right


def test_point_mass_goals_and_errors() -> None:
    from gym_advrl.envs.goal_point import GoalPointMassEnv

    env = GoalPointMassEnv(distance_threshold=0.05)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        assert np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]) > 0.1
        assert np.all(np.abs(obs["desired_goal"]) <= 0.9)
    for bad in [(1.5, 0.0), (0.1,), "here", (np.nan, 0.0)]:
        with pytest.raises(ValueError, match="goal must be a point"):
            env.reset(options={"goal": bad})
    with pytest.raises(ValueError, match="distance_threshold"):
        GoalPointMassEnv(distance_threshold=0.0)


def test_sac_with_hindsight_replay_runs_on_the_point_mass() -> None:
    from stable_baselines3 import SAC

    model = SAC(
        "MultiInputPolicy",
        gym.make("AdvRL/GoalPointMass-v0"),
        replay_buffer_class=HerReplayBuffer,
        learning_starts=100,
        batch_size=32,
        policy_kwargs={"net_arch": [32]},
        seed=0,
    ).learn(300)
    assert model.replay_buffer.size() > 0
