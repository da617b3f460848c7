"""The long CSV of readings and the labels CSV (specs/analytics.md sections 2.2, 2.3, 2.4).

``meter,timestamp,kwh``: one reading a row, the timestamp the start of its
interval.  Reading checks every row and refuses what does not make a full
regular grid, naming the line and the meter; ``repair="fill"`` mends small
gaps, identical duplicates and partial first or last days, nothing else.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping

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
CHUNK_LINES = 1 << 18
"""Lines :func:`read_long_csv` converts at a time (spec 2.3): bounds the memory beyond the rows kept."""
_EPOCH = datetime.datetime(1970, 1, 1)


@dataclass
class _Series:
    """One meter's readings as read: minutes since 1970-01-01 00:00 on the file's clock."""

    minutes: list[int] = field(default_factory=list)
    kwh: list[float] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Minutes, values and line numbers as arrays."""
        return np.asarray(self.minutes, np.int64), np.asarray(self.kwh, np.float64), np.asarray(self.lines, np.int64)


@dataclass
class _Parts:
    """One meter's readings as arrays, one part per chunk of the file (minutes, kWh, line numbers)."""

    minutes: list[np.ndarray] = field(default_factory=list)
    kwh: list[np.ndarray] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)

    def add(self, minutes: np.ndarray, kwh: np.ndarray, lines: np.ndarray) -> None:
        self.minutes.append(minutes)
        self.kwh.append(kwh)
        self.lines.append(lines)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The parts joined; the parts are released (the reader's memory then holds each row once)."""
        out = (np.concatenate(self.minutes), np.concatenate(self.kwh), np.concatenate(self.lines))
        self.minutes, self.kwh, self.lines = [], [], []
        return out


@dataclass
class _State:
    """What reading a long CSV carries from row to row: the meters so far and the file's time zone."""

    series: dict[str, _Parts] = field(default_factory=dict)
    aware: bool | None = None
    offset: datetime.timedelta | None = None
    count: int = 0


def _open_checked(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str]]]:
    p = _checked_size(path)
    with p.open("r", encoding="utf-8-sig", newline="") as f:
        yield from _csv_rows(f, 0)


def _checked_size(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ParameterError(f"{p.name}: {size} bytes; at most {MAX_FILE_BYTES} are read (spec 2.3)")
    return p


def _csv_rows(f: Iterable[str], before: int) -> Iterator[tuple[int, list[str]]]:
    """``csv`` rows of ``f`` with their line numbers, ``before`` lines of the file preceding ``f``."""
    reader = csv.reader(f)
    try:
        for row in reader:
            yield before + reader.line_num, row
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DecodeError(f"line {before + reader.line_num + 1}: not CSV text: {exc}") from exc


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


def _row(state: _State, line: int, row: list[str]) -> tuple[str, int, float]:
    """Check one row the slow way (spec 2.3): its meter, minute and value, or the error naming it."""
    if not row:
        raise DecodeError(f"{_where(line)}: empty line")
    if len(row) != 3:
        raise DecodeError(f"{_where(line)}: {len(row)} fields; expected 3 (meter,timestamp,kwh)")
    state.count += 1
    if state.count > MAX_ROWS:
        raise ParameterError(f"{_where(line)}: more than {MAX_ROWS} rows (spec 2.3)")
    meter = row[0].strip()
    if not meter or len(meter) > MAX_METER_ID or not meter.isprintable():
        raise ParameterError(f"{_where(line)}: meter id must be 1..{MAX_METER_ID} printable characters")
    ts = _parse_timestamp(row[1], line, meter)
    if state.aware is None:
        state.aware = ts.tzinfo is not None
        state.offset = ts.utcoffset()
    if (ts.tzinfo is not None) != state.aware:
        raise ParameterError(f"{_where(line, meter)}: timestamps mix UTC offsets and local times (spec 2.3)")
    if ts.tzinfo is not None:
        assert state.offset is not None
        ts = (ts - (ts.utcoffset() or datetime.timedelta()) + state.offset).replace(tzinfo=None)
    if ts.second or ts.microsecond:
        raise ParameterError(f"{_where(line, meter)}: timestamp {row[1].strip()!r} is not on a whole minute")
    try:
        value = float(row[2])
    except ValueError:
        raise DecodeError(f"{_where(line, meter)}: kwh {row[2]!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ParameterError(f"{_where(line, meter)}: kwh {row[2].strip()!r} is negative or not finite")
    if meter not in state.series:
        if len(state.series) >= MAX_METERS:
            raise ParameterError(f"{_where(line, meter)}: more than {MAX_METERS} meters")
        state.series[meter] = _Parts()
    return meter, (ts - _EPOCH) // datetime.timedelta(minutes=1), value


def _slow_rows(state: _State, rows: Iterable[tuple[int, list[str]]], chunk_lines: int) -> None:
    """Read rows one by one with ``csv`` and ``datetime``, keeping them as arrays every ``chunk_lines`` rows."""
    pending: dict[str, tuple[list[int], list[float], list[int]]] = {}

    def flush() -> None:
        for meter, (t, v, ln) in pending.items():
            state.series[meter].add(np.asarray(t, np.int64), np.asarray(v, np.float64), np.asarray(ln, np.int64))
        pending.clear()

    for k, (line, row) in enumerate(rows, 1):
        meter, minute, value = _row(state, line, row)
        t, v, ln = pending.setdefault(meter, ([], [], []))
        t.append(minute)
        v.append(value)
        ln.append(line)
        if k % chunk_lines == 0:
            flush()
    flush()


_DIGIT = np.zeros(256, bool)
_DIGIT[ord("0"):ord("9") + 1] = True
_NUMBER = _DIGIT.copy()
_NUMBER[list(b".eE+-")] = True
_TS_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15])
_MAX_VALUE_CHARS = 40


