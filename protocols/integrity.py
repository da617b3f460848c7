"""Integrity feedback of billing data (USaPP Fig. 4) as a verifiable, append-only billing log.

Implements specs/integrity.md.  The meter signs each billing record (period,
monotonic counter, register values) with its device key; the utility keeps
the records it accepted in an append-only Merkle log (RFC 9162 section 2.1,
``protocols.schemes.merkle``), one log per meter, and feeds back Y: a signed
tree head, with a consistency proof from the last head the meter checked.
The meter keeps its own view of the same log and checks Y: a match proves
the utility holds exactly the meter's records; a mismatch is located, by
bisection over signed roots, at the first period that differs.  From the
meter's records and the utility's signed heads an arbiter decides who
altered what (section 8).  Records carry the meter's boot, a durable restore
count: a meter restored from a backup resyncs from the utility's log, record
by record under inclusion proofs (section 9), and the arbiter tells its lost
state from double-signing.

Section map (spec section: code):

- 3   records ............................. :func:`encode_record`, :func:`decode_record`
- 3.3 the ECCSI record suite .............. :class:`EccsiRecordKey`, :func:`verify_record`, :meth:`Meter.add_key`
- 4   the utility's log and tree heads .... :class:`Utility`, :func:`verify_tree_head`
- 5   feedback Y and the meter's check .... :meth:`Utility.feedback`, :meth:`Meter.check`
- 6   locating the first difference ....... :meth:`Utility.probe`, :meth:`Meter.locate`, :func:`locate`
- 7   inclusion on request ................ :meth:`Utility.inclusion`, :meth:`Meter.check_inclusion`
- 8   disputes ............................ :func:`arbitrate`
- 9   restore from a backup and resync .... :class:`BootCounter`, :meth:`Meter.restore`, :func:`resync`
"""

from __future__ import annotations

import copy
import datetime
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocols import limits
from protocols.errors import (
    DecodeError,
    ParameterError,
    ReplayError,
    StateError,
    UsappError,
    VerificationError,
)
from protocols.primitives import cbor
from protocols.primitives import hashing, opcount
from protocols.primitives.rand import RandomSource
from protocols.schemes import eccsi, merkle

__all__ = [
    "DOMAIN", "SUITE_ECCSI", "SUITE_ED25519", "VERSION", "BootCounter", "EccsiRecordKey", "Finding", "Meter",
    "MeterState", "Record", "TreeHead", "Utility",
    "UtilityState", "Verdict", "arbitrate", "decode_record", "encode_record", "locate", "resync", "verify_tree_head",
]

VERSION = 2
DOMAIN = b"usapp-integrity-v2"
LIMITS = limits.INTEGRITY
"""Every size and range of the messages and of the arbitration inputs (protocols/limits.py)."""
MAX_BOOT = LIMITS.max_boot
MAX_REGISTERS = LIMITS.max_registers
MAX_UINT64 = LIMITS.max_uint64
MAX_RECORD_BYTES = LIMITS.record_bytes
MAX_MESSAGE_BYTES = LIMITS.tree_head_bytes
HASH_BYTES = 32
SIGNATURE_BYTES = 64
MAX_PROOF = LIMITS.max_proof
SUITE_ED25519 = "ed25519"
"""Spec 3.1: the default record suite; an Ed25519 record carries no suite key (keys 1-8 only)."""
SUITE_ECCSI = "eccsi-p256"
"""Spec 3.3: records signed with ECCSI (RFC 6507, P-256), verified from the meter's identifier."""
ECCSI_SIGNATURE_BYTES = eccsi.SIGNATURE_BYTES
"""r || s || PVT: 32 + 32 + 65 = 129 octets (RFC 6507 section 3.3)."""
ECCSI_HALF_Q = (eccsi.q - 1) // 2
"""Spec 3.3: an ECCSI record signature MUST have s <= (q - 1)/2 (low s)."""
LAST_DAY = 253402127999
"""23:59:59 UTC on 9999-12-29: the last record period an ECCSI record can date (spec 3.3); from
9999-12-30 RFC 6509 3.3 would accept the period after 9999-12, which has no "YYYY-MM" form."""

_L = struct.Struct(">L")


def _lp(data: bytes) -> bytes:
    return _L.pack(len(data)) + data


def _public_raw(key: Ed25519PrivateKey) -> bytes:
    opcount.record("ed25519_keygen")
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _verify(public: bytes, signature: bytes, message: bytes, what: str) -> None:
    opcount.record("ed25519_verify")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise VerificationError(f"{what}: signature does not verify") from None


# ---------------------------------------------------------------------------
# Spec 3: billing records
# ---------------------------------------------------------------------------

_RECORD = {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: list, 7: int, 8: bytes}
_RECORD_SUITED = {**_RECORD, 9: str, 10: str}


@dataclass(frozen=True)
class Record:
    """Spec 3.1: one billing period's record, signed by the meter's device key.  ``boot`` is the
    meter's restore count when it signed (spec 9.1)."""

    meter: bytes
    period: int
    counter: int
    registers: tuple[int, ...]
    signature: bytes = field(repr=False)
    boot: int = 0
    suite: str = SUITE_ED25519
    """Spec 3.3: ``SUITE_ED25519`` (no key 9) or ``SUITE_ECCSI`` (keys 9 and 10)."""
    key_period: str = ""
    """Spec 3.3: the RFC 6509 key period "YYYY-MM" of the ECCSI key that signed (key 10); "" for Ed25519."""

    def body(self) -> dict:
        """Keys 1-7, and for an ECCSI record 9 and 10: everything the signature covers (spec 3.1, 3.3)."""
        body = {1: VERSION, 2: "record", 3: self.meter, 4: self.period, 5: self.counter, 6: list(self.registers),
                7: self.boot}
        if self.suite != SUITE_ED25519:
            body[9] = self.suite
            body[10] = self.key_period
        return body

    def to_bytes(self) -> bytes:
        """The record's encoding, which is also its leaf in the log (spec 3.2)."""
        return cbor.encode({**self.body(), 8: self.signature})


