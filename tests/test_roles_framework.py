"""The role framework itself (specs/roles.md sections 2, 3 and 5.3), played with a toy role.

The toy role ``integrity/toy`` keeps a counter in kv and a table of handled
values; ``env.add`` (CBOR uint) draws 8 bytes, bumps the counter and answers
``toy.result`` = CBOR [counter, value, draw]; ``env.fail`` draws and writes,
then refuses (StateError); anything else is a DecodeError.  Subprocess tests
run it through a small ``python -c`` driver that loads this file by path.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import sys
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, StateError, StateFileError
from protocols.primitives import cbor
from protocols.system.roles import harness, process, tamper, wire
from protocols.system.roles.base import Context, CrashPlan, RoleSpec
from protocols.system.roles.store import Identity, Store
from protocols.system.roles.wire import Envelope

TOY_ID = "toy-1"
SEED = "framework-test"


def _provision(ctx: Context, record: dict[str, object]) -> None:
    start = record["start"]
    if not isinstance(start, int):
        raise DecodeError("start must be an integer")
    ctx.put("count", cbor.encode(start))


def _handle(ctx: Context, envelope: Envelope) -> list[Envelope]:
    if envelope.type not in ("env.add", "env.fail"):
        raise DecodeError(f"toy: unknown type {envelope.type}")
    value = cbor.decode(envelope.body, max_size=16)
    if not isinstance(value, int) or value < 0:
        raise DecodeError("toy: the body is a CBOR uint")
    draw = ctx.rng.random_bytes(8)
    count = cbor.decode(ctx.need("count")) + 1
    ctx.put("count", cbor.encode(count))
    ctx.db.execute("INSERT INTO seen (n, draw) VALUES (?, ?)", (count, draw))
    ctx.crash_point("toy-mid")
    if envelope.type == "env.fail":
        raise StateError("toy: refused after writing")
    return [ctx.send(wire.HARNESS, "toy.result", cbor.encode([count, value, draw])),
            ctx.send(wire.HARNESS, "toy.echo", envelope.body)]


TOY = RoleSpec("integrity", "toy", 1, ("CREATE TABLE seen (n INTEGER PRIMARY KEY, draw BLOB NOT NULL) STRICT",),
               _provision, _handle)

DRIVER = ("import importlib.util, sys\n"
          "spec = importlib.util.spec_from_file_location('toy_roles', sys.argv[1])\n"
          "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
          "from protocols.system.roles import process, base\n"
          "party = process.Party.open(m.TOY, sys.argv[2], None, sys.argv[3], base.CrashPlan.from_environment())\n"
          "sys.exit(process.serve(party, sys.stdin.buffer, sys.stdout.buffer, sys.stderr))\n")


def driver_command(state: str, seed: str = SEED) -> list[str]:
    return [sys.executable, "-c", DRIVER, os.path.abspath(__file__), state, seed]


def child_env() -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {"PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def new_toy(directory: str, name: str = "toy.sqlite", start: int = 0) -> str:
    path = os.path.join(directory, name)
    process.provision_party(TOY, path, TOY_ID, {"start": start})
    return path


def add(value: int, kind: str = "env.add") -> Envelope:
    return Envelope(wire.HARNESS, TOY_ID, kind, cbor.encode(value))


def serve_lines(party: process.Party, data: bytes) -> list[Envelope]:
    out = io.BytesIO()
    assert process.serve(party, io.BytesIO(data), out, io.StringIO()) == 0
    return [wire.parse_line(line) for line in out.getvalue().splitlines()]


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------
# 2. The line format


def test_line_is_canonical_json() -> None:
    env = Envelope("a", "b", "x.y", b"\x00\xff")
    assert env.line() == b'{"from":"a","to":"b","type":"x.y","body":"AP8="}\n'
    assert wire.parse_line(env.line()) == env


@pytest.mark.parametrize("line", [
    b"not json",
    b"[1, 2]",
    b'{"from":"a","to":"b","type":"t"}',
    b'{"from":"a","to":"b","type":"t","body":"","extra":1}',
    b'{"from":"a b","to":"b","type":"t","body":""}',
    b'{"from":"a","to":"' + b"b" * 65 + b'","type":"t","body":""}',
    b'{"from":"a","to":"b","type":"T","body":""}',
    b'{"from":"a","to":"b","type":"","body":""}',
    b'{"from":1,"to":"b","type":"t","body":""}',
    b'{"from":"a","to":"b","type":"t","body":1}',
    b'{"from":"a","to":"b","type":"t","body":"AP9="}',     # non-zero pad bits: not canonical
    b'{"from":"a","to":"b","type":"t","body":"AP8"}',      # missing padding
    b'{"from":"a","to":"b","type":"t","body":"A P8="}',    # whitespace
    b'{"from":"a","to":"b","type":"t","body":"\xff"}',
    b"\xff\xfe",
])
def test_parse_line_refuses(line: bytes) -> None:
    with pytest.raises(DecodeError):
        wire.parse_line(line)


def test_parse_line_refuses_oversized_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("json parsed an oversized line")
    monkeypatch.setattr(wire.json, "loads", never)
    with pytest.raises(DecodeError, match="exceeds"):
        wire.parse_line(b"x" * (wire.MAX_LINE_BYTES + 1))


IDS = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
TYPES = st.from_regex(r"[a-z0-9.-]{1,64}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(IDS, IDS, TYPES, st.binary(max_size=300))
def test_line_round_trip(sender: str, to: str, type_: str, body: bytes) -> None:
    env = Envelope(sender, to, type_, body)
    line = env.line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert wire.parse_line(line) == env
    assert wire.parse_line(line.rstrip(b"\n")).line() == line


def test_serve_refuses_bad_lines_and_continues(tmp_path: object) -> None:
    path = new_toy(str(tmp_path))
    party = process.Party.open(TOY, path, seed=SEED)
    try:
        data = (b"garbage\n" + b"y" * (wire.MAX_LINE_BYTES + 10) + b"\n" + b"\n"
                + Envelope(wire.HARNESS, "someone-else", "env.add", cbor.encode(1)).line()
                + add(1, "env.nope").line() + add(5).line())
        got = serve_lines(party, data)
    finally:
        party.close()
    kinds = [e.type for e in got]
    assert kinds == ["refused"] * 4 + ["toy.result", "toy.echo", "ok"]
    errors = [wire.read_refusal(e.body)[0] for e in got[:4]]
    assert errors == ["DecodeError"] * 4
    assert "exceeds" in wire.read_refusal(got[1].body)[1]
    assert all(e.sender == TOY_ID and e.to == wire.HARNESS for e in got)
    assert cbor.decode(got[4].body)[:2] == [1, 5]


# --------------------------------------------------------------------------
# 3.1 The state file


def test_create_refuses_existing_path(tmp_path: object) -> None:
    path = new_toy(str(tmp_path))
    before = digest(path)
    with pytest.raises(StateFileError, match="already exists"):
        process.provision_party(TOY, path, TOY_ID, {"start": 0})
    assert digest(path) == before


def test_open_refuses_missing_file(tmp_path: object) -> None:
    with pytest.raises(StateFileError, match="no state file"):
        Store.open(os.path.join(str(tmp_path), "none.sqlite"), "integrity", "toy", 1)


def test_open_refuses_non_sqlite_file(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "text.sqlite")
    with open(path, "wb") as f:
        f.write(b"this is not a database\n" * 300)
    before = digest(path)
    with pytest.raises(StateFileError):
        Store.open(path, "integrity", "toy", 1)
    assert digest(path) == before


def test_open_refuses_other_application(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "other.sqlite")
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id=1234")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = digest(path)
    with pytest.raises(StateFileError, match="not a usapp role state file"):
        Store.open(path, "integrity", "toy", 1)
    assert digest(path) == before


@pytest.mark.parametrize("protocol, role, version, ident, match", [
    ("escrow", "toy", 1, TOY_ID, "not of a escrow toy"),
    ("integrity", "meter", 1, TOY_ID, "not of a integrity meter"),
    ("integrity", "toy", 2, TOY_ID, "schema version 1"),
    ("integrity", "toy", 1, "toy-2", "not of toy-2"),
])
def test_open_refuses_other_identity(tmp_path: object, protocol: str, role: str, version: int, ident: str,
                                     match: str) -> None:
    path = new_toy(str(tmp_path))
    with pytest.raises(StateFileError, match=match):
        Store.open(path, protocol, role, version, ident)
    store = Store.open(path, "integrity", "toy", 1, TOY_ID)     # refused opens changed nothing that matters
    try:
        assert store.identity == Identity("integrity", "toy", TOY_ID, 1)
        assert store.get("count") == cbor.encode(0)
    finally:
        store.close()


def test_second_open_is_refused_while_held(tmp_path: object) -> None:
    path = new_toy(str(tmp_path))
    first = Store.open(path, "integrity", "toy", 1, TOY_ID)
    try:
        with pytest.raises(StateFileError, match="in use"):
            Store.open(path, "integrity", "toy", 1, TOY_ID)
        assert first.get("count") == cbor.encode(0)
    finally:
        first.close()
    Store.open(path, "integrity", "toy", 1, TOY_ID).close()


def test_second_process_is_refused(tmp_path: object) -> None:
    """A real second process on a held file: its start fails with 'in use', the holder carries on."""
    path = new_toy(str(tmp_path))
    holder = harness.ProcessEndpoint(TOY_ID, driver_command(path), env=child_env(), timeout=60)
    try:
        outputs, status = holder.exchange(add(1))
        assert status.type == wire.OK
        import subprocess
        second = subprocess.run(driver_command(path), input=add(2).line(), capture_output=True,
                                env={**os.environ, **child_env()}, timeout=60)
        assert second.returncode != 0 and b"in use" in second.stderr and second.stdout == b""
        outputs, status = holder.exchange(add(3))
        assert status.type == wire.OK and cbor.decode(outputs[0].body)[:2] == [2, 3]
    finally:
        assert holder.close() == 0


def test_corrupted_page_is_refused(tmp_path: object) -> None:
    path = new_toy(str(tmp_path))
    store = Store.open(path, "integrity", "toy", 1, TOY_ID)
    with store.transaction():
        for i in range(60):
            store.put(f"filler-{i}", bytes([i]) * 1500)
    page = store.db.execute("PRAGMA page_size").fetchone()[0]
    store.close()
    size = os.path.getsize(path)
    assert size > 10 * page
    with open(path, "r+b") as f:
        f.seek((size // page // 2) * page)
        f.write(b"\xa5" * page)
    before = digest(path)
    with pytest.raises(StateFileError):
        Store.open(path, "integrity", "toy", 1, TOY_ID)
    assert digest(path) == before


def test_empty_and_truncated_files_are_refused(tmp_path: object) -> None:
    empty = os.path.join(str(tmp_path), "empty.sqlite")
    open(empty, "wb").close()
    with pytest.raises(StateFileError, match="not a usapp role state file"):
        Store.open(empty, "integrity", "toy", 1)
    assert os.path.getsize(empty) == 0
    path = new_toy(str(tmp_path))
    store = Store.open(path, "integrity", "toy", 1, TOY_ID)
    with store.transaction():
        for i in range(40):
            store.put(f"filler-{i}", bytes([i]) * 2000)
    store.close()
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    before = digest(path)
    with pytest.raises(StateFileError):
        Store.open(path, "integrity", "toy", 1, TOY_ID)
    assert digest(path) == before


def test_failed_provisioning_leaves_nothing(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "bad.sqlite")
    with pytest.raises(DecodeError, match="start must be an integer"):
        process.provision_party(TOY, path, TOY_ID, {"start": "zero"})
    assert os.listdir(str(tmp_path)) == []


# --------------------------------------------------------------------------
# 3.2 and 3.4 The commit rule and the DRBG


def test_refused_input_changes_nothing(tmp_path: object) -> None:
    """env.fail draws, writes kv and a table row, then refuses: all of it (and the draw) is undone."""
    one, two = new_toy(str(tmp_path), "a.sqlite"), new_toy(str(tmp_path), "b.sqlite")
    party = process.Party.open(TOY, one, seed=SEED)
    try:
        got = serve_lines(party, add(7, "env.fail").line() + add(7).line())
        assert got[0].type == wire.REFUSED and wire.read_refusal(got[0].body)[0] == "StateError"
        assert party.store.get("count") == cbor.encode(1)
        assert party.store.db.execute("SELECT count(*) FROM seen").fetchone()[0] == 1
        assert party.store.db.execute("SELECT count(*) FROM journal").fetchone()[0] == 1
    finally:
        party.close()
    plain = process.Party.open(TOY, two, seed=SEED)
    try:
        assert serve_lines(plain, add(7).line()) == got[1:]      # same draw: the refused one was undone
    finally:
        plain.close()


def test_resent_input_is_answered_from_the_journal(tmp_path: object) -> None:
    path = new_toy(str(tmp_path))
    party = process.Party.open(TOY, path, seed=SEED)
    try:
        first = serve_lines(party, add(3).line())
        again = serve_lines(party, add(3).line())
        assert [e.line() for e in again] == [e.line() for e in first]
        assert party.store.get("count") == cbor.encode(1)
    finally:
        party.close()
    party = process.Party.open(TOY, path, seed="another seed")      # after a restart too
    try:
        assert [e.line() for e in serve_lines(party, add(3).line())] == [e.line() for e in first]
        fresh = serve_lines(party, add(4).line())
        assert cbor.decode(fresh[0].body)[0] == 2
    finally:
        party.close()


def run_toy(path: str, values: list[int], reopen_at: int | None) -> list[bytes]:
    """The output lines of ``values`` fed to a fresh toy, closed and reopened before index ``reopen_at``."""
    lines: list[bytes] = []
    cut = len(values) if reopen_at is None else reopen_at
    for part in (values[:cut], values[cut:]):
        party = process.Party.open(TOY, path, seed=SEED)
        try:
            lines += [e.line() for e in serve_lines(party, b"".join(add(v).line() for v in part))]
        finally:
            party.close()
    return lines


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.data())
def test_reopen_anywhere_equals_uninterrupted(values: list[int], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(values)))
    with tempfile.TemporaryDirectory() as directory:
        whole = run_toy(new_toy(directory, "whole.sqlite"), values, None)
        split = run_toy(new_toy(directory, "split.sqlite"), values, cut)
    assert split == whole
    draws = [cbor.decode(wire.parse_line(line).body)[2] for line in whole
             if wire.parse_line(line).type == "toy.result"]
    distinct = {v for v in values}
    assert len(draws) == len(values) and len(set(draws)) == len(distinct)   # a re-sent input: the journal's answer


# --------------------------------------------------------------------------
# 3.5 Crash points, with real processes


def exchange_all(endpoint: harness.ProcessEndpoint, messages: list[Envelope]) -> list[bytes]:
    lines: list[bytes] = []
    for message in messages:
        outputs, status = endpoint.exchange(message)
        lines += [e.line() for e in outputs] + [status.line()]
    return lines


def test_crash_plan_counts_points() -> None:
    err = io.StringIO()
    plan = CrashPlan(at=None, trace=True, err=err)
    for label in ("read", "draw", "committed"):
        plan.point(label)
    assert err.getvalue().splitlines() == ["usapp-crash-point 1 read", "usapp-crash-point 2 draw",
                                           "usapp-crash-point 3 committed"]


def test_kill_at_every_point_then_resend(tmp_path: object) -> None:
    """SIGKILL at crash point N (every one of the first input's, some of the second's), restart, re-send
    the unanswered input: the answers equal an uninterrupted run's and no draw is repeated."""
    messages = [add(1), add(2), add(2), add(3)]
    reference_path = new_toy(str(tmp_path), "reference.sqlite")
    trace = open(os.path.join(str(tmp_path), "trace.log"), "w+b")
    ref = harness.ProcessEndpoint(TOY_ID, driver_command(reference_path), log=trace,
                                  env={**child_env(), "USAPP_CRASH_TRACE": "1"}, timeout=60)
    try:
        expected = exchange_all(ref, messages)
    finally:
        assert ref.close() == 0
    trace.seek(0)
    labels = [line.split()[2] for line in trace.read().decode().splitlines() if line.startswith("usapp-crash-point")]
    trace.close()
    new = ["read", "draw", "toy-mid", "before-commit", "committed", "wrote", "wrote"]
    assert labels == new + new + ["read", "wrote", "wrote"] + new
    # points per new input: read, draw, toy-mid, before-commit, committed, wrote, wrote = 7; a re-sent one: read,
    # wrote, wrote.  Kill at each point of the second input and a few beyond.
    for at in (8, 9, 10, 11, 12, 13, 14, 16, 18):
        path = new_toy(str(tmp_path), f"crash-{at}.sqlite")
        env = {**child_env(), "USAPP_CRASH_AT": str(at)}
        endpoint = harness.ProcessEndpoint(TOY_ID, driver_command(path), env=env, timeout=60)
        lines: list[bytes] = []
        index = died = 0
        try:
            while index < len(messages):
                try:
                    outputs, status = endpoint.exchange(messages[index])
                except harness.PartyDied:
                    died += 1
                    endpoint.close()
                    endpoint = harness.ProcessEndpoint(TOY_ID, driver_command(path), env=child_env(), timeout=60)
                    continue
                lines += [e.line() for e in outputs] + [status.line()]
                index += 1
        finally:
            endpoint.close()
        assert died == 1 and lines == expected, f"kill at point {at}"
        check = Store.open(path, "integrity", "toy", 1, TOY_ID)
        try:
            draws = [row[0] for row in check.db.execute("SELECT draw FROM seen")]
        finally:
            check.close()
        assert len(draws) == len(set(draws)) == 3


