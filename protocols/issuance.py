"""Identity-based key issuance: the PKG, enrollment, epochs (specs/issuance.md).

A meter's identity -- the namespace of its manufacturer's serials, its serial
number, its role and the key epoch -- is its IBE public key (USaPP paper,
section IV-B1).  The private key generator (PKG) issues the matching private
key to a device that proves, with the X.509 certificate and key its
manufacturer gave it, that it holds the serial it claims in that
manufacturer's namespace and that the certificate certifies the role; the
key travels sealed with HPKE (RFC 9180) to a key the device made
for this enrollment.  Every issuance is written to a hash-chained log.

The IBE scheme is behind :class:`KeyExtractor` (a suite name and
``extract(identity) -> bytes``), so the protocol runs with any suite of
specs/ibe.md; the meter checks each key it receives through a
``verify_key(identity, key) -> bool`` callback that the suite provides.

Spec sections and what implements them:

- 2   identities ............................ :class:`Identity`
- 3   setup ................................. :class:`KeyExtractor`, :class:`TrustAnchor`, :class:`PkgState`,
                                              :class:`MeterState`
- 4   messages .............................. :func:`decode_challenge`, :func:`decode_enrollment`,
                                              :func:`decode_delivery`
- 5   enrollment ............................ :meth:`Pkg.challenge`, :meth:`Meter.enroll`, :meth:`Pkg.enroll`
- 6   certificate profile and chain ......... :mod:`protocols.schemes.certificates` (re-exported here):
                                              :func:`verify_device_chain`, :func:`certificate_serial`,
                                              :func:`certificate_roles` (6.4)
- 7   key delivery (HPKE profile) ........... :mod:`protocols.schemes.hpke` (re-exported here):
                                              :func:`DeriveKeyPair`, :func:`SetupBaseS`, :func:`SetupBaseR`,
                                              :func:`SealBase`, :func:`OpenBase`, :func:`delivery_info`,
                                              :meth:`Meter.receive`
- 8   epochs as revocation .................. :meth:`Pkg.advance_epoch`, :meth:`Pkg.revoke`
- 9   the issuance log ...................... :class:`IssuanceLog`, :class:`LogEntry`, :func:`verify_log`
- 10  suites: 10.1-10.3 here (BLS12-381 BF, one PKG or t-of-n); 10.4 ECCSI/SAKKE and 10.5 ECCSI
      t-of-n in :mod:`protocols.issuance_eccsi` and :mod:`protocols.schemes.eccsi_threshold`

HPKE function names follow RFC 9180 (``SetupBaseS``, ``SealBase`` ...), an
accepted exception to PEP 8 (docs/architecture.md section 3.7).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cryptography import x509

from protocols import limits
from protocols.errors import (
    DecodeError,
    ParameterError,
    RecoveryError,
    ReplayError,
    StateError,
    UsappError,
    VerificationError,
    shown,
)
from protocols.primitives import cbor
from protocols.primitives import hashing
from protocols.primitives.bls12_381 import G1
from protocols.primitives.rand import RandomSource, resolve
from protocols.schemes import bf_bls12
from protocols.schemes.certificates import (  # spec 6 and 4.3, shared with the escrow; re-exported (see __all__)
    MAX_CHAIN, NAMESPACE, ROLE_OIDS, ROLES, TrustAnchor, certificate_fingerprint, certificate_roles,
    certificate_serial, verify_device_chain,
)
from protocols.schemes.certificates import load_certificate as _load_certificate
from protocols.schemes.certificates import load_device_key as _load_device_key
from protocols.schemes.certificates import public_der as _public_raw
from protocols.schemes.certificates import sign as _sign
from protocols.schemes.certificates import verify_signature
from protocols.schemes.hpke import (  # the RFC 9180 profile of spec 7.1, re-exported (see __all__)
    HPKE_IKM_BYTES, HPKE_PUBLIC_BYTES, HPKE_SUITE_NAME, HPKE_TAG_BYTES, DeriveKeyPair, OpenBase, SealBase,
    SetupBaseR, SetupBaseS,
)
from protocols.schemes.hpke import check_public_key as _check_hpke_public

__all__ = [
    "DOMAIN",
    "HPKE_SUITE_NAME",
    "ROLES",
    "ROLE_OIDS",
    "VERSION",
    "DeriveKeyPair",
    "Identity",
    "IssuanceLog",
    "IssuedKey",
    "KeyExtractor",
    "KeyVerifier",
    "LogEntry",
    "Meter",
    "MeterState",
    "OpenBase",
    "Pkg",
    "PkgState",
    "SealBase",
    "SetupBaseR",
    "SetupBaseS",
    "TrustAnchor",
    "certificate_fingerprint",
    "certificate_roles",
    "certificate_serial",
    "decode_challenge",
    "decode_delivery",
    "decode_enrollment",
    "delivery_info",
    "enrollment_tbs",
    "verify_device_chain",
    "verify_log",
]

VERSION = 1
DOMAIN = b"usapp-issuance-v1"
"""Domain-separation prefix of every signature input and HPKE info (spec 4.1)."""

CHALLENGE_BYTES = 32
SIGNATURE_BYTES = 64
"""Ed25519 signatures, and ECDSA P-256 signatures as r || s (32 bytes each)."""
LIMITS = limits.ISSUANCE
"""Section 4: every size and range of the messages (protocols/limits.py)."""
MAX_EPOCH = LIMITS.max_epoch
MAX_TIME = LIMITS.max_time
MAX_KEY_BYTES = LIMITS.key_bytes
"""Largest encoded private key an extractor may return (spec 3.2)."""
MAX_MESSAGE_BYTES = LIMITS.max_message_bytes
MAX_IDENTITY_BYTES = LIMITS.identity_bytes
MAX_PENDING = LIMITS.max_pending
"""Enrollments a meter keeps open or remembers as completed (spec 5.2)."""
DEFAULT_CHALLENGE_LIFETIME = 300
DEFAULT_MAX_OUTSTANDING = 1024


IDENTITY_PREFIX = "usapp-id-v2"
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EPOCH_TEXT = re.compile(r"0|[1-9][0-9]{0,9}")
_SUITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# CBOR map keys (spec 4): every message has its version under key 1.
K_VERSION = 1
_CHALLENGE = {1: int, 2: bytes, 3: int, 4: int, 5: str}
_ENROLLMENT = {1: int, 2: bytes, 3: bytes, 4: str, 5: bytes, 6: list, 7: bytes}
_DELIVERY = {1: int, 2: bytes, 3: bytes, 4: str, 5: bytes, 6: bytes}
_LOG_ENTRY = {1: int, 2: bytes, 3: bytes, 4: int, 5: str, 6: bytes, 7: int}



def _lp(data: bytes) -> bytes:
    """One length byte, then the bytes (labels are shorter than 256 bytes)."""
    return bytes([len(data)]) + data


def _check_time(now: object, what: str = "now") -> int:
    if type(now) is not int or not 0 <= now <= MAX_TIME:
        raise ParameterError(f"{what} must be an integer number of seconds in [0, 2^64)")
    return now


def _check_suite_name(suite: object, what: str) -> str:
    if not isinstance(suite, str) or not _SUITE.fullmatch(suite):
        raise ParameterError(f"{what} must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric")
    return suite


# ---------------------------------------------------------------------------
# Section 2: identities
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Spec 2: (namespace, serial, role, epoch), encoded as
    ``usapp-id-v2/<namespace>/<role>/<serial>/<epoch>``.

    Constructing one from bad values is a ``ParameterError``; :meth:`parse`
    accepts exactly the bytes :meth:`to_bytes` produces and raises
    ``DecodeError`` for anything else.
    """

    namespace: str
    serial: str
    role: str
    epoch: int

    def __post_init__(self) -> None:
        if not isinstance(self.namespace, str) or not NAMESPACE.fullmatch(self.namespace):
            raise ParameterError("namespace must be 1-16 characters of [a-z0-9-], starting a-z0-9")
        if not isinstance(self.serial, str) or not _SERIAL.fullmatch(self.serial):
            raise ParameterError("serial must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric")
        if self.role not in ROLES:
            raise ParameterError(f"role must be one of {', '.join(ROLES)}")
        if type(self.epoch) is not int or not 0 <= self.epoch <= MAX_EPOCH:
            raise ParameterError("epoch must be an integer in [0, 2^32)")

    def to_bytes(self) -> bytes:
        """Spec 2.2: the canonical encoding, ASCII."""
        return f"{IDENTITY_PREFIX}/{self.namespace}/{self.role}/{self.serial}/{self.epoch}".encode("ascii")

    @classmethod
    def parse(cls, data: bytes) -> Identity:
        """Spec 2.3: the strict parser."""
        if not isinstance(data, (bytes, bytearray)):
            raise DecodeError(f"identity must be bytes, got {type(data).__name__}")
        if not 1 <= len(data) <= MAX_IDENTITY_BYTES:
            raise DecodeError(f"identity must be 1 to {MAX_IDENTITY_BYTES} bytes, got {len(data)}")
        try:
            text = bytes(data).decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError("identity is not ASCII") from None
        parts = text.split("/")
        if len(parts) != 5:
            raise DecodeError(f"identity must have 5 fields separated by '/', got {len(parts)}")
        prefix, namespace, role, serial, epoch = parts
        if prefix != IDENTITY_PREFIX:
            raise DecodeError(f"identity must start with {IDENTITY_PREFIX!r}")
        if not NAMESPACE.fullmatch(namespace):
            raise DecodeError("identity namespace must be 1-16 characters of [a-z0-9-], starting a-z0-9")
        if role not in ROLES:
            raise DecodeError(f"identity names an unknown role {role[:16]!r}")
        if not _SERIAL.fullmatch(serial):
            raise DecodeError("identity serial must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric")
        if not _EPOCH_TEXT.fullmatch(epoch) or int(epoch) > MAX_EPOCH:
            raise DecodeError("identity epoch must be a decimal integer in [0, 2^32) without leading zeros")
        return cls(namespace, serial, role, int(epoch))


