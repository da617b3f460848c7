"""Privacy-preserving aggregation over the aggregator tree (specs/aggregation.md).

Meters encrypt a blinded, tagged, packed vector of readings under the
utility's Paillier key; aggregators multiply ciphertexts up a tree of any
shape; the utility removes the blinding with the help of the reporting
meters and decrypts only the neighbourhood sum.

Spec sections and what implements them:

- 3   the neighbourhood and its mask graph ...... :class:`Neighbourhood`
- 4   the plaintext layout and the tag .......... :class:`Layout`, :func:`tag_alphas`, :func:`tag_beta`
- 5   key derivation, masks, share boxes ........ :func:`prf`, :func:`pairwise_secret`, :func:`pair_mask`
- 6   the meter's report ........................ :meth:`Meter.report`
- 7   aggregation ............................... :meth:`Aggregator.aggregate`
- 8   the utility: receipt and unmasking ........ :meth:`Utility.receive`, :meth:`Utility.unmask_requests`,
                                                  :meth:`Meter.unmask`, :meth:`Utility.finish`
- 9   audit: naming a faulty aggregator ......... :meth:`Utility.audit`
- 10  differential privacy of the release ....... ``Neighbourhood.noise``

The blinding is double masking in the manner of Bonawitz et al. (CCS 2017)
over a sparse neighbour graph (Bell et al., CCS 2020): pairwise masks that
cancel in the sum, plus a per-round self mask whose seed is Shamir-shared
among the meter's neighbours.  Every meter answers, per round and per
neighbour, either with a share of that neighbour's self-mask seed (if the
neighbour reported) or with their pairwise mask (if it did not), never both.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from gmpy2 import gcd, mpz

from protocols.errors import (
    AggregateMismatchError,
    DecodeError,
    DroppedContributionError,
    DuplicateContributionError,
    EncodingOverflowError,
    InjectedContributionError,
    InvalidCiphertextError,
    ParameterError,
    RecoveryError,
    ReplayError,
    StateError,
    VerificationError,
)
from protocols.primitives import cbor, shamir
from protocols.primitives.rand import RandomSource, random_below
from protocols.privacy import dp
from protocols.schemes.paillier import (
    Ciphertext,
    FastEncryptor,
    PrivateKey,
    PublicKey,
    RandomiserPool,
    product_mod,
)

VERSION = 1
DOMAIN = b"usapp-aggregation-v1"
TAG_PRIME = (1 << 127) - 1
"""q, the Mersenne prime 2^127 - 1: the field of the integrity tag (spec 4.2)."""
SHARE_BYTES = 32
BOX_BYTES = SHARE_BYTES + 16
MAC_BYTES = 32
KEY_BYTES = 32
MAX_ROUND = (1 << 64) - 1
MAX_MESSAGE_BYTES = 1 << 26
"""Largest message a decoder accepts (64 MiB: an aggregate of about 60,000 meters)."""
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

# CBOR map keys of the four messages (spec 6-8)
K_VERSION, K_ROUND, K_SENDER = 1, 2, 3


def _check_id(name: str, what: str) -> str:
    if not isinstance(name, str) or not _ID.fullmatch(name):
        raise ParameterError(f"{what} must be 1-64 characters of [A-Za-z0-9._:-], starting alphanumeric")
    return name


def _check_round(round_id: int) -> int:
    if type(round_id) is not int or not 0 <= round_id <= MAX_ROUND:
        raise ParameterError("round must be an integer in [0, 2^64)")
    return round_id


def _lp(data: bytes) -> bytes:
    """A length-prefixed byte string (one length byte; inputs are < 256 bytes)."""
    return bytes([len(data)]) + data


# ---------------------------------------------------------------------------
# Section 5: derivations
# ---------------------------------------------------------------------------


def prf(key: bytes, label: bytes, round_id: int, nbytes: int) -> bytes:
    """Spec 5.1: SHAKE256(DOMAIN || lp(label) || key || round as 8 bytes), nbytes long."""
    return hashlib.shake_256(DOMAIN + _lp(label) + key + round_id.to_bytes(8, "big")).digest(nbytes)


def prf_mod(key: bytes, label: bytes, round_id: int, modulus: int) -> int:
    """Spec 5.1: prf output of bits(modulus) + 128 bits, reduced mod modulus."""
    nbytes = (modulus.bit_length() + 128 + 7) // 8
    return int.from_bytes(prf(key, label, round_id, nbytes), "big") % modulus


def mac_key(meter_key: bytes, direction: bytes) -> bytes:
    """Spec 5.2: the MAC key of one direction (b"up" meter or aggregator to utility, b"down" back)."""
    return prf(meter_key, b"mac-" + direction, 0, KEY_BYTES)


def _mac(key: bytes, kind: bytes, body: bytes) -> bytes:
    return hmac.new(key, DOMAIN + _lp(kind) + body, hashlib.sha256).digest()


def pairwise_secret(group_id: bytes, own_id: str, own_private: bytes, peer_id: str, peer_public: bytes) -> bytes:
    """Spec 5.3: s_ij = SHA-256(DOMAIN || "pair" || group || lp(lo) || lp(hi) || X25519(sk_i, pk_j)).

    lo and hi are the two meter ids in byte order, so both ends derive the same s_ij.
    """
    try:
        shared = X25519PrivateKey.from_private_bytes(own_private).exchange(
            X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:  # wrong length or an all-zero (low-order) result
        raise ParameterError(f"X25519 with meter {peer_id}: {exc}") from None
    lo, hi = sorted((own_id.encode(), peer_id.encode()))
    return hashlib.sha256(DOMAIN + b"pair" + _lp(group_id) + _lp(lo) + _lp(hi) + shared).digest()


def pair_mask(secret: bytes, round_id: int, n: int) -> int:
    """Spec 5.4: m_ij(r) = prf_mod(s_ij, "mask", r, n)."""
    return prf_mod(secret, b"mask", round_id, n)


def self_mask(seed: int, round_id: int, n: int) -> int:
    """Spec 5.5: b_i(r) = prf_mod(seed as 32 bytes, "self", r, n)."""
    return prf_mod(seed.to_bytes(SHARE_BYTES, "big"), b"self", round_id, n)


def _box_cipher(secret: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(prf(secret, b"box", 0, KEY_BYTES))


def _box_nonce_aad(group_id: bytes, round_id: int, sender: str, recipient: str) -> tuple[bytes, bytes]:
    """Spec 5.6: nonce = round (8 bytes) || direction (4 bytes); aad binds group, round and both ids."""
    direction = 0 if sender.encode() < recipient.encode() else 1
    nonce = round_id.to_bytes(8, "big") + direction.to_bytes(4, "big")
    aad = DOMAIN + b"box" + _lp(group_id) + round_id.to_bytes(8, "big") + _lp(sender.encode()) + _lp(recipient.encode())
    return nonce, aad


def tag_alphas(tag_key: bytes, round_id: int, slots: int) -> list[int]:
    """Spec 4.2: alpha_s(r), s = 0..S-1, from one prf call of 32 bytes per slot."""
    stream = prf(tag_key, b"alpha", round_id, 32 * slots)
    return [int.from_bytes(stream[32 * s:32 * s + 32], "big") % TAG_PRIME for s in range(slots)]


def tag_beta(meter_key: bytes, round_id: int) -> int:
    """Spec 4.2: beta_i(r) = prf_mod(K_i, "beta", r, q)."""
    return prf_mod(meter_key, b"beta", round_id, TAG_PRIME)


# ---------------------------------------------------------------------------
# Section 4: plaintext layout
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Spec 4.1: S signed value slots of w bits, then an unsigned tag field.

    The sum of ``summands`` values in [-bound, bound] fits a slot; the sum of
    their tags (each < q) fits the tag field; the whole packed sum has
    absolute value below n / 2, so it is recovered exactly from its residue.
    """

    slots: int
    value_bits: int
    noise_bound: int
    summands: int
    modulus_bits: int

    def __post_init__(self) -> None:
        for name in ("slots", "value_bits", "summands", "modulus_bits"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ParameterError(f"layout {name} must be a positive integer")
        if type(self.noise_bound) is not int or self.noise_bound < 0:
            raise ParameterError("layout noise_bound must be a non-negative integer")
        if self.total_bits > self.modulus_bits - 2:
            raise ParameterError(
                f"layout needs {self.total_bits} bits but the key allows {self.modulus_bits - 2}: "
                f"use at most {self.max_slots(self.value_bits, self.noise_bound, self.summands, self.modulus_bits)} slots"
            )

    @property
    def bound(self) -> int:
        """Largest absolute value one meter puts in a slot: reading plus noise share."""
        return (1 << self.value_bits) - 1 + self.noise_bound

    @property
    def slot_bits(self) -> int:
        return (self.summands * self.bound).bit_length() + 1

    @property
    def tag_bits(self) -> int:
        return (self.summands * (TAG_PRIME - 1)).bit_length()

    @property
    def total_bits(self) -> int:
        return self.slots * self.slot_bits + self.tag_bits

    @staticmethod
    def max_slots(value_bits: int, noise_bound: int, summands: int, modulus_bits: int) -> int:
        probe = Layout.__new__(Layout)
        object.__setattr__(probe, "value_bits", value_bits)
        object.__setattr__(probe, "noise_bound", noise_bound)
        object.__setattr__(probe, "summands", summands)
        return max(0, (modulus_bits - 2 - probe.tag_bits) // probe.slot_bits)

    def pack(self, values: Sequence[int], tag: int) -> int:
        """Spec 4.1: sum of v_s * 2^(s w) + tag * 2^(S w); values may be negative."""
        w = self.slot_bits
        packed = tag << (self.slots * w)
        for s, value in enumerate(values):
            packed += value << (s * w)
        return packed

    def unpack(self, residue: int, n: int) -> tuple[list[int], int]:
        """Spec 4.3: the slot sums and the tag sum from the decrypted residue mod n."""
        total = int(residue)
        if total > n // 2:
            total -= n
        w = self.slot_bits
        half, full = 1 << (w - 1), 1 << w
        values = []
        for _ in range(self.slots):
            v = total & (full - 1)
            if v >= half:
                v -= full
            values.append(v)
            total = (total - v) >> w
        if not 0 <= total < (1 << self.tag_bits):
            raise AggregateMismatchError("the decrypted sum overflows the tag field")
        return values, total


# ---------------------------------------------------------------------------
# Section 3: the neighbourhood
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Neighbourhood:
    """The public description of one aggregation group (spec 3).

    ``tree`` maps each aggregator to its children (meters or aggregators);
    ``root`` is the aggregator that reports to the utility.  ``meter_public``
    holds each meter's X25519 public key, as the utility distributes it.
    ``noise`` is a :class:`protocols.privacy.dp.NoiseShareConfig` or None.
    ``threshold`` defaults to half the effective degree, rounded up (spec 3.2).
    """

    group_id: bytes
    public_key: PublicKey
    meter_public: Mapping[str, bytes]
    tree: Mapping[str, tuple[str, ...]]
    root: str
    slots: int = 1
    value_bits: int = 32
    degree: int = 8
    threshold: int | None = None
    noise: object = None
    meters: tuple[str, ...] = field(init=False)
    layout: Layout = field(init=False)
    _position: dict = field(init=False, repr=False)
    _parent: dict = field(init=False, repr=False)
    _neighbours: dict = field(init=False, repr=False)
    _meter_by_text: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.group_id, bytes) or not 1 <= len(self.group_id) <= 64:
            raise ParameterError("group_id must be 1 to 64 bytes")
        if not isinstance(self.public_key, PublicKey):
            raise ParameterError("public_key must be a Paillier PublicKey")
        for meter, key in self.meter_public.items():
            _check_id(meter, "meter id")
            if not isinstance(key, bytes) or len(key) != 32:
                raise ParameterError(f"meter {meter}: X25519 public key must be 32 bytes")
        if len(self.meter_public) < 2:
            raise ParameterError("a neighbourhood needs at least two meters")
        order = sorted(self.meter_public, key=lambda m: hashlib.sha256(self.group_id + m.encode()).digest())
        meters = tuple(order)
        if type(self.degree) is not int or self.degree < 2 or self.degree % 2:
            raise ParameterError("degree must be an even integer >= 2")
        k = min(self.degree, len(meters) - 1)
        if self.threshold is None:
            object.__setattr__(self, "threshold", (k + 1) // 2)
        if type(self.threshold) is not int or not 1 <= self.threshold <= k:
            raise ParameterError(f"threshold must be between 1 and the effective degree {k}")
        object.__setattr__(self, "meters", meters)
        object.__setattr__(self, "_position", {m: i for i, m in enumerate(meters)})
        object.__setattr__(self, "_parent", self._check_tree(meters))
        object.__setattr__(self, "_neighbours", {m: self._graph(i) for i, m in enumerate(meters)})
        # each meter id by its CBOR text-string encoding, for the aggregator's fast reader
        object.__setattr__(self, "_meter_by_text", {cbor.encode(m): m for m in meters})
        noise_bound = 0
        if self.noise is not None:
            if not isinstance(self.noise, dp.NoiseShareConfig):
                raise ParameterError("noise must be a NoiseShareConfig or None")
            if self.noise.participants != len(meters):
                raise ParameterError(f"the noise configuration is for {self.noise.participants} participants, "
                                     f"the neighbourhood has {len(meters)} meters")
            if self.noise.sensitivity < (1 << self.value_bits) - 1:
                raise ParameterError("the noise sensitivity must cover the largest reading, 2^value_bits - 1")
            noise_bound = dp.clamp_bound(self.noise)
        object.__setattr__(self, "layout", Layout(self.slots, self.value_bits, noise_bound,
                                                  len(meters), self.public_key.bits))

    def _check_tree(self, meters: tuple[str, ...]) -> dict:
        _check_id(self.root, "root aggregator id")
        if self.root not in self.tree:
            raise ParameterError("the root must be an aggregator of the tree")
        parent: dict[str, str] = {}
        for node, children in self.tree.items():
            _check_id(node, "aggregator id")
            if node in self.meter_public:
                raise ParameterError(f"{node} is both a meter and an aggregator")
            if not children:
                raise ParameterError(f"aggregator {node} has no children")
            for child in children:
                if child in parent:
                    raise ParameterError(f"{child} has two parents")
                if child not in self.tree and child not in self.meter_public:
                    raise ParameterError(f"{child} is neither a meter nor an aggregator")
                parent[child] = node
        if self.root in parent:
            raise ParameterError("the root has a parent")
        reached, stack = set(), [self.root]
        while stack:
            node = stack.pop()
            reached.add(node)
            stack.extend(self.tree.get(node, ()))
        if reached != set(self.tree) | set(meters):
            raise ParameterError("every meter and aggregator must hang below the root exactly once")
        return parent

    def _graph(self, i: int) -> tuple[str, ...]:
        """Spec 3.2: a circulant graph, k/2 neighbours on each side in the ordering."""
        count = len(self.meters)
        if count - 1 <= self.degree:
            return tuple(m for j, m in enumerate(self.meters) if j != i)
        half = self.degree // 2
        offsets = [d for step in range(1, half + 1) for d in (-step, step)]
        return tuple(self.meters[(i + d) % count] for d in offsets)

    def neighbours(self, meter: str) -> tuple[str, ...]:
        if meter not in self._neighbours:
            raise ParameterError(f"{meter} is not a meter of this neighbourhood")
        return self._neighbours[meter]

    def position(self, meter: str) -> int:
        return self._position[meter]

    def sign(self, meter: str, peer: str) -> int:
        """Spec 5.4: +1 if meter precedes peer in the ordering, else -1."""
        return 1 if self._position[meter] < self._position[peer] else -1

    def children(self, aggregator: str) -> tuple[str, ...]:
        return tuple(self.tree[aggregator])

    def parent(self, node: str) -> str | None:
        return self._parent.get(node)

    def meters_below(self, node: str) -> set[str]:
        if node in self.meter_public:
            return {node}
        below: set[str] = set()
        for child in self.tree[node]:
            below |= self.meters_below(child)
        return below

    @property
    def max_missing(self) -> int:
        """Spec 8.5: any set of this many missing meters is always recoverable."""
        return min(self.degree, len(self.meters) - 1) - self.threshold


# ---------------------------------------------------------------------------
# Messages (spec 6-8): encoding and decoding
# ---------------------------------------------------------------------------

_METER_REPORT = {1: int, 2: int, 3: str, 4: bytes, 5: bytes, 6: bytes}
_AGGREGATE_REPORT = {1: int, 2: int, 3: str, 4: bytes, 5: list, 6: list, 7: bytes}
_UNMASK_REQUEST = {1: int, 2: int, 3: str, 4: list, 5: list, 6: bytes, 7: bytes}
_UNMASK_RESPONSE = {1: int, 2: int, 3: str, 4: bytes, 5: bytes, 6: bytes}
_MAC_HEAD = cbor.head(2, MAC_BYTES)


def _mpz_from_bytes_of_int(data: bytes, byteorder: str) -> mpz:
    return mpz(int.from_bytes(data, byteorder))


_MPZ_FROM_BYTES = getattr(mpz, "from_bytes", _mpz_from_bytes_of_int)
"""gmpy2 2.2 and later read bytes into an mpz directly; 2.1.5, which the project allows, cannot."""
_MAC_KEY_HEAD = bytes((6,)) + _MAC_HEAD
"""Key 6 and the head of the 32-byte MAC that ends a meter-report."""


def _seal(body: dict, mac_key_: bytes, kind: bytes, mac_field: int) -> bytes:
    """The message with its MAC over the encoding of the other keys (spec 5.2).

    In every message the MAC has the largest key, a one-byte key below 24, so
    its deterministic encoding is the body's with the map head counting one
    more entry and ``mac_field 58 20 MAC`` appended: the body is encoded once.
    Any other body takes the general path (encode with the MAC, from scratch).
    """
    body = dict(body)
    encoded = cbor.encode(body)
    mac = _mac(mac_key_, kind, encoded)
    count = len(body)
    if (count < 23 and mac_field < 24 and len(mac) == MAC_BYTES
            and all(type(key) is int and 0 <= key < mac_field for key in body)):
        return b"".join((bytes((0xA0 | (count + 1),)), memoryview(encoded)[1:],
                         bytes((mac_field,)), _MAC_HEAD, mac))
    body[mac_field] = mac
    return cbor.encode(body)


def _decode(data: bytes, kind: str) -> object:
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError(f"{kind}: expected bytes")
    return cbor.decode(bytes(data), max_size=MAX_MESSAGE_BYTES)


def _open(data: bytes | dict, schema: dict, kind: str) -> dict:
    """Decode (unless already decoded) and check the map's keys, types, version and round."""
    message = cbor.expect_map(data if isinstance(data, dict) else _decode(data, kind), schema, name=kind)
    if message[K_VERSION] != VERSION:
        raise DecodeError(f"{kind}: unknown version {message[K_VERSION]}")
    if not 0 <= message[K_ROUND] <= MAX_ROUND:
        raise DecodeError(f"{kind}: round out of range")
    return message


def _check_mac(message: dict, mac_key_: bytes, kind: bytes, mac_field: int, who: str) -> None:
    body = {k: v for k, v in message.items() if k != mac_field}
    expected = _mac(mac_key_, kind, cbor.encode(body))
    if len(message[mac_field]) != MAC_BYTES or not hmac.compare_digest(expected, message[mac_field]):
        raise VerificationError(f"{kind.decode()} from {who}: MAC does not verify")


def _ciphertext(public_key: PublicKey, data: bytes, unit_check: bool) -> Ciphertext:
    """Spec 7.1 step 1: a ciphertext encoding; the coprimality check may be left to the product."""
    if unit_check:
        return Ciphertext.from_bytes(public_key, data)
    if len(data) != public_key.ciphertext_length():
        raise DecodeError(f"Paillier ciphertext must be {public_key.ciphertext_length()} bytes, got {len(data)}")
    c = mpz(int.from_bytes(data, "big"))
    if not 0 < c < public_key.nsquare:
        raise InvalidCiphertextError("ciphertext out of range: need 0 < c < n^2")
    return Ciphertext._trusted(public_key, c)


def _chunks(data: bytes, size: int, count: int, what: str) -> list[bytes]:
    """Spec 6.3: fixed-size items sent as one concatenated byte string."""
    if len(data) != size * count:
        raise DecodeError(f"{what}: expected {count} items of {size} bytes, got {len(data)} bytes")
    return [data[i:i + size] for i in range(0, len(data), size)]


def _list_of(items: list, kind: type, what: str) -> list:
    if any(type(item) is not kind for item in items):
        raise DecodeError(f"{what}: every element must be {kind.__name__}")
    return items


@dataclass(frozen=True)
class MeterReport:
    """Spec 6.3: the decoded meter-report (MAC not yet checked: only the utility can)."""

    round: int
    sender: str
    ciphertext: Ciphertext
    boxes: bytes
    """The k' share boxes, concatenated in nbr(sender) order."""
    fields: dict = field(repr=False)

    @classmethod
    def decode(cls, data: bytes | dict, hood: Neighbourhood, *, unit_check: bool = True) -> MeterReport:
        m = _open(data, _METER_REPORT, "meter-report")
        sender = m[3]
        if sender not in hood.meter_public:
            raise InjectedContributionError(f"meter-report from {sender!r}, which is not a meter of this neighbourhood")
        if len(m[5]) != BOX_BYTES * len(hood.neighbours(sender)):
            raise DecodeError(f"meter-report from {sender}: needs one {BOX_BYTES}-byte box per neighbour")
        if len(m[6]) != MAC_BYTES:
            raise DecodeError(f"meter-report from {sender}: MAC must be {MAC_BYTES} bytes")
        return cls(m[2], sender, _ciphertext(hood.public_key, m[4], unit_check), m[5], m)


@dataclass(frozen=True)
class AggregateReport:
    """Spec 7.2: the decoded aggregate-report."""

    round: int
    sender: str
    ciphertext: Ciphertext
    covered: tuple[str, ...]
    boxes: tuple[bytes, ...]
    """Each covered meter's concatenated boxes, in the order of ``covered``."""
    fields: dict = field(repr=False)

    @classmethod
    def decode(cls, data: bytes | dict, hood: Neighbourhood, *, unit_check: bool = True) -> AggregateReport:
        m = _open(data, _AGGREGATE_REPORT, "aggregate-report")
        sender = m[3]
        if sender not in hood.tree:
            raise InjectedContributionError(f"aggregate-report from {sender!r}, which is not an aggregator")
        covered = tuple(_list_of(m[5], str, "aggregate-report covered"))
        boxes = _list_of(m[6], bytes, "aggregate-report boxes")
        if len(boxes) != len(covered):
            raise DecodeError(f"aggregate-report from {sender}: one box string per covered meter")
        _check_covered(covered, hood, sender)
        for meter, meter_boxes in zip(covered, boxes):
            if len(meter_boxes) != BOX_BYTES * len(hood.neighbours(meter)):
                raise DecodeError(f"aggregate-report from {sender}: wrong boxes for meter {meter}")
        if len(m[7]) != MAC_BYTES:
            raise DecodeError(f"aggregate-report from {sender}: MAC must be {MAC_BYTES} bytes")
        return cls(m[2], sender, _ciphertext(hood.public_key, m[4], unit_check), covered, tuple(boxes), m)


def _check_covered(covered: Sequence[str], hood: Neighbourhood, sender: str) -> None:
    """Spec 7.2: covered meters are known, in the neighbourhood order, each once."""
    seen: set[str] = set()
    last = -1
    for meter in covered:
        if meter not in hood.meter_public:
            raise InjectedContributionError(f"{sender} claims a contribution of unknown meter {meter!r}")
        if meter in seen:
            raise DuplicateContributionError(f"{sender} counts meter {meter} twice")
        seen.add(meter)
        position = hood.position(meter)
        if position < last:
            raise DecodeError(f"aggregate-report from {sender}: covered meters out of order")
        last = position


def _is_ordered_split(whole: Sequence[str], left: Sequence[str], right: Sequence[str]) -> bool:
    """Spec 8.3: ``left`` and ``right`` are disjoint subsequences of ``whole`` that cover it."""
    i = j = 0
    for item in whole:
        if i < len(left) and left[i] == item:
            i += 1
        elif j < len(right) and right[j] == item:
            j += 1
        else:
            return False
    return i == len(left) and j == len(right)


def _check_round_of(message_round: int, expected: int, kind: str, sender: str) -> None:
    if message_round < expected:
        raise ReplayError(f"{kind} from {sender} is for round {message_round}, an earlier round than {expected}")
    if message_round != expected:
        raise StateError(f"{kind} from {sender} is for round {message_round}, not the current round {expected}")


# ---------------------------------------------------------------------------
# Section 6: the meter
# ---------------------------------------------------------------------------


@dataclass
class MeterState:
    """What a meter stores between rounds (spec 6.1).

    ``key`` is shared with the utility; ``tag_key`` is the neighbourhood's
    tag key; ``x25519_private`` is the meter's pairwise-agreement key.
    """

    meter_id: str
    key: bytes = field(repr=False)
    tag_key: bytes = field(repr=False)
    x25519_private: bytes = field(repr=False)
    last_reported: int = -1
    last_unmasked: int = -1
    pairwise: dict = field(default_factory=dict, repr=False)


class Meter:
    """The meter role (spec 6 and 8.3)."""

    def __init__(self, hood: Neighbourhood, state: MeterState) -> None:
        hood.neighbours(state.meter_id)
        self.hood = hood
        self.state = state

    def _secret(self, peer: str) -> bytes:
        secret = self.state.pairwise.get(peer)
        if secret is None:
            secret = pairwise_secret(self.hood.group_id, self.state.meter_id, self.state.x25519_private,
                                     peer, self.hood.meter_public[peer])
            self.state.pairwise[peer] = secret
        return secret

    def _check_readings(self, readings: Sequence[int]) -> None:
        hood = self.hood
        if len(readings) != hood.slots:
            raise ParameterError(f"need {hood.slots} readings, got {len(readings)}")
        limit = 1 << hood.value_bits
        for s, value in enumerate(readings):
            if type(value) is not int or not 0 <= value < limit:
                raise EncodingOverflowError(f"reading {s} out of range: need an integer in [0, 2^{hood.value_bits})")

    def report(self, round_id: int, readings: Sequence[int], rng: RandomSource | None = None, *,
               encryptor: RandomiserPool | FastEncryptor | None = None) -> bytes:
        """Spec 6.2: blind, tag, pack, encrypt and MAC one round's readings."""
        hood, state = self.hood, self.state
        _check_round(round_id)
        if round_id <= state.last_reported:
            raise ReplayError(f"meter {state.meter_id} already reported round {state.last_reported}")
        self._check_readings(readings)
        values = list(readings)
        if hood.noise is not None:
            values = [v + dp.clamped_noise_share(hood.noise, rng) for v in values]
        n = hood.public_key.n
        alphas = tag_alphas(state.tag_key, round_id, hood.slots)
        tag = (sum(a * v for a, v in zip(alphas, values)) + tag_beta(state.key, round_id)) % TAG_PRIME
        plaintext = hood.layout.pack(values, tag)
        neighbours = hood.neighbours(state.meter_id)
        for peer in neighbours:
            plaintext += hood.sign(state.meter_id, peer) * pair_mask(self._secret(peer), round_id, n)
        seed = random_below(rng, shamir.P25519)
        plaintext = (plaintext + self_mask(seed, round_id, n)) % n
        shares = shamir.split(seed, hood.threshold, range(1, len(neighbours) + 1), rng)
        boxes = bytearray()
        for peer, share in zip(neighbours, shares):
            nonce, aad = _box_nonce_aad(hood.group_id, round_id, state.meter_id, peer)
            boxes += _box_cipher(self._secret(peer)).encrypt(nonce, share.y.to_bytes(SHARE_BYTES, "big"), aad)
        if encryptor is None:
            ciphertext = hood.public_key.encrypt(plaintext, rng)
        elif isinstance(encryptor, RandomiserPool):
            ciphertext = encryptor.encrypt(plaintext)
        else:
            ciphertext = encryptor.encrypt(plaintext, rng)
        body = {1: VERSION, 2: round_id, 3: state.meter_id, 4: ciphertext.to_bytes(), 5: bytes(boxes)}
        state.last_reported = round_id
        return _seal(body, mac_key(state.key, b"up"), b"meter-report", 6)

    def unmask(self, request: bytes) -> bytes:
        """Spec 8.3: answer the utility's unmask-request for the round just reported.

        For each reporting neighbour: the share of its self-mask seed; for
        the missing ones: the sum of the pairwise masks.  Once per round.
        """
        hood, state = self.hood, self.state
        m = _open(request, _UNMASK_REQUEST, "unmask-request")
        _check_mac(m, mac_key(state.key, b"down"), b"unmask-request", 7, "the utility")
        round_id = m[2]
        if m[3] != state.meter_id:
            raise VerificationError(f"unmask-request addressed to {m[3]}, not {state.meter_id}")
        if round_id <= state.last_unmasked:
            raise ReplayError(f"meter {state.meter_id} already answered an unmask-request for round "
                              f"{state.last_unmasked}")
        if round_id != state.last_reported:
            raise StateError(f"meter {state.meter_id} did not report round {round_id}")
        reporting = _list_of(m[4], str, "unmask-request reporting")
        missing = _list_of(m[5], str, "unmask-request missing")
        boxes = m[6]
        if not _is_ordered_split(hood.neighbours(state.meter_id), reporting, missing):
            raise VerificationError("unmask-request must split the meter's neighbours, in order, "
                                    "into reporting and missing")
        shares = bytearray()
        for peer, box in zip(reporting, _chunks(boxes, BOX_BYTES, len(reporting), "unmask-request boxes")):
            nonce, aad = _box_nonce_aad(hood.group_id, round_id, peer, state.meter_id)
            try:
                share = _box_cipher(self._secret(peer)).decrypt(nonce, box, aad)
            except InvalidTag:
                raise VerificationError(f"share box from {peer} does not decrypt") from None
            shares += share
        n = hood.public_key.n
        correction = sum(hood.sign(state.meter_id, peer) * pair_mask(self._secret(peer), round_id, n)
                         for peer in missing) % n
        state.last_unmasked = round_id
        body = {1: VERSION, 2: round_id, 3: state.meter_id, 4: bytes(shares),
                5: correction.to_bytes(hood.public_key.ciphertext_length() // 2, "big")}
        return _seal(body, mac_key(state.key, b"up"), b"unmask-response", 6)


# ---------------------------------------------------------------------------
# Section 7: the aggregator
# ---------------------------------------------------------------------------


@dataclass
class AggregatorState:
    """What an aggregator stores (spec 7.1): its key and the inputs of its
    latest round, kept for an audit (spec 9)."""

    aggregator_id: str
    key: bytes = field(repr=False)
    last_round: int = -1
    retained: dict = field(default_factory=dict, repr=False)


class Aggregator:
    """The aggregator role (spec 7): checks headers, multiplies, forwards."""

    def __init__(self, hood: Neighbourhood, state: AggregatorState) -> None:
        hood.children(state.aggregator_id)
        self.hood = hood
        self.state = state

    def aggregate(self, round_id: int, inputs: Sequence[bytes]) -> bytes:
        """Spec 7.1: combine the children's reports of one round into one report."""
        hood, state = self.hood, self.state
        _check_round(round_id)
        if round_id <= state.last_round:
            raise ReplayError(f"aggregator {state.aggregator_id} already aggregated round {state.last_round}")
        if not inputs:
            raise RecoveryError(f"aggregator {state.aggregator_id} received no report for round {round_id}")
        children = set(hood.children(state.aggregator_id))
        contributions, seen = [], set()
        read = _MeterReportReader(hood, round_id).read
        for raw in inputs:
            fast = read(raw)
            if fast is None:  # an aggregate-report, or anything the fast reader does not accept
                part = _decode_child(raw, hood)
                message_round, sender = part.round, part.sender
                contribution = _contribution_of(part)
            else:
                sender, c, boxes = fast
                message_round, contribution = round_id, (sender, c, (sender,), (boxes,))
            if sender not in children:
                raise InjectedContributionError(f"{sender} is not a child of {state.aggregator_id}")
            if sender in seen:
                raise DuplicateContributionError(f"{state.aggregator_id} received two reports from {sender}")
            seen.add(sender)
            if message_round != round_id:
                _check_round_of(message_round, round_id, "report", sender)
            contributions.append(contribution)
        body = _combine(contributions, round_id, state.aggregator_id, hood)
        state.last_round = round_id
        state.retained = {round_id: tuple(bytes(raw) for raw in inputs)}
        return _seal(body, mac_key(state.key, b"up"), b"aggregate-report", 7)


class _MeterReportReader:
    """The aggregator's fast path for the meter-reports of one round (spec 6.3, 7.1 step 1).

    Deterministic CBOR leaves a valid meter-report of round r from meter i
    exactly one encoding::

        a6 01 01 02 <r, shortest head> 03 <i as a text string, shortest head>
        04 <head of a byte string of len(n^2) bytes> <ciphertext>
        05 <head of a byte string of 48 k' bytes> <boxes> 06 58 20 <MAC, 32 bytes>

    and nothing after it.  :meth:`read` checks that layout byte for byte:
    the fixed start with the round being aggregated, the sender's text
    string against the encodings of the neighbourhood's meter ids, each
    later key and head, the total length, and 0 < c < n^2.  It returns the
    sender, c and the boxes -- what ``MeterReport.decode(raw, hood,
    unit_check=False)`` gives the aggregator, whose round is then the one
    aggregated -- or None for anything else.  It never raises and never
    decides a rejection: on None the caller runs the general decoder, which
    raises the typed error it always raised (a malformed byte, a wrong round,
    an unknown sender).  So it accepts only what the general path accepts,
    with the same result (``test_fast_meter_report_reader_agrees_with_the_decoder``).
    """

    __slots__ = ("nsquare", "start", "ct_head", "ct_length", "meters", "neighbours", "box_heads")

    def __init__(self, hood: Neighbourhood, round_id: int) -> None:
        self.nsquare = hood.public_key.nsquare
        self.start = b"\xa6\x01\x01\x02" + cbor.head(0, round_id) + b"\x03"
        self.ct_length = hood.public_key.ciphertext_length()
        self.ct_head = b"\x04" + cbor.head(2, self.ct_length)
        self.meters = hood._meter_by_text
        self.neighbours = hood._neighbours
        self.box_heads: dict[int, bytes] = {}

    def read(self, raw: object) -> tuple[str, mpz, bytes] | None:
        """(sender, c, boxes) of a well-formed meter-report of the round, or None."""
        if type(raw) is not bytes or not raw.startswith(self.start):
            return None
        pos = len(self.start)
        text = raw[pos:pos + 2]  # the sender's head: 61..77 (1-23 bytes) or 78 nn (24-255 bytes)
        if len(text) != 2:
            return None
        if 0x61 <= text[0] <= 0x77:
            end = pos + text[0] - 0x5F
        elif text[0] == 0x78:
            end = pos + 2 + text[1]
        else:
            return None
        sender = self.meters.get(raw[pos:end])
        if sender is None:
            return None
        ct_head = self.ct_head
        ct_start = end + len(ct_head)
        ct_end = ct_start + self.ct_length
        boxes_length = BOX_BYTES * len(self.neighbours[sender])
        box_head = self.box_heads.get(boxes_length)
        if box_head is None:
            box_head = self.box_heads[boxes_length] = b"\x05" + cbor.head(2, boxes_length)
        boxes_start = ct_end + len(box_head)
        boxes_end = boxes_start + boxes_length
        if (len(raw) != boxes_end + len(_MAC_KEY_HEAD) + MAC_BYTES or len(raw) > MAX_MESSAGE_BYTES
                or raw[end:ct_start] != ct_head or raw[ct_end:boxes_start] != box_head
                or raw[boxes_end:boxes_end + len(_MAC_KEY_HEAD)] != _MAC_KEY_HEAD):
            return None
        c = _MPZ_FROM_BYTES(raw[ct_start:ct_end], "big")
        if not 0 < c < self.nsquare:
            return None
        return sender, c, raw[boxes_start:boxes_end]


def _decode_child(raw: bytes, hood: Neighbourhood) -> MeterReport | AggregateReport:
    """A child's report: an aggregate-report has 7 keys, a meter-report 6 (spec 7.1 step 1).

    The ciphertext is range-checked here; :func:`_combine` checks that the
    product is a unit, which holds iff every factor is one.
    """
    message = _decode(raw, "report")
    if isinstance(message, dict) and len(message) == len(_AGGREGATE_REPORT):
        return AggregateReport.decode(message, hood, unit_check=False)
    return MeterReport.decode(message, hood, unit_check=False)


def _box_of(boxes: bytes, index: int) -> bytes:
    """The box at 0-based ``index`` of a concatenation (spec 6.3)."""
    return boxes[BOX_BYTES * index:BOX_BYTES * (index + 1)]


def _covered_of(part: MeterReport | AggregateReport) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
    if isinstance(part, MeterReport):
        return (part.sender,), (part.boxes,)
    return part.covered, part.boxes


def _contribution_of(part: MeterReport | AggregateReport) -> tuple[str, mpz, tuple[str, ...], tuple[bytes, ...]]:
    """What :func:`_combine` needs of a decoded report: sender, c, covered meters and their boxes."""
    return (part.sender, part.ciphertext.c, *_covered_of(part))


def _combine(contributions: Sequence[tuple[str, mpz, Sequence[str], Sequence[bytes]]], round_id: int,
             sender: str, hood: Neighbourhood) -> dict:
    """Spec 7.1 steps 3-4: product of the ciphertexts; union of covered sets, in order.

    ``contributions`` are (sender, c, covered, boxes) of each input, as
    :func:`_contribution_of` gives them.
    """
    entries: dict[str, bytes] = {}
    for _, _, covered, boxes in contributions:
        for meter, meter_boxes in zip(covered, boxes):
            if meter in entries:
                raise DuplicateContributionError(f"meter {meter} arrives at {sender} twice")
            entries[meter] = meter_boxes
    pk = hood.public_key
    acc = product_mod([c for _, c, _, _ in contributions], pk.nsquare)
    if gcd(acc, pk.n) != 1:
        for child, c, _, _ in contributions:
            if gcd(c, pk.n) != 1:
                raise InvalidCiphertextError(f"the ciphertext from {child} is not a unit mod n")
    covered = sorted(entries, key=hood._position.__getitem__)
    return {1: VERSION, 2: round_id, 3: sender, 4: Ciphertext._trusted(pk, acc).to_bytes(),
            5: covered, 6: [entries[m] for m in covered]}


# ---------------------------------------------------------------------------
# Section 8: the utility
# ---------------------------------------------------------------------------


@dataclass
class UtilityState:
    """The utility's secrets and its round counter (spec 8.1)."""

    private_key: PrivateKey = field(repr=False)
    meter_keys: Mapping[str, bytes] = field(repr=False)
    aggregator_keys: Mapping[str, bytes] = field(repr=False)
    tag_key: bytes = field(repr=False)
    last_round: int = -1


@dataclass
class RoundState:
    """One round between receipt of the root's report and its result (spec 8.2)."""

    round: int
    report: AggregateReport
    reporting: tuple[str, ...]
    missing: tuple[str, ...]
    requested: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class RoundResult:
    """Spec 8.4: what the utility learns from a round."""

    round: int
    sums: tuple[int, ...]
    reporting: tuple[str, ...]
    missing: tuple[str, ...]
    noisy: bool


class Utility:
    """The utility role (spec 8 and 9)."""

    def __init__(self, hood: Neighbourhood, state: UtilityState) -> None:
        if state.private_key.public_key != hood.public_key:
            raise ParameterError("the utility's private key does not match the neighbourhood's public key")
        self.hood = hood
        self.state = state

    def receive(self, round_id: int, report: bytes) -> RoundState:
        """Spec 8.2: check the root's aggregate-report; learn who is missing."""
        hood = self.hood
        _check_round(round_id)
        if round_id <= self.state.last_round:
            raise ReplayError(f"round {round_id} is not after the last finished round {self.state.last_round}")
        top = AggregateReport.decode(report, hood)
        if top.sender != hood.root:
            raise InjectedContributionError(f"the round's report comes from {top.sender}, not the root {hood.root}")
        _check_mac(top.fields, mac_key(self.state.aggregator_keys[top.sender], b"up"), b"aggregate-report", 7, top.sender)
        _check_round_of(top.round, round_id, "aggregate-report", top.sender)
        covered = set(top.covered)
        missing = tuple(m for m in hood.meters if m not in covered)
        return RoundState(round_id, top, top.covered, missing)

    def unmask_requests(self, rs: RoundState) -> dict[str, bytes]:
        """Spec 8.3: one unmask-request per reporting meter."""
        hood = self.hood
        reporting = set(rs.reporting)
        boxes = dict(zip(rs.report.covered, rs.report.boxes))
        requests = {}
        for meter in rs.reporting:
            neighbours = hood.neighbours(meter)
            up = [p for p in neighbours if p in reporting]
            down = [p for p in neighbours if p not in reporting]
            addressed = b"".join(_box_of(boxes[p], hood.neighbours(p).index(meter)) for p in up)
            body = {1: VERSION, 2: rs.round, 3: meter, 4: up, 5: down, 6: addressed}
            requests[meter] = _seal(body, mac_key(self.state.meter_keys[meter], b"down"), b"unmask-request", 7)
            rs.requested[meter] = (tuple(up), tuple(down))
        return requests

    def _read_response(self, rs: RoundState, raw: bytes) -> tuple[str, list[int], int]:
        m = _open(raw, _UNMASK_RESPONSE, "unmask-response")
        sender = m[3]
        if sender not in rs.requested:
            raise InjectedContributionError(f"unmask-response from {sender!r}, which was not asked")
        _check_mac(m, mac_key(self.state.meter_keys[sender], b"up"),
                   b"unmask-response", 6, sender)
        _check_round_of(m[2], rs.round, "unmask-response", sender)
        up, _ = rs.requested[sender]
        shares = _chunks(m[4], SHARE_BYTES, len(up), f"unmask-response from {sender}: shares")
        values = [int.from_bytes(s, "big") for s in shares]
        if any(v >= shamir.P25519 for v in values):
            raise DecodeError(f"unmask-response from {sender}: share out of range")
        n = self.hood.public_key.n
        if len(m[5]) != self.hood.public_key.ciphertext_length() // 2:
            raise DecodeError(f"unmask-response from {sender}: correction has the wrong length")
        correction = int.from_bytes(m[5], "big")
        if correction >= n:
            raise DecodeError(f"unmask-response from {sender}: correction out of range")
        return sender, values, correction

    def finish(self, rs: RoundState, responses: Sequence[bytes]) -> RoundResult:
        """Spec 8.4: remove the masks, decrypt, check the tag, release the sums."""
        hood, state = self.hood, self.state
        n = hood.public_key.n
        answered: dict[str, tuple[list[int], int]] = {}
        for raw in responses:
            sender, values, correction = self._read_response(rs, raw)
            if sender in answered:
                raise ReplayError(f"two unmask-responses from {sender}")
            answered[sender] = (values, correction)
        total = mpz(state.private_key.decrypt(rs.report.ciphertext))
        reporting = set(rs.reporting)
        for meter in rs.reporting:
            neighbours = hood.neighbours(meter)
            shares = []
            for x, peer in enumerate(neighbours, start=1):
                if peer in answered:
                    up, _ = rs.requested[peer]
                    shares.append(shamir.Share(x, answered[peer][0][up.index(meter)]))
            if len(shares) < hood.threshold:
                raise RecoveryError(f"only {len(shares)} of the {hood.threshold} seed shares needed for meter "
                                    f"{meter} arrived")
            if len(shares) > hood.threshold:
                shamir.check_consistent(shares, hood.threshold)
            total -= self_mask(shamir.recover(shares, hood.threshold), rs.round, n)
            if any(peer not in reporting for peer in neighbours):
                if meter not in answered:
                    raise RecoveryError(f"meter {meter} has missing neighbours but sent no unmask-response")
                total -= answered[meter][1]
        sums, tag_sum = hood.layout.unpack(int(total % n), n)
        alphas = tag_alphas(state.tag_key, rs.round, hood.slots)
        expected = (sum(a * v for a, v in zip(alphas, sums)) +
                    sum(tag_beta(state.meter_keys[m], rs.round) for m in rs.reporting)) % TAG_PRIME
        if tag_sum % TAG_PRIME != expected:
            raise AggregateMismatchError(
                f"round {rs.round}: the aggregate does not match the {len(rs.reporting)} contributions it claims "
                "(run Utility.audit to name the faulty node)")
        state.last_round = rs.round
        return RoundResult(rs.round, tuple(sums), rs.reporting, rs.missing, hood.noise is not None)

    # -- Section 9: audit -----------------------------------------------------

    def audit(self, rs: RoundState, retained: Mapping[str, Sequence[bytes]]) -> None:
        """Spec 9: walk the tree from the root and raise the typed error naming
        the first aggregator whose report is not the product of its inputs.

        ``retained`` maps each aggregator to the child reports it kept.
        Returns None if every aggregator is consistent (the fault is then in
        a meter's report or unmask-response).
        """
        self._audit_node(rs, rs.report, retained)

    def _audit_node(self, rs: RoundState, report: AggregateReport, retained: Mapping[str, Sequence[bytes]]) -> None:
        hood, node = self.hood, report.sender
        if node not in retained:
            raise RecoveryError(f"audit: aggregator {node} kept no inputs for round {rs.round}")
        parts, seen = [], set()
        for raw in retained[node]:
            part = _decode_child(raw, hood)
            if part.sender not in hood.children(node):
                raise InjectedContributionError(f"audit: {node} used a report from {part.sender}, not its child")
            if part.sender in seen:
                raise DuplicateContributionError(f"audit: {node} used two reports from {part.sender}")
            seen.add(part.sender)
            if isinstance(part, MeterReport):
                key, kind, mac_field = self.state.meter_keys[part.sender], b"meter-report", 6
            else:
                key, kind, mac_field = self.state.aggregator_keys[part.sender], b"aggregate-report", 7
            try:
                _check_mac(part.fields, mac_key(key, b"up"), kind, mac_field, part.sender)
            except VerificationError:
                raise InjectedContributionError(
                    f"audit: {node} used a report from {part.sender} that {part.sender} did not make") from None
            if part.round != rs.round:
                raise ReplayError(f"audit: {node} used {part.sender}'s report of round {part.round} "
                                  f"in round {rs.round}")
            parts.append(part)
        body = _combine([_contribution_of(part) for part in parts], rs.round, node, hood)
        claimed, derived = set(report.covered), set(body[5])
        for meter in report.covered:
            if meter not in derived:
                raise DroppedContributionError(f"audit: {node} claims meter {meter} but holds no report of it")
        n2 = hood.public_key.nsquare
        product = mpz(Ciphertext.from_bytes(hood.public_key, body[4]).c)
        actual = report.ciphertext.c
        if actual != product or claimed != derived:
            for part in parts:
                c = part.ciphertext.c
                names = ", ".join(_covered_of(part)[0])
                if actual * c % n2 == product:
                    raise DroppedContributionError(f"audit: {node} left out the contribution of {names}")
                if product * c % n2 == actual:
                    raise DuplicateContributionError(f"audit: {node} counted the contribution of {names} twice")
            if claimed != derived:
                dropped = ", ".join(sorted(derived - claimed))
                raise DroppedContributionError(f"audit: {node} received but did not claim {dropped}")
            raise InjectedContributionError(f"audit: {node}'s aggregate contains a term none of its inputs made")
        for part in parts:
            if isinstance(part, AggregateReport):
                self._audit_node(rs, part, retained)


# ---------------------------------------------------------------------------
# Section 3.1: setup
# ---------------------------------------------------------------------------


def balanced_tree(meters: Sequence[str], fanout: int, prefix: str = "agg") -> tuple[dict, str]:
    """A tree of aggregators with at most ``fanout`` children each over ``meters``.

    Returns (tree, root).  Aggregator ids are ``{prefix}-{level}-{index}``;
    level 1 sits just above the meters.  A tree of any other shape can be
    written by hand: :class:`Neighbourhood` accepts any rooted tree.
    """
    if type(fanout) is not int or fanout < 2:
        raise ParameterError("fanout must be an integer >= 2")
    if not meters:
        raise ParameterError("a tree needs at least one meter")
    tree: dict[str, tuple[str, ...]] = {}
    level, nodes = 1, list(meters)
    while True:
        groups = [tuple(nodes[i:i + fanout]) for i in range(0, len(nodes), fanout)]
        parents = [f"{prefix}-{level}-{i}" for i in range(len(groups))]
        tree.update(zip(parents, groups))
        if len(parents) == 1:
            return tree, parents[0]
        level, nodes = level + 1, parents


@dataclass
class Provisioned:
    """Everything :func:`provision` creates: the public neighbourhood and each role's state."""

    hood: Neighbourhood
    meters: dict[str, MeterState]
    aggregators: dict[str, AggregatorState]
    utility: UtilityState


def provision(private_key: PrivateKey, meter_ids: Sequence[str], tree: Mapping[str, tuple[str, ...]], root: str,
              rng: RandomSource | None = None, *, group_id: bytes = b"neighbourhood", **options) -> Provisioned:
    """Spec 3.1: draw every key of a neighbourhood from ``rng``, in a fixed order.

    Order: the tag key; then per meter (in the order given) its utility key
    K_i and its X25519 private key; then per aggregator (sorted by id) its
    key.  ``options`` are :class:`Neighbourhood`'s slots, value_bits,
    degree, threshold and noise.  In a deployment each meter makes its own
    X25519 key and the utility learns only the public half.
    """
    from protocols.primitives.rand import resolve

    source = resolve(rng)
    tag_key = source.random_bytes(KEY_BYTES)
    meter_keys, privates, publics = {}, {}, {}
    for meter in meter_ids:
        _check_id(meter, "meter id")
        if meter in meter_keys:
            raise ParameterError(f"meter id {meter} given twice")
        meter_keys[meter] = source.random_bytes(KEY_BYTES)
        privates[meter] = source.random_bytes(KEY_BYTES)
        publics[meter] = X25519PrivateKey.from_private_bytes(privates[meter]).public_key().public_bytes_raw()
    aggregator_keys = {node: source.random_bytes(KEY_BYTES) for node in sorted(tree)}
    hood = Neighbourhood(group_id, private_key.public_key, publics, dict(tree), root, **options)
    return Provisioned(
        hood,
        {m: MeterState(m, meter_keys[m], tag_key, privates[m]) for m in meter_ids},
        {a: AggregatorState(a, k) for a, k in aggregator_keys.items()},
        UtilityState(private_key, meter_keys, aggregator_keys, tag_key),
    )
