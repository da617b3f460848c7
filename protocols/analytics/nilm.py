"""The NILM attacker of battery load hiding (specs/battery.md section 5).

An attacker who reads a power trace (the household load, or the metered trace a
battery policy leaves on the grid) looks for appliance switching events:

- :func:`detect_edges` finds step changes in the style of Hart's edge detector
  (steady segments separated by transitions, section 5.1);
- :func:`match_edges` pairs detected edges with the true switching events the
  generator recorded (section 5.2), giving event recall per appliance;
- :func:`classify` trains a per-appliance classifier on the unmasked load of one
  part of the data and applies it to the metered trace of the other (section 5.3);
- :func:`mutual_information` is a plug-in estimate, with the Miller-Madow
  correction, of the information the metered trace carries about the load
  (section 5.4).

:func:`leakage` runs all four and returns a :class:`LeakageReport`.  Events are
any object with the five arrays of ``loadgen.Events`` (meter, appliance,
start_minute, duration_minutes, power_kw); nothing here imports the generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from protocols.analytics.data import INTERVALS_MINUTES, MAX_DAYS, MAX_KWH_PER_MINUTE, LoadData
from protocols.errors import ParameterError

MAX_KW = MAX_KWH_PER_MINUTE * 60
"""100 kW: the largest power magnitude accepted in a trace (specs/analytics.md section 2.3)."""
MAX_SAMPLES = MAX_DAYS * 1440
"""Longest trace per meter: MAX_DAYS days of 1-minute readings."""
MAX_CELLS = 1 << 27
"""Most readings (meters x samples) one call accepts, about 134 million."""
MAX_EVENTS = 1 << 26
"""Most true events one call accepts."""
MIN_BIN_KW = 1e-6
"""Smallest MI bin width (section 5.4): keeps every code of a 100 kW value within int64."""
_EPS = 1e-9
"""kW: rounding allowance in the step-size and matching comparisons (section 5.1)."""


class EventsLike(Protocol):
    """The loadgen.Events contract: one row per switching event (read-only attributes suffice)."""

    @property
    def meter(self) -> np.ndarray: ...
    @property
    def appliance(self) -> np.ndarray: ...
    @property
    def start_minute(self) -> np.ndarray: ...
    @property
    def duration_minutes(self) -> np.ndarray: ...
    @property
    def power_kw(self) -> np.ndarray: ...


# --------------------------------------------------------------------------- parameters


def _number(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> float:
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)):
        raise ParameterError(f"{name} must be a finite number, not {value!r}")
    if not (low < value if open_low else low <= value) or value > high:
        raise ParameterError(f"{name} must be in {'(' if open_low else '['}{low}, {high}], not {value}")
    return float(value)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{name} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise ParameterError(f"{name} must be in [{low}, {high}], not {value}")
    return int(value)


@dataclass(frozen=True)
class DetectorConfig:
    """Edge detector parameters (section 5.1); powers in kW, times in minutes.

    ``min_step_kw``: smallest |step| reported.  ``steady_tolerance_kw``: a sample is in a
    transition when it differs from the sample ``window_minutes`` earlier by more than this.
    ``window_minutes``: 1 for the fast attacker; 10 for one that looks for steps completed
    within 10 minutes.  ``max_transition_minutes``: longer transitions are not steps (default
    ``2 * window_minutes``).  ``level_minutes``: the steady level on each side is the mean of
    at most this many samples next to the transition.  ``median_minutes``: odd width of an
    optional median filter (1 = none).  ``also_fast``: with a window above 1, also report the
    lag-1 edges and keep only the window edges that contain none of them (multi-scale).
    """

    min_step_kw: float = 0.2
    steady_tolerance_kw: float = 0.05
    window_minutes: int = 1
    max_transition_minutes: int | None = None
    level_minutes: int = 3
    median_minutes: int = 1
    also_fast: bool = True

    def __post_init__(self) -> None:
        _number("min_step_kw", self.min_step_kw, 0.0, MAX_KW, open_low=True)
        _number("steady_tolerance_kw", self.steady_tolerance_kw, 0.0, MAX_KW, open_low=True)
        if self.steady_tolerance_kw >= self.min_step_kw:
            raise ParameterError(f"steady_tolerance_kw ({self.steady_tolerance_kw}) must be below min_step_kw "
                                 f"({self.min_step_kw})")
        _integer("window_minutes", self.window_minutes, 1, 1440)
        if self.max_transition_minutes is not None:
            _integer("max_transition_minutes", self.max_transition_minutes, 1, 2880)
        _integer("level_minutes", self.level_minutes, 1, 1440)
        _integer("median_minutes", self.median_minutes, 1, 59)
        if self.median_minutes % 2 == 0:
            raise ParameterError(f"median_minutes must be odd, not {self.median_minutes}")
        if not isinstance(self.also_fast, bool):
            raise ParameterError("also_fast must be a bool")

    @property
    def max_transition(self) -> int:
        """The longest transition, in minutes, that still counts as a step."""
        return 2 * self.window_minutes if self.max_transition_minutes is None else self.max_transition_minutes


@dataclass(frozen=True)
class MatchConfig:
    """Matching of edges to true events (section 5.2).

    An edge matches an event when ``|edge minute - event minute| <= tolerance_minutes`` and
    ``|edge kW - event kW| <= max(relative_tolerance * event kW, absolute_tolerance_kw)``.
    """

    tolerance_minutes: int = 2
    relative_tolerance: float = 0.25
    absolute_tolerance_kw: float = 0.05

    def __post_init__(self) -> None:
        _integer("tolerance_minutes", self.tolerance_minutes, 0, 1440)
        _number("relative_tolerance", self.relative_tolerance, 0.0, 10.0)
        _number("absolute_tolerance_kw", self.absolute_tolerance_kw, 0.0, MAX_KW)


@dataclass(frozen=True)
class LeakageConfig:
    """Everything :func:`leakage` uses (sections 5.1-5.4).

    ``split``: "auto" (by meter when there are two meters or more, else by day), "meters"
    (even meter rows train, odd evaluate) or "days" (even days train, odd evaluate).
    ``max_pair_minutes``: an on-edge's duration feature is the time to the first later
    off-edge of matching size within this many minutes, else this value.
    ``chance_shift_minutes``: the events are moved by this much to measure chance matches (5.2).
    ``mi_bin_kw``: bin width of the quantiser of section 5.4.
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
    split: str = "auto"
    max_pair_minutes: int = 360
    chance_shift_minutes: int = 45
    tree_depth: int = 6
    mi_bin_kw: float = 0.1
    miller_madow: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.detector, DetectorConfig) or not isinstance(self.match, MatchConfig):
            raise ParameterError("detector and match must be DetectorConfig and MatchConfig")
        if self.split not in ("auto", "meters", "days"):
            raise ParameterError(f"split must be auto, meters or days, not {self.split!r}")
        _integer("max_pair_minutes", self.max_pair_minutes, 1, 10_080)
        _integer("chance_shift_minutes", self.chance_shift_minutes, 1, 10_080)
        _integer("tree_depth", self.tree_depth, 1, 32)
        _number("mi_bin_kw", self.mi_bin_kw, MIN_BIN_KW, MAX_KW)
        if not isinstance(self.miller_madow, bool):
            raise ParameterError("miller_madow must be a bool")


