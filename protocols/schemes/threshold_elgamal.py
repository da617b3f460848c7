"""Threshold ElGamal decryption over edwards25519, for the escrow's sealed links.

The spec is specs/threshold_elgamal.md; the escrow that uses it is
specs/escrow.md section 8.  The key is the authorities' FROST key, made with
the distributed key generation of specs/frost.md section 7
(:func:`protocols.schemes.frost.dkg_part1` .. ``dkg_part3``): participant i's
:class:`~protocols.schemes.frost.KeyPackage` holds x_i and X_i = [x_i]B, the
:class:`~protocols.schemes.frost.PublicKeyPackage` holds the group key
X = [x]B and every X_i.  No party ever holds x.

Layout follows the spec:

* section 3, the suite: :data:`SUITE`, :data:`DOMAIN`, :func:`lp`;
* section 4, labelled sealing (hybrid ElGamal, HKDF-SHA256, ChaCha20-Poly1305,
  with the TDH2 proof of well-formedness of Shoup and Gennaro that binds the
  label ``aad``): :func:`seal`, :func:`seal_with_randomness`,
  :func:`derive_key`, :data:`B2` (section 3.4), :func:`seal_challenge`,
  :func:`check_sealed` (section 4.4);
* section 5, decryption shares with a Chaum-Pedersen DLEQ proof:
  :class:`DecryptionShare`, :func:`dleq_challenge`, :func:`nonce_generate`,
  :func:`decryption_share`, :func:`decryption_share_with_nonce`;
* section 6, :func:`verify_decryption_share`;
* section 7, :func:`combine`; and :func:`open_with_secret` (7.1) for tests.

Randomness is injected (``rng``, ``None`` meaning the OS CSPRNG); every
function whose output a vector pins takes its randomness explicitly
(:func:`seal_with_randomness` takes r and s, :func:`decryption_share_with_nonce`,
:func:`nonce_generate_from_randomness`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from protocols.errors import DecodeError, ParameterError, RecoveryError, VerificationError
from protocols.primitives import ed25519 as G
from protocols.primitives import hashing
from protocols.primitives.aead import ChaCha20Poly1305
from protocols.primitives.ed25519 import Element
from protocols.primitives.rand import RandomSource, resolve
from protocols.schemes import frost

SUITE = "usapp-threshold-elgamal-edwards25519-v1"
"""The suite identifier (spec section 3)."""

DOMAIN = SUITE.encode("ascii")
"""The domain-separation prefix of every hash, KDF and AEAD input: the suite name in ASCII."""

DLEQ_LABEL = b"dleq"
"""Label of the DLEQ challenge hash (spec section 5.2)."""

NONCE_LABEL = b"nonce"
"""Label of the hedged proof-nonce derivation (spec section 5.3)."""

SEAL_LABEL = b"seal"
"""Label of the well-formedness challenge of a sealed blob (spec section 4.2, step 5)."""

GENERATOR_LABEL = b"generator"
"""Label of the derivation of the second generator B2 (spec section 3.4)."""

KEY_BYTES = 32
"""Length of the AEAD key derived by HKDF-SHA256 (spec section 4.1)."""

NONCE = bytes(12)
"""The AEAD nonce: 12 zero bytes.  Safe because each key is used once (a fresh r per seal)."""

TAG_BYTES = 16
"""Length of the ChaCha20-Poly1305 tag."""

HEADER_BYTES = 2 * G.Ne + 2 * G.Ns
"""The sealed blob's header: SerializeElement(R) || SerializeElement(R2) || SerializeScalar(e) ||
SerializeScalar(f), 128 bytes (spec section 3.2)."""

SEALED_MIN_BYTES = HEADER_BYTES + TAG_BYTES
"""The shortest sealed blob: the header and a tag (an empty plaintext), 144 bytes."""

MAX_INPUT_BYTES = 1 << 20
"""Longest plaintext, aad or context accepted (1 MiB; spec section 4.3, limits),
checked before any hashing or decryption."""

SEALED_MAX_BYTES = SEALED_MIN_BYTES + MAX_INPUT_BYTES
"""The longest sealed blob: the header, a MAX_INPUT_BYTES plaintext and the tag."""

SHARE_BYTES = G.Ne + 2 * G.Ns
"""Wire size of a :class:`DecryptionShare`: D || c || z, 96 bytes."""


# ---------------------------------------------------------------------------
# Section 3: encodings and input checks
# ---------------------------------------------------------------------------


def _bytes(value: object, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise ParameterError(f"{name} must be bytes")
    if len(value) > MAX_INPUT_BYTES:
        raise ParameterError(f"{name} is longer than {MAX_INPUT_BYTES} bytes")
    return bytes(value)


def lp(data: bytes) -> bytes:
    """Spec section 3.2: I2OSP(len(data), 8) || data (an 8-byte big-endian length prefix)."""
    data = _bytes(data, "lp input")
    return len(data).to_bytes(8, "big") + data




def _valid_element(value: object, name: str) -> Element:
    """An Element re-checked through DeserializeElement (an Element can be
    built from unchecked bytes); ParameterError if it is not a non-identity
    point of the prime-order subgroup."""
    if not isinstance(value, Element):
        raise ParameterError(f"{name} must be an Element")
    try:
        return G.DeserializeElement(value.encoding)
    except DecodeError as exc:
        raise ParameterError(f"{name} is not a valid element: {exc}") from None


@dataclass(frozen=True)
class _Sealed:
    R: Element
    R2: Element
    e: int
    f: int
    ct: bytes


def _parse_sealed(sealed: object) -> _Sealed:
    """Spec section 4.3: split R || R2 || e || f || ct and validate each part.
    DecodeError for a non-bytes input, a blob shorter than 144 bytes, an R or
    R2 that is not a canonical non-identity element of the prime-order
    subgroup, or an e or f that is not reduced mod L."""
    if not isinstance(sealed, (bytes, bytearray)):
        raise DecodeError("sealed ciphertext must be bytes")
    sealed = bytes(sealed)
    if not SEALED_MIN_BYTES <= len(sealed) <= SEALED_MAX_BYTES:
        raise DecodeError(f"sealed ciphertext must be {SEALED_MIN_BYTES} to {SEALED_MAX_BYTES} bytes, "
                          f"got {len(sealed)}")
    return _Sealed(G.DeserializeElement(sealed[:32]), G.DeserializeElement(sealed[32:64]),
                   G.DeserializeScalar(sealed[64:96]), G.DeserializeScalar(sealed[96:128]), sealed[HEADER_BYTES:])


# ---------------------------------------------------------------------------
# Section 3.4: the second generator
# ---------------------------------------------------------------------------


def _edwards_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """The complete twisted Edwards addition law of edwards25519 (a = -1), affine (RFC 8032 section 5.1.4)."""
    (x1, y1), (x2, y2) = a, b
    t = G.D * x1 * x2 * y1 * y2 % G.P
    return ((x1 * y2 + y1 * x2) * pow(1 + t, -1, G.P) % G.P, (y1 * y2 + x1 * x2) * pow(1 - t, -1, G.P) % G.P)


def derive_second_generator() -> Element:
    """Spec section 3.4: for ctr = 0, 1, ..., 255: h = SHA-512(DOMAIN || "generator" ||
    I2OSP(ctr, 1))[:32]; if h decodes (RFC 8032 section 5.1.3) to a point P, return [8]P unless it
    is the identity.  Nobody knows log_B(B2).  (ctr = 2 is the first that decodes.)"""
    for ctr in range(256):
        h = hashing.sha512(DOMAIN + GENERATOR_LABEL + bytes([ctr])).digest()[:32]
        try:
            point = G._decode_rfc8032(h)
        except DecodeError:
            continue
        for _ in range(3):
            point = _edwards_add(point, point)
        if point != (0, 1):
            return G.DeserializeElement((point[1] | (point[0] & 1) << 255).to_bytes(32, "little"))
    raise ParameterError("no second generator found")  # pragma: no cover - ctr = 2 succeeds


B2 = derive_second_generator()
"""The second generator of spec section 3.4, fixed by the suite."""


# ---------------------------------------------------------------------------
# Section 4: sealing
# ---------------------------------------------------------------------------


def derive_key(S: Element, R: Element, aad: bytes) -> bytes:
    """Spec section 4.1: HKDF-SHA256(IKM = SerializeElement(S), salt =
    SerializeElement(R), info = DOMAIN || lp(aad), L = 32) [RFC 5869]."""
    aad = _bytes(aad, "aad")
    if not isinstance(S, Element) or S.is_identity():
        raise VerificationError("shared element is the identity")
    return hashing.hkdf_sha256(G.SerializeElement(S), KEY_BYTES, salt=G.SerializeElement(R), info=DOMAIN + lp(aad))


def _aead_aad(R: Element, aad: bytes) -> bytes:
    """Spec section 4.2: the AEAD's associated data, DOMAIN || lp(aad) || SerializeElement(R)."""
    return DOMAIN + lp(aad) + G.SerializeElement(R)


