"""Mutations of a valid message (the seed), drawn by hypothesis.

Byte-level: truncation, extension, bit flips, byte insertion and deletion,
splicing with another seed.  Structure-aware, for seeds that are CBOR (or
JSON for the JSON targets): one value, anywhere in the structure, is
replaced by a huge integer, a deep nest, a value of the wrong type or a long
byte or text string, and the structure is encoded again (deterministically,
so that the mutant gets past the canonical-encoding checks and reaches the
checks behind them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import cbor2
from hypothesis import strategies as st

NEST_DEPTH = 20_000
"""Depth of a deep nest: far past any decoder's depth limit and past CPython's recursion limit."""

LONG_BYTES = 1 << 20
"""Length of a long byte or text string (1 MiB)."""

HUGE_BITS = (64, 65, 128, 1024, 8192, 70_000)
"""Bit lengths of the huge integers: just past uint64, a bignum, past int(str) digit limits."""

_BYTE_MUTATIONS = ("truncate", "extend", "flip", "insert", "delete", "splice", "replace-byte")
_MARKER = b"usapp-fuzz-raw-marker"


def _structured(value: Any) -> list[list[Any]]:
    """Paths (lists of keys / indices) to every value inside a decoded CBOR or JSON structure."""
    paths: list[list[Any]] = [[]]
    stack: list[tuple[list[Any], Any]] = [([], value)]
    while stack and len(paths) < 4096:
        path, node = stack.pop()
        children = (list(node.items()) if isinstance(node, dict)
                    else list(enumerate(node)) if isinstance(node, list) else [])
        for key, child in children:
            paths.append(path + [key])
            stack.append((path + [key], child))
    return paths


def _replace(value: Any, path: Sequence[Any], new: Any) -> Any:
    if not path:
        return new
    node = value
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return value


class Raw(bytes):
    """Bytes spliced verbatim into the encoding in place of a value (what no encoder writes)."""


HUGE_DIGITS = (20, 39, 400, 5000, 25_000)
"""Decimal digits of the huge JSON numbers: past int64, past uint128, past int(str)'s 4300-digit limit."""


def _hostile_value(draw: Any, kind: str) -> Any:
    choice = draw(st.sampled_from(("huge-int", "negative-huge-int", "nest", "wrong-type", "long-bytes",
                                   "long-text", "empty", "bool", "null")))
    if choice in ("huge-int", "negative-huge-int"):
        sign = -1 if choice == "negative-huge-int" else 1
        if kind == "json":   # written as digits: json.dumps refuses ints past 4300 digits
            return Raw((b"-" if sign < 0 else b"") + b"1" + b"0" * draw(st.sampled_from(HUGE_DIGITS)))
        return sign * (1 << draw(st.sampled_from(HUGE_BITS))) + draw(st.integers(-1, 1))
    if choice == "nest":
        depth = draw(st.sampled_from((NEST_DEPTH, 200, 64)))
        return Raw(b"\x81" * depth + b"\x00" if kind == "cbor" else b"[" * depth + b"0" + b"]" * depth)
    if choice == "wrong-type":
        return draw(st.sampled_from(([], {}, "x", b"x" if kind == "cbor" else "eA==", 0, -1, 1.5,
                                     [b"\x00" * 32] * 3 if kind == "cbor" else [0] * 3)))
    if choice == "long-bytes":
        return b"\x00" * LONG_BYTES if kind == "cbor" else "A" * LONG_BYTES
    if choice == "long-text":
        return "a" * LONG_BYTES
    if choice == "empty":
        return b"" if kind == "cbor" else ""
    if choice == "bool":
        return True
    return None


