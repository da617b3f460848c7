"""Spec 6-8: the eight messages of a round -- CBOR layouts, limits, MACs and decoders.

Every decoder bounds the input before it decodes (``MAX_MESSAGE_BYTES``),
checks keys, types, the version and the round's range, and raises the
typed errors of ``protocols.errors``; the role modules add the checks
that need their state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gmpy2 import mpz

from protocols.aggregation.hood import Neighbourhood
from protocols.aggregation.schedule import CONFIRM_BYTES, MAC_BYTES, MAX_ROUND, VERSION, mac
from protocols import limits
from protocols.errors import (
    DecodeError,
    DuplicateContributionError,
    InjectedContributionError,
    InvalidCiphertextError,
    ParameterError,
    ReplayError,
    StateError,
    VerificationError,
)
from protocols.primitives import cbor
from protocols.primitives import hashing
from protocols.schemes.paillier import Ciphertext, PublicKey

LIMITS = limits.AGGREGATION
MAX_MESSAGE_BYTES = LIMITS.max_message_bytes
"""Largest message any decoder accepts (32 MiB: a root aggregate-report of MAX_METERS meters at degree 64
with 11-character ids is about 17 MiB); :func:`size_limit` gives each kind its own, smaller bound."""

K_VERSION, K_ROUND, K_PARTY = 1, 2, 3

# key -> type of each message's CBOR map (spec 6-8); the MAC, where there is one, has the largest key
MASK_ADVERT = {1: int, 2: int, 3: str, 4: bytes, 5: bytes, 6: bytes}
MASK_BUNDLE = {1: int, 2: int, 3: str, 4: list, 5: bytes, 6: bytes, 7: bytes}
METER_REPORT = {1: int, 2: int, 3: str, 4: bytes, 5: bytes, 6: bytes}
AGGREGATE_REPORT = {1: int, 2: int, 3: str, 4: bytes, 5: list, 6: list, 7: bytes}
COMMIT_REQUEST = {1: int, 2: int, 3: str, 4: bytes, 5: bytes, 6: bytes}
COMMIT_SIGNATURE = {1: int, 2: int, 3: str, 4: bytes}
UNMASK_REQUEST = {1: int, 2: int, 3: str, 4: bytes, 5: bytes, 6: list, 7: bytes, 8: bytes, 9: bytes}
UNMASK_RESPONSE = {1: int, 2: int, 3: str, 4: bytes, 5: bytes}

MAC_HEAD = cbor.head(2, MAC_BYTES)


def check_round(round_id: object) -> int:
    if type(round_id) is not int or not 0 <= round_id <= MAX_ROUND:
        raise ParameterError("round must be an integer in [0, 2^64)")
    return round_id


def seal(body: dict, mac_key_: bytes, kind: bytes, mac_field: int) -> bytes:
    """The message with its MAC over the encoding of the other keys (spec 5.2).

    The MAC has the largest key, a one-byte key below 24, so the encoding
    is the body's with the map head counting one more entry and
    ``mac_field 58 20 MAC`` appended: the body is encoded once.
    """
    encoded = cbor.encode(body)
    count = len(body)
    if count < 23 and mac_field < 24 and all(type(k) is int and 0 <= k < mac_field for k in body):
        return seal_encoded(encoded, count, mac_key_, kind, mac_field)
    return cbor.encode({**body, mac_field: mac(mac_key_, kind, encoded)})


def seal_encoded(encoded: bytes, count: int, mac_key_: bytes, kind: bytes, mac_field: int) -> bytes:
    """:func:`seal` of a body already encoded: a map of ``count`` < 23 integer keys, all below
    ``mac_field`` < 24 (the caller guarantees both)."""
    tag = mac(mac_key_, kind, encoded)
    return b"".join((bytes((0xA0 | (count + 1),)), memoryview(encoded)[1:], bytes((mac_field,)), MAC_HEAD, tag))


def size_limit(hood: Neighbourhood, kind: str) -> int:
    """Spec 6.1: the largest encoding of each message a neighbourhood allows, checked before decoding.

    Every term bounds one field with its CBOR head: an id at most 66 bytes,
    a ciphertext len(n^2) + 3, per-neighbour items times the degree k, the
    bitmaps ceil(N/8) + 5, a signer 66 + 64 bytes; 128 bytes cover the rest.
    """
    ident, k, count = LIMITS.id_bytes, hood.degree, len(hood.meters)
    ct = hood.public_key.ciphertext_length() + 3
    bitmaps = 2 * (hood.bitmap_bytes + 5)
    kinds = {
        "mask-advert": ident + 35 + 80 * k + 3,
        "mask-bundle": ident + k * ident + 112 * k + 6,
        "meter-report": ident + ct + 16 * k + 3,
        "aggregate-report": ident + ct + count * (ident + 16 * k + 3) + 10,
        "commit-request": ident + bitmaps,
        "commit-signature": ident + 67,
        "unmask-request": ident + bitmaps + hood.committee_size * (ident + 64) + 10 + 16 * k + 3,
        "unmask-response": ident + 32 * k + 3,
    }
    if kind not in kinds:
        raise ParameterError(f"unknown message kind {kind!r}")
    return min(MAX_MESSAGE_BYTES, LIMITS.fixed_bytes + kinds[kind])


def decode(data: object, kind: str, limit: int = MAX_MESSAGE_BYTES) -> object:
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError(f"{kind}: expected bytes")
    if len(data) > limit:
        raise DecodeError(f"{kind}: {len(data)} bytes exceeds the limit of {limit}")
    return cbor.decode(bytes(data), max_size=limit)


def open_message(data: object, schema: dict, kind: str, hood: Neighbourhood) -> dict:
    """Decode (unless already decoded; bounded by the neighbourhood's limit for the kind) and check
    the map's keys, types, version and round."""
    if not isinstance(data, dict):
        data = decode(data, kind, size_limit(hood, kind))
    message = cbor.expect_map(data, schema, name=kind)
    if message[K_VERSION] != VERSION:
        raise DecodeError(f"{kind}: unknown version {message[K_VERSION]}")
    if not 0 <= message[K_ROUND] <= MAX_ROUND:
        raise DecodeError(f"{kind}: round out of range")
    return message


def check_mac(message: dict, mac_key_: bytes, kind: bytes, mac_field: int, who: str) -> None:
    body = {k: v for k, v in message.items() if k != mac_field}
    expected = mac(mac_key_, kind, cbor.encode(body))
    if len(message[mac_field]) != MAC_BYTES or not hashing.compare_digest(expected, message[mac_field]):
        raise VerificationError(f"{kind.decode()} from {who}: MAC does not verify")


def chunks(data: bytes, size: int, count: int, what: str) -> list[bytes]:
    """Spec 6.1: fixed-size items sent as one concatenated byte string."""
    if len(data) != size * count:
        raise DecodeError(f"{what}: expected {count} items of {size} bytes, got {len(data)} bytes")
    return [data[i:i + size] for i in range(0, len(data), size)]


def list_of(items: list, kind: type, what: str) -> list:
    if any(type(item) is not kind for item in items):
        raise DecodeError(f"{what}: every element must be {kind.__name__}")
    return items


def ordered_subset(whole: Sequence[str], part: Sequence[str]) -> bool:
    """``part`` lists distinct members of ``whole`` in ``whole``'s order."""
    it = iter(whole)
    return all(any(member == item for item in it) for member in part)


def check_round_of(message_round: int, expected: int, kind: str, sender: str) -> None:
    if message_round < expected:
        raise ReplayError(f"{kind} from {sender} is for round {message_round}, an earlier round than {expected}")
    if message_round != expected:
        raise StateError(f"{kind} from {sender} is for round {message_round}, not the current round {expected}")


def ciphertext(public_key: PublicKey, data: bytes, unit_check: bool) -> Ciphertext:
    """Spec 7.1 step 1: a ciphertext encoding; the coprimality check may be left to the product."""
    if unit_check:
        return Ciphertext.from_bytes(public_key, data)
    if len(data) != public_key.ciphertext_length():
        raise DecodeError(f"Paillier ciphertext must be {public_key.ciphertext_length()} bytes, got {len(data)}")
    c = mpz(int.from_bytes(data, "big"))
    if not 0 < c < public_key.nsquare:
        raise InvalidCiphertextError("ciphertext out of range: need 0 < c < n^2")
    return Ciphertext._trusted(public_key, c)


@dataclass(frozen=True)
class MeterReport:
    """Spec 6.4: the decoded meter-report (MAC not yet checked: only the utility can)."""

    round: int
    sender: str
    ciphertext: Ciphertext
    confirmations: bytes
    """One 16-byte confirmation per neighbour the sender masked with, in its bundle order (spec 6.4)."""
    fields: dict = field(repr=False)

    @classmethod
    def decode(cls, data: object, hood: Neighbourhood, *, unit_check: bool = True) -> MeterReport:
        m = open_message(data, METER_REPORT, "meter-report", hood)
        sender = m[3]
        if sender not in hood.meter_public:
            raise InjectedContributionError(f"meter-report from {sender!r}, which is not a meter of this neighbourhood")
        check_confirmations(m[5], hood, sender)
        if len(m[6]) != MAC_BYTES:
            raise DecodeError(f"meter-report from {sender}: MAC must be {MAC_BYTES} bytes")
        return cls(m[2], sender, ciphertext(hood.public_key, m[4], unit_check), m[5], m)

    @property
    def covered(self) -> tuple[str, ...]:
        return (self.sender,)

    @property
    def confirmation_list(self) -> tuple[bytes, ...]:
        return (self.confirmations,)


@dataclass(frozen=True)
class AggregateReport:
    """Spec 7.2: the decoded aggregate-report."""

    round: int
    sender: str
    ciphertext: Ciphertext
    covered: tuple[str, ...]
    confirmation_list: tuple[bytes, ...]
    """Each covered meter's confirmations, in the order of ``covered``."""
    fields: dict = field(repr=False)

    @classmethod
    def decode(cls, data: object, hood: Neighbourhood, *, unit_check: bool = True) -> AggregateReport:
        m = open_message(data, AGGREGATE_REPORT, "aggregate-report", hood)
        sender = m[3]
        if sender not in hood.tree:
            raise InjectedContributionError(f"aggregate-report from {sender!r}, which is not an aggregator")
        covered = tuple(list_of(m[5], str, "aggregate-report covered"))
        check_covered(covered, hood, sender)
        confirmations = tuple(list_of(m[6], bytes, "aggregate-report confirmations"))
        if len(confirmations) != len(covered):
            raise DecodeError(f"aggregate-report from {sender}: one confirmation string per covered meter")
        for meter, value in zip(covered, confirmations):
            check_confirmations(value, hood, meter)
        if len(m[7]) != MAC_BYTES:
            raise DecodeError(f"aggregate-report from {sender}: MAC must be {MAC_BYTES} bytes")
        return cls(m[2], sender, ciphertext(hood.public_key, m[4], unit_check), covered, confirmations, m)


def check_confirmations(value: bytes, hood: Neighbourhood, meter: str) -> None:
    """Spec 6.4: whole 16-byte confirmations, at most one per neighbour of the meter."""
    if len(value) % CONFIRM_BYTES or len(value) > CONFIRM_BYTES * len(hood.neighbours(meter)):
        raise DecodeError(f"confirmations of meter {meter}: need whole {CONFIRM_BYTES}-byte items, "
                          f"at most one per neighbour")


def check_covered(covered: Sequence[str], hood: Neighbourhood, sender: str) -> None:
    """Spec 7.2: covered meters are known, in directory order, each once."""
    seen: set[str] = set()
    last = -1
    for meter in covered:
        if meter not in hood.meter_public:
            raise InjectedContributionError(f"{sender} claims a contribution of unknown meter {meter!r}")
        if meter in seen:
            raise DuplicateContributionError(f"{sender} counts meter {meter} twice")
        seen.add(meter)
        position = hood.index(meter)
        if position < last:
            raise DecodeError(f"aggregate-report from {sender}: covered meters out of order")
        last = position


def decode_child(raw: bytes, hood: Neighbourhood) -> MeterReport | AggregateReport:
    """A child's report: an aggregate-report has 7 keys, a meter-report 6 (spec 7.1 step 1)."""
    if isinstance(raw, (bytes, bytearray)) and raw[:1] != b"\xa7":  # not a 7-key map: a meter-report's limit
        limit = size_limit(hood, "meter-report")
        if len(raw) > limit:
            raise DecodeError(f"report: {len(raw)} bytes exceeds the limit of {limit} for a meter-report")
    message = decode(raw, "report", size_limit(hood, "aggregate-report"))
    if isinstance(message, dict) and len(message) == len(AGGREGATE_REPORT):
        return AggregateReport.decode(message, hood, unit_check=False)
    return MeterReport.decode(message, hood, unit_check=False)
