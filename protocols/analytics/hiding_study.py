"""The files and the sweep of battery load hiding (specs/battery.md sections 6 and 7).

- METERED.csv (``meter,timestamp,kwh_load,kwh_grid,kwh_battery,kwh_loss,soc_kwh``):
  :func:`write_metered` / :func:`read_metered`, and :func:`check_metered_load` against IN.csv (6.2);
- EVENTS.csv (``meter,start,duration_minutes,appliance,power_kw``): :func:`write_events` /
  :func:`read_events` (6.3);
- the sweep "recall and MI against battery size for each policy": :func:`study`, :func:`format_table` (6.5).
"""

from __future__ import annotations

import csv
import datetime
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from protocols.analytics.battery import BatteryConfig
from protocols.analytics.data import INTERVALS_MINUTES, MAX_DAYS, MAX_KWH_PER_MINUTE, MAX_METERS, LoadData
from protocols.analytics.loadgen import Events
from protocols.errors import DecodeError, ParameterError

if TYPE_CHECKING:
    from protocols.analytics.hiding import Policy
    from protocols.analytics.nilm import LeakageReport

METERED_HEADER = ("meter", "timestamp", "kwh_load", "kwh_grid", "kwh_battery", "kwh_loss", "soc_kwh")
EVENTS_HEADER = ("meter", "start", "duration_minutes", "appliance", "power_kw")
MAX_FILE_BYTES = 4 << 30
"""A METERED.csv or EVENTS.csv larger than this is refused before it is read."""
MAX_ROWS = 100_000_000
"""At most this many data rows in either file."""
MAX_EVENTS = 1 << 26
"""At most this many events (the attacker's bound, nilm.MAX_EVENTS)."""
IDENTITY_TOLERANCE_KWH = 1e-9
"""Per row, |grid - (load - battery)| and |(soc_prev - soc) - (battery + loss)| must be within this."""
LOAD_TOLERANCE_KWH = 1e-9
"""kwh_load must equal IN.csv's kwh to within this (both are read from full-precision text)."""
MAX_STUDY_HOUSEHOLD_DAYS = 1000
"""The study generates at most this many 1-minute household-days (its look-ahead runs take ~1 s each)."""
_MINUTE = datetime.timedelta(minutes=1)


# --------------------------------------------------------------------------- reading helpers


