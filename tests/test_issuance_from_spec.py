"""An independent PKG and device of the issuance protocol, written from the spec text alone, checked
against vectors/issuance.json byte for byte.

Implements, from specs/issuance.md sections 2 (identities: encoding, parsing), 3 (the PKG's trust
anchors, the extractor interface, the device), 4 (the challenge, enrollment and key-delivery
messages, their size limits and deterministic CBOR), 5 (the challenge, the device's answer and the
PKG's ten checks in their order), 6 (the certificate profile, chain validation, the serial and the
role key purposes), 7 (the HPKE profile, sealing, the device's checks), 8 (advance_epoch, revoke),
9 (the hash-chained log), 10.1-10.3 (the BLS12-381 BF suite with one PKG and with t-of-n nodes) and
13 (the vector file, its `roles` transcripts and its refusal targets, the key-delivery anyone can seal
to an enrollment's pkRm included: each refusal is checked to come from the step of 5.3 or 7.3 it
targets, for the reason section 13's table gives); from specs/ibe.md 4.1, 4.2 and 4.5
(the BLS12-381 BF keys, dealing, proof of possession, node secrets, verification keys and the
combination of key shares); and from specs/conventions.md 2 (I2OSP, lp1, CBOR), 3.2-3.4
(RandomBelow, RandomRange, HMAC_DRBG from_seed, ReplayRandom) and 5.1 (the error names).  Not
10.4/10.5/13.1/13.2 (the ECCSI suites).

It imports nothing from protocols.  X.509 parsing, Ed25519, ECDSA P-256 (RFC 6979 signing), X25519
and ChaCha20-Poly1305 come from `cryptography`; the BLS12-381 groups from py-arkworks-bls12381
through the clean-room helpers of tests/test_bf_bls12_from_spec.py (hash to G1, encodings,
hash_to_scalar); HMAC_DRBG, RandomBelow and ReplayRandom from tests/test_sakke_eccsi_from_spec.py;
the deterministic CBOR codec and RFC 9180's DeriveKeyPair / SealBase / OpenBase from
tests/test_groupkeys_from_spec.py.  Those modules are themselves clean-room and import nothing from
protocols.  The errors are the classes of tests/test_sakke_eccsi_from_spec.py carrying the names of
conventions 5.1, which the refusal vectors name; each also carries `check`, the step of the spec that raised it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import py_arkworks_bls12381 as ark
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

import test_bf_bls12_from_spec as bf
import test_groupkeys_from_spec as gk
import test_sakke_eccsi_from_spec as sk
from test_sakke_eccsi_from_spec import (  # the clean-room errors of conventions 5.1, `check` the step refused
    DecodeError, ParameterError, RecoveryError, ReplayError, StateError, UsappError, VerificationError)

FILE = json.loads((Path(__file__).resolve().parent.parent / "vectors" / "issuance.json").read_text())
VECTORS = FILE["vectors"]

R = bf.R  # the BLS12-381 group order (specs/bls12_381.md 3)
SUITE = "usapp-bf-ibe-bls12381-v1"
ISSUANCE_DOMAIN = b"usapp-issuance-v1"  # section 4.1
ROLES = ("meter", "gateway", "aggregator", "head-end", "escrow", "operator")  # section 2.1, in order
ROLE_ARC = "2.25.129738325610376357730739975579954936260"  # section 6.4: id-usapp-role-k = ROLE_ARC.k
MAX_SIZE = {"challenge": 512, "enrollment": 32768, "key-delivery": 4752, "log-entry": 640}  # 4.1
MAX_OPEN_ENROLLMENTS = 16  # section 5.2 step 5
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

NAMESPACE_RE = re.compile(r"[0-9a-z][0-9a-z-]{0,15}")
SERIAL_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")
EPOCH_RE = re.compile(r"0|[1-9][0-9]{0,9}")
SUITE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# --- conventions 2: bytes and CBOR ----------------------------------------------------------------


def lp1(x: bytes) -> bytes:
    """conventions 2.2: a one-byte length prefix."""
    if len(x) > 255:
        raise ParameterError("lp1: too long")
    return bytes([len(x)]) + x


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def cbor(value: Any) -> bytes:
    """conventions 2.3: the deterministic encoding (the clean-room codec of the groupkeys check)."""
    return gk.cbor(value)


def decode_message(data: Any, kind: str, schema: dict[int, type]) -> dict:
    """Section 4.1: the size limit first, then exactly the deterministic CBOR map with these keys and
    types, version 1 (every fault a DecodeError)."""
    if not isinstance(data, bytes):
        raise DecodeError(f"{kind}: not bytes", "4.1 decode")
    if len(data) > MAX_SIZE[kind]:
        raise DecodeError(f"{kind}: {len(data)} bytes, more than {MAX_SIZE[kind]}", "4.1 decode")
    try:
        item, end = gk.uncbor(data)
        if end != len(data):
            raise ValueError("trailing bytes")
        if cbor(item) != data:
            raise ValueError("not the deterministic encoding")
    except (IndexError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError(f"{kind}: CBOR: {exc}", "4.1 decode") from None
    if not isinstance(item, dict) or set(item) != set(schema):
        raise DecodeError(f"{kind}: not the map of section 4", "4.1 decode")
    for key, kind_of in schema.items():
        if type(item[key]) is not kind_of:
            raise DecodeError(f"{kind}: key {key} has the wrong type", "4.1 decode")
    if item[1] != 1:
        raise DecodeError(f"{kind}: version {item[1]}", "4.1 decode")
    return item


def suite_ok(name: Any) -> bool:
    """Section 3.2 / 4.1: 1 to 64 characters of [A-Za-z0-9._-], starting with a letter or digit."""
    return isinstance(name, str) and name.isascii() and SUITE_RE.fullmatch(name) is not None


# --- section 2: identities ------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Section 2.2: (namespace, serial, role, epoch); constructing one outside the grammar is a
    ParameterError (2.3)."""

    namespace: str
    serial: str
    role: str
    epoch: int

    def __post_init__(self) -> None:
        if not namespace_ok(self.namespace) or not serial_ok(self.serial):
            raise ParameterError("identity: namespace or serial outside the grammar of 2.2")
        if self.role not in ROLES:
            raise ParameterError("identity: unknown role")
        if type(self.epoch) is not int or not 0 <= self.epoch < 2**32:
            raise ParameterError("identity: epoch outside [0, 2^32)")

    def to_bytes(self) -> bytes:
        return f"usapp-id-v2/{self.namespace}/{self.role}/{self.serial}/{self.epoch}".encode("ascii")

    @staticmethod
    def parse(b: Any) -> Identity:
        """Section 2.3: exactly the encoding of some identity, else DecodeError."""
        if not isinstance(b, bytes):
            raise DecodeError("identity: not bytes", "2.3 parse")
        if not 1 <= len(b) <= 128:
            raise DecodeError("identity: empty or longer than 128 bytes", "2.3 parse")
        if not b.isascii():
            raise DecodeError("identity: not ASCII", "2.3 parse")
        fields = b.decode("ascii").split("/")
        if len(fields) != 5:
            raise DecodeError("identity: not five fields", "2.3 parse")
        prefix, namespace, role, serial, epoch = fields
        if prefix != "usapp-id-v2":
            raise DecodeError("identity: prefix", "2.3 parse")
        if not namespace_ok(namespace):
            raise DecodeError("identity: namespace", "2.3 parse")
        if role not in ROLES:
            raise DecodeError("identity: unknown role", "2.3 parse")
        if not serial_ok(serial):
            raise DecodeError("identity: serial", "2.3 parse")
        if EPOCH_RE.fullmatch(epoch) is None or int(epoch) >= 2**32:
            raise DecodeError("identity: epoch", "2.3 parse")
        return Identity(namespace, serial, role, int(epoch))


