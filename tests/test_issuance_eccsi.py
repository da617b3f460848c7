"""The ECCSI/SAKKE issuance suite (protocols/issuance_eccsi.py, specs/issuance.md section 10.4).

Enrollment runs through the real :mod:`protocols.issuance` code (the PKG's checks, HPKE, the log)
with the certificates of ``tests/test_issuance.py``.  SAKKE's RSK check costs one 1024-bit pairing
(about 35 ms), so the tests that reach it are counted: every other refusal fails before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import test_issuance as tiss  # the tests directory is on sys.path under pytest
from protocols import issuance as iss
from protocols import issuance_eccsi as ie
from protocols.errors import DecodeError, ParameterError, RecoveryError, VerificationError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_range
from protocols.schemes import eccsi, sakke

SERIAL = "SM-000123"
DEC_2026 = ie.epoch_of_period("2026-12")


@pytest.fixture(scope="module")
def kms() -> ie.EccsiSakkeExtractor:
    rng = HmacDrbg.from_seed("tests/issuance-eccsi/kms")
    return ie.EccsiSakkeExtractor(eccsi.KeyGen(rng), sakke.KeyGen(ie.PARAMS, rng))


@pytest.fixture(scope="module")
def other_kms() -> ie.EccsiSakkeExtractor:
    rng = HmacDrbg.from_seed("tests/issuance-eccsi/other-kms")
    return ie.EccsiSakkeExtractor(eccsi.KeyGen(rng), sakke.KeyGen(ie.PARAMS, rng))


def identity(epoch: int = DEC_2026, serial: str = SERIAL) -> bytes:
    return iss.Identity(tiss.NS, serial, "meter", epoch).to_bytes()


def enroll(kms: ie.EccsiSakkeExtractor, epoch: int, meter: iss.Meter | None = None, now: int = tiss.NOW,
           seed: str = "run") -> tuple[iss.Pkg, iss.Meter, iss.IssuedKey]:
    pkg = tiss.new_pkg(epoch=epoch, extractor=kms)
    if meter is None:
        meter = tiss.new_meter(suite=ie.SUITE, verify=ie.eccsi_sakke_key_verifier(kms.KPAK, kms.Z))
    return pkg, meter, tiss.run(pkg, meter, now=now, seed=seed)


# -- 10.4.1 and 10.4.2: epochs, periods, identifiers ------------------------------------------


def test_epochs_are_months_from_1970():
    assert ie.period_of_epoch(0) == "1970-01"
    assert ie.period_of_epoch(DEC_2026) == "2026-12" and DEC_2026 == 56 * 12 + 11
    assert ie.period_of_epoch(ie.MAX_SUITE_EPOCH) == "9999-12"
    for bad in (-1, ie.MAX_SUITE_EPOCH + 1, 2**32 - 1, True, "3"):
        with pytest.raises(ParameterError):
            ie.period_of_epoch(bad)
    for bad in ("1969-12", "2026-13", "26-01", 7):
        with pytest.raises(ParameterError):
            ie.epoch_of_period(bad)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, ie.MAX_SUITE_EPOCH))
def test_epoch_and_period_round_trip(epoch):
    period = ie.period_of_epoch(epoch)
    assert ie.epoch_of_period(period) == epoch
    if epoch < ie.MAX_SUITE_EPOCH:
        assert ie.period_of_epoch(epoch + 1) == eccsi.next_period(period)


@settings(max_examples=300, deadline=None)
@given(st.dates(dt.date(1970, 1, 3), dt.date(9999, 12, 29)))
def test_the_pkg_issues_the_newest_held_epoch(day):
    """Spec 10.4.1: one or two consecutive epochs are held on any day, the PKG issues the newer, and
    it is the month of the day or, from the second-to-last day of a month, the next month."""
    held = ie.epochs_held_on(day)
    assert 1 <= len(held) <= 2 and list(held) == list(range(held[0], held[0] + len(held)))
    assert ie.pkg_epoch_on(day) == held[-1]
    own = ie.epoch_of_period(eccsi.period_of(day))
    assert own in held
    tomorrow = day + dt.timedelta(days=1)
    assert ie.pkg_epoch_on(day) in (own, own + 1) and (ie.pkg_epoch_on(day) == own + 1) == (
        (tomorrow + dt.timedelta(days=1)).month != day.month)


def test_the_monthly_change_over():
    """RFC 6509 3.3 as the suite schedules it: on 30 December 2026 the PKG is at 2027-01 and the
    device holds 2026-12 and 2027-01; on 2 January both; from 3 January only 2027-01."""
    assert ie.epochs_held_on(dt.date(2026, 12, 29)) == (DEC_2026,)
    assert ie.epochs_held_on(dt.date(2026, 12, 30)) == (DEC_2026, DEC_2026 + 1)
    assert ie.pkg_epoch_on(dt.date(2026, 12, 30)) == DEC_2026 + 1
    assert ie.epochs_held_on(dt.date(2027, 1, 2)) == (DEC_2026, DEC_2026 + 1)
    assert ie.epochs_held_on(dt.date(2027, 1, 3)) == (DEC_2026 + 1,)


def test_identifier_of_an_identity():
    ID = ie.identifier_of(identity())
    assert ID == eccsi.Identifier("2026-12", "urn:usapp:test-meters:meter:SM-000123")
    assert ID.encode() == b"2026-12\x00urn:usapp:test-meters:meter:SM-000123\x00"
    with pytest.raises(DecodeError):
        ie.identifier_of(b"usapp-id-v2/test-meters/meter/SM-000123/07")
    with pytest.raises(ParameterError):
        ie.identifier_of(identity(ie.MAX_SUITE_EPOCH + 1))


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,15}\Z"), st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"),
       st.sampled_from(iss.ROLES), st.integers(0, ie.MAX_SUITE_EPOCH))
def test_every_identity_has_an_identifier_sakke_accepts(namespace, serial, role, epoch):
    """Spec 10.4.2: the URN is unambiguous (parsed back), the identifier is at most 111 octets, so
    its integer lies in [2, q) as RFC 6508 2.2 requires (sakke.identifier_integer accepts it)."""
    ID = ie.identifier_of(iss.Identity(namespace, serial, role, epoch).to_bytes())
    encoded = ID.encode()
    assert len(encoded) <= 111 and eccsi.Identifier.decode(encoded) == ID
    assert ID.uri.split(":")[2:] == [namespace, role, serial]
    assert 2 <= sakke.identifier_integer(ie.PARAMS, encoded) < ie.PARAMS.q


# -- 10.4.3 to 10.4.5: the extractor ---------------------------------------------------------


def test_extraction_is_deterministic_and_follows_the_stated_construction(kms):
    """Spec 10.4.3: v is the first RandomRange(drbg, 1, q) of HMAC_DRBG(I2OSP(KSAK, 32), ID,
    "usapp-eccsi-v/v1"); PVT = [v]G, SSK = KSAK + HS v mod q (RFC 6507 5.1.1), RSK of RFC 6508
    6.1.1; the same identity gives the same bytes, another epoch other keys."""
    key = kms.extract(identity())
    assert key == kms.extract(identity()) and len(key) == ie.KEY_BYTES == 354
    parts = ie.decode_key(key)
    ID = ie.identifier_of(identity()).encode()
    drbg = HmacDrbg("SHA-256")
    drbg.instantiate(kms.eccsi_kms.KSAK.to_bytes(32, "big"), ID, b"usapp-eccsi-v/v1")
    v = random_range(drbg, 1, eccsi.q)
    assert parts.PVT == eccsi.encode_point(eccsi.G() * v)
    HS = int.from_bytes(eccsi.compute_HS(kms.KPAK, ID, parts.PVT), "big")
    assert int.from_bytes(parts.SSK, "big") == (kms.eccsi_kms.KSAK + HS * v) % eccsi.q
    assert parts.RSK == sakke.ExtractRSK(kms.sakke_kms, ID)
    other = ie.decode_key(kms.extract(identity(DEC_2026 + 1)))
    assert other.SSK != parts.SSK and other.PVT != parts.PVT and other.RSK != parts.RSK
    assert parts.SSK.hex() not in repr(parts) and parts.RSK.hex() not in repr(parts)
    assert str(kms.eccsi_kms.KSAK) not in repr(kms)


def test_the_extractor_refuses_what_has_no_key(kms):
    with pytest.raises(ParameterError):
        kms.extract(identity(ie.MAX_SUITE_EPOCH + 1))
    with pytest.raises(ParameterError):
        ie.EccsiSakkeExtractor(kms.eccsi_kms, "z")
    with pytest.raises(ParameterError):
        ie.derive_v(0, b"2026-12\x00urn:a:b\x00")


# -- enrollment through the issuance protocol ------------------------------------------------


def test_a_meter_enrolls_for_eccsi_and_sakke_keys(kms):
    """The done-when of issue 21: the real PKG checks the certificate chain and signature, extracts,
    seals with HPKE and logs; the meter opens, runs ValidateSsk and ValidateRSK (one pairing) and
    keeps the key.  The key signs (ECCSI, verified from the identifier) and decapsulates (SAKKE)."""
    pkg, meter, issued = enroll(kms, DEC_2026)
    assert (issued.identity, issued.epoch, issued.suite) == (identity(), DEC_2026, ie.SUITE)
    (entry,) = pkg.state.log.verify()
    assert (entry.identity, entry.suite) == (identity(), ie.SUITE)
    keys = ie.check_key(kms.KPAK, kms.Z, issued.identity, issued.key)                  # pairing 1
    ID = keys.identifier.encode()
    rng = HmacDrbg.from_seed("tests/issuance-eccsi/use")
    signature = eccsi.Sign(keys.signing, b"reading", rng)
    eccsi.Verify(kms.KPAK, ID, b"reading", signature)
    ssv, data = sakke.Encapsulate(ie.PARAMS, kms.Z, ID, rng)
    assert sakke.Decapsulate(keys.receiver, data) == ssv                                # pairing 2
    assert ie.signing_key(kms.KPAK, issued).SSK == keys.signing.SSK


def test_a_device_holds_two_periods_around_the_change(kms):
    """Spec 10.4.1: the meter enrolls in December (epoch 2026-12), the PKG moves to 2027-01 on 30
    December and the meter enrolls again: it holds both keys, signs with either, and from 3 January
    erases the December key."""
    december = dt.datetime(2026, 12, 10, tzinfo=dt.timezone.utc)
    change = dt.datetime(2026, 12, 30, tzinfo=dt.timezone.utc)
    assert ie.pkg_epoch_on(december.date()) == DEC_2026 and ie.pkg_epoch_on(change.date()) == DEC_2026 + 1
    pkg, meter, first = enroll(kms, DEC_2026, now=int(december.timestamp()))           # pairing 3
    pkg.advance_epoch(ie.pkg_epoch_on(change.date()))
    second = tiss.run(pkg, meter, now=int(change.timestamp()), seed="second")           # pairing 4
    assert sorted(meter.state.keys) == list(ie.epochs_held_on(change.date())) == [DEC_2026, DEC_2026 + 1]
    assert [e.epoch for e in pkg.state.log.verify()] == [DEC_2026, DEC_2026 + 1]
    for issued in (first, second):
        key = ie.signing_key(kms.KPAK, issued)
        eccsi.Verify(kms.KPAK, key.ID, b"m", eccsi.Sign(key, b"m", HmacDrbg.from_seed("j")))
    meter.forget_before(min(ie.epochs_held_on(dt.date(2027, 1, 3))))
    assert sorted(meter.state.keys) == [DEC_2026 + 1]


def test_verify_key_refuses_keys_for_another_identity_period_or_kms(kms, other_kms):
    """Spec 10.4.6: each refusal is the check's typed error and needs no pairing: the SSK check comes
    first.  Through the meter every refusal is the VerificationError of specs/issuance.md 7.3 step 5."""
    verify = ie.eccsi_sakke_key_verifier(kms.KPAK, kms.Z)
    mine = kms.extract(identity())
    cases = [
        (identity(serial="SM-000124"), mine, VerificationError),         # another meter's identity
        (identity(DEC_2026 + 1), mine, VerificationError),               # another period
        (identity(), other_kms.extract(identity()), VerificationError),  # another KMS
        (identity(), mine[:-1], DecodeError),                             # 353 octets
        (identity(), mine + b"\x00", DecodeError),
        (identity(), bytes(32) + mine[32:], VerificationError),           # SSK = 0
        (identity(), mine[:32] + b"\x04" + bytes(64) + mine[97:], DecodeError),   # PVT off the curve
        (b"usapp-id-v2/test-meters/meter/SM-000123/x", mine, DecodeError),
    ]
    for ident, key, error in cases:
        with pytest.raises(error):
            verify(ident, key)
    for position in (0, 31, 33, 96):                                      # one bit of the SSK or PVT
        tampered = bytearray(mine)
        tampered[position] ^= 1
        with pytest.raises((VerificationError, DecodeError)):
            verify(identity(), bytes(tampered))


def test_a_tampered_rsk_is_refused(kms):
    """The RSK is checked after the SSK: a point off E is a DecodeError before any pairing; another
    identity's RSK (a valid point of E[q]) fails the pairing equation: VerificationError (pairing 5)."""
    verify = ie.eccsi_sakke_key_verifier(kms.KPAK, kms.Z)
    mine = kms.extract(identity())
    off_curve = mine[:97] + b"\x04" + bytes(255) + b"\x01"
    with pytest.raises(DecodeError):
        verify(identity(), off_curve)
    foreign = ie.decode_key(kms.extract(identity(serial="SM-000999"))).RSK
    with pytest.raises(VerificationError):
        verify(identity(), mine[:97] + foreign)


