"""The ``usapp vectors`` machinery: load, validate, verify and generate vector files.

Every file under ``vectors/`` shares one JSON envelope (``vectors/schema.json``,
JSON Schema draft 2020-12, kept equal to :data:`ENVELOPE_SCHEMA`)::

    {"protocol": str, "suite": str, "source": str, "generated_by": str,
     "description": str (optional), "parameters": object (optional),
     "vectors": [{"name": str, ...}, ...]}     # non-empty, names unique

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
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

import protocols
from protocols.errors import DecodeError, ParameterError, UsappError, VectorMismatchError
from protocols.system import vectorsets
from protocols.system.vectorsets import VectorFamily

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
            "description": "The flags that vectors of this file carry: flag name -> what it means.",
            "type": "object",
            "additionalProperties": {"type": "string"},
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
                },
            },
        },
    },
}
"""The envelope schema; ``vectors/schema.json`` holds exactly this (a test checks)."""

_VALIDATOR = jsonschema.Draft202012Validator(ENVELOPE_SCHEMA)


# --------------------------------------------------------------------------
# Locations and encodings


def default_vectors_dir() -> Path:
    """``./vectors`` if it exists, else ``vectors/`` beside the ``protocols``
    package's parent directory (a source checkout or an editable install).

    Raises ``ParameterError`` when neither exists (an installed wheel ships no
    vectors): the caller must pass a PATH.
    """
    here = Path.cwd() / "vectors"
    if here.is_dir():
        return here
    beside = Path(protocols.__file__).resolve().parent.parent / "vectors"
    if beside.is_dir():
        return beside
    raise ParameterError(
        "no vectors directory found (neither ./vectors nor one beside the "
        "protocols package); pass a PATH"
    )


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
    """Strict JSON parse: no duplicate keys, no NaN/Infinity.  ``DecodeError`` on failure."""
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
    except ValueError as exc:
        raise DecodeError(f"{where}: invalid JSON: {exc}") from None


def validate_envelope(envelope: Any, where: str) -> None:
    """Check ``envelope`` against the schema and that vector names are unique.

    Raises ``DecodeError`` naming ``where`` (a file name) and the JSON path.
    """
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(envelope))
    if error is not None:
        raise DecodeError(f"{where}: {error.json_path}: {error.message}")
    first_index: dict[str, int] = {}
    for index, vector in enumerate(envelope["vectors"]):
        name = vector["name"]
        if name in first_index:
            raise DecodeError(
                f"{where}: {json_path(['vectors', index, 'name'])}: duplicate vector "
                f"name {name!r} (first at {json_path(['vectors', first_index[name]])})"
            )
        first_index[name] = index


def _read(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's exact text and its validated envelope."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{path}: not UTF-8 (byte {exc.start})") from None
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

    def __str__(self) -> str:
        where = "file" if self.vector is None else f"vector {self.vector!r}"
        return f"{where}: {self.message}"


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

    @property
    def ok(self) -> bool:
        return not self.failures


def _recompute(family: VectorFamily, path: Path, vector: Mapping[str, Any]) -> Failure | None:
    try:
        family.verify_vector(vector)
    except VectorMismatchError as exc:
        return Failure(str(path), vector["name"], str(exc) or "does not recompute")
    except UsappError as exc:
        return Failure(str(path), vector["name"], f"{type(exc).__name__}: {exc}")
    return None


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
            return Failure(
                str(path), None, f"envelope field {key!r} differs from the generator's output"
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
        where = _first_difference(ours[index], theirs[index], ["vectors", index])
        if where is not None:
            return Failure(
                str(path), ours[index]["name"],
                f"differs from the generator's output at {json_path(where)}",
            )
    return Failure(
        str(path), None,
        "values equal the generator's output but the layout differs (indent 2, sorted "
        "keys, trailing newline); run usapp vectors generate",
    )


def verify_file(path: str | Path, progress: Progress | None = None) -> FileResult:
    """Verify one vectors file (module docstring, steps 1 and 2).

    A malformed file or an unknown ``(protocol, suite)`` raises ``DecodeError``;
    a vector that does not recompute, or any other ``UsappError`` raised while
    recomputing it, is recorded as a :class:`Failure` with the vector's name.
    Any other exception is a bug in a family and propagates.
    """
    path = Path(path)
    text, envelope = _read(path)
    family = find_family(envelope["protocol"], envelope["suite"])
    if progress is not None:
        progress(f"verifying {path} ({len(envelope['vectors'])} vectors)")
    failures: list[Failure] = []
    for vector in envelope["vectors"]:
        failure = _recompute(family, path, vector)
        if failure is not None:
            failures.append(failure)
    whole_file = WHOLE_FILE_NONE
    if path.name == family.file:
        if family.build is not None:
            whole_file = WHOLE_FILE_GENERATED
            if progress is not None:
                progress(f"rebuilding {family.file} from its generator")
            failure = _compare_generated(path, text, envelope, build_envelope(family))
            if failure is not None:
                failures.append(failure)
        else:
            whole_file = WHOLE_FILE_PINNED
            digest = hashlib.sha256(canonical_json(envelope)).hexdigest()
            if digest != family.pinned_sha256:
                failures.append(
                    Failure(
                        str(path), None,
                        f"SHA-256 of the canonical JSON is {digest}, but "
                        f"{family.pinned_sha256} is pinned: the transcribed values changed",
                    )
                )
    return FileResult(
        file=str(path),
        family=f"{family.protocol} / {family.suite}",
        vectors=len(envelope["vectors"]),
        whole_file=whole_file,
        failures=tuple(failures),
    )


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to verify: each file as given; each directory's ``*.json`` except
    ``schema.json``, sorted.  A missing path is a ``ParameterError``."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.glob("*.json") if p.name != SCHEMA_FILE and p.is_file())
            )
        elif path.exists():
            out.append(path)
        else:
            raise ParameterError(f"{path}: no such file or directory")
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
            results.append(
                FileResult(
                    file=str(path), family=None, vectors=0, whole_file=None,
                    failures=(Failure(str(path), None, f"{type(exc).__name__}: {exc}"),),
                )
            )
    return results


# --------------------------------------------------------------------------
# Generation


def generate(vectors_dir: str | Path, progress: Progress | None = None) -> list[Path]:
    """Write ``dump_envelope(family.build())`` for every generated family into
    ``vectors_dir`` (created if missing); transcribed families are skipped.
    Returns the paths written."""
    directory = Path(vectors_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for family in vectorsets.families():
        if family.build is None:
            continue
        if progress is not None:
            progress(f"generating {family.file}")
        target = directory / family.file
        target.write_text(dump_envelope(build_envelope(family)), encoding="utf-8", newline="\n")
        written.append(target)
    return written
