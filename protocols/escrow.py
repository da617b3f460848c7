"""Dual-ID escrow anonymisation (USaPP Fig. 5): anonymous high-frequency data, attributable billing.

Implements specs/escrow.md.  Each meter holds two profiles: a personally
identifiable one (LFID: its manufacturer's device certificate and key) and,
per epoch, an anonymous one (HFID).  The escrow issues at most one HFID per
meter and epoch, after authenticating the meter's LFID:

- mode ``escrowed`` (the paper's): the HFID is an X.509 certificate from the
  escrow's HF CA; the escrow seals the link HFID -> LFID under the
  authorities' threshold key (``threshold_elgamal``), so a re-identification
  needs t of n authorities and even the escrow cannot open a link alone;
- mode ``blind`` (stronger): the HFID is an RSA blind signature (RFC 9474,
  RSABSSA-SHA384-PSS-Randomized) under the escrow's key for the epoch, so
  not even the escrow can link an HFID to a meter.

The utility verifies HF messages against the escrow's certification and
never sees the link.  Data categories are bound to a profile and a set of
recipients by the spheres of control of spec 6.

Section map (spec section: code):

- 3   profiles ............................ :class:`LfProfile`, :class:`HfProfile`
- 4   messages ............................ ``decode_*``
- 5   HFID issuance ....................... :meth:`Meter.request_hfid`, :meth:`Escrow.handle`,
                                            :meth:`Meter.receive_hfid`
- 6   spheres of control .................. :data:`POLICY`, :func:`check_sphere`
- 7   data messages ....................... :meth:`Meter.send`, :meth:`Receiver.receive`
- 5.5 epoch-key certification (blind) ..... :func:`certify_epoch_key`, :func:`verify_epoch_key`,
                                            :meth:`Meter.install_epoch_key`, :meth:`Receiver.install_epoch_key`
- 8   re-identification ................... :class:`Authority`, :func:`reidentify`, :func:`encode_link`,
                                            :func:`decode_link`
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from protocols import limits
from protocols.errors import (
    DecodeError,
    ParameterError,
    PolicyError,
    ReplayError,
    StateError,
    VerificationError,
)
from protocols.primitives import cbor
from protocols.primitives import hashing, opcount
from protocols.primitives.rand import RandomSource, resolve
from protocols.schemes import blind_rsa, certificates, frost, hpke, threshold_elgamal

__all__ = [
    "DOMAIN", "LINK_BYTES", "MAX_SERIAL_BYTES", "MODES", "POLICY", "VERSION", "Authority", "EpochClock", "Escrow",
    "EscrowState", "HfProfile", "LfProfile", "LinkRecord", "Meter", "MeterState", "Received", "Receiver",
    "ReceiverState", "Sphere", "certify_epoch_key", "check_sphere", "decode_link", "decode_message", "encode_link",
    "epoch_key_message", "reidentification_request", "reidentify", "verify_epoch_key",
]

VERSION = 1
DOMAIN = b"usapp-escrow-v1"
MODES = ("escrowed", "blind")
LIMITS = limits.ESCROW
"""Spec 4: every size and range of the messages (protocols/limits.py)."""
MAX_MESSAGE_BYTES = LIMITS.max_message_bytes
MAX_PAYLOAD_BYTES = LIMITS.payload_bytes
MAX_EPOCH = LIMITS.max_epoch
MAX_SEQ = LIMITS.max_seq
MAX_TIME = LIMITS.max_time
HF_PUBLIC_BYTES = 32
HFID_BYTES = 16
SIGNATURE_BYTES = 64
REQUEST_ID_BYTES = 16
MAX_SERIAL_BYTES = LIMITS.serial_bytes
"""Longest LFID serial (UTF-8 bytes) the escrow serves: X.520's ub-serial-number (spec 5.2 step 4)."""
LINK_BYTES = 128
"""Every link plaintext is padded to exactly this length, so every sealed link has one length (spec 4.8, 9.1)."""
MAX_RSA_KEY_DER_BYTES = LIMITS.rsa_key_der_bytes
CLOCK_SKEW = 300
"""Seconds a data message's time may be ahead of the receiver's clock (spec 7.2)."""

_L = struct.Struct(">L")
_Q = struct.Struct(">Q")


def _lp(data: bytes) -> bytes:
    return _L.pack(len(data)) + data


# ---------------------------------------------------------------------------
# Spec 6: spheres of control
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sphere:
    """A data category's profile and the recipients it may reach (spec 6.1)."""

    profile: str
    recipients: frozenset[str]


POLICY: Mapping[str, Sphere] = {
    "customer": Sphere("LFID", frozenset({"supplier"})),
    "technical": Sphere("HFID", frozenset({"grid-operator"})),
    "personal": Sphere("LFID", frozenset({"household"})),
}
"""Spec 6.1: billing data goes attributably to the supplier; technical data anonymously to the grid
operator; strictly personal data attributably to the household only (the in-home display)."""

RECIPIENTS = frozenset().union(*(s.recipients for s in POLICY.values()))


def check_sphere(category: str, profile: str, recipient: str) -> None:
    """Spec 6.2: ``PolicyError`` unless ``category`` may go under ``profile`` to ``recipient``."""
    sphere = POLICY.get(category)
    if sphere is None:
        raise PolicyError(f"unknown data category {category!r}; the categories are {', '.join(POLICY)}")
    if profile != sphere.profile:
        raise PolicyError(f"{category} data goes under the {sphere.profile} profile, not the {profile} profile")
    if recipient not in sphere.recipients:
        raise PolicyError(f"{category} data may go to {', '.join(sorted(sphere.recipients))}, not {recipient!r}")