# --------------------------------------------------------------------------
# 5.3 Naming a divergence


def test_field_difference_names_cbor_path() -> None:
    a = cbor.encode({1: 2, 2: [b"abc", {3: b"xyz"}]})
    b = cbor.encode({1: 2, 2: [b"abc", {3: b"xYz"}]})
    assert harness.field_difference(a, a) is None
    assert harness.field_difference(a, b) == "[2][1][3]: bytes differ from offset 1 (3 vs 3 bytes)"
    assert harness.field_difference(cbor.encode([1, 2]), cbor.encode([1, 2, 3])) == ": 2 vs 3 items"
    assert harness.field_difference(cbor.encode({1: 1}), cbor.encode({2: 1})) == "[1]: present in only one"


def test_field_difference_of_non_cbor_names_byte_offset() -> None:
    assert harness.field_difference(b"\xff\x00\x01", b"\xff\x00\x02") == "the body (not CBOR) differs from byte 2"


def test_first_divergence_names_message_and_field() -> None:
    base = [Envelope("a", "b", "m.one", cbor.encode({1: b"\x00\x01"})), Envelope("b", "a", "m.two", b"")]
    assert harness.first_divergence(base, list(base)) is None
    changed = [base[0], Envelope("b", "a", "m.two", b"\x01")]
    assert harness.first_divergence(base, changed) == "message 2 (m.two from b to a): field the body (not CBOR) " \
                                                       "differs from byte 0"
    flipped = [Envelope("a", "b", "m.one", cbor.encode({1: b"\x00\x00"})), base[1]]
    assert harness.first_divergence(base, flipped) == ("message 1 (m.one from a to b): field [1]: bytes differ "
                                                       "from offset 1 (2 vs 2 bytes)")
    other = [Envelope("a", "c", "m.one", base[0].body)]
    assert str(harness.first_divergence(base, other)).startswith("message 1: expected m.one from a to b, got m.one")
    assert harness.first_divergence(base, base[:1]) == "the transcripts have 2 and 1 messages"