# ---------------------------------------------------------------------------
# Section 3: the extractor interface, trust anchors
# ---------------------------------------------------------------------------


@runtime_checkable
class KeyExtractor(Protocol):
    """Spec 3.2: an IBE suite's key extraction, as the PKG uses it.

    ``suite`` names the suite (bound into every message); ``extract`` returns
    the suite's encoding of the private key of ``identity`` (the bytes of an
    :class:`Identity`).  Extraction MUST be deterministic in (master secret,
    identity).
    """

    @property
    def suite(self) -> str:  # pragma: no cover - protocol; read-only, so frozen dataclasses conform
        ...

    def extract(self, identity: bytes) -> bytes:  # pragma: no cover - protocol
        ...


KeyVerifier = Callable[[bytes, bytes], bool]
"""Spec 7.3: ``verify_key(identity, key) -> bool``, the suite's check of a received key."""


def delivery_info(challenge: bytes, identity: bytes, suite: str) -> bytes:
    """Spec 7.2: info = DOMAIN || lp("key-delivery") || CBOR({1: 1, 2: challenge, 3: identity, 4: suite})."""
    return DOMAIN + _lp(b"key-delivery") + cbor.encode({1: VERSION, 2: challenge, 3: identity, 4: suite})


# ---------------------------------------------------------------------------
# Section 4: messages
# ---------------------------------------------------------------------------