# ---------------------------------------------------------------------------
# Spec 3: epochs and profiles
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochClock:
    """Spec 3.3: epoch e covers [origin + e * length, origin + (e + 1) * length) in POSIX seconds."""

    origin: int
    length: int

    def __post_init__(self) -> None:
        if type(self.origin) is not int or type(self.length) is not int or self.origin < 0 or self.length < 60:
            raise ParameterError("an epoch clock needs an origin >= 0 and a length of at least 60 s")

    def bounds(self, epoch: int) -> tuple[int, int]:
        """(first second, last second) of ``epoch``."""
        start = self.origin + epoch * self.length
        return start, start + self.length - 1

    def epoch_of(self, time: int) -> int:
        if time < self.origin:
            raise StateError("time is before the first epoch")
        return (time - self.origin) // self.length


@dataclass(frozen=True)
class LfProfile:
    """Spec 3.1, the personally identifiable profile: the device certificate chain (device
    first), its hardware ID (the certificate's serialNumber), the PKCS#8 private key, and the
    root CA that certifies it."""

    chain: tuple[bytes, ...]
    private_key: bytes = field(repr=False)
    root: bytes

    @property
    def hardware_id(self) -> str:
        return certificates.certificate_serial(certificates.load_certificate(self.chain[0], "LFID certificate"))


@dataclass(frozen=True)
class HfProfile:
    """Spec 3.2, the anonymous profile of one epoch: its credential (mode escrowed: an X.509
    certificate from the escrow's HF CA; mode blind: a blind-signature credential), the raw
    Ed25519 private key, and the root that certifies it (the HF CA certificate, or the escrow's
    RSA public key of the epoch).  Its hardware ID is the HFID, SHA-256(credential)[:16]."""

    epoch: int
    credential: bytes
    private_key: bytes = field(repr=False)
    root: bytes

    @property
    def hfid(self) -> bytes:
        return hfid_of(self.credential)


def hfid_of(credential: bytes) -> bytes:
    """Spec 3.2: the HFID, the first 16 bytes of SHA-256(credential)."""
    return hashing.sha256(credential).digest()[:HFID_BYTES]


def rsa_public_der(key: blind_rsa.PublicKey) -> bytes:
    """SubjectPublicKeyInfo DER of an escrow RSA key (the blind-mode HF profile's root, spec 3.2)."""
    return key.to_cryptography().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)


def _ed_public(private: bytes) -> bytes:
    return certificates.ed25519_public(private)


# ---------------------------------------------------------------------------
# Spec 4: messages
# ---------------------------------------------------------------------------

KINDS = ("hfid-request", "hfid-response", "adp", "cdp", "reid-request", "epoch-key")
_SCHEMAS = {
    "hfid-request": {1: int, 2: str, 3: str, 4: int, 5: list, 6: bytes, 7: bytes, 8: bytes},
    "hfid-response": {1: int, 2: str, 3: str, 4: int, 5: bytes, 6: bytes},
    "adp": {1: int, 2: str, 3: str, 4: int, 5: bytes, 6: str, 7: str, 8: int, 9: int, 10: bytes, 11: bytes},
    "cdp": {1: int, 2: str, 3: list, 4: str, 5: str, 6: int, 7: int, 8: bytes, 9: bytes},
    "reid-request": {1: int, 2: str, 3: bytes, 4: str, 5: bytes},
    "epoch-key": {1: int, 2: str, 3: int, 4: bytes, 5: bytes},
}
_BLIND_CREDENTIAL = {1: int, 2: bytes, 3: bytes, 4: bytes}
_REQUEST_INNER = {1: bytes, 2: bytes}
_LINK = {1: str, 2: int, 3: bytes}


def decode_message(data: object) -> tuple[str, dict]:
    """Spec 4: decode any escrow message; (kind, map) after the checks of spec 4.1-4.6."""
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError("an escrow message must be bytes")
    kind = cbor.peek_kind(data)
    if kind not in KINDS:
        raise DecodeError("not an escrow message: key 2 must name one of " + ", ".join(KINDS))
    limit = LIMITS.message_bytes[kind]
    if len(data) > limit:
        raise DecodeError(f"{kind}: {len(data)} bytes exceeds the limit of {limit} bytes (spec 4.1)")
    m = cbor.decode(bytes(data), max_size=limit)
    if not isinstance(m, dict) or m.get(2) not in KINDS:
        raise DecodeError("not an escrow message: key 2 must name one of " + ", ".join(KINDS))
    kind = m[2]
    cbor.expect_map(m, _SCHEMAS[kind], name=kind)
    if m[1] != VERSION:
        raise DecodeError(f"{kind}: unknown version {m[1]}")
    if kind == "reid-request":
        _exact(m[3], 32, "reid-request: HF credential fingerprint")
        if not 1 <= len(m[4].encode()) <= LIMITS.reason_bytes:
            raise DecodeError(f"reid-request: the reason must be 1 to {LIMITS.reason_bytes} bytes")
        _exact(m[5], REQUEST_ID_BYTES, "reid-request: request id")
        return kind, m
    if kind == "epoch-key":
        if not 0 <= m[3] <= MAX_EPOCH:
            raise DecodeError("epoch-key: epoch out of range")
        if not 1 <= len(m[4]) <= MAX_RSA_KEY_DER_BYTES:
            raise DecodeError(f"epoch-key: the key must be 1 to {MAX_RSA_KEY_DER_BYTES} bytes of DER")
        _exact(m[5], SIGNATURE_BYTES, "epoch-key: signature")
        return kind, m
    if kind == "cdp":
        _chain(m[3], kind)
        _data_fields(m, 4, kind)
        _exact(m[9], SIGNATURE_BYTES, "cdp: signature")
        return kind, m
    if m[3] not in MODES:
        raise DecodeError(f"{kind}: unknown mode {m[3]!r}")
    if not 0 <= m[4] <= MAX_EPOCH:
        raise DecodeError(f"{kind}: epoch out of range")
    if kind == "hfid-request":
        _chain(m[5], kind)
        _exact(m[6], hpke.HPKE_PUBLIC_BYTES, "hfid-request: enc")
        if not hpke.HPKE_TAG_BYTES < len(m[7]) <= LIMITS.hpke_ct_bytes:
            raise DecodeError("hfid-request: ciphertext length out of range")
        _exact(m[8], SIGNATURE_BYTES, "hfid-request: signature")
    elif kind == "hfid-response":
        _exact(m[5], hpke.HPKE_PUBLIC_BYTES, "hfid-response: enc")
        if not hpke.HPKE_TAG_BYTES < len(m[6]) <= LIMITS.hpke_ct_bytes:
            raise DecodeError("hfid-response: ciphertext length out of range")
    else:
        if not 1 <= len(m[5]) <= LIMITS.credential_bytes:
            raise DecodeError("adp: credential length out of range")
        _data_fields(m, 6, kind)
        _exact(m[11], SIGNATURE_BYTES, "adp: signature")
    return kind, m


