"""Vector family ``paillier``: keys, encryption modes, decryption, homomorphic
operations and decoder rejections (specs/paillier.md section 12).

Generated from fixed HMAC_DRBG seeds (specs/conventions.md section 3.3), so
``usapp vectors generate`` rewrites ``vectors/paillier.json`` byte for byte.
Every random value (r, the DJN exponent a, x behind h_s, randomisers, and every
random_bytes call of key generation with what became of it, section 3.1.1) is
exported as a field "chosen by the generator"; everything else is computed.
Integers are minimal lower-case hex; ``*_encoding`` fields are the fixed-length
byte encodings of spec section 7.1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gmpy2
from gmpy2 import mpz

from protocols import errors
from protocols.errors import UsappError, VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.numtheory import MILLER_RABIN_ROUNDS, SMALL_PRIMES_PRODUCT
from protocols.primitives.rand import ReplayRandom, random_below
from protocols.schemes.paillier import (
    Ciphertext,
    FastEncryptor,
    PrivateKey,
    PublicKey,
    generate_keypair,
    sum_ciphertexts,
)
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_FACTOR_BITS,
    MAX_MODULUS_BITS,
    dispatch,
    bytes_field,
    expect,
    expect_int,
    hexint,
    int_field,
    int_list_field,
    small_int_field,
    str_field,
)

PROTOCOL = "paillier"
SUITE = "paillier-g=n+1"
FILE = "paillier.json"
SEED_PREFIX = "usapp-vectors/paillier/"
KEY_SEED = SEED_PREFIX + "key-2048"


# -- shared parsing ----------------------------------------------------------------


def _public(vector: Mapping[str, Any]) -> PublicKey:
    return PublicKey(int_field(vector, "n", max_bits=MAX_MODULUS_BITS))


def _private(vector: Mapping[str, Any]) -> PrivateKey:
    key = PrivateKey.from_factors(int_field(vector, "p", max_bits=MAX_FACTOR_BITS), int_field(vector, "q", max_bits=MAX_FACTOR_BITS))
    expect("n", int_field(vector, "n", max_bits=MAX_MODULUS_BITS), int(key.public_key.n))
    return key


def _ct(pk: PublicKey, vector: Mapping[str, Any], name: str) -> Ciphertext:
    return pk.ciphertext(int_field(vector, name))


# -- verification, one function per operation -------------------------------------


class _Recording:
    """Counts and records every random_bytes call key generation makes (section 3.1)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls, self.bytes = inner, 0, 0
        self.draws: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        self.calls, self.bytes = self.calls + 1, self.bytes + n
        out = self.inner.random_bytes(n)
        self.draws.append(out)
        return out


KEYGEN_DRAW_OUTCOMES = {
    "candidate": ("composite-trial-division", "composite-bpsw", "composite-miller-rabin", "prime",
                  "prime-too-close"),
    "mr-base": ("out-of-range", "pass", "fail"),
}
"""What each keygen draw was for (``<p|q>-candidate``, ``<p|q>-mr-base``) and its outcome (section 3.1)."""


