"""The command line against hostile arguments and files (issue 16: H2, H11, item 2).

Adversary: whoever hands ``usapp`` its arguments and vector files (a vendor's
file, a file downloaded from anywhere).  They control every byte of the file
and every argument; they see the exit status, stdout and stderr.  Claims:

* every command answers a bad argument or a bad file with exactly one line
  ``usapp: error: ...`` on stderr (never a traceback): exit 2 for a usage error
  or an unreadable/missing input, 1 for a file that fails verification;
* size, nesting and every numeric field are bounded before the work that
  grows with them (proved structurally: the parser or the protocol step that
  would do the work is replaced by one that fails the test if called);
* ``vectors generate`` never leaves a truncated file behind.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from protocols.errors import DecodeError
from protocols.system import vectors
from protocols.system.cli import main
from protocols.system.vectors import MAX_FILE_BYTES, dump_envelope, verify_file, verify_paths
from protocols.system.vectorsets import _fields

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "vectors"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_error_line(err: str) -> str:
    """stderr ends with exactly one ``usapp: error:`` line; nothing else is an error or a traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("usapp: error:")]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0]
    assert all(line.startswith("usapp: ") for line in lines), err  # progress lines only besides the error
    return errors[0]


# --------------------------------------------------------------------------
# Bad arguments: every command and subcommand


USAGE_ERRORS = [
    [],
    ["nosuch"],
    ["--bogus"],
    ["vectors"],
    ["vectors", "nosuch"],
    ["vectors", "list", "extra"],
    ["vectors", "list", "--bogus"],
    ["vectors", "describe"],
    ["vectors", "describe", "nosuch-family"],
    ["vectors", "describe", "a", "b"],
    ["vectors", "verify", "--bogus"],
    ["vectors", "generate", "extra"],
    ["vectors", "generate", "--dir"],
    ["demo", "--bogus"],
    ["demo", "--seed"],
    ["demo", "extra"],
    ["bench", "--repeats", "0"],
    ["bench", "--repeats", "-1"],
    ["bench", "--repeats", "x"],
    ["bench", "--repeats", "1e12"],
    ["bench", "--repeats"],
    ["bench", "--bogus"],
    ["bench", "nosuch-benchmark"],
]


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=lambda argv: " ".join(argv) or "(none)")
def test_bad_arguments_are_one_line_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert out == ""
    _assert_one_error_line(err)


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["vectors", "verify", "--help"]):
        code, out, _ = _run(argv, capsys)
        assert code == 0
        text = " ".join(out.split())
        assert "0 success; 1 a check failed" in text and "2 a usage error" in text and "usapp: error:" in text


def test_version_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and out.startswith("usapp ")


# --------------------------------------------------------------------------
# Bad files given to vectors verify


def _envelope(vector: dict[str, Any], protocol: str, suite: str,
              notes: dict[str, str] | None = None) -> dict[str, Any]:
    envelope = {"protocol": protocol, "suite": suite, "source": "tests/test_cli_hostile.py",
                "generated_by": "hand-crafted hostile file", "vectors": [vector]}
    if notes:
        envelope["notes"] = notes
    return envelope


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, int]]:
    """Each hostile input and the exit status verify must give."""
    files: dict[str, tuple[Path, int]] = {}
    files["missing"] = (tmp_path / "missing.json", 2)
    (tmp_path / "empty-dir").mkdir()
    files["directory without files"] = (tmp_path / "empty-dir", 2)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    files["empty"] = (empty, 1)
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * 4)
    files["binary"] = (binary, 1)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written, nothing should be read
    files["huge"] = (huge, 1)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="ascii")
    files["deep JSON"] = (deep, 1)
    wrong = tmp_path / "wrong-family.json"
    wrong.write_text(dump_envelope(_envelope({"name": "x"}, "no-such-protocol", "none")), encoding="utf-8")
    files["wrong family"] = (wrong, 1)
    absurd = tmp_path / "absurd.json"
    absurd.write_text(dump_envelope(_mutated("groupkeys.json", ["operators"], 3000)), encoding="utf-8")
    files["absurd field"] = (absurd, 1)
    not_json = tmp_path / "text.json"
    not_json.write_text("this is not JSON\n", encoding="utf-8")
    files["not JSON"] = (not_json, 1)
    return files


