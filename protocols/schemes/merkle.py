"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0) section 2.1,
as the append-only log of billing data (specs/merkle.md).

* :func:`leaf_hash`, :func:`node_hash`: the hashing of section 2.1.1 with
  SHA-256 and the domain-separation prefixes 0x00 (leaf) and 0x01 (node).
* :func:`MTH`, :func:`PATH`, :func:`PROOF`, :func:`SUBPROOF`: the recursive
  definitions of sections 2.1.1, 2.1.3.1 and 2.1.4.1, written as plainly as
  the RFC writes them.  They are the reference that :class:`MerkleLog` is
  tested against (tests/test_merkle.py); they cost O(n) hashes per call.
* :class:`MerkleLog`: an append-only log that keeps, per level, the hashes of
  the complete aligned subtrees (spec section 4).  Appending costs amortised
  O(1) hashes; the root of any past size, an inclusion proof (PATH) or a
  consistency proof (PROOF) costs O(log n) hashes.
* :func:`verify_inclusion`, :func:`verify_consistency`: the verification
  algorithms of sections 2.1.3.2 and 2.1.4.2.  They raise
  ``VerificationError`` when a proof does not check (they never return
  False), and ``ParameterError`` / ``DecodeError`` for malformed input,
  before any hashing.

Intentional departures from RFC 9162, labelled as such where they occur:
``consistency_proof`` and ``verify_consistency`` also accept ``old_size == 0``
and ``old_size == new_size`` (the RFC defines PROOF only for 0 < m < n); the
proof is then empty (spec section 3.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from protocols.errors import DecodeError, ParameterError, VerificationError, shown
from protocols.primitives import hashing

__all__ = [
    "HASH_SIZE", "MAX_TREE_SIZE", "MTH", "MerkleLog", "PATH", "PROOF", "SUBPROOF",
    "consistency_proof_length", "empty_root", "inclusion_proof_length", "leaf_hash",
    "node_hash", "verify_consistency", "verify_inclusion",
]

HASH_SIZE = 32
"""SHA-256 output length in bytes (RFC 9162 section 2.1: HASH is SHA-256 here)."""
MAX_TREE_SIZE = 2**64 - 1
"""Tree sizes and indices are uint64 (RFC 9162 section 4.8, tree_size)."""

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


# ---------------------------------------------------------------------------
# RFC 9162 section 2.1.1: hashing
# ---------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 section 2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashing.sha256(LEAF_PREFIX + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1: SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return hashing.sha256(NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """RFC 9162 section 2.1.1: MTH({}) = SHA-256() (the hash of the empty string)."""
    return hashing.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): RFC 9162 section 2.1.1's k."""
    return 1 << ((n - 1).bit_length() - 1)


# ---------------------------------------------------------------------------
# Plain references: the RFC's recursive definitions over the entries D[n]
# ---------------------------------------------------------------------------


