"""An independent threshold ElGamal over edwards25519, written from the spec text alone, checked against the vectors.

Implements, from specs/threshold_elgamal.md sections 2 (notation), 3.1-3.4 (the suite, the blob and share
encodings, the key, the second generator B2), 4.1-4.4 (key derivation, the labelled seal with its TDH2 proof of
well-formedness, parsing a blob, CheckSealed), 5.1-5.4 (decryption shares and their DLEQ proofs), 6 (share
verification), 7 (combination) and 10 (the vector format); from specs/frost.md sections 3.1-3.3 (the group, its
encodings, H_DKG) and 7 (the distributed key generation: rounds 1, 2 and finish, the proof of knowledge); from
specs/groupkeys.md 8.5 (the ceremony's context Phi and draw order, which threshold_elgamal.md section 10 cites);
and from specs/conventions.md sections 2 (I2OSP, lp1, lp8), 3.2 (RandomBelow / RandomScalar), 3.3 (HMAC_DRBG
from_seed), 4.3 / 4.6 (vector values and negative vectors) and 5.1 (the error names).  RFC 8032 section 5.1 gives
the curve arithmetic and the point encoding, RFC 5869 HKDF, RFC 9591 section 4.2 the Lagrange coefficients.

Every value of vectors/threshold_elgamal.json is recomputed: for each `open` vector the DKG draws (names and
bytes), the group key, the secret and verifying shares, the sealed blob, every share, the opened plaintext and every
per-role intermediate; each `refuse` vector is refused by the named step with the named error, raised by the check
its flag describes.

It imports nothing from ``protocols``: edwards25519 is a few lines of extended-coordinate arithmetic over Python
integers (RFC 8032 5.1.4), HKDF is written on hmac, the AEAD is ``cryptography``'s ChaCha20-Poly1305, and HMAC_DRBG
is imported from the clean-room module tests/test_sakke_eccsi_from_spec.py, and so are the errors, classes carrying
the names of conventions section 5.1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from test_sakke_eccsi_from_spec import (  # the clean-room errors of conventions 5.1, `check` the failing check
    DecodeError, HmacDrbg, ParameterError, RecoveryError, UsappError, VerificationError)

VECTORS = json.loads((Path(__file__).resolve().parent.parent / "vectors" / "threshold_elgamal.json").read_text())


# --- conventions 2: integers, length prefixes ---------------------------------------------------------------------


def i2osp(x: int, n: int) -> bytes:
    """Conventions 2.1."""
    if x < 0 or x >= 256**n:
        raise ParameterError("integer too large for its length", "i2osp")
    return x.to_bytes(n, "big")


def lp1(x: bytes) -> bytes:
    """Conventions 2.2."""
    return i2osp(len(x), 1) + x


def lp8(x: bytes) -> bytes:
    """Conventions 2.2."""
    return i2osp(len(x), 8) + x


# --- edwards25519 (RFC 8032 5.1; specs/frost.md 3.1, 3.2) --------------------------------------------------------

P = 2**255 - 19
D = -121665 * pow(121666, -1, P) % P
L = 2**252 + 27742317777372353535851937790883648493
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z
IDENTITY: Point = (0, 1, 1, 0)


def add(a: Point, b: Point) -> Point:
    """RFC 8032 5.1.4: the complete addition law in extended coordinates."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * D * t1 * t2 % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % P, g * h % P, f * g % P, e * h % P


def neg(a: Point) -> Point:
    return (-a[0]) % P, a[1], a[2], (-a[3]) % P


def mul(k: int, a: Point) -> Point:
    """[k]A by double-and-add (k >= 0)."""
    out = IDENTITY
    while k:
        if k & 1:
            out = add(out, a)
        a = add(a, a)
        k >>= 1
    return out


def is_identity(a: Point) -> bool:
    return a[0] % P == 0 and (a[1] - a[2]) % P == 0


def encode(a: Point) -> bytes:
    """RFC 8032 5.1.2: y little-endian, the sign of x in bit 255."""
    zi = pow(a[2], -1, P)
    x, y = a[0] * zi % P, a[1] * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def decode_checked(buf: bytes) -> Point | str:
    """RFC 8032 5.1.3: the point, or why not ("canonical": y >= p or x = 0 with the sign bit set; "on curve":
    no x for this y)."""
    y = int.from_bytes(buf, "little") & (2**255 - 1)
    sign = buf[31] >> 7
    if y >= P:
        return "canonical"
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return "on curve"
    if x == 0 and sign:
        return "canonical"
    if x & 1 != sign:
        x = P - x
    return x, y, 1, x * y % P


