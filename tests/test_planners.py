"""Planner tests: CEM and random shooting find known optima; trajectory sampling and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_ext.common.dynamics import ProbabilisticEnsemble
from sb3_ext.common.planners import (
    CEMPlanner,
    RandomShootingPlanner,
    SamplingPlanner,
    trajectory_sampling_returns,
)

# Intra-op threads only add contention at these sizes (and stall badly on a busy 2-core machine).
th.set_num_threads(1)

# Known linear dynamics x' = x + GAIN * a and quadratic reward -(x'^2) - COST * a^2.
GAIN, COST, HORIZON = 0.5, 0.1, 5


def lq_returns(obs: th.Tensor, seqs: th.Tensor) -> th.Tensor:
    """Exact returns (B, P) of action sequences (B, P, H, 1) from states (B, 1)."""
    actions = seqs[..., 0]
    states = obs[:, None, :] + GAIN * th.cumsum(actions, dim=-1)
    return -(states**2).sum(-1) - COST * (actions**2).sum(-1)


def lq_optimum(x0: float) -> np.ndarray:
    """The unconstrained optimal sequence, by linear least squares on the stacked residuals."""
    lower = np.tril(np.ones((HORIZON, HORIZON)))
    design = np.vstack([GAIN * lower, np.sqrt(COST) * np.eye(HORIZON)])
    target = np.concatenate([-x0 * np.ones(HORIZON), np.zeros(HORIZON)])
    return np.linalg.lstsq(design, target, rcond=None)[0]


def lq_reward_fn(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    return -(next_obs[..., 0] ** 2) - COST * action[..., 0] ** 2


def test_cem_finds_quadratic_optimum_for_a_batch():
    optimum = np.stack([lq_optimum(0.5), lq_optimum(-0.3)])
    assert np.all(np.abs(optimum) < 1.0)  # the box constraint is inactive: a true interior optimum
    planner = CEMPlanner(spaces.Box(-1, 1, (1,)), HORIZON, population_size=300, n_elites=30, n_iterations=10)
    obs = th.tensor([[0.5], [-0.3]])
    result = planner.plan(obs, lq_returns, generator=th.Generator().manual_seed(0))
    assert result.action.shape == (2, 1) and result.plan.shape == (2, HORIZON, 1)
    np.testing.assert_allclose(result.plan[..., 0].numpy(), optimum, atol=0.05)
    # The CEM distribution has collapsed onto the optimum.
    assert float(result.action_std.max()) < 0.05


def test_cem_warm_start_shift_and_alpha():
    planner = CEMPlanner(
        spaces.Box(-2, 2, (1,)), 4, population_size=10, n_elites=1, n_iterations=1, alpha=0.5
    )
    plan = th.arange(8, dtype=th.float32).reshape(2, 4, 1) / 10
    shifted = planner.shift(plan)
    np.testing.assert_allclose(shifted[0, :, 0].numpy(), [0.1, 0.2, 0.3, 0.0])
    # The warm-start mean is itself a candidate; as the single elite it keeps the mean, and the
    # variance shrinks to alpha * initial variance (initial std: 0.25 * range = 1).
    result = planner.plan(th.zeros(2, 1), lambda o, s: -((s - shifted[:, None]) ** 2).sum((-1, -2)), shifted)
    np.testing.assert_allclose(result.plan.numpy(), shifted.numpy(), atol=1e-6)
    np.testing.assert_allclose(result.action_std.numpy(), np.full((2, 1), np.sqrt(0.5)), rtol=1e-5)
    with pytest.raises(ValueError, match="warm_start"):
        planner.plan(th.zeros(2, 1), lq_returns, th.zeros(2, 3, 1))


def test_random_shooting_finds_best_discrete_sequence():
    # x' = x + 0.5 * (a - 1): action 0 moves down, 1 stays, 2 moves up; reward -(x')^2.
    def returns(obs, seqs):
        states = obs[:, None, :1] + 0.5 * th.cumsum(seqs.float() - 1.0, dim=-1)
        return -(states**2).sum(-1)

    planner = RandomShootingPlanner(spaces.Discrete(3), horizon=3, population_size=300)
    result = planner.plan(th.tensor([[1.0], [-1.0], [0.0]]), returns, generator=th.Generator().manual_seed(0))
    np.testing.assert_array_equal(result.plan.numpy(), [[0, 0, 1], [2, 2, 1], [1, 1, 1]])
    np.testing.assert_allclose(result.expected_return.numpy(), [-0.25, -0.25, 0.0])
    # The shifted warm start is always a candidate, so a known best plan is kept.
    warm = planner.shift(result.plan, th.Generator().manual_seed(1))
    again = RandomShootingPlanner(spaces.Discrete(3), horizon=3, population_size=1)
    kept = again.plan(th.tensor([[0.5], [-0.5], [0.0]]), returns, warm)
    np.testing.assert_array_equal(kept.plan.numpy(), warm.numpy())


@pytest.fixture(scope="module")
def linear_ensemble() -> ProbabilisticEnsemble:
    th.manual_seed(0)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1.5, 1.5, (1500, 1)).astype(np.float32)
    act = rng.uniform(-1, 1, (1500, 1)).astype(np.float32)
    model = ProbabilisticEnsemble(
        spaces.Box(-5, 5, (1,)),
        spaces.Box(-1, 1, (1,)),
        n_members=5,
        hidden_sizes=(32, 32),
        learn_reward=False,
        learn_termination=False,
    )
    model.fit(obs, act, obs + GAIN * act, n_epochs=60, batch_size=128, generator=rng)
    return model


def test_trajectory_sampling_plans_the_lq_optimum_with_a_learned_model(linear_ensemble):
    planner = CEMPlanner(spaces.Box(-1, 1, (1,)), HORIZON, population_size=200, n_elites=20, n_iterations=8)
    generator = th.Generator().manual_seed(0)

    def score(obs, seqs):
        return trajectory_sampling_returns(linear_ensemble, obs, seqs, 10, lq_reward_fn, generator=generator)

    result = planner.plan(th.tensor([[0.5], [-0.3]]), score, generator=generator)
    np.testing.assert_allclose(
        result.action[:, 0].numpy(), [lq_optimum(0.5)[0], lq_optimum(-0.3)[0]], atol=0.1
    )


def test_trajectory_sampling_termination_masks_later_rewards(linear_ensemble):
    seqs = th.ones(1, 1, 4, 1)  # x: 0 -> .5 -> 1 -> 1.5 -> 2 (approximately, from the model)

    def reward_fn(obs, action, next_obs):
        return np.ones(obs.shape[:-1])

    def termination_fn(next_obs):
        return next_obs[..., 0] > 0.75  # the 2nd transition terminates: it counts, later ones not

    ret = trajectory_sampling_returns(linear_ensemble, th.zeros(1, 1), seqs, 5, reward_fn, termination_fn)
    np.testing.assert_allclose(ret.numpy(), [[2.0]])
    discounted = trajectory_sampling_returns(
        linear_ensemble, th.zeros(1, 1), seqs, 5, reward_fn, discount=0.5
    )
    np.testing.assert_allclose(discounted.numpy(), [[1 + 0.5 + 0.25 + 0.125]])


def test_wrong_reward_and_termination_shapes_are_clear_errors(linear_ensemble):
    seqs = th.zeros(2, 3, HORIZON, 1)

    def keeps_trailing_dim(obs, action, next_obs):
        return -(next_obs**2)  # (..., 1) instead of (...)

    with pytest.raises(
        ValueError,
        match=r"reward_fn must return one value per transition.*\(5, 5, 6\), got shape \(5, 5, 6, 1\)",
    ):
        trajectory_sampling_returns(linear_ensemble, th.zeros(2, 1), seqs, 5, keeps_trailing_dim)
    with pytest.raises(ValueError, match="termination_fn must return one value per transition"):
        trajectory_sampling_returns(linear_ensemble, th.zeros(2, 1), seqs, 5, lq_reward_fn, lambda x: x)
    with pytest.raises(ValueError, match="n_particles must be a multiple of n_members=5"):
        trajectory_sampling_returns(linear_ensemble, th.zeros(2, 1), seqs, 3, lq_reward_fn)
    with pytest.raises(
        ValueError,
        match=r"^a reward_fn is required when the model has no reward head \(learn_reward=False\)$",
    ):
        trajectory_sampling_returns(linear_ensemble, th.zeros(2, 1), seqs, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon": 0}, "^horizon must be a positive int, got 0$"),
        ({"population_size": 0}, "^population_size must be a positive int, got 0$"),
        ({"n_elites": 0}, "^n_elites must be a positive int, got 0$"),
        ({"population_size": 5, "n_elites": 6}, "^n_elites must be <= population_size=5, got 6$"),
        ({"n_iterations": 1.5}, "^n_iterations must be a positive int, got 1.5$"),
        ({"alpha": 1.0}, r"^alpha must be in \[0, 1\), got 1.0$"),
        ({"alpha": -0.1}, r"^alpha must be in \[0, 1\), got -0.1$"),
        ({"initial_std": 0.0}, "^initial_std must be > 0, got 0.0$"),
        ({"action_space": spaces.Discrete(2)}, "Box"),
        ({"action_space": spaces.Box(-np.inf, np.inf, (1,))}, "^CEMPlanner needs finite action bounds$"),
    ],
)
def test_cem_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CEMPlanner(**{"action_space": spaces.Box(-1, 1, (1,)), **kwargs})


def test_random_shooting_rejects_box():
    with pytest.raises(ValueError, match="Discrete"):
        RandomShootingPlanner(spaces.Box(-1, 1, (1,)))


def test_random_shooting_samples_the_action_space_from_its_start():
    """Discrete(3, start=5) holds the actions 5, 6, 7: cold starts, candidates and plans stay in it."""
    seen = []

    def returns(obs, seqs):
        seen.append(seqs)
        return -((seqs - 6.0) ** 2).sum(-1)  # best: action 6 at every step

    planner = RandomShootingPlanner(spaces.Discrete(3, start=5), horizon=4, population_size=200)
    generator = th.Generator().manual_seed(0)
    cold = planner.initial_plan(50, generator)
    assert cold.shape == (50, 4) and cold.dtype == th.long
    assert set(cold.unique().tolist()) == {5, 6, 7}
    result = planner.plan(th.zeros(2, 1), returns, planner.shift(cold[:2], generator), generator)
    assert set(seen[0].unique().tolist()) == {5, 6, 7}
    np.testing.assert_array_equal(result.plan.numpy(), np.full((2, 4), 6))
    np.testing.assert_array_equal(result.action.numpy(), [6, 6])
    np.testing.assert_array_equal(result.expected_return.numpy(), [0.0, 0.0])


def test_random_shooting_defaults():
    planner = RandomShootingPlanner(spaces.Discrete(2))
    assert (planner.horizon, planner.population_size, planner.device) == (15, 200, th.device("cpu"))
    shapes = []
    planner.plan(th.zeros(3, 1), lambda obs, seqs: shapes.append(seqs.shape) or seqs.sum(-1).float())
    assert shapes == [(3, 200, 15)]


@pytest.mark.parametrize(
    "make_planner",
    [
        lambda: RandomShootingPlanner(
            spaces.Discrete(4, start=2), horizon=5, population_size=7, device="meta"
        ),
        lambda: CEMPlanner(spaces.Box(-1, 1, (2,)), horizon=5, population_size=7, n_elites=2, device="meta"),
    ],
    ids=["random_shooting", "cem"],
)
def test_planners_create_their_tensors_on_their_device(make_planner):
    """Plans live on the planner's device. The meta device (shapes without data) stands in for an
    accelerator: a tensor made on the CPU by mistake meets a meta one and raises. (The planners are
    built inside the test, so that the constructor runs as part of it.)"""
    planner = make_planner()
    assert planner.device == th.device("meta")
    cold = planner.initial_plan(3)
    assert cold.device.type == "meta" and tuple(cold.shape) == (3, *planner.plan_shape)
    assert planner.shift(cold).device.type == "meta"
    obs = th.zeros(3, 2, device="meta")
    for warm in (None, cold):
        result = planner.plan(obs, lambda o, seqs: seqs.reshape(*seqs.shape[:2], -1).sum(-1).float(), warm)
        assert {result.action.device.type, result.plan.device.type, result.expected_return.device.type} == {
            "meta"
        }
        assert tuple(result.plan.shape) == (3, *planner.plan_shape)


def test_cem_defaults_and_boundary_arguments():
    planner = CEMPlanner(spaces.Box(-2, 2, (3,)))
    assert (planner.horizon, planner.population_size, planner.n_elites, planner.n_iterations) == (
        15,
        100,
        10,
        3,
    )
    assert (planner.alpha, planner.initial_std, planner.device) == (0.1, 0.25, th.device("cpu"))
    # All candidates may be elites, and alpha = 0 forgets the previous iterate.
    edge = CEMPlanner(spaces.Box(-1, 1, (1,)), horizon=2, population_size=4, n_elites=4, alpha=0.0)
    assert (edge.n_elites, edge.alpha) == (4, 0.0)


def test_score_function_output_is_checked_and_nan_returns_are_never_chosen():
    planner = RandomShootingPlanner(spaces.Discrete(2), horizon=1, population_size=20)
    with pytest.raises(
        ValueError, match=r"^score_fn must return shape \(3, 20\) \(batch, population\), got \(3, 20, 1\)$"
    ):
        planner.plan(th.zeros(3, 1), lambda obs, seqs: th.zeros(3, 20, 1))

    def nan_for_action_1(obs, seqs):  # action 1 scores NaN (a diverged model), action 0 scores -100
        return th.where(seqs[..., 0] == 1, th.tensor(float("nan")), th.tensor(-100.0))

    warm = th.ones(3, 1, dtype=th.long)  # the warm start (always a candidate) is the NaN action
    result = planner.plan(th.zeros(3, 1), nan_for_action_1, warm, th.Generator().manual_seed(0))
    np.testing.assert_array_equal(result.plan.numpy(), np.zeros((3, 1)))
    np.testing.assert_array_equal(result.expected_return.numpy(), [-100.0, -100.0, -100.0])


def test_cem_moves_its_bounds_with_to():
    planner = CEMPlanner(spaces.Box(-1, 2, (2,)), horizon=3, population_size=6, n_elites=2)
    assert planner.to("meta") is planner and planner.device == th.device("meta")
    assert planner.low.device.type == planner.high.device.type == "meta"
    assert planner.initial_plan(2).device.type == "meta"


def test_random_shooting_draws_its_cold_starts_and_candidates_from_the_given_generator():
    """The generator alone decides the draws: the same seed gives torch's own draws of that seed,
    whatever the global random state."""
    planner = RandomShootingPlanner(spaces.Discrete(4, start=-1), horizon=3, population_size=5)
    th.manual_seed(123)
    cold = planner.initial_plan(2, th.Generator().manual_seed(7))
    expected = th.randint(4, (2, 3), generator=th.Generator().manual_seed(7)) - 1
    np.testing.assert_array_equal(cold.numpy(), expected.numpy())
    seen = []
    th.manual_seed(456)
    planner.plan(
        th.zeros(2, 1),
        lambda obs, seqs: seen.append(seqs) or seqs.sum(-1).float(),
        None,
        th.Generator().manual_seed(9),
    )
    candidates = th.randint(4, (2, 5, 3), generator=th.Generator().manual_seed(9)) - 1
    np.testing.assert_array_equal(seen[0].numpy(), candidates.numpy())


def test_cem_iterations_are_the_exact_elite_mean_and_variance_updates():
    """Two CEM iterations written out: candidates mean + std * noise (the generator's draws, the
    mean itself first), clipped to the box; the n_elites best refit mean and variance with
    smoothing alpha: mean <- alpha mean + (1 - alpha) elite_mean, var <- alpha var + (1 - alpha) elite_var."""
    low, high = np.array([-2.0, -1.0], np.float32), np.array([1.0, 3.0], np.float32)
    batch, population, elites, horizon, alpha = 2, 6, 3, 3, 0.3
    planner = CEMPlanner(
        spaces.Box(low, high), horizon, population, elites, n_iterations=2, alpha=alpha, initial_std=0.4
    )
    target = th.tensor([[0.4, 2.0], [-1.5, 0.0]])

    def score(obs, seqs):  # (B, P, H, 2) -> (B, P): closeness of every step to the row's target
        return -((seqs - target[:, None, None, :]) ** 2).sum((-1, -2)) + obs

    obs = th.tensor([[1.0], [-2.0]])
    result = planner.plan(obs, score, generator=th.Generator().manual_seed(4))

    low_t, high_t = th.as_tensor(low), th.as_tensor(high)
    mean = ((low_t + high_t) / 2).expand(batch, horizon, 2)  # the box's middle: (-0.5, 1.0)
    np.testing.assert_allclose(mean[0, 0].numpy(), [-0.5, 1.0])
    var = (0.4 * (high_t - low_t)).expand(batch, horizon, 2) ** 2
    generator = th.Generator().manual_seed(4)
    for _ in range(2):
        noise = th.randn((batch, population - 1, horizon, 2), generator=generator)
        candidates = th.cat([mean[:, None], mean[:, None] + var.sqrt()[:, None] * noise], dim=1)
        candidates = th.minimum(th.maximum(candidates, low_t), high_t)
        returns = score(obs, candidates)
        best = th.argsort(returns, dim=1, descending=True)[:, :elites]
        chosen = th.stack([candidates[b, best[b]] for b in range(batch)])  # (B, elites, H, 2)
        elite_returns = th.stack([returns[b, best[b]] for b in range(batch)])
        elite_mean = chosen.mean(dim=1)
        elite_var = ((chosen - elite_mean[:, None]) ** 2).mean(dim=1)
        mean = alpha * mean + (1 - alpha) * elite_mean
        var = alpha * var + (1 - alpha) * elite_var
    np.testing.assert_allclose(result.plan.numpy(), mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.action.numpy(), mean[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.action_std.numpy(), var[:, 0].sqrt().numpy(), rtol=1e-5, atol=1e-6)
    assert result.expected_return.shape == (batch,)
    np.testing.assert_allclose(result.expected_return.numpy(), elite_returns.mean(dim=1).numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    ("make_planner", "warm", "dtype"),
    [
        (
            lambda: CEMPlanner(spaces.Box(-1, 1, (2,)), 3, 5, 2, device="meta"),
            th.zeros(2, 3, 2, dtype=th.float64),
            th.float32,
        ),
        (
            lambda: RandomShootingPlanner(spaces.Discrete(3), 3, 5, device="meta"),
            th.ones(2, 3, dtype=th.int32),
            th.long,
        ),
    ],
    ids=["cem", "random_shooting"],
)
def test_a_warm_start_is_moved_to_the_planners_device_and_dtype(make_planner, warm, dtype):
    """A warm start made on the CPU, in another dtype, is converted: the plan is on the planner's
    (meta) device, in its plan dtype."""
    planner = make_planner()
    seen = []

    def score(obs, seqs):
        seen.append(seqs)
        return seqs.reshape(*seqs.shape[:2], -1).float().sum(-1)

    result = planner.plan(th.zeros(2, 1, device="meta"), score, warm)
    assert seen[0].device.type == "meta" and seen[0].dtype == dtype
    assert result.plan.device.type == "meta" and result.plan.dtype == dtype


def test_cem_bounds_are_float32_tensors_on_its_device_and_must_be_finite_and_flat():
    planner = CEMPlanner(spaces.Box(-1.0, 2.0, (2,), dtype=np.float64), 3, 4, 2, device="meta")
    assert planner.device == th.device("meta")
    for bound in (planner.low, planner.high):
        assert bound.device.type == "meta" and bound.dtype == th.float32 and tuple(bound.shape) == (2,)
    cpu = CEMPlanner(spaces.Box(-1.0, 2.0, (2,), dtype=np.float64), 3, 4, 2)
    assert cpu.low.dtype == cpu.high.dtype == th.float32
    assert cpu.low.tolist() == [-1.0, -1.0] and cpu.high.tolist() == [2.0, 2.0]
    for low, high in ((-1.0, np.inf), (-np.inf, 1.0)):
        with pytest.raises(ValueError, match="^CEMPlanner needs finite action bounds$"):
            CEMPlanner(spaces.Box(low, high, (1,)))
    with pytest.raises(
        ValueError, match=r"^CEMPlanner needs a flat Box action space, got Box\(-1.0, 1.0, \(2, 2\)"
    ):
        CEMPlanner(spaces.Box(-1, 1, (2, 2)))


def test_sampling_planner_checks_its_arguments_and_plans_on_the_cpu_by_default():
    base = SamplingPlanner(4, 9)
    assert (base.horizon, base.population_size, base.device) == (4, 9, th.device("cpu"))
    assert SamplingPlanner(4, 9, "meta").device == th.device("meta")
    with pytest.raises(ValueError, match="^horizon must be a positive int, got 0$"):
        RandomShootingPlanner(spaces.Discrete(2), horizon=0)
    with pytest.raises(ValueError, match="^population_size must be a positive int, got 0$"):
        RandomShootingPlanner(spaces.Discrete(2), population_size=0)
    with pytest.raises(ValueError, match="^horizon must be a positive int, got 2.5$"):
        SamplingPlanner(2.5, 9)


def test_shift_appends_a_cold_start_step_drawn_from_the_given_generator():
    planner = RandomShootingPlanner(spaces.Discrete(5, start=2), horizon=4, population_size=3)
    plan = th.tensor([[2, 3, 4, 5], [6, 5, 4, 3]])
    th.manual_seed(99)
    shifted = planner.shift(plan, th.Generator().manual_seed(11))
    cold = th.randint(5, (2, 4), generator=th.Generator().manual_seed(11)) + 2
    np.testing.assert_array_equal(shifted[:, :3].numpy(), plan[:, 1:].numpy())
    np.testing.assert_array_equal(shifted[:, 3].numpy(), cold[:, 0].numpy())
