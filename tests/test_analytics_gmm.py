"""Gaussian mixture detector: features, choice of K, scores (specs/analytics.md section 5)."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from protocols.analytics import features, gmm
from protocols.analytics.data import LoadData
from protocols.analytics.features import FEATURE_NAMES, day_features, loo_median, window_days
from protocols.analytics.gmm import GmmConfig, choose_k, gmm_scores
from protocols.errors import ParameterError

START = datetime.date(2025, 1, 1)


def households(meters: int, days: int, seed: int, slots: int = 48) -> LoadData:
    """Small test households: morning and evening peaks, a weekly and a seasonal factor, appliance spikes,
    a meter-specific scale of 3..20 kWh a day and multiplicative day-to-day noise."""
    rng = np.random.default_rng(seed)
    t = (np.arange(slots) + 0.5) * 24 / slots
    kwh = np.empty((meters, days, slots))
    for m in range(meters):
        scale = rng.uniform(3, 20)
        peaks = (rng.normal(7.5, 0.7), rng.normal(19, 1.0), rng.uniform(0.3, 1.0), rng.uniform(0.6, 1.5))
        shape = (rng.uniform(0.2, 0.5) + peaks[2] * np.exp(-0.5 * (t - peaks[0]) ** 2)
                 + peaks[3] * np.exp(-0.5 * ((t - peaks[1]) / 1.8) ** 2))
        for d in range(days):
            factor = (1.15 if d % 7 in (5, 6) else 1.0) * (1 + 0.25 * np.cos(2 * np.pi * d / 365))
            day = np.interp(t, t + rng.normal(0, 0.5), shape) * rng.lognormal(0, 0.15)
            for _ in range(rng.poisson(4)):
                s = int(rng.integers(slots))
                day[s:s + int(rng.integers(1, 4))] += 0.5 * rng.exponential(1.0)
            day = np.clip(day + rng.normal(0, 0.05, slots), 0.02, None)
            kwh[m, d] = day / day.sum() * scale * factor * rng.lognormal(0, 0.1)
    return LoadData(tuple(f"T{m:04d}" for m in range(meters)), START, 1440 // slots, kwh)


def attack(x: np.ndarray, kind: int, rng: np.random.Generator) -> np.ndarray:
    """The test's own h1..h6 (Jokar et al. 2016), independent of protocols.analytics.attacks."""
    n = x.size
    if kind == 1:
        return x * rng.uniform(0.1, 0.8)
    if kind == 2:
        y = x.copy()
        length = int(rng.integers(n // 6, n // 2))
        s = int(rng.integers(0, n - length))
        y[s:s + length] = 0.0
        return y
    if kind == 3:
        return x * rng.uniform(0.1, 0.8, n)
    if kind == 4:
        return x.mean() * rng.uniform(0.1, 0.8, n)
    if kind == 5:
        return np.full(n, x.mean())
    return x[::-1].copy()


def inject(data: LoadData, fraction: float, seed: int) -> tuple[LoadData, np.ndarray]:
    rng = np.random.default_rng(seed)
    kwh = data.kwh.copy()
    codes = np.zeros(kwh.shape[:2], dtype=np.int64)
    for m, d in zip(*np.nonzero(rng.random(codes.shape) < fraction)):
        codes[m, d] = int(rng.integers(1, 7))
        kwh[m, d] = attack(kwh[m, d], int(codes[m, d]), rng)
    return LoadData(data.meters, data.start, data.interval_minutes, kwh), codes


@pytest.fixture(scope="module")
def attacked() -> tuple[LoadData, np.ndarray, np.ndarray]:
    data, codes = inject(households(40, 120, seed=11), 0.15, seed=12)
    return data, codes, gmm_scores(data, GmmConfig(seed=3))


# --- choice of K -------------------------------------------------------------------------------

def mixture_sample(seed: int) -> tuple[np.ndarray, int]:
    """K_true = 1 + seed % 4 well-separated 2-D Gaussians: centres 10 apart on a line, random unit-scale
    covariances (axes 0.5..1.5, random rotation), 100 points each."""
    rng = np.random.default_rng(seed)
    k = 1 + seed % 4
    parts = []
    for j in range(k):
        a = np.diag(rng.uniform(0.5, 1.5, 2))
        th = rng.uniform(0, np.pi)
        r = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        parts.append(rng.normal(size=(100, 2)) @ (r @ a).T + np.array([10.0 * j, rng.normal(0, 1)]))
    return np.concatenate(parts), k


def test_bic_recovers_k_in_95_percent_of_mixtures() -> None:
    # measured: 200 of 200 seeds (0..199); here 40 seeds, at least 38 must hit
    seeds = range(40)
    hits = 0
    for s in seeds:
        x, k = mixture_sample(s)
        hits += choose_k(x, k_max=5, criterion="bic", seed=s) == k
    assert hits >= 0.95 * len(seeds)


def test_aic_never_below_true_k_on_separated_mixtures() -> None:
    # AIC penalises less than BIC: on well-separated mixtures it may over-fit but does not merge clusters
    for s in range(8):
        x, k = mixture_sample(s)
        assert k <= choose_k(x, k_max=5, criterion="aic", seed=s) <= 5


def test_choose_k_is_deterministic_and_bounded() -> None:
    x, _ = mixture_sample(3)
    assert choose_k(x, 5, "bic", 7) == choose_k(x, 5, "bic", 7)
    assert choose_k(x, 1, "bic", 7) == 1
    with pytest.raises(ParameterError):
        choose_k(x, 0)
    with pytest.raises(ParameterError):
        choose_k(x, 3, criterion="hqc")
    with pytest.raises(ParameterError):
        choose_k(np.array([[1.0, np.nan], [0.0, 0.0]]), 2)
    with pytest.raises(ParameterError):
        choose_k(np.zeros((gmm.MAX_FIT_SAMPLES + 1, 1)), 2)


def test_k_is_capped_at_the_distinct_rows() -> None:
    x = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 50, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no "fewer distinct clusters than n_clusters" from k-means
        assert choose_k(x, 6, "bic", 0) <= 2
        flat = LoadData(("a", "b"), START, 60, np.ones((2, 10, 24)))
        scores = gmm_scores(flat)
    assert np.all(scores == scores[0, 0])


# --- configuration and input bounds -------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"k_max": 0}, {"k_max": gmm.MAX_K + 1}, {"k_max": 2.0}, {"criterion": "hqc"}, {"covariance_type": "block"},
    {"seed": -1}, {"seed": 2**32}, {"seed": 1.5}, {"seed": True}, {"n_init": 0}, {"reg_covar": 0.0},
    {"reg_covar": float("nan")}, {"max_iter": 0}, {"tol": 0.0}, {"fit_samples": 10}, {"trim_z": 0.0},
    {"trim_z": float("nan")}, {"k_max": True}, {"reg_covar": "0.1"}, {"fit_samples": 20_000.0},
])
def test_bad_config_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        GmmConfig(**bad)  # type: ignore[arg-type]


