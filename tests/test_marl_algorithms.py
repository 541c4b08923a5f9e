"""QMIX / VDN and the multi-agent machinery: exact buffer contents, exact updates, learning,
agents leaving mid-episode, save/load and bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from pettingzoo import ParallelEnv
from stable_baselines3.common.callbacks import BaseCallback

from gym_advrl.marl import cooperative_v0
from sb3_ext.marl import QMIX, VDN, MultiAgentReplayBuffer, evaluate_marl_policy

PAYOFF = np.array([[0.5, 0.0], [0.0, 1.0]])  # both 0: 0.5, both 1: 1, miscoordination: 0


class CoordinationGame(ParallelEnv):
    """Two agents, one step: each sees ``(1, own index)``; the shared reward is ``PAYOFF[a0, a1]``.
    The random policy earns 0.375 on average; coordinating on action 1 earns 1. No ``state()``:
    the algorithms use the concatenated observations."""

    metadata = {"name": "coordination_game"}
    possible_agents = ["first", "second"]

    def observation_space(self, agent):
        return spaces.Box(-1.0, 1.0, (2,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def _obs(self):
        return {name: np.array([1.0, i], dtype=np.float32) for i, name in enumerate(self.possible_agents)}

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        return self._obs(), {name: {} for name in self.agents}

    def step(self, actions):
        reward = float(PAYOFF[actions["first"], actions["second"]])
        self.agents = []
        names = self.possible_agents
        return (
            self._obs(),
            dict.fromkeys(names, reward),
            dict.fromkeys(names, True),
            dict.fromkeys(names, False),
            {name: {} for name in names},
        )


def spaces_of(n_agents: int = 3, obs_dim: int = 2) -> tuple[list[str], spaces.Box, spaces.Discrete]:
    return [f"a{i}" for i in range(n_agents)], spaces.Box(-1, 1, (obs_dim,), np.float32), spaces.Discrete(4)


def test_buffer_stores_joint_steps_with_inactive_agents_masked() -> None:
    agents, obs_space, act_space = spaces_of()
    buffer = MultiAgentReplayBuffer(4, agents, obs_space, act_space, state_dim=5)
    obs = {name: np.full(2, i + 1.0) for i, name in enumerate(agents)}
    # a1 left the episode before this step; a2 terminates at it; a0 carries on.
    buffer.add(
        {n: obs[n] for n in ("a0", "a2")},
        {"a0": 3, "a2": 1},
        {"a0": 1.0, "a2": -2.0},
        {n: obs[n] * 10 for n in ("a0", "a2")},
        {"a0": False, "a2": True},
        np.arange(5.0),
        np.arange(5.0) + 1,
    )
    batch = buffer.samples(np.array([0]))
    np.testing.assert_array_equal(batch.observations[0].numpy(), [[1, 1], [0, 0], [3, 3]])
    np.testing.assert_array_equal(batch.next_observations[0].numpy(), [[10, 10], [0, 0], [30, 30]])
    np.testing.assert_array_equal(batch.actions[0].numpy(), [3, 0, 1])
    np.testing.assert_array_equal(batch.rewards[0].numpy(), [1, 0, -2])
    np.testing.assert_array_equal(batch.active[0].numpy(), [1, 0, 1])
    np.testing.assert_array_equal(batch.next_active[0].numpy(), [1, 0, 0])
    np.testing.assert_array_equal(batch.terminations[0].numpy(), [0, 0, 1])
    assert batch.team_rewards[0].item() == pytest.approx(-0.5)  # mean over the agents that acted
    assert batch.team_terminations[0].item() == 0.0  # a0 is still in play
    np.testing.assert_array_equal(batch.states[0].numpy(), np.arange(5.0))
    np.testing.assert_array_equal(batch.next_states[0].numpy(), np.arange(5.0) + 1)


def test_buffer_team_terminates_when_every_acting_agent_terminates_and_wraps_around() -> None:
    agents, obs_space, act_space = spaces_of(2)
    buffer = MultiAgentReplayBuffer(2, agents, obs_space, act_space, state_dim=1)
    zero = np.zeros(2)
    for step in range(3):
        done = step == 2
        buffer.add(
            {"a0": zero, "a1": zero},
            {"a0": step, "a1": step},
            {"a0": float(step), "a1": float(step)},
            {"a0": zero, "a1": zero},
            {"a0": done, "a1": done},
            [step],
            [step],
        )
    assert buffer.size() == 2 and buffer.full and buffer.pos == 1
    batch = buffer.samples(np.array([0, 1]))
    np.testing.assert_array_equal(batch.actions[:, 0].numpy(), [2, 1])  # row 0 overwritten by step 2
    np.testing.assert_array_equal(batch.team_terminations.numpy(), [1, 0])
    with pytest.raises(ValueError, match="actions: unknown agents \\['zz'\\]"):
        buffer.add({}, {"zz": 0}, {}, {}, {}, [0], [0])


def fixed_batch(model: QMIX, rows: int = 6):
    """Fill the model's buffer with hand-made transitions (one agent inactive in some rows)."""
    rng = np.random.default_rng(0)
    agents = model.agents
    for row in range(rows):
        acting = agents if row % 3 else agents[:-1]
        obs = {n: rng.normal(size=model.obs_dim) for n in acting}
        next_obs = {n: rng.normal(size=model.obs_dim) for n in acting}
        model.replay_buffer.add(
            obs,
            {n: int(rng.integers(model.action_space.n)) for n in acting},
            {n: float(rng.normal()) for n in acting},
            next_obs,
            {n: bool(row == 4) for n in acting},
            rng.normal(size=model.state_dim),
            rng.normal(size=model.state_dim),
        )
    return model.replay_buffer.samples(np.arange(rows))