def _exact(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise DecodeError(f"{what} must be {size} bytes")


def _chain(chain: list, kind: str) -> None:
    if not 1 <= len(chain) <= certificates.MAX_CHAIN or any(not isinstance(c, bytes) for c in chain):
        raise DecodeError(f"{kind}: the LFID chain must be 1 to {certificates.MAX_CHAIN} DER certificates")


def _data_fields(m: dict, first: int, kind: str) -> None:
    """category, recipient, seq, time, payload at keys first .. first + 4."""
    category, recipient, seq, time, payload = (m[first + i] for i in range(5))
    if category not in POLICY:
        raise DecodeError(f"{kind}: unknown data category {category!r}")
    if recipient not in RECIPIENTS:
        raise DecodeError(f"{kind}: unknown recipient {recipient!r}")
    if not 1 <= seq <= MAX_SEQ or not 0 <= time <= MAX_TIME:
        raise DecodeError(f"{kind}: sequence number or time out of range")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"{kind}: payload longer than {MAX_PAYLOAD_BYTES} bytes")


def tbs(kind: str, m: Mapping[int, object], signature_key: int) -> bytes:
    """Spec 4.1: DOMAIN || lp(kind) || CBOR(the map without its signature)."""
    return DOMAIN + _lp(kind.encode()) + cbor.encode({k: v for k, v in m.items() if k != signature_key})


def _request_info(mode: str, epoch: int) -> bytes:
    return DOMAIN + _lp(b"hfid-request") + _lp(mode.encode()) + _L.pack(epoch)


def _response_info(mode: str, epoch: int, request: bytes) -> bytes:
    return DOMAIN + _lp(b"hfid-response") + _lp(mode.encode()) + _L.pack(epoch) + hashing.sha256(request).digest()


def _blind_message(epoch: int, hf_public: bytes) -> bytes:
    """Spec 5.3: the message the escrow signs blindly: DOMAIN || lp("hfid") || epoch || HF public key."""
    return DOMAIN + _lp(b"hfid") + _L.pack(epoch) + hf_public


# ---------------------------------------------------------------------------
# Spec 5: the escrow
# ---------------------------------------------------------------------------


@dataclass
class EscrowState:
    """Spec 5.1.  ``lf_anchors``: the roots it accepts LFIDs from.  Mode escrowed: the HF CA
    (raw Ed25519 key and self-signed certificate) and the authorities' group info (the key that
    seals links).  Mode blind: one RSA key per epoch (RFC 9474 section 6.2).  ``issued`` holds (LFID
    serial, epoch) of every HFID issued; ``links`` the sealed links by credential fingerprint."""

    mode: str
    clock: EpochClock
    lf_anchors: tuple[certificates.TrustAnchor, ...]
    hpke_private: bytes = field(repr=False)
    hf_ca_key: bytes | None = field(default=None, repr=False)
    hf_ca_certificate: bytes | None = None
    authorities: frost.PublicKeyPackage | None = None
    rsa_keys: dict[int, blind_rsa.PrivateKey] = field(default_factory=dict, repr=False)
    epoch_keys: dict[int, bytes] = field(default_factory=dict)
    """Mode blind: the epoch-key message the authorities certified for each epoch (spec 5.5), published."""
    issued: set[tuple[str, int]] = field(default_factory=set)
    links: dict[bytes, bytes] = field(default_factory=dict)


