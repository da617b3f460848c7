"""Vector family ``paillier-external``: other implementations' published
Paillier values, which ours must reproduce (specs/paillier.md section 12).

- Apache Milagro Crypto C, ``testVectors/paillier/{keygen,encrypt,decrypt,add,mult}.txt``
  (2048-bit n, g = n + 1): an independent implementation's known answers.
- python-paillier 1.5.0's command-line tool ``pheutil``: a key, two encrypted
  numbers, their ``addenc`` sum and its decryption (toy 256-bit key, a format
  check only, verified with ``min_bits=256``).

The file is transcribed by :func:`transcribe` from the project's shared
reference-vector set (values parsed by script, never retyped) and pinned by
its digest.  Milagro's names map to ours: lp = p - 1, mp = hp, mq = hq.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from protocols.errors import VectorMismatchError
from protocols.schemes.paillier import PrivateKey, PublicKey
from protocols.schemes.paillier_encoding import EncryptedNumber, decrypt_number, from_phe_json, to_phe_json
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_FACTOR_BITS,
    MAX_MODULUS_BITS,
    MAX_PHE_EXPONENT,
    dispatch,
    expect,
    expect_int,
    field,
    int_field,
    small_int_field,
)

PROTOCOL = "paillier-external"
SUITE = "paillier-g=n+1"
FILE = "paillier_external.json"
PHE_MIN_BITS = 256
MAX_JWK_TEXT = 2500
"""Longest string in a phe JWK or number object: the decimal of an n^2 for a 4096-bit n."""
MILAGRO_MIN_BITS = 2047
"""Milagro's 1024-bit primes have only their top bit set, so some of its "2048-bit"
moduli have 2047 bits; our default minimum (2048) is lowered for them alone."""


def _milagro_keygen(v: Mapping[str, Any]) -> None:
    sk = PrivateKey.from_factors(int_field(v, "p", max_bits=MAX_FACTOR_BITS), int_field(v, "q", max_bits=MAX_FACTOR_BITS), min_bits=MILAGRO_MIN_BITS)
    p, q = int_field(v, "p", max_bits=MAX_FACTOR_BITS), int_field(v, "q", max_bits=MAX_FACTOR_BITS)
    expect_int(v, "n", sk.public_key.n)
    expect_int(v, "g", sk.public_key.g)
    expect_int(v, "lp", p - 1)
    expect_int(v, "lq", q - 1)
    # Milagro keeps its own (p, q) order; hp belongs to whichever factor it is computed for.
    by_factor = {int(sk.p): int(sk.hp), int(sk.q): int(sk.hq)}
    expect_int(v, "mp", by_factor[p])
    expect_int(v, "mq", by_factor[q])


def _milagro_encrypt(v: Mapping[str, Any]) -> None:
    pk = PublicKey(int_field(v, "n", max_bits=MAX_MODULUS_BITS), min_bits=MILAGRO_MIN_BITS)
    expect_int(v, "g", pk.g)
    expect_int(v, "ciphertext", pk.encrypt_with_r(int_field(v, "plaintext"), int_field(v, "r")).c)


def _milagro_decrypt(v: Mapping[str, Any]) -> None:
    sk = PrivateKey.from_factors(int_field(v, "p", max_bits=MAX_FACTOR_BITS), int_field(v, "q", max_bits=MAX_FACTOR_BITS), min_bits=MILAGRO_MIN_BITS)
    expect_int(v, "lp", int_field(v, "p", max_bits=MAX_FACTOR_BITS) - 1)
    expect_int(v, "lq", int_field(v, "q", max_bits=MAX_FACTOR_BITS) - 1)
    expect_int(v, "plaintext", sk.decrypt(sk.public_key.ciphertext(int_field(v, "ciphertext"))))


def _milagro_add(v: Mapping[str, Any]) -> None:
    pk = PublicKey(int_field(v, "n", max_bits=MAX_MODULUS_BITS), min_bits=MILAGRO_MIN_BITS)
    total = pk.ciphertext(int_field(v, "ciphertext1")) + pk.ciphertext(int_field(v, "ciphertext2"))
    expect_int(v, "ciphertext", total.c)


def _milagro_mult(v: Mapping[str, Any]) -> None:
    pk = PublicKey(int_field(v, "n", max_bits=MAX_MODULUS_BITS), min_bits=MILAGRO_MIN_BITS)
    expect_int(v, "ciphertext", (pk.ciphertext(int_field(v, "ciphertext1")) * int_field(v, "plaintext2")).c)


def _json_text(vector: Mapping[str, Any], name: str) -> str:
    value = field(vector, name)
    if not isinstance(value, (dict, list)):
        raise VectorMismatchError(f"field {name!r} must be a JSON object")
    if isinstance(value, dict) and "e" in value:
        small_int_field(value, "e", low=-MAX_PHE_EXPONENT, high=MAX_PHE_EXPONENT)
    if isinstance(value, dict) and any(isinstance(x, str) and len(x) > MAX_JWK_TEXT for x in value.values()):
        raise VectorMismatchError(f"field {name!r}: a value is longer than {MAX_JWK_TEXT} characters", field=name)
    return json.dumps(value)


_Read = TypeVar("_Read", PublicKey, PrivateKey, EncryptedNumber)


_PHE_FIELDS = ("private_jwk", "public_jwk", "enc_1234", "enc_minus_34", "sum_addenc")


def _read(texts: Mapping[str, str], name: str, kind: type[_Read], public_key: PublicKey | None = None) -> _Read:
    """from_phe_json of the field's JSON text, which must be a ``kind``."""
    value = from_phe_json(texts[name], public_key, min_bits=PHE_MIN_BITS)
    if not isinstance(value, kind):
        raise VectorMismatchError(f"field {name!r} must hold a {kind.__name__}", field=name)
    return value