def annotate_keygen_draws(bits: int, draws: list[bytes]) -> tuple[list[dict[str, str]], int, int]:
    """Walk section 3.1 over the recorded random_bytes outputs alone (no DRBG, no call into the
    scheme): name every draw, say what became of it, and return (entries, p, q) with p the first
    prime drawn and q the second (before the final swap that orders them).

    A candidate draw is ``<x>-candidate`` with outcome ``composite-trial-division`` (gcd with the
    odd primes below 2000), ``composite-bpsw``, ``composite-miller-rabin`` (a base draw failed),
    ``prime`` (accepted) or ``prime-too-close`` (a q with |p - q| < 2^(half - 100), redrawn);
    a Miller-Rabin base draw is ``<x>-mr-base`` with outcome ``out-of-range`` (RandomBelow
    rejected it: redrawn), ``pass`` or ``fail``.  Raises VectorMismatchError when the draws
    run out or are left over, or have the wrong length.
    """
    half = bits // 2
    top = mpz(3) << (half - 2)
    entries: list[dict[str, str]] = []
    position = 0

    def draw(name: str, nbytes: int) -> int:
        nonlocal position
        if position >= len(draws) or len(draws[position]) != nbytes:
            raise VectorMismatchError(f"field 'draws': draw {position} ({name}) must be {nbytes} bytes")
        entries.append({"name": name, "hex": draws[position].hex(), "outcome": ""})
        position += 1
        return int.from_bytes(draws[position - 1], "big")

    def random_prime(label: str) -> tuple[mpz, int]:
        while True:
            c = (mpz(draw(f"{label}-candidate", (half + 7) // 8)) & ((mpz(1) << half) - 1)) | top | 1
            index = len(entries) - 1
            if gmpy2.gcd(c, SMALL_PRIMES_PRODUCT) != 1:
                entries[index]["outcome"] = "composite-trial-division"
                continue
            if not gmpy2.is_bpsw_prp(c):
                entries[index]["outcome"] = "composite-bpsw"
                continue
            bound = c - 3                             # RandomRange(2, c - 1) = 2 + RandomBelow(c - 3)
            k = int(bound - 1).bit_length()
            prime = True
            for _ in range(MILLER_RABIN_ROUNDS):
                while True:
                    value = draw(f"{label}-mr-base", (k + 7) // 8) & ((1 << k) - 1)
                    if value < bound:
                        break
                    entries[-1]["outcome"] = "out-of-range"
                if not gmpy2.is_strong_prp(c, 2 + value):
                    entries[-1]["outcome"] = "fail"
                    prime = False
                    break
                entries[-1]["outcome"] = "pass"
            if prime:
                entries[index]["outcome"] = "prime"
                return c, index
            entries[index]["outcome"] = "composite-miller-rabin"

    p, _ = random_prime("p")
    while True:
        q, index = random_prime("q")
        if abs(p - q) >= mpz(1) << (half - 100):
            break
        entries[index]["outcome"] = "prime-too-close"
    if position != len(draws):
        raise VectorMismatchError(f"field 'draws': {len(draws) - position} draws left over")
    return entries, int(p), int(q)


def _keygen_draws(v: Mapping[str, Any]) -> list[bytes]:
    items = v.get("draws")
    if not isinstance(items, list) or not all(
            isinstance(d, dict) and set(d) == {"name", "hex", "outcome"} for d in items):
        raise VectorMismatchError("field 'draws' must be a list of {name, hex, outcome}")
    return [bytes_field(d, "hex") for d in items]


def _keygen(v: Mapping[str, Any]) -> None:
    bits = small_int_field(v, "bits", low=16, high=MAX_MODULUS_BITS)
    draws = _keygen_draws(v)
    # 1. the draws alone: the spec's walk names them, and the scheme's key generation fed with
    #    them (no DRBG) gives the key and consumes exactly them
    entries, first, second = annotate_keygen_draws(bits, draws)
    expect("draws", v["draws"], entries)
    replay = ReplayRandom(list(draws))
    key = generate_keypair(bits, replay)
    if not replay.exhausted:
        raise VectorMismatchError("field 'draws': key generation did not consume every draw")
    expect("p", (int_field(v, "p", max_bits=MAX_FACTOR_BITS), int_field(v, "q", max_bits=MAX_FACTOR_BITS)), (min(first, second), max(first, second)))
    # 2. the seed's HMAC_DRBG yields exactly those draws
    rng = _Recording(HmacDrbg.from_seed(str_field(v, "seed")))
    generate_keypair(bits, rng)
    expect("draws", [d.hex() for d in rng.draws], [d.hex() for d in draws])
    expect("draw_calls", small_int_field(v, "draw_calls"), rng.calls)
    expect("bytes_drawn", small_int_field(v, "bytes_drawn"), rng.bytes)
    for name, value in (("p", key.p), ("q", key.q), ("n", key.public_key.n), ("hp", key.hp),
                        ("hq", key.hq), ("p_inverse", key.p_inverse)):
        expect_int(v, name, value)
    expect("n_encoding", bytes_field(v, "n_encoding"), key.public_key.to_bytes())
    expect("private_key_encoding", bytes_field(v, "private_key_encoding"), key.to_bytes())


def _encrypt_standard(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    m, r = int_field(v, "m"), int_field(v, "r")
    n, n2 = int(pk.n), int(pk.nsquare)
    expect_int(v, "gm", (1 + m * n) % n2)                    # section 4.1: g^m = 1 + m n mod n^2
    expect_int(v, "rn", pow(r, n, n2))                        # r^n mod n^2
    c = pk.encrypt_with_r(m, r)
    expect_int(v, "ciphertext", c.c)
    expect("ciphertext_encoding", bytes_field(v, "ciphertext_encoding"), c.to_bytes())


def _encrypt_djn(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    x = int_field(v, "x")
    h = (-(x * x)) % pk.n
    expect_int(v, "h", h)
    expect_int(v, "h_s", pow(h, int(pk.n), int(pk.nsquare)))
    encryptor = FastEncryptor.from_h_s(pk, int_field(v, "h_s"), window=small_int_field(v, "window", low=1, high=16))
    a = int_field(v, "a")
    expect_int(v, "randomiser", encryptor.table.power(a))
    expect_int(v, "ciphertext", encryptor.encrypt_with_exponent(int_field(v, "m"), a).c)


def _encrypt_online(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    rn = pow(int_field(v, "r"), int(pk.n), int(pk.nsquare))
    expect_int(v, "randomiser", rn)
    expect_int(v, "ciphertext", pk.encrypt_with_randomiser(int_field(v, "m"), rn).c)


def _decrypt(v: Mapping[str, Any]) -> None:
    sk = _private(v)
    expect_int(v, "m", sk.decrypt(_ct(sk.public_key, v, "ciphertext")))


def _add(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    expect_int(v, "ciphertext", (_ct(pk, v, "ciphertext1") + _ct(pk, v, "ciphertext2")).c)


def _signed(v: Mapping[str, Any], name: str) -> int:
    """A signed decimal string (no '+', no leading zeros)."""
    text = str_field(v, name)
    body = text[1:] if text.startswith("-") else text
    if not body.isdigit() or not body.isascii() or (len(body) > 1 and body[0] == "0") or text == "-0":
        raise VectorMismatchError(f"field {name!r} is not a canonical signed decimal")
    return int(text)


def _add_plain(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    k = _signed(v, "k")
    expect_int(v, "ciphertext", _ct(pk, v, "ciphertext1").add_plain(k).c)


def _mul(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    k = _signed(v, "k")
    expect_int(v, "ciphertext", (_ct(pk, v, "ciphertext1") * k).c)


def _neg(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    expect_int(v, "ciphertext", (-_ct(pk, v, "ciphertext1")).c)


def _rerandomise(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    rn = pow(int_field(v, "r"), int(pk.n), int(pk.nsquare))
    expect_int(v, "ciphertext", _ct(pk, v, "ciphertext1").rerandomise(randomiser=rn).c)


def _sum(v: Mapping[str, Any]) -> None:
    pk = _public(v)
    items = [pk.ciphertext(c) for c in int_list_field(v, "ciphertexts")]
    expect_int(v, "ciphertext", sum_ciphertexts(items).c)


def _reject_decrypt(v: Mapping[str, Any]) -> None:
    """Decryption of a ciphertext under another key (n_ciphertext) with the private key (p, q)."""
    sk = _private(v)
    other = PublicKey(int_field(v, "n_ciphertext", max_bits=MAX_MODULUS_BITS))
    _expect_error(v, lambda: sk.decrypt(other.ciphertext(int_field(v, "ciphertext"))))


def _expect_error(v: Mapping[str, Any], action: Callable[[], Any]) -> None:
    name = str_field(v, "error")
    expected = getattr(errors, name, None)
    if not (isinstance(expected, type) and issubclass(expected, UsappError)):
        raise VectorMismatchError(f"field 'error' names no error of protocols.errors: {name!r}")
    try:
        action()
    except UsappError as exc:
        if type(exc) is not expected:
            raise VectorMismatchError(f"rejected with {type(exc).__name__}, not {name}") from exc
        return
    raise VectorMismatchError("an invalid input was accepted")


def _reject(v: Mapping[str, Any]) -> None:
    """A decoder rejection: decoding ``ciphertext_encoding`` under n must raise
    the named typed error from protocols.errors."""
    pk = _public(v)
    name = str_field(v, "error")
    expected = getattr(errors, name, None)
    if not (isinstance(expected, type) and issubclass(expected, UsappError)):
        raise VectorMismatchError(f"field 'error' names no error of protocols.errors: {name!r}")
    try:
        Ciphertext.from_bytes(pk, bytes_field(v, "ciphertext_encoding"))
    except UsappError as exc:
        if type(exc) is not expected:
            raise VectorMismatchError(f"rejected with {type(exc).__name__}, not {name}") from exc
        return
    raise VectorMismatchError("invalid ciphertext encoding was accepted")


OPERATIONS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "keygen": _keygen,
    "encrypt": _encrypt_standard,
    "encrypt-djn": _encrypt_djn,
    "encrypt-online": _encrypt_online,
    "decrypt": _decrypt,
    "add": _add,
    "add-plain": _add_plain,
    "mul": _mul,
    "neg": _neg,
    "rerandomise": _rerandomise,
    "sum": _sum,
    "reject-ciphertext": _reject,
    "reject-decrypt": _reject_decrypt,
}

NOTES = {
    "out-of-range": "c = OS2IP(encoding) is not in 0 < c < n^2 (section 7.2 check 3)",
    "not-coprime": "gcd(c, n) != 1 (section 7.2 check 4)",
    "truncated": "an encoding one byte shorter than len(n^2)",
    "overlong": "an encoding one byte longer than len(n^2) (a leading 0x00)",
    "wrong-key": "a ciphertext under another public key (section 5.1)",
}


def verify_vector(vector: Mapping[str, Any]) -> None:
    invalid = vector.get("result", "valid") == "invalid"
    if vector.get("result", "valid") not in ("valid", "invalid") or invalid != ("error" in vector):
        raise VectorMismatchError("field 'result': 'invalid' exactly when 'error' is given")
    if any(flag not in NOTES for flag in vector.get("flags", [])):
        raise VectorMismatchError("field 'flags': a flag not documented in the file's notes")
    dispatch(OPERATIONS, vector)


# -- generation --------------------------------------------------------------------


def build() -> dict:
    """The whole envelope, from the fixed seeds below."""
    key = generate_keypair(2048, HmacDrbg.from_seed(KEY_SEED))
    pk = key.public_key
    n, n2 = int(pk.n), int(pk.nsquare)
    rng = HmacDrbg.from_seed(SEED_PREFIX + "operations")
    vectors: list[dict[str, Any]] = []
    common = {"n": hexint(n)}
    private = {**common, "p": hexint(key.p), "q": hexint(key.q)}

    for bits, seed in ((2048, KEY_SEED), (3072, SEED_PREFIX + "key-3072")):
        counting = _Recording(HmacDrbg.from_seed(seed))
        generated = generate_keypair(bits, counting)
        vectors.append({
            "name": f"keygen-{bits}", "operation": "keygen", "bits": bits, "seed": seed,
            "draws": annotate_keygen_draws(bits, counting.draws)[0],
            "draw_calls": counting.calls, "bytes_drawn": counting.bytes,
            "p": hexint(generated.p), "q": hexint(generated.q), "n": hexint(generated.public_key.n),
            "hp": hexint(generated.hp), "hq": hexint(generated.hq), "p_inverse": hexint(generated.p_inverse),
            "n_encoding": generated.public_key.to_bytes().hex(),
            "private_key_encoding": generated.to_bytes().hex(),
        })

    plaintexts = [0, 1, 42, n - 1, random_below(rng, n)]
    ciphertexts = []
    for i, m in enumerate(plaintexts):
        r = int(pk.random_r(rng))
        c = pk.encrypt_with_r(m, r)
        ciphertexts.append(c)
        vectors.append({"name": f"encrypt-{i}", "operation": "encrypt", **common, "m": hexint(m),
                        "r": hexint(r), "gm": hexint((1 + m * n) % n2), "rn": hexint(pow(r, n, n2)),
                        "ciphertext": hexint(c.c),
                        "ciphertext_encoding": c.to_bytes().hex()})
        vectors.append({"name": f"decrypt-{i}", "operation": "decrypt", **private,
                        "ciphertext": hexint(c.c), "m": hexint(m)})

    x = int(pk.random_r(rng))
    encryptor = FastEncryptor.from_h_s(pk, pow((-(x * x)) % n, n, n2), window=4)
    for i, m in enumerate([7, random_below(rng, n)]):
        a = int(encryptor.random_exponent(rng))
        c = encryptor.encrypt_with_exponent(m, a)
        h = (-(x * x)) % n
        vectors.append({"name": f"encrypt-djn-{i}", "operation": "encrypt-djn", **common, "m": hexint(m),
                        "x": hexint(x), "h": hexint(h), "h_s": hexint(encryptor.h_s), "window": 4,
                        "a": hexint(a), "randomiser": hexint(encryptor.table.power(a)),
                        "ciphertext": hexint(c.c)})
        vectors.append({"name": f"decrypt-djn-{i}", "operation": "decrypt", **private,
                        "ciphertext": hexint(c.c), "m": hexint(m)})

    r = int(pk.random_r(rng))
    rn = pow(r, n, n2)
    c = pk.encrypt_with_randomiser(1234, rn)
    vectors.append({"name": "encrypt-online-0", "operation": "encrypt-online", **common, "m": hexint(1234),
                    "r": hexint(r), "randomiser": hexint(rn), "ciphertext": hexint(c.c)})

    c1, c2 = ciphertexts[2], ciphertexts[4]
    vectors.append({"name": "add-0", "operation": "add", **common, "ciphertext1": hexint(c1.c),
                    "ciphertext2": hexint(c2.c), "ciphertext": hexint((c1 + c2).c)})
    vectors.append({"name": "decrypt-add-0", "operation": "decrypt", **private,
                    "ciphertext": hexint((c1 + c2).c), "m": hexint((42 + plaintexts[4]) % n)})
    for i, k in enumerate([5, -3, n + 2]):
        vectors.append({"name": f"add-plain-{i}", "operation": "add-plain", **common, "k": str(k),
                        "ciphertext1": hexint(c1.c), "ciphertext": hexint(c1.add_plain(k).c)})
        vectors.append({"name": f"mul-{i}", "operation": "mul", **common, "k": str(k),
                        "ciphertext1": hexint(c1.c), "ciphertext": hexint((c1 * k).c)})
    vectors.append({"name": "neg-0", "operation": "neg", **common, "ciphertext1": hexint(c1.c),
                    "ciphertext": hexint((-c1).c)})
    r = int(pk.random_r(rng))
    vectors.append({"name": "rerandomise-0", "operation": "rerandomise", **common, "r": hexint(r),
                    "ciphertext1": hexint(c1.c),
                    "ciphertext": hexint(c1.rerandomise(randomiser=pow(r, n, n2)).c)})
    total = sum_ciphertexts(ciphertexts)
    vectors.append({"name": "sum-0", "operation": "sum", **common,
                    "ciphertexts": [hexint(c.c) for c in ciphertexts], "ciphertext": hexint(total.c)})
    vectors.append({"name": "decrypt-sum-0", "operation": "decrypt", **private,
                    "ciphertext": hexint(total.c), "m": hexint(sum(plaintexts) % n)})

    length = pk.ciphertext_length()
    rejects = [
        ("zero", "InvalidCiphertextError", bytes(length), ["out-of-range"]),
        ("n-squared", "InvalidCiphertextError", n2.to_bytes(length, "big"), ["out-of-range"]),
        ("above-n-squared", "InvalidCiphertextError", (n2 + 1).to_bytes(length, "big"), ["out-of-range"]),
        ("not-coprime", "InvalidCiphertextError", int(key.p).to_bytes(length, "big"), ["not-coprime"]),
        ("truncated", "DecodeError", c1.to_bytes()[:-1], ["truncated"]),
        ("extended", "DecodeError", b"\x00" + c1.to_bytes(), ["overlong"]),
    ]
    for label, error, data, flags in rejects:
        vectors.append({"name": f"reject-{label}", "operation": "reject-ciphertext", **common,
                        "ciphertext_encoding": data.hex(), "result": "invalid", "flags": flags, "error": error})
    other = generate_keypair(3072, HmacDrbg.from_seed(SEED_PREFIX + "key-3072")).public_key
    foreign = other.encrypt_with_r(5, 7)
    vectors.append({"name": "reject-decrypt-wrong-key", "operation": "reject-decrypt", **private,
                    "n_ciphertext": hexint(int(other.n)), "ciphertext": hexint(foreign.c),
                    "result": "invalid", "flags": ["wrong-key"], "error": "KeyMismatchError"})

    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/paillier.md",
        "generated_by": f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed, seeds {SEED_PREFIX}*)",
        "description": ("Paillier with g = n + 1: key generation from a seeded DRBG, standard, DJN and "
                        "online encryption, CRT decryption, homomorphic operations, and ciphertext "
                        "encodings a decoder must reject. Integers are minimal lower-case hex; "
                        "k is a signed decimal string."),
        "notes": dict(NOTES),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