class Escrow:
    """Spec 5: authenticates a meter's LFID and issues its HFID for an epoch, at most once."""

    def __init__(self, state: EscrowState) -> None:
        if state.mode not in MODES:
            raise ParameterError(f"mode must be one of {', '.join(MODES)}")
        if not state.lf_anchors:
            raise ParameterError("the escrow needs at least one LFID trust anchor")
        if state.mode == "escrowed" and (state.hf_ca_key is None or state.hf_ca_certificate is None
                                         or state.authorities is None):
            raise ParameterError("mode escrowed needs the HF CA key and certificate and the authorities' key")
        self.state = state

    @property
    def hpke_public(self) -> bytes:
        return hpke.public_key(self.state.hpke_private)

    def _escrowed(self) -> tuple[bytes, bytes, frost.PublicKeyPackage]:
        """Mode escrowed's HF CA key, HF CA certificate and the authorities' key (StateError if unset)."""
        st = self.state
        if st.hf_ca_key is None or st.hf_ca_certificate is None or st.authorities is None:
            raise StateError("mode escrowed needs the HF CA key and certificate and the authorities' key")
        return st.hf_ca_key, st.hf_ca_certificate, st.authorities

    def epoch_public_key(self, epoch: int) -> blind_rsa.PublicKey:
        """Mode blind: the public half of the epoch's RSA key (spec 5.3)."""
        return self._rsa(epoch).public

    def epoch_key(self, epoch: int) -> bytes:
        """Mode blind: the certified epoch-key message of ``epoch`` (spec 5.5), what meters and receivers install."""
        message = self.state.epoch_keys.get(epoch)
        if message is None:
            raise StateError(f"the escrow has no certified key for epoch {epoch}")
        return message

    def _rsa(self, epoch: int) -> blind_rsa.PrivateKey:
        """Spec 5.3: the epoch's signing key; the escrow signs only with the key certified for it (5.5)."""
        key = self.state.rsa_keys.get(epoch)
        if key is None:
            raise StateError(f"the escrow has no blind-signing key for epoch {epoch}")
        message = self.epoch_key(epoch)
        _, m = decode_message(message)
        if m[4] != rsa_public_der(key.public):
            raise StateError(f"the escrow's key for epoch {epoch} is not the certified one")
        return key

    def handle(self, request: bytes, now: int, rng: RandomSource | None = None) -> bytes:
        """Spec 5.2: check an hfid-request and answer it; the state changes only on success."""
        kind, m = decode_message(request)
        if kind != "hfid-request":
            raise DecodeError(f"the escrow takes hfid-request messages, not {kind}")
        st = self.state
        mode, epoch = m[3], m[4]
        if mode != st.mode:
            raise VerificationError(f"hfid-request: mode {mode} is not the escrow's mode {st.mode}")
        if epoch not in (st.clock.epoch_of(now), st.clock.epoch_of(now) + 1):
            raise StateError(f"hfid-request: epoch {epoch} is neither the current nor the next epoch")
        chain = [certificates.load_certificate(der, "LFID certificate") for der in m[5]]
        certificates.verify_device_chain(chain, st.lf_anchors, now)
        serial = certificates.certificate_serial(chain[0])
        certificates.verify_signature(chain[0].public_key(), m[8], tbs(kind, m, 8), "hfid-request")
        if len(serial.encode("utf-8")) > MAX_SERIAL_BYTES:
            raise ParameterError(f"hfid-request: the LFID serial is longer than {MAX_SERIAL_BYTES} bytes")
        if (serial, epoch) in st.issued:
            raise ReplayError(f"hfid-request: meter {serial} already has an HFID for epoch {epoch}")
        inner = cbor.decode_map(hpke.OpenBase(m[6], st.hpke_private, _request_info(mode, epoch),
                                              cbor.encode({k: m[k] for k in range(1, 6)}), m[7]),
                                _REQUEST_INNER, name="hfid-request content")
        hpke.check_public_key(inner[2], "hfid-request: reply key")
        rng = resolve(rng)
        if mode == "escrowed":
            _exact(inner[1], HF_PUBLIC_BYTES, "hfid-request: HF public key")
            try:
                Ed25519PublicKey.from_public_bytes(inner[1])
            except ValueError:
                raise DecodeError("hfid-request: the HF public key is not an Ed25519 key") from None
            answer = self._certify(inner[1], epoch, rng)
            fingerprint = hashing.sha256(answer).digest()
            link = encode_link(serial, epoch, fingerprint)
            sealed = threshold_elgamal.seal(self._escrowed()[2].group_public_key, _link_aad(fingerprint), link, rng)
        else:
            answer = blind_rsa.BlindSign(self._rsa(epoch), inner[1])
        enc, ct = hpke.SealBase(inner[2], _response_info(mode, epoch, bytes(request)), b"", answer, rng)
        st.issued.add((serial, epoch))
        if mode == "escrowed":
            st.links[fingerprint] = sealed
        return cbor.encode({1: VERSION, 2: "hfid-response", 3: mode, 4: epoch, 5: enc, 6: ct})

    def _certify(self, hf_public: bytes, epoch: int, rng: RandomSource) -> bytes:
        """Spec 5.2 step 7: the HF certificate: serial OS2IP(16 drawn bytes) >> 2 | 2^125 (126 bits,
        top bit set, so every certificate has the same length), the epoch's bounds as validity, no
        names of the meter."""
        st = self.state
        ca_key, ca_certificate, _ = self._escrowed()
        ca = x509.load_der_x509_certificate(ca_certificate)
        start, end = st.clock.bounds(epoch)
        serial = int.from_bytes(rng.random_bytes(16), "big") >> 2 | (1 << 125)
        opcount.record("ed25519_sign")  # the CA's signature over the certificate
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "usapp HFID")]))
                .issuer_name(ca.subject)
                .public_key(Ed25519PublicKey.from_public_bytes(hf_public))
                .serial_number(serial)
                .not_valid_before(dt.datetime.fromtimestamp(start, dt.timezone.utc))
                .not_valid_after(dt.datetime.fromtimestamp(end, dt.timezone.utc))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=False, crl_sign=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(Ed25519PrivateKey.from_private_bytes(ca_key), None))
        return cert.public_bytes(serialization.Encoding.DER)

    def sealed_link(self, fingerprint: bytes) -> bytes:
        """Spec 8.1: the sealed link of an HF credential (mode escrowed)."""
        sealed = self.state.links.get(fingerprint)
        if sealed is None:
            raise StateError("the escrow holds no link for this credential")
        return sealed


def _link_aad(fingerprint: bytes) -> bytes:
    """Spec 5.2 step 8: the sealed link's label, DOMAIN || lp("link") || fingerprint."""
    return DOMAIN + _lp(b"link") + fingerprint


def encode_link(serial: str, epoch: int, fingerprint: bytes) -> bytes:
    """Spec 4.8: body = CBOR({1: serial, 2: epoch, 3: fingerprint}); the link plaintext is
    I2OSP(len(body), 2) || body || zero bytes, exactly LINK_BYTES long."""
    if not isinstance(serial, str) or not 1 <= len(serial.encode("utf-8")) <= MAX_SERIAL_BYTES:
        raise ParameterError(f"a link's LFID serial must be 1 to {MAX_SERIAL_BYTES} bytes")
    body = cbor.encode({1: serial, 2: epoch, 3: fingerprint})
    return len(body).to_bytes(2, "big") + body + bytes(LINK_BYTES - 2 - len(body))


