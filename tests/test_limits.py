"""Limits as data (protocols/limits.py, issue 16 item 1) and the findings H1, H7, H8 of issue 16.

Adversary of H1, H7, H8: an unauthenticated sender who controls a message's bytes (H1), a party
who hands the arbiter evidence of any Python type (H7), a utility that answers a new meter's first
feedback request with any ``since`` and proof (H8).  Each test plays it through the real classes.
"""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import escrow as esc
from protocols import groupkeys as gk
from protocols import integrity as ig
from protocols import issuance as iss
from protocols import limits
from protocols.aggregation import hood as agg_hood
from protocols.aggregation import messages as agg_msg
from protocols.errors import DecodeError, VerificationError
from protocols.primitives import cbor

import test_groupkeys as tg  # the tests directory is on sys.path under pytest
import test_integrity as ti

U64, U32 = limits.UINT64_MAX, limits.UINT32_MAX


# -- one place --------------------------------------------------------------------------------


def test_the_modules_read_their_limits_from_protocols_limits():
    assert gk.LIMITS is limits.GROUPKEYS and gk.MAX_MESSAGE_BYTES == limits.GROUPKEYS.max_message_bytes
    assert gk.MAX_DATA_BYTES == limits.GROUPKEYS.data_bytes and gk.MAX_MEMBER_BYTES == limits.GROUPKEYS.member_bytes
    assert esc.LIMITS is limits.ESCROW and esc.MAX_PAYLOAD_BYTES == limits.ESCROW.payload_bytes
    assert ig.LIMITS is limits.INTEGRITY and ig.MAX_RECORD_BYTES == limits.INTEGRITY.record_bytes
    assert ig.MAX_PROOF == limits.INTEGRITY.max_proof
    assert iss.LIMITS is limits.ISSUANCE and iss.MAX_KEY_BYTES == limits.ISSUANCE.key_bytes
    assert agg_msg.LIMITS is limits.AGGREGATION and agg_msg.MAX_MESSAGE_BYTES == limits.AGGREGATION.max_message_bytes
    assert agg_hood.MAX_METERS == limits.AGGREGATION.max_meters
    assert set(limits.GROUPKEYS.message_bytes) == set(gk.KINDS)
    assert set(limits.ESCROW.message_bytes) == set(esc.KINDS)
    for table in (limits.GROUPKEYS, limits.ESCROW, limits.INTEGRITY, limits.ISSUANCE):
        assert all(0 < size <= table.message_bytes[kind] for kind, size in table.message_bytes.items())
        with pytest.raises(TypeError):  # read-only: nothing can raise a limit at run time
            table.message_bytes["x"] = 1  # type: ignore[index]


# -- every limit admits the largest message its spec allows --------------------------------------

SIG, KEY, HASH = bytes(64), bytes(32), bytes(32)
GROUP, MEMBER = bytes(64), bytes(128)


