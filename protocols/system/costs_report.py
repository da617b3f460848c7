"""Costed steps: each traced step on a device profile or on this machine, as a table, JSON and bar charts
(specs/costs.md section 6).

A device's cost of a step is ``cycles = sum(count[k] * cycles(profile, k))`` over the step's counted keys,
``ms`` and ``mJ`` from the profile's clock and current (:mod:`protocols.devices`).  A key the profile has
no figure for is left out and named in ``missing``: the row is then a lower bound, marked ``>=`` in the
table.  The host's row is the host model's prediction (:mod:`protocols.system.costs_host`) with the
measured time and the model's error.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from protocols.errors import ParameterError
from protocols.system.benchmark import format_columns
from protocols.system.costs import StepTrace, is_host_only, is_meter_step
from protocols.system.costs_host import Checked

HOST = "host"
ALL = "all"
# Keys of the host's own machinery that a device does not have (an SQL statement: a meter's store is not
# SQL, its work is in ``state_byte`` and ``state_commit``; a Python call: a meter's code is not Python; a
# library call: work the host's library does that a device's need not) are left out of device costing and
# not listed as missing (section 6.1): :func:`protocols.system.costs.is_host_only`.
PLOT_DPI = 120


@dataclass(frozen=True)
class DeviceModel:
    """What costing needs of a device profile: cycles per unit of a key (``ParameterError`` when the profile
    has no figure), and milliseconds and millijoules of a number of cycles."""

    name: str
    cycles: Callable[[str], float]
    ms: Callable[[float], float]
    mj: Callable[[float], float]


def _devices() -> ModuleType:
    try:
        return importlib.import_module("protocols.devices")
    except ModuleNotFoundError as exc:
        raise ParameterError(f"no device profiles in this installation ({exc})") from None


def device_names() -> list[str]:
    """The device profiles shipped in :mod:`protocols.devices`."""
    return list(_devices().names())


def device_model(name: str) -> DeviceModel:
    """The profile ``name`` of :mod:`protocols.devices` (``ParameterError`` for an unknown one)."""
    devices = _devices()
    if name not in devices.names():
        raise ParameterError(f"unknown device {name!r}; known: {', '.join(devices.names())}, {ALL}, {HOST}")
    profile = devices.load(name)
    return DeviceModel(name, lambda key: float(devices.cycles(profile, key)), profile.ms, profile.mj)


@dataclass(frozen=True)
class CostRow:
    """One step on one device (section 6.2); ``measured_ms`` and ``model_error`` for the host only."""

    protocol: str
    role: str
    step: str
    device: str
    invocations: int
    cycles: float | None
    ms: float | None
    mj: float | None
    bytes_sent: float
    bytes_received: float
    missing: tuple[str, ...] = ()
    measured_ms: float | None = None
    model_error: float | None = None
    meter_side: bool = False

    def to_json(self, host: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": self.protocol, "role": self.role, "step": self.step,
                               "device": self.device, "cycles": _finite(self.cycles), "ms": _finite(self.ms),
                               "mj": _finite(self.mj), "bytes_sent": self.bytes_sent,
                               "bytes_received": self.bytes_received, "invocations": self.invocations,
                               "meter_side": self.meter_side, "missing_keys": list(self.missing)}
        if host:
            out["measured_ms"] = _finite(self.measured_ms)
            out["model_error"] = _finite(self.model_error)
        return out


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def cost_on_device(traces: Iterable[StepTrace], device: DeviceModel) -> list[CostRow]:
    """Section 6.1: every step's cycles, ms and mJ on ``device``; keys without a figure listed in ``missing``."""
    rows = []
    for t in traces:
        cycles, missing = 0.0, []
        for key, count in sorted(t.counts.items()):
            if not count or is_host_only(key):
                continue
            try:
                per_unit = device.cycles(key)
            except ParameterError:
                missing.append(key)
                continue
            cycles += count * per_unit
        rows.append(CostRow(t.protocol, t.role, t.step, device.name, t.invocations, cycles, device.ms(cycles),
                            device.mj(cycles), t.bytes_sent, t.bytes_received, tuple(missing),
                            meter_side=is_meter_step(t)))
    return rows