def _decode(data: object, schema: dict, kind: str) -> dict:
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError(f"{kind}: expected bytes, got {type(data).__name__}")
    limit = LIMITS.message_bytes[kind]
    if len(data) > limit:
        raise DecodeError(f"{kind}: {len(data)} bytes exceeds the limit of {limit} bytes (section 4.1)")
    message = cbor.decode_map(bytes(data), schema, name=kind, max_size=limit)
    if message[K_VERSION] != VERSION:
        raise DecodeError(f"{kind}: unknown version {shown(message[K_VERSION])}")
    return message


def _suite_field(value: str, kind: str) -> str:
    if not _SUITE.fullmatch(value):
        raise DecodeError(f"{kind}: malformed suite name")
    return value


def _nonce_field(value: bytes, kind: str) -> bytes:
    if len(value) != CHALLENGE_BYTES:
        raise DecodeError(f"{kind}: challenge must be {CHALLENGE_BYTES} bytes, got {len(value)}")
    return value


@dataclass(frozen=True)
class Challenge:
    """Spec 4.2: the PKG's challenge."""

    nonce: bytes
    expires: int
    epoch: int
    suite: str

    def to_bytes(self) -> bytes:
        return cbor.encode({1: VERSION, 2: self.nonce, 3: self.expires, 4: self.epoch, 5: self.suite})


def decode_challenge(data: bytes) -> Challenge:
    m = _decode(data, _CHALLENGE, "challenge")
    if not 0 <= m[3] <= MAX_TIME:
        raise DecodeError("challenge: expiry out of range")
    if not 0 <= m[4] <= MAX_EPOCH:
        raise DecodeError("challenge: epoch out of range [0, 2^32)")
    return Challenge(_nonce_field(m[2], "challenge"), m[3], m[4], _suite_field(m[5], "challenge"))