def decode(buf: bytes) -> Point | None:
    """RFC 8032 5.1.3, None on failure."""
    a = decode_checked(buf)
    return None if isinstance(a, str) else a


B = decode(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))


def serialize_element(a: Point) -> bytes:
    """frost.md 3.2: the identity is refused."""
    if is_identity(a):
        raise ParameterError("the identity has no encoding", "element")
    return encode(a)


def deserialize_element(buf: bytes) -> Point:
    """frost.md 3.2 DeserializeElement, its four checks in order, each a DecodeError."""
    if len(buf) != 32:
        raise DecodeError("an element is 32 bytes", "length")
    a = decode_checked(buf)
    if isinstance(a, str):
        raise DecodeError("not canonical" if a == "canonical" else "not a point", a)
    if is_identity(a):
        raise DecodeError("the identity", "identity")
    if not is_identity(mul(L, a)):
        raise DecodeError("not in the prime-order subgroup", "subgroup")
    return a


def serialize_scalar(s: int) -> bytes:
    """frost.md 3.2: 32 bytes little-endian of s in [0, L - 1]."""
    return (s % L).to_bytes(32, "little")


def deserialize_scalar(buf: bytes) -> int:
    """frost.md 3.2: 32 bytes little-endian, a value >= L refused."""
    if len(buf) != 32:
        raise DecodeError("a scalar is 32 bytes", "length")
    s = int.from_bytes(buf, "little")
    if s >= L:
        raise DecodeError("scalar not reduced", "scalar range")
    return s


def os2ip_le_mod_l(digest: bytes) -> int:
    """RFC 9591 6.1 / threshold_elgamal.md 5.2: the digest read little-endian, mod L."""
    return int.from_bytes(digest, "little") % L


# --- randomness (conventions 3.2) and the DKG draws (threshold_elgamal.md 10, groupkeys.md 8.5) -------------------


@dataclass
class NamedDraws:
    """Wraps an rng; records every random_bytes call under the name of the value being drawn (vector 'dkg_draws')."""

    rng: Any
    log: list[dict] = field(default_factory=list)

    def random_scalar(self, name: str) -> int:
        """Conventions 3.2 RandomScalar(rng, L): 32 bytes, OS2IP, low 253 bits, rejected while >= L."""
        k = (L - 1).bit_length()
        while True:
            b = self.rng.random_bytes(32)
            x = int.from_bytes(b, "big") & ((1 << k) - 1)
            self.log.append({"name": name if x < L else f"{name}/rejected", "hex": b.hex()})
            if x < L:
                return x


# --- the distributed key generation (specs/frost.md section 7) ----------------------------------------------------

FROST_CONTEXT = b"FROST-ED25519-SHA512-v1"


def h_dkg(m: bytes) -> int:
    """frost.md 3.3: H_DKG(m) = SHA-512(contextString || "dkg" || m) mod L."""
    return os2ip_le_mod_l(hashlib.sha512(FROST_CONTEXT + b"dkg" + m).digest())


def dkg_challenge(i: int, t: int, n: int, phi: bytes, phi0: Point, r: Point) -> int:
    """frost.md 7.2."""
    return h_dkg(serialize_scalar(i) + i2osp(t, 4) + i2osp(n, 4) + lp8(phi)
                 + serialize_element(phi0) + serialize_element(r))


@dataclass(frozen=True)
class DkgRound1Package:
    """frost.md 7.1 round 1 broadcast."""

    identifier: int
    commitment: tuple[Point, ...]
    R: Point
    mu: int


@dataclass(frozen=True)
class DkgSecret:
    """Participant i's polynomial f_i, kept from round 1."""

    identifier: int
    coefficients: tuple[int, ...]


def poly(coefficients: tuple[int, ...], x: int) -> int:
    """f(x) = sum a_j x^j mod L."""
    return sum(a * pow(x, j, L) for j, a in enumerate(coefficients)) % L


def dkg_part1(i: int, n: int, t: int, phi: bytes, draws: NamedDraws) -> tuple[DkgSecret, DkgRound1Package]:
    """frost.md 7.1 round 1: a_i0 .. a_i(t-1), then k, each RandomScalar; the proof of knowledge of a_i0."""
    coefficients = tuple(draws.random_scalar(f"authority{i}.a{j}") for j in range(t))
    if coefficients[0] == 0:
        raise ParameterError("a zero constant term", "dkg a_i0")
    k = draws.random_scalar(f"authority{i}.k")
    commitment = tuple(mul(a, B) for a in coefficients)
    r = mul(k, B)
    c = dkg_challenge(i, t, n, phi, commitment[0], r)
    return DkgSecret(i, coefficients), DkgRound1Package(i, commitment, r, (k + coefficients[0] * c) % L)


