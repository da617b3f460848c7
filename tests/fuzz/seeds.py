"""Seeds from the shipped vector files (vectors/*.json): the valid messages, as bytes."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


@functools.cache
def vector_file(stem: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"{stem}.json").read_text(encoding="utf-8"))


def vectors(stem: str, operation: str | None = None, *, valid: bool = True) -> Iterator[Mapping[str, Any]]:
    """The vectors of one file (of one operation), valid ones only unless told."""
    for v in vector_file(stem)["vectors"]:
        if operation is not None and v.get("operation") != operation:
            continue
        if valid and v.get("result", "valid") != "valid":
            continue
        yield v


def hex_field(stem: str, operation: str | None, name: str) -> list[bytes]:
    """Every valid vector's hex field ``name``, decoded, deduplicated, in file order."""
    out: list[bytes] = []
    for v in vectors(stem, operation):
        value = v.get(name)
        if isinstance(value, str):
            raw = bytes.fromhex(value)
            if raw not in out:
                out.append(raw)
    return out


def all_hex_strings(stem: str) -> list[bytes]:
    """Every hex string anywhere in the valid vectors of a file (at least 4 bytes)."""
    found: list[bytes] = []
    seen: set[bytes] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and len(node) >= 8 and len(node) % 2 == 0:
            try:
                raw = bytes.fromhex(node)
            except ValueError:
                return
            if raw not in seen:
                seen.add(raw)
                found.append(raw)

    for v in vectors(stem):
        walk(v)
    return found