@dataclass(frozen=True)
class Enrollment:
    """Spec 4.3: the device's enrollment, decoded (its signature not yet checked)."""

    challenge: bytes
    identity: Identity
    identity_bytes: bytes
    suite: str
    hpke_public: bytes
    chain: tuple[x509.Certificate, ...]
    chain_der: tuple[bytes, ...]
    signature: bytes
    fields: dict = field(repr=False)


def enrollment_tbs(body: dict) -> bytes:
    """Spec 4.3: the signed bytes, DOMAIN || lp("enrollment") || CBOR(keys 1-6)."""
    return DOMAIN + _lp(b"enrollment") + cbor.encode({k: v for k, v in body.items() if k != 7})


def decode_enrollment(data: bytes) -> Enrollment:
    """Spec 5.3 step 1: decode and check formats (``DecodeError``)."""
    m = _decode(data, _ENROLLMENT, "enrollment")
    challenge = _nonce_field(m[2], "enrollment")
    identity = Identity.parse(m[3])
    suite = _suite_field(m[4], "enrollment")
    _check_hpke_public(m[5], "enrollment: HPKE public key")
    chain_der = m[6]
    if not 1 <= len(chain_der) <= MAX_CHAIN:
        raise DecodeError(f"enrollment: certificate chain must hold 1 to {MAX_CHAIN} certificates")
    chain = tuple(_load_certificate(der, f"enrollment: certificate {i}") for i, der in enumerate(chain_der))
    if len(m[7]) != SIGNATURE_BYTES:
        raise DecodeError(f"enrollment: signature must be {SIGNATURE_BYTES} bytes, got {len(m[7])}")
    return Enrollment(challenge, identity, m[3], suite, m[5], chain, tuple(chain_der), m[7], m)


@dataclass(frozen=True)
class Delivery:
    """Spec 4.4: the PKG's key delivery, decoded (not yet opened)."""

    challenge: bytes
    identity: bytes
    suite: str
    enc: bytes
    ct: bytes


def decode_delivery(data: bytes) -> Delivery:
    m = _decode(data, _DELIVERY, "key-delivery")
    Identity.parse(m[3])
    if len(m[5]) != HPKE_PUBLIC_BYTES:
        raise DecodeError(f"key-delivery: enc must be {HPKE_PUBLIC_BYTES} bytes")
    if not HPKE_TAG_BYTES < len(m[6]) <= MAX_KEY_BYTES + HPKE_TAG_BYTES:
        raise DecodeError("key-delivery: ciphertext length out of range")
    return Delivery(_nonce_field(m[2], "key-delivery"), m[3], _suite_field(m[4], "key-delivery"), m[5], m[6])


# ---------------------------------------------------------------------------
# Section 9: the issuance log
# ---------------------------------------------------------------------------

_GENESIS = bytes(32)


@dataclass(frozen=True)
class LogEntry:
    """Spec 9.1: one issuance."""

    index: int
    prev: bytes
    identity: bytes
    epoch: int
    suite: str
    certificate_sha256: bytes
    time: int

    def to_bytes(self) -> bytes:
        return cbor.encode({1: self.index, 2: self.prev, 3: self.identity, 4: self.epoch, 5: self.suite,
                            6: self.certificate_sha256, 7: self.time})

    @classmethod
    def from_bytes(cls, data: bytes) -> LogEntry:
        m = _decode_log_entry(data)
        return cls(m[1], m[2], m[3], m[4], m[5], m[6], m[7])


def _decode_log_entry(data: bytes) -> dict:
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError("log entry must be bytes")
    limit = LIMITS.message_bytes["log entry"]
    if len(data) > limit:
        raise DecodeError(f"log entry: {len(data)} bytes exceeds the limit of {limit} bytes (section 9.1)")
    m = cbor.decode_map(bytes(data), _LOG_ENTRY, name="log entry", max_size=limit)
    if m[1] < 0 or not 0 <= m[7] <= MAX_TIME:
        raise DecodeError("log entry: index or time out of range")
    if len(m[2]) != 32 or len(m[6]) != 32:
        raise DecodeError("log entry: hashes must be 32 bytes")
    identity = Identity.parse(m[3])
    if m[4] != identity.epoch:
        raise DecodeError(f"log entry: epoch {m[4]} differs from the identity's epoch {identity.epoch}")
    _suite_field(m[5], "log entry")
    return m