def _gather(a: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Column ``j`` holds ``a[start + j]`` where ``j < length``, else 0 (``a`` holds no zero byte)."""
    cols = np.arange(int(length.max()))[:, None]
    out = a[np.minimum(start + cols, a.size - 1)]
    out[cols >= length] = 0
    return out


def _decimals(columns: np.ndarray) -> np.ndarray | None:
    """Zero-padded ASCII numbers, one a column, as floats; None if one is not made of digits and ``.eE+-``
    or is not a number.

    ``digits[.digits]`` with at most 15 digits is the integer of its digits over a power of ten: both exact
    in float64, so the one division rounds correctly, as ``float`` does; other numbers go to numpy's parser.
    """
    n = columns.shape[1]
    mantissa = np.zeros(n, np.int64)
    count = np.zeros(n, np.int64)
    after = np.zeros(n, np.int64)
    dots = np.zeros(n, np.int64)
    other = np.zeros(n, bool)
    for c in columns:
        digit = _DIGIT[c]
        dot = c == ord(".")
        if not np.all(_NUMBER[c] | (c == 0)):
            return None  # a space, letter, underscore...: float() decides
        other |= ~(digit | dot | (c == 0))
        dots += dot
        count += digit
        after += digit & (dots > 0)
        mantissa = np.where(digit, mantissa * 10 + (c - ord("0")), mantissa)
    kwh = mantissa / 10.0 ** after
    rest = np.flatnonzero(other | (count < 1) | (count > 15) | (dots > 1))
    if rest.size:
        try:
            kwh[rest] = np.ascontiguousarray(columns[:, rest].T).view(f"S{columns.shape[0]}").ravel().astype(
                np.float64)
        except ValueError:
            return None
    return kwh


def _fast_chunk(state: _State, buf: bytes, first_line: int
                ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] | None:
    """Whole lines of plain rows (no quote, NUL or carriage return), checked and converted with numpy.

    Returns each meter's minutes, values and line numbers in order of first appearance, or None when any
    row is not of the plain form ``meter,YYYY-MM-DD[T ]HH:MM[:00],decimal`` with every check of
    :func:`_row` passed: the caller then reads the chunk with :func:`_row`, which gives the exact error
    (or accepts a form the fast path does not handle, such as an offset or surrounding spaces).
    """
    if not buf.isascii():
        try:
            buf.decode("utf-8")
        except UnicodeDecodeError:
            return None
    a = np.frombuffer(buf, np.uint8)
    nl = np.flatnonzero(a == ord("\n"))
    n = nl.size
    commas = np.flatnonzero(a == ord(","))
    if n == 0 or commas.size != 2 * n or state.aware or state.count + n > MAX_ROWS:
        return None
    c1, c2 = commas[0::2], commas[1::2]
    starts = np.empty(n, np.int64)
    starts[0] = 0
    starts[1:] = nl[:-1] + 1
    if np.any(c1 <= starts) or np.any(c2 >= nl - 1):  # exactly two commas a line, no empty meter or value
        return None
    # timestamps: YYYY-MM-DD[T ]HH:MM or YYYY-MM-DD[T ]HH:MM:00
    tlen = c2 - c1 - 1
    long = tlen == 19
    if not np.all((tlen == 16) | long):
        return None
    ts = a[c1 + 1 + np.arange(16)[:, None]]
    if not (_DIGIT[ts[_TS_DIGITS]].all() and np.all(ts[4] == ord("-")) and np.all(ts[7] == ord("-"))
            and np.all((ts[10] == ord("T")) | (ts[10] == ord(" "))) and np.all(ts[13] == ord(":"))):
        return None
    if long.any():
        seconds = c1[long] + 17
        if not (np.all(a[seconds] == ord(":")) and np.all(a[seconds + 1] == ord("0"))
                and np.all(a[seconds + 2] == ord("0"))):
            return None
    d = ts[_TS_DIGITS].astype(np.int64) - ord("0")
    year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]
    month, day, hour, minute = (d[i] * 10 + d[i + 1] for i in (4, 6, 8, 10))
    if (year.min() < 1 or month.min() < 1 or month.max() > 12 or day.min() < 1 or hour.max() > 23
            or minute.max() > 59):
        return None
    month_start = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    days = month_start.astype("datetime64[D]").astype(np.int64) + day - 1
    if np.any(days >= (month_start + 1).astype("datetime64[D]").astype(np.int64)):
        return None  # a day past the month's end
    minutes = days * 1440 + hour * 60 + minute
    # values: plain decimals, finite and not negative
    vlen = nl - c2 - 1
    if vlen.max() > _MAX_VALUE_CHARS:
        return None
    kwh = _decimals(_gather(a, c2 + 1, vlen))
    if kwh is None:
        return None
    if not np.all(np.isfinite(kwh) & (kwh >= 0)):
        return None
    # meters: runs of equal bytes, each run's id checked once
    mlen = c1 - starts
    if mlen.max() > 4 * MAX_METER_ID:
        return None
    ids = _gather(a, starts, mlen)
    run_starts = np.flatnonzero(np.r_[True, np.any(ids[:, 1:] != ids[:, :-1], axis=0)])
    codes: dict[str, int] = {}
    names: dict[bytes, str] = {}
    run_codes = np.empty(run_starts.size, np.int64)
    for r, i in enumerate(run_starts.tolist()):
        raw = buf[starts[i]:c1[i]]
        meter = names.get(raw)
        if meter is None:
            meter = names[raw] = raw.decode("utf-8").strip()
            if not meter or len(meter) > MAX_METER_ID or not meter.isprintable():
                return None
        run_codes[r] = codes.setdefault(meter, len(codes))
    if len(state.series) + sum(m not in state.series for m in codes) > MAX_METERS:
        return None
    lines = np.arange(first_line, first_line + n, dtype=np.int32 if first_line + n < 2**31 else np.int64)
    if run_starts.size == len(codes):  # each meter's rows together
        bounds = np.r_[run_starts, n].tolist()
        return [(m, minutes[lo:hi], kwh[lo:hi], lines[lo:hi]) for m, lo, hi in zip(codes, bounds, bounds[1:])]
    row_codes = np.repeat(run_codes, np.diff(np.r_[run_starts, n]))
    order = np.argsort(row_codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(row_codes, minlength=len(codes)))].tolist()
    return [(m, minutes[order[lo:hi]], kwh[order[lo:hi]], lines[order[lo:hi]])
            for m, lo, hi in zip(codes, bounds, bounds[1:])]


def _plain_header(head: bytes) -> list[str] | None:
    """The header's fields if it is a plain line (no quote, NUL or lone carriage return), else None."""
    body = head[:-1] if head.endswith(b"\n") else head
    body = body[:-1] if body.endswith(b"\r") else body
    if b'"' in body or b"\r" in body or b"\x00" in body:
        return None
    try:
        return body.decode("utf-8-sig").split(",")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"line 1: not CSV text: {exc}") from exc


