"""Integrity feedback of billing data (protocols/integrity.py, specs/integrity.md)."""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import integrity as ig
from protocols.errors import DecodeError, ParameterError, ReplayError, StateError, UsappError, VerificationError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import merkle

METER = b"SM-000123"
T0 = 1_767_225_600
PERIOD = 1800


def setup(seed: str = "integrity"):
    rng = HmacDrbg.from_seed(seed)
    utility = ig.Utility(ig.UtilityState(rng.random_bytes(32)))
    UTILITY_KEYS[utility.public_key] = utility.state.signing_key
    meter = ig.Meter(ig.MeterState(METER, rng.random_bytes(32), utility.public_key))
    utility.register(METER, meter.public_key)
    return utility, meter


def readings(n: int, seed: int = 0) -> list[tuple[int, list[int]]]:
    r = random.Random(seed)
    total, out = [0, 0], []
    for i in range(n):
        total = [total[0] + r.randint(0, 900), total[1] + r.randint(0, 300)]
        out.append((T0 + i * PERIOD, list(total)))
    return out


def run(n: int, seed: int = 0, check_every: int = 0):
    utility, meter = setup(f"run{seed}")
    for i, (period, registers) in enumerate(readings(n, seed)):
        meter.receipt(utility.accept(meter.record(period, registers), period + 60))
        if check_every and (i + 1) % check_every == 0:
            assert meter.check(utility.feedback(METER, meter.state.checked.size if meter.state.checked else 0,
                                                period + 120)).match
    return utility, meter


def tampered_utility(meter: ig.Meter, leaves: list[bytes], key: bytes) -> ig.Utility:
    """A utility with the real utility's signing ``key`` whose log holds ``leaves`` instead of the meter's records."""
    utility = ig.Utility(ig.UtilityState(key))
    utility.state.meters[METER] = meter.public_key
    log = merkle.MerkleLog()
    for leaf in leaves:
        log.append(leaf)
    utility.state.logs[METER] = log
    utility.state.records[METER] = [None] * len(leaves)
    return utility


# -- the check -------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 1000))
def test_identical_histories_match(n, seed):
    utility, meter = run(n, seed)
    finding = meter.check(utility.feedback(METER, 0, T0 + n * PERIOD))
    assert finding.match and finding.size == n
    assert ig.locate(meter, utility, meter.state.checked).match


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_single_change_is_found_at_its_period(data):
    n = data.draw(st.integers(2, 40))
    honest, meter = run(n, data.draw(st.integers(0, 1000)))
    leaves = [r.to_bytes() for r in meter.state.records]
    kind = data.draw(st.sampled_from(["altered", "dropped", "inserted", "reordered"]))
    i = data.draw(st.integers(0, n - 2 if kind == "reordered" else n - 1))
    if kind == "altered":
        record = meter.state.records[i]
        forged = ig.Record(record.meter, record.period, record.counter,
                           (record.registers[0] - 1 if record.registers[0] else 1,) + record.registers[1:],
                           record.signature)
        leaves[i] = forged.to_bytes()
    elif kind == "dropped":
        del leaves[i]
    elif kind == "inserted":
        leaves.insert(i, b"a record the meter never made")
    else:
        leaves[i], leaves[i + 1] = leaves[i + 1], leaves[i]
    utility = tampered_utility(meter, leaves, honest.state.signing_key)
    finding = meter.check(utility.feedback(METER, 0, T0))
    assert not finding.match
    if finding.index is None:
        finding = ig.locate(meter, utility, meter.state.checked)
    assert not finding.match
    assert finding.index == i, (kind, i, finding)
    assert finding.period == meter.state.records[i].period


def test_feedback_consistency_over_time():
    utility, meter = run(37, check_every=5)
    assert meter.state.checked.size == 35
    finding = meter.check(utility.feedback(METER, 35, T0 + 40 * PERIOD))
    assert finding.match and finding.size == 37
    # an unchanged log: same size, same root
    assert meter.check(utility.feedback(METER, 37, T0 + 41 * PERIOD)).match


def test_rewritten_history_is_detected():
    utility, meter = run(12, check_every=6)             # the meter checked at 6 and 12
    leaves = [r.to_bytes() for r in meter.state.records]
    leaves[3] = leaves[4]
    for extra in range(3):
        leaves.append(b"later %d" % extra)
    rewritten = tampered_utility(meter, leaves, utility.state.signing_key)
    with pytest.raises(VerificationError):
        meter.check(rewritten.feedback(METER, 12, T0 + 20 * PERIOD))
    same_size = tampered_utility(meter, leaves[:12], utility.state.signing_key)
    with pytest.raises(VerificationError, match="rewrote history"):
        meter.check(same_size.feedback(METER, 12, T0 + 20 * PERIOD))
    shrunk = tampered_utility(meter, leaves[:10], utility.state.signing_key)
    with pytest.raises(VerificationError, match="shrank"):
        meter.check(shrunk.feedback(METER, 10, T0 + 20 * PERIOD))


