"""Integrity records signed with ECCSI (protocols/integrity.py, specs/integrity.md section 3.3).

The meter signs with the SSK/PVT of its RFC 6509 identifier (key period || NUL || its URI || NUL);
the utility and the arbiter verify with the KMS's KPAK and the meter's URI alone.  The tests play
the adversaries of specs/integrity.md section 11 (the utility, the meter, another meter) against
ECCSI records, and run the arbiter's rules over both suites.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import test_integrity as ti  # the tests directory is on sys.path under pytest
import test_issuance as tiss
from protocols import integrity as ig
from protocols import issuance_eccsi as ie
from protocols.errors import DecodeError, ParameterError, ReplayError, StateError, VerificationError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import eccsi, merkle, sakke

URI = b"urn:usapp:test-meters:meter:SM-000123"
OTHER = b"urn:usapp:test-meters:meter:SM-000124"
T0 = ti.T0                                   # 2026-01-01T00:00:00Z
DAY = 86_400
SUITES = [ig.SUITE_ED25519, ig.SUITE_ECCSI]


def utc(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc).timestamp())


@pytest.fixture(scope="module")
def kms() -> eccsi.EccsiKms:
    return eccsi.KeyGen(HmacDrbg.from_seed("tests/integrity-eccsi/kms"))


def issue(kms: eccsi.EccsiKms, period: str, uri: bytes = URI, seed: str = "issue") -> eccsi.IssuedKey:
    return eccsi.ConstructSskPvt(kms, eccsi.Identifier(period, uri.decode()).encode(), HmacDrbg.from_seed(seed))


def signing_key(kms: eccsi.EccsiKms, period: str, uri: bytes = URI) -> eccsi.SigningKey:
    issued = issue(kms, period, uri)
    return eccsi.ValidateSsk(kms.KPAK, eccsi.Identifier(period, uri.decode()).encode(), issued.SSK, issued.PVT)


def setup(suite: str, kms: eccsi.EccsiKms, seed: str = "integrity-eccsi", periods=("2026-01",), uri: bytes = URI):
    """A utility and a registered meter of ``suite``; an ECCSI meter holds the keys of ``periods``
    and is registered with its EccsiRecordKey (the KPAK and its URI), no public key."""
    rng = HmacDrbg.from_seed(seed)
    utility = ig.Utility(ig.UtilityState(rng.random_bytes(32)))
    ti.UTILITY_KEYS[utility.public_key] = utility.state.signing_key
    if suite == ig.SUITE_ED25519:
        meter = ig.Meter(ig.MeterState(uri, rng.random_bytes(32), utility.public_key))
    else:
        meter = ig.Meter(ig.MeterState(uri, b"", utility.public_key, suite=ig.SUITE_ECCSI, kpak=kms.KPAK))
        for period in periods:
            issued = issue(kms, period, uri, seed + period)
            meter.add_key(period, issued.SSK, issued.PVT)
    utility.register(uri, meter.verification_key)
    return utility, meter, rng


def run(suite: str, kms: eccsi.EccsiKms, n: int, seed: str = "run"):
    utility, meter, rng = setup(suite, kms, seed)
    for period, registers in ti.readings(n):
        meter.receipt(utility.accept(meter.record(period, registers, rng), period + 60))
    return utility, meter, rng


def forge_log(meter: ig.Meter, leaves: list[bytes], key: bytes) -> ig.Utility:
    utility = ig.Utility(ig.UtilityState(key))
    utility.state.meters[meter.state.meter] = meter.verification_key
    log = merkle.MerkleLog()
    for leaf in leaves:
        log.append(leaf)
    utility.state.logs[meter.state.meter] = log
    return utility


def evidence(leaves: list[bytes], meter: ig.Meter):
    utility = forge_log(meter, leaves, ti.UTILITY_KEYS[meter.state.utility_public])
    return (meter.verification_key, utility.public_key, meter.state.meter,
            [r.to_bytes() for r in meter.state.records], [h.to_bytes() for h in meter.state.receipts],
            utility.tree_head(meter.state.meter, T0).to_bytes(), leaves)


def sign_as(key: eccsi.SigningKey, record: ig.Record, rng=None) -> ig.Record:
    """``record`` with an ECCSI signature by ``key`` over its body, whatever the body says (the
    adversary's signing oracle: no check of meter id or key period)."""
    return dataclasses.replace(record, signature=ig.eccsi_sign(key, ig.record_tbs(record.body()),
                                                               rng or HmacDrbg.from_seed("forger")))


# -- the record suite ------------------------------------------------------------------------


def test_an_eccsi_record_and_its_encoding(kms):
    """Spec 3.3: keys 1-7 as for Ed25519, 8 the 129-octet ECCSI signature, 9 the suite, 10 the key
    period; the signature covers keys 1-7, 9, 10; the record decodes to itself."""
    utility, meter, rng = setup(ig.SUITE_ECCSI, kms)
    data = meter.record(T0, [5, 7], rng)
    fields = cbor.decode(data)
    assert sorted(fields) == list(range(1, 11))
    assert (fields[3], fields[9], fields[10], len(fields[8])) == (URI, "eccsi-p256", "2026-01", 129)
    record = ig.decode_record(data)
    assert record.to_bytes() == data and record.suite == ig.SUITE_ECCSI
    tbs = ig.record_tbs({k: v for k, v in fields.items() if k != 8})
    eccsi.Verify(kms.KPAK, b"2026-01\x00" + URI + b"\x00", tbs, fields[8])     # the RFC 6507 verifier, directly
    assert eccsi.Signature.decode(fields[8]).s <= ig.ECCSI_HALF_Q
    utility.accept(data, T0 + 60)
    with pytest.raises(StateError):
        _ = meter.public_key


def test_the_largest_eccsi_record_fits_the_record_limit(kms):
    """A 128-octet URI, 16 registers of 2^64 - 1, the largest period, counter and boot: 467 octets,
    within the 1,024 of protocols/limits.py."""
    uri = b"urn:usapp:" + b"x" * 118
    key = signing_key(kms, "9999-12", uri)
    record = ig.encode_record(key, uri, ig.LAST_DAY, 2**64 - 1, [2**64 - 1] * 16, 2**32 - 1,
                              HmacDrbg.from_seed("big"))
    assert len(record.to_bytes()) == 467 <= ig.MAX_RECORD_BYTES
    assert ig.decode_record(record.to_bytes()) == record


@pytest.mark.parametrize("change, error", [
    ({9: "ed25519"}, DecodeError), ({9: "eccsi-p384"}, DecodeError), ({10: "2026-13"}, DecodeError),
    ({10: "2026-1"}, DecodeError), ({10: 202601}, DecodeError), ({8: bytes(64)}, DecodeError),
    ({8: bytes(130)}, DecodeError), ({9: None}, DecodeError), ({10: None}, DecodeError),
])
def test_malformed_eccsi_records_are_decode_errors(kms, change, error):
    _, meter, rng = setup(ig.SUITE_ECCSI, kms)
    fields = cbor.decode(meter.record(T0, [1], rng))
    for key, value in change.items():
        if value is None:
            del fields[key]
        else:
            fields[key] = value
    with pytest.raises(error):
        ig.decode_record(cbor.encode(fields))


def test_the_meter_key_must_be_an_identifier(kms):
    for bad in (b"SM-000123", b"urn:usapp:a b", b"", b"urn:x:" + b"y" * 200, "urn:x:y"):
        with pytest.raises(ParameterError):
            ig.EccsiRecordKey(kms.KPAK, bad)
    with pytest.raises(ParameterError):
        ig.EccsiRecordKey(kms.KPAK[:-1], URI)
    utility, meter, _ = setup(ig.SUITE_ECCSI, kms)
    with pytest.raises(ParameterError):
        utility.register(OTHER, ig.EccsiRecordKey(kms.KPAK, URI))
    with pytest.raises(ParameterError):
        ig.arbitrate(ig.EccsiRecordKey(kms.KPAK, URI), utility.public_key, OTHER, [], [],
                     utility.tree_head(URI, T0).to_bytes(), [])
    with pytest.raises(ParameterError):
        ig.Meter(ig.MeterState(URI, b"", b"", suite="eccsi-p384"))
    with pytest.raises(VerificationError):            # a key for another identifier is not installed
        wrong = issue(kms, "2026-01", OTHER)
        meter.add_key("2026-01", wrong.SSK, wrong.PVT)


def test_a_record_checks_from_the_spec_text_under_an_independent_verifier(kms):
    """Spec 3.3 from its text alone: M built with cbor2 and hashlib, ID = key period || NUL || meter
    || NUL, HS and HE of RFC 6507, and (r, s^-1 mod q) checked as an ECDSA P-256 signature of the
    prehashed HE under Y = [SSK]G by OpenSSL (``cryptography``); s is in its low form."""
    import hashlib

    import cbor2
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    _, meter, rng = setup(ig.SUITE_ECCSI, kms)
    data = meter.record(utc(2026, 1, 15), [123456, 789], rng)
    fields = cbor2.loads(data)
    signature = fields.pop(8)
    M = b"usapp-integrity-v2" + (6).to_bytes(4, "big") + b"record" + cbor2.dumps(fields, canonical=True)
    ID = fields[10].encode() + b"\x00" + fields[3] + b"\x00"
    r, s, PVT = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64:]
    assert s <= (eccsi.q - 1) // 2
    G = bytes.fromhex("04" "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
                      "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5")
    HS = hashlib.sha256(G + kms.KPAK + ID + PVT).digest()
    HE = hashlib.sha256(HS + r.to_bytes(32, "big") + M).digest()
    SSK = int.from_bytes(meter.state.eccsi_keys["2026-01"][0], "big")
    Y = ec.derive_private_key(SSK, ec.SECP256R1()).public_key()
    Y.verify(utils.encode_dss_signature(r, pow(s, -1, eccsi.q)), HE, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


# -- the adversaries -------------------------------------------------------------------------


def test_a_record_under_another_meters_identity_is_refused(kms):
    """Adversary: another meter (its own valid keys).  It cannot make a record of this meter: its
    signature over a record naming this meter fails under this meter's identifier; its own valid
    record is not this meter's (the utility files it nowhere, the arbiter calls it forged)."""
    utility, meter, rng = setup(ig.SUITE_ECCSI, kms)
    theirs = signing_key(kms, "2026-01", OTHER)
    with pytest.raises(ParameterError):                                    # the honest signer refuses
        ig.encode_record(theirs, URI, T0, 0, [1], 0, rng)
    forged = sign_as(theirs, ig.Record(URI, T0, 0, (1,), b"", 0, ig.SUITE_ECCSI, "2026-01"))
    with pytest.raises(VerificationError):
        utility.accept(forged.to_bytes(), T0)
    own = ig.encode_record(theirs, OTHER, T0, 0, [1], 0, rng)
    with pytest.raises(VerificationError, match="not registered"):
        utility.accept(own.to_bytes(), T0)
    with pytest.raises(VerificationError, match="another meter"):
        ig.verify_record(own, meter.verification_key)
    honest = [meter.record(T0 + i * 1800, [i], rng) for i in range(3)]
    for data in honest:
        meter.receipt(utility.accept(data, T0))
    verdict = ig.arbitrate(*evidence(honest[:1] + [own.to_bytes()] + honest[2:], meter))
    assert (verdict.party, verdict.kind, verdict.index) == ("utility", "forged", 1)


def test_a_record_relabelled_to_another_period_or_register_is_refused(kms):
    """Adversary: the utility or the network, changing a signed record.  On 31 January both 2026-01
    and 2026-02 are accepted, yet relabelling the key period changes the identifier: refused; so is
    any change of a register, the period or the counter."""
    utility, meter, rng = setup(ig.SUITE_ECCSI, kms, periods=("2026-01", "2026-02"))
    record = ig.decode_record(meter.record(utc(2026, 1, 31), [100, 50], rng))
    assert record.key_period == "2026-01"
    for changed in (dataclasses.replace(record, key_period="2026-02"),
                    dataclasses.replace(record, registers=(101, 50)),
                    dataclasses.replace(record, period=record.period + 1),
                    dataclasses.replace(record, counter=1),
                    dataclasses.replace(record, boot=1)):
        with pytest.raises(VerificationError):
            ig.verify_record(changed, meter.verification_key)
    with pytest.raises(VerificationError):
        utility.accept(dataclasses.replace(record, registers=(101, 50)).to_bytes(), T0)
    utility.accept(record.to_bytes(), T0)


def test_a_swapped_pvt_is_refused(kms):
    """Adversary: anyone holding valid PVTs (its own, this meter's of another period).  The PVT is
    bound by HS = hash(G || KPAK || ID || PVT): any other PVT, valid or not a point, is refused."""
    _, meter, rng = setup(ig.SUITE_ECCSI, kms, periods=("2026-01", "2026-02"))
    record = ig.decode_record(meter.record(utc(2026, 1, 31), [1], rng))
    sig = eccsi.Signature.decode(record.signature)
    pvts = [issue(kms, "2026-02", URI, "integrity-eccsi2026-02").PVT, issue(kms, "2026-01", OTHER).PVT,
            eccsi.encode_point(eccsi.G()), b"\x04" + bytes(64), b"\x05" + sig.PVT[1:]]
    assert pvts[0] == meter.state.eccsi_keys["2026-02"][1]
    for pvt in pvts:
        swapped = dataclasses.replace(record, signature=eccsi.Signature(sig.r, sig.s, pvt).encode())
        with pytest.raises(VerificationError):
            ig.verify_record(swapped, meter.verification_key)


def test_a_key_of_the_previous_period_after_the_window_is_refused(kms):
    """RFC 6509 3.3 through the record's date: on 2 February the January key still signs; from 3
    February it does not.  The honest meter holding only that key refuses to sign (StateError), the
    signer refuses the key (ParameterError), and a record signed with it anyway is refused by the
    utility and the arbiter (VerificationError)."""
    utility, meter, rng = setup(ig.SUITE_ECCSI, kms, periods=("2026-01",))
    old = meter._eccsi["2026-01"]
    meter.receipt(utility.accept(meter.record(utc(2026, 2, 2, 23), [1], rng), T0))   # within the window
    late = utc(2026, 2, 3)
    with pytest.raises(StateError, match="no ECCSI key"):
        meter.record(late, [2], rng)
    with pytest.raises(ParameterError, match="not accepted"):
        ig.encode_record(old, URI, late, 1, [2], 0, rng)
    stale = sign_as(old, ig.Record(URI, late, 1, (2,), b"", 0, ig.SUITE_ECCSI, "2026-01"))
    with pytest.raises(VerificationError, match="not accepted"):
        utility.accept(stale.to_bytes(), late)
    early = sign_as(signing_key(kms, "2026-03"), ig.Record(URI, late, 1, (2,), b"", 0, ig.SUITE_ECCSI, "2026-03"))
    with pytest.raises(VerificationError, match="not accepted"):                      # a key from the future
        utility.accept(early.to_bytes(), late)
    beyond = sign_as(old, ig.Record(URI, ig.LAST_DAY + 1, 1, (2,), b"", 0, ig.SUITE_ECCSI, "2026-01"))
    with pytest.raises(VerificationError):
        ig.verify_record(beyond, meter.verification_key)
    with pytest.raises(ParameterError):
        meter.record(ig.LAST_DAY + 1, [2], rng)


def test_the_other_signature_of_the_rfc_is_refused_so_the_utility_cannot_frame_the_meter(kms):
    """Spec 3.3 (low s).  RFC 6507 accepts (r, q - s) beside (r, s).  Were both accepted, a utility
    could replace a record by its twin, byte-different and meter-signed, and without a receipt over
    it the arbiter would find the meter signed two records for one counter.  The twin is refused,
    and the arbiter convicts the utility that presents it."""
    _, meter, rng = run(ig.SUITE_ECCSI, kms, 6)
    for record in meter.state.records:
        assert eccsi.Signature.decode(record.signature).s <= ig.ECCSI_HALF_Q
    record = meter.state.records[3]
    sig = eccsi.Signature.decode(record.signature)
    twin = dataclasses.replace(record, signature=eccsi.Signature(sig.r, eccsi.q - sig.s, sig.PVT).encode())
    eccsi.Verify(kms.KPAK, b"2026-01\x00" + URI + b"\x00", ig.record_tbs(record.body()), twin.signature)
    with pytest.raises(VerificationError, match="low-s"):
        ig.verify_record(twin, meter.verification_key)
    meter.state.receipts = meter.state.receipts[:3]            # no receipt covers record 3
    leaves = [r.to_bytes() for r in meter.state.records]
    leaves[3] = twin.to_bytes()
    verdict = ig.arbitrate(*evidence(leaves, meter))
    assert (verdict.party, verdict.kind, verdict.index) == ("utility", "forged", 3)


def test_suites_are_not_mixed(kms):
    """A record of one suite never verifies as the other's (VerificationError, before any signature
    check): the utility files each meter under its one suite."""
    u_ed, m_ed, rng = setup(ig.SUITE_ED25519, kms, "mix-ed")
    u_ec, m_ec, _ = setup(ig.SUITE_ECCSI, kms, "mix-ec")
    ed_record = m_ed.record(T0, [1], rng)
    ec_record = m_ec.record(T0, [1], rng)
    with pytest.raises(VerificationError, match="Ed25519"):
        u_ed.accept(ec_record, T0)
    with pytest.raises(VerificationError, match="ECCSI"):
        u_ec.accept(ed_record, T0)
    with pytest.raises(StateError):
        m_ed.add_key("2026-01", bytes(32), bytes(65))


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([OTHER, b"urn:usapp:test-meters:gateway:SM-000123", b"tel:+447700900123"]),
       st.sampled_from(["2025-12", "2026-02", "2011-02"]), st.lists(st.integers(0, 2**64 - 1), min_size=1,
                                                                    max_size=4))