def read_long_csv(path: str | os.PathLike[str], *, repair: str = "none", chunk_lines: int = CHUNK_LINES) -> LoadData:
    """Read ``meter,timestamp,kwh`` into a grid (spec 2.3); ``repair`` as in spec 2.4.

    The file is read ``chunk_lines`` lines at a time; a chunk of plain rows is checked and converted with
    numpy, any other chunk row by row with the same checks and messages.
    """
    if repair not in REPAIRS:
        raise ParameterError(f"repair must be one of {REPAIRS}, not {repair!r}")
    if isinstance(chunk_lines, bool) or not isinstance(chunk_lines, int) or chunk_lines < 1:
        raise ParameterError("chunk_lines must be a positive int")
    p = _checked_size(path)
    state = _State()
    with p.open("rb") as f:
        header = _plain_header(f.readline())
        if header is None:  # an unusual header: the whole file row by row
            f.seek(0)
            text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
            rows = _csv_rows(text, 0)
            first = next(rows, None)
            _check_header(first[1] if first is not None else None)
            _slow_rows(state, rows, chunk_lines)
        else:
            _check_header(header)
            _read_chunks(state, f, chunk_lines)
    if not state.series:
        raise ParameterError("the file has a header but no readings")
    return _to_grid(state.series, repair)