def _rows(path: str | os.PathLike[str], header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """The data rows of a CSV file with exactly ``header``, with their line numbers (size bounded)."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ParameterError(f"{p.name}: {size} bytes; at most {MAX_FILE_BYTES} are read")
    with p.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            first = next(reader, None)
            if first is None or tuple(c.strip() for c in first) != header:
                raise DecodeError(f"{p.name}: line 1: the header must be {','.join(header)}")
            count = 0
            for row in reader:
                count += 1
                if count > MAX_ROWS:
                    raise ParameterError(f"{p.name}: line {reader.line_num}: more than {MAX_ROWS} rows")
                if len(row) != len(header):
                    raise DecodeError(f"{p.name}: line {reader.line_num}: {len(row)} fields; expected "
                                      f"{len(header)} ({','.join(header)})")
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DecodeError(f"{p.name}: line {reader.line_num + 1}: not CSV text: {exc}") from exc


def _minute(text: str, where: str) -> datetime.datetime:
    """A naive ISO 8601 timestamp on a whole minute (as write_long_csv writes them)."""
    try:
        ts = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise DecodeError(f"{where}: timestamp {text!r} is not ISO 8601") from None
    if len(text.strip()) < 16:
        raise DecodeError(f"{where}: timestamp {text!r} has no time of day")
    if ts.tzinfo is not None:
        raise ParameterError(f"{where}: timestamp {text!r} has a UTC offset; these files use the local clock of "
                             "IN.csv's first reading, without offsets")
    if ts.second or ts.microsecond:
        raise ParameterError(f"{where}: timestamp {text!r} is not on a whole minute")
    return ts


def _number(text: str, where: str, name: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise DecodeError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise ParameterError(f"{where}: {name} {text.strip()!r} is not finite")
    return v


def _meter_id(text: str, where: str) -> str:
    meter = text.strip()
    if not meter or len(meter) > 64 or not meter.isprintable():
        raise ParameterError(f"{where}: meter id must be 1..64 printable characters")
    return meter


# --------------------------------------------------------------------------- 6.2 METERED.csv


@dataclass(frozen=True)
class Metered:
    """A METERED.csv: per meter, per day, per slot (kWh), as LoadData lays out its grid (spec 6.2).

    ``line[m, d, s]`` is the file line of that row, for error messages.  ``soc_start_kwh[m]`` is
    derived from the first row: ``soc + battery + loss``.
    """

    meters: tuple[str, ...]
    start: datetime.date
    interval_minutes: int
    load: np.ndarray
    grid: np.ndarray
    battery: np.ndarray
    loss: np.ndarray
    soc: np.ndarray
    line: np.ndarray
    soc_start_kwh: np.ndarray = field(repr=False)

    def load_data(self) -> LoadData:
        return LoadData(self.meters, self.start, self.interval_minutes, self.load)

    def grid_data(self) -> LoadData:
        """The metered trace as a LoadData (what the anomaly detectors and the attacker read)."""
        return LoadData(self.meters, self.start, self.interval_minutes, self.grid)


def write_metered(path: str | os.PathLike[str], data: LoadData, traces: Sequence[object]) -> None:
    """Write one row per meter and interval, values at full precision (``repr`` of the float, spec 6.2).

    ``traces`` are :class:`protocols.analytics.hiding.Trace`, one per meter of ``data``, in order.
    """
    from protocols.analytics.hiding import Trace

    if len(traces) != len(data.meters):
        raise ParameterError(f"{len(traces)} traces for {len(data.meters)} meters")
    n = data.days * data.slots
    base = datetime.datetime.combine(data.start, datetime.time())
    stamps = [(base + i * data.interval_minutes * _MINUTE).strftime("%Y-%m-%dT%H:%M") for i in range(n)]
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(METERED_HEADER) + "\n")
        for meter, tr in zip(data.meters, traces):
            if not isinstance(tr, Trace) or tr.load_kwh.shape != (n,) or tr.interval_minutes != data.interval_minutes:
                raise ParameterError(f"meter {meter!r}: the trace does not cover the data's {n} intervals")
            if not meter.isprintable() or "," in meter or '"' in meter or meter != meter.strip():
                raise ParameterError(f"meter id {meter!r} cannot be written so that it reads back unchanged")
            cols = [tr.load_kwh.tolist(), tr.grid_kwh.tolist(), tr.battery_kwh.tolist(), tr.loss_kwh.tolist(),
                    tr.soc_kwh.tolist()]
            f.write("".join(f"{meter},{stamps[i]},{cols[0][i]!r},{cols[1][i]!r},{cols[2][i]!r},{cols[3][i]!r},"
                            f"{cols[4][i]!r}\n" for i in range(n)))


def read_metered(path: str | os.PathLike[str]) -> Metered:
    """Read and check a METERED.csv (spec 6.2); ``DecodeError``/``ParameterError`` name the line.

    Checked: the header exactly; each meter's rows contiguous, in time order, one every interval
    (inferred from the first meter), whole days from 00:00, every meter on the same days; every value
    finite, ``0 <= load <= 100 kW x interval``, ``loss >= 0``, ``soc >= 0``; per row ``grid = load -
    battery`` and ``soc_prev - soc = battery + loss`` within IDENTITY_TOLERANCE_KWH (the first row of a
    meter defines its soc_prev).
    """
    name = Path(path).name
    meters: list[str] = []
    stamps: list[list[datetime.datetime]] = []
    values: list[list[list[float]]] = []
    lines: list[list[int]] = []
    for line, row in _rows(path, METERED_HEADER):
        where = f"{name}: line {line}"
        meter = _meter_id(row[0], where)
        if not meters or meters[-1] != meter:
            if meter in meters:
                raise ParameterError(f"{where} (meter {meter!r}): the meter's rows are not contiguous")
            if len(meters) >= MAX_METERS:
                raise ParameterError(f"{where}: more than {MAX_METERS} meters")
            meters.append(meter)
            stamps.append([])
            values.append([])
            lines.append([])
        where = f"{where} (meter {meter!r})"
        stamps[-1].append(_minute(row[1], where))
        values[-1].append([_number(row[k], where, METERED_HEADER[k]) for k in range(2, 7)])
        lines[-1].append(line)
    if not meters:
        raise ParameterError(f"{name}: the file has a header but no rows")
    first = stamps[0]
    if len(first) < 2:
        raise ParameterError(f"{name}: meter {meters[0]!r} has one row; the interval cannot be inferred")
    interval = (first[1] - first[0]) // _MINUTE
    if interval not in INTERVALS_MINUTES:
        raise ParameterError(f"{name}: line {lines[0][1]}: interval of {interval} minutes; must be one of "
                             f"{INTERVALS_MINUTES}")
    slots = 1440 // interval
    n = len(first)
    if first[0].time() != datetime.time() or n % slots:
        raise ParameterError(f"{name}: meter {meters[0]!r}: rows must cover whole days from 00:00 "
                             f"({n} rows of {interval} minutes from {first[0].isoformat()})")
    if n // slots > MAX_DAYS:
        raise ParameterError(f"{name}: {n // slots} days; at most {MAX_DAYS}")
    step = interval * _MINUTE
    for m, (meter, ts) in enumerate(zip(meters, stamps)):
        if len(ts) != n or ts[0] != first[0]:
            raise ParameterError(f"{name}: line {lines[m][0]} (meter {meter!r}): {len(ts)} rows from "
                                 f"{ts[0].isoformat()}; meter {meters[0]!r} has {n} from {first[0].isoformat()}")
        for i in range(1, n):
            if ts[i] - ts[i - 1] != step:
                raise ParameterError(f"{name}: line {lines[m][i]} (meter {meter!r}): timestamp "
                                     f"{ts[i].isoformat()} is not {interval} minutes after the previous row")
    arr = np.asarray(values, dtype=np.float64)          # meters x n x 5
    line_arr = np.asarray(lines, dtype=np.int64)
    load, grid, bat, loss, soc = (arr[:, :, k] for k in range(5))

    def refuse(bad: np.ndarray, what: str) -> None:
        if bad.any():
            m, i = (int(v) for v in np.argwhere(bad)[0])
            raise ParameterError(f"{name}: line {int(line_arr[m, i])} (meter {meters[m]!r}): {what}")

    refuse((load < 0) | (load > MAX_KWH_PER_MINUTE * interval), f"kwh_load outside 0..{MAX_KWH_PER_MINUTE * interval:g}")
    refuse(loss < 0, "kwh_loss is negative")
    refuse(soc < 0, "soc_kwh is negative")
    refuse(np.abs(grid - (load - bat)) > IDENTITY_TOLERANCE_KWH, "kwh_grid != kwh_load - kwh_battery")
    soc_start = soc[:, 0] + bat[:, 0] + loss[:, 0]
    first_row = np.zeros(load.shape, dtype=bool)
    first_row[:, 0] = soc_start < -IDENTITY_TOLERANCE_KWH
    refuse(first_row, "soc_kwh + kwh_battery + kwh_loss (the soc before the first row) is negative")
    prev = np.concatenate((soc_start[:, None], soc[:, :-1]), axis=1)
    refuse(np.abs((prev - soc) - (bat + loss)) > IDENTITY_TOLERANCE_KWH,
           "soc_prev - soc_kwh != kwh_battery + kwh_loss (specs/battery.md section 2.1)")
    shape = (len(meters), n // slots, slots)
    return Metered(tuple(meters), first[0].date(), interval, load=load.reshape(shape), grid=grid.reshape(shape),
                   battery=bat.reshape(shape), loss=loss.reshape(shape), soc=soc.reshape(shape),
                   line=line_arr.reshape(shape), soc_start_kwh=soc_start)


def check_metered_load(data: LoadData, metered: Metered) -> None:
    """Refuse a METERED.csv that is not of IN.csv: other meters, days or interval, or a kwh_load that
    differs from IN.csv's kwh by more than LOAD_TOLERANCE_KWH (the message names the METERED line)."""
    if metered.meters != data.meters:
        raise ParameterError(f"METERED.csv has meters {list(metered.meters)[:5]}..., IN.csv {list(data.meters)[:5]}... "
                             "(the same meters, in the same order, are needed)")
    if (metered.start, metered.interval_minutes, metered.load.shape) != (data.start, data.interval_minutes,
                                                                          data.kwh.shape):
        raise ParameterError(f"METERED.csv covers {metered.load.shape[1]} day(s) from {metered.start} at "
                             f"{metered.interval_minutes} min; IN.csv {data.days} from {data.start} at "
                             f"{data.interval_minutes} min")
    bad = np.abs(metered.load - data.kwh) > LOAD_TOLERANCE_KWH
    if bad.any():
        m, d, s = (int(v) for v in np.argwhere(bad)[0])
        raise ParameterError(f"METERED.csv line {int(metered.line[m, d, s])} (meter {data.meters[m]!r}): kwh_load "
                             f"{metered.load[m, d, s]!r} differs from IN.csv's reading {data.kwh[m, d, s]!r}")


# --------------------------------------------------------------------------- 6.3 EVENTS.csv


def write_events(path: str | os.PathLike[str], data: LoadData, events: object,
                 appliance_names: Sequence[str]) -> None:
    """Write ``meter,start,duration_minutes,appliance,power_kw``: start an ISO minute of the data's clock,
    appliance by name, power in kW with 3 decimals (the generator's powers are whole watts; spec 6.3)."""
    base = datetime.datetime.combine(data.start, datetime.time())
    meter = np.asarray(getattr(events, "meter"), dtype=np.int64)
    appl = np.asarray(getattr(events, "appliance"), dtype=np.int64)
    start = np.asarray(getattr(events, "start_minute"), dtype=np.int64)
    dur = np.asarray(getattr(events, "duration_minutes"), dtype=np.int64)
    power = np.asarray(getattr(events, "power_kw"), dtype=np.float64)
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(EVENTS_HEADER) + "\n")
        f.write("".join(f"{data.meters[m]},{(base + int(s) * _MINUTE).strftime('%Y-%m-%dT%H:%M')},{int(d)},"
                        f"{appliance_names[a]},{p:.3f}\n"
                        for m, s, d, a, p in zip(meter.tolist(), start.tolist(), dur.tolist(), appl.tolist(),
                                                 power.tolist())))


