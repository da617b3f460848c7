"""RFC 9162 section 2.1 Merkle tree (protocols/schemes/merkle.py, specs/merkle.md).

Known answers from the Certificate Transparency reference code (vectors/rfc9162.json),
the fast log held equal to the RFC's recursive definitions for every size up
to 70, hypothesis properties for completeness and for the rejection of every
single change, and the input validation that comes before any hashing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError, VerificationError
from protocols.schemes import merkle
from protocols.schemes.merkle import (
    MTH, PATH, PROOF, MerkleLog, consistency_proof_length, empty_root, inclusion_proof_length,
    leaf_hash, node_hash, verify_consistency, verify_inclusion,
)
from protocols.system.vectorsets import rfc9162

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "rfc9162.json"
ENTRIES70 = [i.to_bytes(2, "big") * (i % 3) for i in range(70)]
LOG70 = MerkleLog.from_entries(ENTRIES70)

# ---------------------------------------------------------------------------
# Spec 2: hashing (RFC 9162 section 2.1.1)


def test_hashing_is_rfc9162():
    import hashlib
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    assert MTH([]) == empty_root() == hashlib.sha256(b"").digest()
    # The largest-power-of-two split and no duplication of an odd node:
    d = [b"a", b"b", b"c"]
    assert MTH(d) == node_hash(node_hash(leaf_hash(b"a"), leaf_hash(b"b")), leaf_hash(b"c"))
    # Domain separation: a leaf's hash is not the hash of the node with the same bytes.
    assert leaf_hash(b"x" * 64) != node_hash(b"x" * 32, b"x" * 32)


# ---------------------------------------------------------------------------
# Spec 7: the published vectors


def _vectors() -> list[dict]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_published_vectors_recompute(vector):
    rfc9162.verify_vector(vector)


def test_published_vectors_by_hand():
    by_name = {v["name"]: v for v in _vectors()}
    tree = by_name["tree-hash"]
    entries = [bytes.fromhex(e) for e in tree["entries"]]
    log = MerkleLog.from_entries(entries)
    assert [log.root(n).hex() for n in range(1, 9)] == tree["roots"]
    assert log.root(0).hex() == tree["empty_root"]
    for v in _vectors():
        if v["operation"] == "inclusion":
            assert [p.hex() for p in log.inclusion_proof(v["leaf_index"], v["tree_size"])] == v["path"]
        elif v["operation"] == "consistency":
            assert [p.hex() for p in log.consistency_proof(v["old_size"], v["new_size"])] == v["proof"]


# ---------------------------------------------------------------------------
# Spec 4: the log equals the RFC's recursive definitions


def test_log_equals_reference_for_every_size_up_to_70():
    for n in range(0, 71):
        assert LOG70.root(n) == MTH(ENTRIES70[:n]), n
        for m in range(n):
            path = LOG70.inclusion_proof(m, n)
            assert path == PATH(m, ENTRIES70[:n]), (m, n)
            assert len(path) == inclusion_proof_length(m, n)
        for m in range(1, n):
            proof = LOG70.consistency_proof(m, n)
            assert proof == PROOF(m, ENTRIES70[:n]), (m, n)
            assert len(proof) == consistency_proof_length(m, n)


def test_subtree_root_equals_mth_of_the_slice():
    for start in range(0, 70):
        for end in range(start, min(70, start + 20) + 1):
            assert LOG70.subtree_root(start, end) == MTH(ENTRIES70[start:end]), (start, end)


def test_incremental_log_keeps_past_answers():
    log = MerkleLog()
    for n, data in enumerate(ENTRIES70[:40]):
        assert log.append(data) == n
        assert log.root() == MTH(ENTRIES70[:n + 1])
        assert log.root(n // 2) == MTH(ENTRIES70[:n // 2])
    assert MerkleLog.from_leaf_hashes([log.leaf(i) for i in range(40)]) == log


# ---------------------------------------------------------------------------
# Spec 5: completeness (hypothesis)

entries_st = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(entries=entries_st, data=st.data())
def test_inclusion_proofs_verify(entries, data):
    log = MerkleLog.from_entries(entries)
    size = data.draw(st.integers(1, len(entries)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = log.inclusion_proof(index, size)
    verify_inclusion(leaf_hash(entries[index]), index, size, proof, log.root(size))
    verify_inclusion(leaf_hash(entries[index]), index, size, proof, MTH(entries[:size]))


@settings(max_examples=150, deadline=None)
@given(entries=entries_st, data=st.data())
def test_consistency_proofs_verify(entries, data):
    log = MerkleLog.from_entries(entries)
    new = data.draw(st.integers(0, len(entries)), label="new_size")
    old = data.draw(st.integers(0, new), label="old_size")
    proof = log.consistency_proof(old, new)
    verify_consistency(old, new, log.root(old), log.root(new), proof)
    verify_consistency(old, new, MTH(entries[:old]), MTH(entries[:new]), proof)


# ---------------------------------------------------------------------------
# Spec 5: soundness: every single change is rejected (hypothesis)

REJECTED = (VerificationError, DecodeError, ParameterError)


def sides(index: int, size: int) -> tuple[str, ...] | None:
    """The hashing shape of PATH(index, D[size]), leaf first: for each element,
    whether it is hashed on the left or the right (None if index >= size).
    Written from the recursion of RFC 9162 section 2.1.3.1, independently of
    the verifier.  Two (index, size) pairs with the same shape make the same
    hashes from the same proof (spec section 5.3)."""
    if not 0 <= index < size:
        return None
    out = []
    while size > 1:
        k = 1 << ((size - 1).bit_length() - 1)
        if index < k:
            out.append("right")
            size = k
        else:
            out.append("left")
            index, size = index - k, size - k
    return tuple(reversed(out))


def _flip(h: bytes, bit: int) -> bytes:
    out = bytearray(h)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def consistency_sides(m: int, n: int) -> tuple[str, ...] | None:
    """The hashing shape of PROOF(m, D[n]) (RFC 9162 section 2.1.4.1), as
    :func:`sides` is for PATH; None outside 0 < m < n."""
    if not 0 < m < n:
        return None
    out, b = [], True
    while m != n:
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            out.append("right")
            n = k
        else:
            out.append("left")
            m, n, b = m - k, n - k, False
    if not b:
        out.append("old subtree")
    return tuple(reversed(out))


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(st.binary(max_size=8), min_size=1, max_size=70, unique=True), data=st.data())
def test_any_single_change_breaks_an_inclusion_proof(entries, data):
    log = MerkleLog.from_entries(entries)
    size = data.draw(st.integers(1, len(entries)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof, root, leaf = log.inclusion_proof(index, size), log.root(size), log.leaf(index)
    args = [leaf, index, size, proof, root]
    kinds = ["leaf", "root", "index", "size", "extra"]
    if proof:
        kinds += ["flip", "drop"]
    if len(entries) > 1:
        kinds.append("other_leaf")
    kind = data.draw(st.sampled_from(kinds), label="change")
    bit = data.draw(st.integers(0, 255), label="bit")
    expected = VerificationError
    if kind == "leaf":
        args[0] = _flip(leaf, bit)
    elif kind == "other_leaf":
        other = data.draw(st.integers(0, len(entries) - 1).filter(lambda i: i != index), label="other")
        args[0] = leaf_hash(entries[other])
    elif kind == "root":
        args[4] = _flip(root, bit)
    elif kind == "flip":
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        args[3] = proof[:i] + [_flip(proof[i], bit)] + proof[i + 1:]
    elif kind == "drop":
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        args[3] = proof[:i] + proof[i + 1:]
        expected = DecodeError  # the length no longer fits (index, size)
    elif kind == "extra":
        args[3] = proof + [root]
        expected = DecodeError
    elif kind == "index":
        new_index = data.draw(st.integers(0, size).filter(lambda i: i != index), label="new_index")
        args[1] = new_index
        expected = REJECTED  # out of range, another length, or the wrong path
    elif kind == "size":
        new_size = data.draw(st.integers(0, 2 * size + 1).filter(lambda s: s != size), label="new_size")
        args[2] = new_size
        expected = REJECTED
    if kind in ("index", "size") and sides(args[1], args[2]) == sides(index, size):
        verify_inclusion(*args)  # the same hashes: the proof does not bind the size (spec 5.3)
        return
    with pytest.raises(expected):
        verify_inclusion(*args)


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(st.binary(max_size=8), min_size=2, max_size=70, unique=True), data=st.data())
def test_any_single_change_breaks_a_consistency_proof(entries, data):
    log = MerkleLog.from_entries(entries)
    new = data.draw(st.integers(2, len(entries)), label="new_size")
    old = data.draw(st.integers(1, new - 1), label="old_size")
    proof = log.consistency_proof(old, new)
    args = [old, new, log.root(old), log.root(new), proof]
    kind = data.draw(st.sampled_from(
        ["old_root", "new_root", "flip", "drop", "extra", "old_size", "new_size", "changed_leaf"]), label="change")
    bit = data.draw(st.integers(0, 255), label="bit")
    expected = VerificationError
    if kind == "old_root":
        args[2] = _flip(args[2], bit)
    elif kind == "new_root":
        args[3] = _flip(args[3], bit)
    elif kind == "flip":
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        args[4] = proof[:i] + [_flip(proof[i], bit)] + proof[i + 1:]
    elif kind == "drop":
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        args[4] = proof[:i] + proof[i + 1:]
        expected = DecodeError
    elif kind == "extra":
        args[4] = proof + [args[3]]
        expected = DecodeError
    elif kind == "old_size":
        args[0] = data.draw(st.integers(0, new + 1).filter(lambda s: s != old), label="changed_old")
        expected = REJECTED
    elif kind == "new_size":
        args[1] = data.draw(st.integers(0, 2 * new + 1).filter(lambda s: s != new), label="changed_new")
        expected = REJECTED
    elif kind == "changed_leaf":
        # The log rewrote history: a leaf of the old tree differs in the new one.
        i = data.draw(st.integers(0, old - 1), label="leaf")
        forged = list(entries[:new])
        forged[i] = forged[i] + b"!"
        other = MerkleLog.from_entries(forged)
        args[3], args[4] = other.root(new), other.consistency_proof(old, new)
    if kind in ("old_size", "new_size") and consistency_sides(args[0], args[1]) == consistency_sides(old, new):
        verify_consistency(*args)  # the same hashes: the proof does not bind the new size (spec 5.3)
        return
    with pytest.raises(expected):
        verify_consistency(*args)


def test_changed_leaf_breaks_inclusion_against_the_old_root():
    forged = list(ENTRIES70)
    forged[17] = b"forged"
    other = MerkleLog.from_entries(forged)
    with pytest.raises(VerificationError, match="does not lead to the root"):
        verify_inclusion(other.leaf(17), 17, 70, other.inclusion_proof(17, 70), LOG70.root(70))


def test_exhaustive_size_and_index_changes_small():
    """Every wrong (index, size) pair up to 12 leaves, with the real proof, is
    rejected exactly when its hashing shape differs (spec section 5.3); with
    the true size, every other index is rejected."""
    log = MerkleLog.from_entries(ENTRIES70[:12])
    for size in range(1, 13):
        for index in range(size):
            proof, root, leaf = log.inclusion_proof(index, size), log.root(size), log.leaf(index)
            for i2 in range(0, 14):
                for s2 in range(0, 14):
                    if (i2, s2) == (index, size):
                        continue
                    if sides(i2, s2) == sides(index, size):
                        # Only with another size: under the right size the shape fixes the index.
                        assert s2 != size
                        verify_inclusion(leaf, i2, s2, proof, root)
                        continue
                    with pytest.raises(REJECTED):
                        verify_inclusion(leaf, i2, s2, proof, root)


# ---------------------------------------------------------------------------
# Spec 3.3 and 5: sizes at the edges, malformed input before any hashing


def test_edge_sizes_of_consistency():
    verify_consistency(0, 0, empty_root(), empty_root(), [])
    verify_consistency(0, 5, empty_root(), LOG70.root(5), [])
    verify_consistency(7, 7, LOG70.root(7), LOG70.root(7), [])
    with pytest.raises(VerificationError, match="differ"):
        verify_consistency(7, 7, LOG70.root(7), LOG70.root(6), [])
    with pytest.raises(VerificationError, match="empty tree"):
        verify_consistency(0, 5, LOG70.root(1), LOG70.root(5), [])
    assert LOG70.consistency_proof(0, 9) == [] and LOG70.consistency_proof(9, 9) == []


@pytest.fixture
def no_hashing(monkeypatch):
    """Fail the test if anything is hashed."""
    def forbidden(*args):
        raise AssertionError("hashed before validating")
    monkeypatch.setattr(merkle, "node_hash", forbidden)
    monkeypatch.setattr(merkle.hashing, "sha256", forbidden)


GOOD_ROOT = LOG70.root(8)
GOOD_LEAF = LOG70.leaf(3)
GOOD_PATH = LOG70.inclusion_proof(3, 8)
GOOD_CONS = LOG70.consistency_proof(3, 8)
OLD_ROOT = LOG70.root(3)


@pytest.mark.parametrize(("args", "error", "message"), [
    ((GOOD_LEAF, 8, 8, GOOD_PATH, GOOD_ROOT), ParameterError, "not below"),
    ((GOOD_LEAF, 0, 0, [], GOOD_ROOT), ParameterError, "empty tree"),
    ((GOOD_LEAF, -1, 8, GOOD_PATH, GOOD_ROOT), ParameterError, "index"),
    ((GOOD_LEAF, 3, 2**64, GOOD_PATH, GOOD_ROOT), ParameterError, "size"),
    ((GOOD_LEAF, True, 8, GOOD_PATH, GOOD_ROOT), ParameterError, "int"),
    ((GOOD_LEAF, 3, 8, GOOD_PATH[:-1], GOOD_ROOT), DecodeError, "3 elements"),
    ((GOOD_LEAF, 3, 8, GOOD_PATH + [GOOD_ROOT], GOOD_ROOT), DecodeError, "3 elements"),
    ((GOOD_LEAF, 3, 8, [GOOD_PATH[0], GOOD_PATH[1][:31], GOOD_PATH[2]], GOOD_ROOT), DecodeError, r"\[1\]"),
    ((GOOD_LEAF, 3, 8, b"".join(GOOD_PATH), GOOD_ROOT), DecodeError, "sequence"),
    ((GOOD_LEAF[:16], 3, 8, GOOD_PATH, GOOD_ROOT), DecodeError, "leaf_hash"),
    ((GOOD_LEAF, 3, 8, GOOD_PATH, "00" * 32), DecodeError, "root"),
])
def test_malformed_inclusion_input(no_hashing, args, error, message):
    with pytest.raises(error, match=message):
        verify_inclusion(*args)


@pytest.mark.parametrize(("args", "error", "message"), [
    ((8, 3, GOOD_ROOT, OLD_ROOT, GOOD_CONS), ParameterError, "greater"),
    ((-1, 8, OLD_ROOT, GOOD_ROOT, GOOD_CONS), ParameterError, "old_size"),
    ((3, 2**64, OLD_ROOT, GOOD_ROOT, GOOD_CONS), ParameterError, "new_size"),
    ((3, 8, OLD_ROOT, GOOD_ROOT, GOOD_CONS[:-1]), DecodeError, "elements"),
    ((3, 8, OLD_ROOT, GOOD_ROOT, GOOD_CONS + [GOOD_ROOT]), DecodeError, "elements"),
    ((5, 5, GOOD_ROOT, GOOD_ROOT, [GOOD_ROOT]), DecodeError, "0 elements"),
    ((3, 8, OLD_ROOT, GOOD_ROOT, [GOOD_CONS[0] + b"\0"] + GOOD_CONS[1:]), DecodeError, r"\[0\]"),
    ((3, 8, OLD_ROOT[:31], GOOD_ROOT, GOOD_CONS), DecodeError, "old_root"),
    ((3, 8, OLD_ROOT, None, GOOD_CONS), DecodeError, "new_root"),
])
def test_malformed_consistency_input(no_hashing, args, error, message):
    with pytest.raises(error, match=message):
        verify_consistency(*args)


def test_log_rejects_bad_requests():
    with pytest.raises(ParameterError):
        LOG70.root(71)
    with pytest.raises(ParameterError):
        LOG70.inclusion_proof(5, 5)
    with pytest.raises(ParameterError):
        LOG70.consistency_proof(6, 5)
    with pytest.raises(ParameterError):
        LOG70.subtree_root(5, 4)
    with pytest.raises(ParameterError):
        LOG70.leaf(70)
    with pytest.raises(DecodeError):
        MerkleLog().append("text")
    with pytest.raises(DecodeError):
        MerkleLog().append_leaf_hash(b"short")
    with pytest.raises(ParameterError):
        PATH(3, ENTRIES70[:3])
    with pytest.raises(ParameterError):
        PROOF(3, ENTRIES70[:3])


# ---------------------------------------------------------------------------
# Spec 4: costs


def test_costs_are_logarithmic(monkeypatch):
    """Count node hashes: append amortised <= 1, root/proofs O(log n) at 2^16 + 12345 leaves."""
    log = MerkleLog.from_leaf_hashes([i.to_bytes(32, "big") for i in range(2**16 + 12345)])
    calls = []
    real = merkle.node_hash
    monkeypatch.setattr(merkle, "node_hash", lambda l, r: calls.append(1) or real(l, r))
    n = log.size
    log.root(n - 777)
    assert len(calls) <= 17
    calls.clear()
    for index in (0, 1, n // 3, n - 1):
        log.inclusion_proof(index, n)
    assert len(calls) <= 4 * 17
    calls.clear()
    for old in (1, 2**16, n // 3, n - 1):
        log.consistency_proof(old, n)
    assert len(calls) <= 4 * 17
    calls.clear()
    for i in range(1024):
        log.append_leaf_hash(i.to_bytes(32, "little"))
    assert len(calls) <= 1024 + 17


@pytest.mark.slow
def test_million_leaves():
    import time
    log = MerkleLog()
    t0 = time.perf_counter()
    for i in range(10**6):
        log.append(i.to_bytes(8, "big"))
    assert time.perf_counter() - t0 < 60
    n = log.size
    root = log.root()
    for index in (0, 123456, n - 1):
        verify_inclusion(log.leaf(index), index, n, log.inclusion_proof(index, n), root)
    for old in (1, 524288, 777777, n - 1):
        verify_consistency(old, n, log.root(old), root, log.consistency_proof(old, n))