def test_bad_tree_heads_and_proofs_are_refused():
    utility, meter = run(20, check_every=10)
    for period, registers in readings(25)[20:]:
        meter.receipt(utility.accept(meter.record(period, registers), period))
    good = cbor.decode(utility.feedback(METER, 20, T0 + 30 * PERIOD))
    head = cbor.decode(good[3])
    def signed(change):
        body = {k: v for k, v in {**head, **change}.items() if k != 7}
        return cbor.encode({**body, 7: utility._key.sign(ig._tree_head_tbs(body))})

    cases = {
        "bad signature": (VerificationError, {3: cbor.encode({**head, 7: bytes(64)})}),
        "another meter": (VerificationError, {3: signed({3: b"SM-other"})}),
        "wrong root in the signed head": (VerificationError, {3: signed({5: bytes(32)})}),
        "proof from another size": (DecodeError, {4: 19}),
        "short proof hash": (DecodeError, {5: [good[5][0][:31]] + good[5][1:]}),
        "flipped proof hash": (VerificationError, {5: [bytes([good[5][0][0] ^ 1]) + good[5][0][1:]] + good[5][1:]}),
        "dropped proof hash": (DecodeError, {5: good[5][:-1]}),
        "extra proof hash": (DecodeError, {5: good[5] + [bytes(32)]}),
        "wrong version": (DecodeError, {1: ig.VERSION + 1}),
    }
    for name, (error, change) in cases.items():
        before = meter.state.checked
        with pytest.raises(error):
            meter.check(cbor.encode({**good, **change}))
        assert meter.state.checked == before, name
    # a signed head claiming one more record than the log holds: RFC 9162 proofs do not fix the size
    # (specs/merkle.md 5.3), so this is caught as a mismatch with the meter's own records
    probe = ig.Meter(ig.MeterState(METER, meter.state.device_key, meter.state.utility_public,
                                   list(meter.state.records), meter.state.log, meter.state.checked))
    assert not probe.check(cbor.encode({**good, 3: signed({4: 26})})).match
    for bad in (b"", b"\xa0", cbor.encode(good)[:-1]):
        with pytest.raises(DecodeError):
            meter.check(bad)
    assert meter.check(cbor.encode(good)).match


def test_inclusion_on_request():
    utility, meter = run(13)
    head = ig.decode_tree_head(utility.tree_head(METER, T0).to_bytes())
    for index in range(13):
        record = meter.check_inclusion(utility.inclusion(METER, index, 13), head)
        assert record == meter.state.records[index]
    m = cbor.decode(utility.inclusion(METER, 5, 13))
    m[6][0] = bytes([m[6][0][0] ^ 1]) + m[6][0][1:]
    with pytest.raises(VerificationError):
        meter.check_inclusion(cbor.encode(m), head)
    m = cbor.decode(utility.inclusion(METER, 5, 13))
    m[3] = 6
    with pytest.raises(VerificationError):
        meter.check_inclusion(cbor.encode(m), head)
    with pytest.raises(ParameterError):
        utility.inclusion(METER, 13, 13)


# -- accepting records -------------------------------------------------------------------


def test_replayed_duplicated_and_reordered_records_are_refused():
    utility, meter = setup()
    (p0, r0), (p1, r1), (p2, r2) = readings(3)
    first = meter.record(p0, r0)
    utility.accept(first, p0)
    with pytest.raises(ReplayError):
        utility.accept(first, p0)              # replayed / duplicated
    second, third = meter.record(p1, r1), meter.record(p2, r2)
    with pytest.raises(StateError):
        utility.accept(third, p2)              # reordered: counter 2 before 1
    utility.accept(second, p1)
    utility.accept(third, p2)
    with pytest.raises(ReplayError):
        utility.accept(second, p2)