def dkg_part2(me: DkgSecret, packages: list[DkgRound1Package], n: int, t: int, phi: bytes) -> dict[int, int]:
    """frost.md 7.1 round 2: check every other package's commitment length and proof; the shares f_i(l)."""
    if sorted(p.identifier for p in packages) != list(range(1, n + 1)):
        raise VerificationError("exactly participants 1..n must send a package", "dkg packages")
    for p in packages:
        if p.identifier == me.identifier:
            continue
        c = dkg_challenge(p.identifier, t, n, phi, p.commitment[0], p.R)
        if len(p.commitment) != t or encode(p.R) != encode(add(mul(p.mu, B), neg(mul(c, p.commitment[0])))):
            raise VerificationError(f"participant {p.identifier}: invalid proof", "dkg proof")
    return {l: poly(me.coefficients, l) for l in range(1, n + 1) if l != me.identifier}


def commitment_at(commitment: tuple[Point, ...], x: int) -> Point:
    """sum_k [x^k] phi_k."""
    out = IDENTITY
    for k, phi_k in enumerate(commitment):
        out = add(out, mul(pow(x, k, L), phi_k))
    return out


@dataclass(frozen=True)
class KeyPackage:
    identifier: int
    secret_share: int
    verifying_share: Point
    group_public_key: Point


@dataclass(frozen=True)
class PublicKeyPackage:
    verifying_shares: dict[int, Point]
    group_public_key: Point
    min_participants: int
    max_participants: int


def dkg_part3(me: DkgSecret, packages: list[DkgRound1Package], received: dict[int, int], n: int, t: int
              ) -> tuple[KeyPackage, PublicKeyPackage]:
    """frost.md 7.1 finish: check each received share against its commitment; s_i; the summed commitment."""
    i = me.identifier
    for p in packages:
        if p.identifier != i and encode(mul(received[p.identifier], B)) != encode(commitment_at(p.commitment, i)):
            raise VerificationError(f"participant {p.identifier} sent participant {i} a bad share", "dkg share")
    s = (poly(me.coefficients, i) + sum(received.values())) % L
    summed = tuple(_sum(p.commitment[k] for p in packages) for k in range(t))
    shares = {j: commitment_at(summed, j) for j in range(1, n + 1)}
    group = PublicKeyPackage(shares, summed[0], t, n)
    return KeyPackage(i, s, shares[i], summed[0]), group


def _sum(points: Any) -> Point:
    out = IDENTITY
    for a in points:
        out = add(out, a)
    return out


def operator_ceremony(n: int, t: int, group: bytes, rng: Any) -> tuple[list[KeyPackage], PublicKeyPackage, list]:
    """groupkeys.md 8.5 (cited by threshold_elgamal.md 10): all n participants in one process, round 1 for
    i = 1 .. n in turn from the one rng, Phi = "usapp-groupkeys-v1" || lp1("operators") || lp1(group)."""
    phi = b"usapp-groupkeys-v1" + lp1(b"operators") + lp1(group)
    draws = NamedDraws(rng)
    round1 = [dkg_part1(i, n, t, phi, draws) for i in range(1, n + 1)]
    packages = [pkg for _, pkg in round1]
    sent = {secret.identifier: dkg_part2(secret, packages, n, t, phi) for secret, _ in round1}
    results = []
    for secret, _ in round1:
        received = {l: sent[l][secret.identifier] for l in sent if l != secret.identifier}
        results.append(dkg_part3(secret, packages, received, n, t))
    groups = {tuple(encode(x) for x in g.verifying_shares.values()) + (encode(g.group_public_key),)
              for _, g in results}
    if len(groups) != 1:
        raise VerificationError("participants disagree on the group info", "dkg group")
    return [kp for kp, _ in results], results[0][1], draws.log


# --- the suite (threshold_elgamal.md 3) ---------------------------------------------------------------------------

SUITE = "usapp-threshold-elgamal-edwards25519-v1"
TE_DOMAIN = SUITE.encode("ascii")
B2_SPEC = "c8861da2c9e41559b6c67d338a3a05423eba8b3cc4603fe0e7a841c609f41a52"
HEADER = 128
SEALED_MIN = 144
MAX_INPUT_BYTES = 2**20
SEALED_MAX_BYTES = 144 + 2**20


