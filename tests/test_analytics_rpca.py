"""Robust PCA (specs/analytics.md section 6): recovery of known low-rank plus sparse matrices,
the defaults and the convergence report, refused inputs, and meter-day scores."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from protocols.analytics import rpca
from protocols.analytics.data import LoadData
from protocols.analytics.rpca import RpcaConfig, pcp, rpca_scores
from protocols.errors import ParameterError


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """The timings these tests rely on are one core's: a threaded BLAS on a busy machine can be
    40 times slower on these small matrices (measured, section 6.2)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _low_rank_plus_sparse(n: int, rank: int, fraction: float, seed: int, magnitude: float = 500.0):
    """L0 = X Y^T with standard normal factors; S0 on a uniformly random support of the given
    fraction, values uniform in [-magnitude, magnitude] (the setting of Lin, Chen and Ma 2010)."""
    rng = np.random.default_rng(seed)
    L0 = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, n))
    support = rng.random((n, n)) < fraction
    S0 = np.where(support, rng.uniform(-magnitude, magnitude, (n, n)), 0.0)
    return L0, S0, support


def _relative_error(L: np.ndarray, L0: np.ndarray) -> float:
    return float(np.linalg.norm(L - L0) / np.linalg.norm(L0))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), svd=st.sampled_from(rpca.SVD_METHODS))
def test_reaches_the_pcp_optimum_on_small_low_rank_plus_sparse(seed: int, svd: str) -> None:
    """On every instance the solver converges and ends no worse than the truth under the PCP
    objective. Exact recovery of L0 itself is a high-probability property, not a certainty: on
    seed 26737 (found by hypothesis) the optimum is a different matrix (objective 5434.842 against
    the truth's 5434.906, relative error 0.031 at rho 1.1, 1.05 and 1.02), so recovery is checked
    as a rate below."""
    L0, S0, _ = _low_rank_plus_sparse(60, 3, 0.05, seed)
    res = pcp(L0 + S0, svd=svd, seed=seed)
    assert res.converged and res.residual < 1e-7
    lam = 1 / math.sqrt(60)
    assert _objective(res.L, res.S, lam) <= _objective(L0, S0, lam) * (1 + 1e-6)


@pytest.mark.parametrize("svd", rpca.SVD_METHODS)
def test_recovers_small_low_rank_plus_sparse_on_seeds_0_to_99(svd: str) -> None:
    """60 x 60, rank 3, 5% corruption, seeds 0..99: L0 within 1e-4, the support of S0 and the rank
    recovered on each of these seeds, in every SVD mode (measured: all pass at the default rho 1.1)."""
    failures = []
    for seed in range(100):
        L0, S0, support = _low_rank_plus_sparse(60, 3, 0.05, seed)
        res = pcp(L0 + S0, svd=svd, seed=seed)
        if not (res.converged and _relative_error(res.L, L0) < 1e-4
                and np.array_equal(np.abs(res.S) > 1e-3, support)
                and np.linalg.matrix_rank(res.L, tol=1e-6 * np.linalg.norm(res.L, 2)) == 3):
            failures.append(seed)
    assert failures == []


def _objective(L: np.ndarray, S: np.ndarray, lam: float) -> float:
    return float(np.linalg.svd(L, compute_uv=False).sum() + lam * np.abs(S).sum())


@pytest.mark.parametrize("seed", [92, 133, 381, 451])
def test_seeds_where_a_fast_penalty_growth_stops_early(seed: int) -> None:
    """With rho = 1.5 (Lin, Chen and Ma's choice) these stop at a feasible, non-optimal point;
    the default rho = 1.1 reaches the truth (section 6.2)."""
    L0, S0, _ = _low_rank_plus_sparse(60, 3, 0.05, seed)
    lam = 1 / math.sqrt(60)
    fast = pcp(L0 + S0, rho=1.5)
    assert fast.converged and _objective(fast.L, fast.S, lam) > _objective(L0, S0, lam)
    res = pcp(L0 + S0)
    assert res.converged and _relative_error(res.L, L0) < 1e-5


@pytest.mark.parametrize("svd", ["auto", "full"])
def test_200_rank_10(svd: str) -> None:
    L0, S0, support = _low_rank_plus_sparse(200, 10, 0.05, 7)
    res = pcp(L0 + S0, svd=svd)
    assert res.converged
    assert _relative_error(res.L, L0) <= 1e-5
    assert np.array_equal(np.abs(res.S) > 1e-3, support)


