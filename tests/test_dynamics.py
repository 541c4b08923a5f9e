"""Tests for the probabilistic ensemble dynamics model shared by WorldModelMPC and Dyna."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from gymnasium import spaces

from sb3_ext.common.dynamics import BatchedLinear, ProbabilisticEnsemble

# Intra-op threads only add contention at these sizes (and stall badly on a busy 2-core machine).
th.set_num_threads(1)

A = np.array([[0.9, 0.2], [-0.1, 0.8]])
B = np.array([[0.5], [1.0]])


def linear_data(n: int, rng: np.random.Generator, scale: float = 1.0):
    obs = rng.uniform(-scale, scale, size=(n, 2))
    act = rng.uniform(-1, 1, size=(n, 1))
    next_obs = obs @ A.T + act @ B.T + 0.01 * rng.standard_normal((n, 2))
    reward = -np.sum(obs**2, axis=1) - 0.1 * act[:, 0] ** 2
    terminated = np.abs(next_obs[:, 0]) > 0.8
    return obs.astype(np.float32), act.astype(np.float32), next_obs.astype(np.float32), reward, terminated


@pytest.fixture(scope="module")
def fitted_linear() -> ProbabilisticEnsemble:
    th.manual_seed(0)
    rng = np.random.default_rng(0)
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), n_members=5, n_elites=4, hidden_sizes=(64, 64)
    )
    model.fit(*linear_data(2000, rng), n_epochs=60, batch_size=128, generator=rng)
    return model


def test_batched_linear_matches_per_member_linear():
    layer = BatchedLinear(3, 4, 2)
    x = th.randn(3, 5, 4)
    expected = th.stack([x[e] @ layer.weight[e] + layer.bias[e] for e in range(3)])
    assert th.allclose(layer(x), expected, atol=1e-6)


def test_fits_known_linear_system(fitted_linear):
    rng = np.random.default_rng(1)
    obs, act, next_obs, reward, terminated = linear_data(500, rng)
    pred = fitted_linear.predict(obs, act)
    true_delta = obs @ A.T + act @ B.T - obs  # noise-free target
    delta_mse = ((pred.delta_mean.numpy() - true_delta) ** 2).mean()
    assert delta_mse < 5e-4, delta_mse  # deltas have variance ~0.2: a >400x reduction
    reward_mse = ((pred.reward_mean.numpy() - reward) ** 2).mean()
    assert reward_mse < 0.01 * reward.var(), reward_mse
    term_acc = ((pred.termination_prob.numpy() > 0.5) == terminated).mean()
    assert term_acc > 0.9
    # The aleatoric std of the deltas approaches the true noise (0.01), far below the signal.
    assert float(pred.delta_var.sqrt().mean()) < 0.05


def test_predicted_variance_grows_off_distribution(fitted_linear):
    rng = np.random.default_rng(2)
    obs_in, act_in, *_ = linear_data(500, rng, scale=1.0)
    obs_out = obs_in * 6.0  # far outside the [-1, 1]^2 training region

    def total_var(obs):
        pred = fitted_linear.predict(obs, act_in)
        # epistemic (member disagreement) + aleatoric variance of the delta
        return float((pred.delta_mean.var(0) + pred.delta_var.mean(0)).mean())

    assert total_var(obs_out) > 10 * total_var(obs_in)


def test_disagreement_is_the_elites_spread_and_grows_off_distribution(fitted_linear):
    rng = np.random.default_rng(2)
    obs_in, act_in, *_ = linear_data(500, rng, scale=1.0)
    inside = fitted_linear.disagreement(obs_in, act_in)
    outside = fitted_linear.disagreement(obs_in * 6.0, act_in)
    assert inside.shape == (500,) and float(outside.mean()) > 10 * float(inside.mean())
    # The definition, recomputed: population std over the elites, in units of the delta's training std.
    deltas = fitted_linear.predict(obs_in[:5], act_in[:5]).delta_mean[fitted_linear.elite_indices].numpy()
    expected = (deltas.std(axis=0) / fitted_linear.target_std[:2].numpy()).mean(axis=-1)
    np.testing.assert_allclose(inside[:5].numpy(), expected, rtol=1e-4)
    with pytest.raises(ValueError, match="obs must have shape"):
        fitted_linear.disagreement(np.zeros((5, 3, 2)), np.zeros((5, 3, 1)))


def test_sample_shapes_members_and_determinism(fitted_linear):
    obs = np.zeros((7, 2), np.float32)
    act = np.ones((7, 1), np.float32)
    next_obs, reward, terminated = fitted_linear.sample(
        obs, act, deterministic=True, member_indices=np.zeros(7)
    )
    assert next_obs.shape == (7, 2) and reward.shape == (7,) and terminated.dtype == th.bool
    mean0 = fitted_linear.predict(obs, act).delta_mean[0]
    assert th.allclose(next_obs, mean0)
    # (E, N, d) inputs: block e goes through member e.
    per_member = th.zeros(5, 3, 2)
    nxt, _, _ = fitted_linear.sample(per_member, th.ones(5, 3, 1), deterministic=True)
    assert nxt.shape == (5, 3, 2)
    assert th.allclose(nxt, fitted_linear.predict(np.zeros((3, 2)), np.ones((3, 1))).delta_mean, atol=1e-6)
    g1, g2 = th.Generator().manual_seed(3), th.Generator().manual_seed(3)
    a = fitted_linear.sample(obs, act, generator=g1)[0]
    b = fitted_linear.sample(obs, act, generator=g2)[0]
    assert th.equal(a, b)
    # random members are drawn from the elites only
    assert fitted_linear.elite_indices.shape == (4,)


def test_discrete_actions_one_hot_and_no_heads():
    rng = np.random.default_rng(0)
    th.manual_seed(0)
    model = ProbabilisticEnsemble(
        spaces.Box(-5, 5, (1,)),
        spaces.Discrete(3),
        n_members=2,
        hidden_sizes=(32,),
        learn_reward=False,
        learn_termination=False,
    )
    obs = rng.uniform(-1, 1, (300, 1)).astype(np.float32)
    act = rng.integers(0, 3, 300)
    next_obs = obs + (act[:, None] - 1.0)  # action 0: -1, 1: 0, 2: +1
    stats = model.fit(obs, act, next_obs, n_epochs=25, batch_size=32, generator=rng)
    assert "train_termination_bce" not in stats
    nxt, reward, terminated = model.sample(np.zeros((3, 1)), np.array([0, 1, 2]), deterministic=True)
    assert reward is None and terminated is None
    np.testing.assert_allclose(nxt.numpy()[:, 0], [-1.0, 0.0, 1.0], atol=0.1)
    assert model.encode_actions(np.array([[2]])).tolist() == [[0.0, 0.0, 1.0]]
    # A minibatch of one per member, (members, 1): the trailing 1 is the batch's, not a column.
    members_obs, members_act = th.zeros((2, 1, 1)), th.tensor([[0], [2]])
    assert model._inputs(members_obs, members_act).shape == (2, 1, 4)
    # The fit's last minibatch of an epoch holds one transition when n_train % batch_size == 1.
    model.fit(obs[:66], act[:66], next_obs[:66], n_epochs=1, batch_size=64, holdout_ratio=0.0, generator=rng)


def test_state_dict_round_trip(fitted_linear):
    buffer = io.BytesIO()
    th.save(fitted_linear.state_dict(), buffer)
    buffer.seek(0)
    clone = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), n_members=5, n_elites=4, hidden_sizes=(64, 64)
    )
    clone.load_state_dict(th.load(buffer))
    obs, act = np.ones((4, 2), np.float32), np.ones((4, 1), np.float32)
    assert th.equal(clone.predict(obs, act).delta_mean, fitted_linear.predict(obs, act).delta_mean)
    assert th.equal(clone.elite_indices, fitted_linear.elite_indices)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"observation_space": spaces.Discrete(3)},
            "^observation_space must be a flat gymnasium.spaces.Box, got Discrete",
        ),
        (
            {"observation_space": spaces.Box(-1, 1, (2, 2))},
            "^observation_space must be a flat gymnasium.spaces.Box",
        ),
        (
            {"action_space": spaces.MultiBinary(2)},
            "^action_space must be gymnasium.spaces.Box or Discrete, got MultiBinary$",
        ),
        (
            {"action_space": spaces.Box(-1, 1, (2, 2))},
            r"^action_space must be a flat Box or Discrete, got shape \(2, 2\)$",
        ),
        ({"n_members": 0}, "^n_members must be a positive int, got 0$"),
        ({"n_elites": 0}, "^n_elites must be a positive int, got 0$"),
        ({"n_elites": 6}, r"^n_elites must be in \[1, n_members=5\], got 6$"),
        ({"hidden_sizes": ()}, r"^hidden_sizes must be a non-empty sequence of positive ints, got \(\)$"),
        (
            {"hidden_sizes": (8, 0)},
            r"^hidden_sizes must be a non-empty sequence of positive ints, got \(8, 0\)$",
        ),
        ({"nll_beta": 1.5}, r"^nll_beta must lie in \[0, 1\], got 1.5$"),
    ],
)
def test_invalid_arguments(kwargs, match):
    base = {"observation_space": spaces.Box(-1, 1, (2,)), "action_space": spaces.Box(-1, 1, (1,))}
    with pytest.raises(ValueError, match=match):
        ProbabilisticEnsemble(**{**base, **kwargs})


def test_wrong_action_shape_and_missing_targets():
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), n_members=2, hidden_sizes=(8,)
    )
    with pytest.raises(ValueError, match=r"^actions must have trailing dim 1, got shape \(3, 2\)$"):
        model.predict(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"^obs must have trailing dim 2, got shape \(3, 3\)$"):
        model.predict(np.zeros((3, 3)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"^obs must be \(batch, 2\) or \(2, batch, 2\), got \(3, 4, 2\)$"):
        model.predict(np.zeros((3, 4, 2)), np.zeros((3, 4, 1)))
    with pytest.raises(ValueError, match="^rewards are required when learn_reward=True$"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), np.zeros((4, 2)), None, np.zeros(4))
    with pytest.raises(ValueError, match="^terminations are required when learn_termination=True$"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), np.zeros((4, 2)), np.zeros(4), None)


def test_batched_linear_initialization():
    """PETS' initialization: truncated normal weights with std 1 / (2 sqrt(fan_in)), zero biases."""
    th.manual_seed(0)
    layer = BatchedLinear(3, 400, 300)
    assert layer.weight.shape == (3, 400, 300) and layer.bias.shape == (3, 1, 300)
    assert layer.weight.std().item() == pytest.approx(1 / (2 * 20), rel=0.02)
    assert not layer.bias.any()
    assert repr(layer) == "BatchedLinear(n_members=3, in_features=400, out_features=300)"


