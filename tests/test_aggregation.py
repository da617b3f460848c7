"""Aggregation over the aggregator tree (specs/aggregation.md).

Each section of the spec's security claims (spec 11) names the test here
that checks it.
"""

from __future__ import annotations

import pytest
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import aggregation as agg
from protocols.errors import (
    AggregateMismatchError,
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


@pytest.fixture(scope="module")
def encryptor(paillier_key):
    return FastEncryptor.create(paillier_key.public_key, HmacDrbg.from_seed("tests/aggregation/encryptor"))


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


def recoverable(hood, missing):
    reporting = [m for m in hood.meters if m not in missing]
    return bool(reporting) and all(
        sum(peer not in missing for peer in hood.neighbours(m)) >= hood.threshold for m in reporting)


# ---------------------------------------------------------------------------
# Correctness (spec 11.1)
# ---------------------------------------------------------------------------


def test_round_sums_exactly(paillier_key, encryptor):
    p = make(paillier_key, slots=3, value_bits=16)
    readings = readings_for(p)
    transcript = run(p, 1, readings, encryptor)
    assert transcript.result.sums == column_sums(readings)
    assert transcript.result.missing == ()
    assert set(transcript.result.reporting) == set(p.hood.meters)


def test_consecutive_rounds_reuse_the_state(paillier_key, encryptor):
    p = make(paillier_key, count=6, fanout=2, seed="consecutive")
    for round_id in (1, 2, 7):
        readings = readings_for(p, f"r{round_id}")
        assert run(p, round_id, readings, encryptor).result.sums == column_sums(readings)


@SLOW
@given(count=st.integers(2, 12), fanout=st.integers(2, 5), degree=st.sampled_from([2, 4, 6]),
       data=st.data())
def test_sum_for_any_tree_and_missing_set(paillier_key, encryptor, count, fanout, degree, data):
    """Spec 11.1: the released sum is the exact sum of the reporting meters
    for any tree shape, fan-out and set of missing meters that spec 8.5
    allows; otherwise the round fails with RecoveryError, never wrongly."""
    k = min(degree, count - 1)
    threshold = data.draw(st.integers(1, k), label="threshold")
    p = make(paillier_key, count, fanout, seed=f"prop/{count}/{fanout}/{degree}/{threshold}",
             degree=degree, threshold=threshold, slots=2, value_bits=20)
    missing = set(data.draw(st.lists(st.sampled_from(p.hood.meters), max_size=count - 1, unique=True),
                            label="missing"))
    readings = readings_for(p, f"prop/{sorted(missing)}", missing)
    if recoverable(p.hood, missing):
        result = run(p, 1, readings, encryptor).result
        assert result.sums == column_sums(readings)
        assert set(result.missing) == missing
    else:
        with pytest.raises(RecoveryError):
            run(p, 1, readings, encryptor)


def test_any_set_of_max_missing_meters_is_recoverable(paillier_key, encryptor):
    """Spec 8.5: up to degree - threshold missing meters, wherever they are."""
    p = make(paillier_key, count=20, fanout=4, seed="maxmissing", degree=8, threshold=4)
    assert p.hood.max_missing == 4
    # the worst place: four consecutive meters in the ordering, all neighbours of the next one
    missing = set(p.hood.meters[3:7])
    readings = readings_for(p, "maxmissing", missing)
    result = run(p, 1, readings, encryptor).result
    assert result.sums == column_sums(readings)
    assert set(result.missing) == missing


def test_meter_silent_in_unmask_phase_without_missing_neighbours(paillier_key, encryptor):
    """Spec 8.5: a reporting meter may miss the unmask phase when its neighbours can spare its shares."""
    p = make(paillier_key, count=10, fanout=3, seed="silent", degree=6, threshold=3)
    readings = readings_for(p, "silent")
    result = run(p, 1, readings, encryptor, silent=[p.hood.meters[0]]).result
    assert result.sums == column_sums(readings)


def test_silent_meter_with_missing_neighbour_fails_the_round(paillier_key, encryptor):
    p = make(paillier_key, count=10, fanout=3, seed="silent2", degree=6, threshold=3)
    gone = p.hood.meters[0]
    readings = readings_for(p, "silent2", {gone})
    neighbour = p.hood.neighbours(gone)[0]
    with pytest.raises(RecoveryError, match=neighbour):
        run(p, 1, readings, encryptor, silent=[neighbour])


# ---------------------------------------------------------------------------
# Layout (spec 4)
# ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.data(), slots=st.integers(1, 6), value_bits=st.integers(1, 40),
       noise_bound=st.integers(0, 1 << 20), summands=st.integers(1, 5000))