def test_the_meter_refuses_a_delivery_that_fails_the_check_and_stays_open(kms, other_kms):
    """A meter configured with another KMS's KPAK and Z refuses the PKG's key (7.3 step 5,
    VerificationError naming the suite's error); the enrollment stays open."""
    meter = tiss.new_meter(suite=ie.SUITE, verify=ie.eccsi_sakke_key_verifier(other_kms.KPAK, other_kms.Z))
    pkg = tiss.new_pkg(epoch=DEC_2026, extractor=kms)
    rng = HmacDrbg.from_seed("tests/issuance-eccsi/refused")
    request = meter.enroll(pkg.challenge(tiss.NOW, rng), rng)
    with pytest.raises(VerificationError, match="VerificationError"):
        meter.receive(pkg.enroll(request, tiss.NOW, rng))
    assert not meter.state.keys and all(p.hpke_private is not None for p in meter.state.pending.values())
    with pytest.raises(DecodeError):
        ie.eccsi_sakke_key_verifier(kms.KPAK[:-1], kms.Z)
    with pytest.raises(DecodeError):
        ie.eccsi_sakke_key_verifier(kms.KPAK, kms.Z[:-1])


def test_a_suite_mismatch_is_refused(kms):
    meter = tiss.new_meter(suite="test-hmac-sha256", verify=ie.eccsi_sakke_key_verifier(kms.KPAK, kms.Z))
    pkg = tiss.new_pkg(epoch=DEC_2026, extractor=kms)
    with pytest.raises(DecodeError, match="unknown suite"):
        meter.enroll(pkg.challenge(tiss.NOW, HmacDrbg.from_seed("s")), HmacDrbg.from_seed("s"))
    with pytest.raises(ParameterError):
        ie.signing_key(kms.KPAK, iss.IssuedKey(identity(), DEC_2026, "other", b"k"))