def qmix_by_hand(mixer, agent_qs: th.Tensor, states: th.Tensor) -> th.Tensor:
    """The QMIX equations of Rashid et al. (2018), written out from the mixer's hypernetwork layers."""
    b, n = agent_qs.shape
    w1 = mixer.hyper_w1(states).abs().reshape(b, n, -1)
    hidden = th.nn.functional.elu(th.einsum("bn,bne->be", agent_qs, w1) + mixer.hyper_b1(states))
    return (hidden * mixer.hyper_w2(states).abs()).sum(-1) + mixer.value(states)[:, 0]


@pytest.mark.parametrize("mixer", ["qmix", "vdn", "none"])
@pytest.mark.parametrize("double_q", [True, False])
def test_one_update_is_an_sgd_step_on_the_squared_td_error(mixer: str, double_q: bool) -> None:
    env = cooperative_v0.parallel_env(n_agents=3, continuous_actions=False)
    model = QMIX(env, mixer=mixer, double_q=double_q, gamma=0.9, learning_rate=0.05, seed=0, net_arch=[8])
    batch = fixed_batch(model)
    with th.no_grad():  # distinct target networks, so that online/target mix-ups show
        for p in [*model.q_net_target.parameters(), *model.mixer_net_target.parameters()]:
            p.add_(0.1 * th.randn_like(p))
    net, target = model.q_net, model.q_net_target
    with th.no_grad():
        next_target = target(batch.next_observations)
        pick = (net if double_q else target)(batch.next_observations).argmax(-1, keepdim=True)
        next_q = next_target.gather(-1, pick)[..., 0] * batch.next_active
        if mixer == "qmix":
            next_total = qmix_by_hand(model.mixer_net_target, next_q, batch.next_states)
        else:
            next_total = next_q.sum(-1)
        y = batch.team_rewards + 0.9 * (1 - batch.team_terminations) * next_total
        if mixer == "none":  # independent Q-learning: every agent on its own reward
            y = batch.rewards + 0.9 * (1 - batch.terminations) * next_q
    params = [*net.parameters(), *model.mixer_net.parameters()]
    q = net(batch.observations).gather(-1, batch.actions[..., None])[..., 0] * batch.active
    if mixer == "none":
        loss = (((q - y) ** 2) * batch.active).sum() / batch.active.sum()
    else:
        total = qmix_by_hand(model.mixer_net, q, batch.states) if mixer == "qmix" else q.sum(-1)
        loss = ((total - y) ** 2).mean()
    grads = th.autograd.grad(loss, params)
    expected = [p.detach() - 0.05 * g for p, g in zip(params, grads, strict=True)]
    assert loss.item() > 0
    np.testing.assert_allclose(model.td_targets(batch).numpy(), y.numpy(), rtol=1e-6)

    model.optimizer = th.optim.SGD(params, lr=0.05)
    model.max_grad_norm = 1e9  # no clipping: a plain gradient step
    model.replay_buffer.sample = lambda *args: batch
    model.train(gradient_steps=1, batch_size=len(batch.team_rewards))
    for after, want in zip(params, expected, strict=True):
        np.testing.assert_allclose(after.detach().numpy(), want.numpy(), rtol=1e-5, atol=1e-7)


