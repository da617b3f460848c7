"""Logical key hierarchy: the key tree of a group key controller.

C. K. Wong, M. Gouda, S. S. Lam, "Secure group communications using key
graphs", IEEE/ACM Transactions on Networking 8(1), 2000 (SIGCOMM 1998); the
hierarchical tree approach of RFC 2627 section 5.4; batch rekeying after
X. S. Li, Y. R. Yang, M. Gouda, S. S. Lam, "Batch rekeying for secure group
communications", WWW 2001.  The layout, the wrap and the rules below are this
project's and are specified in specs/groupkeys.md sections 3 and 5.

The tree has arity ``d`` and height ``h``: members sit at the leaves (level 0),
the group key at the root (level h).  A node is named by (level, position),
counted from the leaves, so that growing the tree (a new root above the old
one) renames nothing: the parent of (l, p) is (l + 1, p // d).  Every key has
a *key id* (kid), a serial number that is never reused within a tree; kid 0
marks an empty node.

A rekey (``KeyTree.rekey``) applies a batch of leaves and joins, gives every
changed node a fresh key, and wraps each new key for the *staying* members
only (joiners receive their whole path by unicast, ``KeyTree.member_keys``):

* a changed node with no leaver below it: one wrap, under its own old key
  (every staying member below holds it; no leaver ever did);
* a changed node with a leaver below it (or a new node): one wrap under the
  current key of each child that has staying members below it.

A leaver's old keys are never used as a wrapping key, so it learns no new key
(forward secrecy); a joiner gets only keys made in or after its batch
(backward secrecy).  A single leave costs at most d*h - 1 wraps, a single
join h (``leave_bound``, ``join_bound``).

The wrap is ChaCha20-Poly1305 under the wrapping key with nonce
0^32 || kid (64 bits) and associated data naming the tree's context and both
key ids (spec 3.3): a key id is wrapped under a given key at most once, so
the nonce never repeats under a key.
"""

from __future__ import annotations

import heapq
import struct
from array import array
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

from cryptography.exceptions import InvalidTag

from protocols.errors import DecodeError, ParameterError, ResyncRequiredError, StateError, VerificationError
from protocols.primitives.aead import ChaCha20Poly1305
from protocols.primitives.rand import RandomSource, resolve

__all__ = [
    "KEY_BYTES", "LABEL", "MAX_ARITY", "WRAP_BYTES", "KeyTree", "MemberKeys", "Rekey", "Wrap",
    "height_for", "join_bound", "leave_bound", "unwrap", "wrap",
]

LABEL = b"usapp-lkh-v1"
KEY_BYTES = 32
WRAP_BYTES = KEY_BYTES + 16
MAX_ARITY = 256
MAX_KID = 2**63 - 1
MAX_HEIGHT = 64

_Q = struct.Struct(">Q")


# ---------------------------------------------------------------------------
# Spec 3.3: the key wrap
# ---------------------------------------------------------------------------


def _wrap_ad(context: bytes, kid: int, kek_kid: int) -> bytes:
    return LABEL + b" wrap" + _Q.pack(len(context)) + context + _Q.pack(kid) + _Q.pack(kek_kid)


def wrap(context: bytes, kek: bytes, kek_kid: int, key: bytes, kid: int) -> bytes:
    """Spec 3.3: ChaCha20-Poly1305(kek, nonce = 0^4 || kid, key, ad); 48 bytes."""
    return ChaCha20Poly1305(kek).encrypt(b"\0\0\0\0" + _Q.pack(kid), key, _wrap_ad(context, kid, kek_kid))


def unwrap(context: bytes, kek: bytes, kek_kid: int, ct: bytes, kid: int) -> bytes:
    """Spec 3.3, the inverse of :func:`wrap`; a wrap that does not open is a ``VerificationError``."""
    if len(ct) != WRAP_BYTES:
        raise DecodeError(f"a wrapped key must be {WRAP_BYTES} bytes, got {len(ct)}")
    try:
        return ChaCha20Poly1305(kek).decrypt(b"\0\0\0\0" + _Q.pack(kid), ct, _wrap_ad(context, kid, kek_kid))
    except InvalidTag:
        raise VerificationError(f"the wrap of key {kid} under key {kek_kid} does not open") from None