def derive_second_generator() -> tuple[int, Point]:
    """Section 3.4: try-and-increment on SHA-512(TE_DOMAIN || "generator" || I2OSP(ctr, 1)), times the cofactor."""
    for ctr in range(256):
        a = decode(hashlib.sha512(TE_DOMAIN + b"generator" + i2osp(ctr, 1)).digest()[:32])
        if a is None:
            continue
        for _ in range(3):
            a = add(a, a)
        if not is_identity(a):
            return ctr, a
    raise ParameterError("no generator", "generator")


B2 = derive_second_generator()[1]


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 2.2 / 2.3."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:length]


def derive_key(S: Point, R: Point, aad: bytes) -> bytes:
    """Section 4.1."""
    return hkdf_sha256(serialize_element(S), serialize_element(R), TE_DOMAIN + lp8(aad), 32)


def aead_ad(aad: bytes, R: Point) -> bytes:
    """Section 4.2 step 4: the AEAD's associated data."""
    return TE_DOMAIN + lp8(aad) + serialize_element(R)


def seal_challenge(aad: bytes, ct: bytes, R: Point, W: Point, R2: Point, W2: Point) -> int:
    """Section 4.2 step 5."""
    return os2ip_le_mod_l(hashlib.sha512(
        TE_DOMAIN + b"seal" + lp8(aad) + lp8(ct) + serialize_element(R) + serialize_element(W)
        + serialize_element(R2) + serialize_element(W2)).digest())


@dataclass(frozen=True)
class Sealing:
    """Section 4.2: the sealer's intermediates and output."""

    R: Point
    S: Point
    key: bytes
    R2: Point
    W: Point
    W2: Point
    e: int
    f: int
    ct: bytes

    def blob(self) -> bytes:
        """Section 4.2 step 6 / 3.2."""
        return (serialize_element(self.R) + serialize_element(self.R2) + serialize_scalar(self.e)
                + serialize_scalar(self.f) + self.ct)


def check_input_length(x: bytes, what: str) -> None:
    """Section 4.3 Limits."""
    if len(x) > MAX_INPUT_BYTES:
        raise ParameterError(f"{what} longer than MAX_INPUT_BYTES", "limit")


def seal_with_randomness(X: bytes, aad: bytes, plaintext: bytes, r: int, s: int) -> Sealing:
    """Section 4.2 with r and s given."""
    check_input_length(aad, "aad")
    check_input_length(plaintext, "plaintext")
    for value in (r, s):
        if not 1 <= value < L:
            raise ParameterError("r and s must be in [1, L - 1]", "seal randomness")
    try:
        Xp = deserialize_element(X)
    except DecodeError as exc:
        raise (DecodeError if exc.check == "length" else ParameterError)(str(exc), "public key") from None
    R, S = mul(r, B), mul(r, Xp)
    key = derive_key(S, R, aad)
    ct = ChaCha20Poly1305(key).encrypt(bytes(12), plaintext, aead_ad(aad, R))
    R2, W, W2 = mul(r, B2), mul(s, B), mul(s, B2)
    e = seal_challenge(aad, ct, R, W, R2, W2)
    return Sealing(R, S, key, R2, W, W2, e, (s + r * e) % L, ct)


@dataclass(frozen=True)
class Sealed:
    """Section 4.3: a parsed blob."""

    R: Point
    R2: Point
    e: int
    f: int
    ct: bytes


def parse_sealed(blob: bytes) -> Sealed:
    """Section 4.3, in its order."""
    if not isinstance(blob, bytes) or not SEALED_MIN <= len(blob) <= SEALED_MAX_BYTES:
        raise DecodeError("a sealed blob is 144 to 144 + 2^20 bytes", "length")
    R = deserialize_element(blob[0:32])
    R2 = deserialize_element(blob[32:64])
    e = deserialize_scalar(blob[64:96])
    f = deserialize_scalar(blob[96:128])
    return Sealed(R, R2, e, f, blob[HEADER:])


def check_sealed(blob: bytes, aad: bytes) -> Sealed:
    """Section 4.4."""
    check_input_length(aad, "aad")
    sealed = parse_sealed(blob)
    W = add(mul(sealed.f, B), neg(mul(sealed.e, sealed.R)))
    W2 = add(mul(sealed.f, B2), neg(mul(sealed.e, sealed.R2)))
    if is_identity(W) or is_identity(W2) or sealed.e != seal_challenge(aad, sealed.ct, sealed.R, W, sealed.R2, W2):
        raise VerificationError("sealed ciphertext is not well formed for this aad", "seal proof")
    return sealed


