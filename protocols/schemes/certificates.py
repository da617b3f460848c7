"""Device certificates and device signatures.

The X.509 profile and chain validation of specs/issuance.md section 6 and
the device signatures of its section 4.3, shared by every protocol in which
a meter proves who it is with its manufacturer's certificate: key issuance
(specs/issuance.md) and the escrow's authentication of a meter's LFID
(specs/escrow.md).  Parsing, signatures and keys are ``cryptography``'s;
this module adds the profile checks and typed errors.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InternalError, InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from protocols.errors import DecodeError, ParameterError, UsappError, VerificationError
from protocols.primitives import hashing, opcount
from protocols.primitives.supersingular import read_der

__all__ = [
    "MAX_CERTIFICATE_BYTES", "MAX_CHAIN", "NAMESPACE", "ROLES", "ROLE_OIDS", "TrustAnchor", "certificate_fingerprint",
    "certificate_roles", "certificate_serial",
    "ed25519_public", "load_certificate", "load_device_key", "public_der", "sign", "verify_device_chain",
    "verify_signature",
]

ROLES = ("meter", "gateway", "aggregator", "head-end", "escrow", "operator")
"""The role registry of specs/issuance.md section 2.1, in the order the spec lists it."""
ROLE_OID_ARC = "2.25.129738325610376357730739975579954936260"
"""A UUID-derived arc (ITU-T X.667, 2.25.<UUID as an integer>) for the role key purposes of
specs/issuance.md 6.4: role number k (1-based, in the order of ROLES) is ROLE_OID_ARC.k."""
ROLE_OIDS = {role: x509.ObjectIdentifier(f"{ROLE_OID_ARC}.{k}") for k, role in enumerate(ROLES, start=1)}
NAMESPACE = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")
"""A trust anchor's serial namespace (specs/issuance.md 2.2): 1-16 of [a-z0-9-], starting a-z0-9."""
MAX_CHAIN = 3
"""A device sends its certificate and at most two intermediate CA certificates (specs/issuance.md 6)."""
MAX_CERTIFICATE_BYTES = 4096

_SIGNATURE_OIDS = {
    SignatureAlgorithmOID.ED25519: "Ed25519",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ECDSA with SHA-256",
}
_KNOWN_CRITICAL = (x509.BasicConstraints, x509.KeyUsage)

_Ext = TypeVar("_Ext", bound=x509.ExtensionType)
DeviceKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
"""A device's private key: Ed25519 or ECDSA P-256 (specs/issuance.md 4.3)."""
DevicePublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


_LAZY_PARTS = ("version", "signature_algorithm_oid", "extensions", "subject", "issuer",
               "not_valid_before_utc", "not_valid_after_utc")


def load_certificate(der: object, what: str) -> x509.Certificate:
    """Parse one DER certificate and force its lazily parsed parts (spec 6.1)."""
    if not isinstance(der, (bytes, bytearray)):
        raise DecodeError(f"{what} must be a byte string")
    if not 1 <= len(der) <= MAX_CERTIFICATE_BYTES:
        raise DecodeError(f"{what} must be 1 to {MAX_CERTIFICATE_BYTES} bytes, got {len(der)}")
    opcount.record("der_decode_byte", len(der))   # specs/costs.md 2.1
    # cryptography parses some parts lazily, on first access; each is touched
    # here so that hostile DER fails now, as a DecodeError.  The parsers do not
    # keep to one exception type: besides ValueError and UnsupportedAlgorithm,
    # cryptography 48 raises KeyError for a Name attribute with an unknown
    # string tag (found by tests/test_issuance.py's single-byte-change
    # property), so every exception of the parse is caught here, and only here.
    try:
        with warnings.catch_warnings():
            # A non-positive serial number is refused by the profile (spec 6.2), not warned about.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            cert = x509.load_der_x509_certificate(bytes(der))
        for part in _LAZY_PARTS:  # "extensions" parses all of them, refusing duplicates
            getattr(cert, part)
        cert.public_key()
    except Exception as exc:  # any exception: see above
        raise DecodeError(f"{what} is not a well-formed X.509 certificate: {type(exc).__name__}") from None
    # The outer layer, read strictly (specs/issuance.md 6.1): cryptography accepts a signatureValue
    # BIT STRING with unused bits, which DER (X.690 11.2) does not allow for a signature.
    outer = read_der(bytes(der), what)
    outer.sequence("tbsCertificate")
    outer.sequence("signatureAlgorithm")
    outer.octet_aligned_bit_string("signatureValue")
    outer.end()
    return cert


def certificate_fingerprint(der: bytes) -> bytes:
    """Spec 9.1: the SHA-256 of a DER certificate, as the log records the device's."""
    if not isinstance(der, (bytes, bytearray)):
        raise DecodeError("a certificate must be a byte string")
    return hashing.sha256(der).digest()