def cost_on_host(checked: Iterable[Checked], clock_hz: float | None = None) -> list[CostRow]:
    """The host's rows: the model's ms (cycles from ``clock_hz`` when known), the measured ms and the error."""
    rows = []
    for c in checked:
        t = c.trace
        ms = None if c.predicted is None else c.predicted * 1e3
        cycles = None if c.predicted is None or clock_hz is None else c.predicted * clock_hz
        rows.append(CostRow(t.protocol, t.role, t.step, HOST, t.invocations, cycles, ms, None, t.bytes_sent,
                            t.bytes_received, (), c.measured * 1e3, c.model_error, is_meter_step(t)))
    return rows


def host_clock_hz() -> float | None:
    """The nominal clock of this machine's first CPU from /proc/cpuinfo (None where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.lower().startswith("cpu mhz"):
                    return float(line.split(":", 1)[1]) * 1e6
    except (OSError, ValueError):
        return None
    return None


# --------------------------------------------------------------------------
# Text and JSON (section 6.2)


def _num(value: float | None) -> str:
    """Three significant digits below 100, whole numbers with thousands separators above."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def table_rows(rows: Sequence[CostRow]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Header and cells of one protocol's table (host rows add measured ms and the model error)."""
    host = any(r.device == HOST for r in rows)
    header: tuple[str, ...] = ("role", "step", "n", "device", "cycles", "ms", "mJ", "bytes sent", "bytes received")
    if host:
        header += ("measured ms", "model error")
    cells: list[tuple[str, ...]] = []
    for r in rows:
        bound = ">=" if r.missing else ""
        row: tuple[str, ...] = (r.role + (" *" if r.meter_side else ""), r.step, str(r.invocations), r.device,
               bound + (f"{r.cycles:,.0f}" if r.cycles is not None else "-"), bound + _num(r.ms),
               bound + _num(r.mj), f"{r.bytes_sent:.0f}", f"{r.bytes_received:.0f}")
        if host:
            row += (_num(r.measured_ms), "-" if r.model_error is None else f"{r.model_error:+.1%}")
        cells.append(row)
    return header, cells


def by_protocol(rows: Iterable[CostRow]) -> dict[str, list[CostRow]]:
    out: dict[str, list[CostRow]] = {}
    for r in rows:
        out.setdefault(r.protocol, []).append(r)
    return out


def render(rows: Sequence[CostRow]) -> str:
    """One table per protocol, then the keys some device had no figure for."""
    lines: list[str] = []
    for protocol, group in by_protocol(rows).items():
        header, cells = table_rows(sorted(group, key=lambda r: (r.role, r.step, r.device)))
        lines += [f"== {protocol} ==", *format_columns(header, cells), ""]
    missing = sorted({(r.device, k) for r in rows for k in r.missing})
    if missing:
        lines.append("no figure in the profile (rows marked >= leave these out):")
        for device in sorted({d for d, _ in missing}):
            lines.append(f"  {device}: {', '.join(k for d, k in missing if d == device)}")
    lines.append("* a meter-side step (pinned in tests/golden/meter_costs.json); n = invocations in the run; "
                 "figures per invocation.")
    return "\n".join(lines) + "\n"