def test_layout_signed_sums_round_trip(data, slots, value_bits, noise_bound, summands):
    layout = agg.Layout(slots, value_bits, noise_bound, summands, 2048)
    count = data.draw(st.integers(1, min(summands, 20)))
    values = [[data.draw(st.integers(-layout.bound, layout.bound)) for _ in range(slots)] for _ in range(count)]
    tags = [data.draw(st.integers(0, agg.TAG_PRIME - 1)) for _ in range(count)]
    n = (1 << 2047) + 1
    total = sum(layout.pack(v, t) for v, t in zip(values, tags)) % n
    sums, tag_sum = layout.unpack(total, n)
    assert sums == [sum(column) for column in zip(*values)]
    assert tag_sum == sum(tags)


def test_layout_refuses_too_many_slots():
    most = agg.Layout.max_slots(16, 0, 1000, 2048)
    agg.Layout(most, 16, 0, 1000, 2048)
    with pytest.raises(ParameterError, match="at most"):
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


@SLOW
@given(first=st.lists(st.integers(0, (1 << 16) - 1), min_size=2, max_size=2),
       second=st.lists(st.integers(0, (1 << 16) - 1), min_size=2, max_size=2))
def test_blinding_does_not_depend_on_the_reading(paillier_key, encryptor, first, second):
    """Spec 11.2: with the same keys, round and randomness, the blinding term
    of a meter's contribution is the same whatever it reads: the decrypted
    contribution is reading + a term that is a function of secrets the
    utility does not hold (pairwise seeds, the self-mask seed)."""
    blinds = []
    for reading in (first, second):
        p = make(paillier_key, count=5, fanout=2, seed="blind", slots=2, value_bits=16)
        meter = p.hood.meters[0]
        report = agg.Meter(p.hood, p.meters[meter]).report(3, reading, HmacDrbg.from_seed("blind/rng"),
                                                         encryptor=encryptor)
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
    transcript = nb.collect(p, 1, readings, HmacDrbg.from_seed("spread/rng"),
                            encryptors={m: encryptor for m in readings})
    n = p.hood.public_key.n
    buckets = [0] * 16
    for report in transcript.meter_reports.values():
        value = int(p.utility.private_key.decrypt(agg.MeterReport.decode(report, p.hood).ciphertext))
        buckets[value * 16 // n] += 1
        assert value.bit_length() > 2000
    assert min(buckets) >= 1 and max(buckets) <= 12


def test_claiming_a_reporting_meter_missing_does_not_unmask_it(paillier_key, encryptor):
    """Spec 11.2, the late-arrival attack (Bonawitz et al. section 4): a
    utility that holds c_j and tells j's neighbours that j is missing gets
    their pairwise masks with j, but no share of j's self-mask seed, so
    c_j stays blinded; and no neighbour answers a second request that would
    give the shares."""
    p = make(paillier_key, count=8, fanout=4, seed="late", degree=4, threshold=2)
    readings = readings_for(p, "late")
    transcript = nb.collect(p, 1, readings, HmacDrbg.from_seed("late/rng"),
                            encryptors={m: encryptor for m in readings})
    hood, target = p.hood, p.hood.meters[0]
    utility = agg.Utility(hood, p.utility)
    rs = utility.receive(1, transcript.aggregate_reports[hood.root])
    honest = utility.unmask_requests(rs)
    corrections = 0
    for peer in hood.neighbours(target):
        up, down = rs.requested[peer]
        lie_up = [x for x in up if x != target]
        lie_down = sorted(list(down) + [target], key=hood.neighbours(peer).index)
        boxes = agg._chunks(cbor.decode(honest[peer])[6], agg.BOX_BYTES, len(up), "boxes")
        lie_boxes = b"".join(b for x, b in zip(up, boxes) if x != target)
        body = {1: 1, 2: 1, 3: peer, 4: lie_up, 5: lie_down, 6: lie_boxes}
        request = agg._seal(body, agg.mac_key(p.utility.meter_keys[peer], b"down"), b"unmask-request", 7)
        response = cbor.decode(agg.Meter(hood, p.meters[peer]).unmask(request))
        assert len(response[4]) == agg.SHARE_BYTES * len(lie_up)
        corrections += int.from_bytes(response[5], "big")
        with pytest.raises(ReplayError):
            agg.Meter(hood, p.meters[peer]).unmask(honest[peer])
    blinding = _blinding(p, target, transcript.meter_reports[target], readings[target], 1)
    pair_only = sum(hood.sign(target, peer) * agg.pair_mask(p.meters[target].pairwise[peer], 1, hood.public_key.n)
                    for peer in hood.neighbours(target))
    # the neighbours' corrections are exactly j's pairwise masks (signs seen from their side)...
    assert (corrections + pair_only) % hood.public_key.n == 0
    # ...so what remains on c_j is the self mask, which the utility cannot remove
    assert (blinding - pair_only) % hood.public_key.n != 0


# ---------------------------------------------------------------------------
# Authenticity (spec 11.3): tampering, replays, named misbehaviour
# ---------------------------------------------------------------------------


def _seal_aggregate(p, node, body):
    return agg._seal(body, agg.mac_key(p.aggregators[node].key, b"up"), b"aggregate-report", 7)


def _lying_collect(p, readings, encryptor, node, rewrite):
    """Collect where aggregator ``node`` rewrites its honest output body."""
    transcript = nb.collect(p, 1, readings, HmacDrbg.from_seed("liar/rng"),
                            encryptors={m: encryptor for m in readings})
    hood = p.hood
    original = transcript.aggregate_reports[node]
    body = {k: v for k, v in cbor.decode(original).items() if k != 7}
    body = rewrite(body)
    forged = _seal_aggregate(p, node, body)
    # re-run the aggregators above node on the forged output
    parent = hood.parent(node)
    outputs = {**transcript.meter_reports, **transcript.aggregate_reports, node: forged}
    while parent is not None:
        state = agg.AggregatorState(parent, p.aggregators[parent].key)
        inputs = [outputs[c] for c in hood.children(parent) if c in outputs]
        outputs[parent] = agg.Aggregator(hood, state).aggregate(1, inputs)
        p.aggregators[parent].retained = state.retained
        parent = hood.parent(parent)
    transcript.aggregate_reports = {**transcript.aggregate_reports, **{k: v for k, v in outputs.items()
                                                                      if k in hood.tree}}
    return transcript


def _retained(p):
    return {node: state.retained[1] for node, state in p.aggregators.items() if 1 in state.retained}


def _expect_mismatch_then(p, transcript, error, node):
    rs = agg.Utility(p.hood, p.utility).receive(1, transcript.aggregate_reports[p.hood.root])
    with pytest.raises(AggregateMismatchError):
        nb.finish(p, transcript)
    with pytest.raises(error, match=node):
        agg.Utility(p.hood, p.utility).audit(rs, _retained(p))


def test_dropped_contribution_is_detected_and_named(paillier_key, encryptor):
    p = make(paillier_key, seed="drop")
    readings = readings_for(p, "drop")
    node = "agg-1-1"
    first = p.hood.children(node)[0]

    def rewrite(body):
        n2 = p.hood.public_key.nsquare
        c = agg.MeterReport.decode(nb_reports[first], p.hood).ciphertext.c
        total = int.from_bytes(body[4], "big") * pow(int(c), -1, n2) % n2
        body[4] = total.to_bytes(len(body[4]), "big")
        return body

    nb_reports = nb.collect(p, 1, readings, HmacDrbg.from_seed("liar/rng"),
                            encryptors={m: encryptor for m in readings}).meter_reports
    p = make(paillier_key, seed="drop")  # fresh state: the same keys, nothing reported yet
    transcript = _lying_collect(p, readings, encryptor, node, rewrite)
    _expect_mismatch_then(p, transcript, DroppedContributionError, node)


def test_duplicated_contribution_is_detected_and_named(paillier_key, encryptor):
    p = make(paillier_key, seed="dup")
    readings = readings_for(p, "dup")
    node = "agg-1-2"
    holder = {}

    def rewrite(body):
        n2 = p.hood.public_key.nsquare
        c = agg.MeterReport.decode(holder["inputs"][0], p.hood).ciphertext.c
        body[4] = (int.from_bytes(body[4], "big") * int(c) % n2).to_bytes(len(body[4]), "big")
        return body

    original = agg.Aggregator.aggregate

    def spy(self, round_id, inputs):
        if self.state.aggregator_id == node:
            holder["inputs"] = list(inputs)
        return original(self, round_id, inputs)

    agg.Aggregator.aggregate = spy
    try:
        transcript = _lying_collect(p, readings, encryptor, node, rewrite)
    finally:
        agg.Aggregator.aggregate = original
    _expect_mismatch_then(p, transcript, DuplicateContributionError, node)


def test_injected_term_is_detected_and_named(paillier_key, encryptor):
    p = make(paillier_key, seed="inject")
    readings = readings_for(p, "inject")
    node = "agg-1-0"

    def rewrite(body):
        pk = p.hood.public_key
        extra = pk.encrypt(1000, HmacDrbg.from_seed("extra")).c
        body[4] = (int.from_bytes(body[4], "big") * int(extra) % pk.nsquare).to_bytes(len(body[4]), "big")
        return body

    transcript = _lying_collect(p, readings, encryptor, node, rewrite)
    _expect_mismatch_then(p, transcript, InjectedContributionError, node)


def test_claiming_an_unreceived_meter_is_named_by_the_audit(paillier_key, encryptor):
    p = make(paillier_key, seed="claim")
    node = "agg-1-1"
    absent = p.hood.children(node)[1]
    readings = readings_for(p, "claim", {absent})

    def rewrite(body):
        covered = sorted(list(body[5]) + [absent], key=p.hood.position)
        boxes = dict(zip(body[5], body[6]))
        boxes[absent] = bytes(agg.BOX_BYTES * len(p.hood.neighbours(absent)))
        body[5], body[6] = covered, [boxes[m] for m in covered]
        return body

    transcript = _lying_collect(p, readings, encryptor, node, rewrite)
    rs = agg.Utility(p.hood, p.utility).receive(1, transcript.aggregate_reports[p.hood.root])
    with pytest.raises(DroppedContributionError, match=f"{node} claims meter {absent}"):
        agg.Utility(p.hood, p.utility).audit(rs, _retained(p))


def test_replayed_old_round_report_is_refused(paillier_key, encryptor):
    p = make(paillier_key, count=4, fanout=2, seed="replay")
    readings = readings_for(p, "replay")
    first = run(p, 1, readings, encryptor)
    second = nb.collect(p, 2, {m: r for m, r in readings.items() if m != "m0"}, HmacDrbg.from_seed("x"),
                        encryptors={m: encryptor for m in readings})
    node = p.hood.parent("m0")
    inputs = [first.meter_reports["m0"]] + [second.meter_reports[c] for c in p.hood.children(node)
                                             if c in second.meter_reports]
    state = agg.AggregatorState(node, p.aggregators[node].key)
    with pytest.raises(ReplayError, match="m0"):
        agg.Aggregator(p.hood, state).aggregate(2, inputs)
    # and the utility refuses an old round outright
    with pytest.raises(ReplayError):
        agg.Utility(p.hood, p.utility).receive(1, first.aggregate_reports[p.hood.root])


def test_replay_hidden_by_a_lying_aggregator_is_named_by_the_audit(paillier_key, encryptor):
    """An aggregator that slips m0's round-1 report into round 2 (its own
    header checks bypassed) makes the tag fail; the audit names it."""
    p = make(paillier_key, count=4, fanout=2, seed="replay2")
    readings = readings_for(p, "replay2")
    old = run(p, 1, readings, encryptor).meter_reports["m0"]
    node = p.hood.parent("m0")
    holder = {}

    def rewrite(body):
        n2 = p.hood.public_key.nsquare
        new_c = agg.MeterReport.decode(holder["new"], p.hood).ciphertext.c
        old_c = agg.MeterReport.decode(old, p.hood).ciphertext.c
        total = int.from_bytes(body[4], "big") * pow(int(new_c), -1, n2) * int(old_c) % n2
        body[4] = total.to_bytes(len(body[4]), "big")
        return body

    transcript = nb.collect(p, 2, readings, HmacDrbg.from_seed("replay2/rng"),
                            encryptors={m: encryptor for m in readings})
    holder["new"] = transcript.meter_reports["m0"]
    body = rewrite({k: v for k, v in cbor.decode(transcript.aggregate_reports[node]).items() if k != 7})
    transcript.aggregate_reports[node] = _seal_aggregate(p, node, body)
    p.aggregators[node].retained = {2: tuple(old if r == holder["new"] else r
                                             for r in p.aggregators[node].retained[2])}
    root = p.hood.root
    if node != root:
        inputs = [transcript.aggregate_reports.get(c) or transcript.meter_reports[c] for c in p.hood.children(root)]
        state = agg.AggregatorState(root, p.aggregators[root].key)
        transcript.aggregate_reports[root] = agg.Aggregator(p.hood, state).aggregate(2, inputs)
        p.aggregators[root].retained = state.retained
    utility = agg.Utility(p.hood, p.utility)
    rs = utility.receive(2, transcript.aggregate_reports[root])
    with pytest.raises(AggregateMismatchError):
        nb.finish(p, transcript)
    retained = {n: s.retained[2] for n, s in p.aggregators.items() if 2 in s.retained}
    with pytest.raises(ReplayError, match=f"{node} used m0's report of round 1"):
        utility.audit(rs, retained)


def test_honest_aggregator_refuses_duplicates_strangers_and_wrong_rounds(paillier_key, encryptor):
    p = make(paillier_key, count=6, fanout=3, seed="honest")
    readings = readings_for(p, "honest")
    transcript = nb.collect(p, 5, readings, HmacDrbg.from_seed("y"), encryptors={m: encryptor for m in readings})
    node = p.hood.parent("m0")
    mine = [transcript.meter_reports[c] for c in p.hood.children(node)]
    stranger = next(m for m in p.hood.meters if p.hood.parent(m) != node)

    def fresh():
        return agg.Aggregator(p.hood, agg.AggregatorState(node, p.aggregators[node].key))

    with pytest.raises(DuplicateContributionError):
        fresh().aggregate(5, mine + mine[:1])
    with pytest.raises(InjectedContributionError, match="not a child"):
        fresh().aggregate(5, mine + [transcript.meter_reports[stranger]])
    with pytest.raises(StateError):
        fresh().aggregate(4, mine)
    with pytest.raises(RecoveryError):
        fresh().aggregate(5, [])
    state = agg.AggregatorState(node, p.aggregators[node].key)
    agg.Aggregator(p.hood, state).aggregate(5, mine)
    with pytest.raises(ReplayError):
        agg.Aggregator(p.hood, state).aggregate(5, mine)


def _flip(data: bytes, index: int, mask: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1:]


@pytest.fixture(scope="module")
def tamper_setup(paillier_key, encryptor):
    p = make(paillier_key, count=6, fanout=2, seed="tamper", slots=2, value_bits=16)
    readings = readings_for(p, "tamper")
    return p, readings


@SLOW
@given(target=st.sampled_from(["meter", "aggregate", "root", "request", "response"]),
       index=st.integers(0, 1 << 16), mask=st.integers(1, 255), which=st.integers(0, 5))
def test_any_single_byte_change_is_rejected(paillier_key, encryptor, tamper_setup, target, index, mask, which):
    """Spec 11.3: changing any byte of any message of a round makes the round
    fail with a typed error.  The one exception is a meter-report's MAC,
    which only an audit reads: the round still releases the exact sum, and
    the audit then rejects the report."""
    base, readings = tamper_setup
    p = make(paillier_key, count=6, fanout=2, seed="tamper", slots=2, value_bits=16)
    hood = p.hood
    meter = hood.meters[which % len(hood.meters)]
    mac_only = False

    def tamper(node, inputs):
        nonlocal mac_only
        out = []
        for raw in inputs:
            decoded = cbor.decode(raw)
            sender = decoded[3]
            if (target == "meter" and sender == meter) or (target == "aggregate" and sender in hood.tree):
                changed = _flip(raw, index, mask)
                mac_start = len(raw) - agg.MAC_BYTES
                mac_only = target == "meter" and index % len(raw) >= mac_start
                raw = changed
            out.append(raw)
        return out

    try:
        transcript = nb.collect(p, 1, readings, HmacDrbg.from_seed("tamper/rng"),
                                encryptors={m: encryptor for m in readings}, tamper=tamper)
        if target == "root":
            transcript.aggregate_reports[hood.root] = _flip(transcript.aggregate_reports[hood.root], index, mask)
        utility = agg.Utility(hood, p.utility)
        rs = utility.receive(1, transcript.aggregate_reports[hood.root])
        requests = utility.unmask_requests(rs)
        if target == "request":
            requests[meter] = _flip(requests[meter], index, mask)
        responses = {m: agg.Meter(hood, p.meters[m]).unmask(r) for m, r in requests.items()}
        if target == "response":
            responses[meter] = _flip(responses[meter], index, mask)
        result = utility.finish(rs, list(responses.values()))
    except UsappError:
        return
    assert mac_only, f"tampering with the {target} message was accepted"
    assert result.sums == column_sums(readings)
    with pytest.raises(InjectedContributionError, match="did not make"):
        agg.Utility(hood, agg.UtilityState(p.utility.private_key, p.utility.meter_keys,
                                           p.utility.aggregator_keys, p.utility.tag_key)).audit(rs, _retained(p))


# ---------------------------------------------------------------------------
# Meter and utility state (spec 6.1, 8.1)
# ---------------------------------------------------------------------------


def test_meter_state_refuses_replays_and_wrong_rounds(paillier_key, encryptor):
    p = make(paillier_key, count=4, fanout=2, seed="state")
    readings = readings_for(p, "state")
    meter = agg.Meter(p.hood, p.meters["m0"])
    meter.report(3, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)
    with pytest.raises(ReplayError):
        meter.report(3, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)
    with pytest.raises(ReplayError):
        meter.report(2, readings["m0"], HmacDrbg.from_seed("a"), encryptor=encryptor)


def test_unmask_request_checks(paillier_key, encryptor):
    p = make(paillier_key, count=6, fanout=3, seed="unmask")
    readings = readings_for(p, "unmask")
    transcript = nb.collect(p, 1, readings, HmacDrbg.from_seed("b"), encryptors={m: encryptor for m in readings})
    utility = agg.Utility(p.hood, p.utility)
    rs = utility.receive(1, transcript.aggregate_reports[p.hood.root])
    requests = utility.unmask_requests(rs)
    m0, m1 = p.hood.meters[0], p.hood.meters[1]
    with pytest.raises(VerificationError, match="addressed"):
        agg.Meter(p.hood, p.meters[m1]).unmask(
            agg._seal({k: v for k, v in cbor.decode(requests[m0]).items() if k != 7},
                      agg.mac_key(p.utility.meter_keys[m1], b"down"), b"unmask-request", 7))
    with pytest.raises(VerificationError, match="MAC"):
        agg.Meter(p.hood, p.meters[m0]).unmask(requests[m1])
    body = {k: v for k, v in cbor.decode(requests[m0]).items() if k != 7}
    body[4] = body[4][1:]  # one neighbour in neither list
    body[6] = body[6][agg.BOX_BYTES:]
    with pytest.raises(VerificationError, match="split"):
        agg.Meter(p.hood, p.meters[m0]).unmask(
            agg._seal(body, agg.mac_key(p.utility.meter_keys[m0], b"down"), b"unmask-request", 7))
    fresh = make(paillier_key, count=6, fanout=3, seed="unmask")
    with pytest.raises(StateError, match="did not report"):
        agg.Meter(fresh.hood, fresh.meters[m0]).unmask(requests[m0])
    good = agg.Meter(p.hood, p.meters[m0]).unmask(requests[m0])
    with pytest.raises(ReplayError):
        agg.Meter(p.hood, p.meters[m0]).unmask(requests[m0])
    responses = [good] + [agg.Meter(p.hood, p.meters[m]).unmask(r) for m, r in requests.items() if m != m0]
    with pytest.raises(ReplayError, match="two"):
        utility.finish(rs, responses + [good])
    result = utility.finish(rs, responses)
    assert result.sums == column_sums(readings)
    with pytest.raises(ReplayError):
        utility.receive(1, transcript.aggregate_reports[p.hood.root])


def test_bad_share_is_detected_when_spare_shares_exist(paillier_key, encryptor):
    p = make(paillier_key, count=6, fanout=3, seed="badshare", degree=4, threshold=2)
    readings = readings_for(p, "badshare")
    transcript = nb.collect(p, 1, readings, HmacDrbg.from_seed("c"), encryptors={m: encryptor for m in readings})
    utility = agg.Utility(p.hood, p.utility)
    rs = utility.receive(1, transcript.aggregate_reports[p.hood.root])
    responses = []
    for meter, request in utility.unmask_requests(rs).items():
        raw = agg.Meter(p.hood, p.meters[meter]).unmask(request)
        if meter == p.hood.meters[0]:
            body = {k: v for k, v in cbor.decode(raw).items() if k != 6}
            body[4] = bytes(32) + body[4][32:]
            raw = agg._seal(body, agg.mac_key(p.utility.meter_keys[meter], b"up"), b"unmask-response", 6)
        responses.append(raw)
    with pytest.raises(VerificationError):
        utility.finish(rs, responses)


# ---------------------------------------------------------------------------
# Bad input (spec 3, 6)
# ---------------------------------------------------------------------------


def test_readings_out_of_range(paillier_key, encryptor):
    p = make(paillier_key, count=4, fanout=2, seed="range", slots=2, value_bits=8)
    meter = agg.Meter(p.hood, p.meters["m1"])
    with pytest.raises(EncodingOverflowError):
        meter.report(1, [256, 0], encryptor=encryptor)
    with pytest.raises(EncodingOverflowError):
        meter.report(1, [-1, 0], encryptor=encryptor)
    with pytest.raises(ParameterError):
        meter.report(1, [1], encryptor=encryptor)
    with pytest.raises(ParameterError):
        meter.report(-1, [1, 1], encryptor=encryptor)
    with pytest.raises(EncodingOverflowError):
        meter.report(1, [True, 0], encryptor=encryptor)


@pytest.mark.parametrize("change, match", [
    (lambda kw: kw.update(root="nope"), "root"),
    (lambda kw: kw.update(tree={**kw["tree"], "agg-x": ("m0",)}), "two parents"),
    (lambda kw: kw.update(tree={**kw["tree"], "agg-x": ()}), "no children"),
    (lambda kw: kw.update(tree={k: tuple(c for c in v if c != "m3") for k, v in kw["tree"].items()}),
     "exactly once"),
    (lambda kw: kw.update(degree=3), "even"),
    (lambda kw: kw.update(threshold=0), "threshold"),
    (lambda kw: kw.update(threshold=9), "threshold"),
    (lambda kw: kw.update(group_id=b""), "group_id"),
    (lambda kw: kw.update(slots=10_000), "at most"),
    (lambda kw: kw.update(meter_public={**kw["meter_public"], "bad id!": bytes(32)}), "meter id"),
    (lambda kw: kw.update(meter_public={**kw["meter_public"], "m0": bytes(31)}), "32 bytes"),
])
def test_neighbourhood_validation(paillier_key, change, match):
    p = make(paillier_key, count=6, fanout=2, seed="valid")
    kw = dict(group_id=p.hood.group_id, public_key=p.hood.public_key, meter_public=dict(p.hood.meter_public),
              tree=dict(p.hood.tree), root=p.hood.root)
    change(kw)
    with pytest.raises(ParameterError, match=match):
        agg.Neighbourhood(**kw)


def test_wrong_key_utility_is_refused(paillier_key, other_paillier_key):
    p = make(paillier_key, count=4, fanout=2, seed="wrongkey")
    state = agg.UtilityState(other_paillier_key, p.utility.meter_keys, p.utility.aggregator_keys,
                             p.utility.tag_key)
    with pytest.raises(ParameterError):
        agg.Utility(p.hood, state)


def test_report_from_wrong_root_or_with_bad_mac(paillier_key, encryptor):
    p = make(paillier_key, count=9, fanout=3, seed="root")
    readings = readings_for(p, "root")
    transcript = nb.collect(p, 1, readings, HmacDrbg.from_seed("d"), encryptors={m: encryptor for m in readings})
    utility = agg.Utility(p.hood, p.utility)
    with pytest.raises(InjectedContributionError, match="root"):
        utility.receive(1, transcript.aggregate_reports["agg-1-0"])
    body = {k: v for k, v in cbor.decode(transcript.aggregate_reports[p.hood.root]).items() if k != 7}
    forged = agg._seal(body, bytes(32), b"aggregate-report", 7)
    with pytest.raises(VerificationError, match="MAC"):
        utility.receive(1, forged)
    with pytest.raises(DecodeError):
        utility.receive(1, transcript.aggregate_reports[p.hood.root][:-1])
    with pytest.raises(DecodeError):
        utility.receive(1, b"not cbor")


def test_balanced_tree_shapes():
    meters = [f"m{i}" for i in range(10)]
    tree, root = agg.balanced_tree(meters, 3)
    assert root == "agg-3-0"
    assert tree["agg-1-3"] == ("m9",)
    with pytest.raises(ParameterError):
        agg.balanced_tree(meters, 1)
    with pytest.raises(ParameterError):
        agg.balanced_tree([], 2)


def test_neighbour_graph_is_symmetric_with_the_stated_degree(paillier_key):
    p = make(paillier_key, count=15, fanout=4, seed="graph", degree=6, threshold=3)
    for meter in p.hood.meters:
        peers = p.hood.neighbours(meter)
        assert len(set(peers)) == 6 and meter not in peers
        for peer in peers:
            assert meter in p.hood.neighbours(peer)


def test_non_unit_ciphertext_is_refused_and_named(paillier_key, encryptor):
    """Spec 7.1: ranges per input, coprimality once on the product; a bad factor is named."""
    p = make(paillier_key, count=4, fanout=4, seed="unit")
    readings = readings_for(p, "unit")
    transcript = nb.collect(p, 1, readings, HmacDrbg.from_seed("e"), encryptors={m: encryptor for m in readings})
    bad = p.hood.meters[1]
    body = {k: v for k, v in cbor.decode(transcript.meter_reports[bad]).items() if k != 6}
    n = p.hood.public_key.n
    body[4] = int(n * 5).to_bytes(len(body[4]), "big")
    forged = agg._seal(body, agg.mac_key(p.utility.meter_keys[bad], b"up"), b"meter-report", 6)
    inputs = [forged if m == bad else transcript.meter_reports[m] for m in p.hood.children(p.hood.root)]
    state = agg.AggregatorState(p.hood.root, p.aggregators[p.hood.root].key)
    with pytest.raises(InvalidCiphertextError, match=bad):
        agg.Aggregator(p.hood, state).aggregate(1, inputs)
    body[4] = bytes(len(body[4]))
    zero = agg._seal(body, agg.mac_key(p.utility.meter_keys[bad], b"up"), b"meter-report", 6)
    with pytest.raises(InvalidCiphertextError, match="range"):
        agg.Aggregator(p.hood, state).aggregate(1, [zero])


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
             noise=_noise(PrivacyLevel.HIGH, 6))
    readings = readings_for(p, "dp")
    result = run(p, 1, readings, encryptor).result
    assert result.noisy and len(drawn) == 6 * 2
    assert any(drawn) and all(abs(x) <= p.hood.layout.noise_bound for x in drawn)
    noise = [sum(drawn[i::2]) for i in range(2)]
    assert list(result.sums) == [t + e for t, e in zip(column_sums(readings), noise)]