def test_a_signature_never_verifies_under_another_identity_period_or_message(kms, uri, period, registers):
    key = signing_key(kms, "2026-01")
    record = ig.encode_record(key, URI, utc(2026, 1, 1), 0, [5], 0, HmacDrbg.from_seed(str(registers)))
    for changed in (dataclasses.replace(record, meter=uri), dataclasses.replace(record, key_period=period),
                    dataclasses.replace(record, registers=tuple(registers))):
        if changed == record:
            continue
        key_for = ig.EccsiRecordKey(kms.KPAK, changed.meter)
        with pytest.raises(VerificationError):
            ig.verify_record(changed, key_for)


# -- the arbiter over both suites ------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_dispute_verdicts_hold_for_both_suites(kms, suite):
    """Spec 8.2 rules 2-5 with Ed25519 and with ECCSI records (the arbiter given the meter's
    public key, or only the KPAK and the meter's URI)."""
    _, meter, rng = run(suite, kms, 9, f"dispute-{suite}")
    honest = [r.to_bytes() for r in meter.state.records]
    assert ig.arbitrate(*evidence(honest, meter)).kind == "agree"
    record = meter.state.records[4]
    altered = dataclasses.replace(record, registers=(record.registers[0] + 500,) + record.registers[1:])
    verdict = ig.arbitrate(*evidence(honest[:4] + [altered.to_bytes()] + honest[5:], meter))
    assert (verdict.party, verdict.kind, verdict.index, verdict.period) == ("utility", "forged", 4, record.period)
    verdict = ig.arbitrate(*evidence(honest[:4] + honest[5:], meter))                         # dropped
    assert (verdict.party, verdict.index) == ("utility", 4)
    assert ig.arbitrate(*evidence(honest[:6], meter)).party == "utility"                     # truncated
    cheat = copy.deepcopy(meter.state)                     # the meter re-signs record 4 lower
    cheat.records[4] = ig.encode_record(meter._signing_key(record.period), meter.state.meter, record.period,
                                        4, (record.registers[0] - 100,) + record.registers[1:], 0, rng)
    cheater = ig.Meter(cheat)
    verdict = ig.arbitrate(*evidence(honest, cheater))
    assert (verdict.party, verdict.kind, verdict.index) == ("meter", "double-signed", 4)
    del cheat.records[4]                                   # the meter hides a record it signed
    cheat.records[4:] = meter.state.records[5:]
    assert ig.arbitrate(*evidence(honest, cheater)).party == "meter"
    more = copy.deepcopy(meter.state)                      # records the utility never acknowledged
    extra = ig.Meter(more)
    extra.record(ti.T0 + 9 * ti.PERIOD, [10**6, 10**6], rng)
    assert ig.arbitrate(*evidence(honest, extra)).kind == "unacknowledged"