def slow_attacker() -> LeakageConfig:
    """The slower attacker of issue 19: steps completed within 10 minutes, matched within 10 minutes."""
    return LeakageConfig(detector=DetectorConfig(window_minutes=10),
                         match=MatchConfig(tolerance_minutes=10))


# --------------------------------------------------------------------------- input checks


def _interval(interval_minutes: Any) -> int:
    if isinstance(interval_minutes, bool) or interval_minutes not in INTERVALS_MINUTES:
        raise ParameterError(f"interval_minutes must be one of {INTERVALS_MINUTES}, not {interval_minutes!r}")
    return int(interval_minutes)


def _trace(name: str, values: Any, *, signed: bool) -> np.ndarray:
    """A 1-D trace of kW or a meters x samples array, finite, bounded; returned as 2-D float64."""
    if not isinstance(values, np.ndarray):
        raise ParameterError(f"{name} must be a numpy array")
    if values.ndim not in (1, 2) or values.size == 0:
        raise ParameterError(f"{name} must be a non-empty 1-D trace or meters x samples array, "
                             f"not shape {values.shape}")
    if values.size > MAX_CELLS or values.shape[-1] > MAX_SAMPLES:
        raise ParameterError(f"{name} has shape {values.shape}: at most {MAX_SAMPLES} samples per meter "
                             f"and {MAX_CELLS} in all")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise ParameterError(f"{name} must hold real numbers")
    x = np.atleast_2d(np.asarray(values, dtype=np.float64))
    bad = ~np.isfinite(x) | (np.abs(x) > MAX_KW) | (False if signed else x < 0)
    if bad.any():
        m, t = (int(i) for i in np.argwhere(bad)[0])
        limit = f"|kW| <= {MAX_KW:g}" if signed else f"0 <= kW <= {MAX_KW:g}"
        raise ParameterError(f"{name}: meter row {m}, sample {t} is {x[m, t]!r}; need finite {limit}")
    return x