def entry_hash(entry: bytes) -> bytes:
    """Spec 9.1: the SHA-256 of an entry's encoding; the next entry's ``prev``."""
    return hashing.sha256(entry).digest()


@dataclass
class IssuanceLog:
    """Spec 9: the append-only, hash-chained list of encoded entries."""

    entries: list[bytes] = field(default_factory=list)

    @property
    def head(self) -> bytes:
        """The hash of the last entry (32 zero bytes for an empty log)."""
        return entry_hash(self.entries[-1]) if self.entries else _GENESIS

    @property
    def last_time(self) -> int:
        return LogEntry.from_bytes(self.entries[-1]).time if self.entries else 0

    def append(self, identity: Identity, suite: str, certificate_sha256: bytes, time: int) -> bytes:
        _check_time(time, "time")
        if time < self.last_time:
            raise StateError(f"time {time} is before the last log entry's time {self.last_time}")
        entry = LogEntry(len(self.entries), self.head, identity.to_bytes(), identity.epoch, suite,
                         certificate_sha256, time).to_bytes()
        self.entries.append(entry)
        return entry

    def verify(self, *, expected_head: bytes | None = None) -> tuple[LogEntry, ...]:
        return verify_log(self.entries, expected_head=expected_head)


def verify_log(entries: Sequence[bytes], *, expected_head: bytes | None = None) -> tuple[LogEntry, ...]:
    """Spec 9.2: check the chain; raise ``VerificationError`` naming the first bad index.

    Entry i must decode, carry index i, carry prev = SHA-256(entry i-1) (32
    zero bytes for entry 0), and a time no earlier than entry i-1's.  With
    ``expected_head`` (the head published or countersigned earlier), a
    dropped or altered last entry is detected too.
    """
    decoded = []
    prev = _GENESIS
    last_time = 0
    for index, raw in enumerate(entries):
        try:
            entry = LogEntry.from_bytes(raw)
        except DecodeError as exc:
            raise VerificationError(f"log entry {index}: malformed ({exc})") from None
        if entry.index != index:
            raise VerificationError(f"log entry {index}: carries index {entry.index} (entries dropped, "
                                    "inserted or reordered)")
        if not hashing.compare_digest(entry.prev, prev):
            raise VerificationError(f"log entry {index}: prev is not the hash of entry {index - 1} "
                                    f"(entry {index - 1} or {index} altered, or entries dropped)")
        if entry.time < last_time:
            raise VerificationError(f"log entry {index}: time goes backwards")
        decoded.append(entry)
        prev = entry_hash(bytes(raw))
        last_time = entry.time
    if expected_head is not None and not hashing.compare_digest(prev, expected_head):
        raise VerificationError(f"log entry {len(entries) - 1}: the log's head is not the expected head "
                                "(the last entry altered, or entries dropped from the end)")
    return tuple(decoded)


# ---------------------------------------------------------------------------
# Section 5: the PKG
# ---------------------------------------------------------------------------


@dataclass
class ChallengeRecord:
    expires: int
    used: bool = False


@dataclass
class PkgState:
    """What the PKG stores (spec 3.1).  The master secret lives in the extractor, not here."""

    anchors: tuple[TrustAnchor, ...]
    epoch: int
    challenge_lifetime: int = DEFAULT_CHALLENGE_LIFETIME
    max_outstanding: int = DEFAULT_MAX_OUTSTANDING
    challenges: dict[bytes, ChallengeRecord] = field(default_factory=dict, repr=False)
    revoked: set[tuple[str, str]] = field(default_factory=set)
    """(namespace, serial) pairs (spec 8)."""
    log: IssuanceLog = field(default_factory=IssuanceLog, repr=False)


