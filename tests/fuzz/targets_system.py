"""Targets of the system layer: vector files handed to `usapp vectors verify`, and the strict JSON parser."""

from __future__ import annotations

import contextlib
import json
import io
import tempfile
from pathlib import Path

from protocols.errors import VerificationError
from protocols.system import cli
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


def cli_call(data: bytes) -> int:
    """``usapp vectors verify FILE``: exit status 0 is acceptance; a non-zero status a refusal."""
    with tempfile.TemporaryDirectory(prefix="usapp-fuzz-") as tmp:
        path = Path(tmp) / "fuzzed.json"
        path.write_bytes(data)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = cli.main(["vectors", "verify", str(path)])
    if status != 0:
        raise VerificationError(f"usapp vectors verify: exit status {status}")
    return status


DEEP = 20_000
"""JSON nesting deeper than CPython's recursion limit."""


def deep_files() -> list[bytes]:
    return [b'{"protocol":' + b"[" * DEEP + b"]" * DEEP + b"}", b"[" * DEEP + b"]" * DEEP]


def rfc9591_list_field() -> list[bytes]:
    envelope = json.loads((VECTORS / "rfc9591.json").read_text(encoding="utf-8"))
    envelope["vectors"][7]["commitments"] = [1]
    return [json.dumps(envelope, indent=1).encode()]


def hpke_long_info() -> list[bytes]:
    envelope = json.loads((VECTORS / "hpke_rfc9180.json").read_text(encoding="utf-8"))
    envelope["vectors"][0]["info"] = "a" * (1 << 20)
    return [json.dumps(envelope, indent=1).encode()]


def parse_json_call(data: bytes) -> object:
    return vec.parse_json(data.decode("utf-8", errors="replace"), "fuzzed.json")


TARGETS = [
    Target("vectors.parse_json", _files, parse_json_call, kind="json", accept=ANY, examples=30),
    Target("vectors.verify_file", _files, verify_file_call, kind="json", accept=ANY, examples=15),
    Target("cli vectors verify", _files, cli_call, kind="json", accept=ANY, examples=10),
]