def test_qmix_mixture_is_monotonic_in_every_agent_q() -> None:
    env = cooperative_v0.parallel_env(n_agents=4, continuous_actions=False)
    mixer = QMIX(env, seed=1).mixer_net
    qs = th.randn(16, 4, requires_grad=True)
    (grad,) = th.autograd.grad(mixer(qs, th.randn(16, 20)).sum(), [qs])
    assert (grad >= 0).all()


def test_exploration_rate_follows_sb3_dqn_linear_schedule() -> None:
    model = QMIX(
        CoordinationGame(),
        learning_starts=10_000,
        exploration_fraction=0.5,
        exploration_final_eps=0.1,
        seed=0,
    )
    seen = []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            seen.append((self.num_timesteps, self.model.exploration_rate))
            return True

    model.learn(100, callback=Record())
    rates = dict(seen)
    assert rates[25] == pytest.approx(1.0 - 0.9 * 0.5)
    assert rates[50] == pytest.approx(0.1) and rates[100] == pytest.approx(0.1)


@functools.cache
def trained(cls: type) -> QMIX:
    model = cls(
        CoordinationGame(),
        learning_rate=5e-3,
        learning_starts=64,
        batch_size=32,
        exploration_fraction=0.6,
        target_update_interval=50,
        net_arch=[16],
        seed=0,
    )
    return model.learn(800)


@pytest.mark.parametrize("cls", [QMIX, VDN])
def test_learns_the_coordination_game_above_random(cls: type) -> None:
    mean, _ = evaluate_marl_policy(trained(cls), CoordinationGame(), n_eval_episodes=4)
    assert mean == 1.0  # random play earns 0.375


@pytest.mark.parametrize("cls", [QMIX, VDN])
def test_save_load_gives_identical_actions_and_q_values(cls: type, tmp_path) -> None:
    env = cooperative_v0.parallel_env(n_agents=3, continuous_actions=False, max_cycles=10)
    model = cls(env, learning_starts=20, batch_size=8, seed=2, net_arch=[8]).learn(60)
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip")
    observations, _ = env.reset(seed=5)
    assert model.predict(observations, deterministic=True) == loaded.predict(observations, deterministic=True)
    batch = fixed_batch(model)
    with th.no_grad():
        np.testing.assert_array_equal(model.chosen_total(batch).numpy(), loaded.chosen_total(batch).numpy())
    assert loaded.num_timesteps == 60 and loaded.mixer == model.mixer
    with pytest.raises(ValueError, match="env: this model was loaded without an env"):
        loaded.learn(10)
    resumed = cls.load(tmp_path / "model.zip", env=env).learn(10, reset_num_timesteps=False)
    assert resumed.num_timesteps == 70


def test_agents_leaving_the_arena_mid_episode_do_not_break_training() -> None:
    env = cooperative_v0.parallel_env(n_agents=3, continuous_actions=False, arena_radius=1.5, max_cycles=40)
    model = QMIX(env, learning_starts=50, batch_size=16, seed=3, net_arch=[8]).learn(400)
    buffer = model.replay_buffer
    active = buffer.active[: buffer.size()]
    assert (active.sum(axis=1) < 3).any(), "no agent left the arena: the test does not test it"
    assert model._n_updates > 300
    observations, _ = env.reset(seed=0)
    partial, _ = model.predict({"agent_1": observations["agent_1"]}, deterministic=True)
    assert set(partial) == {"agent_1"}