class Pkg:
    """The private key generator (spec 5.1, 5.3, 8)."""

    def __init__(self, state: PkgState, extractor: KeyExtractor) -> None:
        if not isinstance(extractor, KeyExtractor):
            raise ParameterError("extractor must have a suite name and an extract(identity) method")
        _check_suite_name(extractor.suite, "extractor suite")
        anchors = tuple(state.anchors)
        if not anchors or any(not isinstance(a, TrustAnchor) for a in anchors):
            raise ParameterError("the PKG needs at least one TrustAnchor")
        namespaces = [a.namespace for a in anchors]
        if None in namespaces or len(set(namespaces)) != len(namespaces):
            raise ParameterError("every trust anchor of the PKG needs its own namespace (spec 3.1)")
        if type(state.epoch) is not int or not 0 <= state.epoch <= MAX_EPOCH:
            raise ParameterError("epoch must be an integer in [0, 2^32)")
        for name in ("challenge_lifetime", "max_outstanding"):
            value = getattr(state, name)
            if type(value) is not int or value < 1:
                raise ParameterError(f"{name} must be a positive integer")
        self.state = state
        self.extractor = extractor

    @property
    def suite(self) -> str:
        return self.extractor.suite

    def _prune(self, now: int) -> None:
        """Spec 5.1: expired challenges are forgotten (a late replay is then refused as unknown)."""
        for nonce in [n for n, record in self.state.challenges.items() if record.expires < now]:
            del self.state.challenges[nonce]

    def challenge(self, now: int, rng: RandomSource | None = None) -> bytes:
        """Spec 5.1: a fresh 32-byte challenge, valid until now + lifetime, single use."""
        _check_time(now)
        self._prune(now)
        if len(self.state.challenges) >= self.state.max_outstanding:
            raise StateError(f"{len(self.state.challenges)} challenges outstanding; try again later")
        nonce = resolve(rng).random_bytes(CHALLENGE_BYTES)
        if nonce in self.state.challenges:
            raise StateError("challenge collision: the randomness source repeated itself")
        expires = min(now + self.state.challenge_lifetime, MAX_TIME)
        self.state.challenges[nonce] = ChallengeRecord(expires)
        return Challenge(nonce, expires, self.state.epoch, self.suite).to_bytes()

    def enroll(self, request: bytes, now: int, rng: RandomSource | None = None) -> bytes:
        """Spec 5.3: check an enrollment in the spec's order; on success consume the
        challenge, extract and seal the key, log the issuance, return the key-delivery.

        A refused enrollment changes nothing: the challenge stays unused and
        the log untouched.
        """
        _check_time(now)                                                     # step 0
        if now < self.state.log.last_time:
            raise StateError(f"time {now} is before the last issuance at {self.state.log.last_time}")
        e = decode_enrollment(request)                                       # step 1
        if e.suite != self.suite:                                            # step 2
            raise DecodeError(f"enrollment: unknown suite {e.suite!r} (this PKG issues {self.suite!r})")
        if e.identity.epoch != self.state.epoch:                             # step 3
            raise StateError(f"enrollment is for epoch {e.identity.epoch}, the current epoch is "
                             f"{self.state.epoch}")
        record = self.state.challenges.get(e.challenge)                      # step 4
        if record is None:
            raise StateError("enrollment answers an unknown challenge")
        if record.used:
            raise ReplayError("enrollment answers a challenge that was already used")
        if now > record.expires:
            raise StateError(f"enrollment answers a challenge that expired at {record.expires}")
        anchor = verify_device_chain(e.chain, self.state.anchors, now)     # step 5
        if e.identity.namespace != anchor.namespace:                         # step 6
            raise VerificationError(f"the identity's namespace {e.identity.namespace!r} is not that of the "
                                    f"manufacturer root of this device ({anchor.namespace!r})")
        if e.identity.role not in anchor.roles:
            raise VerificationError(f"the manufacturer root of this device may not vouch for role "
                                    f"{e.identity.role!r}")
        if e.identity.role not in certificate_roles(e.chain[0]):
            raise VerificationError(f"the device certificate does not certify role {e.identity.role!r}")
        serial = certificate_serial(e.chain[0])                              # step 7
        if serial != e.identity.serial:
            raise VerificationError("the identity's serial is not the device certificate's serialNumber")
        if (anchor.namespace, serial) in self.state.revoked:                 # step 8
            raise VerificationError(f"device {anchor.namespace}/{serial} is revoked")
        verify_signature(e.chain[0].public_key(), e.signature, enrollment_tbs(e.fields), "enrollment")  # step 9
        key = self.extractor.extract(e.identity_bytes)                       # step 10
        if not isinstance(key, (bytes, bytearray)) or not 1 <= len(key) <= MAX_KEY_BYTES:
            raise ParameterError(f"the extractor must return 1 to {MAX_KEY_BYTES} bytes")
        info = delivery_info(e.challenge, e.identity_bytes, self.suite)
        enc, ct = SealBase(e.hpke_public, info, b"", bytes(key), rng)
        record.used = True
        self.state.log.append(e.identity, self.suite, certificate_fingerprint(e.chain_der[0]), now)
        return cbor.encode({1: VERSION, 2: e.challenge, 3: e.identity_bytes, 4: self.suite, 5: enc, 6: ct})

    def advance_epoch(self, epoch: int) -> None:
        """Spec 8: move to a later epoch; outstanding challenges are void."""
        if type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH:
            raise ParameterError("epoch must be an integer in [0, 2^32)")
        if epoch <= self.state.epoch:
            raise StateError(f"the next epoch must be after the current epoch {self.state.epoch}")
        self.state.epoch = epoch
        self.state.challenges.clear()

    def revoke(self, namespace: str, serial: str) -> None:
        """Spec 8: refuse every later enrollment of this serial of this namespace, in any role."""
        if not isinstance(namespace, str) or not NAMESPACE.fullmatch(namespace):
            raise ParameterError("namespace must be 1-16 characters of [a-z0-9-], starting a-z0-9")
        if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
            raise ParameterError("serial must be 1-64 characters of [A-Za-z0-9._-], starting alphanumeric")
        self.state.revoked.add((namespace, serial))


