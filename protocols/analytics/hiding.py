"""Battery load hiding: four policies run through the battery model (specs/battery.md section 3).

A policy maps a household's load (kWh per interval) to the power it asks of the battery each
interval; :func:`hide` runs it through :func:`protocols.analytics.battery.raw_step` and returns a
:class:`Trace`.  No policy exports: a discharge request never exceeds the interval's load.
The cost measures of section 4 are :func:`cost`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

from protocols.analytics.battery import BatteryConfig, interval_hours, raw_step
from protocols.analytics.data import MAX_DAYS, MAX_KWH_PER_MINUTE, LoadData
from protocols.errors import ParameterError

MAX_INTERVALS = MAX_DAYS * 1440
_METHOD = "highs-ipm"
"""HiGHS interior point: about 1.3x faster than dual simplex on a 1-minute day (spec 3.4)."""
"""A series longer than MAX_DAYS days of 1-minute readings is refused."""


def _param(name: str, value: object, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name} must be a number, not {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        raise ParameterError(f"{name} must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], not {v}")
    return v


# ---------------------------------------------------------------- policies (section 3)

@dataclass(frozen=True)
class BestEffort:
    """Hold the metered power at its last value; move it only as far as the battery forces (spec 3.1).

    ``initial_kw``: the first target; None = the first interval's load.
    """

    initial_kw: float | None = None

    def __post_init__(self) -> None:
        if self.initial_kw is not None:
            _param("initial_kw", self.initial_kw, 0, MAX_KWH_PER_MINUTE * 60)


@dataclass(frozen=True)
class Nill:
    """Non-intrusive load levelling (McLaughlin, McDaniel, Aiello, CCS 2011), spec 3.2.

    ``k_ss_kw``: the first steady-state target (None = the mean load of the series);
    ``high_offset_kw``: K_H = load - offset on entering high recovery (0.055 kW = 0.5 A at 110 V);
    ``high_exit_rise_kw``: leave high recovery when the load exceeds K_H by this (0.55 kW = 5 A);
    ``high_exit_soc``: or when the SoC falls to this fraction of the window (0.5);
    ``low_target_kw``: K_L in low recovery (None = the battery's max charge power);
    ``low_exit_soc``: leave low recovery at this fraction of the window (0.8);
    ``alpha``: on leaving recovery K_SS <- alpha K_SS + (1 - alpha) mean(metered in recovery) (0.5).
    """

    k_ss_kw: float | None = None
    high_offset_kw: float = 0.055
    high_exit_rise_kw: float = 0.55
    high_exit_soc: float = 0.5
    low_target_kw: float | None = None
    low_exit_soc: float = 0.8
    alpha: float = 0.5

    def __post_init__(self) -> None:
        top = MAX_KWH_PER_MINUTE * 60
        if self.k_ss_kw is not None:
            _param("k_ss_kw", self.k_ss_kw, 0, top)
        if self.low_target_kw is not None:
            _param("low_target_kw", self.low_target_kw, 0, top, lo_open=True)
        _param("high_offset_kw", self.high_offset_kw, 0, top)
        _param("high_exit_rise_kw", self.high_exit_rise_kw, 0, top, lo_open=True)
        hx = _param("high_exit_soc", self.high_exit_soc, 0, 1)
        lx = _param("low_exit_soc", self.low_exit_soc, 0, 1)
        if not hx < 1 or not lx > 0:
            raise ParameterError("high_exit_soc must be < 1 and low_exit_soc > 0 (a recovery state must end)")
        _param("alpha", self.alpha, 0, 1)


@dataclass(frozen=True)
class Stepping:
    """Lazy stepping (Yang, Li, Qi, Qardaji, McLaughlin, McDaniel, CCS 2012), spec 3.3.

    The metered power is a multiple of ``step_kw`` (beta, default 0.5 kW) and changes only when the
    battery forces it: a power limit, or the SoC leaving [``low_soc``, ``high_soc``] (fractions of
    the window, defaults 0.2 and 0.8) while the battery is being drained or filled further.
    """

    step_kw: float = 0.5
    low_soc: float = 0.2
    high_soc: float = 0.8

    def __post_init__(self) -> None:
        _param("step_kw", self.step_kw, 0, MAX_KWH_PER_MINUTE * 60, lo_open=True)
        lo = _param("low_soc", self.low_soc, 0, 1)
        hi = _param("high_soc", self.high_soc, 0, 1)
        if not lo < hi:
            raise ParameterError(f"low_soc must be below high_soc, not {lo} >= {hi}")


OBJECTIVES = ("hold", "variation-level", "variation", "level")
"""The look-ahead's objectives (spec 3.4); the first is the default.  It is not a programme: it holds
the meter at piecewise-constant levels, each as long as the battery allows (spec 3.4.1)."""
_DEFAULT_WEIGHTS = {"variation-level": (0.05, 1.0, 0.1), "variation": (0.0, 1.0, 0.1), "level": (1.0, 0.25, 1.6)}
"""Per objective: the default (level_weight, variation_weight, loss_weight) of spec 3.4."""


@dataclass(frozen=True)
class LookAhead:
    """Knowing the day's load ahead (spec 3.4): an upper bound against which the causal policies are measured.

    ``objective`` "hold" (the default, spec 3.4.1) is no programme: the meter is held at a level on
    multiples of ``hold_step_kw`` (0.05 kW) that the battery can keep longest, looking
    ``hold_horizon_minutes`` (1440) ahead, then a level is chosen again; among the levels of the longest
    hold, ``hold_band`` (0.25 of the SoC window) bounds how far from mid-window a hold may leave the store
    when it is chosen as the one nearest the previous level.

    The other objectives are a linear programme per day that minimises, over the metered energy g of the
    day, ``level_weight`` times sum |g[t] - c| (c a level, free), plus ``variation_weight`` times the total
    variation sum |g[t+1] - g[t]|, plus ``loss_weight`` times the energy lost, plus ``throughput_weight``
    times the throughput (1e-6, a tie-break), subject to the battery model, with default weights
    (level, variation, loss):

    - "variation-level": (0.05, 1, 0.1), the least variation, ties broken towards one level (the default
      before the hold objective);
    - "variation": (0, 1, 0.1), the least variation alone (the programme before issue 19 closed);
    - "level": (1, 0.25, 1.6), one level per day as far as the battery allows.

    A weight given explicitly replaces the objective's.  Each programme's day ends with at least the
    stored energy it started with (less the leak), or, if ``end_fraction`` is given, at least that
    fraction of the SoC window.  "hold" uses neither the weights nor ``end_fraction``.
    """

    objective: str = "hold"
    loss_weight: float | None = None
    throughput_weight: float = 1e-6
    end_fraction: float | None = None
    variation_weight: float | None = None
    level_weight: float | None = None
    hold_step_kw: float = 0.05
    hold_horizon_minutes: int = 1440
    hold_band: float = 0.25

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ParameterError(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        _param("hold_step_kw", self.hold_step_kw, 0.001, MAX_KWH_PER_MINUTE * 60)
        h = self.hold_horizon_minutes
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 7 * 1440:
            raise ParameterError(f"hold_horizon_minutes must be an int in 1..{7 * 1440}, not {h!r}")
        _param("hold_band", self.hold_band, 0, 0.5)
        if self.objective == "hold":
            given = [n for n in ("end_fraction", "loss_weight", "variation_weight", "level_weight")
                     if getattr(self, n) is not None]
            if given:
                raise ParameterError(f"{given[0]} applies to the programme objectives, not to hold (spec 3.4.1)")
        for name in ("loss_weight", "variation_weight", "level_weight"):
            if getattr(self, name) is not None:
                _param(name, getattr(self, name), 0, 1e6)
        _param("throughput_weight", self.throughput_weight, 0, 1, lo_open=True)
        if self.end_fraction is not None:
            _param("end_fraction", self.end_fraction, 0, 1)

    def weights(self) -> tuple[float, float, float]:
        """(level, variation, loss) weights of the programme: the objective's, or those given."""
        level, variation, loss = _DEFAULT_WEIGHTS.get(self.objective, (0.0, 0.0, 0.0))
        return (level if self.level_weight is None else self.level_weight,
                variation if self.variation_weight is None else self.variation_weight,
                loss if self.loss_weight is None else self.loss_weight)


Policy = Union[BestEffort, Nill, Stepping, LookAhead]
POLICY_NAMES = {"best-effort": BestEffort, "nill": Nill, "stepping": Stepping, "lookahead": LookAhead}


# ---------------------------------------------------------------- the trace

@dataclass(frozen=True)
class Trace:
    """Per interval: load, metered (grid), battery (+ discharged to the house), loss, SoC at the end."""

    interval_minutes: int
    soc_start_kwh: float
    load_kwh: np.ndarray
    grid_kwh: np.ndarray
    battery_kwh: np.ndarray
    loss_kwh: np.ndarray
    soc_kwh: np.ndarray

    @property
    def soc_end_kwh(self) -> float:
        return float(self.soc_kwh[-1]) if self.soc_kwh.size else self.soc_start_kwh


class _Runner:
    """Runs requests through the battery and records the trace (spec 3: the common loop)."""

    def __init__(self, cfg: BatteryConfig, load_kwh: np.ndarray, dt_h: float, soc: float) -> None:
        self.cfg, self.load, self.dt_h, self.soc = cfg, load_kwh, dt_h, soc
        n = load_kwh.size
        self.grid, self.bat, self.loss, self.socs = (np.empty(n) for _ in range(4))

    def window_fraction(self) -> float:
        c = self.cfg
        return (self.soc - c.soc_min_kwh) / c.usable_kwh

    def can_discharge_kwh(self) -> float:
        """Bus-side energy the store can still give this interval (ignoring the leak)."""
        return max(0.0, (self.soc - self.cfg.soc_min_kwh) * self.cfg.discharge_efficiency)

    def can_charge_kwh(self) -> float:
        """Bus-side energy the store can still take this interval (ignoring the leak)."""
        return max(0.0, (self.cfg.soc_max_kwh - self.soc) / self.cfg.charge_efficiency)

    def run(self, t: int, target_grid_kwh: float) -> float:
        """Ask the battery to make the meter read ``target_grid_kwh``; returns what it reads."""
        x = float(self.load[t])
        req = min(x - target_grid_kwh, x)  # never export
        self.soc, b, loss, _ = raw_step(self.cfg, self.soc, req, self.dt_h)
        g = x - b
        self.grid[t], self.bat[t], self.loss[t], self.socs[t] = g, b, loss, self.soc
        return g

    def trace(self, interval_minutes: int, soc_start: float) -> Trace:
        return Trace(interval_minutes, soc_start, self.load.copy(), self.grid, self.bat, self.loss, self.socs)


def _check_load(load_kwh: np.ndarray, interval_minutes: int) -> tuple[np.ndarray, float]:
    dt_h = interval_hours(interval_minutes)
    if not isinstance(load_kwh, np.ndarray) or load_kwh.ndim != 1:
        raise ParameterError("load_kwh must be a one-dimensional array of kWh per interval")
    if not 1 <= load_kwh.size <= MAX_INTERVALS:
        raise ParameterError(f"load_kwh must hold 1..{MAX_INTERVALS} intervals, not {load_kwh.size}")
    x = np.asarray(load_kwh, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(x) | (x < 0) | (x > MAX_KWH_PER_MINUTE * interval_minutes))
    if bad.size:
        raise ParameterError(f"load_kwh[{int(bad[0])}] = {x[bad[0]]} is not a household reading "
                             f"(0..{MAX_KWH_PER_MINUTE * interval_minutes:g} kWh)")
    return x, dt_h


def hide(load_kwh: np.ndarray, interval_minutes: int, battery: BatteryConfig, policy: Policy,
         soc_start_kwh: float | None = None) -> Trace:
    """Run ``policy`` on one household's load series (spec 3); the battery starts at its initial SoC."""
    x, dt_h = _check_load(load_kwh, interval_minutes)
    if not isinstance(battery, BatteryConfig):
        raise ParameterError("battery must be a BatteryConfig")
    soc0 = battery.initial_soc * battery.capacity_kwh if soc_start_kwh is None else float(soc_start_kwh)
    if not battery.soc_min_kwh <= soc0 <= battery.soc_max_kwh:
        raise ParameterError(f"soc_start_kwh must be within the SoC window, not {soc0}")
    r = _Runner(battery, x, dt_h, soc0)
    if isinstance(policy, BestEffort):
        _best_effort(r, policy)
    elif isinstance(policy, Nill):
        _nill(r, policy)
    elif isinstance(policy, Stepping):
        _stepping(r, policy)
    elif isinstance(policy, LookAhead):
        _lookahead(r, policy, interval_minutes)
    else:
        raise ParameterError(f"unknown policy {type(policy).__name__}")
    return r.trace(interval_minutes, soc0)


def hide_all(data: LoadData, battery: BatteryConfig, policy: Policy) -> tuple[Trace, ...]:
    """One trace per meter of ``data`` (its days in order, one continuous series)."""
    return tuple(hide(data.kwh[m].reshape(-1), data.interval_minutes, battery, policy)
                 for m in range(len(data.meters)))


# ---------------------------------------------------------------- 3.1 best effort

def _best_effort(r: _Runner, p: BestEffort) -> None:
    target = float(r.load[0]) if p.initial_kw is None else p.initial_kw * r.dt_h
    for t in range(r.load.size):
        target = r.run(t, target)


# ---------------------------------------------------------------- 3.2 NILL

_STEADY, _HIGH, _LOW = 0, 1, 2


def _nill(r: _Runner, p: Nill) -> None:
    dt, c = r.dt_h, r.cfg
    k_ss = float(r.load.mean()) if p.k_ss_kw is None else p.k_ss_kw * dt
    k_l = (c.max_charge_kw if p.low_target_kw is None else p.low_target_kw) * dt
    off, rise = p.high_offset_kw * dt, p.high_exit_rise_kw * dt
    state, k_h, metered_sum, metered_n = _STEADY, 0.0, 0.0, 0
    for t in range(r.load.size):
        x = float(r.load[t])
        if state == _HIGH and (x > k_h + rise or r.window_fraction() <= p.high_exit_soc):
            state = _STEADY
        elif state == _LOW and r.window_fraction() >= p.low_exit_soc:
            state = _STEADY
        if state == _STEADY and metered_n:
            k_ss = p.alpha * k_ss + (1 - p.alpha) * metered_sum / metered_n
            metered_sum, metered_n = 0.0, 0
        if state == _STEADY:
            need = x - k_ss  # + discharge, - charge
            if need > 0 and need > r.can_discharge_kwh():
                state = _LOW
            elif need < 0 and -need > r.can_charge_kwh():
                state, k_h = _HIGH, max(0.0, x - off)
        if state == _HIGH and x < k_h:
            k_h = max(0.0, x - off)
        target = k_ss if state == _STEADY else k_h if state == _HIGH else max(k_l, x)
        g = r.run(t, target)
        if state != _STEADY:
            metered_sum, metered_n = metered_sum + g, metered_n + 1


# ---------------------------------------------------------------- 3.3 stepping

def _stepping(r: _Runner, p: Stepping) -> None:
    c, dt = r.cfg, r.dt_h
    beta = p.step_kw * dt
    if p.step_kw > min(c.max_charge_kw, c.max_discharge_kw):
        raise ParameterError(f"step_kw {p.step_kw} exceeds the battery's power limit "
                             f"{min(c.max_charge_kw, c.max_discharge_kw)} kW: no step could be held")
    pc, pd = c.max_charge_kw * dt, c.max_discharge_kw * dt
    level = math.ceil(float(r.load[0]) / beta - 1e-9)
    for t in range(r.load.size):
        x = float(r.load[t])
        f = r.window_fraction()
        y = level * beta
        if f <= p.low_soc and y <= x:
            level = math.floor(x / beta + 1e-9) + 1  # smallest step above the load: charge
        elif f >= p.high_soc and y >= x:
            level = max(0, math.ceil(x / beta - 1e-9) - 1)  # largest step below the load: discharge
        y = level * beta
        if x - y > pd:  # the battery cannot give that much: step up as little as needed
            level = math.ceil((x - pd) / beta - 1e-9)
        elif y - x > pc:  # nor take that much: step down
            level = math.floor((x + pc) / beta + 1e-9)
        r.run(t, level * beta)


# ---------------------------------------------------------------- 3.4 look-ahead

def _lookahead(r: _Runner, p: LookAhead, interval_minutes: int) -> None:
    if p.objective == "hold":
        _hold(r, p, interval_minutes)
        return
    slots = 1440 // interval_minutes
    n = r.load.size
    for start in range(0, n, slots):
        x = r.load[start:start + slots]
        c_plan, d_plan = plan_day(r.cfg, x, r.dt_h, r.soc, p)
        for k in range(x.size):
            r.run(start + k, float(x[k]) - (d_plan[k] - c_plan[k]))


PLAN_FLOOR_KWH = 1e-12
"""Spec 3.4: a load below this enters the look-ahead's programme as 0."""


def plan_day(cfg: BatteryConfig, x: np.ndarray, dt_h: float, soc0: float,
             p: LookAhead) -> tuple[np.ndarray, np.ndarray]:
    """The programme of spec 3.4: (charge drawn, discharge delivered) kWh per interval, never both at once.

    Loads below ``PLAN_FLOOR_KWH`` enter the programme as 0 (the solver fails on subnormal
    coefficients); the plan is then run on the true load by the battery model, which keeps every rule."""
    x = np.where(np.abs(x) < PLAN_FLOOR_KWH, 0.0, x)
    forced: set[int] = set()
    for _ in range(x.size + 1):
        sol = _solve(cfg, x, dt_h, soc0, p, sorted(forced))
        n = x.size
        ch, dis = sol[:n], sol[n:2 * n]
        both = set(np.flatnonzero(np.minimum(ch, dis) > 1e-9).tolist()) - forced
        if not both:
            net = dis - ch
            return np.maximum(-net, 0.0), np.maximum(net, 0.0)
        forced |= both
    raise ParameterError("look-ahead plan did not settle")  # pragma: no cover - bounded by n rounds


def _solve(cfg: BatteryConfig, x: np.ndarray, dt_h: float, soc0: float, p: LookAhead,
           forced: list[int]) -> np.ndarray:
    """One solve of the spec 3.4 programme; intervals in ``forced`` get a binary direction (a MILP)."""
    import scipy.sparse as sp
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp

    n, m = x.size, len(forced)
    w_level, w_var, w_loss = p.weights()
    pc, pd = cfg.max_charge_kw * dt_h, cfg.max_discharge_kw * dt_h
    # variables: c[n] (drawn to charge), d[n] (delivered), s[n] (stored at the end), v[n] (|g - level|),
    # level, u[n-1] (|g[t+1] - g[t]|), z[m]
    ic, id_, is_, iv, il, iu = 0, n, 2 * n, 3 * n, 4 * n, 4 * n + 1
    iz = iu + n - 1
    nv = iz + m
    keep = 1 - cfg.self_discharge_per_hour * dt_h
    cost = np.zeros(nv)
    cost[ic:ic + n] = p.throughput_weight + w_loss * (1 - cfg.charge_efficiency)
    cost[id_:id_ + n] = p.throughput_weight + w_loss * (1 / cfg.discharge_efficiency - 1)
    cost[iv:iv + n] = w_level
    cost[iu:iu + n - 1] = w_var
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []

    def put(row: int, *entries: tuple[int, float]) -> None:
        for col, v in entries:
            rows.append(row)
            cols.append(col)
            vals.append(v)

    # store: s[t] - keep s[t-1] - eta_c c[t] + d[t] / eta_d = 0 (keep * soc0 on the right for t = 0)
    for t in range(n):
        put(t, (is_ + t, 1.0), (ic + t, -cfg.charge_efficiency), (id_ + t, 1.0 / cfg.discharge_efficiency))
        if t:
            put(t, (is_ + t - 1, -keep))
    a_eq = sp.csr_matrix((vals, (rows, cols)), shape=(n, nv))
    b_eq = np.zeros(n)
    b_eq[0] = keep * soc0
    rows, cols, vals = [], [], []
    b_ub: list[float] = []
    r = 0
    if w_level > 0:
        # distance from the day's level: +-(g[t] - level) - v[t] <= 0 with g = x - d + c
        for t in range(n):
            for sgn in (1.0, -1.0):
                put(r, (ic + t, sgn), (id_ + t, -sgn), (il, -sgn), (iv + t, -1.0))
                b_ub.append(-sgn * float(x[t]))
                r += 1
    if w_var > 0:
        # total variation: +-(g[t+1] - g[t]) - u[t] <= 0 with g = x - d + c
        for t in range(n - 1):
            dx = float(x[t + 1] - x[t])
            for sgn in (1.0, -1.0):
                put(r, (ic + t + 1, sgn), (id_ + t + 1, -sgn), (ic + t, -sgn), (id_ + t, sgn), (iu + t, -1.0))
                b_ub.append(-sgn * dx)
                r += 1
    # no export: d[t] - c[t] <= x[t]
    for t in range(n):
        put(r, (id_ + t, 1.0), (ic + t, -1.0))
        b_ub.append(float(x[t]))
        r += 1
    # one direction in a forced interval: c <= Pc z, d <= Pd (1 - z)
    for k, t in enumerate(forced):
        put(r, (ic + t, 1.0), (iz + k, -pc))
        b_ub.append(0.0)
        r += 1
        put(r, (id_ + t, 1.0), (iz + k, pd))
        b_ub.append(pd)
        r += 1
    a_ub = sp.csr_matrix((vals, (rows, cols)), shape=(r, nv))
    lo, hi = np.zeros(nv), np.full(nv, np.inf)
    hi[ic:ic + n], hi[id_:id_ + n] = pc, pd
    if w_level == 0:
        hi[iv:il + 1] = 0.0
    if w_var == 0:
        hi[iu:iu + n - 1] = 0.0
    leak = keep ** np.arange(1, n + 1)
    lo[is_:is_ + n] = np.minimum(cfg.soc_min_kwh, soc0 * leak)
    hi[is_:is_ + n] = cfg.soc_max_kwh
    end = soc0 * leak[-1] if p.end_fraction is None else cfg.soc_min_kwh + p.end_fraction * cfg.usable_kwh
    lo[is_ + n - 1] = max(lo[is_ + n - 1], min(end, cfg.soc_max_kwh))
    hi[iz:] = 1.0
    if not m:
        res = linprog(cost, A_ub=a_ub, b_ub=np.array(b_ub), A_eq=a_eq, b_eq=b_eq,
                      bounds=np.column_stack([lo, hi]), method=_METHOD)
    else:
        integrality = np.zeros(nv)
        integrality[iz:] = 1
        res = milp(cost, constraints=[LinearConstraint(a_ub, -np.inf, np.array(b_ub)),
                                      LinearConstraint(a_eq, b_eq, b_eq)],
                   bounds=Bounds(lo, hi), integrality=integrality)
    if res.x is None:
        raise ParameterError(f"look-ahead programme has no solution (end_fraction {p.end_fraction} cannot be "
                             f"reached in the day?): {res.message}")
    return np.asarray(res.x, dtype=np.float64)


# ---------------------------------------------------------------- 3.4.1 look-ahead holds

def hold_lengths(cfg: BatteryConfig, x: np.ndarray, dt_h: float, soc0: float,
                 levels_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spec 3.4.1: for each level, how many intervals of ``x`` the battery holds the meter exactly there.

    The battery is simulated as :func:`raw_step` runs it (leak, then the transfer), all levels at once;
    a hold ends at the first interval where the power limit or the SoC window would bind.  Returns
    (length, stored energy at the end of the hold) per level.
    """
    lo, hi = cfg.soc_min_kwh, cfg.soc_max_kwh
    pc, pd = cfg.max_charge_kw * dt_h, cfg.max_discharge_kw * dt_h
    eta_c, eta_d, sd = cfg.charge_efficiency, cfg.discharge_efficiency, cfg.self_discharge_per_hour * dt_h
    s = np.full(levels_kwh.size, float(soc0))
    length = np.zeros(levels_kwh.size, dtype=np.int64)
    alive = np.ones(levels_kwh.size, dtype=bool)
    for k in range(x.size):
        e = float(x[k]) - levels_kwh  # the request: + discharge, - charge (levels >= 0: never export)
        s1 = s - s * sd
        take = e / eta_d
        stored = -e * eta_c
        dis, chg = e > 0, e < 0
        ok = alive & np.where(dis, (e <= pd) & (take <= s1 - lo), np.where(chg, (-e <= pc) & (stored <= hi - s1),
                                                                           True))
        if not ok.any():
            break
        new = np.where(dis, np.maximum(lo, s1 - take), np.where(chg, np.minimum(hi, s1 + stored), s1))
        s = np.where(ok, new, s)
        length += ok
        alive = ok
    return length, s


def _hold(r: _Runner, p: LookAhead, interval_minutes: int) -> None:
    """Spec 3.4.1: hold the meter at the level the battery can keep longest, then choose again."""
    cfg, dt = r.cfg, r.dt_h
    horizon = max(1, p.hold_horizon_minutes // interval_minutes)
    mid = (cfg.soc_min_kwh + cfg.soc_max_kwh) / 2
    n, t = r.load.size, 0
    last = float(r.load[0])
    while t < n:
        x = r.load[t:t + horizon]
        top = float(x.max()) / dt
        levels = np.arange(0, math.floor(top / p.hold_step_kw + 1e-9) + 2) * (p.hold_step_kw * dt)
        length, s_end = hold_lengths(cfg, x, dt, r.soc, levels)
        best = int(length.max())
        if best == 0:  # no level can be held even one interval: the battery does what it can (spec 3.1)
            last = r.run(t, last)
            t += 1
            continue
        pick = _hold_tie(length, s_end, levels, best < x.size, last, mid, p.hold_band * cfg.usable_kwh)
        level, steps = float(levels[pick]), int(length[pick])
        for k in range(steps):
            last = r.run(t, level)
            t += 1
            if abs(last - level) > 1e-12:  # rounding ended the hold one interval early: choose again
                break


def _hold_tie(length: np.ndarray, s_end: np.ndarray, levels: np.ndarray, forced: bool, last: float, mid: float,
              band: float) -> int:
    """Spec 3.4.1's choice among the levels of the longest hold (``forced``: it ends before the horizon).

    Forced: the level nearest the previous metered energy ``last`` among those leaving the store within
    ``band`` kWh of mid-window; if none, or not forced: the level leaving the store nearest mid-window.
    Remaining ties: the lowest level.
    """
    cand = np.flatnonzero(length == length.max())
    if forced:
        near = cand[np.abs(s_end[cand] - mid) <= band]
        if near.size:
            return int(near[np.argmin(np.abs(levels[near] - last))])
    return int(cand[np.argmin(np.abs(s_end[cand] - mid))])


# ---------------------------------------------------------------- 4. cost

@dataclass(frozen=True)
class Cost:
    """What hiding costs (spec 4)."""

    load_kwh: float
    loss_kwh: float
    loss_pct: float
    equivalent_full_cycles: float
    peak_load_kw: float
    peak_grid_kw: float
    time_at_soc_min: float
    time_at_soc_max: float


def cost(trace: Trace, battery: BatteryConfig) -> Cost:
    """Energy lost, equivalent full cycles (bus-side throughput / (2 x usable)), peaks, time at limits."""
    dt_h = interval_hours(trace.interval_minutes)
    total = float(trace.load_kwh.sum())
    lost = float(trace.loss_kwh.sum())
    tol = 1e-9 * battery.capacity_kwh
    n = max(trace.soc_kwh.size, 1)
    return Cost(
        load_kwh=total,
        loss_kwh=lost,
        loss_pct=100.0 * lost / total if total > 0 else 0.0,
        equivalent_full_cycles=float(np.abs(trace.battery_kwh).sum()) / (2 * battery.usable_kwh),
        peak_load_kw=float(trace.load_kwh.max()) / dt_h,
        peak_grid_kw=float(trace.grid_kwh.max()) / dt_h,
        time_at_soc_min=float(np.count_nonzero(trace.soc_kwh <= battery.soc_min_kwh + tol)) / n,
        time_at_soc_max=float(np.count_nonzero(trace.soc_kwh >= battery.soc_max_kwh - tol)) / n,
    )