@pytest.mark.parametrize("heads", [True, False])
def test_defaults_and_architecture(heads: bool):
    """Five members, all elites, three hidden layers of 200 SiLU units; the head outputs a mean and
    a log-variance per Gaussian target (delta, reward) and a termination logit; Adam at 1e-3 with
    weight decay 5e-5 on the weights only; log-variance bounds start at [-10, 0.5]."""
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), learn_reward=heads, learn_termination=heads
    )
    gauss_dim = 3 if heads else 2
    assert (model.n_members, model.n_elites, model.obs_dim, model.action_dim, model.input_dim) == (
        5,
        5,
        2,
        1,
        3,
    )
    assert (model.learn_reward, model.learn_termination, model.gauss_dim) == (heads, heads, gauss_dim)
    assert (model.logvar_loss_coef, model.nll_beta, model.device) == (0.01, 0.0, th.device("cpu"))
    widths = [(layer.in_features, layer.out_features) for layer in model.hidden_layers]
    assert widths == [(3, 200), (200, 200), (200, 200)]
    assert all(layer.n_members == 5 for layer in [*model.hidden_layers, model.head])
    assert (model.head.in_features, model.head.out_features) == (200, 2 * gauss_dim + int(heads))
    assert isinstance(model.activation, th.nn.SiLU)
    assert th.equal(model.max_logvar.data, th.full((gauss_dim,), 0.5))
    assert th.equal(model.min_logvar.data, th.full((gauss_dim,), -10.0))
    for name, dim in (("input", 3), ("target", gauss_dim)):
        assert th.equal(getattr(model, f"{name}_mean"), th.zeros(dim))
        assert th.equal(getattr(model, f"{name}_std"), th.ones(dim))
    assert th.equal(model.elite_indices, th.arange(5))
    decayed, plain = model.optimizer.param_groups
    assert (decayed["lr"], decayed["weight_decay"], plain["lr"], plain["weight_decay"]) == (
        1e-3,
        5e-5,
        1e-3,
        0.0,
    )
    named = dict(model.named_parameters())
    assert {id(p) for p in decayed["params"]} == {id(p) for n, p in named.items() if n.endswith("weight")}
    assert {id(p) for p in plain["params"]} == {id(p) for n, p in named.items() if not n.endswith("weight")}
    assert len(decayed["params"]) == 4 and len(plain["params"]) == 6  # 4 biases and the 2 log-variance bounds