@dataclass(frozen=True)
class _Events:
    meter: np.ndarray
    appliance: np.ndarray
    start: np.ndarray
    duration: np.ndarray
    power: np.ndarray


def _events(events: Any, meters: int, samples: int, interval: int) -> _Events:
    fields = ("meter", "appliance", "start_minute", "duration_minutes", "power_kw")
    cols = []
    for f in fields:
        a = getattr(events, f, None)
        if not isinstance(a, np.ndarray) or a.ndim != 1:
            raise ParameterError(f"events.{f} must be a 1-D numpy array")
        cols.append(a)
    n = cols[0].shape[0]
    if any(c.shape[0] != n for c in cols):
        raise ParameterError(f"events fields differ in length: {[c.shape[0] for c in cols]}")
    if n > MAX_EVENTS:
        raise ParameterError(f"{n} events; at most {MAX_EVENTS}")
    for f, c in zip(fields[:4], cols[:4]):
        if c.dtype.kind not in "iu":
            raise ParameterError(f"events.{f} must be integers")
    if cols[4].dtype.kind != "f":
        raise ParameterError("events.power_kw must be floats")
    meter, appl, start, dur = (c.astype(np.int64) for c in cols[:4])
    power = cols[4].astype(np.float64)
    horizon = samples * interval
    checks = (("meter", meter, (meter < 0) | (meter >= meters)),
              ("appliance", appl, (appl < 0) | (appl > 32_767)),
              ("start_minute", start, (start < 0) | (start >= horizon)),
              ("duration_minutes", dur, (dur < 1) | (dur > horizon)),
              ("power_kw", power, ~np.isfinite(power) | (power <= 0) | (power > MAX_KW)))
    for f, col, bad in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise ParameterError(f"events row {i}: {f} = {col[i]!r} is out of range")
    return _Events(meter, appl, start, dur, power)


# --------------------------------------------------------------------------- 5.1 edges


@dataclass(frozen=True)
class Edges:
    """Detected step changes of one trace (section 5.1), in time order.

    ``index``: sample at which the transition starts; ``delta_kw``: steady level after minus
    steady level before; ``sign``: +1 on-edge, -1 off-edge; ``length``: samples in the transition.
    """

    index: np.ndarray
    delta_kw: np.ndarray
    sign: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return int(self.index.shape[0])


def _samples(minutes: int, interval: int) -> int:
    return max(1, round(minutes / interval))


def detect_edges(trace_kw: np.ndarray, *, interval_minutes: int = 1,
                 config: DetectorConfig = DetectorConfig()) -> Edges:
    """Hart-style edge detection on a 1-D trace of average kW per sample (section 5.1)."""
    interval = _interval(interval_minutes)
    if not isinstance(trace_kw, np.ndarray) or trace_kw.ndim != 1:
        raise ParameterError("trace_kw must be a 1-D numpy array")
    if not isinstance(config, DetectorConfig):
        raise ParameterError("config must be a DetectorConfig")
    x = _trace("trace_kw", trace_kw, signed=True)[0]
    return _detect(x, interval, config)


def _detect(x: np.ndarray, interval: int, config: DetectorConfig) -> Edges:
    med = _samples(config.median_minutes, interval)
    if med > 1:
        from scipy.ndimage import median_filter
        x = median_filter(x, size=med | 1, mode="nearest")
    w = _samples(config.window_minutes, interval)
    level = _samples(config.level_minutes, interval)
    edges = _scan(x, w, _samples(config.max_transition, interval), level, config)
    if w == 1 or not config.also_fast:
        return edges
    # Multi-scale (section 5.1): the lag-1 edges, plus the window edges containing no lag-1 edge of their sign.
    fast = _scan(x, 1, 2, level, config)
    last = edges.index + edges.length - 1
    covered = np.zeros(len(edges), dtype=bool)
    for sign in (1, -1):
        f = fast.index[fast.sign == sign]
        mine = edges.sign == sign
        covered[mine] = (np.searchsorted(f, last[mine], side="right")
                         - np.searchsorted(f, edges.index[mine], side="left")) > 0
    keep = ~covered
    index = np.concatenate((fast.index, edges.index[keep]))
    order = np.argsort(index, kind="stable")
    return Edges(index[order], np.concatenate((fast.delta_kw, edges.delta_kw[keep]))[order],
                 np.concatenate((fast.sign, edges.sign[keep]))[order],
                 np.concatenate((fast.length, edges.length[keep]))[order])


