"""Targets of the system layer: vector files handed to `usapp vectors verify`, and the strict JSON parser."""

from __future__ import annotations

import tempfile
from pathlib import Path

from protocols.system import vectors as vec

from .registry import ANY, Target
from .seeds import VECTORS

SMALL_FILES = ("rfc9591.json", "hpke_rfc9180.json")
"""Vector files small and fast enough to verify many times (the others are verified by tests/test_cli.py)."""


def _files() -> list[bytes]:
    return [(VECTORS / name).read_bytes() for name in SMALL_FILES]


def verify_file_call(data: bytes) -> object:
    """``vectors verify`` on the mutated file (under another name, so no whole-file rebuild)."""
    with tempfile.TemporaryDirectory(prefix="usapp-fuzz-") as tmp:
        path = Path(tmp) / "fuzzed.json"
        path.write_bytes(data)
        return vec.verify_file(path)


def parse_json_call(data: bytes) -> object:
    return vec.parse_json(data.decode("utf-8", errors="replace"), "fuzzed.json")


TARGETS = [
    Target("vectors.parse_json", _files, parse_json_call, kind="json", accept=ANY, examples=30),
    Target("vectors.verify_file", _files, verify_file_call, kind="json", accept=ANY, examples=15),
]