# -- 10.5: ECCSI issuance split t-of-n --------------------------------------------------------


@pytest.fixture(scope="module")
def threshold():
    from protocols.schemes import eccsi_threshold as et

    kms, keys = et.deal(HmacDrbg.from_seed("tests/issuance-eccsi/threshold"), 3, [1, 2, 3, 4, 5])
    return kms, keys


def _issue_split(kms, keys, ID, S, lie=None):
    from protocols.schemes import eccsi_threshold as et

    rounds = {i: et.commit(keys[i], kms, ID, S) for i in S}
    commitments = {i: rounds[i][1] for i in S}
    reveals = {i: rounds[i][0] for i in S}
    responses = {i: et.respond(keys[i], kms, ID, S, commitments, reveals) for i in S}
    if lie is not None:
        responses[lie] = ((int.from_bytes(responses[lie], "big") + 1) % eccsi.q).to_bytes(32, "big")
    return commitments, reveals, responses


def test_any_t_nodes_issue_a_valid_key_no_node_holds(threshold):
    """Spec 10.5: two different 3-of-5 sessions each give an (SSK, PVT) that passes ValidateSsk under
    the one KPAK and signs; every node's answer passes its per-node check; the published node keys
    are consistent (Feldman in the exponent); sessions are deterministic."""
    from protocols.schemes import eccsi_threshold as et

    kms, keys = threshold
    et.check_publics(kms)
    ID = ie.identifier_of(identity()).encode()
    pvts = set()
    for S in ([1, 2, 3], [2, 4, 5]):
        _, reveals, responses = _issue_split(kms, keys, ID, S)
        key = et.combine(kms, ID, S, reveals, responses)
        eccsi.Verify(kms.KPAK, ID, b"m", eccsi.Sign(key, b"m", HmacDrbg.from_seed("t")))
        assert _issue_split(kms, keys, ID, S)[2] == responses
        pvts.add(key.PVT)
    assert len(pvts) == 2                              # v depends on the session; both pairs are valid
    shares = [keys[i].share for i in (1, 2, 3)]
    assert eccsi.encode_point(eccsi.G() * (sum(shares) % eccsi.q)) != kms.KPAK