def record_tbs(body: dict) -> bytes:
    """Spec 3.1: DOMAIN || lp("record") || CBOR(keys 1-7); spec 3.3: keys 1-7, 9, 10 for ECCSI."""
    return DOMAIN + _lp(b"record") + cbor.encode(body)


def record_day(period: int) -> datetime.date:
    """Spec 3.3: the UTC date of a record's period (POSIX seconds); ``VerificationError`` past
    ``LAST_DAY``."""
    if type(period) is not int or not 0 <= period <= LAST_DAY:
        raise VerificationError("record: an ECCSI record's period must be a POSIX time up to 9999-12-29T23:59:59Z")
    return datetime.datetime.fromtimestamp(period, tz=datetime.timezone.utc).date()


def eccsi_sign(key: eccsi.SigningKey, message: bytes, rng: RandomSource | None) -> bytes:
    """Spec 3.3: RFC 6507 5.2.1 Sign, then s replaced by q - s when s > (q - 1)/2 (the RFC's own
    malleability, RFC 6507 section 6, used to fix one of the two signatures)."""
    sig = eccsi.Signature.decode(eccsi.Sign(key, message, rng))
    if sig.s > ECCSI_HALF_Q:
        sig = eccsi.Signature(sig.r, eccsi.q - sig.s, sig.PVT)
    return sig.encode()


def encode_record(key: Ed25519PrivateKey | eccsi.SigningKey, meter: bytes, period: int, counter: int,
                  registers: Sequence[int], boot: int = 0, rng: RandomSource | None = None) -> Record:
    """Spec 3.1: make and sign a record (the meter's side).  With an ECCSI ``key`` (spec 3.3) the
    record is of suite ``SUITE_ECCSI``: the key's identifier must name ``meter`` and a key period
    accepted on the record's date (``ParameterError``); ``rng`` gives j (RFC 6507 5.2.1)."""
    if type(boot) is not int or not 0 <= boot <= MAX_BOOT:
        raise ParameterError("boot must be an integer in [0, 2^32)")
    if not isinstance(meter, bytes) or not 1 <= len(meter) <= 128:
        raise ParameterError("a meter id must be 1 to 128 bytes")
    for name, value in (("period", period), ("counter", counter)):
        if type(value) is not int or not 0 <= value <= MAX_UINT64:
            raise ParameterError(f"{name} must be an unsigned 64-bit integer")
    registers = tuple(registers)
    if not 1 <= len(registers) <= MAX_REGISTERS or any(type(r) is not int or not 0 <= r <= MAX_UINT64
                                                       for r in registers):
        raise ParameterError(f"registers must be 1 to {MAX_REGISTERS} unsigned 64-bit integers")
    if isinstance(key, eccsi.SigningKey):
        identifier = eccsi.Identifier.decode(key.ID)
        if identifier.uri.encode("ascii") != meter:
            raise ParameterError("the ECCSI key is for another meter's identifier")
        try:
            day = record_day(period)
        except VerificationError as exc:
            raise ParameterError(str(exc)) from None
        if identifier.period not in eccsi.accepted_periods(day):
            raise ParameterError(f"the ECCSI key of period {identifier.period} is not accepted on {day.isoformat()}")
        unsigned = Record(meter, period, counter, registers, b"", boot, SUITE_ECCSI, identifier.period)
        signature = eccsi_sign(key, record_tbs(unsigned.body()), rng)
        return Record(meter, period, counter, registers, signature, boot, SUITE_ECCSI, identifier.period)
    unsigned = Record(meter, period, counter, registers, b"", boot)
    opcount.record("ed25519_sign")
    return Record(meter, period, counter, registers, key.sign(record_tbs(unsigned.body())), boot)


