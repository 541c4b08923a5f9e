"""The goal-conditioned grid worlds: GoalEnv conventions, batched rewards equal to the step rewards,
goals, errors, and hindsight replay learning what plain DQN does not in the same budget."""

from __future__ import annotations

import re

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


@pytest.mark.parametrize("algo_name", ["SAC", "TD3"])
def test_sac_and_td3_with_hindsight_replay_run_on_the_point_mass(algo_name: str) -> None:
    import stable_baselines3

    model = getattr(stable_baselines3, algo_name)(
        "MultiInputPolicy",
        gym.make("AdvRL/GoalPointMass-v0"),
        replay_buffer_class=HerReplayBuffer,
        learning_starts=100,
        batch_size=32,
        policy_kwargs={"net_arch": [32]},
        seed=0,
    ).learn(300)
    assert isinstance(model.replay_buffer, HerReplayBuffer)
    assert model.replay_buffer.size() > 0


# ---------------------------------------------------------------------- exact values and messages
@pytest.mark.parametrize(
    ("size", "walls", "start", "expected"),
    [
        (3, (), (0, 0), (2, 2)),  # the last free cell in row-major order
        ((2, 3), (), (0, 0), (1, 2)),
        ((3, 4), [(2, 3)], (0, 0), (2, 2)),  # a wall on the last cell
        ((3, 4), [(-1, 3), (2, 4), (3, 0), (0, 4)], (0, 0), (2, 3)),  # off-grid walls are ignored
        ((1, 3), [(0, 2)], (0, 0), (0, 1)),  # a wall in row 0
        ((3, 1), [(2, 0)], (0, 0), (1, 0)),  # a wall in column 0
        ((4, 3), [(3, 2)], (0, 0), (3, 1)),  # more rows than columns
        ((1, 2), (), (0, 1), (0, 0)),  # never the start
        ((1, 2), (), None, (0, 1)),
        (1, (), (0, 0), None),  # no free cell but the start
    ],
)
def test_placeholder_goal_is_the_last_free_cell_other_than_the_start(size, walls, start, expected) -> None:
    from gym_advrl.envs.goal_grid import placeholder_goal

    assert placeholder_goal(size, walls, None, start) == expected


@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
def test_grid_compute_reward_terminated_truncated_exact_values(reward_type: str) -> None:
    env = GoalGridWorldEnv(size=5, reward_type=reward_type)
    achieved = np.array([[0, 0], [2, 3], [4, 4]], dtype=np.float32)
    desired = np.array([[0, 0], [1, 1], [4, 0]], dtype=np.float32)
    expected = [0.0, -1.0, -1.0] if reward_type == "sparse" else [0.0, -3.0, -4.0]
    reward = env.compute_reward(achieved, desired, None)
    assert reward.dtype == np.float32
    np.testing.assert_array_equal(reward, expected)
    single = env.compute_reward(achieved[1], desired[1], None)
    assert type(single) is float and single == expected[1]
    np.testing.assert_array_equal(env.compute_terminated(achieved, desired, None), [True, False, False])
    assert env.compute_terminated(achieved[0], desired[0], None) is True
    truncated = env.compute_truncated(achieved, desired, None)
    assert truncated.dtype == bool and truncated.shape == (3,) and not truncated.any()
    assert env.compute_truncated(achieved[0], desired[0], None) is False
    nested = env.compute_truncated(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), None)
    assert nested.dtype == bool and nested.shape == (2, 3) and not nested.any()


def test_grid_reset_with_a_goal_option_uses_the_seed_for_the_random_start() -> None:
    env = GoalFourRoomsEnv()
    goal = (1, 1)
    for seed in range(3):
        _, info = env.reset(seed=seed, options={"goal": goal})
        candidates = env.free_cells[np.any(env.free_cells != goal, axis=1)]
        rng, _ = gym.utils.seeding.np_random(seed)
        assert info["position"] == tuple(int(v) for v in candidates[rng.integers(len(candidates))])
        assert info["goal"] == goal


def test_point_mass_compute_reward_terminated_truncated_exact_values() -> None:
    from gym_advrl.envs.goal_point import GoalPointMassEnv

    achieved = np.array([[0.0, 0.0], [0.6, 0.8], [-0.5, 0.5], [0.5, 0.5]], dtype=np.float32)
    desired = np.array([[0.0, 0.0], [0.0, 0.0], [-0.25, 0.5], [0.5, 0.5]], dtype=np.float32)
    distance = np.linalg.norm(achieved.astype(np.float64) - desired, axis=-1)  # 0, about 1, 0.25, 0
    sparse = GoalPointMassEnv(distance_threshold=0.25)  # the third pair lies exactly on the rim: a success
    reward = sparse.compute_reward(achieved, desired, None)
    assert reward.dtype == np.float32
    np.testing.assert_array_equal(reward, [0.0, -1.0, 0.0, 0.0])
    np.testing.assert_array_equal(
        sparse.compute_terminated(achieved, desired, None), [True, False, True, True]
    )
    single = sparse.compute_reward(achieved[1], desired[1], None)
    assert type(single) is float and single == -1.0
    assert sparse.compute_terminated(achieved[1], desired[1], None) is False
    dense = GoalPointMassEnv(reward_type="dense")
    reward = dense.compute_reward(achieved, desired, None)
    assert reward.dtype == np.float32
    np.testing.assert_allclose(reward, -distance, rtol=1e-7)
    assert dense.compute_reward([1.0, 1.0], [0.0, 1.0], None) == -1.0
    truncated = dense.compute_truncated(achieved, desired, None)
    assert truncated.dtype == bool and truncated.shape == (4,) and not truncated.any()
    assert dense.compute_truncated(achieved[0], desired[0], None) is False
    nested = dense.compute_truncated(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), None)
    assert nested.dtype == bool and nested.shape == (2, 3) and not nested.any()