def _scan(x: np.ndarray, w: int, max_length: int, level: int, config: DetectorConfig) -> Edges:
    """Steps 2-6 of section 5.1: lag ``w``, transitions of at most ``max_length``, levels over ``level`` samples."""
    n = x.shape[0]
    changing = np.zeros(n + 1, dtype=bool)   # changing[t]: |x_t - x_{t-w}| > tolerance; a False sentinel at n
    if n > w:
        changing[w:n] = np.abs(x[w:] - x[:-w]) > config.steady_tolerance_kw
    rises = np.flatnonzero(changing[1:] & ~changing[:-1]) + 1   # runs never start at 0 (w >= 1)
    ends = np.flatnonzero(changing[:-1] & ~changing[1:])        # last index of each run
    if rises.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Edges(empty, np.zeros(0), np.zeros(0, dtype=np.int8), empty)
    csum = np.concatenate(([0.0], np.cumsum(x)))
    prev_end = np.concatenate(([0], ends[:-1]))
    next_start = np.concatenate((rises[1:], [n]))
    lo = np.maximum(rises - level, prev_end)
    hi = np.minimum(ends + level, next_start)
    before = (csum[rises] - csum[lo]) / (rises - lo)
    after = (csum[hi] - csum[ends]) / (hi - ends)
    delta = after - before
    length = ends - rises + 1
    keep = (np.abs(delta) >= config.min_step_kw - _EPS) & (length <= max_length)
    d = delta[keep]
    return Edges(rises[keep].astype(np.int64), d, np.where(d > 0, 1, -1).astype(np.int8),
                 length[keep].astype(np.int64))


# --------------------------------------------------------------------------- 5.2 matching


def _greedy(edge_t: np.ndarray, edge_kw: np.ndarray, ev_t: np.ndarray, ev_kw: np.ndarray,
            match: MatchConfig) -> np.ndarray:
    """For each event, the index of its matched edge or -1 (one-to-one, greedy, section 5.2)."""
    result = np.full(ev_t.shape[0], -1, dtype=np.int64)
    if ev_t.size == 0 or edge_t.size == 0:
        return result
    order = np.argsort(edge_t, kind="stable")
    st = edge_t[order]
    lo = np.searchsorted(st, ev_t - match.tolerance_minutes, side="left")
    hi = np.searchsorted(st, ev_t + match.tolerance_minutes, side="right")
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return result
    ev_idx = np.repeat(np.arange(ev_t.shape[0]), counts)
    offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    edge_idx = order[np.repeat(lo, counts) + offs]
    dt = np.abs(edge_t[edge_idx] - ev_t[ev_idx])
    err = np.abs(edge_kw[edge_idx] - ev_kw[ev_idx])
    ok = err <= np.maximum(match.relative_tolerance * ev_kw[ev_idx], match.absolute_tolerance_kw) + _EPS
    ev_idx, edge_idx, dt, err = ev_idx[ok], edge_idx[ok], dt[ok], err[ok]
    rank = np.lexsort((edge_idx, ev_idx, err, dt))
    used_edge = np.zeros(edge_t.shape[0], dtype=bool)
    for k in rank:
        e, g = ev_idx[k], edge_idx[k]
        if result[e] < 0 and not used_edge[g]:
            result[e] = g
            used_edge[g] = True
    return result


@dataclass(frozen=True)
class Matching:
    """Result of :func:`match_edges`: per event the matched on- and off-edge (index into edges, or -1)."""

    on_edge: np.ndarray
    off_edge: np.ndarray
    eligible: np.ndarray