# ---------------------------------------------------------------------------
# Spec 3.1: shape and analytic costs
# ---------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_kid(value: object, what: str) -> int:
    """A key id or node position: an int in [0, 2^64) (it is packed as 8 bytes, spec 3.3)."""
    if not _is_int(value) or not 0 <= value < 1 << 64:
        raise DecodeError(f"{what} must be an int in [0, 2^64)")
    return value


def _check_arity(arity: object) -> int:
    if not isinstance(arity, int) or isinstance(arity, bool) or not 2 <= arity <= MAX_ARITY:
        raise ParameterError(f"arity must be an int in [2, {MAX_ARITY}]")
    return arity


def height_for(arity: int, members: int) -> int:
    """The least height h >= 1 with arity^h >= members (spec 3.1)."""
    _check_arity(arity)
    h, capacity = 1, arity
    while capacity < members:
        h, capacity = h + 1, capacity * arity
    return h


def leave_bound(arity: int, height: int) -> int:
    """Wraps of a single leave in a full tree: d - 1 at level 1, d above it (spec 5.5)."""
    return arity * height - 1


def join_bound(arity: int, height: int) -> int:
    """Wraps of a single join: one per ancestor that has staying members (spec 5.5)."""
    return height


# ---------------------------------------------------------------------------
# Spec 5: rekeys as data
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Wrap:
    """Key ``kid`` wrapped under key ``kek`` (spec 3.3)."""

    kid: int
    kek: int
    ct: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("kid", "kek"):
            _check_kid(getattr(self, name), f"a wrap's {name}")
        if not isinstance(self.ct, (bytes, bytearray)) or len(self.ct) != WRAP_BYTES:
            raise DecodeError(f"a wrapped key must be {WRAP_BYTES} bytes")


@dataclass(frozen=True)
class Rekey:
    """What one batch changes (spec 5.1): the tree's height afterwards, the new
    key id of every changed node (level, position, kid) bottom-up, and the wraps."""

    height: int
    nodes: tuple[tuple[int, int, int], ...]
    wraps: tuple[Wrap, ...]

    def __post_init__(self) -> None:
        """Spec 5.1 shape, checked before a member walks it: height in [1, MAX_HEIGHT]; each node
        (level, position, kid) three ints, level in [0, height], position below arity^level's
        bound 2^64, kid a key id; every wrap a :class:`Wrap`.  DecodeError otherwise."""
        if not _is_int(self.height) or not 1 <= self.height <= MAX_HEIGHT:
            raise DecodeError(f"a rekey's height must be an int in [1, {MAX_HEIGHT}]")
        if not isinstance(self.nodes, tuple) or not isinstance(self.wraps, tuple):
            raise DecodeError("a rekey's nodes and wraps are tuples")
        for node in self.nodes:
            if not isinstance(node, tuple) or len(node) != 3:
                raise DecodeError("a rekey node is (level, position, kid)")
            level, position, kid = node
            if not _is_int(level) or not 0 <= level <= self.height:
                raise DecodeError(f"a rekey node's level must be an int in [0, {self.height}]")
            _check_kid(position, "a rekey node's position")
            _check_kid(kid, "a rekey node's kid")
        if not all(isinstance(w, Wrap) for w in self.wraps):
            raise DecodeError("a rekey's wraps must be Wrap objects")

    @property
    def root_kid(self) -> int:
        """The group key's id after this rekey (the last node, the root)."""
        return self.nodes[-1][2]