def test_learn_logs_sb3_keys(tmp_path) -> None:
    from stable_baselines3.common.logger import configure

    model = QMIX(CoordinationGame(), learning_starts=5, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(20, log_interval=1, reset_num_timesteps=False)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ("rollout/ep_rew_mean", "rollout/exploration_rate", "train/loss", "time/total_timesteps"):
        assert key in header


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: QMIX(cooperative_v0.parallel_env()), "action_space: QMIX needs Discrete actions"),
        (
            lambda: VDN(cooperative_v0.parallel_env(continuous_actions=True)),
            "action_space: VDN needs Discrete",
        ),
        (lambda: QMIX(CoordinationGame(), mixer="sum"), "mixer must be one of \\('qmix', 'vdn', 'none'\\)"),
        (lambda: VDN(CoordinationGame(), mixer="qmix"), "mixer: VDN always sums"),
        (lambda: QMIX(CoordinationGame(), learning_rate=lambda p: p), "learning_rate must be a number"),
        (lambda: QMIX(CoordinationGame(), gamma=1.5), "gamma"),
        (lambda: QMIX(CoordinationGame(), learning_starts=-1), "learning_starts must be an integer >= 0"),
        (lambda: QMIX(CoordinationGame(), net_arch=[0]), "net_arch"),
        (lambda: QMIX("cooperative_v0"), "env must be a PettingZoo ParallelEnv"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_predict_rejects_unknown_agents_and_non_dicts() -> None:
    model = QMIX(CoordinationGame(), seed=0)
    with pytest.raises(ValueError, match="observations: unknown agents \\['third'\\]"):
        model.predict({"third": np.zeros(2)})
    with pytest.raises(ValueError, match="observations must be a non-empty dict"):
        model.predict(np.zeros((2, 2)))


# ---------------------------------------------------------------------------- MADDPG
from sb3_ext.marl import MADDPG  # noqa: E402
from sb3_ext.marl.maddpg.networks import AttentionCritics  # noqa: E402

TARGETS = np.array([0.5, -0.5])


class ReachGame(ParallelEnv):
    """Two agents, one step, Box(-1, 1, (1,)) actions: the shared reward is
    ``-sum_i (a_i - target_i)^2`` with targets 0.5 and -0.5. Uniform random actions earn about
    -1.17; the optimum is 0."""

    metadata = {"name": "reach_game"}
    possible_agents = ["first", "second"]

    def observation_space(self, agent):
        return spaces.Box(-1.0, 1.0, (2,), np.float32)

    def action_space(self, agent):
        return spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        return {n: np.array([1.0, i], dtype=np.float32) for i, n in enumerate(self.agents)}, {
            n: {} for n in self.agents
        }

    def step(self, actions):
        chosen = np.array([float(actions[n][0]) for n in self.possible_agents])
        reward = -float(np.sum((chosen - TARGETS) ** 2))
        obs, _ = self.reset()
        self.agents = []
        names = self.possible_agents
        return (
            obs,
            dict.fromkeys(names, reward),
            dict.fromkeys(names, True),
            dict.fromkeys(names, False),
            {n: {} for n in names},
        )


def maddpg_batch(model: MADDPG, rows: int = 6):
    rng = np.random.default_rng(1)
    for row in range(rows):
        acting = model.agents if row % 3 else model.agents[1:]
        model.replay_buffer.add(
            {n: rng.normal(size=model.obs_dim) for n in acting},
            {n: rng.uniform(-1, 1, size=model.action_dim) for n in acting},
            {n: float(rng.normal()) for n in acting},
            {n: rng.normal(size=model.obs_dim) for n in acting},
            {n: bool(row == 2 and n == acting[0]) for n in acting},
            rng.normal(size=model.state_dim),
            rng.normal(size=model.state_dim),
        )
    return model.replay_buffer.samples(np.arange(rows))


@pytest.mark.parametrize("critic", ["mlp", "attention"])
def test_maddpg_critic_step_is_an_sgd_step_on_the_squared_error_to_the_target(critic: str) -> None:
    env = cooperative_v0.parallel_env(n_agents=3)
    model = MADDPG(
        env,
        critic=critic,
        gamma=0.9,
        learning_rate=0.05,
        seed=0,
        net_arch=[8],
        embed_dim=8,
        attention_heads=2,
    )
    batch = maddpg_batch(model)
    with th.no_grad():
        for p in [*model.actors_target.parameters(), *model.critics_target.parameters()]:
            p.add_(0.1 * th.randn_like(p))
        next_actions = th.stack(
            [model.actors_target.forward_agent(i, batch.next_observations[:, i]) for i in range(3)], 1
        )
        next_actions = next_actions * batch.next_active[..., None]
        next_q = model.critics_target(batch.next_observations, next_actions, batch.next_active)
        y = batch.rewards + 0.9 * (1 - batch.terminations) * next_q
    np.testing.assert_allclose(model.critic_targets(batch).numpy(), y.numpy(), rtol=1e-6)
    params = list(model.critics.parameters())
    q = model.critics(batch.observations, batch.actions, batch.active)
    loss = (((q - y) ** 2) * batch.active).sum() / batch.active.sum()
    assert loss.item() == pytest.approx(model.critic_loss(batch).item(), rel=1e-6)
    grads = th.autograd.grad(loss, params)
    expected = [p.detach() - 0.05 * g for p, g in zip(params, grads, strict=True)]
    model.critic_optimizer = th.optim.SGD(params, lr=0.05)
    model.actor_optimizer = th.optim.SGD(model.actors.parameters(), lr=0.0)
    model.max_grad_norm = 1e9
    model.replay_buffer.sample = lambda *args: batch
    model.train(gradient_steps=1, batch_size=6)
    for after, want in zip(params, expected, strict=True):
        np.testing.assert_allclose(after.detach().numpy(), want.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"critic": "mlp"},
        {"critic": "attention", "embed_dim": 8, "attention_heads": 2},
        {"critic": "attention", "embed_dim": 8, "attention_heads": 2, "share_parameters": True},
        {"critic": "local"},
    ],
    ids=str,
)
def test_maddpg_actor_loss_replaces_only_the_own_action(kwargs: dict) -> None:
    """The loss, and its gradient for every actor, equal N separate critic passes with one agent's
    action replaced by its actor's in each (the critics compute it in one pass per agent or one)."""
    env = cooperative_v0.parallel_env(n_agents=3)
    model = MADDPG(env, seed=1, net_arch=[8], **kwargs)
    batch = maddpg_batch(model)
    params = list(model.actors.parameters())
    expected = []
    for i in range(3):
        joint = batch.actions.clone()
        joint[:, i] = model.actors.forward_agent(i, batch.observations[:, i])
        expected.append(
            model.critics(batch.observations, joint * batch.active[..., None], batch.active)[:, i]
        )
    want = -(th.stack(expected, 1) * batch.active).sum() / batch.active.sum()
    want_grads = th.autograd.grad(want, params)
    loss = model.actor_loss(batch)
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    for got, grad in zip(th.autograd.grad(loss, params), want_grads, strict=True):
        np.testing.assert_allclose(got.numpy(), grad.numpy(), rtol=1e-5, atol=1e-7)


