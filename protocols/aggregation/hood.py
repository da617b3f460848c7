"""Spec 3: the neighbourhood -- its directory, the unbiasable mask graph, the committee.

A :class:`Neighbourhood` is what every party holds after setup: the
directory the utility fixed (meters, their keys and graph commitments,
the tree, the parameters) and the meters' revealed graph nonces.  From
these alone it derives the graph seed, each meter's neighbours and the
commitment committee, so a meter checks its own neighbours instead of
taking them from the utility.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import cast
from dataclasses import dataclass, field

from protocols.aggregation.layout import Layout
from protocols.aggregation.schedule import DOMAIN, KEY_BYTES, graph_commitment, graph_seed, is_low_order, rank
from protocols import limits
from protocols.errors import DecodeError, ParameterError, StateError, VerificationError
from protocols.primitives import cbor
from protocols.primitives import hashing
from protocols.privacy import dp
from protocols.schemes.paillier import PublicKey

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_METERS = limits.AGGREGATION.max_meters
"""Largest neighbourhood a directory may describe (spec 3.1): the root's aggregate-report carries
about 16 k + 70 bytes per meter (id and forwarded confirmations), which must fit MAX_MESSAGE_BYTES."""
MAX_DEGREE = limits.AGGREGATION.max_degree
MAX_COMMITTEE = limits.AGGREGATION.max_committee
MAX_TREE_DEPTH = limits.AGGREGATION.max_tree_depth
"""Levels of aggregators between a meter and the utility (spec 3.1)."""


def check_id(name: object, what: str) -> str:
    if not isinstance(name, str) or not _ID.fullmatch(name):
        raise ParameterError(f"{what} must be 1-64 characters of [A-Za-z0-9._:-], starting alphanumeric")
    return name


def _noise_cbor(noise: dp.NoiseShareConfig | None) -> object:
    if noise is None:
        return None
    h, d = noise.honest_fraction, noise.delta
    fields: list[object] = [noise.level.value, noise.sensitivity, noise.participants,
                            f"{h.numerator}/{h.denominator}", f"{d.numerator}/{d.denominator}"]
    if noise.mechanism is not dp.Mechanism.SCRCS11 or noise.releases != 1:
        fields += [noise.mechanism.value, noise.releases]  # spec 3.2 key 7: bound only when not the default
    return fields


@dataclass(frozen=True, eq=False)
class Neighbourhood:
    """The public description of one aggregation group (spec 3).

    ``meter_public`` holds each meter's long-term X25519 key (the share
    boxes, 5.6), ``meter_verify`` its Ed25519 key (committee signatures,
    8.2), ``commitments`` its graph commitment h_i and ``reveals`` the
    nonce nu_i behind it (3.3).  ``tree`` maps each aggregator to its
    children; ``root`` reports to the utility.  Unset parameters take the
    defaults of spec 3.1.
    """

    group_id: bytes
    public_key: PublicKey
    meter_public: Mapping[str, bytes]
    meter_verify: Mapping[str, bytes]
    commitments: Mapping[str, bytes]
    reveals: Mapping[str, bytes] | None
    tree: Mapping[str, tuple[str, ...]]
    root: str
    slots: int = 1
    value_bits: int = 32
    degree: int = 16
    # None (the default) asks for the default of spec 3.1, which __post_init__ sets: every
    # constructed Neighbourhood holds an int in each of these four.
    threshold: int = cast(int, None)
    min_reporting: int = cast(int, None)
    committee_size: int = cast(int, None)
    committee_threshold: int = cast(int, None)
    noise: dp.NoiseShareConfig | None = None
    meters: tuple[str, ...] = field(init=False)
    layout: Layout = field(init=False)
    digest: bytes = field(init=False, repr=False)
    seed: bytes = field(init=False, repr=False)
    committee: tuple[str, ...] = field(init=False)
    offsets: tuple[int, ...] = field(init=False)
    """The circulant's offsets o_1..o_{k/2} in draw order; empty for the complete graph (spec 3.4)."""
    _index: dict = field(init=False, repr=False)
    _parent: dict = field(init=False, repr=False)
    _neighbours: dict = field(init=False, repr=False)
    _meter_by_text: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.group_id, bytes) or not 1 <= len(self.group_id) <= 64:
            raise ParameterError("group_id must be 1 to 64 bytes")
        if not isinstance(self.public_key, PublicKey):
            raise ParameterError("public_key must be a Paillier PublicKey")
        ids = list(self.meter_public)
        if not 2 <= len(ids) <= MAX_METERS:
            raise ParameterError(f"a neighbourhood needs 2 to {MAX_METERS} meters")
        for meter in ids:
            check_id(meter, "meter id")
            for name, table in (("X25519", self.meter_public), ("Ed25519", self.meter_verify),
                                ("graph commitment", self.commitments)):
                value = table.get(meter)
                if not isinstance(value, bytes) or len(value) != KEY_BYTES:
                    raise ParameterError(f"meter {meter}: {name} value must be 32 bytes")
            if is_low_order(self.meter_public[meter]):
                raise ParameterError(f"meter {meter}: the X25519 key is a low-order point")
        if set(self.meter_verify) != set(ids) or set(self.commitments) != set(ids):
            raise ParameterError("the key and commitment tables must name exactly the meters")
        meters = tuple(sorted(ids, key=str.encode))
        count = len(meters)
        self._set("meters", meters)
        self._set("_index", {m: i for i, m in enumerate(meters)})
        self._set("_parent", self._check_tree(meters))
        self._check_parameters(count)
        noise_bound = 0
        if self.noise is not None:
            if not isinstance(self.noise, dp.NoiseShareConfig):
                raise ParameterError("noise must be a NoiseShareConfig or None")
            if self.noise.participants != self.min_reporting:
                raise ParameterError(f"the noise configuration is for {self.noise.participants} participants; "
                                     f"it must be sized for the minimum reporting set, {self.min_reporting}")
            if self.noise.sensitivity < (1 << self.value_bits) - 1:
                raise ParameterError("the noise sensitivity must cover the largest reading, 2^value_bits - 1")
            noise_bound = dp.clamp_bound(self.noise)
        self._set("layout", Layout(self.slots, self.value_bits, noise_bound, count, self.public_key.bits))
        self._set("digest", self.directory_digest())
        self._set("_meter_by_text", {cbor.encode(m): m for m in meters})
        if self.reveals is None:  # a draft directory (spec 3.3 step 2): no graph before the reveals
            self._set("seed", None)
            self._set("_neighbours", {})
            self._set("committee", ())
            self._set("offsets", ())
            return
        self._set("seed", self._seed(meters))
        self._set("_neighbours", self._graph(meters))
        ranked = sorted(meters, key=lambda m: rank(self.seed, b"committee", 0, m))
        self._set("committee", tuple(ranked[:self.committee_size]))

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _check_parameters(self, count: int) -> None:
        for name in ("slots", "value_bits", "degree"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ParameterError(f"{name} must be a positive integer")
        if self.degree % 2 or not 2 <= self.degree <= MAX_DEGREE:
            raise ParameterError(f"degree must be an even integer in [2, {MAX_DEGREE}]")
        k = min(self.degree, count - 1)
        if self.threshold is None:
            self._set("threshold", max(1, math.ceil(2 * k / 3)))
        if type(self.threshold) is not int or not k // 2 < self.threshold <= k:
            raise ParameterError(f"threshold must exceed half the effective degree {k} and be at most {k} "
                                 "(spec 3.1: a meter's two secrets then never both reach t through honest neighbours)")
        if self.min_reporting is None:
            self._set("min_reporting", max(2, math.ceil(count / 2)))
        if type(self.min_reporting) is not int or not 2 <= self.min_reporting <= count:
            raise ParameterError(f"min_reporting must be between 2 and the {count} meters")
        if self.committee_size is None:
            self._set("committee_size", min(count, 32))
        if type(self.committee_size) is not int or not 1 <= self.committee_size <= min(count, MAX_COMMITTEE):
            raise ParameterError(f"committee_size must be between 1 and {min(count, MAX_COMMITTEE)}")
        if self.committee_threshold is None:
            self._set("committee_threshold", 2 * self.committee_size // 3 + 1)
        kappa = self.committee_size
        if type(self.committee_threshold) is not int or not 2 * kappa // 3 < self.committee_threshold <= kappa:
            raise ParameterError("committee_threshold must exceed two thirds of the committee and be at most all of it")

    def _check_tree(self, meters: tuple[str, ...]) -> dict:
        check_id(self.root, "root aggregator id")
        if self.root not in self.tree:
            raise ParameterError("the root must be an aggregator of the tree")
        parent: dict[str, str] = {}
        for node, children in self.tree.items():
            check_id(node, "aggregator id")
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
        reached, stack = set(), [(self.root, 1)]
        while stack:
            node, depth = stack.pop()
            if node in self.tree and depth > MAX_TREE_DEPTH:
                raise ParameterError(f"the tree is deeper than {MAX_TREE_DEPTH} aggregators")
            reached.add(node)
            stack.extend((child, depth + 1) for child in self.tree.get(node, ()))
        if reached != set(self.tree) | set(meters):
            raise ParameterError("every meter and aggregator must hang below the root exactly once")
        return parent

    def directory_cbor(self) -> dict:
        """Spec 3.2: the directory as the CBOR map its digest covers."""
        return {
            1: self.group_id,
            2: self.public_key.n.to_bytes((self.public_key.n.bit_length() + 7) // 8, "big"),
            3: [[m, self.meter_public[m], self.meter_verify[m], self.commitments[m]] for m in self.meters],
            4: [[node, list(self.tree[node])] for node in sorted(self.tree, key=str.encode)],
            5: self.root,
            6: [self.slots, self.value_bits, self.degree, self.threshold, self.min_reporting,
                self.committee_size, self.committee_threshold],
            7: _noise_cbor(self.noise),
        }

    def directory_digest(self) -> bytes:
        """Spec 3.2: SHA-256(DOMAIN || "directory" || CBOR(directory))."""
        return hashing.sha256(DOMAIN + b"directory" + cbor.encode(self.directory_cbor())).digest()

    def _seed(self, meters: tuple[str, ...]) -> bytes:
        """Spec 3.3: check every reveal against its commitment, then hash them all."""
        if self.reveals is None:
            raise StateError("the setup is not finished: no graph nonce is revealed yet")
        nonces = []
        for meter in meters:
            nonce = self.reveals.get(meter)
            if not isinstance(nonce, bytes) or len(nonce) != KEY_BYTES:
                raise VerificationError(f"meter {meter} revealed no 32-byte graph nonce")
            if not hashing.compare_digest(graph_commitment(meter, nonce), self.commitments[meter]):
                raise VerificationError(f"meter {meter}'s graph nonce does not open its commitment")
            nonces.append(nonce)
        if len(self.reveals) != len(meters):
            raise VerificationError("reveals name a meter outside the directory")
        return graph_seed(self.digest, nonces)

    def _graph(self, meters: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        """Spec 3.4: the complete graph if N - 1 <= k, else a seeded circulant: meters placed in the
        order of rank(seed, "order", 0, id), joined at k/2 distinct seeded offsets o_1..o_{k/2}.

        Every meter then has exactly k neighbours: position p's are p - o_1, p + o_1, p - o_2, ...
        (mod N).  Offset c is 1 + OS2IP(SHA-256(DOMAIN || "offset" || seed || I2OSP(c, 1) ||
        I2OSP(a, 4))) mod (ceil(N/2) - 1) for a = 0, 1, ... until it differs from the earlier ones.
        """
        count = len(meters)
        if count - 1 <= self.degree:
            self._set("offsets", ())
            return {m: tuple(p for p in meters if p != m) for m in meters}
        placed = sorted(meters, key=lambda m: rank(self.seed, b"order", 0, m))
        span = (count + 1) // 2 - 1
        offsets: list[int] = []
        for c in range(1, self.degree // 2 + 1):
            attempt = 0
            while True:
                digest = hashing.sha256(DOMAIN + b"offset" + self.seed + bytes([c]) + attempt.to_bytes(4, "big"))
                offset = 1 + int.from_bytes(digest.digest(), "big") % span
                if offset not in offsets:
                    break
                attempt += 1
            offsets.append(offset)
        self._set("offsets", tuple(offsets))
        graph = {}
        for pos, meter in enumerate(placed):
            graph[meter] = tuple(placed[(pos + sign * o) % count] for o in offsets for sign in (-1, 1))
        return graph

    # -- queries ---------------------------------------------------------------

    def neighbours(self, meter: str) -> tuple[str, ...]:
        """nbr(i), in the order of spec 3.4; x_i(j) is the 1-based place of j in it."""
        peers = self._neighbours.get(meter)
        if peers is None:
            if self.reveals is None:
                raise StateError("the setup is not finished: the graph exists only once every nonce is revealed")
            raise ParameterError(f"{meter!r} is not a meter of this neighbourhood")
        return peers

    def index(self, meter: str) -> int:
        """The meter's place in the directory order (ids sorted by their UTF-8 bytes)."""
        return self._index[meter]

    def sign(self, meter: str, peer: str) -> int:
        """Spec 5.4: +1 if meter precedes peer in the directory order, else -1."""
        return 1 if self._index[meter] < self._index[peer] else -1

    def children(self, aggregator: str) -> tuple[str, ...]:
        return tuple(self.tree[aggregator])

    def parent(self, node: str) -> str | None:
        return self._parent.get(node)

    def meters_below(self, node: str) -> set[str]:
        below: set[str] = set()
        stack = [node]
        while stack:
            item = stack.pop()
            if item in self.meter_public:
                below.add(item)
            else:
                stack.extend(self.tree[item])
        return below

    @property
    def max_missing(self) -> int:
        """Spec 8.6: any set of this many missing meters is always recoverable."""
        if self.reveals is None:
            raise StateError("the setup is not finished: the graph exists only once every nonce is revealed")
        low = min(len(peers) for peers in self._neighbours.values())
        return min(low - self.threshold, len(self.meters) - self.min_reporting)

    # -- status bitmaps (spec 8.1) ----------------------------------------------

    @property
    def bitmap_bytes(self) -> int:
        return (len(self.meters) + 7) // 8

    def bitmap(self, members: Iterable[str]) -> bytes:
        """Spec 8.1: bit 7 - (d mod 8) of byte d div 8 is set iff the meter at directory index d is a member."""
        out = bytearray(self.bitmap_bytes)
        for meter in members:
            d = self._index[meter]
            out[d // 8] |= 0x80 >> (d % 8)
        return bytes(out)

    def member_set(self, bitmap: bytes, what: str) -> BitmapSet:
        """Spec 8.1: a bitmap of the right length with zero padding bits (else DecodeError), read by
        bit tests (O(1) per meter asked)."""
        self._check_bitmap(bitmap, what)
        return BitmapSet(self, int.from_bytes(bitmap, "big"), 8 * len(bitmap))

    def _check_bitmap(self, bitmap: bytes, what: str) -> None:
        if not isinstance(bitmap, bytes) or len(bitmap) != self.bitmap_bytes:
            raise DecodeError(f"{what}: bitmap must be {self.bitmap_bytes} bytes")
        spare = 8 * len(bitmap) - len(self.meters)
        if spare and bitmap[-1] & ((1 << spare) - 1):
            raise DecodeError(f"{what}: padding bits must be zero")


@dataclass(frozen=True)
class BitmapSet:
    """The meters a status bitmap names (spec 8.1), tested bit by bit."""

    hood: Neighbourhood
    bits: int
    width: int

    def __contains__(self, meter: object) -> bool:
        d = self.hood._index.get(meter)
        return d is not None and bool(self.bits >> (self.width - 1 - d) & 1)

    def __len__(self) -> int:
        return self.bits.bit_count()

    def overlaps(self, other: BitmapSet) -> bool:
        return bool(self.bits & other.bits)