def decode_link(plaintext: bytes) -> dict:
    """Spec 4.8: the inverse of :func:`encode_link`; DecodeError for a wrong length, a body length
    out of range, non-zero padding, or a body that is not a link map."""
    if len(plaintext) != LINK_BYTES:
        raise DecodeError(f"a link must be {LINK_BYTES} bytes")
    size = int.from_bytes(plaintext[:2], "big")
    if not 1 <= size <= LINK_BYTES - 2 or any(plaintext[2 + size:]):
        raise DecodeError("a link's length prefix or padding is wrong")
    record = cbor.decode_map(plaintext[2:2 + size], _LINK, name="link")
    if not 1 <= len(record[1].encode("utf-8")) <= MAX_SERIAL_BYTES or not 0 <= record[2] <= MAX_EPOCH:
        raise DecodeError("a link's serial or epoch is out of range")
    _exact(record[3], 32, "link: fingerprint")
    return record


# ---------------------------------------------------------------------------
# Spec 5.5: the epoch keys of mode blind, certified by the authorities
# ---------------------------------------------------------------------------


def epoch_key_tbs(epoch: int, public_key: blind_rsa.PublicKey) -> bytes:
    """Spec 5.5: what the authorities sign: DOMAIN || lp("epoch-key") || CBOR(keys 1 to 4)."""
    return tbs("epoch-key", {1: VERSION, 2: "epoch-key", 3: epoch, 4: rsa_public_der(public_key)}, 5)


def epoch_key_message(epoch: int, public_key: blind_rsa.PublicKey, signature: bytes) -> bytes:
    """Spec 4.7: the epoch-key message {1: 1, 2: "epoch-key", 3: epoch, 4: SPKI DER, 5: signature}."""
    data = cbor.encode({1: VERSION, 2: "epoch-key", 3: epoch, 4: rsa_public_der(public_key), 5: signature})
    decode_message(data)
    return data


def _rsa_from_der(der: bytes) -> blind_rsa.PublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise DecodeError("epoch-key: the key is not a SubjectPublicKeyInfo") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise DecodeError("epoch-key: the key is not an RSA key")
    try:
        public = blind_rsa.PublicKey.from_cryptography(key)
    except ParameterError as exc:
        raise DecodeError(f"epoch-key: {exc}") from None
    if rsa_public_der(public) != der:
        raise DecodeError("epoch-key: the key's DER is not canonical")
    return public


def verify_epoch_key(message: bytes, authorities_key: bytes | None) -> tuple[int, blind_rsa.PublicKey]:
    """Spec 5.5, the meter's and the receiver's check: (epoch, RSA key) of an epoch-key message whose
    FROST(Ed25519, SHA-512) signature verifies under the authorities' group key (VerificationError
    otherwise; StateError if no authorities' key is configured)."""
    kind, m = decode_message(message)
    if kind != "epoch-key":
        raise DecodeError(f"expected an epoch-key message, got {kind}")
    if authorities_key is None:
        raise StateError("no authorities' key is configured to check epoch keys against")
    try:
        frost.verify(tbs(kind, m, 5), m[5], authorities_key)
    except (VerificationError, DecodeError, ParameterError):
        raise VerificationError(f"epoch-key: epoch {m[3]}'s key is not certified by the authorities' key") from None
    return m[3], _rsa_from_der(m[4])


def _install(keys: dict[int, bytes], message: bytes, authorities_key: bytes | None) -> tuple[int, blind_rsa.PublicKey]:
    """Spec 5.5: verify, refuse a second different certified key for an epoch (the proof that the
    authorities equivocated), keep the message."""
    epoch, key = verify_epoch_key(message, authorities_key)
    held = keys.get(epoch)
    if held is not None and verify_epoch_key(held, authorities_key)[1] != key:
        raise VerificationError(f"epoch-key: two certified keys for epoch {epoch}: the authorities equivocated")
    keys[epoch] = bytes(message)
    return epoch, key


def certify_epoch_key(authorities: list[Authority], group_info: frost.PublicKeyPackage, epoch: int,
                      public_key: blind_rsa.PublicKey, rng: RandomSource | None = None) -> bytes:
    """Spec 5.5: the escrow, as coordinator, has t (or more) authorities sign the epoch's key with
    FROST (RFC 9591): each commits (in identifier order), then signs unless it already certified
    another key for that epoch (StateError); the aggregate is verified; returns the epoch-key message."""
    if not isinstance(group_info, frost.PublicKeyPackage):
        raise ParameterError("group_info must be a frost.PublicKeyPackage")
    if not isinstance(public_key, blind_rsa.PublicKey):
        raise ParameterError("public_key must be a blind_rsa.PublicKey")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= MAX_EPOCH:
        raise ParameterError("epoch out of range")
    signers = sorted(authorities, key=lambda a: a.key_package.identifier)
    if len({a.key_package.identifier for a in signers}) != len(signers):
        raise ParameterError("an authority is listed twice")
    for authority in signers:
        authority.check_epoch_key(epoch, public_key)
    rng = resolve(rng)
    commitments = [a.commit(rng) for a in signers]
    message = epoch_key_tbs(epoch, public_key)
    shares = [a.sign_epoch_key(epoch, public_key, commitments) for a in signers]
    signature = frost.aggregate_and_verify(group_info, commitments, message, shares)
    return epoch_key_message(epoch, public_key, signature.to_bytes())


# ---------------------------------------------------------------------------
# Spec 5 and 7: the meter
# ---------------------------------------------------------------------------


@dataclass
class PendingHfid:
    epoch: int
    request: bytes
    hf_private: bytes = field(repr=False)
    reply_private: bytes = field(repr=False)
    blind_inv: int | None = field(default=None, repr=False)
    blind_message: bytes | None = field(default=None, repr=False)


@dataclass
class MeterState:
    """Spec 3: the LF profile, the escrow's public data (its HPKE key; its HF CA certificate
    or its RSA keys by epoch), the HF profiles by epoch, pending requests and sequence numbers."""

    mode: str
    clock: EpochClock
    lf: LfProfile
    escrow_hpke_public: bytes
    hf_root: bytes | None = None
    authorities_key: bytes | None = None
    """Mode blind: the authorities' group key (32 bytes), fixed at provisioning like the LFID root (spec 5.5)."""
    epoch_keys: dict[int, bytes] = field(default_factory=dict)
    """Mode blind: the certified epoch-key messages by epoch, installed by :meth:`Meter.install_epoch_key`."""
    hf: dict[int, HfProfile] = field(default_factory=dict, repr=False)
    pending: dict[int, PendingHfid] = field(default_factory=dict, repr=False)
    lf_seq: int = 0
    hf_seq: dict[int, int] = field(default_factory=dict)


