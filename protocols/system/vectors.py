"""The ``usapp vectors`` machinery: load, validate, verify and generate vector files.

Every file under ``vectors/`` shares one JSON envelope (``vectors/schema.json``,
JSON Schema draft 2020-12, kept equal to :data:`ENVELOPE_SCHEMA`)::

    {"protocol": str, "suite": str, "source": str, "generated_by": str,
     "description": str (optional), "parameters": object (optional),
     "notes": {flag: str} (optional),
     "vectors": [{"name": str, "result"?, "flags"?, "error"?, ...}, ...]}
                                               # non-empty, names unique

Byte strings and big integers inside vectors are lower-case hex strings.

Verification (see ``protocols.system.vectorsets`` for the semantics):

1. :func:`load_envelope` parses and validates the file; a malformed file raises
   :class:`~protocols.errors.DecodeError` naming the file and the JSON path.
2. :func:`verify_file` finds the family by ``(protocol, suite)``, recomputes
   every vector, and for the project's canonical file (same base name as
   ``family.file``) checks the whole file: a generated family's file must be
   exactly :func:`dump_envelope` of ``family.build()``, a transcribed family's
   :func:`canonical_json` must hash to ``family.pinned_sha256``.

Generation (:func:`generate`) writes :func:`dump_envelope` of every generated
family's ``build()``; transcribed families are never rewritten.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

import protocols
from protocols.errors import DecodeError, ParameterError, UsappError, VectorMismatchError
from protocols.system import vectorsets
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import MAX_JSON_DEPTH, check_shape, json_depth

Progress = Callable[[str], None]

SCHEMA_FILE = "schema.json"
"""Base name of the envelope schema inside a vectors directory (never a vectors file)."""

ENVELOPE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:usapp:vectors:envelope:1",
    "title": "USaPP test vector file",
    "description": (
        "The envelope shared by every file under vectors/. Inside vectors, byte "
        "strings and big integers are lower-case hexadecimal strings (big "
        "integers big-endian, without a 0x prefix); small counts and flags may "
        "be JSON numbers and booleans. Each family's fields are described in "
        "vectors/README.md, marked 'chosen by the generator' (inputs) or "
        "'computed' (outputs an implementation must reproduce)."
    ),
    "type": "object",
    "required": ["protocol", "suite", "source", "generated_by", "vectors"],
    "additionalProperties": False,
    "properties": {
        "protocol": {
            "description": "The protocol or scheme the vectors exercise; with suite, selects the family.",
            "type": "string",
            "minLength": 1,
        },
        "suite": {
            "description": "The parameter or cipher suite, as named in the spec.",
            "type": "string",
            "minLength": 1,
        },
        "source": {
            "description": "Where the values come from: the spec section, or the published source of transcribed values.",
            "type": "string",
            "minLength": 1,
        },
        "generated_by": {
            "description": "The code (and DRBG seeds) that generated or transcribed the file.",
            "type": "string",
            "minLength": 1,
        },
        "description": {
            "description": "Free text for readers.",
            "type": "string",
        },
        "parameters": {
            "description": "Values shared by every vector (family specific).",
            "type": "object",
        },
        "notes": {
            "description": (
                "Flag name -> what it means, for every flag a vector of the file "
                "carries in its `flags` (vectors/README.md, Negative vectors)."
            ),
            "type": "object",
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        "vectors": {
            "description": "The vectors; each has a name unique within the file.",
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "result": {
                        "description": (
                            "valid (the default when absent), invalid (the step MUST "
                            "refuse with `error`) or acceptable."
                        ),
                        "enum": ["valid", "invalid", "acceptable"],
                    },
                    "flags": {
                        "description": "Flag names, each documented in the file's `notes`.",
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                    },
                    "error": {
                        "description": (
                            "For an invalid vector: the spec's error name "
                            "(specs/conventions.md section 5.1) the refusal raises."
                        ),
                        "type": "string",
                        "minLength": 1,
                    },
                },
            },
        },
    },
}
"""The envelope schema; ``vectors/schema.json`` holds exactly this (a test checks)."""

_VALIDATOR = jsonschema.Draft202012Validator(ENVELOPE_SCHEMA)


# --------------------------------------------------------------------------
# Locations and encodings


DATA_PACKAGE = "protocols.system.vectordata"
"""The package the project's ``vectors/`` folder is installed as (pyproject.toml
maps it to ``vectors/``, so ``vectors/`` stays the one source)."""

SCHEMA_DIR = "schema"
"""Sub-folder of the vectors directory holding one JSON Schema per family file."""


def data_dir() -> Path:
    """The project's own vectors: the installed package data
    (``importlib.resources``, package ``protocols.system.vectordata``), else, in
    a source checkout, ``vectors/`` beside the ``protocols`` package.

    Raises ``ParameterError`` when neither exists.
    """
    installed = importlib.resources.files("protocols.system") / "vectordata"
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    beside = Path(protocols.__file__).resolve().parent.parent / "vectors"
    if beside.is_dir():
        return beside
    raise ParameterError(
        "the project's vectors are not installed (no protocols/system/vectordata "
        "and no vectors/ beside the protocols package); pass a PATH"
    )


def default_vectors_dir() -> Path:
    """``./vectors`` if it exists, else the project's own vectors (:func:`data_dir`)."""
    here = Path.cwd() / "vectors"
    if here.is_dir():
        return here
    return data_dir()


