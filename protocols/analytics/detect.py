"""Run a detector, combine detectors, and the scores file (specs/analytics.md sections 7.2 and 9).

``detect(data, method)`` returns a meters x days grid of anomaly scores, higher =
more anomalous: the GMM of section 5, the RPCA of section 6, or their ensemble
(section 7.2): each detector's scores as robust z-scores, then the larger of the two.

The scores file is CSV with the header ``meter,day,score``, one row per
meter-day (``day`` an ISO 8601 date), in any order; it must cover every day
from the first to the last for every meter.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import inspect
import math
import os
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

import numpy as np

from protocols.analytics.data import MAX_DAYS, MAX_METERS, Labels, LoadData
from protocols.errors import DecodeError, ParameterError

METHODS = ("gmm", "rpca", "ensemble")
ENSEMBLE_RULES = ("max-z", "mean-z", "mean-rank")
"""Section 7.2: ways to combine detectors; ``max-z`` is the default."""
SCORES_HEADER = ("meter", "day", "score")
MAD_TO_SD = 1.4826
"""A normal distribution's standard deviation is 1.4826 times its median absolute deviation."""

Progress = Callable[[int, int], None]


_Config = TypeVar("_Config")


def _with_seed(config: _Config, seed: int | str) -> _Config:
    """``config`` with its ``seed`` field set, when it has one."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type) and any(
            f.name == "seed" for f in dataclasses.fields(config)):
        return cast(_Config, dataclasses.replace(config, seed=seed))
    return config


def _call(fn: Callable[..., object], data: LoadData, config: object, progress: Progress | None) -> object:
    """``fn(data, config)``, passing ``progress`` on when ``fn`` takes a ``progress`` keyword."""
    if progress is not None and "progress" in inspect.signature(fn).parameters:
        return fn(data, config, progress=progress)
    return fn(data, config)


def detector_scores(data: LoadData, method: str, seed: int | str = 0,
                    progress: Progress | None = None) -> np.ndarray:
    """One detector's meters x days scores: ``gmm`` (section 5) or ``rpca`` (section 6).

    ``progress(done, total)`` goes to the detector when it reports progress itself.
    """
    if method == "gmm":
        from protocols.analytics import gmm

        scores = _call(gmm.gmm_scores, data, _with_seed(gmm.GmmConfig(), seed), progress)
    elif method == "rpca":
        from protocols.analytics import rpca

        scores = _call(rpca.rpca_scores, data, _with_seed(rpca.RpcaConfig(), seed), progress)
    else:
        raise ParameterError(f"unknown detector {method!r}; known: gmm, rpca")
    result = np.asarray(scores, dtype=np.float64)
    if result.shape != data.kwh.shape[:2]:
        raise ParameterError(f"{method} returned scores of shape {result.shape}, not {data.kwh.shape[:2]}")
    return result


def robust_z(scores: np.ndarray) -> np.ndarray:
    """(score - median) / (1.4826 MAD) over all meter-days (section 7.2); the IQR / 1.349,
    then the standard deviation, stand in for a zero MAD; all zeros for constant scores."""
    s = np.asarray(scores, dtype=np.float64)
    centre = float(np.median(s))
    spread = MAD_TO_SD * float(np.median(np.abs(s - centre)))
    if spread <= 0:
        q1, q3 = np.percentile(s, (25, 75))
        spread = float(q3 - q1) / 1.349
    if spread <= 0:
        spread = float(np.std(s))
    if spread <= 0:
        return np.zeros_like(s)
    return (s - centre) / spread


def combine(grids: Sequence[np.ndarray], rule: str = "max-z") -> np.ndarray:
    """Section 7.2: combine detectors' score grids of one shape.

    ``max-z``: the largest robust z-score (a meter-day any detector finds
    unusual scores high); ``mean-z``: their mean; ``mean-rank``: the mean of each
    detector's rank fraction (rank / count, ties averaged).
    """
    if not grids:
        raise ParameterError("combine needs at least one score grid")
    arrays = [np.asarray(g, dtype=np.float64) for g in grids]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ParameterError("score grids to combine must have one shape")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ParameterError("score grids to combine must be finite")
    if rule == "max-z":
        return np.max([robust_z(a) for a in arrays], axis=0)
    if rule == "mean-z":
        return np.mean([robust_z(a) for a in arrays], axis=0)
    if rule == "mean-rank":
        from scipy.stats import rankdata

        return np.mean([rankdata(a, method="average").reshape(a.shape) / a.size for a in arrays], axis=0)
    raise ParameterError(f"unknown ensemble rule {rule!r}; known: {', '.join(ENSEMBLE_RULES)}")


PROGRESS_UNITS = 1000


def _scaled(progress: Progress, index: int, total: int) -> Progress:
    """Detector ``index``'s own (done, of) reported as part of the whole run's ``total`` units."""
    def report(done: int, of: int) -> None:
        if of > 0:
            progress(PROGRESS_UNITS * index + min(PROGRESS_UNITS - 1, PROGRESS_UNITS * done // of), total)
    return report


def detect(data: LoadData, method: str = "gmm", seed: int | str = 0, progress: Progress | None = None, *,
           rule: str = "max-z") -> np.ndarray:
    """Meters x days anomaly scores of ``method`` (``gmm``, ``rpca`` or ``ensemble``; section 7.2).

    ``progress(done, total)``: out of 1000 per detector, the detector's own progress when it
    reports any (the GMM's feature extraction), and each detector's end.
    """
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if not isinstance(data, LoadData):
        raise ParameterError("data must be a LoadData")
    parts = ("gmm", "rpca") if method == "ensemble" else (method,)
    grids = []
    total = PROGRESS_UNITS * len(parts)
    for index, part in enumerate(parts):
        inner = None if progress is None else _scaled(progress, index, total)
        grids.append(detector_scores(data, part, seed, inner))
        if progress is not None:
            progress(PROGRESS_UNITS * (index + 1), total)
    return grids[0] if method != "ensemble" else combine(grids, rule)


# --------------------------------------------------------------------------
# The scores file (section 9)


def write_scores(path: str | os.PathLike[str], data: LoadData | Labels, scores: np.ndarray) -> None:
    """Write ``scores`` (meters x days, aligned with ``data``'s meters and days) as ``meter,day,score``.

    Scores are written with ``repr`` (shortest round-trip decimal), so reading them back is exact.
    """
    grid = np.asarray(scores, dtype=np.float64)
    shape = (len(data.meters), data.codes.shape[1] if isinstance(data, Labels) else data.days)
    if grid.shape != shape:
        raise ParameterError(f"scores have shape {grid.shape}, the data {shape}")
    bad = np.argwhere(~np.isfinite(grid))
    if bad.size:
        m, d = bad[0]
        raise ParameterError(f"score of meter {data.meters[m]} day {d} is not finite")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SCORES_HEADER)
        for m, meter in enumerate(data.meters):
            for d in range(shape[1]):
                day = data.start + datetime.timedelta(days=d)
                writer.writerow((meter, day.isoformat(), repr(float(grid[m, d]))))


def _parse_row(row: list[str], line: int) -> tuple[str, datetime.date, float]:
    if len(row) != 3:
        raise DecodeError(f"scores line {line}: expected 3 fields meter,day,score, got {len(row)}")
    meter, day_text, score_text = row
    if not meter or meter != meter.strip():
        raise DecodeError(f"scores line {line}: bad meter id {meter!r}")
    try:
        day = datetime.date.fromisoformat(day_text)
    except ValueError:
        raise DecodeError(f"scores line {line}: day {day_text!r} is not an ISO 8601 date") from None
    try:
        score = float(score_text)
    except ValueError:
        raise DecodeError(f"scores line {line}: score {score_text!r} is not a number") from None
    if not math.isfinite(score):
        raise DecodeError(f"scores line {line}: score {score_text!r} is not finite")
    return meter, day, score


def read_scores(path: str | os.PathLike[str]) -> tuple[tuple[str, ...], datetime.date, np.ndarray]:
    """Read a scores file: ``(meters in first-seen order, first day, meters x days scores)``.

    A malformed row, a duplicate meter-day or a missing one (every meter must
    have every day from the earliest to the latest) is a ``DecodeError`` naming it.
    """
    values: dict[str, dict[datetime.date, float]] = {}
    first_line: dict[tuple[str, datetime.date], int] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != SCORES_HEADER:
            raise DecodeError(f"scores line 1: the header must be {','.join(SCORES_HEADER)}, not {header!r}")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            meter, day, score = _parse_row(row, line)
            days = values.get(meter)
            if days is None:
                if len(values) >= MAX_METERS:
                    raise DecodeError(f"scores line {line}: more than {MAX_METERS} meters")
                days = values[meter] = {}
            if day in days:
                raise DecodeError(f"scores line {line}: meter {meter} day {day} repeats line "
                                  f"{first_line[(meter, day)]}")
            days[day] = score
            first_line[(meter, day)] = line
    if not values:
        raise DecodeError("scores file has no rows")
    start = min(min(days) for days in values.values())
    end = max(max(days) for days in values.values())
    count = (end - start).days + 1
    if count > MAX_DAYS:
        raise DecodeError(f"scores span {count} days, more than {MAX_DAYS}")
    meters = tuple(values)
    grid = np.empty((len(meters), count))
    for m, meter in enumerate(meters):
        days = values[meter]
        for d in range(count):
            day = start + datetime.timedelta(days=d)
            if day not in days:
                raise DecodeError(f"scores file has no row for meter {meter} day {day}")
            grid[m, d] = days[day]
    return meters, start, grid


def align(meters: Sequence[str], start: datetime.date, scores: np.ndarray, labels: Labels) -> np.ndarray:
    """``scores`` (rows ``meters``, columns days from ``start``) reordered to ``labels``' meters and days.

    Both must cover the same meter-days; the first pair in one but not the other
    is named in a ``ParameterError``.
    """
    grid = np.asarray(scores, dtype=np.float64)
    if grid.ndim != 2 or grid.shape[0] != len(meters):
        raise ParameterError("scores must be a meters x days array, one row per meter")
    index = {meter: m for m, meter in enumerate(meters)}
    label_days = labels.codes.shape[1]
    offset = (labels.start - start).days
    for meter in labels.meters:
        if meter not in index:
            raise ParameterError(f"scores have no row for meter {meter} day {labels.start}")
        for d in (0, label_days - 1):
            if not 0 <= offset + d < grid.shape[1]:
                raise ParameterError(f"scores have no row for meter {meter} day "
                                     f"{labels.start + datetime.timedelta(days=d)}")
    label_meters = set(labels.meters)
    for meter in meters:
        if meter not in label_meters:
            raise ParameterError(f"labels have no row for meter {meter} day {start}")
    for d in (0, grid.shape[1] - 1):
        if not 0 <= d - offset < label_days:
            raise ParameterError(f"labels have no row for meter {meters[0]} day "
                                 f"{start + datetime.timedelta(days=d)}")
    rows = [index[meter] for meter in labels.meters]
    return grid[rows, offset:offset + label_days]