# --- decryption shares (sections 5, 6) ----------------------------------------------------------------------------


def dleq_challenge(i: int, Xi: Point, R: Point, Di: Point, A1: Point, A2: Point, context: bytes) -> int:
    """Section 5.2."""
    return os2ip_le_mod_l(hashlib.sha512(
        TE_DOMAIN + b"dleq" + serialize_scalar(i) + serialize_element(Xi) + serialize_element(R)
        + serialize_element(Di) + serialize_element(A1) + serialize_element(A2) + lp8(context)).digest())


@dataclass(frozen=True)
class DecryptionShare:
    """Section 5.1: (i, D_i, c, z)."""

    identifier: int
    D: Point
    c: int
    z: int

    def wire(self) -> bytes:
        """Section 3.2: D || c || z, 96 bytes."""
        return serialize_element(self.D) + serialize_scalar(self.c) + serialize_scalar(self.z)


@dataclass(frozen=True)
class ShareWork:
    """Section 5.4: the authority's intermediates."""

    share: DecryptionShare
    A1: Point
    A2: Point


def decryption_share_with_nonce(kp: KeyPackage, blob: bytes, aad: bytes, context: bytes, k: int) -> ShareWork:
    """Section 5.4 with the nonce k given (5.3)."""
    check_input_length(context, "context")
    if not 1 <= k < L:
        raise ParameterError("k must be in [1, L - 1]", "share nonce")
    sealed = check_sealed(blob, aad)
    Di = mul(kp.secret_share, sealed.R)
    A1, A2 = mul(k, B), mul(k, sealed.R)
    c = dleq_challenge(kp.identifier, kp.verifying_share, sealed.R, Di, A1, A2, context)
    return ShareWork(DecryptionShare(kp.identifier, Di, c, (k + c * kp.secret_share) % L), A1, A2)


def decode_share(identifier: int, buf: bytes) -> DecryptionShare:
    """Section 3.2: i in [1, L - 1] (ParameterError), then exactly 96 bytes, D by DeserializeElement, c and z by
    DeserializeScalar (each a DecodeError)."""
    if not 1 <= identifier < L:
        raise ParameterError("identifier outside [1, L - 1]", "identifier")
    if len(buf) != 96:
        raise DecodeError("a decryption share is 96 bytes", "length")
    return DecryptionShare(identifier, deserialize_element(buf[0:32]), deserialize_scalar(buf[32:64]),
                           deserialize_scalar(buf[64:96]))


def verify_decryption_share(group: PublicKeyPackage, blob: bytes, context: bytes, share: DecryptionShare) -> None:
    """Section 6."""
    sealed = parse_sealed(blob)
    i = share.identifier
    if not 1 <= i <= group.max_participants:
        raise ParameterError("identifier outside [1, n]", "identifier")
    Xi = group.verifying_shares[i]
    A1 = add(mul(share.z, B), neg(mul(share.c, Xi)))
    A2 = add(mul(share.z, sealed.R), neg(mul(share.c, share.D)))
    if is_identity(A1) or is_identity(A2) or share.c != dleq_challenge(i, Xi, sealed.R, share.D, A1, A2, context):
        raise VerificationError(f"participant {i}: decryption share proof does not verify", "dleq proof")


def interpolating_value(identifiers: list[int], i: int) -> int:
    """RFC 9591 4.2 derive_interpolating_value(I, i) at 0."""
    num = den = 1
    for j in identifiers:
        if j != i:
            num, den = num * j % L, den * (j - i) % L
    return num * pow(den, -1, L) % L


@dataclass(frozen=True)
class Combination:
    """Section 7: the combiner's intermediates and output."""

    lambdas: dict[int, int]
    S: Point
    plaintext: bytes


def combine(group: PublicKeyPackage, blob: bytes, aad: bytes, context: bytes, shares: list[DecryptionShare]
            ) -> Combination:
    """Section 7 steps 1-5."""
    if not isinstance(blob, bytes) or not all(isinstance(s, DecryptionShare) for s in shares):
        raise ParameterError("arguments of the wrong type", "types")
    sealed = check_sealed(blob, aad)
    seen: list[int] = []
    for share in shares:
        if not 1 <= share.identifier <= group.max_participants:
            raise ParameterError("identifier outside [1, n]", "identifier")
        if share.identifier in seen:
            raise VerificationError(f"participant {share.identifier}: more than one decryption share", "duplicate")
        verify_decryption_share(group, blob, context, share)
        seen.append(share.identifier)
    if len(seen) < group.min_participants:
        raise RecoveryError("fewer than t decryption shares", "threshold")
    lambdas = {i: interpolating_value(seen, i) for i in seen}
    S = _sum(mul(lambdas[s.identifier], s.D) for s in shares)
    key = derive_key(S, sealed.R, aad)
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(bytes(12), sealed.ct, aead_ad(aad, sealed.R))
    except InvalidTag:
        raise VerificationError("the ciphertext does not open", "aead") from None
    return Combination(lambdas, S, plaintext)