def read_events(path: str | os.PathLike[str], data: LoadData,
                known_names: Sequence[str] = ()) -> tuple[Events, tuple[str, ...]]:
    """Read an EVENTS.csv for ``data`` (spec 6.3): (events, appliance names).

    Appliance names index into ``known_names`` (the generator's APPLIANCES) followed by any other name in
    order of first appearance.  Refused, naming the line: a meter not in ``data``, a start that is not a
    minute within the data's days, a duration < 1 or running past them, a power outside (0, 100] kW.
    """
    name = Path(path).name
    rows_of = {m: i for i, m in enumerate(data.meters)}
    names = list(known_names)
    index = {n: i for i, n in enumerate(names)}
    base = datetime.datetime.combine(data.start, datetime.time())
    horizon = data.days * 1440
    cols: list[list[int]] = [[], [], [], []]
    power: list[float] = []
    for line, row in _rows(path, EVENTS_HEADER):
        where = f"{name}: line {line}"
        if len(power) >= MAX_EVENTS:
            raise ParameterError(f"{where}: more than {MAX_EVENTS} events")
        meter = _meter_id(row[0], where)
        m = rows_of.get(meter)
        if m is None:
            raise ParameterError(f"{where}: meter {meter!r} is not in IN.csv")
        start = (_minute(row[1], where) - base) // _MINUTE
        if not 0 <= start < horizon:
            raise ParameterError(f"{where}: start {row[1].strip()!r} is outside IN.csv's days")
        try:
            dur = int(row[2])
        except ValueError:
            raise DecodeError(f"{where}: duration_minutes {row[2]!r} is not an integer") from None
        if not 1 <= dur <= horizon - start:
            raise ParameterError(f"{where}: duration_minutes {dur} is below 1 or runs past IN.csv's days")
        appliance = row[3].strip()
        if not appliance or len(appliance) > 64 or not appliance.isprintable():
            raise ParameterError(f"{where}: appliance must be 1..64 printable characters")
        if appliance not in index:
            if len(names) > 32_767:
                raise ParameterError(f"{where}: more than 32768 appliance names")
            index[appliance] = len(names)
            names.append(appliance)
        p = _number(row[4], where, "power_kw")
        if not 0 < p <= MAX_KWH_PER_MINUTE * 60:
            raise ParameterError(f"{where}: power_kw {p} is outside (0, 100]")
        for c, v in zip(cols, (m, index[appliance], start, dur)):
            c.append(v)
        power.append(p)
    ev = Events(np.asarray(cols[0], np.int64), np.asarray(cols[1], np.int64), np.asarray(cols[2], np.int64),
                     np.asarray(cols[3], np.int64), np.asarray(power, np.float64))
    return ev, tuple(names)