def test_counters_and_registers_going_backwards_are_refused():
    utility, meter = setup()
    utility.accept(meter.record(T0, [100, 50]), T0)
    meter2 = ig.Meter(meter.state)
    with pytest.raises(StateError, match="register"):
        utility.accept(meter2.record(T0 + PERIOD, [99, 60]), T0)
    meter.state.records.pop()
    meter.state.log = merkle.MerkleLog()
    meter.state.log.append(meter.state.records[0].to_bytes())
    with pytest.raises(StateError, match="period"):
        utility.accept(meter.record(T0, [120, 60]), T0)
    assert len(utility.state.records[METER]) == 1


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_forged_or_foreign_records_are_refused(data):
    utility, meter = setup()
    record = meter.record(T0, [10, 20])
    i = data.draw(st.integers(0, len(record) - 1))
    tampered = record[:i] + bytes([record[i] ^ data.draw(st.integers(1, 255))]) + record[i + 1:]
    with pytest.raises(UsappError):
        utility.accept(tampered, T0)
    assert utility.state.records[METER] == []


def test_records_from_another_key_or_meter():
    utility, meter = setup()
    stranger = ig.Meter(ig.MeterState(METER, bytes(range(32)), utility.public_key))
    with pytest.raises(VerificationError):
        utility.accept(stranger.record(T0, [1]), T0)
    unknown = ig.Meter(ig.MeterState(b"SM-999", bytes(range(32)), utility.public_key))
    with pytest.raises(VerificationError, match="not registered"):
        utility.accept(unknown.record(T0, [1]), T0)
    for bad in ([], [1] * 17, [-1], [2**64]):
        with pytest.raises(ParameterError):
            meter.record(T0, bad)


# -- disputes ----------------------------------------------------------------------------

UTILITY_KEYS: dict[bytes, bytes] = {}


def key_of(meter: ig.Meter) -> bytes:
    """The signing key of the utility that served ``meter`` in ``run`` (found by its public key)."""
    return UTILITY_KEYS[meter.state.utility_public]


def evidence(utility_leaves, meter: ig.Meter, utility_key: bytes):
    utility = tampered_utility(meter, utility_leaves, utility_key)
    return (meter.public_key, utility.public_key, METER, [r.to_bytes() for r in meter.state.records],
            [h.to_bytes() for h in meter.state.receipts], utility.tree_head(METER, T0).to_bytes(), utility_leaves)


def test_dispute_no_difference():
    utility, meter = run(9)
    verdict = ig.arbitrate(*evidence([r.to_bytes() for r in meter.state.records], meter, key_of(meter)))
    assert verdict.party is None and verdict.index is None


def test_dispute_tampering_utility():
    _, meter = run(9)
    honest = [r.to_bytes() for r in meter.state.records]
    record = meter.state.records[4]
    altered = ig.Record(record.meter, record.period, record.counter, (record.registers[0] + 500,) + record.registers[1:],
                        record.signature).to_bytes()
    verdict = ig.arbitrate(*evidence(honest[:4] + [altered] + honest[5:], meter, key_of(meter)))
    assert (verdict.party, verdict.index, verdict.period) == ("utility", 4, record.period)
    verdict = ig.arbitrate(*evidence(honest[:4] + honest[5:], meter, key_of(meter)))          # dropped
    assert (verdict.party, verdict.index) == ("utility", 4)
    verdict = ig.arbitrate(*evidence(honest[:6], meter, key_of(meter)))                       # truncated under receipts
    assert verdict.party == "utility"


def test_dispute_tampering_meter():
    utility, meter = run(9)
    honest = [r.to_bytes() for r in meter.state.records]
    key = meter._key
    record = meter.state.records[4]
    cheaper = ig.encode_record(key, METER, record.period, record.counter,
                               (record.registers[0] - 100,) + record.registers[1:])
    meter.state.records[4] = cheaper                   # the meter rewrites its own record, re-signed
    verdict = ig.arbitrate(*evidence(honest, meter, key_of(meter)))
    assert (verdict.party, verdict.index, verdict.period) == ("meter", 4, record.period)
    meter.state.records[4] = record
    del meter.state.records[6]                         # the meter hides a record it signed
    verdict = ig.arbitrate(*evidence(honest, meter, key_of(meter)))
    assert (verdict.party, verdict.index) == ("meter", 6)


def test_dispute_evidence_must_be_genuine():
    _, meter = run(5)
    honest = [r.to_bytes() for r in meter.state.records]
    args = list(evidence(honest, meter, key_of(meter)))
    args[5] = ig.TreeHead(METER, 5, bytes(32), T0, bytes(64)).to_bytes()
    with pytest.raises(VerificationError):
        ig.arbitrate(*args)


# -- what Y reveals -----------------------------------------------------------------------