@pytest.mark.parametrize("kind", ["missing", "directory without files", "empty", "binary", "huge", "deep JSON",
                                  "wrong family", "absurd field", "not JSON"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_verify_bad_files(kind: str, as_json: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, status = _bad_files(tmp_path)[kind]
    code, out, err = _run(["vectors", "verify", *(["--json"] if as_json else []), str(path)], capsys)
    assert code == status
    _assert_one_error_line(err)
    if status == 1:
        if as_json:
            assert json.loads(out)["failed_files"] == 1
        else:
            assert out.splitlines()[0].startswith(f"FAIL {path}")


def test_huge_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _bad_files(tmp_path)["huge"][0]

    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(vectors, "parse_json", must_not_parse)
    with pytest.raises(DecodeError, match="larger than"):
        vectors.load_envelope(path)


def test_file_growing_past_the_cap_is_not_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose size the OS misreports (a pipe, /proc, a growing file): the read stops one byte past the cap."""
    path = tmp_path / "growing.json"
    path.write_text("{}", encoding="ascii")
    reads: list[int] = []

    class Handle:
        def __enter__(self) -> Handle:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def fileno(self) -> int:
            return os.open(path, os.O_RDONLY)

        def read(self, size: int = -1) -> bytes:
            reads.append(size)
            return b" " * size

    monkeypatch.setattr(Path, "open", lambda self, mode="r": Handle())
    with pytest.raises(DecodeError, match="larger than"):
        vectors.read_text(path)
    assert reads == [MAX_FILE_BYTES + 1]


def test_deep_json_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("json.loads was called")

    monkeypatch.setattr(vectors.json, "loads", must_not_parse)
    with pytest.raises(DecodeError, match="nested 100000 deep"):
        vectors.parse_json("[" * 100_000 + "]" * 100_000, "deep.json")
    with pytest.raises(DecodeError, match="nested 65 deep"):
        vectors.parse_json('{"a":' * 65 + "1" + "}" * 65, "objects.json")


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert _fields.json_depth('{"a": "[[[[{{{{\\"[[["}') == 1
    assert _fields.json_depth('[[1], {"b": [2]}]') == 3
    assert vectors.parse_json('["' + "[" * 1000 + '"]', "s.json") == ["[" * 1000]


def test_too_many_vectors_is_refused() -> None:
    envelope = _envelope({"name": "v0"}, "p", "s")
    envelope["vectors"] = [{"name": f"v{i}"} for i in range(vectors.MAX_VECTORS + 1)]
    with pytest.raises(DecodeError, match="more than"):
        vectors.validate_envelope(envelope, "many.json")


# --------------------------------------------------------------------------
# Absurd fields, per family (H2, H11)


def _get(document: Any, path: list[str | int]) -> Any:
    for part in path:
        document = document[part]
    return document


def _has(document: Any, path: list[str | int]) -> bool:
    for part in path:
        if isinstance(part, int):
            if not isinstance(document, list) or len(document) <= part:
                return False
        elif not isinstance(document, dict) or part not in document:
            return False
        document = document[part]
    return True


_CANONICAL: dict[str, dict[str, Any]] = {}


def _mutated(file: str, path: list[str | int], value: Any) -> dict[str, Any]:
    """A one-vector envelope: the family's first vector holding ``path``, with ``value`` there."""
    if file not in _CANONICAL:
        _CANONICAL[file] = json.loads((VECTORS / file).read_text(encoding="utf-8"))
    envelope = _CANONICAL[file]
    vector = copy.deepcopy(next(v for v in envelope["vectors"] if _has(v, path)))
    parent = _get(vector, path[:-1])
    parent[path[-1]] = value
    return _envelope(vector, envelope["protocol"], envelope["suite"], envelope.get("notes"))


NUMERIC_FIELDS: dict[str, list[list[str | int]]] = {
    "aggregation.json": [["slots"], ["value_bits"], ["degree"], ["round"], ["noise", "participants"],
                         ["noise", "sensitivity"]],
    "bf_bls12.json": [["epoch"], ["threshold"], ["dealer"], ["node"]],
    "dp.json": [["sensitivity"], ["participants"]],
    "escrow.json": [["epochs"], ["meters"], ["steps", 0, "epoch"]],
    "groupkeys.json": [["operators"], ["threshold"], ["arity"], ["now"], ["lifetime"]],
    "hmac_drbg.json": [["requested_bytes"], ["reseed_interval"]],
    "hpke_rfc9180.json": [["encryptions", 0, "sequence_number"], ["exports", 0, "L"]],
    "ibe_hybrid.json": [["epoch"]],
    "integrity.json": [["time"], ["checks", 0], ["inclusion_index"], ["records", 0, "period"]],
    "issuance.json": [["epoch"], ["now"], ["challenge_lifetime"], ["threshold"]],
    "paillier.json": [["bits"], ["window"]],
    "paillier_encoding.json": [["exponent1"], ["value_bits"], ["slots"], ["max_summands"], ["count"]],
    "paillier_external.json": [["enc_1234", "e"]],
    "rfc9162.json": [["leaf_index"], ["tree_size"], ["old_size"], ["new_size"]],
    "rfc9380.json": [["len_in_bytes"]],
    "rfc9591.json": [["config", "MAX_PARTICIPANTS"], ["config", "MIN_PARTICIPANTS"],
                     ["config", "NUM_PARTICIPANTS"]],
    "threshold_elgamal.json": [["operators"], ["threshold"]],
}
"""JSON-integer counts, sizes, exponents and parameters read by each family."""

HEX_FIELDS: dict[str, list[list[str | int]]] = {
    "paillier.json": [["p"], ["n"]],
    "paillier_encoding.json": [["p"]],
    "paillier_external.json": [["p"], ["n"]],
    "rfc5091.json": [["p"], ["q"]],
    "rfc9474.json": [["n"], ["p"]],
    "aggregation.json": [["p"]],
}
"""Hex moduli and factors (big integers or their bytes)."""

JSON_ABSURD = {"huge": 10**30, "large": 10**12, "negative": -(10**12), "float": 1.5, "bool": True, "string": "7"}
HEX_ABSURD = {"huge": "1" + "0" * 5000, "negative": "-1", "float": 1.5, "bool": True, "number": 7}


def _cases() -> list[Any]:
    out = []
    for file, paths in NUMERIC_FIELDS.items():
        for path in paths:
            for kind, value in JSON_ABSURD.items():
                out.append(pytest.param(file, path, value, id=f"{file}:{'.'.join(map(str, path))}:{kind}"))
    for file, paths in HEX_FIELDS.items():
        for path in paths:
            for kind, value in HEX_ABSURD.items():
                out.append(pytest.param(file, path, value, id=f"{file}:{'.'.join(map(str, path))}:{kind}"))
    return out


@pytest.mark.parametrize("file, path, value", _cases())
def test_absurd_field_is_a_typed_failure(file: str, path: list[str | int], value: Any, tmp_path: Path) -> None:
    """Every numeric field of every family, huge, negative, float, bool or string: a recorded
    failure of the vector (a typed error), never an exception, a hang or a crash.  (An invalid
    vector may still pass: its step refuses with the vector's error before reaching the field.)"""
    target = tmp_path / f"vendor-{file}"
    envelope = _mutated(file, path, value)
    target.write_text(dump_envelope(envelope), encoding="utf-8")
    [result] = verify_paths([target])
    assert result.family is not None  # the file loaded: the failure is the vector's
    if envelope["vectors"][0].get("result") == "invalid" and result.ok:
        return
    assert not result.ok
    assert any(f.kind == "recompute" and f.message for f in result.failures), result.failures


def _boom(*args: object, **kwargs: object) -> None:
    raise AssertionError("the protocol step ran on an unbounded field")


# (file, path, value, module attribute to trap, what the refusal names)
REFUSED_BEFORE_WORK = [
    ("groupkeys.json", ["operators"], 3000, "protocols.groupkeys.operator_ceremony", "operators"),
    ("rfc9591.json", ["config", "MAX_PARTICIPANTS"], 10**8, "protocols.schemes.frost.check_parameters",
     "MAX_PARTICIPANTS"),
    ("paillier_external.json", ["enc_1234", "e"], 10**12,
     "protocols.system.vectorsets.paillier_external.from_phe_json", "'e'"),
    ("paillier.json", ["p"], "f" * 1000, "protocols.system.vectorsets.paillier.PrivateKey.from_factors", "'p'"),
    ("rfc5091.json", ["p"], "f" * 1000, "protocols.system.vectorsets.rfc5091.Type1Curve", "'p'"),
    ("aggregation.json", ["value_bits"], 10**6, "protocols.aggregation.provision", "value_bits"),
    ("escrow.json", ["steps", 0, "epoch"], 2**32, "protocols.escrow.Meter.request_hfid", "epoch"),
    ("integrity.json", ["meter_key"], "00" * 33, "protocols.integrity.Meter", "meter_key"),
    ("paillier_encoding.json", ["slots"], 10**12, "protocols.system.vectorsets.paillier_encoding.PackingLayout",
     "slots"),
    ("dp.json", ["participants"], 10**12, "protocols.system.vectorsets.dp.NoiseShareConfig", "participants"),
    ("threshold_elgamal.json", ["operators"], 3000, "protocols.groupkeys.operator_ceremony", "operators"),
    ("paillier.json", ["bits"], 0, "protocols.system.vectorsets.paillier.annotate_keygen_draws", "bits"),
]


@pytest.mark.parametrize("file, path, value, trap, named", REFUSED_BEFORE_WORK,
                         ids=[f"{c[0]}:{c[1][-1]}" for c in REFUSED_BEFORE_WORK])
def test_issue_16_fields_are_refused_before_the_protocol_runs(
        file: str, path: list[str | int], value: Any, trap: str, named: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hanging and crashing files of issue 16 (H2, H11): the bounded reader refuses the
    field, so the step that would grow with it (or crash on it) is never called."""
    monkeypatch.setattr(trap, _boom)
    target = tmp_path / f"vendor-{file}"
    target.write_text(dump_envelope(_mutated(file, path, value)), encoding="utf-8")
    result = verify_file(target)
    assert not result.ok
    assert any(named in failure.message for failure in result.failures), result.failures


def test_bf_bls12_node_keys_must_be_node_numbers(tmp_path: Path) -> None:
    envelope = json.loads((VECTORS / "bf_bls12.json").read_text(encoding="utf-8"))
    vector = copy.deepcopy(next(v for v in envelope["vectors"] if "key_shares" in v))
    vector["key_shares"] = {"abc": next(iter(vector["key_shares"].values()))}
    target = tmp_path / "vendor-bf.json"
    target.write_text(dump_envelope(_envelope(vector, envelope["protocol"], envelope["suite"], envelope.get("notes"))),
                      encoding="utf-8")
    [failure] = [f for f in verify_file(target).failures if f.kind == "recompute"]
    assert "not a node number" in failure.message


# --------------------------------------------------------------------------
# The readers' bounds


def test_readers_check_bounds_before_converting() -> None:
    with pytest.raises(_fields.VectorMismatchError, match="longer than 64 bits"):
        _fields.int_field({"x": "f" * 17}, "x", max_bits=64)
    with pytest.raises(_fields.VectorMismatchError, match="out of range"):
        _fields.int_field({"x": "f" * 16}, "x", max_bits=63)
    assert _fields.int_field({"x": "f" * 16}, "x", max_bits=64) == 2**64 - 1
    with pytest.raises(_fields.VectorMismatchError, match="longer than 4 bytes"):
        _fields.bytes_field({"x": "00" * 5}, "x", max_len=4)
    with pytest.raises(_fields.VectorMismatchError, match="must be 32 bytes"):
        _fields.bytes_field({"x": "00" * 31}, "x", size=32)
    with pytest.raises(_fields.VectorMismatchError, match="out of range"):
        _fields.small_int_field({"x": 9}, "x", low=0, high=8)
    with pytest.raises(_fields.VectorMismatchError, match="JSON integer"):
        _fields.small_int_field({"x": True}, "x")
    with pytest.raises(_fields.VectorMismatchError, match="more than 2 items"):
        _fields.list_field({"x": [1, 2, 3]}, "x", max_items=2)
    with pytest.raises(_fields.VectorMismatchError, match="longer than 3 characters"):
        _fields.str_field({"x": "abcd"}, "x", max_len=3)
    with pytest.raises(_fields.VectorMismatchError, match="parent is not an object"):
        _fields.field([], "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("vector, message", [
    ({"a": [0] * (_fields.MAX_ITEMS + 1)}, "list longer"),
    ({"a": "0" * (_fields.MAX_STRING + 1)}, "string longer"),
    ({"a": {"b": [2**65]}}, "out of range"),
    ({"a": [[0] * 1000] * 201}, "more than"),
])
def test_check_shape_bounds_every_vector(vector: dict[str, Any], message: str) -> None:
    with pytest.raises(_fields.VectorMismatchError, match=message):
        _fields.check_shape(vector)


# --------------------------------------------------------------------------
# vectors generate


def test_generate_into_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "a-file"
    target.write_text("x", encoding="ascii")
    code, out, err = _run(["vectors", "generate", "--dir", str(target)], capsys)
    assert code == 2 and out == ""
    assert "not a directory" in _assert_one_error_line(err)
    code, _, err = _run(["vectors", "generate", "--dir", str(target / "below")], capsys)
    assert code == 2
    _assert_one_error_line(err)


def test_interrupted_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between writing and renaming (here: at fsync): the old file stays, no temporary is left."""
    target = tmp_path / "family.json"
    target.write_text("old\n", encoding="utf-8")

    def killed(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(vectors.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        vectors.write_atomically(target, "new\n" * 1000)
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["family.json"]


def test_write_is_atomic_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "family.json"
    calls: list[tuple[str, str]] = []
    real = os.replace

    def replace(src: str, dst: Any) -> None:
        calls.append((Path(src).parent.name, Path(src).read_text(encoding="utf-8")))
        real(src, dst)

    monkeypatch.setattr(vectors.os, "replace", replace)
    vectors.write_atomically(target, "new\n")
    assert calls == [(tmp_path.name, "new\n")]  # written in full in the same folder, then renamed
    assert target.read_text(encoding="utf-8") == "new\n"


# --------------------------------------------------------------------------
# Through the real entry point: no traceback from python -m protocols.system.cli


@pytest.mark.parametrize("case", ["deep", "generate-into-file", "no-command"])
def test_entry_point_never_prints_a_traceback(case: str, tmp_path: Path) -> None:
    if case == "deep":
        path = tmp_path / "deep.json"
        path.write_text("[" * 100_000 + "]" * 100_000, encoding="ascii")
        argv, status = ["vectors", "verify", str(path)], 1
    elif case == "generate-into-file":
        path = tmp_path / "file"
        path.write_text("x", encoding="ascii")
        argv, status = ["vectors", "generate", "--dir", str(path)], 2
    else:
        argv, status = [], 2
    done = subprocess.run([sys.executable, "-m", "protocols.system.cli", *argv], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == status
    _assert_one_error_line(done.stderr)
