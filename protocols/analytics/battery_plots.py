"""PNG plots of battery load hiding (specs/battery.md section 6.6): matplotlib on the Agg backend,
imported only when a plot is drawn.  Each function writes one file into ``directory`` and returns its path.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence

import numpy as np

from protocols.analytics.hiding_study import Metered, StudyRow
from protocols.analytics.plots import _pyplot, _save
from protocols.errors import ParameterError

def busiest_day(metered: Metered, meter: int = 0) -> int:
    """The day of ``meter`` with the most edges detected in its load (section 5.1 defaults); the first on ties."""
    from protocols.analytics import nilm

    load_kw = metered.load[meter].reshape(-1) * (60.0 / metered.interval_minutes)
    edges = nilm.detect_edges(load_kw, interval_minutes=metered.interval_minutes)
    counts = np.bincount(edges.index // metered.load.shape[2], minlength=metered.load.shape[1])
    return int(np.argmax(counts))


def metered_day_plot(metered: Metered, directory: str | os.PathLike[str], *, meter: int = 0, day: int | None = None,
                     name: str = "hiding_day.png") -> str:
    """Load and metered trace (kW) over one day of one meter, the edges nilm.detect_edges finds in each marked
    (on-edges ^, off-edges v), and the state of charge on a second axis.  ``day`` None: :func:`busiest_day`."""
    from protocols.analytics import nilm

    if not 0 <= meter < len(metered.meters):
        raise ParameterError(f"meter must be in 0..{len(metered.meters) - 1}, not {meter}")
    day = busiest_day(metered, meter) if day is None else day
    if not 0 <= day < metered.load.shape[1]:
        raise ParameterError(f"day must be in 0..{metered.load.shape[1] - 1}, not {day}")
    interval = metered.interval_minutes
    slots = metered.load.shape[2]
    to_kw = 60.0 / interval
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(11, 4.5))
    hours = (np.arange(slots) * interval) / 60.0
    for label, values, colour in (("load", metered.load, "tab:blue"), ("metered (grid)", metered.grid, "tab:red")):
        full = values[meter].reshape(-1) * to_kw
        edges = nilm.detect_edges(full, interval_minutes=interval)
        x = values[meter, day] * to_kw
        axis.step(hours, x, where="post", color=colour, linewidth=1, label=label)
        inside = (edges.index >= day * slots) & (edges.index < (day + 1) * slots)
        for sign, marker in ((1, "^"), (-1, "v")):
            sel = inside & (edges.sign == sign)
            idx = edges.index[sel] - day * slots
            axis.plot(hours[idx], x[idx], linestyle="none", marker=marker, color=colour, markersize=6,
                      markeredgecolor="black", markeredgewidth=0.5,
                      label=f"{label}: {int(sel.sum())} {'on' if sign > 0 else 'off'}-edges")
    axis.set(xlabel=f"hour of {(metered.start + datetime.timedelta(days=day)).isoformat()}",
             ylabel="kW", xlim=(0, 24), title=f"meter {metered.meters[meter]}: load and metered trace, NILM edges "
                                                "marked")
    soc_axis = axis.twinx()
    soc_axis.plot(hours, metered.soc[meter, day], color="tab:green", linewidth=1, linestyle="--", label="SoC")
    soc_axis.set_ylabel("state of charge (kWh)", color="tab:green")
    soc_axis.set_ylim(bottom=0)
    lines, labels = axis.get_legend_handles_labels()
    more, more_labels = soc_axis.get_legend_handles_labels()
    axis.legend(lines + more, labels + more_labels, loc="upper left", fontsize=7, ncol=2)
    return _save(pyplot, figure, directory, name)


def study_plot(rows: Sequence[StudyRow], directory: str | os.PathLike[str], name: str = "hiding_study.png") -> str:
    """Recall (fast and slow attacker) and MI against battery capacity, one line per policy; no battery dashed."""
    if not rows:
        raise ParameterError("no study rows to plot")
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(1, 3, figsize=(14, 4.2))
    policies = list(dict.fromkeys(r.policy for r in rows if r.policy != "none"))
    none = [r for r in rows if r.policy == "none"]
    for axis, (attr, title) in zip(axes, (("recall", "event recall, fast attacker"),
                                          ("recall_slow", "event recall, slow attacker (10 min)"),
                                          ("mi_bits", "MI load;metered (bits/sample)"))):
        for policy in policies:
            mine = sorted((r for r in rows if r.policy == policy), key=lambda r: r.capacity_kwh)
            axis.plot([r.capacity_kwh for r in mine], [getattr(r, attr) for r in mine], marker="o", label=policy)
        if none:
            axis.axhline(getattr(none[0], attr), color="grey", linestyle="--", label="no battery")
        axis.set(xscale="log", xlabel="battery capacity (kWh)", title=title)
        axis.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    return _save(pyplot, figure, directory, name)