def test_feedback_reveals_no_reading():
    """Leaves are whole signed records: a record guessed from the readings, without the meter's
    signature, hashes to no leaf and no proof hash (spec 10.1)."""
    utility, meter = run(16)
    y = utility.feedback(METER, 0, T0)
    hashes = set(cbor.decode(y)[5])
    for index in range(16):
        hashes.update(cbor.decode(utility.inclusion(METER, index, 16))[6])
    for record in meter.state.records:
        guess = ig.Record(record.meter, record.period, record.counter, record.registers, bytes(64)).to_bytes()
        assert merkle.leaf_hash(guess) not in hashes


# -- restore from a backup and resync (spec 9) ----------------------------------------------


def _restored(n_before: int = 5, n_lost: int = 5, seed: str = "restore"):
    """A meter that made n_before records, was backed up, made n_lost more (all accepted), then lost
    its state and was restored from the backup, its durable boot counter bumped."""
    utility, meter = setup(seed)
    rs = readings(n_before + n_lost + 10)
    for period, registers in rs[:n_before]:
        meter.receipt(utility.accept(meter.record(period, registers), period + 60))
    meter.check(utility.feedback(METER, 0, rs[n_before - 1][0] + 120))
    backup = copy.deepcopy(meter.state)
    for period, registers in rs[n_before:n_before + n_lost]:
        meter.receipt(utility.accept(meter.record(period, registers), period + 60))
    counter = ig.BootCounter()
    return utility, ig.Meter.restore(backup, counter), counter, rs[n_before + n_lost:]


def test_a_restored_meter_resyncs_and_is_not_convicted():
    """Spec 9 (the lost-state finding).  Adversary: none; the honest meter lost its state and was
    restored from a backup 5 records old.  Before the fix its next 5 records were refused
    (ReplayError), the logs forked for good and the arbiter said the meter signed two records for one
    counter.  Now the first refusal sends it to resync: it adopts the 5 records it lost, each proved
    by an inclusion proof under the utility's signed head and signed by its own key, re-signs the
    record it made meanwhile after them, and nothing more is refused; the logs match and agree."""
    utility, meter, counter, rs = _restored()
    assert meter.state.boot == counter.value == 1
    (p0, r0), *rest = rs[:5]
    with pytest.raises(ReplayError):                    # the colliding counter is still refused...
        utility.accept(meter.record(p0, r0), p0)
    result = ig.resync(meter, utility, p0 + 100)        # ...and tells the meter to resync
    assert (result.adopted, len(result.resigned), result.superseded) == (5, 1, 0)
    assert [r.counter for r in meter.state.records] == list(range(11))
    assert [r.boot for r in meter.state.records] == [0] * 10 + [1]
    refused = 0
    for data in result.resigned:
        meter.receipt(utility.accept(data, p0 + 120))
    for period, registers in rest:
        try:
            meter.receipt(utility.accept(meter.record(period, registers), period + 60))
        except ReplayError:
            refused += 1
    assert refused == 0
    assert meter.check(utility.feedback(METER, meter.state.checked.size, rest[-1][0] + 200)).match
    verdict = ig.arbitrate(*evidence([r.to_bytes() for r in utility.state.records[METER]], meter, key_of(meter)))
    assert (verdict.party, verdict.kind) == (None, "agree")
    with pytest.raises(StateError, match="not restored"):
        ig.resync(meter, utility, rest[-1][0] + 300)


def test_lost_state_and_double_signing_get_different_verdicts():
    """Spec 8.2 rule 4.  A restored meter that could not resync and kept signing (counters 5.. in
    boot 1, later periods) collides with the records of boot 0 the utility accepted: the verdict is
    lost state, no party at fault, not double-signing.  Adversary: the meter (its device key, its
    evidence).  A meter that signs another record for a counter in the same boot, or rolls its boot
    counter back with the backup (spec 9.1 forbids it), or re-signs a billed period with another
    reading under a higher boot, is convicted of double-signing."""
    utility, meter, _, rs = _restored(seed="lost")
    for period, registers in rs[:5]:
        with pytest.raises(ReplayError):
            utility.accept(meter.record(period, registers), period)
    accepted = [r.to_bytes() for r in utility.state.records[METER]]
    verdict = ig.arbitrate(*evidence(accepted, meter, key_of(meter)))
    assert (verdict.party, verdict.kind, verdict.index, verdict.period) == (None, "lost-state", 5, rs[0][0])
    # the same restore with the boot counter restored too (boot 0): indistinguishable from fraud
    _, rolled_back, _, _ = _restored(seed="lost")
    rolled_back.state.boot = 0
    for period, registers in rs[:5]:
        rolled_back.record(period, registers)
    verdict = ig.arbitrate(*evidence(accepted, rolled_back, key_of(rolled_back)))
    assert (verdict.party, verdict.kind, verdict.index) == ("meter", "double-signed", 5)
    # a cheating meter re-signs billed periods with lower readings under a higher boot: convicted
    cheat = copy.deepcopy(meter.state)
    for index in range(5, 10):
        billed = utility.state.records[METER][index]
        cheat.records[index] = ig.encode_record(meter._key, METER, billed.period, index,
                                                [r - 1 for r in billed.registers], 7)
    verdict = ig.arbitrate(*evidence(accepted, ig.Meter(cheat), key_of(meter)))
    assert (verdict.party, verdict.kind, verdict.index) == ("meter", "double-signed", 5)
    # a meter presenting a boot that goes back in its own records
    meter.state.records[7] = ig.encode_record(meter._key, METER, rs[2][0], 7, rs[2][1], 0)
    verdict = ig.arbitrate(*evidence(accepted, meter, key_of(meter)))
    assert (verdict.party, verdict.kind) == ("meter", "meter-gap")


