"""Detection under privacy (specs/analytics.md section 8): what each privacy setting costs a detector.

Two views of the data a utility gets when the project's protocols are on:

* section 8.1, individual readings with differential-privacy noise: each
  household-day gets a budget epsilon, split evenly over its S readings; a
  reading, clipped to [0, C] Wh, gets discrete Laplace noise of scale S C / epsilon;
* section 8.2, neighbourhood sums: the meters are split into neighbourhoods of
  N and the utility sees only each neighbourhood's summed readings.

The same detectors (:func:`protocols.analytics.detect.detect`) run on each view;
:func:`study` returns one :class:`StudyRow` per setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from protocols.analytics import evaluate
from protocols.analytics.data import ATTACKS, LABEL_NAMES, MAX_METERS, Labels, LoadData, seed_int
from protocols.errors import ParameterError
from protocols.privacy.dp import LEVEL_EPSILON, PrivacyLevel

DEFAULT_CLIP_KW = 7.0
"""Section 8.1: a reading is clipped to this mean power over its interval (C = 7 kW x interval) before noise."""
DEFAULT_EPSILONS: tuple[str | float, ...] = ("none", "low", "medium", "high", 1000.0, 100.0, 10.0)
"""Section 8.1: the named levels of specs/dp.md section 4.1, plus larger budgets to show where detection returns."""
DEFAULT_SIZES = (1, 5, 20, 50)
"""Section 8.2: neighbourhood sizes N."""
MAX_EPSILON = 1e9

Detector = Callable[[LoadData], np.ndarray]


def epsilon_of(level: str | float | Fraction) -> float | None:
    """A privacy level name (``none``, ``low``, ``medium``, ``high``: specs/dp.md section 4.1) or a
    positive number as epsilon; None for ``none`` (no noise)."""
    if isinstance(level, str):
        try:
            eps = LEVEL_EPSILON[PrivacyLevel(level.strip().lower())]
        except ValueError:
            try:
                value = float(level)
            except ValueError:
                raise ParameterError(f"unknown privacy level {level!r}: none, low, medium, high or a "
                                     "positive epsilon") from None
            return epsilon_of(value)
        return None if eps is None else float(eps)
    if isinstance(level, bool) or not isinstance(level, (int, float, Fraction)):
        raise ParameterError(f"a privacy level is a name or a number, not {type(level).__name__}")
    value = float(level)
    if not (math.isfinite(value) and 0 < value <= MAX_EPSILON):
        raise ParameterError(f"epsilon must be in (0, {MAX_EPSILON:g}], not {level!r}")
    return value


def discrete_laplace_np(rng: np.random.Generator, scale: float, shape: tuple[int, ...]) -> np.ndarray:
    """Discrete Laplace noise, P(X = x) proportional to exp(-|x| / scale), as a difference of two
    geometric draws (section 8.1): fast floating-point sampling for this study only; the
    protocols use the exact sampler of protocols/privacy/dp.py (specs/dp.md section 3.4)."""
    if not (math.isfinite(scale) and scale > 0):
        raise ParameterError(f"scale must be positive, not {scale!r}")
    p = -math.expm1(-1.0 / scale)  # success probability 1 - exp(-1/scale)
    return rng.geometric(p, size=shape).astype(np.int64) - rng.geometric(p, size=shape).astype(np.int64)


def noisy_data(data: LoadData, epsilon: float, rng: np.random.Generator,
               clip_kw: float = DEFAULT_CLIP_KW) -> LoadData:
    """Section 8.1: readings in whole Wh, clipped to [0, C] with C = clip_kw x interval, plus discrete
    Laplace noise of scale S C / epsilon (S readings a day), clamped at 0 (post-processing)."""
    if not (math.isfinite(clip_kw) and clip_kw > 0):
        raise ParameterError(f"clip_kw must be positive, not {clip_kw!r}")
    bound = round(clip_kw * data.interval_minutes / 60 * 1000)
    wh = np.clip(np.rint(data.kwh * 1000), 0, bound).astype(np.int64)
    noise = discrete_laplace_np(rng, data.slots * bound / epsilon, wh.shape)
    return LoadData(data.meters, data.start, data.interval_minutes, np.maximum(wh + noise, 0) / 1000.0)


@dataclass(frozen=True)
class Neighbourhoods:
    """Section 8.2: ``groups[g]`` lists the meter indices summed into neighbourhood g."""

    size: int
    groups: np.ndarray
    """groups x size meter indices."""


def neighbourhoods(meters: int, size: int, rng: np.random.Generator) -> Neighbourhoods:
    """A random permutation of the meters cut into floor(meters / size) groups of ``size``;
    the last meters % size meters of the permutation are left out."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_METERS:
        raise ParameterError(f"a neighbourhood size is an int in [1, {MAX_METERS}], not {size!r}")
    if size > meters:
        raise ParameterError(f"a neighbourhood of {size} needs at least {size} meters, the data has {meters}")
    count = meters // size
    return Neighbourhoods(size, rng.permutation(meters)[:count * size].reshape(count, size))