def match_edges(edges: Edges, events_start_minute: np.ndarray, events_duration_minutes: np.ndarray,
                events_power_kw: np.ndarray, *, interval_minutes: int = 1,
                match: MatchConfig = MatchConfig(), min_step_kw: float = 0.2) -> Matching:
    """Match one meter's edges to its true events (section 5.2).

    On-edges (delta > 0) against event starts with +power, off-edges against event ends
    (start + duration) with -power.  An event is eligible when its power is at least
    ``min_step_kw``; ineligible events are never matched.
    """
    interval = _interval(interval_minutes)
    if not isinstance(match, MatchConfig):
        raise ParameterError("match must be a MatchConfig")
    _number("min_step_kw", min_step_kw, 0.0, MAX_KW, open_low=True)
    arrays = (events_start_minute, events_duration_minutes, events_power_kw)
    if not all(isinstance(a, np.ndarray) and a.ndim == 1 for a in arrays) or len({a.shape for a in arrays}) != 1:
        raise ParameterError("event arrays must be 1-D numpy arrays of one length")
    return _match(edges, events_start_minute.astype(np.int64), events_duration_minutes.astype(np.int64),
                  events_power_kw.astype(np.float64), interval, match, min_step_kw)


def _match(edges: Edges, start: np.ndarray, dur: np.ndarray, power: np.ndarray, interval: int,
           match: MatchConfig, min_step: float) -> Matching:
    eligible = power >= min_step - _EPS
    minute = edges.index * interval
    on = edges.sign > 0
    on_edge = np.full(start.shape[0], -1, dtype=np.int64)
    off_edge = np.full(start.shape[0], -1, dtype=np.int64)
    el = np.flatnonzero(eligible)
    on_idx, off_idx = np.flatnonzero(on), np.flatnonzero(~on)
    m_on = _greedy(minute[on_idx], edges.delta_kw[on_idx], start[el], power[el], match)
    m_off = _greedy(minute[off_idx], -edges.delta_kw[off_idx], start[el] + dur[el], power[el], match)
    on_edge[el] = np.where(m_on >= 0, on_idx[np.maximum(m_on, 0)] if on_idx.size else -1, -1)
    off_edge[el] = np.where(m_off >= 0, off_idx[np.maximum(m_off, 0)] if off_idx.size else -1, -1)
    return Matching(on_edge, off_edge, eligible)


# --------------------------------------------------------------------------- 5.4 mutual information


def _codes(x: np.ndarray, bin_width: float) -> np.ndarray:
    return np.floor(x / bin_width).astype(np.int64)


def _entropy_counts(counts: np.ndarray, n: int, miller_madow: bool) -> float:
    p = counts / n
    h = float(-(p * np.log2(p)).sum())
    if miller_madow:
        h += (counts.size - 1) / (2 * n * math.log(2))
    return h


def _pair_mi(a: np.ndarray, b: np.ndarray, miller_madow: bool) -> tuple[float, float]:
    """(MI, H(a)) in bits for integer codes a, b."""
    n = a.shape[0]
    _, ia, ca = np.unique(a, return_inverse=True, return_counts=True)
    _, ib, cb = np.unique(b, return_inverse=True, return_counts=True)
    _, cab = np.unique(ia.astype(np.int64) * cb.size + ib, return_counts=True)
    ha = _entropy_counts(ca, n, miller_madow)
    hb = _entropy_counts(cb, n, miller_madow)
    hab = _entropy_counts(cab, n, miller_madow)
    return max(0.0, ha + hb - hab), ha


def _check_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, np.ndarray) or v.ndim != 1 or v.size == 0:
            raise ParameterError(f"{name} must be a non-empty 1-D numpy array")
    if x.shape != y.shape:
        raise ParameterError(f"x and y differ in length: {x.shape[0]} and {y.shape[0]}")
    return _trace("x", x, signed=True)[0], _trace("y", y, signed=True)[0]


def mutual_information(x: np.ndarray, y: np.ndarray, *, bin_width: float = 0.1,
                       miller_madow: bool = True) -> float:
    """Plug-in MI in bits per sample of x and y quantised to ``floor(v / bin_width)`` (section 5.4)."""
    _number("bin_width", bin_width, MIN_BIN_KW, MAX_KW)
    a, b = _check_pair(x, y)
    return _pair_mi(_codes(a, bin_width), _codes(b, bin_width), bool(miller_madow))[0]


