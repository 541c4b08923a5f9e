"""Dyna: tabular Dyna-Q / Dyna-Q+ maths and behaviour, and deep Dyna's use of its learned model."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

import gym_advrl  # noqa: F401  (registers the AdvRL/ ids)
from gym_advrl.envs.grid_world import DYNA_MAZE
from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.dyna import Dyna, ModelReplayBuffer, TabularDynaQ, TabularTransitions

#: Sutton & Barto's shortcut maze (Example 8.3): the wall opens on the right half-way through.
SHORTCUT_MAZE = """\
........G
.........
.........
.########
.........
...S....."""


def greedy_steps(model, env: gym.Env, max_steps: int = 60) -> int | None:
    obs, _ = env.reset()
    for step in range(1, max_steps + 1):
        obs, _, terminated, _, _ = env.step(model.predict(obs, deterministic=True)[0])
        if terminated:
            return step
    return None


def tabular_agent(tmp_path, **kwargs) -> TabularDynaQ:
    model = TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", size=3, obs_mode="index"), **kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    return model


# ---------------------------------------------------------------------------- TabularDynaQ
def test_tabular_rejects_non_discrete_observations():
    with pytest.raises(ValueError, match="Discrete observation space.*obs_mode='index'"):
        TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0"))  # coords: a Box


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"planning_steps": -1}, "planning_steps"),
        ({"planning_steps": 2.5}, "planning_steps"),
        ({"kappa": -0.1}, "kappa"),
        ({"gamma": 1.5}, "gamma"),
        ({"exploration_final_eps": 2.0}, "exploration_final_eps"),
        # These used to train silently to NaN / -4e28 Q-values.
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_tabular_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TabularDynaQ("TabularPolicy", gym.make("AdvRL/GridWorld-v0", obs_mode="index"), **kwargs)


@pytest.mark.parametrize("planning_steps, expected", [(0, 1.0), (5, 1.5)])
def test_tabular_direct_and_planning_updates_are_exact(tmp_path, planning_steps, expected):
    # One real transition (s=0, a=1, r=2, s'=1). Direct update: 0 + 0.5 * (2 + 0.9 * 0 - 0) = 1.
    # Planning can only replay that pair from the model; the synchronous sweep gives
    # 1 + 0.5 * (2 - 1) = 1.5 whatever the number of draws.
    model = tabular_agent(tmp_path, learning_rate=0.5, gamma=0.9, planning_steps=planning_steps)
    model.train(
        TabularTransitions(np.array([0]), np.array([1]), np.array([2.0]), np.array([1]), np.array([False]))
    )
    q = np.zeros((9, 4))
    q[0, 1] = expected
    np.testing.assert_allclose(model.q_table, q)
    assert model.model.next_state[0, 1] == 1 and model.model.reward[0, 1] == 2.0 and model.model.n_tried == 1


def test_tabular_dyna_q_plus_bonus_is_exact(tmp_path):
    # Dyna-Q+: at time 100, pair (0, 1) was just tried; the never-tried actions of state 0 are
    # modelled as self-loops with reward 0, last tried at time 0, so their planning target is
    # kappa * sqrt(100) + gamma * max Q[0] = 1 + 0.9 * 1 (Q[0, 1] = 1 after the direct update).
    model = tabular_agent(tmp_path, learning_rate=0.5, gamma=0.9, planning_steps=200, kappa=0.1, seed=0)
    model.num_timesteps = 100
    model.train(
        TabularTransitions(np.array([0]), np.array([1]), np.array([2.0]), np.array([1]), np.array([False]))
    )
    np.testing.assert_allclose(model.q_table[0], [0.95, 1.5, 0.95, 0.95])
    np.testing.assert_allclose(model.q_table[1:], 0.0)


def test_tabular_updates_of_two_envs_are_exact_q_learning_and_a_synchronous_sweep(tmp_path):
    """Two real transitions in one step, one of them terminal, on a table that is not zero:
    direct update Q[s, a] += alpha (r + gamma (1 - terminal) max_a' Q[s', a'] - Q[s, a]) with
    both targets read before either write; then planning (200 draws of the 2 tried pairs: both
    are drawn) applies the same update to each pair once, its target again read from the table
    as it was before the sweep. Every other entry keeps its value."""
    alpha, gamma = 0.5, 0.9
    model = tabular_agent(tmp_path, learning_rate=alpha, gamma=gamma, planning_steps=200, seed=0)
    q0 = np.random.default_rng(0).normal(size=(9, 4))
    model.q_table[:] = q0
    # (s=0, a=1, r=1, s'=1) and, terminal, (s=1, a=2, r=-1, s'=4): the first bootstraps from the
    # row the second writes to.
    model.train(
        TabularTransitions(
            np.array([0, 1]),
            np.array([1, 2]),
            np.array([1.0, -1.0]),
            np.array([1, 4]),
            np.array([False, True]),
        )
    )
    direct = q0.copy()
    direct[0, 1] = q0[0, 1] + alpha * (1.0 + gamma * q0[1].max() - q0[0, 1])
    direct[1, 2] = q0[1, 2] + alpha * (-1.0 - q0[1, 2])
    planned = direct.copy()
    planned[0, 1] = direct[0, 1] + alpha * (1.0 + gamma * direct[1].max() - direct[0, 1])
    planned[1, 2] = direct[1, 2] + alpha * (-1.0 - direct[1, 2])
    assert direct[1].max() != q0[1].max()  # the sweep's targets do depend on the direct update
    np.testing.assert_allclose(model.q_table, planned, rtol=1e-12)
    assert model._n_planning_updates == 200 and model.model.n_tried == 2


def test_tabular_planning_learns_the_maze_far_faster():
    """3000 steps: Dyna-Q (n=50) has the shortest path, Q-learning (n=0) not yet."""
    lengths = {}
    for n in (0, 50):
        env = gym.make("AdvRL/GridWorld-v0", layout=DYNA_MAZE, obs_mode="index", max_episode_steps=100_000)
        model = TabularDynaQ("TabularPolicy", env, planning_steps=n, seed=0).learn(3000)
        lengths[n] = greedy_steps(model, gym.make("AdvRL/GridWorld-v0", layout=DYNA_MAZE, obs_mode="index"))
        assert model.model.n_tried > 0 and model._n_planning_updates == (3000 * n)
    assert lengths[50] == 14
    assert lengths[0] is None or lengths[0] > 14


class OpenShortcut(BaseCallback):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            self.training_env.envs[0].unwrapped.walls[3, 8] = False
        return True


def test_dyna_q_plus_finds_the_shortcut_dyna_q_misses():
    """Sutton & Barto Example 8.3: after the wall opens, only the exploration bonus finds the
    10-step shortcut; Dyna-Q keeps the old 16-step detour."""
    maze = {"layout": SHORTCUT_MAZE, "obs_mode": "index", "step_reward": 0.0, "goal_reward": 1.0}
    opened = gym.make("AdvRL/GridWorld-v0", **maze)
    opened.unwrapped.walls[3, 8] = False
    lengths = {}
    for kappa in (0.0, 1e-3):
        env = gym.make("AdvRL/GridWorld-v0", max_episode_steps=100_000, **maze)
        model = TabularDynaQ("TabularPolicy", env, planning_steps=50, kappa=kappa, learning_rate=1.0, seed=0)
        model.learn(6000, callback=OpenShortcut(3000))
        lengths[kappa] = greedy_steps(model, opened)
    assert lengths == {0.0: 16, 1e-3: 10}


def test_tabular_vec_env_and_save_load(tmp_path):
    env = make_vec_env("AdvRL/GridWorld-v0", n_envs=2, seed=0, env_kwargs={"obs_mode": "index"})
    model = TabularDynaQ("TabularPolicy", env, planning_steps=10, seed=0).learn(2000)
    assert model.num_timesteps == 2000
    assert greedy_steps(model, gym.make("AdvRL/GridWorld-v0", obs_mode="index")) == 8
    model.save(tmp_path / "dynaq")
    loaded = TabularDynaQ.load(tmp_path / "dynaq", env=env)
    states = np.arange(25)
    np.testing.assert_array_equal(
        loaded.predict(states, deterministic=True)[0], model.predict(states, deterministic=True)[0]
    )
    np.testing.assert_array_equal(loaded.q_table, model.q_table)
    np.testing.assert_array_equal(loaded.model.next_state, model.model.next_state)
    assert loaded.planning_steps == 10 and loaded.model.n_tried == model.model.n_tried
    before = loaded.q_table.copy()
    loaded.learn(200, reset_num_timesteps=False)  # the loaded table and model keep learning
    assert loaded.num_timesteps == 2200 and not np.array_equal(before, loaded.q_table)


# ---------------------------------------------------------------------------- deep Dyna
@pytest.fixture
def one_torch_thread():
    """Small networks run fastest on one thread (and the suite runs one worker per core)."""
    previous = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(previous)


class MirroredEnsemble(ProbabilisticEnsemble):
    """A deliberately wrong model: fitted like the real one, but it answers every query about
    action ``a`` with its prediction for the opposite move ``(a + 2) % 4`` (up <-> down,
    left <-> right)."""

    def sample(self, obs, actions, *args, **kwargs):
        return super().sample(obs, (th.as_tensor(actions) + 2) % 4, *args, **kwargs)


def grid_dyna(tmp_path, tried_actions: int = 4, **kwargs) -> Dyna:
    """Dyna on a 4x4 GridWorld whose replay buffer holds 1500 transitions with uniformly random
    actions among the first ``tried_actions`` (up, right, down, left)."""
    params = dict(
        learning_rate=3e-3,
        buffer_size=2_000,
        batch_size=64,
        model_gradient_steps=400,
        model_noise=False,
        model_kwargs=dict(n_members=3, hidden_sizes=(32, 32)),
        policy_kwargs=dict(net_arch=[32, 32]),
        device="cpu",
        seed=0,
    )
    params.update(kwargs)
    env = gym.make("AdvRL/GridWorld-v0", size=4)
    model = Dyna("MlpPolicy", env, **params)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for action in rng.integers(tried_actions, size=1500):
        next_obs, reward, terminated, truncated, info = env.step(action)
        info = {"TimeLimit.truncated": truncated and not terminated}
        model.replay_buffer.add(
            obs[None],
            next_obs[None],
            np.array([action]),
            np.array([reward]),
            np.array([terminated or truncated]),
            [info],
        )
        obs = env.reset()[0] if terminated or truncated else next_obs
    return model


def with_mirrored_model(model: Dyna, trained: ProbabilisticEnsemble) -> Dyna:
    """Give ``model`` a :class:`MirroredEnsemble` carrying the weights of ``trained``."""
    model.dynamics_model = MirroredEnsemble(
        model.observation_space, model.action_space, device="cpu", **model.model_kwargs
    )
    model.dynamics_model.load_state_dict(trained.state_dict())
    return model


def test_dyna_rejects_discrete_observations_and_bad_arguments():
    with pytest.raises(ValueError, match="flat Box observation space.*TabularDynaQ"):
        Dyna("MlpPolicy", gym.make("AdvRL/GridWorld-v0", obs_mode="index"))
    for kwargs, name in [
        ({"real_ratio": 1.5}, "real_ratio"),
        ({"planning_steps": -1}, "planning_steps"),
        ({"model_train_freq": 0}, "model_train_freq"),
        ({"imagined_actions": "random"}, "imagined_actions"),
        ({"planning_updates": -1}, "planning_updates"),
        ({"rollout_length": 0}, "rollout_length"),
        ({"exploration_bonus": -0.5}, "exploration_bonus"),
        ({"planning_gamma": 1.5}, "planning_gamma"),
        ({"planning_gamma": float("nan")}, "planning_gamma"),
        ({"batch_size": 0}, "batch_size"),  # used to be a ZeroDivisionError inside training
        ({"model_noise": "no"}, "model_noise"),
        ({"model_class": dict}, "model_class"),
        ({"model_kwargs": [("n_members", 2)]}, "model_kwargs"),
    ]:
        with pytest.raises(ValueError, match=name):
            Dyna("MlpPolicy", gym.make("AdvRL/GridWorld-v0"), **kwargs)


def test_model_buffer_extend_wraps_around():
    buffer = ModelReplayBuffer(5, gym.spaces.Box(-10, 10, (2,)), gym.spaces.Discrete(4), device="cpu")
    for start, n in ((0, 3), (3, 4)):
        obs = np.arange(start, start + n, dtype=np.float32)[:, None].repeat(2, axis=1)
        buffer.extend(obs, np.full(n, 1), obs + 1, np.full(n, -0.5), np.zeros(n))
    assert buffer.full and buffer.pos == 2 and buffer.size() == 5
    np.testing.assert_array_equal(buffer.observations[:, 0, 0], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.next_observations[:, 0, 1], [6, 7, 3, 4, 5])


def imagined_move_errors(model: Dyna, sign: int) -> tuple[int, float]:
    """Imagine 1000 transitions into an empty model buffer; compare them with ``obs + sign * move``."""
    model.model_buffer = ModelReplayBuffer(1000, model.observation_space, model.action_space, "cpu")
    model.imagine(1000)
    obs = model.model_buffer.observations[:, 0]
    moves = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])[model.model_buffer.actions[:, 0, 0]]
    expected = obs + sign * moves
    inside = np.all((expected >= 0) & (expected <= 3), axis=1)  # moves that do not hit the border
    return int(inside.sum()), float(
        np.median(np.abs(model.model_buffer.next_observations[:, 0] - expected)[inside])
    )


def greedy_after_planning_only(model: Dyna, rounds: int = 12) -> int | None:
    """Q-learning on mixed batches, fresh imagined transitions every round, then the greedy path length."""
    for _ in range(rounds):
        model.imagine(2000)
        model.train(gradient_steps=100, batch_size=64)
        model.q_net_target.load_state_dict(model.q_net.state_dict())
    return greedy_steps(model, gym.make("AdvRL/GridWorld-v0", size=4), max_steps=30)


def test_imagined_transitions_come_from_the_model(tmp_path, one_torch_thread):
    """The model fitted to real data imagines the moves the actions make; a deliberately wrong
    (mirrored) copy imagines the opposite moves. Q-learning on batches of 25% real and 75%
    imagined transitions, from the very same real data and initial Q-network, reaches the goal
    on a shortest path with the learned model and never reaches it with the wrong one."""
    model = grid_dyna(tmp_path, real_ratio=0.25)
    stats = model.train_model()
    assert stats["gradient_steps"] == 400 and np.isfinite(stats["train_nll"])
    n_inside, error = imagined_move_errors(model, sign=1)
    assert n_inside > 500 and error < 0.1
    assert greedy_after_planning_only(model) == 6

    wrong = with_mirrored_model(grid_dyna(tmp_path, real_ratio=0.25), model.dynamics_model)
    n_inside, error = imagined_move_errors(wrong, sign=-1)
    assert n_inside > 500 and error < 0.1
    assert greedy_after_planning_only(wrong) is None


def test_exploration_bonus_adds_the_disagreement_to_imagined_rewards(tmp_path, one_torch_thread):
    """With left never tried, the members disagree more about it than about the tried actions in
    every cell on average; the bonus adds exactly ``exploration_bonus * disagreement`` to each
    imagined reward and nothing else changes (the same random draws imagine the same transitions)."""
    model = grid_dyna(tmp_path, tried_actions=3)  # up, right, down
    model.train_model()
    cells = th.tensor([[r, c] for r in range(4) for c in range(4)], dtype=th.float32)
    per_action = [float(model.dynamics_model.disagreement(cells, th.full((16,), a)).mean()) for a in range(4)]
    assert per_action[3] > 2 * max(per_action[:3])  # measured: 0.146 against at most 0.057

    buffers = []
    rng_states = np.random.get_state(), th.get_rng_state()  # noqa: NPY002 (SB3 replays with the global RNG)
    for bonus in (0.0, 2.0):
        np.random.set_state(rng_states[0])  # noqa: NPY002
        th.set_rng_state(rng_states[1])
        model.exploration_bonus = bonus
        model.model_buffer = ModelReplayBuffer(300, model.observation_space, model.action_space, "cpu")
        model.imagine(300)
        buffers.append(model.model_buffer)
    plain, with_bonus = buffers
    for name in ("observations", "actions", "next_observations", "dones"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(with_bonus, name))
    disagreement = model.dynamics_model.disagreement(
        plain.observations[:, 0], th.as_tensor(plain.actions[:, 0, 0])
    ).numpy()
    np.testing.assert_allclose(
        with_bonus.rewards[:, 0] - plain.rewards[:, 0], 2.0 * disagreement, rtol=1e-4, atol=1e-6
    )
    assert model.logger.name_to_value["model/exploration_bonus"] == pytest.approx(
        2.0 * disagreement.mean(), rel=1e-4
    )


class ExactGridModel(ProbabilisticEnsemble):
    """The 4x4 GridWorld's true dynamics as a model: moves up/right/down/left, walls at the border,
    -0.1 a step, +10 and termination on entering the goal (3, 3)."""

    MOVES = th.tensor([[-1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])

    def sample(self, obs, actions, *args, **kwargs):
        next_obs = th.clamp(th.as_tensor(obs) + self.MOVES[th.as_tensor(actions).long()], 0.0, 3.0)
        at_goal = (next_obs == 3.0).all(dim=1)
        return next_obs, th.where(at_goal, 10.0, -0.1), at_goal


def test_rollouts_store_discounted_k_step_returns(tmp_path, one_torch_thread):
    """rollout_length=3: (s0, a0, r0 + g r1 + g^2 r2, s3) with discount g^3, greedy actions after
    the first, cut at the goal (done=1, later rewards dropped), checked row by row against a
    plain Python rollout of the same model and Q-network."""
    model = grid_dyna(tmp_path, rollout_length=3, gamma=0.9, model_class=ExactGridModel)
    model.model_buffer = ModelReplayBuffer(500, model.observation_space, model.action_space, "cpu", gamma=0.9)
    model.imagine(500)
    buffer = model.model_buffer
    exact = model.dynamics_model
    n_done = 0
    for row in range(500):
        state = th.as_tensor(buffer.observations[row, 0])[None]
        action = th.as_tensor(buffer.actions[row, 0], dtype=th.long)
        total, discount, done = 0.0, 1.0, False
        for step in range(3):
            if step > 0:
                action = model.q_net(state).argmax(dim=1)
            state, reward, terminated = exact.sample(state, action)
            total += discount * float(reward[0])
            discount *= 0.9
            if terminated[0]:
                done = True
                break
        n_done += done
        assert buffer.rewards[row, 0] == pytest.approx(total, abs=1e-5)
        assert buffer.dones[row, 0] == float(done)
        if not done:
            np.testing.assert_array_equal(buffer.next_observations[row, 0], state[0].numpy())
            assert buffer.discounts[row, 0] == pytest.approx(0.9**3)
    assert 0 < n_done < 500  # both kinds of rows were checked
    # The discounts reach the TD target: a mixed batch carries gamma for real rows, gamma^3 for imagined.
    batch, n_imagined = model.mixed_batch(64)
    assert n_imagined == 32
    np.testing.assert_allclose(batch.discounts[:32].numpy(), 0.9)
    assert np.all(np.isclose(batch.discounts[32:].numpy(), 0.9**3) | (batch.dones[32:].numpy() == 1.0))


def test_planning_gamma_discounts_imagined_transitions_only(tmp_path, one_torch_thread):
    """planning_gamma=0.8 with gamma=0.9: imagined rows bootstrap with 0.8 (0.8^2 and rewards
    r0 + 0.8 r1 for two-step rollouts), real rows keep 0.9 in the mixed batches."""
    model = grid_dyna(tmp_path, gamma=0.9, planning_gamma=0.8, model_class=ExactGridModel)
    model.imagine(300)
    buffer = model.model_buffer
    assert 0 < buffer.dones[:300, 0].sum() < 300  # steps into the goal and others
    np.testing.assert_allclose(buffer.discounts[:300, 0], 0.8)
    batch, n_imagined = model.mixed_batch(64)
    assert n_imagined == 32
    np.testing.assert_allclose(batch.discounts[:32].numpy(), 0.9)
    np.testing.assert_allclose(batch.discounts[32:].numpy(), 0.8)

    two_step = grid_dyna(
        tmp_path, gamma=0.9, planning_gamma=0.8, rollout_length=2, model_class=ExactGridModel
    )
    two_step.imagine(300)
    rows = two_step.model_buffer
    continuing = rows.dones[:300, 0] == 0.0
    np.testing.assert_allclose(rows.discounts[:300, 0][continuing], 0.8**2, rtol=1e-6)
    # Away from the goal every step costs -0.1: r0 + 0.8 r1 = -0.18.
    np.testing.assert_allclose(rows.rewards[:300, 0][continuing], -0.1 - 0.8 * 0.1, rtol=1e-5)


class WrongRewardGridModel(ExactGridModel):
    """:class:`ExactGridModel` with one reward error: bumping into the top wall at the start
    (0, 0), which leaves the agent there, pays +0.5 instead of -0.1."""

    def sample(self, obs, actions, *args, **kwargs):
        next_obs, rewards, terminated = super().sample(obs, actions)
        bump = (th.as_tensor(obs) == 0.0).all(dim=1) & (th.as_tensor(actions).long() == 0)
        return next_obs, th.where(bump, 0.5, rewards), terminated


def test_a_smaller_planning_gamma_keeps_a_model_error_from_outweighing_the_goal(tmp_path, one_torch_thread):
    """A reward error of +0.5 on a step the agent can repeat is worth 0.5 / (1 - planning_gamma)
    to Q-learning on imagined data: 50 with planning_gamma = gamma = 0.99, more than the goal's
    10, so the greedy policy keeps bumping into the wall; 3.3 with 0.85, less than the goal's
    value from the start (about 4.1 six steps away), so the greedy path is a shortest one."""
    lengths = {}
    for planning_gamma in (0.99, 0.85):
        model = grid_dyna(
            tmp_path,
            gamma=0.99,
            planning_gamma=planning_gamma,
            real_ratio=0.0,
            model_class=WrongRewardGridModel,
        )
        for _ in range(40):
            model.imagine(2000)
            model.train(gradient_steps=100, batch_size=64)
            model.q_net_target.load_state_dict(model.q_net.state_dict())
        lengths[planning_gamma] = greedy_steps(model, gym.make("AdvRL/GridWorld-v0", size=4), max_steps=30)
    assert lengths == {0.99: None, 0.85: 6}


def marked_model_buffer(model: Dyna, n: int = 200, seed: int = 0) -> ModelReplayBuffer:
    """Fill ``model``'s model buffer with ``n`` imagined-looking transitions no real one resembles:
    off-grid (non-integer) observations, rewards off the real -0.1 / +10, a mix of terminal rows
    and of one- and three-step discounts."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(0.05, 2.95, (n, 2)).astype(np.float32)
    buffer = ModelReplayBuffer(n, model.observation_space, model.action_space, "cpu", gamma=0.9)
    buffer.extend(
        obs,
        rng.integers(4, size=n),
        np.clip(obs + rng.normal(0, 0.5, (n, 2)), 0, 3).astype(np.float32),
        rng.uniform(1.0, 3.0, n),
        (np.arange(n) % 4 == 0).astype(np.float32),
        np.where(np.arange(n) % 2 == 0, 0.9, 0.9**3).astype(np.float32),
    )
    model.model_buffer = buffer
    return buffer


def is_imagined(model: Dyna, observations: th.Tensor) -> np.ndarray:
    """Which rows of a batch are observations of the (marked) model buffer; real ones are grid cells."""
    stored = {tuple(row) for row in model.model_buffer.observations[:, 0].tolist()}
    rows = [tuple(row) for row in observations.numpy().tolist()]
    real = np.all(observations.numpy() == np.round(observations.numpy()), axis=1)
    assert not any(row in stored for row, is_real in zip(rows, real, strict=True) if is_real)
    return np.array([row in stored for row in rows])


def test_planning_updates_are_extra_q_updates_on_imagined_data(tmp_path, one_torch_thread):
    """Owed planning updates run after DQN's gradient steps, only once imagined data exists, and
    learn from the model buffer alone."""
    model = grid_dyna(tmp_path, planning_updates=3, real_ratio=1.0, model_class=ExactGridModel)
    model._pending_planning_updates = 6
    model.train(gradient_steps=2, batch_size=32)  # empty model buffer: nothing to plan with
    assert model._n_updates == 2 and model._pending_planning_updates == 0
    marked_model_buffer(model)
    batches = []
    q_update = model._q_update

    def record(data):
        batches.append(data)
        return q_update(data)

    model._q_update = record
    model._pending_planning_updates = 6
    model.train(gradient_steps=2, batch_size=32)
    assert model._n_updates == 2 + 2 + 6 and model._pending_planning_updates == 0
    # real_ratio=1: DQN's two updates see real transitions only; the six planning updates only imagined ones.
    assert [int(is_imagined(model, batch.observations).sum()) for batch in batches] == [0, 0] + [32] * 6
    # learn(): every environment step owes planning_updates (3), paid at each train() call
    # (every 4 steps, one DQN gradient step each): 10 calls x (1 + 4 x 3) updates in 40 steps.
    learner = grid_dyna(
        tmp_path,
        planning_updates=3,
        learning_starts=0,
        train_freq=4,
        model_gradient_steps=5,
        model_class=ExactGridModel,
    )
    learner.learn(40)
    assert learner._n_updates == 10 * (1 + 4 * 3) and learner._pending_planning_updates == 0


def dqn_loss(model: Dyna, obs, actions, rewards, next_obs, dones, discounts) -> float:
    """Mean Huber loss of the one-step TD errors r + discount (1 - done) max_a Q_target(s', a) - Q(s, a)."""
    with th.no_grad():
        q = model.q_net(obs)[th.arange(len(obs)), actions.long().reshape(-1)]
        bootstrap = model.q_net_target(next_obs).max(dim=1).values
        delta = rewards.reshape(-1) + discounts.reshape(-1) * (1 - dones.reshape(-1)) * bootstrap - q
    return float(th.where(delta.abs() < 1, 0.5 * delta**2, delta.abs() - 0.5).mean())


@pytest.mark.parametrize("gradient_steps, planning_updates", [(1, 0), (0, 1)])
def test_one_q_update_is_the_dqn_step_on_real_and_imagined_rows(
    tmp_path, one_torch_thread, gradient_steps, planning_updates
):
    """A mixed batch (real_ratio 0.25 of 16: 12 imagined rows drawn from the model buffer, then 4
    real rows from the replay buffer) or a planning batch (16 imagined rows): the logged loss is
    DQN's Huber loss with the real rows discounted by gamma and each imagined row by its own
    stored discount (0.9 or 0.9^3)."""
    model = grid_dyna(
        tmp_path, gamma=0.9, real_ratio=0.25, planning_updates=planning_updates, model_class=ExactGridModel
    )
    imagined_buffer = marked_model_buffer(model)
    np.random.seed(3)  # noqa: NPY002  (SB3's buffers sample with numpy's global generator)
    imagined = imagined_buffer.sample(16 if planning_updates else 12)
    real = model.replay_buffer.sample(4) if gradient_steps else None
    assert 0 < imagined.dones.sum() < len(imagined.dones) and len(np.unique(imagined.discounts)) == 2
    parts = [imagined] + ([real] if real is not None else [])
    loss = dqn_loss(
        model,
        *(
            th.cat([getattr(part, name).float() for part in parts])
            for name in ("observations", "actions", "rewards", "next_observations", "dones")
        ),
        th.cat([imagined.discounts] + ([th.full_like(real.rewards, 0.9)] if real is not None else [])),
    )
    model._pending_planning_updates = planning_updates
    np.random.seed(3)  # noqa: NPY002
    model.train(gradient_steps=gradient_steps, batch_size=16)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(loss, rel=1e-5)
    assert model.logger.name_to_value["train/planning_updates"] == planning_updates
    if gradient_steps:
        assert model.logger.name_to_value["train/imagined_fraction"] == 0.75


def test_planning_updates_advance_the_target_network(tmp_path, one_torch_thread):
    """The target network is synced every planning_target_update_interval planning updates (by
    default as many updates as DQN makes between two syncs), so planning can propagate values."""
    default = grid_dyna(
        tmp_path, planning_updates=2, target_update_interval=250, train_freq=4, gradient_steps=1
    )
    assert default.planning_target_update_interval == 62  # DQN: 1 update per 4 steps, sync every 250 steps
    assert (
        grid_dyna(
            tmp_path, target_update_interval=100, train_freq=(2, "step"), gradient_steps=3
        ).planning_target_update_interval
        == 150
    )
    two_envs = make_vec_env("AdvRL/GridWorld-v0", n_envs=2, env_kwargs=dict(size=4))
    # SB3 syncs every 100 // 2 = 50 calls of both envs, with an update every 4 calls: 12.5 updates.
    assert (
        Dyna("MlpPolicy", two_envs, target_update_interval=100, device="cpu").planning_target_update_interval
        == 12
    )
    targets = {}
    for interval in (4, 10**9):
        model = grid_dyna(
            tmp_path,
            planning_updates=4,
            planning_target_update_interval=interval,
            target_update_interval=10**9,
            model_class=ExactGridModel,
        )
        model.imagine(200)
        target_before = [p.clone() for p in model.q_net_target.parameters()]
        model._pending_planning_updates = 4
        model.train(gradient_steps=0, batch_size=32)  # exactly 4 planning updates: one sync with interval 4
        synced = all(
            th.equal(a, b)
            for a, b in zip(model.q_net.parameters(), model.q_net_target.parameters(), strict=True)
        )
        moved = not all(
            th.equal(a, b) for a, b in zip(target_before, model.q_net_target.parameters(), strict=True)
        )
        targets[interval] = (synced, moved, model._planning_updates_done)
    assert targets == {4: (True, True, 4), 10**9: (False, False, 4)}
    with pytest.raises(ValueError, match="planning_target_update_interval"):
        grid_dyna(tmp_path, planning_target_update_interval=0)


def test_beta_nll_model_imagines_the_sparse_goal_reward(tmp_path, one_torch_thread):
    """25 goal transitions (+10) among 1500: the plain Gaussian NLL explains them away as noise
    (imagined reward near 0 next to the goal), the beta-NLL that Dyna uses by default does not."""
    next_to_goal, into_goal = np.array([[2, 3], [3, 2]], dtype=np.float32), np.array([2, 1])
    rewards = {}
    for beta in (0.0, 0.5):
        model = grid_dyna(tmp_path, model_kwargs=dict(n_members=3, hidden_sizes=(32, 32), nll_beta=beta))
        assert model.dynamics_model.nll_beta == beta
        model.train_model()
        rewards[beta] = model.dynamics_model.sample(next_to_goal, into_goal, deterministic=True)[1].numpy()
    assert np.all(rewards[0.0] < 0.5) and np.all(rewards[0.5] > 1.0)
    with pytest.raises(ValueError, match="nll_beta"):
        ProbabilisticEnsemble(model.observation_space, model.action_space, nll_beta=2.0)


def test_dyna_learn_fits_the_model_imagines_and_logs(tmp_path, one_torch_thread):
    env = gym.make("AdvRL/GridWorld-v0", size=4)
    model = Dyna(
        "MlpPolicy",
        env,
        learning_starts=100,
        planning_steps=3,
        model_train_freq=100,
        model_gradient_steps=10,
        model_kwargs=dict(n_members=2, hidden_sizes=(16,)),
        policy_kwargs=dict(net_arch=[16]),
        device="cpu",
        seed=0,
    )
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(300, log_interval=1)
    # Fits at steps 100 (the first), 200 and 300; 3 imagined transitions after each step from 100 on.
    assert model._model_fits == 3 and model.model_buffer.size() == 3 * 201
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in (
        "model/train_nll",
        "model/holdout_mse",
        "model/train_termination_bce",
        "train/imagined_fraction",
    ):
        assert key in header