# --------------------------------------------------------------------------- 6.5 the study


@dataclass(frozen=True)
class StudyConfig:
    """The sweep of spec 6.5: generated 1-minute households, each policy x capacity at a fixed power."""

    households: int = 4
    days: int = 3
    seed: int | str = 1
    capacities_kwh: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    power_kw: float = 3.0
    efficiency: float = 0.95
    policies: tuple[str, ...] = ("best-effort", "nill", "stepping", "lookahead")

    def __post_init__(self) -> None:
        for n, v in (("households", self.households), ("days", self.days)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"{n} must be an int >= 1, not {v!r}")
        if self.households * self.days > MAX_STUDY_HOUSEHOLD_DAYS:
            raise ParameterError(f"households x days = {self.households * self.days}; the study runs at most "
                                 f"{MAX_STUDY_HOUSEHOLD_DAYS}")
        if not self.capacities_kwh or len(self.capacities_kwh) > 32:
            raise ParameterError("capacities_kwh must hold 1..32 capacities")
        for c in self.capacities_kwh:
            BatteryConfig.simple(c, self.power_kw, self.efficiency)  # each refused as the battery would
        names = study_policies()
        if not self.policies or any(p not in names for p in self.policies):
            raise ParameterError(f"policies must be among {', '.join(names)}, not {self.policies}")
        if "stepping" in self.policies and self.power_kw < 0.5:
            raise ParameterError(f"power_kw {self.power_kw} is below stepping's 0.5 kW step")


