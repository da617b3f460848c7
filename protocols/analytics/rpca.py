"""Robust PCA by principal component pursuit, and meter-day anomaly scores from it (specs/analytics.md section 6).

:func:`pcp` splits a matrix ``M`` into a low-rank ``L`` and a sparse ``S`` by
solving ``min ||L||_* + lam ||S||_1  s.t.  L + S = M`` (Candes, Li, Ma and
Wright 2011) with the inexact augmented Lagrange multiplier method of Lin,
Chen and Ma (2010, Algorithm 5), section 6.2.  :func:`rpca_scores` runs it on
each meter's days x slots matrix and on the daily totals and daily peaks (one
meters x days matrix, or with few meters each meter's weeks x 7), and scores a
meter-day from the sparse parts (section 6.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from protocols.analytics.data import LoadData
from protocols.errors import ParameterError

MAX_ENTRIES = 1 << 22
"""Largest matrix :func:`pcp` accepts (4 194 304 entries, e.g. 2048 x 2048): each iteration is an SVD."""
MAX_ITER = 10_000
SVD_METHODS = ("auto", "full", "randomized")
RHO = 1.1
"""Growth of the penalty mu per iteration.  Lin, Chen and Ma (2010) use 1.5 to 1.6; with 1.5, 4 of 600
60 x 60 rank-3 problems stopped at a feasible point whose objective is above the truth's, none with
1.1 (section 6.2)."""
MU_FACTOR = 1.25
"""mu_0 = MU_FACTOR / ||M||_2 (Lin, Chen and Ma 2010, section 6.2)."""
MU_CAP = 1e7
"""mu never exceeds MU_CAP * mu_0, so the thresholds 1/mu stay away from rounding noise (section 6.2)."""
PARTIAL_MAX_FRACTION = 0.2
"""auto: a partial (randomised) SVD only while the predicted rank is at most this fraction of min(m, n)."""
PARTIAL_MIN_SIDE = 150
"""auto: matrices whose smaller side is below this always use the full SVD (it is cheaper there)."""
OVERSAMPLE = 10
POWER_ITERATIONS = 2


@dataclass(frozen=True)
class PcpResult:
    """``M = L + S`` up to ``residual = ||M - L - S||_F / ||M||_F`` after ``iterations`` (section 6.2)."""

    L: np.ndarray
    S: np.ndarray
    iterations: int
    converged: bool
    residual: float


def _check_matrix(M: object) -> np.ndarray:
    if not isinstance(M, np.ndarray):
        raise ParameterError("M must be a numpy array")
    if M.ndim != 2:
        raise ParameterError(f"M must be 2-D, not {M.ndim}-D")
    m, n = M.shape
    if m == 0 or n == 0:
        raise ParameterError(f"M is empty ({m} x {n})")
    if m * n > MAX_ENTRIES:
        raise ParameterError(f"M has {m} x {n} entries, more than {MAX_ENTRIES}")
    if M.dtype.kind not in "fiu":
        raise ParameterError(f"M must hold real numbers, not {M.dtype}")
    A = np.array(M, dtype=np.float64)
    bad = ~np.isfinite(A)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ParameterError(f"M[{i}, {j}] is not finite")
    return A


def _shrink(X: np.ndarray, tau: float) -> np.ndarray:
    """Entrywise soft thresholding S_tau[x] = sign(x) max(|x| - tau, 0)."""
    return np.sign(X) * np.maximum(np.abs(X) - tau, 0.0)


def _randomized_svd(X: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` SVD by a Gaussian range finder with power iterations (Halko, Martinsson, Tropp 2011)."""
    m, n = X.shape
    ell = min(k + OVERSAMPLE, min(m, n))
    Q, _ = np.linalg.qr(X @ rng.standard_normal((n, ell)))
    for _ in range(POWER_ITERATIONS):
        Z, _ = np.linalg.qr(X.T @ Q)
        Q, _ = np.linalg.qr(X @ Z)
    Ub, s, Vt = np.linalg.svd(Q.T @ X, full_matrices=False)
    return (Q @ Ub)[:, :k], s[:k], Vt[:k]