def test_a_lying_node_is_named(threshold):
    """Spec 10.5.3: a wrong answer fails the device's check [SSK_i]G = [lambda_i]KPAK_i + [HS]U_i and
    names the node; a U_i that does not match the commitment is refused by the other nodes; missing
    answers are a RecoveryError; a forged node key breaks the consistency check."""
    from protocols.schemes import eccsi_threshold as et

    kms, keys = threshold
    ID = ie.identifier_of(identity()).encode()
    S = [1, 3, 4]
    commitments, reveals, responses = _issue_split(kms, keys, ID, S, lie=3)
    with pytest.raises(VerificationError, match="node 3"):
        et.combine(kms, ID, S, reveals, responses)
    swapped = dict(reveals)
    swapped[4] = eccsi.encode_point(eccsi.G())
    with pytest.raises(VerificationError, match="node 4"):
        et.respond(keys[1], kms, ID, S, commitments, swapped)
    with pytest.raises(VerificationError, match="own U_i"):
        et.respond(keys[4], kms, ID, S, commitments, swapped)
    with pytest.raises(RecoveryError):
        et.combine(kms, ID, S, reveals, {i: responses[i] for i in S[:2]})
    with pytest.raises(ParameterError):
        et.session(kms, [1, 2])
    bad = dataclasses.replace(kms, publics={**kms.publics, 5: kms.publics[1]})
    with pytest.raises(VerificationError):
        et.check_publics(bad)