def seal_challenge(aad: bytes, ct: bytes, R: Element, W: Element, R2: Element, W2: Element) -> int:
    """Spec section 4.2 step 5: e = SHA-512(DOMAIN || "seal" || lp(aad) || lp(ct) ||
    SerializeElement(R) || SerializeElement(W) || SerializeElement(R2) || SerializeElement(W2)),
    read as a little-endian integer, mod L (TDH2's H2 with the label aad)."""
    aad, ct = _bytes(aad, "aad"), _bytes(ct, "ct")
    return _H(DOMAIN + SEAL_LABEL + lp(aad) + lp(ct) + G.SerializeElement(R) + G.SerializeElement(W)
              + G.SerializeElement(R2) + G.SerializeElement(W2))


def seal_with_randomness(public_key: Element, aad: bytes, plaintext: bytes, r: int, s: int) -> bytes:
    """Spec section 4.2, Seal, with its ephemeral scalar r and proof nonce s, both in [1, L - 1],
    passed in: R = [r]B, S = [r]X, key = :func:`derive_key`, ct = ChaCha20-Poly1305(key, NONCE,
    plaintext, DOMAIN || lp(aad) || SerializeElement(R)); R2 = [r]B2, W = [s]B, W2 = [s]B2,
    e = :func:`seal_challenge`, f = s + r e mod L; returns R || R2 || e || f || ct.
    r and s MUST be fresh and secret for every seal."""
    if isinstance(public_key, (bytes, bytearray)):
        X = G.DeserializeElement(public_key)  # a serialised key is decoded (DecodeError)
    else:
        X = _valid_element(public_key, "public_key")
    aad = _bytes(aad, "aad")
    plaintext = _bytes(plaintext, "plaintext")
    r = G.check_scalar(r, "r", nonzero=True)
    s = G.check_scalar(s, "s", nonzero=True)
    R = G.ScalarBaseMult(r)
    S = G.ScalarMult(X, r)
    key = derive_key(S, R, aad)
    try:
        ct = ChaCha20Poly1305(key).encrypt(NONCE, plaintext, _aead_aad(R, aad))
    except (OverflowError, ValueError) as exc:
        raise ParameterError(f"plaintext or aad too long for ChaCha20-Poly1305 ({type(exc).__name__})") from None
    R2 = G.ScalarMult(B2, r)
    e = seal_challenge(aad, ct, R, G.ScalarBaseMult(s), R2, G.ScalarMult(B2, s))
    f = (s + r * e) % G.L
    return G.SerializeElement(R) + G.SerializeElement(R2) + G.SerializeScalar(e) + G.SerializeScalar(f) + ct