# --- the vectors (section 10) -------------------------------------------------------------------------------------


def h(x: str) -> bytes:
    return bytes.fromhex(x)


def hexint(x: str) -> int:
    """Section 10: r, s and k are big-endian hex integers."""
    return int(x, 16)


@dataclass
class Run:
    """The key and everything an `open` vector computes, from its chosen inputs."""

    keys: list[KeyPackage]
    group: PublicKeyPackage
    draws: list[dict]
    sealing: Sealing
    works: list[ShareWork]
    combination: Combination


def key_of(v: dict) -> tuple[list[KeyPackage], PublicKeyPackage, list[dict]]:
    """Section 10: the DKG from HMAC_DRBG(dkg_seed)."""
    return operator_ceremony(v["operators"], v["threshold"], h(v["group"]), HmacDrbg(v["dkg_seed"]))


def run(v: dict) -> Run:
    """Section 10 `open`: DKG, seal, each listed authority's share, then combine."""
    keys, group, draws = key_of(v)
    aad, context = h(v["aad"]), h(v["context"])
    sealing = seal_with_randomness(encode(group.group_public_key), aad, h(v["plaintext"]),
                                   hexint(v["r"]), hexint(v["s"]))
    blob = sealing.blob()
    works = [decryption_share_with_nonce(keys[s["identifier"] - 1], blob, aad, context, hexint(s["k"]))
             for s in v["shares"]]
    received = [decode_share(s["identifier"], w.share.wire()) for s, w in zip(v["shares"], works)]
    return Run(keys, group, draws, sealing, works, combine(group, blob, aad, context, received))


def computed_fields(v: dict, r: Run) -> dict:
    """The vector as this implementation writes it: the chosen fields copied, every computed one recomputed."""
    sl = r.sealing
    blob = sl.blob()
    se, ss = lambda a: serialize_element(a).hex(), lambda s: serialize_scalar(s).hex()
    roles: list[dict] = [{
        "action": "seal", "role": "sealer", "output": blob.hex(),
        "intermediates": {"R": se(sl.R), "S": se(sl.S), "key": sl.key.hex(), "R2": se(sl.R2), "W": se(sl.W),
                          "W2": se(sl.W2), "e": ss(sl.e), "f": ss(sl.f), "ct": sl.ct.hex()}}]
    for w in r.works:
        roles.append({"action": "decryption_share", "role": "authority", "identifier": w.share.identifier,
                      "input": blob.hex(), "output": w.share.wire().hex(),
                      "intermediates": {"D": se(w.share.D), "A1": se(w.A1), "A2": se(w.A2), "c": ss(w.share.c),
                                        "z": ss(w.share.z)}})
    roles.append({"action": "combine", "role": "combiner", "output": r.combination.plaintext.hex(),
                  "intermediates": {"lambda": {str(i): ss(x) for i, x in r.combination.lambdas.items()},
                                    "S": se(r.combination.S)}})
    chosen = ("name", "operation", "group", "operators", "threshold", "dkg_seed", "aad", "plaintext", "context",
              "r", "s")
    out = {k: v[k] for k in chosen}
    out.update({
        "dkg_draws": r.draws,
        "group_public_key": se(r.group.group_public_key),
        "secret_shares": [ss(kp.secret_share) for kp in r.keys],
        "verifying_shares": [se(r.group.verifying_shares[j]) for j in range(1, v["operators"] + 1)],
        "sealed": blob.hex(),
        "shares": [{"identifier": s["identifier"], "k": s["k"], "share": w.share.wire().hex()}
                   for s, w in zip(v["shares"], r.works)],
        "opened": r.combination.plaintext.hex(),
        "roles": roles,
    })
    return out


def leaves(x: Any, path: str = "$") -> dict[str, Any]:
    """Every scalar value of a JSON tree by its path (to count and name matches)."""
    if isinstance(x, dict):
        return {p: y for k, v in x.items() for p, y in leaves(v, f"{path}.{k}").items()}
    if isinstance(x, list):
        return {p: y for i, v in enumerate(x) for p, y in leaves(v, f"{path}[{i}]").items()}
    return {path: x}