def _phe_cli(v: Mapping[str, Any]) -> None:
    texts = {name: _json_text(v, name) for name in _PHE_FIELDS}  # every field bounded before any is parsed
    sk = _read(texts, "private_jwk", PrivateKey)
    pub = _read(texts, "public_jwk", PublicKey)
    expect("public_jwk", pub, sk.public_key)
    stored_public = field(v, "public_jwk")
    expect("public_jwk", json.loads(to_phe_json(pub, kid=stored_public.get("kid"))), stored_public)
    numbers = {name: _read(texts, name, EncryptedNumber, pub) for name in ("enc_1234", "enc_minus_34", "sum_addenc")}
    expect("enc_1234", decrypt_number(sk, numbers["enc_1234"]), 1234.0)
    expect("enc_minus_34", decrypt_number(sk, numbers["enc_minus_34"]), -34.0)
    # pheutil re-randomises a sum before writing it (phe's ciphertext(be_secure=True)),
    # so its ciphertext is not ours; both must decrypt to the stored value.
    decrypted = field(v, "decrypt_sum")
    expect("decrypt_sum", decrypt_number(sk, numbers["sum_addenc"]), decrypted)
    summed = numbers["enc_1234"] + numbers["enc_minus_34"]
    expect("sum_addenc", summed.exponent, field(v, "sum_addenc").get("e"))
    expect("decrypt_sum", decrypt_number(sk, summed), decrypted)


OPERATIONS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "milagro-keygen": _milagro_keygen,
    "milagro-encrypt": _milagro_encrypt,
    "milagro-decrypt": _milagro_decrypt,
    "milagro-add": _milagro_add,
    "milagro-mult": _milagro_mult,
    "phe-cli": _phe_cli,
}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


def _minimal_hex(text: str) -> str:
    return format(int(text, 16), "x")


def transcribe(reference: Mapping[str, Any]) -> dict:
    """Build the envelope from the shared reference set ``paillier_vectors.json``."""
    milagro = reference["milagro"]
    vectors: list[dict[str, Any]] = []
    for kind in ("keygen", "encrypt", "decrypt", "add", "mult"):
        for case in milagro[kind]:
            entry = {k: _minimal_hex(v) for k, v in case.items() if k != "test"}
            vectors.append({"name": f"milagro-{kind}-{case['test']}", "operation": f"milagro-{kind}", **entry})
    cli = reference["phe_cli_example"]
    vectors.append({"name": "phe-cli-0", "operation": "phe-cli",
                    **{k: cli[k] for k in ("private_jwk", "public_jwk", "enc_1234", "enc_minus_34",
                                           "sum_addenc", "decrypt_sum")}})
    source = reference["sources"]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": (f"{source['milagro']['what']}, {source['milagro']['repo']} at commit "
                   f"{source['milagro']['commit']} ({source['milagro']['license']}); and "
                   f"{source['phe_cli_example']['what']}"),
        "generated_by": "transcribed by protocols.system.vectorsets.paillier_external.transcribe (values parsed, never retyped)",
        "description": ("Known answers from independent implementations: Apache Milagro's 2048-bit Paillier "
                        "keygen/encrypt/decrypt/add/mult cases (hex, leading zeros dropped) and a python-paillier "
                        "pheutil session (JWK keys, {v, e} numbers, toy 256-bit key)."),
        "vectors": vectors,
    }


PINNED_SHA256 = "ee01b9d65aaed0db1ab6934d38b7c06cfebd615b45b9c2324a249403c2fc4840"

FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector,
                      pinned_sha256=PINNED_SHA256)
