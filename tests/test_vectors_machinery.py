"""The ``usapp vectors`` machinery (protocols/system/vectors.py).

Most tests use fake families registered by monkeypatching
``protocols.system.vectorsets.families``; the last ones run the mutation check
over the project's real ``vectors/*.json`` files.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocols
from protocols.errors import DecodeError, ParameterError, VectorMismatchError
from protocols.system import vectors, vectorsets
from protocols.system.vectors import (
    canonical_json,
    dump_envelope,
    generate,
    load_envelope,
    verify_file,
    verify_paths,
)
from protocols.system.vectorsets import VectorFamily, expect_field

REPO = Path(__file__).resolve().parent.parent
REAL_VECTORS = REPO / "vectors"

# --------------------------------------------------------------------------
# A fake generated family and a fake transcribed one


def _digest(message: str, count: int, flag: bool) -> str:
    data = bytes.fromhex(message) * count + (b"\x01" if flag else b"\x00")
    return hashlib.sha256(data).hexdigest()


def fake_verify(vector: Any) -> None:
    """digest = SHA-256(message * count || flag); inner.joined = SHA-256(parts...)."""
    try:
        message = vector["message"]
        bytes.fromhex(message)
    except (KeyError, ValueError, TypeError):
        raise DecodeError("field 'message' is not hex") from None
    expect_field(vector, "digest", _digest(message, vector["count"], vector["flag"]))
    inner = vector["inner"]
    joined = hashlib.sha256(b"".join(bytes.fromhex(p) for p in inner["parts"])).hexdigest()
    if inner["joined"] != joined:
        raise VectorMismatchError("field 'inner.joined' does not recompute")


def fake_vector(name: str, message: str, count: int, flag: bool, parts: list[str]) -> dict:
    return {
        "name": name,
        "message": message,
        "count": count,
        "flag": flag,
        "digest": _digest(message, count, flag),
        "inner": {
            "parts": parts,
            "joined": hashlib.sha256(b"".join(bytes.fromhex(p) for p in parts)).hexdigest(),
        },
        "note": "free text that nothing recomputes",
    }


def fake_build() -> dict:
    return {
        "protocol": "fake-hash",
        "suite": "SHA-256 toy",
        "source": "tests/test_vectors_machinery.py",
        "generated_by": "fake_build",
        "description": "A fake generated family.",
        "parameters": {"hash": "sha256", "rounds": 1},
        "vectors": [
            fake_vector("empty", "", 1, False, []),
            fake_vector("abc", "616263", 2, True, ["00", "ff10"]),
            fake_vector("long", "00" * 40, 3, False, ["0102"]),
        ],
    }


FAKE_GENERATED = VectorFamily(
    file="fake.json",
    protocol="fake-hash",
    suite="SHA-256 toy",
    verify_vector=fake_verify,
    build=fake_build,
)

PINNED_ENVELOPE = {
    "protocol": "fake-pinned",
    "suite": "toy",
    "source": "a published document, section 7",
    "generated_by": "transcribed by hand for the test",
    "vectors": [
        fake_vector("first", "01", 1, True, ["02"]),
        fake_vector("second", "0304", 1, False, []),
    ],
}

FAKE_PINNED = VectorFamily(
    file="pinned.json",
    protocol="fake-pinned",
    suite="toy",
    verify_vector=fake_verify,
    pinned_sha256=hashlib.sha256(canonical_json(PINNED_ENVELOPE)).hexdigest(),
)


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(vectorsets, "families", lambda: (FAKE_GENERATED, FAKE_PINNED))


def write(path: Path, envelope: Any) -> Path:
    path.write_text(dump_envelope(envelope), encoding="utf-8", newline="\n")
    return path


@pytest.fixture
def canonical(tmp_path, fakes) -> Path:
    """The fake generated family's canonical file, as generate writes it."""
    return write(tmp_path / "fake.json", fake_build())


@pytest.fixture
def pinned(tmp_path, fakes) -> Path:
    return write(tmp_path / "pinned.json", PINNED_ENVELOPE)


# --------------------------------------------------------------------------
# Encodings and the schema


