"""Vector family ``rfc9162``: the Merkle tree of RFC 9162 section 2.1 with SHA-256
(specs/merkle.md section 7).

``vectors/rfc9162.json`` is transcribed, not generated: :func:`transcribe`
parses the known-answer tables of the Certificate Transparency reference
code by script (values copied, never retyped) and the file is pinned by its
digest.  The sources:

* google/certificate-transparency ``cpp/merkletree/merkle_tree_test.cc``
  (``kInputs``, ``kSHA256EmptyTreeHash``, ``kSHA256Roots``, ``kSHA256Paths``,
  ``kSHA256Proofs``).  Its path table numbers leaves from 1; the file uses
  RFC 9162's 0-based index (leaf - 1), and leaves out the table's first row
  (leaf 0 of the empty tree, an invalid request whose expected answer is an
  empty path);
* transparency-dev/merkle ``testonly/constants.go`` (``NodeHashes``: every
  complete subtree of the same eight-leaf tree), checked with
  ``MerkleLog.subtree_root``.

:func:`verify_vector` recomputes every value with both the fast
:class:`~protocols.schemes.merkle.MerkleLog` and the plain recursive
references (MTH, PATH, PROOF), runs the verifiers of sections 2.1.3.2 and
2.1.4.2 on the stored proofs, and names the first field that differs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from protocols.errors import VectorMismatchError
from protocols.schemes import merkle
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field, dispatch, expect, expect_refusal, hex_list_field, list_field, recompute, small_int_field,
    require_invalid, str_field,
)

PROTOCOL = "rfc9162"
SUITE = "Merkle tree, SHA-256"
FILE = "rfc9162.json"

CT_REPO = "google/certificate-transparency"
CT_PATH = "cpp/merkletree/merkle_tree_test.cc"
CT_COMMIT = "0fe5116f42890853e9fcf5120f1f5129d64f64ea"
TD_REPO = "transparency-dev/merkle"
TD_PATH = "testonly/constants.go"
TD_COMMIT = "417fb0c314750d94e53942e9f92e79b6d35915db"

SECTIONS = {"tree_hash": "2.1.1", "inclusion": "2.1.3", "consistency": "2.1.4"}


# -- reading fields ------------------------------------------------------------------


def _section(v: Mapping[str, Any], operation: str) -> None:
    expect("section", str_field(v, "section"), SECTIONS[operation])


def _entries(v: Mapping[str, Any]) -> list[bytes]:
    entries = hex_list_field(v, "entries")
    if not entries:
        raise VectorMismatchError("field 'entries' must not be empty")
    return entries


def _size(v: Mapping[str, Any], name: str, upper: int) -> int:
    value = small_int_field(v, name)
    if not 0 <= value <= upper:
        raise VectorMismatchError(f"field {name!r} must be in [0, {upper}]")
    return value


def _hash_list(v: Mapping[str, Any], name: str) -> list[bytes]:
    values = hex_list_field(v, name)
    for i, h in enumerate(values):
        if len(h) != merkle.HASH_SIZE:
            raise VectorMismatchError(f"field '{name}[{i}]' must be {merkle.HASH_SIZE} bytes")
    return values


# -- recomputation -----------------------------------------------------------------


def _tree_hash(v: Mapping[str, Any]) -> None:
    _section(v, "tree_hash")
    entries = _entries(v)
    log = merkle.MerkleLog.from_entries(entries)
    expect("empty_root", bytes_field(v, "empty_root"), merkle.empty_root())
    expect("empty_root", bytes_field(v, "empty_root"), merkle.MTH([]))
    roots = _hash_list(v, "roots")
    if len(roots) != len(entries):
        raise VectorMismatchError("field 'roots' must hold one root per tree size 1..len(entries)")
    for size in range(1, len(entries) + 1):
        expect(f"roots[{size - 1}]", roots[size - 1], merkle.MTH(entries[:size]))
        expect(f"roots[{size - 1}]", roots[size - 1], log.root(size))
    levels = list_field(v, "subtree_hashes")
    expected_levels = len(entries).bit_length()
    if len(levels) != expected_levels:
        raise VectorMismatchError(f"field 'subtree_hashes' must have {expected_levels} levels")
    for level, raw in enumerate(levels):
        name = f"subtree_hashes[{level}]"
        nodes = _hash_list({name: raw}, name)
        width = 1 << level
        if len(nodes) != len(entries) // width:
            raise VectorMismatchError(f"field {name!r} must hold every complete subtree of {width} leaves")
        for i, h in enumerate(nodes):
            where = f"{name}[{i}]"
            expect(where, h, merkle.MTH(entries[i * width:(i + 1) * width]))
            expect(where, h, recompute(where, functools.partial(log.subtree_root, i * width, (i + 1) * width)))


def _inclusion(v: Mapping[str, Any]) -> None:
    _section(v, "inclusion")
    entries = _entries(v)
    size = _size(v, "tree_size", len(entries))
    index = small_int_field(v, "leaf_index")
    if not 0 <= index < size:
        raise VectorMismatchError("field 'leaf_index' must be in [0, tree_size)")
    log = merkle.MerkleLog.from_entries(entries)
    leaf = bytes_field(v, "leaf_hash")
    expect("leaf_hash", leaf, merkle.leaf_hash(entries[index]))
    root = bytes_field(v, "root")
    expect("root", root, merkle.MTH(entries[:size]))
    expect("root", root, log.root(size))
    path = _hash_list(v, "path")
    expect("path", path, recompute("path", lambda: merkle.PATH(index, entries[:size])))
    expect("path", path, recompute("path", lambda: log.inclusion_proof(index, size)))
    recompute("path", lambda: merkle.verify_inclusion(leaf, index, size, path, root))


def _consistency(v: Mapping[str, Any]) -> None:
    _section(v, "consistency")
    entries = _entries(v)
    new_size = _size(v, "new_size", len(entries))
    old_size = _size(v, "old_size", new_size)
    log = merkle.MerkleLog.from_entries(entries)
    old_root = bytes_field(v, "old_root")
    new_root = bytes_field(v, "new_root")
    expect("old_root", old_root, merkle.MTH(entries[:old_size]))
    expect("old_root", old_root, log.root(old_size))
    expect("new_root", new_root, merkle.MTH(entries[:new_size]))
    expect("new_root", new_root, log.root(new_size))
    proof = _hash_list(v, "proof")
    if 0 < old_size < new_size:
        expect("proof", proof, recompute("proof", lambda: merkle.PROOF(old_size, entries[:new_size])))
    expect("proof", proof, recompute("proof", lambda: log.consistency_proof(old_size, new_size)))
    recompute("proof", lambda: merkle.verify_consistency(old_size, new_size, old_root, new_root, proof))


def _hashes_loose(v: Mapping[str, Any], name: str) -> list[bytes]:
    """A list of hex byte strings of any length (a negative vector may hold a wrong-length hash)."""
    return hex_list_field(v, name)


def _inclusion_rejects(v: Mapping[str, Any]) -> None:
    """An invalid inclusion vector: verify_inclusion (2.1.3.2) MUST refuse it with its ``error``."""
    _section(v, "inclusion")
    leaf, root = bytes_field(v, "leaf_hash"), bytes_field(v, "root")
    index, size = small_int_field(v, "leaf_index"), small_int_field(v, "tree_size")
    path = _hashes_loose(v, "path")
    str_field(v, "change")
    expect_refusal(v, lambda: merkle.verify_inclusion(leaf, index, size, path, root))


def _consistency_rejects(v: Mapping[str, Any]) -> None:
    """An invalid consistency vector: verify_consistency (2.1.4.2) MUST refuse it with its ``error``."""
    _section(v, "consistency")
    old_root, new_root = bytes_field(v, "old_root"), bytes_field(v, "new_root")
    old_size, new_size = small_int_field(v, "old_size"), small_int_field(v, "new_size")
    proof = _hashes_loose(v, "proof")
    str_field(v, "change")
    expect_refusal(v, lambda: merkle.verify_consistency(old_size, new_size, old_root, new_root, proof))


def _invalid(v: Mapping[str, Any], check) -> None:
    require_invalid(v)
    check(v)


OPERATIONS = {
    "tree_hash": _tree_hash,
    "inclusion": _inclusion,
    "consistency": _consistency,
    "inclusion-rejects": lambda v: _invalid(v, _inclusion_rejects),
    "consistency-rejects": lambda v: _invalid(v, _consistency_rejects),
}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# -- transcription --------------------------------------------------------------------


_TV = re.compile(r'\{\s*"([0-9a-f]*)",\s*(\d+)\s*\}')
_ROW = re.compile(r"\{(\d+),\s*(\d+),\s*(\d+),\s*\{((?:\s*\{\s*\"[0-9a-f]*\",\s*\d+\s*\},?)+)\s*\}\}")


def _block(text: str, start: str, stop: str) -> str:
    i = text.index(start)
    return text[i + len(start):text.index(stop, i)]


def _test_vectors(block: str) -> list[str]:
    out = []
    for value, length in _TV.findall(block):
        if len(value) != 2 * int(length):
            raise ValueError(f"test vector {value!r} is not {length} bytes")
        out.append(value)
    return out


def _rows(block: str) -> list[tuple[int, int, list[str]]]:
    rows = []
    for a, b, count, body in _ROW.findall(block):
        rows.append((int(a), int(b), _test_vectors(body)[:int(count)]))
    return rows


def transcribe(ct_test_cc: str, td_constants_go: str) -> dict:
    """Build the envelope from the text of the two source files (see the module
    docstring): every value is parsed out of them, none is typed in."""
    entries = _test_vectors(_block(ct_test_cc, "const TestVector kInputs[8] = {", "};"))
    [empty] = _test_vectors(_block(ct_test_cc, "const TestVector kSHA256EmptyTreeHash = ", ";"))
    roots = _test_vectors(_block(ct_test_cc, "const TestVector kSHA256Roots[8] = {", ";"))
    paths = _rows(_block(ct_test_cc, "const PathTestVector kSHA256Paths[6] = {", "};\n"))
    proofs = _rows(_block(ct_test_cc, "const ProofTestVector kSHA256Proofs[4] = {", "};\n"))
    levels_text = _block(td_constants_go, "func NodeHashes() [][][]byte {", "\n}\n")
    levels = [re.findall(r'hd\("([0-9a-f]{64})"\)', part) for part in levels_text.split("}, {")]
    leaf_hashes = levels[0]
    if len(entries) != 8 or len(roots) != 8 or len(paths) != 6 or len(proofs) != 4 or len(levels) != 4:
        raise ValueError("the source tables do not have the expected shape")

    vectors: list[dict] = [{
        "name": "tree-hash",
        "operation": "tree_hash",
        "section": SECTIONS["tree_hash"],
        "entries": entries,
        "empty_root": empty,
        "roots": roots,
        "subtree_hashes": levels,
    }]
    for leaf, size, path in paths:
        if leaf == 0:
            continue  # the 1-based table's "leaf 0 of the empty tree": not a valid request
        vectors.append({
            "name": f"inclusion-{leaf - 1}-of-{size}",
            "operation": "inclusion",
            "section": SECTIONS["inclusion"],
            "entries": entries,
            "leaf_index": leaf - 1,
            "tree_size": size,
            "leaf_hash": leaf_hashes[leaf - 1],
            "root": roots[size - 1],
            "path": path,
        })
    for old, new, proof in proofs:
        vectors.append({
            "name": f"consistency-{old}-to-{new}",
            "operation": "consistency",
            "section": SECTIONS["consistency"],
            "entries": entries,
            "old_size": old,
            "new_size": new,
            "old_root": roots[old - 1],
            "new_root": roots[new - 1],
            "proof": proof,
        })
    vectors.extend(derive_negatives(vectors))
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "notes": NOTES,
        "source": (f"github.com/{CT_REPO} {CT_PATH} at commit {CT_COMMIT} (the Certificate Transparency "
                   "reference code's known answers: kInputs, kSHA256EmptyTreeHash, kSHA256Roots, kSHA256Paths "
                   f"with leaves renumbered from 0, kSHA256Proofs); github.com/{TD_REPO} {TD_PATH} at commit "
                   f"{TD_COMMIT} (NodeHashes: subtree_hashes, and leaf_hash of the inclusion vectors)"),
        "generated_by": ("transcribed by protocols.system.vectorsets.rfc9162.transcribe from the two source "
                         "files (values parsed by script, never retyped)"),
        "description": ("RFC 9162 section 2.1 Merkle tree with SHA-256 (RFC 6962 hashing: leaf SHA-256(0x00 || d), "
                        "node SHA-256(0x01 || l || r)) over the eight entries of the Certificate Transparency "
                        "reference tree: the tree hash of every size 0..8 and of every complete subtree (2.1.1), "
                        "inclusion proofs PATH (2.1.3, 0-based leaf_index) and consistency proofs PROOF (2.1.4). "
                        "Entries and hashes are lower-case hex."),
        "vectors": vectors,
    }


NOTES = {
    "TamperedProof": "one bit of one proof hash is flipped: the proof no longer leads to the root",
    "WrongRoot": "the root is another tree size's root: the proof does not lead to it",
    "WrongIndex": "the leaf index differs from the one the proof was made for",
    "Truncated": "the proof lacks its last hash: wrong length, refused before any hashing (DecodeError)",
    "TrailingData": "the proof has one hash too many: wrong length, refused before any hashing (DecodeError)",
    "WrongLength": "one proof hash is 31 bytes, not 32: refused before any hashing (DecodeError)",
    "OutOfRange": "a size or index outside what the proof can be about (index >= tree_size, old_size > new_size)",
}
"""The flags of the derived negative vectors (the file's top-level notes)."""

DERIVED = "derived from the transcribed vector {base} by one change (not in the sources)"


def _flip_last_byte(hex_hash: str) -> str:
    return hex_hash[:-2] + format(int(hex_hash[-2:], 16) ^ 1, "02x")


def derive_negatives(valid: list[dict]) -> list[dict]:
    """Invalid vectors, each one change to a transcribed inclusion or consistency
    vector, that the verifiers of RFC 9162 sections 2.1.3.2 and 2.1.4.2 MUST
    refuse with the named error (specs/merkle.md section 5)."""
    roots = next(v for v in valid if v["operation"] == "tree_hash")["roots"]
    inclusion = next(v for v in valid if v["name"] == "inclusion-5-of-8")
    consistency = next(v for v in valid if v["name"] == "consistency-6-to-8")

    def negative(base: dict, name: str, change: str, fields: dict, error: str, flags: list[str]) -> dict:
        vector = {key: value for key, value in base.items() if key not in ("name", "operation")}
        vector.update(fields)
        vector.update({"name": f"{base['name']}-rejects-{name}", "operation": base["operation"] + "-rejects",
                       "origin": DERIVED.format(base=base["name"]), "change": change,
                       "result": "invalid", "flags": flags, "error": error})
        return vector

    path, proof = inclusion["path"], consistency["proof"]
    return [
        negative(inclusion, "tampered-path", "path[0]'s last byte XOR 0x01",
                 {"path": [_flip_last_byte(path[0])] + path[1:]}, "VerificationError", ["TamperedProof"]),
        negative(inclusion, "wrong-root", "root replaced by the root of the tree of size 7",
                 {"root": roots[6]}, "VerificationError", ["WrongRoot"]),
        negative(inclusion, "wrong-index", "leaf_index 4 instead of 5 (same path, same leaf hash)",
                 {"leaf_index": 4}, "VerificationError", ["WrongIndex"]),
        negative(inclusion, "truncated", "path without its last hash",
                 {"path": path[:-1]}, "DecodeError", ["Truncated"]),
        negative(inclusion, "extra-hash", "path with its first hash appended again",
                 {"path": path + [path[0]]}, "DecodeError", ["TrailingData"]),
        negative(inclusion, "short-hash", "path[0] without its last byte",
                 {"path": [path[0][:-2]] + path[1:]}, "DecodeError", ["WrongLength"]),
        negative(inclusion, "index-out-of-range", "leaf_index = tree_size = 8",
                 {"leaf_index": 8}, "ParameterError", ["OutOfRange"]),
        negative(consistency, "tampered-proof", "proof[0]'s last byte XOR 0x01",
                 {"proof": [_flip_last_byte(proof[0])] + proof[1:]}, "VerificationError", ["TamperedProof"]),
        negative(consistency, "wrong-old-root", "old_root replaced by the root of the tree of size 5",
                 {"old_root": roots[4]}, "VerificationError", ["WrongRoot"]),
        negative(consistency, "wrong-new-root", "new_root replaced by the root of the tree of size 7",
                 {"new_root": roots[6]}, "VerificationError", ["WrongRoot"]),
        negative(consistency, "truncated", "proof without its last hash",
                 {"proof": proof[:-1]}, "DecodeError", ["Truncated"]),
        negative(consistency, "old-after-new", "old_size 8 and new_size 6 swapped (roots swapped too)",
                 {"old_size": 8, "new_size": 6, "old_root": consistency["new_root"],
                  "new_root": consistency["old_root"]}, "ParameterError", ["OutOfRange"]),
    ]


PINNED_SHA256 = "7c803f724aedc9c96b3d6adffad94059e42e4b5ed0e3b8878fb6200ae3cbda37"

FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector,
                      pinned_sha256=PINNED_SHA256)
