"""Limits as data (issue 16 item 1): every maximum size and range of the protocols' wire messages.

One place for the bounds that each protocol's spec states in its message-format section (CDDL
``.size`` / ``.le`` on the message and on its variable-length fields).  The protocol modules read
their limits from here and check a message's size against the limit of its kind *before* any
decoding, so a hostile input costs at most its own length in memory before it is refused with a
:class:`~protocols.errors.DecodeError`.

Every per-kind message bound is "the largest value of each variable-length field plus a margin for
the fixed fields": the margin is stated next to the constant, and it is always at least the exact
sum of the fixed fields' largest encodings (map head, keys, CBOR heads, integers of 9 bytes), so no
message the spec allows is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

__all__ = [
    "AGGREGATION",
    "ESCROW",
    "GROUPKEYS",
    "INTEGRITY",
    "ISSUANCE",
    "AggregationLimits",
    "EscrowLimits",
    "GroupKeysLimits",
    "IntegrityLimits",
    "IssuanceLimits",
    "UINT32_MAX",
    "UINT64_MAX",
]

UINT32_MAX = (1 << 32) - 1
"""Largest epoch / boot counter (``uint .le 4294967295``)."""
UINT64_MAX = (1 << 64) - 1
"""Largest sequence number, time or round (``uint .le 18446744073709551615``)."""

FIXED_FIELDS_MARGIN = 512
"""Bytes allowed for the fixed-size fields of a message besides its variable-length ones (every
message below needs at most 400: map head, keys, a group or meter id of at most 128 bytes with its
head, integers of at most 9 bytes with their key, a 64-byte signature with its head)."""


def _kinds(table: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(table))


@dataclass(frozen=True)
class GroupKeysLimits:
    """specs/groupkeys.md section 4.1 ("Limits") and 4.2-4.6 (CDDL)."""

    group_bytes: int = 64
    """``group = bstr .size (1..64)`` (spec 4.1)."""
    member_bytes: int = 128
    """``member = bstr .size (1..128)`` (spec 4.1)."""
    max_epoch: int = UINT32_MAX
    max_seq: int = UINT64_MAX
    max_time: int = UINT64_MAX
    """Times are unsigned seconds since 1970-01-01T00:00:00Z (spec 4.1)."""
    data_bytes: int = 1 << 16
    """Largest group-data plaintext; the ciphertext adds a 16-byte tag (spec 4.4: ``.size (16..65552)``)."""
    resync_ct_bytes: int = 1 << 16
    """Largest sealed path of a resync (spec 4.3)."""
    max_targets: int = 1 << 20
    """Most targets of a disconnect / reconnect command (spec 4.5)."""
    max_lifetime: int = 7 * 24 * 3600
    """Spec 8.4: a meter refuses an operator-signed message whose not-after lies further ahead of its clock."""
    max_message_bytes: int = 1 << 26
    """64 MiB, the largest message of any kind (spec 4.1): a batch rekey of a million-member group with
    1% churn is about 3.5 MB, a full rekey of it about 70 MB (spec 5.5)."""
    authenticate_before_decode_bytes: int = 1 << 20
    """Spec 4.1: a message longer than 1 MiB (only a rekey or a command can be) is decoded only after
    its signature verifies over its raw bytes, so an unauthenticated sender never makes a receiver
    build more than 1 MiB of decoded objects."""
    message_bytes: Mapping[str, int] = field(default_factory=lambda: _kinds({
        "rekey": 1 << 26,
        "resync": (1 << 16) + FIXED_FIELDS_MARGIN,
        "data": (1 << 16) + 16 + FIXED_FIELDS_MARGIN,
        "command": 1 << 26,
        "checkpoint": FIXED_FIELDS_MARGIN,
    }))
    """Largest encoding of each kind (spec 4.1), checked before decoding."""


@dataclass(frozen=True)
class EscrowLimits:
    """specs/escrow.md section 4 (CDDL, "Limits")."""

    max_epoch: int = UINT32_MAX
    max_seq: int = UINT64_MAX
    max_time: int = UINT64_MAX
    payload_bytes: int = 1 << 14
    """Largest payload of an adp / cdp data message (spec 4.4, 4.5)."""
    hpke_ct_bytes: int = 4096
    """Largest HPKE ciphertext of an hfid-request / hfid-response (spec 4.2, 4.3)."""
    credential_bytes: int = 4096
    """Largest credential of an adp (spec 4.4)."""
    reason_bytes: int = 256
    """Largest reason (UTF-8) of a reid-request (spec 4.6)."""
    rsa_key_der_bytes: int = 2048
    """Largest SPKI DER of an epoch key (spec 4.7)."""
    serial_bytes: int = 64
    """Longest LFID serial (UTF-8 bytes) the escrow serves: X.520's ub-serial-number (spec 5.2 step 4)."""
    max_message_bytes: int = 1 << 16
    """64 KiB, the largest message of any kind; bounds the certificate chains of hfid-request and cdp."""
    message_bytes: Mapping[str, int] = field(default_factory=lambda: _kinds({
        "hfid-request": 1 << 16,
        "hfid-response": 4096 + FIXED_FIELDS_MARGIN,
        "adp": 4096 + (1 << 14) + FIXED_FIELDS_MARGIN,
        "cdp": 1 << 16,
        "reid-request": 256 + FIXED_FIELDS_MARGIN,
        "epoch-key": 2048 + FIXED_FIELDS_MARGIN,
    }))
    """Largest encoding of each kind (spec 4), checked before decoding."""


