"""Aggregation v2 over the aggregator tree (specs/aggregation.md).

Each section of the spec's security claims (spec 11) names the test here
that checks it.  The attacks of a lying utility colluding with meters
(issue 13) are played in tests/test_aggregation_adversary.py; this module
checks correctness, the setup, each role's input checks and state, the
audit of a faulty aggregator, the layout, the noise and the fast paths.

Adversaries played here, through the real classes:

- a faulty or lying aggregator: it controls its own output (any bytes,
  sealed with its own key) and sees its children's reports; the round must
  fail with a typed error and the audit (spec 9) must name it;
- the network: it sees every message of a round and may change any byte
  of any one of them; the party that reads it refuses it with a typed error
  and keeps its state, or the audit names the changed report;
- a utility sending malformed or inconsistent requests (wrong recipient,
  bad bitmaps, too few or bad committee signatures, sets that disagree with
  a meter's bundle): every meter refuses with the exact typed error;
- a utility that starts a new setup while a round is open, or asks for a
  round's shares under another directory: the round is closed for good;
- a corrupt meter with low-order X25519 keys (in the directory, in its
  advert, or handed to a neighbour by a colluding utility): refused and named;
- any sender of an oversized message: refused before it is decoded.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
from contextlib import contextmanager
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import aggregation as agg
from protocols.aggregation import messages as msg
from protocols.aggregation.aggregator import _MeterReportReader
from protocols.aggregation.schedule import (
    CONFIRM_BYTES,
    KEY_BYTES,
    SIGNATURE_BYTES,
    commit_message,
    mac_key,
)
from protocols.errors import (
    AggregateMismatchError,
    ConsistencyError,
    DecodeError,
    DroppedContributionError,
    DuplicateContributionError,
    EncodingOverflowError,
    InjectedContributionError,
    InvalidCiphertextError,
    ParameterError,
    RecoveryError,
    ReplayError,
    StateError,
    UsappError,
    VerificationError,
)
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.privacy.dp import NoiseShareConfig, PrivacyLevel, clamped_noise_share
from protocols.schemes.paillier import FastEncryptor
from protocols.system import neighbourhood as nb

SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# (direction of the MAC key, MAC field) of each sealed message kind (spec 6-8)
SEALS = {
    b"mask-advert": (b"up", 6), b"mask-bundle": (b"down", 7), b"meter-report": (b"up", 6),
    b"aggregate-report": (b"up", 7), b"commit-request": (b"down", 6), b"unmask-request": (b"down", 9),
    b"unmask-response": (b"up", 5),
}


@pytest.fixture(scope="module")
def encryptor(paillier_key):
    return FastEncryptor.create(paillier_key.public_key, HmacDrbg.from_seed("tests/aggregation/encryptor"))


@contextmanager
def raises_exactly(kind, match=None):
    """pytest.raises, but a subclass does not count: the exact typed error of the rules."""
    with pytest.raises(kind, match=match) as info:
        yield info
    assert type(info.value) is kind, f"{type(info.value).__name__} raised, {kind.__name__} expected: {info.value}"


def make(paillier_key, count=9, fanout=3, seed="hood", **options):
    meters = [f"m{i}" for i in range(count)]
    tree, root = agg.balanced_tree(meters, fanout)
    return agg.provision(paillier_key, meters, tree, root, HmacDrbg.from_seed("tests/aggregation/" + seed),
                         **options)


def readings_for(p, rng_seed="readings", missing=()):
    rng = HmacDrbg.from_seed(rng_seed)
    limit = 1 << p.hood.value_bits
    return {m: [int.from_bytes(rng.random_bytes(8), "big") % limit for _ in range(p.hood.slots)]
            for m in p.hood.meters if m not in missing}


def column_sums(readings):
    return tuple(sum(column) for column in zip(*readings.values()))


def run(p, round_id, readings, encryptor, seed="round", **options):
    encryptors = {m: encryptor for m in readings}
    return nb.run_round(p, round_id, readings, HmacDrbg.from_seed(f"{seed}/{round_id}"),
                        encryptors=encryptors, **options)


def collect(p, round_id, readings, encryptor, seed="collect", **options):
    return nb.collect(p, round_id, readings, HmacDrbg.from_seed(f"{seed}/{round_id}"),
                      encryptors={m: encryptor for m in readings}, **options)


def reseal(raw, key, kind, change):
    """The message with ``change`` applied to its body and a valid MAC under ``key`` (what a key holder can do)."""
    direction, field = SEALS[kind]
    body = {k: v for k, v in cbor.decode(raw).items() if k != field}
    change(body)
    return msg.seal(body, mac_key(key, direction), kind, field)


def signed_sets(p, transcript):
    """Spec 8.1-8.3 honestly: receipt, the committee's signatures, the unmask-requests."""
    utility = agg.Utility(p.hood, p.utility)
    rs = utility.receive(transcript.state, transcript.aggregate_reports[p.hood.root])
    for member, request in utility.commit_requests(rs).items():
        transcript.commit_signatures[member] = agg.Meter(p.hood, p.meters[member]).sign_commit(request)
    utility.collect_signatures(rs, list(transcript.commit_signatures.values()))
    return utility, rs, utility.unmask_requests(rs)


def failure_by_the_rule(hood, reporting, dropped, silent=()):
    """Spec 8.5: why a round over these sets cannot release (None if it can).

    Meters in ``reporting`` and ``dropped`` advertise (the others take no
    part); ``silent`` reporting meters do not answer their unmask-request.
    """
    taking_part = set(reporting) | set(dropped)
    bundles = {m: [x for x in hood.neighbours(m) if x in taking_part] for m in taking_part}
    if any(len(b) < hood.threshold for b in bundles.values()):
        return "a bundle has fewer than t neighbours"
    if len(reporting) < hood.min_reporting:
        return "|R| < min_reporting"
    answering = set(reporting) - set(silent)
    for meter in sorted(reporting, key=hood.index) + sorted(dropped, key=hood.index):  # the utility's order
        if sum(x in answering for x in bundles[meter]) < hood.threshold:
            return f"{meter} has fewer than t answering bundled neighbours"
    return None


# ---------------------------------------------------------------------------
# Correctness (spec 11.1)
# ---------------------------------------------------------------------------


def test_round_sums_exactly(paillier_key, encryptor):
    p = make(paillier_key, slots=3, value_bits=16)
    readings = readings_for(p)
    transcript = run(p, 1, readings, encryptor)
    assert transcript.result.sums == column_sums(readings)
    assert transcript.result.missing == ()
    assert transcript.result.reporting == p.hood.meters
    assert not transcript.result.noisy
    assert set(transcript.commit_signatures) == set(p.hood.committee)
    assert set(transcript.responses) == set(p.hood.meters)
    assert p.utility.last_round == 1


def test_consecutive_rounds_reuse_the_state(paillier_key, encryptor):
    """Spec 6.2: the same states serve round after round; each round's mask keys are fresh."""
    p = make(paillier_key, count=6, fanout=2, seed="consecutive")
    mask_keys = set()
    for round_id in (1, 2, 7):
        readings = readings_for(p, f"r{round_id}")
        transcript = run(p, round_id, readings, encryptor)
        assert transcript.result.sums == column_sums(readings)
        mask_keys |= {cbor.decode(raw)[4] for raw in transcript.adverts.values()}
    assert len(mask_keys) == 3 * 6
    with raises_exactly(ReplayError):
        run(p, 7, readings_for(p, "again"), encryptor)


