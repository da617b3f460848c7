"""Per meter-day features for the Gaussian mixture detector (specs/analytics.md section 5.1).

Every feature compares one meter-day with the same meter's other days, so that
households of different size and habits land on one scale: a raw feature is
computed from the day's readings and the meter's reference (medians over the
other days of a 29-day window around the day), then standardised by the
meter's own robust spread (leave-one-out median and IQR over its days).
Two features compare the day with one segment of the meter's history found by a
change-point fit, so that a theft lasting months does not become the meter's
normal; they and spread_pop use references taken over all meters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from protocols.analytics.data import LoadData
from protocols.errors import ParameterError

FEATURE_NAMES = (
    "total",        # log of the day's total over the meter's typical total
    "level",        # mean per-reading log ratio to the meter's typical reading at that time of day
    "spread",       # log of the coefficient of variation of the day's readings
    "roughness",    # log of the mean absolute step between consecutive readings over the mean reading
    "shape",        # correlation of the day's profile with the meter's typical profile
    "reversed",     # correlation of the day's profile with the typical profile reversed in time
    "zero_run",     # longest run of zero readings, as a fraction of the day
    "night",        # share of the day's energy between 00:00 and 06:00
    "total_all",    # log of the day's total over the meter's median total over all its other days
    "level_all",    # as level, against the median reading at that time over all the meter's other days
    "shape_all",    # as shape, against the median profile over all the meter's other days
    "total_cp",     # season-adjusted log total against the higher-level segment of the meter's history
    "pop_shape_cp", # correlation with the population's profile of the day, against the higher segment of the history
    "spread_pop",   # spread, standardised over all meters' days instead of the meter's own
)
"""Names of the F features, in the order of the last axis of :func:`day_features` (spec 5.1)."""
POP_SOURCES = (2,)
"""Raw features (here spread) standardised over all meter-days: the last len(POP_SOURCES) features (spec 5.1)."""

MIN_DAYS = 7
"""A meter needs this many days for its own reference (spec 5.1)."""
ZERO_KWH = 1e-9
"""A reading at or below this is a zero reading (spec 5.1)."""
EPS_DAY_KWH = 0.01
"""Added to daily totals before the log ratio (spec 5.1), kWh."""
EPS_RATIO = 0.01
"""Added to the spread and roughness ratios before their log (spec 5.1)."""
FLOORS = np.array([0.05, 0.05, 0.02, 0.02, 0.02, 0.02, 0.0, 0.01, 0.05, 0.05, 0.02])
"""Lower bound of the robust spread of each raw feature (spec 5.1); zero_run's is set to 1/slots."""
CLIP = 30.0
"""Standardised features are clipped to [-CLIP, CLIP] (spec 5.1)."""
REF_WINDOW_DAYS = 29
"""Days in a meter-day's reference window, the day included (spec 5.1)."""
CHUNK_METERS = 32
"""At most this many meters are computed together (spec 5.1) ..."""
CHUNK_BYTES = 64 << 20
"""... and fewer when their readings take more than this many bytes (at least one meter)."""
WINDOW_BYTES = 256 << 20
"""Most bytes of gathered reference windows held at once."""
SEGMENT_MIN_DAYS = 14
"""Shortest segment of the change-point fit (spec 5.1); min(this, days // 4) for short data."""
WINSOR_Z = 3.0
"""The change-point fit clips a meter's series to its median +- this many robust spreads (spec 5.1)."""
CP_SOURCES = 2
"""Features standardised against a segment of the meter's history (total_cp, pop_shape_cp; spec 5.1)."""
CP_FLOORS = np.array([0.05, 0.02])
"""Lower bound of the segment spread of total_cp and pop_shape_cp (spec 5.1)."""


