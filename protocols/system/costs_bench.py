"""``usapp bench --device NAME|all|host [--json] [--plot DIR] [--html DIR]`` (specs/costs.md section 6.1).

Traces every protocol (:mod:`protocols.system.costs`), then costs each step on the chosen device profiles
(:mod:`protocols.system.costs_report`) or, for ``host``, measures this machine's profile and checks the model
against the measured step times over ``runs`` runs (:mod:`protocols.system.costs_host`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.errors import ParameterError
from protocols.system import benchmark, costs, costs_host, costs_report
from protocols.system.costs_report import ALL, HOST, CostRow, DeviceModel


@dataclass(frozen=True)
class DeviceReport:
    """The costed rows of one ``--device`` choice, and what the JSON's top level says besides the steps."""

    rows: list[CostRow]
    meta: dict[str, Any] = field(default_factory=dict)


def chosen_devices(device: str, names: Sequence[str]) -> list[str]:
    """``all``: every profile; ``host``: none (the host is measured); a name: that profile."""
    if device == ALL:
        return list(names)
    if device == HOST:
        return []
    if device not in names:
        raise ParameterError(f"unknown device {device!r}; known: {', '.join(names) or '(none)'}, {ALL}, {HOST}")
    return [device]


def device_report(device: str, *, runs: int, quick: bool = False,
                  progress: Callable[[str], None] = lambda line: None,
                  models: Callable[[str], DeviceModel] | None = None, names: Callable[[], list[str]] | None = None,
                  kernels: tuple[costs_host.Kernel, costs_host.Units] | None = None,
                  timer: costs_host.Timer = time.perf_counter) -> DeviceReport:
    """Trace every protocol and cost it on ``device`` (``NAME``, ``all`` or ``host``); ``models`` and
    ``names`` default to :mod:`protocols.devices`' profiles, ``kernels`` to the operation kernels."""
    model = models if models is not None else costs_report.device_model
    listed = names if names is not None else costs_report.device_names
    profiles = [] if device == HOST else chosen_devices(device, listed())
    if device != HOST:
        progress(f"tracing {', '.join(costs.PROTOCOLS)} (one run each)")
        measured = costs.trace_all()
        traces = [t for m in measured.values() for t in m.traces]
        rows = [row for name in profiles for row in costs_report.cost_on_device(traces, model(name))]
        return DeviceReport(rows, {"devices": profiles, "seed": costs.SCENARIO_SEED})
    progress(f"tracing {', '.join(costs.PROTOCOLS)}: a warm-up, a counted run and {runs} timed runs each")
    measured = costs.trace_all(timed_runs=runs, warmup=True, timer=timer, opcodes=True)
    repeats = 3 if quick else 5
    min_time = benchmark.MIN_REPEAT_SECONDS / (5 if quick else 1)
    bodies = [body for m in measured.values() for body in m.bodies]
    profile = costs_host.measure_host(costs_host.counted_keys(measured), repeats=repeats, min_time=min_time,
                                      kernels=kernels, bodies=bodies, progress=progress, timer=timer,
                                      probe_seconds=_probes(measured),
                                      codec_passes=[p for m in measured.values() for p in m.codec_passes])
    checked = costs_host.check(measured, profile)
    rows = costs_report.cost_on_host(checked, costs_report.host_clock_hz())
    return DeviceReport(rows, {"devices": [HOST], "seed": costs.SCENARIO_SEED, "runs": runs,
                               "clock": getattr(timer, "__name__", str(timer)),
                               "host_profile": profile.to_json(), "model_check": costs_host.summary(checked)})


def _probes(measured: dict[str, costs.Measured]) -> dict[str, list[float]]:
    """The empty party's times of every protocol's timed runs, by kind of input (specs/costs.md 5.2)."""
    found: dict[str, list[float]] = {}
    for m in measured.values():
        for kind, seconds in m.probe_seconds.items():
            found.setdefault(kind, []).extend(seconds)
    return found


def host_summary_text(report: DeviceReport) -> str:
    """The host check's one-paragraph summary (printed under the table)."""
    summary = report.meta.get("model_check")
    if not summary:
        return ""
    median = summary["median_abs_error"]
    return (f"host model: {summary['within_25pct']} of {summary['steps']} steps within 25%, {summary['missed']} "
            f"beyond, {summary['unpredicted']} without a prediction; median |error| "
            f"{'-' if median is None else f'{median:.1%}'}\n")
