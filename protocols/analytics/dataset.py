"""The long CSV of readings and the labels CSV (specs/analytics.md sections 2.2, 2.3, 2.4).

``meter,timestamp,kwh``: one reading a row, the timestamp the start of its
interval.  Reading checks every row and refuses what does not make a full
regular grid, naming the line and the meter; ``repair="fill"`` mends small
gaps, identical duplicates and partial first or last days, nothing else.
"""

from __future__ import annotations

import csv
import datetime
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from protocols.analytics.data import (INTERVALS_MINUTES, LABEL_NAMES, MAX_DAYS, MAX_KWH_PER_MINUTE, MAX_METERS,
                                      Labels, LoadData)
from protocols.errors import DecodeError, ParameterError

REPAIRS = ("none", "fill")
"""Repair modes of :func:`read_long_csv` (spec 2.4)."""
MAX_FILL_MINUTES = 120
"""``fill`` interpolates a run of missing readings only if it spans at most this many minutes."""
MAX_FILE_BYTES = 4 << 30
"""A long CSV or labels file larger than this is refused before it is read (spec 2.3)."""
MAX_ROWS = 100_000_000
"""At most this many data rows (spec 2.3)."""
MAX_METER_ID = 64
"""Longest meter id, in characters."""
HEADER = ("meter", "timestamp", "kwh")
LABELS_HEADER = ("meter", "day", "label")
_EPOCH = datetime.datetime(1970, 1, 1)


@dataclass
class _Series:
    """One meter's readings as read: minutes since 1970-01-01 00:00 on the file's clock."""

    minutes: list[int] = field(default_factory=list)
    kwh: list[float] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def _open_checked(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str]]]:
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ParameterError(f"{p.name}: {size} bytes; at most {MAX_FILE_BYTES} are read (spec 2.3)")
    with p.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            for row in reader:
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DecodeError(f"line {reader.line_num + 1}: not CSV text: {exc}") from exc


def _where(line: int, meter: str | None = None) -> str:
    return f"line {line}" + (f" (meter {meter!r})" if meter is not None else "")


def _parse_timestamp(text: str, line: int, meter: str) -> datetime.datetime:
    try:
        ts = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise DecodeError(f"{_where(line, meter)}: timestamp {text!r} is not ISO 8601") from None
    if len(text.strip()) < 16:
        raise DecodeError(f"{_where(line, meter)}: timestamp {text!r} has no time of day")
    return ts


