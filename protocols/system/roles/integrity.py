"""Integrity feedback (specs/integrity.md) as three role processes: meter, utility, arbiter.

specs/roles.md section 10.  The meter signs a record for every ``env.reading`` and sends it to
the utility, which appends it to the meter's log and answers a receipt (a signed tree head).  On
``env.check`` the meter asks for Y (5.1), checks it (5.2) and, if the roots differ, locates the
first difference by probes (6.2), one message each; its finding goes to ``env``.  On
``env.dispute`` it sends its evidence to the arbiter, which asks the utility for its own and
sends the verdict (8.2) to ``env``.  A meter restored from a backup (``env.restore``; its boot
counter is not in the backup, 9.1) resyncs on ``env.resync`` (9.2), one inclusion message per
lost record.  Stored state: :mod:`protocols.system.roles.integrity_state`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

from protocols import integrity as ig
from protocols import issuance_eccsi as ie
from protocols.errors import DecodeError, ParameterError, ReplayError, StateError, StateFileError, VerificationError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_below
from protocols.primitives.sakke_curve import PARAMETER_SET_1 as PS1
from protocols.schemes import eccsi, merkle, sakke
from protocols.system.roles import issuance as issuance_roles
from protocols.system.roles import harness, wire
from protocols.system.roles import integrity_state as ist
from protocols.system.roles.base import Context, Deployment, RoleSpec
from protocols.system.roles.wire import Envelope

PROTOCOL = "integrity"
UTILITY, ARBITER = "utility", "arbiter"
ORIGIN = 1_767_225_600
"""2026-01-01T00:00:00Z: the first period of the scenario (as in ``usapp demo``)."""
PERIOD = 1800
"""Seconds per billing period (half-hourly records)."""
ENV_SMALL = 1024
"""Largest body of env.reading, env.clock, env.check, env.dispute, env.backup and env.resync."""
MAX_EVIDENCE_BYTES = wire.MAX_BODY_BYTES
"""Largest meter-evidence, utility-evidence, backup and env.restore body (the line limit)."""
REQUEST_BYTES = 64
"""Largest feedback-request, probe-request, inclusion-request and evidence-request body."""
_NONE = (int, type(None))


def _decode(env: Envelope, schema: dict, limit: int) -> dict:
    """The body of ``env`` as a CBOR map of ``schema``, its size checked first (DecodeError)."""
    if len(env.body) > limit:
        raise DecodeError(f"{env.type}: {len(env.body)} bytes exceeds the limit of {limit} bytes")
    return cbor.decode_map(env.body, schema, name=env.type, max_size=limit)


def _uint(value: int, what: str) -> int:
    if not 0 <= value <= ig.MAX_UINT64:
        raise DecodeError(f"{what} must be an unsigned 64-bit integer")
    return value


def _byte_list(value: list, what: str, limit: int) -> list[bytes]:
    if len(value) > ig.LIMITS.max_log_records or any(not isinstance(v, bytes) or len(v) > limit for v in value):
        raise DecodeError(f"{what}: at most {ig.LIMITS.max_log_records} byte strings of at most {limit} bytes")
    return value


# ==========================================================================
# Meter (spec 10.3)


def _meter_provision(ctx: Context, record: dict[str, object]) -> None:
    meter, key, public = record.get("meter"), record.get("device_key"), record.get("utility_public")
    utility, arbiter = record.get("utility"), record.get("arbiter")
    if not (isinstance(meter, bytes) and isinstance(key, bytes) and isinstance(public, bytes)
            and isinstance(utility, str) and isinstance(arbiter, str)) or len(key) != 32 or len(public) != 32:
        raise ParameterError("a meter's record needs meter, device_key (32 bytes), utility_public (32 bytes), "
                             "utility and arbiter")
    config = ist.MeterConfig(meter, key, public, utility, arbiter, *_eccsi_provision(record))
    if config.suite != ig.SUITE_ED25519:
        ig.Meter(config.state())        # specs/integrity.md 3.3: every key passes RFC 6507 5.1.2 under the KPAK
    ctx.put("config", config.encode())
    ctx.put("view", cbor.encode({1: 0, 2: None, 3: None}))
    ctx.put("boot-counter", cbor.encode(0))
    ctx.put("request-seq", cbor.encode(0))
    ctx.put("env-time", cbor.encode(0))


_PENDING = {1: str, 2: _NONE, 3: (bytes, type(None)), 4: int, 5: int, 6: int, 7: list, 8: int}
"""kv ``pending``: {1: what ("check", "locate", "resync-y", "resync-probe", "resync-inclusion"),
2: the size asked (since / probe size / inclusion index), 3: the head checked against or null,
4: good, 5: bad, 6: 1 if the first probe of 6.2 is outstanding else 0, 7: records adopted so far,
8: the request's sequence number}."""

ANSWER = {1: int, 2: bytes}
"""feedback, probe and inclusion bodies: {1: the request's sequence number, 2: the spec's message}."""


def _eccsi_provision(record: dict[str, object]) -> tuple[str, bytes, tuple[tuple[str, bytes, bytes], ...]]:
    """The optional fields of an ECCSI meter's record (specs/integrity.md 3.3): ``suite`` ("eccsi-p256"),
    ``kpak`` and ``keys``, a list of {period, SSK, PVT} (the keys the issuance suite delivered,
    specs/issuance.md 10.4.4).  An Ed25519 meter's record has none of them."""
    suite = record.get("suite", ig.SUITE_ED25519)
    if suite == ig.SUITE_ED25519 and not {"kpak", "keys"} & set(record):
        return ig.SUITE_ED25519, b"", ()
    kpak, keys = record.get("kpak"), record.get("keys")
    if suite != ig.SUITE_ECCSI or not isinstance(kpak, bytes) or not isinstance(keys, list) \
            or not 1 <= len(keys) <= ist.MAX_METER_KEYS:
        raise ParameterError(f"an ECCSI meter's record needs suite {ig.SUITE_ECCSI!r}, kpak and 1 to "
                             f"{ist.MAX_METER_KEYS} keys")
    out = []
    for item in keys:
        if not isinstance(item, dict) or set(item) != {"period", "SSK", "PVT"} or not isinstance(item["period"], str) \
                or not isinstance(item["SSK"], bytes) or not isinstance(item["PVT"], bytes):
            raise ParameterError("an ECCSI meter's keys are maps of period (text), SSK and PVT (bytes)")
        out.append((item["period"], item["SSK"], item["PVT"]))
    return ig.SUITE_ECCSI, kpak, tuple(out)


def _pending(ctx: Context) -> dict | None:
    if ctx.get("pending") is None:
        return None
    return ist.kv_map(ctx, "pending", _PENDING, limit=MAX_EVIDENCE_BYTES)


def _ask(ctx: Context, cfg: ist.MeterConfig, request: str, what: str, asked: int, head_size: int | None = None,
         head: bytes | None = None, good: int = 0, bad: int = 0, first: bool = False,
         adopted: list[bytes] | None = None) -> Envelope:
    """A request to the utility under the next sequence number (kv ``request-seq``, one-time), and the
    pending answer it waits for."""
    seq = ist.kv_uint(ctx, "request-seq") + 1
    ctx.put("request-seq", cbor.encode(seq))
    ctx.put("pending", cbor.encode({1: what, 2: asked, 3: head, 4: good, 5: bad, 6: int(first),
                                    7: adopted or [], 8: seq}))
    body = {1: seq, 2: asked} if head_size is None else {1: seq, 2: asked, 3: head_size}
    return ctx.send(cfg.utility, request, cbor.encode(body))


def _answer(env: Envelope, pending: dict) -> bytes:
    """The spec message inside an answer, which MUST answer the pending request (ReplayError)."""
    m = _decode(env, ANSWER, ig.LIMITS.message_bytes[env.type] + 32)
    if m[1] != pending[8]:
        raise ReplayError(f"{env.type}: answers request {m[1]}, the meter waits for request {pending[8]}")
    return bytes(m[2])


def _clear_pending(ctx: Context) -> None:
    ctx.db.execute("DELETE FROM kv WHERE name = 'pending'")


def _result(ctx: Context, finding: ig.Finding) -> Envelope:
    return ctx.send(wire.HARNESS, "check-result",
                    cbor.encode({1: finding.match, 2: finding.size, 3: finding.index, 4: finding.period}))


def _expect(pending: dict | None, kinds: tuple[str, ...], got: str) -> dict:
    if pending is None or pending[1] not in kinds:
        raise StateError(f"{got}: the meter asked for no such answer")
    return pending


def _asked(data: bytes, schema: dict, kind: str, key: int, asked: int | None) -> None:
    """The answer names what the meter asked for (DecodeError otherwise)."""
    m = cbor.decode_map(data, schema, name=kind, max_size=ig.LIMITS.message_bytes[kind])
    if m[key] != asked:
        raise DecodeError(f"{kind}: answers for {m[key]}, the meter asked for {asked}")


def _bisect(ctx: Context, meter: ig.Meter, cfg: ist.MeterConfig, head: bytes, n: int, good: int,
            bad: int) -> list[Envelope]:
    """Spec 6.2: the next probe to ask, or the located finding."""
    if bad - good > 1:
        middle = (good + bad) // 2
        return [_ask(ctx, cfg, "probe-request", "locate", middle, n, head, good, bad)]
    _clear_pending(ctx)
    index, own = bad - 1, meter.state.log.size
    period = meter.state.records[index].period if index < own else None
    return [_result(ctx, ig.Finding(False, n, index, period))]


def _meter_check(ctx: Context, cfg: ist.MeterConfig, meter: ig.Meter, counter: int, y: bytes) -> list[Envelope]:
    """Spec 5.2, then the start of 6.2 if the roots differ."""
    finding = meter.check(y)
    ist.save_meter(ctx, meter, counter)
    head = meter.state.checked
    if finding.match or finding.index is not None or head is None:
        _clear_pending(ctx)
        return [_result(ctx, finding)]
    n, own = head.size, meter.state.log.size
    if n <= own:
        return [_ask(ctx, cfg, "probe-request", "locate", n, n, head.to_bytes(), 0, n, first=True)]
    return _bisect(ctx, meter, cfg, head.to_bytes(), n, 0, n)


def _meter_probe(ctx: Context, cfg: ist.MeterConfig, meter: ig.Meter, pending: dict,
                 data: bytes) -> list[Envelope]:
    _asked(data, {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list}, "probe", 3, pending[2])
    head = ist.strict(ctx, "pending head", lambda: ig.decode_tree_head(pending[3]))
    agrees = meter.check_probe(data, head)
    n, own = head.size, meter.state.log.size
    if pending[6]:                                           # the first probe, at the head's own size
        if agrees:
            _clear_pending(ctx)
            return [_result(ctx, ig.Finding(True, n) if n == own else
                             ig.Finding(False, n, n, meter.state.records[n].period))]
        return _bisect(ctx, meter, cfg, pending[3], n, 0, n)
    good, bad = (pending[2], pending[5]) if agrees else (pending[4], pending[2])
    return _bisect(ctx, meter, cfg, pending[3], n, good, bad)


def _backup(meter: ig.Meter) -> bytes:
    """Spec 10.2 ``backup``: what a backup of the meter saves (never the device key or the boot counter)."""
    st = meter.state
    return cbor.encode({1: st.meter, 2: [r.to_bytes() for r in st.records], 3: [h.to_bytes() for h in st.receipts],
                        4: st.checked.to_bytes() if st.checked is not None else None, 5: st.boot,
                        6: st.restored_at})


def _restore(ctx: Context, cfg: ist.MeterConfig, meter: ig.Meter, counter: int, body: bytes) -> list[Envelope]:
    """Spec 9.1: the meter's state from a backup; the durable boot counter is bumped (ig.Meter.restore)."""
    m = cbor.decode_map(body, {1: bytes, 2: list, 3: list, 4: (bytes, type(None)), 5: int, 6: _NONE},
                        name="backup", max_size=MAX_EVIDENCE_BYTES)
    if m[1] != cfg.meter:
        raise VerificationError("backup: it is another meter's")
    records = [ig.decode_record(r) for r in _byte_list(m[2], "backup records", ig.MAX_RECORD_BYTES)]
    for index, record in enumerate(records):
        ig.verify_record(record, meter.verification_key)
        if record.counter != index or record.meter != cfg.meter:
            raise VerificationError(f"backup: record {index} is out of place")
    receipts = [ig.decode_tree_head(h) for h in _byte_list(m[3], "backup receipts", ig.MAX_MESSAGE_BYTES)]
    checked = ig.decode_tree_head(m[4]) if m[4] is not None else None
    for head in receipts + ([checked] if checked is not None else []):
        ig.verify_tree_head(head, cfg.utility_public, cfg.meter)
    if m[6] is not None and not 0 <= m[6] <= len(records):
        raise DecodeError("backup: restored_at past its records")
    backup = cfg.state(records, merkle.MerkleLog.from_entries([r.to_bytes() for r in records]), checked, receipts,
                       _uint(m[5], "boot"), m[6])
    boot_counter = ig.BootCounter(counter)
    restored = ig.Meter.restore(backup, boot_counter)     # a restored meter validates its keys again
    ist.save_meter(ctx, restored, boot_counter.value, rewrite=True)
    _clear_pending(ctx)
    return [ctx.send(wire.HARNESS, "restored", cbor.encode({1: restored.state.boot, 2: len(records)}))]


def _resync_checks(meter: ig.Meter, record: ig.Record, index: int, previous: ig.Record | None) -> None:
    """Spec 9.2 step 3: an adopted record is the meter's own, in place, going forward."""
    st = meter.state
    ig.verify_record(record, meter.verification_key)
    if record.meter != st.meter or record.counter != index or record.boot > st.boot:
        raise VerificationError(f"resync: the utility's record {index} is not the meter's record {index}")
    if previous is not None and (record.period <= previous.period or record.boot < previous.boot or any(
            r < q for r, q in zip(record.registers, previous.registers))):
        raise VerificationError(f"resync: the utility's record {index} goes back in period, boot or registers")


def _resync_finish(ctx: Context, cfg: ist.MeterConfig, meter: ig.Meter, counter: int, head: ig.TreeHead,
                   adopted: list[ig.Record]) -> list[Envelope]:
    """Spec 9.2 steps 3 (adopt) and 4 (re-sign); the re-signed records go to the utility."""
    st = meter.state
    base = st.restored_at if st.restored_at is not None else 0
    later = st.records[base:]
    st.checked = head
    st.restored_at = None
    resigned: list[bytes] = []
    superseded = 0
    if head.size > base:
        st.records = st.records[:base] + adopted
        st.log = merkle.MerkleLog.from_entries([r.to_bytes() for r in st.records])
        st.receipts.append(head)
        last = st.records[-1]
        for record in later:
            if record.period <= last.period:
                superseded += 1
                continue
            resigned.append(meter.record(record.period, record.registers, ctx.rng))
    ist.save_meter(ctx, meter, counter, rewrite=True)
    _clear_pending(ctx)
    return [ctx.send(cfg.utility, "record", r) for r in resigned] + [ctx.send(
        wire.HARNESS, "resync-result", cbor.encode({1: head.size, 2: len(adopted), 3: len(resigned), 4: superseded}))]


def _resync_next(ctx: Context, cfg: ist.MeterConfig, meter: ig.Meter, counter: int, head: ig.TreeHead,
                 adopted: list[bytes]) -> list[Envelope]:
    base = meter.state.restored_at if meter.state.restored_at is not None else 0
    index = base + len(adopted)
    if index >= head.size:
        records = [ig.decode_record(r) for r in adopted]
        return _resync_finish(ctx, cfg, meter, counter, head, records)
    return [_ask(ctx, cfg, "inclusion-request", "resync-inclusion", index, head.size, head.to_bytes(),
                 adopted=adopted)]


def _resync_y(ctx: Context, cfg: ist.MeterConfig, meter: ig.Meter, counter: int, y: bytes) -> list[Envelope]:
    """Spec 9.2 step 1 (on a copy: the checked head changes only when the resync completes), then 2."""
    trial = ist.new_meter(cfg, copy.deepcopy(meter.state), ctx.cache)
    trial.check(y)
    head = trial.state.checked
    if head is None:
        raise StateError("resync: the meter checked no tree head")
    base = meter.state.restored_at if meter.state.restored_at is not None else 0
    common = min(base, head.size)
    if common:
        return [_ask(ctx, cfg, "probe-request", "resync-probe", common, head.size, head.to_bytes())]
    return _resync_next(ctx, cfg, meter, counter, head, [])


def _meter_handle(ctx: Context, env: Envelope) -> list[Envelope]:
    cfg, meter, counter = ist.load_meter(ctx)
    pending = _pending(ctx)
    if env.sender == wire.HARNESS:
        return _meter_env(ctx, cfg, meter, counter, env)
    if env.sender != cfg.utility:
        raise VerificationError(f"{env.type} from {env.sender}: a meter takes messages only from its utility")
    if env.type == "receipt":
        meter.receipt(env.body)
        ist.save_meter(ctx, meter, counter)
        return []
    if env.type not in ("feedback", "probe", "inclusion"):
        raise DecodeError(f"a meter takes no {env.type} message")
    pending = _expect(pending, _ANSWERS[env.type], env.type)
    data = _answer(env, pending)
    if env.type == "feedback":
        _asked(data, {1: int, 2: str, 3: bytes, 4: int, 5: list}, "feedback", 4, pending[2])
        if pending[1] == "check":
            return _meter_check(ctx, cfg, meter, counter, data)
        return _resync_y(ctx, cfg, meter, counter, data)
    if env.type == "probe":
        if pending[1] == "locate":
            return _meter_probe(ctx, cfg, meter, pending, data)
        _asked(data, {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list}, "probe", 3, pending[2])
        head = ist.strict(ctx, "pending head", lambda: ig.decode_tree_head(pending[3]))
        if not meter.check_probe(data, head):                                 # spec 9.2 step 2
            raise VerificationError(f"resync: the utility's log does not extend the meter's first {pending[2]} "
                                    "records")
        return _resync_next(ctx, cfg, meter, counter, head, [])
    _asked(data, {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list}, "inclusion", 3, pending[2])
    head = ist.strict(ctx, "pending head", lambda: ig.decode_tree_head(pending[3]))
    adopted = ist.strict(ctx, "pending records", lambda: [ig.decode_record(r) for r in pending[7]])
    record = meter.check_inclusion(data, head)
    base = meter.state.restored_at if meter.state.restored_at is not None else 0
    previous = adopted[-1] if adopted else (meter.state.records[base - 1] if base else None)
    _resync_checks(meter, record, pending[2], previous)
    return _resync_next(ctx, cfg, meter, counter, head, pending[7] + [record.to_bytes()])


_ANSWERS = {"feedback": ("check", "resync-y"), "probe": ("locate", "resync-probe"),
            "inclusion": ("resync-inclusion",)}


def _env_request(ctx: Context, env: Envelope) -> None:
    """env.check, env.dispute, env.backup and env.resync carry {1: time}; a new request MUST be later
    than the last (kv ``env-time``; an identical line is a re-send, answered from the journal)."""
    time = _uint(_decode(env, {1: int}, ENV_SMALL)[1], "time")
    last = ist.kv_uint(ctx, "env-time")
    if time <= last:
        raise ReplayError(f"{env.type}: time {time} is not after the meter's last request ({last})")
    ctx.put("env-time", cbor.encode(time))


def _meter_env(ctx: Context, cfg: ist.MeterConfig, meter: ig.Meter, counter: int, env: Envelope) -> list[Envelope]:
    if env.type == "env.reading":
        m = _decode(env, {1: int, 2: list}, ENV_SMALL)
        period = _uint(m[1], "period")
        if not 1 <= len(m[2]) <= ig.MAX_REGISTERS or any(type(r) is not int for r in m[2]):
            raise DecodeError(f"env.reading: 1 to {ig.MAX_REGISTERS} registers")
        registers = [_uint(r, "a register") for r in m[2]]
        ctx.crash_point("signed")
        data = meter.record(period, registers, ctx.rng)          # ECCSI draws j (spec 3.3); Ed25519 nothing
        ist.save_meter(ctx, meter, counter)
        return [ctx.send(cfg.utility, "record", data)]
    if env.type == "env.restore":
        m = _decode(env, {1: int, 2: bytes}, MAX_EVIDENCE_BYTES)
        _env_request(ctx, Envelope(env.sender, env.to, env.type, cbor.encode({1: m[1]})))
        return _restore(ctx, cfg, meter, counter, m[2])
    if env.type not in ("env.check", "env.dispute", "env.backup", "env.resync"):
        raise DecodeError(f"a meter takes no {env.type} message")
    _env_request(ctx, env)
    if env.type == "env.check":
        since = meter.state.checked.size if meter.state.checked is not None else 0
        return [_ask(ctx, cfg, "feedback-request", "check", since)]
    if env.type == "env.dispute":
        st = meter.state
        evidence = cbor.encode({1: st.meter, 2: [r.to_bytes() for r in st.records],
                                3: [h.to_bytes() for h in st.receipts], 4: ist.kv_uint(ctx, "env-time")})
        return [ctx.send(cfg.arbiter, "meter-evidence", evidence)]
    if env.type == "env.backup":
        return [ctx.send(wire.HARNESS, "backup", _backup(meter))]
    if env.type == "env.resync":
        if meter.state.restored_at is None:                                       # spec 9.2 step 0
            raise StateError("the meter was not restored from a backup: nothing to resync")
        since = meter.state.checked.size if meter.state.checked is not None else 0
        return [_ask(ctx, cfg, "feedback-request", "resync-y", since)]
    raise DecodeError(f"a meter takes no {env.type} message")


# ==========================================================================
# Utility (spec 10.4)


def _meter_rows(record: dict[str, object], what: str) -> list[tuple[str, bytes, bytes]]:
    rows = record.get("meters")
    if not isinstance(rows, list) or not rows:
        raise ParameterError(f"{what}'s record needs a non-empty list of meters")
    out = []
    for row in rows:
        if not isinstance(row, dict) or set(row) != {"party", "meter", "public"}:
            raise ParameterError(f"{what}'s meters are maps of party, meter, public")
        party, meter, public = row["party"], row["meter"], row["public"]
        if not isinstance(party, str) or not isinstance(meter, bytes) or not isinstance(public, bytes) \
                or len(public) not in (32, ist.KPAK_BYTES) or not 1 <= len(meter) <= ig.LIMITS.meter_bytes:
            raise ParameterError(f"{what}: a meter's party, id or public key is malformed")
        ist.record_key(meter, public)   # an ECCSI row: a KPAK on P-256 and a meter id that is a URI (spec 3.3)
        out.append((wire.check_id(party, "party"), meter, public))
    return out


def _utility_provision(ctx: Context, record: dict[str, object]) -> None:
    key, arbiter = record.get("signing_key"), record.get("arbiter")
    cheat_meter, cheat_at = record.get("cheat_meter"), record.get("cheat_at")
    if not isinstance(key, bytes) or len(key) != 32 or not isinstance(arbiter, str):
        raise ParameterError("the utility's record needs signing_key (32 bytes) and arbiter")
    if not (cheat_meter is None and cheat_at is None) and not (
            isinstance(cheat_meter, str) and type(cheat_at) is int and cheat_at >= 0):
        raise ParameterError("cheat_meter and cheat_at go together (a party id and a record index)")
    ctx.put("config", ist.UtilityConfig(key, arbiter, cheat_meter, cheat_at).encode())
    ctx.put("clock", cbor.encode(0))
    ctx.db.executemany("INSERT INTO utility_meters VALUES (?, ?, ?)", _meter_rows(record, "the utility"))


def _cheat(ctx: Context, cfg: ist.UtilityConfig, party: str, utility: ig.Utility, meter: bytes) -> None:
    """The cheating TEST variant (spec 10.6): before its first Y to ``cheat_meter`` it lowers register 0
    of the record at ``cheat_at`` by 500 (raises it if below 500), keeping its signature, in its log."""
    records = utility.state.records[meter]
    if party != cfg.cheat_meter or cfg.cheat_at is None or cfg.cheat_at >= len(records) \
            or ctx.get("cheated") is not None:
        return
    honest = records[cfg.cheat_at]
    first = honest.registers[0] - 500 if honest.registers[0] >= 500 else honest.registers[0] + 500
    forged = dataclasses.replace(honest, registers=(first,) + honest.registers[1:])   # its signature kept
    ctx.db.execute("UPDATE utility_records SET record = ? WHERE meter = ? AND counter = ?",
                   (forged.to_bytes(), meter, cfg.cheat_at))
    ctx.cache.pop(f"utility/{meter.hex()}", None)
    ctx.put("cheated", cbor.encode(cfg.cheat_at))
    records[cfg.cheat_at] = forged
    utility.state.logs[meter] = merkle.MerkleLog.from_entries([r.to_bytes() for r in records])


def _utility_handle(ctx: Context, env: Envelope) -> list[Envelope]:
    if env.sender == wire.HARNESS:
        if env.type != "env.clock":
            raise DecodeError(f"the utility takes no {env.type} message")
        now = _uint(_decode(env, {1: int}, ENV_SMALL)[1], "time")
        if now < ist.kv_uint(ctx, "clock"):
            raise StateError("env.clock: the clock does not go back")
        ctx.put("clock", cbor.encode(now))
        return []
    now = ist.kv_uint(ctx, "clock")
    cfg = ist.load_utility_config(ctx)
    if env.sender == cfg.arbiter and env.type == "evidence-request":
        request = _decode(env, {1: bytes, 2: int}, REQUEST_BYTES + ig.LIMITS.meter_bytes)
        meter_id = request[1]
        party = ist.party_of(ctx, "utility_meters", meter_id)
        entry = ist.registered(ctx, "utility_meters", party) if party is not None else None
        if entry is None:
            raise VerificationError("evidence-request: no such meter")
        _, utility = ist.load_utility(ctx, meter_id, entry[1])
        head = utility.tree_head(meter_id, now).to_bytes()
        return [ctx.send(env.sender, "utility-evidence", cbor.encode(
            {1: meter_id, 2: head, 3: [r.to_bytes() for r in utility.state.records[meter_id]], 4: request[2]}))]
    known = ist.registered(ctx, "utility_meters", env.sender)
    if known is None:
        raise VerificationError(f"{env.type} from {env.sender}: not a registered meter")
    meter, public = known
    cfg, utility = ist.load_utility(ctx, meter, public)
    if env.type == "record":
        record = ig.decode_record(env.body)
        if record.meter != meter:
            raise VerificationError(f"record: it carries another meter's id than {env.sender}'s")
        receipt = utility.accept(env.body, now)                                   # spec 4.3
        ist.append_utility_record(ctx, meter, utility.state.records[meter][-1])
        ist.remember_utility(ctx, meter, utility)
        return [ctx.send(env.sender, "receipt", receipt)]
    if env.type == "feedback-request":
        m = _decode(env, {1: int, 2: int}, REQUEST_BYTES)
        _cheat(ctx, cfg, env.sender, utility, meter)
        answer = utility.feedback(meter, _uint(m[2], "since"), now)
    elif env.type == "probe-request":
        m = _decode(env, {1: int, 2: int, 3: int}, REQUEST_BYTES)
        answer = utility.probe(meter, m[2], m[3])
    elif env.type == "inclusion-request":
        m = _decode(env, {1: int, 2: int, 3: int}, REQUEST_BYTES)
        answer = utility.inclusion(meter, m[2], m[3])
    else:
        raise DecodeError(f"the utility takes no {env.type} message")
    return [ctx.send(env.sender, env.type.removesuffix("-request"), cbor.encode({1: _uint(m[1], "seq"), 2: answer}))]


# ==========================================================================
# Arbiter (spec 10.5)


def _arbiter_provision(ctx: Context, record: dict[str, object]) -> None:
    utility, public = record.get("utility"), record.get("utility_public")
    if not isinstance(utility, str) or not isinstance(public, bytes) or len(public) != 32:
        raise ParameterError("the arbiter's record needs utility and utility_public (32 bytes)")
    ctx.put("config", cbor.encode({1: utility, 2: public}))
    ctx.db.executemany("INSERT INTO arbiter_meters VALUES (?, ?, ?)", _meter_rows(record, "the arbiter"))


def _arbiter_handle(ctx: Context, env: Envelope) -> list[Envelope]:
    config = ist.kv_map(ctx, "config", {1: str, 2: bytes})
    utility, utility_public = config[1], config[2]
    if env.type == "meter-evidence":
        known = ist.registered(ctx, "arbiter_meters", env.sender)
        if known is None:
            raise VerificationError(f"meter-evidence from {env.sender}: not a registered meter")
        m = _decode(env, {1: bytes, 2: list, 3: list, 4: int}, MAX_EVIDENCE_BYTES)
        if m[1] != known[0]:
            raise VerificationError("meter-evidence: for another meter than its sender")
        _byte_list(m[2], "the meter's records", ig.MAX_RECORD_BYTES)
        _byte_list(m[3], "the meter's receipts", ig.MAX_MESSAGE_BYTES)
        ctx.db.execute("DELETE FROM arbiter_disputes WHERE meter = ? AND verdict IS NULL", (m[1],))
        seq = ctx.db.execute("INSERT INTO arbiter_disputes (meter, evidence) VALUES (?, ?)",
                             (m[1], env.body)).lastrowid
        return [ctx.send(utility, "evidence-request", cbor.encode({1: m[1], 2: seq}))]
    if env.type == "utility-evidence":
        if env.sender != utility:
            raise VerificationError(f"utility-evidence from {env.sender}: not the utility")
        m = _decode(env, {1: bytes, 2: bytes, 3: list, 4: int}, MAX_EVIDENCE_BYTES)
        row = ctx.db.execute("SELECT seq, evidence FROM arbiter_disputes WHERE meter = ? AND verdict IS NULL",
                             (m[1],)).fetchone()
        if row is None or row[0] != m[4]:
            raise StateError("utility-evidence: no such dispute about this meter is open")
        party = ist.party_of(ctx, "arbiter_meters", m[1])
        known = ist.registered(ctx, "arbiter_meters", party) if party is not None else None
        if known is None:
            raise StateFileError(f"{ctx.store.path}: a dispute about an unregistered meter")
        mine = ist.strict(ctx, "dispute evidence", lambda: cbor.decode_map(
            row[1], {1: bytes, 2: list, 3: list, 4: int}, name="meter-evidence", max_size=MAX_EVIDENCE_BYTES))
        verdict = ig.arbitrate(ist.record_key(known[0], known[1]), utility_public, m[1], mine[2], mine[3], m[2],
                               _byte_list(m[3], "the utility's records", ig.MAX_RECORD_BYTES))
        body = cbor.encode({1: m[1], 2: verdict.party, 3: verdict.kind, 4: verdict.index, 5: verdict.period})
        ctx.db.execute("UPDATE arbiter_disputes SET verdict = ? WHERE seq = ?", (body, row[0]))
        return [ctx.send(wire.HARNESS, "verdict", body)]
    raise DecodeError(f"the arbiter takes no {env.type} message")


ROLES: dict[str, RoleSpec] = {
    "meter": RoleSpec(PROTOCOL, "meter", ist.SCHEMA_VERSION, ist.METER_TABLES, _meter_provision, _meter_handle),
    "utility": RoleSpec(PROTOCOL, "utility", ist.SCHEMA_VERSION, ist.UTILITY_TABLES, _utility_provision,
                        _utility_handle),
    "arbiter": RoleSpec(PROTOCOL, "arbiter", ist.SCHEMA_VERSION, ist.ARBITER_TABLES, _arbiter_provision,
                        _arbiter_handle),
}


# ==========================================================================
# Deployment and scenario (spec 10.6, 10.7)


def meter_ids(count: int) -> list[str]:
    return [f"meter-{i:03d}" for i in range(count)]


def deploy(seed: str, meters: int = 2, records: int = 48, cheat_at: int = 20, **options: Any) -> Deployment:
    """Spec 10.6: keys and readings from HMAC_DRBG("usapp-role-init/integrity/" || seed).

    Draws, in order: the utility's signing key (32 bytes); each meter's device key (32 bytes) in
    id order; then for each period i < ``records`` and each meter in id order the two register
    increments random_below(800) and random_below(200).  ``cheat_at`` >= 0 makes the utility the
    cheating test variant for the last meter (it needs ``meters`` >= 2: the others check an honest
    log); -1 makes it honest.

    Option ``suite`` is the meters' record suite (specs/integrity.md 3.3): ``ed25519`` (the default) or
    ``eccsi-p256``.  With ECCSI each meter's id is the URI of its identity
    (``urn:usapp:role-meters:meter:SM-<i>``, specs/issuance.md 10.4.2), and after the readings the same
    DRBG gives the KMS (the KSAK, then SAKKE's z) and, meter by meter, the enrollment of
    :func:`protocols.system.roles.issuance.enroll_in_process` (its own root, certificate and draws) for
    every key period held on any day the records span; the meter keeps the delivered SSK and PVT, the
    utility and the arbiter hold only the KPAK and the meter's URI.
    """
    suite = options.pop("suite", ig.SUITE_ED25519)
    if options:
        raise ParameterError(f"unknown integrity option(s): {', '.join(sorted(options))}")
    if suite not in (ig.SUITE_ED25519, ig.SUITE_ECCSI):
        raise ParameterError(f"option suite must be {ig.SUITE_ED25519} or {ig.SUITE_ECCSI}")
    if type(meters) is not int or not 1 <= meters <= 100 or type(records) is not int or not 1 <= records <= 4096:
        raise ParameterError("meters must be 1..100 and records 1..4096")
    if type(cheat_at) is not int or cheat_at < -1 or cheat_at >= records or (cheat_at >= 0 and meters < 2):
        raise ParameterError("cheat_at must be -1 (honest) or a record index, with at least 2 meters")
    drbg = HmacDrbg.from_seed(f"usapp-role-init/{PROTOCOL}/{seed}")
    utility_key = drbg.random_bytes(32)
    ids = meter_ids(meters)
    keys = {m: drbg.random_bytes(32) for m in ids}
    utility_public = ig.Utility(ig.UtilityState(utility_key)).public_key
    rows: list[dict[str, object]] = [
        {"party": m, "meter": m.encode(), "public": ig.Meter(ig.MeterState(m.encode(), keys[m], b"")).public_key}
        for m in ids]
    totals = {m: [0, 0] for m in ids}
    readings: dict[str, list[list[int]]] = {m: [] for m in ids}
    for _ in range(records):
        for m in ids:
            totals[m] = [totals[m][0] + random_below(drbg, 800), totals[m][1] + random_below(drbg, 200)]
            readings[m].append(list(totals[m]))
    eccsi_fields: dict[str, dict[str, object]] = {m: {} for m in ids}
    if suite == ig.SUITE_ECCSI:
        rows, eccsi_fields = _eccsi_meters(drbg, ids, records)
    cheat_meter = ids[-1] if cheat_at >= 0 else None
    parties: dict[str, tuple[str, dict[str, object]]] = {
        UTILITY: ("utility", {"signing_key": utility_key, "arbiter": ARBITER, "meters": rows,
                              "cheat_meter": cheat_meter, "cheat_at": cheat_at if cheat_at >= 0 else None}),
        ARBITER: ("arbiter", {"utility": UTILITY, "utility_public": utility_public, "meters": rows}),
    }
    for m in ids:
        parties[m] = ("meter", {"meter": m.encode(), "device_key": keys[m], "utility_public": utility_public,
                                "utility": UTILITY, "arbiter": ARBITER, **eccsi_fields[m]})
    public: dict[str, object] = {"readings": readings, "cheat_meter": cheat_meter, "cheat_at": cheat_at,
                                 "utility_public": utility_public}
    if suite == ig.SUITE_ECCSI:
        public.update(suite=suite, kpak=rows[0]["public"], meter_ids={row["party"]: row["meter"] for row in rows})
    return Deployment(PROTOCOL, parties, public)


def meter_uri(index: int) -> bytes:
    """The ECCSI meter ``index``'s id: the URI of its identity (specs/issuance.md 10.4.2)."""
    return ie.uri_of(issuance_roles.NAMESPACE, "meter", issuance_roles.serial_of(index + 1)).encode("ascii")


def _eccsi_meters(drbg: HmacDrbg, ids: list[str], records: int
                  ) -> tuple[list[dict[str, object]], dict[str, dict[str, object]]]:
    """Spec 3.3: the KMS and each meter's enrolled keys (see :func:`deploy`); the utility's and the
    arbiter's rows (the meter's URI and the KPAK) and each meter's extra provisioning fields."""
    kms = ie.EccsiSakkeExtractor(eccsi.KeyGen(drbg), sakke.KeyGen(PS1, drbg))
    first = datetime.datetime.fromtimestamp(ORIGIN, datetime.timezone.utc).date()
    last = datetime.datetime.fromtimestamp(ORIGIN + PERIOD * records, datetime.timezone.utc).date()  # the resync's
    epochs = list(range(min(ie.epochs_held_on(first)), max(ie.epochs_held_on(last)) + 1))
    if len(epochs) > ist.MAX_METER_KEYS:
        raise ParameterError(f"the records span more than {ist.MAX_METER_KEYS} key periods")
    rows: list[dict[str, object]] = []
    fields: dict[str, dict[str, object]] = {}
    for index, m in enumerate(ids):
        uri = meter_uri(index)
        issued = issuance_roles.enroll_in_process(kms, drbg, issuance_roles.serial_of(index + 1), epochs, ORIGIN)
        keys: list[object] = []
        for key in issued:
            parts = ie.decode_key(key.key)
            keys.append({"period": ie.period_of_epoch(key.epoch), "SSK": parts.SSK, "PVT": parts.PVT})
        rows.append({"party": m, "meter": uri, "public": kms.KPAK})
        fields[m] = {"meter": uri, "suite": ig.SUITE_ECCSI, "kpak": kms.KPAK, "keys": keys}
    return rows, fields


def env(to: str, type_: str, body: dict | None = None) -> Envelope:
    """A message from the environment (its body a CBOR map)."""
    return Envelope(wire.HARNESS, to, type_, cbor.encode(body or {}))


def request(to: str, type_: str, time: int) -> Envelope:
    """env.check, env.dispute, env.backup or env.resync at ``time`` (spec 10.2)."""
    return env(to, type_, {1: time})


def reading(meter: str, deployment: Deployment, index: int) -> Envelope:
    registers = deployment.public["readings"][meter][index]  # type: ignore[index]
    return env(meter, "env.reading", {1: ORIGIN + PERIOD * index, 2: registers})


def clock(time: int) -> Envelope:
    return env(UTILITY, "env.clock", {1: time})


def day(deployment: Deployment, records: int | None = None, start: int = 0) -> list[list[Envelope]]:
    """The env messages of periods ``start`` .. ``records`` - 1, one batch per period: the utility's
    clock (the period + 60 s), then each meter's reading."""
    meters = sorted(m for m, (role, _) in deployment.parties.items() if role == "meter")
    count = records if records is not None else len(deployment.public["readings"][meters[0]])  # type: ignore[index]
    return [[clock(ORIGIN + PERIOD * i + 60)] + [reading(m, deployment, i) for m in meters]
            for i in range(start, count)]


def run_day(net: harness.Network, deployment: Deployment, records: int | None = None, start: int = 0) -> None:
    """Deliver :func:`day`, one period after the other."""
    for batch in day(deployment, records, start):
        net.deliver(batch)


def check_result(message: Envelope) -> dict:
    return cbor.decode_map(message.body, {1: bool, 2: int, 3: _NONE, 4: _NONE}, name="check-result")


def verdict_of(message: Envelope) -> dict:
    return cbor.decode_map(message.body, {1: bytes, 2: (str, type(None)), 3: str, 4: _NONE, 5: _NONE},
                           name="verdict")


def _only(messages: list[Envelope], type_: str) -> Envelope:
    found = [m for m in messages if m.type == type_]
    if len(found) != 1:
        raise StateError(f"expected one {type_} for the environment, got {[m.type for m in messages]}")
    return found[0]


def scenario(net: harness.Network, deployment: Deployment, checks: harness.Checks) -> dict:
    """Spec 10.7: the claims of ``usapp demo``'s integrity part, then a restore and resync (9)."""
    meters = sorted(m for m, (role, _) in deployment.parties.items() if role == "meter")
    readings: dict = deployment.public["readings"]  # type: ignore[assignment]
    count = len(readings[meters[0]])
    cheat_meter, cheat_at = deployment.public["cheat_meter"], deployment.public["cheat_at"]
    honest = [m for m in meters if m != cheat_meter]
    half = count // 2
    run_day(net, deployment, half)
    backup = _only(net.deliver([request(honest[0], "env.backup", ORIGIN + PERIOD * half)]), "backup")
    run_day(net, deployment, count, half)
    end = max(ORIGIN + 86_400, ORIGIN + PERIOD * count)
    net.deliver([clock(end)])
    results = {m: check_result(_only(net.deliver([request(m, "env.check", end)]), "check-result")) for m in honest}
    checks.check("integrity: the honest utility's fed-back tree head matches the meter's records",
                 all(r[1] and r[2] == count for r in results.values()), f"results {results}")
    figures: dict[str, Any] = {"records": count, "meters": len(meters), "match": all(r[1] for r in results.values())}
    if cheat_meter is not None:
        period = ORIGIN + PERIOD * int(cheat_at)  # type: ignore[call-overload]
        found = check_result(_only(net.deliver([request(str(cheat_meter), "env.check", end)]), "check-result"))
        checks.check(f"integrity: the lowered record is located at index {cheat_at}, its period",
                     not found[1] and found[3] == cheat_at and found[4] == period,
                     f"located at index {found[3]}, period {found[4]}")
        verdict = verdict_of(_only(net.deliver([request(str(cheat_meter), "env.dispute", end + 1)]), "verdict"))
        checks.check("integrity: the arbiter names the utility", verdict[2] == "utility",
                     f"named {verdict[2]} ({verdict[3]})")
        figures.update(located=found[3], verdict=verdict[2], verdict_kind=verdict[3])
    # spec 9: honest[0] restored from its backup of `half` records; its next record is a replay
    target = honest[0]
    restored = net.deliver([env(target, "env.restore", {1: end + 1, 2: backup.body})])
    boot = cbor.decode_map(_only(restored, "restored").body, {1: int, 2: int}, name="restored")[1]
    late = env(target, "env.reading", {1: ORIGIN + PERIOD * count, 2: [r + 1 for r in readings[target][-1]]})
    checks.refused("integrity: the restored meter's next record is refused as a replay (spec 9.2)",
                   lambda: net.deliver([late]), "ReplayError")
    outcome = cbor.decode_map(_only(net.deliver([request(target, "env.resync", end + 3)]), "resync-result").body,
                              {1: int, 2: int, 3: int, 4: int}, name="resync-result")
    after = check_result(_only(net.deliver([request(target, "env.check", end + 4)]), "check-result"))
    checks.check("integrity: the restored meter resyncs (every lost record adopted, the late one re-signed) "
                 "and matches again", boot == 1 and outcome[2] == count - half and outcome[3] == 1 and after[1]
                 and after[2] == count + 1, f"boot {boot}, resync {outcome}, check {after}")
    figures.update(resync_adopted=outcome[2], resync_resigned=outcome[3])
    return figures