def _largest() -> dict[tuple[str, str], bytes]:
    """For each protocol and kind, a message with every field at its largest (spec CDDL)."""
    gk_msgs = {
        "rekey": None,  # bounded by the group (spec 5.5); its 64 MiB limit is the spec's
        "resync": {1: 1, 2: "resync", 3: GROUP, 4: U32, 5: U64, 6: MEMBER, 7: KEY, 8: bytes(1 << 16), 9: SIG},
        "data": {1: 1, 2: "data", 3: GROUP, 4: U32, 5: U64, 6: 2**63 - 1, 7: bytes((1 << 16) + 16), 8: SIG},
        "command": {1: 1, 2: "command", 3: GROUP, 4: U64, 5: "rekey-group", 6: {1: U32, 2: KEY, 3: HASH},
                    7: U32, 8: U64, 9: SIG},
        "checkpoint": {1: 1, 2: "checkpoint", 3: GROUP, 4: U64, 5: U32, 6: KEY, 7: U64, 8: SIG},
    }
    esc_msgs = {
        "hfid-response": {1: 1, 2: "hfid-response", 3: "escrowed", 4: U32, 5: KEY, 6: bytes(4096)},
        "adp": {1: 1, 2: "adp", 3: "escrowed", 4: U32, 5: bytes(4096), 6: "technical", 7: "grid-operator",
                8: U64, 9: U64, 10: bytes(1 << 14), 11: SIG},
        "reid-request": {1: 1, 2: "reid-request", 3: HASH, 4: "é" * 128, 5: bytes(16)},
        "epoch-key": {1: 1, 2: "epoch-key", 3: U32, 4: bytes(2048), 5: SIG},
    }
    record = {1: 2, 2: "record", 3: MEMBER, 4: U64, 5: U64, 6: [U64] * 16, 7: U32, 8: SIG}
    head = {1: 2, 2: "tree-head", 3: MEMBER, 4: U64, 5: HASH, 6: U64, 7: SIG}
    proof = [HASH] * 64
    ig_msgs = {
        "record": record, "tree-head": head,
        "feedback": {1: 2, 2: "feedback", 3: cbor.encode(head), 4: U64, 5: proof},
        "probe": {1: 2, 2: "probe", 3: U64, 4: U64, 5: HASH, 6: proof},
        "inclusion": {1: 2, 2: "inclusion", 3: U64, 4: U64, 5: cbor.encode(record), 6: proof},
    }
    suite, identity = "s" * 64, bytes(128)
    iss_msgs = {
        "challenge": {1: 1, 2: KEY, 3: U64, 4: U32, 5: suite},
        "key-delivery": {1: 1, 2: KEY, 3: identity, 4: suite, 5: KEY, 6: bytes(4096 + 16)},
        "log entry": {1: U64, 2: HASH, 3: identity, 4: U32, 5: suite, 6: HASH, 7: U64},
    }
    out = {}
    for name, table in (("groupkeys", gk_msgs), ("escrow", esc_msgs), ("integrity", ig_msgs),
                        ("issuance", iss_msgs)):
        for kind, message in table.items():
            if message is not None:
                out[(name, kind)] = cbor.encode(message)
    return out


LIMIT_TABLES = {"groupkeys": limits.GROUPKEYS, "escrow": limits.ESCROW, "integrity": limits.INTEGRITY,
                "issuance": limits.ISSUANCE}


@pytest.mark.parametrize("key", sorted(_largest()))
def test_each_kind_limit_admits_its_largest_message(key):
    name, kind = key
    assert len(_largest()[key]) <= LIMIT_TABLES[name].message_bytes[kind]


def test_the_largest_group_data_is_sent_and_received():
    fleet = tg.Fleet(3, seed="tests/limits/data")
    message = fleet.controller.send(bytes(gk.MAX_DATA_BYTES))
    assert len(message) <= gk.LIMITS.message_bytes["data"]
    fleet.broadcast(message)


# -- cbor.peek_kind ------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(kind=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=23),
       version=st.integers(0, 23), extra=st.dictionaries(st.integers(3, 20), st.binary(max_size=8), max_size=5))
def test_peek_kind_reads_the_kind_of_any_versioned_message(kind, version, extra):
    assert cbor.peek_kind(cbor.encode({1: version, 2: kind, **extra})) == kind


@pytest.mark.parametrize("data", [
    b"", b"\xa0", b"\xa1\x01\x01", cbor.encode({1: 1}), cbor.encode({2: "x", 3: 1}), cbor.encode({1: 24, 2: "x"}),
    cbor.encode({1: 1, 2: b"x"}), cbor.encode({1: 1, 2: "é"}), cbor.encode({1: 1, 2: "x" * 24}),
    cbor.encode({1: 1, 2: "rekey"})[:-1], cbor.encode({0: 0, 1: 1, 2: "x"}),
])
def test_peek_kind_is_none_for_anything_else(data):
    assert cbor.peek_kind(data) is None


# -- H1: the size is checked before decoding ------------------------------------------------------