def entropy(x: np.ndarray, *, bin_width: float = 0.1, miller_madow: bool = True) -> float:
    """Entropy in bits of x quantised as in :func:`mutual_information`; MI(x, x) equals it."""
    _number("bin_width", bin_width, MIN_BIN_KW, MAX_KW)
    a, _ = _check_pair(x, x)
    _, c = np.unique(_codes(a, bin_width), return_counts=True)
    return _entropy_counts(c, a.shape[0], bool(miller_madow))


def _edge_series(edges: Edges, n: int) -> np.ndarray:
    s = np.zeros(n, dtype=np.int64)
    s[edges.index] = edges.sign
    return s


# --------------------------------------------------------------------------- 5.3 classifier


def _durations(edges: Edges, interval: int, match: MatchConfig, max_pair: int) -> np.ndarray:
    """Per on-edge: minutes to the first later off-edge of matching size (section 5.3), else max_pair."""
    minute = edges.index * interval
    on = np.flatnonzero(edges.sign > 0)
    off = np.flatnonzero(edges.sign < 0)
    out = np.full(on.shape[0], float(max_pair))
    off_min = minute[off]                     # increasing: edges are in time order
    off_size = -edges.delta_kw[off]
    lo = np.searchsorted(off_min, minute[on], side="right")
    hi = np.searchsorted(off_min, minute[on] + max_pair, side="right")
    counts = hi - lo
    chunk = 1 << 16                           # bounds the candidate pairs held at once
    for c0 in range(0, on.shape[0], chunk):
        cnt = counts[c0:c0 + chunk]
        total = int(cnt.sum())
        if total == 0:
            continue
        row = np.repeat(np.arange(cnt.shape[0]), cnt)
        j = np.repeat(lo[c0:c0 + chunk], cnt) + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        size = edges.delta_kw[on[c0:c0 + chunk]]
        tol = np.maximum(match.relative_tolerance * size, match.absolute_tolerance_kw) + _EPS
        ok = np.abs(off_size[j] - size[row]) <= tol[row]
        row, j = row[ok], j[ok]
        first = np.unique(row, return_index=True)   # candidates are in time order within a row
        out[c0 + first[0]] = (off_min[j[first[1]]] - minute[on[c0 + first[0]]]).astype(np.float64)
    return out


@dataclass(frozen=True)
class _Side:
    """Edges, matching and classifier features of every meter of one trace (load or metered)."""

    edges: list[Edges]
    matching: list[Matching]
    features: list[np.ndarray]    # per meter: (on-edges, 2) = (|delta kW|, duration minutes)


def _analyse(x: np.ndarray, ev: _Events, interval: int, config: LeakageConfig) -> _Side:
    edges, matchings, feats = [], [], []
    for m in range(x.shape[0]):
        e = _detect(x[m], interval, config.detector)
        sel = ev.meter == m
        mt = _match(e, ev.start[sel], ev.duration[sel], ev.power[sel], interval, config.match,
                    config.detector.min_step_kw)
        on = e.sign > 0
        f = np.column_stack((np.abs(e.delta_kw[on]),
                             _durations(e, interval, config.match, config.max_pair_minutes)))
        edges.append(e)
        matchings.append(mt)
        feats.append(f)
    return _Side(edges, matchings, feats)


