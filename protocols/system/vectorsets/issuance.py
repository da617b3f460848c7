"""Vector family ``issuance``: whole enrollment runs of specs/issuance.md (section 13).

Each vector (operation ``enroll``) is one run of the key issuance protocol
with the BLS12-381 BF suite (spec 10): the manufacturer root certificate, the
device's certificate chain and PKCS#8 private key (the device certificate
certifies role ``meter`` by its extendedKeyUsage, spec 6.4), the identity
(namespace of the root, serial, role, epoch), the time, and the DRBG seed every random draw comes from; then
every message byte for byte (challenge, enrollment, key-delivery), the log
entry and log head, and the delivered key.

- ``mode: "single"``: one PKG holding ``master_secret`` (``Bls12Extractor``).
- ``mode: "threshold"``: a t-of-n distributed PKG keyed by a joint-Feldman
  DKG, ``bf_bls12.deal(i, t, nodes, drbg, dkg_context)`` for each node i in
  node order from one HMAC_DRBG(dkg_seed) (each dealer's coefficients, then
  its proof-of-possession nonce; the proofs are published), combined with
  ``combine_dealings(..., dkg_context)``, which checks every proof; the device enrolls with each listed node in
  turn (its own ``Pkg`` and log, ``ThresholdNodeExtractor``), checks each
  share with ``threshold_share_verifier`` and combines them
  (``combine_issued_shares``).

Draw order within one run, all from HMAC_DRBG(run_seed) (``from_seed``):
``Pkg.challenge`` draws the 32-byte nonce, ``Meter.enroll`` the 32-byte ikm
of its HPKE key pair (DeriveKeyPair), ``Pkg.enroll`` the 32-byte ikmE of the
HPKE ephemeral key (``SealBase``).  The three draws are published too, so a
vendor without HMAC_DRBG can feed them directly.

Certificates are made at generation time from keys derived from fixed seeds
(Ed25519: SHA-256(seed) as the private key; P-256: SHA-256(seed) mod (n-1) + 1)
with fixed validity dates; Ed25519 and RFC 6979 ECDSA signatures are
deterministic, so ``build()`` is too (the whole-file check relies on it).
Verification takes the certificates and keys as stored inputs and replays
the run through the reference PKG and device, comparing every output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from protocols import issuance as iss
from protocols.errors import UsappError, VectorMismatchError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import bf_bls12
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_PARTIES,
    MAX_STEPS,
    UINT64,
    bytes_field,
    dispatch,
    edit_bytes,
    expect,
    expect_refusal,
    field,
    hex_list_field,
    hexint,
    int_field,
    list_field,
    small_int_field,
    str_field,
)

PROTOCOL = "issuance"
SUITE = bf_bls12.SUITE
FILE = "issuance.json"
SEED = "usapp-vectors/issuance/"

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2035, 1, 1, tzinfo=dt.timezone.utc)
EPOCH = 7
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


# ---------------------------------------------------------------------------
# Reading fields
# ---------------------------------------------------------------------------


class _Recorder:
    """A RandomSource that records what it hands out."""

    def __init__(self, source: HmacDrbg) -> None:
        self.source = source
        self.draws: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        out = self.source.random_bytes(n)
        self.draws.append(out)
        return out


def _str_list(v: Mapping[str, Any], name: str) -> list[str]:
    return [str_field({name: item}, name) for item in list_field(v, name)]


def _int_list(v: Mapping[str, Any], name: str) -> list[int]:
    return [small_int_field({name: item}, name, low=0, high=MAX_PARTIES) for item in list_field(v, name, max_items=MAX_PARTIES)]


def _object(v: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = field(v, name)
    if not isinstance(value, dict):
        raise VectorMismatchError(f"field {name!r} must be an object")
    return value


def _canonical_device_key(der: bytes) -> None:
    """The stored PKCS#8 must be the canonical encoding of the key it holds
    (an edited embedded public key would otherwise go unnoticed)."""
    try:
        key = serialization.load_der_private_key(der, password=None)
        again = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    except Exception as exc:  # OpenSSL also raises InternalError for some edited keys
        raise VectorMismatchError(f"field 'device_key' is not a PKCS#8 private key: {type(exc).__name__}") from None
    if again != der:
        raise VectorMismatchError("field 'device_key' is not the canonical PKCS#8 encoding of its key")


_SIGNATURE_ALGORITHM_IDS = (bytes.fromhex("300506032b6570"), bytes.fromhex("300a06082a8648ce3d040302"))
"""DER AlgorithmIdentifiers of Ed25519 and ECDSA with SHA-256 (no parameters)."""


def _der_length(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")


def _canonical_certificate(der: bytes, name: str) -> None:
    """The outer Certificate SEQUENCE must be DER: the parser accepts some
    non-canonical encodings (a non-zero unused-bits count in the signature BIT
    STRING) that the signature does not cover, so a stored root would
    otherwise admit edits that change nothing."""
    try:
        cert = x509.load_der_x509_certificate(der)
        tbs, signature = cert.tbs_certificate_bytes, cert.signature
    except Exception as exc:  # cryptography's parser raises more than ValueError (see issuance._load_certificate)
        raise VectorMismatchError(f"field {name!r} is not an X.509 certificate: {type(exc).__name__}") from None
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    if not any(der == b"\x30" + _der_length(len(tbs) + len(alg) + len(bit_string)) + tbs + alg + bit_string
               for alg in _SIGNATURE_ALGORITHM_IDS):
        raise VectorMismatchError(f"field {name!r} is not a DER certificate signed with Ed25519 or ECDSA-SHA256")


# ---------------------------------------------------------------------------
# Replaying a run
# ---------------------------------------------------------------------------


def _device(v: Mapping[str, Any]) -> dict:
    """The inputs every run shares, checked and decoded."""
    suite = str_field(v, "suite")
    if suite != SUITE:
        raise VectorMismatchError(f"field 'suite' must be {SUITE!r}")
    device_key = bytes_field(v, "device_key")
    _canonical_device_key(device_key)
    root = bytes_field(v, "root_certificate")
    chain = tuple(hex_list_field(v, "chain"))
    for name, der in [("root_certificate", root)] + [(f"chain[{i}]", c) for i, c in enumerate(chain)]:
        _canonical_certificate(der, name)
    anchor = iss.TrustAnchor(root, frozenset(_str_list(v, "anchor_roles")), str_field(v, "namespace"))
    return {
        "anchors": (anchor,),
        "chain": chain,
        "device_key": device_key,
        "namespace": str_field(v, "namespace"),
        "serial": str_field(v, "serial"),
        "role": str_field(v, "role"),
        "epoch": small_int_field(v, "epoch", low=0, high=UINT64),
        "now": small_int_field(v, "now", low=0, high=UINT64),
        "lifetime": small_int_field(v, "challenge_lifetime", low=0, high=UINT64),
    }


def _run(d: dict, extractor: iss.KeyExtractor, verify_key: iss.KeyVerifier, run_seed: str
         ) -> tuple[dict, iss.IssuedKey]:
    """One enrollment: challenge, enrollment, key-delivery; the outputs as JSON."""
    pkg = iss.Pkg(iss.PkgState(d["anchors"], d["epoch"], challenge_lifetime=d["lifetime"]), extractor)
    meter = iss.Meter(iss.MeterState(d["namespace"], d["serial"], d["role"], SUITE, d["device_key"], d["chain"]),
                      verify_key)
    rng = _Recorder(HmacDrbg.from_seed(run_seed))
    challenge = pkg.challenge(d["now"], rng)
    enrollment = meter.enroll(challenge, rng)
    delivery = pkg.enroll(enrollment, d["now"], rng)
    issued = meter.receive(delivery)
    if len(rng.draws) != 3:
        raise VectorMismatchError(f"the run drew {len(rng.draws)} times, not 3")
    nonce, ikm, ikm_e = rng.draws
    (entry,) = pkg.state.log.entries
    roles = enrollment_roles(d, pkg, SUITE, nonce, ikm, challenge, enrollment, delivery, issued)
    outputs = {
        "draws": {"challenge_nonce": nonce.hex(), "device_ikm": ikm.hex(), "pkg_ikm_e": ikm_e.hex()},
        "hpke_public": iss.DeriveKeyPair(ikm)[1].hex(),
        "challenge": challenge.hex(),
        "enrollment": enrollment.hex(),
        "key_delivery": delivery.hex(),
        "log_entry": entry.hex(),
        "log_head": pkg.state.log.head.hex(),
        "key": issued.key.hex(),
        "roles": roles,
    }
    return outputs, issued


def enrollment_roles(d: Mapping[str, Any], pkg: iss.Pkg, suite: str, nonce: bytes, ikm: bytes, challenge: bytes,
                     enrollment: bytes, delivery: bytes, issued: iss.IssuedKey) -> list[dict]:
    """The per-role steps of one enrollment (spec 13): the PKG's challenge, the device's enrollment with
    its intermediates, the PKG's key delivery and log, the device's receipt of the key."""
    identity = iss.Identity(d["namespace"], d["serial"], d["role"], d["epoch"]).to_bytes()
    body = cbor.decode(enrollment)
    device_sk, device_pk = iss.DeriveKeyPair(ikm)
    return [
        {"role": "pkg", "action": "challenge", "time": d["now"],
         "state_before": {"epoch": d["epoch"], "log_size": 0}, "output": challenge.hex()},
        {"role": "device", "action": "enroll", "input": challenge.hex(),
         "intermediates": {"identity": identity.decode("ascii"), "hpke_private": device_sk.hex(),
                           "hpke_public": device_pk.hex(),
                           "enrollment_tbs": iss.enrollment_tbs({k: v for k, v in body.items() if k != 7}).hex()},
         "output": enrollment.hex()},
        {"role": "pkg", "action": "enroll", "time": d["now"], "input": enrollment.hex(),
         "intermediates": {"key_delivery_info": iss.delivery_info(nonce, identity, suite).hex()},
         "output": delivery.hex(), "state_after": {"epoch": d["epoch"], "log_size": 1,
                                                   "log_head": pkg.state.log.head.hex()}},
        {"role": "device", "action": "receive", "input": delivery.hex(), "output": issued.key.hex()},
    ]


def _single_outputs(v: Mapping[str, Any]) -> dict:
    d = _device(v)
    master = bf_bls12.MasterKey(int_field(v, "master_secret"))
    outputs, _ = _run(d, iss.Bls12Extractor(master), iss.bls12_key_verifier(master.params),
                      str_field(v, "run_seed"))
    return {"p_pub": master.params.to_bytes().hex(), **outputs}


def _dkg(seed: str, threshold: int, nodes: list[int], context: bytes
         ) -> tuple[bf_bls12.DistributedKey, dict[int, int], dict[str, dict]]:
    rng = HmacDrbg.from_seed(seed)
    dealings = [bf_bls12.deal(i, threshold, nodes, rng, context) for i in nodes]
    proofs = {str(d.dealer): {"R": d.proof_commitment.to_bytes().hex(), "z": hexint(d.proof_response)}
              for d in dealings if d.proof_commitment is not None and d.proof_response is not None}
    if len(proofs) != len(dealings):
        raise VectorMismatchError("a dealing carries no proof of possession")
    return bf_bls12.combine_dealings(dealings, threshold, nodes, context), \
        {i: bf_bls12.node_secret(dealings, i) for i in nodes}, proofs


def _threshold_outputs(v: Mapping[str, Any], enrollments: Sequence[Mapping[str, Any]]) -> tuple[dict, list[dict]]:
    d = _device(v)
    threshold = small_int_field(v, "threshold", low=0, high=MAX_PARTIES)
    nodes = _int_list(v, "nodes")
    key, secrets, proofs = _dkg(str_field(v, "dkg_seed"), threshold, nodes, bytes_field(v, "dkg_context"))
    shares, per_node = {}, []
    for item in enrollments:
        node = small_int_field(item, "node", low=0, high=MAX_PARTIES)
        if node not in secrets or node in shares:
            raise VectorMismatchError(f"enrollment with node {node!r}: not a PKG node, or listed twice")
        outputs, issued = _run(d, iss.ThresholdNodeExtractor(node, secrets[node]),
                               iss.threshold_share_verifier(key, node), str_field(item, "run_seed"))
        outputs["share"] = outputs.pop("key")
        shares[node] = issued
        per_node.append(outputs)
    combined = iss.combine_issued_shares(key, shares)
    top = {
        "p_pub": key.params.to_bytes().hex(),
        "proofs_of_possession": proofs,
        "node_secrets": {str(i): hexint(s) for i, s in secrets.items()},
        "verification_keys": {str(i): key.verification_keys[i].to_bytes().hex() for i in nodes},
        "key": combined.key.hex(),
    }
    return top, per_node


def _enroll(v: Mapping[str, Any]) -> None:
    mode = str_field(v, "mode")
    if mode == "single":
        for name, value in _single_outputs(v).items():
            expect(name, field(v, name), value)
    elif mode == "threshold":
        enrollments = list_field(v, "enrollments", max_items=MAX_STEPS)
        if not enrollments or any(not isinstance(item, dict) for item in enrollments):
            raise VectorMismatchError("field 'enrollments' must be a non-empty list of objects")
        top, per_node = _threshold_outputs(v, enrollments)
        for name, value in top.items():
            expect(name, field(v, name), value)
        for index, (item, outputs) in enumerate(zip(enrollments, per_node)):
            for name, value in outputs.items():
                expect(f"enrollments[{index}].{name}", field(item, name), value)
    else:
        raise VectorMismatchError(f"field 'mode': unknown mode {mode!r}")


_REFUSE_INPUTS = frozenset({"operation", "name", "result", "error", "flags", "comment", "target", "change",
                            "suite", "root_certificate", "anchor_roles", "namespace", "chain", "device_key", "serial",
                            "role", "epoch", "now", "challenge_lifetime", "master_secret", "run_seed", "mode"})
NOTES = {
    "Truncated": "a message cut short (DecodeError)",
    "TrailingBytes": "a message with a byte appended (DecodeError)",
    "Tampered": "the last byte (the signature, or the AEAD tag) flipped (VerificationError)",
    "Replay": "a challenge answered, an enrollment presented, or a key-delivery received, a second time (ReplayError)",
    "Expired": "an enrollment presented after its challenge expired (StateError)",
    "WrongEpoch": "an enrollment for an epoch the PKG has left (StateError)",
    "Revoked": "an enrollment by a revoked device (VerificationError)",
    "ClockBack": "an enrollment presented at a time before the PKG's last log entry (5.3 step 0, StateError)",
    "UnknownSuite": "an enrollment naming a well-formed suite the PKG does not issue (5.3 step 2, DecodeError)",
    "UnknownChallenge": "an enrollment or key-delivery whose nonce is no outstanding challenge or open enrollment "
                        "(5.3 step 4, 7.3 step 2; StateError)",
    "BadChain": "a device chain that does not validate to the trust anchor (5.3 step 5, VerificationError)",
    "WrongNamespace": "an identity in another namespace than the anchor's (5.3 step 6, VerificationError)",
    "RoleNotVouched": "a role the anchor may not vouch for, though certified (5.3 step 6, VerificationError)",
    "RoleNotCertified": "a role the anchor may vouch for but the device certificate does not certify "
                        "(5.3 step 6, VerificationError)",
    "WrongSerial": "a device certificate whose serialNumber is not the identity's serial, or is absent or "
                   "repeated (5.3 step 7, VerificationError)",
    "WrongIdentity": "a key-delivery, sealed correctly to the device, for another identity or suite than the "
                     "enrollment's (7.3 step 3, VerificationError)",
    "BadKey": "a key-delivery that opens, but whose key fails the suite's key check (7.3 step 5, VerificationError)",
}


def _change(data: bytes, change: object) -> bytes:
    return edit_bytes(data, change, "change")


def _change_object(change: object, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Mapping[str, Any]:
    """The ``change`` of a target that sets something up rather than editing bytes: an object with these keys."""
    if not isinstance(change, dict) or not set(required) <= set(change) or not set(change) <= {*required, *optional}:
        raise VectorMismatchError(f"field 'change' must be an object with {', '.join(required)}"
                                  + (f" (and optionally {', '.join(optional)})" if optional else ""), field="change")
    return change


def _sealed_delivery(enrollment: bytes, change: object, suite: str, rng: HmacDrbg) -> bytes:
    """Spec 7.3 steps 3 and 5 (section 13, ``meter_receive_sealed``): a key-delivery made by anyone who
    saw the enrollment (pkRm travels in the clear): ``change.key`` sealed to pkRm (7.2) for
    ``change.identity`` (and ``change.suite``, default the run's) under the enrollment's nonce,
    drawing ikmE from the run."""
    c = _change_object(change, ("identity", "key"), ("suite",))
    identity = str_field(c, "identity").encode("ascii")
    sealed_suite = str_field(c, "suite") if "suite" in c else suite
    body = cbor.decode(enrollment)
    nonce, pk = body[2], body[5]
    enc, ct = iss.SealBase(pk, iss.delivery_info(nonce, identity, sealed_suite), b"", bytes_field(c, "key"), rng)
    return cbor.encode({1: 1, 2: nonce, 3: identity, 4: sealed_suite, 5: enc, 6: ct})


def _refusal(v: Mapping[str, Any]) -> Callable[[], None]:
    """Spec 5: set up a single-mode run; the step that replays it up to ``target`` and makes that
    step misbehave (run by :func:`expect_refusal`)."""
    for key in v:
        if key not in _REFUSE_INPUTS:
            raise VectorMismatchError(f"field {key!r} is not an input of a refuse vector")
    d = _device(v)
    master = bf_bls12.MasterKey(int_field(v, "master_secret"))
    pkg = iss.Pkg(iss.PkgState(d["anchors"], d["epoch"], challenge_lifetime=d["lifetime"]), iss.Bls12Extractor(master))
    target, change = str_field(v, "target"), v.get("change")
    namespace = d["namespace"]
    if target == "pkg_enroll_in_namespace":  # the device claims another namespace than its anchor's
        namespace = str_field(_change_object(change, ("namespace",)), "namespace")
    meter = iss.Meter(iss.MeterState(namespace, d["serial"], d["role"], SUITE, d["device_key"], d["chain"]),
                      iss.bls12_key_verifier(master.params))
    rng = HmacDrbg.from_seed(str_field(v, "run_seed"))
    def step() -> None:
        challenge = pkg.challenge(d["now"], rng)
        enrollment = meter.enroll(challenge, rng)
        if target == "pkg_enroll_in_namespace":
            pkg.enroll(enrollment, d["now"], rng)
        elif target == "pkg_enroll_clock_back":
            pkg.enroll(enrollment, d["now"], rng)
            earlier = pkg.challenge(d["now"] - 1, rng)
            pkg.enroll(meter.enroll(earlier, rng), d["now"] - 1, rng)
        elif target == "meter_receive_twice":
            delivery = pkg.enroll(enrollment, d["now"], rng)
            meter.receive(delivery)
            meter.receive(delivery)
        elif target == "meter_receive_sealed":
            meter.receive(_sealed_delivery(enrollment, change, SUITE, rng))
        elif target == "meter_enroll_twice":
            meter.enroll(challenge, rng)
        elif target == "pkg_enroll":  # without a change: the device's own enrollment, refused for its inputs
            pkg.enroll(enrollment if change is None else _change(enrollment, change), d["now"], rng)
        elif target == "pkg_enroll_twice":
            pkg.enroll(enrollment, d["now"], rng)
            pkg.enroll(enrollment, d["now"], rng)
        elif target == "pkg_enroll_late":
            pkg.enroll(enrollment, d["now"] + d["lifetime"] + 1, rng)
        elif target == "pkg_enroll_next_epoch":
            pkg.advance_epoch(d["epoch"] + 1)
            pkg.enroll(enrollment, d["now"], rng)
        elif target == "pkg_enroll_revoked":
            pkg.revoke(d["namespace"], d["serial"])
            pkg.enroll(enrollment, d["now"], rng)
        elif target == "meter_receive":
            meter.receive(_change(pkg.enroll(enrollment, d["now"], rng), change))
        else:
            raise VectorMismatchError(f"field 'target': unknown target {target!r}")
    return step


def _refuse(v: Mapping[str, Any]) -> None:
    expect_refusal(v, _refusal(v))


OPERATIONS = {"enroll": _enroll, "refuse": _refuse}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# ---------------------------------------------------------------------------
# Generation: deterministic certificates and the cases
# ---------------------------------------------------------------------------


def _ed_key(seed: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256((SEED + seed).encode()).digest())


def _p256_key(seed: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256((SEED + seed).encode()).digest(), "big") % (_P256_N - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _pkcs8(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common: str, serial: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "USaPP Vector Meters Ltd"),
                  x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if serial is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attributes)


def _certificate(subject: x509.Name, public_key, issuer: x509.Name, signing_key, number: int, *,
                 ca: bool, path_length: int | None = None, roles: tuple[str, ...] = (),
                 not_after: dt.datetime = NOT_AFTER) -> bytes:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(number).not_valid_before(NOT_BEFORE).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=not ca, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                   encipher_only=False, decipher_only=False), critical=True))
    if roles:  # spec 6.4: the roles the device certificate certifies
        builder = builder.add_extension(x509.ExtendedKeyUsage([iss.ROLE_OIDS[r] for r in roles]), critical=False)
    if isinstance(signing_key, ed25519.Ed25519PrivateKey):
        cert = builder.sign(signing_key, None)
    else:
        cert = builder.sign(signing_key, hashes.SHA256(), ecdsa_deterministic=True)  # RFC 6979
    return cert.public_bytes(serialization.Encoding.DER)


_ROOT_KEY = _ed_key("root")
_ROOT_NAME = _name("USaPP Vector Meters Root CA")
_INTERMEDIATE_KEY = _p256_key("intermediate")
_INTERMEDIATE_NAME = _name("USaPP Vector Meters Factory 2 CA")


def _root() -> bytes:
    return _certificate(_ROOT_NAME, _ROOT_KEY.public_key(), _ROOT_NAME, _ROOT_KEY, 1, ca=True, path_length=1)


def _intermediate() -> bytes:
    return _certificate(_INTERMEDIATE_NAME, _INTERMEDIATE_KEY.public_key(), _ROOT_NAME, _ROOT_KEY, 2,
                        ca=True, path_length=0)


def _device_inputs(name: str, serial: str, kind: str) -> dict:
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if kind == "ed25519-under-root":
        key = _ed_key("device-" + serial)
        chain = [_certificate(_name(f"meter {serial}", serial), key.public_key(), _ROOT_NAME, _ROOT_KEY, 10,
                              ca=False, roles=("meter",))]
    else:  # "p256-under-intermediate"
        key = _p256_key("device-" + serial)
        chain = [_certificate(_name(f"meter {serial}", serial), key.public_key(), _INTERMEDIATE_NAME,
                              _INTERMEDIATE_KEY, 11, ca=False, roles=("meter",)), _intermediate()]
    return {
        "name": name, "operation": "enroll", "suite": SUITE,
        "root_certificate": _root().hex(), "anchor_roles": ["meter", "gateway"], "namespace": "usapp-vectors",
        "chain": [c.hex() for c in chain], "device_key": _pkcs8(key).hex(),
        "serial": serial, "role": "meter", "epoch": EPOCH, "now": NOW,
        "challenge_lifetime": iss.DEFAULT_CHALLENGE_LIFETIME,
    }


def _single_case(name: str, serial: str, kind: str) -> dict:
    vector = _device_inputs(name, serial, kind)
    master = bf_bls12.setup(HmacDrbg.from_seed(SEED + name + "/master"))
    vector.update({"mode": "single", "master_secret": hexint(master.s), "run_seed": SEED + name + "/run"})
    vector.update(_single_outputs(vector))
    return vector


def _threshold_case(name: str, serial: str, threshold: int, nodes: list[int], enrolling: list[int]) -> dict:
    vector = _device_inputs(name, serial, "ed25519-under-root")
    enrollments = [{"node": i, "run_seed": f"{SEED}{name}/node-{i}"} for i in enrolling]
    vector.update({"mode": "threshold", "dkg_seed": SEED + name + "/dkg",
                   "dkg_context": (SEED + name + "/dkg-session").encode().hex(), "threshold": threshold,
                   "nodes": nodes})
    top, per_node = _threshold_outputs(vector, enrollments)
    for item, outputs in zip(enrollments, per_node):
        item.update(outputs)
    vector.update(top)
    vector["enrollments"] = enrollments
    return vector


def _negative(base: dict, name: str, target: str, error: str, flags: list[str], change: dict | None = None, *,
              comment: str | None = None, inputs: Mapping[str, Any] | None = None) -> dict:
    v = {k: base[k] for k in _REFUSE_INPUTS if k in base}
    v.update({"operation": "refuse", "name": name, "result": "invalid", "error": error, "flags": flags,
              "target": target})
    if change is not None:
        v["change"] = change
    if comment is not None:
        v["comment"] = comment
    v.update(inputs or {})
    expect_refusal(v, _refusal(v))
    return v


def _negatives(base: dict) -> list[dict]:
    return [
        _negative(base, "enrollment-truncated", "pkg_enroll", "DecodeError", ["Truncated"], {"truncate": 40}),
        _negative(base, "enrollment-trailing-byte", "pkg_enroll", "DecodeError", ["TrailingBytes"], {"append": "00"}),
        _negative(base, "enrollment-signature-tampered", "pkg_enroll", "VerificationError", ["Tampered"],
                  {"flip": -1}),
        _negative(base, "enrollment-replayed", "pkg_enroll_twice", "ReplayError", ["Replay"]),
        _negative(base, "enrollment-after-the-challenge-expired", "pkg_enroll_late", "StateError", ["Expired"]),
        _negative(base, "enrollment-for-a-past-epoch", "pkg_enroll_next_epoch", "StateError", ["WrongEpoch"]),
        _negative(base, "enrollment-by-a-revoked-device", "pkg_enroll_revoked", "VerificationError", ["Revoked"]),
        _negative(base, "challenge-answered-twice", "meter_enroll_twice", "ReplayError", ["Replay"]),
        _negative(base, "key-delivery-truncated", "meter_receive", "DecodeError", ["Truncated"], {"truncate": 40}),
        _negative(base, "key-delivery-tag-tampered", "meter_receive", "VerificationError", ["Tampered"],
                  {"flip": -1}),
    ]


# Certificate fixtures of the refusals of 5.3 steps 5 and 7 (spec 13): each certifies the key of the
# first vector's device (label device-<serial>) for role meter, unless said otherwise.
_OTHER_ROOT_KEY = _ed_key("other-root")
_OTHER_ROOT_NAME = _name("USaPP Vector Meters Other Root CA")
_IMPOSTOR_ROOT_KEY = _ed_key("impostor-root")
_EXPIRED = dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc)


def _refusal_device_certificate(serial: str, fixture: str) -> bytes:
    """The device certificate of one refusal fixture (X.509 serial numbers 20 to 24)."""
    public = _ed_key("device-" + serial).public_key()
    subject = _name(f"meter {serial}", serial)
    if fixture == "other-root":  # issued by a root the PKG does not trust: untrusted issuer
        return _certificate(subject, public, _OTHER_ROOT_NAME, _OTHER_ROOT_KEY, 20, ca=False, roles=("meter",))
    if fixture == "impostor-root":  # names the trusted root as issuer, signed by another key: bad signature
        return _certificate(subject, public, _ROOT_NAME, _IMPOSTOR_ROOT_KEY, 21, ca=False, roles=("meter",))
    if fixture == "expired":  # notAfter 2025-12-31T00:00:00Z, before now
        return _certificate(subject, public, _ROOT_NAME, _ROOT_KEY, 22, ca=False, roles=("meter",),
                            not_after=_EXPIRED)
    if fixture == "no-serial":  # no serialNumber attribute (6.3)
        return _certificate(_name(f"meter {serial}"), public, _ROOT_NAME, _ROOT_KEY, 23, ca=False, roles=("meter",))
    if fixture == "two-serials":  # two serialNumber attributes, the device's first (6.3)
        other = f"{serial[:-1]}{(int(serial[-1]) + 1) % 10}"
        name = x509.Name([*subject, x509.NameAttribute(NameOID.SERIAL_NUMBER, other)])
        return _certificate(name, public, _ROOT_NAME, _ROOT_KEY, 24, ca=False, roles=("meter",))
    raise ValueError(fixture)


def _identity(base: Mapping[str, Any], *, serial: str | None = None, epoch: int | None = None) -> str:
    return iss.Identity(base["namespace"], serial or base["serial"], base["role"],
                        base["epoch"] if epoch is None else epoch).to_bytes().decode("ascii")


def _check_refusals(base: dict) -> list[dict]:
    """Spec 13: the refusals of the numbered checks of 5.3 (steps 0, 2, 4-7) and 7.3 (steps 2, 3, 5) that
    the first ten leave out; each MUST fail at its step and nowhere before (the change is made so that
    every earlier check passes and, where a later one exists, it would pass too)."""
    challenge = bytes.fromhex(base["challenge"])
    nonce = cbor.decode(challenge)[2]
    enrollment, delivery = bytes.fromhex(base["enrollment"]), bytes.fromhex(base["key_delivery"])
    suite_byte = enrollment.index(SUITE.encode()) + len(SUITE) - 1  # its last character, "1" -> "0"
    if enrollment.count(SUITE.encode()) != 1 or enrollment.index(nonce) != 6 or delivery.index(nonce) != 6:
        raise AssertionError("the layout of 4.3/4.4 changed")
    master = bf_bls12.MasterKey(int(base["master_secret"], 16))
    other_master = bf_bls12.setup(HmacDrbg.from_seed(SEED + base["name"] + "/other-master"))
    other_serial = _identity(base, serial="SM-000124")

    def key(m: bf_bls12.MasterKey, identity: str) -> str:
        return bf_bls12.extract(m, identity.encode("ascii")).to_bytes().hex()

    def chain(fixture: str) -> dict:
        return {"chain": [_refusal_device_certificate(base["serial"], fixture).hex()]}

    def sealed(identity: str, key_hex: str, **more: str) -> dict:
        return {"identity": identity, "key": key_hex, **more}

    out = [
        _negative(base, "enrollment-after-the-clock-went-back", "pkg_enroll_clock_back", "StateError",
                  ["ClockBack"], comment="5.3 step 0: a second challenge issued at now - 1 and answered, "
                  "presented at now - 1, after an issuance logged at now"),
        _negative(base, "enrollment-for-an-unknown-suite", "pkg_enroll", "DecodeError", ["UnknownSuite"],
                  {"flip": suite_byte}, comment="5.3 step 2: the suite name's last character 1 -> 0"),
        _negative(base, "enrollment-for-an-unknown-challenge", "pkg_enroll", "StateError", ["UnknownChallenge"],
                  {"flip": 6}, comment="5.3 step 4: the nonce's first byte flipped"),
        _negative(base, "enrollment-chain-from-an-untrusted-root", "pkg_enroll", "VerificationError", ["BadChain"],
                  comment="5.3 step 5: the device certificate is issued by another root (label other-root)",
                  inputs=chain("other-root")),
        _negative(base, "enrollment-chain-signed-by-an-impostor", "pkg_enroll", "VerificationError", ["BadChain"],
                  comment="5.3 step 5: the device certificate names the root as issuer but is signed by "
                  "another key (label impostor-root)", inputs=chain("impostor-root")),
        _negative(base, "enrollment-device-certificate-expired", "pkg_enroll", "VerificationError", ["BadChain"],
                  comment="5.3 step 5: the device certificate's notAfter is 2025-12-31T00:00:00Z",
                  inputs=chain("expired")),
        _negative(base, "enrollment-for-another-namespace", "pkg_enroll_in_namespace", "VerificationError",
                  ["WrongNamespace"], {"namespace": "other-vectors"},
                  comment="5.3 step 6: the device's identity is in namespace other-vectors"),
        _negative(base, "enrollment-role-the-anchor-may-not-vouch-for", "pkg_enroll", "VerificationError",
                  ["RoleNotVouched"], comment="5.3 step 6: the anchor vouches for gateway only",
                  inputs={"anchor_roles": ["gateway"]}),
        _negative(base, "enrollment-role-not-certified", "pkg_enroll", "VerificationError", ["RoleNotCertified"],
                  comment="5.3 step 6: the device claims role gateway; its certificate certifies meter",
                  inputs={"role": "gateway"}),
        _negative(base, "enrollment-serial-not-the-certificates", "pkg_enroll", "VerificationError",
                  ["WrongSerial"], comment="5.3 step 7: the device claims serial SM-000124; its certificate "
                  "says SM-000123", inputs={"serial": "SM-000124"}),
        _negative(base, "enrollment-certificate-without-serial", "pkg_enroll", "VerificationError",
                  ["WrongSerial"], comment="5.3 step 7: the device certificate has no serialNumber",
                  inputs=chain("no-serial")),
        _negative(base, "enrollment-certificate-with-two-serials", "pkg_enroll", "VerificationError",
                  ["WrongSerial"], comment="5.3 step 7: the device certificate has two serialNumber "
                  "attributes, SM-000123 and SM-000124", inputs=chain("two-serials")),
        _negative(base, "key-delivery-for-an-unknown-enrollment", "meter_receive", "StateError",
                  ["UnknownChallenge"], {"flip": 6}, comment="7.3 step 2: the nonce's first byte flipped"),
        _negative(base, "key-delivery-received-twice", "meter_receive_twice", "ReplayError", ["Replay"],
                  comment="7.3 step 2: the genuine key-delivery, received a second time"),
        _negative(base, "key-delivery-for-another-serial", "meter_receive_sealed", "VerificationError",
                  ["WrongIdentity"], sealed(other_serial, key(master, other_serial)),
                  comment="7.3 step 3: the PKG's key for serial SM-000124, sealed to this enrollment"),
        _negative(base, "key-delivery-for-another-epoch", "meter_receive_sealed", "VerificationError",
                  ["WrongIdentity"], sealed(_identity(base, epoch=base["epoch"] + 1),
                                            key(master, _identity(base, epoch=base["epoch"] + 1))),
                  comment="7.3 step 3: the PKG's key for the next epoch, sealed to this enrollment"),
        _negative(base, "key-delivery-for-another-suite", "meter_receive_sealed", "VerificationError",
                  ["WrongIdentity"], sealed(_identity(base), key(master, _identity(base)),
                                            suite=SUITE[:-1] + "0"),
                  comment="7.3 step 3: the right key, in a delivery naming suite usapp-bf-ibe-bls12381-v0"),
        _negative(base, "key-delivery-key-under-another-master", "meter_receive_sealed", "VerificationError",
                  ["BadKey"], sealed(_identity(base), key(other_master, _identity(base))),
                  comment="7.3 step 5: the key of this identity under another master secret "
                  f"(bf_bls12.setup from {SEED}<name>/other-master)"),
        _negative(base, "key-delivery-key-of-another-identity", "meter_receive_sealed", "VerificationError",
                  ["BadKey"], sealed(_identity(base), key(master, other_serial)),
                  comment="7.3 step 5: the PKG's key for serial SM-000124 in a delivery for this identity"),
    ]
    genuine = {**{k: base[k] for k in _REFUSE_INPUTS if k in base}, "target": "meter_receive_sealed",
               "change": sealed(_identity(base), key(master, _identity(base)))}
    try:  # the construction itself is sound: the genuine key, sealed the same way, is accepted
        _refusal(genuine)()
    except UsappError as exc:
        raise AssertionError(f"a correctly sealed key-delivery is refused: {exc}") from None
    return out


def build() -> dict:
    vectors = [
        _single_case("ed25519-device-under-root", "SM-000123", "ed25519-under-root"),
        _single_case("p256-device-via-intermediate", "SM-004567", "p256-under-intermediate"),
        _threshold_case("threshold-2-of-3-nodes-1-3", "SM-008910", 2, [1, 2, 3], [1, 3]),
    ]
    vectors += _negatives(vectors[0])
    vectors += _check_refusals(vectors[0])
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/issuance.md "
                  "(sections 4, 5, 7, 9, 10; vectors section 13)",
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed; master secrets from "
                         f"{SEED}<name>/master via bf_bls12.setup; DKG from {SEED}<name>/dkg; run draws from "
                         f"{SEED}<name>/run or {SEED}<name>/node-<i>; certificate keys SHA-256({SEED}<label>), "
                         "labels root, intermediate (P-256), device-<serial>, and for the refusals' certificates "
                         "other-root and impostor-root; the refusals' other master secret from "
                         f"{SEED}<name>/other-master via bf_bls12.setup)"),
        "description": (
            "Whole enrollment runs (operation 'enroll') with the BLS12-381 BF suite. Inputs: "
            "root_certificate, anchor_roles, namespace (the root's serial namespace), chain (device certificate "
            "first; it certifies role 'meter' by an extendedKeyUsage role purpose), device_key (PKCS#8), "
            "serial, role, epoch, now, challenge_lifetime, suite, and either master_secret (mode "
            "'single') or dkg_seed/dkg_context/threshold/nodes (mode 'threshold': bf_bls12.deal(i, t, nodes, "
            "dkg_context) per node i in node order from one HMAC_DRBG(dkg_seed): coefficients, then the "
            "proof-of-possession nonce; proofs_of_possession lists each dealer's R and z). Each run draws from "
            "HMAC_DRBG(run_seed) in this order: the PKG's 32-byte challenge nonce, the device's "
            "32-byte HPKE ikm, the PKG's 32-byte HPKE ikmE (listed under 'draws'). Outputs, hex: "
            "challenge, enrollment, key_delivery, log_entry, log_head (the PKG's log after this one "
            "issuance), the delivered key (or a node's share), hpke_public, p_pub; in threshold mode "
            "also node_secrets, verification_keys and the combined key. Operation 'refuse' (result invalid): "
            "the inputs of a single-mode run (some with another chain, serial, role or anchor_roles, said in "
            "'comment'), a target step and, for some, a change; the step MUST fail with 'error' "
            "(specs/issuance.md section 13: one refusal or more for every numbered check of 5.3 and 7.3)."),
        "notes": NOTES,
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