def test_dp_noise_is_drawn_by_meters_and_changes_the_release(paillier_key, encryptor):
    p_plain = make(paillier_key, count=6, fanout=3, seed="dp2", slots=4, value_bits=8)
    p_noisy = make(paillier_key, count=6, fanout=3, seed="dp2", slots=4, value_bits=8,
                   noise=_noise(PrivacyLevel.LOW, 6))
    readings = readings_for(p_plain, "dp2")
    plain = run(p_plain, 1, readings, encryptor).result
    noisy = run(p_noisy, 1, readings, encryptor).result
    assert plain.sums == column_sums(readings) and not plain.noisy
    assert noisy.sums != plain.sums and noisy.noisy
    assert p_noisy.hood.layout.slot_bits > p_plain.hood.layout.slot_bits


def test_dp_configuration_must_fit_the_neighbourhood(paillier_key):
    with pytest.raises(ParameterError, match="participants"):
        make(paillier_key, count=6, fanout=3, seed="dp3", noise=_noise(PrivacyLevel.LOW, 7))
    with pytest.raises(ParameterError, match="sensitivity"):
        make(paillier_key, count=6, fanout=3, seed="dp3", value_bits=9, noise=_noise(PrivacyLevel.LOW, 6))
    with pytest.raises(ParameterError, match="NoiseShareConfig"):
        make(paillier_key, count=6, fanout=3, seed="dp3", noise="high")


