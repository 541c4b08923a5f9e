"""QMIX / VDN with recurrent (GRU) agents: the episode buffer, one exact update written out from
the GRU and QMIX equations, the hidden state carried by ``predict`` and the collection loop,
learning, save/load and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from pettingzoo import ParallelEnv

from gym_advrl.marl import cooperative_v0
from sb3_ext.marl import QMIX, VDN, MultiAgentEpisodeBuffer, evaluate_marl_policy
from tests.test_marl_algorithms import CoordinationGame, qmix_by_hand


def discrete_env(**kwargs) -> ParallelEnv:
    return cooperative_v0.parallel_env(n_agents=3, continuous_actions=False, **kwargs)


# ---------------------------------------------------------------------------- episode buffer
def test_episode_buffer_pads_episodes_and_drops_the_oldest() -> None:
    agents = ["a0", "a1"]
    buffer = MultiAgentEpisodeBuffer(5, agents, spaces.Box(-1, 1, (1,)), spaces.Discrete(3), state_dim=1)

    def episode(length: int, first: float) -> None:
        for t in range(length):
            last = t == length - 1
            acting = agents if t == 0 else agents[:1]  # a1 terminates at step 0 (when length > 1)
            buffer.add(
                {n: [first + t] for n in acting},
                dict.fromkeys(acting, t + 1),
                {n: float(10 * t + i) for i, n in enumerate(acting)},
                {n: [first + t + 1] for n in acting},
                {n: (n == "a1" and length > 1) or last for n in acting},
                [first + t],
                [first + t + 1],
            )
        buffer.end_episode()

    episode(3, 0.0)
    buffer.end_episode()  # nothing pending: no empty episode
    assert buffer.n_episodes == 1 and buffer.size() == 3
    episode(1, 100.0)
    batch = buffer.samples(np.array([0, 1]))
    np.testing.assert_array_equal(batch.filled.numpy(), [[1, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(batch.observations[0, :, 0, 0].numpy(), [0, 1, 2, 3])
    np.testing.assert_array_equal(batch.observations[0, :, 1, 0].numpy(), [0, 0, 0, 0])  # left after step 0
    np.testing.assert_array_equal(batch.observations[1, :, 0, 0].numpy(), [100, 101, 0, 0])
    np.testing.assert_array_equal(batch.states[0, :, 0].numpy(), [0, 1, 2])
    np.testing.assert_array_equal(batch.next_states[0, :, 0].numpy(), [1, 2, 3])
    np.testing.assert_array_equal(batch.actions[0].numpy(), [[1, 1], [2, 0], [3, 0]])
    np.testing.assert_array_equal(batch.active[0].numpy(), [[1, 1], [1, 0], [1, 0]])
    np.testing.assert_array_equal(batch.next_active[0].numpy(), [[1, 0], [1, 0], [0, 0]])
    np.testing.assert_allclose(batch.team_rewards[0].numpy(), [0.5, 10, 20])  # mean over who acted
    np.testing.assert_array_equal(batch.team_terminations[0].numpy(), [0, 0, 1])
    np.testing.assert_array_equal(batch.team_terminations[1, :1].numpy(), [1])
    episode(2, 200.0)  # 6 steps > 5: the oldest episode goes
    assert buffer.n_episodes == 2 and buffer.size() == 3
    assert buffer.samples(np.array([0])).observations[0, 0, 0, 0].item() == 100.0
    with pytest.raises(ValueError, match="actions: unknown agents \\['zz'\\]"):
        buffer.add({}, {"zz": 0}, {}, {}, {}, [0], [0])
    with pytest.raises(ValueError, match="cannot sample from a buffer without a complete episode"):
        MultiAgentEpisodeBuffer(5, agents, spaces.Box(-1, 1, (1,)), spaces.Discrete(3), 1).sample(
            1, np.random.default_rng(0)
        )


# ---------------------------------------------------------------------------- one exact update
def two_episodes(model: QMIX) -> list[dict[str, np.ndarray]]:
    """Episode 0: 3 steps, agent 2 terminates at step 1, agents 0 and 1 at step 2 (the team's
    episode ends). Episode 1: 2 steps, cut by the time limit (bootstrapped). Stored in the model's
    buffer; returned as plain arrays (``present``: the agent is in play at step t <= length)."""
    rng = np.random.default_rng(0)
    n, agents = model.n_agents, model.agents
    episodes = []
    for length, terminate_at in ((3, {2: 1, 0: 2, 1: 2}), (2, {})):
        obs = rng.normal(size=(length + 1, n, model.obs_dim)).astype(np.float32)
        states = rng.normal(size=(length + 1, model.state_dim)).astype(np.float32)
        actions = rng.integers(model.action_space.n, size=(length, n))
        rewards = rng.normal(size=(length, n)).astype(np.float32)
        present = np.ones((length + 1, n), np.float32)
        terminated = np.zeros((length, n), np.float32)
        for i, t in terminate_at.items():
            terminated[t, i] = 1.0
            present[t + 1 :, i] = 0.0
        rewards *= present[:length]  # agents out of play earn nothing
        for t in range(length):
            acting = [agents[i] for i in range(n) if present[t, i]]
            model.replay_buffer.add(
                {a: obs[t, model.agent_index[a]] for a in acting},
                {a: int(actions[t, model.agent_index[a]]) for a in acting},
                {a: float(rewards[t, model.agent_index[a]]) for a in acting},
                {a: obs[t + 1, model.agent_index[a]] for a in acting},
                {a: bool(terminated[t, model.agent_index[a]]) for a in acting},
                states[t],
                states[t + 1],
            )
        model.replay_buffer.end_episode()
        episodes.append(
            dict(
                obs=obs,
                states=states,
                actions=actions,
                rewards=rewards,
                present=present,
                terminated=terminated,
            )
        )
    return episodes


def gru_by_hand(cell: th.nn.GRUCell, x: th.Tensor, h: th.Tensor) -> th.Tensor:
    """``h' = (1 - z) n + z h`` with reset gate ``r``, update gate ``z`` and candidate ``n`` (Cho et
    al. 2014), from the cell's stacked ``[r, z, n]`` weights."""
    w_ir, w_iz, w_in = cell.weight_ih.chunk(3)
    w_hr, w_hz, w_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = th.sigmoid(w_ir @ x + b_ir + w_hr @ h + b_hr)
    z = th.sigmoid(w_iz @ x + b_iz + w_hz @ h + b_hz)
    candidate = th.tanh(w_in @ x + b_in + r * (w_hn @ h + b_hn))
    return (1 - z) * candidate + z * h