def read_long_csv(path: str | os.PathLike[str], *, repair: str = "none") -> LoadData:
    """Read ``meter,timestamp,kwh`` into a grid (spec 2.3); ``repair`` as in spec 2.4."""
    if repair not in REPAIRS:
        raise ParameterError(f"repair must be one of {REPAIRS}, not {repair!r}")
    series: dict[str, _Series] = {}
    offset: datetime.timedelta | None = None
    aware: bool | None = None
    rows = _open_checked(path)
    first = next(rows, None)
    if first is None or tuple(c.strip() for c in first[1]) != HEADER:
        raise DecodeError(f"line 1: the header must be {','.join(HEADER)}")
    count = 0
    for line, row in rows:
        if not row:
            raise DecodeError(f"{_where(line)}: empty line")
        if len(row) != 3:
            raise DecodeError(f"{_where(line)}: {len(row)} fields; expected 3 (meter,timestamp,kwh)")
        count += 1
        if count > MAX_ROWS:
            raise ParameterError(f"{_where(line)}: more than {MAX_ROWS} rows (spec 2.3)")
        meter = row[0].strip()
        if not meter or len(meter) > MAX_METER_ID or not meter.isprintable():
            raise ParameterError(f"{_where(line)}: meter id must be 1..{MAX_METER_ID} printable characters")
        ts = _parse_timestamp(row[1], line, meter)
        if aware is None:
            aware = ts.tzinfo is not None
            offset = ts.utcoffset()
        if (ts.tzinfo is not None) != aware:
            raise ParameterError(f"{_where(line, meter)}: timestamps mix UTC offsets and local times (spec 2.3)")
        if ts.tzinfo is not None:
            assert offset is not None
            ts = (ts - (ts.utcoffset() or datetime.timedelta()) + offset).replace(tzinfo=None)
        if ts.second or ts.microsecond:
            raise ParameterError(f"{_where(line, meter)}: timestamp {row[1].strip()!r} is not on a whole minute")
        try:
            value = float(row[2])
        except ValueError:
            raise DecodeError(f"{_where(line, meter)}: kwh {row[2]!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ParameterError(f"{_where(line, meter)}: kwh {row[2].strip()!r} is negative or not finite")
        s = series.get(meter)
        if s is None:
            if len(series) >= MAX_METERS:
                raise ParameterError(f"{_where(line, meter)}: more than {MAX_METERS} meters")
            s = series[meter] = _Series()
        s.minutes.append((ts - _EPOCH) // datetime.timedelta(minutes=1))
        s.kwh.append(value)
        s.lines.append(line)
    if not series:
        raise ParameterError("the file has a header but no readings")
    return _to_grid(series, repair)


def _to_grid(series: dict[str, _Series], repair: str, *, crop: bool = False) -> LoadData:
    """Check and assemble the series (spec 2.3, 2.4); ``crop`` keeps only the days every meter covers."""
    fill = repair == "fill"
    arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for meter, s in series.items():
        t = np.asarray(s.minutes, np.int64)
        v = np.asarray(s.kwh, np.float64)
        ln = np.asarray(s.lines, np.int64)
        d = np.diff(t)
        back = np.flatnonzero(d < 0)
        if back.size:
            raise ParameterError(f"{_where(int(ln[back[0] + 1]), meter)}: timestamp earlier than the meter's "
                                 "previous reading (readings of a meter must be in time order)")
        dup = np.flatnonzero(d == 0)
        if dup.size:
            differ = dup[v[dup] != v[dup + 1]]
            if not fill or differ.size:
                bad = differ[0] if differ.size else dup[0]
                raise ParameterError(f"{_where(int(ln[bad + 1]), meter)}: duplicate timestamp"
                                     + (" with a different value" if fill else ""))
            keep = np.ones(t.size, bool)
            keep[dup + 1] = False
            t, v, ln = t[keep], v[keep], ln[keep]
        arrays[meter] = (t, v, ln)
    steps = {m: int(np.diff(t).min()) for m, (t, _, _) in arrays.items() if t.size > 1}
    if not steps:
        raise ParameterError("cannot infer the interval: no meter has two readings")
    interval = min(steps.values())
    for meter, step in steps.items():
        if step != interval:
            line = int(arrays[meter][2][0])
            raise ParameterError(f"{_where(line, meter)}: readings every {step} minutes, other meters every "
                                 f"{interval} (mixed intervals)")
    if interval not in INTERVALS_MINUTES:
        raise ParameterError(f"interval of {interval} minutes inferred; must be one of {INTERVALS_MINUTES}")
    bound = MAX_KWH_PER_MINUTE * interval
    slots = 1440 // interval
    grid: dict[str, tuple[int, np.ndarray]] = {}
    for meter, (t, v, ln) in arrays.items():
        d = np.diff(t)
        odd = np.flatnonzero(d % interval)
        if odd.size:
            raise ParameterError(f"{_where(int(ln[odd[0] + 1]), meter)}: step of {int(d[odd[0]])} minutes is not "
                                 f"a multiple of the {interval}-minute interval (mixed intervals)")
        misaligned = np.flatnonzero(t % interval)
        if misaligned.size:
            raise ParameterError(f"{_where(int(ln[misaligned[0]]), meter)}: timestamp not on a {interval}-minute "
                                 "boundary of the day")
        absurd = np.flatnonzero(v > bound)
        if absurd.size:
            raise ParameterError(f"{_where(int(ln[absurd[0]]), meter)}: kwh {v[absurd[0]]} above "
                                 f"{bound:g} for {interval} minutes (spec 2.3)")
        gaps = np.flatnonzero(d > interval)
        if gaps.size:
            g = gaps[0]
            if not fill or int(d[gaps].max()) - interval > MAX_FILL_MINUTES:
                if fill:
                    g = gaps[np.argmax(d[gaps] - interval > MAX_FILL_MINUTES)]
                missing = int(d[g]) // interval - 1
                raise ParameterError(f"{_where(int(ln[g + 1]), meter)}: gap of {missing} missing reading(s) before "
                                     "this one" + (f" (fill mends at most {MAX_FILL_MINUTES} minutes)" if fill else ""))
            full = np.arange(t[0], t[-1] + 1, interval, dtype=np.int64)
            v = np.interp(full.astype(np.float64), t.astype(np.float64), v)
            ln = np.interp(full.astype(np.float64), t.astype(np.float64), ln.astype(np.float64)).astype(np.int64)
            t = full
        first_slot = int(t[0] % 1440) // interval
        last_slot = int(t[-1] % 1440) // interval
        if first_slot or last_slot != slots - 1:
            if not fill:
                which, line = ("first", int(ln[0])) if first_slot else ("last", int(ln[-1]))
                raise ParameterError(f"{_where(line, meter)}: the meter's {which} reading does not "
                                     f"{'start at 00:00' if which == 'first' else 'end the day'}: days must be "
                                     "whole (repair='fill' drops partial days)")
            lo = (slots - first_slot) % slots
            hi = t.size - (last_slot + 1) % slots
            t, v, ln = t[lo:hi], v[lo:hi], ln[lo:hi]
            if t.size == 0:
                raise ParameterError(f"{_where(int(arrays[meter][2][0]), meter)}: no whole day of readings")
        grid[meter] = (int(t[0]) // 1440, v.reshape(-1, slots))
    meters = tuple(grid)
    if crop:
        lo = max(d0 for d0, _ in grid.values())
        hi = min(d0 + values.shape[0] for d0, values in grid.values())
        if hi <= lo:
            raise ParameterError("the meters have no whole day in common")
        grid = {m: (lo, values[lo - d0:hi - d0]) for m, (d0, values) in grid.items()}
    day0, first_values = grid[meters[0]]
    days = first_values.shape[0]
    for meter in meters[1:]:
        d0, values = grid[meter]
        if d0 != day0 or values.shape[0] != days:
            raise ParameterError(f"{_where(int(arrays[meter][2][0]), meter)}: covers "
                                 f"{values.shape[0]} day(s) from {_EPOCH.date() + datetime.timedelta(days=d0)}, "
                                 f"meter {meters[0]!r} {days} from {_EPOCH.date() + datetime.timedelta(days=day0)}"
                                 " (meters must cover the same dates)")
    if days > MAX_DAYS:
        raise ParameterError(f"{days} days; at most {MAX_DAYS}")
    kwh = np.stack([grid[m][1] for m in meters])
    return LoadData(meters, _EPOCH.date() + datetime.timedelta(days=day0), interval, kwh)


def _check_writable(meter: str) -> None:
    """A meter id that reads back as itself: printable, unpadded, no comma or quote, 1..64 characters."""
    if (not meter or len(meter) > MAX_METER_ID or not meter.isprintable() or meter != meter.strip()
            or "," in meter or '"' in meter):
        raise ParameterError(f"meter id {meter!r} cannot be written so that it reads back unchanged")


def write_long_csv(data: LoadData, path: str | os.PathLike[str], *, decimals: int = 6) -> None:
    """Write the grid as ``meter,timestamp,kwh`` rows, meter by meter in time order (spec 2.3)."""
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 17:
        raise ParameterError("decimals must be an int in 0..17")
    stamps = np.array([(datetime.datetime.combine(data.start, datetime.time()) +
                        datetime.timedelta(minutes=i * data.interval_minutes)).strftime("%Y-%m-%dT%H:%M")
                       for i in range(data.days * data.slots)])
    fmt = f"%.{decimals}f"
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(HEADER) + "\n")
        for m, meter in enumerate(data.meters):
            _check_writable(meter)
            values = np.char.mod(fmt, data.kwh[m].reshape(-1))
            f.write("\n".join(np.char.add(np.char.add(f"{meter},", stamps), np.char.add(",", values)).tolist()))
            f.write("\n")


def write_labels(labels: Labels, path: str | os.PathLike[str]) -> None:
    """Write ``meter,day,label`` with the label by name (spec 2.2)."""
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(LABELS_HEADER) + "\n")
        days = [(labels.start + datetime.timedelta(days=i)).isoformat() for i in range(labels.codes.shape[1])]
        for m, meter in enumerate(labels.meters):
            _check_writable(meter)
            f.write("".join(f"{meter},{day},{LABEL_NAMES[int(c)]}\n" for day, c in zip(days, labels.codes[m])))


def read_labels(path: str | os.PathLike[str]) -> Labels:
    """Read ``meter,day,label`` (spec 2.2): every meter labelled on the same consecutive days."""
    codes_by_name = {name: i for i, name in enumerate(LABEL_NAMES)}
    by_meter: dict[str, dict[datetime.date, int]] = {}
    first_line: dict[str, int] = {}
    rows = _open_checked(path)
    first = next(rows, None)
    if first is None or tuple(c.strip() for c in first[1]) != LABELS_HEADER:
        raise DecodeError(f"line 1: the header must be {','.join(LABELS_HEADER)}")
    count = 0
    for line, row in rows:
        if len(row) != 3:
            raise DecodeError(f"{_where(line)}: {len(row)} fields; expected 3 (meter,day,label)")
        count += 1
        if count > MAX_ROWS:
            raise ParameterError(f"{_where(line)}: more than {MAX_ROWS} rows")
        meter = row[0].strip()
        if not meter or len(meter) > MAX_METER_ID or not meter.isprintable():
            raise ParameterError(f"{_where(line)}: meter id must be 1..{MAX_METER_ID} printable characters")
        try:
            day = datetime.date.fromisoformat(row[1].strip())
        except ValueError:
            raise DecodeError(f"{_where(line, meter)}: day {row[1]!r} is not an ISO 8601 date") from None
        code = codes_by_name.get(row[2].strip())
        if code is None:
            raise ParameterError(f"{_where(line, meter)}: label {row[2]!r} is not one of {', '.join(LABEL_NAMES)}")
        days = by_meter.setdefault(meter, {})
        first_line.setdefault(meter, line)
        if day in days:
            raise ParameterError(f"{_where(line, meter)}: day {day} labelled twice")
        if len(by_meter) > MAX_METERS:
            raise ParameterError(f"{_where(line, meter)}: more than {MAX_METERS} meters")
        days[day] = code
    if not by_meter:
        raise ParameterError("the labels file has a header but no rows")
    meters = tuple(by_meter)
    start = min(by_meter[meters[0]])
    n = len(by_meter[meters[0]])
    if n > MAX_DAYS:
        raise ParameterError(f"{n} days; at most {MAX_DAYS}")
    span = [start + datetime.timedelta(days=i) for i in range(n)]
    codes = np.zeros((len(meters), n), np.int64)
    for m, meter in enumerate(meters):
        days = by_meter[meter]
        if len(days) != n or any(d not in days for d in span):
            raise ParameterError(f"{_where(first_line[meter], meter)}: labelled days are not the {n} consecutive "
                                 f"days from {start} that meter {meters[0]!r} has")
        codes[m] = [days[d] for d in span]
    return Labels(meters, start, codes)