def test_bad_data_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = households(2, 10, seed=1)
    with pytest.raises(ParameterError, match="at least 7 days"):
        day_features(LoadData(data.meters, START, 30, data.kwh[:, :6]))
    kwh = data.kwh.copy()
    kwh[1, 4, 7] = np.nan
    with pytest.raises(ParameterError, match=r"kwh\[1, 4, 7\] \(meter T0001\)"):
        day_features(LoadData(data.meters, START, 30, kwh))
    with pytest.raises(ParameterError):
        gmm_scores(data, config="bic")  # type: ignore[arg-type]
    monkeypatch.setattr(gmm, "MAX_ROWS", 19)
    with pytest.raises(ParameterError, match="meter-days"):
        gmm_scores(data)


# --- features ------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.integers(2, 12), st.integers(0, 2**32 - 1))
def test_loo_median_is_the_median_of_the_other_days(days: int, seed: int) -> None:
    a = np.random.default_rng(seed).integers(0, 4, size=(2, days, 3)).astype(float)
    expect = np.stack([np.median(np.delete(a, d, axis=1), axis=1) for d in range(days)], axis=1)
    assert np.array_equal(loo_median(a), expect)


@given(st.integers(1, 60), st.integers(2, 40))
def test_window_days_are_the_other_days_of_a_consecutive_window(days: int, width: int) -> None:
    w = window_days(days, width)
    n = min(width, days)
    assert w.shape == (days, n - 1)
    for d in range(days):
        full = sorted(set(w[d].tolist()) | {d})
        assert d not in w[d] and len(set(w[d].tolist())) == n - 1
        assert full == list(range(full[0], full[0] + n)) and 0 <= full[0] and full[-1] < days