def decode_record(data: object) -> Record:
    """Spec 3.1: decode a record; shapes and ranges only (the signature is checked by the receiver)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_RECORD_BYTES:
        raise DecodeError(f"a record must be at most {MAX_RECORD_BYTES} bytes")
    decoded = cbor.decode(bytes(data))
    suited = isinstance(decoded, dict) and 9 in decoded
    m = cbor.expect_map(decoded, _RECORD_SUITED if suited else _RECORD, name="record")
    if m[1] != VERSION or m[2] != "record":
        raise DecodeError("record: unknown version or kind")
    if not 1 <= len(m[3]) <= LIMITS.meter_bytes:
        raise DecodeError(f"record: meter id must be 1 to {LIMITS.meter_bytes} bytes")
    if not 0 <= m[4] <= MAX_UINT64 or not 0 <= m[5] <= MAX_UINT64:
        raise DecodeError("record: period or counter out of range")
    if not 1 <= len(m[6]) <= MAX_REGISTERS or any(type(r) is not int or not 0 <= r <= MAX_UINT64 for r in m[6]):
        raise DecodeError(f"record: registers must be 1 to {MAX_REGISTERS} unsigned 64-bit integers")
    if not 0 <= m[7] <= MAX_BOOT:
        raise DecodeError("record: boot out of range [0, 2^32)")
    if not suited:
        if len(m[8]) != SIGNATURE_BYTES:
            raise DecodeError("record: the signature must be 64 bytes")
        record = Record(m[3], m[4], m[5], tuple(m[6]), m[8], m[7])
    else:
        if m[9] != SUITE_ECCSI:
            raise DecodeError("record: unknown suite (an Ed25519 record carries no key 9)")
        if len(m[8]) != ECCSI_SIGNATURE_BYTES:
            raise DecodeError(f"record: an ECCSI signature must be {ECCSI_SIGNATURE_BYTES} bytes")
        try:
            eccsi.Identifier(m[10], "urn:x:y")
        except ParameterError:
            raise DecodeError('record: the key period must be "YYYY-MM"') from None
        record = Record(m[3], m[4], m[5], tuple(m[6]), m[8], m[7], SUITE_ECCSI, m[10])
    if not hashing.compare_digest(record.to_bytes(), bytes(data)):
        raise DecodeError("record: not in the canonical encoding")
    return record


@dataclass(frozen=True)
class EccsiRecordKey:
    """Spec 3.3: what verifies a meter's ECCSI records: the KMS's KPAK (65 octets, checked on E)
    and the meter's URI (its log id, key 3), nothing else: no certificate, no per-meter public key.
    ``ParameterError`` for a KPAK off the curve or a meter id that is not an RFC 6509 URI."""

    KPAK: bytes
    meter: bytes

    def __post_init__(self) -> None:
        try:
            eccsi.check_kpak(self.KPAK)
        except DecodeError as exc:
            raise ParameterError(str(exc)) from None
        if not isinstance(self.meter, bytes) or not 1 <= len(self.meter) <= LIMITS.meter_bytes:
            raise ParameterError(f"the meter id must be 1 to {LIMITS.meter_bytes} bytes")
        try:
            eccsi.Identifier("1970-01", self.meter.decode("ascii"))
        except (UnicodeDecodeError, ParameterError):
            raise ParameterError("an ECCSI meter id must be an RFC 6509 URI (specs/sakke_eccsi.md 1.3)") from None

    def identifier(self, key_period: str) -> bytes:
        """ID = key_period || 0x00 || meter || 0x00 (RFC 6509 section 3.2)."""
        return eccsi.Identifier(key_period, self.meter.decode("ascii")).encode()


MeterKey = bytes | EccsiRecordKey
"""How a meter's records are verified: its 32-byte Ed25519 public key, or an :class:`EccsiRecordKey`."""


def verify_record(record: Record, meter_public: MeterKey) -> None:
    """Spec 3.1 and 3.3: the meter's signature over the record, under the meter's suite: a record
    of another suite, of another meter (ECCSI), with a key period not accepted on its date, a high
    s, or a signature that does not verify is a ``VerificationError``."""
    what = f"record of period {record.period}"
    if not isinstance(meter_public, EccsiRecordKey):
        if record.suite != SUITE_ED25519:
            raise VerificationError(f"{what}: signed with {record.suite}, the meter's records are Ed25519")
        _verify(meter_public, record.signature, record_tbs(record.body()), what)
        return
    if record.suite != SUITE_ECCSI:
        raise VerificationError(f"{what}: signed with {record.suite}, the meter's records are ECCSI")
    if record.meter != meter_public.meter:
        raise VerificationError(f"{what}: it names another meter")
    day = record_day(record.period)
    if record.key_period not in eccsi.accepted_periods(day):
        raise VerificationError(f"{what}: the key period {record.key_period} is not accepted on {day.isoformat()}")
    try:
        sig = eccsi.Signature.decode(record.signature)
    except DecodeError:
        raise VerificationError(f"{what}: an ECCSI signature is {ECCSI_SIGNATURE_BYTES} bytes") from None
    if sig.s > ECCSI_HALF_Q:
        raise VerificationError(f"{what}: s > (q - 1)/2 (the signature is not in its low-s form)")
    try:
        eccsi.Verify(meter_public.KPAK, meter_public.identifier(record.key_period), record_tbs(record.body()),
                     record.signature)
    except (DecodeError, VerificationError):
        raise VerificationError(f"{what}: the ECCSI signature does not verify") from None


# ---------------------------------------------------------------------------
# Spec 4: tree heads
# ---------------------------------------------------------------------------

_TREE_HEAD = {1: int, 2: str, 3: bytes, 4: int, 5: bytes, 6: int, 7: bytes}


@dataclass(frozen=True)
class TreeHead:
    """Spec 4.2: the utility's signed statement of the log's size and root at a time."""

    meter: bytes
    size: int
    root: bytes
    time: int
    signature: bytes = field(repr=False)

    def body(self) -> dict:
        return {1: VERSION, 2: "tree-head", 3: self.meter, 4: self.size, 5: self.root, 6: self.time}

    def to_bytes(self) -> bytes:
        return cbor.encode({**self.body(), 7: self.signature})


def _tree_head_tbs(body: dict) -> bytes:
    return DOMAIN + _lp(b"tree-head") + cbor.encode(body)


def decode_tree_head(data: object) -> TreeHead:
    m = _decode(data, _TREE_HEAD, "tree-head")
    if m[1] != VERSION or m[2] != "tree-head":
        raise DecodeError("tree head: unknown version or kind")
    if not 0 <= m[4] <= MAX_UINT64 or not 0 <= m[6] <= MAX_UINT64:
        raise DecodeError("tree head: size or time out of range")
    if len(m[5]) != HASH_BYTES or len(m[7]) != SIGNATURE_BYTES:
        raise DecodeError("tree head: root must be 32 bytes and the signature 64")
    return TreeHead(m[3], m[4], m[5], m[6], m[7])


def verify_tree_head(head: TreeHead, utility_public: bytes, meter: bytes) -> None:
    """Spec 4.2: the utility's signature, for this meter's log."""
    if head.meter != meter:
        raise VerificationError("tree head: it is for another meter's log")
    _verify(utility_public, head.signature, _tree_head_tbs(head.body()), "tree head")


def _decode(data: object, schema: dict, kind: str) -> dict:
    """A message of ``kind``: bytes within ``LIMITS.message_bytes[kind]``, checked before decoding."""
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError(f"a {kind} must be bytes, got {type(data).__name__}")
    limit = LIMITS.message_bytes[kind]
    if len(data) > limit:
        raise DecodeError(f"{kind}: {len(data)} bytes exceeds the limit of {limit} bytes")
    return cbor.decode_map(bytes(data), schema, name=kind, max_size=limit)