@settings(SLOW, max_examples=100)
@given(count=st.integers(2, 12), fanout=st.integers(2, 5), degree=st.sampled_from([2, 4, 6]), data=st.data())
def test_sum_for_any_tree_and_missing_set(paillier_key, encryptor, count, fanout, degree, data):
    """Spec 11.1: the released sum is the exact sum of the reporting meters
    for any tree, degree, threshold, minimum and set of dropped (advertised,
    did not report), absent (took no part) and silent (reported, did not
    answer the unmask-request) meters; the round fails with RecoveryError
    exactly when spec 8.5's rule says recovery is impossible."""
    k = min(degree, count - 1)
    threshold = data.draw(st.integers(k // 2 + 1, k), label="threshold")  # spec 3.1: k'/2 < t <= k'
    min_reporting = data.draw(st.one_of(st.none(), st.integers(2, count)), label="min_reporting")
    p = make(paillier_key, count, fanout, seed=f"prop/{count}/{fanout}/{degree}/{threshold}",
             degree=degree, threshold=threshold, min_reporting=min_reporting, slots=2, value_bits=20)
    hood = p.hood
    assert all(len(hood.neighbours(m)) == k for m in hood.meters)  # spec 3.4: exactly k'-regular
    status = data.draw(st.lists(st.sampled_from(["report"] * 5 + ["drop", "absent", "silent"]),
                                min_size=count, max_size=count), label="status")
    if not any(s in ("report", "silent") for s in status):
        status[0] = "report"  # the driver needs at least one report to reach the root
    of = dict(zip(hood.meters, status))
    reporting = [m for m in hood.meters if of[m] in ("report", "silent")]
    dropped = [m for m in hood.meters if of[m] == "drop"]
    silent = [m for m in hood.meters if of[m] == "silent"]
    readings = readings_for(p, f"prop/{status}", set(hood.meters) - set(reporting))
    reason = failure_by_the_rule(hood, reporting, dropped, silent)
    if reason is None:
        result = run(p, 1, readings, encryptor, dropped=dropped, silent=silent).result
        assert result.sums == column_sums(readings)
        assert result.reporting == tuple(reporting)
        assert result.missing == tuple(dropped)
    else:
        with raises_exactly(RecoveryError):
            run(p, 1, readings, encryptor, dropped=dropped, silent=silent)


def test_any_set_of_max_missing_meters_is_recoverable(paillier_key, encryptor):
    """Spec 8.6: any max_missing dropped meters leave the round recoverable
    (checked by the rule for every such set, and by real rounds for the worst
    ones: all of them neighbours of one meter); one more dropped neighbour of
    the meter with fewest neighbours fails the round."""
    p = make(paillier_key, count=20, fanout=4, seed="maxmissing", degree=8, threshold=5)
    hood = p.hood
    degrees = {m: len(hood.neighbours(m)) for m in hood.meters}
    assert hood.max_missing == min(min(degrees.values()) - hood.threshold, 20 - hood.min_reporting)
    assert hood.max_missing >= 2
    for gone in itertools.combinations(hood.meters, hood.max_missing):
        assert failure_by_the_rule(hood, [m for m in hood.meters if m not in gone], gone) is None
    round_id = 0
    for centre in hood.meters[:4]:
        round_id += 1
        gone = set(hood.neighbours(centre)[:hood.max_missing])
        readings = readings_for(p, f"maxmissing/{centre}", gone)
        result = run(p, round_id, readings, encryptor, dropped=sorted(gone)).result
        assert result.sums == column_sums(readings)
        assert set(result.missing) == gone
    weakest = min(hood.meters, key=lambda m: (degrees[m], hood.index(m)))
    gone = set(hood.neighbours(weakest)[:degrees[weakest] - hood.threshold + 1])
    readings = readings_for(p, "maxmissing/over", gone)
    with raises_exactly(RecoveryError, match=weakest):
        run(p, round_id + 1, readings, encryptor, dropped=sorted(gone))


def test_silent_meters_within_threshold_do_not_stop_the_round(paillier_key, encryptor):
    """Spec 8.5: reporting meters may miss the unmask phase while every meter still has t answering neighbours."""
    p = make(paillier_key, count=10, fanout=3, seed="silent", degree=6, threshold=4)
    hood = p.hood
    dropped = [hood.meters[-1]]
    reporting = [m for m in hood.meters if m not in dropped]
    silent = next(list(s) for s in itertools.combinations(reporting, 2)
                  if failure_by_the_rule(hood, reporting, dropped, s) is None)
    readings = readings_for(p, "silent", dropped)
    transcript = run(p, 1, readings, encryptor, dropped=dropped, silent=silent)
    assert transcript.result.sums == column_sums(readings)
    assert set(transcript.result.reporting) == set(readings)
    assert not set(transcript.responses) & set(silent)


def _silencing(hood, gone, targets):
    """(target, silent meters) such that ``target`` is the first meter, in the utility's order, left
    with fewer than t answering neighbours; (None, []) if no target allows it."""
    reporting = [m for m in hood.meters if m not in gone]
    for target in targets:
        peers = [x for x in hood.neighbours(target) if x in reporting]
        for silent in itertools.combinations(peers, len(peers) - hood.threshold + 1):
            if failure_by_the_rule(hood, reporting, gone, silent) == f"{target} has fewer than t answering " \
                                                                     "bundled neighbours":
                return target, list(silent)
    return None, []


def test_too_many_silent_meters_fail_the_round(paillier_key, encryptor):
    """Spec 8.5: a meter with fewer than t answering neighbours cannot be unmasked; the error names it
    and the secret: the self-mask seed of a reporting meter, the round mask key of a dropped one."""
    p = make(paillier_key, count=10, fanout=3, seed="silent2", degree=6, threshold=4)
    target, silent = _silencing(p.hood, [], p.hood.meters)
    readings = readings_for(p, "silent2")
    with raises_exactly(RecoveryError, match=f"meter {target}'s self-mask seed"):
        run(p, 1, readings, encryptor, silent=silent)
    assert p.utility.last_round == -1
    # a dropped meter whose round mask key is the first secret short of shares: a sparse enough graph
    # (at N = 10, 12 or 16 with k = 6, t = 4 silencing its neighbours first leaves a reporting meter short)
    p = make(paillier_key, count=20, fanout=4, seed="silent3", degree=6, threshold=4)
    gone, silent = next(found for g in p.hood.meters if (found := _silencing(p.hood, [g], [g]))[0])
    readings = readings_for(p, "silent3", {gone})
    with raises_exactly(RecoveryError, match=f"meter {gone}'s round mask key"):
        run(p, 1, readings, encryptor, dropped=[gone], silent=silent)


def test_fewer_than_min_reporting_fails_the_round(paillier_key, encryptor):
    """Spec 8.1: the utility refuses to go on with fewer than min_reporting reports."""
    p = make(paillier_key, count=8, fanout=4, seed="minrep", degree=4, threshold=3, min_reporting=6)
    dropped = list(p.hood.meters[:3])
    readings = readings_for(p, "minrep", set(dropped))
    with raises_exactly(RecoveryError, match="minimum 6"):
        run(p, 1, readings, encryptor, dropped=dropped)
    assert p.utility.last_round == -1


# ---------------------------------------------------------------------------
# Layout (spec 4)
# ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data(), slots=st.integers(1, 6), value_bits=st.integers(1, 40),
       noise_bound=st.integers(0, 1 << 20), summands=st.integers(1, 5000))
def test_layout_signed_sums_round_trip(data, slots, value_bits, noise_bound, summands):
    layout = agg.Layout(slots, value_bits, noise_bound, summands, 2048)
    count = data.draw(st.integers(1, min(summands, 20)))
    values = [[data.draw(st.integers(-noise_bound, layout.bound)) for _ in range(slots)] for _ in range(count)]
    tags = [data.draw(st.integers(0, agg.TAG_PRIME - 1)) for _ in range(count)]
    n = (1 << 2047) + 1
    total = sum(layout.pack(v, t) for v, t in zip(values, tags)) % n
    sums, tag_sum = layout.unpack(total, n)
    assert sums == [sum(column) for column in zip(*values)]
    assert tag_sum == sum(tags)
    low, high = layout.physical_range(count)
    assert all(low <= s <= high for s in sums)


def test_layout_refuses_too_many_slots():
    most = agg.Layout.max_slots(16, 0, 1000, 2048)
    agg.Layout(most, 16, 0, 1000, 2048)
    with raises_exactly(ParameterError, match="at most"):
        agg.Layout(most + 1, 16, 0, 1000, 2048)


# ---------------------------------------------------------------------------
# Blinding (spec 11.2)
# ---------------------------------------------------------------------------


def _blinding(p, meter, report, readings, round_id):
    """Dec(c_i) minus the packed, tagged reading: what hides the reading from the utility."""
    hood, state = p.hood, p.meters[meter]
    sk = p.utility.private_key
    message = agg.MeterReport.decode(report, hood)
    alphas = agg.tag_alphas(state.tag_key, round_id, hood.slots)
    tag = (sum(a * v for a, v in zip(alphas, readings)) + agg.tag_beta(state.key, round_id)) % agg.TAG_PRIME
    return (int(sk.decrypt(message.ciphertext)) - hood.layout.pack(readings, tag)) % hood.public_key.n


@pytest.mark.slow
@settings(SLOW, max_examples=20)
@given(first=st.lists(st.integers(0, (1 << 16) - 1), min_size=2, max_size=2),
       second=st.lists(st.integers(0, (1 << 16) - 1), min_size=2, max_size=2))
def test_blinding_does_not_depend_on_the_reading(paillier_key, encryptor, first, second):
    """Spec 11.2: with the same keys, round and randomness, the blinding term
    of a meter's contribution is the same whatever it reads: the decrypted
    contribution is reading + a term that is a function of secrets the
    utility does not hold (the round mask keys, the self-mask seed)."""
    blinds = []
    for reading in (first, second):
        p = make(paillier_key, count=5, fanout=2, seed="blind", slots=2, value_bits=16)
        meter = p.hood.meters[0]
        readings = {**readings_for(p, "blind"), meter: reading}
        report = collect(p, 3, readings, encryptor, seed="blind").meter_reports[meter]
        blinds.append(_blinding(p, meter, report, reading, 3))
    assert blinds[0] == blinds[1]
    assert blinds[0] != 0


def test_single_contributions_decrypt_to_spread_values(paillier_key, encryptor):
    """Spec 11.2: a corrupt aggregator hands the utility single ciphertexts;
    they decrypt to values spread over Z_n, not to readings.  64 meters all
    reading 0: the top 4 bits of their decryptions fall in every bucket and
    no decryption unpacks to the reading."""
    p = make(paillier_key, count=64, fanout=8, seed="spread", slots=1, value_bits=8)
    readings = {m: [0] for m in p.hood.meters}
    transcript = collect(p, 1, readings, encryptor, seed="spread")
    n = p.hood.public_key.n
    buckets = [0] * 16
    for report in transcript.meter_reports.values():
        value = int(p.utility.private_key.decrypt(agg.MeterReport.decode(report, p.hood).ciphertext))
        buckets[value * 16 // n] += 1
        assert value.bit_length() > 2000
    assert min(buckets) >= 1 and max(buckets) <= 12


# ---------------------------------------------------------------------------
# Authenticity (spec 9, 11.3): a faulty aggregator, replays, named misbehaviour
# ---------------------------------------------------------------------------


def _seal_aggregate(p, node, body):
    return msg.seal(body, mac_key(p.aggregators[node].key, b"up"), b"aggregate-report", 7)


def _lying_collect(p, readings, encryptor, node, rewrite, **options):
    """Collect where aggregator ``node`` rewrites its honest output body (sealed with its own key)."""
    transcript = collect(p, 1, readings, encryptor, seed="liar", **options)
    hood = p.hood
    body = {k: v for k, v in cbor.decode(transcript.aggregate_reports[node]).items() if k != 7}
    forged = _seal_aggregate(p, node, rewrite(body))
    # re-run the aggregators above node on the forged output
    parent = hood.parent(node)
    outputs = {**transcript.meter_reports, **transcript.aggregate_reports, node: forged}
    while parent is not None:
        state = agg.AggregatorState(parent, p.aggregators[parent].key)
        inputs = [outputs[c] for c in hood.children(parent) if c in outputs]
        outputs[parent] = agg.Aggregator(hood, state).aggregate(1, inputs)
        p.aggregators[parent].retained = state.retained
        parent = hood.parent(parent)
    transcript.aggregate_reports = {k: v for k, v in outputs.items() if k in hood.tree}
    return transcript


def _retained(p, round_id=1):
    return {node: state.retained[round_id] for node, state in p.aggregators.items() if round_id in state.retained}


def _expect_mismatch_then(p, transcript, error, node):
    """The round fails its tag check (spec 8.5); the audit (spec 9) names ``node``."""
    with raises_exactly(AggregateMismatchError):
        nb.finish(p, transcript)
    assert p.utility.last_round == -1
    with raises_exactly(error, match=node):
        agg.Utility(p.hood, p.utility).audit(transcript.state, _retained(p))


def _product_times(body, factor, n2):
    body[4] = (int.from_bytes(body[4], "big") * int(factor) % n2).to_bytes(len(body[4]), "big")
    return body


def _received(p, node, sender):
    """The ciphertext of ``sender``'s report among the inputs aggregator ``node`` kept (spec 9)."""
    parts = [msg.decode_child(raw, p.hood) for raw in p.aggregators[node].retained[1]]
    return next(part.ciphertext.c for part in parts if part.sender == sender)


def test_dropped_contribution_is_detected_and_named(paillier_key, encryptor):
    """Adversary: aggregator agg-1-1 (its key, its children's reports) leaves one child's ciphertext
    out of the product but still lists the child."""
    p = make(paillier_key, seed="drop")
    readings = readings_for(p, "drop")
    node = "agg-1-1"
    first = p.hood.children(node)[0]
    n2 = p.hood.public_key.nsquare

    def rewrite(body):
        return _product_times(body, pow(int(_received(p, node, first)), -1, n2), n2)

    transcript = _lying_collect(p, readings, encryptor, node, rewrite)
    _expect_mismatch_then(p, transcript, DroppedContributionError, node)


def test_duplicated_contribution_is_detected_and_named(paillier_key, encryptor):
    p = make(paillier_key, seed="dup")
    readings = readings_for(p, "dup")
    node = "agg-1-2"
    n2 = p.hood.public_key.nsquare

    def rewrite(body):  # one child's ciphertext multiplied in a second time
        return _product_times(body, _received(p, node, p.hood.children(node)[0]), n2)

    transcript = _lying_collect(p, readings, encryptor, node, rewrite)
    _expect_mismatch_then(p, transcript, DuplicateContributionError, node)


def test_injected_term_is_detected_and_named(paillier_key, encryptor):
    p = make(paillier_key, seed="inject")
    readings = readings_for(p, "inject")
    node = "agg-1-0"
    pk = p.hood.public_key

    def rewrite(body):
        return _product_times(body, pk.encrypt(1000, HmacDrbg.from_seed("extra")).c, pk.nsquare)

    transcript = _lying_collect(p, readings, encryptor, node, rewrite)
    _expect_mismatch_then(p, transcript, InjectedContributionError, node)


def test_claiming_an_unreceived_meter_is_named_by_the_audit(paillier_key, encryptor):
    """An aggregator lists a meter that advertised but sent it no report
    (with confirmations of the right length, so the utility's receipt
    passes); the audit names it."""
    p = make(paillier_key, seed="claim")
    node = "agg-1-1"
    absent = p.hood.children(node)[1]
    readings = readings_for(p, "claim", {absent})

    def rewrite(body):
        entries = dict(zip(body[5], body[6]))
        entries[absent] = bytes(CONFIRM_BYTES * len(p.hood.neighbours(absent)))
        body[5] = sorted(entries, key=p.hood.index)
        body[6] = [entries[m] for m in body[5]]
        return body

    transcript = _lying_collect(p, readings, encryptor, node, rewrite, dropped=[absent])
    rs = agg.Utility(p.hood, p.utility).receive(transcript.state, transcript.aggregate_reports[p.hood.root])
    assert absent in rs.reporting
    with raises_exactly(DroppedContributionError, match=f"{node} claims meter {absent}"):
        agg.Utility(p.hood, p.utility).audit(rs, _retained(p))


def test_replayed_old_round_report_is_refused(paillier_key, encryptor):
    p = make(paillier_key, count=4, fanout=2, seed="replay")
    readings = readings_for(p, "replay")
    first = run(p, 1, readings, encryptor)
    second = collect(p, 2, {m: r for m, r in readings.items() if m != "m0"}, encryptor, dropped=["m0"])
    node = p.hood.parent("m0")
    inputs = [first.meter_reports["m0"]] + [second.meter_reports[c] for c in p.hood.children(node)
                                             if c in second.meter_reports]
    state = agg.AggregatorState(node, p.aggregators[node].key)
    with raises_exactly(ReplayError, match="m0"):
        agg.Aggregator(p.hood, state).aggregate(2, inputs)
    assert state.last_round == -1 and state.retained == {}
    # the utility refuses an old round's report, and a round that is not after the last one
    with raises_exactly(ReplayError):
        agg.Utility(p.hood, p.utility).receive(second.state, first.aggregate_reports[p.hood.root])
    with raises_exactly(ReplayError):
        agg.Utility(p.hood, p.utility).bundles(1, list(first.adverts.values()))


def test_replay_hidden_by_a_lying_aggregator_is_named_by_the_audit(paillier_key, encryptor):
    """An aggregator that slips m0's round-1 report into round 2 (its own
    header checks bypassed) makes the tag fail; the audit names it."""
    p = make(paillier_key, count=4, fanout=2, seed="replay2")
    readings = readings_for(p, "replay2")
    old = run(p, 1, readings, encryptor).meter_reports["m0"]
    node = p.hood.parent("m0")
    n2 = p.hood.public_key.nsquare
    transcript = collect(p, 2, readings, encryptor, seed="replay2")
    new = transcript.meter_reports["m0"]
    new_c = agg.MeterReport.decode(new, p.hood).ciphertext.c
    old_c = agg.MeterReport.decode(old, p.hood).ciphertext.c
    body = {k: v for k, v in cbor.decode(transcript.aggregate_reports[node]).items() if k != 7}
    transcript.aggregate_reports[node] = _seal_aggregate(p, node, _product_times(body, pow(int(new_c), -1, n2)
                                                                                 * int(old_c), n2))
    p.aggregators[node].retained = {2: tuple(old if r == new else r for r in p.aggregators[node].retained[2])}
    root = p.hood.root
    if node != root:
        inputs = [transcript.aggregate_reports.get(c) or transcript.meter_reports[c] for c in p.hood.children(root)]
        state = agg.AggregatorState(root, p.aggregators[root].key)
        transcript.aggregate_reports[root] = agg.Aggregator(p.hood, state).aggregate(2, inputs)
        p.aggregators[root].retained = state.retained
    with raises_exactly(AggregateMismatchError):
        nb.finish(p, transcript)
    with raises_exactly(ReplayError, match=f"{node} used m0's report of round 1"):
        agg.Utility(p.hood, p.utility).audit(transcript.state, _retained(p, 2))


def test_honest_aggregator_refuses_duplicates_strangers_and_wrong_rounds(paillier_key, encryptor):
    p = make(paillier_key, count=6, fanout=3, seed="honest")
    readings = readings_for(p, "honest")
    transcript = collect(p, 5, readings, encryptor)
    node = p.hood.parent("m0")
    mine = [transcript.meter_reports[c] for c in p.hood.children(node)]
    stranger = next(m for m in p.hood.meters if p.hood.parent(m) != node)

    def fresh():
        return agg.Aggregator(p.hood, agg.AggregatorState(node, p.aggregators[node].key))

    with raises_exactly(DuplicateContributionError):
        fresh().aggregate(5, mine + mine[:1])
    with raises_exactly(InjectedContributionError, match="not a child"):
        fresh().aggregate(5, mine + [transcript.meter_reports[stranger]])
    with raises_exactly(StateError):
        fresh().aggregate(4, mine)
    with raises_exactly(ReplayError):
        fresh().aggregate(6, mine)
    with raises_exactly(RecoveryError):
        fresh().aggregate(5, [])
    state = agg.AggregatorState(node, p.aggregators[node].key)
    agg.Aggregator(p.hood, state).aggregate(5, mine)
    with raises_exactly(ReplayError):
        agg.Aggregator(p.hood, state).aggregate(5, mine)


def test_non_unit_ciphertext_is_refused_and_named(paillier_key, encryptor):
    """Spec 7.1: ranges per input, coprimality once on the product; a bad factor is named."""
    p = make(paillier_key, count=4, fanout=4, seed="unit")
    readings = readings_for(p, "unit")
    transcript = collect(p, 1, readings, encryptor)
    bad = p.hood.meters[1]
    n = p.hood.public_key.n
    key = p.utility.meter_keys[bad]
    forged = reseal(transcript.meter_reports[bad], key, b"meter-report",
                    lambda body: body.update({4: int(n * 5).to_bytes(len(body[4]), "big")}))
    inputs = [forged if m == bad else transcript.meter_reports[m] for m in p.hood.children(p.hood.root)]
    state = agg.AggregatorState(p.hood.root, p.aggregators[p.hood.root].key)
    with raises_exactly(InvalidCiphertextError, match=bad):
        agg.Aggregator(p.hood, state).aggregate(1, inputs)
    zero = reseal(transcript.meter_reports[bad], key, b"meter-report",
                  lambda body: body.update({4: bytes(len(body[4]))}))
    with raises_exactly(InvalidCiphertextError, match="range"):
        agg.Aggregator(p.hood, state).aggregate(1, [zero])
    assert state.last_round == -1


# ---------------------------------------------------------------------------
# Any single byte of any message (spec 11.3)
# ---------------------------------------------------------------------------

KINDS = ["advert", "bundle", "meter-report", "aggregate-report", "commit-request", "commit-signature",
         "unmask-request", "unmask-response"]


def _flip(data: bytes, index: int, mask: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1:]


def _snapshot(state):
    """What must not change when a party refuses a message (the pairwise-secret cache aside)."""
    if isinstance(state, agg.UtilityState):
        return state.last_round
    if isinstance(state, agg.RoundState):
        return copy.deepcopy({k: v.fields if k == "report" and v is not None else v for k, v in vars(state).items()})
    return copy.deepcopy({k: v for k, v in vars(state).items() if k != "pairwise"})


class _Refused(Exception):
    pass


def _consume(states, call):
    """Run one party's step; on a typed error check that the party's state is unchanged and stop the round."""
    before = [_snapshot(s) for s in states]
    try:
        return call()
    except UsappError as exc:
        assert [_snapshot(s) for s in states] == before, f"state changed by a refused message ({exc!r})"
        raise _Refused(exc) from None


def _tampered_round(p, readings, encryptor, kind, target, index, mask):
    """One round, step by step, with one byte of one message changed in transit.

    Returns (result, mac_only, sender) if the round released, or raises _Refused.
    """
    hood, rng = p.hood, HmacDrbg.from_seed("tamper/rng")
    utility = agg.Utility(hood, p.utility)
    meter = {m: agg.Meter(hood, p.meters[m]) for m in hood.meters}
    flipped = {}

    def wire(k, party, raw):
        if k == kind and party == target:
            flipped["raw"], flipped["original"] = _flip(raw, index, mask), raw
            return flipped["raw"]
        return raw

    adverts = [wire("advert", m, meter[m].advertise(1, rng)) for m in hood.meters]
    rs, bundles = _consume([p.utility], lambda: utility.bundles(1, adverts))
    for m in hood.meters:
        raw = wire("bundle", m, bundles[m])
        _consume([p.meters[m]], lambda: meter[m].accept_bundle(raw))
    outputs = {m: wire("meter-report", m, meter[m].report(1, readings[m], rng, encryptor=encryptor))
               for m in hood.meters}
    for node in nb.post_order(hood.tree, hood.root):
        inputs = [outputs[c] for c in hood.children(node)]
        state = p.aggregators[node]
        outputs[node] = wire("aggregate-report", node,
                             _consume([state], lambda: agg.Aggregator(hood, state).aggregate(1, inputs)))
    root_report = outputs[hood.root]
    _consume([p.utility, rs], lambda: utility.receive(rs, root_report))
    signatures = []
    for member, request in utility.commit_requests(rs).items():
        raw = wire("commit-request", member, request)
        signatures.append(wire("commit-signature", member,
                               _consume([p.meters[member]], lambda: meter[member].sign_commit(raw))))
    _consume([p.utility, rs], lambda: utility.collect_signatures(rs, signatures))
    responses = []
    for m, request in utility.unmask_requests(rs).items():
        raw = wire("unmask-request", m, request)
        responses.append(wire("unmask-response", m, _consume([p.meters[m]], lambda: meter[m].unmask(raw))))
    result = _consume([p.utility, rs], lambda: utility.finish(rs, responses))
    original = flipped["original"]
    mac_only = (kind in ("meter-report", "aggregate-report") and target != hood.root
                and index % len(original) >= len(original) - msg.MAC_BYTES)
    return rs, result, mac_only


@pytest.fixture(scope="module")
def tamper_readings(paillier_key):
    return readings_for(make(paillier_key, count=6, fanout=2, seed="tamper", slots=2, value_bits=16), "tamper")


@settings(SLOW, max_examples=400)
@given(kind=st.sampled_from(KINDS), which=st.integers(0, 63), mask=st.integers(1, 255),
       index=st.one_of(st.integers(0, 96), st.integers(-48, -1), st.integers(0, 1 << 16)))
def test_any_single_byte_change_is_rejected(paillier_key, encryptor, tamper_readings, kind, which, index, mask):
    """Spec 11.3, the network adversary: changing any byte of any one message
    of a round makes the party that reads it raise a typed error with its
    state unchanged (for a changed aggregate, the utility's tag check).  The
    one exception is the MAC of a report below the root, which only an audit
    reads: the round still releases the exact sum, and the audit names the
    report's sender as not having made it."""
    p = make(paillier_key, count=6, fanout=2, seed="tamper", slots=2, value_bits=16)
    hood = p.hood
    if kind == "aggregate-report":
        parties = sorted(hood.tree)
    elif kind in ("commit-request", "commit-signature"):
        parties = list(hood.committee)
    else:
        parties = list(hood.meters)
    target = parties[which % len(parties)]
    try:
        rs, result, mac_only = _tampered_round(p, tamper_readings, encryptor, kind, target, index, mask)
    except _Refused:
        return
    assert mac_only, f"a changed {kind} of {target} was accepted"
    assert result.sums == column_sums(tamper_readings)
    fresh = agg.UtilityState(p.utility.private_key, p.utility.meter_keys, p.utility.aggregator_keys,
                             p.utility.tag_key)
    with raises_exactly(InjectedContributionError, match=f"from {target} that {target} did not make"):
        agg.Utility(hood, fresh).audit(rs, _retained(p))


def test_refused_commit_signatures_leave_the_round_state_unchanged(paillier_key, encryptor):
    """A changed commit-signature after valid ones: the utility refuses the
    list and, as every party does, keeps its state -- so the honest list is
    still accepted afterwards."""
    p = make(paillier_key, count=6, fanout=2, seed="sigstate")
    readings = readings_for(p, "sigstate")
    transcript = collect(p, 1, readings, encryptor)
    utility = agg.Utility(p.hood, p.utility)
    rs = utility.receive(transcript.state, transcript.aggregate_reports[p.hood.root])
    answers = [agg.Meter(p.hood, p.meters[m]).sign_commit(r) for m, r in utility.commit_requests(rs).items()]
    bad = cbor.decode(answers[-1])
    bad[4] = bytes(SIGNATURE_BYTES)
    before = _snapshot(rs)
    with raises_exactly(VerificationError, match="does not verify"):
        utility.collect_signatures(rs, answers[:-1] + [cbor.encode(bad)])
    assert rs.signatures == {} and _snapshot(rs) == before
    with raises_exactly(ReplayError, match="two commit-signatures"):
        utility.collect_signatures(rs, answers + answers[:1])
    assert rs.signatures == {} and _snapshot(rs) == before
    utility.collect_signatures(rs, answers)
    assert set(rs.signatures) == set(p.hood.committee)


def test_refused_root_report_leaves_the_round_state_unchanged(paillier_key, encryptor):
    """Spec 8.1: |R| >= min_reporting is checked before the round state is touched."""
    p = make(paillier_key, count=8, fanout=4, seed="rsstate", degree=4, threshold=3, min_reporting=6)
    dropped = list(p.hood.meters[:3])
    transcript = collect(p, 1, readings_for(p, "rsstate", set(dropped)), encryptor, dropped=dropped)
    before = _snapshot(transcript.state)
    with raises_exactly(RecoveryError, match="minimum 6"):
        agg.Utility(p.hood, p.utility).receive(transcript.state, transcript.aggregate_reports[p.hood.root])
    assert _snapshot(transcript.state) == before
    assert transcript.state.report is None and p.utility.last_round == -1


def test_utility_round_steps_refuse_replays_and_skipped_steps(paillier_key, encryptor):
    """Spec 8.1 and 8.5: a round takes one root report; it finishes only with a checked report and tau
    signatures, and once; a finished round takes no report."""
    p = make(paillier_key, count=6, fanout=2, seed="utilitysteps")
    readings = readings_for(p, "utilitysteps")
    transcript = collect(p, 1, readings, encryptor)
    utility = agg.Utility(p.hood, p.utility)
    untouched = copy.deepcopy(transcript.state)  # the round as the bundles left it, for the last check
    rs = transcript.state
    with raises_exactly(StateError, match="no checked root report"):
        utility.finish(rs, [])
    root_report = transcript.aggregate_reports[p.hood.root]
    utility.receive(rs, root_report)
    before = _snapshot(rs)
    with raises_exactly(ReplayError, match="already has the root's report"):
        utility.receive(rs, root_report)
    assert _snapshot(rs) == before
    with raises_exactly(StateError, match="no checked root report and signed sets"):
        utility.finish(rs, [])  # a report but no committee signatures yet
    assert _snapshot(rs) == before and p.utility.last_round == -1
    requests = utility.commit_requests(rs)
    utility.collect_signatures(rs, [agg.Meter(p.hood, p.meters[m]).sign_commit(r) for m, r in requests.items()])
    responses = [agg.Meter(p.hood, p.meters[m]).unmask(r) for m, r in utility.unmask_requests(rs).items()]
    assert utility.finish(rs, responses).sums == column_sums(readings)
    assert p.utility.last_round == 1
    with raises_exactly(ReplayError, match="not after the last finished round 1"):
        utility.finish(rs, responses)
    with raises_exactly(ReplayError, match="not after the last finished round 1"):
        utility.receive(untouched, root_report)
    assert untouched.report is None and p.utility.last_round == 1


# ---------------------------------------------------------------------------
# Meter and utility state (spec 6.1, 8)
# ---------------------------------------------------------------------------


def _advertise_and_bundle(p, round_id, meters=None, seed="adv"):
    rng = HmacDrbg.from_seed(f"{seed}/{round_id}")
    meters = list(p.hood.meters if meters is None else meters)
    adverts = {m: agg.Meter(p.hood, p.meters[m]).advertise(round_id, rng) for m in meters}
    rs, bundles = agg.Utility(p.hood, p.utility).bundles(round_id, list(adverts.values()))
    return adverts, rs, bundles


def test_meter_state_refuses_replays_and_wrong_rounds(paillier_key, encryptor):
    p = make(paillier_key, count=4, fanout=2, seed="state")
    readings = readings_for(p, "state")
    state = p.meters["m0"]
    meter = agg.Meter(p.hood, state)
    with raises_exactly(StateError, match="no accepted bundle"):
        meter.report(3, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)
    adverts, rs, bundles = _advertise_and_bundle(p, 3)
    with raises_exactly(ReplayError):
        meter.advertise(3, HmacDrbg.from_seed("again"))
    with raises_exactly(ReplayError):
        meter.advertise(2, HmacDrbg.from_seed("again"))
    with raises_exactly(StateError, match="no accepted bundle"):
        meter.report(3, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)
    meter.accept_bundle(bundles["m0"])
    with raises_exactly(ReplayError):
        meter.accept_bundle(bundles["m0"])
    with raises_exactly(StateError, match="no accepted bundle"):
        meter.report(4, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)
    meter.report(3, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)
    with raises_exactly(ReplayError):
        meter.report(3, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)
    with raises_exactly(ReplayError):
        meter.report(2, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)
    with raises_exactly(ReplayError):
        meter.advertise(3, HmacDrbg.from_seed("again"))
    assert state.epsilon is None and state.sigma is None  # the round's secrets are erased once used
    # the whole round, then unmask checks: a round not reported, and twice
    p = make(paillier_key, count=4, fanout=2, seed="state2")
    readings = readings_for(p, "state2")
    transcript = collect(p, 1, readings, encryptor)
    _, _, requests = signed_sets(p, transcript)
    later = collect(p, 2, readings, encryptor)  # every meter has now reported round 2, not round 1
    with raises_exactly(StateError, match="did not report round 1"):
        agg.Meter(p.hood, p.meters["m0"]).unmask(requests["m0"])
    _, _, requests = signed_sets(p, later)
    agg.Meter(p.hood, p.meters["m0"]).unmask(requests["m0"])
    with raises_exactly(ReplayError):
        agg.Meter(p.hood, p.meters["m0"]).unmask(requests["m0"])


def test_new_setup_closes_the_open_round(paillier_key, encryptor):
    """Spec 3.3 and 6.1, adversary: the utility (every K_i, full control of the messages) starts a new
    setup while a round is open -- the meters reported, the sets are signed, no share is released yet
    -- hoping to have the round's shares released under another directory, committee or graph.
    Joining the setup (commit_to_graph) ends the round for good: the held shares and the round's
    secrets are erased, the round counts as answered and signed, and the pair-key cache is cleared;
    the meter then refuses to unmask or sign for that round whatever directory it is asked under."""
    p = make(paillier_key, count=6, fanout=2, seed="resetup")
    hood = p.hood
    readings = readings_for(p, "resetup")
    transcript = collect(p, 1, readings, encryptor)
    utility = agg.Utility(hood, p.utility)
    rs = utility.receive(transcript.state, transcript.aggregate_reports[hood.root])
    commit_requests = utility.commit_requests(rs)
    late = hood.committee[-1]  # signs nothing before the new setup; tau of the others suffice
    signers = [m for m in hood.committee if m != late]
    assert len(signers) >= hood.committee_threshold
    utility.collect_signatures(rs, [agg.Meter(hood, p.meters[m]).sign_commit(commit_requests[m]) for m in signers])
    requests = utility.unmask_requests(rs)
    target = hood.meters[0]
    stale = {m: agg.Meter(hood, p.meters[m]) for m in hood.meters}  # objects bound to the old directory
    state = p.meters[target]
    assert state.held and state.pairwise and state.bundle_directory == hood.digest
    newer = agg.run_setup(p.utility.private_key, p.meters, hood.tree, hood.root, HmacDrbg.from_seed("resetup/2"))
    for m, s in p.meters.items():
        assert s.held == {} and s.round_secrets == {} and s.epsilon is None and s.sigma is None
        assert s.bundle == () and s.bundle_round == -1 and s.peer_mask_public == {} and s.bundle_directory is None
        assert s.last_unmasked == 1 and s.last_committed == 1 and s.pairwise == {}
    with raises_exactly(StateError, match="did not reveal its graph nonce for this directory"):
        agg.Meter(hood, state)
    key = p.utility.meter_keys[target]
    under_newer = reseal(requests[target], key, b"unmask-request", lambda body: None)
    # the round is closed as answered: a replay, before any other check, under either directory
    with raises_exactly(ReplayError, match="already answered an unmask-request for round 1"):
        agg.Meter(newer, state).unmask(under_newer)
    with raises_exactly(ReplayError, match="already answered an unmask-request for round 1"):
        stale[target].unmask(requests[target])
    late_request = reseal(commit_requests[late], p.utility.meter_keys[late], b"commit-request", lambda body: None)
    assert late in newer.committee
    with raises_exactly(ReplayError, match="already signed the sets of round 1"):
        agg.Meter(newer, p.meters[late]).sign_commit(late_request)
    with raises_exactly(ReplayError, match="already signed the sets of round 1"):
        stale[late].sign_commit(commit_requests[late])
    # the next round under the new directory runs as usual
    p2 = dataclasses.replace(p, hood=newer)
    readings = readings_for(p2, "resetup/2")
    assert run(p2, 2, readings, encryptor).result.sums == column_sums(readings)


def test_unmask_refuses_a_bundle_from_another_directory(paillier_key, encryptor, monkeypatch):
    """Spec 8.4: a meter releases shares only in the directory its round's bundle came from.  Here a
    round runs through Meter objects still bound to the old directory after the meters joined a new
    setup; the unmask-request under the new directory is refused, nothing released."""
    p = make(paillier_key, count=6, fanout=2, seed="otherdir")
    old = p.hood
    stale = {m: agg.Meter(old, p.meters[m]) for m in old.meters}
    newer = agg.run_setup(p.utility.private_key, p.meters, old.tree, old.root, HmacDrbg.from_seed("otherdir/2"))
    monkeypatch.setattr(nb, "Meter", lambda hood, state: stale[state.meter_id])
    readings = readings_for(p, "otherdir")
    transcript = collect(p, 5, readings, encryptor)
    utility = agg.Utility(old, p.utility)
    rs = utility.receive(transcript.state, transcript.aggregate_reports[old.root])
    utility.collect_signatures(rs, [stale[m].sign_commit(r) for m, r in utility.commit_requests(rs).items()])
    requests = utility.unmask_requests(rs)
    target = old.meters[1]
    state = p.meters[target]
    assert state.last_reported == 5 and state.bundle_round == 5 and state.bundle_directory == old.digest
    before = _snapshot(state)
    with raises_exactly(StateError, match="did not report round 5 in this neighbourhood"):
        agg.Meter(newer, state).unmask(requests[target])
    assert _snapshot(state) == before and state.held


# per message kind: (who reads it, the call that decodes it) -- spec 6-8
def _readers(p, utility, rs, fresh_rs):
    hood = p.hood
    member, first = hood.committee[0], hood.meters[0]
    return {
        "mask-advert": (p.utility, lambda raw: utility.bundles(2, [raw])),
        "mask-bundle": (p.meters[first], lambda raw: agg.Meter(hood, p.meters[first]).accept_bundle(raw)),
        "meter-report": (None, lambda raw: agg.MeterReport.decode(raw, hood)),
        "aggregate-report": (fresh_rs, lambda raw: utility.receive(fresh_rs, raw)),
        "commit-request": (p.meters[member], lambda raw: agg.Meter(hood, p.meters[member]).sign_commit(raw)),
        "commit-signature": (rs, lambda raw: utility.collect_signatures(rs, [raw])),
        "unmask-request": (p.meters[first], lambda raw: agg.Meter(hood, p.meters[first]).unmask(raw)),
        "unmask-response": (rs, lambda raw: utility.finish(rs, [raw])),
    }


@pytest.mark.parametrize("prefix", ["m", "meter-" + "x" * 56 + "-"])
def test_message_size_limits(paillier_key, encryptor, prefix):
    """Spec 6.1, adversary: any sender or the network, sending a message of any length.  Each kind is
    bounded by size_limit(hood, kind) before it is decoded: one byte over gives DecodeError naming the
    limit (for bytes that are not even CBOR, so no decoder ran), with the reader's state unchanged; the
    honest messages of a round fit, with ids of 1 to 64 characters."""
    meters = [f"{prefix}{i}" for i in range(8)]
    tree, root = agg.balanced_tree(meters, 3)
    p = agg.provision(paillier_key, meters, tree, root, HmacDrbg.from_seed("tests/aggregation/limits/" + prefix),
                      degree=4)
    hood = p.hood
    assert max(map(len, meters)) <= 64 and (len(meters[0]) == 64) == (prefix != "m")
    readings = readings_for(p, "limits")
    transcript = collect(p, 1, readings, encryptor)
    fresh_rs = copy.deepcopy(transcript.state)
    utility, rs, requests = signed_sets(p, transcript)
    honest = {
        "mask-advert": transcript.adverts.values(), "mask-bundle": transcript.bundles.values(),
        "meter-report": transcript.meter_reports.values(),
        "aggregate-report": transcript.aggregate_reports.values(),
        "commit-request": utility.commit_requests(rs).values(),
        "commit-signature": transcript.commit_signatures.values(),
        "unmask-request": requests.values(),
        "unmask-response": [agg.Meter(hood, p.meters[m]).unmask(r) for m, r in requests.items()],
    }
    readers = _readers(p, utility, rs, fresh_rs)
    for kind, messages in honest.items():
        limit = msg.size_limit(hood, kind)
        assert limit < msg.MAX_MESSAGE_BYTES
        assert max(map(len, messages)) <= limit, kind
        state, read = readers[kind]
        before = _snapshot(state) if state is not None else None
        with raises_exactly(DecodeError, match=f"{kind}: {limit + 1} bytes exceeds the limit of {limit}"):
            read(b"\xff" * (limit + 1))
        with raises_exactly(DecodeError) as info:  # at the limit the decoder runs (and refuses a break byte)
            read(b"\xff" * limit)
        assert "exceeds" not in str(info.value)
        if state is not None:
            assert _snapshot(state) == before


def test_aggregator_bounds_a_meter_report_by_its_own_limit(paillier_key, encryptor):
    """Spec 6.1: the aggregator of meters bounds their reports by the meter-report limit before decoding."""
    p = make(paillier_key, count=6, fanout=6, seed="limits-agg")
    hood = p.hood
    limit = msg.size_limit(hood, "meter-report")
    assert msg.size_limit(hood, "aggregate-report") > limit + 1
    state = agg.AggregatorState(hood.root, p.aggregators[hood.root].key)
    with raises_exactly(DecodeError, match=f"{limit + 1} bytes exceeds the limit of {limit}"):
        agg.Aggregator(hood, state).aggregate(1, [b"\xff" * (limit + 1)])


def _forged_request(p, rs, meter, fields):
    """An unmask-request for ``meter`` built from the honest one, fields replaced, MAC'd with K_meter."""
    honest = agg.Utility(p.hood, p.utility).unmask_requests(rs)[meter]
    return reseal(honest, p.utility.meter_keys[meter], b"unmask-request", lambda body: body.update(fields))


def _committee_signatures(p, round_id, reporting_map, missing_map, members=None):
    """Signatures of the named committee members on these sets (what a corrupt committee could give)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    hood = p.hood
    members = list(hood.committee if members is None else members)
    message = commit_message(hood.group_id, hood.digest, round_id, reporting_map, missing_map)
    return members, b"".join(Ed25519PrivateKey.from_private_bytes(p.meters[m].signing_seed).sign(message)
                             for m in members)


def test_unmask_request_checks(paillier_key, encryptor):
    """Spec 8.4: each check of the unmask-request, with its exact error; a refused request changes nothing."""
    p = make(paillier_key, count=10, fanout=3, seed="unmask", degree=6, threshold=4, committee_size=7)
    hood = p.hood
    dropped, absent = [hood.meters[-1]], hood.meters[-2]  # advertised but did not report; took no part
    readings = readings_for(p, "unmask", {dropped[0], absent})
    transcript = collect(p, 1, readings, encryptor, dropped=dropped)
    utility, rs, requests = signed_sets(p, transcript)
    m0, m1 = hood.meters[0], hood.meters[1]
    target = next(m for m in rs.reporting if absent in hood.neighbours(m) and m != m0)
    meter = agg.Meter(hood, p.meters[target])
    before = _snapshot(p.meters[target])
    tau = hood.committee_threshold
    honest = cbor.decode(requests[target])
    signers, sigs = honest[6], honest[7]
    # spec 8.3: a request carries tau signatures, the first signers in committee order
    assert len(rs.signatures) == len(hood.committee) > tau
    assert signers == [m for m in hood.committee if m in rs.signatures][:tau]
    assert sigs == b"".join(rs.signatures[m] for m in signers)
    width = hood.bitmap_bytes
    pad = 8 * width - len(hood.meters)
    assert pad > 0

    def bad(fields):
        return _forged_request(p, rs, target, fields)

    cases = [
        (reseal(requests[m0], p.utility.meter_keys[target], b"unmask-request", lambda b: None),
         VerificationError, "addressed"),
        (requests[m1] if target != m1 else requests[m0], VerificationError, "MAC"),
        (requests[target][:-1] + bytes([requests[target][-1] ^ 1]), VerificationError, "MAC"),
        (bad({4: rs.reporting_map + b"\xff"}), DecodeError, "bitmap must be"),
        (bad({5: rs.missing_map[:-1]}), DecodeError, "bitmap must be"),
        (bad({4: rs.reporting_map[:-1] + bytes([rs.reporting_map[-1] | 1])}), DecodeError, "padding"),
        (bad({5: hood.bitmap(rs.missing + (m0,))}), DecodeError, "both reporting and missing"),
        (bad({4: hood.bitmap([target] + [m for m in rs.reporting if m != target][:hood.min_reporting - 2])}),
         ConsistencyError, "below the minimum"),
        (bad({4: hood.bitmap([m for m in rs.reporting if m != target]),
                5: hood.bitmap(rs.missing + (target,))}), ConsistencyError, "do not list it as reporting"),
        (bad({6: signers[:tau - 1], 7: sigs[:SIGNATURE_BYTES * (tau - 1)]}), ConsistencyError,
         f"{tau - 1} committee signatures"),
        (bad({6: signers[1:] + signers[:1], 7: sigs}), ConsistencyError, "did not sign"),
        (bad({6: signers + signers[:1], 7: sigs + sigs[:SIGNATURE_BYTES]}), ConsistencyError, "distinct"),
        (bad({7: sigs[:-1] + bytes([sigs[-1] ^ 1])}), ConsistencyError, "did not sign"),
        (bad({7: sigs[:-1]}), DecodeError, "signatures"),
        (bad({8: bytes(len(cbor.decode(requests[target])[8]))}), ConsistencyError, "did not confirm"),
        (bad({2: 2}), StateError, "did not report round 2"),
    ]
    outsider = next(m for m in hood.meters if m not in hood.committee)
    cases.append((bad({6: signers[:-1] + [outsider], 7: sigs}), ConsistencyError, "committee members"))
    # a neighbour listed as taking part although it did not advertise to the target, and the reverse
    cases.append((bad({5: hood.bitmap(rs.missing + (absent,))}), ConsistencyError,
                  f"list neighbour {absent} as taking part, but it did not advertise"))
    peer = next(x for x in hood.neighbours(target) if x in rs.reporting and x != m0)
    r_map = hood.bitmap([m for m in rs.reporting if m != peer])
    cases.append((bad({4: r_map}), ConsistencyError, f"list neighbour {peer} as absent, but it advertised"))
    for raw, error, match in cases:
        with raises_exactly(error, match=match):
            meter.unmask(raw)
        assert _snapshot(p.meters[target]) == before
    # sets that the whole committee signed but which leave out a neighbour in the target's bundle
    lie_r = hood.bitmap([m for m in rs.reporting if m != peer])
    members, lie_sigs = _committee_signatures(p, 1, lie_r, rs.missing_map)
    confirmations = msg.chunks(cbor.decode(requests[target])[8], CONFIRM_BYTES,
                               sum(x in rs.reporting for x in rs.bundles[target]), "confirmations")
    kept = [c for c, x in zip(confirmations, [x for x in rs.bundles[target] if x in rs.reporting]) if x != peer]
    lie = bad({4: lie_r, 6: members, 7: lie_sigs, 8: b"".join(kept)})
    with raises_exactly(ConsistencyError, match=f"list neighbour {peer} as absent"):
        meter.unmask(lie)
    assert _snapshot(p.meters[target]) == before
    # and after all that, the honest request is answered and the round releases
    responses = [agg.Meter(hood, p.meters[m]).unmask(r) for m, r in requests.items()]
    with raises_exactly(ReplayError, match="two"):
        utility.finish(rs, responses + responses[:1])
    assert utility.finish(rs, responses).sums == column_sums(readings)
    with raises_exactly(ReplayError):
        utility.bundles(1, list(transcript.adverts.values()))


def _reseal_bundle(p, raw, meter, change):
    return reseal(raw, p.utility.meter_keys[meter], b"mask-bundle", change)


def test_bundle_checks(paillier_key):
    """Spec 6.3: the meter checks its bundle before it keeps anything from it."""
    p = make(paillier_key, count=10, fanout=3, seed="bundle", degree=4, threshold=3)
    hood = p.hood
    target = next(m for m in hood.meters if len(hood.neighbours(m)) == 4)
    adverts, rs, bundles = _advertise_and_bundle(p, 1)
    raw = bundles[target]
    body = cbor.decode(raw)
    peers, keys, boxes = body[4], body[5], body[6]
    assert peers == list(hood.neighbours(target))
    key_of = dict(zip(peers, msg.chunks(keys, KEY_BYTES, len(peers), "keys")))
    box_of = dict(zip(peers, msg.chunks(boxes, agg.BOX_BYTES, len(peers), "boxes")))
    stranger = next(m for m in hood.meters if m not in peers and m != target)

    def listing(names, key=None, box=None):
        return lambda b: b.update({4: names, 5: b"".join((key or key_of).get(x, bytes(KEY_BYTES)) for x in names),
                                   6: b"".join((box or box_of).get(x, bytes(agg.BOX_BYTES)) for x in names)})

    flipped_box = {**box_of, peers[0]: _flip(box_of[peers[0]], 3, 1)}
    other_key = {**key_of, peers[0]: key_of[peers[1]]}
    cases = [
        (_reseal_bundle(p, raw, target, listing(peers[:-1] + [stranger])), VerificationError, "neighbours"),
        (_reseal_bundle(p, raw, target, listing(peers[::-1])), VerificationError, "neighbour order"),
        (_reseal_bundle(p, raw, target, listing(peers[:1] + peers[:-1])), VerificationError, "distinct"),
        (_reseal_bundle(p, raw, target, listing(peers, box=flipped_box)), VerificationError,
         f"box from {peers[0]} does not open"),
        (_reseal_bundle(p, raw, target, listing(peers, key=other_key)), VerificationError,
         f"box from {peers[0]} does not open"),
        (_reseal_bundle(p, raw, target, listing(peers[:2])), RecoveryError, "only 2 neighbours"),
        (_reseal_bundle(p, raw, target, lambda b: b.update({5: b[5][:-1]})), DecodeError, "mask keys"),
        (_reseal_bundle(p, raw, target, lambda b: b.update({2: 2})), StateError, "no open advertisement"),
        (_reseal_bundle(p, bundles[peers[0]], target, lambda b: None), VerificationError, "addressed"),
        (bundles[peers[0]], VerificationError, "MAC"),
    ]
    meter = agg.Meter(hood, p.meters[target])
    before = _snapshot(p.meters[target])
    for forged, error, match in cases:
        with raises_exactly(error, match=match):
            meter.accept_bundle(forged)
        assert _snapshot(p.meters[target]) == before
    assert meter.accept_bundle(raw) == tuple(peers)


def _lying_share_round(p, readings, encryptor, liar, victim, silent=()):
    """A round where ``liar`` releases a wrong share of ``victim``'s self-mask seed."""
    transcript = collect(p, 1, readings, encryptor)
    utility, rs, requests = signed_sets(p, transcript)
    at = rs.bundles[liar].index(victim)
    responses = []
    for meter, request in requests.items():
        if meter in silent:
            continue
        raw = agg.Meter(p.hood, p.meters[meter]).unmask(request)
        if meter == liar:
            raw = reseal(raw, p.utility.meter_keys[meter], b"unmask-response",
                         lambda body: body.update({4: body[4][:32 * at] + bytes(32) + body[4][32 * at + 32:]}))
        responses.append(raw)
    return utility, rs, responses


def test_bad_share_is_detected_when_spare_shares_exist(paillier_key, encryptor):
    """Spec 8.5 step 3: with more than t shares of a secret the utility checks
    they lie on one polynomial (VerificationError); with exactly t a bad share
    gives a wrong mask and the range or tag check fails (AggregateMismatchError)."""
    p = make(paillier_key, count=8, fanout=3, seed="badshare", degree=4, threshold=3)
    hood = p.hood
    victim = next(m for m in hood.meters if len(hood.neighbours(m)) > hood.threshold)
    liar = hood.neighbours(victim)[0]
    readings = readings_for(p, "badshare")
    utility, rs, responses = _lying_share_round(p, readings, encryptor, liar, victim)
    with raises_exactly(VerificationError, match="do not lie on one polynomial"):
        utility.finish(rs, responses)
    assert p.utility.last_round == -1
    # the same round with all but t of the victim's neighbours silent
    p = make(paillier_key, count=8, fanout=3, seed="badshare", degree=4, threshold=3)
    silent = hood.neighbours(victim)[hood.threshold:]
    assert failure_by_the_rule(hood, hood.meters, [], silent) is None
    utility, rs, responses = _lying_share_round(p, readings, encryptor, liar, victim, silent)
    with raises_exactly(AggregateMismatchError):
        utility.finish(rs, responses)


def test_readings_out_of_range(paillier_key, encryptor):
    p = make(paillier_key, count=4, fanout=2, seed="range", slots=2, value_bits=8)
    _, _, bundles = _advertise_and_bundle(p, 1)
    meter = agg.Meter(p.hood, p.meters["m1"])
    meter.accept_bundle(bundles["m1"])
    before = _snapshot(p.meters["m1"])
    for readings, error in (([256, 0], EncodingOverflowError), ([-1, 0], EncodingOverflowError),
                            ([True, 0], EncodingOverflowError), ([1], ParameterError), ([1, 2, 3], ParameterError)):
        with raises_exactly(error):
            meter.report(1, readings, encryptor=encryptor)
        assert _snapshot(p.meters["m1"]) == before
    with raises_exactly(ParameterError):
        meter.report(-1, [1, 1], encryptor=encryptor)
    meter.report(1, [255, 0], HmacDrbg.from_seed("ok"), encryptor=encryptor)


def _hood_kwargs(hood):
    return dict(group_id=hood.group_id, public_key=hood.public_key, meter_public=dict(hood.meter_public),
                meter_verify=dict(hood.meter_verify), commitments=dict(hood.commitments),
                reveals=dict(hood.reveals), tree=dict(hood.tree), root=hood.root)


@pytest.mark.parametrize("change, match", [
    (lambda kw: kw.update(root="nope"), "root"),
    (lambda kw: kw.update(tree={**kw["tree"], "agg-x": ("m0",)}), "two parents"),
    (lambda kw: kw.update(tree={**kw["tree"], "agg-x": ()}), "no children"),
    (lambda kw: kw.update(tree={k: tuple(c for c in v if c != "m3") for k, v in kw["tree"].items()}),
     "exactly once"),
    (lambda kw: kw.update(degree=3), "even"),
    (lambda kw: kw.update(degree=66), "even"),
    (lambda kw: kw.update(threshold=0), "threshold"),
    (lambda kw: kw.update(threshold=6), "threshold"),
    (lambda kw: kw.update(threshold=2), "exceed half the effective degree 5"),
    (lambda kw: kw.update(min_reporting=1), "min_reporting"),
    (lambda kw: kw.update(min_reporting=7), "min_reporting"),
    (lambda kw: kw.update(committee_size=0), "committee_size"),
    (lambda kw: kw.update(committee_size=7), "committee_size"),
    (lambda kw: kw.update(committee_threshold=3), "committee_threshold"),
    (lambda kw: kw.update(committee_threshold=4), "exceed two thirds"),
    (lambda kw: kw.update(committee_threshold=7), "committee_threshold"),
    (lambda kw: kw.update(group_id=b""), "group_id"),
    (lambda kw: kw.update(group_id=bytes(65)), "group_id"),
    (lambda kw: kw.update(public_key=b"key"), "public_key"),
    (lambda kw: kw.update(slots=10_000), "at most"),
    (lambda kw: kw.update(slots=0), "slots"),
    (lambda kw: kw.update(meter_public={**kw["meter_public"], "bad id!": bytes(32)}), "meter id"),
    (lambda kw: kw.update(meter_public={**kw["meter_public"], "m0": bytes(31)}), "32 bytes"),
    (lambda kw: kw.update(meter_verify={k: v for k, v in kw["meter_verify"].items() if k != "m0"}), "Ed25519"),
    (lambda kw: kw.update(commitments={**kw["commitments"], "m9": bytes(32)}), "exactly the meters"),
    (lambda kw: kw.update(meter_public={"m0": kw["meter_public"]["m0"]}), "2 to"),
    (lambda kw: kw.update(tree={**kw["tree"], "m0": ("m1",)}), "both a meter and an aggregator"),
    (lambda kw: kw.update(threshold=4, degree=2), "threshold"),
    (lambda kw: kw.update(noise="high"), "NoiseShareConfig"),
])
def test_neighbourhood_validation(paillier_key, change, match):
    p = make(paillier_key, count=6, fanout=2, seed="valid")
    kw = _hood_kwargs(p.hood)
    agg.Neighbourhood(**kw)  # the unchanged description is accepted
    change(kw)
    with raises_exactly(ParameterError, match=match):
        agg.Neighbourhood(**kw)


def test_threshold_ranges(paillier_key):
    """Spec 3.1: k'/2 < t <= k' with k' = min(k, N - 1) (then a meter's two secrets never both reach t
    through its honest neighbours' shares), and 2 kappa / 3 < tau <= kappa; the defaults lie inside."""
    p = make(paillier_key, count=6, fanout=2, seed="valid")
    kw = _hood_kwargs(p.hood)
    for degree in (2, 4, 6):
        k = min(degree, 5)
        assert k // 2 < agg.Neighbourhood(**kw, degree=degree).threshold <= k
        for t in range(0, k + 2):
            if k // 2 < t <= k:
                assert agg.Neighbourhood(**kw, degree=degree, threshold=t).threshold == t
            else:
                with raises_exactly(ParameterError, match="threshold must exceed half"):
                    agg.Neighbourhood(**kw, degree=degree, threshold=t)
    for kappa in range(1, 7):
        assert 2 * kappa // 3 < agg.Neighbourhood(**kw, committee_size=kappa).committee_threshold <= kappa
        for tau in range(0, kappa + 2):
            if 2 * kappa // 3 < tau <= kappa:
                hood = agg.Neighbourhood(**kw, committee_size=kappa, committee_threshold=tau)
                assert (len(hood.committee), hood.committee_threshold) == (kappa, tau)
            else:
                with raises_exactly(ParameterError, match="committee_threshold must exceed two thirds"):
                    agg.Neighbourhood(**kw, committee_size=kappa, committee_threshold=tau)


def _chain(kw, levels):
    """The directory with its meters below a chain of ``levels`` aggregators (c-0 the root)."""
    meters = sorted(kw["meter_public"])
    tree = {f"c-{i}": (f"c-{i + 1}",) for i in range(levels - 1)}
    tree[f"c-{levels - 1}"] = tuple(meters)
    return {**kw, "tree": tree, "root": "c-0"}


def test_tree_deeper_than_the_limit_is_refused(paillier_key):
    """Spec 3.1: at most MAX_TREE_DEPTH levels of aggregators; the tree is walked without recursion."""
    from protocols.aggregation.hood import MAX_TREE_DEPTH

    assert MAX_TREE_DEPTH == 64
    kw = _hood_kwargs(make(paillier_key, count=6, fanout=2, seed="valid").hood)
    for levels in (MAX_TREE_DEPTH + 1, 1000):
        with raises_exactly(ParameterError, match=f"deeper than {MAX_TREE_DEPTH}"):
            agg.Neighbourhood(**_chain(kw, levels))
    hood = agg.Neighbourhood(**_chain(kw, MAX_TREE_DEPTH - 1))
    assert hood.meters_below("c-0") == set(hood.meters)
    assert hood.parent("c-1") == "c-0" and hood.parent(hood.meters[0]) == f"c-{MAX_TREE_DEPTH - 2}"


def test_tree_of_exactly_the_depth_limit_is_accepted(paillier_key):
    from protocols.aggregation.hood import MAX_TREE_DEPTH

    kw = _hood_kwargs(make(paillier_key, count=6, fanout=2, seed="valid").hood)
    hood = agg.Neighbourhood(**_chain(kw, MAX_TREE_DEPTH))
    assert hood.meters_below("c-0") == set(hood.meters)


def test_wrong_key_utility_is_refused(paillier_key, other_paillier_key):
    p = make(paillier_key, count=4, fanout=2, seed="wrongkey")
    state = agg.UtilityState(other_paillier_key, p.utility.meter_keys, p.utility.aggregator_keys,
                             p.utility.tag_key)
    with raises_exactly(ParameterError):
        agg.Utility(p.hood, state)


def test_report_from_wrong_root_or_with_bad_mac(paillier_key, encryptor):
    p = make(paillier_key, count=9, fanout=3, seed="root")
    readings = readings_for(p, "root")
    transcript = collect(p, 1, readings, encryptor)
    rs = transcript.state
    before = _snapshot(rs)
    utility = agg.Utility(p.hood, p.utility)
    root_report = transcript.aggregate_reports[p.hood.root]
    with raises_exactly(InjectedContributionError, match="root"):
        utility.receive(rs, transcript.aggregate_reports["agg-1-0"])
    forged = reseal(root_report, bytes(32), b"aggregate-report", lambda body: None)
    with raises_exactly(VerificationError, match="MAC"):
        utility.receive(rs, forged)
    with raises_exactly(DecodeError):
        utility.receive(rs, root_report[:-1])
    with raises_exactly(DecodeError):
        utility.receive(rs, b"not cbor")
    with raises_exactly(DecodeError):
        utility.receive(rs, transcript.meter_reports["m0"])
    # a root that covers a meter the utility sent no bundle
    other = collect(make(paillier_key, count=9, fanout=3, seed="root"), 1,
                    {m: r for m, r in readings.items() if m != "m0"}, encryptor)
    assert "m0" not in other.state.bundles
    with raises_exactly(InjectedContributionError, match="no bundle"):
        utility.receive(other.state, root_report)
    assert _snapshot(rs) == before
    assert utility.receive(rs, root_report).reporting == p.hood.meters


def test_balanced_tree_shapes():
    meters = [f"m{i}" for i in range(10)]
    tree, root = agg.balanced_tree(meters, 3)
    assert root == "agg-3-0"
    assert tree["agg-1-3"] == ("m9",)
    assert tree[root] == ("agg-2-0", "agg-2-1")
    with raises_exactly(ParameterError):
        agg.balanced_tree(meters, 1)
    with raises_exactly(ParameterError):
        agg.balanced_tree([], 2)


# ---------------------------------------------------------------------------
# Setup: the directory, the graph commit-reveal, the committee (spec 3)
# ---------------------------------------------------------------------------

DOMAIN = b"usapp-aggregation-v2"


def _lp(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _spec_graph(hood):
    """Spec 3.3-3.4 from the text (and Neighbourhood._graph's docstring): digest, seed, the circulant's
    placement and offsets, neighbour lists, committee.  Returns (digest, seed, graph, committee, offsets)."""
    order = sorted(hood.meter_public, key=lambda m: m.encode())
    n = hood.public_key.n
    assert hood.noise is None  # (spec 3.2 field 7 is null without noise)
    directory = {
        1: hood.group_id, 2: n.to_bytes((n.bit_length() + 7) // 8, "big"),
        3: [[m, hood.meter_public[m], hood.meter_verify[m], hood.commitments[m]] for m in order],
        4: [[a, list(hood.tree[a])] for a in sorted(hood.tree, key=lambda a: a.encode())], 5: hood.root,
        6: [hood.slots, hood.value_bits, hood.degree, hood.threshold, hood.min_reporting, hood.committee_size,
            hood.committee_threshold],
        7: None,
    }
    digest = hashlib.sha256(DOMAIN + b"directory" + cbor.encode(directory)).digest()
    for m in order:
        assert hashlib.sha256(DOMAIN + b"graph-commit" + _lp(m.encode()) + hood.reveals[m]).digest() \
            == hood.commitments[m]
    seed = hashlib.sha256(DOMAIN + b"graph-seed" + digest + b"".join(hood.reveals[m] for m in order)).digest()

    def rank(label, index, m):
        return hashlib.sha256(DOMAIN + _lp(label) + seed + bytes([index]) + _lp(m.encode())).digest()

    n = len(order)
    offsets = []
    if n - 1 <= hood.degree:
        graph = {m: tuple(x for x in order if x != m) for m in order}
    else:
        placed = sorted(order, key=lambda m: rank(b"order", 0, m))
        span = -(-n // 2) - 1  # ceil(N/2) - 1
        for c in range(1, hood.degree // 2 + 1):
            for a in itertools.count():
                h = hashlib.sha256(DOMAIN + b"offset" + seed + c.to_bytes(1, "big") + a.to_bytes(4, "big")).digest()
                o = 1 + int.from_bytes(h, "big") % span
                if o not in offsets:
                    offsets.append(o)
                    break
        graph = {}
        for p, m in enumerate(placed):
            graph[m] = tuple(x for o in offsets for x in (placed[(p - o) % n], placed[(p + o) % n]))
    committee = tuple(sorted(order, key=lambda m: rank(b"committee", 0, m))[:hood.committee_size])
    return digest, seed, graph, committee, tuple(offsets)


def test_graph_is_symmetric_and_derived_from_the_reveals(paillier_key):
    """Spec 3.3-3.4: the graph equals a recomputation from the spec's text (the seeded circulant: the
    placement by rank "order", the offsets drawn with their retries); it is symmetric, loop-free and
    exactly k'-regular, complete when N - 1 <= k, and a function of the directory and every revealed
    nonce (any one nonce changes it)."""
    p = make(paillier_key, count=15, fanout=4, seed="graph", degree=6, threshold=4)
    hood = p.hood
    digest, seed, graph, committee, offsets = _spec_graph(hood)
    assert hood.digest == digest and hood.seed == seed and hood.committee == committee
    assert hood.offsets == offsets and len(offsets) == 3 and len(set(offsets)) == 3
    assert all(1 <= o <= 15 // 2 for o in offsets)  # below N/2: the k places are distinct
    for meter in hood.meters:
        peers = hood.neighbours(meter)
        assert peers == graph[meter]
        assert meter not in peers and len(set(peers)) == len(peers) == 6  # exactly k neighbours
        for peer in peers:
            assert meter in hood.neighbours(peer)
    assert hood.meters == tuple(sorted(hood.meters, key=str.encode))
    assert hood.max_missing == min(6 - hood.threshold, 15 - hood.min_reporting)
    for meter in hood.meters:
        nonce = bytes(31) + bytes([hood.meters.index(meter)])
        changed = dataclasses.replace(hood, commitments={**hood.commitments, meter: agg.graph_commitment(meter, nonce)},
                                      reveals={**hood.reveals, meter: nonce})
        assert any(changed.neighbours(m) != hood.neighbours(m) for m in hood.meters)
        spec = _spec_graph(changed)
        assert spec[2] == {m: changed.neighbours(m) for m in changed.meters} and spec[4] == changed.offsets
    small = make(paillier_key, count=7, fanout=3, seed="graph-small", degree=6)
    assert all(small.hood.neighbours(m) == tuple(x for x in small.hood.meters if x != m) for m in small.hood.meters)
    assert _spec_graph(small.hood)[2] == {m: small.hood.neighbours(m) for m in small.hood.meters}
    assert small.hood.offsets == ()
    # span ceil(8/2) - 1 = 3: the offsets are 1, 2, 3 in some order; with this seed o_2 and o_3 both
    # need a retry (at a = 0 they repeat o_1 = 2 and o_2 = 3), so the retry rule fixes the order (2, 3, 1)
    tight = make(paillier_key, count=8, fanout=3, seed="graph-tight/2", degree=6).hood
    assert tight.offsets == (2, 3, 1) and _spec_graph(tight)[4] == tight.offsets
    assert _spec_graph(tight)[2] == {m: tight.neighbours(m) for m in tight.meters}
    draft = dataclasses.replace(hood, reveals=None)
    with raises_exactly(StateError, match="not finished"):
        draft.neighbours(hood.meters[0])
    assert draft.offsets == ()


@settings(SLOW, max_examples=60)
@given(count=st.integers(2, 70), degree=st.sampled_from([2, 4, 6, 8, 16, 32]), data=st.data())
def test_graph_is_exactly_regular_at_every_size(paillier_key, count, degree, data):
    """Spec 3.4: for every N and k the graph is the spec's circulant (offsets retried until distinct:
    small N makes repeats likely), symmetric and exactly k'-regular, so no setup leaves a meter with
    fewer than t neighbours."""
    k = min(degree, count - 1)
    meters = [f"m{i}" for i in range(count)]
    tree, root = agg.balanced_tree(meters, 8)
    nonce = data.draw(st.binary(min_size=1, max_size=8), label="seed")
    hood = agg.provision(paillier_key, meters, tree, root, HmacDrbg.from_seed(b"graph-size/" + nonce),
                         degree=degree).hood
    _, _, graph, _, offsets = _spec_graph(hood)
    assert hood.offsets == offsets
    for meter in hood.meters:
        peers = hood.neighbours(meter)
        assert peers == graph[meter] and len(set(peers)) == len(peers) == k and meter not in peers
        assert all(meter in hood.neighbours(peer) for peer in peers)


def test_setup_limits_and_reveal_checks(paillier_key):
    """Spec 3.3: at most MAX_SETUPS commitments; a nonce is revealed only for
    a directory that lists the meter as it committed, once, with a minimum
    reporting set at or above its floor; a bad reveal is named."""
    p = make(paillier_key, count=6, fanout=3, seed="setup")
    hood, states = p.hood, p.meters
    m0 = hood.meters[0]
    key = p.utility.private_key
    # two more setups (the provision made the first), then no more
    for _ in range(agg.MAX_SETUPS - 1):
        newer = agg.run_setup(key, states, hood.tree, hood.root, HmacDrbg.from_seed("setup/again"))
    with raises_exactly(StateError, match=f"{agg.MAX_SETUPS} setups"):
        agg.commit_to_graph(states[m0], HmacDrbg.from_seed("setup/4th"))
    with raises_exactly(StateError, match="did not reveal"):
        agg.Meter(hood, states[m0])  # it revealed its nonce for the newest directory, not this one
    agg.Meter(newer, states[m0])
    # fresh meters for the reveal checks
    p = make(paillier_key, count=6, fanout=3, seed="setup2")
    states, tree, root = p.meters, p.hood.tree, p.hood.root
    commitments = {m: agg.commit_to_graph(states[m], HmacDrbg.from_seed(f"setup2/{m}")) for m in states}
    draft = agg.draft_directory(key, states, commitments, tree, root, b"neighbourhood")
    assert draft.reveals is None and draft.committee == ()
    wrong_commitment = agg.draft_directory(key, states, {**commitments, m0: bytes(32)}, tree, root, b"neighbourhood")
    with raises_exactly(VerificationError, match=m0):
        agg.reveal_graph_nonce(states[m0], wrong_commitment)
    unlisted = {**p.hood.tree, p.hood.parent(m0): tuple(c for c in p.hood.tree[p.hood.parent(m0)] if c != m0)}
    without = agg.draft_directory(key, {m: s for m, s in states.items() if m != m0},
                                  {m: c for m, c in commitments.items() if m != m0}, unlisted, root, b"neighbourhood")
    with raises_exactly(VerificationError, match=m0):
        agg.reveal_graph_nonce(states[m0], without)
    other = hood.meters[1]
    swapped = dataclasses.replace(draft, meter_public={**draft.meter_public, m0: draft.meter_public[other]})
    with raises_exactly(VerificationError, match=m0):
        agg.reveal_graph_nonce(states[m0], swapped)
    swapped = dataclasses.replace(draft, meter_verify={**draft.meter_verify, m0: draft.meter_verify[other]})
    with raises_exactly(VerificationError, match=m0):
        agg.reveal_graph_nonce(states[m0], swapped)
    states[m0].min_reporting_floor = 4
    with raises_exactly(ConsistencyError, match="floor"):
        agg.reveal_graph_nonce(states[m0], draft)  # the default minimum for 6 meters is 3
    assert states[m0].directory is None
    states[m0].min_reporting_floor = 2
    reveals = {m: agg.reveal_graph_nonce(states[m], draft) for m in draft.meters}
    assert agg.reveal_graph_nonce(states[m0], draft) == reveals[m0]  # the same directory again: the same nonce
    with raises_exactly(ReplayError):
        agg.reveal_graph_nonce(states[m0], dataclasses.replace(draft, min_reporting=4))
    with raises_exactly(VerificationError, match=other):
        dataclasses.replace(draft, reveals={**reveals, other: bytes(32)})
    with raises_exactly(VerificationError, match=other):
        dataclasses.replace(draft, reveals={m: v for m, v in reveals.items() if m != other})
    with raises_exactly(VerificationError, match="outside"):
        dataclasses.replace(draft, reveals={**reveals, "m99": bytes(32)})
    final = dataclasses.replace(draft, reveals=reveals)
    assert agg.Meter(final, states[m0]).hood is final
    fresh = agg.MeterState("mz", bytes(32), bytes(32), bytes(range(32)), bytes(range(1, 33)))
    with raises_exactly(StateError, match="no pending"):
        agg.reveal_graph_nonce(fresh, draft)


def test_reveal_checks_the_meter_policy_floors(paillier_key):
    """Spec 3.3 step 3.4, adversary: the utility drafting a directory weaker than a meter's policy (a
    sparse graph, a small committee, no noise).  The meter reveals nothing for it (ConsistencyError,
    no directory recorded) and still reveals for a directory that meets its floors; each floor is
    capped at what N allows."""
    p = make(paillier_key, count=6, fanout=3, seed="floors")
    key, states, tree, root = p.utility.private_key, p.meters, p.hood.tree, p.hood.root
    m0 = p.hood.meters[0]
    commitments = {m: agg.commit_to_graph(states[m], HmacDrbg.from_seed(f"floors/{m}")) for m in states}

    def draft(**options):
        return agg.draft_directory(key, states, commitments, tree, root, b"neighbourhood", **options)

    state = states[m0]
    state.degree_floor, state.committee_floor, state.require_noise = 6, 6, True
    cases = [
        (draft(degree=4, noise=_noise(PrivacyLevel.LOW, 3), value_bits=8), "degree 4 is below this meter's floor 5"),
        (draft(committee_size=5, noise=_noise(PrivacyLevel.LOW, 3), value_bits=8),
         "committee 5 is below this meter's floor 6"),
        (draft(), "adds no noise"),
    ]
    for directory, match in cases:
        with raises_exactly(ConsistencyError, match=match):
            agg.reveal_graph_nonce(state, directory)
        assert state.directory is None
    state.degree_floor, state.committee_floor = 100, 1000  # capped at N - 1 = 5 and N = 6
    good = draft(noise=_noise(PrivacyLevel.LOW, 3), value_bits=8)
    assert agg.reveal_graph_nonce(state, good) == agg.reveal_graph_nonce(state, good)
    assert state.directory == good.digest
    with raises_exactly(ConsistencyError, match="degree 2 is below this meter's floor 4"):
        make(paillier_key, count=6, fanout=3, seed="floors2", degree=2, floors={"degree_floor": 4})
    with raises_exactly(ParameterError, match="unknown meter policy field 'degre_floor'"):
        make(paillier_key, count=6, fanout=3, seed="floors3", floors={"degre_floor": 4})


def test_committee_is_seeded_and_signs_once(paillier_key, encryptor):
    """Spec 3.5 and 8.2: the committee is the first kappa meters in the seeded
    order; a member signs the sets of a round once, only if |R| >= min_reporting;
    the utility needs tau signatures; up to kappa - tau absent members do not stop a round."""
    big = make(paillier_key, count=40, fanout=8, seed="committee-big")
    assert len(big.hood.committee) == 32 and big.hood.committee_threshold == 22
    assert big.hood.committee == _spec_graph(big.hood)[3]
    assert big.hood.offsets == _spec_graph(big.hood)[4]
    p = make(paillier_key, count=8, fanout=4, seed="committee", degree=4, threshold=3, committee_size=5)
    hood = p.hood
    assert hood.committee == _spec_graph(hood)[3] and hood.committee_threshold == 4
    outsider = next(m for m in hood.meters if m not in hood.committee)
    readings = readings_for(p, "committee")
    transcript = collect(p, 1, readings, encryptor)
    utility = agg.Utility(hood, p.utility)
    rs = utility.receive(transcript.state, transcript.aggregate_reports[hood.root])
    requests = utility.commit_requests(rs)
    assert set(requests) == set(hood.committee)
    member = hood.committee[0]
    with raises_exactly(StateError, match="not on the committee"):
        agg.Meter(hood, p.meters[outsider]).sign_commit(requests[member])
    with raises_exactly(VerificationError, match="MAC"):
        agg.Meter(hood, p.meters[hood.committee[1]]).sign_commit(requests[member])
    few = reseal(requests[member], p.utility.meter_keys[member], b"commit-request",
                 lambda body: body.update({4: hood.bitmap(hood.meters[:hood.min_reporting - 1])}))
    with raises_exactly(ConsistencyError, match="below the minimum"):
        agg.Meter(hood, p.meters[member]).sign_commit(few)
    answers = {m: agg.Meter(hood, p.meters[m]).sign_commit(r) for m, r in requests.items()}
    with raises_exactly(ReplayError):
        agg.Meter(hood, p.meters[member]).sign_commit(requests[member])
    other = reseal(requests[member], p.utility.meter_keys[member], b"commit-request",
                   lambda body: body.update({5: hood.bitmap([hood.meters[0]]),
                                             4: hood.bitmap(hood.meters[1:])}))
    with raises_exactly(ReplayError):
        agg.Meter(hood, p.meters[member]).sign_commit(other)  # other sets for the same round
    message = commit_message(hood.group_id, hood.digest, 1, rs.reporting_map, rs.missing_map)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    for m, raw in answers.items():
        Ed25519PublicKey.from_public_bytes(hood.meter_verify[m]).verify(cbor.decode(raw)[4], message)
    tau = hood.committee_threshold
    with raises_exactly(RecoveryError, match=f"{tau} needed"):
        utility.collect_signatures(rs, list(answers.values())[:tau - 1])
    with raises_exactly(ConsistencyError):
        utility.unmask_requests(rs)
    # a round with kappa - tau members absent still releases; one more and it cannot
    p = make(paillier_key, count=8, fanout=4, seed="committee2", degree=4, threshold=3, committee_size=5)
    readings = readings_for(p, "committee2")
    absent = p.hood.committee[:5 - 4]
    assert run(p, 1, readings, encryptor, absent_committee=absent).result.sums == column_sums(readings)
    with raises_exactly(RecoveryError, match="committee signatures"):
        run(p, 2, readings, encryptor, absent_committee=p.hood.committee[:2])


# ---------------------------------------------------------------------------
# A corrupt meter's keys (spec 3.2, 6.3); the driver
# ---------------------------------------------------------------------------


_P25519 = (1 << 255) - 19
LOW_ORDER_KEYS = [u.to_bytes(KEY_BYTES, "little") for u in (
    0, 1, _P25519 - 1, _P25519, _P25519 + 1, 1 << 255,
    325606250916557431795983626356110631294008115727848805560023387167927233504,  # order 8
    39382357235489614581723060781553021112529911719440698176882885853963445705823,  # order 8
)]
"""u-coordinates of points of order dividing 8 (some unreduced or with bit 255 set): X25519 with any
clamped scalar gives zero."""


def _share_box(p, sender, recipient, round_id, mask_key_e, plain=bytes(64)):
    """A share box from ``sender`` to ``recipient`` bound to ``mask_key_e``: made with the sender's own
    X25519 key, as the corrupt sender can."""
    from protocols.aggregation.schedule import box_cipher, box_nonce_aad, static_secret

    hood, state = p.hood, p.meters[sender]
    nonce, aad = box_nonce_aad(hood.group_id, round_id, sender, recipient, mask_key_e)
    secret = static_secret(hood.digest, sender, state.x25519_private, recipient, hood.meter_public[recipient])
    return box_cipher(secret).encrypt(nonce, plain, aad)


def _low_order_advert(p, adverts, bad, round_id, mask_key_e=bytes(KEY_BYTES)):
    """Meter ``bad`` (corrupt: it holds K_bad and its X25519 key) advertises a low-order mask key E
    with share boxes that open under it, sealed with its own K_bad."""
    boxes = b"".join(_share_box(p, bad, peer, round_id, mask_key_e) for peer in p.hood.neighbours(bad))
    return reseal(adverts[bad], p.meters[bad].key, b"mask-advert",
                  lambda body: body.update({4: mask_key_e, 5: boxes}))


@pytest.mark.parametrize("mask_key_e", LOW_ORDER_KEYS, ids=range(len(LOW_ORDER_KEYS)))
def test_low_order_mask_key_in_an_advert_is_refused(paillier_key, mask_key_e):
    """Spec 6.2, adversary: one corrupt meter (its K_i and keys) advertising a mask key that gives every
    neighbour an all-zero X25519 secret.  The utility refuses the adverts, naming the meter, and keeps
    its state (otherwise every neighbour would keep a bundle it cannot report with)."""
    p = make(paillier_key, count=6, fanout=3, seed="loworder")
    hood, bad = p.hood, p.hood.meters[0]
    rng = HmacDrbg.from_seed("loworder/rng")
    adverts = {m: agg.Meter(hood, p.meters[m]).advertise(1, rng) for m in hood.meters}
    adverts[bad] = _low_order_advert(p, adverts, bad, 1, mask_key_e)
    with raises_exactly(VerificationError, match=f"mask-advert from {bad}: the mask key is a low-order point"):
        agg.Utility(hood, p.utility).bundles(1, list(adverts.values()))
    assert p.utility.last_round == -1
    rs, bundles = agg.Utility(hood, p.utility).bundles(1, [a for m, a in adverts.items() if m != bad])
    assert bad not in rs.bundles


@pytest.mark.parametrize("mask_key_e", LOW_ORDER_KEYS[::3], ids=range(len(LOW_ORDER_KEYS[::3])))
def test_low_order_mask_key_in_a_bundle_is_refused(paillier_key, mask_key_e):
    """Spec 6.3, adversary: the utility (it MACs any bundle) colluding with a corrupt neighbour (it makes
    a share box that opens under a low-order E) hands an honest meter that E.  The meter refuses the
    bundle, naming the neighbour, and keeps nothing of it."""
    p = make(paillier_key, count=6, fanout=3, seed="loworder-bundle")
    hood, bad = p.hood, p.hood.meters[0]
    victim = hood.neighbours(bad)[0]
    _, _, bundles = _advertise_and_bundle(p, 1, seed="loworder-bundle")
    body = cbor.decode(bundles[victim])
    peers = body[4]
    at = peers.index(bad)
    keys = msg.chunks(body[5], KEY_BYTES, len(peers), "keys")
    boxes = msg.chunks(body[6], agg.BOX_BYTES, len(peers), "boxes")
    keys[at], boxes[at] = mask_key_e, _share_box(p, bad, victim, 1, mask_key_e)
    forged = _reseal_bundle(p, bundles[victim], victim,
                            lambda b: b.update({5: b"".join(keys), 6: b"".join(boxes)}))
    before = _snapshot(p.meters[victim])
    with raises_exactly(VerificationError, match=f"neighbour {bad} advertised a low-order mask key"):
        agg.Meter(hood, p.meters[victim]).accept_bundle(forged)
    assert _snapshot(p.meters[victim]) == before
    assert agg.Meter(hood, p.meters[victim]).accept_bundle(bundles[victim]) == tuple(peers)


@pytest.mark.parametrize("key", LOW_ORDER_KEYS, ids=range(len(LOW_ORDER_KEYS)))
def test_directory_refuses_a_low_order_x25519_key(paillier_key, key):
    """Spec 3.1, adversary: a corrupt meter enrolling with a low-order X25519 public key (it may lie about
    its key; honest meters check only their own entries before revealing)."""
    p = make(paillier_key, count=6, fanout=3, seed="lowkey")
    kw = _hood_kwargs(p.hood)
    kw["meter_public"] = {**kw["meter_public"], "m0": key}
    with raises_exactly(ParameterError, match="meter m0: the X25519 key is a low-order point"):
        agg.Neighbourhood(**kw)
    with raises_exactly(ParameterError, match="low-order"):
        dataclasses.replace(p.hood, reveals=None, meter_public=kw["meter_public"])  # a draft too


def test_draft_directory_has_no_max_missing(paillier_key):
    p = make(paillier_key, count=6, fanout=3, seed="draftmax")
    draft = dataclasses.replace(p.hood, reveals=None)
    with raises_exactly(StateError, match="not finished"):
        draft.neighbours(p.hood.meters[0])
    with raises_exactly(StateError, match="not finished"):
        draft.max_missing  # noqa: B018
    assert p.hood.max_missing == min(5 - p.hood.threshold, 6 - p.hood.min_reporting)


def test_round_with_no_report_fails_with_a_typed_error(paillier_key):
    """The driver: every meter advertised and none reported, so nothing reaches the root."""
    p = make(paillier_key, count=6, fanout=3, seed="noreport")
    with raises_exactly(RecoveryError, match="no report reached the root"):
        nb.run_round(p, 1, {}, HmacDrbg.from_seed("noreport/rng"), dropped=list(p.hood.meters))
    assert p.utility.last_round == -1


# ---------------------------------------------------------------------------
# Differential privacy (spec 10)
# ---------------------------------------------------------------------------


def _noise(level, participants, sensitivity=255):
    return NoiseShareConfig(level, sensitivity, participants, Fraction(1, 2), Fraction(1, 1000))


def test_dp_round_releases_sum_plus_the_meters_noise_shares(paillier_key, encryptor, monkeypatch):
    """Spec 10: the released sum is the readings' sum plus exactly the noise
    shares the meters drew (recorded as they draw them), within the clamp,
    and the tag still checks over the noisy values."""
    from protocols.privacy import dp

    drawn = []

    def recording(config, rng=None):
        value = clamped_noise_share(config, rng)
        drawn.append(value)
        return value

    monkeypatch.setattr(dp, "clamped_noise_share", recording)
    p = make(paillier_key, count=6, fanout=3, seed="dp", slots=2, value_bits=8,
             noise=_noise(PrivacyLevel.HIGH, 3))
    assert p.hood.min_reporting == 3
    readings = readings_for(p, "dp")
    result = run(p, 1, readings, encryptor).result
    assert result.noisy and len(drawn) == 6 * 2
    assert any(drawn) and all(abs(x) <= p.hood.layout.noise_bound for x in drawn)
    noise = [sum(drawn[i::2]) for i in range(2)]
    assert list(result.sums) == [t + e for t, e in zip(column_sums(readings), noise)]


def test_dp_noise_is_drawn_by_meters_and_changes_the_release(paillier_key, encryptor):
    p_plain = make(paillier_key, count=6, fanout=3, seed="dp2", slots=4, value_bits=8)
    p_noisy = make(paillier_key, count=6, fanout=3, seed="dp2", slots=4, value_bits=8,
                   noise=_noise(PrivacyLevel.LOW, 3))
    readings = readings_for(p_plain, "dp2")
    plain = run(p_plain, 1, readings, encryptor).result
    noisy = run(p_noisy, 1, readings, encryptor).result
    assert plain.sums == column_sums(readings) and not plain.noisy
    assert noisy.sums != plain.sums and noisy.noisy
    assert p_noisy.hood.layout.slot_bits > p_plain.hood.layout.slot_bits


def test_dp_configuration_must_fit_the_neighbourhood(paillier_key):
    """Spec 10: the noise is sized for the smallest release the meters allow, min_reporting."""
    with raises_exactly(ParameterError, match="minimum reporting set, 3"):
        make(paillier_key, count=6, fanout=3, seed="dp3", noise=_noise(PrivacyLevel.LOW, 6))
    with raises_exactly(ParameterError, match="minimum reporting set, 6"):
        make(paillier_key, count=6, fanout=3, seed="dp3", min_reporting=6, noise=_noise(PrivacyLevel.LOW, 3))
    make(paillier_key, count=6, fanout=3, seed="dp3", min_reporting=6, value_bits=8, noise=_noise(PrivacyLevel.LOW, 6))
    with raises_exactly(ParameterError, match="sensitivity"):
        make(paillier_key, count=6, fanout=3, seed="dp3", value_bits=9, noise=_noise(PrivacyLevel.LOW, 3))
    with raises_exactly(ParameterError, match="NoiseShareConfig"):
        make(paillier_key, count=6, fanout=3, seed="dp3", noise="high")


# ---------------------------------------------------------------------------
# The aggregator's fast meter-report reader (spec 7.3)
# ---------------------------------------------------------------------------

FAST_ROUND = 300  # a two-byte round head


@pytest.fixture(scope="module")
def fast_reader_setup(paillier_key, encryptor):
    """Flat trees (the root's children are meters), with short ids and with ids of 24+ characters."""
    setups = []
    for prefix in ("m", "meter-with-a-rather-long-identifier-"):
        meters = [f"{prefix}{i}" for i in range(5)]
        tree, root = agg.balanced_tree(meters, len(meters))
        p = agg.provision(paillier_key, meters, tree, root, HmacDrbg.from_seed("tests/aggregation/fast/" + prefix))
        readings = readings_for(p, "fast/" + prefix)
        transcript = nb.collect(p, FAST_ROUND, readings, HmacDrbg.from_seed("fast/rng/" + prefix),
                                encryptors={m: encryptor for m in readings})
        setups.append((p, [transcript.meter_reports[m] for m in p.hood.children(p.hood.root)]))
    return setups


def _general(raw, hood):
    """The general decoder's outcome: (sender, c, confirmations, round) or the typed error it raises."""
    try:
        part = msg.decode_child(raw, hood)
    except UsappError as exc:
        return type(exc), str(exc)
    if not isinstance(part, agg.MeterReport):
        return "aggregate-report"
    return part.sender, part.ciphertext.c, part.confirmations, part.round


def _aggregate_outcome(p, inputs, monkeypatch, fast):
    """Aggregator.aggregate's output bytes, or its typed error, with or without the fast reader."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(_MeterReportReader, "read", lambda self, raw: None)
            patch.setattr(_MeterReportReader, "read_encoded", lambda self, raw: None)
        state = agg.AggregatorState(p.hood.root, p.aggregators[p.hood.root].key)
        try:
            return agg.Aggregator(p.hood, state).aggregate(FAST_ROUND, inputs)
        except UsappError as exc:
            return type(exc), str(exc)


def _agrees(p, raw, reader):
    """What the fast reader accepts, the general decoder accepts, with the same values and this round.

    (The reader may also decline a valid input -- a bytearray, say -- which
    then takes the general path.)
    """
    fast = reader.read(raw)
    if fast is not None:
        assert _general(raw, p.hood) == (*fast, FAST_ROUND)
    return fast


def test_fast_meter_report_reader_agrees_with_the_decoder(fast_reader_setup, monkeypatch):
    """Valid reports: the fast reader gives what the general decoder gives;
    edge cases it leaves to the general decoder: the same outcome either way."""
    for p, reports in fast_reader_setup:
        reader = _MeterReportReader(p.hood, FAST_ROUND)
        for raw in reports:
            assert _agrees(p, raw, reader) is not None
        assert _aggregate_outcome(p, reports, monkeypatch, True) == _aggregate_outcome(p, reports, monkeypatch, False)
        raw = reports[0]
        other_round = _MeterReportReader(p.hood, FAST_ROUND + 1)
        assert other_round.read(raw) is None
        decoded = cbor.decode(raw)
        too_many = cbor.encode({**decoded, 5: bytes(CONFIRM_BYTES * (len(p.hood.neighbours(decoded[3])) + 1))})
        for changed in (raw[:-1], raw + b"\x00", raw[:len(raw) // 2], b"", memoryview(raw),
                        raw.replace(b"\xa6", b"\xa7", 1), cbor.encode({**decoded, 7: 0}),
                        cbor.encode({**decoded, 5: decoded[5][:-1]}), too_many):
            assert _agrees(p, changed, reader) is None
            inputs = [changed, *reports[1:]]
            with_fast = _aggregate_outcome(p, inputs, monkeypatch, True)
            assert with_fast == _aggregate_outcome(p, inputs, monkeypatch, False)
            assert isinstance(with_fast, tuple)  # a typed error, never a crash
        for valid in (cbor.encode({**decoded, 5: b""}),):  # no confirmations: still a well-formed report
            assert _agrees(p, valid, reader) is not None
        inputs = [bytearray(raw), *reports[1:]]  # declined by the reader, accepted by the general decoder
        assert reader.read(inputs[0]) is None
        assert _aggregate_outcome(p, inputs, monkeypatch, True) == _aggregate_outcome(p, reports, monkeypatch, True)


@pytest.mark.slow
@SLOW
@given(which=st.integers(0, 1), index=st.integers(0, 1 << 16), mask=st.integers(1, 255))
def test_every_single_byte_change_has_the_same_outcome_through_both_decoders(
        fast_reader_setup, monkeypatch, which, index, mask):
    """Any single-byte change of a meter-report: the fast reader accepts it
    only if the general decoder does, with the same values, and the
    aggregator's outcome -- its report, or the typed error and message it
    raises -- is the same with the fast reader and without it."""
    p, reports = fast_reader_setup[which]
    changed = _flip(reports[index % len(reports)], index // len(reports), mask)
    _agrees(p, changed, _MeterReportReader(p.hood, FAST_ROUND))
    inputs = [changed if raw == reports[index % len(reports)] else raw for raw in reports]
    with_fast = _aggregate_outcome(p, inputs, monkeypatch, True)
    assert with_fast == _aggregate_outcome(p, inputs, monkeypatch, False)
    structure = 4  # a6 01 02 02: the map head, key 1, version 2, key 2
    if index // len(reports) % len(changed) < structure:
        assert isinstance(with_fast, tuple) and issubclass(with_fast[0], UsappError)


@pytest.mark.parametrize("count", [0, 1, 2, 255, 256, 257, 1001])
def test_product_mod_equals_the_sequential_product(paillier_key, count):
    """The product of many ciphertexts (spec 7.1 step 3), threaded from
    PARALLEL_PRODUCT_MIN factors: the same integer as one thread's product."""
    from protocols.schemes import paillier

    n2 = paillier_key.public_key.nsquare
    rng = HmacDrbg.from_seed(f"product/{count}")
    values = [paillier.mpz(int.from_bytes(rng.random_bytes(512), "big")) % n2 for _ in range(count)]
    expected = paillier.mpz(1) % n2
    for value in values:
        expected = expected * value % n2
    assert paillier.product_mod(values, n2) == expected


def test_product_mod_raises_what_the_helper_thread_raises(paillier_key):
    from protocols.schemes import paillier

    n2 = paillier_key.public_key.nsquare
    values = [paillier.mpz(3)] * (2 * paillier.PARALLEL_PRODUCT_MIN)
    values[-1] = None  # in the half the helper thread multiplies
    with pytest.raises(TypeError):
        paillier.product_mod(values, n2)