def test_fit_schedule_holdout_and_elites():
    """fit holds out 10% (default) for ranking, runs n_epochs passes of ceil(n_train / batch_size)
    minibatches (one per member each step), averages the loss terms over the steps, and keeps the
    n_elites members of lowest normalized hold-out MSE."""
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (100, 2)).astype(np.float32)
    act = rng.uniform(-1, 1, (100, 1)).astype(np.float32)
    next_obs = obs + 0.1 * act
    rewards, terminations = -np.abs(obs).sum(1), (obs[:, 0] > 0.8).astype(np.float32)
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), n_members=3, n_elites=2, hidden_sizes=(8,)
    )
    shapes, infos = [], []
    train_step = model.train_step

    def recording_train_step(*batch):
        shapes.append(tuple(batch[0].shape))
        infos.append(train_step(*batch))
        return infos[-1]

    model.train_step = recording_train_step
    stats = model.fit(obs, act, next_obs, rewards, terminations, generator=np.random.default_rng(7))
    assert shapes == [(3, 90, 2)] * 5  # 90 training rows < 256: one step per epoch, 5 epochs
    assert stats["gradient_steps"] == 5.0
    for key in ("nll", "mse", "loss", "termination_bce"):
        assert stats[f"train_{key}"] == pytest.approx(np.mean([info[key] for info in infos]), rel=1e-6)
    # The hold-out rows are the first 10 of the generator's first permutation.
    hold = np.random.default_rng(7).permutation(100)[:10]
    with th.no_grad():
        targets = (
            model._targets(*map(th.as_tensor, (obs[hold], next_obs[hold], rewards[hold]))) - model.target_mean
        ) / model.target_std
        mean, _, _ = model(model._member_inputs(th.as_tensor(obs[hold]), th.as_tensor(act[hold])))
        mse = ((mean - targets) ** 2).mean(dim=(1, 2))
    assert model.elite_indices.tolist() == sorted(th.argsort(mse)[:2].tolist())
    assert stats["holdout_mse"] == pytest.approx(float(th.sort(mse).values[:2].mean()), rel=1e-5)

    shapes.clear()
    stats = model.fit(obs, act, next_obs, rewards, terminations, n_epochs=2, batch_size=32, holdout_ratio=0.0)
    assert [s[1] for s in shapes] == [32, 32, 32, 4] * 2 and np.isnan(stats["holdout_mse"])
    shapes.clear()
    stats = model.fit(obs, act, next_obs, rewards, terminations, batch_size=32, max_gradient_steps=6)
    assert [s[1] for s in shapes] == [32, 32, 26] * 2 and stats["gradient_steps"] == 6.0
    with pytest.raises(ValueError, match="^fit needs at least 2 transitions, got 1$"):
        model.fit(obs[:1], act[:1], next_obs[:1], rewards[:1], terminations[:1])


