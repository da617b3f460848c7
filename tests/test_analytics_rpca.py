"""Robust PCA (specs/analytics.md section 6): recovery of known low-rank plus sparse matrices,
the defaults and the convergence report, refused inputs, and meter-day scores."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.analytics import rpca
from protocols.analytics.rpca import pcp
from protocols.errors import ParameterError


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


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), svd=st.sampled_from(rpca.SVD_METHODS))
def test_recovers_small_low_rank_plus_sparse(seed: int, svd: str) -> None:
    L0, S0, support = _low_rank_plus_sparse(60, 3, 0.05, seed)
    res = pcp(L0 + S0, svd=svd, seed=seed)
    assert res.converged and res.residual < 1e-7
    assert _relative_error(res.L, L0) < 1e-4
    assert np.array_equal(np.abs(res.S) > 1e-3, support)
    assert np.linalg.matrix_rank(res.L, tol=1e-6 * np.linalg.norm(res.L, 2)) == 3


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
    assert res.converged and res.iterations < 60
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