def _nonzero_scalar(source: RandomSource) -> int:
    k = G.RandomScalar(source)
    while k == 0:  # probability 1/L
        k = G.RandomScalar(source)
    return k


def seal(public_key: Element, aad: bytes, plaintext: bytes, rng: RandomSource | None = None) -> bytes:
    """Spec section 4.2, Seal: r = RandomScalar(rng), then s = RandomScalar(rng), each redrawn
    while 0, then :func:`seal_with_randomness`."""
    source = resolve(rng)
    r = _nonzero_scalar(source)
    s = _nonzero_scalar(source)
    return seal_with_randomness(public_key, aad, plaintext, r, s)


def _check(sealed: object, aad: bytes) -> _Sealed:
    parts = _parse_sealed(sealed)
    W = G.ScalarBaseMult(parts.f) - G.ScalarMult(parts.R, parts.e)
    W2 = G.ScalarMult(B2, parts.f) - G.ScalarMult(parts.R2, parts.e)
    if W.is_identity() or W2.is_identity() or seal_challenge(aad, parts.ct, parts.R, W, parts.R2, W2) != parts.e:
        raise VerificationError("sealed ciphertext is not well formed for this aad (its label): "
                                "the proof log_B(R) = log_B2(R2) does not verify")
    return parts


def check_sealed(sealed: bytes, aad: bytes) -> None:
    """Spec section 4.4: parse the blob (DecodeError) and check its proof of well-formedness under
    the label ``aad``: W = [f]B - [e]R, W2 = [f]B2 - [e]R2, neither the identity, and
    e == :func:`seal_challenge` (VerificationError otherwise)."""
    _check(sealed, _bytes(aad, "aad"))