def _utility_with_log(meter: ig.Meter, leaves: list[bytes], key: bytes) -> ig.Utility:
    utility = tampered_utility(meter, leaves, key)
    utility.state.records[METER] = [ig.decode_record(leaf) for leaf in leaves]
    return utility


def test_resync_refuses_what_the_utility_cannot_prove():
    """Adversary: the utility (its signing key, its log), answering a restored meter's resync.  A
    record the meter never signed, a log that does not extend the meter's backup, or a log that
    does not prove consistency with the head the meter checked is refused (VerificationError) and the
    meter adopts nothing; a record of another counter is refused too."""
    honest, meter, _, rs = _restored(seed="resync-bad")
    key = honest.state.signing_key
    leaves = [r.to_bytes() for r in honest.state.records[METER]]
    r7 = ig.decode_record(leaves[7])
    forged = ig.Record(r7.meter, r7.period, r7.counter, (r7.registers[0] + 1,) + r7.registers[1:], r7.signature)
    early = ig.decode_record(leaves[2])
    other = ig.Record(early.meter, early.period, early.counter, (early.registers[0] + 1,) + early.registers[1:],
                      early.signature)
    cases = {
        "unsigned record": (leaves[:7] + [forged.to_bytes()] + leaves[8:], "signature"),
        "rewrites the backup": (leaves[:2] + [other.to_bytes()] + leaves[3:], "consistency proof"),
        "record out of place": (leaves[:6] + [leaves[5]] + leaves[7:], "not the meter's record 6"),
    }
    for name, (log, message) in cases.items():
        restored = ig.Meter(copy.deepcopy(meter.state))
        with pytest.raises(VerificationError, match=message):
            ig.resync(restored, _utility_with_log(meter, log, key), rs[0][0])
        assert restored.state.log.size == 5 and restored.state.restored_at == 5, name
        assert restored.state.checked == meter.state.checked and restored.state.receipts == meter.state.receipts
    unchecked = ig.Meter(copy.deepcopy(meter.state))     # a backup without a checked head: the probe (step 2)
    unchecked.state.checked = None
    with pytest.raises(VerificationError, match="does not extend"):
        ig.resync(unchecked, _utility_with_log(meter, cases["rewrites the backup"][0], key), rs[0][0])
    assert ig.resync(meter, honest, rs[0][0]).adopted == 5


def test_a_resync_with_nothing_lost_and_boots_going_back():
    """A restore from an up-to-date backup adopts nothing and keeps its counters; the utility refuses
    a record whose boot is below its predecessor's (StateError); boots are range-checked."""
    utility, meter = setup("boots")
    rs = readings(4)
    for period, registers in rs[:2]:
        meter.receipt(utility.accept(meter.record(period, registers), period))
    restored = ig.Meter.restore(meter.state, ig.BootCounter(3))
    assert restored.state.boot == 4 and ig.resync(restored, utility, rs[2][0]).adopted == 0
    restored.receipt(utility.accept(restored.record(*rs[2]), rs[2][0]))
    with pytest.raises(StateError, match="boot"):
        utility.accept(ig.encode_record(meter._key, METER, rs[3][0], 3, rs[3][1], 2).to_bytes(), rs[3][0])
    with pytest.raises(ParameterError):
        ig.encode_record(meter._key, METER, rs[3][0], 3, rs[3][1], 2**32)
    with pytest.raises(StateError, match="exhausted"):
        ig.BootCounter(2**32 - 1).bump()
    data = cbor.decode(restored.state.records[0].to_bytes())
    data[7] = 2**32
    with pytest.raises(DecodeError, match="boot"):
        ig.decode_record(cbor.encode(data))