@pytest.fixture
def guarded_decoder(monkeypatch):
    """cbor.decode that fails the test when handed more than the largest limit of a small kind."""
    real = cbor.decode
    seen: list[int] = []

    def guarded(data, *args, **kwargs):
        seen.append(len(data))
        return real(data, *args, **kwargs)
    monkeypatch.setattr(cbor, "decode", guarded)
    return seen


def _over(prefix: bytes, limit: int) -> bytes:
    return prefix + bytes(limit + 1 - len(prefix))


@pytest.mark.parametrize("kind", [k for k in gk.KINDS])
def test_h1_groupkeys_each_kind_one_byte_over_its_limit(kind, guarded_decoder):
    limit = gk.LIMITS.message_bytes[kind]
    data = _over(cbor.encode({1: 1, 2: kind}).replace(b"\xa2", b"\xa9", 1), limit)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        gk.decode_message(data)
    assert guarded_decoder == []


@pytest.mark.parametrize("kind", [k for k in esc.KINDS])
def test_h1_escrow_each_kind_one_byte_over_its_limit(kind, guarded_decoder):
    data = _over(cbor.encode({1: 1, 2: kind}).replace(b"\xa2", b"\xa9", 1), esc.LIMITS.message_bytes[kind])
    with pytest.raises(DecodeError, match="exceeds the limit"):
        esc.decode_message(data)
    assert guarded_decoder == []


@pytest.mark.parametrize("decoder, kind", [
    (ig.decode_record, "record"), (ig.decode_tree_head, "tree-head"),
    (iss.decode_challenge, "challenge"), (iss.decode_enrollment, "enrollment"),
    (iss.decode_delivery, "key-delivery"), (iss.LogEntry.from_bytes, "log entry"),
])
def test_h1_integrity_and_issuance_one_byte_over_the_limit(decoder, kind, guarded_decoder):
    table = limits.INTEGRITY if decoder in (ig.decode_record, ig.decode_tree_head) else limits.ISSUANCE
    with pytest.raises(DecodeError):
        decoder(_over(b"\xa7", table.message_bytes[kind]))
    assert guarded_decoder == []