def change_bytes(data: bytes, change: dict) -> bytes:
    """Section 10: truncate, flip, append, replace."""
    if "truncate" in change:
        return data[:change["truncate"]]
    if "flip" in change:
        i = change["flip"]
        return data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
    if "append" in change:
        return data + h(change["append"])
    if "replace" in change:
        i, new = change["replace"]
        return data[:i] + h(new) + data[i + len(h(new)):]
    raise KeyError(f"no byte change in {change}")


def refuse(v: dict) -> None:
    """Section 10 `refuse`: the first open vector's inputs, the target step, the change; the step must raise."""
    keys, group, _ = key_of(v)
    aad, context = h(v["aad"]), h(v["context"])
    blob = seal_with_randomness(encode(group.group_public_key), aad, h(v["plaintext"]),
                                hexint(v["r"]), hexint(v["s"])).blob()
    wires = [decryption_share_with_nonce(keys[s["identifier"] - 1], blob, aad, context, hexint(s["k"])).share.wire()
             for s in v["shares"]]
    ids = [s["identifier"] for s in v["shares"]]
    target, change = v["target"], v["change"]
    if target == "check_sealed":
        check_sealed(change_bytes(blob, change), aad)
    elif target == "check_sealed_label":
        check_sealed(blob, change_bytes(aad, change))
    elif target == "share_decode":
        decode_share(ids[0], change_bytes(wires[0], change))
    elif target == "verify_share":
        verify_decryption_share(group, blob, context, decode_share(ids[0], change_bytes(wires[0], change)))
    elif target == "verify_share_context":
        verify_decryption_share(group, blob, change_bytes(context, change), decode_share(ids[0], wires[0]))
    elif target == "combine":
        shares = [decode_share(i, w) for i, w in zip(ids, wires)]
        chosen = shares[:change["shares"]] if "shares" in change else [shares[0], shares[0]]
        combine(group, blob, aad, context, chosen)
    else:
        raise KeyError(f"unknown target {target}")


# The check each flag names (the file's notes): a refusal counts only when raised by that check.  A flipped byte of
# R2 (sealed-R2-tampered, DecodeError) fails DeserializeElement (section 4.3), a flipped proof byte the proof check.
FLAG_CHECKS = {
    "Truncated": {"length"},
    "TrailingBytes": {"length"},
    "NonCanonical": {"canonical", "scalar range"},
    "Tampered": {"seal proof", "dleq proof", "canonical", "on curve", "identity", "subgroup"},
    "WrongLabel": {"seal proof"},
    "WrongContext": {"dleq proof"},
    "TooFewShares": {"threshold"},
    "DuplicateShare": {"duplicate"},
}


def vectors(operation: str) -> list[dict]:
    return [v for v in VECTORS["vectors"] if v["operation"] == operation]


# --- tests ----------------------------------------------------------------------------------------------------------


def test_second_generator_is_the_one_section_3_4_prints() -> None:
    """Section 3.4: ctr = 0 and 1 do not decode, ctr = 2 gives the printed B2, in the prime-order subgroup."""
    ctr, b2 = derive_second_generator()
    assert ctr == 2
    assert encode(b2).hex() == B2_SPEC
    assert deserialize_element(encode(b2)) is not None


def test_base_point_and_arithmetic() -> None:
    """RFC 8032: [L]B is the identity, B's encoding round-trips, RFC 8032 7.1 TEST 1's public key is [a]B."""
    assert is_identity(mul(L, B)) and not is_identity(B)
    assert encode(decode(encode(B))) == encode(B)
    seed = h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] = (digest[31] & 127) | 64
    assert encode(mul(int.from_bytes(digest, "little"), B)).hex() == \
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


@pytest.mark.parametrize("v", vectors("open"), ids=lambda v: v["name"])
def test_open_vector_from_spec(v: dict) -> None:
    """Section 10 `open`: every field of the vector, chosen and computed, equals this implementation's."""
    mine = leaves(computed_fields(v, run(v)))
    theirs = leaves(v)
    assert mine.keys() == theirs.keys(), sorted(mine.keys() ^ theirs.keys())
    wrong = [p for p in theirs if mine[p] != theirs[p]]
    print(f"\n{v['name']}: {len(theirs) - len(wrong)} of {len(theirs)} values reproduced")
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("v", vectors("refuse"), ids=lambda v: v["name"])
def test_refuse_vector_from_spec(v: dict) -> None:
    """Section 10 `refuse` / conventions 4.6: the step fails with exactly the named error, for the flag's reason."""
    assert v["result"] == "invalid"
    with pytest.raises(UsappError) as caught:
        refuse(v)
    assert type(caught.value).__name__ == v["error"], (type(caught.value).__name__, str(caught.value))
    for flag in v["flags"]:
        assert flag in VECTORS["notes"]
        assert caught.value.check in FLAG_CHECKS[flag], (flag, caught.value.check, str(caught.value))