def family_schema(family: VectorFamily) -> dict[str, Any] | None:
    """The family's JSON Schema (``schema/<file stem>.json`` in :func:`data_dir`), or None."""
    try:
        path = data_dir() / SCHEMA_DIR / family.file
    except ParameterError:
        return None
    if not path.is_file():
        return None
    return parse_json(read_text(path), str(path))


def canonical_json(envelope: Mapping[str, Any]) -> bytes:
    """The canonical JSON of an envelope: sorted keys, no whitespace, ASCII.

    ``VectorFamily.pinned_sha256`` is the SHA-256 of these bytes.
    """
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def dump_envelope(envelope: Mapping[str, Any]) -> str:
    """The on-disk form of a vectors file: indent 2, sorted keys, trailing newline."""
    return json.dumps(envelope, indent=2, sort_keys=True) + "\n"


def json_path(parts: Iterable[str | int]) -> str:
    """Render a path of keys and indices as ``$.vectors[2].name``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


# --------------------------------------------------------------------------
# Loading and validation


MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest vectors file (or schema) read: 16 MiB (the project's largest file is under 1 MiB).
Checked before reading, and the read itself stops one byte past it."""

MAX_VECTORS = 10_000
"""Most vectors in one file (the project's largest file holds 71)."""


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate object key {key!r}")
        seen[key] = value
    return seen


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str, where: str) -> Any:
    """Strict JSON parse: at most :data:`MAX_FILE_BYTES` characters and
    :data:`MAX_JSON_DEPTH` levels (both checked first), no duplicate keys, no
    NaN/Infinity, integers of at most 4300 digits.  ``DecodeError`` on failure."""
    if len(text) > MAX_FILE_BYTES:
        raise DecodeError(f"{where}: larger than {MAX_FILE_BYTES} bytes")
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise DecodeError(f"{where}: JSON nested {depth} deep (at most {MAX_JSON_DEPTH})")
    try:
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"{where}: invalid JSON: {exc}") from None