@dataclass(frozen=True)
class StudyRow:
    """One policy at one capacity over all the study's households (``policy`` "none": no battery)."""

    policy: str
    capacity_kwh: float
    power_kw: float
    recall: float
    recall_slow: float
    chance_recall: float
    chance_recall_slow: float
    recall_by_appliance: dict[str, float]
    detectable_events_per_day: float
    edges_per_day: float
    mi_bits: float
    mi_floor_bits: float
    h_load_bits: float
    loss_kwh: float
    loss_pct: float
    cycles_per_day: float
    peak_load_kw: float
    peak_grid_kw: float
    eligible: int
    seconds: float


ProgressFn = Callable[[int, int], None]


def study_policies() -> dict[str, Callable[[], Policy]]:
    """The study's policy names (spec 6.5): hide's four, and the look-ahead under each other objective."""
    from functools import partial

    from protocols.analytics.hiding import OBJECTIVES, POLICY_NAMES, LookAhead

    names: dict[str, Callable[[], Policy]] = dict(POLICY_NAMES)
    names.update({f"lookahead-{o}": partial(LookAhead, objective=o) for o in OBJECTIVES[1:]})
    return names


def study(config: StudyConfig = StudyConfig(), progress: ProgressFn | None = None) -> list[StudyRow]:
    """Spec 6.5: the no-battery row, then every policy x capacity, recall and MI against battery size."""
    import time

    from protocols.analytics import hiding, loadgen, nilm

    data, events = loadgen.generate_with_events(config.households, config.days, interval_minutes=1,
                                                seed=config.seed)
    load_kw = nilm.kw_from_data(data)
    names = loadgen.APPLIANCES
    meter_days = config.households * config.days
    total = 1 + len(config.policies) * len(config.capacities_kwh)

    def row(policy: str, cap: float, metered_kw: np.ndarray, traces: Sequence[hiding.Trace],
            battery: BatteryConfig | None, seconds: float) -> StudyRow:
        fast = nilm.leakage(load_kw, metered_kw, events, 1, appliance_names=names)
        slow = nilm.leakage(load_kw, metered_kw, events, 1, nilm.slow_attacker(), appliance_names=names)
        loss = sum(float(t.loss_kwh.sum()) for t in traces)
        load_total = float(data.kwh.sum())
        cycles = sum(hiding.cost(t, battery).equivalent_full_cycles for t in traces) if battery else 0.0
        return StudyRow(policy, cap, battery.max_discharge_kw if battery else 0.0, fast.recall, slow.recall,
                        fast.chance_recall, slow.chance_recall, fast.recall_by_appliance,
                        fast.detectable_events_per_day, fast.edges_per_day, fast.mi_bits, fast.mi_floor_bits,
                        fast.h_load_bits, loss, 100 * loss / load_total if load_total else 0.0,
                        cycles / meter_days, float(load_kw.max()), float(metered_kw.max()), fast.eligible, seconds)

    rows = [row("none", 0.0, load_kw, (), None, 0.0)]
    if progress:
        progress(1, total)
    for policy in config.policies:
        for cap in config.capacities_kwh:
            battery = BatteryConfig.simple(cap, config.power_kw, config.efficiency)
            t0 = time.perf_counter()
            make = study_policies()[policy]
            traces = [hiding.hide(data.kwh[m].reshape(-1), 1, battery, make())
                      for m in range(config.households)]
            seconds = time.perf_counter() - t0
            metered_kw = np.stack([t.grid_kwh for t in traces]) * 60.0
            rows.append(row(policy, cap, metered_kw, traces, battery, seconds))
            if progress:
                progress(len(rows), total)
    return rows