def test_normalization_statistics():
    """Inputs (obs, action) and targets (delta, reward) are standardized with the data's mean and
    sample std; a constant column (std below 1e-6) and a single row keep std 1."""
    model = ProbabilisticEnsemble(
        spaces.Box(-5, 5, (2,)), spaces.Box(-1, 1, (1,)), n_members=2, hidden_sizes=(4,)
    )
    obs = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]], np.float32)  # the second column is constant
    act = np.array([[1.0], [-1.0], [0.0]], np.float32)
    next_obs, rewards = obs * 2.0, np.array([1.0, 2.0, 6.0], np.float32)
    model.set_normalization(obs, act, next_obs, rewards)
    np.testing.assert_allclose(model.input_mean.numpy(), [2.0, 1.0, 0.0])
    np.testing.assert_allclose(model.input_std.numpy(), [2.0, 1.0, 1.0])
    np.testing.assert_allclose(model.target_mean.numpy(), [2.0, 1.0, 3.0])  # delta = obs
    np.testing.assert_allclose(model.target_std.numpy(), [2.0, 1.0, np.std([1, 2, 6], ddof=1)], rtol=1e-6)
    model.set_normalization(obs[:1], act[:1], next_obs[:1], rewards[:1])
    np.testing.assert_allclose(model.input_std.numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(model.input_mean.numpy(), [0.0, 1.0, 1.0])


def test_loss_is_the_beta_nll_with_soft_bounded_log_variance():
    """The loss written out: members' MLP on normalized inputs, log-variance soft-clipped into
    [min_logvar, max_logvar] with softplus, beta-NLL of the normalized targets, the bound penalty and
    the termination head's binary cross-entropy."""
    th.manual_seed(0)
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)),
        spaces.Box(-1, 1, (1,)),
        n_members=2,
        hidden_sizes=(8, 8),
        nll_beta=0.5,
        logvar_loss_coef=0.1,
    )
    rng = np.random.default_rng(1)
    obs, act = rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=(6, 1)).astype(np.float32)
    next_obs, rewards = rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    terminations = np.array([0, 1, 0, 0, 1, 0], np.float32)
    model.set_normalization(obs, act, next_obs, rewards)
    with th.no_grad():  # tight bounds, so that both softplus clips act
        model.max_logvar.copy_(th.tensor([0.1, -0.2, 0.3]))
        model.min_logvar.copy_(th.tensor([-0.5, -1.0, -0.4]))
    x = (np.concatenate([obs, act], 1) - model.input_mean.numpy()) / model.input_std.numpy()
    x = th.as_tensor(x).expand(2, -1, -1)
    for layer in model.hidden_layers:
        x = F.silu(x @ layer.weight + layer.bias)
    out = x @ model.head.weight + model.head.bias  # (2, 6, 2 * 3 + 1)
    mean, raw = out[..., :3], out[..., 3:6]
    logvar = model.max_logvar - F.softplus(model.max_logvar - raw)
    logvar = model.min_logvar + F.softplus(logvar - model.min_logvar)
    targets = np.concatenate([next_obs - obs, rewards[:, None]], 1)
    targets = th.as_tensor((targets - model.target_mean.numpy()) / model.target_std.numpy())
    nll = 0.5 * (((mean - targets) ** 2 * th.exp(-logvar) + logvar) * th.exp(logvar).detach() ** 0.5).mean()
    bound = 0.1 * (model.max_logvar.sum() - model.min_logvar.sum())
    bce = F.binary_cross_entropy_with_logits(out[..., 6], th.as_tensor(terminations).expand(2, -1))
    loss, info = model.loss(*map(th.as_tensor, (obs, act, next_obs, rewards, terminations)))
    assert loss.item() == pytest.approx((nll + bound + bce).item(), rel=1e-5)
    assert info["nll"] == pytest.approx(nll.item(), rel=1e-5)
    assert info["termination_bce"] == pytest.approx(bce.item(), rel=1e-5)
    assert info["mse"] == pytest.approx(((mean - targets) ** 2).mean().item(), rel=1e-5)
    assert info["loss"] == pytest.approx(loss.item(), rel=1e-6)