def test_canonical_json_and_dump_envelope_forms():
    envelope = {"b": [1, {"z": "00", "a": True}], "a": "x"}
    assert canonical_json(envelope) == b'{"a":"x","b":[1,{"a":true,"z":"00"}]}'
    text = dump_envelope(envelope)
    assert text.endswith("}\n") and text.startswith('{\n  "a": "x"')
    assert json.loads(text) == envelope


def test_schema_file_is_the_schema_the_code_uses():
    on_disk = json.loads((REAL_VECTORS / "schema.json").read_text(encoding="utf-8"))
    assert on_disk == vectors.ENVELOPE_SCHEMA
    jsonschema.Draft202012Validator.check_schema(on_disk)
    assert on_disk["additionalProperties"] is False
    assert "lower-case hex" in on_disk["description"]


def test_valid_envelope_loads(canonical):
    assert load_envelope(canonical) == fake_build()


def _without(key):
    def change(envelope):
        del envelope[key]
    return change


def _set(key, value):
    def change(envelope):
        envelope[key] = value
    return change


def _duplicate_name(envelope):
    envelope["vectors"][2]["name"] = envelope["vectors"][0]["name"]


def _vector_without_name(envelope):
    del envelope["vectors"][1]["name"]


@pytest.mark.parametrize(
    ("change", "path_in_message"),
    [
        (_without("protocol"), "$"),
        (_without("generated_by"), "$"),
        (_without("vectors"), "$"),
        (_set("extra", "not allowed"), "$"),
        (_set("vectors", []), "$.vectors"),
        (_set("suite", 3), "$.suite"),
        (_set("parameters", []), "$.parameters"),
        (_duplicate_name, "$.vectors[2].name"),
        (_vector_without_name, "$.vectors[1]"),
        (_set("vectors", ["not an object"]), "$.vectors[0]"),
    ],
)
def test_schema_rejections_name_file_and_path(tmp_path, change, path_in_message):
    envelope = fake_build()
    change(envelope)
    path = write(tmp_path / "bad.json", envelope)
    with pytest.raises(DecodeError) as info:
        load_envelope(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{path_in_message}:" in message


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"protocol": "a", "protocol": "b"}',
        '{"x": NaN}',
    ],
)
def test_malformed_json_is_a_decode_error(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DecodeError, match="bad.json"):
        load_envelope(path)


def test_unreadable_file_is_a_decode_error(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"protocol": "\xe9"}')
    with pytest.raises(DecodeError, match="not UTF-8"):
        load_envelope(path)
    with pytest.raises(DecodeError, match="cannot read"):
        load_envelope(tmp_path / "missing.json")


# --------------------------------------------------------------------------
# Families


def test_family_must_be_generated_xor_transcribed():
    with pytest.raises(ParameterError):
        VectorFamily(file="x.json", protocol="p", suite="s", verify_vector=fake_verify)
    with pytest.raises(ParameterError):
        dataclasses.replace(FAKE_GENERATED, pinned_sha256="0" * 64)
    with pytest.raises(ParameterError):
        dataclasses.replace(FAKE_PINNED, pinned_sha256="AB" * 32)
    assert FAKE_GENERATED.generated and not FAKE_PINNED.generated


def test_expect_field():
    expect_field({"a": "00"}, "a", "00")
    with pytest.raises(VectorMismatchError, match="'a'"):
        expect_field({"a": "00"}, "a", "01")
    with pytest.raises(VectorMismatchError, match="missing"):
        expect_field({}, "a", "00")
    with pytest.raises(VectorMismatchError):
        expect_field({"a": 1}, "a", True)


def test_unknown_family_is_a_decode_error_naming_it(tmp_path, fakes):
    envelope = fake_build()
    envelope["suite"] = "SHA-512 toy"
    path = write(tmp_path / "fake.json", envelope)
    with pytest.raises(DecodeError, match="'fake-hash'.*'SHA-512 toy'"):
        verify_file(path)
    [result] = verify_paths([path])
    assert not result.ok and result.family is None
    assert "SHA-512 toy" in result.failures[0].message