def unroll_by_hand(net, episode: dict[str, np.ndarray]) -> th.Tensor:
    """``Q_i(tau_i^t, .)`` for t = 0..length, ``(length + 1, N, A)``: each agent's GRU run from a
    zero hidden state on ``[o_i^t, onehot(a_i^{t-1}), onehot(i)]`` while it is in play (zeros
    after it left: those entries are masked out)."""
    steps, n = episode["present"].shape
    n_actions = net.fc2.out_features
    q = th.zeros(steps, n, n_actions)
    for i in range(n):
        h, last = th.zeros(net.hidden_dim), th.zeros(n_actions)
        for t in range(steps):
            if not episode["present"][t, i]:
                break
            x = th.cat([th.as_tensor(episode["obs"][t, i]), last, th.eye(n)[i]])
            h = gru_by_hand(net.rnn, th.relu(net.fc1.weight @ x + net.fc1.bias), h)
            q[t, i] = net.fc2.weight @ h + net.fc2.bias
            if t < steps - 1:
                last = th.eye(n_actions)[int(episode["actions"][t, i])]
    return q


@pytest.mark.parametrize("mixer", ["qmix", "vdn", "none"])
def test_one_update_is_an_sgd_step_on_the_td_error_of_gru_agents_unrolled_per_episode(mixer: str) -> None:
    model = QMIX(
        discrete_env(),
        mixer=mixer,
        agent_network="gru",
        rnn_hidden_dim=6,
        gamma=0.9,
        learning_rate=0.05,
        seed=0,
    )
    episodes = two_episodes(model)
    batch = model.replay_buffer.samples(np.array([0, 1]))
    with th.no_grad():  # distinct target networks, so that online/target mix-ups show
        for p in [*model.q_net_target.parameters(), *model.mixer_net_target.parameters()]:
            p.add_(0.1 * th.randn_like(p))
    net, target = model.q_net, model.q_net_target

    def mix(mixer_net, qs: th.Tensor, state: th.Tensor) -> th.Tensor:
        if mixer == "qmix":
            return qmix_by_hand(mixer_net, qs[None], state[None])[0]
        return qs.sum() if mixer == "vdn" else qs

    errors, targets, counts = [], [], 0
    for episode in episodes:
        q, present = unroll_by_hand(net, episode), th.as_tensor(episode["present"])
        with th.no_grad():
            q_target = unroll_by_hand(target, episode)
        for t in range(len(episode["actions"])):
            acting, next_in_play = present[t], present[t + 1]
            rewards, ended = th.as_tensor(episode["rewards"][t]), th.as_tensor(episode["terminated"][t])
            with th.no_grad():  # double Q: the online network picks, the target network values
                greedy = q[t + 1].argmax(-1, keepdim=True)
                next_q = q_target[t + 1].gather(-1, greedy)[:, 0] * next_in_play
                next_total = mix(model.mixer_net_target, next_q, th.as_tensor(episode["states"][t + 1]))
                if mixer == "none":
                    y = rewards + 0.9 * (1 - ended) * next_total
                else:
                    team_reward = (rewards * acting).sum() / acting.sum()
                    team_done = float(bool(((ended == 1) | (acting == 0)).all()))
                    y = team_reward + 0.9 * (1 - team_done) * next_total
            taken = q[t].gather(-1, th.as_tensor(episode["actions"][t])[:, None])[:, 0] * acting
            total = mix(model.mixer_net, taken, th.as_tensor(episode["states"][t]))
            if mixer == "none":
                errors.append((((total - y) ** 2) * acting).sum())
                counts += int(acting.sum())
            else:
                errors.append((total - y) ** 2)
                counts += 1
            targets.append(y)
    loss = th.stack(errors).sum() / counts
    params = [*net.parameters(), *model.mixer_net.parameters()]
    grads = th.autograd.grad(loss, params, allow_unused=True)
    expected = [p.detach() - 0.05 * (0 if g is None else g) for p, g in zip(params, grads, strict=True)]
    assert loss.item() > 0
    assert model.loss(batch).item() == pytest.approx(loss.item(), rel=1e-5)
    filled = batch.filled.bool()
    np.testing.assert_allclose(model.td_targets(batch)[filled].numpy(), th.stack(targets).numpy(), rtol=1e-5)

    model.optimizer = th.optim.SGD(params, lr=0.05)
    model.max_grad_norm = 1e9  # no clipping: a plain gradient step
    model.replay_buffer.sample = lambda *args: batch
    model.train(gradient_steps=1, batch_size=2)
    for after, want in zip(params, expected, strict=True):
        np.testing.assert_allclose(after.detach().numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- hidden state
def test_predict_carries_the_hidden_state_and_resets_it_at_episode_starts() -> None:
    env = discrete_env()
    model = QMIX(env, agent_network="gru", rnn_hidden_dim=8, seed=0)
    observations, _ = env.reset(seed=0)
    names = model.agents
    obs = th.as_tensor(np.stack([observations[n] for n in names]))
    ids = th.arange(3)

    def step(hidden: np.ndarray, last: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
        with th.no_grad():
            return model.q_net.step(obs, th.as_tensor(last), ids, th.as_tensor(hidden))

    first, state = model.predict(observations, deterministic=True)
    q, hidden = step(np.zeros((3, 8), np.float32), np.zeros((3, 5), np.float32))
    np.testing.assert_allclose(state[0], hidden.numpy(), rtol=1e-6)
    assert [first[n] for n in names] == q.argmax(-1).tolist()
    np.testing.assert_array_equal(state[1], np.eye(5)[[first[n] for n in names]])
    assert np.abs(state[0]).sum() > 0

    for start in (True, np.array([True])):  # a new episode: as with state=None
        again, restarted = model.predict(observations, state=state, episode_start=start, deterministic=True)
        assert again == first
        np.testing.assert_array_equal(restarted[0], state[0])
        np.testing.assert_array_equal(restarted[1], state[1])

    carried_actions, carried = model.predict(
        observations, state=state, episode_start=np.array([False]), deterministic=True
    )
    q, hidden = step(state[0], state[1])
    np.testing.assert_allclose(carried[0], hidden.numpy(), rtol=1e-6)
    assert [carried_actions[n] for n in names] == q.argmax(-1).tolist()
    assert not np.allclose(carried[0], state[0])  # the same observation, a different history

    _, partial = model.predict({"agent_1": observations["agent_1"]}, state=carried, deterministic=True)
    np.testing.assert_array_equal(partial[0][[0, 2]], carried[0][[0, 2]])  # the others are held
    np.testing.assert_array_equal(partial[1][[0, 2]], carried[1][[0, 2]])
    assert not np.allclose(partial[0][1], carried[0][1])


def test_the_collection_loop_acts_on_the_hidden_state_unrolled_from_each_episode_start() -> None:
    """Greedy collection without training: every stored action is the argmax of the GRU unrolled
    from a zero hidden state at its episode's start (as training unrolls it)."""
    model = QMIX(
        discrete_env(max_cycles=5),
        agent_network="gru",
        rnn_hidden_dim=8,
        exploration_initial_eps=0.0,
        exploration_final_eps=0.0,
        learning_starts=10_000,
        seed=1,
    ).learn(20)
    buffer = model.replay_buffer
    assert buffer.n_episodes == 4
    batch = buffer.samples(np.arange(4))
    with th.no_grad():
        q = model.q_net(batch.observations, batch.actions, model._present(batch))[:, :-1]
    active = batch.active.bool()
    np.testing.assert_array_equal(q.argmax(-1)[active].numpy(), batch.actions[active].numpy())
    # The test can tell: carrying the hidden state over from the previous episode changes actions.
    joined = th.cat([batch.observations[:1, :-1], batch.observations[1:2]], dim=1)
    with th.no_grad():
        carried = model.q_net(joined, th.cat([batch.actions[0], batch.actions[1]])[None], th.ones(1, 11, 3))
    assert (carried[0, 5:10].argmax(-1) != batch.actions[1]).any()
    # An episode cut short by a new learn() call is stored on its own, not joined to the next one.
    model.learn(7)
    model.learn(3)
    assert [len(episode["actions"]) for episode in buffer.episodes][-2:] == [5, 2]


# ---------------------------------------------------------------------------- learning
class RecallGame(ParallelEnv):
    """Two agents, two steps. At step 0 both see a cue (+-1); at step 1 they see ``(0, 1)`` and
    earn 1 if both choose the action the cue named (0 for -1, 1 for +1), else 0. Memoryless
    agents earn 0.5 at best (they cannot tell the cues apart at step 1); remembering the cue earns 1."""

    metadata = {"name": "recall_game"}
    possible_agents = ["first", "second"]

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def observation_space(self, agent):
        return spaces.Box(-1.0, 1.0, (2,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.cue, self.t = int(self.rng.integers(2)), 0
        self.agents = list(self.possible_agents)
        obs = np.array([2.0 * self.cue - 1.0, 0.0], np.float32)
        return dict.fromkeys(self.agents, obs), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        done = self.t == 2
        reward = float(done and all(actions[a] == self.cue for a in self.possible_agents))
        if done:
            self.agents = []
        names = self.possible_agents
        obs = dict.fromkeys(names, np.array([0.0, 1.0], np.float32))
        return obs, dict.fromkeys(names, reward), dict.fromkeys(names, done), dict.fromkeys(names, False), {}


def learner(cls: type, env: ParallelEnv, **kwargs) -> QMIX:
    return cls(
        env,
        learning_rate=5e-3,
        learning_starts=64,
        batch_size=32,
        exploration_fraction=0.6,
        target_update_interval=50,
        seed=0,
        **kwargs,
    )


@pytest.mark.parametrize("cls", [QMIX, VDN])
def test_gru_agents_learn_the_coordination_game_above_random(cls: type) -> None:
    model = learner(cls, CoordinationGame(), agent_network="gru", rnn_hidden_dim=16).learn(800)
    mean, _ = evaluate_marl_policy(model, CoordinationGame(), n_eval_episodes=4)
    assert mean == 1.0  # random play earns 0.375


def test_gru_agents_remember_a_cue_that_mlp_agents_cannot() -> None:
    gru = learner(QMIX, RecallGame(), agent_network="gru", rnn_hidden_dim=16).learn(1_500)
    mean, _ = evaluate_marl_policy(gru, RecallGame(), n_eval_episodes=20, seed=1)
    assert mean == 1.0
    mlp = learner(QMIX, RecallGame(), net_arch=[16]).learn(1_500)
    mean, _ = evaluate_marl_policy(mlp, RecallGame(), n_eval_episodes=20, seed=1)
    assert mean <= 0.75  # memoryless: 0.5 expected, whatever it learned


# ---------------------------------------------------------------------------- save / load, errors
def test_save_load_gives_identical_actions_while_carrying_the_state(tmp_path) -> None:
    env = discrete_env(max_cycles=10)
    model = VDN(env, agent_network="gru", rnn_hidden_dim=8, learning_starts=20, batch_size=4, seed=2).learn(
        60
    )
    model.save(tmp_path / "model.zip")
    loaded = VDN.load(tmp_path / "model.zip")
    assert loaded.agent_network == "gru" and loaded.rnn_hidden_dim == 8 and loaded.obs_last_action
    observations, _ = env.reset(seed=5)
    ours = theirs = None
    while env.agents:
        actions, ours = model.predict(observations, state=ours, deterministic=True)
        same, theirs = loaded.predict(observations, state=theirs, deterministic=True)
        assert actions == same
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])
        observations, *_ = env.step(actions)
    resumed = VDN.load(tmp_path / "model.zip", env=env).learn(20, reset_num_timesteps=False)
    assert resumed.num_timesteps == 80 and resumed.replay_buffer.n_episodes == 2


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: QMIX(CoordinationGame(), agent_network="lstm"),
            "agent_network must be one of \\('mlp', 'gru'\\), got 'lstm'",
        ),
        (lambda: VDN(CoordinationGame(), agent_network="rnn"), "agent_network must be one of"),
        (lambda: QMIX(CoordinationGame(), agent_network="gru", rnn_hidden_dim=0), "rnn_hidden_dim"),
        (lambda: QMIX(CoordinationGame(), obs_last_action=True), "obs_last_action: only agent_network='gru'"),
        (
            lambda: QMIX(CoordinationGame(), agent_network="gru", obs_agent_id="yes"),
            "obs_agent_id must be True",
        ),
        (
            lambda: QMIX(CoordinationGame(), agent_network="gru").predict(
                {"first": np.zeros(2)}, state=np.zeros((2, 64))
            ),
            "state: expected predict's \\(hidden states \\(2, 64\\), last actions \\(2, 2\\)\\)",
        ),
    ],
)
def test_bad_recurrent_arguments_raise_value_errors_naming_them(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_inputs_follow_the_options() -> None:
    plain = QMIX(CoordinationGame(), agent_network="gru", obs_agent_id=False, obs_last_action=False)
    assert plain.q_net.fc1.in_features == 2
    full = QMIX(CoordinationGame(), agent_network="gru")
    assert full.q_net.fc1.in_features == 2 + 2 + 2  # observation, last action, agent id
    assert QMIX(CoordinationGame(), obs_agent_id=False, net_arch=[4]).q_net.net[0].in_features == 2