@settings(max_examples=200, deadline=None)
@given(sides=st.lists(st.booleans(), max_size=10), data=st.data())
def test_ordered_split_accepts_exactly_the_partitions(sides, data):
    """Spec 8.3: the meter's check that a request splits its neighbours."""
    whole = [f"n{i}" for i in range(len(sides))]
    left = [x for x, side in zip(whole, sides) if side]
    right = [x for x, side in zip(whole, sides) if not side]
    assert agg._is_ordered_split(whole, left, right)
    if len(left) >= 2:
        assert not agg._is_ordered_split(whole, left[::-1], right)
    if whole:
        dropped = data.draw(st.sampled_from(whole))
        assert not agg._is_ordered_split(whole, [x for x in left if x != dropped],
                                         [x for x in right if x != dropped])
        assert not agg._is_ordered_split(whole, left + [whole[0]], right)


# ---------------------------------------------------------------------------
# The aggregator's fast meter-report reader (spec 7.1 step 1)
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
    """The general decoder's outcome: (sender, c, boxes, round) or the typed error it raises."""
    try:
        part = agg._decode_child(raw, hood)
    except UsappError as exc:
        return type(exc), str(exc)
    if not isinstance(part, agg.MeterReport):
        return "aggregate-report"
    return part.sender, part.ciphertext.c, part.boxes, part.round