def _check_header(fields: list[str] | None) -> None:
    if fields is None or tuple(c.strip() for c in fields) != HEADER:
        raise DecodeError(f"line 1: the header must be {','.join(HEADER)}")


def _read_chunks(state: _State, f: BinaryIO, chunk_lines: int) -> None:
    """The data lines after the header, ``chunk_lines`` at a time."""
    line = 2
    for position, raw in _line_chunks(f, chunk_lines):
        lines = raw.count(b"\n") + (not raw.endswith(b"\n"))
        buf = raw if raw.endswith(b"\n") else raw + b"\n"
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        if b'"' in buf or b"\r" in buf or b"\x00" in buf:
            # quoted fields may span lines and chunks, a lone CR ends a line: ``csv`` reads the rest
            f.seek(position)
            _slow_rows(state, _csv_rows(io.TextIOWrapper(f, encoding="utf-8", newline=""), line - 1), chunk_lines)
            return
        parts = _fast_chunk(state, buf, line)
        if parts is None:
            _slow_rows(state, _csv_rows(_decoded(raw.splitlines(keepends=True), line), line - 1), chunk_lines)
        else:
            state.count += lines
            state.aware = False
            for meter, t, v, ln in parts:
                state.series.setdefault(meter, _Parts()).add(t, v, ln)
        line += lines