def _labelled(side: _Side, ev: _Events, meter: int, part: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features and true appliance of the on-edges of ``meter`` matched to events in ``part`` (event rows)."""
    sel = np.flatnonzero(ev.meter == meter)
    mt = side.matching[meter]
    e = side.edges[meter]
    on_rank = np.cumsum(e.sign > 0) - 1       # edge index -> row of features
    rows = np.flatnonzero((mt.on_edge >= 0) & part[sel])
    feats = side.features[meter][on_rank[mt.on_edge[rows]]] if rows.size else np.zeros((0, 2))
    return feats, ev.appliance[sel[rows]], sel[rows]


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class LeakageReport:
    """What the attacker of section 5 learns from the metered trace (per-appliance maps keyed by name).

    recall: eligible true events whose on-edge is found in the metered trace / eligible events.
    recall_load: the same on the unmasked load (the attacker's ceiling).
    chance_recall: the recall against the events moved later by chance_shift_minutes (a baseline).
    class_recall: evaluation-part eligible events detected and classified as their appliance /
    eligible events of the evaluation part (None when no training edge exists).
    mi_floor_bits: the same MI estimate with the metered samples shuffled (the estimator's bias floor).
    """

    meters: int
    meter_days: float
    events: int
    eligible: int
    detected: int
    recall: float
    recall_by_appliance: dict[str, float]
    eligible_by_appliance: dict[str, int]
    off_recall: float
    recall_load: float
    chance_recall: float
    precision: float
    edges_per_day: float
    detectable_events_per_day: float
    split: str
    train_edges: int
    class_recall: float | None
    class_recall_by_appliance: dict[str, float]
    mi_bits: float
    mi_floor_bits: float
    h_load_bits: float
    mi_edges_bits: float
    config: LeakageConfig


def _events_from_load(x: np.ndarray, interval: int, config: LeakageConfig) -> _Events:
    """Pseudo events: each on-edge of the load, its size, and the duration feature of section 5.3."""
    cols: list[list[np.ndarray]] = [[], [], [], []]
    horizon = x.shape[1] * interval
    for m in range(x.shape[0]):
        e = _detect(x[m], interval, config.detector)
        on = e.sign > 0
        start = e.index[on] * interval
        dur = _durations(e, interval, config.match, config.max_pair_minutes).astype(np.int64)
        cols[0].append(np.full(start.shape[0], m, dtype=np.int64))
        cols[1].append(start)
        cols[2].append(np.minimum(dur, horizon))
        cols[3].append(e.delta_kw[on])
    meter, start, dur, power = (np.concatenate(c) for c in cols)
    return _Events(meter, np.zeros_like(meter), start, dur, power)


def _name(names: Sequence[str] | None, a: int) -> str:
    if names is not None and 0 <= a < len(names):
        return str(names[a])
    return f"appliance-{a}"


def leakage(load_kw: np.ndarray, metered_kw: np.ndarray, events: EventsLike | None, interval_minutes: int = 1,
            config: LeakageConfig = LeakageConfig(), *,
            appliance_names: Sequence[str] | None = None) -> LeakageReport:
    """Run the attacker of section 5 on a load and its metered trace (kW, meters x samples or 1-D).

    ``events.meter`` indexes the rows; ``events.start_minute`` counts from the first sample.
    ``events=None`` (data without a record of events): the edges detected in the load stand in
    for the true events, all of one appliance named "load-edge" (section 5.2).
    """
    interval = _interval(interval_minutes)
    if not isinstance(config, LeakageConfig):
        raise ParameterError("config must be a LeakageConfig")
    if appliance_names is not None and (isinstance(appliance_names, str)
                                        or not all(isinstance(s, str) for s in appliance_names)):
        raise ParameterError("appliance_names must be a sequence of strings")
    x = _trace("load_kw", load_kw, signed=False)
    y = _trace("metered_kw", metered_kw, signed=True)
    if x.shape != y.shape:
        raise ParameterError(f"load_kw and metered_kw differ in shape: {x.shape} and {y.shape}")
    meters, samples = x.shape
    if events is None:
        ev = _events_from_load(x, interval, config)
        appliance_names = ("load-edge",)
    else:
        ev = _events(events, meters, samples, interval)
    load = _analyse(x, ev, interval, config)
    metered = _analyse(y, ev, interval, config)
    meter_days = meters * samples * interval / 1440

    eligible = np.zeros(ev.meter.shape[0], dtype=bool)
    found = np.zeros_like(eligible)
    found_off = np.zeros_like(eligible)
    found_load = np.zeros_like(eligible)
    matched_edges = 0
    chance = 0
    for m in range(meters):
        sel = np.flatnonzero(ev.meter == m)
        eligible[sel] = metered.matching[m].eligible
        found[sel] = metered.matching[m].on_edge >= 0
        found_off[sel] = metered.matching[m].off_edge >= 0
        found_load[sel] = load.matching[m].on_edge >= 0
        moved = (ev.start[sel] + config.chance_shift_minutes) % (samples * interval)
        chance += int((_match(metered.edges[m], moved, ev.duration[sel], ev.power[sel], interval, config.match,
                              config.detector.min_step_kw).on_edge >= 0).sum())
        matched_edges += int(found[sel].sum() + found_off[sel].sum())
    n_edges = sum(len(e) for e in metered.edges)

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    recall_by: dict[str, float] = {}
    eligible_by: dict[str, int] = {}
    for a in np.unique(ev.appliance[eligible]):
        s = eligible & (ev.appliance == a)
        recall_by[_name(appliance_names, int(a))] = float(found[s].sum() / s.sum())
        eligible_by[_name(appliance_names, int(a))] = int(s.sum())

    # 5.3: train on the load's matched on-edges of the training part, evaluate on the metered trace's.
    split = config.split if config.split != "auto" else ("meters" if meters >= 2 else "days")
    if split == "meters":
        train_part = ev.meter % 2 == 0
    else:
        train_part = (ev.start // 1440) % 2 == 0
    xs, ys = [], []
    for m in range(meters):
        f, lab, _ = _labelled(load, ev, m, train_part)
        xs.append(f)
        ys.append(lab)
    x_train = np.concatenate(xs)
    y_train = np.concatenate(ys)
    class_recall: float | None = None
    class_by: dict[str, float] = {}
    eval_eligible = eligible & ~train_part
    if y_train.size and eval_eligible.any():
        from sklearn.tree import DecisionTreeClassifier
        tree = DecisionTreeClassifier(max_depth=config.tree_depth, random_state=0).fit(x_train, y_train)
        correct = np.zeros_like(eligible)
        for m in range(meters):
            f, lab, rows = _labelled(metered, ev, m, ~train_part)
            if rows.size:
                correct[rows] = tree.predict(f) == lab
        class_recall = float(correct[eval_eligible].sum() / eval_eligible.sum())
        for a in np.unique(ev.appliance[eval_eligible]):
            s = eval_eligible & (ev.appliance == a)
            class_by[_name(appliance_names, int(a))] = float(correct[s].sum() / s.sum())

    mi, floor, h_load, mi_edges = [], [], [], []
    rng = np.random.default_rng(0)
    for m in range(meters):
        cx, cy = _codes(x[m], config.mi_bin_kw), _codes(y[m], config.mi_bin_kw)
        i, h = _pair_mi(cx, cy, config.miller_madow)
        mi.append(i)
        h_load.append(h)
        floor.append(_pair_mi(cx, cy[rng.permutation(samples)], config.miller_madow)[0])
        mi_edges.append(_pair_mi(_edge_series(load.edges[m], samples), _edge_series(metered.edges[m], samples),
                                 config.miller_madow)[0])
    return LeakageReport(
        meters=meters, meter_days=meter_days, events=int(ev.meter.shape[0]), eligible=int(eligible.sum()),
        detected=int(found.sum()), recall=ratio(int(found.sum()), int(eligible.sum())),
        recall_by_appliance=recall_by, eligible_by_appliance=eligible_by,
        off_recall=ratio(int(found_off.sum()), int(eligible.sum())),
        recall_load=ratio(int(found_load.sum()), int(eligible.sum())), chance_recall=ratio(chance, int(eligible.sum())),
        precision=ratio(matched_edges, n_edges), edges_per_day=n_edges / meter_days,
        detectable_events_per_day=int(found.sum()) / meter_days, split=split, train_edges=int(y_train.size),
        class_recall=class_recall, class_recall_by_appliance=class_by,
        mi_bits=float(np.mean(mi)), mi_floor_bits=float(np.mean(floor)), h_load_bits=float(np.mean(h_load)),
        mi_edges_bits=float(np.mean(mi_edges)), config=config)


def kw_from_data(data: LoadData) -> np.ndarray:
    """Meters x samples of average kW from a LoadData of kWh per interval (days laid end to end)."""
    if not isinstance(data, LoadData):
        raise ParameterError("data must be a LoadData")
    m = data.kwh.shape[0]
    return data.kwh.reshape(m, -1) * (60.0 / data.interval_minutes)


def leakage_from_data(load: LoadData, metered: LoadData, events: EventsLike | None,
                      config: LeakageConfig = LeakageConfig(), *,
                      appliance_names: Sequence[str] | None = None) -> LeakageReport:
    """:func:`leakage` on two LoadData of the same meters, start and interval (the CLI's input)."""
    for name, d in (("load", load), ("metered", metered)):
        if not isinstance(d, LoadData):
            raise ParameterError(f"{name} must be a LoadData")
    if (load.meters, load.start, load.interval_minutes, load.kwh.shape) != (
            metered.meters, metered.start, metered.interval_minutes, metered.kwh.shape):
        raise ParameterError("load and metered differ in meters, start, interval or days")
    return leakage(kw_from_data(load), kw_from_data(metered), events, load.interval_minutes, config,
                   appliance_names=appliance_names)