def _cell(v: float, fmt: str) -> str:
    return "nan" if not math.isfinite(v) else format(v, fmt)


def format_table(rows: Sequence[StudyRow]) -> str:
    """One line per policy and capacity (spec 7): recall fast/slow (chance), events/day, MI, cost."""
    header = ["policy", "kWh", "kW", "recall", "chance", "recall10", "chance10", "events/d", "edges/d", "MI bits",
              "MI floor", "loss %", "cycles/d", "peak grid kW"]
    table = [header]
    for r in rows:
        table.append([r.policy, f"{r.capacity_kwh:g}", f"{r.power_kw:g}", _cell(r.recall, ".3f"),
                      _cell(r.chance_recall, ".3f"), _cell(r.recall_slow, ".3f"), _cell(r.chance_recall_slow, ".3f"),
                      f"{r.detectable_events_per_day:.2f}", f"{r.edges_per_day:.1f}", f"{r.mi_bits:.3f}",
                      f"{r.mi_floor_bits:.3f}", f"{r.loss_pct:.2f}", f"{r.cycles_per_day:.2f}",
                      f"{r.peak_grid_kw:.2f}"])
    return _columns(table)


def format_appliances(rows: Sequence[StudyRow]) -> str:
    """Recall per appliance (fast attacker), one line per policy and capacity."""
    names = sorted({a for r in rows for a in r.recall_by_appliance}, key=lambda a: a)
    table = [["policy", "kWh"] + names]
    for r in rows:
        table.append([r.policy, f"{r.capacity_kwh:g}"] +
                     [_cell(r.recall_by_appliance[a], ".2f") if a in r.recall_by_appliance else "-" for a in names])
    return _columns(table)