@pytest.mark.parametrize("suite", SUITES)
def test_a_restored_meter_resyncs_for_both_suites(kms, suite):
    """Spec 9 with ECCSI records: the restored meter adopts the records it lost (each verified from
    its identifier), re-signs the one it made meanwhile (j from the given rng), and the arbiter
    finds no dispute."""
    utility, meter, rng = setup(suite, kms, f"restore-{suite}")
    rs = ti.readings(12)
    for period, registers in rs[:3]:
        meter.receipt(utility.accept(meter.record(period, registers, rng), period + 60))
    meter.check(utility.feedback(URI, 0, rs[2][0] + 120))
    backup = copy.deepcopy(meter.state)
    for period, registers in rs[3:6]:
        meter.receipt(utility.accept(meter.record(period, registers, rng), period + 60))
    restored = ig.Meter.restore(backup, ig.BootCounter())
    with pytest.raises(ReplayError):
        utility.accept(restored.record(rs[6][0], rs[6][1], rng), rs[6][0])
    result = ig.resync(restored, utility, rs[6][0] + 100, rng)
    assert (result.adopted, len(result.resigned)) == (3, 1)
    for data in result.resigned:
        restored.receipt(utility.accept(data, rs[6][0] + 120))
    verdict = ig.arbitrate(*evidence([r.to_bytes() for r in utility.state.records[URI]], restored))
    assert (verdict.party, verdict.kind) == (None, "agree")