def test_refuse_vectors_share_the_first_open_vectors_inputs() -> None:
    """Section 10: a refuse vector carries the inputs of the first open vector."""
    first = vectors("open")[0]
    for v in vectors("refuse"):
        for k in ("group", "operators", "threshold", "dkg_seed", "aad", "plaintext", "context", "r", "s", "shares"):
            assert v[k] == first[k], (v["name"], k)


def test_every_vector_is_checked() -> None:
    """The count: 3 open (valid) and 16 refuse (invalid) vectors, nothing else in the file."""
    kinds = [(v["operation"], v.get("result", "valid")) for v in VECTORS["vectors"]]
    assert kinds.count(("open", "valid")) == 3
    assert kinds.count(("refuse", "invalid")) == 16
    assert len(kinds) == 19
    assert VECTORS["suite"] == SUITE and VECTORS["protocol"] == "threshold-elgamal"


@dataclass
class Replay:
    """Conventions 3.4 ReplayRandom: one recorded string per call, of the asked length."""

    draws: list[bytes]
    position: int = 0

    def random_bytes(self, n: int) -> bytes:
        if self.position >= len(self.draws) or len(self.draws[self.position]) != n:
            raise AssertionError("replay exhausted or asked for another length")
        self.position += 1
        return self.draws[self.position - 1]


@pytest.mark.parametrize("v", vectors("open"), ids=lambda v: v["name"])
def test_the_listed_dkg_draws_alone_give_the_key(v: dict) -> None:
    """Conventions 4.3 / section 10: replaying `dkg_draws` (no DRBG) consumes every draw and gives the same key."""
    rng = Replay([h(d["hex"]) for d in v["dkg_draws"]])
    keys, group, log = operator_ceremony(v["operators"], v["threshold"], h(v["group"]), rng)
    assert rng.position == len(rng.draws)
    assert log == v["dkg_draws"]
    assert encode(group.group_public_key).hex() == v["group_public_key"]
    assert [serialize_scalar(kp.secret_share).hex() for kp in keys] == v["secret_shares"]


def test_any_t_of_n_open_and_fewer_do_not() -> None:
    """Section 7: every t-subset (and the whole set) of the 3-of-5 run's authorities opens the blob to the same
    plaintext and S = [x]R with [x]B = X (x interpolated from the secret shares, section 7.1); t - 1 is a
    RecoveryError."""
    from itertools import combinations
    v = next(x for x in vectors("open") if x["operators"] == 5)
    keys, group, _ = key_of(v)
    aad, context = h(v["aad"]), h(v["context"])
    blob = h(v["sealed"])
    shares = {kp.identifier: decryption_share_with_nonce(kp, blob, aad, context, 1000 + kp.identifier).share
              for kp in keys}
    ids = list(shares)
    x = sum(interpolating_value(ids, i) * keys[i - 1].secret_share for i in ids) % L
    assert encode(mul(x, B)) == encode(group.group_public_key)
    S = encode(mul(x, parse_sealed(blob).R))
    for subset in [*combinations(ids, 3), tuple(ids)]:
        got = combine(group, blob, aad, context, [shares[i] for i in subset])
        assert (got.plaintext.hex(), encode(got.S)) == (v["plaintext"], S)
    with pytest.raises(RecoveryError):
        combine(group, blob, aad, context, [shares[1], shares[5]])


def test_deserialize_element_refuses_identity_small_and_mixed_order() -> None:
    """frost.md 3.2 via threshold_elgamal.md 4.3: identity, a small-order point, a mixed-order point and y >= p
    are each a DecodeError from their own check."""
    small = decode(h("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))  # y = -1: order 2
    assert small is not None
    cases = {"identity": encode(IDENTITY), "subgroup": encode(small),
             "canonical": h("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")}
    cases["mixed"] = encode(add(B2, small))
    for why, buf in cases.items():
        with pytest.raises(DecodeError) as caught:
            deserialize_element(buf)
        assert caught.value.check == ("subgroup" if why == "mixed" else why), why