# --------------------------------------------------------------------------
# The tamper wrapper (a faulty vendor)


def test_flipper_flips_one_byte_of_the_nth_message() -> None:
    flipper = tamper.Flipper("toy.echo", nth=2, byte=-1)
    err = io.StringIO()
    lines = [Envelope("a", "env", "toy.echo", b"\x10\x20").line(), b"not a message\n",
             Envelope("a", "env", "toy.result", b"\x10\x20").line(), Envelope("a", "env", "toy.echo", b"\x10\x20").line(),
             Envelope("a", "env", "toy.echo", b"\x10\x20").line()]
    out = [flipper.line(line, err) for line in lines]
    assert out[:3] == lines[:3] and out[4] == lines[4]
    assert wire.parse_line(out[3]).body == b"\x10\x21"
    assert flipper.flipped and "flipped byte -1 of toy.echo number 2" in err.getvalue()
    short = tamper.Flipper("toy.echo", byte=5)
    assert short.line(lines[0], err) == lines[0] and not short.flipped


def test_tampered_process_is_caught_and_named(tmp_path: object) -> None:
    """Our toy wrapped by the tamper tool, against the same toy unwrapped: the divergence names the message
    and field, and an unflipped run of the wrapper equals the plain one."""
    messages = [add(1), add(2), add(3)]
    runs = []
    for name, wrap in (("plain", []), ("tampered", ["--type", "toy.result", "--nth", "2", "--byte", "2"])):
        path = new_toy(str(tmp_path), f"{name}.sqlite")
        command = driver_command(path)
        if wrap:
            command = [sys.executable, "-m", "protocols.system.roles.tamper", *wrap, "--", *command]
        endpoint = harness.ProcessEndpoint(TOY_ID, command, env=child_env(), timeout=60)
        try:
            runs.append([wire.parse_line(line) for line in exchange_all(endpoint, messages)])
        finally:
            assert endpoint.close() == 0
    plain, tampered = runs
    assert harness.first_divergence(plain, tampered) == (
        "message 4 (toy.result from toy-1 to env): field [1]: 2 vs 3")
    assert [e for i, e in enumerate(plain) if i != 3] == [e for i, e in enumerate(tampered) if i != 3]
