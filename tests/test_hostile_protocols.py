"""Hostile input to every public message handler of every protocol role (issue 16).

Adversary: anyone who can put bytes (or, through a careless caller, any Python value) in front of
a role's handler -- a network attacker before any authentication.  It controls the whole input
and sees only the error it gets back.  Claim: whatever it sends, the handler either accepts or
raises a subclass of ``protocols.errors.UsappError`` (never ValueError, TypeError, KeyError,
IndexError, OverflowError, RecursionError, MemoryError), and an input over the kind's size
limit (protocols/limits.py) is refused before the CBOR decoder runs at all (H1).

The roles are built once through the real classes (``targets``); ``tests/test_limits.py`` checks
the limits themselves, and the throwaway measurement of issue 16's memory table also calls
:func:`targets` to reach every handler.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import aggregation as agg
from protocols import escrow as esc
from protocols import groupkeys as gk
from protocols import integrity as ig
from protocols import issuance as iss
from protocols.errors import DecodeError, UsappError, VerificationError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.system import escrow_fleet
from protocols.system import neighbourhood as nb

import test_groupkeys as tg  # noqa: E402  (the tests directory is on sys.path under pytest)
import test_integrity as ti
import test_issuance as tiss


@dataclass
class Target:
    """One handler: ``call(x)`` feeds it ``x``; ``sample`` is a message it accepts (or None);
    ``kind`` is the message kind whose prefix an oversized input carries."""

    call: Callable[[object], object]
    sample: bytes | None
    kind: str | None
    oversized: type[UsappError] = DecodeError
    """The error an oversized input gets (a log wraps its entries' DecodeError in VerificationError)."""


def _prefix(kind: str, version: int = 1) -> bytes:
    """``{1: version, 2: kind, ...`` with a map head of 5 entries: what ``cbor.peek_kind`` reads."""
    return bytes((0xA5, 0x01, version, 0x02, 0x60 + len(kind))) + kind.encode()


def _aggregation(paillier_key) -> dict[str, Target]:
    meters = [f"m{i}" for i in range(4)]
    tree, root = agg.balanced_tree(meters, 2)
    p = agg.provision(paillier_key, meters, tree, root, HmacDrbg.from_seed("tests/hostile/aggregation"))
    hood = p.hood
    readings = {m: [1] * hood.slots for m in meters}
    t = nb.collect(p, 1, readings, HmacDrbg.from_seed("tests/hostile/round"))
    utility = agg.Utility(hood, p.utility)
    state = copy.deepcopy(t.state)
    rs = utility.receive(t.state, t.aggregate_reports[root])
    requests = utility.commit_requests(rs)
    signatures = [agg.Meter(hood, p.meters[m]).sign_commit(r) for m, r in requests.items()]
    committee = next(iter(requests))
    utility.collect_signatures(rs, signatures)
    unmask = utility.unmask_requests(rs)
    m0 = meters[0]
    leaf = hood.children(root)[0]

    def meter(m: str = m0) -> agg.Meter:
        return agg.Meter(hood, copy.deepcopy(p.meters[m]))

    def fresh_rs():  # every call gets its own copy: a refused input must not matter, an accepted one may
        return copy.deepcopy(rs)

    # the round-1 state of meter m0 before it answers: a copy of the provisioned state after the bundle
    return {
        "aggregation meter.accept_bundle": Target(lambda x: meter().accept_bundle(x), t.bundles[m0], None),
        "aggregation meter.sign_commit": Target(lambda x: meter(committee).sign_commit(x), requests[committee], None),
        "aggregation meter.unmask": Target(lambda x: meter().unmask(x), unmask[m0], None),
        "aggregation aggregator.aggregate": Target(
            lambda x: agg.Aggregator(hood, copy.deepcopy(p.aggregators[leaf])).aggregate(
                2, x if isinstance(x, list) else [x]), t.meter_reports[hood.children(leaf)[0]], None),
        "aggregation utility.bundles": Target(
            lambda x: agg.Utility(hood, copy.deepcopy(p.utility)).bundles(2, x if isinstance(x, list) else [x]),
            t.adverts[m0], None),
        "aggregation utility.receive": Target(lambda x: utility.receive(copy.deepcopy(state), x),
                                              t.aggregate_reports[root], None),
        "aggregation utility.collect_signatures": Target(
            lambda x: agg.Utility(hood, p.utility).collect_signatures(copy.deepcopy(rs), [x]), signatures[0], None),
        "aggregation utility.finish": Target(lambda x: agg.Utility(hood, p.utility).finish(fresh_rs(), [x]),
                                             None, None),
        "aggregation utility.audit": Target(
            lambda x: agg.Utility(hood, p.utility).audit(
                fresh_rs(), x if isinstance(x, dict) else {node: [x] for node in hood.tree}),
            None, None),
    }


def _groupkeys() -> dict[str, Target]:
    fleet = tg.Fleet(4, seed="tests/hostile/groupkeys")
    member = sorted(fleet.controller.state.tree.members)[0]
    rekey = fleet.rekey(leaves=[sorted(fleet.controller.state.tree.members)[-1]])
    checkpoint = fleet.checkpoint()
    command = fleet.command("disconnect", {1: [member]})

    def meter() -> gk.Meter:
        return gk.Meter(copy.deepcopy(fleet.meters[member].state))

    controller = gk.Controller(gk.ControllerState(tg.GROUP, 1, 3, bytes(32)))
    operators, _ = gk.operator_ceremony(3, 2, tg.GROUP, HmacDrbg.from_seed("tests/hostile/operators"))
    commitments = [op.commit(HmacDrbg.from_seed(f"tests/hostile/op{op.identifier}")) for op in operators[:2]]
    return {
        "groupkeys operator.approve": Target(lambda x: copy.deepcopy(operators[0]).approve(x), None, None),
        "groupkeys operator.sign": Target(lambda x: copy.deepcopy(operators[0]).sign(x, commitments), None, None),
        "groupkeys meter.receive": Target(lambda x: meter().receive(x, tg.NOW), rekey, "rekey"),
        "groupkeys meter.receive(command)": Target(lambda x: meter().receive(x, tg.NOW), command, "command"),
        "groupkeys meter.provision": Target(
            lambda x: gk.Meter.provision(tg.GROUP, member, bytes(32), fleet.command_public, x, tg.NOW),
            checkpoint, "checkpoint"),
        "groupkeys controller.recover": Target(
            lambda x: copy.deepcopy(controller).recover(x, fleet.command_public, fleet.directory()), None, "command"),
    }


_ESCROW: dict[str, escrow_fleet.Fleet] = {}


def _escrow() -> dict[str, Target]:
    fleet = escrow_fleet.provision("blind", 2, range(0, 2), seed="tests/hostile/escrow")
    rng = HmacDrbg.from_seed("tests/hostile/escrow/run")
    serial = sorted(fleet.meters)[0]
    meter = fleet.meters[serial]
    now = escrow_fleet.ORIGIN + 3600
    request = meter.request_hfid(0, rng)
    response = fleet.escrow.handle(copy.deepcopy(request), now, rng)
    escrow_copy = copy.deepcopy(fleet.escrow)
    meter.receive_hfid(response)
    data = meter.send("technical", "grid-operator", b"V=231.2", now)
    receiver = fleet.receivers["grid-operator"]
    epoch_key = fleet.escrow.state.epoch_keys[0]
    reid = esc.reidentification_request(bytes(32), "court order", bytes(16))
    authority = fleet.authorities[0]
    return {
        "escrow escrow.handle": Target(lambda x: copy.deepcopy(escrow_copy).handle(x, now), request, "hfid-request"),
        "escrow meter.receive_hfid": Target(lambda x: copy.deepcopy(meter).receive_hfid(x), None, "hfid-response"),
        "escrow meter.install_epoch_key": Target(lambda x: copy.deepcopy(meter).install_epoch_key(x), epoch_key,
                                                 "epoch-key"),
        "escrow receiver.receive": Target(lambda x: copy.deepcopy(receiver).receive(x, now), data, "adp"),
        "escrow receiver.install_epoch_key": Target(lambda x: copy.deepcopy(receiver).install_epoch_key(x),
                                                    epoch_key, "epoch-key"),
        "escrow authority.approve": Target(lambda x: copy.deepcopy(authority).approve(x), reid, "reid-request"),
        "escrow authority.share": Target(lambda x: copy.deepcopy(authority).share(x, fleet.escrow), reid,
                                         "reid-request"),
        "escrow verify_epoch_key": Target(lambda x: esc.verify_epoch_key(x, bytes(32)), None, "epoch-key"),
        "escrow reidentify(request)": Target(
            lambda x: esc.reidentify(fleet.authority_info, x, b"", {}), reid, "reid-request"),
        "escrow reidentify(shares)": Target(
            lambda x: esc.reidentify(fleet.authority_info, reid, b"\x00" * 64, x if isinstance(x, dict) else {1: x}),
            None, None),
    }


def _integrity() -> dict[str, Target]:
    utility, meter = ti.setup("tests/hostile/integrity")
    records = [meter.record(ti.T0 + i * ti.PERIOD, [i, i]) for i in range(3)]
    heads = [utility.accept(r, ti.T0 + i * ti.PERIOD + 60) for i, r in enumerate(records)]
    for h in heads:
        meter.receipt(h)
    head = ig.decode_tree_head(heads[-1])
    feedback = utility.feedback(ti.METER, 0, ti.T0 + 10 * ti.PERIOD)
    probe = utility.probe(ti.METER, 1, 3)
    inclusion = utility.inclusion(ti.METER, 1, 3)
    keys = (meter.public_key, utility.public_key, ti.METER)

    def listed(x: object) -> object:
        return x if isinstance(x, (list, tuple)) else [x]

    return {
        "integrity utility.accept": Target(
            lambda x: copy.deepcopy(utility).accept(x, ti.T0 + 10 * ti.PERIOD), None, None),
        "integrity meter.receipt": Target(lambda x: copy.deepcopy(meter).receipt(x), heads[-1], None),
        "integrity meter.check": Target(lambda x: copy.deepcopy(meter).check(x), feedback, "feedback"),
        "integrity meter.check_probe": Target(lambda x: copy.deepcopy(meter).check_probe(x, head), probe, "probe"),
        "integrity meter.check_inclusion": Target(lambda x: copy.deepcopy(meter).check_inclusion(x, head),
                                                  inclusion, "inclusion"),
        "integrity arbitrate(utility head)": Target(lambda x: ig.arbitrate(*keys, records, heads, x, records),
                                                    heads[-1], None),
        "integrity arbitrate(utility records)": Target(
            lambda x: ig.arbitrate(*keys, records, heads, heads[-1], listed(x)), None, None),
        "integrity arbitrate(meter records)": Target(
            lambda x: ig.arbitrate(*keys, listed(x), heads, heads[-1], records), None, None),
        "integrity arbitrate(receipts)": Target(
            lambda x: ig.arbitrate(*keys, records, listed(x), heads[-1], records), None, None),
    }


def _issuance() -> dict[str, Target]:
    pkg = tiss.new_pkg()
    meter = tiss.new_meter()
    rng = HmacDrbg.from_seed("tests/hostile/issuance")
    challenge = pkg.challenge(tiss.NOW, rng)
    request = meter.enroll(challenge, rng)
    before = copy.deepcopy(pkg)
    delivery = pkg.enroll(request, tiss.NOW, rng)
    log = list(pkg.state.log.entries)
    return {
        "issuance pkg.enroll": Target(lambda x: copy.deepcopy(before).enroll(x, tiss.NOW), request, None),
        "issuance meter.enroll": Target(lambda x: copy.deepcopy(meter).enroll(x), challenge, None),
        "issuance meter.receive": Target(lambda x: copy.deepcopy(meter).receive(x), delivery, None),
        "issuance verify_log": Target(lambda x: iss.verify_log(x if isinstance(x, list) else [x]),
                                      log[0], None, VerificationError),
        "issuance LogEntry.from_bytes": Target(lambda x: iss.LogEntry.from_bytes(x), None, None),
    }


def targets(paillier_key) -> dict[str, Target]:
    """Every handler of every role, built through the real classes."""
    return {**_aggregation(paillier_key), **_groupkeys(), **_escrow(), **_integrity(), **_issuance()}


@pytest.fixture(scope="module")
def handlers(paillier_key) -> dict[str, Target]:
    return targets(paillier_key)


NAMES = [
    "aggregation meter.accept_bundle", "aggregation meter.sign_commit", "aggregation meter.unmask",
    "aggregation aggregator.aggregate", "aggregation utility.bundles", "aggregation utility.receive",
    "aggregation utility.collect_signatures", "aggregation utility.finish", "aggregation utility.audit",
    "groupkeys meter.receive", "groupkeys meter.receive(command)", "groupkeys meter.provision",
    "groupkeys controller.recover", "groupkeys operator.approve", "groupkeys operator.sign",
    "escrow escrow.handle", "escrow meter.receive_hfid", "escrow meter.install_epoch_key", "escrow receiver.receive",
    "escrow receiver.install_epoch_key", "escrow authority.approve", "escrow authority.share",
    "escrow verify_epoch_key", "escrow reidentify(request)", "escrow reidentify(shares)",
    "integrity utility.accept", "integrity meter.receipt", "integrity meter.check", "integrity meter.check_probe",
    "integrity meter.check_inclusion", "integrity arbitrate(utility head)", "integrity arbitrate(utility records)",
    "integrity arbitrate(meter records)", "integrity arbitrate(receipts)",
    "issuance pkg.enroll", "issuance meter.enroll", "issuance meter.receive", "issuance verify_log",
    "issuance LogEntry.from_bytes",
]

HUGE = 3 << 30
"""3 GiB as an int: ``bytes(HUGE)`` would allocate 3 GiB (H7)."""

WRONG_TYPES: list[object] = [
    None, True, 0, -1, HUGE, 1 << 4096, 1.5, "text", "\ud800", [b"x"], [[[]]], {1: 2}, {b"k": b"v"},
    object(), memoryview(b"\xa0"), (b"\xa0",), {"x"},
]

MALFORMED: list[bytes] = [
    b"", b"\x00", b"\xff", b"\xa0", b"\x80", b"\xf7", b"\xf9\x00\x00",
    b"\x81" * 5000 + b"\x00",                                   # 5000 nested arrays
    b"\xa1\x01" * 5000 + b"\x00",                               # 5000 nested maps
    b"\x5b" + (2**64 - 1).to_bytes(8, "big"),                   # a byte string declaring 2^64 - 1 bytes
    b"\x9b" + (2**64 - 1).to_bytes(8, "big"),                   # an array declaring 2^64 - 1 items
    b"\xc2\x59\x04\x00" + b"\x01" * 1024,                       # an 8192-bit integer
    b"\xa2\x01\x01\x02\x64" + b"data",                          # a truncated prefix of a message
    b"\xa5\x01\x01\x02\x65rekey\x03\x1b" + b"\xff" * 8 + b"\x04\xc2\x49" + b"\x01" * 9,
]


def _refused_or_accepted(call: Callable[[object], object], x: object) -> None:
    """The rule: accept, or raise a UsappError subclass; any other exception fails the test."""
    try:
        call(x)
    except UsappError:
        pass


@pytest.mark.parametrize("name", NAMES)
def test_wrong_types_and_malformed_encodings_raise_typed_errors(handlers, name):
    call = handlers[name].call
    for x in WRONG_TYPES + MALFORMED:
        _refused_or_accepted(call, x)


@pytest.mark.parametrize("name", NAMES)
def test_truncated_and_bit_flipped_samples_raise_typed_errors(handlers, name):
    target = handlers[name]
    if target.sample is None:
        pytest.skip("no accepted sample for this handler")
    sample = target.sample
    step = max(1, len(sample) // 24)
    for cut in range(0, len(sample), step):
        _refused_or_accepted(target.call, sample[:cut])
        flipped = bytearray(sample)
        flipped[cut] ^= 0x80
        _refused_or_accepted(target.call, bytes(flipped))
    _refused_or_accepted(target.call, sample + b"\x00")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_changes_of_samples_raise_typed_errors(handlers, data):
    names = [n for n in NAMES if handlers[n].sample is not None]
    target = handlers[data.draw(st.sampled_from(names))]
    sample = bytearray(target.sample)
    for _ in range(data.draw(st.integers(1, 4))):
        sample[data.draw(st.integers(0, len(sample) - 1))] = data.draw(st.integers(0, 255))
    _refused_or_accepted(target.call, bytes(sample))


class _DecoderCalled(AssertionError):
    pass


@pytest.fixture
def no_decoder(monkeypatch):
    """cbor.decode wrapped so that the test fails if it is ever handed more than 1 MiB (every
    oversized input below is larger; the handlers' own small messages still decode)."""
    real = cbor.decode

    def guarded(data, *args, **kwargs):
        if isinstance(data, (bytes, bytearray, memoryview)) and len(data) > 1 << 20:
            raise _DecoderCalled(f"the CBOR decoder ran on an input of {len(data)} bytes")
        return real(data, *args, **kwargs)
    monkeypatch.setattr(cbor, "decode", guarded)
    return guarded


@pytest.mark.parametrize("name", NAMES)
def test_h1_a_64_mib_message_is_refused_before_decoding(handlers, name, no_decoder):
    """H1: 64 MiB + 1 bytes behind a kind's prefix -- over every kind's limit -- is a DecodeError,
    and the CBOR decoder is never called (so nothing of it is built in memory)."""
    target = handlers[name]
    if name.startswith("groupkeys operator."):
        pytest.skip("operators take a body (a map) from their own coordinator, not bytes")
    prefix = _prefix(target.kind) if target.kind else b"\xa7\x01\x02"
    big = prefix + bytes((1 << 26) + 1 - len(prefix))
    with pytest.raises(target.oversized):
        target.call(big)


@pytest.mark.parametrize("kind", ["rekey", "command"])
def test_h1_an_unauthenticated_rekey_or_command_over_1_mib_is_never_decoded(handlers, kind, no_decoder):
    """H1: rekeys and commands may be up to 64 MiB (spec 4.1); one over 1 MiB is verified over its raw
    bytes first, so junk without the controller's (or operators') signature never reaches the decoder.
    The junk is 1 MiB + 1 of 3-element arrays, what made 64 MiB cost 4.78 GB when it was decoded."""
    name = "groupkeys meter.receive" if kind == "rekey" else "groupkeys meter.receive(command)"
    body = _prefix(kind) + b"\x08\x9a\x00\x04\x00\x00" + b"\x83\x00\x00\x00" * (1 << 18)
    forged = body + bytes((gk._SIG_KEY[kind], 0x58, 0x40)) + bytes(64)
    assert len(forged) > gk.LIMITS.authenticate_before_decode_bytes
    with pytest.raises(VerificationError):
        handlers[name].call(forged)
    with pytest.raises(DecodeError):  # no signature where the layout puts it
        handlers[name].call(body + bytes(67))
