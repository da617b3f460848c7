"""Vector family ``rfc9380``: RFC 9380's published vectors for the BLS12-381
suites and for expand_message_xmd(SHA-256) (specs/bls12_381.md section 8).

- Appendix J.9.1, suite BLS12381G1_XMD:SHA-256_SSWU_RO_ (five messages);
- Appendix J.10.1, suite BLS12381G2_XMD:SHA-256_SSWU_RO_ (five messages);
- Appendix K.1, expand_message_xmd(SHA-256), and K.2, the same with a DST
  longer than 255 bytes (ten cases each).

The file is transcribed by :func:`transcribe` from the text of the appendices
(values parsed by script, never retyped) and pinned by its digest.  What a
vector's fields are and how each is recomputed is in the spec, section 8.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from protocols.errors import VectorMismatchError
from protocols.primitives import bls12_381 as bls
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    UINT32,
    bytes_field, dispatch, expect, expect_refusal, field, recompute, small_int_field, str_field, vector_result,
)

PROTOCOL = "rfc9380"
SUITE = "BLS12-381 hash_to_curve (SHA-256, SSWU, RO) and expand_message_xmd(SHA-256)"
FILE = "rfc9380.json"

_FP_HEX = re.compile(r"[0-9a-f]{96}")


# -- reading fields ------------------------------------------------------------------


def _text(vector: Mapping[str, Any], name: str) -> bytes:
    """A msg or DST, stored as the RFC prints it: ASCII text."""
    value = str_field(vector, name)
    if not value.isascii():
        raise VectorMismatchError(f"field {name!r} must be ASCII text")
    return value.encode("ascii")


def _fp_hex(value: object, name: str) -> int:
    if not isinstance(value, str) or not _FP_HEX.fullmatch(value):
        raise VectorMismatchError(f"field {name!r} must be 96 lower-case hex digits (an F_p element)")
    return int(value, 16)


def _fp(vector: Mapping[str, Any], name: str) -> int:
    return _fp_hex(field(vector, name), name)


def _fp2(vector: Mapping[str, Any], name: str) -> tuple[int, int]:
    value = field(vector, name)
    if not isinstance(value, list) or len(value) != 2:
        raise VectorMismatchError(f"field {name!r} must be a list [c0, c1] of F_p elements")
    return (_fp_hex(value[0], name), _fp_hex(value[1], name))


# -- recomputation -----------------------------------------------------------------


def _hash_to_g1(v: Mapping[str, Any]) -> None:
    msg, dst = _text(v, "msg"), _text(v, "dst")
    expect("suite", str_field(v, "suite"), bls.SUITE_G1)
    u = bls.hash_to_field_fp(msg, dst, 2)
    expect("u0", _fp(v, "u0"), u[0])
    expect("u1", _fp(v, "u1"), u[1])
    # Q0, Q1 are map_to_curve(u) before cofactor clearing; the binding exposes
    # the map only after it, so each Q is checked on E and as [h_eff]Q.
    for i in (0, 1):
        label = f"Q{i}_x, Q{i}_y"
        q = recompute(label, functools.partial(_cleared, bls.clear_cofactor_g1, _fp, v, i))
        expect(label, q, bls.map_to_g1(u[i]))
    P = bls.hash_to_g1(msg, dst)
    expect("P_x", _fp(v, "P_x"), P.affine()[0])
    expect("P_y", _fp(v, "P_y"), P.affine()[1])
    expect("P_x, P_y", P, bls.map_to_g1(u[0]) + bls.map_to_g1(u[1]))


def _cleared(clear: Callable[[Any, Any], Any], read: Callable[[Mapping[str, Any], str], Any],
             v: Mapping[str, Any], i: int) -> Any:
    """[h_eff]Q of the stored Q{i} (read with ``read``)."""
    return clear(read(v, f"Q{i}_x"), read(v, f"Q{i}_y"))


def _hash_to_g2(v: Mapping[str, Any]) -> None:
    msg, dst = _text(v, "msg"), _text(v, "dst")
    expect("suite", str_field(v, "suite"), bls.SUITE_G2)
    u = bls.hash_to_field_fp2(msg, dst, 2)
    expect("u0", _fp2(v, "u0"), u[0])
    expect("u1", _fp2(v, "u1"), u[1])
    for i in (0, 1):
        label = f"Q{i}_x, Q{i}_y"
        q = recompute(label, functools.partial(_cleared, bls.clear_cofactor_g2, _fp2, v, i))
        expect(label, q, bls.map_to_g2(u[i]))
    P = bls.hash_to_g2(msg, dst)
    expect("P_x", _fp2(v, "P_x"), P.affine()[0])
    expect("P_y", _fp2(v, "P_y"), P.affine()[1])
    expect("P_x, P_y", P, bls.map_to_g2(u[0]) + bls.map_to_g2(u[1]))


def _expand_message_xmd(v: Mapping[str, Any]) -> None:
    msg, dst = _text(v, "msg"), _text(v, "dst")
    expect("hash", str_field(v, "hash"), "SHA-256")
    length = small_int_field(v, "len_in_bytes", low=0, high=UINT32)
    expect("DST_prime", bytes_field(v, "DST_prime"), recompute("DST_prime", lambda: bls.xmd_dst_prime(dst)))
    expect("msg_prime", bytes_field(v, "msg_prime"),
           recompute("msg_prime", lambda: bls.xmd_msg_prime(msg, dst, length)))
    expect("uniform_bytes", bytes_field(v, "uniform_bytes"),
           recompute("uniform_bytes", lambda: bls.expand_message_xmd(msg, dst, length)))


def _rejects(check: Callable[[Mapping[str, Any]], None]) -> Callable[[Mapping[str, Any]], None]:
    """A derived invalid vector (``*-rejects``): result invalid, provenance fields present."""
    def run(v: Mapping[str, Any]) -> None:
        if vector_result(v) != "invalid":
            raise VectorMismatchError("field 'result': a *-rejects vector is invalid", field="result")
        str_field(v, "origin")
        str_field(v, "change")
        check(v)
    return run


def _hash_to_g1_rejects(v: Mapping[str, Any]) -> None:
    msg, dst = _text(v, "msg"), _text(v, "dst")
    expect("suite", str_field(v, "suite"), bls.SUITE_G1)
    expect_refusal(v, lambda: bls.hash_to_g1(msg, dst))


def _hash_to_g2_rejects(v: Mapping[str, Any]) -> None:
    msg, dst = _text(v, "msg"), _text(v, "dst")
    expect("suite", str_field(v, "suite"), bls.SUITE_G2)
    expect_refusal(v, lambda: bls.hash_to_g2(msg, dst))


def _expand_message_xmd_rejects(v: Mapping[str, Any]) -> None:
    msg, dst = _text(v, "msg"), _text(v, "dst")
    expect("hash", str_field(v, "hash"), "SHA-256")
    length = small_int_field(v, "len_in_bytes", low=0, high=UINT32)
    expect_refusal(v, lambda: bls.expand_message_xmd(msg, dst, length))


OPERATIONS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "hash_to_g1": _hash_to_g1,
    "hash_to_g2": _hash_to_g2,
    "expand_message_xmd": _expand_message_xmd,
    "hash_to_g1-rejects": _rejects(_hash_to_g1_rejects),
    "hash_to_g2-rejects": _rejects(_hash_to_g2_rejects),
    "expand_message_xmd-rejects": _rejects(_expand_message_xmd_rejects),
}


NOTES = {
    "EmptyDST": "the DST is empty: RFC 9380 section 3.1 requires a non-empty DST (ParameterError)",
    "EllOver255": ("len_in_bytes = 8161 needs ell = ceil(8161 / 32) = 256 > 255 blocks: RFC 9380 section "
                   "5.3.1 step 2 aborts (ParameterError)"),
    "LengthOver65535": ("len_in_bytes = 65536 does not fit I2OSP(len_in_bytes, 2): RFC 9380 section 5.3.1 "
                        "aborts (ParameterError)"),
    "ZeroLength": ("len_in_bytes = 0: not forbidden by RFC 9380, refused by this profile, which requires "
                   "1 <= len_in_bytes <= 65535 (specs/bls12_381.md section 6; ParameterError)"),
}
"""The flags of the derived invalid vectors (the file's top-level notes)."""

DERIVED = "derived from the transcribed vector {base} by one change (not from the source)"


def derive_negatives(valid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Invalid vectors, each one change to a transcribed vector, that hash_to_curve
    and expand_message_xmd MUST refuse with the named error (specs/bls12_381.md sections 6, 8).
    A DST over 255 bytes is not among them: it is hashed (section 5.3.3; K.2 is valid)."""
    by_name = {v["name"]: v for v in valid}

    def negative(base_name: str, name: str, change: str, fields: dict[str, Any], flag: str) -> dict[str, Any]:
        base = by_name[base_name]
        keep = ("section", "suite", "hash", "dst", "msg", "len_in_bytes")
        vector = {key: value for key, value in base.items() if key in keep}
        vector.update(fields)
        vector.update({"name": f"{base_name}-rejects-{name}", "operation": base["operation"] + "-rejects",
                       "origin": DERIVED.format(base=base_name), "change": change,
                       "result": "invalid", "flags": [flag], "error": "ParameterError"})
        return vector

    return [
        negative("J.9.1-1", "empty-dst", "dst empty", {"dst": ""}, "EmptyDST"),
        negative("J.10.1-1", "empty-dst", "dst empty", {"dst": ""}, "EmptyDST"),
        negative("K.1-0", "empty-dst", "dst empty", {"dst": ""}, "EmptyDST"),
        negative("K.1-0", "ell-over-255", "len_in_bytes 8161 (ell = 256)", {"len_in_bytes": 8161}, "EllOver255"),
        negative("K.1-0", "length-over-65535", "len_in_bytes 65536", {"len_in_bytes": 65536}, "LengthOver65535"),
        negative("K.1-0", "zero-length", "len_in_bytes 0", {"len_in_bytes": 0}, "ZeroLength"),
    ]


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# -- transcription from the appendices' text ------------------------------------------

APPENDICES = {
    "J.9.1": ("\n### BLS12381G1\\_XMD:SHA-256\\_SSWU\\_RO\\_\n", "\n### BLS12381G1\\_XMD:SHA-256\\_SSWU\\_NU\\_\n"),
    "J.10.1": ("\n### BLS12381G2\\_XMD:SHA-256\\_SSWU\\_RO\\_\n", "\n### BLS12381G2\\_XMD:SHA-256\\_SSWU\\_NU\\_\n"),
    "K.1": ("\n## expand_message_xmd(SHA-256)\n", "\n## expand_message_xmd(SHA-256) (long DST)\n"),
    "K.2": ("\n## expand_message_xmd(SHA-256) (long DST)\n", "\n## expand_message_xmd(SHA-512)\n"),
}
"""RFC 9380 appendix -> (its heading line in the draft source, the next heading line);
each heading occurs once in the source."""


def _records(text: str, start: str, end: str) -> list[dict[str, str]]:
    """The ``name = value`` records of one appendix section, in order.

    The values are printed wrapped: continuation lines are indented, and an
    F_p^2 element's second half follows on a line ``+ I * ...``; an F_p^2 value
    is returned as ``c0 + "+I*" + c1``.
    """
    if text.count(start) != 1:
        raise ValueError(f"heading {start.strip()!r} must occur exactly once")
    begin = text.index(start)
    body = text[begin:text.index(end, begin + len(start))]
    fenced = body.split("~~~")
    if len(fenced) < 3:
        raise ValueError(f"no value block under {start!r}")
    records = []
    for chunk in re.split(r"\n\s*\n", fenced[1]):
        if not chunk.strip():
            continue
        record: dict[str, list[str]] = {}
        key = None
        for line in chunk.split("\n"):
            if not line.strip():
                continue
            head = re.match(r"^(\S+)\s*=\s?(.*)$", line)
            if head and not line[0].isspace():
                key = head.group(1)
                if key in record:
                    raise ValueError(f"field {key} repeated in one record")
                record[key] = [head.group(2).strip()]
            elif key is None:
                raise ValueError("continuation line before any field")
            elif line.strip().startswith("+ I *"):
                record[key] += ["+I*", line.strip()[len("+ I *"):].strip()]
            else:
                record[key].append(line.strip())
        records.append({k: "".join(parts) for k, parts in record.items()})
    return records


def _check_messages(records: list[dict[str, str]], where: str) -> None:
    messages = [r["msg"] for r in records]
    expected = ["", "abc", "abcdef0123456789", "q128_" + "q" * 128, "a512_" + "a" * 512]
    if messages != expected and messages != expected + expected:
        raise ValueError(f"unexpected messages in {where}")


def _fp_text(value: str) -> str:
    if not _FP_HEX.fullmatch(value):
        raise ValueError(f"not an F_p element: {value[:20]}...")
    return value


def _fp2_text(value: str) -> list[str]:
    parts = value.split("+I*")
    if len(parts) != 2:
        raise ValueError("not an F_p^2 element")
    return [_fp_text(parts[0]), _fp_text(parts[1])]


def transcribe(text: str) -> dict:
    """Build the envelope from the text of RFC 9380 appendices J and K as
    written in the CFRG draft's source (``draft-irtf-cfrg-hash-to-curve.md``,
    the text the RFC was published from)."""
    vectors: list[dict[str, Any]] = []
    for section, operation, suite_name, convert in (
        ("J.9.1", "hash_to_g1", bls.SUITE_G1, _fp_text),
        ("J.10.1", "hash_to_g2", bls.SUITE_G2, _fp2_text),
    ):
        header, *records = _records(text, *APPENDICES[section])
        if header != {"suite": suite_name, "dst": f"QUUX-V01-CS02-with-{suite_name}"}:
            raise ValueError(f"unexpected header in {section}")
        _check_messages(records, section)
        for index, record in enumerate(records):
            vector: dict[str, Any] = {"name": f"{section}-{index}", "operation": operation, "section": section,
                      "suite": header["suite"], "dst": header["dst"], "msg": record["msg"]}
            for ours, theirs in (("P_x", "P.x"), ("P_y", "P.y"), ("u0", "u[0]"), ("u1", "u[1]"),
                                 ("Q0_x", "Q0.x"), ("Q0_y", "Q0.y"), ("Q1_x", "Q1.x"), ("Q1_y", "Q1.y")):
                vector[ours] = convert(record[theirs])
            if set(record) != {"msg", "P.x", "P.y", "u[0]", "u[1]", "Q0.x", "Q0.y", "Q1.x", "Q1.y"}:
                raise ValueError(f"unexpected fields in {section}")
            vectors.append(vector)
    for section in ("K.1", "K.2"):
        header, *records = _records(text, *APPENDICES[section])
        if header.get("name") != "expand_message_xmd" or header.get("hash") != "SHA256":
            raise ValueError(f"unexpected header in {section}")
        _check_messages(records, section)
        for index, record in enumerate(records):
            if set(record) != {"msg", "len_in_bytes", "DST_prime", "msg_prime", "uniform_bytes"}:
                raise ValueError(f"unexpected fields in {section}")
            length = int(record["len_in_bytes"], 16)
            vectors.append({"name": f"{section}-{index}", "operation": "expand_message_xmd",
                            "section": section, "hash": "SHA-256", "dst": header["DST"],
                            "msg": record["msg"], "len_in_bytes": length,
                            "DST_prime": record["DST_prime"], "msg_prime": record["msg_prime"],
                            "uniform_bytes": record["uniform_bytes"]})
    vectors.extend(derive_negatives(vectors))
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "notes": NOTES,
        "source": ("RFC 9380 (Hashing to Elliptic Curves), Appendix J.9.1 (BLS12381G1_XMD:SHA-256_SSWU_RO_), "
                   "J.10.1 (BLS12381G2_XMD:SHA-256_SSWU_RO_), K.1 and K.2 (expand_message_xmd(SHA-256)); "
                   "text of github.com/cfrg/draft-irtf-cfrg-hash-to-curve at commit "
                   "664b13592116cecc9e52fb192dcde0ade36f904e, draft-irtf-cfrg-hash-to-curve.md, "
                   "cross-checked against the same commit's poc/vectors/*.json"),
        "generated_by": "transcribed by protocols.system.vectorsets.rfc9380.transcribe (values parsed, never retyped)",
        "description": ("RFC 9380 known answers: hash_to_curve to BLS12-381 G1 and G2 with every intermediate "
                        "(u[0], u[1], Q0, Q1, P; F_p elements as 96 hex digits, F_p^2 elements as [c0, c1] for "
                        "c0 + I * c1) and expand_message_xmd(SHA-256) with DST_prime and msg_prime. msg and dst "
                        "are ASCII text, as the RFC prints them."),
        "vectors": vectors,
    }


PINNED_SHA256 = "a93f7343946df0784412787f1046b4d42f2f47805f0e6266c775427a54539459"

FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector,
                      pinned_sha256=PINNED_SHA256)