def test_fit_default_minibatches_hold_256_transitions():
    """fit's default batch_size is 256: 270 training rows (300, 10% held out) make two steps per
    epoch, of 256 and 14 rows."""
    rng = np.random.default_rng(3)
    obs = rng.uniform(-1, 1, (300, 1)).astype(np.float32)
    act = rng.uniform(-1, 1, (300, 1)).astype(np.float32)
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (1,)),
        spaces.Box(-1, 1, (1,)),
        n_members=2,
        hidden_sizes=(4,),
        learn_reward=False,
        learn_termination=False,
    )
    sizes = []
    train_step = model.train_step
    model.train_step = lambda *batch: sizes.append(batch[0].shape[1]) or train_step(*batch)
    stats = model.fit(obs, act, obs + act, n_epochs=2, generator=rng)
    assert sizes == [256, 14, 256, 14] and stats["gradient_steps"] == 4.0


def tiny_model(**kwargs) -> ProbabilisticEnsemble:
    return ProbabilisticEnsemble(
        spaces.Box(-1, 1, (1,)),
        spaces.Box(-1, 1, (1,)),
        hidden_sizes=(4,),
        learn_reward=False,
        learn_termination=False,
        **kwargs,
    )


def recorded_batches(model: ProbabilisticEnsemble) -> list:
    batches = []
    train_step = model.train_step
    model.train_step = lambda *batch: batches.append(batch[0]) or train_step(*batch)
    return batches