def namespace_ok(x: Any) -> bool:
    return isinstance(x, str) and x.isascii() and NAMESPACE_RE.fullmatch(x) is not None


def serial_ok(x: Any) -> bool:
    return isinstance(x, str) and x.isascii() and SERIAL_RE.fullmatch(x) is not None


# --- section 7.1: the HPKE profile (RFC 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305)


def derive_key_pair(ikm: bytes) -> tuple[bytes, bytes]:
    """RFC 9180 7.1.3 DeriveKeyPair: (skR, pkR), both 32 bytes."""
    key, public = gk.derive_key_pair(ikm)
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return private, public


def small_order(pk: bytes) -> bool:
    """RFC 9180 7.1.4: a public key whose DH output with any key is all zero (cryptography refuses it)."""
    try:
        X25519PrivateKey.from_private_bytes(bytes(range(1, 33))).exchange(X25519PublicKey.from_public_bytes(pk))
    except ValueError:
        return True
    return False


def seal_base(pk_r: bytes, info: bytes, pt: bytes, rng: Any) -> tuple[bytes, bytes]:
    """Section 7.1: SealBase, its one draw ikmE (32 bytes) giving the ephemeral pair by DeriveKeyPair."""
    return gk.seal_base(pk_r, info, pt, rng.random_bytes(32))


def open_base(sk_r: bytes, enc: bytes, info: bytes, ct: bytes) -> bytes:
    """Section 7.1: OpenBase; DecodeError for the lengths, VerificationError for everything else."""
    if len(enc) != 32 or len(ct) < 16:
        raise DecodeError("OpenBase: enc or ct of the wrong length", "7.1 OpenBase")
    try:
        return gk.open_base(X25519PrivateKey.from_private_bytes(sk_r), enc, info, ct)
    except (InvalidTag, ValueError):
        raise VerificationError("OpenBase: does not open", "7.3/4 open") from None


def delivery_info(nonce: bytes, identity: bytes, suite: str) -> bytes:
    """Section 7.2: the info of the key-delivery's HPKE context."""
    return ISSUANCE_DOMAIN + lp1(b"key-delivery") + cbor({1: 1, 2: nonce, 3: identity, 4: suite})


def enrollment_tbs(body: dict) -> bytes:
    """Section 4.3: what the device signs, keys 1 to 6 of the enrollment."""
    return ISSUANCE_DOMAIN + lp1(b"enrollment") + cbor({k: body[k] for k in range(1, 7)})


# --- section 6: certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A certificate parsed completely (section 6.1); `key` is None for a key outside the profile."""

    der: bytes
    cert: x509.Certificate
    extensions: x509.Extensions
    key: Any


def parse_certificate(der: Any) -> Certificate:
    """Section 6.1: DER of at most 4096 bytes, parsed completely before any check, else DecodeError."""
    if not isinstance(der, bytes) or not 1 <= len(der) <= 4096:
        raise DecodeError("certificate: not 1 to 4096 bytes", "6.1 parse")
    try:
        cert = x509.load_der_x509_certificate(der)
        _ = (cert.version, cert.signature_algorithm_oid, cert.subject, cert.issuer, cert.serial_number,
             cert.not_valid_before_utc, cert.not_valid_after_utc, cert.tbs_certificate_bytes, cert.signature)
        extensions = cert.extensions
        for ext in extensions:
            _ = ext.value
    except (ValueError, x509.DuplicateExtension, x509.InvalidVersion) as exc:
        raise DecodeError(f"certificate: {exc}", "6.1 parse") from None
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        key = None
    return Certificate(der, cert, extensions, key)


def extension(c: Certificate, oid: x509.ObjectIdentifier) -> Any:
    try:
        return c.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def profile_key_ok(key: Any) -> bool:
    """Section 6.2: a public key Ed25519 or ECDSA on P-256."""
    return isinstance(key, ed25519.Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1))


def check_common(c: Certificate, label: str, now: int) -> None:
    """Section 6.2, for every certificate and the anchor: version, serial, algorithms, critical
    extensions, validity at now."""
    def fail(check: str) -> None:
        raise VerificationError(f"{label}: {check}", "5.3/5 chain")
    if c.cert.version != x509.Version.v3:
        fail("version")
    if c.cert.serial_number <= 0:
        fail("serial number")
    if c.cert.signature_algorithm_oid not in (SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ECDSA_WITH_SHA256):
        fail("algorithm")
    if not profile_key_ok(c.key):
        fail("algorithm")
    for ext in c.extensions:
        if ext.critical and ext.oid not in (ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE):
            fail("unknown critical extension")
    if now < int(c.cert.not_valid_before_utc.timestamp()):
        fail("not yet valid")
    if now > int(c.cert.not_valid_after_utc.timestamp()):
        fail("expired")


def check_ca(c: Certificate, label: str, below: int) -> None:
    """Section 6.2: a CA certificate (intermediate or anchor) with `below` intermediates under it."""
    bc = extension(c, ExtensionOID.BASIC_CONSTRAINTS)
    if bc is None or not bc.ca:
        raise VerificationError(f"{label}: not a CA", "5.3/5 chain")
    ku = extension(c, ExtensionOID.KEY_USAGE)
    if ku is None or not ku.key_cert_sign:
        raise VerificationError(f"{label}: key usage", "5.3/5 chain")
    if bc.path_length is not None and bc.path_length < below:
        raise VerificationError(f"{label}: path length", "5.3/5 chain")


def check_device(c: Certificate) -> None:
    """Section 6.2: c_0 is not a CA and has keyUsage digitalSignature without keyCertSign."""
    bc = extension(c, ExtensionOID.BASIC_CONSTRAINTS)
    if bc is not None and bc.ca:
        raise VerificationError("device certificate: a CA", "5.3/5 chain")
    ku = extension(c, ExtensionOID.KEY_USAGE)
    if ku is None or not ku.digital_signature or ku.key_cert_sign:
        raise VerificationError("device certificate: key usage", "5.3/5 chain")


