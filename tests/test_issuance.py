"""Identity-based key issuance (specs/issuance.md).

Each security claim of the spec (section 11) names the test here that
checks it.  Certificates are made in the fixtures below from seeded keys;
the IBE suite is a test double (:class:`HmacTestExtractor`) except in
``test_the_bls12_381_bf_suite_plugs_in``, which runs the real BLS12-381 BF suite.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID, ObjectIdentifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import issuance as iss
from protocols.errors import (
    DecodeError,
    ParameterError,
    RecoveryError,
    ReplayError,
    StateError,
    UsappError,
    VerificationError,
)
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.system.vectorsets import families
from protocols.system.vectorsets import hpke_rfc9180

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NOW = 1_767_225_600                      # 2026-01-01T00:00:00Z
T_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
T_AFTER = dt.datetime(2035, 1, 1, tzinfo=dt.timezone.utc)
EPOCH = 7
SUITE = "test-hmac-sha256"
NS = "test-meters"
NAMESPACES = {"root": NS, "intermediate": NS, "p256-root": "test-p256", "rogue": "rogue"}
"""The namespace of the serials each test manufacturer root certifies (spec 2.2, 3.1)."""


# ---------------------------------------------------------------------------
# The IBE test double
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HmacTestExtractor:
    """A stand-in for an IBE suite, for tests only.

    "Extracts" HMAC-SHA256(master, identity) so that the protocol can be
    exercised without pairings.  It is not identity-based encryption: there
    are no public parameters, and checking a key needs the master secret.
    Real suites (specs/ibe.md) plug in through the same two members.
    """

    master: bytes = dataclasses.field(repr=False)
    suite: str = SUITE

    def extract(self, identity: bytes) -> bytes:
        return hmac.new(self.master, identity, hashlib.sha256).digest()

    def verify(self, identity: bytes, key: bytes) -> bool:
        return hmac.compare_digest(self.extract(identity), key)


EXTRACTOR = HmacTestExtractor(b"test master secret, not a real one")


# ---------------------------------------------------------------------------
# Certificates from seeded keys
# ---------------------------------------------------------------------------


def ed_key(seed: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


def p256_key(seed: str) -> ec.EllipticCurvePrivateKey:
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return ec.derive_private_key(int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big") % (n - 1) + 1,
                                 ec.SECP256R1())


def pkcs8(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def name(common: str, serial: str | None = None, serials: int = 1) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Meters Ltd"),
                  x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if serial is not None:
        attributes += [x509.NameAttribute(NameOID.SERIAL_NUMBER, serial)] * serials
    return x509.Name(attributes)


def make_cert(subject: x509.Name, public_key, issuer: x509.Name, signing_key, *, number: int = 1,
              not_before: dt.datetime = T_BEFORE, not_after: dt.datetime = T_AFTER, ca: bool = False,
              path_length: int | None = None, basic: bool = True, digital_signature: bool | None = None,
              key_cert_sign: bool | None = None, key_usage: bool = True, extra=()) -> bytes:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(number).not_valid_before(not_before).not_valid_after(not_after))
    if basic:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if key_usage:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=(not ca) if digital_signature is None else digital_signature,
            content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
            key_cert_sign=ca if key_cert_sign is None else key_cert_sign, crl_sign=ca,
            encipher_only=False, decipher_only=False), critical=True)
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, algorithm).public_bytes(serialization.Encoding.DER)


ROOT_KEY = ed_key("root")
ROOT_NAME = name("Test Meters Root CA")
ROOT = make_cert(ROOT_NAME, ROOT_KEY.public_key(), ROOT_NAME, ROOT_KEY, ca=True)
P256_ROOT_KEY = p256_key("root-p256")
P256_ROOT_NAME = name("Test Meters P-256 Root CA")
P256_ROOT = make_cert(P256_ROOT_NAME, P256_ROOT_KEY.public_key(), P256_ROOT_NAME, P256_ROOT_KEY, ca=True)
ROGUE_KEY = ed_key("rogue")
ROGUE_NAME = name("Rogue Root CA")
ROGUE = make_cert(ROGUE_NAME, ROGUE_KEY.public_key(), ROGUE_NAME, ROGUE_KEY, ca=True)
INTERMEDIATE_KEY = ed_key("intermediate")
INTERMEDIATE_NAME = name("Test Meters Factory 3 CA")
INTERMEDIATE = make_cert(INTERMEDIATE_NAME, INTERMEDIATE_KEY.public_key(), ROOT_NAME, ROOT_KEY, ca=True,
                         number=2)


def anchors(roles=("meter", "gateway")) -> tuple[iss.TrustAnchor, ...]:
    return (iss.TrustAnchor(ROOT, frozenset(roles), NAMESPACES["root"]),
            iss.TrustAnchor(P256_ROOT, frozenset(roles), NAMESPACES["p256-root"]))


def role_usage(roles) -> list:
    """The extendedKeyUsage extension that certifies ``roles`` (spec 6.4), non-critical."""
    return [(x509.ExtendedKeyUsage([iss.ROLE_OIDS[role] for role in roles]), False)] if roles else []


def device(serial: str = "SM-000123", *, kind: str = "ed25519", issuer: str = "root", roles=("meter",), **options):
    """(PKCS#8 device key, chain) for a device certificate with subject serialNumber ``serial`` that
    certifies ``roles``."""
    options["extra"] = list(options.get("extra", ())) + role_usage(roles)
    key = ed_key("device-" + serial) if kind == "ed25519" else p256_key("device-" + serial)
    subject = options.pop("subject", name(f"meter {serial}", serial))
    if issuer == "root":
        chain = (make_cert(subject, key.public_key(), ROOT_NAME, ROOT_KEY, number=10, **options),)
    elif issuer == "p256-root":
        chain = (make_cert(subject, key.public_key(), P256_ROOT_NAME, P256_ROOT_KEY, number=11, **options),)
    elif issuer == "intermediate":
        chain = (make_cert(subject, key.public_key(), INTERMEDIATE_NAME, INTERMEDIATE_KEY, number=12, **options),
                 INTERMEDIATE)
    else:
        chain = (make_cert(subject, key.public_key(), ROGUE_NAME, ROGUE_KEY, number=13, **options),)
    return pkcs8(key), chain


def new_pkg(epoch: int = EPOCH, extractor=EXTRACTOR, roles=("meter", "gateway"), **options) -> iss.Pkg:
    return iss.Pkg(iss.PkgState(anchors(roles), epoch, **options), extractor)


def new_meter(serial: str = "SM-000123", role: str = "meter", suite: str = SUITE, verify=EXTRACTOR.verify,
              namespace: str | None = None, **device_options) -> iss.Meter:
    """A device whose certificate certifies ``role`` (unless ``roles`` says otherwise), configured with
    the namespace of its issuer (unless ``namespace`` says otherwise)."""
    device_options.setdefault("roles", (role,))
    namespace = namespace or NAMESPACES[device_options.get("issuer", "root")]
    key, chain = device(serial, **device_options)
    return iss.Meter(iss.MeterState(namespace, serial, role, suite, key, chain), verify)


def run(pkg: iss.Pkg, meter: iss.Meter, now: int = NOW, seed: str = "run") -> iss.IssuedKey:
    rng = HmacDrbg.from_seed("tests/issuance/" + seed)
    request = meter.enroll(pkg.challenge(now, rng), rng)
    return meter.receive(pkg.enroll(request, now, rng))


def request_for(pkg: iss.Pkg, meter: iss.Meter, now: int = NOW, seed: str = "req") -> bytes:
    rng = HmacDrbg.from_seed("tests/issuance/" + seed)
    return meter.enroll(pkg.challenge(now, rng), rng)


def reencode(message: bytes, **changes) -> bytes:
    fields = cbor.decode(message)
    for key, value in changes.items():
        fields[int(key[1:])] = value
    return cbor.encode(fields)


# ---------------------------------------------------------------------------
# Spec 2: identities
# ---------------------------------------------------------------------------

SERIALS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
NAMESPACE_TEXT = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,15}\Z")


def test_identity_encoding_example():
    identity = iss.Identity(NS, "SM-000123", "meter", 7)
    assert identity.to_bytes() == b"usapp-id-v2/test-meters/meter/SM-000123/7"
    assert iss.Identity.parse(b"usapp-id-v2/acme-2/head-end/HE.01/4294967295") == iss.Identity(
        "acme-2", "HE.01", "head-end", 2**32 - 1)


@PROPERTY
@given(NAMESPACE_TEXT, SERIALS, st.sampled_from(iss.ROLES), st.integers(0, 2**32 - 1))
def test_any_valid_identity_round_trips(namespace, serial, role, epoch):
    identity = iss.Identity(namespace, serial, role, epoch)
    encoded = identity.to_bytes()
    assert len(encoded) <= iss.MAX_IDENTITY_BYTES
    assert iss.Identity.parse(encoded) == identity
    assert iss.Identity.parse(encoded).to_bytes() == encoded


@PROPERTY
@given(NAMESPACE_TEXT, SERIALS, st.sampled_from(iss.ROLES), st.integers(0, 2**32 - 1), st.data())
def test_identity_parser_accepts_only_canonical_bytes(namespace, serial, role, epoch, data):
    """Any change to a valid identity either parses to another identity that
    encodes to exactly those bytes, or is a DecodeError."""
    encoded = bytearray(iss.Identity(namespace, serial, role, epoch).to_bytes())
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    try:
        parsed = iss.Identity.parse(bytes(encoded))
    except DecodeError:
        return
    assert parsed.to_bytes() == bytes(encoded)


_ID = b"usapp-id-v2/ns/"


@pytest.mark.parametrize("raw", [
    b"", _ID + b"meter/SM-1/07", _ID + b"meter/SM-1/4294967296", _ID + b"meter/SM-1/-1",
    _ID + b"meter/SM-1/+1", _ID + b"meter/SM-1/ 1", _ID + b"meter/SM-1/1\n",
    _ID + b"pkg/SM-1/1", _ID + b"Meter/SM-1/1", b"USAPP-ID-V2/ns/meter/SM-1/1",
    b"usapp-id-v1/meter/SM-1/1", b"usapp-id-v2/meter/SM-1/1", _ID + b"meter//1", _ID + b"meter/-SM/1",
    _ID + b"meter/SM 1/1", _ID + b"meter/SM/1/1", _ID + b"meter/SM-1",
    _ID + b"meter/" + b"S" * 65 + b"/1", _ID + b"meter/SM-\xc3\xa9/1", _ID + b"meter/SM-1/\xd9\xa1",
    _ID + b"meter/SM-1/1" + b"0" * 200, b"usapp-id-v2//meter/SM-1/1", b"usapp-id-v2/NS/meter/SM-1/1",
    b"usapp-id-v2/-ns/meter/SM-1/1", b"usapp-id-v2/" + b"n" * 17 + b"/meter/SM-1/1", b"usapp-id-v2/n.s/meter/SM-1/1",
], ids=lambda raw: raw[:40].decode("latin-1"))
def test_malformed_identities_are_decode_errors(raw):
    with pytest.raises(DecodeError):
        iss.Identity.parse(raw)


def test_identity_parse_takes_bytes_only():
    with pytest.raises(DecodeError):
        iss.Identity.parse("usapp-id-v2/ns/meter/SM-1/1")


@pytest.mark.parametrize("namespace, serial, role, epoch", [
    (NS, "", "meter", 1), (NS, "a/b", "meter", 1), (NS, "S" * 65, "meter", 1), (NS, "SM-1", "pkg", 1),
    (NS, "SM-1", "meter", -1), (NS, "SM-1", "meter", 2**32), (NS, "SM-1", "meter", True), (NS, b"SM-1", "meter", 1),
    (NS, "SM-é", "meter", 1), ("", "SM-1", "meter", 1), ("Acme", "SM-1", "meter", 1), ("a/b", "SM-1", "meter", 1),
    ("n" * 17, "SM-1", "meter", 1), (None, "SM-1", "meter", 1),
])
def test_bad_identity_values_are_parameter_errors(namespace, serial, role, epoch):
    with pytest.raises(ParameterError):
        iss.Identity(namespace, serial, role, epoch)


# ---------------------------------------------------------------------------
# Spec 5 and 7: enrollment and delivery, the honest run
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {}, {"kind": "p256"}, {"issuer": "p256-root"}, {"kind": "p256", "issuer": "intermediate"},
], ids=["ed25519", "p256-device", "p256-root", "via-intermediate"])
def test_enrollment_issues_the_extracted_key(options):
    pkg, meter = new_pkg(), new_meter(**options)
    issued = run(pkg, meter)
    identity = iss.Identity(NAMESPACES[options.get("issuer", "root")], "SM-000123", "meter", EPOCH).to_bytes()
    assert issued.identity == identity and issued.epoch == EPOCH and issued.suite == SUITE
    assert issued.key == EXTRACTOR.extract(identity)
    assert meter.key(EPOCH) == issued
    (entry,) = pkg.state.log.verify()
    assert (entry.identity, entry.epoch, entry.suite, entry.time) == (identity, EPOCH, SUITE, NOW)
    assert entry.certificate_sha256 == hashlib.sha256(meter.state.chain[0]).digest()


def test_the_bls12_381_bf_suite_plugs_in():
    """The real BF suite of specs/ibe.md section 4 behind KeyExtractor and verify_key (spec 10.1)."""
    from protocols.schemes import bf_bls12

    master = bf_bls12.setup(HmacDrbg.from_seed("tests/issuance/bf-master"))
    params = master.params
    pkg = new_pkg(extractor=iss.Bls12Extractor(master))
    meter = new_meter(suite=bf_bls12.SUITE, verify=iss.bls12_key_verifier(params))
    issued = run(pkg, meter)
    session_key, enc = bf_bls12.encapsulate(params, issued.identity, HmacDrbg.from_seed("tests/issuance/bf-enc"))
    assert bf_bls12.decapsulate(bf_bls12.PrivateKey.from_bytes(issued.identity, issued.key), enc) == session_key
    wrong = new_meter(suite=bf_bls12.SUITE, verify=iss.bls12_key_verifier(bf_bls12.setup(
        HmacDrbg.from_seed("tests/issuance/other-master")).params))
    with pytest.raises(VerificationError, match="does not verify"):
        run(pkg, wrong, seed="wrong-params")


# ---------------------------------------------------------------------------
# Spec 10: the distributed PKG
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distributed():
    """Five PKG nodes, threshold 3, keyed by a joint-Feldman DKG (specs/ibe.md 4.5)."""
    from protocols.schemes import bf_bls12

    rng = HmacDrbg.from_seed("tests/issuance/dkg")
    nodes = [1, 2, 3, 4, 5]
    context = b"tests/issuance/dkg-session"
    dealings = [bf_bls12.deal(i, 3, nodes, rng, context) for i in nodes]
    key = bf_bls12.combine_dealings(dealings, 3, nodes, context)   # checks every proof of possession
    secrets = {i: bf_bls12.node_secret(dealings, i) for i in nodes}   # checks every dealt share
    return key, secrets


def _share_from(node, secret, key, seed, meter_serial="SM-000123"):
    from protocols.schemes import bf_bls12

    pkg = new_pkg(extractor=iss.ThresholdNodeExtractor(node, secret))
    meter = new_meter(meter_serial, suite=bf_bls12.SUITE, verify=iss.threshold_share_verifier(key, node))
    return run(pkg, meter, seed=seed), pkg


def test_distributed_pkg_issues_a_key_no_node_holds(distributed):
    """Spec 10: any t of the n nodes each enroll the device and deliver a
    share; the device checks each share against that node's verification key
    and combines them into the key that P_pub accepts; a head-end can then
    encrypt to the identity.  No node ever held the master secret."""
    from protocols.schemes import bf_bls12

    key, secrets = distributed
    for subset in ([1, 2, 3], [2, 4, 5]):
        shares, logs = {}, []
        for node in subset:
            shares[node], pkg = _share_from(node, secrets[node], key, seed=f"node-{node}")
            logs.append(pkg.state.log.verify())
        combined = iss.combine_issued_shares(key, shares)
        assert iss.bls12_key_verifier(key.params)(combined.identity, combined.key)
        session_key, enc = bf_bls12.encapsulate(key.params, combined.identity, HmacDrbg.from_seed("enc"))
        private = bf_bls12.PrivateKey.from_bytes(combined.identity, combined.key)
        assert bf_bls12.decapsulate(private, enc) == session_key
        assert all(len(log) == 1 for log in logs)  # every node logged its own issuance


def test_a_node_delivering_a_bad_share_is_named(distributed):
    key, secrets = distributed
    with pytest.raises(VerificationError, match="does not verify"):
        _share_from(2, (secrets[2] + 1) % (1 << 250), key, seed="bad-node")
    good = {n: _share_from(n, secrets[n], key, seed=f"good-{n}")[0] for n in (1, 3)}
    forged = dict(good)
    forged[4] = iss.IssuedKey(good[1].identity, good[1].epoch, good[1].suite, good[1].key)
    with pytest.raises(VerificationError, match="node 4"):
        iss.combine_issued_shares(key, forged)
    with pytest.raises(RecoveryError):
        iss.combine_issued_shares(key, good)
    with pytest.raises(RecoveryError):
        iss.combine_issued_shares(key, {})


def test_shares_for_different_identities_do_not_combine(distributed):
    key, secrets = distributed
    a, _ = _share_from(1, secrets[1], key, seed="mix-1")
    b, _ = _share_from(2, secrets[2], key, seed="mix-2", meter_serial="SM-000999")
    c, _ = _share_from(3, secrets[3], key, seed="mix-3")
    with pytest.raises(VerificationError, match="another identity"):
        iss.combine_issued_shares(key, {1: a, 2: b, 3: c})


def test_issued_keys_differ_across_epochs():
    pkg, meter = new_pkg(), new_meter()
    first = run(pkg, meter, seed="e7")
    pkg.advance_epoch(EPOCH + 1)
    second = run(pkg, meter, NOW + 10, seed="e8")
    assert first.epoch == EPOCH and second.epoch == EPOCH + 1
    assert first.identity != second.identity and first.key != second.key
    assert not EXTRACTOR.verify(second.identity, first.key)
    assert sorted(meter.state.keys) == [EPOCH, EPOCH + 1]
    meter.forget_before(EPOCH + 1)
    with pytest.raises(StateError):
        meter.key(EPOCH)


def test_randomness_is_drawn_from_the_injected_rng_in_the_spec_order():
    """Spec 5: PKG challenge (32), meter HPKE ikm (32), PKG ikmE (32) -- nothing else."""
    pkg, meter = new_pkg(), new_meter()
    draws = ReplayRandom([bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32])
    challenge = pkg.challenge(NOW, draws)
    assert iss.decode_challenge(challenge).nonce == bytes([1]) * 32
    request = meter.enroll(challenge, draws)
    assert iss.decode_enrollment(request).hpke_public == iss.DeriveKeyPair(bytes([2]) * 32)[1]
    delivery = iss.decode_delivery(pkg.enroll(request, NOW, draws))
    assert draws.exhausted
    assert delivery.enc == iss.DeriveKeyPair(bytes([3]) * 32)[1]


def test_secrets_stay_out_of_reprs():
    pkg, meter = new_pkg(), new_meter()
    issued = run(pkg, meter)
    text = repr(meter.state) + repr(issued) + repr(pkg.state) + repr(EXTRACTOR)
    for secret in (issued.key, meter.state.device_key, EXTRACTOR.master):
        assert secret.hex() not in text and repr(secret) not in text


# ---------------------------------------------------------------------------
# Spec 5.1 and 5.3 step 4: challenges
# ---------------------------------------------------------------------------


def test_reused_challenge_is_a_replay_error():
    pkg, meter = new_pkg(), new_meter()
    request = request_for(pkg, meter)
    pkg.enroll(request, NOW)
    with pytest.raises(ReplayError):
        pkg.enroll(request, NOW + 1)
    assert len(pkg.state.log.entries) == 1


def test_unknown_challenge_is_a_state_error():
    pkg, meter = new_pkg(), new_meter()
    request = request_for(new_pkg(), meter)          # answered another PKG's challenge
    with pytest.raises(StateError) as info:
        pkg.enroll(request, NOW)
    assert type(info.value) is StateError


def test_expired_challenge_is_a_state_error_and_the_last_second_still_counts():
    pkg, meter = new_pkg(challenge_lifetime=60), new_meter()
    late = request_for(pkg, meter, seed="late")
    with pytest.raises(StateError) as info:
        pkg.enroll(late, NOW + 61)
    assert type(info.value) is StateError
    on_time = request_for(pkg, meter, now=NOW + 61, seed="on-time")
    pkg.enroll(on_time, NOW + 121)


def test_a_replay_after_expiry_is_still_refused():
    pkg, meter = new_pkg(challenge_lifetime=60), new_meter()
    request = request_for(pkg, meter)
    pkg.enroll(request, NOW)
    pkg.challenge(NOW + 100, HmacDrbg.from_seed("prune"))       # forgets the expired record
    with pytest.raises(StateError):
        pkg.enroll(request, NOW + 100)


def test_outstanding_challenges_are_bounded():
    pkg = new_pkg(max_outstanding=3, challenge_lifetime=60)
    rng = HmacDrbg.from_seed("tests/issuance/bound")
    for _ in range(3):
        pkg.challenge(NOW, rng)
    with pytest.raises(StateError):
        pkg.challenge(NOW, rng)
    pkg.challenge(NOW + 61, rng)                     # the expired ones are forgotten


def test_a_repeated_challenge_from_a_broken_rng_is_refused():
    pkg = new_pkg()
    pkg.challenge(NOW, ReplayRandom([bytes(32)]))
    with pytest.raises(StateError):
        pkg.challenge(NOW, ReplayRandom([bytes(32)]))


# ---------------------------------------------------------------------------
# Spec 5.3 steps 2-3 and 8: suite and epochs
# ---------------------------------------------------------------------------


def test_wrong_epoch_is_a_state_error():
    pkg, meter = new_pkg(), new_meter()
    request = request_for(pkg, meter)
    pkg.advance_epoch(EPOCH + 1)
    with pytest.raises(StateError):
        pkg.enroll(request, NOW)
    forged = iss.Challenge(iss.decode_enrollment(request).challenge, NOW + 300, EPOCH + 5, SUITE).to_bytes()
    pkg2 = new_pkg()
    pkg2.state.challenges[iss.decode_challenge(forged).nonce] = iss.ChallengeRecord(NOW + 300)
    meter2 = new_meter()
    with pytest.raises(StateError):
        pkg2.enroll(meter2.enroll(forged, HmacDrbg.from_seed("x")), NOW)


def test_advancing_the_epoch_voids_challenges_and_must_go_forward():
    pkg, meter = new_pkg(), new_meter()
    challenge = pkg.challenge(NOW, HmacDrbg.from_seed("void"))
    pkg.advance_epoch(EPOCH + 1)
    assert pkg.state.challenges == {}
    with pytest.raises(StateError):
        pkg.enroll(meter.enroll(challenge, HmacDrbg.from_seed("v")), NOW)
    for bad in (EPOCH + 1, EPOCH):
        with pytest.raises(StateError):
            pkg.advance_epoch(bad)
    for bad in (2**32, -1, "9", True):
        with pytest.raises(ParameterError):
            pkg.advance_epoch(bad)


def test_meter_refuses_to_go_back_to_an_older_epoch():
    pkg, meter = new_pkg(), new_meter()
    run(pkg, meter)
    old = new_pkg(epoch=EPOCH - 1)
    with pytest.raises(StateError):
        meter.enroll(old.challenge(NOW, HmacDrbg.from_seed("old")), HmacDrbg.from_seed("o"))


def test_unknown_suite_is_a_decode_error():
    pkg = new_pkg(extractor=HmacTestExtractor(b"m", suite="other-suite"))
    with pytest.raises(DecodeError):
        new_meter().enroll(pkg.challenge(NOW, HmacDrbg.from_seed("s")), HmacDrbg.from_seed("t"))
    other = new_meter(suite="other-suite")
    request = other.enroll(pkg.challenge(NOW, HmacDrbg.from_seed("s2")), HmacDrbg.from_seed("t2"))
    with pytest.raises(DecodeError):
        new_pkg().enroll(request, NOW)


def test_revoked_device_is_refused():
    pkg, meter = new_pkg(), new_meter()
    run(pkg, meter)
    pkg.revoke(NS, "SM-000123")
    pkg.advance_epoch(EPOCH + 1)
    with pytest.raises(VerificationError, match="revoked"):
        run(pkg, meter, seed="after")
    run(pkg, new_meter("SM-000124"), seed="other")
    run(pkg, new_meter("SM-000123", issuer="p256-root"), seed="same-serial-other-namespace")
    with pytest.raises(ParameterError):
        pkg.revoke(NS, "bad/serial")
    with pytest.raises(ParameterError):
        pkg.revoke("Bad NS", "SM-000123")


# ---------------------------------------------------------------------------
# Spec 6: enrollment credentials
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"not_after": dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc)}, "device certificate: expired"),
    ({"not_before": dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)}, "device certificate: not yet valid"),
    ({"issuer": "rogue"}, "not a trusted manufacturer root"),
    ({"ca": True}, "device certificate: is a CA"),
    ({"digital_signature": False}, "digitalSignature"),
    ({"key_usage": False}, "digitalSignature"),
    ({"key_cert_sign": True}, "allows keyCertSign"),
    ({"extra": [(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"), True)]},
     "unrecognised critical extension"),
    ({"subject": name("meter without serial")}, "exactly one serialNumber"),
    ({"subject": name("meter with two serials", "SM-000123", serials=2)}, "exactly one serialNumber"),
], ids=["expired", "not-yet-valid", "untrusted-issuer", "device-is-ca", "no-digital-signature",
        "no-key-usage", "key-cert-sign", "unknown-critical-extension", "no-serial", "two-serials"])
def test_bad_enrollment_credentials_are_refused(options, message):
    pkg = new_pkg()
    key, chain = device(**options)
    meter = iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, key, chain), EXTRACTOR.verify)
    with pytest.raises(VerificationError, match=message):
        pkg.enroll(request_for(pkg, meter), NOW)
    assert pkg.state.log.entries == [] and not any(r.used for r in pkg.state.challenges.values())


def test_wrong_serial_is_refused():
    pkg = new_pkg()
    key, chain = device("SM-000999")
    meter = iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, key, chain), EXTRACTOR.verify)
    with pytest.raises(VerificationError, match="serial"):
        pkg.enroll(request_for(pkg, meter), NOW)


def test_role_the_manufacturer_may_not_vouch_for_is_refused():
    pkg = new_pkg(roles=("meter",))
    with pytest.raises(VerificationError, match="role 'head-end'"):
        run(pkg, new_meter(role="head-end"))


def test_two_manufacturers_devices_with_one_serial_get_different_keys():
    """Spec 2.2, 3.1, 5.3 step 6 (the namespace finding).  Adversary: a device of a second trusted
    manufacturer (its own root, namespace test-p256) whose certificate carries the serial of a
    device of the first (namespace test-meters); it controls its enrollment messages.  Before the
    fix both got usapp-id-v1/meter/SM-000123/7 and so the same private key.  Now each gets the
    identity of its own namespace, the keys differ, and claiming the other namespace is refused."""
    pkg = new_pkg()
    first = run(pkg, new_meter("SM-000123"), seed="vendor-a")
    second = run(pkg, new_meter("SM-000123", issuer="p256-root"), seed="vendor-b")
    assert first.identity == b"usapp-id-v2/test-meters/meter/SM-000123/7"
    assert second.identity == b"usapp-id-v2/test-p256/meter/SM-000123/7"
    assert first.key != second.key
    impostor = new_meter("SM-000123", issuer="p256-root", namespace=NS)
    with pytest.raises(VerificationError, match="namespace 'test-meters' is not that of the manufacturer root"):
        pkg.enroll(request_for(pkg, impostor, seed="impostor"), NOW)
    assert len(pkg.state.log.entries) == 2
    # the PKG needs a namespace per anchor, and distinct ones (ParameterError)
    for bad in ((iss.TrustAnchor(ROOT, frozenset({"meter"})),),
                (iss.TrustAnchor(ROOT, frozenset({"meter"}), "same"),
                 iss.TrustAnchor(P256_ROOT, frozenset({"meter"}), "same"))):
        with pytest.raises(ParameterError, match="namespace"):
            iss.Pkg(iss.PkgState(bad, EPOCH), EXTRACTOR)
    for namespace in ("", "Acme", "a" * 17, "a/b", 7):
        with pytest.raises(ParameterError):
            iss.TrustAnchor(ROOT, frozenset({"meter"}), namespace)


def test_a_device_gets_only_a_role_its_certificate_certifies():
    """Spec 6.4, 5.3 step 6 (the role finding).  Adversary: a device certified as a meter, its owner
    configuring it (and so its enrollment) for another role its manufacturer's root may vouch for.
    Before the fix it obtained usapp-id-v1/gateway/SM-000123/7.  Now the role must be among the
    role key purposes of its certificate's extendedKeyUsage: refused, and the log is untouched;
    a certificate without them, or with anyExtendedKeyUsage only, certifies no role."""
    pkg = new_pkg()
    with pytest.raises(VerificationError, match="does not certify role 'gateway'"):
        run(pkg, new_meter(role="gateway", roles=("meter",)), seed="gw")
    for n, extra in enumerate(([], [(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
                                                          x509.ExtendedKeyUsageOID.CLIENT_AUTH]), False)])):
        key, chain = device(roles=None, extra=extra)
        meter = iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, key, chain), EXTRACTOR.verify)
        with pytest.raises(VerificationError, match="does not certify role 'meter'"):
            pkg.enroll(request_for(pkg, meter, seed=f"no-role-{n}"), NOW)
    assert pkg.state.log.entries == []
    both = run(pkg, new_meter(role="gateway", roles=("meter", "gateway")), seed="both")
    assert both.identity == b"usapp-id-v2/test-meters/gateway/SM-000123/7"
    assert iss.certificate_roles(x509.load_der_x509_certificate(device(roles=("meter", "gateway"))[1][0])) == \
        frozenset({"meter", "gateway"})


def _chain_via(intermediate: bytes, intermediate_key, leaf_options=None):
    key = ed_key("device-chain")
    issuer = x509.load_der_x509_certificate(intermediate).subject
    leaf = make_cert(name("meter", "SM-000123"), key.public_key(), issuer, intermediate_key, number=77,
                     **(leaf_options or {}))
    return pkcs8(key), (leaf, intermediate)


@pytest.mark.parametrize("case, message", [
    ("intermediate-not-ca", "intermediate certificate 1: not a CA"),
    ("intermediate-expired", "intermediate certificate 1: expired"),
    ("root-path-length-0", "trust anchor: pathLenConstraint 0"),
    ("signed-by-a-device", "intermediate certificate 1: not a CA"),
    ("wrong-intermediate-signature", "signature by its issuer does not verify"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else "")
def test_chain_profile_violations_are_refused(case, message):
    pkg = new_pkg()
    if case == "intermediate-not-ca":
        inter = make_cert(INTERMEDIATE_NAME, INTERMEDIATE_KEY.public_key(), ROOT_NAME, ROOT_KEY, number=3)
    elif case == "intermediate-expired":
        inter = make_cert(INTERMEDIATE_NAME, INTERMEDIATE_KEY.public_key(), ROOT_NAME, ROOT_KEY, ca=True,
                          number=4, not_after=dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc))
    elif case == "root-path-length-0":
        root_key = ed_key("root-pl0")
        root_name = name("Path length 0 Root")
        root = make_cert(root_name, root_key.public_key(), root_name, root_key, ca=True, path_length=0)
        pkg = iss.Pkg(iss.PkgState((iss.TrustAnchor(root, frozenset({"meter"}), NS),), EPOCH), EXTRACTOR)
        inter = make_cert(INTERMEDIATE_NAME, INTERMEDIATE_KEY.public_key(), root_name, root_key, ca=True,
                          number=5)
    elif case == "signed-by-a-device":
        inter = make_cert(INTERMEDIATE_NAME, INTERMEDIATE_KEY.public_key(), ROOT_NAME, ROOT_KEY, number=6)
    else:
        inter = make_cert(INTERMEDIATE_NAME, INTERMEDIATE_KEY.public_key(), ROOT_NAME, ROOT_KEY, ca=True,
                          number=7)
    signer = ed_key("not-the-intermediate") if case == "wrong-intermediate-signature" else INTERMEDIATE_KEY
    key, chain = _chain_via(inter, signer)
    meter = iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, key, chain), EXTRACTOR.verify)
    with pytest.raises(VerificationError, match=message):
        pkg.enroll(request_for(pkg, meter), NOW)


def test_expired_root_is_refused():
    root_key = ed_key("old-root")
    root_name = name("Old Root")
    root = make_cert(root_name, root_key.public_key(), root_name, root_key, ca=True,
                     not_after=dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc))
    pkg = iss.Pkg(iss.PkgState((iss.TrustAnchor(root, frozenset({"meter"}), NS),), EPOCH), EXTRACTOR)
    key = ed_key("dev-old-root")
    leaf = make_cert(name("m", "SM-000123"), key.public_key(), root_name, root_key)
    meter = iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, pkcs8(key), (leaf,)), EXTRACTOR.verify)
    with pytest.raises(VerificationError, match="trust anchor: expired"):
        pkg.enroll(request_for(pkg, meter), NOW)


def test_rsa_device_keys_are_outside_the_profile():
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(65537, 2048)
    leaf = make_cert(name("m", "SM-000123"), rsa_key.public_key(), ROOT_NAME, ROOT_KEY)
    with pytest.raises(VerificationError, match="not Ed25519 or ECDSA P-256"):
        iss.verify_device_chain((x509.load_der_x509_certificate(leaf),), anchors(), NOW)
    with pytest.raises(ParameterError):
        iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, pkcs8(rsa_key), (leaf,)), EXTRACTOR.verify)


def test_signature_by_a_key_other_than_the_certified_one_is_refused():
    pkg, meter = new_pkg(), new_meter()
    request = request_for(pkg, meter)
    body = cbor.decode(request)
    body[7] = ed_key("someone else").sign(iss.enrollment_tbs(body))
    with pytest.raises(VerificationError, match="signature by the device key"):
        pkg.enroll(cbor.encode(body), NOW)
    p256_meter = new_meter(kind="p256")
    request = request_for(pkg, p256_meter, seed="p")
    body = cbor.decode(request)
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    for r, s in ((0, 1), (1, 0), (order, 1), (int.from_bytes(body[7][:32], "big"), order)):
        body[7] = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        with pytest.raises(VerificationError):
            pkg.enroll(cbor.encode(body), NOW)


def test_setup_values_are_checked():
    key, chain = device()
    with pytest.raises(ParameterError):
        iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, pkcs8(ed_key("x")), chain), EXTRACTOR.verify)
    with pytest.raises(ParameterError):
        iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, b"not a key", chain), EXTRACTOR.verify)
    with pytest.raises(ParameterError):
        iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, key, (b"junk",)), EXTRACTOR.verify)
    with pytest.raises(ParameterError, match="verify_key"):
        iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, key, chain), None)
    with pytest.raises(ParameterError):
        iss.TrustAnchor(chain[0], frozenset({"meter"}))          # not a CA, not self-signed
    with pytest.raises(ParameterError):
        iss.TrustAnchor(ROOT, frozenset({"pkg"}))
    with pytest.raises(ParameterError):
        iss.Pkg(iss.PkgState((), EPOCH), EXTRACTOR)
    with pytest.raises(ParameterError):
        iss.Pkg(iss.PkgState(anchors(), EPOCH), object())
    with pytest.raises(ParameterError):
        iss.Pkg(iss.PkgState(anchors(), EPOCH), HmacTestExtractor(b"m", suite="bad suite"))
    with pytest.raises(ParameterError):
        new_pkg().challenge(-1)

    class Broken:
        suite = SUITE

        def extract(self, identity):
            return "not bytes"

    pkg = new_pkg(extractor=Broken())
    with pytest.raises(ParameterError):
        pkg.enroll(request_for(pkg, new_meter()), NOW)


# ---------------------------------------------------------------------------
# Spec 4: malformed and truncated messages
# ---------------------------------------------------------------------------


def test_truncated_messages_are_decode_errors():
    pkg, meter = new_pkg(), new_meter()
    rng = HmacDrbg.from_seed("tests/issuance/truncate")
    challenge = pkg.challenge(NOW, rng)
    request = meter.enroll(challenge, rng)
    delivery = pkg.enroll(request, NOW, rng)
    fresh_meter = new_meter()
    for cut in range(len(challenge)):
        with pytest.raises(DecodeError):
            fresh_meter.enroll(challenge[:cut], rng)
    fresh_pkg = new_pkg()
    for cut in range(len(request)):
        with pytest.raises(DecodeError):
            fresh_pkg.enroll(request[:cut], NOW)
    for cut in range(len(delivery)):
        with pytest.raises(DecodeError):
            meter.receive(delivery[:cut])


@pytest.mark.parametrize("change, error", [
    ({"k1": 2}, DecodeError), ({"k2": bytes(31)}, DecodeError), ({"k3": b"usapp-id-v2/test-meters/meter/SM-000123/07"},
                                                                   DecodeError),
    ({"k4": "bad suite"}, DecodeError), ({"k5": bytes(32)}, DecodeError), ({"k5": bytes(31)}, DecodeError),
    ({"k6": []}, DecodeError), ({"k6": [b"junk"]}, DecodeError), ({"k6": ["text"]}, DecodeError),
    ({"k7": bytes(63)}, DecodeError),
], ids=["version", "challenge-length", "identity", "suite", "hpke-small-order", "hpke-length", "no-chain",
        "junk-certificate", "certificate-not-bytes", "signature-length"])
def test_malformed_enrollment_fields_are_decode_errors(change, error):
    pkg, meter = new_pkg(), new_meter()
    with pytest.raises(error):
        pkg.enroll(reencode(request_for(pkg, meter), **change), NOW)


def test_non_bytes_and_oversized_messages_are_decode_errors():
    pkg, meter = new_pkg(), new_meter()
    with pytest.raises(DecodeError):
        pkg.enroll("text", NOW)
    with pytest.raises(DecodeError):
        pkg.enroll(b"\x00" * (iss.MAX_MESSAGE_BYTES + 1), NOW)
    with pytest.raises(DecodeError):
        meter.receive(None)
    request = cbor.decode(request_for(pkg, meter))
    request[6] = request[6] * 4
    with pytest.raises(DecodeError):
        pkg.enroll(cbor.encode(request), NOW)


# ---------------------------------------------------------------------------
# Spec 7.3: the device's checks of a key-delivery
# ---------------------------------------------------------------------------


def _enrolled(seed="deliver"):
    pkg, meter = new_pkg(), new_meter()
    rng = HmacDrbg.from_seed("tests/issuance/" + seed)
    request = meter.enroll(pkg.challenge(NOW, rng), rng)
    return pkg, meter, request, pkg.enroll(request, NOW, rng)


@pytest.mark.parametrize("change", [
    {"k3": b"usapp-id-v2/test-meters/meter/SM-000124/7"}, {"k3": b"usapp-id-v2/test-meters/meter/SM-000123/8"},
    {"k3": b"usapp-id-v2/test-meters/gateway/SM-000123/7"}, {"k4": "bf-rfc5091-sha256"},
], ids=["other-serial", "other-epoch", "other-role", "other-suite"])
def test_meter_refuses_a_delivery_labelled_for_another_identity_epoch_or_suite(change):
    _, meter, _, delivery = _enrolled()
    with pytest.raises(VerificationError):
        meter.receive(reencode(delivery, **change))
    meter.receive(delivery)


@pytest.mark.parametrize("identity, suite", [
    (b"usapp-id-v2/test-meters/meter/SM-000123/8", SUITE), (b"usapp-id-v2/test-meters/meter/SM-000124/7", SUITE),
    (b"usapp-id-v2/test-meters/meter/SM-000123/7", "bf-rfc5091-sha256"),
], ids=["sealed-for-epoch-8", "sealed-for-another-serial", "sealed-for-another-suite"])
def test_meter_refuses_a_key_sealed_for_another_identity_epoch_or_suite(identity, suite):
    """The header says the meter's own identity and suite, but the HPKE info the
    key was sealed under names another: the AEAD refuses it."""
    _, meter, request, delivery = _enrolled()
    e = iss.decode_enrollment(request)
    key = EXTRACTOR.extract(identity)
    enc, ct = iss.SealBase(e.hpke_public, iss.delivery_info(e.challenge, identity, suite), b"", key,
                           HmacDrbg.from_seed("mislabel"))
    with pytest.raises(VerificationError, match="does not open"):
        meter.receive(reencode(delivery, k5=enc, k6=ct))


def test_tampered_hpke_ciphertext_is_refused():
    _, meter, _, delivery = _enrolled()
    d = iss.decode_delivery(delivery)
    for ct in (d.ct[:-1] + bytes([d.ct[-1] ^ 1]), bytes([d.ct[0] ^ 0x80]) + d.ct[1:], d.ct[:-1]):
        with pytest.raises(VerificationError):
            meter.receive(reencode(delivery, k6=ct))
    with pytest.raises(VerificationError):
        meter.receive(reencode(delivery, k5=bytes([d.enc[0] ^ 1]) + d.enc[1:]))
    meter.receive(delivery)


def test_a_key_that_fails_the_suites_check_is_refused():
    pkg = new_pkg()
    meter = new_meter(verify=lambda identity, key: False)
    with pytest.raises(VerificationError, match="does not verify"):
        run(pkg, meter)
    assert meter.state.keys == {}


def test_delivery_replays_and_strangers():
    pkg, meter, _, delivery = _enrolled()
    meter.receive(delivery)
    with pytest.raises(ReplayError):
        meter.receive(delivery)
    _, _, _, stranger = _enrolled("stranger")
    other = new_meter("SM-000124")
    with pytest.raises(StateError):
        other.receive(stranger)
    with pytest.raises(ReplayError):
        meter.enroll(iss.Challenge(iss.decode_delivery(delivery).challenge, NOW, EPOCH, SUITE).to_bytes())


# ---------------------------------------------------------------------------
# Properties: any single-byte change is refused (spec 11.2)
# ---------------------------------------------------------------------------


_PROPERTY_METER = new_meter()
_PROPERTY_REQUEST = request_for(new_pkg(), _PROPERTY_METER, seed="property")


def _pkg_with_the_property_challenge() -> iss.Pkg:
    pkg = new_pkg()
    pkg.challenge(NOW, HmacDrbg.from_seed("tests/issuance/property"))
    return pkg


@PROPERTY
@given(st.data())
def test_any_single_byte_change_to_an_enrollment_is_rejected_and_changes_nothing(data):
    request = bytearray(_PROPERTY_REQUEST)
    position = data.draw(st.integers(0, len(request) - 1))
    request[position] ^= data.draw(st.integers(1, 255))
    pkg = _pkg_with_the_property_challenge()
    with pytest.raises(UsappError):
        pkg.enroll(bytes(request), NOW)
    assert pkg.state.log.entries == [] and not any(r.used for r in pkg.state.challenges.values())
    pkg.enroll(_PROPERTY_REQUEST, NOW)


_DELIVERY_PKG, _DELIVERY_METER, _, _DELIVERY = _enrolled("property-delivery")


def test_every_byte_of_an_enrollment_and_a_delivery_is_protected():
    """The exhaustive companion of the two properties: every position, four changes each."""
    for position in range(len(_PROPERTY_REQUEST)):
        for mask in (0x01, 0x20, 0x80, 0xFF):
            request = bytearray(_PROPERTY_REQUEST)
            request[position] ^= mask
            with pytest.raises(UsappError):
                _pkg_with_the_property_challenge().enroll(bytes(request), NOW)
    _, meter, _, delivery = _enrolled("exhaustive")
    for position in range(len(delivery)):
        for mask in (0x01, 0x20, 0x80, 0xFF):
            changed = bytearray(delivery)
            changed[position] ^= mask
            with pytest.raises(UsappError):
                meter.receive(bytes(changed))
    assert meter.receive(delivery).epoch == EPOCH


@PROPERTY
@given(st.data())
def test_any_single_byte_change_to_a_delivery_is_rejected(data):
    delivery = bytearray(_DELIVERY)
    position = data.draw(st.integers(0, len(delivery) - 1))
    delivery[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(UsappError):
        _DELIVERY_METER.receive(bytes(delivery))
    assert _DELIVERY_METER.state.keys == {}


def test_the_genuine_delivery_is_still_accepted_after_the_property_run():
    assert _DELIVERY_METER.receive(_DELIVERY).epoch == EPOCH


# ---------------------------------------------------------------------------
# Spec 9: the issuance log
# ---------------------------------------------------------------------------


def _log(count: int = 5) -> iss.IssuanceLog:
    pkg = new_pkg()
    for i in range(count):
        run(pkg, new_meter(f"SM-{i:06d}"), NOW + 10 * i, seed=f"log-{i}")
    return pkg.state.log


def test_the_log_records_every_issuance_and_verifies():
    log = _log()
    entries = log.verify(expected_head=log.head)
    assert [e.index for e in entries] == list(range(5))
    assert entries[0].prev == bytes(32)
    assert all(entries[i].prev == hashlib.sha256(log.entries[i - 1]).digest() for i in range(1, 5))
    assert [iss.Identity.parse(e.identity).serial for e in entries] == [f"SM-{i:06d}" for i in range(5)]
    assert iss.verify_log([]) == ()


def _resign(entry: bytes, **changes) -> bytes:
    return reencode(entry, **changes)


@pytest.mark.parametrize("tamper, index", [
    (lambda e: e[:2] + [_resign(e[2], k7=NOW + 21)] + e[3:], 3),               # edit entry 2's time
    (lambda e: e[:2] + [_resign(e[2], k3=b"usapp-id-v2/test-meters/meter/SM-999999/7")] + e[3:], 3),
    (lambda e: e[:1] + e[2:], 1),                                              # drop entry 1
    (lambda e: [e[1], e[0]] + e[2:], 0),                                       # swap 0 and 1
    (lambda e: e[:3] + [e[4], e[3]], 3),                                       # swap 3 and 4
    (lambda e: e[:4] + [e[3]], 4),                                             # duplicate 3 in place of 4
    (lambda e: e[:2] + [b"\xa0"] + e[3:], 2),                                  # garbage entry
    (lambda e: e[:2] + [_resign(e[2], k4=8)] + e[3:], 2),                      # epoch disagrees with identity
    (lambda e: [_resign(e[0], k2=bytes([1]) * 32)] + e[1:], 0),                # forged genesis prev
], ids=["edit-time", "edit-identity", "drop", "swap-first", "swap-last", "duplicate", "garbage",
        "epoch-mismatch", "forged-genesis"])
def test_the_log_detects_edits_drops_and_reorders_naming_the_index(tamper, index):
    log = _log()
    with pytest.raises(VerificationError, match=rf"^log entry {index}\b"):
        iss.verify_log(tamper(list(log.entries)), expected_head=log.head)


def test_a_consistently_rewritten_log_is_caught_by_the_expected_head():
    log = _log()
    head = log.head
    rewritten = iss.IssuanceLog()
    for entry in iss.verify_log(log.entries)[:4]:
        rewritten.entries.append(dataclasses.replace(entry, prev=rewritten.head).to_bytes())
    iss.verify_log(rewritten.entries)                       # consistent on its own: a truncation
    with pytest.raises(VerificationError, match="log entry 3: the log's head"):
        iss.verify_log(rewritten.entries, expected_head=head)


_LOG = _log(4)


@PROPERTY
@given(st.data())
def test_any_single_byte_change_to_the_log_is_detected(data):
    entries = list(_LOG.entries)
    index = data.draw(st.integers(0, len(entries) - 1))
    entry = bytearray(entries[index])
    entry[data.draw(st.integers(0, len(entry) - 1))] ^= data.draw(st.integers(1, 255))
    entries[index] = bytes(entry)
    with pytest.raises(VerificationError, match=r"^log entry \d+"):
        iss.verify_log(entries, expected_head=_LOG.head)


def test_the_log_refuses_time_going_backwards():
    pkg = new_pkg()
    run(pkg, new_meter(), NOW + 100)
    with pytest.raises(StateError):
        run(pkg, new_meter("SM-000124"), NOW + 50, seed="back")
    with pytest.raises(VerificationError, match="log entry 1: time goes backwards"):
        log = iss.IssuanceLog()
        log.append(iss.Identity(NS, "A", "meter", 1), SUITE, bytes(32), 10)
        entry = iss.LogEntry(1, log.head, iss.Identity(NS, "B", "meter", 1).to_bytes(), 1, SUITE, bytes(32), 5)
        iss.verify_log(log.entries + [entry.to_bytes()])


# ---------------------------------------------------------------------------
# Spec 7.1 and 13: the HPKE profile reproduces RFC 9180 A.2.1
# ---------------------------------------------------------------------------

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "hpke_rfc9180.json"


def test_hpke_reproduces_rfc9180_a21_through_the_delivery_code_path():
    (a21,) = [v for v in hpke_rfc9180.transcribe()["vectors"] if v["name"] == "A.2.1"]
    h = bytes.fromhex
    assert iss.DeriveKeyPair(h(a21["ikmR"])) == (h(a21["skRm"]), h(a21["pkRm"]))
    first = a21["encryptions"][0]
    draws = ReplayRandom([h(a21["ikmE"])])
    enc, ct = iss.SealBase(h(a21["pkRm"]), h(a21["info"]), h(first["aad"]), h(first["pt"]), draws)
    assert draws.exhausted
    assert (enc.hex(), ct.hex()) == (a21["enc"], first["ct"])
    assert iss.OpenBase(enc, h(a21["skRm"]), h(a21["info"]), h(first["aad"]), ct) == h(first["pt"])
    assert ct.hex() == "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28"


def test_the_hpke_vector_file_is_the_transcription_of_the_rfc_text_and_verifies():
    envelope = hpke_rfc9180.transcribe()
    assert VECTORS.read_text() == json.dumps(envelope, indent=2, sort_keys=True) + "\n"
    assert hpke_rfc9180.FAMILY in families()
    for vector in envelope["vectors"]:
        hpke_rfc9180.verify_vector(vector)


def test_a_changed_hpke_value_is_reported():
    from protocols.errors import VectorMismatchError

    (a21, *negatives) = hpke_rfc9180.transcribe()["vectors"]
    for name in ("shared_secret", "key", "exporter_secret", "pkEm"):
        bad = dict(a21, **{name: "00" + a21[name][2:]})
        with pytest.raises(VectorMismatchError, match=name):
            hpke_rfc9180.verify_vector(bad)
    bad = dict(negatives[0], ct=a21["encryptions"][0]["ct"])
    with pytest.raises(VectorMismatchError, match="accepted"):
        hpke_rfc9180.verify_vector(bad)


def test_hpke_input_checks():
    sk, pk = iss.DeriveKeyPair(bytes(32))
    with pytest.raises(DecodeError):
        iss.SealBase(bytes(32), b"", b"", b"pt", HmacDrbg.from_seed("h"))       # small-order recipient
    with pytest.raises(DecodeError):
        iss.SealBase(pk[:31], b"", b"", b"pt", HmacDrbg.from_seed("h"))
    with pytest.raises(ParameterError):
        iss.DeriveKeyPair(bytes(31))
    enc, ct = iss.SealBase(pk, b"info", b"aad", b"pt", HmacDrbg.from_seed("h"))
    with pytest.raises(ParameterError):
        iss.OpenBase(enc, sk[:31], b"info", b"aad", ct)
    with pytest.raises(DecodeError):
        iss.OpenBase(enc, sk, b"info", b"aad", ct[:15])
    with pytest.raises(VerificationError):
        iss.OpenBase(enc, sk, b"info", b"aad2", ct)
    assert re.fullmatch(r"[0-9a-f]{64}", hpke_rfc9180.PINNED_SHA256)


def test_every_change_to_the_device_key_is_a_parameter_error():
    """A damaged PKCS#8 device key is refused with ParameterError, never an
    untyped error (OpenSSL raises InternalError for some Ed25519 keys)."""
    key, chain = device("SM-000123")
    for index in range(len(key)):
        for mask in (0x01, 0x80):
            damaged = key[:index] + bytes([key[index] ^ mask]) + key[index + 1:]
            with pytest.raises(ParameterError):
                iss.Meter(iss.MeterState(NS, "SM-000123", "meter", SUITE, damaged, chain), EXTRACTOR.verify)