def _evidence(items: object, what: str) -> list[bytes]:
    """Spec 8.2: one side's list of encoded records or tree heads, at most ``LIMITS.max_log_records``
    byte strings, each within the size of a record or tree head (checked before anything is decoded)."""
    if not isinstance(items, (list, tuple)):
        raise DecodeError(f"{what} must be a list of byte strings")
    if len(items) > LIMITS.max_log_records:
        raise DecodeError(f"{what}: more than {LIMITS.max_log_records} entries")
    limit = max(LIMITS.record_bytes, LIMITS.tree_head_bytes)
    for item in items:
        if not isinstance(item, (bytes, bytearray)) or len(item) > limit:
            raise DecodeError(f"{what}: every entry must be at most {limit} bytes")
    return [bytes(item) for item in items]


def _proof(value: object, what: str) -> list[bytes]:
    if not isinstance(value, list) or len(value) > MAX_PROOF or \
            any(not isinstance(h, bytes) or len(h) != HASH_BYTES for h in value):
        raise DecodeError(f"{what}: a proof is at most {MAX_PROOF} hashes of 32 bytes")
    return value


# ---------------------------------------------------------------------------
# Spec 4: the utility
# ---------------------------------------------------------------------------


@dataclass
class UtilityState:
    """Spec 4.1: the utility's signing key, and per meter its public key, log and the records."""

    signing_key: bytes = field(repr=False)
    meters: dict[bytes, MeterKey] = field(default_factory=dict)
    logs: dict[bytes, merkle.MerkleLog] = field(default_factory=dict, repr=False)
    records: dict[bytes, list[Record]] = field(default_factory=dict, repr=False)


class Utility:
    """Spec 4-7: accepts records into per-meter logs and answers with signed tree heads and proofs."""

    def __init__(self, state: UtilityState) -> None:
        if not isinstance(state.signing_key, bytes) or len(state.signing_key) != 32:
            raise ParameterError("the utility's signing key must be a raw 32-byte Ed25519 key")
        self.state = state
        self._key = Ed25519PrivateKey.from_private_bytes(state.signing_key)

    @property
    def public_key(self) -> bytes:
        return _public_raw(self._key)

    def register(self, meter: bytes, meter_public: MeterKey) -> None:
        """Spec 4.1: a meter's log starts empty; its device key verifies its records (or, spec 3.3,
        an :class:`EccsiRecordKey` for ``meter``: the KPAK and the meter's identifier)."""
        if meter in self.state.meters:
            raise StateError("the meter is already registered")
        if isinstance(meter_public, EccsiRecordKey):
            if meter_public.meter != meter:
                raise ParameterError("the ECCSI record key is for another meter id")
        else:
            Ed25519PublicKey.from_public_bytes(meter_public)
        self.state.meters[meter] = meter_public
        self.state.logs[meter] = merkle.MerkleLog()
        self.state.records[meter] = []

    def _log(self, meter: bytes) -> merkle.MerkleLog:
        log = self.state.logs.get(meter)
        if log is None:
            raise StateError("unknown meter")
        return log

    def accept(self, data: bytes, now: int) -> bytes:
        """Spec 4.3: check a record and append it; returns the receipt (a tree head covering it).

        The record's counter MUST be the next (``ReplayError`` for a counter already
        seen: replayed or duplicated; ``StateError`` for a gap: reordered or missing),
        its period MUST be after the last, its boot MUST NOT be below the last one's and no register
        may go backwards (``StateError``).
        """
        record = decode_record(data)
        st = self.state
        public = st.meters.get(record.meter)
        if public is None:
            raise VerificationError("record: from a meter that is not registered")
        verify_record(record, public)
        previous = st.records[record.meter][-1] if st.records[record.meter] else None
        expected = previous.counter + 1 if previous else 0
        if record.counter < expected:
            raise ReplayError(f"record: counter {record.counter} was already accepted (replayed or duplicated)")
        if record.counter > expected:
            raise StateError(f"record: counter {record.counter} is not the next ({expected}): reordered or missing")
        if previous is not None:
            if record.period <= previous.period:
                raise StateError(f"record: period {record.period} is not after {previous.period}")
            if record.boot < previous.boot:
                raise StateError(f"record: boot {record.boot} is before the last record's boot {previous.boot}")
            if len(record.registers) != len(previous.registers) or any(
                    r < p for r, p in zip(record.registers, previous.registers)):
                raise StateError("record: a register goes backwards (or the register count changed)")
        self._log(record.meter).append(record.to_bytes())
        st.records[record.meter].append(record)
        return self.tree_head(record.meter, now).to_bytes()

    def tree_head(self, meter: bytes, now: int) -> TreeHead:
        """Spec 4.2: sign the log's current size and root."""
        log = self._log(meter)
        body = TreeHead(meter, log.size, log.root(log.size), now, b"").body()
        opcount.record("ed25519_sign")
        return TreeHead(meter, body[4], body[5], now, self._key.sign(_tree_head_tbs(body)))

    def feedback(self, meter: bytes, since: int, now: int) -> bytes:
        """Spec 5.1: Y = the signed tree head and a consistency proof from size ``since``."""
        log = self._log(meter)
        if type(since) is not int or not 0 <= since <= log.size:
            raise ParameterError("since must be a size the log has had")
        head = self.tree_head(meter, now)
        proof = log.consistency_proof(since, log.size) if 0 < since < log.size else []
        return cbor.encode({1: VERSION, 2: "feedback", 3: head.to_bytes(), 4: since, 5: proof})

    def probe(self, meter: bytes, size: int, head_size: int) -> bytes:
        """Spec 6.1: the root at ``size`` and the consistency proof from it to ``head_size``."""
        log = self._log(meter)
        if type(size) is not int or type(head_size) is not int or not 0 < size <= head_size <= log.size:
            raise ParameterError("probe sizes must satisfy 0 < size <= head size <= log size")
        proof = log.consistency_proof(size, head_size) if size < head_size else []
        return cbor.encode({1: VERSION, 2: "probe", 3: size, 4: head_size, 5: log.root(size), 6: proof})

    def inclusion(self, meter: bytes, index: int, head_size: int) -> bytes:
        """Spec 7.1: the record at ``index`` and its inclusion proof in the tree of ``head_size``."""
        log = self._log(meter)
        if type(index) is not int or type(head_size) is not int or not 0 <= index < head_size <= log.size:
            raise ParameterError("need 0 <= index < head size <= log size")
        return cbor.encode({1: VERSION, 2: "inclusion", 3: index, 4: head_size,
                            5: self.state.records[meter][index].to_bytes(),
                            6: log.inclusion_proof(index, head_size)})