@pytest.mark.parametrize("kind", ["rekey", "command"])
def test_h1_decode_message_alone_never_decodes_an_unauthenticated_message_over_1_mib(kind, guarded_decoder):
    """The public decoder too: 2 MiB of 3-element arrays (what cost 252 MiB and 30 s per 8 MiB before)."""
    size = 2 << 20
    data = (cbor.encode({1: 1, 2: kind}).replace(b"\xa2", b"\xa5", 1) + b"\x08\x9a"
            + (size // 4).to_bytes(4, "big") + b"\x83\x00\x00\x00" * (size // 4))[:size]
    with pytest.raises(DecodeError, match="only after its signature verifies"):
        gk.decode_message(data)
    assert guarded_decoder == []


def test_h1_a_genuine_command_over_1_mib_is_authenticated_then_accepted():
    """Spec 4.1: a large message signed by the operators still goes through: 9,000 targets of 120
    bytes make a 1.1 MB disconnect, checked over its raw bytes, then decoded and applied."""
    fleet = tg.Fleet(2, seed="tests/limits/big-command")
    member = sorted(fleet.meters)[0]
    targets = sorted(b"t%05d" % i + bytes(114) for i in range(9000))
    command = fleet.command("disconnect", {1: targets})
    assert len(command) > gk.LIMITS.authenticate_before_decode_bytes
    accepted = fleet.meters[member].receive(command, tg.NOW)
    assert accepted.action == "disconnect" and not accepted.applies_to_me


def test_h1_a_large_command_with_one_changed_byte_fails_its_signature_before_decoding(monkeypatch):
    fleet = tg.Fleet(2, seed="tests/limits/big-command")
    member = sorted(fleet.meters)[0]
    targets = sorted(b"t%05d" % i + bytes(114) for i in range(9000))
    command = bytearray(fleet.command("disconnect", {1: targets}))
    command[len(command) // 2] ^= 1
    calls = []
    monkeypatch.setattr(cbor, "decode", lambda *a, **k: calls.append(1))
    with pytest.raises(VerificationError):
        fleet.meters[member].receive(bytes(command), tg.NOW)
    assert calls == []


# -- H7: arbitrate never calls bytes() on what it is handed ---------------------------------------


class _Spy:
    """An object bytes() would turn into 3 GiB of zeros: it records that anyone asked."""

    asked = 0

    def __index__(self) -> int:
        _Spy.asked += 1
        return 3 << 30

    def __bytes__(self) -> bytes:
        _Spy.asked += 1
        return b""


@pytest.fixture(scope="module")
def dispute():
    utility, meter = ti.setup("tests/limits/arbitrate")
    records = [meter.record(ti.T0 + i * ti.PERIOD, [i, i]) for i in range(2)]
    heads = [utility.accept(r, ti.T0 + i * ti.PERIOD + 60) for i, r in enumerate(records)]
    return (meter.public_key, utility.public_key, ti.METER), records, heads


@pytest.mark.parametrize("bad", [_Spy(), 3 << 30, -1, 1 << 4096, "text", None, 1.5, [None], [b"x" * 4096]])
@pytest.mark.parametrize("position", ["utility records", "meter records", "receipts"])
def test_h7_arbitrate_refuses_evidence_of_the_wrong_type_before_using_it(dispute, bad, position):
    keys, records, heads = dispute
    listed = bad if isinstance(bad, list) else [bad]
    args = {"utility records": (records, heads, heads[-1], listed),
            "meter records": (listed, heads, heads[-1], records),
            "receipts": (records, listed, heads[-1], records)}[position]
    _Spy.asked = 0
    with pytest.raises(DecodeError):
        ig.arbitrate(*keys, *args)
    assert _Spy.asked == 0


def test_h7_arbitrate_bounds_the_number_of_records(dispute, monkeypatch):
    keys, records, heads = dispute
    monkeypatch.setattr(ig, "LIMITS", limits.IntegrityLimits(max_log_records=1))
    with pytest.raises(DecodeError, match="more than 1 entries"):
        ig.arbitrate(*keys, records, heads, heads[-1], records)


# -- H8: the first feedback check ----------------------------------------------------------------


def test_h8_a_new_meters_first_feedback_must_start_at_size_0_with_an_empty_proof():
    utility, meter = ti.setup("tests/limits/first-feedback")
    for i in range(4):
        meter.receipt(utility.accept(meter.record(ti.T0 + i * ti.PERIOD, [i]), ti.T0 + i * ti.PERIOD + 60))
    now = ti.T0 + 10 * ti.PERIOD
    good = cbor.decode(utility.feedback(ti.METER, 0, now))
    lying_since = cbor.encode({**good, 4: 2})
    lying_proof = cbor.encode({**good, 5: utility.state.logs[ti.METER].consistency_proof(2, 4)})
    for y in (lying_since, lying_proof):
        fresh = copy.deepcopy(meter)
        with pytest.raises(DecodeError, match="checked no head"):
            fresh.check(y)
        assert fresh.state.checked is None
    assert copy.deepcopy(meter).check(cbor.encode(good)).match


# -- the signature layout authenticate_raw relies on -----------------------------------------------


def test_every_kinds_signature_is_the_last_map_entry():
    """authenticate_raw (spec 4.1) rebuilds tbs from the raw bytes: the signature key is the largest."""
    for kind in gk.KINDS:
        assert gk._SIG_KEY[kind] == max(gk._SCHEMAS[kind]) < 24
    key = Ed25519PrivateKey.generate()
    body = gk.checkpoint_body(tg.GROUP, 1, 0, tg.raw_public(key), tg.NOW)
    signed = gk.encode_command(body, key.sign(gk.command_tbs(body)))
    assert bytes((signed[0] - 1,)) + signed[1:-67] == cbor.encode(body)