def test_attention_weights_skip_the_agent_itself_and_agents_out_of_play() -> None:
    th.manual_seed(0)
    critics = AttentionCritics(4, 3, 2, [8], share=False, embed_dim=8, attention_heads=2)
    embeddings = th.randn(5, 4, 8)
    active = th.tensor(
        [[1, 1, 1, 1], [1, 0, 1, 1], [1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 0, 1]], dtype=th.float32
    )
    with th.no_grad():
        attended, alpha = critics.attention(embeddings, active)
    eye = th.eye(4, dtype=th.bool)
    assert (alpha[:, :, eye] == 0).all()  # never itself
    assert (alpha * (1 - active[:, None, None, :]) == 0).all()  # never an agent out of play
    peers = (active[:, None, :].bool() & ~eye).sum(-1)  # (B, N query)
    sums = alpha.sum(-1)  # (B, heads, N)
    np.testing.assert_allclose(
        sums.numpy(), np.broadcast_to((peers > 0).float()[:, None, :].numpy(), sums.shape), atol=1e-6
    )
    assert (attended[2, 0] == 0).all()  # alone in play: nothing to attend to


@pytest.mark.parametrize(
    "kwargs", [{"critic": "mlp"}, {"critic": "attention", "share_parameters": True}], ids=str
)
def test_maddpg_learns_the_reach_game_above_random(kwargs: dict) -> None:
    model = MADDPG(
        ReachGame(),
        learning_starts=100,
        batch_size=64,
        learning_rate=1e-2,
        tau=0.05,
        net_arch=[32],
        seed=0,
        **kwargs,
    ).learn(700)
    mean, _ = evaluate_marl_policy(model, ReachGame(), n_eval_episodes=2)
    assert mean > -0.05  # random play earns about -1.17