def _columns(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def format_study(config: StudyConfig, rows: Sequence[StudyRow]) -> str:
    """The study's output: what was run, the table, and recall per appliance."""
    head = (f"# {config.households} generated households x {config.days} days at 1 minute (seed {config.seed!r}); "
            f"every battery {config.power_kw:g} kW, one-way efficiency {config.efficiency:g}, starting half full\n"
            f"# recall: fast attacker (1-minute steps, 2-minute match); recall10: slow attacker (steps within "
            f"10 minutes, 10-minute match); chance: the same edges against events moved 45 minutes\n"
            f"# eligible events (>= 0.2 kW): {rows[0].eligible if rows else 0}\n")
    return head + format_table(rows) + "\n# recall per appliance (fast attacker)\n" + format_appliances(rows)


def format_leakage(reports: Mapping[str, LeakageReport], source: str) -> str:
    """``usapp analytics leakage`` output: one column per attacker (nilm.LeakageReport), then per appliance."""
    reps = list(reports.values())
    if not reps:
        raise ParameterError("format_leakage needs at least one report")
    first = reps[0]
    out = [f"# events: {source}",
           f"# {first.meters} meters, {first.meter_days:g} meter-days; {first.eligible} eligible events "
           f"(>= {first.config.detector.min_step_kw:g} kW) of {first.events}"]

    def opt(v: float | None, fmt: str) -> str:
        return "n/a" if v is None else _cell(v, fmt)

    fields = (("recall (metered trace)", lambda r: _cell(r.recall, ".3f")),
              ("chance recall (events moved 45 min)", lambda r: _cell(r.chance_recall, ".3f")),
              ("recall on the load (ceiling)", lambda r: _cell(r.recall_load, ".3f")),
              ("off-edge recall", lambda r: _cell(r.off_recall, ".3f")),
              ("precision", lambda r: _cell(r.precision, ".3f")),
              ("detectable events per day", lambda r: f"{r.detectable_events_per_day:.2f}"),
              ("edges per day", lambda r: f"{r.edges_per_day:.1f}"),
              ("classification recall", lambda r: opt(r.class_recall, ".3f")),
              ("MI load;metered (bits)", lambda r: f"{r.mi_bits:.3f}"),
              ("MI floor, shuffled (bits)", lambda r: f"{r.mi_floor_bits:.3f}"),
              ("H(load) (bits)", lambda r: f"{r.h_load_bits:.3f}"),
              ("MI of the edge series (bits)", lambda r: f"{r.mi_edges_bits:.3f}"))
    table = [["measure"] + [f"{name} attacker" for name in reports]]
    table += [[label] + [fn(r) for r in reps] for label, fn in fields]
    out.append(_columns(table).rstrip("\n"))
    names = list(first.eligible_by_appliance)
    table = [["appliance", "eligible"] + [f"recall {n}" for n in reports] + [f"class {n}" for n in reports]]
    for a in names:
        table.append([a, str(first.eligible_by_appliance[a])] +
                     [_cell(r.recall_by_appliance.get(a, float("nan")), ".3f") for r in reps] +
                     [opt(r.class_recall_by_appliance.get(a), ".3f") for r in reps])
    out.append("")
    out.append(_columns(table).rstrip("\n"))
    return "\n".join(out) + "\n"