def _open(S: Element, R: Element, ct: bytes, aad: bytes) -> bytes:
    key = derive_key(S, R, aad)
    try:
        return ChaCha20Poly1305(key).decrypt(NONCE, ct, _aead_aad(R, aad))
    except InvalidTag:
        raise VerificationError("sealed ciphertext does not open (wrong key, aad or a modified ciphertext)") from None
    except (OverflowError, ValueError) as exc:
        raise DecodeError(f"sealed ciphertext cannot be processed ({type(exc).__name__})") from None


def open_with_secret(secret: int, sealed: bytes, aad: bytes) -> bytes:
    """Spec section 7.1: check the blob (section 4.4), then open with the whole secret x
    (S = [x]R).  For tests and for a single-holder key; the authorities never hold x."""
    secret = G.check_scalar(secret, "secret", nonzero=True)
    aad = _bytes(aad, "aad")
    parts = _check(sealed, aad)
    return _open(G.ScalarMult(parts.R, secret), parts.R, parts.ct, aad)


# ---------------------------------------------------------------------------
# Section 5: decryption shares and the DLEQ proof
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DecryptionShare:
    """Participant ``identifier``'s decryption share D_i = [x_i]R with its
    DLEQ proof (c, z) (spec section 5.1).  Wire form (96 bytes):
    SerializeElement(D) || SerializeScalar(c) || SerializeScalar(z), the
    identifier known from the authenticated channel."""

    identifier: int
    D: Element
    c: int
    z: int

    def __post_init__(self) -> None:
        frost.check_identifier(self.identifier)
        _valid_element(self.D, "D")
        G.check_scalar(self.c, "c")
        G.check_scalar(self.z, "z")

    def to_bytes(self) -> bytes:
        return G.SerializeElement(self.D) + G.SerializeScalar(self.c) + G.SerializeScalar(self.z)

    @classmethod
    def from_bytes(cls, identifier: int, data: bytes) -> DecryptionShare:
        """Decode D || c || z (DecodeError for a wrong length, an invalid D or
        an unreduced scalar; ParameterError for an identifier that is not in [1, L - 1])."""
        frost.check_identifier(identifier)
        if not isinstance(data, (bytes, bytearray)):
            raise DecodeError("decryption share must be bytes")
        data = bytes(data)
        if len(data) != SHARE_BYTES:
            raise DecodeError(f"decryption share must be {SHARE_BYTES} bytes, got {len(data)}")
        return cls(identifier, G.DeserializeElement(data[:32]), G.DeserializeScalar(data[32:64]),
                   G.DeserializeScalar(data[64:96]))


