"""Battery load hiding (specs/battery.md sections 3 and 5): time per household-day against data size.

- each policy: ``hiding.hide`` on one generated household's 1-minute load (5 kWh / 3 kW, efficiency
  0.95), against the plain battery step loop over the same series measured in the same run: a Python
  loop of ``battery.raw_step`` asking, every minute, for the load minus its mean (the cost of the battery
  model with no policy logic, so the ratio says what a policy's decisions cost on top of it);
- the attacker: ``nilm.leakage`` (fast attacker: edges, matching, classifier, MI) of the load against
  the NILL trace, against numpy's ``abs(diff) > tolerance`` over both traces (the plainest edge test).

Sizes: the causal policies and the attacker at 7, 30 and 365 days of one household (a household-year
is 525 600 minutes); the look-ahead under its default objective, hold (spec 3.4.1), at 7 and 30 days; the
look-ahead's programme (objective variation-level, spec 3.4) at 1 and 7 days (one linear programme per
day, so its time is linear in days and a year is projected from the 7-day figure, stated as such).
``--quick``: 1 and 7 days, the programme at 1 day.  Everything is reported per household-day (``per_item``).
"""

from __future__ import annotations

import math

import numpy as np

from protocols.system.benchmark import (BenchConfig, Benchmark, Comparison, Figures, compare, format_columns,
                                        per_item, plot_spread, pyplot_or_none, save_plot)

FULL_DAYS = (7, 30, 365)
QUICK_DAYS = (1, 7)
LOOKAHEAD_FULL_DAYS = (1, 7)
LOOKAHEAD_QUICK_DAYS = (1,)
SEED = "bench-battery"
PROGRAMME = "lookahead-variation-level"
"""The look-ahead's linear programme (spec 3.4), a study policy name (hiding_study.study_policies)."""
POLICIES = ("best-effort", "nill", "stepping", "lookahead", PROGRAMME)
HOLD_MAX_DAYS = 30
"""The look-ahead's hold objective (spec 3.4.1) is run up to this many days (the year is projected)."""