# --------------------------------------------------------------------------
# Verification


def test_canonical_generated_file_verifies(canonical):
    result = verify_file(canonical)
    assert result.ok, result.failures
    assert result.vectors == 3
    assert result.whole_file == vectors.WHOLE_FILE_GENERATED
    assert result.family == "fake-hash / SHA-256 toy"


def test_recompute_failure_names_the_vector(tmp_path, fakes):
    envelope = fake_build()
    envelope["vectors"][1]["digest"] = "00" * 32
    envelope["vectors"][2]["inner"]["joined"] = "11" * 32
    path = write(tmp_path / "vendor.json", envelope)
    result = verify_file(path)
    assert result.whole_file == vectors.WHOLE_FILE_NONE
    assert [(f.vector, f.file) for f in result.failures] == [("abc", str(path)), ("long", str(path))]
    assert "'digest'" in result.failures[0].message
    assert "inner.joined" in result.failures[1].message


def test_other_usapp_errors_are_recorded_and_bugs_propagate(tmp_path, fakes, monkeypatch):
    envelope = fake_build()
    envelope["vectors"][0]["message"] = "zz"
    path = write(tmp_path / "vendor.json", envelope)
    [failure] = verify_file(path).failures
    assert failure.vector == "empty"
    assert failure.message.startswith("DecodeError:")

    def buggy(vector):
        raise KeyError("a bug, not a verdict")

    monkeypatch.setattr(
        vectorsets, "families",
        lambda: (dataclasses.replace(FAKE_GENERATED, verify_vector=buggy),),
    )
    with pytest.raises(KeyError):
        verify_file(path)


def test_vendor_file_with_other_inputs_is_checked_by_recomputation_only(tmp_path, fakes):
    envelope = fake_build()
    envelope["description"] = "a vendor's own file"
    envelope["vectors"] = [fake_vector("vendor-1", "deadbeef", 5, True, ["aa", "bb"])]
    result = verify_file(write(tmp_path / "acme-fake.json", envelope))
    assert result.ok and result.whole_file == vectors.WHOLE_FILE_NONE


def test_whole_file_check_catches_free_text_changes(canonical):
    envelope = fake_build()
    envelope["description"] = "A fake generated family!"
    write(canonical, envelope)
    [failure] = verify_file(canonical).failures
    assert failure.vector is None and "'description'" in failure.message

    envelope = fake_build()
    envelope["vectors"][1]["note"] = "edited by hand"
    write(canonical, envelope)
    [failure] = verify_file(canonical).failures
    assert failure.vector == "abc"
    assert "$.vectors[1].note" in failure.message


def test_whole_file_check_catches_missing_extra_and_reordered_vectors(canonical):
    envelope = fake_build()
    envelope["vectors"].pop()
    write(canonical, envelope)
    [failure] = verify_file(canonical).failures
    assert "'long'" in failure.message and "missing" in failure.message

    envelope = fake_build()
    envelope["vectors"].append(fake_vector("extra", "01", 1, True, []))
    write(canonical, envelope)
    [failure] = verify_file(canonical).failures
    assert failure.vector == "extra"

    envelope = fake_build()
    envelope["vectors"].reverse()
    write(canonical, envelope)
    [failure] = verify_file(canonical).failures
    assert failure.vector == "long"


def test_whole_file_check_catches_layout_changes(canonical):
    canonical.write_text(json.dumps(fake_build(), indent=4, sort_keys=True) + "\n", encoding="utf-8")
    [failure] = verify_file(canonical).failures
    assert failure.vector is None and "layout" in failure.message
    canonical.write_text(dump_envelope(fake_build()).rstrip("\n"), encoding="utf-8")
    assert not verify_file(canonical).ok