def to_json(rows: Sequence[CostRow], meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Section 6.2: ``{"steps": [...], ...}``; host rows carry ``measured_ms`` and ``model_error``."""
    return {"format": "usapp-costs/1", **dict(meta or {}),
            "steps": [r.to_json(host=r.device == HOST) for r in rows]}


# --------------------------------------------------------------------------
# Plots (section 6.3)


def _pyplot() -> ModuleType:
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ParameterError("plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def plot(rows: Sequence[CostRow], directory: str | Path) -> dict[str, str]:
    """One bar chart per protocol: each meter-side step's ms on each device (log scale); returns the files."""
    pyplot = _pyplot()
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for protocol, group in by_protocol(r for r in rows if r.meter_side and r.ms is not None).items():
        steps = sorted({(r.role, r.step) for r in group})
        devices = sorted({r.device for r in group}, key=lambda d: (d == HOST, d))
        value = {(r.role, r.step, r.device): r.ms for r in group}
        figure, axis = pyplot.subplots(figsize=(max(6.0, 0.9 * len(steps) + 2), 4.5))
        width = 0.8 / max(1, len(devices))
        for i, device in enumerate(devices):
            xs = [j + (i - (len(devices) - 1) / 2) * width for j in range(len(steps))]
            ys = [max(value.get((role, step, device)) or 0.0, 1e-4) for role, step in steps]
            axis.bar(xs, ys, width, label=device)
        axis.set_yscale("log")
        axis.set_xticks(range(len(steps)), [step for _, step in steps], rotation=35, ha="right")
        axis.set(ylabel="ms per invocation (log)", title=f"{protocol}: meter-side steps by device")
        axis.legend(fontsize="small")
        figure.tight_layout()
        path = folder / f"costs_{protocol}.png"
        figure.savefig(path, dpi=PLOT_DPI)
        pyplot.close(figure)
        files[protocol] = str(path)
    return files


# --------------------------------------------------------------------------
# The "Cost to a meter" section of each protocol's spec (section 6.5)


def meter_section(protocol: str, rows: Sequence[CostRow]) -> str:
    """Markdown: the meter-side steps of ``protocol``, bytes and ms / mJ per invocation on each device; then
    those of each traced variant of the protocol with another suite (specs/costs.md section 3)."""
    from protocols.system import costs

    text = _meter_table(protocol, rows, "## Cost to a meter", f"`usapp interop {protocol}`")
    for name, (base, options) in costs.VARIANTS.items():
        if base == protocol and any(r.protocol == name for r in rows):
            suite = ", ".join(f"{k} `{v}`" for k, v in sorted(options.items()))
            text += "\n" + _meter_table(name, rows, f"### With {suite}",
                                         f"`usapp interop {base}` with the deployment option {suite}")
    return text


def _meter_table(protocol: str, rows: Sequence[CostRow], heading: str, run: str) -> str:
    mine = [r for r in rows if r.protocol == protocol and r.meter_side and r.device != HOST]
    devices = sorted({r.device for r in mine})
    steps = sorted({(r.role, r.step) for r in mine})
    cell = {(r.role, r.step, r.device): r for r in mine}
    lines = [heading, "",
             f"Generated by `python -m protocols.system.costs_report --meter-sections DIR` from a traced run of "
             f"{run} (seed `costs`; specs/costs.md sections 3 and 6): per invocation of each "
             "step of the meter's role, the bytes of the CBOR bodies received and sent, and the time and energy "
             "on each device profile (protocols/devices). `>=`: the profile has no figure for some counted "
             "operation, left out.", "",
             "| step | n | bytes in | bytes out | " + " | ".join(f"{d} ms / mJ" for d in devices) + " |",
             "|---|---|---|---|" + "---|" * len(devices)]
    for role, step in steps:
        first = cell[(role, step, devices[0])]
        costs = []
        for device in devices:
            r = cell[(role, step, device)]
            bound = ">=" if r.missing else ""
            costs.append(f"{bound}{_num(r.ms)} / {bound}{_num(r.mj)}")
        lines.append(f"| {step} | {first.invocations} | {first.bytes_received:.0f} | {first.bytes_sent:.0f} | "
                     + " | ".join(costs) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m protocols.system.costs_report --meter-sections DIR``: one Markdown file per protocol in DIR."""
    import argparse

    from protocols.system import costs

    parser = argparse.ArgumentParser(prog="python -m protocols.system.costs_report",
                                     description="The 'Cost to a meter' section of each protocol's spec.")
    parser.add_argument("--meter-sections", required=True, metavar="DIR",
                        help="the folder of the Markdown files, one per protocol")
    args = parser.parse_args(argv)
    traces = [t for m in costs.trace_all().values() for t in m.traces]
    rows = [row for name in device_names() for row in cost_on_device(traces, device_model(name))]
    folder = Path(args.meter_sections)
    folder.mkdir(parents=True, exist_ok=True)
    for protocol in costs.PROTOCOLS:
        (folder / f"{protocol}.md").write_text(meter_section(protocol, rows))
        print(folder / f"{protocol}.md")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