def test_point_mass_reset_draws_goals_two_thresholds_away_and_accepts_the_arena_edge() -> None:
    from gym_advrl.envs.goal_point import GoalPointMassEnv

    env = GoalPointMassEnv(distance_threshold=0.3)
    redrawn = 0
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        rng, _ = gym.utils.seeding.np_random(seed)
        position = rng.uniform(-0.2, 0.2, size=2)
        goal = rng.uniform(-0.9, 0.9, size=2)
        redrawn += 0.6 < np.linalg.norm(goal - position) <= 0.9  # kept at 2 thresholds, not at 3
        while np.linalg.norm(goal - position) <= 0.6:
            goal = rng.uniform(-0.9, 0.9, size=2)
        np.testing.assert_array_equal(env.position, position)
        np.testing.assert_array_equal(env.goal, goal)
        assert info == {"goal": (float(goal[0]), float(goal[1]))}
        np.testing.assert_array_equal(obs["desired_goal"], goal.astype(np.float32))
    assert redrawn > 0
    # A first draw exactly 2 thresholds away is still too close: it is drawn again.
    rng, _ = gym.utils.seeding.np_random(0)
    position, first = rng.uniform(-0.2, 0.2, 2), rng.uniform(-0.9, 0.9, 2)
    on_the_rim = GoalPointMassEnv(distance_threshold=float(np.linalg.norm(first - position)) / 2)
    assert np.linalg.norm(first - position) == 2 * on_the_rim.distance_threshold
    goal = rng.uniform(-0.9, 0.9, 2)
    while np.linalg.norm(goal - position) <= 2 * on_the_rim.distance_threshold:
        goal = rng.uniform(-0.9, 0.9, 2)
    np.testing.assert_array_equal(on_the_rim.reset(seed=0)[0]["desired_goal"], goal.astype(np.float32))
    _, info = env.reset(seed=0, options={"goal": (1.0, -1.0)})
    assert info == {"goal": (1.0, -1.0)}
    with pytest.raises(
        ValueError, match=re.escape("goal must be a point (x, y) in [-1, 1]^2, got (None, 0.0)")
    ):
        env.reset(options={"goal": (None, 0.0)})


def test_point_mass_step_clips_to_the_arena_and_reports_the_goal() -> None:
    from gym_advrl.envs.goal_point import GoalPointMassEnv

    env = GoalPointMassEnv()
    with pytest.raises(
        gym.error.ResetNeeded, match="^" + re.escape("Cannot call step() before reset()") + "$"
    ):
        env.step(np.zeros(2, np.float32))
    env.reset(seed=0, options={"goal": (0.5, 0.25)})
    for _ in range(60):
        obs, _, _, _, info = env.step(np.array([-1.0, 1.0], np.float32))
    np.testing.assert_array_equal(obs["achieved_goal"], [-1.0, 1.0])
    assert info == {"goal": (0.5, 0.25)}


def test_point_mass_frame_is_the_arena_the_goal_disc_and_the_mass() -> None:
    from gym_advrl.envs.goal_point import GoalPointMassEnv

    env = GoalPointMassEnv(render_mode="rgb_array", distance_threshold=0.1)
    env.reset(seed=0, options={"goal": (0.5, -0.3)})
    env.position = np.array([-0.4, 0.6])
    frame = env.render()
    # Pixel centres of the 400x400 window on [-1.05, 1.05]^2, y up, computed here.
    centres = -1.05 + (np.arange(400) + 0.5) * 2.1 / 400
    x, y = centres[None, :], centres[::-1][:, None]
    expected = np.empty((400, 400, 3), np.uint8)
    expected[:] = (245, 245, 245)
    expected[(np.abs(x) <= 1.0) & (np.abs(y) <= 1.0)] = (255, 255, 255)
    expected[(x - 0.5) ** 2 + (y + 0.3) ** 2 <= 0.1**2] = (120, 200, 120)
    expected[(x + 0.4) ** 2 + (y - 0.6) ** 2 <= 0.04**2] = (200, 50, 50)
    np.testing.assert_array_equal(frame, expected)