def test_window_median_in_slot_blocks_equals_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.random.default_rng(4).random((3, 40, 11))
    idx = window_days(40, 29)
    expect = np.stack([np.median(a[:, idx[d], :], axis=1) for d in range(40)], axis=1)
    assert np.array_equal(features.window_median(a, 29), expect)
    monkeypatch.setattr(features, "WINDOW_BYTES", 3 * 28 * 8 * 4)      # 4 slots a block
    assert np.array_equal(features.window_median(a, 29), expect)


def test_one_minute_readings_in_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    data = households(3, 9, seed=6, slots=1440)
    whole = day_features(data)
    monkeypatch.setattr(features, "CHUNK_BYTES", 9 * 1440 * 8)         # one meter at a time
    calls: list[tuple[int, int]] = []
    assert np.array_equal(day_features(data, progress=lambda d, m: calls.append((d, m))), whole)
    assert calls == [(1, 3), (2, 3), (3, 3)]


@settings(max_examples=10, deadline=None)
@given(st.floats(0.2, 5.0))
def test_features_do_not_depend_on_the_household_scale(c: float) -> None:
    data = households(3, 20, seed=5)
    f1 = day_features(data)
    f2 = day_features(LoadData(data.meters, START, 30, data.kwh * c))
    shape_only = [FEATURE_NAMES.index(n) for n in ("spread", "roughness", "shape", "reversed", "zero_run", "night",
                                                  "shape_all", "pop_shape_cp", "spread_pop")]
    assert np.allclose(f1[..., shape_only], f2[..., shape_only], atol=1e-9)
    assert np.allclose(f1, f2, atol=0.1)  # total and level only through the small additive EPS_DAY_KWH


def test_features_shape_and_zero_run() -> None:
    data = households(3, 15, seed=2)
    kwh = data.kwh.copy()
    kwh[0, 5, 10:22] = 0.0
    f = day_features(LoadData(data.meters, START, 30, kwh))
    assert f.shape == (3, 15, len(FEATURE_NAMES)) and np.all(np.isfinite(f))
    z = f[..., FEATURE_NAMES.index("zero_run")]
    assert z[0, 5] == z.max() > 5


# --- scores --------------------------------------------------------------------------------------

def test_scores_shape_and_determinism() -> None:
    data, _ = inject(households(12, 30, seed=8), 0.15, seed=9)
    scores = gmm_scores(data)
    assert scores.shape == (12, 30) and scores.dtype == np.float64 and np.all(np.isfinite(scores))
    assert np.array_equal(scores, gmm_scores(data))
    small = GmmConfig(seed="x", k_max=2, fit_samples=100)   # 100 of the 360 rows drawn: the seeded sample
    assert np.array_equal(gmm_scores(data, small), gmm_scores(data, small))


def test_flat_day_among_peaked_days_scores_highest() -> None:
    data = households(10, 40, seed=21)
    kwh = data.kwh.copy()
    kwh[4, 17] = kwh[4, 17].mean()
    scores = gmm_scores(LoadData(data.meters, START, 30, kwh), GmmConfig(k_max=3))
    assert scores[4, 17] == scores.max()