@dataclass(frozen=True)
class IntegrityLimits:
    """specs/integrity.md sections 3.1, 4.2, 5, 6.1, 7.1 (CDDL) and 8.2 (arbitration inputs)."""

    max_boot: int = UINT32_MAX
    max_uint64: int = UINT64_MAX
    max_registers: int = 16
    meter_bytes: int = 128
    """``bstr .size (1..128)``: a meter id."""
    max_proof: int = 64
    """A Merkle proof holds at most 64 hashes of 32 bytes (``[* bstr .size 32] .le 64``)."""
    record_bytes: int = 1024
    """Largest record (spec 3.1)."""
    tree_head_bytes: int = 1024
    """Largest signed tree head (spec 4.2): at most about 300 bytes with a 128-byte meter id."""
    proof_message_bytes: int = 1024 + 64 * 35 + FIXED_FIELDS_MARGIN
    """Largest feedback, probe or inclusion message: one tree head or record, a proof of 64 hashes
    (35 bytes each with their head) and the fixed fields (spec 5, 6.1, 7.1)."""
    max_log_records: int = 1 << 20
    """Most records one side may bring to arbitration (spec 8.2): a meter's log of one billing
    period of 15-minute readings is about 3,000 records; 2^20 is 30 years of them."""
    message_bytes: Mapping[str, int] = field(default_factory=lambda: _kinds({
        "record": 1024,
        "tree-head": 1024,
        "feedback": 1024 + 64 * 35 + FIXED_FIELDS_MARGIN,
        "probe": 1024 + 64 * 35 + FIXED_FIELDS_MARGIN,
        "inclusion": 1024 + 64 * 35 + FIXED_FIELDS_MARGIN,
    }))
    """Largest encoding of each kind, checked before decoding."""


@dataclass(frozen=True)
class IssuanceLimits:
    """specs/issuance.md section 4 (CDDL, "Limits")."""

    max_epoch: int = UINT32_MAX
    max_time: int = UINT64_MAX
    key_bytes: int = 4096
    """Largest extracted key a delivery carries (spec 4.4)."""
    identity_bytes: int = 128
    """Largest identity string (spec 3)."""
    max_pending: int = 16
    """Most enrollments a device keeps pending (spec 5)."""
    max_message_bytes: int = 1 << 15
    """32 KiB, the largest message of any kind; bounds the certificate chain of an enrollment."""
    message_bytes: Mapping[str, int] = field(default_factory=lambda: _kinds({
        "challenge": FIXED_FIELDS_MARGIN,
        "enrollment": 1 << 15,
        "key-delivery": 4096 + 16 + 128 + FIXED_FIELDS_MARGIN,
        "log entry": 128 + FIXED_FIELDS_MARGIN,
    }))
    """Largest encoding of each kind, checked before decoding."""


@dataclass(frozen=True)
class AggregationLimits:
    """specs/aggregation.md section 6.1 ("Limits"): the per-kind bounds depend on the neighbourhood and
    are computed by :func:`protocols.aggregation.messages.size_limit` from these terms."""

    max_meters: int = 1 << 16
    max_degree: int = 64
    max_committee: int = 255
    max_tree_depth: int = 64
    max_round: int = UINT64_MAX
    id_bytes: int = 66
    """An id (at most 64 characters) with its head and key."""
    fixed_bytes: int = 128
    """The fixed fields of every message (version, round, MAC or signature heads)."""
    max_message_bytes: int = 1 << 25
    """32 MiB: a root aggregate-report of MAX_METERS meters at degree 64 with 11-character ids is
    about 17 MiB; every kind has its own, smaller bound."""


GROUPKEYS = GroupKeysLimits()
ESCROW = EscrowLimits()
INTEGRITY = IntegrityLimits()
ISSUANCE = IssuanceLimits()
AGGREGATION = AggregationLimits()