def test_pinned_file_verifies_and_digest_catches_changes(pinned, tmp_path):
    result = verify_file(pinned)
    assert result.ok and result.whole_file == vectors.WHOLE_FILE_PINNED

    # Layout is free for a pinned file: the digest is over the canonical JSON.
    pinned.write_text(json.dumps(PINNED_ENVELOPE, indent=1), encoding="utf-8")
    assert verify_file(pinned).ok

    changed = json.loads(json.dumps(PINNED_ENVELOPE))
    changed["source"] = "a published document, section 8"
    write(pinned, changed)
    [failure] = verify_file(pinned).failures
    assert failure.vector is None and FAKE_PINNED.pinned_sha256 in failure.message

    # The same content under another name is a vendor file: recomputation only.
    assert verify_file(write(tmp_path / "copy.json", changed)).ok


def test_verify_paths_expands_directories_and_skips_the_schema(tmp_path, fakes):
    write(tmp_path / "fake.json", fake_build())
    write(tmp_path / "pinned.json", PINNED_ENVELOPE)
    (tmp_path / "schema.json").write_text(json.dumps(vectors.ENVELOPE_SCHEMA), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a vectors file", encoding="utf-8")
    results = verify_paths([tmp_path])
    assert [Path(r.file).name for r in results] == ["fake.json", "pinned.json"]
    assert all(r.ok for r in results)
    with pytest.raises(ParameterError, match="no such file"):
        verify_paths([tmp_path / "missing"])


def test_progress_is_reported(canonical):
    lines = []
    verify_paths([canonical.parent], progress=lines.append)
    assert any("fake.json" in line for line in lines)


# --------------------------------------------------------------------------
# Generation and the default directory


def test_generate_writes_exactly_dump_envelope(tmp_path, fakes):
    target = tmp_path / "out"
    written = generate(target)
    assert written == [target / "fake.json"]
    assert (target / "fake.json").read_bytes() == dump_envelope(fake_build()).encode()
    assert not (target / "pinned.json").exists()
    assert verify_file(target / "fake.json").ok
    assert generate(target) == written
    assert (target / "fake.json").read_bytes() == dump_envelope(fake_build()).encode()


def test_generate_refuses_an_invalid_build(tmp_path, monkeypatch):
    def bad_build():
        envelope = fake_build()
        envelope["vectors"] = []
        return envelope

    monkeypatch.setattr(
        vectorsets, "families", lambda: (dataclasses.replace(FAKE_GENERATED, build=bad_build),)
    )
    with pytest.raises(DecodeError, match="fake.json"):
        generate(tmp_path)
    assert not (tmp_path / "fake.json").exists()


def test_default_vectors_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert vectors.default_vectors_dir().resolve() == REAL_VECTORS.resolve()
    (tmp_path / "vectors").mkdir()
    assert vectors.default_vectors_dir().resolve() == (tmp_path / "vectors").resolve()
    (tmp_path / "vectors").rmdir()
    monkeypatch.setattr(protocols, "__file__", str(tmp_path / "site" / "protocols" / "__init__.py"))
    with pytest.raises(ParameterError, match="PATH"):
        vectors.default_vectors_dir()


# --------------------------------------------------------------------------
# Single-leaf mutations


HEX_DIGITS = "0123456789abcdef"


def leaf_paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every scalar (string, number, boolean, null) in a JSON value."""
    if isinstance(value, dict):
        return [p for key in sorted(value) for p in leaf_paths(value[key], (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in leaf_paths(item, (*path, index))]
    return [path]


def mutate_leaf(value: Any, position: int) -> Any:
    """A different value of the same kind: flip one hex digit of a hex string
    (at ``position`` modulo its length) or append a character to any other
    string; numbers + 1; booleans negated; null becomes 0."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1 if value + 1 != value else value * 2 + 1
    if value is None:
        return 0
    if value and all(c in HEX_DIGITS for c in value):
        i = position % len(value)
        flipped = HEX_DIGITS[(HEX_DIGITS.index(value[i]) + 1) % 16]
        return value[:i] + flipped + value[i + 1 :]
    return value + "x"


def with_leaf(envelope: Any, path: tuple, position: int) -> Any:
    copy = json.loads(json.dumps(envelope))
    if not path:
        return mutate_leaf(copy, position)
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = mutate_leaf(parent[path[-1]], position)
    return copy


def detected(path: Path) -> bool:
    """verify_paths reports a failure for the file (a file that no longer
    loads, or whose family is gone, is a reported failure too)."""
    [result] = verify_paths([path])
    return not result.ok


FAKE_LEAVES = leaf_paths(fake_build())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_leaf_change_of_a_canonical_file_fails(tmp_path_factory, monkeypatch, data):
    monkeypatch.setattr(vectorsets, "families", lambda: (FAKE_GENERATED, FAKE_PINNED))
    leaf = data.draw(st.sampled_from(FAKE_LEAVES), label="leaf")
    position = data.draw(st.integers(min_value=0, max_value=200), label="position")
    mutated = with_leaf(fake_build(), leaf, position)
    path = write(tmp_path_factory.mktemp("mutant") / "fake.json", mutated)
    assert detected(path), leaf


def test_mutation_helper_changes_every_kind_of_leaf():
    for value in ["", "00", "ab", "name", 0, 3, 2.5, True, False, None]:
        for position in range(3):
            changed = mutate_leaf(value, position)
            assert changed != value or type(changed) is not type(value)


# --------------------------------------------------------------------------
# The project's real files


def _real_files() -> list[Path]:
    if not REAL_VECTORS.is_dir():
        return []
    return sorted(p for p in REAL_VECTORS.glob("*.json") if p.name != vectors.SCHEMA_FILE)


REAL_FILES = _real_files()
REAL_IDS = [p.name for p in REAL_FILES]
LEAF_SAMPLE = 30
"""Leaves changed per file in CI (30 keeps the suite under 10 minutes on 2 cores); every leaf: the slow test below."""
SAMPLE_SEED = 20240601


def _memoised_families() -> tuple[VectorFamily, ...]:
    """The real families, with results reused where it is sound: a vector whose
    canonical JSON equals one that already verified is not recomputed (the
    check is a pure function of the vector), and ``build()`` (deterministic)
    runs once.  A mutation then costs one vector's recomputation."""
    out = []
    for family in vectorsets.families():
        passed: set[bytes] = set()

        def verify(vector, family=family, passed=passed):
            key = canonical_json(vector)
            if key not in passed:
                family.verify_vector(vector)
                passed.add(key)

        build = None if family.build is None else functools.cache(family.build)
        out.append(dataclasses.replace(family, verify_vector=verify, build=build))
    return tuple(out)


def _mutation_run(path: Path, tmp_path: Path, monkeypatch, sample: int | None) -> None:
    memoised = _memoised_families()
    monkeypatch.setattr(vectorsets, "families", lambda: memoised)
    target = tmp_path / path.name
    shutil.copyfile(path, target)
    baseline = verify_file(target)
    assert baseline.ok, [str(f) for f in baseline.failures]
    assert baseline.whole_file != vectors.WHOLE_FILE_NONE, "no family owns this file name"

    original = load_envelope(path)
    rng = random.Random(f"{SAMPLE_SEED}:{path.name}")
    leaves = leaf_paths(original)
    if sample is not None and len(leaves) > sample:
        leaves = rng.sample(leaves, sample)
    missed = []
    for leaf in leaves:
        write(target, with_leaf(original, leaf, rng.randrange(1 << 16)))
        if not detected(target):
            missed.append(vectors.json_path(leaf))
    assert not missed, f"{path.name}: single-value changes not detected at {missed}"


@pytest.mark.parametrize("path", REAL_FILES or [None], ids=REAL_IDS or ["no-files"])
def test_real_files_fail_on_any_sampled_single_value_change(path, tmp_path, monkeypatch):
    if path is None:
        pytest.skip("no vectors/*.json files yet")
    _mutation_run(path, tmp_path, monkeypatch, sample=LEAF_SAMPLE)


@pytest.mark.slow
@pytest.mark.parametrize("path", REAL_FILES or [None], ids=REAL_IDS or ["no-files"])
def test_real_files_fail_on_every_single_value_change(path, tmp_path, monkeypatch):
    if path is None:
        pytest.skip("no vectors/*.json files yet")
    _mutation_run(path, tmp_path, monkeypatch, sample=None)