def test_500_rank_25_target() -> None:
    """The issue's target: 500 x 500, rank 25, 5 % gross corruption, relative error <= 1e-5."""
    L0, S0, _ = _low_rank_plus_sparse(500, 25, 0.05, 2025)
    res = pcp(L0 + S0)
    assert res.converged and res.iterations < 100
    assert _relative_error(res.L, L0) <= 1e-5


def test_rectangular_and_sign_corruption() -> None:
    rng = np.random.default_rng(3)
    L0 = rng.standard_normal((120, 4)) @ rng.standard_normal((4, 80))
    support = rng.random(L0.shape) < 0.05
    S0 = np.where(support, rng.choice([-1.0, 1.0], L0.shape) * np.abs(L0).max(), 0.0)
    res = pcp(L0 + S0)
    assert res.converged and _relative_error(res.L, L0) < 1e-5
    assert np.array_equal(np.abs(res.S) > 1e-3, support)


def test_default_lambda_is_one_over_sqrt_of_larger_side() -> None:
    rng = np.random.default_rng(5)
    M = rng.standard_normal((30, 70))
    a = pcp(M)
    b = pcp(M, lam=1 / math.sqrt(70))
    c = pcp(M, lam=1 / math.sqrt(30))
    assert np.array_equal(a.L, b.L) and np.array_equal(a.S, b.S)
    assert not np.allclose(a.S, c.S)


def test_non_convergence_is_reported() -> None:
    L0, S0, _ = _low_rank_plus_sparse(60, 3, 0.05, 11)
    res = pcp(L0 + S0, max_iter=3)
    assert not res.converged and res.iterations == 3 and res.residual >= 1e-7
    done = pcp(L0 + S0)
    assert done.converged and done.iterations > 3


def test_zero_matrix_and_lambda_extremes() -> None:
    res = pcp(np.zeros((4, 5)))
    assert res.converged and res.iterations == 0 and not res.L.any() and not res.S.any()
    M = np.random.default_rng(1).standard_normal((20, 20))
    huge = pcp(M, lam=1e6)   # an l1 weight this large leaves S empty: L = M
    assert not huge.S.any() and np.allclose(huge.L, M)


def test_input_not_modified_and_ints_accepted() -> None:
    M = np.arange(12, dtype=np.int64).reshape(3, 4)
    before = M.copy()
    res = pcp(M)
    assert np.array_equal(M, before) and res.L.dtype == np.float64


@pytest.mark.parametrize("bad", [
    np.array([[1.0, np.nan], [0.0, 1.0]]),
    np.array([[1.0, np.inf], [0.0, 1.0]]),
    np.ones(5),
    np.ones((2, 2, 2)),
    np.ones((0, 3)),
    np.ones((3, 0)),
    np.array([["a", "b"]]),
    np.ones((2, 2), dtype=complex),
    [[1.0, 2.0], [3.0, 4.0]],
])
def test_bad_matrices_refused(bad: object) -> None:
    with pytest.raises(ParameterError):
        pcp(bad)  # type: ignore[arg-type]