# ---------------------------------------------------------------------------
# Section 5.2 and 7.3: the meter (any enrolling device)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    """Spec 7.3: a private key the device accepted."""

    identity: bytes
    epoch: int
    suite: str
    key: bytes = field(repr=False)


@dataclass
class PendingEnrollment:
    identity: bytes
    suite: str
    hpke_private: bytes | None = field(repr=False)
    """None once the delivery was accepted: the key is erased (spec 7.3)."""


@dataclass
class MeterState:
    """What an enrolling device stores (spec 3.3)."""

    namespace: str
    """The namespace of the manufacturer root that certified the device (spec 2.2)."""
    serial: str
    role: str
    suite: str
    device_key: bytes = field(repr=False)
    """The device's private key, PKCS#8 DER (Ed25519 or ECDSA P-256)."""
    chain: tuple[bytes, ...]
    """The device certificate, then any intermediate CA certificates, DER."""
    pending: dict[bytes, PendingEnrollment] = field(default_factory=dict, repr=False)
    keys: dict[int, IssuedKey] = field(default_factory=dict, repr=False)


class Meter:
    """The enrolling device (spec 5.2, 7.3).  ``verify_key`` is the suite's key check."""

    def __init__(self, state: MeterState, verify_key: KeyVerifier) -> None:
        Identity(state.namespace, state.serial, state.role, 0)
        _check_suite_name(state.suite, "meter suite")
        if not callable(verify_key):
            raise ParameterError("verify_key must be the suite's key check, verify_key(identity, key) -> bool")
        chain = tuple(state.chain)
        if not 1 <= len(chain) <= MAX_CHAIN:
            raise ParameterError(f"the chain must hold 1 to {MAX_CHAIN} certificates")
        try:
            device = _load_certificate(chain[0], "device certificate")
        except DecodeError as exc:
            raise ParameterError(str(exc)) from None
        self._key = _load_device_key(state.device_key)
        if _public_raw(self._key) != _public_raw(device.public_key()):
            raise ParameterError("the device key does not match the device certificate")
        self.state = state
        self.verify_key = verify_key

    def enroll(self, challenge: bytes, rng: RandomSource | None = None) -> bytes:
        """Spec 5.2: answer a challenge with an enrollment for (namespace, serial, role, challenge epoch).

        Draws ikm (32 bytes) for this enrollment's HPKE key pair.
        """
        c = decode_challenge(challenge)
        if c.suite != self.state.suite:
            raise DecodeError(f"challenge: unknown suite {c.suite!r} (this device uses {self.state.suite!r})")
        if self.state.keys and c.epoch < max(self.state.keys):
            raise StateError(f"challenge for epoch {c.epoch}, before the latest key held ({max(self.state.keys)})")
        if c.nonce in self.state.pending:
            raise ReplayError("this challenge was already answered")
        identity = Identity(self.state.namespace, self.state.serial, self.state.role, c.epoch).to_bytes()
        sk, pk = DeriveKeyPair(resolve(rng).random_bytes(HPKE_IKM_BYTES))
        body = {1: VERSION, 2: c.nonce, 3: identity, 4: c.suite, 5: pk, 6: list(self.state.chain)}
        body[7] = _sign(self._key, enrollment_tbs(body))
        pending = self.state.pending
        while len(pending) >= MAX_PENDING:
            del pending[next(iter(pending))]
        pending[c.nonce] = PendingEnrollment(identity, c.suite, sk)
        return cbor.encode(body)

    def receive(self, delivery: bytes) -> IssuedKey:
        """Spec 7.3: open a key-delivery for an enrollment this device made, check the key, keep it."""
        d = decode_delivery(delivery)                                         # step 1
        pending = self.state.pending.get(d.challenge)                         # step 2
        if pending is None:
            raise StateError("key-delivery for a challenge this device did not answer")
        if pending.hpke_private is None:
            raise ReplayError("key-delivery for an enrollment already completed")
        if d.identity != pending.identity:                                    # step 3
            raise VerificationError("key-delivery is for another identity or epoch")
        if d.suite != pending.suite:
            raise VerificationError(f"key-delivery is for suite {d.suite!r}, not {pending.suite!r}")
        info = delivery_info(d.challenge, d.identity, d.suite)                # step 4
        key = OpenBase(d.enc, pending.hpke_private, info, b"", d.ct)
        try:                                                                  # step 5
            verified = self.verify_key(d.identity, key)
        except UsappError as exc:   # a suite's check may name its typed error (spec 10.4.6)
            raise VerificationError(f"the delivered key does not verify for this identity: "
                                    f"{type(exc).__name__}: {exc}") from exc
        if verified is not True:
            raise VerificationError("the delivered key does not verify for this identity")
        identity = Identity.parse(d.identity)                                 # step 6
        issued = IssuedKey(d.identity, identity.epoch, d.suite, key)
        pending.hpke_private = None
        self.state.keys[identity.epoch] = issued
        return issued

    def key(self, epoch: int) -> IssuedKey:
        if epoch not in self.state.keys:
            raise StateError(f"no key held for epoch {epoch}")
        return self.state.keys[epoch]

    def forget_before(self, epoch: int) -> None:
        """Spec 8: erase the keys of epochs before ``epoch``."""
        for old in [e for e in self.state.keys if e < epoch]:
            del self.state.keys[old]