def loo_median(a: np.ndarray) -> np.ndarray:
    """Median along axis 1 of ``a`` leaving out each element in turn (spec 5.1).

    ``out[m, d, ...]`` is the median of ``a[m, e, ...]`` over ``e != d``; needs at
    least two entries along axis 1.
    """
    n = a.shape[1]
    if n < 2:
        raise ParameterError("a leave-one-out median needs at least 2 days")
    order = np.argsort(a, axis=1, kind="stable")
    srt = np.take_along_axis(a, order, axis=1)
    rank = np.empty_like(order)
    idx = np.arange(n).reshape((1, n) + (1,) * (a.ndim - 2))
    np.put_along_axis(rank, order, np.broadcast_to(idx, order.shape), axis=1)

    def kth(k: int) -> np.ndarray:
        # k-th smallest (from 0) of the n - 1 values left once the element of rank ``rank`` is removed
        return np.where(rank > k, srt[:, k:k + 1], srt[:, k + 1:k + 2])

    m = n - 1
    if m % 2 == 1:
        out = kth(m // 2)
    else:
        out = 0.5 * (kth(m // 2 - 1) + kth(m // 2))
    return out


def window_days(days: int, width: int) -> np.ndarray:
    """days x (n - 1): for each day, the other days of its reference window (spec 5.1).

    The window is ``n = min(width, days)`` consecutive days containing the day, centred on it
    where the data allow and shifted inwards at the start and end of the data.
    """
    n = min(width, days)
    half = (n - 1) // 2
    start = np.clip(np.arange(days) - half, 0, days - n)
    win = start[:, None] + np.arange(n)[None, :]
    keep = win != np.arange(days)[:, None]
    return win[keep].reshape(days, n - 1)


def window_median(a: np.ndarray, width: int) -> np.ndarray:
    """Median along axis 1 (days) over each day's reference window without the day itself (spec 5.1).

    A 3-D ``a`` (meters x days x slots) is done a block of slots at a time, so that the gathered
    windows never take more than ``WINDOW_BYTES``.
    """
    idx = window_days(a.shape[1], width)
    if a.ndim == 2:
        return np.median(np.take(a, idx, axis=1), axis=2)
    out = np.empty(a.shape)
    per_slot = a.shape[0] * idx.size * 8
    step = max(1, WINDOW_BYTES // per_slot)
    for lo in range(0, a.shape[2], step):
        out[..., lo:lo + step] = np.median(np.take(a[..., lo:lo + step], idx, axis=1), axis=2)
    return out


def _robust_z(f: np.ndarray, floors: np.ndarray) -> np.ndarray:
    """(f - leave-one-out median over days) / max(IQR over days / 1.349, floor), per meter and feature."""
    centre = loo_median(f)
    q75, q25 = np.percentile(f, [75.0, 25.0], axis=1, keepdims=True)
    scale = np.maximum((q75 - q25) / 1.349, floors)
    return (f - centre) / scale


def _corr(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis; 0 where either side is constant."""
    xc = x - x.mean(axis=-1, keepdims=True)
    pc = p - p.mean(axis=-1, keepdims=True)
    num = (xc * pc).sum(axis=-1)
    den = np.sqrt((xc * xc).sum(axis=-1) * (pc * pc).sum(axis=-1))
    small = den <= 1e-12 * np.maximum(1.0, np.abs(num))
    return np.where(small, 0.0, num / np.where(small, 1.0, den))


def _longest_run(mask: np.ndarray) -> np.ndarray:
    """Length of the longest run of True along the last axis."""
    run = np.zeros(mask.shape[:-1], dtype=np.int64)
    best = np.zeros_like(run)
    for t in range(mask.shape[-1]):
        run = np.where(mask[..., t], run + 1, 0)
        np.maximum(best, run, out=best)
    return best


def best_segment(y: np.ndarray, min_len: int) -> np.ndarray:
    """meters x days mask of the run of days that differs most in mean from the rest (spec 5.1).

    Per meter (a row of ``y``), the series is clipped to its median +- WINSOR_Z robust spreads; among
    all runs [a, b) with min_len <= b - a <= days - min_len, the one maximising
    (S_b - S_a - (b - a) mean)^2 / ((b - a)(days - b + a) / days), S the cumulative sums, is chosen,
    the shortest and then the earliest on a tie.
    """
    m, d = y.shape
    med = np.median(y, axis=1, keepdims=True)
    q75, q25 = np.percentile(y, [75.0, 25.0], axis=1, keepdims=True)
    s = np.maximum((q75 - q25) / 1.349, 1e-9)
    yw = np.clip(y, med - WINSOR_Z * s, med + WINSOR_Z * s)
    cum = np.concatenate([np.zeros((m, 1)), np.cumsum(yw, axis=1)], axis=1)
    mean = cum[:, -1:] / d
    best = np.full(m, -1.0)
    lo = np.zeros(m, dtype=np.int64)
    hi = np.zeros(m, dtype=np.int64)
    rows = np.arange(m)
    for length in range(min_len, d - min_len + 1):
        diff = cum[:, length:] - cum[:, :d - length + 1] - length * mean
        stat = diff * diff / (length * (d - length) / d)
        i = stat.argmax(axis=1)
        v = stat[rows, i]
        up = v > best
        best[up], lo[up], hi[up] = v[up], i[up], i[up] + length
    day = np.arange(d)[None, :]
    return (day >= lo[:, None]) & (day < hi[:, None])


def segment_z(y: np.ndarray, floor: float, min_len: int) -> np.ndarray:
    """y against the higher-median side of its best segment (spec 5.1), in that side's robust spread."""
    inside = best_segment(y, min_len)
    out = np.empty_like(y)
    for i in range(y.shape[0]):
        a, b = y[i, inside[i]], y[i, ~inside[i]]
        ref = a if np.median(a) >= np.median(b) else b
        q75, c, q25 = np.percentile(ref, [75.0, 50.0, 25.0])
        out[i] = (y[i] - c) / max((q75 - q25) / 1.349, floor)
    return out


def population_refs(kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per day, the median over meters of ln(total + EPS_DAY) and of the profile over the total (spec 5.1).

    A day of zeros counts as a flat profile. Done a block of days at a time (at most CHUNK_BYTES).
    """
    m, d, t = kwh.shape
    total = kwh.sum(axis=2)
    log_med = np.median(np.log(total + EPS_DAY_KWH), axis=0)
    profile = np.empty((d, t))
    step = max(1, CHUNK_BYTES // (m * t * 8))
    for lo in range(0, d, step):
        tot = total[:, lo:lo + step, None]
        share = np.where(tot > 0, kwh[:, lo:lo + step] / np.where(tot > 0, tot, 1.0), 1.0 / t)
        profile[lo:lo + step] = np.median(share, axis=0)
    return log_med, profile


def cp_features(kwh: np.ndarray, log_med: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """total_cp and pop_shape_cp of a meters x days x slots block, standardised, the positive side
    compressed (spec 5.1)."""
    d = kwh.shape[1]
    min_len = min(SEGMENT_MIN_DAYS, d // 4)
    out = np.empty(kwh.shape[:2] + (CP_SOURCES,))
    out[..., 0] = segment_z(np.log(kwh.sum(axis=2) + EPS_DAY_KWH) - log_med, float(CP_FLOORS[0]), min_len)
    out[..., 1] = segment_z(_corr(kwh, profile[None]), float(CP_FLOORS[1]), min_len)
    out = np.clip(out, -CLIP, CLIP)
    # above the reference is not evidence of theft: that side is compressed to ln(1 + z)
    return np.where(out > 0, np.log1p(np.maximum(out, 0.0)), out)


def raw_features(kwh: np.ndarray, slots_per_hour: float) -> np.ndarray:
    """The raw (not yet standardised) features of a meters x days x slots block (spec 5.1)."""
    m, d, t = kwh.shape
    total = kwh.sum(axis=2)
    mean = total / t
    ref_total = window_median(total, REF_WINDOW_DAYS)
    ref_profile = window_median(kwh, REF_WINDOW_DAYS)   # meters x days x slots, over the other days
    out = np.empty((m, d, len(FEATURE_NAMES) - len(POP_SOURCES) - CP_SOURCES))
    out[..., 0] = np.log((total + EPS_DAY_KWH) / (ref_total + EPS_DAY_KWH))
    eps_read = EPS_DAY_KWH / t
    out[..., 1] = np.log((kwh + eps_read) / (ref_profile + eps_read)).mean(axis=2)
    safe = np.where(mean > 0, mean, 1.0)
    out[..., 2] = np.log(EPS_RATIO + np.where(mean > 0, kwh.std(axis=2) / safe, 0.0))
    out[..., 3] = np.log(EPS_RATIO + np.where(mean > 0, np.abs(np.diff(kwh, axis=2)).mean(axis=2) / safe, 0.0))
    out[..., 4] = _corr(kwh, ref_profile)
    out[..., 5] = _corr(kwh, ref_profile[..., ::-1])
    out[..., 6] = _longest_run(kwh <= ZERO_KWH) / t
    night = int(round(6 * slots_per_hour))
    out[..., 7] = np.where(total > 0, kwh[..., :night].sum(axis=2) / np.where(total > 0, total, 1.0), 0.0)
    out[..., 8] = np.log((total + EPS_DAY_KWH) / (loo_median(total) + EPS_DAY_KWH))
    all_profile = loo_median(kwh)
    out[..., 9] = np.log((kwh + eps_read) / (all_profile + eps_read)).mean(axis=2)
    out[..., 10] = _corr(kwh, all_profile)
    return out


def day_features(data: LoadData, *, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Standardised features, meters x days x F (spec 5.1); ``progress(done, meters)`` after each block."""
    if not isinstance(data, LoadData):
        raise ParameterError("data must be a LoadData")
    m, d, t = data.kwh.shape
    if d < MIN_DAYS:
        raise ParameterError(f"features need at least {MIN_DAYS} days per meter, got {d}")
    if not np.all(np.isfinite(data.kwh)) or np.any(data.kwh < 0):
        bad = np.argwhere(~np.isfinite(data.kwh) | (data.kwh < 0))[0]
        raise ParameterError(f"kwh[{bad[0]}, {bad[1]}, {bad[2]}] (meter {data.meters[bad[0]]}) is negative or "
                             "not finite")
    floors = FLOORS.copy()
    floors[FEATURE_NAMES.index("zero_run")] = 1.0 / t
    own = len(FEATURE_NAMES) - len(POP_SOURCES) - CP_SOURCES
    log_med, profile = population_refs(data.kwh)
    out = np.empty((m, d, len(FEATURE_NAMES)))
    chunk = max(1, min(CHUNK_METERS, CHUNK_BYTES // (d * t * 8)))
    for lo in range(0, m, chunk):
        hi = min(m, lo + chunk)
        raw = raw_features(data.kwh[lo:hi], 60.0 / data.interval_minutes)
        out[lo:hi, :, :own] = np.clip(_robust_z(raw, floors[:own]), -CLIP, CLIP)
        out[lo:hi, :, own:own + CP_SOURCES] = cp_features(data.kwh[lo:hi], log_med, profile)
        out[lo:hi, :, own + CP_SOURCES:] = raw[..., list(POP_SOURCES)]
        if progress is not None:
            progress(hi, m)
    pop = out[..., own + CP_SOURCES:].reshape(-1, len(POP_SOURCES))
    q75, med, q25 = np.percentile(pop, [75.0, 50.0, 25.0], axis=0)
    scale = np.maximum((q75 - q25) / 1.349, floors[list(POP_SOURCES)])
    out[..., own + CP_SOURCES:] = np.clip((out[..., own + CP_SOURCES:] - med) / scale, -CLIP, CLIP)
    return out