def _H(m: bytes) -> int:
    return int.from_bytes(hashing.sha512(m).digest(), "little") % G.L


def dleq_challenge(identifier: int, X_i: Element, R: Element, D: Element, A1: Element, A2: Element,
                   context: bytes) -> int:
    """Spec section 5.2: c = SHA-512(DOMAIN || "dleq" || SerializeScalar(i) ||
    SerializeElement(X_i) || SerializeElement(R) || SerializeElement(D_i) ||
    SerializeElement(A1) || SerializeElement(A2) || lp(context)), read as a
    little-endian integer, mod L.  No element may be the identity (ParameterError)."""
    i = frost.check_identifier(identifier)
    context = _bytes(context, "context")
    return _H(DOMAIN + DLEQ_LABEL + G.SerializeScalar(i) + G.SerializeElement(X_i) + G.SerializeElement(R)
              + G.SerializeElement(D) + G.SerializeElement(A1) + G.SerializeElement(A2) + lp(context))


def nonce_generate_from_randomness(secret: int, random_bytes: bytes) -> int:
    """Spec section 5.3: the hedged proof nonce
    k = SHA-512(DOMAIN || "nonce" || random_bytes || SerializeScalar(x_i)) mod L,
    from 32 random bytes (as RFC 9591 section 4.1 does for FROST's nonces)."""
    secret = G.check_scalar(secret, "secret")
    random_bytes = _bytes(random_bytes, "random_bytes")
    if len(random_bytes) != 32:
        raise ParameterError("nonce_generate needs exactly 32 random bytes")
    return _H(DOMAIN + NONCE_LABEL + random_bytes + G.SerializeScalar(secret))


def nonce_generate(secret: int, rng: RandomSource | None = None) -> int:
    """Spec section 5.3: draw 32 bytes from ``rng`` and derive k; redraw while k = 0."""
    source = resolve(rng)
    while True:
        k = nonce_generate_from_randomness(secret, source.random_bytes(32))
        if k != 0:  # probability 1/L
            return k


def _check_key_package(key_package: object) -> frost.KeyPackage:
    if not isinstance(key_package, frost.KeyPackage):
        raise ParameterError("key_package must be a frost.KeyPackage")
    return key_package


def decryption_share_with_nonce(key_package: frost.KeyPackage, sealed: bytes, aad: bytes, context: bytes,
                                k: int) -> DecryptionShare:
    """Spec section 5.4, with the proof nonce k in [1, L - 1] passed in: first the blob's
    well-formedness under the label ``aad`` (section 4.4; no share for a blob that fails it), then
    D_i = [x_i]R, A1 = [k]B, A2 = [k]R, c = :func:`dleq_challenge`, z = k + c x_i mod L.
    k MUST be fresh and secret."""
    key_package = _check_key_package(key_package)
    aad = _bytes(aad, "aad")
    context = _bytes(context, "context")
    k = G.check_scalar(k, "k", nonzero=True)
    R = _check(sealed, aad).R
    i, x_i = key_package.identifier, key_package.secret_share
    D = G.ScalarMult(R, x_i)
    A1 = G.ScalarBaseMult(k)
    A2 = G.ScalarMult(R, k)
    c = dleq_challenge(i, key_package.verifying_share, R, D, A1, A2, context)
    return DecryptionShare(i, D, c, (k + c * x_i) % G.L)


def decryption_share(key_package: frost.KeyPackage, sealed: bytes, aad: bytes, context: bytes,
                     rng: RandomSource | None = None) -> DecryptionShare:
    """Spec section 5.4: participant i's decryption share of ``sealed``, labelled ``aad``, for the
    request ``context`` (k from :func:`nonce_generate`)."""
    key_package = _check_key_package(key_package)
    return decryption_share_with_nonce(key_package, sealed, aad, context,
                                       nonce_generate(key_package.secret_share, rng))


