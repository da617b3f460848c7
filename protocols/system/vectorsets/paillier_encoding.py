"""Vector family ``paillier-encoding``: phe-compatible numbers, encrypted-number
arithmetic and slot packing (specs/paillier.md sections 8, 9 and 12).

Generated from fixed HMAC_DRBG seeds; the key is the ``paillier`` family's
2048-bit key (seed ``usapp-vectors/paillier/key-2048``).  Scalars are stored
exactly: integers as signed decimal strings, floats as ``float.hex()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from protocols.errors import VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_bits
from protocols.schemes.paillier import PrivateKey, PublicKey, generate_keypair
from protocols.schemes.paillier_encoding import (
    EncodedNumber,
    EncryptedNumber,
    PackedCiphertext,
    PackingLayout,
    decrypt_number,
    from_phe_json,
    sum_packed,
    to_phe_json,
)
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_JSON_DEPTH,
    MAX_PHE_EXPONENT,
    UINT32,
    json_depth,
    out_of_range,
    MAX_FACTOR_BITS,
    MAX_MODULUS_BITS,
    dispatch,
    expect,
    expect_int,
    expect_refusal,
    field,
    hexint,
    int_field,
    int_list_field,
    small_int_field,
    str_field,
)
from protocols.system.vectorsets.paillier import KEY_SEED

PROTOCOL = "paillier-encoding"
SUITE = "phe-encoded-number-base16+packing"
FILE = "paillier_encoding.json"
SEED = "usapp-vectors/paillier-encoding/operations"
MAX_SCALAR_TEXT = 1400
"""Longest ``int:``/``float:`` scalar text read (an integer of about 4096 bits)."""


def _scalar(vector: Mapping[str, Any], name: str) -> int | float:
    """``int:<decimal>`` or ``float:<float.hex()>``."""
    text = str_field(vector, name, max_len=MAX_SCALAR_TEXT)
    kind, _, body = text.partition(":")
    try:
        if kind == "int":
            return int(body)
        if kind == "float":
            return float.fromhex(body)
    except ValueError as exc:
        raise VectorMismatchError(f"field {name!r} is not a valid scalar") from exc
    raise VectorMismatchError(f"field {name!r} must start with 'int:' or 'float:'")


def _scalar_text(value: int | float) -> str:
    return f"int:{value}" if isinstance(value, int) else f"float:{value.hex()}"


def _optional(vector: Mapping[str, Any], name: str) -> Any:
    value = field(vector, name)
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise VectorMismatchError(f"field {name!r} must be a number or null")
    if isinstance(value, int) and not -MAX_PHE_EXPONENT <= value <= MAX_PHE_EXPONENT:
        raise out_of_range(name, value, -MAX_PHE_EXPONENT, MAX_PHE_EXPONENT)
    return value


def _encode(v: Mapping[str, Any]) -> None:
    pk = PublicKey(int_field(v, "n", max_bits=MAX_MODULUS_BITS))
    encoded = EncodedNumber.encode(pk, _scalar(v, "value"), precision=_optional(v, "precision"),
                                   max_exponent=_optional(v, "max_exponent"))
    expect_int(v, "encoding", encoded.encoding)
    expect("exponent", small_int_field(v, "exponent"), encoded.exponent)
    expect("decoded", str_field(v, "decoded"), _scalar_text(encoded.decode()))


def _number_op(v: Mapping[str, Any]) -> None:
    sk = PrivateKey.from_factors(int_field(v, "p", max_bits=MAX_FACTOR_BITS), int_field(v, "q", max_bits=MAX_FACTOR_BITS))
    pk = sk.public_key
    a = EncryptedNumber(pk.ciphertext(int_field(v, "ciphertext1")), small_int_field(v, "exponent1", low=-MAX_PHE_EXPONENT, high=MAX_PHE_EXPONENT))
    op = str_field(v, "op")
    if op == "add":
        b = EncryptedNumber(pk.ciphertext(int_field(v, "ciphertext2")), small_int_field(v, "exponent2", low=-MAX_PHE_EXPONENT, high=MAX_PHE_EXPONENT))
        result = a + b
    elif op == "add-scalar":
        result = a + _scalar(v, "scalar")
    elif op == "mul-scalar":
        result = a * _scalar(v, "scalar")
    else:
        raise VectorMismatchError(f"unknown op {op!r}")
    expect_int(v, "ciphertext", result.ciphertext.c)
    expect("exponent", small_int_field(v, "exponent"), result.exponent)
    expect("decrypted", str_field(v, "decrypted"), _scalar_text(decrypt_number(sk, result)))


def _layout(v: Mapping[str, Any]) -> PackingLayout:
    return PackingLayout(small_int_field(v, "value_bits", low=0, high=MAX_MODULUS_BITS),
                         small_int_field(v, "slots", low=0, high=MAX_MODULUS_BITS),
                         small_int_field(v, "max_summands", low=0, high=UINT32))


def _pack(v: Mapping[str, Any]) -> None:
    layout = _layout(v)
    expect("slot_bits", small_int_field(v, "slot_bits"), layout.slot_bits)
    values = [int(x) for x in int_list_field(v, "values")]
    expect_int(v, "packed", layout.pack(values))


def _packed_sum(v: Mapping[str, Any]) -> None:
    sk = PrivateKey.from_factors(int_field(v, "p", max_bits=MAX_FACTOR_BITS), int_field(v, "q", max_bits=MAX_FACTOR_BITS))
    layout = _layout(v)
    layout.check_key(sk.public_key)
    items = [PackedCiphertext(sk.public_key.ciphertext(c), layout) for c in int_list_field(v, "ciphertexts")]
    total = sum_packed(items)
    expect_int(v, "ciphertext", total.ciphertext.c)
    sums = layout.unpack(sk.decrypt(total.ciphertext), small_int_field(v, "count", low=0, high=MAX_MODULUS_BITS))
    expect("slot_sums", int_list_field(v, "slot_sums"), sums)


def _phe_json_write(v: Mapping[str, Any]) -> None:
    """Spec 10: the exact text to_phe_json writes for each form, and that from_phe_json reads it back."""
    sk = PrivateKey.from_factors(int_field(v, "p", max_bits=MAX_FACTOR_BITS), int_field(v, "q", max_bits=MAX_FACTOR_BITS))
    pk = sk.public_key
    numbers = [EncryptedNumber(pk.ciphertext(c), e) for c, e in zip(int_list_field(v, "ciphertexts"),
                                                                     _int_list(v, "exponents"))]
    outputs = {"public_json": to_phe_json(pk), "private_json": to_phe_json(sk),
               "number_json": to_phe_json(numbers[0]), "list_json": to_phe_json(numbers)}
    for name, text in outputs.items():
        expect(name, str_field(v, name), text)
    read_list = from_phe_json(outputs["list_json"])
    if from_phe_json(outputs["public_json"]) != pk or not isinstance(read_list, tuple) or read_list[0] != pk:
        raise VectorMismatchError("field 'public_json': does not read back to the key")


def _int_list(v: Mapping[str, Any], name: str) -> list[int]:
    value = field(v, name)
    if not isinstance(value, list) or not value or any(type(x) is not int for x in value):
        raise VectorMismatchError(f"field {name!r} must be a non-empty list of JSON integers")
    return [small_int_field({name: x}, name, low=-MAX_PHE_EXPONENT, high=MAX_PHE_EXPONENT) for x in value]


def _expect_error(v: Mapping[str, Any], action: Callable[[], Any]) -> None:
    if v.get("result") != "invalid":
        raise VectorMismatchError("field 'result': a reject vector is invalid")
    if any(flag not in NOTES for flag in v.get("flags", [])):
        raise VectorMismatchError("field 'flags': a flag not documented in the file's notes")
    expect_refusal(v, action)


def _phe_json_reject(v: Mapping[str, Any]) -> None:
    """Spec 10: from_phe_json(text, public key n) MUST raise ``error``."""
    pk = PublicKey(int_field(v, "n", max_bits=MAX_MODULUS_BITS))
    text = str_field(v, "text")
    if json_depth(text) > MAX_JSON_DEPTH:
        raise VectorMismatchError(f"field 'text' nests deeper than {MAX_JSON_DEPTH}", field="text")
    _expect_error(v, lambda: from_phe_json(text, pk))


def _encode_reject(v: Mapping[str, Any]) -> None:
    """Spec 8.2: encoding MUST raise ``error`` (a mantissa out of range for the exponent, a non-finite float)."""
    pk = PublicKey(int_field(v, "n", max_bits=MAX_MODULUS_BITS))
    _expect_error(v, lambda: EncodedNumber.encode(pk, _scalar(v, "value"), precision=_optional(v, "precision"),
                                                  max_exponent=_optional(v, "max_exponent")))


NOTES = {
    "bad-json": "text that is not JSON, or JSON that is not an object (spec 10 step 1)",
    "non-canonical": "a ciphertext decimal with a leading zero (spec 10 step 3)",
    "wrong-type": "a member of the wrong JSON type, e.g. an exponent that is a string or a boolean (spec 10 step 3)",
    "invalid-ciphertext": "v is not a valid ciphertext under the key (section 7.2)",
    "wrong-generator": "g is not n + 1 (spec 10 step 4)",
    "wrong-key": "a value list under another key than the one given (spec 10 step 4)",
    "exponent-out-of-range": "an exponent for which the mantissa exceeds max_int = n // 3 - 1 (section 8.2)",
    "non-finite": "a float that is infinite or NaN (section 8.2)",
}


OPERATIONS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "phe-json-write": _phe_json_write,
    "phe-json-reject": _phe_json_reject,
    "encode-reject": _encode_reject,
    "encode": _encode,
    "number-op": _number_op,
    "pack": _pack,
    "packed-sum": _packed_sum,
}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


def build() -> dict:
    key = generate_keypair(2048, HmacDrbg.from_seed(KEY_SEED))
    pk = key.public_key
    rng = HmacDrbg.from_seed(SEED)
    common = {"n": hexint(pk.n)}
    private = {**common, "p": hexint(key.p), "q": hexint(key.q)}
    vectors: list[dict[str, Any]] = []

    cases: list[tuple[int | float, float | None, int | None]] = [
        (0, None, None), (1, None, None), (-1, None, None), (int(pk.max_int), None, None),
        (-int(pk.max_int), None, None), (1234, None, None), (3.14159, None, None), (-2.5e-10, None, None),
        (1e300, None, None), (0.1, 1e-3, None), (123.456, None, -8), (7, None, -2),
    ]
    for i, (value, precision, max_exponent) in enumerate(cases):
        e = EncodedNumber.encode(pk, value, precision=precision, max_exponent=max_exponent)
        vectors.append({"name": f"encode-{i}", "operation": "encode", **common,
                        "value": _scalar_text(value), "precision": precision, "max_exponent": max_exponent,
                        "encoding": hexint(e.encoding), "exponent": e.exponent,
                        "decoded": _scalar_text(e.decode())})

    def enc(value: int | float) -> EncryptedNumber:
        e = EncodedNumber.encode(pk, value)
        return EncryptedNumber(pk.encrypt(e.encoding, rng), e.exponent)

    a, b, c = enc(1.5), enc(-20), enc(2 ** 40)
    ops: list[tuple[str, EncryptedNumber, Any, Any]] = [
           ("add", a, b, None), ("add", c, a, None), ("add-scalar", a, None, 2.25),
           ("add-scalar", b, None, -7), ("mul-scalar", a, None, 3), ("mul-scalar", b, None, -0.5)]
    for i, (op, x, y, scalar) in enumerate(ops):
        result = x + y if op == "add" else (x + scalar if op == "add-scalar" else x * scalar)
        vector = {"name": f"number-{op}-{i}", "operation": "number-op", "op": op, **private,
                  "ciphertext1": hexint(x.ciphertext.c), "exponent1": x.exponent,
                  "ciphertext": hexint(result.ciphertext.c), "exponent": result.exponent,
                  "decrypted": _scalar_text(decrypt_number(key, result))}
        if y is not None:
            vector.update(ciphertext2=hexint(y.ciphertext.c), exponent2=y.exponent)
        else:
            vector["scalar"] = _scalar_text(scalar)
        vectors.append(vector)

    for i, (value_bits, max_summands, count) in enumerate([(16, 1000, 8), (32, 10000, 44)]):
        layout = PackingLayout.fit(pk, value_bits, max_summands)
        layout = PackingLayout(value_bits, layout.slots, max_summands)
        rows = [[random_bits(rng, value_bits) for _ in range(count)] for _ in range(3)]
        vectors.append({"name": f"pack-{i}", "operation": "pack", "value_bits": value_bits,
                        "slots": layout.slots, "max_summands": max_summands, "slot_bits": layout.slot_bits,
                        "values": [hexint(x) for x in rows[0]], "packed": hexint(layout.pack(rows[0]))})
        packed = [PackedCiphertext(pk.encrypt(layout.pack(row), rng), layout) for row in rows]
        total = sum_packed(packed)
        vectors.append({"name": f"packed-sum-{i}", "operation": "packed-sum", **private,
                        "value_bits": value_bits, "slots": layout.slots, "max_summands": max_summands,
                        "count": count, "ciphertexts": [hexint(p.ciphertext.c) for p in packed],
                        "ciphertext": hexint(total.ciphertext.c),
                        "slot_sums": [hexint(sum(col)) for col in zip(*rows)]})

    numbers = [a, b, c]
    vectors.append({"name": "phe-json-write-0", "operation": "phe-json-write", **private,
                    "ciphertexts": [hexint(x.ciphertext.c) for x in numbers],
                    "exponents": [x.exponent for x in numbers],
                    "public_json": to_phe_json(pk), "private_json": to_phe_json(key),
                    "number_json": to_phe_json(a), "list_json": to_phe_json(numbers)})
    other = generate_keypair(3072, HmacDrbg.from_seed("usapp-vectors/paillier/key-3072")).public_key
    v_text = str(int(a.ciphertext.c))
    json_rejects = [
        ("not-json", "{\"v\": ", "DecodeError", ["bad-json"]),
        ("not-an-object", "[1, 2]", "DecodeError", ["bad-json"]),
        ("leading-zero", f'{{"v": "0{v_text}", "e": 0}}', "DecodeError", ["non-canonical"]),
        ("exponent-string", f'{{"v": "{v_text}", "e": "0"}}', "DecodeError", ["wrong-type"]),
        ("exponent-boolean", f'{{"v": "{v_text}", "e": true}}', "DecodeError", ["wrong-type"]),
        ("ciphertext-zero", '{"v": "0", "e": 0}', "InvalidCiphertextError", ["invalid-ciphertext"]),
        ("generator-not-n-plus-1", f'{{"public_key": {{"g": {int(pk.n) + 2}, "n": {int(pk.n)}}}, "values": []}}',
         "DecodeError", ["wrong-generator"]),
        ("list-under-another-key", to_phe_json([EncryptedNumber(other.encrypt(1, rng), 0)]), "KeyMismatchError",
         ["wrong-key"]),
    ]
    for label, text, error, flags in json_rejects:
        vectors.append({"name": f"phe-json-reject-{label}", "operation": "phe-json-reject", **common, "text": text,
                        "result": "invalid", "flags": flags, "error": error})
    encode_rejects = [
        ("exponent-too-small", 1, None, -600, "EncodingOverflowError", ["exponent-out-of-range"]),
        ("integer-above-max-int", int(pk.max_int) + 1, None, None, "EncodingOverflowError",
         ["exponent-out-of-range"]),
        ("infinity", float("inf"), None, None, "ParameterError", ["non-finite"]),
    ]
    for label, value, precision, max_exponent, error, flags in encode_rejects:
        vectors.append({"name": f"encode-reject-{label}", "operation": "encode-reject", **common,
                        "value": _scalar_text(value), "precision": precision, "max_exponent": max_exponent,
                        "result": "invalid", "flags": flags, "error": error})
    for vector in vectors:
        if vector["operation"] in ("phe-json-write", "phe-json-reject", "encode-reject"):
            OPERATIONS[vector["operation"]](vector)

    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/paillier.md sections 8-9",
        "generated_by": f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed, seeds {KEY_SEED}, {SEED})",
        "description": ("phe-compatible EncodedNumber encodings (value = mantissa * 16^exponent), "
                        "encrypted-number arithmetic with exponent alignment, and slot packing with "
                        "headroom. Scalars: 'int:<decimal>' or 'float:<float.hex()>'."),
        "notes": dict(NOTES),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
