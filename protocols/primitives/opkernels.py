"""Microbenchmark kernels, one per operation key (specs/costs.md section 2.4; issue 20 contract).

:func:`kernel` returns a zero-argument callable that runs the project's own code path for one
operation key on fixed inputs, built once (from a DRBG seeded with the key) when :func:`kernel`
is called; :func:`units` says how many units of that key one call performs, so a host model
divides a measured time by it.  Run under :func:`protocols.primitives.opcount.counting`, a call
records exactly ``units(key)`` of ``key``; it may record other keys too (a ``modexp_bit`` kernel
also records its one ``modexp``; an ``aead_byte`` kernel its one ``aead_call``; a ``hash_to_curve``
kernel its hash blocks), which :func:`side_counts` lists so that the model can subtract them.

A key it cannot benchmark is a ``ParameterError``: an unknown name, a size class that is not a
multiple of 64 of at least 256, or a type-1 curve size with no RFC 5091 level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from protocols.errors import ParameterError
from protocols.primitives import opcount
from protocols.primitives.drbg import HmacDrbg

__all__ = ["KERNEL_NAMES", "kernel", "side_counts", "units"]

HASH_KERNEL_BLOCKS = 16
"""Blocks (permutations for SHAKE) one hash kernel processes."""

MODMUL_KERNEL_COUNT = 64
"""Modular multiplications one ``modmul`` kernel performs."""

BYTES_KERNEL_LENGTH = 4096
"""Bytes one ``aead_byte`` or ``random_byte`` kernel handles."""

_HASH_INPUT = {  # (hashing name, input length giving HASH_KERNEL_BLOCKS blocks)
    "sha1": ("sha1", 64 * HASH_KERNEL_BLOCKS - 9),
    "sha256": ("sha256", 64 * HASH_KERNEL_BLOCKS - 9),
    "sha512": ("sha512", 128 * HASH_KERNEL_BLOCKS - 17),
    "shake256": ("shake_256", 136 * HASH_KERNEL_BLOCKS - 1),
}

KERNEL_NAMES = (
    "hash_block", "modexp", "modexp_bit", "modmul", "modinv", "point_mul", "point_mul_base",
    "pairing", "gt_exp", "hash_to_curve", "aead_byte", "aead_call", "x25519", "ed25519_sign",
    "ed25519_verify", "ed25519_keygen", "ecdsa_p256_sign", "ecdsa_p256_verify", "random_byte",
    "cbor_encode_byte", "cbor_decode_byte", "point_decode", "prime_test", "der_decode_byte",
)
"""Operation names (the part of a key before ``:``) that have a kernel."""

_UNSIZED = frozenset({"x25519", "ed25519_sign", "ed25519_verify", "ed25519_keygen", "ecdsa_p256_sign",
                      "ecdsa_p256_verify", "random_byte", "cbor_encode_byte", "cbor_decode_byte",
                      "der_decode_byte"})
"""Names whose key has no ``:size`` part; every other name needs one."""

_CBOR_SAMPLE = {1: 1, 2: "meter-report", 3: "meter-000042", 4: bytes(range(256)) * 2,
                5: [2**64 + 12345, -7, True, None], 6: {"round": 17, "slots": list(range(24))}}
"""A message-like CBOR item (a map of ints, text, bytes, a bignum, nested containers)."""


def _split(key: str) -> tuple[str, str]:
    if not isinstance(key, str) or not key:
        raise ParameterError("an operation key is a non-empty string")
    name, _, size = key.partition(":")
    if name not in KERNEL_NAMES or (name in _UNSIZED) != (size == ""):
        raise ParameterError(f"no kernel for operation key {key!r}")
    return name, size


def _bits(key: str, size: str) -> int:
    """The size class of a big-number key: a multiple of 64, at least 256."""
    if not size.isdigit() or int(size) < 256 or int(size) % opcount.SIZE_STEP_BITS:
        raise ParameterError(f"{key!r}: the size must be a multiple of 64 bits, at least 256")
    if int(size) > 16384:
        raise ParameterError(f"{key!r}: sizes above 16384 bits are not benchmarked")
    return int(size)


def _odd_modulus(rng: HmacDrbg, bits: int) -> int:
    value = int.from_bytes(rng.random_bytes(bits // 8), "big")
    return value | (1 << (bits - 1)) | 1


def _void(f: Callable[[], object]) -> Callable[[], None]:
    """``f`` with its result dropped (a kernel returns nothing)."""
    def run() -> None:
        f()
    return run


def units(key: str) -> int:
    """Units of ``key`` one call of ``kernel(key)`` performs (ParameterError as :func:`kernel`)."""
    name, size = _split(key)
    if name == "hash_block":
        if size not in _HASH_INPUT:
            raise ParameterError(f"no hash kernel for {key!r}")
        return HASH_KERNEL_BLOCKS
    if name in ("modexp", "modmul", "modinv", "prime_test"):
        _bits(key, size)
        return MODMUL_KERNEL_COUNT if name == "modmul" else 1
    if name == "modexp_bit":
        return _bits(key, size)
    if name in ("aead_byte", "random_byte"):
        return BYTES_KERNEL_LENGTH
    if name == "der_decode_byte":
        return len(_sample_certificate())
    if name in ("cbor_encode_byte", "cbor_decode_byte"):
        from protocols.primitives import cbor
        with opcount.suspended():  # the sample's length, not counted anywhere
            return len(cbor.encode(_CBOR_SAMPLE))
    return 1


def side_counts(key: str) -> Counter[str]:
    """What one call of ``kernel(key)`` records besides ``units(key)`` of ``key`` (by running it)."""
    run = kernel(key)
    with opcount.counting() as counts:
        run()
    counts[key] -= units(key)
    return Counter({k: v for k, v in counts.items() if v})


def kernel(key: str) -> Callable[[], None]:
    """A callable performing :func:`units` (``key``) units of ``key`` by the project's code path.
    Building its inputs records nothing, even inside an open counter."""
    with opcount.suspended():
        return _build(key)


def _build(key: str) -> Callable[[], None]:
    name, size = _split(key)
    units(key)  # validates the size
    rng = HmacDrbg.from_seed(f"usapp-opkernel:{key}")
    if name == "hash_block":
        return _hash_kernel(*_HASH_INPUT[size], rng)
    if name in ("modexp", "modexp_bit", "modmul", "modinv"):
        return _bignum_kernel(name, _bits(key, size), rng)
    if name == "prime_test":
        return _prime_kernel(_bits(key, size), rng)
    if name in ("point_mul", "point_mul_base", "pairing", "gt_exp", "hash_to_curve", "point_decode"):
        return _curve_kernel(key, name, size, rng)
    if name in ("aead_byte", "aead_call"):
        return _aead_kernel(key, name, size, rng)
    if name in ("x25519", "ed25519_sign", "ed25519_verify", "ed25519_keygen", "ecdsa_p256_sign",
                "ecdsa_p256_verify"):
        return _signature_kernel(name, rng)
    if name == "der_decode_byte":
        from protocols.schemes import certificates
        der = _sample_certificate()
        return _void(lambda: certificates.load_certificate(der, "kernel certificate"))
    if name == "random_byte":
        def draw() -> None:
            rng.random_bytes(BYTES_KERNEL_LENGTH)
        return draw
    return _cbor_kernel(name)


def _hash_kernel(hash_name: str, length: int, rng: HmacDrbg) -> Callable[[], None]:
    from protocols.primitives import hashing
    data = rng.random_bytes(length)

    def run() -> None:
        hashing.new(hash_name, data).digest(*((32,) if hash_name == "shake_256" else ()))
    return run


def _bignum_kernel(name: str, bits: int, rng: HmacDrbg) -> Callable[[], None]:
    import gmpy2
    from gmpy2 import mpz

    from protocols.primitives import numtheory
    modulus = mpz(_odd_modulus(rng, bits))
    base = mpz(int.from_bytes(rng.random_bytes(bits // 8), "big")) % modulus
    if name == "modexp":
        return _void(lambda: numtheory.powmod(base, 1, modulus))
    if name == "modexp_bit":
        exponent = mpz(_odd_modulus(rng, bits))  # exactly ``bits`` bits
        return _void(lambda: numtheory.powmod(base, exponent, modulus))
    if name == "modmul":
        factors = [mpz(int.from_bytes(rng.random_bytes(bits // 8), "big")) % modulus
                   for _ in range(MODMUL_KERNEL_COUNT)]

        def multiply() -> None:
            acc = base
            for f in factors:
                acc = numtheory.mulmod(acc, f, modulus)
        return multiply
    while gmpy2.gcd(base, modulus) != 1:  # modinv: a unit modulo the odd modulus
        base = (base + 1) % modulus
    return _void(lambda: numtheory.invert(base, modulus))


def _prime_kernel(bits: int, rng: HmacDrbg) -> Callable[[], None]:
    """One Baillie-PSW test of a prime of ``bits`` bits (a prime passes every step of the test)."""
    from protocols.primitives import numtheory
    prime = numtheory.random_prime(bits, rng)
    return _void(lambda: numtheory.bpsw(prime))


def _curve_kernel(key: str, name: str, curve: str, rng: HmacDrbg) -> Callable[[], None]:
    if curve == "ed25519" and name == "point_decode":
        from protocols.primitives import ed25519
        encoded = ed25519.SerializeElement(ed25519.ScalarBaseMult(ed25519.RandomScalar(rng) | 1))
        return _void(lambda: ed25519.DeserializeElement(encoded))
    if curve == "ed25519" and name in ("point_mul", "point_mul_base"):
        from protocols.primitives import ed25519
        k = ed25519.RandomScalar(rng) | 1
        A = ed25519.ScalarBaseMult(ed25519.RandomScalar(rng) | 1)
        if name == "point_mul":
            return _void(lambda: ed25519.ScalarMult(A, k))
        return _void(lambda: ed25519.ScalarBaseMult(k))
    if curve.startswith("bls12_381"):
        return _bls_kernel(key, name, curve, rng)
    if curve.startswith("ss"):
        return _ss_kernel(key, name, curve, rng)
    if curve == "p256" and name in ("point_mul", "point_mul_base"):
        from protocols.schemes import eccsi
        k = 1 + int.from_bytes(rng.random_bytes(32), "big") % (eccsi.q - 1)
        A256 = eccsi.G() * (1 + int.from_bytes(rng.random_bytes(32), "big") % (eccsi.q - 1))
        if name == "point_mul_base":
            return _void(lambda: eccsi.base_multiply(k))
        return _void(lambda: eccsi.multiply(A256, k))
    if curve == "sakke1024" and name in ("point_mul", "pairing", "gt_exp"):
        from protocols.primitives import sakke_curve as sk
        E = sk.PARAMETER_SET_1
        k = 1 + int.from_bytes(rng.random_bytes(128), "big") % (int(E.q) - 1)
        if name == "point_mul":
            return _void(lambda: sk.point_multiply(E.p, k, E.P))
        if name == "gt_exp":
            return _void(lambda: sk.PFp_pow(E.p, E.g, k))
        R = sk.point_multiply(E.p, k, E.P)
        return _void(lambda: sk.pairing(E.p, E.q, R, E.P))
    raise ParameterError(f"no kernel for operation key {key!r}")


def _bls_kernel(key: str, name: str, curve: str, rng: HmacDrbg) -> Callable[[], None]:
    from protocols.primitives import bls12_381 as bls
    k = bls.random_scalar(rng)
    groups: dict[str, Any] = {"bls12_381_g1": bls.G1, "bls12_381_g2": bls.G2}
    if name == "point_decode" and curve in groups:
        encoded = (groups[curve].generator() * k).to_bytes()
        return _void(lambda: groups[curve].from_bytes(encoded))
    if name in ("point_mul", "point_mul_base") and curve in groups:
        group = groups[curve]
        point = group.generator() if name == "point_mul_base" else group.generator() * bls.random_scalar(rng)
        return _void(lambda: point * k)
    if name == "hash_to_curve" and curve in groups:
        hash_to = bls.hash_to_g1 if curve == "bls12_381_g1" else bls.hash_to_g2
        msg, dst = rng.random_bytes(32), b"USAPP-OPKERNEL-V01-CS01-with-BLS12381_XMD:SHA-256_SSWU_RO_"
        return _void(lambda: hash_to(msg, dst))
    if curve == "bls12_381" and name in ("pairing", "gt_exp"):
        P, Q = bls.G1.generator() * k, bls.G2.generator() * bls.random_scalar(rng)
        if name == "pairing":
            return _void(lambda: bls.pairing(P, Q))
        element, e = bls.pairing(P, Q), bls.random_scalar(rng)
        return _void(lambda: element ** e)
    raise ParameterError(f"no kernel for operation key {key!r}")


def _ss_kernel(key: str, name: str, curve: str, rng: HmacDrbg) -> Callable[[], None]:
    from protocols.primitives import supersingular as ss
    from protocols.schemes import bf
    levels = [level for level in bf.SECURITY_LEVELS.values()
              if opcount.size_class(level.n_p) == int(curve[2:] or 0) and level.n in bf.SETUP_LEVELS]
    if not curve[2:].isdigit() or not levels or name == "point_mul_base":
        raise ParameterError(f"no kernel for operation key {key!r} (type-1 curves: "
                             f"{', '.join(f'ss{bf.SECURITY_LEVELS[n].n_p}' for n in bf.SETUP_LEVELS)})")
    params, _ = bf.BFsetup(levels[0].n, rng)
    E, P = params.curve, params.P
    k = 1 + int.from_bytes(rng.random_bytes(E.octets), "big") % (int(E.q) - 1)
    if name == "point_mul":
        return _void(lambda: ss.PointMultiply(E, k, P))
    if name == "hash_to_curve":
        identity = b"meter-000042@usapp.example"
        return _void(lambda: bf.HashToPoint(E, identity, params.hashfcn))
    Q = ss.PointMultiply(E, 1 + int.from_bytes(rng.random_bytes(E.octets), "big") % (int(E.q) - 1), P)
    if name == "pairing":
        return _void(lambda: ss.Pairing1(E, P, Q))
    theta = ss.Pairing1(E, P, Q)
    return _void(lambda: theta ** k)


def _aead_kernel(key: str, name: str, alg: str, rng: HmacDrbg) -> Callable[[], None]:
    if alg != "chacha20poly1305":
        raise ParameterError(f"no kernel for operation key {key!r}")
    from protocols.primitives.aead import ChaCha20Poly1305
    cipher = ChaCha20Poly1305(rng.random_bytes(32))
    nonce, aad = rng.random_bytes(12), rng.random_bytes(16)
    plaintext = rng.random_bytes(BYTES_KERNEL_LENGTH if name == "aead_byte" else 0)
    return _void(lambda: cipher.encrypt(nonce, plaintext, aad))


def _signature_kernel(name: str, rng: HmacDrbg) -> Callable[[], None]:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from protocols.schemes import certificates
    message = rng.random_bytes(64)
    if name == "x25519":   # one ladder: the aggregation's low-order probe, a DH with a key loaded once (a
        from protocols.aggregation import schedule   # private key's loading is library_call:x25519_load)
        peer = schedule.x25519_public(rng.random_bytes(32))
        return _void(lambda: schedule.is_low_order(peer))
    if name.startswith("ed25519"):
        seed = rng.random_bytes(32)
        if name == "ed25519_keygen":
            return _void(lambda: certificates.ed25519_public(seed))
        key: Any = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    else:
        scalar = 1 + int.from_bytes(rng.random_bytes(32), "big") % (certificates._P256_ORDER - 1)
        key = ec.derive_private_key(scalar, ec.SECP256R1())
    if name.endswith("_sign"):
        return _void(lambda: certificates.sign(key, message))
    signature = certificates.sign(key, message)
    public = key.public_key()
    return _void(lambda: certificates.verify_signature(public, signature, message, "kernel signature"))


def _sample_certificate() -> bytes:
    """A device-like DER certificate (Ed25519 key, a CA's Ed25519 signature, two extensions), the same on
    every call: the ``der_decode_byte`` kernel's input."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    ca = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    device = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meter-000042"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "USaPP kernel")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "USaPP kernel CA")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(device.public_key())
            .serial_number(42).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .sign(ca, None))
    return cert.public_bytes(serialization.Encoding.DER)


def _cbor_kernel(name: str) -> Callable[[], None]:
    from protocols.primitives import cbor
    if name == "cbor_encode_byte":
        return _void(lambda: cbor.encode(_CBOR_SAMPLE))
    encoded = cbor.encode(_CBOR_SAMPLE)
    return _void(lambda: cbor.decode(encoded))