def test_two_transitions_are_enough_and_every_member_resamples_them_with_replacement():
    model = tiny_model(n_members=5)
    batches = recorded_batches(model)
    obs = np.array([[0.25], [-0.5]], np.float32)
    stats = model.fit(
        obs, np.zeros((2, 1)), obs, n_epochs=2, holdout_ratio=0.0, generator=np.random.default_rng(0)
    )
    assert stats["gradient_steps"] == 2.0 and np.isnan(stats["holdout_mse"])
    rows = th.cat(batches, dim=1)[..., 0]  # (members, 2 epochs * 2 rows)
    assert set(rows.flatten().tolist()) == {0.25, -0.5}  # both rows are drawn
    # A bootstrap draws with replacement: some member sees one row twice in an epoch.
    assert any(len(set(batch.tolist())) == 1 for batch in batches[0][..., 0])
    with pytest.raises(ValueError, match="^fit needs at least 2 transitions, got 1$"):
        model.fit(obs[:1], np.zeros((1, 1)), obs[:1])
    with pytest.raises(ValueError, match="^batch_size must be a positive int, got 0$"):
        model.fit(obs, np.zeros((2, 1)), obs, batch_size=0)
    with pytest.raises(ValueError, match=r"^holdout_ratio must be in \[0, 1\), got 1.0$"):
        model.fit(obs, np.zeros((2, 1)), obs, holdout_ratio=1.0)


def test_at_most_5000_transitions_are_held_out():
    model = tiny_model(n_members=1)
    batches = recorded_batches(model)
    obs = np.linspace(-1, 1, 5100, dtype=np.float32)[:, None]
    model.fit(obs, np.zeros((5100, 1)), obs, holdout_ratio=0.99, max_gradient_steps=1)
    assert [tuple(batch.shape) for batch in batches] == [(1, 100, 1)]  # 5100 - 5000 training rows


def test_the_model_computes_on_its_device():
    """The meta device (shapes without data) stands in for an accelerator: an input left on the
    CPU would meet the model's meta tensors and raise."""
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Discrete(3), n_members=2, n_elites=1, hidden_sizes=(4,), device="meta"
    )
    assert model.device == th.device("meta")
    obs, actions = np.zeros((3, 2), np.float32), np.array([0, 1, 2])
    prediction = model.predict(obs, actions)
    assert {t.device.type for t in prediction} == {"meta"}
    next_obs, reward, terminated = model.sample(obs, actions)
    assert next_obs.device.type == reward.device.type == terminated.device.type == "meta"
    assert tuple(next_obs.shape) == (3, 2) and tuple(reward.shape) == (3,)
    assert model.disagreement(obs, actions).device.type == "meta"
    assert model.encode_actions(actions).device.type == "meta"


def test_discrete_actions_are_one_hot_from_the_spaces_start():
    """Discrete(3, start=5) holds the actions 5, 6, 7: action 5 is the first one-hot column. A
    trailing column of actions is dropped unless it is the batch's own dim."""
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Discrete(3, start=5), n_members=2, hidden_sizes=(4,)
    )
    assert model.action_dim == 3 and model.input_dim == 5
    one_hot = model.encode_actions(np.array([7, 5, 6]))
    assert one_hot.dtype == th.float32 and one_hot.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    assert model.encode_actions(np.array([[6], [5]])).tolist() == [[0, 1, 0], [1, 0, 0]]
    assert model.encode_actions(np.array([[6]]), batch_shape=(1, 1)).tolist() == [[[0, 1, 0]]]
    assert model.encode_actions(np.int64(7)).tolist() == [0, 0, 1]