def read_text(path: Path) -> str:
    """A file's UTF-8 text, refused (``DecodeError``) when it is not a regular
    file, is larger than :data:`MAX_FILE_BYTES` (checked before reading; the
    read stops one byte past the cap, so a growing or special file cannot
    exhaust memory) or is not UTF-8."""
    try:
        with path.open("rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise DecodeError(f"{path}: not a regular file")
            if os.fstat(handle.fileno()).st_size > MAX_FILE_BYTES:
                raise DecodeError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DecodeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DecodeError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{path}: not UTF-8 (byte {exc.start})") from None


def validate_envelope(envelope: Any, where: str) -> None:
    """Check ``envelope`` against the schema and that vector names are unique.

    Raises ``DecodeError`` naming ``where`` (a file name) and the JSON path.
    """
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(envelope))
    if error is not None:
        raise DecodeError(f"{where}: {error.json_path}: {error.message[:200]}")
    if len(envelope["vectors"]) > MAX_VECTORS:
        raise DecodeError(f"{where}: $.vectors: more than {MAX_VECTORS} vectors")
    first_index: dict[str, int] = {}
    for index, vector in enumerate(envelope["vectors"]):
        name = vector["name"]
        if name in first_index:
            raise DecodeError(
                f"{where}: {json_path(['vectors', index, 'name'])}: duplicate vector "
                f"name {name!r} (first at {json_path(['vectors', first_index[name]])})"
            )
        first_index[name] = index
    notes = envelope.get("notes", {})
    for index, vector in enumerate(envelope["vectors"]):
        for flag_index, flag in enumerate(vector.get("flags", [])):
            if flag not in notes:
                raise DecodeError(
                    f"{where}: {json_path(['vectors', index, 'flags', flag_index])}: flag "
                    f"{flag!r} is not documented in the file's notes"
                )
        if vector.get("result") == "invalid" and "error" not in vector:
            raise DecodeError(
                f"{where}: {json_path(['vectors', index])}: an invalid vector must name its error"
            )