def signed_by(c: Certificate, issuer_key: Any) -> bool:
    """Section 6.2: c's signature verifies under the issuer's key (its algorithm matching the key)."""
    alg, tbs, sig = c.cert.signature_algorithm_oid, c.cert.tbs_certificate_bytes, c.cert.signature
    try:
        if alg == SignatureAlgorithmOID.ED25519 and isinstance(issuer_key, ed25519.Ed25519PublicKey):
            issuer_key.verify(sig, tbs)
            return True
        if alg == SignatureAlgorithmOID.ECDSA_WITH_SHA256 and isinstance(issuer_key, ec.EllipticCurvePublicKey):
            issuer_key.verify(sig, tbs, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


@dataclass(frozen=True)
class Anchor:
    """Section 3.1: a manufacturer root, the roles it may vouch for and its namespace."""

    certificate: Certificate
    roles: frozenset[str]
    namespace: str


def make_anchor(der: bytes, roles: list[str], namespace: str) -> Anchor:
    """Section 3.1: a self-signed certificate in the CA profile, a namespace of the grammar, a
    non-empty set of known roles; else ParameterError."""
    try:
        c = parse_certificate(der)
    except DecodeError as exc:
        raise ParameterError(f"trust anchor: {exc}") from None
    if c.cert.subject != c.cert.issuer or not signed_by(c, c.key):
        raise ParameterError("trust anchor: not self-signed")
    try:
        check_ca(c, "trust anchor", 0)
    except VerificationError as exc:
        raise ParameterError(str(exc)) from None
    if not profile_key_ok(c.key):
        raise ParameterError("trust anchor: algorithm")
    if not namespace_ok(namespace) or not roles or not set(roles) <= set(ROLES):
        raise ParameterError("trust anchor: namespace or roles")
    return Anchor(c, frozenset(roles), namespace)


def validate_chain(chain: list[Certificate], anchors: list[Anchor], now: int) -> Anchor:
    """Section 6.2 (5.3 step 5): the profile of every certificate, the issuer links and signatures,
    the anchor (the first with c_k's issuer as subject whose key verifies); returns the anchor."""
    k = len(chain) - 1
    labels = ["device certificate"] + [f"intermediate certificate {i}" for i in range(1, k + 1)]
    for i, c in enumerate(chain):
        check_common(c, labels[i], now)
        if i == 0:
            check_device(c)
        else:
            check_ca(c, labels[i], i - 1)
    for i in range(k):
        if chain[i].cert.issuer != chain[i + 1].cert.subject:
            raise VerificationError(f"{labels[i]}: untrusted issuer", "5.3/5 chain")
        if not signed_by(chain[i], chain[i + 1].key):
            raise VerificationError(f"{labels[i]}: bad signature", "5.3/5 chain")
    candidates = [a for a in anchors if a.certificate.cert.subject == chain[k].cert.issuer]
    if not candidates:
        raise VerificationError(f"{labels[k]}: untrusted issuer", "5.3/5 chain")
    for anchor in candidates:
        if signed_by(chain[k], anchor.certificate.key):
            check_common(anchor.certificate, "trust anchor", now)
            check_ca(anchor.certificate, "trust anchor", k)
            return anchor
    raise VerificationError(f"{labels[k]}: bad signature", "5.3/5 chain")


def certified_roles(c: Certificate) -> set[str]:
    """Section 6.4: the roles whose key purposes the device certificate's extendedKeyUsage lists."""
    eku = extension(c, ExtensionOID.EXTENDED_KEY_USAGE)
    purposes = {oid.dotted_string for oid in eku} if eku is not None else set()
    return {role for k, role in enumerate(ROLES, 1) if f"{ROLE_ARC}.{k}" in purposes}


def certified_serial(c: Certificate) -> str:
    """Section 6.3: exactly one subject serialNumber attribute, its string value."""
    attrs = c.cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(attrs) != 1:
        raise VerificationError("device certificate: not exactly one serialNumber", "5.3/7 serial")
    return str(attrs[0].value)


def public_bytes(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def device_sign(key: Any, tbs: bytes) -> bytes:
    """Section 4.3: Ed25519, or ECDSA P-256 / SHA-256 (RFC 6979) as I2OSP(r, 32) || I2OSP(s, 32)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(tbs)
    r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def device_signature_ok(key: Any, tbs: bytes, sig: bytes) -> bool:
    """Section 5.3 step 9: the signature verifies under the device certificate's key; ECDSA r, s in [1, n-1]."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, tbs)
            return True
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        if not (1 <= r < P256_N and 1 <= s < P256_N):
            return False
        key.verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


# --- sections 3.2, 10.1-10.3 and specs/ibe.md 4.2: extractors and key checks --------------------


def g1_mul(point: ark.G1Point, k: int) -> bytes:
    return (point * ark.Scalar(k % R)).to_compressed_bytes()


def g2_mul(k: int) -> bytes:
    return (bf.g2() * ark.Scalar(k % R)).to_compressed_bytes()


@dataclass(frozen=True)
class Bls12Extractor:
    """Section 10.1: d_id = s Q_id, 48 bytes (specs/ibe.md 4.2)."""

    master: int
    suite: str = SUITE

    def extract(self, identity: bytes) -> bytes:
        return g1_mul(bf.q_id(identity), self.master)


@dataclass(frozen=True)
class ThresholdNodeExtractor:
    """Section 10.2: node i's "key" for an identity is its share d_i = s_i Q_id."""

    node: int
    secret: int
    suite: str = SUITE

    def extract(self, identity: bytes) -> bytes:
        return g1_mul(bf.q_id(identity), self.secret)


def pairing_bytes(p: ark.G1Point, q: ark.G2Point) -> bytes:
    return bf.gt_bytes(ark.GT.pairing(p, q))


def key_checks(key: bytes, identity: bytes, public: bytes) -> bool:
    """specs/ibe.md 4.2 / 4.5.3: the key decodes as a G1 point other than the identity and
    e(d, g2) = e(Q_id, public)."""
    try:
        d = bf.decode_g1(key)
        pub = bf.decode_g2(public)
    except bf.Refused:
        return False
    return pairing_bytes(d, bf.g2()) == pairing_bytes(bf.q_id(identity), pub)


def bls12_key_verifier(p_pub: bytes) -> Callable[[bytes, bytes], bool]:
    """Section 10.1: the device's verify_key against P_pub."""
    return lambda identity, key: key_checks(key, identity, p_pub)


def threshold_share_verifier(v_i: bytes) -> Callable[[bytes, bytes], bool]:
    """Section 10.3: a share is accepted only if e(d_i, g2) = e(Q_id, V_i)."""
    return lambda identity, key: key_checks(key, identity, v_i)


# --- sections 3.1, 5.1, 5.3, 8, 9: the PKG ----------------------------------------------------------


@dataclass
class Outstanding:
    """Section 5.1 step 5: an outstanding challenge."""

    expires: int
    used: bool = False


ENROLLMENT = {1: int, 2: bytes, 3: bytes, 4: str, 5: bytes, 6: list, 7: bytes}
CHALLENGE = {1: int, 2: bytes, 3: int, 4: int, 5: str}
KEY_DELIVERY = {1: int, 2: bytes, 3: bytes, 4: str, 5: bytes, 6: bytes}


class Pkg:
    """Section 3.1: trust anchors, the epoch, the outstanding challenges, revoked serials, the log."""

    def __init__(self, anchors: list[Anchor], epoch: int, extractor: Any, challenge_lifetime: int = 300,
                 max_outstanding: int = 1024) -> None:
        if not anchors or len({a.namespace for a in anchors}) != len(anchors):
            raise ParameterError("PKG: anchors missing or two with one namespace")
        if type(epoch) is not int or not 0 <= epoch < 2**32:
            raise ParameterError("PKG: epoch")
        if not suite_ok(extractor.suite):
            raise ParameterError("PKG: suite name")
        self.anchors, self.epoch, self.extractor = anchors, epoch, extractor
        self.challenge_lifetime, self.max_outstanding = challenge_lifetime, max_outstanding
        self.challenges: dict[bytes, Outstanding] = {}
        self.revoked: set[tuple[str, str]] = set()
        self.log: list[bytes] = []
        self.trace: dict[str, bytes] = {}

    @property
    def head(self) -> bytes:
        """Section 9.1: SHA-256 of the last entry, 32 zero bytes for an empty log."""
        return sha256(self.log[-1]) if self.log else bytes(32)

    def challenge(self, now: int, rng: Any) -> bytes:
        """Section 5.1."""
        if type(now) is not int or not 0 <= now < 2**64:
            raise ParameterError("challenge: now")
        self.challenges = {n: c for n, c in self.challenges.items() if c.expires >= now}
        if len(self.challenges) >= self.max_outstanding:
            raise StateError("challenge: too many outstanding", "5.1/3")
        nonce = rng.random_bytes(32)
        if nonce in self.challenges:
            raise StateError("challenge: a nonce repeated", "5.1/4")
        self.challenges[nonce] = Outstanding(now + self.challenge_lifetime)
        return cbor({1: 1, 2: nonce, 3: now + self.challenge_lifetime, 4: self.epoch, 5: self.extractor.suite})

    def advance_epoch(self, new: int) -> None:
        """Section 8: a later epoch voids every outstanding challenge."""
        if type(new) is not int or not 0 <= new < 2**32:
            raise ParameterError("advance_epoch: epoch")
        if new <= self.epoch:
            raise StateError("advance_epoch: not after the current epoch")
        self.epoch, self.challenges = new, {}

    def revoke(self, namespace: str, serial: str) -> None:
        """Section 8: refuse every later enrollment of (namespace, serial)."""
        if not namespace_ok(namespace) or not serial_ok(serial):
            raise ParameterError("revoke: namespace or serial")
        self.revoked.add((namespace, serial))

    def decode_enrollment(self, request: Any) -> tuple[dict, Identity, list[Certificate]]:
        """Section 5.3 step 1."""
        m = decode_message(request, "enrollment", ENROLLMENT)
        if len(m[2]) != 32:
            raise DecodeError("enrollment: nonce", "5.3/1 decode")
        identity = Identity.parse(m[3])
        if not suite_ok(m[4]):
            raise DecodeError("enrollment: suite name", "5.3/1 decode")
        if len(m[5]) != 32 or small_order(m[5]):
            raise DecodeError("enrollment: pkRm", "5.3/1 decode")
        if not 1 <= len(m[6]) <= 3 or any(type(c) is not bytes for c in m[6]):
            raise DecodeError("enrollment: certificates", "5.3/1 decode")
        chain = [parse_certificate(c) for c in m[6]]
        if len(m[7]) != 64:
            raise DecodeError("enrollment: signature length", "5.3/1 decode")
        return m, identity, chain

    def enroll(self, request: Any, now: int, rng: Any) -> bytes:
        """Section 5.3: the checks 0 to 9 in order, then issue (10)."""
        if type(now) is not int or not 0 <= now < 2**64:
            raise ParameterError("enroll: now")
        if self.log and now < gk.uncbor(self.log[-1])[0][7]:
            raise StateError("enroll: the clock went back", "5.3/0")
        m, identity, chain = self.decode_enrollment(request)
        if m[4] != self.extractor.suite:
            raise DecodeError("enrollment: unknown suite", "5.3/2 suite")
        if identity.epoch != self.epoch:
            raise StateError("enrollment: not the current epoch", "5.3/3 epoch")
        outstanding = self.challenges.get(m[2])
        if outstanding is None:
            raise StateError("enrollment: unknown challenge", "5.3/4 challenge unknown")
        if outstanding.used:
            raise ReplayError("enrollment: challenge used", "5.3/4 challenge used")
        if now > outstanding.expires:
            raise StateError("enrollment: challenge expired", "5.3/4 challenge expired")
        anchor = validate_chain(chain, self.anchors, now)
        if identity.namespace != anchor.namespace:
            raise VerificationError("enrollment: namespace", "5.3/6 namespace")
        if identity.role not in anchor.roles:
            raise VerificationError("enrollment: the anchor may not vouch for the role", "5.3/6 anchor role")
        if identity.role not in certified_roles(chain[0]):
            raise VerificationError("enrollment: role not certified", "5.3/6 certified role")
        if certified_serial(chain[0]) != identity.serial:
            raise VerificationError("enrollment: serial", "5.3/7 serial")
        if (identity.namespace, identity.serial) in self.revoked:
            raise VerificationError("enrollment: revoked", "5.3/8 revoked")
        if not device_signature_ok(chain[0].key, enrollment_tbs(m), m[7]):
            raise VerificationError("enrollment: signature", "5.3/9 signature")
        return self.issue(m, identity, chain[0], now, rng)

    def issue(self, m: dict, identity: Identity, device: Certificate, now: int, rng: Any) -> bytes:
        """Section 5.3 step 10: extract, seal (7.2), mark used, log (9.1), send."""
        key = self.extractor.extract(m[3])
        if not isinstance(key, bytes) or not 1 <= len(key) <= 4096:
            raise ParameterError("extractor: key of the wrong size")
        info = delivery_info(m[2], m[3], m[4])
        enc, ct = seal_base(m[5], info, key, rng)
        self.challenges[m[2]].used = True
        self.log.append(cbor({1: len(self.log), 2: self.head, 3: m[3], 4: identity.epoch, 5: m[4],
                              6: sha256(device.der), 7: now}))
        self.trace = {"key_delivery_info": info}
        return cbor({1: 1, 2: m[2], 3: m[3], 4: m[4], 5: enc, 6: ct})


# --- sections 3.3, 5.2, 7.3: the device -----------------------------------------------------------


@dataclass
class OpenEnrollment:
    """Section 5.2 step 5: what the device remembers of one enrollment."""

    identity: bytes
    suite: str
    sk: bytes
    completed: bool = False


class Meter:
    """Section 3.3: namespace, serial, role, suite, device key and chain, enrollments, keys by epoch."""

    def __init__(self, namespace: str, serial: str, role: str, suite: str, device_key: bytes,
                 chain: list[bytes], verify_key: Callable[[bytes, bytes], bool]) -> None:
        Identity(namespace, serial, role, 0)  # ParameterError outside the grammar
        if not callable(verify_key):
            raise ParameterError("device: verify_key is not callable")
        try:
            self.key = serialization.load_der_private_key(device_key, None)
            certs = [parse_certificate(c) for c in chain]
        except (ValueError, TypeError, UnsupportedAlgorithm, DecodeError) as exc:
            raise ParameterError(f"device: {exc}") from None
        if not isinstance(self.key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
            raise ParameterError("device: key type")
        if public_bytes(self.key.public_key()) != public_bytes(certs[0].key):
            raise ParameterError("device: the key does not match the device certificate")
        self.namespace, self.serial, self.role, self.suite = namespace, serial, role, suite
        self.chain, self.verify_key = list(chain), verify_key
        self.enrollments: OrderedDict[bytes, OpenEnrollment] = OrderedDict()
        self.keys: dict[int, tuple[bytes, str, bytes]] = {}
        self.trace: dict[str, Any] = {}

    def enroll(self, challenge: Any, rng: Any) -> bytes:
        """Section 5.2."""
        m = decode_message(challenge, "challenge", CHALLENGE)
        if len(m[2]) != 32 or m[3] >= 2**64 or m[4] >= 2**32 or not suite_ok(m[5]):
            raise DecodeError("challenge: a field out of range", "5.2/1 decode")
        if m[5] != self.suite:
            raise DecodeError("challenge: unknown suite", "5.2/1 suite")
        if self.keys and m[4] < max(self.keys):
            raise StateError("challenge: an epoch before a key held", "5.2/2 epoch")
        if m[2] in self.enrollments:
            raise ReplayError("challenge: answered already", "5.2/3 answered")
        sk_r, pk_r = derive_key_pair(rng.random_bytes(32))
        identity = Identity(self.namespace, self.serial, self.role, m[4]).to_bytes()
        body = {1: 1, 2: m[2], 3: identity, 4: self.suite, 5: pk_r, 6: list(self.chain)}
        tbs = enrollment_tbs(body)
        body[7] = device_sign(self.key, tbs)
        self.enrollments[m[2]] = OpenEnrollment(identity, self.suite, sk_r)
        while len(self.enrollments) > MAX_OPEN_ENROLLMENTS:
            self.enrollments.popitem(last=False)
        self.trace = {"identity": identity.decode(), "hpke_private": sk_r.hex(), "hpke_public": pk_r.hex(),
                      "enrollment_tbs": tbs.hex()}
        return cbor(body)

    def receive(self, delivery: Any) -> bytes:
        """Section 7.3, steps 1 to 6."""
        m = decode_message(delivery, "key-delivery", KEY_DELIVERY)
        identity = Identity.parse(m[3])
        if len(m[2]) != 32 or not suite_ok(m[4]) or len(m[5]) != 32 or not 17 <= len(m[6]) <= 4112:
            raise DecodeError("key-delivery: a field out of range", "7.3/1 decode")
        open_ = self.enrollments.get(m[2])
        if open_ is None:
            raise StateError("key-delivery: no such enrollment", "7.3/2 unknown")
        if open_.completed:
            raise ReplayError("key-delivery: enrollment completed", "7.3/2 completed")
        if m[3] != open_.identity or m[4] != open_.suite:
            raise VerificationError("key-delivery: another identity or suite", "7.3/3")
        key = open_base(open_.sk, m[5], delivery_info(m[2], m[3], m[4]), m[6])
        try:
            accepted = self.verify_key(m[3], key) is True
        except UsappError as exc:
            raise VerificationError(f"key-delivery: key check raised {type(exc).__name__}", "7.3/5 key") from None
        if not accepted:
            raise VerificationError("key-delivery: the key does not verify", "7.3/5 key")
        self.keys[identity.epoch] = (m[3], m[4], key)
        open_.completed, open_.sk = True, b""
        return key


# --- section 9.2: verify_log -----------------------------------------------------------------------


LOG_ENTRY = {1: int, 2: bytes, 3: bytes, 4: int, 5: str, 6: bytes, 7: int}


def verify_log(entries: list[bytes], expected_head: bytes | None = None) -> None:
    """Section 9.2."""
    prev, last_time = bytes(32), 0
    for i, raw in enumerate(entries):
        try:
            item, end = gk.uncbor(raw)
            ok = end == len(raw) and cbor(item) == raw and isinstance(item, dict) and set(item) == set(LOG_ENTRY)
            ok = ok and all(type(item[k]) is t for k, t in LOG_ENTRY.items())
            ok = ok and Identity.parse(item[3]).epoch == item[4] and len(item[2]) == 32 == len(item[6])
        except (IndexError, ValueError, TypeError, UnicodeDecodeError, DecodeError):
            ok = False
        if not ok:
            raise VerificationError(f"log entry {i}: malformed")
        if item[1] != i:
            raise VerificationError(f"log entry {i}: index")
        if item[2] != prev:
            raise VerificationError(f"log entry {i}: prev")
        if item[7] < last_time:
            raise VerificationError(f"log entry {i}: time")
        prev, last_time = sha256(raw), item[7]
    if expected_head is not None and prev != expected_head:
        raise VerificationError(f"log entry {len(entries) - 1}: head")


# --- specs/ibe.md 4.5 and section 10.2-10.3: the distributed PKG ----------------------------------


@dataclass(frozen=True)
class Dealing:
    """specs/ibe.md 4.5.1: dealer j's commitments, proof of possession and shares f_j(i)."""

    dealer: int
    commitments: list[bytes]
    R: bytes
    z: int
    shares: dict[int, int]


def pop_challenge(context: bytes, t: int, nodes: list[int], j: int, c0: bytes, r_point: bytes) -> int:
    """specs/ibe.md 4.5.2: c_j."""
    msg = (bf.lp(context) + t.to_bytes(2, "big") + len(nodes).to_bytes(2, "big")
           + b"".join(i.to_bytes(32, "big") for i in nodes) + j.to_bytes(32, "big") + c0 + r_point)
    return bf.hash_to_scalar(msg, bf.DST_POP)


def deal(j: int, t: int, nodes: list[int], rng: Any, context: bytes) -> Dealing:
    """specs/ibe.md 4.5.1 / section 10.2: a_0 = RandomRange(1, r), a_1 .. a_{t-1} = RandomBelow(r),
    k = RandomRange(1, r), in that order."""
    a = [sk.random_range(rng, 1, R)] + [sk.random_below(rng, R) for _ in range(t - 1)]
    k = sk.random_range(rng, 1, R)
    commitments = [g2_mul(x) for x in a]
    r_point = g2_mul(k)
    z = (k + pop_challenge(context, t, nodes, j, commitments[0], r_point) * a[0]) % R
    shares = {i: sum(x * pow(i, e, R) for e, x in enumerate(a)) % R for i in nodes}
    return Dealing(j, commitments, r_point, z, shares)


def verify_possession(d: Dealing, t: int, nodes: list[int], context: bytes) -> None:
    """specs/ibe.md 4.5.2, VerificationError naming the dealer."""
    try:
        c0, r_point = bf.decode_g2(d.commitments[0]), bf.decode_g2(d.R)
    except (bf.Refused, IndexError):
        raise VerificationError(f"dealer {d.dealer}: commitment or R") from None
    if len(d.commitments) != t or not 0 <= d.z < R:
        raise VerificationError(f"dealer {d.dealer}: proof")
    c = pop_challenge(context, t, nodes, d.dealer, d.commitments[0], d.R)
    if bf.g2() * ark.Scalar(d.z) != r_point + c0 * ark.Scalar(c):
        raise VerificationError(f"dealer {d.dealer}: proof of possession")


def committed_value(d: Dealing, i: int) -> ark.G2Point:
    """sum_k i^k C_{j,k}: what f_j(i) g2 must equal (specs/ibe.md 4.5.3)."""
    total = ark.G2Point.identity()
    for e, c in enumerate(d.commitments):
        total = total + bf.decode_g2(c) * ark.Scalar(pow(i, e, R))
    return total


def node_secret(dealings: list[Dealing], i: int) -> int:
    """specs/ibe.md 4.5.3: s_i = sum_j f_j(i), each share checked against its dealer's commitments."""
    if not dealings or len({d.dealer for d in dealings}) != len(dealings):
        raise ParameterError("node_secret: no dealing or a dealer twice")
    if len({len(d.commitments) for d in dealings}) != 1:
        raise VerificationError("node_secret: dealings of different degrees")
    total = 0
    for d in dealings:
        if i not in d.shares:
            raise ParameterError(f"node_secret: dealer {d.dealer} dealt node {i} nothing")
        if bf.g2() * ark.Scalar(d.shares[i]) != committed_value(d, i):
            raise VerificationError(f"dealer {d.dealer}: share for node {i}")
        total += d.shares[i]
    return total % R


def combine_dealings(dealings: list[Dealing], t: int, nodes: list[int], context: bytes) -> tuple[bytes, dict[int, bytes]]:
    """specs/ibe.md 4.5.3: P_pub = sum C_{j,0}, V_i = sum_j sum_k i^k C_{j,k}, after every proof."""
    if len({d.dealer for d in dealings}) != len(dealings) or any(d.dealer not in nodes for d in dealings):
        raise ParameterError("combine_dealings: dealers")
    for d in dealings:
        verify_possession(d, t, nodes, context)
    p_pub = ark.G2Point.identity()
    for d in dealings:
        p_pub = p_pub + bf.decode_g2(d.commitments[0])
    vks = {}
    for i in nodes:
        v = ark.G2Point.identity()
        for d in dealings:
            v = v + committed_value(d, i)
        vks[i] = v
    if p_pub == ark.G2Point.identity() or any(v == ark.G2Point.identity() for v in vks.values()):
        raise ParameterError("combine_dealings: the identity")
    return p_pub.to_compressed_bytes(), {i: v.to_compressed_bytes() for i, v in vks.items()}


def lagrange_at_zero(i: int, used: list[int]) -> int:
    """specs/ibe.md 4.5.3: lambda_i = prod_{m != i} m / (m - i) mod r."""
    num, den = 1, 1
    for m in used:
        if m != i:
            num, den = num * m % R, den * (m - i) % R
    return num * pow(den, -1, R) % R


def combine_key_shares(p_pub: bytes, vks: dict[int, bytes], t: int, identity: bytes,
                       shares: dict[int, bytes]) -> bytes:
    """specs/ibe.md 4.5.3: check every share in the order given, need t, combine the t lowest."""
    for i, share in shares.items():
        if i not in vks or not key_checks(share, identity, vks[i]):
            raise VerificationError(f"node {i}: bad share")
    if len(shares) < t:
        raise RecoveryError("fewer than t shares")
    used = sorted(shares)[:t]
    total = ark.G1Point.identity()
    for i in used:
        total = total + bf.decode_g1(shares[i]) * ark.Scalar(lagrange_at_zero(i, used))
    key = total.to_compressed_bytes()
    if not key_checks(key, identity, p_pub):
        raise VerificationError("the combined key does not verify")
    return key


def combine_issued_shares(p_pub: bytes, vks: dict[int, bytes], t: int,
                          issued: dict[int, tuple[bytes, str, bytes]]) -> bytes:
    """Section 10.3: the shares a device accepted, (identity, suite, share) by node, all for one
    identity (so one epoch) and suite, then combine_key_shares."""
    if len({(identity, suite) for identity, suite, _ in issued.values()}) != 1:
        raise VerificationError("shares for different identities, epochs or suites")
    (identity, _, _), *_ = issued.values()
    return combine_key_shares(p_pub, vks, t, identity, {i: s for i, (_, _, s) in issued.items()})


# --- replaying the vectors (section 13) -------------------------------------------------------------


@dataclass
class Tally:
    """What was checked: vectors of each kind, and the values compared."""

    vectors: dict[str, int] = field(default_factory=dict)
    values: int = 0

    def same(self, name: str, ours: Any, theirs: Any) -> None:
        assert ours == theirs, f"{name}: recomputed {ours!r} != vector {theirs!r}"
        self.values += 1


def vectors_of(operation: str, mode: str | None = None) -> list[dict]:
    return [v for v in VECTORS if v["operation"] == operation and (mode is None or v.get("mode") == mode)]


def anchors_of(v: dict) -> list[Anchor]:
    return [make_anchor(bytes.fromhex(v["root_certificate"]), v["anchor_roles"], v["namespace"])]


def meter_of(v: dict, verify_key: Callable[[bytes, bytes], bool]) -> Meter:
    return Meter(v["namespace"], v["serial"], v["role"], v["suite"], bytes.fromhex(v["device_key"]),
                 [bytes.fromhex(c) for c in v["chain"]], verify_key)


def enrollment_run(v: dict, extractor: Any, verify_key: Callable, seed: str) -> dict:
    """Section 13: one whole enrollment, every draw from HMAC_DRBG(seed) in the code's order (the
    challenge nonce, the device's ikm, the PKG's ikmE).  Returns the outputs, the draws and the
    per-role transcript in the file's layout."""
    rng = sk.Recorder(sk.HmacDrbg(seed))
    pkg = Pkg(anchors_of(v), v["epoch"], extractor, v["challenge_lifetime"])
    meter = meter_of(v, verify_key)
    now = v["now"]
    before = {"epoch": pkg.epoch, "log_size": len(pkg.log)}
    challenge = pkg.challenge(now, rng)
    enrollment = meter.enroll(challenge, rng)
    device_trace = meter.trace
    delivery = pkg.enroll(enrollment, now, rng)
    key = meter.receive(delivery)
    verify_log(pkg.log, pkg.head)
    assert len(rng.calls) == 3  # nothing else is drawn (section 13)
    roles = [
        {"action": "challenge", "output": challenge.hex(), "role": "pkg", "state_before": before, "time": now},
        {"action": "enroll", "input": challenge.hex(), "intermediates": device_trace, "output": enrollment.hex(),
         "role": "device"},
        {"action": "enroll", "input": enrollment.hex(), "intermediates": {k: x.hex() for k, x in pkg.trace.items()},
         "output": delivery.hex(), "role": "pkg",
         "state_after": {"epoch": pkg.epoch, "log_head": pkg.head.hex(), "log_size": len(pkg.log)}, "time": now},
        {"action": "receive", "input": delivery.hex(), "output": key.hex(), "role": "device"},
    ]
    draws = dict(zip(("challenge_nonce", "device_ikm", "pkg_ikm_e"), (c.hex() for c in rng.calls)))
    return {"challenge": challenge.hex(), "draws": draws, "enrollment": enrollment.hex(),
            "hpke_public": device_trace["hpke_public"], "key_delivery": delivery.hex(),
            "log_entry": pkg.log[-1].hex(), "log_head": pkg.head.hex(), "key": key.hex(), "roles": roles}


def roles_alone(v: dict, run: dict, extractor: Any, verify_key: Callable, tally: Tally) -> None:
    """Section 13: each role's step from the file's own input and draws (ReplayRandom), as a vendor
    who builds only the device, or only the PKG, would check it."""
    challenge_step, device_enroll, pkg_enroll, receive = run["roles"]
    d = {k: bytes.fromhex(x) for k, x in run["draws"].items()}
    pkg = Pkg(anchors_of(v), challenge_step["state_before"]["epoch"], extractor, v["challenge_lifetime"])
    nonce_rng = sk.ReplayRandom([d["challenge_nonce"]])
    tally.same("pkg challenge alone", pkg.challenge(challenge_step["time"], nonce_rng).hex(), challenge_step["output"])
    ikm_e_rng = sk.ReplayRandom([d["pkg_ikm_e"]])
    out = pkg.enroll(bytes.fromhex(pkg_enroll["input"]), pkg_enroll["time"], ikm_e_rng)
    tally.same("pkg enroll alone", out.hex(), pkg_enroll["output"])
    meter = meter_of(v, verify_key)
    ikm_rng = sk.ReplayRandom([d["device_ikm"]])
    tally.same("device enroll alone", meter.enroll(bytes.fromhex(device_enroll["input"]), ikm_rng).hex(),
               device_enroll["output"])
    tally.same("device receive alone", meter.receive(bytes.fromhex(receive["input"])).hex(), receive["output"])
    assert nonce_rng.exhausted and ikm_e_rng.exhausted and ikm_rng.exhausted


def check_enrollment(name: str, ours: dict, theirs: dict, key_name: str, tally: Tally) -> None:
    """Every output and intermediate of one enrollment, the role transcripts whole."""
    for k in ("challenge", "draws", "enrollment", "hpke_public", "key_delivery", "log_entry", "log_head", "roles"):
        tally.same(f"{name} {k}", ours[k], theirs[k])
    tally.same(f"{name} {key_name}", ours["key"], theirs[key_name])


def replay_single(v: dict, tally: Tally) -> None:
    """Section 13, mode single: P_pub = s g2, Bls12Extractor(s), bls12_key_verifier(P_pub)."""
    s = int(v["master_secret"], 16)
    p_pub = g2_mul(s)
    tally.same(f"{v['name']} p_pub", p_pub.hex(), v["p_pub"])
    extractor, verify_key = Bls12Extractor(s), bls12_key_verifier(p_pub)
    run = enrollment_run(v, extractor, verify_key, v["run_seed"])
    check_enrollment(v["name"], run, v, "key", tally)
    roles_alone(v, run, extractor, verify_key, tally)


def replay_threshold(v: dict, tally: Tally) -> None:
    """Section 13 / 10.2-10.3, mode threshold: the DKG from HMAC_DRBG(dkg_seed), one enrollment per
    node of the session, the combined key."""
    t, nodes, context = v["threshold"], v["nodes"], bytes.fromhex(v["dkg_context"])
    rng = sk.HmacDrbg(v["dkg_seed"])
    dealings = [deal(j, t, nodes, rng, context) for j in nodes]
    tally.same("proofs of possession", {str(d.dealer): {"R": d.R.hex(), "z": d.z.to_bytes(32, "big").hex()}
                                        for d in dealings}, v["proofs_of_possession"])
    p_pub, vks = combine_dealings(dealings, t, nodes, context)
    secrets = {i: node_secret(dealings, i) for i in nodes}
    tally.same("p_pub", p_pub.hex(), v["p_pub"])
    tally.same("node_secrets", {str(i): s.to_bytes(32, "big").hex() for i, s in secrets.items()}, v["node_secrets"])
    tally.same("verification_keys", {str(i): x.hex() for i, x in vks.items()}, v["verification_keys"])
    tally.same("V_i = s_i g2", {i: g2_mul(s) for i, s in secrets.items()}, vks)
    issued = {}
    for e in v["enrollments"]:
        i = e["node"]
        extractor, verify_key = ThresholdNodeExtractor(i, secrets[i]), threshold_share_verifier(vks[i])
        run = enrollment_run(v, extractor, verify_key, e["run_seed"])
        check_enrollment(f"{v['name']} node {i}", run, e, "share", tally)
        roles_alone(v, run, extractor, verify_key, tally)
        identity = run["roles"][1]["intermediates"]["identity"].encode("ascii")
        issued[i] = (identity, v["suite"], bytes.fromhex(run["key"]))
    key = combine_issued_shares(p_pub, vks, t, issued)
    tally.same("combined key", key.hex(), v["key"])


# --- refusals (section 13, operation refuse) -----------------------------------------------------------


def change(data: bytes, how: dict | None) -> bytes:
    """Section 13: truncate keeps the first k bytes; flip XORs byte i (from the end if negative) with
    0x01; append adds the bytes."""
    if not how:
        return data
    if "truncate" in how:
        return data[:how["truncate"]]
    if "flip" in how:
        out = bytearray(data)
        out[how["flip"]] ^= 0x01
        return bytes(out)
    return data + bytes.fromhex(how["append"])


def sealed_delivery(enrollment: bytes, how: dict, suite: str, rng: Any) -> bytes:
    """Section 13, meter_receive_sealed: the key-delivery of 4.4 anyone who saw the enrollment can make:
    how["key"] sealed to its pkRm (7.2) for how["identity"] and how.get("suite", the run's suite) under
    its nonce, ikmE drawn from the run."""
    body, _ = gk.uncbor(enrollment)
    nonce, pk_r = body[2], body[5]
    identity, suite = how["identity"].encode("ascii"), how.get("suite", suite)
    enc, ct = seal_base(pk_r, delivery_info(nonce, identity, suite), bytes.fromhex(how["key"]), rng)
    return cbor({1: 1, 2: nonce, 3: identity, 4: suite, 5: enc, 6: ct})


def refuse(v: dict) -> UsappError:
    """Section 13: replay the run from run_seed up to the target; the target's step must raise.
    Returns the error; a refused step must leave the state so that the genuine message is then
    accepted (5.3, 7.3)."""
    rng = sk.HmacDrbg(v["run_seed"])
    s = int(v["master_secret"], 16)
    pkg = Pkg(anchors_of(v), v["epoch"], Bls12Extractor(s), v["challenge_lifetime"])
    now, target = v["now"], v["target"]
    if target == "pkg_enroll_in_namespace":  # the device claims another namespace than its anchor's
        v = {**v, "namespace": v["change"]["namespace"]}
    meter = meter_of(v, bls12_key_verifier(g2_mul(s)))
    challenge = pkg.challenge(now, rng)
    enrollment = meter.enroll(challenge, rng)
    try:
        if target == "pkg_enroll_clock_back":
            pkg.enroll(enrollment, now, rng)
            earlier = pkg.challenge(now - 1, rng)
            pkg.enroll(meter.enroll(earlier, rng), now - 1, rng)
        elif target == "pkg_enroll_in_namespace":
            pkg.enroll(enrollment, now, rng)
        elif target == "meter_receive_twice":
            delivery = pkg.enroll(enrollment, now, rng)
            assert meter.receive(delivery)
            meter.receive(delivery)
        elif target == "meter_receive_sealed":
            meter.receive(sealed_delivery(enrollment, v["change"], v["suite"], rng))
        elif target == "meter_enroll_twice":
            meter.enroll(challenge, rng)
        elif target == "pkg_enroll":
            pkg.enroll(change(enrollment, v.get("change")), now, rng)
        elif target == "pkg_enroll_twice":
            pkg.enroll(enrollment, now, rng)
            pkg.enroll(enrollment, now, rng)
        elif target == "pkg_enroll_late":
            pkg.enroll(enrollment, now + v["challenge_lifetime"] + 1, rng)
        elif target == "pkg_enroll_next_epoch":
            pkg.advance_epoch(v["epoch"] + 1)
            pkg.enroll(enrollment, now, rng)
        elif target == "pkg_enroll_revoked":
            pkg.revoke(v["namespace"], v["serial"])
            pkg.enroll(enrollment, now, rng)
        elif target == "meter_receive":
            delivery = pkg.enroll(enrollment, now, rng)
            meter.receive(change(delivery, v.get("change")))
        else:
            raise AssertionError(f"unknown target {target}")
    except UsappError as exc:
        if target == "pkg_enroll" and v.get("change"):
            assert not pkg.log and pkg.enroll(enrollment, now, rng)  # nothing changed (5.3)
        elif target.startswith("pkg_enroll"):
            assert len(pkg.log) == (target in ("pkg_enroll_clock_back", "pkg_enroll_twice"))  # refused: not logged
        elif target == "meter_receive":
            assert meter.receive(delivery)  # the enrollment stayed open (7.3)
        elif target == "meter_receive_sealed":  # it stayed open, and the same construction with the key the
            # PKG would issue is accepted: the refusal is for the identity, suite or key, not the sealing
            identity = meter.enrollments[gk.uncbor(enrollment)[0][2]].identity
            genuine = {"identity": identity.decode(), "key": Bls12Extractor(s).extract(identity).hex()}
            assert meter.receive(sealed_delivery(enrollment, genuine, v["suite"], rng))
        return exc
    raise AssertionError(f"{v['name']}: accepted")


# The step of the spec that each refusal must come from, by the vector's flag and target (file notes).
EXPECTED_CHECK = {
    ("Truncated", "pkg_enroll"): "4.1 decode",
    ("TrailingBytes", "pkg_enroll"): "4.1 decode",
    ("Tampered", "pkg_enroll"): "5.3/9 signature",
    ("Replay", "pkg_enroll_twice"): "5.3/4 challenge used",
    ("Expired", "pkg_enroll_late"): "5.3/4 challenge expired",
    ("WrongEpoch", "pkg_enroll_next_epoch"): "5.3/3 epoch",
    ("Revoked", "pkg_enroll_revoked"): "5.3/8 revoked",
    ("Replay", "meter_enroll_twice"): "5.2/3 answered",
    ("Truncated", "meter_receive"): "4.1 decode",
    ("Tampered", "meter_receive"): "7.3/4 open",
    ("ClockBack", "pkg_enroll_clock_back"): "5.3/0",
    ("UnknownSuite", "pkg_enroll"): "5.3/2 suite",
    ("UnknownChallenge", "pkg_enroll"): "5.3/4 challenge unknown",
    ("BadChain", "pkg_enroll"): "5.3/5 chain",
    ("WrongNamespace", "pkg_enroll_in_namespace"): "5.3/6 namespace",
    ("RoleNotVouched", "pkg_enroll"): "5.3/6 anchor role",
    ("RoleNotCertified", "pkg_enroll"): "5.3/6 certified role",
    ("WrongSerial", "pkg_enroll"): "5.3/7 serial",
    ("UnknownChallenge", "meter_receive"): "7.3/2 unknown",
    ("Replay", "meter_receive_twice"): "7.3/2 completed",
    ("WrongIdentity", "meter_receive_sealed"): "7.3/3",
    ("BadKey", "meter_receive_sealed"): "7.3/5 key",
}

# Where one step refuses for several reasons, the reason each vector names (section 13's table), as a
# fragment of the message our check raises.
EXPECTED_REASON = {
    "enrollment-chain-from-an-untrusted-root": "device certificate: untrusted issuer",
    "enrollment-chain-signed-by-an-impostor": "device certificate: bad signature",
    "enrollment-device-certificate-expired": "device certificate: expired",
    "enrollment-serial-not-the-certificates": "enrollment: serial",
    "enrollment-certificate-without-serial": "not exactly one serialNumber",
    "enrollment-certificate-with-two-serials": "not exactly one serialNumber",
    "key-delivery-for-another-serial": "another identity",
    "key-delivery-for-another-epoch": "another identity",
    "key-delivery-for-another-suite": "another identity or suite",
}


# --- the tests ------------------------------------------------------------------------------------------

SINGLE = vectors_of("enroll", "single")
THRESHOLD = vectors_of("enroll", "threshold")
REFUSALS = vectors_of("refuse")


@pytest.mark.parametrize("v", SINGLE, ids=lambda v: v["name"])
def test_single_mode_run_reproduces_every_value(v):
    tally = Tally()
    replay_single(v, tally)
    assert tally.values == 1 + 9 + 4  # p_pub; the run's nine outputs; the four roles alone


@pytest.mark.parametrize("v", THRESHOLD, ids=lambda v: v["name"])
def test_threshold_run_reproduces_the_dkg_every_node_run_and_the_combined_key(v):
    tally = Tally()
    replay_threshold(v, tally)
    assert tally.values == 5 + len(v["enrollments"]) * (9 + 4) + 1


@pytest.mark.parametrize("v", REFUSALS, ids=lambda v: v["name"])
def test_refusal(v):
    assert v["result"] == "invalid"
    exc = refuse(v)
    assert type(exc).__name__ == v["error"], f"{v['name']}: raised {type(exc).__name__}: {exc}"
    (flag,) = v["flags"]
    assert exc.check == EXPECTED_CHECK[(flag, v["target"])], f"{v['name']}: refused by {exc.check}: {exc}"
    assert EXPECTED_REASON.get(v["name"], "") in str(exc), f"{v['name']}: refused because {exc}"


def test_every_vector_is_checked():
    """The parametrized lists above cover the whole file: 2 single-mode runs, 1 threshold run (2 node
    enrollments), 29 refusals, each flag and target with the step that must refuse it (every numbered
    check of 5.3 but 1's field checks and 9's ECDSA range, every check of 7.3)."""
    assert (len(SINGLE), len(THRESHOLD), len(REFUSALS)) == (2, 1, 29)
    assert len(SINGLE) + len(THRESHOLD) + len(REFUSALS) == len(VECTORS) == 32
    assert sum(len(v["enrollments"]) for v in THRESHOLD) == 2
    assert {(v["flags"][0], v["target"]) for v in REFUSALS} == set(EXPECTED_CHECK)
    assert all(v["result"] == "invalid" and v["error"] for v in REFUSALS)
    assert set(EXPECTED_REASON) <= {v["name"] for v in REFUSALS}
    steps = {EXPECTED_CHECK[(v["flags"][0], v["target"])].split()[0] for v in REFUSALS}
    assert {f"5.3/{i}" for i in (0, 2, 3, 4, 5, 6, 7, 8, 9)} | {f"7.3/{i}" for i in (2, 3, 4, 5)} <= steps