def test_oversized_refused_before_work() -> None:
    big = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(rpca.MAX_ENTRIES // 1000 + 1, 1000), strides=(0, 0))
    with pytest.raises(ParameterError, match="entries"):
        pcp(big)


@pytest.mark.parametrize("kwargs", [
    {"lam": 0.0}, {"lam": -1.0}, {"lam": math.nan}, {"lam": math.inf},
    {"tol": 0.0}, {"tol": 1.0}, {"max_iter": 0}, {"max_iter": rpca.MAX_ITER + 1},
    {"rho": 1.0}, {"mu": 0.0}, {"mu": -2.0}, {"svd": "lanczos"},
])
def test_bad_parameters_refused(kwargs: dict) -> None:
    with pytest.raises(ParameterError):
        pcp(np.eye(3), **kwargs)


def test_stacked_pcp_matches_single() -> None:
    """The batched solver used for meters is the same iteration as pcp with full SVDs."""
    stack = np.stack([sum(_low_rank_plus_sparse(40, 2, 0.05, s)[:2]) for s in range(4)])
    stack[2] = 0.0
    S, iterations, converged = rpca._pcp_stack(stack, 1 / math.sqrt(40), 1e-7, 1000)
    assert converged.all()
    for i in range(4):
        one = pcp(stack[i], tol=1e-7, svd="full")
        assert iterations[i] == one.iterations
        assert np.allclose(S[i], one.S, atol=1e-9 * max(1.0, np.abs(stack[i]).max()))


def _households(meters: int, days: int, seed: int) -> np.ndarray:
    """Days x 48 half-hours per meter: morning and evening peaks, weekend shift, noise, appliance spikes."""
    rng = np.random.default_rng(seed)
    hour = (np.arange(48) + 0.5) / 2
    kwh = np.empty((meters, days, 48))
    for m in range(meters):
        base, morning, evening = rng.uniform(0.05, 0.2), rng.uniform(6, 9), rng.uniform(17, 21)
        for d in range(days):
            shift = 1.5 if d % 7 >= 5 else 0.0
            day = (base + 0.6 * np.exp(-0.5 * (hour - morning - shift) ** 2)
                   + 1.2 * np.exp(-0.5 * ((hour - evening) / 1.5) ** 2))
            for _ in range(rng.poisson(2)):
                day[rng.integers(12, 46)] += rng.uniform(0.3, 1.5)
            kwh[m, d] = 0.5 * day * rng.lognormal(0.0, 0.1, 48)
    return kwh


def _load(kwh: np.ndarray) -> LoadData:
    return LoadData(tuple(f"H{i:06d}" for i in range(kwh.shape[0])), datetime.date(2025, 1, 1), 30, kwh)


@pytest.mark.parametrize("attack", ["reversed", "scaled", "flat", "zeros"])
def test_planted_anomaly_scores_highest(attack: str) -> None:
    kwh = _households(8, 70, 1)
    x = kwh[3, 30].copy()
    kwh[3, 30] = {"reversed": x[::-1], "scaled": 0.25 * x, "flat": np.full(48, x.mean()),
                  "zeros": np.where((np.arange(48) >= 30) & (np.arange(48) < 44), 0.0, x)}[attack]
    scores = rpca_scores(_load(kwh))
    assert scores.shape == (8, 70) and np.isfinite(scores).all()
    assert np.unravel_index(np.argmax(scores), scores.shape) == (3, 30)


def test_scores_deterministic_and_input_untouched() -> None:
    kwh = _households(5, 30, 2)
    kwh[1] = 0.0   # a meter that never consumes: scored 0, no division by zero
    before = kwh.copy()
    a, b = rpca_scores(_load(kwh)), rpca_scores(_load(kwh), RpcaConfig(batch=2))
    assert np.array_equal(kwh, before)
    assert np.allclose(a, b, rtol=0, atol=1e-12)
    assert not a[1].any()


def test_scores_refuse_bad_data_and_config() -> None:
    kwh = _households(3, 20, 3)
    kwh[1, 2, 5] = np.nan
    with pytest.raises(ParameterError, match="H000001 on 2025-01-03 slot 5"):
        rpca_scores(_load(kwh))
    kwh[1, 2, 5] = -1.0
    with pytest.raises(ParameterError, match="H000001 on 2025-01-03 slot 5"):
        rpca_scores(_load(kwh))
    kwh[1, 2, 5] = 0.0
    as_int = _load(np.rint(kwh * 1000).astype(np.int64))
    assert rpca_scores(as_int).shape == (3, 20)
    with pytest.raises(ParameterError, match="real numbers"):
        rpca_scores(_load(kwh.astype(complex)))
    for bad in ({"lam_factor": 0.0}, {"tol": 2.0}, {"max_iter": 0}, {"floor": -1.0}, {"batch": 0}, {"rho": 1.0}):
        with pytest.raises(ParameterError):
            RpcaConfig(**bad)  # type: ignore[arg-type]


def test_scores_report_non_convergence() -> None:
    with pytest.raises(ParameterError, match="H000000.*converge"):
        rpca_scores(_load(_households(3, 20, 4)), RpcaConfig(max_iter=2))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c=st.floats(1e-3, 1e3))
def test_homogeneous_and_transpose_symmetric(seed: int, c: float) -> None:
    """pcp(c M) = c pcp(M) (mu_0 scales as 1/c, Y_0 not at all) and pcp(M^T) = pcp(M)^T (section 6.2)."""
    L0, S0, _ = _low_rank_plus_sparse(30, 2, 0.05, seed)
    M = (L0 + S0)[:, :24]
    base = pcp(M, svd="full")
    scaled = pcp(c * M, svd="full")
    assert scaled.iterations == base.iterations
    assert np.allclose(scaled.L, c * base.L, atol=1e-8 * c * np.abs(M).max())
    flipped = pcp(M.T.copy(), svd="full")
    assert flipped.iterations == base.iterations
    assert np.allclose(flipped.S, base.S.T, atol=1e-8 * np.abs(M).max())