def test_fit_trains_on_whole_transitions_of_the_data_set():
    """Every minibatch fit hands to train_step holds whole transitions of the data set: float32 Box
    actions as given (not rounded), and each row's own next observation, reward and termination."""
    rng = np.random.default_rng(4)
    obs = rng.uniform(-1, 1, (40, 2)).astype(np.float32)
    act = rng.uniform(-1, 1, (40, 1))  # float64, with fractions
    next_obs = obs + 0.25 * act.astype(np.float32)
    rewards = obs[:, 0] * 3.0 + act[:, 0]
    terminations = (obs[:, 1] > 0.0).astype(np.float32)
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), n_members=2, hidden_sizes=(4,)
    )
    batches = []
    train_step = model.train_step
    model.train_step = lambda *batch: batches.append(batch) or train_step(*batch)
    model.fit(obs, act, next_obs, rewards[:, None], terminations, n_epochs=1, batch_size=16, generator=rng)
    assert len(batches) == 3  # 36 training rows in minibatches of 16, 16 and 4
    for b_obs, b_act, b_next, b_rew, b_term in batches:
        assert b_act.dtype == th.float32 and b_rew.dtype == b_term.dtype == th.float32
        assert tuple(b_rew.shape) == tuple(b_term.shape) == tuple(b_obs.shape[:2])  # rewards flattened
        row = np.argmin(np.abs(obs[None, None, :, 0] - b_obs[..., :1].numpy()), axis=-1)  # (members, batch)
        np.testing.assert_array_equal(b_obs.numpy(), obs[row])
        np.testing.assert_allclose(b_act.numpy(), act[row], rtol=1e-6)
        np.testing.assert_array_equal(b_next.numpy(), next_obs[row])
        np.testing.assert_allclose(b_rew.numpy(), rewards[row], rtol=1e-6)
        np.testing.assert_array_equal(b_term.numpy(), terminations[row])
    # train_step converts its inputs alike.
    info = model.train_step(obs[:4], act[:4], next_obs[:4], rewards[:4], terminations[:4])
    assert set(info) == {"nll", "mse", "termination_bce", "loss"}
    # Discrete actions travel as int64 indices.
    discrete = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Discrete(3), n_members=2, hidden_sizes=(4,), learn_termination=False
    )
    batches.clear()
    train_step_d = discrete.train_step
    discrete.train_step = lambda *batch: batches.append(batch) or train_step_d(*batch)
    discrete.fit(obs[:10], np.arange(10) % 3, next_obs[:10], rewards[:10], n_epochs=1, holdout_ratio=0.0)
    assert batches[0][1].dtype == th.long and set(batches[0][1].flatten().tolist()) <= {0, 1, 2}


class ScriptedGenerator:
    """The three draws ``fit`` asks of its generator, scripted: the split, the bootstrap and one
    row of sort keys per epoch."""

    def __init__(self, bootstrap: np.ndarray, keys: list[np.ndarray]) -> None:
        self.bootstrap, self.keys = bootstrap, list(keys)

    def permutation(self, n: int) -> np.ndarray:
        return np.arange(n)

    def integers(self, low: int, high: int, size: tuple) -> np.ndarray:
        assert (low, high, size) == (0, self.bootstrap.shape[1], self.bootstrap.shape)
        return self.bootstrap

    def random(self, size: tuple) -> np.ndarray:
        keys = self.keys.pop(0)
        assert keys.shape == size
        return keys


def test_each_epoch_visits_the_bootstrap_sample_in_the_order_of_that_epochs_float64_keys():
    """Epoch k minibatches the member's bootstrap sample sorted by the k-th draw of keys, compared at
    float64 precision (keys 2^-40 apart are distinct)."""
    model = tiny_model(n_members=1)
    batches = recorded_batches(model)
    obs = np.arange(4, dtype=np.float32)[:, None]  # row i observes i
    tiny = 2.0**-40
    generator = ScriptedGenerator(
        bootstrap=np.array([[3, 1, 2, 0]]),
        keys=[0.5 + tiny * np.array([[3.0, 2.0, 1.0, 0.0]]), np.array([[0.1, 0.4, 0.2, 0.3]])],
    )
    model.fit(obs, np.zeros((4, 1)), obs, n_epochs=2, batch_size=2, holdout_ratio=0.0, generator=generator)
    rows = [batch[0, :, 0].tolist() for batch in batches]
    # Epoch 1 order [3, 2, 1, 0] of the sample [3, 1, 2, 0]; epoch 2 order [0, 2, 3, 1].
    assert rows == [[0.0, 2.0], [1.0, 3.0], [3.0, 2.0], [0.0, 1.0]]