def _slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(seconds per household-day) on log(days); None with fewer than two sizes."""
    if len({x for x, _ in points}) < 2:
        return None
    return float(np.polyfit(np.log([x for x, _ in points]), np.log([y for _, y in points]), 1)[0])


def run(config: BenchConfig) -> list[Comparison | Figures]:
    from protocols.analytics import battery, hiding, loadgen, nilm
    from protocols.analytics.hiding_study import study_policies

    days_list = QUICK_DAYS if config.quick else FULL_DAYS
    look_days = LOOKAHEAD_QUICK_DAYS if config.quick else LOOKAHEAD_FULL_DAYS
    config.progress(f"battery: generating one household, {max(days_list)} days at 1 minute")
    data, events = loadgen.generate_with_events(1, max(days_list), interval_minutes=1, seed=SEED)
    full = data.kwh[0].reshape(-1)
    cell = battery.BatteryConfig.simple(5.0, 3.0, 0.95)
    dt_h = 1 / 60
    results: list[Comparison | Figures] = []
    per_day: dict[str, list[tuple[int, float]]] = {k: [] for k in POLICIES + ("leakage",)}
    spreads: dict[str, list[dict[str, float]]] = {k: [] for k in per_day}

    def step_loop(x: np.ndarray) -> float:
        soc, mean = cell.initial_soc * cell.capacity_kwh, float(x.mean())
        for v in x.tolist():
            soc = battery.raw_step(cell, soc, v - mean, dt_h)[0]
        return soc

    def record(key: str, days: int, result: Comparison) -> None:
        result = per_item(result, days, unit="household-day")
        results.append(result)
        per_day[key].append((days, result.ours.median))
        spreads[key].append({"median": result.ours.median, "min": result.ours.min, "max": result.ours.max})

    for days in sorted(set(days_list) | set(look_days)):
        x = full[:days * 1440]
        details = {"days": days, "minutes": x.size, "battery": "5 kWh / 3 kW, efficiency 0.95"}
        for policy in POLICIES:
            wanted = days in (look_days if policy == PROGRAMME else days_list)
            if not wanted or (policy == "lookahead" and days > HOLD_MAX_DAYS):
                continue
            slow = policy == PROGRAMME or days >= (30 if policy == "lookahead" else 365)
            repeats = min(config.repeats, 3) if slow else config.repeats
            config.progress(f"battery: {policy}, {days} day(s)")
            instance = study_policies()[policy]()
            result = compare(f"battery: {policy} policy, {days} day(s) of 1-minute load",
                             lambda: hiding.hide(x, 1, cell, instance), lambda: step_loop(x),
                             baseline_name="plain raw_step loop, request = load - mean (no policy logic)",
                             repeats=repeats, number=1 if slow else None, min_time=config.min_time,
                             unit="series", setup_note=f"{repeats} repeats" + (" of one call" if slow else ""),
                             details=details)
            record(policy, days, result)
        if days in days_list:
            metered_kw = hiding.hide(x, 1, cell, hiding.Nill()).grid_kwh * 60.0
            load_kw = x * 60.0
            mask = events.start_minute < days * 1440
            start = events.start_minute[mask]
            ev = loadgen.Events(events.meter[mask], events.appliance[mask], start,
                                np.minimum(events.duration_minutes[mask], days * 1440 - start).astype(np.int32),
                                events.power_kw[mask])
            slow = days >= 365
            repeats = min(config.repeats, 3) if slow else config.repeats
            config.progress(f"battery: leakage analysis, {days} day(s)")
            result = compare(f"battery: NILM leakage analysis (fast attacker), {days} day(s)",
                             lambda: nilm.leakage(load_kw, metered_kw, ev, 1),
                             lambda: (np.abs(np.diff(load_kw)) > 0.05, np.abs(np.diff(metered_kw)) > 0.05),
                             baseline_name="numpy abs(diff) > 0.05 kW over the load and the metered trace",
                             repeats=repeats, number=1 if slow else None, min_time=config.min_time,
                             unit="series", setup_note=f"{repeats} repeats", details=details)
            record("leakage", days, result)

    rows = []
    for key, points in per_day.items():
        slope = _slope(points)
        slope = None if slope is None else slope + 1   # per-call time ~ days^(per-day slope + 1)
        last_days, last = points[-1]
        year = last * 365
        rows.append((key, ", ".join(f"{d} d: {s * 1e3:.1f} ms" for d, s in points),
                     f"{slope:.2f}" if slope is not None and math.isfinite(slope) else "-",
                     f"{year:.1f} s" + ("" if last_days >= 365 else f" (projected from {last_days} d)")))
    text = "\n".join(format_columns(("case", "per household-day (median)", "time ~ days^x", "household-year"),
                                    rows)) + "\n"
    files: dict[str, str] = {}
    pyplot = pyplot_or_none(config, "battery")
    if pyplot is not None:
        figure, axis = pyplot.subplots(figsize=(6, 4))
        for key, points in per_day.items():
            plot_spread(axis, [d for d, _ in points], spreads[key], marker="o", label=key)
        axis.set(xscale="log", yscale="log", xlabel="days of 1-minute load (one household)",
                 ylabel="seconds per household-day", title="battery policies and the NILM attacker")
        axis.legend(fontsize=8)
        files["plot"] = save_plot(config, pyplot, figure, "battery.png")
    results.append(Figures("battery: seconds per household-day against data size",
                           {"per_household_day_seconds": {k: [{"days": d, "median": s} for d, s in v]
                                                          for k, v in per_day.items()},
                            "growth_exponent_per_call": {k: (lambda s: s + 1 if s is not None else None)(
                                _slope(v)) for k, v in per_day.items()}}, text, files))
    return results


BENCHMARK = Benchmark(
    name="battery",
    description="battery load hiding: each policy and the NILM leakage analysis, seconds per household-day "
                "at 1 minute, against a plain battery step loop / numpy diff",
    run=run,
)