def structure_mutation(draw: Any, seed: bytes, kind: str) -> bytes | None:
    """One value of the seed's structure replaced by a hostile one; None if the seed has no structure."""
    try:
        value = cbor2.loads(seed) if kind == "cbor" else json.loads(seed)
    except Exception:  # the seed is not structured (the harness's business, not the target's)
        return None
    if not isinstance(value, (dict, list)):
        return None
    path = draw(st.sampled_from(_structured(value)))
    new = _hostile_value(draw, kind)
    raw = new if isinstance(new, Raw) else None
    mutated = _replace(value, path, _MARKER.decode("latin-1") if raw is not None else new)
    if kind == "cbor":
        out = cbor2.dumps(mutated, canonical=True)
        marker = cbor2.dumps(_MARKER.decode("latin-1"))
    else:
        out = json.dumps(mutated, separators=(",", ":")).encode()
        marker = json.dumps(_MARKER.decode("latin-1")).encode()
    return out.replace(marker, bytes(raw), 1) if raw is not None else out


def byte_mutation(draw: Any, seed: bytes, seeds: Sequence[bytes]) -> bytes:
    """One of the byte-level mutations, applied once."""
    op = draw(st.sampled_from(_BYTE_MUTATIONS))
    n = len(seed)
    if op == "truncate":
        return seed[:draw(st.integers(0, max(n - 1, 0)))]
    if op == "extend":
        return seed + draw(st.one_of(st.binary(min_size=1, max_size=64),
                                     st.sampled_from((b"\x00", seed, b"\xff" * 1024))))
    if op == "flip" and n:
        out = bytearray(seed)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, n - 1))
            out[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    if op == "insert":
        i = draw(st.integers(0, n))
        return seed[:i] + draw(st.binary(min_size=1, max_size=16)) + seed[i:]
    if op == "delete" and n:
        i = draw(st.integers(0, n - 1))
        return seed[:i] + seed[i + draw(st.integers(1, min(16, n - i))):]
    if op == "splice":
        other = draw(st.sampled_from(list(seeds)))
        return seed[:draw(st.integers(0, n))] + other[draw(st.integers(0, len(other))):]
    if n:
        i = draw(st.integers(0, n - 1))
        return seed[:i] + bytes([draw(st.integers(0, 255))]) + seed[i + 1:]
    return draw(st.binary(max_size=64))


def mutant(draw: Any, seeds: Sequence[bytes], kind: str) -> bytes:
    """A seed, mutated once or a few times (byte-level or, for structured seeds, structure-aware)."""
    seed = draw(st.sampled_from(list(seeds)))
    out = seed
    for _ in range(draw(st.integers(1, 3))):
        if kind in ("cbor", "json") and draw(st.integers(0, 2)) == 0:
            structured = structure_mutation(draw, out, kind)
            if structured is not None:
                out = structured
                continue
        out = byte_mutation(draw, out, seeds)
    return out


def replaced(seed: bytes, path: Sequence[Any], new: Any) -> bytes:
    """The CBOR seed with the value at ``path`` replaced by ``new`` (encoded deterministically)."""
    return bytes(cbor2.dumps(_replace(cbor2.loads(seed), path, new), canonical=True))


SWEEP_VALUES: tuple[tuple[str, Any], ...] = (
    ("huge int", 1 << 70_000), ("negative huge int", -(1 << 70_000)), ("2**64", 1 << 64),
    ("deep nest", Raw(b"\x81" * NEST_DEPTH + b"\x00")), ("long bytes", b"\x00" * LONG_BYTES), ("text", "x"),
    ("list", [b"\x00" * 32]), ("map", {}), ("true", True), ("null", None))
"""The hostile values the structure sweep puts at every path of a CBOR seed."""


def sweep(seed: bytes, limit: int = 200) -> list[tuple[str, bytes]]:
    """Every path of the seed's structure (up to ``limit``) times every sweep value: (label, mutant)."""
    value = cbor2.loads(seed)
    out = []
    marker = cbor2.dumps(_MARKER.decode("latin-1"))
    for path in _structured(value)[:limit]:
        for label, new in SWEEP_VALUES:
            if isinstance(new, Raw):
                raw = replaced(seed, path, _MARKER.decode("latin-1")).replace(marker, bytes(new), 1)
            else:
                raw = replaced(seed, path, new)
            out.append((f"{list(path)} = {label}", raw))
    return out