def test_scores_do_not_depend_on_meter_scale() -> None:
    """Every part of the score is in units of the meter's own typical day (section 6.3)."""
    kwh = _households(6, 40, 5)
    kwh[2, 11] = kwh[2, 11][::-1]
    factors = np.array([0.3, 1.0, 4.0, 0.8, 2.5, 10.0])
    a = rpca_scores(_load(kwh))
    b = rpca_scores(_load(kwh * factors[:, None, None]))
    assert np.allclose(a, b, rtol=1e-6, atol=1e-9)


def _spiky_household(days: int, seed: int) -> np.ndarray:
    """One meter, 1 x days x 48: a low baseline with a small evening bump and on average 8 appliance runs a
    day (an hour each, 0.5 to 1.5 kWh per half-hour): most of a day's variation is sparse, as in the UCI
    household of section 6.3, where the flat day (h5) used to score below the normal days."""
    rng = np.random.default_rng(seed)
    hour = (np.arange(48) + 0.5) / 2
    kwh = np.empty((1, days, 48))
    for d in range(days):
        day = 0.15 + 0.15 * np.exp(-0.5 * ((hour - 19.5) / 2.0) ** 2)
        for _ in range(rng.poisson(8.0)):
            t = rng.integers(14, 47)
            day[t:t + 2] += rng.uniform(0.5, 1.5)
        kwh[0, d] = day * rng.lognormal(0.0, 0.1, 48)
    return kwh


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_meter_every_attack_above_chance(seed: int) -> None:
    """One meter, 367 days (52 weeks and 3 days: the trailing days come from the second weekly matrix).
    Measured on seeds 0..29: lowest per-kind AUCs h1 0.629, h2 0.883, h3 0.772, h4 0.883, h5 0.754,
    h6 0.695; before the weekly arrangement and the median excess, h4 0.02 and h5 0.003 (section 6.3)."""
    from protocols.analytics import attacks, evaluate

    data = _load(_spiky_household(367, seed))
    attacked, labels = attacks.inject(data, fraction=0.15, seed=seed)
    per_kind = evaluate.per_kind_auc(rpca_scores(attacked).ravel(), labels.codes.ravel())
    assert set(per_kind) == {1, 2, 3, 4, 5, 6}
    for kind, (count, auc) in per_kind.items():
        assert count >= 5 and auc >= 0.6, (kind, count, auc)


def test_flat_day_scores_above_the_meters_normal_days() -> None:
    """A day replaced by its mean (h5) on a single spiky meter: measured on seeds 0..9, at most 4 of the
    366 other days score above it (before section 6.3's fix, 357 to 362 did)."""
    for seed in range(10):
        kwh = _spiky_household(367, seed)
        kwh[0, 100] = kwh[0, 100].mean()
        scores = rpca_scores(_load(kwh))[0]
        assert np.count_nonzero(scores > scores[100]) <= 0.02 * 366, seed


def test_arrangement_of_totals_and_peaks() -> None:
    """Weekly when its smaller side min(weeks, 7) is at least the population matrix's (section 6.3)."""
    assert rpca.arrangement(1, 1440) == "weekly"
    assert rpca.arrangement(7, 365) == "weekly"        # a tie: weekly (measured better at 7 meters)
    assert rpca.arrangement(8, 365) == "population"
    assert rpca.arrangement(3, 20) == "population"      # 2 weeks: smaller side 2 < 3
    assert rpca.arrangement(1, 14) == "weekly"
    assert rpca.arrangement(1, 6) == "population"       # no whole week


@pytest.mark.parametrize("day", [0, 70, 142])
def test_single_meter_scaled_day_scores_highest(day: int) -> None:
    """A day scaled to a quarter, on one meter of 143 days (20 weeks and 3 days): caught by the weekly total
    deficit wherever it falls, the trailing days included; the shape part alone cannot see a scaled day."""
    kwh = _households(1, 143, 6)
    kwh[0, day] *= 0.25
    scores = rpca_scores(_load(kwh))
    assert int(np.argmax(scores[0])) == day


def test_weekly_non_convergence_names_the_meter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A weeks x 7 PCP that has not converged is an error naming the meter and the matrix (section 6.3);
    the shape PCP, which runs first, is stubbed out so that the weekly one is reached."""
    monkeypatch.setattr(rpca, "_shape_scores", lambda kwh, *rest: np.zeros(kwh.shape[:2]))
    with pytest.raises(ParameterError, match="H000001's weeks x 7 daily total matrix did not converge"):
        kwh = _households(2, 70, 4)
        kwh[0] = 1.0   # a constant meter: rank 1, converges at once
        rpca_scores(_load(kwh), RpcaConfig(max_iter=2))