class Meter:
    """Spec 5 and 7: requests its HFID each epoch and sends each category under its profile."""

    def __init__(self, state: MeterState) -> None:
        if state.mode not in MODES:
            raise ParameterError(f"mode must be one of {', '.join(MODES)}")
        self.state = state
        self._lf_key = certificates.load_device_key(state.lf.private_key)

    def request_hfid(self, epoch: int, rng: RandomSource | None = None) -> bytes:
        """Spec 5.1: a fresh HF key pair and reply key; the request is signed with the LFID key."""
        st = self.state
        if epoch in st.hf:
            raise StateError(f"the meter already holds an HFID for epoch {epoch}")
        rng = resolve(rng)
        hf_private = rng.random_bytes(32)
        reply_private, reply_public = hpke.DeriveKeyPair(rng.random_bytes(32))
        hf_public = _ed_public(hf_private)
        pending = PendingHfid(epoch, b"", hf_private, reply_private)
        if st.mode == "escrowed":
            content = hf_public
        else:
            public = self._rsa_public(epoch)
            prepared = blind_rsa.Prepare(_blind_message(epoch, hf_public), blind_rsa.DEFAULT_VARIANT, rng)
            content, pending.blind_inv = blind_rsa.Blind(public, prepared, blind_rsa.DEFAULT_VARIANT, rng)
            pending.blind_message = prepared
        m = {1: VERSION, 2: "hfid-request", 3: st.mode, 4: epoch, 5: list(st.lf.chain)}
        enc, ct = hpke.SealBase(st.escrow_hpke_public, _request_info(st.mode, epoch), cbor.encode(m),
                                cbor.encode({1: content, 2: reply_public}), rng)
        m[6], m[7] = enc, ct
        m[8] = certificates.sign(self._lf_key, tbs("hfid-request", m, 8))
        pending.request = cbor.encode(m)
        st.pending[epoch] = pending
        return pending.request

    def install_epoch_key(self, message: bytes) -> int:
        """Spec 5.5: keep the escrow's key of an epoch only if the authorities certified it
        (VerificationError otherwise, or if another certified key is held for that epoch)."""
        return _install(self.state.epoch_keys, message, self.state.authorities_key)[0]

    def _rsa_public(self, epoch: int) -> blind_rsa.PublicKey:
        """Spec 5.5: the certified key of ``epoch``, checked again before each use."""
        message = self.state.epoch_keys.get(epoch)
        if message is None:
            raise StateError(f"the meter has no certified escrow key for epoch {epoch}")
        certified_epoch, key = verify_epoch_key(message, self.state.authorities_key)
        if certified_epoch != epoch:
            raise VerificationError(f"the key held for epoch {epoch} is certified for epoch {certified_epoch}")
        return key

    def receive_hfid(self, response: bytes) -> HfProfile:
        """Spec 5.4: open the response and check the credential before keeping it."""
        kind, m = decode_message(response)
        if kind != "hfid-response":
            raise DecodeError(f"expected an hfid-response, got {kind}")
        st = self.state
        pending = st.pending.get(m[4])
        if pending is None or m[3] != st.mode:
            raise StateError("no pending HFID request for this epoch and mode")
        answer = hpke.OpenBase(m[5], pending.reply_private, _response_info(st.mode, m[4], pending.request), b"",
                               m[6])
        hf_public = _ed_public(pending.hf_private)
        if st.mode == "escrowed":
            if st.hf_root is None:
                raise StateError("mode escrowed needs the HF root to check the certificate against")
            credential = answer
            _check_hf_certificate(credential, st.hf_root, st.clock, m[4], hf_public)
            root = st.hf_root
        else:
            if pending.blind_message is None or pending.blind_inv is None:
                raise StateError("the pending blind request lost its blinding state")
            public = self._rsa_public(m[4])
            signature = blind_rsa.Finalize(public, pending.blind_message, answer, pending.blind_inv)
            credential = cbor.encode({1: m[4], 2: hf_public, 3: pending.blind_message[:blind_rsa.MSG_PREFIX_LEN],
                                      4: signature})
            root = rsa_public_der(public)
        profile = HfProfile(m[4], credential, pending.hf_private, root)
        del st.pending[m[4]]
        st.hf[m[4]] = profile
        return profile

    def send(self, category: str, recipient: str, payload: bytes, now: int) -> bytes:
        """Spec 7.1: a data message for ``category`` under the profile its sphere names.

        Technical data goes as an ADP under the HFID of the current epoch; customer
        and personal data as a CDP under the LFID.  ``PolicyError`` for a recipient
        outside the category's sphere.
        """
        sphere = POLICY.get(category)
        if sphere is None:
            raise PolicyError(f"unknown data category {category!r}")
        check_sphere(category, sphere.profile, recipient)
        if not isinstance(payload, bytes) or len(payload) > MAX_PAYLOAD_BYTES:
            raise ParameterError(f"a payload must be at most {MAX_PAYLOAD_BYTES} bytes")
        st = self.state
        if sphere.profile == "LFID":
            st.lf_seq += 1
            m = {1: VERSION, 2: "cdp", 3: list(st.lf.chain), 4: category, 5: recipient, 6: st.lf_seq, 7: now,
                 8: payload}
            m[9] = certificates.sign(self._lf_key, tbs("cdp", m, 9))
            return cbor.encode(m)
        epoch = st.clock.epoch_of(now)
        profile = st.hf.get(epoch)
        if profile is None:
            raise StateError(f"the meter has no HFID for epoch {epoch}: request one first")
        seq = st.hf_seq.get(epoch, 0) + 1
        st.hf_seq[epoch] = seq
        m = {1: VERSION, 2: "adp", 3: st.mode, 4: epoch, 5: profile.credential, 6: category, 7: recipient, 8: seq,
             9: now, 10: payload}
        opcount.record("ed25519_sign")
        m[11] = Ed25519PrivateKey.from_private_bytes(profile.private_key).sign(tbs("adp", m, 11))
        return cbor.encode(m)