# ---------------------------------------------------------------------------
# Spec 5-7: the meter's view and its checks
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """The outcome of a check (spec 5.2): ``match``, or the first index whose record differs
    (``period``: the meter's period there, None if the meter has no record there)."""

    match: bool
    size: int
    index: int | None = None
    period: int | None = None
    reason: str = ""


@dataclass
class MeterState:
    """Spec 5 and 9: the device key, the utility's key, its own records and log, the last checked
    head, its receipts; the boot it signs with and, after a restore until the resync, the size of
    the restored log (``restored_at``)."""

    meter: bytes
    device_key: bytes = field(repr=False)
    utility_public: bytes
    records: list[Record] = field(default_factory=list, repr=False)
    log: merkle.MerkleLog = field(default_factory=lambda: merkle.MerkleLog(), repr=False)
    checked: TreeHead | None = None
    receipts: list[TreeHead] = field(default_factory=list, repr=False)
    boot: int = 0
    restored_at: int | None = None
    suite: str = SUITE_ED25519
    """Spec 3.3: ``SUITE_ECCSI`` for a meter that signs with ECCSI (``device_key`` is then unused)."""
    kpak: bytes = b""
    """Spec 3.3: the KMS's KPAK (ECCSI meters)."""
    eccsi_keys: dict[str, tuple[bytes, bytes]] = field(default_factory=dict, repr=False)
    """Spec 3.3: key period "YYYY-MM" -> (SSK, PVT), each pair validated when the meter is built."""


@dataclass
class BootCounter:
    """Spec 9.1: the meter's durable monotonic counter (for example a TPM NV counter or a one-time
    programmable fuse bank).  It is not part of the state a backup saves and restores: a restore
    bumps it, so records signed after a restore carry a boot no record before it carries."""

    value: int = 0

    def bump(self) -> int:
        if self.value >= MAX_BOOT:
            raise StateError("the boot counter is exhausted")
        self.value += 1
        return self.value


_FEEDBACK = {1: int, 2: str, 3: bytes, 4: int, 5: list}
_PROBE = {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list}
_INCLUSION = {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list}