def _read(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's exact text and its validated envelope."""
    text = read_text(path)
    envelope = parse_json(text, str(path))
    validate_envelope(envelope, str(path))
    return text, envelope


def load_envelope(path: str | Path) -> dict[str, Any]:
    """Read, parse and validate one vectors file; ``DecodeError`` on any problem."""
    return _read(Path(path))[1]


# --------------------------------------------------------------------------
# Families


def find_family(protocol: str, suite: str) -> VectorFamily:
    """The registered family for ``(protocol, suite)``; ``DecodeError`` if none."""
    matches = [
        family
        for family in vectorsets.families()
        if family.protocol == protocol and family.suite == suite
    ]
    if not matches:
        raise DecodeError(f"no vector family for protocol {protocol!r}, suite {suite!r}")
    if len(matches) > 1:
        files = ", ".join(family.file for family in matches)
        raise ParameterError(
            f"several vector families claim protocol {protocol!r}, suite {suite!r}: {files}"
        )
    return matches[0]


def build_envelope(family: VectorFamily) -> dict[str, Any]:
    """Run a generated family's ``build()`` and return its output in JSON form,
    validated against the schema (a family that builds an invalid file is a
    ``DecodeError`` naming the family's file)."""
    if family.build is None:
        raise ParameterError(f"vector family {family.file!r} is transcribed, not generated")
    envelope = json.loads(dump_envelope(family.build()))
    validate_envelope(envelope, f"{family.file} (as built)")
    return envelope


# --------------------------------------------------------------------------
# Verification


@dataclass(frozen=True)
class Failure:
    """One failed check: the file, the vector's name (None for the whole file or
    the envelope) and what was wrong."""

    file: str
    vector: str | None
    message: str
    path: str | None = None
    """JSON path of the value that differs (``$.vectors[3].sig``), when known."""
    expected: Any = None
    """What the reference implementation (or the generator) gives at ``path``."""
    actual: Any = None
    """What the file holds at ``path``."""
    kind: str = "recompute"
    """``schema``, ``recompute`` or ``whole-file``: which check failed.  A
    whole-file comparison names the exact value that changed; a recomputation
    names the first computed field that no longer matches."""

    def __str__(self) -> str:
        where = "file" if self.vector is None else f"vector {self.vector!r}"
        at = "" if self.path is None or self.path in self.message else f" (at {self.path})"
        return f"{where}: {self.message}{at}"


WHOLE_FILE_GENERATED = "generated"
"""The whole file was compared with the generator's output."""
WHOLE_FILE_PINNED = "pinned"
"""The whole file's canonical JSON was compared with the pinned SHA-256."""
WHOLE_FILE_NONE = "recomputed only"
"""Not the canonical file (a vendor's): only the vectors were recomputed."""


@dataclass(frozen=True)
class FileResult:
    """The outcome of verifying one file."""

    file: str
    family: str | None
    """``"protocol / suite"`` of the family, None if the file could not be loaded."""
    vectors: int
    """How many vectors were recomputed."""
    whole_file: str | None
    """One of the ``WHOLE_FILE_*`` constants; None if the file could not be loaded."""
    failures: tuple[Failure, ...]
    results: tuple[tuple[str, str], ...] = ()
    """Each vector's name and declared ``result`` (valid, invalid, acceptable), in file order."""

    @property
    def ok(self) -> bool:
        return not self.failures


_FIELD_IN_MESSAGE = re.compile(r"field '([^']+)'")
_PATH_IN_MESSAGE = re.compile(r": (\$[^: ]*): ")


def _field_path(index: int, field: str) -> str:
    """``$.vectors[index]`` followed by a family's field name (``a.b``, ``a[2].c``, ``round_one.3.x``)."""
    return json_path(["vectors", index]) + ("" if field.startswith("[") else ".") + field


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _recompute(family: VectorFamily, path: Path, index: int, vector: Mapping[str, Any]) -> Failure | None:
    try:
        check_shape(vector)
        family.verify_vector(vector)
    except VectorMismatchError as exc:
        field = exc.field
        if field is None:
            found = _FIELD_IN_MESSAGE.search(str(exc))
            field = found.group(1) if found else None
        return Failure(
            str(path), vector["name"], str(exc) or "does not recompute",
            path=json_path(["vectors", index]) if field is None else _field_path(index, field),
            expected=_jsonable(exc.expected), actual=_jsonable(exc.actual),
        )
    except UsappError as exc:
        return Failure(str(path), vector["name"], f"{type(exc).__name__}: {exc}",
                       path=json_path(["vectors", index]))
    return None


def _value_at(document: Any, parts: list[str | int]) -> Any:
    for part in parts:
        try:
            document = document[part]
        except (KeyError, IndexError, TypeError):
            return None
    return document


def _first_difference(actual: Any, expected: Any, parts: list[str | int]) -> list[str | int] | None:
    """Path of the first place where two JSON values differ (None if equal)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected)):
            if key not in actual or key not in expected:
                return [*parts, key]
            found = _first_difference(actual[key], expected[key], [*parts, key])
            if found is not None:
                return found
        return None
    if isinstance(actual, list) and isinstance(expected, list):
        for index, (a, e) in enumerate(zip(actual, expected)):
            found = _first_difference(a, e, [*parts, index])
            if found is not None:
                return found
        if len(actual) != len(expected):
            return [*parts, min(len(actual), len(expected))]
        return None
    if type(actual) is not type(expected) or actual != expected:
        return parts
    return None


def _compare_generated(path: Path, text: str, envelope: dict[str, Any], expected: dict[str, Any]) -> Failure | None:
    """Whole-file check of a generated family's canonical file."""
    if text == dump_envelope(expected):
        return None
    for key in sorted((set(envelope) | set(expected)) - {"vectors"}):
        if (
            key not in envelope
            or key not in expected
            or _first_difference(envelope[key], expected[key], []) is not None
        ):
            where: list[str | int] = _first_difference(envelope.get(key), expected.get(key), [key]) or [key]
            return Failure(
                str(path), None, f"envelope field {key!r} differs from the generator's output",
                path=json_path(where), expected=_value_at(expected, where),
                actual=_value_at(envelope, where), kind="whole-file",
            )
    ours, theirs = envelope["vectors"], expected["vectors"]
    for index in range(max(len(ours), len(theirs))):
        if index >= len(ours):
            return Failure(
                str(path), None,
                f"vector {theirs[index]['name']!r} of the generator's output is missing "
                f"({len(ours)} vectors in the file, {len(theirs)} generated)",
            )
        if index >= len(theirs):
            return Failure(
                str(path), ours[index]["name"],
                f"not in the generator's output ({len(ours)} vectors in the file, "
                f"{len(theirs)} generated)",
            )
        differs = _first_difference(ours[index], theirs[index], ["vectors", index])
        if differs is not None:
            where = differs
            return Failure(
                str(path), ours[index]["name"],
                f"differs from the generator's output at {json_path(where)}",
                path=json_path(where), expected=_value_at(expected, where),
                actual=_value_at(envelope, where), kind="whole-file",
            )
    return Failure(
        str(path), None,
        "values equal the generator's output but the layout differs (indent 2, sorted "
        "keys, trailing newline); run usapp vectors generate",
    )


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For a oneOf/anyOf failure, the error of the branch that came closest (the
    branch whose ``operation`` matches, else jsonschema's best match)."""
    while error.context:
        branches: dict[int, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        # the branch with the fewest errors, none of them on a const/enum (the selector)
        ranked = sorted(branches.values(), key=lambda errs: (any(e.validator in ("const", "enum") for e in errs), len(errs)))
        error = jsonschema.exceptions.best_match(ranked[0])
    return error


def _schema_failures(family: VectorFamily, path: Path, envelope: dict[str, Any]) -> list[Failure]:
    """Validate the file against its family's schema (every field documented)."""
    schema = family_schema(family)
    if schema is None:
        return []
    validator = jsonschema.Draft202012Validator(schema)
    failures = []
    top = sorted(validator.iter_errors(envelope), key=lambda e: list(map(str, e.absolute_path)))[:10]
    for error in top:
        error = _deepest(error)
        parts = list(error.absolute_path)
        vector = None
        if len(parts) >= 2 and parts[0] == "vectors" and isinstance(parts[1], int):
            vector = envelope["vectors"][parts[1]].get("name")
        failures.append(Failure(
            str(path), vector,
            f"does not match schema/{family.file}: {error.message[:200]}",
            path=error.json_path, actual=_jsonable(error.instance) if not isinstance(error.instance, (dict, list)) else None,
            kind="schema",
        ))
    return failures


def _pinned_failure(family: VectorFamily, path: Path, envelope: dict[str, Any]) -> Failure | None:
    """Whole-file check of a transcribed family's canonical file: the pinned digest.

    When it differs and the project's shipped copy (:func:`data_dir`) is another
    file that still matches the pin, the first differing JSON path is named.
    """
    digest = hashlib.sha256(canonical_json(envelope)).hexdigest()
    if digest == family.pinned_sha256:
        return None
    message = (
        f"SHA-256 of the canonical JSON is {digest}, but {family.pinned_sha256} is "
        "pinned: the transcribed values changed"
    )
    try:
        shipped = data_dir() / family.file
    except ParameterError:
        shipped = None
    if shipped is not None and shipped.is_file() and shipped.resolve() != path.resolve():
        reference = parse_json(read_text(shipped), str(shipped))
        if hashlib.sha256(canonical_json(reference)).hexdigest() == family.pinned_sha256:
            where = _first_difference(envelope, reference, [])
            if where is not None:
                vector = None
                if len(where) >= 2 and where[0] == "vectors" and isinstance(where[1], int):
                    vector = _value_at(envelope, ["vectors", where[1], "name"])
                return Failure(
                    str(path), vector, f"{message}; first difference at {json_path(where)}",
                    path=json_path(where), expected=_value_at(reference, where),
                    actual=_value_at(envelope, where), kind="whole-file",
                )
    return Failure(str(path), None, message, kind="whole-file")


def verify_file(path: str | Path, progress: Progress | None = None) -> FileResult:
    """Verify one vectors file (module docstring, steps 1 and 2).

    A malformed file or an unknown ``(protocol, suite)`` raises ``DecodeError``;
    a field the family's schema does not document, a vector that does not
    recompute, or any other ``UsappError`` raised while recomputing it, is
    recorded as a :class:`Failure` with the vector's name and JSON path.
    Any other exception is a bug in a family and propagates (the command line
    reports it as one line, exit status 3).
    """
    path = Path(path)
    text, envelope = _read(path)
    family = find_family(envelope["protocol"], envelope["suite"])
    if progress is not None:
        progress(f"verifying {path} ({len(envelope['vectors'])} vectors)")
    failures: list[Failure] = _schema_failures(family, path, envelope)
    for index, vector in enumerate(envelope["vectors"]):
        failure = _recompute(family, path, index, vector)
        if failure is not None:
            failures.append(failure)
    whole_file = WHOLE_FILE_NONE
    if path.name == family.file:
        if family.build is not None:
            whole_file = WHOLE_FILE_GENERATED
            if progress is not None:
                progress(f"rebuilding {family.file} from its generator")
            failure = _compare_generated(path, text, envelope, build_envelope(family))
        else:
            whole_file = WHOLE_FILE_PINNED
            failure = _pinned_failure(family, path, envelope)
        if failure is not None:
            failures.append(failure)
    return FileResult(
        file=str(path),
        family=f"{family.protocol} / {family.suite}",
        vectors=len(envelope["vectors"]),
        whole_file=whole_file,
        failures=tuple(failures),
        results=tuple((v["name"], v.get("result", "valid")) for v in envelope["vectors"]),
    )


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to verify: each file as given; each directory's ``*.json`` except
    ``schema.json``, sorted.  A missing or unreadable path is a ``ParameterError``."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                out.extend(
                    sorted(p for p in path.glob("*.json") if p.name != SCHEMA_FILE and p.is_file())
                )
            elif path.exists():
                out.append(path)
            else:
                raise ParameterError(f"{path}: no such file or directory")
        except OSError as exc:
            raise ParameterError(f"{path}: {exc.strerror or exc}") from None
    return out


def verify_paths(paths: Iterable[str | Path], progress: Progress | None = None) -> list[FileResult]:
    """Verify every file under ``paths`` (see :func:`expand_paths`).

    Unlike :func:`verify_file`, a file that cannot be loaded or has no family
    does not stop the run: it becomes a result with one whole-file failure.
    """
    results = []
    for path in expand_paths(paths):
        try:
            results.append(verify_file(path, progress))
        except UsappError as exc:
            where = _PATH_IN_MESSAGE.search(str(exc))
            results.append(
                FileResult(
                    file=str(path), family=None, vectors=0, whole_file=None,
                    failures=(Failure(str(path), None, f"{type(exc).__name__}: {exc}",
                                      path=where.group(1) if where else None, kind="schema"),),
                )
            )
    return results


# --------------------------------------------------------------------------
# Generation


def write_atomically(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file in ``target``'s folder, then
    ``os.replace`` it onto ``target``: an interrupted run leaves the old file
    (or none), never a truncated one.  ``ParameterError`` on an OS error."""
    handle = None
    try:
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", newline="\n", dir=target.parent,
            prefix=f".{target.name}.", suffix=".tmp", delete=False,
        )
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except OSError as exc:
        if handle is not None:
            Path(handle.name).unlink(missing_ok=True)
        raise ParameterError(f"{target}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        if handle is not None:
            Path(handle.name).unlink(missing_ok=True)
        raise


def generate(vectors_dir: str | Path, progress: Progress | None = None) -> list[Path]:
    """Write ``dump_envelope(family.build())`` for every generated family into
    ``vectors_dir`` (created if missing; ``ParameterError`` if it is a file or
    cannot be created); transcribed families are skipped.  Each file is
    written atomically (:func:`write_atomically`).  Returns the paths written."""
    directory = Path(vectors_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ParameterError(f"{directory}: exists and is not a directory") from None
    except OSError as exc:
        raise ParameterError(f"{directory}: cannot create: {exc.strerror or exc}") from None
    written = []
    for family in vectorsets.families():
        if family.build is None:
            continue
        if progress is not None:
            progress(f"generating {family.file}")
        target = directory / family.file
        write_atomically(target, dump_envelope(build_envelope(family)))
        written.append(target)
    return written


# --------------------------------------------------------------------------
# Listing and describing families


_NUM = r"[0-9]+(?:\.[0-9]+)*"
_SPEC_REFERENCE = re.compile(rf"specs/[a-z0-9_]+\.md(?: sections? {_NUM}(?:(?:, | and | to |-){_NUM})*)?")
_PUBLISHED = re.compile(r"RFC \d{4}|NIST CAVP|Milagro")


@dataclass(frozen=True)
class FamilyInfo:
    """One row of ``usapp vectors list``."""

    file: str
    protocol: str
    suite: str
    valid: int
    invalid: int
    acceptable: int
    source: str
    """``generated``, or ``transcribed (RFC 9380)`` naming the published source."""
    spec: str
    """The spec sections a vendor reads (from the schema's and the file's texts)."""


def family_info(family: VectorFamily, directory: Path) -> FamilyInfo:
    """Counts and provenance of one family's file in ``directory``."""
    envelope = load_envelope(directory / family.file)
    results = [vector.get("result", "valid") for vector in envelope["vectors"]]
    if family.generated:
        source = "generated"
    else:
        published = _PUBLISHED.search(envelope["source"])
        source = "transcribed" + (f" ({published.group(0)})" if published else "")
    schema = family_schema(family) or {}
    texts = [str(schema.get("description", "")), envelope["source"], str(envelope.get("description", ""))]
    specs: list[str] = []
    for text in texts:
        for found in _SPEC_REFERENCE.findall(text):
            if found not in specs:
                specs.append(found)
    return FamilyInfo(
        file=family.file, protocol=family.protocol, suite=family.suite,
        valid=results.count("valid"), invalid=results.count("invalid"),
        acceptable=results.count("acceptable"), source=source, spec="; ".join(specs) or "-",
    )


def find_family_by_name(name: str) -> VectorFamily:
    """A family by file stem (``rfc9162``), file name or protocol; ``ParameterError`` if none."""
    for family in vectorsets.families():
        if name in (family.file, family.file.removesuffix(".json"), family.protocol):
            return family
    known = ", ".join(family.file.removesuffix(".json") for family in vectorsets.families())
    raise ParameterError(f"unknown vector family {name!r}; known: {known}")


def _kind(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return f"= {json.dumps(schema['const'])}"
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    kind = schema.get("type", "value")
    return "/".join(kind) if isinstance(kind, list) else str(kind)


def describe_schema(schema: Mapping[str, Any]) -> list[str]:
    """The format a schema documents, one field a line: ``path: type. description``."""
    lines = [str(schema.get("title", "")), str(schema.get("description", "")), ""]

    def walk(node: Mapping[str, Any], prefix: str, depth: int) -> None:
        pad = "  " * depth
        if "oneOf" in node:
            for branch in node["oneOf"]:
                label = branch.get("properties", {}).get("operation", {}).get("const")
                lines.append(f"{pad}{prefix or '(item)'} when operation = {json.dumps(label)}:"
                             if label is not None else f"{pad}{prefix or '(item)'} one of:")
                walk(branch, prefix, depth + 1)
            return
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            required = set(node.get("required", ()))
            for key in sorted(properties):
                child = properties[key]
                path = f"{prefix}.{key}" if prefix else key
                optional = "" if key in required else " (optional)"
                lines.append(f"{pad}{path}: {_kind(child)}{optional}. {child.get('description', '')}".rstrip())
                walk(child, path, depth + 1)
        items = node.get("items")
        if isinstance(items, Mapping) and ("properties" in items or "oneOf" in items):
            walk(items, f"{prefix}[]", depth)
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping) and ("properties" in extra or "oneOf" in extra):
            walk(extra, f"{prefix}.<key>", depth)

    walk(schema, "", 0)
    return lines