def _check_hf_certificate(der: bytes, hf_root: bytes | certificates.TrustAnchor, clock: EpochClock, epoch: int,
                          hf_public: bytes | None = None) -> x509.Certificate:
    """Spec 7.2: an HF certificate issued by the escrow's HF CA for exactly ``epoch``."""
    cert = certificates.load_certificate(der, "HF certificate")
    start, end = clock.bounds(epoch)
    if (int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp())) != (start, end):
        raise StateError(f"HF certificate: its validity is not epoch {epoch}")
    anchor = hf_root if isinstance(hf_root, certificates.TrustAnchor) else \
        certificates.TrustAnchor(hf_root, frozenset({"escrow"}))
    certificates.verify_device_chain([cert], [anchor], start)
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationError("HF certificate: the key is not Ed25519")
    if hf_public is not None and key.public_bytes(serialization.Encoding.Raw,
                                                  serialization.PublicFormat.Raw) != hf_public:
        raise VerificationError("HF certificate: it certifies another key")
    return cert


# ---------------------------------------------------------------------------
# Spec 7.2: the receivers (the utility's supplier and grid operator, the household display)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """An accepted data message: who sent it (the LFID serial, or the HFID), and what."""

    kind: str
    category: str
    sender: str
    epoch: int | None
    seq: int
    time: int
    payload: bytes


@dataclass
class ReceiverState:
    """Spec 7.2: the recipient's name, the mode, the epoch clock, the LFID roots, the escrow's
    HF CA certificate (escrowed) or RSA public keys by epoch (blind), and the last sequence
    number seen per sender."""

    recipient: str
    mode: str
    clock: EpochClock
    lf_anchors: tuple[certificates.TrustAnchor, ...] = ()
    hf_root: bytes | None = None
    authorities_key: bytes | None = None
    epoch_keys: dict[int, bytes] = field(default_factory=dict)
    rsa_public: dict[int, blind_rsa.PublicKey] = field(default_factory=dict)
    """Mode blind: the keys of ``epoch_keys``, filled only by :meth:`Receiver.install_epoch_key` (spec 5.5)."""
    last_seq: dict[str, int] = field(default_factory=dict)
    verified: dict[int, dict[bytes, bytes]] = field(default_factory=dict)
    """Credentials already checked, by epoch: SHA-256(credential) -> HF public key (spec 7.2); only the
    current and the previous epoch are kept."""


class Receiver:
    """Spec 7.2: checks a CDP or ADP and its sphere; never learns an HFID's LFID."""

    def __init__(self, state: ReceiverState) -> None:
        if state.recipient not in RECIPIENTS:
            raise ParameterError(f"unknown recipient {state.recipient!r}")
        if state.mode not in MODES:
            raise ParameterError(f"mode must be one of {', '.join(MODES)}")
        self.state = state
        self._hf_anchor = (certificates.TrustAnchor(state.hf_root, frozenset({"escrow"}))
                           if state.mode == "escrowed" and state.hf_root is not None else None)

    def receive(self, message: bytes, now: int) -> Received:
        kind, m = decode_message(message)
        st = self.state
        if kind == "cdp":
            category, recipient, seq, time, payload = m[4], m[5], m[6], m[7], m[8]
            self._addressed(category, "LFID", recipient)
            chain = [certificates.load_certificate(der, "LFID certificate") for der in m[3]]
            certificates.verify_device_chain(chain, st.lf_anchors, time)
            certificates.verify_signature(chain[0].public_key(), m[9], tbs(kind, m, 9), "cdp")
            sender, epoch = "lfid:" + certificates.certificate_serial(chain[0]), None
        elif kind == "adp":
            category, recipient, seq, time, payload = m[6], m[7], m[8], m[9], m[10]
            self._addressed(category, "HFID", recipient)
            if m[3] != st.mode:
                raise VerificationError(f"adp: mode {m[3]} is not this receiver's mode {st.mode}")
            epoch = m[4]
            start, end = st.clock.bounds(epoch)
            if not start <= time <= end:
                raise StateError(f"adp: time {time} is outside epoch {epoch}")
            digest = hashing.sha256(m[5]).digest()
            hf_public = st.verified.get(epoch, {}).get(digest) or self._credential(m[5], epoch)
            try:
                opcount.record("ed25519_verify")
                Ed25519PublicKey.from_public_bytes(hf_public).verify(m[11], tbs(kind, m, 11))
            except Exception:
                raise VerificationError("adp: signature by the HFID key does not verify") from None
            sender = "hfid:" + hfid_of(m[5]).hex()
        else:
            raise DecodeError(f"a receiver takes cdp and adp messages, not {kind}")
        if time > now + CLOCK_SKEW:
            raise StateError(f"{kind}: time {time} is in the future")
        if epoch is not None and st.clock.epoch_of(now) not in (epoch, epoch + 1):
            raise StateError(f"adp: epoch {epoch} has expired")
        if seq <= st.last_seq.get(sender, 0):
            raise ReplayError(f"{kind}: sequence number {seq} from {sender} is not after "
                              f"{st.last_seq.get(sender, 0)}")
        st.last_seq[sender] = seq
        if kind == "adp" and epoch is not None:
            st.verified.setdefault(epoch, {})[digest] = hf_public
            for old in [e for e in st.verified if e < epoch - 1]:
                del st.verified[old]
        return Received(kind, category, sender, epoch, seq, time, payload)

    def install_epoch_key(self, message: bytes) -> int:
        """Spec 5.5: accept credentials of an epoch only under the key the authorities certified for it."""
        epoch, key = _install(self.state.epoch_keys, message, self.state.authorities_key)
        self.state.rsa_public[epoch] = key
        return epoch

    def _addressed(self, category: str, profile: str, recipient: str) -> None:
        check_sphere(category, profile, recipient)
        if recipient != self.state.recipient:
            raise PolicyError(f"addressed to {recipient}, not to {self.state.recipient}")

    def _credential(self, credential: bytes, epoch: int) -> bytes:
        """Spec 7.2: the HF public key a credential certifies for ``epoch``."""
        st = self.state
        if st.mode == "escrowed":
            if self._hf_anchor is None:
                raise StateError("this receiver holds no HF CA certificate")
            cert = _check_hf_certificate(credential, self._hf_anchor, st.clock, epoch)
            return cert.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        c = cbor.decode_map(credential, _BLIND_CREDENTIAL, name="blind credential")
        _exact(c[2], HF_PUBLIC_BYTES, "blind credential: HF public key")
        _exact(c[3], 32, "blind credential: prefix")
        if c[1] != epoch:
            raise StateError(f"blind credential: issued for epoch {c[1]}, used in epoch {epoch}")
        key = st.rsa_public.get(epoch)
        if key is None:
            raise StateError(f"no certified escrow key known for epoch {epoch}")
        blind_rsa.Verify(key, c[3] + _blind_message(epoch, c[2]), c[4])
        return c[2]