def MTH(entries: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, the Merkle Tree Hash of D[n] (plain recursion, O(n) hashes)."""
    n = len(entries)
    if n == 0:
        return empty_root()
    if n == 1:
        return leaf_hash(entries[0])
    k = _split(n)
    return node_hash(MTH(entries[:k]), MTH(entries[k:]))


def PATH(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1, the inclusion proof PATH(m, D[n]) for 0 <= m < n
    (plain recursion; the reference that :meth:`MerkleLog.inclusion_proof` must equal)."""
    n = len(entries)
    if not 0 <= m < n:
        raise ParameterError(f"PATH needs 0 <= m < n, got m = {m}, n = {n}")
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return PATH(m, entries[:k]) + [MTH(entries[k:])]
    return PATH(m - k, entries[k:]) + [MTH(entries[:k])]


def SUBPROOF(m: int, entries: Sequence[bytes], b: bool) -> list[bytes]:
    """RFC 9162 section 2.1.4.1, SUBPROOF(m, D[n], b) for 0 < m <= n (plain recursion)."""
    n = len(entries)
    if not 0 < m <= n:
        raise ParameterError(f"SUBPROOF needs 0 < m <= n, got m = {m}, n = {n}")
    if m == n:
        return [] if b else [MTH(entries)]
    k = _split(n)
    if m <= k:
        return SUBPROOF(m, entries[:k], b) + [MTH(entries[k:])]
    return SUBPROOF(m - k, entries[k:], False) + [MTH(entries[:k])]


def PROOF(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.4.1, PROOF(m, D[n]) = SUBPROOF(m, D[n], true), 0 < m < n
    (plain recursion; the reference that :meth:`MerkleLog.consistency_proof` must equal)."""
    n = len(entries)
    if not 0 < m < n:
        raise ParameterError(f"PROOF needs 0 < m < n, got m = {m}, n = {n}")
    return SUBPROOF(m, entries, True)


# ---------------------------------------------------------------------------
# Input validation shared by the log and the verifiers
# ---------------------------------------------------------------------------


def _check_size(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParameterError(f"{name} must be an int")
    if not 0 <= value <= MAX_TREE_SIZE:
        raise ParameterError(f"{name} must be in [0, 2^64 - 1], got {shown(value)}")
    return value


def _check_hash(value: object, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{name} must be bytes")
    value = bytes(value)
    if len(value) != HASH_SIZE:
        raise DecodeError(f"{name} must be {HASH_SIZE} bytes, got {len(value)}")
    return value


def _check_proof(proof: object, expected: int, what: str) -> list[bytes]:
    if isinstance(proof, (bytes, bytearray, str)) or not isinstance(proof, Sequence):
        raise DecodeError(f"{what} must be a sequence of {HASH_SIZE}-byte hashes")
    if len(proof) != expected:
        raise DecodeError(f"{what} must have {expected} elements for these sizes, got {len(proof)}")
    return [_check_hash(p, f"{what}[{i}]") for i, p in enumerate(proof)]


def inclusion_proof_length(index: int, size: int) -> int:
    """The number of elements of PATH(index, D[size]) (RFC 9162 section 2.1.3.1), 0 <= index < size."""
    _check_size(index, "index")
    _check_size(size, "size")
    if index >= size:
        raise ParameterError(f"index {index} is not below the tree size {size}")
    length, m, n = 0, index, size
    while n > 1:
        k = _split(n)
        if m < k:
            n = k
        else:
            m, n = m - k, n - k
        length += 1
    return length


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """The number of elements of PROOF(old_size, D[new_size]) (RFC 9162 section 2.1.4.1);
    0 when old_size == 0 or old_size == new_size (spec section 3.3)."""
    _check_size(old_size, "old_size")
    _check_size(new_size, "new_size")
    if old_size > new_size:
        raise ParameterError(f"old_size {old_size} is greater than new_size {new_size}")
    if old_size == 0 or old_size == new_size:
        return 0
    length, m, n, b = 0, old_size, new_size, True
    while m != n:
        k = _split(n)
        if m <= k:
            n = k
        else:
            m, n, b = m - k, n - k, False
        length += 1
    return length if b else length + 1


# ---------------------------------------------------------------------------
# Spec section 4: the log
# ---------------------------------------------------------------------------


@dataclass
class MerkleLog:
    """An append-only RFC 9162 Merkle tree (spec section 4).

    ``levels[h]`` holds, 32 bytes each and in order, the hashes of every
    complete subtree of 2^h leaves aligned at a multiple of 2^h:
    ``levels[0]`` are the leaf hashes, ``levels[h][i]`` covers leaves
    [i * 2^h, (i + 1) * 2^h).  Such a node never changes once its last leaf
    is appended, so the structure serves the root and proofs of every past
    size.  Storage: at most 2n hashes.  Costs in hash operations:
    :meth:`append` amortised 1 (at most 1 + log2 n); :meth:`root`,
    :meth:`subtree_root` (for the ranges the RFC's recursions use),
    :meth:`inclusion_proof` and :meth:`consistency_proof` O(log n).

    State only (no files, no global state); a ``system`` store can persist
    ``levels`` as it is, or rebuild it with :meth:`from_leaf_hashes`.
    """

    levels: list[bytearray] = field(default_factory=lambda: [bytearray()], repr=False)

    # -- building ------------------------------------------------------------

    @classmethod
    def from_entries(cls, entries: Sequence[bytes]) -> MerkleLog:
        """A log holding ``entries`` d(0) ... d(n-1), in order (a list or tuple; DecodeError otherwise)."""
        if not isinstance(entries, (list, tuple)):
            raise DecodeError("log entries must be a list or tuple of byte strings")
        log = cls()
        for data in entries:
            log.append(data)
        return log

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes]) -> MerkleLog:
        """A log whose leaves have the given leaf hashes (each 32 bytes; a list or tuple)."""
        if not isinstance(hashes, (list, tuple)):
            raise DecodeError("leaf hashes must be a list or tuple of 32-byte strings")
        log = cls()
        for i, h in enumerate(hashes):
            log.append_leaf_hash(_check_hash(h, f"hashes[{i}]"))
        return log

    @property
    def size(self) -> int:
        """The number of leaves, n."""
        return len(self.levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes) -> int:
        """Append entry d(n) with hash :func:`leaf_hash` (data); returns its index n."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError("a log entry must be bytes")
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, h: bytes) -> int:
        """Append a leaf by its hash (already SHA-256(0x00 || d)); returns its index.

        Amortised one node hash: every aligned subtree this leaf completes is
        hashed once, from its two halves."""
        h = _check_hash(h, "leaf hash")
        if self.size >= MAX_TREE_SIZE:
            raise ParameterError("the log is full (2^64 - 1 leaves)")
        index = self.size
        level, position = 0, index
        self.levels[0] += h
        while position & 1:
            left = self._node(level, position - 1)
            h = node_hash(left, h)
            level, position = level + 1, position >> 1
            if level == len(self.levels):
                self.levels.append(bytearray())
            self.levels[level] += h
        return index

    # -- reading -------------------------------------------------------------

    def _node(self, level: int, position: int) -> bytes:
        offset = position * HASH_SIZE
        return bytes(self.levels[level][offset:offset + HASH_SIZE])

    def leaf(self, index: int) -> bytes:
        """The leaf hash of entry ``index``."""
        _check_size(index, "index")
        if index >= self.size:
            raise ParameterError(f"index {index} is not below the log size {self.size}")
        return self._node(0, index)

    def _range(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for 0 <= start < end <= size, using stored nodes.

        Splits as section 2.1.1 does; an aligned complete range is one lookup.
        When ``start`` is a multiple of the largest power of two below
        ``end - start`` (every range the recursions of sections 2.1.3.1 and
        2.1.4.1 visit) every left part is such a lookup, so the cost is at most
        one node hash per bit of ``end - start``: O(log n).
        """
        m = end - start
        level = m.bit_length() - 1
        if m == 1 << level and start & (m - 1) == 0:
            return self._node(level, start >> level)
        k = _split(m)
        return node_hash(self._range(start, start + k), self._range(start + k, end))

    def _check_size_at_most_log(self, size: int, name: str) -> int:
        _check_size(size, name)
        if size > self.size:
            raise ParameterError(f"{name} {size} is beyond the log size {self.size}")
        return size

    def subtree_root(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) (RFC 9162 section 2.1.1 applied to a slice of the log).

        O(log n) hashes when ``start`` is a multiple of the largest power of two
        below ``end - start`` (the subtrees of the tree, including every one a
        proof names); any other range is correct but may cost O(end - start).
        """
        _check_size(start, "start")
        self._check_size_at_most_log(end, "end")
        if start > end:
            raise ParameterError(f"start {start} is after end {end}")
        if start == end:
            return empty_root()
        return self._range(start, end)

    def root(self, size: int | None = None) -> bytes:
        """RFC 9162 section 2.1.1, MTH(D[0:size]) for any past size (default: now).
        At most popcount(size) - 1 node hashes."""
        size = self.size if size is None else self._check_size_at_most_log(size, "size")
        if size == 0:
            return empty_root()
        return self._range(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 section 2.1.3.1, PATH(index, D[0:size]) (default size: now).

        Walks the recursion from the root down and emits the siblings leaf
        first.  Every left sibling is a stored node; at most one right sibling
        (the first, if the walk turns left) is an incomplete range: O(log n).
        """
        size = self.size if size is None else self._check_size_at_most_log(size, "size")
        _check_size(index, "index")
        if index >= size:
            raise ParameterError(f"index {index} is not below the tree size {size}")
        siblings = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                siblings.append(self._range(start + k, end))
                end = start + k
            else:
                siblings.append(self._range(start, start + k))
                start = start + k
        siblings.reverse()
        return siblings

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 section 2.1.4.1, PROOF(old_size, D[0:new_size]) (default new_size: now).

        Departure (spec section 3.3): old_size == 0 and old_size == new_size
        are accepted and give the empty proof; the RFC defines PROOF only for
        0 < m < n.  O(log n) hashes, as for :meth:`inclusion_proof`.
        """
        new_size = self.size if new_size is None else self._check_size_at_most_log(new_size, "new_size")
        _check_size(old_size, "old_size")
        if old_size > new_size:
            raise ParameterError(f"old_size {old_size} is greater than new_size {new_size}")
        if old_size == 0 or old_size == new_size:
            return []
        # SUBPROOF(m, D[start:end], b), unrolled: m counts leaves from start.
        items = []
        start, end, m, b = 0, new_size, old_size, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                items.append(self._range(start + k, end))
                end = start + k
            else:
                items.append(self._range(start, start + k))
                start, m, b = start + k, m - k, False
        if not b:
            items.append(self._range(start, end))
        items.reverse()
        return items


# ---------------------------------------------------------------------------
# RFC 9162 section 2.1.3.2 and 2.1.4.2: verification
# ---------------------------------------------------------------------------


def _same(a: bytes, b: bytes) -> bool:
    return hashing.compare_digest(a, b)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2: verify that ``leaf_hash`` is leaf ``index`` of the
    tree of ``size`` leaves whose root is ``root``, by the inclusion proof ``proof``.

    Input validation first, before any hashing: ``index`` and ``size`` ints in
    [0, 2^64 - 1] with index < size (else ``ParameterError``); hashes 32 bytes
    and ``proof`` exactly ``inclusion_proof_length(index, size)`` elements
    (else ``DecodeError``).  Returns None; a proof that does not lead to
    ``root`` raises ``VerificationError``.
    """
    _check_size(index, "index")
    _check_size(size, "size")
    if size == 0:
        raise ParameterError("an empty tree has no leaves to prove inclusion of")
    if index >= size:  # step 1
        raise ParameterError(f"index {index} is not below the tree size {size}")
    h = _check_hash(leaf_hash, "leaf_hash")
    root = _check_hash(root, "root")
    path = _check_proof(proof, inclusion_proof_length(index, size), "inclusion proof")

    fn, sn = index, size - 1  # step 2
    r = h  # step 3
    for p in path:  # step 4
        if sn == 0:  # 4a (unreachable once the length is checked; kept as the RFC has it)
            raise VerificationError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1  # 4c
    if sn != 0:  # step 5
        raise VerificationError("inclusion proof is shorter than the path to the root")
    if not _same(r, root):
        raise VerificationError(f"inclusion proof of leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """RFC 9162 section 2.1.4.2: verify that the tree of ``new_size`` leaves with root
    ``new_root`` extends the tree of ``old_size`` leaves with root ``old_root``.

    Input validation first, before any hashing: sizes ints in [0, 2^64 - 1]
    with old_size <= new_size (else ``ParameterError``); roots 32 bytes and
    ``proof`` exactly ``consistency_proof_length(old_size, new_size)``
    elements (else ``DecodeError``).  Departure (spec section 3.3): for
    old_size == new_size the proof is empty and the roots must be equal; for
    old_size == 0 the proof is empty and ``old_root`` must be MTH({}).
    Returns None; a failed check raises ``VerificationError``.
    """
    _check_size(old_size, "old_size")
    _check_size(new_size, "new_size")
    if old_size > new_size:
        raise ParameterError(f"old_size {old_size} is greater than new_size {new_size}")
    old_root = _check_hash(old_root, "old_root")
    new_root = _check_hash(new_root, "new_root")
    path = _check_proof(proof, consistency_proof_length(old_size, new_size), "consistency proof")

    if old_size == 0:
        if not _same(old_root, empty_root()):
            raise VerificationError("old_root is not the root of the empty tree")
        return
    if old_size == new_size:
        if not _same(old_root, new_root):
            raise VerificationError(f"the two roots of size {old_size} differ")
        return

    # 0 < first < second: the algorithm of section 2.1.4.2.
    if not path:  # step 1 (unreachable once the length is checked)
        raise VerificationError("consistency proof is empty")
    if old_size & (old_size - 1) == 0:  # step 2: first is an exact power of 2
        path = [old_root] + path
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            raise VerificationError("consistency proof is longer than the path to the new root")
        if fn & 1 or fn == sn:  # 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1  # 6c
    # step 7
    if sn != 0:
        raise VerificationError("consistency proof is shorter than the path to the new root")
    if not _same(fr, old_root):
        raise VerificationError(f"consistency proof does not lead to old_root (size {old_size})")
    if not _same(sr, new_root):
        raise VerificationError(f"consistency proof does not lead to new_root (size {new_size})")