@dataclass(frozen=True)
class MemberKeys:
    """A member's view (spec 5.2): its leaf position and the keys on its path,
    ``path[l] = (kid, key)`` for level l = 0 (its own key) up to the root."""

    arity: int
    context: bytes
    position: int
    path: tuple[tuple[int, bytes], ...] = field(repr=False)

    @property
    def height(self) -> int:
        return len(self.path) - 1

    @property
    def group_key(self) -> bytes:
        return self.path[-1][1]

    @property
    def group_kid(self) -> int:
        return self.path[-1][0]

    def kids(self) -> tuple[int, ...]:
        return tuple(kid for kid, _ in self.path)

    def apply(self, rekey: Rekey) -> MemberKeys:
        """Spec 5.2: the member's keys after ``rekey``; ``self`` is unchanged.

        Walks its path bottom-up; for each node the rekey changes it opens a
        wrap of the new key under a key it already holds or has just opened.
        Raises ``StateError`` if the rekey removes this member (its leaf or a
        node on its path emptied or given to another), ``ResyncRequiredError``
        if no wrap for a changed node is under a key it holds (it missed a
        rekey), ``VerificationError`` if a wrap does not open, ``DecodeError``
        if the rekey is not well formed for this member.
        """
        d = self.arity
        if rekey.height < self.height:
            raise DecodeError(f"a rekey cannot shrink the tree (height {rekey.height} < {self.height})")
        changed: dict[tuple[int, int], int] = {}
        for level, position, kid in rekey.nodes:
            changed[(level, position)] = kid
        if (0, self.position) in changed:
            raise StateError("this member's leaf was emptied or reassigned: it is no longer in the group")
        by_kid: dict[int, list[Wrap]] = {}
        for w in rekey.wraps:
            by_kid.setdefault(w.kid, []).append(w)
        held = {kid: key for kid, key in self.path}
        path = list(self.path)
        for level in range(1, rekey.height + 1):
            node = (level, self.position // d**level)
            new_kid = changed.get(node)
            if new_kid is None:
                if level > self.height:
                    raise DecodeError(f"the rekey grows the tree but gives no key for node {node}")
                continue
            kid = new_kid
            if kid == 0:
                raise StateError(f"node {node} on this member's path was emptied: it is no longer in the group")
            candidates = [w for w in by_kid.get(kid, ()) if w.kek in held]
            if not candidates:
                raise ResyncRequiredError(
                    f"no wrap of key {kid} (node {node}) is under a key this member holds; it needs a resync")
            w = candidates[0]
            key = unwrap(self.context, held[w.kek], w.kek, w.ct, kid)
            held[kid] = key
            if level < len(path):
                path[level] = (kid, key)
            else:
                path.append((kid, key))
        if path[-1][0] != rekey.root_kid:
            raise ResyncRequiredError("after the rekey this member's group key is not the rekey's root")
        return MemberKeys(self.arity, self.context, self.position, tuple(path))


# ---------------------------------------------------------------------------
# Spec 5.1: the controller's tree
# ---------------------------------------------------------------------------


@dataclass
class KeyTree:
    """The group key controller's state (spec 3.2, 5.1).

    Per level l: ``keys[l]`` (32 bytes per position), ``kids[l]`` (0 = empty)
    and ``counts[l]`` (members below).  ``members`` maps a member to its leaf;
    freed leaves are reused lowest first, then ``next_leaf`` onwards.
    """

    arity: int
    context: bytes
    height: int
    keys: list[bytearray] = field(repr=False)
    kids: list[array]
    counts: list[array]
    members: dict[Hashable, int]
    free: list[int]
    next_leaf: int
    next_kid: int

    # -- construction -------------------------------------------------------

    @classmethod
    def create(cls, arity: int, context: bytes, members: Sequence[Hashable] = (),
               rng: RandomSource | None = None, *, height: int | None = None) -> KeyTree:
        """A tree holding ``members`` at leaves 0, 1, ... with fresh keys (spec 9.2).

        ``height`` defaults to :func:`height_for`; members then receive their
        paths by unicast (:meth:`member_keys`).  Key ids are given bottom-up,
        left to right, from 1.
        """
        _check_arity(arity)
        if not isinstance(context, bytes) or len(context) > 255:
            raise ParameterError("context must be at most 255 bytes")
        members = list(members)
        if len(set(members)) != len(members):
            raise ParameterError("a member is listed twice")
        h = height_for(arity, len(members)) if height is None else height
        if not isinstance(h, int) or not 1 <= h <= MAX_HEIGHT or arity**h < len(members):
            raise ParameterError(f"height must be in [1, {MAX_HEIGHT}] and hold every member")
        rng = resolve(rng)
        n = len(members)
        keys: list[bytearray] = []
        kids: list[array[int]] = []
        counts: list[array[int]] = []
        next_kid = 1
        occupied = n
        for level in range(h + 1):
            size = arity ** (h - level)
            count = array("Q", bytes(8 * size))
            kid = array("Q", bytes(8 * size))
            if level == 0:
                count[:n] = array("Q", [1]) * n
            else:
                occupied = (occupied + arity - 1) // arity
                below = counts[-1]
                for p in range(occupied):
                    count[p] = sum(below[p * arity:(p + 1) * arity])
            kid[:occupied] = array("Q", range(next_kid, next_kid + occupied))
            next_kid += occupied
            material = bytearray(KEY_BYTES * size)
            material[:KEY_BYTES * occupied] = rng.random_bytes(KEY_BYTES * occupied)
            keys.append(material)
            kids.append(kid)
            counts.append(count)
        return cls(arity, context, h, keys, kids, counts, {m: i for i, m in enumerate(members)}, [], n, next_kid)

    # -- reading ------------------------------------------------------------

    def key(self, level: int, position: int) -> tuple[int, bytes]:
        """(kid, key) of a node; kid 0 (and a zero key) for an empty node."""
        start = KEY_BYTES * position
        return self.kids[level][position], bytes(self.keys[level][start:start + KEY_BYTES])

    @property
    def group_kid(self) -> int:
        return self.kids[self.height][0]

    @property
    def group_key(self) -> bytes:
        return self.key(self.height, 0)[1]

    def member_keys(self, member: Hashable) -> MemberKeys:
        """The member's leaf position and current path (spec 7.1, the welcome and the resync)."""
        if member not in self.members:
            raise StateError("not a member of the group")
        position = self.members[member]
        path = tuple(self.key(level, position // self.arity**level) for level in range(self.height + 1))
        return MemberKeys(self.arity, self.context, position, path)

    # -- changing -----------------------------------------------------------

    def _grow(self) -> None:
        """Spec 5.4: a new root above the old one; every level holds d times as many positions."""
        if self.height == MAX_HEIGHT:
            raise StateError("the tree is at its maximum height")
        d = self.arity
        for level in range(self.height + 1):
            size = len(self.kids[level])
            self.keys[level].extend(bytes(KEY_BYTES * size * (d - 1)))
            self.kids[level].extend(array("Q", bytes(8 * size * (d - 1))))
            self.counts[level].extend(array("Q", bytes(8 * size * (d - 1))))
        self.keys.append(bytearray(KEY_BYTES))
        self.kids.append(array("Q", [0]))
        self.counts.append(array("Q", [self.counts[self.height][0]]))
        self.height += 1

    def _take_leaf(self) -> int:
        if self.free:
            return heapq.heappop(self.free)
        if self.next_leaf >= len(self.kids[0]):
            self._grow()
        self.next_leaf += 1
        return self.next_leaf - 1

    def _new_kid(self) -> int:
        if self.next_kid > MAX_KID:
            raise StateError("key ids are exhausted")
        self.next_kid += 1
        return self.next_kid - 1

    def rekey(self, joins: Iterable[Hashable] = (), leaves: Iterable[Hashable] = (),
              rng: RandomSource | None = None) -> Rekey:
        """Spec 5.1: apply a batch of leaves, then joins, and return the rekey.

        Leaves free their leaves first; joiners take the lowest free leaves in
        the order given (growing the tree when it is full).  Every node with a
        leaver or joiner below it gets a fresh key; wraps follow the two rules
        of the module docstring.  The tree is changed only if the batch is valid.
        """
        joins, leaves = list(joins), list(leaves)
        if not joins and not leaves:
            raise ParameterError("a rekey needs at least one join or leave")
        if len(set(joins)) != len(joins) or len(set(leaves)) != len(leaves):
            raise ParameterError("a member is listed twice in one batch")
        for m in leaves:
            if m not in self.members:
                raise StateError("a leaver is not a member of the group")
        for m in joins:
            if m in self.members or m in leaves:
                raise StateError("a joiner is already a member of the group (or leaves in the same batch)")
        rng = resolve(rng)
        d = self.arity
        tainted: set[tuple[int, int]] = set()     # nodes with a leaver below
        joined_below: dict[tuple[int, int], int] = {}
        for m in leaves:
            position = self.members.pop(m)
            heapq.heappush(self.free, position)
            self.kids[0][position] = 0
            self.keys[0][KEY_BYTES * position:KEY_BYTES * (position + 1)] = bytes(KEY_BYTES)
            for level in range(self.height + 1):
                p = position // d**level
                self.counts[level][p] -= 1
                tainted.add((level, p))
        old_height = self.height
        placed = []
        for m in joins:
            position = self._take_leaf()  # may grow the tree
            self.members[m] = position
            self.kids[0][position] = self._new_kid()
            self.keys[0][KEY_BYTES * position:KEY_BYTES * (position + 1)] = rng.random_bytes(KEY_BYTES)
            placed.append(position)
        for position in placed:
            for level in range(self.height + 1):
                p = position // d**level
                self.counts[level][p] += 1
                joined_below[(level, p)] = joined_below.get((level, p), 0) + 1
        changed_by_level: list[set[int]] = [set() for _ in range(self.height + 1)]
        for level, p in tainted:
            changed_by_level[level].add(p)
        for level, p in joined_below:
            changed_by_level[level].add(p)
        for level in range(old_height + 1, self.height + 1):  # the new roots of a growth
            changed_by_level[level].add(0)
        nodes: list[tuple[int, int, int]] = [(0, p, self.kids[0][p]) for p in sorted(changed_by_level[0])]
        wraps: list[Wrap] = []
        for level in range(1, self.height + 1):
            kids, keys, counts = self.kids[level], self.keys[level], self.counts[level]
            below_kids, below_keys, below_counts = self.kids[level - 1], self.keys[level - 1], self.counts[level - 1]
            for p in sorted(changed_by_level[level]):
                old_kid = kids[p]
                old_key = bytes(keys[KEY_BYTES * p:KEY_BYTES * (p + 1)])
                if counts[p] == 0:
                    kids[p] = 0
                    keys[KEY_BYTES * p:KEY_BYTES * (p + 1)] = bytes(KEY_BYTES)
                    nodes.append((level, p, 0))
                    continue
                kid, key = self._new_kid(), rng.random_bytes(KEY_BYTES)
                kids[p] = kid
                keys[KEY_BYTES * p:KEY_BYTES * (p + 1)] = key
                nodes.append((level, p, kid))
                if counts[p] == joined_below.get((level, p), 0):
                    continue  # only joiners below: they get the key by unicast
                if old_kid and (level, p) not in tainted:
                    wraps.append(Wrap(kid, old_kid, wrap(self.context, old_key, old_kid, key, kid)))
                    continue
                for c in range(d * p, d * p + d):
                    if below_counts[c] > joined_below.get((level - 1, c), 0):  # staying members below c
                        kek_kid = below_kids[c]
                        kek = bytes(below_keys[KEY_BYTES * c:KEY_BYTES * (c + 1)])
                        wraps.append(Wrap(kid, kek_kid, wrap(self.context, kek, kek_kid, key, kid)))
        return Rekey(self.height, tuple(nodes), tuple(wraps))