@dataclass(frozen=True)
class TrustAnchor:
    """Spec 3.1: a manufacturer's root certificate, the roles it may vouch for and the namespace of
    the serials it certifies (required by the PKG, specs/issuance.md 2.2 and 3.1)."""

    certificate: bytes
    roles: frozenset[str]
    namespace: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(self.roles))
        if not self.roles or any(role not in ROLES for role in self.roles):
            raise ParameterError(f"a trust anchor's roles must be a non-empty subset of {', '.join(ROLES)}")
        if self.namespace is not None and (not isinstance(self.namespace, str)
                                           or not NAMESPACE.fullmatch(self.namespace)):
            raise ParameterError("a trust anchor's namespace is 1-16 characters of [a-z0-9-], starting a-z0-9")
        try:
            cert = load_certificate(self.certificate, "trust anchor certificate")
            _check_profile(cert, "trust anchor")
            _check_ca(cert, 0, "trust anchor")
            _record_verify(cert.public_key())
            cert.verify_directly_issued_by(cert)
        except (UsappError, ValueError, TypeError, InvalidSignature) as exc:
            raise ParameterError(f"not a usable self-signed root: {exc}") from None

    def parsed(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.certificate)


# ---------------------------------------------------------------------------
# Section 6: certificate profile and chain validation
# ---------------------------------------------------------------------------


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_profile(cert: x509.Certificate, what: str) -> None:
    """Spec 6.2, every certificate: v3, allowed algorithms, no unknown critical extension."""
    if cert.version is not x509.Version.v3:
        raise VerificationError(f"{what}: certificate is not X.509 v3")
    if _serial_number(cert) <= 0:
        raise VerificationError(f"{what}: certificate serial number is not positive (RFC 5280 4.1.2.2)")
    if cert.signature_algorithm_oid not in _SIGNATURE_OIDS:
        raise VerificationError(f"{what}: signature algorithm {cert.signature_algorithm_oid.dotted_string} "
                                "is not Ed25519 or ECDSA with SHA-256")
    key = cert.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey) and not (
            isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise VerificationError(f"{what}: public key is not Ed25519 or ECDSA P-256")
    for ext in cert.extensions:
        if ext.critical and not isinstance(ext.value, _KNOWN_CRITICAL):
            raise VerificationError(f"{what}: unrecognised critical extension {ext.oid.dotted_string}")


def _serial_number(cert: x509.Certificate) -> int:
    """The certificate's serial number, read without the CryptographyDeprecationWarning that
    cryptography emits for a non-positive one: the profile refuses it (spec 6.2) instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return cert.serial_number


def _check_ca(cert: x509.Certificate, below: int, what: str) -> None:
    """Spec 6.2, CA certificates: cA true, keyCertSign, path length covers ``below`` intermediates."""
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise VerificationError(f"{what}: not a CA certificate (basicConstraints cA is not true)")
    usage = _extension(cert, x509.KeyUsage)
    if usage is None or not usage.key_cert_sign:
        raise VerificationError(f"{what}: keyUsage does not allow keyCertSign")
    if constraints.path_length is not None and below > constraints.path_length:
        raise VerificationError(f"{what}: pathLenConstraint {constraints.path_length} does not allow "
                                f"{below} intermediate certificate(s) below it")


def _check_device(cert: x509.Certificate) -> None:
    """Spec 6.2, the device certificate: not a CA, digitalSignature, not keyCertSign."""
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise VerificationError("device certificate: is a CA certificate")
    usage = _extension(cert, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        raise VerificationError("device certificate: keyUsage does not allow digitalSignature")
    if usage.key_cert_sign:
        raise VerificationError("device certificate: keyUsage allows keyCertSign")


def _check_validity(cert: x509.Certificate, now: int, what: str) -> None:
    if now < int(cert.not_valid_before_utc.timestamp()):
        raise VerificationError(f"{what}: not yet valid at time {now}")
    if now > int(cert.not_valid_after_utc.timestamp()):
        raise VerificationError(f"{what}: expired before time {now}")


def _check_issued_by(cert: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    try:
        _record_verify(issuer.public_key())
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise VerificationError(f"{what}: signature by its issuer does not verify") from None


def certificate_serial(cert: x509.Certificate) -> str:
    """Spec 6.3: the one subject serialNumber attribute (OID 2.5.4.5)."""
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(values) != 1 or not isinstance(values[0].value, str):
        raise VerificationError(f"device certificate: subject must hold exactly one serialNumber, "
                                f"it holds {len(values)}")
    return values[0].value


def certificate_roles(cert: x509.Certificate) -> frozenset[str]:
    """Spec 6.4: the roles the device certificate certifies: the role key purposes (ROLE_OIDS) in its
    extendedKeyUsage extension; no extension or no role purpose: none."""
    usage = _extension(cert, x509.ExtendedKeyUsage)
    if usage is None:
        return frozenset()
    return frozenset(role for role, oid in ROLE_OIDS.items() if oid in usage)


def verify_device_chain(chain: Sequence[x509.Certificate], anchors: Sequence[TrustAnchor],
                        now: int) -> TrustAnchor:
    """Spec 6.2: check device certificate -> intermediates -> a trust anchor at time ``now``.

    Returns the anchor the chain ends at; raises ``VerificationError`` naming
    the certificate and the check that failed.
    """
    if not 1 <= len(chain) <= MAX_CHAIN:
        raise DecodeError(f"certificate chain must hold 1 to {MAX_CHAIN} certificates")
    names = ["device certificate"] + [f"intermediate certificate {i}" for i in range(1, len(chain))]
    for position, (cert, what) in enumerate(zip(chain, names)):
        _check_profile(cert, what)
        _check_validity(cert, now, what)
        if position == 0:
            _check_device(cert)
        else:
            _check_ca(cert, position - 1, what)
    for position in range(len(chain) - 1):
        _check_issued_by(chain[position], chain[position + 1], names[position])
    last = chain[-1]
    candidates = [a for a in anchors if a.parsed().subject == last.issuer]
    if not candidates:
        raise VerificationError(f"{names[-1]}: issuer is not a trusted manufacturer root")
    for anchor in candidates:
        root = anchor.parsed()
        try:
            _record_verify(root.public_key())
            last.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        _check_validity(root, now, "trust anchor")
        _check_ca(root, len(chain) - 1, "trust anchor")
        return anchor
    raise VerificationError(f"{names[-1]}: signature by the trusted root named as its issuer does not verify")


# ---------------------------------------------------------------------------
# Device signatures: Ed25519, or ECDSA P-256 / SHA-256 as r || s (specs/issuance.md 4.3)
# ---------------------------------------------------------------------------


def sign(private_key: DeviceKey, message: bytes) -> bytes:
    """A device signature: Ed25519, or deterministic ECDSA P-256 / SHA-256 as r || s (64 bytes)."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        opcount.record("ed25519_sign")
        return private_key.sign(message)
    # Deterministic ECDSA (RFC 6979): the device needs no randomness to sign.
    opcount.record("ecdsa_p256_sign")
    der = private_key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def verify_signature(public_key: object, signature: bytes, message: bytes, what: str) -> None:
    """Check a device signature (64 bytes); ``VerificationError`` naming ``what`` if it does not verify."""
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 64:
        raise VerificationError(f"{what}: a device signature is 64 bytes")
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            opcount.record("ed25519_verify")
            public_key.verify(signature, message)
            return
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise VerificationError(f"{what}: the key is neither Ed25519 nor ECDSA P-256")
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
            raise InvalidSignature
        opcount.record("ecdsa_p256_verify")
        public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationError(f"{what}: signature by the device key does not verify") from None


def ed25519_public(private: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a 32-byte private key (RFC 8032 section 5.1.5),
    counted as one ``ed25519_keygen``; ``ParameterError`` for another length."""
    if not isinstance(private, (bytes, bytearray)) or len(private) != 32:
        raise ParameterError("an Ed25519 private key is 32 bytes")
    opcount.record("ed25519_keygen")
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(private)).public_key().public_bytes_raw()


def _record_verify(public_key: object) -> None:
    """Count one signature verification by ``public_key`` (specs/costs.md 2.1); the certificate
    hashing inside it is the library's and part of the unit."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        opcount.record("ed25519_verify")
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        opcount.record("ecdsa_p256_verify")


def load_device_key(der: bytes) -> DeviceKey:
    """An unencrypted PKCS#8 Ed25519 or P-256 private key (``ParameterError`` otherwise)."""
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, InternalError):
        # OpenSSL reports some malformed Ed25519 keys as InternalError
        raise ParameterError("device key must be an unencrypted PKCS#8 DER private key") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        # RFC 8410 section 7 fixes the 48-byte OneAsymmetricKey v1 form; anything
        # else that loads (a v2 version byte without a public key, say) is refused
        # so that one key has one encoding.
        canonical = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if der != canonical:
            raise ParameterError("an Ed25519 device key must be the 48-byte PKCS#8 v1 form of RFC 8410 section 7")
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ParameterError("device key must be Ed25519 or ECDSA P-256")


def public_der(key: object) -> bytes:
    """SubjectPublicKeyInfo DER of a public key, or of a private key's public half."""
    public = key.public_key() if isinstance(key, DeviceKey) else key
    if not isinstance(public, DevicePublicKey):
        raise ParameterError("a device key is Ed25519 or ECDSA P-256")
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