class Meter:
    """Spec 3 and 5-7: signs records, keeps its own view and checks the utility's feedback."""

    def __init__(self, state: MeterState, validated: Mapping[str, eccsi.SigningKey] | None = None) -> None:
        """``validated``: keys a previous :class:`Meter` of the same state validated (:attr:`validated_keys`),
        reused where period, KPAK, identifier, SSK and PVT are the same; every other key is validated."""
        self.state = state
        self._eccsi: dict[str, eccsi.SigningKey] = {}
        if state.suite == SUITE_ED25519:
            self._key = Ed25519PrivateKey.from_private_bytes(state.device_key)
            return
        if state.suite != SUITE_ECCSI:
            raise ParameterError(f"unknown record suite {state.suite!r}")
        self._record_key = EccsiRecordKey(state.kpak, state.meter)
        for period, (SSK, PVT) in state.eccsi_keys.items():
            ID = self._record_key.identifier(period)
            kept = (validated or {}).get(period)
            if kept is not None and (kept.KPAK, kept.ID, kept.PVT, kept.SSK) == \
                    (state.kpak, ID, PVT, int.from_bytes(SSK, "big")):
                self._eccsi[period] = kept
            else:
                self._eccsi[period] = eccsi.ValidateSsk(state.kpak, ID, SSK, PVT)

    @property
    def validated_keys(self) -> Mapping[str, eccsi.SigningKey]:
        """The ECCSI keys this meter validated, by period (empty for an Ed25519 meter)."""
        return dict(self._eccsi)

    @property
    def public_key(self) -> bytes:
        """The Ed25519 public key (spec 3.1); an ECCSI meter has none (``StateError``)."""
        if self.state.suite != SUITE_ED25519:
            raise StateError("an ECCSI meter has no public key: its records verify from its identifier")
        return _public_raw(self._key)

    @property
    def verification_key(self) -> MeterKey:
        """What verifies this meter's records (spec 3.1, 3.3)."""
        return self.public_key if self.state.suite == SUITE_ED25519 else self._record_key

    def add_key(self, period: str, SSK: bytes, PVT: bytes) -> None:
        """Spec 3.3: keep the ECCSI key of ``period`` after RFC 6507 5.1.2 ValidateSsk under the
        meter's identifier (``DecodeError``, ``VerificationError``; ``StateError`` for an Ed25519 meter)."""
        if self.state.suite != SUITE_ECCSI:
            raise StateError("only an ECCSI meter holds ECCSI keys")
        key = eccsi.ValidateSsk(self.state.kpak, self._record_key.identifier(period), SSK, PVT)
        self.state.eccsi_keys[period] = (bytes(SSK), bytes(PVT))
        self._eccsi[period] = key

    def forget_keys(self, day: datetime.date) -> None:
        """Spec 3.3: erase the ECCSI keys of periods no longer accepted on ``day`` (RFC 6509 3.3)."""
        accepted = eccsi.accepted_periods(day)
        for period in [p for p in self.state.eccsi_keys if p < accepted[0]]:
            del self.state.eccsi_keys[period]
            del self._eccsi[period]

    def _signing_key(self, period: int) -> Ed25519PrivateKey | eccsi.SigningKey:
        """Spec 3.3: the key of the record's own month if held, else another period accepted on
        its date, the newest first; ``StateError`` if none is held."""
        if self.state.suite == SUITE_ED25519:
            return self._key
        try:
            day = record_day(period)
        except VerificationError as exc:
            raise ParameterError(str(exc)) from None
        accepted = eccsi.accepted_periods(day)
        for candidate in (eccsi.period_of(day),) + tuple(reversed(accepted)):
            if candidate in self._eccsi:
                return self._eccsi[candidate]
        raise StateError(f"no ECCSI key held for {day.isoformat()} (periods {', '.join(accepted)}): enroll")

    @classmethod
    def restore(cls, backup: MeterState, boot_counter: BootCounter) -> Meter:
        """Spec 9.1: a meter whose state is ``backup`` (a copy is taken); the durable boot counter is
        bumped and the meter signs with the new boot.  Until :func:`resync` its log may lack records
        the utility holds; records it signs meanwhile are re-signed at the resync."""
        state = copy.deepcopy(backup)
        state.boot = boot_counter.bump()
        state.restored_at = state.log.size
        return cls(state)

    def record(self, period: int, registers: Sequence[int], rng: RandomSource | None = None) -> bytes:
        """Spec 3.1: the next record (counter = records so far, boot = the current boot), kept in the
        meter's own view.  ``rng`` draws ECCSI's j (spec 3.3); Ed25519 draws nothing."""
        st = self.state
        record = encode_record(self._signing_key(period), st.meter, period, len(st.records), registers, st.boot, rng)
        st.records.append(record)
        st.log.append(record.to_bytes())
        return record.to_bytes()

    def receipt(self, data: bytes) -> TreeHead:
        """Spec 4.3: keep the utility's receipt if it covers exactly the meter's records so far."""
        head = decode_tree_head(data)
        verify_tree_head(head, self.state.utility_public, self.state.meter)
        if head.size > self.state.log.size or not hashing.compare_digest(head.root, self.state.log.root(head.size)):
            raise VerificationError("receipt: it does not cover the meter's records")
        self.state.receipts.append(head)
        return head

    def check(self, data: bytes) -> Finding:
        """Spec 5.2: check Y.  A bad signature, a proof that does not verify or a head smaller than
        the last checked one raise; otherwise the result says whether the utility's log is exactly
        the meter's records (and if not, the caller locates the difference, spec 6)."""
        m = _decode(data, _FEEDBACK, "feedback")
        if m[1] != VERSION or m[2] != "feedback":
            raise DecodeError("not a feedback message")
        head = decode_tree_head(m[3])
        st = self.state
        verify_tree_head(head, st.utility_public, st.meter)
        proof = _proof(m[5], "feedback")
        last = st.checked
        if last is None:
            if m[4] != 0 or proof:
                raise DecodeError("feedback: a meter that has checked no head asks from size 0, with an empty proof")
        else:
            if head.size < last.size:
                raise VerificationError(f"feedback: the log shrank from {last.size} to {head.size} records")
            if m[4] != last.size:
                raise DecodeError(f"feedback: the proof is from size {m[4]}, the meter last checked {last.size}")
            if last.size == head.size:
                if not hashing.compare_digest(head.root, last.root):
                    raise VerificationError("feedback: the utility rewrote history (same size, another root)")
            elif last.size > 0:
                merkle.verify_consistency(last.size, head.size, last.root, head.root, proof)
        st.checked = head
        own = st.log.size
        if head.size == own and (own == 0 or hashing.compare_digest(head.root, st.log.root(own))):
            return Finding(True, head.size)
        if head.size < own:
            common = head.size
            if common == 0 or hashing.compare_digest(head.root, st.log.root(common)):
                return Finding(False, head.size, common, st.records[common].period,
                               "the utility's log is missing the meter's later records")
        return Finding(False, head.size, None, None, "the roots differ: locate the first difference (spec 6)")

    def check_probe(self, data: bytes, head: TreeHead) -> bool:
        """Spec 6.1: verify a probe against ``head``; True if the utility's root at that size is the
        meter's own."""
        m = _decode(data, _PROBE, "probe")
        if m[1] != VERSION or m[2] != "probe":
            raise DecodeError("not a probe message")
        size, head_size, root = m[3], m[4], m[5]
        if head_size != head.size or not 0 < size <= head_size or len(root) != HASH_BYTES:
            raise DecodeError("probe: sizes do not fit the tree head")
        proof = _proof(m[6], "probe")
        if size == head_size:
            if not hashing.compare_digest(root, head.root):
                raise VerificationError("probe: the root at the head's size is not the head's root")
        else:
            merkle.verify_consistency(size, head_size, root, head.root, proof)
        return size <= self.state.log.size and hashing.compare_digest(root, self.state.log.root(size))

    def check_inclusion(self, data: bytes, head: TreeHead) -> Record:
        """Spec 7.1: the utility's record at an index, proved included under ``head``."""
        m = _decode(data, _INCLUSION, "inclusion")
        if m[1] != VERSION or m[2] != "inclusion":
            raise DecodeError("not an inclusion message")
        index, head_size = m[3], m[4]
        if head_size != head.size or not 0 <= index < head_size:
            raise DecodeError("inclusion: index or size does not fit the tree head")
        merkle.verify_inclusion(merkle.leaf_hash(m[5]), index, head_size, _proof(m[6], "inclusion"), head.root)
        return decode_record(m[5])