def _line_chunks(f: BinaryIO, chunk_lines: int) -> Iterator[tuple[int, bytes]]:
    """Byte offset and bytes of each run of ``chunk_lines`` lines (split at ``\\n``) from ``f``'s position."""
    position = f.tell()
    pending = b""
    have = 0  # newlines in pending
    per_line = 64
    eof = False
    while True:
        while not eof and have < chunk_lines:
            more = f.read(max(4096, (chunk_lines - have) * per_line * 5 // 4))
            eof = not more
            pending += more
            have += more.count(b"\n")
        if not pending:
            return
        if have >= chunk_lines:
            ends = np.flatnonzero(np.frombuffer(pending, np.uint8) == ord("\n"))
            cut = int(ends[chunk_lines - 1]) + 1
            have -= chunk_lines
        else:
            cut, have = len(pending), 0
        chunk, pending = pending[:cut], pending[cut:]
        yield position, chunk
        position += cut
        per_line = max(1, cut // chunk_lines)


def _decoded(chunk: Iterable[bytes], line: int) -> Iterator[str]:
    for i, raw in enumerate(chunk):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"line {line + i}: not CSV text: {exc}") from exc


def _to_grid(series: Mapping[str, _Series | _Parts], repair: str, *, crop: bool = False) -> LoadData:
    """Check and assemble the series (spec 2.3, 2.4); ``crop`` keeps only the days every meter covers."""
    fill = repair == "fill"
    arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for meter, s in series.items():
        t, v, ln = s.arrays()
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


def write_long_csv(data: LoadData, path: str | os.PathLike[str], *, decimals: int = 6,
                   chunk_lines: int = CHUNK_LINES) -> None:
    """Write the grid as ``meter,timestamp,kwh`` rows, meter by meter in time order (spec 2.3).

    Values are formatted as ``f"{value:.{decimals}f}"``; ``chunk_lines`` rows are formatted at a time.
    """
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 17:
        raise ParameterError("decimals must be an int in 0..17")
    if isinstance(chunk_lines, bool) or not isinstance(chunk_lines, int) or chunk_lines < 1:
        raise ParameterError("chunk_lines must be a positive int")
    for meter in data.meters:
        _check_writable(meter)
    first = np.datetime64(data.start, "m")
    minutes = first + np.arange(data.days * data.slots) * np.timedelta64(data.interval_minutes, "m")
    stamps = np.frombuffer(np.datetime_as_string(minutes, unit="m").astype("S16").tobytes(), np.uint8)
    stamps = stamps.reshape(-1, 16)
    if stamps.shape[0] and not np.all(stamps[:, 10] == ord("T")):  # a year outside 1..9999: never 16 characters
        raise ParameterError("the grid's dates must lie in the years 1..9999")
    with Path(path).open("wb") as f:
        f.write((",".join(HEADER) + "\n").encode())
        for m, meter in enumerate(data.meters):
            values = data.kwh[m].reshape(-1)
            for lo in range(0, values.size, chunk_lines):
                f.write(_format_rows(meter, stamps[lo:lo + chunk_lines], values[lo:lo + chunk_lines], decimals))


def _format_rows(meter: str, stamps: np.ndarray, values: np.ndarray, decimals: int) -> bytes:
    """``meter,stamp,value`` lines, the values as ``f"{v:.{decimals}f}"`` does.

    The value rounded to ``decimals`` places is ``rint(v * 10**decimals)`` unless the product lies near a
    half (within its rounding error) or is too large, not finite or negative: such chunks use ``format``.
    """
    scale = 10.0 ** decimals
    scaled = values * scale
    fine = bool(np.all((scaled >= 0) & (scaled < 2.0 ** 50) & ~np.signbit(values)))
    if fine:
        q = np.rint(scaled)
        fine = not np.any(np.abs(scaled - np.floor(scaled) - 0.5) <= scaled * 2.0 ** -50 + 2.0 ** -60)
    if not fine:
        text = "".join(f"{meter},{stamp},{v:.{decimals}f}\n"
                       for stamp, v in zip(stamps.view("S16").ravel().astype(str).tolist(), values.tolist()))
        return text.encode()
    n = values.size
    q64 = q.astype(np.int64)
    whole = q64 // 10 ** decimals
    width = len(str(int(whole.max()))) if n else 1
    head = f"{meter},".encode()
    cols = len(head) + 16 + 1 + width + (decimals + 1 if decimals else 0) + 1
    out = np.empty((n, cols), np.uint8)
    out[:, :len(head)] = np.frombuffer(head, np.uint8)
    at = len(head)
    out[:, at:at + 16] = stamps
    at += 16
    out[:, at] = ord(",")
    at += 1
    keep = np.ones((n, cols), bool)
    for j in range(width):  # the integer part, leading zeros dropped
        power = 10 ** (width - 1 - j)
        out[:, at + j] = ord("0") + (whole // power) % 10
        if j < width - 1:
            keep[:, at + j] = whole >= power
    at += width
    if decimals:
        out[:, at] = ord(".")
        fraction = q64 - whole * 10 ** decimals
        for j in range(decimals):
            out[:, at + 1 + j] = ord("0") + (fraction // 10 ** (decimals - 1 - j)) % 10
        at += decimals + 1
    out[:, at] = ord("\n")
    return out[keep].tobytes()


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