def test_one_gradient_step_reports_its_own_loss_terms_and_hold_out_selection_needs_a_row():
    """With one step the averaged loss terms are that step's; one held-out row is enough to rank
    the members, and with none the elites stay as they were and holdout_mse is NaN."""
    rng = np.random.default_rng(5)
    obs = rng.uniform(-1, 1, (10, 1)).astype(np.float32)
    model = tiny_model(n_members=3, n_elites=1)
    infos = []
    train_step = model.train_step
    model.train_step = lambda *batch: infos.append(train_step(*batch)) or infos[-1]
    stats = model.fit(obs, obs, 2 * obs, max_gradient_steps=1, holdout_ratio=0.1, generator=rng)
    assert len(infos) == 1 and stats["gradient_steps"] == 1.0
    assert {key: stats[f"train_{key}"] for key in infos[0]} == infos[0]
    assert np.isfinite(stats["holdout_mse"])  # int(10 * 0.1) = 1 held-out row
    with th.no_grad():
        model.elite_indices.copy_(th.tensor([2]))
    stats = model.fit(obs, obs, 2 * obs, n_epochs=1, holdout_ratio=0.0, generator=rng)
    assert np.isnan(stats["holdout_mse"]) and model.elite_indices.tolist() == [2]


def test_two_rows_give_their_sample_std_and_a_std_of_exactly_1e_6_is_kept():
    """Two rows are enough for a sample std; only a std below 1e-6 is replaced by 1 (the float32
    value 1.4142135569272796e-06 has a sample std with 0 of exactly float32(1e-6))."""
    x = th.tensor([[0.0, 1.0, 5.0], [1.4142135569272796e-06, 3.0, 5.0]])
    std = ProbabilisticEnsemble._safe_std(x)
    assert std[0] == th.tensor(1e-6)  # kept: not below 1e-6
    assert std[1] == th.tensor(2.0).sqrt() and std[2] == 1.0  # constant column: 1


def test_hidden_layers_of_different_widths_and_of_width_one():
    """The head reads the last hidden layer, whatever the widths; a width of 1 is a positive int; the
    learning rate reaches both parameter groups."""
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)),
        spaces.Box(-1, 1, (1,)),
        n_members=2,
        hidden_sizes=(8, 1, 16),
        learning_rate=0.02,
    )
    widths = [(layer.in_features, layer.out_features) for layer in model.hidden_layers]
    assert widths == [(3, 8), (8, 1), (1, 16)]
    assert (model.head.in_features, model.head.out_features) == (16, 7)
    assert model.predict(np.zeros((4, 2)), np.zeros((4, 1))).delta_mean.shape == (2, 4, 2)
    assert [group["lr"] for group in model.optimizer.param_groups] == [0.02, 0.02]


def test_discrete_actions_of_any_integer_or_float_dtype_and_a_single_column_action():
    """Actions read from a float32 buffer or given as int32 are the same indices; a (1,) array is
    one action, unless the batch itself has shape (1,)."""
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Discrete(3, start=5), n_members=2, hidden_sizes=(4,)
    )
    expected = [[0, 0, 1], [1, 0, 0]]
    for actions in (np.array([7.0, 5.0], np.float32), np.array([7, 5], np.int32), [7, 5]):
        assert model.encode_actions(actions).tolist() == expected
    assert model.encode_actions(np.array([6])).tolist() == [0, 1, 0]
    assert model.encode_actions(np.array([6]), batch_shape=()).tolist() == [0, 1, 0]
    assert model.encode_actions(np.array([6]), batch_shape=(1,)).tolist() == [[0, 1, 0]]


def test_discrete_actions_outside_the_space_are_clamped_to_its_first_and_last_action():
    model = ProbabilisticEnsemble(
        spaces.Box(-1, 1, (2,)), spaces.Discrete(3, start=5), n_members=2, hidden_sizes=(4,)
    )
    assert model.encode_actions(np.array([4, 0, 8, 100])).tolist() == [
        [1, 0, 0],
        [1, 0, 0],
        [0, 0, 1],
        [0, 0, 1],
    ]