def locate(meter: Meter, utility: Utility, head: TreeHead) -> Finding:
    """Spec 6.2: bisect over sizes with probes to the first index where the logs differ.

    The invariant: the roots agree at ``good`` (0 means nothing checked) and differ at ``bad``.
    Each probe is one consistency proof (O(log n) hashes); there are O(log n) probes.
    """
    own = meter.state.log.size
    good, bad = 0, head.size
    if head.size <= own and meter.check_probe(utility.probe(meter.state.meter, head.size, head.size), head):
        return Finding(True, head.size) if head.size == own else \
            Finding(False, head.size, head.size, meter.state.records[head.size].period,
                    "the utility's log is missing the meter's later records")
    while bad - good > 1:
        middle = (good + bad) // 2
        if meter.check_probe(utility.probe(meter.state.meter, middle, head.size), head):
            good = middle
        else:
            bad = middle
    index = bad - 1
    period = meter.state.records[index].period if index < own else None
    reason = "the record differs" if index < own else "the utility holds a record the meter never made"
    return Finding(False, head.size, index, period, reason)


# ---------------------------------------------------------------------------
# Spec 9: restore from a backup and resync
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Resync:
    """Spec 9.2: the outcome: records adopted from the utility's log, and the records signed since
    the restore, re-signed after it (to send to the utility, in order); ``superseded``: those not
    re-signed because the utility's log already covers their period."""

    head: TreeHead
    adopted: int
    resigned: tuple[bytes, ...]
    superseded: int


def resync(meter: Meter, utility: Utility, now: int, rng: RandomSource | None = None) -> Resync:
    """Spec 9.2: bring a restored meter's view up to the utility's log.

    1. Y from the size of the last head the meter checked (in the backup): the head's signature,
       no shrinking, the consistency proof (:meth:`Meter.check`, ``VerificationError``).
    2. The utility's log must extend the restored records: the root at min(restored size, head
       size), proved against the head by a probe, is the meter's own (``VerificationError``).
    3. Every record the meter lacks, index restored size .. head size - 1, by an inclusion proof
       against the head; each MUST carry the meter's own signature and id, the counter of its
       index, a later period, no register going back and no boot after the current boot
       (``VerificationError``).  The meter adopts them and keeps the head as a receipt.
    4. The records signed since the restore: if the utility's log reaches past the restored size
       they collide; each whose period is after the log's last is signed again with the next
       counter, the others are superseded.
    """
    st = meter.state
    if st.restored_at is None:
        raise StateError("the meter was not restored from a backup: nothing to resync")
    checked = st.checked
    try:
        return _resync(meter, utility, now, rng)
    except UsappError:
        st.checked = checked                                               # a failed resync changes nothing
        raise


def _resync(meter: Meter, utility: Utility, now: int, rng: RandomSource | None) -> Resync:
    st = meter.state
    base = st.restored_at
    if base is None:
        raise StateError("resync: the meter was not restored from a backup")
    since = st.checked.size if st.checked else 0
    meter.check(utility.feedback(st.meter, since, now))                    # step 1
    head = st.checked
    if head is None:
        raise StateError("resync: the meter checked no tree head")
    common = min(base, head.size)
    if common and not meter.check_probe(utility.probe(st.meter, common, head.size), head):  # step 2
        raise VerificationError(f"resync: the utility's log does not extend the meter's first {common} records")
    later = st.records[base:]
    if head.size <= base:                                                  # nothing to adopt, no collision
        st.restored_at = None
        return Resync(head, 0, (), 0)
    kept = st.records[:base]
    adopted = []
    previous = kept[-1] if kept else None
    for index in range(base, head.size):                                  # step 3
        record = meter.check_inclusion(utility.inclusion(st.meter, index, head.size), head)
        verify_record(record, meter.verification_key)
        if record.meter != st.meter or record.counter != index or record.boot > st.boot:
            raise VerificationError(f"resync: the utility's record {index} is not the meter's record {index}")
        if previous is not None and (record.period <= previous.period or record.boot < previous.boot or any(
                r < q for r, q in zip(record.registers, previous.registers))):
            raise VerificationError(f"resync: the utility's record {index} goes back in period, boot or registers")
        adopted.append(record)
        previous = record
    st.records = kept + adopted
    st.log = merkle.MerkleLog()
    for record in st.records:
        st.log.append(record.to_bytes())
    st.receipts.append(head)
    st.restored_at = None
    resigned, superseded = [], 0
    for record in later:                                                   # step 4
        if previous is not None and record.period <= previous.period:
            superseded += 1
            continue
        resigned.append(meter.record(record.period, record.registers, rng))
    return Resync(head, len(adopted), tuple(resigned), superseded)