# ---------------------------------------------------------------------------
# Section 6: verification
# ---------------------------------------------------------------------------


def _check_group_info(group_info: object) -> frost.PublicKeyPackage:
    if not isinstance(group_info, frost.PublicKeyPackage):
        raise ParameterError("group_info must be a frost.PublicKeyPackage")
    return group_info


def _verify(group_info: frost.PublicKeyPackage, R: Element, context: bytes, share: object) -> DecryptionShare:
    if not isinstance(share, DecryptionShare):
        raise ParameterError("share must be a DecryptionShare")
    i = share.identifier
    X_i = _valid_element(group_info.public_key(i), f"public key of participant {i}")
    D = _valid_element(share.D, f"D of participant {i}")
    A1 = G.ScalarBaseMult(share.z) - G.ScalarMult(X_i, share.c)
    A2 = G.ScalarMult(R, share.z) - G.ScalarMult(D, share.c)
    if A1.is_identity() or A2.is_identity():
        raise VerificationError(f"participant {i}: decryption share proof does not verify")
    if dleq_challenge(i, X_i, R, D, A1, A2, context) != share.c:
        raise VerificationError(f"participant {i}: decryption share proof does not verify")
    return share


def verify_decryption_share(group_info: frost.PublicKeyPackage, sealed: bytes, context: bytes,
                            share: DecryptionShare) -> None:
    """Spec section 6: recompute A1 = [z]B - [c]X_i and A2 = [z]R - [c]D_i and
    check c == dleq_challenge(i, X_i, R, D_i, A1, A2, context).
    VerificationError naming participant i if not; ParameterError for an
    identifier outside [1, MAX_PARTICIPANTS]; DecodeError for a bad ``sealed``."""
    group_info = _check_group_info(group_info)
    context = _bytes(context, "context")
    _verify(group_info, _parse_sealed(sealed).R, context, share)


# ---------------------------------------------------------------------------
# Section 7: combination
# ---------------------------------------------------------------------------


def combine(group_info: frost.PublicKeyPackage, sealed: bytes, aad: bytes, context: bytes,
            shares: Sequence[DecryptionShare]) -> bytes:
    """Spec section 7: check the blob under the label ``aad`` (section 4.4), then every share (a
    duplicate identifier is a VerificationError, a bad proof a VerificationError naming its participant),
    require at least MIN_PARTICIPANTS of them (RecoveryError), then
    S = sum_i [lambda_i]D_i over the identifiers given, derive the key and open
    (VerificationError if the ciphertext does not open)."""
    group_info = _check_group_info(group_info)
    aad = _bytes(aad, "aad")
    context = _bytes(context, "context")
    if isinstance(shares, (bytes, bytearray, str)) or not isinstance(shares, Sequence):
        raise ParameterError("shares must be a sequence of DecryptionShare")
    parts = _check(sealed, aad)
    R, ct = parts.R, parts.ct
    seen: dict[int, DecryptionShare] = {}
    for share in shares:
        if not isinstance(share, DecryptionShare):
            raise ParameterError("shares must be a sequence of DecryptionShare")
        frost.check_identifier(share.identifier, group_info.MAX_PARTICIPANTS)
        if share.identifier in seen:
            raise VerificationError(f"participant {share.identifier}: more than one decryption share")
        seen[share.identifier] = _verify(group_info, R, context, share)
    if len(seen) < group_info.MIN_PARTICIPANTS:
        raise RecoveryError(f"{len(seen)} valid decryption shares, {group_info.MIN_PARTICIPANTS} needed")
    identifiers = sorted(seen)
    S = G.Identity()
    for i in identifiers:
        S = S + G.ScalarMult(seen[i].D, frost.derive_interpolating_value(identifiers, i))
    if S.is_identity():
        raise VerificationError("combined decryption shares give the identity (inconsistent group info)")
    return _open(S, R, ct, aad)
