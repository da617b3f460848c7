"""Gaussian mixture detector: fit, choice of K, negative log-likelihood score (specs/analytics.md sections 5.2-5.3).

The mixture is scikit-learn's ``GaussianMixture`` fitted by EM on the per
meter-day features of section 5.1; a meter-day's score is its negative
log-likelihood under the fitted mixture, higher meaning more anomalous.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from protocols.analytics.data import LoadData
from protocols.analytics.data import seed_int as data_seed_int
from protocols.analytics.features import day_features
from protocols.errors import ParameterError

CRITERIA = ("bic", "aic")
COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
MAX_K = 32
MAX_FIT_SAMPLES = 200_000
MAX_ROWS = 50_000_000
"""Most meter-days :func:`gmm_scores` accepts (spec 5.2)."""


def seed_int(seed: int | str) -> int:
    """scikit-learn's random_state: an int seed as is (0 <= seed < 2**32); a str's SHA-256, its first
    4 bytes big-endian (the top 32 bits of ``data.seed_int``)."""
    if isinstance(seed, str):
        return data_seed_int(seed) >> 224
    value = data_seed_int(seed)
    if value >= 2**32:
        raise ParameterError(f"seed {seed} is outside 0..2**32-1")
    return value


@dataclass(frozen=True)
class GmmConfig:
    """Settings of the detector (spec 5.2); defaults are the ones measured in spec 5.3."""

    k_max: int = 8
    criterion: str = "bic"
    covariance_type: str = "diag"
    seed: int | str = 0
    n_init: int = 2
    reg_covar: float = 1e-3
    max_iter: int = 200
    tol: float = 1e-3
    fit_samples: int = 20_000
    trim_z: float = 3.0

    def __post_init__(self) -> None:
        for name, low, high in (("k_max", 1, MAX_K), ("n_init", 1, 20), ("max_iter", 1, 10_000),
                                ("fit_samples", 100, MAX_FIT_SAMPLES)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ParameterError(f"{name} must be an int in {low}..{high}, not {value!r}")
        if self.criterion not in CRITERIA:
            raise ParameterError(f"criterion must be one of {CRITERIA}, not {self.criterion!r}")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ParameterError(f"covariance_type must be one of {COVARIANCE_TYPES}, not {self.covariance_type!r}")
        seed_int(self.seed)
        for name in ("reg_covar", "tol", "trim_z"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(f"{name} must be a number, not {value!r}")
        if not 0 < self.reg_covar <= 1:
            raise ParameterError(f"reg_covar must be in (0, 1], not {self.reg_covar!r}")
        if not 0 < self.tol <= 1:
            raise ParameterError(f"tol must be in (0, 1], not {self.tol!r}")
        if not self.trim_z > 0:
            raise ParameterError(f"trim_z must be positive (inf: no trimming), not {self.trim_z!r}")


def _check_x(x: np.ndarray) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ParameterError("X must be a samples x features array with at least 2 samples")
    if x.shape[0] > MAX_FIT_SAMPLES:
        raise ParameterError(f"X has {x.shape[0]} samples; at most {MAX_FIT_SAMPLES} are fitted")
    if not np.all(np.isfinite(x)):
        raise ParameterError(f"X row {int(np.argwhere(~np.isfinite(x))[0, 0])} is not finite")


def fit_mixtures(x: np.ndarray, config: GmmConfig) -> tuple[GaussianMixture, list[float]]:
    """Fit K = 1..k_max (capped at the number of distinct rows of ``x``) with the EM settings of ``config``;
    return the mixture with the smallest criterion value, the smaller K on a tie, and every value (spec 5.2)."""
    _check_x(x)
    if not isinstance(config, GmmConfig):
        raise ParameterError("config must be a GmmConfig")
    seed = seed_int(config.seed)
    best: GaussianMixture | None = None
    values: list[float] = []
    distinct = int(np.unique(x, axis=0).shape[0])
    for k in range(1, min(config.k_max, distinct) + 1):
        g = GaussianMixture(n_components=k, covariance_type=config.covariance_type, n_init=config.n_init,
                            reg_covar=config.reg_covar, max_iter=config.max_iter, tol=config.tol,
                            init_params="kmeans", random_state=seed)
        with threadpool_limits(limits=1):   # one BLAS thread: as fast at these sizes, and reproducible
            g.fit(x)
        v = float(g.bic(x) if config.criterion == "bic" else g.aic(x))
        if best is None or v < min(values):
            best = g
        values.append(v)
    assert best is not None
    return best, values


def choose_k(x: np.ndarray, k_max: int, criterion: str = "bic", seed: int | str = 0, *,
             covariance_type: str = "full") -> int:
    """The K in 1..k_max that minimises BIC (or AIC) of a mixture fitted to ``x`` (spec 5.2).

    EM settings are GmmConfig's defaults; ``covariance_type`` defaults to "full" here (a general mixture).
    """
    config = GmmConfig(k_max=k_max, criterion=criterion, covariance_type=covariance_type, seed=seed)
    _, values = fit_mixtures(x, config)
    return int(np.argmin(values)) + 1


def gmm_scores(data: LoadData, config: GmmConfig = GmmConfig(), *,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Negative log-likelihood per meter-day, meters x days, higher = more anomalous (spec 5.3)."""
    if not isinstance(config, GmmConfig):
        raise ParameterError("config must be a GmmConfig")
    if not isinstance(data, LoadData):
        raise ParameterError("data must be a LoadData")
    m, d, _ = data.kwh.shape
    if m * d > MAX_ROWS:
        raise ParameterError(f"{m} meters x {d} days is more than {MAX_ROWS} meter-days")
    feats = day_features(data, progress=progress).reshape(m * d, -1)
    x, _ = fit_sample(feats, config)
    g, _ = fit_mixtures(x, config)
    with threadpool_limits(limits=1):
        scores = -g.score_samples(feats)
    return np.asarray(scores, dtype=np.float64).reshape(m, d)


def fit_sample(feats: np.ndarray, config: GmmConfig) -> tuple[np.ndarray, np.ndarray]:
    """The rows the mixture is fitted on (spec 5.2): the core rows, then a seeded sample of at most fit_samples.

    Core: every feature within ``trim_z`` of 0 (features are per-meter robust z-scores); if fewer than
    half of the rows are core, the half with the smallest largest |z| is used instead.
    """
    worst = np.abs(feats).max(axis=1)
    core = np.flatnonzero(worst <= config.trim_z)
    if core.size < feats.shape[0] // 2 or core.size < 2:
        core = np.sort(np.argsort(worst, kind="stable")[:max(2, feats.shape[0] // 2)])
    rng = np.random.default_rng(seed_int(config.seed))
    if core.size > config.fit_samples:
        core = np.sort(rng.choice(core, size=config.fit_samples, replace=False))
    return feats[core], core