# ---------------------------------------------------------------------------
# Spec 8: disputes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Spec 8.2: who altered the log, and at which index and period (None: no dispute); ``kind``
    names the rule: "agree", "forged", "out-of-order", "rewritten", "meter-gap", "double-signed",
    "lost-state", "omitted" or "unacknowledged"."""

    party: str | None
    index: int | None
    period: int | None
    reason: str
    kind: str = ""


def arbitrate(meter_public: MeterKey, utility_public: bytes, meter: bytes, meter_records: Sequence[bytes],
              meter_receipts: Sequence[bytes], utility_head: bytes, utility_records: Sequence[bytes]) -> Verdict:
    """Spec 8.2: decide a dispute from both sides' evidence.

    The meter brings its records and the receipts (utility-signed tree heads) it got for them; the
    utility brings its current signed tree head and the records of its log.  Every record either
    side brings must carry the meter's signature, except that a record in the utility's log that
    does not is the utility's doing.  The rules, in order:

    1. the utility's records must hash to its signed head (else its evidence is void:
       ``VerificationError``), and the meter's records must all be meter-signed (likewise);
    2. a record in the utility's log without the meter's valid signature, out of counter order or
       with a boot below the record before it: the utility altered, inserted or reordered it;
    3. a receipt that is not a prefix of the utility's current log: the utility rewrote history,
       at the first index where its log and the meter's records (which the receipt covers) part;
    4. the meter's records must run 0, 1, 2 ... by counter, boots never going back (else the meter
       dropped or reordered a record); then the first index where the two sides' records differ:
       both are meter-signed and no receipt covers the meter's version.  If the meter's version is
       from a later boot and for a period after every period the utility holds from earlier
       boots, the meter signed it in a later life, after a restore from a backup (spec 9): lost
       state, no party is at fault and the utility's accepted records stand.  Otherwise the meter
       signed two records for one counter: the meter altered it.  A record in the utility's log
       past the meter's last is one the meter signed and now omits: the meter dropped it;
    5. records the meter holds past the utility's log, with no receipt: no one provably altered
       anything (the utility never acknowledged them).
    """
    utility_records = _evidence(utility_records, "the utility's records")
    meter_records = _evidence(meter_records, "the meter's records")
    meter_receipts = _evidence(meter_receipts, "the meter's receipts")
    keys = ((utility_public, "the utility's key"),) if isinstance(meter_public, EccsiRecordKey) else \
        ((meter_public, "the meter's key"), (utility_public, "the utility's key"))
    for key, what in keys:
        if not isinstance(key, bytes) or len(key) != 32:
            raise ParameterError(f"{what} must be a 32-byte Ed25519 public key")
    if not isinstance(meter, bytes) or not 1 <= len(meter) <= LIMITS.meter_bytes:
        raise ParameterError(f"the meter id must be 1 to {LIMITS.meter_bytes} bytes")
    if isinstance(meter_public, EccsiRecordKey) and meter_public.meter != meter:
        raise ParameterError("the ECCSI record key is for another meter id")
    head = decode_tree_head(utility_head)
    verify_tree_head(head, utility_public, meter)
    theirs = merkle.MerkleLog()
    utility = []
    for data in utility_records:
        utility.append(decode_record(data))
        theirs.append(data)
    if theirs.size != head.size or (theirs.size and not hashing.compare_digest(theirs.root(theirs.size), head.root)):
        raise VerificationError("the utility's records do not hash to its signed tree head")
    ours = merkle.MerkleLog()
    mine = []
    for data in meter_records:
        record = decode_record(data)
        verify_record(record, meter_public)          # the meter's evidence must be its own
        ours.append(data)
        mine.append(record)
    for index, record in enumerate(utility):         # rule 2
        try:
            verify_record(record, meter_public)
        except VerificationError:
            return Verdict("utility", index, record.period, "a record in the utility's log is not signed by the meter",
                           "forged")
        if record.counter != index or record.meter != meter or (index and record.boot < utility[index - 1].boot):
            return Verdict("utility", index, record.period, "the utility's log holds a record out of order",
                           "out-of-order")
    first = _first_difference(mine, utility)
    for data in meter_receipts:                      # rule 3
        receipt = decode_tree_head(data)
        verify_tree_head(receipt, utility_public, meter)
        if receipt.size <= theirs.size and hashing.compare_digest(theirs.root(receipt.size), receipt.root):
            continue
        covers_meter = receipt.size <= ours.size and hashing.compare_digest(ours.root(receipt.size), receipt.root)
        at = first if covers_meter else None
        period = mine[first].period if covers_meter and first is not None and first < len(mine) else None
        return Verdict("utility", at, period, "a tree head the utility signed is not a prefix of its log",
                       "rewritten")
    for index, record in enumerate(mine):
        if record.counter != index or record.meter != meter or (index and record.boot < mine[index - 1].boot):
            return Verdict("meter", index, record.period, "the meter's records skip or reorder a counter",
                           "meter-gap")
    if first is None:
        return Verdict(None, None, None, "the logs agree", "agree")
    if first < len(mine) and first < len(utility):   # rule 4
        if _lost_state(mine[first], utility):
            return Verdict(None, first, mine[first].period,
                           f"lost state: the meter signed counter {first} in boot {utility[first].boot} and again "
                           f"in boot {mine[first].boot}, after a restore from a backup; the utility's accepted "
                           "records stand and the meter resyncs (spec 9)", "lost-state")
        return Verdict("meter", first, mine[first].period,
                       "the meter signed two different records for one counter in one boot; no receipt covers "
                       "its version", "double-signed")
    if first < len(utility):
        return Verdict("meter", first, utility[first].period, "the meter's records omit a record it signed",
                       "omitted")
    return Verdict(None, first, mine[first].period,      # rule 5
                   "the utility's log ends before the meter's records, which it never acknowledged",
                   "unacknowledged")


def _lost_state(mine: Record, utility: Sequence[Record]) -> bool:
    """Spec 8.2 rule 4: the meter's colliding record is from a later boot than the utility's at that
    index, and for a period after every period the utility holds from the earlier boots: what a
    meter restored from a backup signs, and not a re-signed reading of a period already billed."""
    theirs = utility[mine.counter]
    return mine.boot > theirs.boot and all(mine.period > r.period for r in utility if r.boot < mine.boot)


def _first_difference(a: Sequence[Record], b: Sequence[Record]) -> int | None:
    for index, (x, y) in enumerate(zip(a, b)):
        if not hashing.compare_digest(x.to_bytes(), y.to_bytes()):
            return index
    return None if len(a) == len(b) else min(len(a), len(b))