def test_records_across_the_monthly_change(kms):
    """RFC 6509 3.3 in the meter: it holds January, adds February on 30 January, signs each record
    with its own month's key, erases January from 3 February; the utility accepts every record and
    the arbiter, given only the KPAK and the URI, finds the logs agree."""
    utility, meter, rng = setup(ig.SUITE_ECCSI, kms, periods=("2026-01",))
    total = 0
    for hour in range(0, 8 * 24, 6):
        period = utc(2026, 1, 28) + hour * 3600
        day = dt.datetime.fromtimestamp(period, dt.timezone.utc).date()
        if day == dt.date(2026, 1, 30) and "2026-02" not in meter.state.eccsi_keys:
            issued = issue(kms, "2026-02")
            meter.add_key("2026-02", issued.SSK, issued.PVT)
        meter.forget_keys(day)
        total += 10
        meter.receipt(utility.accept(meter.record(period, [total], rng), period + 60))
    periods = [r.key_period for r in meter.state.records]
    assert periods.count("2026-01") == 16 and periods.count("2026-02") == 16
    assert sorted(meter.state.eccsi_keys) == ["2026-02"]
    key = ig.EccsiRecordKey(kms.KPAK, URI)
    leaves = [r.to_bytes() for r in utility.state.records[URI]]
    head = utility.tree_head(URI, T0).to_bytes()
    verdict = ig.arbitrate(key, utility.public_key, URI, leaves, [h.to_bytes() for h in meter.state.receipts],
                           head, leaves)
    assert verdict.kind == "agree"


