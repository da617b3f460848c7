"""Vector family ``hmac-drbg``: NIST CAVP vectors for HMAC_DRBG (SP 800-90A Rev. 1).

``vectors/hmac_drbg.json`` is transcribed, not generated: a subset of
``HMAC_DRBG.rsp`` from NIST's CAVP ``drbgtestvectors.zip`` (CAVS 14.3), taken
from the no-reseed set and the prediction-resistance-false set by
:func:`transcribe`, so the file is pinned by ``pinned_sha256``.

CAVP semantics, which :func:`verify_vector` follows: Instantiate(entropy_input,
nonce, personalization_string); if the vector has ``entropy_input_reseed``,
Reseed(entropy_input_reseed, additional_input_reseed); Generate twice,
requesting len(returned_bits) bytes each time with additional_input[0], then
additional_input[1]; ``returned_bits`` is the output of the SECOND Generate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from protocols.errors import DecodeError, UsappError, VectorMismatchError
from protocols.primitives.drbg import HASH_SUITES, MAX_INPUT_BYTES, RESEED_INTERVAL, HmacDrbg
from protocols.system.vectorsets import Vector, VectorFamily
from protocols.system.vectorsets._fields import expect_refusal, out_of_range, vector_result

PROTOCOL = "hmac-drbg"
SUITE = "HMAC_DRBG (SP 800-90A Rev. 1)"
FILE = "hmac_drbg.json"

CAVP_FILES = {
    "noreseed": "drbgvectors_no_reseed/HMAC_DRBG.rsp",
    "reseed": "drbgvectors_pr_false/HMAC_DRBG.rsp",
}
"""The two CAVP response files, by the set label used in vector names."""

_HEX = re.compile(r"(?:[0-9a-f]{2})*")

# -- transcription from the CAVP response files ------------------------------------

_RSP_KEYS = {
    "EntropyInput": "entropy_input",
    "Nonce": "nonce",
    "PersonalizationString": "personalization_string",
    "EntropyInputReseed": "entropy_input_reseed",
    "AdditionalInputReseed": "additional_input_reseed",
    "AdditionalInput": "additional_input",
    "ReturnedBits": "returned_bits",
}


def parse_cavp_rsp(text: str) -> list[dict[str, Any]]:
    """Parse a CAVP DRBG ``.rsp`` file into one dict per ``COUNT`` record.

    Each record holds ``hash`` (the section's bracketed hash name),
    ``section`` (its bracketed ``Name = value`` parameters, values as str),
    ``section_index`` (0-based order of sections in the file), ``count``,
    ``line`` (1-based line of ``COUNT``), the byte strings in lower-case hex
    under snake_case names, and ``additional_input`` as a list in file order.
    Unknown keys raise ``DecodeError``.
    """
    records: list[dict[str, Any]] = []
    hash_name: str | None = None
    section: dict[str, str] = {}
    section_index = -1
    in_header = False
    record: dict[str, Any] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            inner = line[1:-1]
            if "=" not in inner:
                hash_name, section, in_header = inner, {}, True
                section_index += 1
            else:
                key, value = (part.strip() for part in inner.split("=", 1))
                section[key] = value
            record = None
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep:
            raise DecodeError(f"line {number}: expected 'Name = value'")
        if key == "COUNT":
            if hash_name is None:
                raise DecodeError(f"line {number}: COUNT before any section header")
            in_header = False
            record = {
                "hash": hash_name,
                "section": dict(section),
                "section_index": section_index,
                "count": int(value),
                "line": number,
                "additional_input": [],
            }
            records.append(record)
            continue
        if record is None or in_header or key not in _RSP_KEYS:
            raise DecodeError(f"line {number}: unexpected {key!r}")
        if _HEX.fullmatch(value.lower()) is None:
            raise DecodeError(f"line {number}: {key} is not hex")
        name = _RSP_KEYS[key]
        if name == "additional_input":
            record[name].append(value.lower())
        elif name in record:
            raise DecodeError(f"line {number}: {key} repeated")
        else:
            record[name] = value.lower()
    return records


def transcribe(
    rsp_texts: Mapping[str, str],
    hashes: Iterable[str] = tuple(HASH_SUITES),
    counts: Mapping[str, Sequence[int]] | None = None,
) -> list[dict[str, Any]]:
    """Select vectors from the CAVP files (``rsp_texts`` keyed like ``CAVP_FILES``).

    For each set, each hash in ``hashes`` and each of the four combinations
    of (PersonalizationStringLen, AdditionalInputLen), the FIRST section in
    the file with that combination is used (CAVP repeats each combination in
    four sections), and from it the records whose COUNT is in
    ``counts.get(hash, (0,))``.  Vector names are
    ``<hash>-<set>-pers<bits>-adin<bits>-count-<n>``.
    """
    counts = {} if counts is None else counts
    selected: list[dict[str, Any]] = []
    for label, text in rsp_texts.items():
        records = parse_cavp_rsp(text)
        first_section: dict[tuple[str, str, str], int] = {}
        for record in records:
            combo = (
                record["hash"],
                record["section"]["PersonalizationStringLen"],
                record["section"]["AdditionalInputLen"],
            )
            first_section.setdefault(combo, record["section_index"])
        for hash_name in hashes:
            for record in records:
                if record["hash"] != hash_name:
                    continue
                pers = record["section"]["PersonalizationStringLen"]
                adin = record["section"]["AdditionalInputLen"]
                if first_section[(hash_name, pers, adin)] != record["section_index"]:
                    continue
                if record["count"] not in counts.get(hash_name, (0,)):
                    continue
                vector = {
                    "name": f"{hash_name}-{label}-pers{pers}-adin{adin}-count-{record['count']}",
                    "hash": hash_name,
                    "cavp_file": CAVP_FILES[label],
                    "cavp_line": record["line"],
                }
                for key in _RSP_KEYS.values():
                    if key in record:
                        vector[key] = record[key]
                selected.append(vector)
    return selected


# -- recomputation ------------------------------------------------------------------


def _hex_field(vector: Vector, name: str, field_name: str, value: object = None) -> bytes:
    """Decode a lower-case hex string field; any defect is a VectorMismatchError."""
    if value is None:
        if field_name not in vector:
            raise VectorMismatchError(f"vector {name!r}: field {field_name!r} is missing")
        value = vector[field_name]
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise VectorMismatchError(
            f"vector {name!r}: field {field_name!r} is not a lower-case hex string of whole bytes"
        )
    return bytes.fromhex(value)


def verify_vector(vector: Vector) -> None:
    """Recompute ``returned_bits`` from the inputs (CAVP semantics, module docstring).

    Raises ``VectorMismatchError`` naming the vector and the field on a
    mismatch, a missing or malformed field, or inputs the DRBG rejects.
    """
    if not isinstance(vector, Mapping):
        raise VectorMismatchError("a vector must be a JSON object")
    name = vector.get("name")
    if not isinstance(name, str) or not name:
        raise VectorMismatchError("vector without a string field 'name'")
    if vector_result(vector) == "invalid":
        _verify_refusal(vector, name)
        return
    for extra in ("requested_bytes", "reseed_interval", "origin", "change", "flags", "error",
                  "oversized_input", "declared_bytes"):
        if extra in vector:
            raise VectorMismatchError(f"vector {name!r}: field {extra!r} belongs to an invalid vector only")
    hash_name = vector.get("hash")
    if not isinstance(hash_name, str) or hash_name not in HASH_SUITES:
        raise VectorMismatchError(
            f"vector {name!r}: field 'hash' is not one of {', '.join(HASH_SUITES)}"
        )
    inputs = _cavp_inputs(vector, name)
    expected = _hex_field(vector, name, "returned_bits")
    if not expected:
        raise VectorMismatchError(f"vector {name!r}: field 'returned_bits' is empty")

    try:
        returned_bits = _run_cavp(hash_name, inputs, len(expected), RESEED_INTERVAL)
    except UsappError as exc:
        raise VectorMismatchError(f"vector {name!r}: inputs rejected: {exc}") from exc

    if returned_bits != expected:
        first = next(i for i, (a, b) in enumerate(zip(returned_bits, expected)) if a != b)
        raise VectorMismatchError(
            f"vector {name!r}: field 'returned_bits' differs from the recomputed value "
            f"(first difference at byte {first})"
        )


# -- derived invalid vectors (not from the source) -------------------------------------

NOTES = {
    "ShortEntropy": ("entropy_input of Instantiate is one byte shorter than security_strength / 8: "
                     "SP 800-90A section 9.1 step 6 refuses it (ParameterError)"),
    "ShortReseedEntropy": ("entropy_input_reseed is one byte shorter than security_strength / 8: "
                           "SP 800-90A section 9.2 step 4 refuses the Reseed (ParameterError)"),
    "OversizedRequest": ("each Generate requests requested_bytes = 65537 bytes, over "
                         "max_number_of_bits_per_request = 2^19 bits = 65536 bytes (Table 2; section 9.3.1 "
                         "step 2): the first Generate is refused (RandomnessError)"),
    "ReseedRequired": ("the DRBG is instantiated with reseed_interval = 1: the first Generate succeeds, "
                       "the second returns \"reseed required\" (section 10.1.2.5 step 1; RandomnessError)"),
    "UnsupportedHash": ("hash SHA-1, which Table 2 allows but this profile does not offer "
                        "(specs/conventions.md section 3.3): refused before Instantiate (ParameterError)"),
    "OversizedInput": ("the input named by oversized_input is declared_bytes = 2^32 + 1 bytes long "
                       "(2^35 + 8 bits), over the 2^35-bit maximum of Table 2 for entropy input, "
                       "personalization string and additional input (sections 9.1 step 3, 9.2 step 3, "
                       "9.3.1 step 3): the call that takes it is refused on its declared length, before its "
                       "content is read (ParameterError); the content is not in the file"),
    "ReseedIntervalTooLarge": ("reseed_interval = 2^48 + 1, over the maximum number of requests between "
                               "reseeds of Table 2: refused before Instantiate (ParameterError)"),
}
"""The flags of the derived invalid vectors (the file's top-level notes)."""

OVERSIZED_BYTES = MAX_INPUT_BYTES + 1
"""The declared length of an OversizedInput vector's input: 2^32 + 1 bytes = 2^35 + 8 bits."""

OVERSIZED_INPUTS = ("entropy_input", "nonce", "personalization_string", "additional_input[0]",
                    "additional_input[1]", "entropy_input_reseed", "additional_input_reseed")
"""The inputs an OversizedInput vector may name (``oversized_input``)."""

DERIVED = "derived from the transcribed vector {base} by one change (not from the source)"


def derive_negatives(valid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Invalid vectors, each one change to a transcribed SHA-256 vector, that
    the DRBG MUST refuse with the named error (specs/conventions.md 3.3).

    An invalid vector has no ``returned_bits``; ``requested_bytes`` is the
    length of each of the two Generate requests (for a valid vector it is
    len(returned_bits)), and ``reseed_interval`` (when present) replaces the
    default 2^48 at Instantiate.
    """
    plain = next(v for v in valid if v["name"] == "SHA-256-noreseed-pers0-adin0-count-0")
    reseed = next(v for v in valid if v["name"] == "SHA-256-reseed-pers0-adin0-count-0")
    oversized = ((plain, "entropy-input", "entropy_input"),
                         (plain, "personalization-string", "personalization_string"),
                         (plain, "additional-input", "additional_input[0]"),
                         (reseed, "reseed-entropy-input", "entropy_input_reseed"),
                         (reseed, "reseed-additional-input", "additional_input_reseed"))

    def negative(base: dict[str, Any], name: str, change: str, fields: dict[str, Any],
                 error: str, flag: str) -> dict[str, Any]:
        vector = {key: value for key, value in base.items() if key not in ("name", "returned_bits")}
        vector["requested_bytes"] = len(base["returned_bits"]) // 2
        vector.update(fields)
        vector.update({"name": f"{base['name']}-rejects-{name}", "origin": DERIVED.format(base=base["name"]),
                       "change": change, "result": "invalid", "flags": [flag], "error": error})
        return vector

    return [
        negative(plain, "short-entropy", "entropy_input without its last byte (31 bytes = 248 bits < 256)",
                 {"entropy_input": plain["entropy_input"][:-2]}, "ParameterError", "ShortEntropy"),
        negative(reseed, "short-reseed-entropy", "entropy_input_reseed without its last byte (248 bits < 256)",
                 {"entropy_input_reseed": reseed["entropy_input_reseed"][:-2]}, "ParameterError",
                 "ShortReseedEntropy"),
        negative(plain, "oversized-request", "requested_bytes = 65537 (2^19 bits + 8)",
                 {"requested_bytes": 65537}, "RandomnessError", "OversizedRequest"),
        negative(plain, "reseed-required", "reseed_interval = 1 at Instantiate",
                 {"reseed_interval": 1}, "RandomnessError", "ReseedRequired"),
        negative(plain, "sha-1", "hash SHA-1 instead of SHA-256", {"hash": "SHA-1"},
                 "ParameterError", "UnsupportedHash"),
        negative(plain, "reseed-interval-too-large", "reseed_interval = 2^48 + 1 at Instantiate",
                 {"reseed_interval": RESEED_INTERVAL + 1}, "ParameterError", "ReseedIntervalTooLarge"),
        *(negative(base, f"oversized-{label}", f"{target} declared 2^32 + 1 bytes (2^35 + 8 bits) long",
                   {"oversized_input": target, "declared_bytes": OVERSIZED_BYTES}, "ParameterError",
                   "OversizedInput")
          for base, label, target in oversized),
    ]


def _cavp_inputs(vector: Vector, name: str) -> tuple:
    """(entropy_input, nonce, personalization_string, [additional_input x 2], reseed or None) of a
    vector, reseed being (entropy_input_reseed, additional_input_reseed) when the vector reseeds."""
    entropy_input = _hex_field(vector, name, "entropy_input")
    nonce = _hex_field(vector, name, "nonce")
    personalization_string = _hex_field(vector, name, "personalization_string")
    additional = vector.get("additional_input")
    if not isinstance(additional, list) or len(additional) != 2:
        raise VectorMismatchError(
            f"vector {name!r}: field 'additional_input' must be a list of two hex strings"
        )
    additional_input = [
        _hex_field(vector, name, f"additional_input[{i}]", item) for i, item in enumerate(additional)
    ]
    reseed = None
    if "entropy_input_reseed" in vector or "additional_input_reseed" in vector:
        reseed = (_hex_field(vector, name, "entropy_input_reseed"),
                  _hex_field(vector, name, "additional_input_reseed"))
    return entropy_input, nonce, personalization_string, additional_input, reseed


def _run_cavp(hash_name: str, inputs: tuple, nbytes: int, reseed_interval: int) -> bytes:
    """The CAVP procedure (module docstring): instantiate, reseed if asked, generate twice; the second output."""
    entropy_input, nonce, personalization_string, additional_input, reseed = inputs
    drbg = HmacDrbg(hash_name, reseed_interval=reseed_interval)
    drbg.instantiate(entropy_input, nonce, personalization_string)
    if reseed is not None:
        drbg.reseed(*reseed)
    drbg.generate(nbytes, additional_input[0])
    return drbg.generate(nbytes, additional_input[1])


class DeclaredLength(bytes):
    """An input of which only the length is known: ``len()`` gives the declared length, the
    content is empty.  An implementation that checks the 2^35-bit limit on the length before
    reading the content refuses it; one that does not would read the empty content and accept
    the run, which the vector reports as a mismatch.  No 4 GiB string is ever built."""

    declared: int

    def __new__(cls, declared: int) -> DeclaredLength:
        value = super().__new__(cls, b"")
        value.declared = declared
        return value

    def __len__(self) -> int:
        return self.declared


def _with_declared_length(vector: Vector, name: str, inputs: tuple) -> tuple:
    """``inputs`` with the input ``oversized_input`` names replaced by a DeclaredLength of
    ``declared_bytes`` (an OversizedInput vector; its stored hex for that input is ignored)."""
    target, declared = vector.get("oversized_input"), vector.get("declared_bytes")
    if target not in OVERSIZED_INPUTS:
        raise VectorMismatchError(f"vector {name!r}: field 'oversized_input' must be one of "
                                  f"{', '.join(OVERSIZED_INPUTS)}")
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 0:
        raise VectorMismatchError(f"vector {name!r}: field 'declared_bytes' must be a JSON integer >= 0")
    if target in ("entropy_input_reseed", "additional_input_reseed") and inputs[4] is None:
        raise VectorMismatchError(f"vector {name!r}: field 'oversized_input' names a Reseed input "
                                  "but the vector does not reseed")
    entropy_input, nonce, personalization_string, additional_input, reseed = inputs
    big = DeclaredLength(declared)
    if target == "entropy_input":
        entropy_input = big
    elif target == "nonce":
        nonce = big
    elif target == "personalization_string":
        personalization_string = big
    elif target.startswith("additional_input["):
        additional_input = list(additional_input)
        additional_input[int(target[-2])] = big
    elif target == "entropy_input_reseed":
        reseed = (big, reseed[1])
    else:
        reseed = (reseed[0], big)
    return entropy_input, nonce, personalization_string, additional_input, reseed


def _verify_refusal(vector: Vector, name: str) -> None:
    """An invalid vector: the CAVP procedure (module docstring), with ``requested_bytes``
    per Generate and ``reseed_interval`` at Instantiate, MUST be refused with ``error``."""
    if "returned_bits" in vector:
        raise VectorMismatchError(f"vector {name!r}: an invalid vector has no 'returned_bits'")
    hash_name = vector.get("hash")
    if not isinstance(hash_name, str):
        raise VectorMismatchError(f"vector {name!r}: field 'hash' must be a string")
    for text in ("origin", "change"):
        if not isinstance(vector.get(text), str):
            raise VectorMismatchError(f"vector {name!r}: field {text!r} must be a string")
    inputs = _cavp_inputs(vector, name)
    if "oversized_input" in vector or "declared_bytes" in vector:
        inputs = _with_declared_length(vector, name, inputs)
    counts = []
    for label, value in (("requested_bytes", vector.get("requested_bytes")),
                         ("reseed_interval", vector.get("reseed_interval", RESEED_INTERVAL))):
        if isinstance(value, bool) or not isinstance(value, int):
            raise VectorMismatchError(f"vector {name!r}: field {label!r} must be a JSON integer")
        if not 0 <= value <= 2**49:  # SP 800-90A Table 2 allows reseed_interval <= 2^48; vectors go one past
            raise out_of_range(label, value, 0, 2**49)
        counts.append(value)
    checked_requested, checked_interval = counts

    expect_refusal(vector, lambda: _run_cavp(hash_name, inputs, checked_requested, checked_interval))


FAMILY = VectorFamily(
    file=FILE,
    protocol=PROTOCOL,
    suite=SUITE,
    verify_vector=verify_vector,
    pinned_sha256="32d52bfb4e2a9ea968b5a2e5f97d7a24fdac2c568bc38e63c35996963fe58294",
)