# ---------------------------------------------------------------------------
# Section 10: suites, and the distributed PKG
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bls12Extractor:
    """Spec 10.1: the BLS12-381 BF suite (specs/ibe.md 4.2) with one master secret."""

    master: bf_bls12.MasterKey = field(repr=False)
    suite: str = bf_bls12.SUITE

    def extract(self, identity: bytes) -> bytes:
        return bf_bls12.extract(self.master, identity).to_bytes()


def bls12_key_verifier(params: bf_bls12.PublicParams) -> KeyVerifier:
    """Spec 10.1: the device's check of a delivered key: e(d_id, g2) = e(Q_id, P_pub)."""

    def verify(identity: bytes, key: bytes) -> bool:
        try:
            return bf_bls12.verify_private_key(params, bf_bls12.PrivateKey.from_bytes(identity, key))
        except UsappError:
            return False

    return verify


@dataclass(frozen=True)
class ThresholdNodeExtractor:
    """Spec 10.2: PKG node ``node``'s extractor; its "key" is the share d_i = s_i Q_id.

    Each node runs its own :class:`Pkg` (its own challenges, checks and log)
    with this extractor; s_i comes from the DKG of specs/ibe.md 4.5.
    """

    node: int
    secret_share: int = field(repr=False)
    suite: str = bf_bls12.SUITE

    def extract(self, identity: bytes) -> bytes:
        return bf_bls12.extract_share(self.secret_share, identity).to_bytes()


def threshold_share_verifier(key: bf_bls12.DistributedKey, node: int) -> KeyVerifier:
    """Spec 10.3: the device's check of node ``node``'s share: e(d_i, g2) = e(Q_id, V_i)."""

    def verify(identity: bytes, share: bytes) -> bool:
        try:
            bf_bls12.verify_key_share(key, node, identity, G1.from_bytes(share))
        except UsappError:
            return False
        return True

    return verify


def combine_issued_shares(key: bf_bls12.DistributedKey, shares: Mapping[int, IssuedKey]) -> IssuedKey:
    """Spec 10.3: combine the shares t nodes delivered (each checked on receipt,
    and again here) into the device's key, and check it against P_pub."""
    if not shares:
        raise RecoveryError("no key shares to combine")
    first = next(iter(shares.values()))
    for node, share in shares.items():
        if (share.identity, share.epoch, share.suite) != (first.identity, first.epoch, first.suite):
            raise VerificationError(f"the share from node {node} is for another identity, epoch or suite")
    combined = bf_bls12.combine_key_shares(
        key, first.identity, {node: G1.from_bytes(share.key) for node, share in shares.items()})
    return IssuedKey(first.identity, first.epoch, first.suite, combined.to_bytes())