def _svt(X: np.ndarray, tau: float, predicted: int, method: str,
         rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Singular value thresholding D_tau[X] = U S_tau[Sigma] V^T; returns it and the number of
    singular values above ``tau`` (section 6.2).  A partial SVD is accepted when the smallest
    value it computed is at most ``tau`` (a check on estimates, not a proof); otherwise its size
    doubles, and past the partial limit the full SVD is used."""
    d = min(X.shape)
    partial = method == "randomized" or (
        method == "auto" and d >= PARTIAL_MIN_SIDE and predicted <= PARTIAL_MAX_FRACTION * d)
    k = predicted
    while partial and k < d:
        U, s, Vt = _randomized_svd(X, k, rng)
        above = int(np.count_nonzero(s > tau))
        if above < k:
            return (U[:, :above] * (s[:above] - tau)) @ Vt[:above], above
        k = min(2 * k, d)
        if method == "auto" and k > PARTIAL_MAX_FRACTION * d:
            break
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    above = int(np.count_nonzero(s > tau))
    return (U[:, :above] * (s[:above] - tau)) @ Vt[:above], above


def pcp(M: np.ndarray, *, lam: float | None = None, tol: float = 1e-7, max_iter: int = 1000,
        mu: float | None = None, rho: float = RHO, svd: str = "auto", seed: int = 0) -> PcpResult:
    """Principal component pursuit by inexact ALM (section 6.1, 6.2).

    ``lam`` defaults to ``1 / sqrt(max(m, n))``; ``mu`` (the initial penalty) to
    ``1.25 / ||M||_2``.  Stops when ``||M - L - S||_F / ||M||_F < tol``; if that
    has not happened after ``max_iter`` iterations the result says
    ``converged=False`` (it is returned, not raised).  ``seed`` feeds only the
    randomised SVD's test matrices.
    """
    A = _check_matrix(M)
    m, n = A.shape
    if lam is None:
        lam = 1.0 / math.sqrt(max(m, n))
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam > 0):
        raise ParameterError(f"lam must be a finite number > 0, not {lam!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and 0 < tol < 1):
        raise ParameterError(f"tol must be in (0, 1), not {tol!r}")
    if not (isinstance(max_iter, int) and 1 <= max_iter <= MAX_ITER):
        raise ParameterError(f"max_iter must be an integer in 1..{MAX_ITER}, not {max_iter!r}")
    if not (isinstance(rho, (int, float)) and math.isfinite(rho) and 1 < rho <= 10):
        raise ParameterError(f"rho must be in (1, 10], not {rho!r}")
    if svd not in SVD_METHODS:
        raise ParameterError(f"svd must be one of {SVD_METHODS}, not {svd!r}")
    if mu is not None and not (isinstance(mu, (int, float)) and math.isfinite(mu) and mu > 0):
        raise ParameterError(f"mu must be a finite number > 0, not {mu!r}")

    norm_fro = float(np.linalg.norm(A))
    if norm_fro == 0.0:
        return PcpResult(np.zeros_like(A), np.zeros_like(A), 0, True, 0.0)
    norm_two = float(np.linalg.norm(A, 2))
    norm_inf = float(np.abs(A).max())
    Y = A / max(norm_two, norm_inf / lam)          # dual start Y_0 = M / J(M)
    mu_k = float(mu) if mu is not None else MU_FACTOR / norm_two
    mu_max = mu_k * MU_CAP
    rng = np.random.default_rng(seed)
    d = min(m, n)
    predicted = min(10, d)
    S = np.zeros_like(A)
    L = np.zeros_like(A)
    residual = 1.0
    for k in range(1, max_iter + 1):
        L, above = _svt(A - S + Y / mu_k, 1.0 / mu_k, predicted, svd, rng)
        predicted = min(d, above + 1 if above < predicted else above + max(1, round(0.05 * d)))
        S = _shrink(A - L + Y / mu_k, lam / mu_k)
        Z = A - L - S
        Y += mu_k * Z
        mu_k = min(mu_k * rho, mu_max)
        residual = float(np.linalg.norm(Z)) / norm_fro
        if residual < tol:
            return PcpResult(L, S, k, True, residual)
    return PcpResult(L, S, max_iter, False, residual)


def _pcp_stack(M: np.ndarray, lam: float, tol: float, max_iter: int,
               rho: float = RHO) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pcp` with full SVDs on a stack of matrices (B, m, n) at once, each with its own mu
    and its own stop (a matrix that has converged is no longer updated).  Returns S, the
    iterations and whether each converged."""
    B = M.shape[0]
    S = np.zeros_like(M)
    iterations = np.zeros(B, dtype=np.int64)
    converged = np.ones(B, dtype=bool)
    norm_fro = np.linalg.norm(M, axis=(1, 2))
    active = np.flatnonzero(norm_fro > 0)
    if active.size == 0:
        return S, iterations, converged
    A = M[active]
    norm_two = np.linalg.norm(A, 2, axis=(1, 2))
    norm_inf = np.abs(A).max(axis=(1, 2))
    Y = A / np.maximum(norm_two, norm_inf / lam)[:, None, None]
    mu = MU_FACTOR / norm_two
    mu_max = mu * MU_CAP
    Sa = np.zeros_like(A)
    fro = norm_fro[active]
    for k in range(1, max_iter + 1):
        inv = (1.0 / mu)[:, None, None]
        U, s, Vt = np.linalg.svd(A - Sa + Y * inv, full_matrices=False)
        L = (U * np.maximum(s - inv[:, :, 0], 0.0)[:, None, :]) @ Vt
        Sa = _shrink(A - L + Y * inv, lam * inv)
        Z = A - L - Sa
        Y += mu[:, None, None] * Z
        mu = np.minimum(mu * rho, mu_max)
        done = np.linalg.norm(Z, axis=(1, 2)) / fro < tol
        iterations[active] = k
        if done.any():
            S[active[done]] = Sa[done]
            keep = ~done
            active, A, Y, Sa, mu, mu_max, fro = (active[keep], A[keep], Y[keep], Sa[keep], mu[keep],
                                                   mu_max[keep], fro[keep])
            if active.size == 0:
                break
    S[active] = Sa
    converged[active] = False
    return S, iterations, converged


@dataclass(frozen=True)
class RpcaConfig:
    """Parameters of :func:`rpca_scores` (section 6.3).

    ``lam_factor`` multiplies the default ``1 / sqrt(max(m, n))`` of every PCP;
    ``rho`` is the penalty growth (1.5, Lin, Chen and Ma's: scores need no 1e-7 accuracy and
    it takes a third of the iterations of :data:`RHO` here, section 6.3);
    ``tol`` and ``max_iter`` are the stop of section 6.2 (a matrix that has not
    converged within ``max_iter`` is an error, not a silent result);
    ``floor`` (fraction of the meter's median day) keeps the shape score of an
    almost empty day finite; ``batch`` is how many meters' matrices are solved at once."""

    lam_factor: float = 0.5
    rho: float = 1.5
    tol: float = 1e-5
    max_iter: int = 500
    floor: float = 0.05
    batch: int = 50

    def __post_init__(self) -> None:
        for name in ("lam_factor", "tol", "floor"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"RpcaConfig.{name} must be a finite number > 0, not {v!r}")
        if not (isinstance(self.rho, (int, float)) and 1 < self.rho <= 10):
            raise ParameterError(f"RpcaConfig.rho must be in (1, 10], not {self.rho!r}")
        if self.tol >= 1:
            raise ParameterError(f"RpcaConfig.tol must be < 1, not {self.tol!r}")
        if not (isinstance(self.max_iter, int) and 1 <= self.max_iter <= MAX_ITER):
            raise ParameterError(f"RpcaConfig.max_iter must be an integer in 1..{MAX_ITER}")
        if not (isinstance(self.batch, int) and 1 <= self.batch <= 10_000):
            raise ParameterError("RpcaConfig.batch must be an integer in 1..10000")


SCALE_FLOOR_KWH = 1e-3
"""A meter whose median day is below 1 Wh is scaled as if it were 1 Wh (no division by zero)."""


WEEK = 7
"""Columns of the weekly arrangement: one per day of the week (section 6.3)."""


def arrangement(meters: int, days: int) -> str:
    """How the daily totals and peaks are arranged for PCP (section 6.3): ``"weekly"`` (per meter, its
    whole weeks x 7) when that matrix's smaller side is at least the population matrix's (meters x days),
    else ``"population"``.  PCP can leave a deficit in S only when the low-rank part is not free to absorb
    it, and a matrix's rank is at most its smaller side: one row is always rank 1."""
    return "weekly" if min(days // WEEK, WEEK) >= min(meters, days) else "population"


def _population_deficit(X: np.ndarray, config: RpcaConfig, what: str) -> np.ndarray:
    """Negative part of the sparse component of PCP on the meters x days matrix ``X`` (section 6.3)."""
    lam = config.lam_factor / math.sqrt(max(X.shape))
    res = pcp(X, lam=lam, tol=config.tol, max_iter=config.max_iter, rho=config.rho)
    if not res.converged:
        raise ParameterError(f"PCP on the meters x days {what} matrix did not converge in {config.max_iter} "
                             f"iterations (residual {res.residual:.2e}); raise max_iter or tol")
    return np.maximum(-res.S, 0.0)


def _weekly_deficit(X: np.ndarray, config: RpcaConfig, what: str, names: tuple[str, ...]) -> np.ndarray:
    """Per meter (row of ``X``): PCP on its days as a weeks x 7 matrix, deficit = max(0, -S) (section 6.3).
    Days after the last whole week take their values from a second matrix, the last whole weeks."""
    meters, days = X.shape
    weeks = days // WEEK
    span = weeks * WEEK
    lam = config.lam_factor / math.sqrt(max(weeks, WEEK))
    out = np.zeros((meters, days))
    for first in ([0, days - span] if days > span else [0]):
        for lo in range(0, meters, config.batch):
            hi = min(meters, lo + config.batch)
            M = X[lo:hi, first:first + span].reshape(hi - lo, weeks, WEEK)
            S, _, converged = _pcp_stack(M, lam, config.tol, config.max_iter, config.rho)
            if not converged.all():
                bad = names[lo + int(np.flatnonzero(~converged)[0])]
                raise ParameterError(f"PCP on meter {bad}'s weeks x 7 {what} matrix did not converge in "
                                     f"{config.max_iter} iterations; raise max_iter or tol")
            deficit = np.maximum(-S, 0.0).reshape(hi - lo, span)
            if first == 0:
                out[lo:hi, :span] = deficit
            else:
                out[lo:hi, span:] = deficit[:, 2 * span - days:]
    return out


def _deficit(X: np.ndarray, config: RpcaConfig, what: str, names: tuple[str, ...]) -> np.ndarray:
    """The deficit of section 6.3 in the arrangement :func:`arrangement` picks."""
    if arrangement(*X.shape) == "weekly":
        return _weekly_deficit(X, config, what, names)
    return _population_deficit(X, config, what)


def _shape_scores(kwh: np.ndarray, scale: np.ndarray, config: RpcaConfig,
                  names: tuple[str, ...]) -> np.ndarray:
    """Per meter: PCP on its days x slots matrix (in units of its median day / slots); a day's ratio is
    the l1 norm of its row of S over that of its row of M plus ``floor``, and its score the excess of
    that ratio over the meter's median ratio, or 0 (section 6.3)."""
    meters, days, slots = kwh.shape
    lam = config.lam_factor / math.sqrt(max(days, slots))
    out = np.empty((meters, days))
    for lo in range(0, meters, config.batch):
        hi = min(meters, lo + config.batch)
        M = kwh[lo:hi] * (slots / scale[lo:hi])[:, None, None]
        S, _, converged = _pcp_stack(M, lam, config.tol, config.max_iter, config.rho)
        if not converged.all():
            bad = names[lo + int(np.flatnonzero(~converged)[0])]
            raise ParameterError(f"PCP on meter {bad}'s days x slots matrix did not converge in "
                                 f"{config.max_iter} iterations; raise max_iter or tol")
        out[lo:hi] = np.abs(S).sum(axis=2) / (np.abs(M).sum(axis=2) + config.floor * slots)
    return np.maximum(out - np.median(out, axis=1, keepdims=True), 0.0)


def rpca_scores(data: LoadData, config: RpcaConfig = RpcaConfig()) -> np.ndarray:
    """Meters x days anomaly scores from the sparse parts of three PCPs, higher = more anomalous
    (section 6.3): ``shape + max(total deficit, peak deficit)``."""
    if data.kwh.dtype.kind not in "fiu":
        raise ParameterError(f"LoadData.kwh must hold real numbers, not {data.kwh.dtype}")
    meters, days, slots = data.kwh.shape
    if days * slots > MAX_ENTRIES or meters * days > MAX_ENTRIES:
        raise ParameterError(f"{meters} meters x {days} days is more than RPCA accepts ({MAX_ENTRIES} entries "
                             f"per matrix)")
    kwh = np.asarray(data.kwh, dtype=np.float64)
    bad = ~np.isfinite(kwh) | (kwh < 0)
    if bad.any():
        m, d, t = (int(i) for i in np.argwhere(bad)[0])
        raise ParameterError(f"meter {data.meters[m]} on {data.day(d).isoformat()} slot {t}: reading "
                             f"{float(kwh[m, d, t])!r} is not a finite, non-negative kWh")
    totals = kwh.sum(axis=2)
    scale = np.maximum(np.median(totals, axis=1), SCALE_FLOOR_KWH)
    peaks = kwh.max(axis=2)
    peak_scale = np.maximum(np.median(peaks, axis=1), SCALE_FLOOR_KWH)
    shape = _shape_scores(kwh, scale, config, data.meters)
    total_deficit = _deficit(totals / scale[:, None], config, "daily total", data.meters)
    peak_deficit = _deficit(peaks / peak_scale[:, None], config, "daily peak", data.meters)
    return shape + np.maximum(total_deficit, peak_deficit)