def _aggregate_outcome(p, inputs, monkeypatch, fast):
    """Aggregator.aggregate's output bytes, or its typed error, with or without the fast reader."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(agg._MeterReportReader, "read", lambda self, raw: None)
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
        reader = agg._MeterReportReader(p.hood, FAST_ROUND)
        for raw in reports:
            assert _agrees(p, raw, reader) is not None
        assert _aggregate_outcome(p, reports, monkeypatch, True) == _aggregate_outcome(p, reports, monkeypatch, False)
        raw = reports[0]
        other_round = agg._MeterReportReader(p.hood, FAST_ROUND + 1)
        assert other_round.read(raw) is None
        for changed in (raw[:-1], raw + b"\x00", raw[:len(raw) // 2], b"", memoryview(raw),
                        raw.replace(b"\xa6", b"\xa7", 1), cbor.encode({**cbor.decode(raw), 7: 0})):
            assert _agrees(p, changed, reader) is None
            inputs = [changed, *reports[1:]]
            with_fast = _aggregate_outcome(p, inputs, monkeypatch, True)
            assert with_fast == _aggregate_outcome(p, inputs, monkeypatch, False)
            assert isinstance(with_fast, tuple)  # a typed error, never a crash
        inputs = [bytearray(raw), *reports[1:]]  # declined by the reader, accepted by the general decoder
        assert reader.read(inputs[0]) is None
        assert _aggregate_outcome(p, inputs, monkeypatch, True) == _aggregate_outcome(p, reports, monkeypatch, True)


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
    _agrees(p, changed, agg._MeterReportReader(p.hood, FAST_ROUND))
    inputs = [changed if raw == reports[index % len(reports)] else raw for raw in reports]
    with_fast = _aggregate_outcome(p, inputs, monkeypatch, True)
    assert with_fast == _aggregate_outcome(p, inputs, monkeypatch, False)
    structure = 4  # a6 01 01 02: the map head, key 1, version 1, key 2
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