# ---------------------------------------------------------------------------
# Spec 8: re-identification by t of n authorities (mode escrowed)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkRecord:
    """Spec 8.1: what a sealed link holds."""

    lfid_serial: str
    epoch: int
    fingerprint: bytes


def reidentification_request(credential_fingerprint: bytes, reason: str, request_id: bytes) -> bytes:
    """Spec 8.2: the request the authorities approve."""
    m = {1: VERSION, 2: "reid-request", 3: credential_fingerprint, 4: reason, 5: request_id}
    data = cbor.encode(m)
    decode_message(data)
    return data


@dataclass
class Authority:
    """Spec 8.3: one of n authorities; contributes a decryption share for requests it approved.
    Spec 5.5 (mode blind): signs, with t - 1 others, at most one escrow key per epoch."""

    key_package: frost.KeyPackage = field(repr=False)
    approved: set[bytes] = field(default_factory=set)
    certified: dict[int, bytes] = field(default_factory=dict)
    """Spec 5.5: epoch -> SHA-256 of the SPKI DER of the one key this authority certified for it."""
    signer: frost.Signer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key_package, frost.KeyPackage):
            raise ParameterError("an authority needs a frost.KeyPackage")
        if self.signer is None:
            self.signer = frost.Signer(self.key_package)

    def check_epoch_key(self, epoch: int, public_key: blind_rsa.PublicKey) -> None:
        """Spec 5.5: StateError if this authority certified another key for ``epoch``."""
        held = self.certified.get(epoch)
        if held is not None and not hashing.compare_digest(held, hashing.sha256(rsa_public_der(public_key)).digest()):
            raise StateError(f"authority {self.key_package.identifier} already certified another key for epoch {epoch}")

    def _signer(self) -> frost.Signer:
        if self.signer is None:
            raise StateError(f"authority {self.key_package.identifier} has no FROST signer")
        return self.signer

    def commit(self, rng: RandomSource | None = None) -> frost.SigningCommitments:
        """FROST round one (RFC 9591 section 5.1) for an epoch-key certification."""
        return self._signer().commit(rng)

    def sign_epoch_key(self, epoch: int, public_key: blind_rsa.PublicKey,
                       commitments: list[frost.SigningCommitments]) -> frost.SignatureShare:
        """Spec 5.5: FROST round two on the epoch-key statement, at most one key per epoch; the key
        must be an RSA key of at least 2048 bits (``blind_rsa.PublicKey`` checks that)."""
        self.check_epoch_key(epoch, public_key)
        share = self._signer().sign(epoch_key_tbs(epoch, public_key), commitments)
        self.certified[epoch] = hashing.sha256(rsa_public_der(public_key)).digest()
        return share

    def approve(self, request: bytes) -> None:
        decode_message(request)
        self.approved.add(hashing.sha256(request).digest())

    def share(self, request: bytes, escrow: Escrow, rng: RandomSource | None = None) -> bytes:
        """Spec 8.3: a decryption share of the link the escrow holds for the request's credential.

        The sealed link is fetched from the escrow by the fingerprint the approved request
        names, and its proof of well-formedness is checked under that fingerprint's label
        before any share is computed (VerificationError, and the approval stays unused): a
        share depends only on the link's R, so a blob carrying another link's R (a compromised
        escrow's answer) would otherwise open that link (spec 9.2; specs/threshold_elgamal.md
        section 8.2).  The share goes to the combiner confidentially.
        """
        _, m = decode_message(request)
        digest = hashing.sha256(request).digest()
        if not any(hashing.compare_digest(digest, a) for a in self.approved):
            raise StateError(f"authority {self.key_package.identifier} has not approved this request")
        sealed = escrow.sealed_link(m[3])
        share = threshold_elgamal.decryption_share(self.key_package, sealed, _link_aad(m[3]), request, rng)
        self.approved.discard(digest)
        return share.to_bytes()


def reidentify(group_info: frost.PublicKeyPackage, request: bytes, sealed: bytes,
               shares: Mapping[int, bytes]) -> LinkRecord:
    """Spec 8.4: combine t decryption shares (each checked, a bad one named) and open the link."""
    kind, m = decode_message(request)
    if kind != "reid-request":
        raise DecodeError("a re-identification needs a reid-request")
    parsed = [threshold_elgamal.DecryptionShare.from_bytes(i, s) for i, s in sorted(shares.items())]
    link = threshold_elgamal.combine(group_info, sealed, _link_aad(m[3]), request, parsed)
    record = decode_link(link)
    if record[3] != m[3]:
        raise VerificationError("the opened link is for another credential")
    return LinkRecord(record[1], record[2], record[3])