def test_a_meter_flat_on_every_day_scores_above_every_other_day() -> None:
    # a whole-history h5 thief: its own history is flat too, so only spread_pop (population scale) sees it
    data = households(20, 40, seed=41)
    kwh = data.kwh.copy()
    kwh[7] = kwh[7].mean(axis=1, keepdims=True) * np.ones((1, 48))
    scores = gmm_scores(LoadData(data.meters, START, 30, kwh))
    assert scores[7].min() > np.delete(scores, 7, axis=0).max()     # measured: 207 against 101


# measured (households seed 11, attacks seed 12, 40 meters x 120 days, 15% attacked): h1 0.959, h2 1.000,
# h3 1.000, h4 1.000, h5 1.000, h6 0.990, all 0.991 (spec 5.3); asserted with a margin
MIN_AUC = {1: 0.90, 2: 0.98, 3: 0.98, 4: 0.98, 5: 0.98, 6: 0.95}


@pytest.mark.parametrize("kind", range(1, 7))
def test_each_attack_separates(attacked: tuple[LoadData, np.ndarray, np.ndarray], kind: int) -> None:
    _, codes, scores = attacked
    sel = (codes == 0) | (codes == kind)
    assert (codes == kind).sum() > 50
    assert roc_auc_score(codes[sel] == kind, scores[sel]) >= MIN_AUC[kind]


def test_a_thief_s_contiguous_run_separates() -> None:
    # three meters scaled (h1-like) on the same 18 consecutive days of 120 (15 %, as inject's thieves mode):
    # the 29-day window then holds mostly attacked days, the whole-history features still see them.
    # Measured AUC 0.995 (0.964 before total_cp and pop_shape_cp, spec 5.3).
    assert run_auc(18) >= 0.97


def test_a_long_run_separates() -> None:
    # the same thieves on 40 of 120 days (a third): the window and whole-history references are mostly
    # attacked, the change-point segment (total_cp) is not. Measured AUC 0.984 (0.62 without total_cp and
    # pop_shape_cp); 60 of 120 days 0.985.
    assert run_auc(40) >= 0.95


def run_auc(days: int) -> float:
    """AUC of three meters scaled by 0.3..0.5 on days 40 .. 40 + days - 1 of 120, among 20."""
    data = households(20, 120, seed=31)
    kwh = data.kwh.copy()
    truth = np.zeros((20, 120), dtype=bool)
    for m, alpha in ((3, 0.4), (11, 0.5), (15, 0.3)):
        kwh[m, 40:40 + days] *= alpha
        truth[m, 40:40 + days] = True
    scores = gmm_scores(LoadData(data.meters, START, 30, kwh))
    return float(roc_auc_score(truth.ravel(), scores.ravel()))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_best_segment_finds_a_shifted_run(seed: int) -> None:
    # a run of 14..60 days shifted by 2 in noise of sd 0.3 is recovered, at most 4 days wrong in all
    rng = np.random.default_rng(seed)
    d = 90
    length = int(rng.integers(14, 61))
    lo = int(rng.integers(0, d - length + 1))
    y = rng.normal(0, 0.3, (1, d))
    y[0, lo:lo + length] -= 2.0
    inside = np.flatnonzero(features.best_segment(y, 14)[0])
    run = np.arange(lo, lo + length)
    other = np.setdiff1d(np.arange(d), run)       # a run at the start or end is also found as its complement
    assert len(np.setxor1d(inside, run)) <= 4 or len(np.setxor1d(inside, other)) <= 4, (lo, length, inside)


def test_segment_z_takes_the_higher_side_as_reference() -> None:
    # the lower half is far below: its days get large negative z, the higher half's days z near 0
    rng = np.random.default_rng(4)
    y = rng.normal(0, 0.1, (1, 60))
    y[0, 30:] -= 1.0
    z = features.segment_z(y, 0.05, 14)[0]
    assert np.all(z[30:] < -4) and np.all(np.abs(np.median(z[:30])) < 0.5)


def test_overall_separation(attacked: tuple[LoadData, np.ndarray, np.ndarray]) -> None:
    _, codes, scores = attacked
    assert roc_auc_score((codes != 0).ravel(), scores.ravel()) >= 0.97