def test_split_issuance_through_one_pkg_per_node(threshold):
    """Spec 10.5.5: three of five nodes each run their own PKG (certificate checks, HPKE, log) with
    a ThresholdEccsiNodeExtractor; the rounds among them are played by ``rounds`` (every node's
    commit of 10.5.2); the device checks each node's delivery against KPAK_i and combines an SSK
    that signs under the one KPAK.  A node that answers wrongly is refused on receipt, named."""
    from protocols.schemes import eccsi_threshold as et

    kms, keys = threshold
    S = (1, 3, 5)

    def rounds(ID, session):
        made = {i: et.commit(keys[i], kms, ID, session) for i in session}
        return {i: made[i][1] for i in made}, {i: made[i][0] for i in made}

    shares = {}
    for node in S:
        pkg = tiss.new_pkg(epoch=DEC_2026, extractor=ie.ThresholdEccsiNodeExtractor(keys[node], kms, S, rounds))
        meter = tiss.new_meter(suite=ie.THRESHOLD_SUITE, verify=ie.threshold_eccsi_share_verifier(kms, S, node))
        shares[node] = tiss.run(pkg, meter, seed=f"node-{node}")
        assert [e.suite for e in pkg.state.log.verify()] == [ie.THRESHOLD_SUITE]
    key = ie.combine_eccsi_shares(kms, S, shares)
    ID = ie.identifier_of(identity()).encode()
    eccsi.Verify(kms.KPAK, ID, b"m", eccsi.Sign(key, b"m", HmacDrbg.from_seed("split")))
    with pytest.raises(RecoveryError):
        ie.combine_eccsi_shares(kms, S, {1: shares[1], 3: shares[3]})
    mixed = dict(shares)
    mixed[5] = dataclasses.replace(shares[5], key=shares[5].key[:32] + shares[1].key[32:97] * 3)
    with pytest.raises((VerificationError, DecodeError)):
        ie.combine_eccsi_shares(kms, S, mixed)

    @dataclasses.dataclass(frozen=True)
    class Liar(ie.ThresholdEccsiNodeExtractor):
        def extract(self, identity: bytes) -> bytes:
            honest = super().extract(identity)
            return (int.from_bytes(honest[:32], "big") ^ 1).to_bytes(32, "big") + honest[32:]

    pkg = tiss.new_pkg(epoch=DEC_2026, extractor=Liar(keys[3], kms, S, rounds))
    meter = tiss.new_meter(suite=ie.THRESHOLD_SUITE, verify=ie.threshold_eccsi_share_verifier(kms, S, 3))
    with pytest.raises(VerificationError, match="node 3"):
        tiss.run(pkg, meter, seed="liar")