# -- the done-when of issue 21: enrolled through issuance, verified from the identity alone ----


def test_a_meter_enrolled_through_issuance_signs_records_the_arbiter_verifies_from_its_identity():
    """The meter enrolls with the ECCSI/SAKKE suite through the real PKG (certificate chain, HPKE,
    log; ValidateSsk and ValidateRSK on receipt), installs the ECCSI part as its record key, and
    signs billing records; the utility files them under the KPAK and the meter's URI, and the
    arbiter, given nothing else about the meter, convicts a utility that alters one."""
    rng = HmacDrbg.from_seed("tests/integrity-eccsi/enrolled")
    extractor = ie.EccsiSakkeExtractor(eccsi.KeyGen(rng), sakke.KeyGen(ie.PARAMS, rng))
    epoch = ie.pkg_epoch_on(dt.date(2026, 1, 1))
    pkg = tiss.new_pkg(epoch=epoch, extractor=extractor)
    device = tiss.new_meter(suite=ie.SUITE, verify=ie.eccsi_sakke_key_verifier(extractor.KPAK, extractor.Z))
    issued = tiss.run(pkg, device, now=T0, seed="enrolled")
    identifier = ie.identifier_of(issued.identity)
    uri = identifier.uri.encode()
    parts = ie.decode_key(issued.key)
    utility = ig.Utility(ig.UtilityState(rng.random_bytes(32)))
    meter = ig.Meter(ig.MeterState(uri, b"", utility.public_key, suite=ig.SUITE_ECCSI, kpak=extractor.KPAK))
    meter.add_key(identifier.period, parts.SSK, parts.PVT)
    utility.register(uri, ig.EccsiRecordKey(extractor.KPAK, uri))
    for period, registers in ti.readings(5):
        meter.receipt(utility.accept(meter.record(period, registers, rng), period + 60))
    leaves = [r.to_bytes() for r in meter.state.records]
    receipts = [h.to_bytes() for h in meter.state.receipts]
    head = utility.tree_head(uri, T0 + DAY).to_bytes()
    verdict = ig.arbitrate(ig.EccsiRecordKey(extractor.KPAK, uri), utility.public_key, uri, leaves, receipts,
                           head, leaves)
    assert verdict.kind == "agree"
    record = meter.state.records[2]
    altered = dataclasses.replace(record, registers=(record.registers[0] + 1,) + record.registers[1:]).to_bytes()
    forged = forge_log(meter, leaves[:2] + [altered] + leaves[3:], utility.state.signing_key)
    verdict = ig.arbitrate(ig.EccsiRecordKey(extractor.KPAK, uri), utility.public_key, uri, leaves, receipts,
                           forged.tree_head(uri, T0 + DAY).to_bytes(), leaves[:2] + [altered] + leaves[3:])
    assert (verdict.party, verdict.kind, verdict.index) == ("utility", "forged", 2)