def aggregate(data: LoadData, labels: Labels, hoods: Neighbourhoods) -> tuple[LoadData, np.ndarray]:
    """Section 8.2: the neighbourhoods' summed readings (meters named ``N000000``...) and, per
    neighbourhood-day and label code, how many member meter-days carry that code
    (groups x days x codes)."""
    summed = data.kwh[hoods.groups].sum(axis=1)
    names = tuple(f"N{g:06d}" for g in range(hoods.groups.shape[0]))
    codes = labels.codes[hoods.groups]  # groups x size x days
    counts = np.stack([(codes == c).sum(axis=1) for c in range(len(LABEL_NAMES))], axis=-1)
    return LoadData(names, data.start, data.interval_minutes, summed), counts


@dataclass(frozen=True)
class StudyRow:
    """One setting of the study (section 8): ``setting`` is ``dp`` or ``aggregate``."""

    setting: str
    parameter: str
    """The privacy level or epsilon (dp), or N (aggregate)."""
    epsilon: float | None
    size: int
    units: int
    """Scored units: meter-days (dp) or neighbourhood-days (aggregate)."""
    anomalous: int
    auc: float | None
    """None when the units are all anomalous or all normal."""
    per_kind: dict[str, float | None] = field(default_factory=dict)


def _auc_or_none(scores: np.ndarray, truth: np.ndarray) -> float | None:
    if truth.all() or not truth.any():
        return None
    return evaluate.roc_auc(scores, truth)


def _row(setting: str, parameter: str, epsilon: float | None, size: int, scores: np.ndarray,
         counts: np.ndarray) -> StudyRow:
    """``counts``: units x codes; a unit is anomalous when it holds any anomalous meter-day, and
    counts for kind k when it holds a meter-day of kind k; its negatives are the normal units."""
    s = scores.ravel()
    c = counts.reshape(-1, counts.shape[-1])
    anomalous = c[:, 1:].sum(axis=1) > 0
    per_kind: dict[str, float | None] = {}
    for kind in ATTACKS:
        has = c[:, kind] > 0
        chosen = has | ~anomalous
        per_kind[LABEL_NAMES[kind]] = _auc_or_none(s[chosen], has[chosen]) if has.any() else None
    return StudyRow(setting, parameter, epsilon, size, int(s.size), int(anomalous.sum()),
                    _auc_or_none(s, anomalous), per_kind)


def study(data: LoadData, labels: Labels, detector: Detector, *,
          levels: Sequence[str | float] = DEFAULT_EPSILONS, sizes: Sequence[int] = DEFAULT_SIZES,
          seed: int | str = 0, clip_kw: float = DEFAULT_CLIP_KW,
          progress: Callable[[int, int], None] | None = None) -> list[StudyRow]:
    """Run ``detector`` on every setting (section 8): first each level of ``levels`` (section 8.1),
    then each size of ``sizes`` (section 8.2), in the order given.

    Setting i draws from ``numpy.random.default_rng([seed_int(seed), i])``: the DP
    noise of all readings (first geometric array, then the second), or the
    neighbourhoods' permutation.
    """
    if labels.meters != data.meters or labels.start != data.start or labels.codes.shape != data.kwh.shape[:2]:
        raise ParameterError("labels must have the data's meters, start and days")
    epsilons = [epsilon_of(level) for level in levels]
    names = [level.strip() if isinstance(level, str) else f"{float(level):g}" for level in levels]
    for size in sizes:
        neighbourhoods(len(data.meters), size, np.random.default_rng(0))  # check every size before work
    base = seed_int(seed)
    total = len(epsilons) + len(sizes)
    per_meter = np.stack([(labels.codes == c) for c in range(len(LABEL_NAMES))], axis=-1).astype(np.int64)
    rows: list[StudyRow] = []
    for i, (name, eps) in enumerate(zip(names, epsilons)):
        rng = np.random.default_rng([base, i])
        view = data if eps is None else noisy_data(data, eps, rng, clip_kw)
        rows.append(_row("dp", name, eps, 1, detector(view), per_meter))
        if progress is not None:
            progress(len(rows), total)
    for j, size in enumerate(sizes):
        rng = np.random.default_rng([base, len(epsilons) + j])
        summed, counts = aggregate(data, labels, neighbourhoods(len(data.meters), size, rng))
        rows.append(_row("aggregate", str(size), None, size, detector(summed), counts))
        if progress is not None:
            progress(len(rows), total)
    return rows


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_table(rows: Sequence[StudyRow]) -> str:
    """Section 8: one line per setting: setting, epsilon or N, units, anomalous share, AUC, AUC per attack."""
    kinds = [LABEL_NAMES[k] for k in ATTACKS]
    header = ["setting", "epsilon/N", "units", "anomalous", "AUC"] + [f"AUC {k}" for k in kinds]
    table = [header]
    for row in rows:
        parameter = row.parameter if row.epsilon is None or row.parameter == f"{row.epsilon:g}" else \
            f"{row.parameter} ({row.epsilon:g})"
        table.append([row.setting, parameter, str(row.units), f"{row.anomalous / row.units:.1%}", _cell(row.auc)]
                     + [_cell(row.per_kind.get(k)) for k in kinds])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