def test_maddpg_save_load_and_agents_leaving(tmp_path) -> None:
    env = cooperative_v0.parallel_env(n_agents=3, arena_radius=1.5, max_cycles=40)
    model = MADDPG(
        env, critic="attention", learning_starts=50, batch_size=16, net_arch=[8], embed_dim=8, seed=4
    )
    model.learn(300)
    assert (model.replay_buffer.active[: model.replay_buffer.size()].sum(1) < 3).any()
    model.save(tmp_path / "maddpg.zip")
    loaded = MADDPG.load(tmp_path / "maddpg.zip")
    observations, _ = env.reset(seed=1)
    ours, theirs = (
        model.predict(observations, deterministic=True)[0],
        loaded.predict(observations, deterministic=True)[0],
    )
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])
        assert ours[name].dtype == np.float32 and ours[name].shape == (2,)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: MADDPG(CoordinationGame()),
            "action_space: MADDPG needs flat Box actions.*no Gumbel-softmax",
        ),
        (
            lambda: MADDPG(ReachGame(), critic="gnn"),
            "critic must be one of \\('mlp', 'attention', 'local'\\)",
        ),
        (
            lambda: MADDPG(ReachGame(), critic="attention", embed_dim=10, attention_heads=4),
            "multiple of attention_heads",
        ),
        (lambda: MADDPG(ReachGame(), tau=2.0), "tau"),
        (lambda: MADDPG(ReachGame(), share_parameters="yes"), "share_parameters"),
    ],
)
def test_maddpg_bad_arguments(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_a_team_trains_against_a_scripted_opponent() -> None:
    from gym_advrl.marl import mixed_v0

    env = mixed_v0.parallel_env(n_agents=4, max_cycles=10)
    red = [name for name, team in env.teams.items() if team == "red"]
    called = []

    def opponent(agent, observation):
        called.append(agent)
        return np.zeros(2, dtype=np.float32)  # blue stands still

    model = MADDPG(env, agents=red, opponent=opponent, learning_starts=10, batch_size=8, net_arch=[8], seed=0)
    model.learn(30)
    assert model.agents == ["red_0", "red_1"] and model.replay_buffer.observations.shape[1] == 2
    assert set(called) == {"blue_0", "blue_1"} and len(called) == 60
    assert model.replay_buffer.size() == 30
    _, _, per_agent = evaluate_marl_policy(model, env, n_eval_episodes=1, return_episode_rewards=True)
    assert set(per_agent) == {"red_0", "red_1", "blue_0", "blue_1"}


def test_agents_and_opponent_are_checked() -> None:
    with pytest.raises(ValueError, match="agents must be distinct agents of the env"):
        QMIX(CoordinationGame(), agents=["first", "nobody"])
    with pytest.raises(ValueError, match="agents must be distinct agents of the env"):
        QMIX(CoordinationGame(), agents=["first", "first"])
    with pytest.raises(ValueError, match="opponent must be a callable"):
        QMIX(CoordinationGame(), agents=["first"], opponent="random")
    model = QMIX(CoordinationGame(), agents=["second"], seed=0)
    assert model.agents == ["second"]
    assert model.opponent_action("first", np.zeros(2)) in (0, 1)  # random by default


class SpeakerListener(ParallelEnv):
    """Two steps; the speaker sees a target (+-0.5), the listener does not, and both earn
    ``-(listener's action - target)^2`` each step. Without messages the listener's best is 0: -0.5
    per episode; hearing the speaker's first-step message it can match the target at the second
    step: -0.25."""

    metadata = {"name": "speaker_listener"}
    possible_agents = ["speaker", "listener"]

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def observation_space(self, agent):
        return spaces.Box(-1, 1, (2,), np.float32)

    def action_space(self, agent):
        return spaces.Box(-1, 1, (1,), np.float32)

    def _obs(self):
        return {
            "speaker": np.array([self.target, 1.0], np.float32),
            "listener": np.array([0.0, float(self.t)], np.float32),
        }

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.target, self.t = float(self.rng.choice([-0.5, 0.5])), 0
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        reward = -float((actions["listener"][0] - self.target) ** 2)
        self.t += 1
        done = self.t >= 2
        obs = self._obs()
        if done:
            self.agents = []
        names = self.possible_agents
        return obs, dict.fromkeys(names, reward), dict.fromkeys(names, done), dict.fromkeys(names, False), {}


def test_communication_adds_the_other_agents_messages_to_each_observation() -> None:
    env = cooperative_v0.parallel_env(n_agents=3)
    model = MADDPG(env, communication=True, message_dim=2, net_arch=[8], seed=0)
    assert model.input_dim == 8 + 2 * 2 and model.action_dim == 2 + 2
    observations, _ = env.reset(seed=0)
    messages = np.arange(6, dtype=np.float32).reshape(3, 2)
    seen = model._model_observations(observations, messages)
    np.testing.assert_array_equal(seen["agent_1"], np.concatenate([observations["agent_1"], [0, 1, 4, 5]]))
    actions, state = model.predict(observations, deterministic=True)
    assert all(action.shape == (2,) for action in actions.values())  # the env part only
    with th.no_grad():
        first = model.actors.forward_agent(
            0, th.as_tensor(model._model_observations(observations)["agent_0"])[None]
        )
    np.testing.assert_allclose(state[0], first[0, 2:].numpy(), rtol=1e-6)  # the message it sent
    again, _ = model.predict(observations, state=state, deterministic=True)
    assert not np.allclose(again["agent_0"], actions["agent_0"])  # it heard the others this time


def test_maddpg_learns_to_communicate() -> None:
    model = MADDPG(
        SpeakerListener(),
        communication=True,
        message_dim=1,
        learning_starts=200,
        batch_size=64,
        tau=0.05,
        net_arch=[32],
        gamma=0.9,
        seed=0,
    ).learn(1_500)
    mean, _ = evaluate_marl_policy(model, SpeakerListener(), n_eval_episodes=20, seed=5)
    assert mean > -0.35  # without messages the best is -0.5; with them -0.25


def test_local_critics_see_only_their_own_agent() -> None:
    env = cooperative_v0.parallel_env(n_agents=3)
    model = MADDPG(env, critic="local", net_arch=[8], seed=0)
    batch = maddpg_batch(model)
    with th.no_grad():
        q = model.critics(batch.observations, batch.actions, batch.active)
        observations, actions = batch.observations.clone(), batch.actions.clone()
        observations[:, 1:] += 1.0  # every agent but agent 0 changes
        actions[:, 1:] *= -1.0
        changed = model.critics(observations, actions, batch.active)
    np.testing.assert_array_equal(changed[:, 0].numpy(), q[:, 0].numpy())
    assert not np.allclose(changed[:, 1].numpy(), q[:, 1].numpy())
