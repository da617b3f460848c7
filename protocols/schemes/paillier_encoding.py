"""Plaintext encodings for Paillier: numbers, packed slots, phe's JSON (specs/paillier.md section 8-10).

- Section 8, signed and fixed-point numbers: :class:`EncodedNumber` and
  :class:`EncryptedNumber`, the same encoding python-paillier (``phe``) uses
  (value = mantissa * 16^exponent, mantissa stored mod n, magnitudes up to
  n // 3 - 1), so numbers move between the two libraries unchanged.
- Section 9, slot packing: :class:`PackingLayout` and :class:`PackedCiphertext`,
  K unsigned readings of b bits per ciphertext with headroom for M summands.
- Section 10, phe JSON: :func:`to_phe_json` and :func:`from_phe_json` for
  phe's JWK-style keys and its encrypted-number serialisations.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeGuard

from gmpy2 import mpz

from protocols.errors import (
    DecodeError,
    EncodingOverflowError,
    InvalidCiphertextError,
    KeyMismatchError,
    ParameterError,
)
from protocols.primitives.rand import RandomSource
from protocols.schemes.paillier import (
    MAX_MODULUS_BITS,
    MIN_MODULUS_BITS,
    Ciphertext,
    FastEncryptor,
    PrivateKey,
    PublicKey,
    RandomiserPool,
)

BASE = 16
"""phe's EncodedNumber.BASE: value = mantissa * BASE^exponent (spec 8.1)."""
LOG2_BASE = 4
FLOAT_MANTISSA_BITS = 53

MAX_EXPONENT_MAGNITUDE = 1024
"""Largest |exponent| of an encoded or encrypted number (spec 7.3, limits; 8.1):
a float's exponent lies in [-282, 243], so 1024 leaves room for ``precision``
and ``max_exponent`` while 16^|e| stays below 2^4096 (no 16^(10^11))."""

MAX_PHE_JSON_CHARS = 1 << 24
"""Longest phe JSON document :func:`from_phe_json` parses (spec 7.3, limits; 10)."""

MAX_B64URL_CHARS = 4 * ((MAX_MODULUS_BITS + 7) // 8 + 2) // 3
"""Longest base64url integer field of a phe JWK: one of MAX_MODULUS_BITS bits (spec 7.3)."""


def _check_exponent(exponent: object, error: type[ParameterError] | type[DecodeError] = ParameterError) -> int:
    """An int (not a bool) with |exponent| <= MAX_EXPONENT_MAGNITUDE (spec 8.1)."""
    if not _is_int(exponent):
        raise error("an exponent must be an integer")
    if not -MAX_EXPONENT_MAGNITUDE <= exponent <= MAX_EXPONENT_MAGNITUDE:
        raise error(f"an exponent must be in [-{MAX_EXPONENT_MAGNITUDE}, {MAX_EXPONENT_MAGNITUDE}]")
    return int(exponent)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, (int, type(mpz()))) and not isinstance(value, bool)


# ---------------------------------------------------------------------------
# Section 8: signed and fixed-point numbers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedNumber:
    """A number encoded as a Paillier plaintext (spec 8.1).

    ``encoding`` is mantissa mod n and ``exponent`` its power of 16; a
    mantissa in [0, max_int] is positive, in [n - max_int, n) negative, and in
    between the value has overflowed.
    """

    public_key: PublicKey
    encoding: mpz = field(repr=False)
    exponent: int

    def __post_init__(self) -> None:
        _check_exponent(self.exponent)

    @classmethod
    def encode(cls, public_key: PublicKey, scalar: int | float, *,
               precision: float | None = None, max_exponent: int | None = None) -> EncodedNumber:
        """Spec 8.2.  Integers get exponent 0; floats the exponent that keeps
        all 53 mantissa bits (floor((frexp exponent - 53) / 4)); with
        ``precision`` the exponent is floor(log_16(precision)); ``max_exponent``
        caps it.  The mantissa is round(scalar * 16^-exponent)."""
        if _is_int(scalar):
            exponent = 0
        elif isinstance(scalar, float):
            if not math.isfinite(scalar):
                raise ParameterError("cannot encode a non-finite float")
            exponent = math.floor((math.frexp(scalar)[1] - FLOAT_MANTISSA_BITS) / LOG2_BASE)
        else:
            raise ParameterError(f"cannot encode a value of type {type(scalar).__name__}")
        if precision is not None:
            if not isinstance(precision, (int, float)) or isinstance(precision, bool) or not 0 < precision < math.inf:
                raise ParameterError("precision must be a positive number")
            exponent = math.floor(math.log(precision, BASE))
        if max_exponent is not None:
            exponent = min(_check_exponent(max_exponent), exponent)
        _check_exponent(exponent)
        mantissa = round(Fraction(scalar) * Fraction(BASE) ** -exponent)
        if abs(mantissa) > public_key.max_int:
            raise EncodingOverflowError(
                "number too large to encode: its mantissa exceeds n // 3 - 1 in magnitude"
            )
        return cls(public_key, mpz(mantissa % public_key.n), exponent)

    def mantissa(self) -> mpz:
        """Spec 8.3: the signed mantissa, or EncodingOverflowError."""
        n, max_int = self.public_key.n, self.public_key.max_int
        if not 0 <= self.encoding < n:
            raise DecodeError("encoded number is not reduced modulo n")
        if self.encoding <= max_int:
            return self.encoding
        if self.encoding >= n - max_int:
            return self.encoding - n
        raise EncodingOverflowError("overflow detected in decrypted number")

    def decode(self) -> int | float:
        """Spec 8.3: mantissa * 16^exponent; an int when exponent >= 0, else a float."""
        mantissa = int(self.mantissa())
        if self.exponent >= 0:
            return mantissa * BASE ** self.exponent
        try:
            return mantissa / BASE ** -self.exponent
        except OverflowError as exc:  # float range
            raise EncodingOverflowError("decoded number is too large for a float") from exc

    def decrease_exponent_to(self, new_exponent: int) -> EncodedNumber:
        """Spec 8.4: same value, smaller exponent (mantissa * 16^(e - e'))."""
        _check_exponent(new_exponent)
        if new_exponent > self.exponent:
            raise ParameterError("the exponent can only be decreased")
        factor = BASE ** (self.exponent - new_exponent)
        mantissa = self.mantissa() * factor
        if abs(mantissa) > self.public_key.max_int:
            raise EncodingOverflowError("exponent decrease overflows: mantissa would exceed n // 3 - 1")
        return EncodedNumber(self.public_key, mantissa % self.public_key.n, new_exponent)


@dataclass(frozen=True)
class EncryptedNumber:
    """An encrypted :class:`EncodedNumber`: a ciphertext and its (public) exponent."""

    ciphertext: Ciphertext
    exponent: int

    def __post_init__(self) -> None:
        _check_exponent(self.exponent)

    @property
    def public_key(self) -> PublicKey:
        return self.ciphertext.public_key

    def decrease_exponent_to(self, new_exponent: int) -> EncryptedNumber:
        if new_exponent > self.exponent:
            raise ParameterError("the exponent can only be decreased")
        factor = BASE ** (self.exponent - new_exponent)
        if factor > self.public_key.max_int:
            # phe refuses this too: the factor itself would wrap modulo n.
            raise EncodingOverflowError("exponent decrease too large: 16^(e - e') exceeds n // 3 - 1")
        return EncryptedNumber(self.ciphertext * factor, new_exponent)

    def __add__(self, other: EncryptedNumber | int | float) -> EncryptedNumber:
        """Spec 8.5: align exponents to the smaller, then add."""
        if isinstance(other, EncryptedNumber):
            if other.public_key != self.public_key:
                raise KeyMismatchError("cannot add encrypted numbers under different public keys")
            a, b = self, other
        elif _is_int(other) or isinstance(other, float):
            encoded = EncodedNumber.encode(self.public_key, other, max_exponent=self.exponent)
            a = self
            if encoded.exponent < a.exponent:
                a = a.decrease_exponent_to(encoded.exponent)
            elif encoded.exponent > a.exponent:
                encoded = encoded.decrease_exponent_to(a.exponent)
            return EncryptedNumber(a.ciphertext.add_plain(encoded.encoding), a.exponent)
        else:
            return NotImplemented
        if a.exponent > b.exponent:
            a = a.decrease_exponent_to(b.exponent)
        elif b.exponent > a.exponent:
            b = b.decrease_exponent_to(a.exponent)
        return EncryptedNumber(a.ciphertext + b.ciphertext, a.exponent)

    __radd__ = __add__

    def __neg__(self) -> EncryptedNumber:
        return EncryptedNumber(-self.ciphertext, self.exponent)

    def __sub__(self, other: EncryptedNumber | int | float) -> EncryptedNumber:
        return self + (-other)

    def __rsub__(self, other: int | float) -> EncryptedNumber:
        return (-self) + other

    def __mul__(self, scalar: int | float) -> EncryptedNumber:
        """Spec 8.6: multiply by an encoded plaintext scalar; exponents add."""
        if isinstance(scalar, EncryptedNumber):
            raise ParameterError("Paillier cannot multiply two ciphertexts")
        if not (_is_int(scalar) or isinstance(scalar, float)):
            return NotImplemented
        encoded = EncodedNumber.encode(self.public_key, scalar)
        return EncryptedNumber(self.ciphertext * int(encoded.mantissa()), self.exponent + encoded.exponent)

    __rmul__ = __mul__


def _check_encryptor(public_key: PublicKey, encryptor: FastEncryptor | RandomiserPool | None) -> None:
    if encryptor is not None and encryptor.public_key != public_key:
        raise KeyMismatchError("encryptor belongs to another public key")


def encrypt_number(public_key: PublicKey, value: int | float, rng: RandomSource | None = None, *,
                   precision: float | None = None, max_exponent: int | None = None,
                   encryptor: FastEncryptor | RandomiserPool | None = None) -> EncryptedNumber:
    """Encode ``value`` (spec 8.2) and encrypt it: standard encryption by
    default, DJN with a :class:`FastEncryptor`, or the online step of a
    :class:`RandomiserPool`."""
    _check_encryptor(public_key, encryptor)
    encoded = EncodedNumber.encode(public_key, value, precision=precision, max_exponent=max_exponent)
    if encryptor is None:
        ciphertext = public_key.encrypt(encoded.encoding, rng)
    elif isinstance(encryptor, RandomiserPool):
        ciphertext = encryptor.encrypt(encoded.encoding)
    else:
        ciphertext = encryptor.encrypt(encoded.encoding, rng)
    if ciphertext.public_key != public_key:
        raise KeyMismatchError("encryptor belongs to another public key")
    return EncryptedNumber(ciphertext, encoded.exponent)


def decrypt_number(private_key: PrivateKey, number: EncryptedNumber) -> int | float:
    """Decrypt and decode (spec 8.3)."""
    plaintext = private_key.decrypt(number.ciphertext)
    return EncodedNumber(private_key.public_key, plaintext, number.exponent).decode()


# ---------------------------------------------------------------------------
# Section 9: slot packing
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PackingLayout:
    """K unsigned slots of ``value_bits`` each, with room for ``max_summands``
    additions (spec 9.1).

    Each slot is value_bits + ceil(log2(max_summands)) bits wide, so the sum of
    max_summands values below 2^value_bits never carries into the next slot;
    slots * slot_bits must be below the bit length of n, so the packed
    integer is always < n.
    """

    value_bits: int
    slots: int
    max_summands: int

    def __post_init__(self) -> None:
        for name in ("value_bits", "slots", "max_summands"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ParameterError(f"packing {name} must be a positive integer")

    @property
    def headroom_bits(self) -> int:
        return (self.max_summands - 1).bit_length()

    @property
    def slot_bits(self) -> int:
        return self.value_bits + self.headroom_bits

    @property
    def total_bits(self) -> int:
        return self.slots * self.slot_bits

    def check_key(self, public_key: PublicKey) -> None:
        """Spec 9.1: the packed integer must stay below n."""
        if self.total_bits >= public_key.bits:
            raise ParameterError(
                f"packing needs {self.total_bits} bits but n has {public_key.bits}: fewer slots or summands"
            )

    @classmethod
    def fit(cls, public_key: PublicKey, value_bits: int, max_summands: int) -> PackingLayout:
        """The layout with the most slots for this key, values and summands."""
        probe = cls(value_bits, 1, max_summands)
        slots = (public_key.bits - 1) // probe.slot_bits
        if slots < 1:
            raise ParameterError("not even one slot fits in this key")
        return cls(value_bits, slots, max_summands)

    def pack(self, values: list[int] | tuple[int, ...]) -> mpz:
        """Spec 9.2: sum of values[i] * 2^(i * slot_bits); up to ``slots`` values."""
        if not 1 <= len(values) <= self.slots:
            raise ParameterError(f"need between 1 and {self.slots} values to pack, got {len(values)}")
        packed = mpz(0)
        limit = 1 << self.value_bits
        for i, value in enumerate(values):
            if not _is_int(value) or not 0 <= value < limit:
                raise EncodingOverflowError(
                    f"slot {i}: value out of range, need an integer in [0, 2^{self.value_bits})"
                )
            packed |= mpz(value) << (i * self.slot_bits)
        return packed

    def unpack(self, packed: int, count: int | None = None) -> list[int]:
        """Spec 9.3: the ``count`` (default all) slot sums."""
        count = self.slots if count is None else count
        if not 1 <= count <= self.slots:
            raise ParameterError("slot count out of range")
        packed = mpz(packed)
        if packed < 0 or packed.bit_length() > self.total_bits:
            raise EncodingOverflowError("packed plaintext exceeds the layout: a slot overflowed")
        mask = (1 << self.slot_bits) - 1
        return [int((packed >> (i * self.slot_bits)) & mask) for i in range(count)]


@dataclass(frozen=True)
class PackedCiphertext:
    """An encrypted packed vector and the number of vectors summed into it (spec 9.4)."""

    ciphertext: Ciphertext
    layout: PackingLayout
    summands: int = 1

    def __add__(self, other: PackedCiphertext) -> PackedCiphertext:
        """Slot-wise addition; EncodingOverflowError beyond max_summands."""
        if not isinstance(other, PackedCiphertext):
            return NotImplemented
        if other.layout != self.layout:
            raise ParameterError("cannot add packed ciphertexts with different layouts")
        summands = self.summands + other.summands
        if summands > self.layout.max_summands:
            raise EncodingOverflowError(
                f"sum of {summands} packed vectors exceeds the layout's headroom of {self.layout.max_summands}"
            )
        return PackedCiphertext(self.ciphertext + other.ciphertext, self.layout, summands)


def encrypt_packed(public_key: PublicKey, layout: PackingLayout, values: list[int],
                   rng: RandomSource | None = None, *,
                   encryptor: FastEncryptor | RandomiserPool | None = None) -> PackedCiphertext:
    """Pack (spec 9.2) and encrypt."""
    _check_encryptor(public_key, encryptor)
    layout.check_key(public_key)
    packed = layout.pack(values)
    if encryptor is None:
        ciphertext = public_key.encrypt(packed, rng)
    elif isinstance(encryptor, RandomiserPool):
        ciphertext = encryptor.encrypt(packed)
    else:
        ciphertext = encryptor.encrypt(packed, rng)
    return PackedCiphertext(ciphertext, layout)


def sum_packed(items: list[PackedCiphertext]) -> PackedCiphertext:
    """Sum many packed ciphertexts, checking the headroom once for all."""
    if not items:
        raise ParameterError("sum_packed needs at least one item")
    layout = items[0].layout
    total = 0
    for item in items:
        if item.layout != layout:
            raise ParameterError("cannot add packed ciphertexts with different layouts")
        total += item.summands
    if total > layout.max_summands:
        raise EncodingOverflowError(
            f"sum of {total} packed vectors exceeds the layout's headroom of {layout.max_summands}"
        )
    from protocols.schemes.paillier import sum_ciphertexts

    return PackedCiphertext(sum_ciphertexts(item.ciphertext for item in items), layout, total)


def decrypt_packed(private_key: PrivateKey, packed: PackedCiphertext, count: int | None = None) -> list[int]:
    """Decrypt and unpack (spec 9.3)."""
    return packed.layout.unpack(private_key.decrypt(packed.ciphertext), count)


# ---------------------------------------------------------------------------
# Section 10: phe's JSON serialisation
# ---------------------------------------------------------------------------

PHE_KTY = "DAJ"
PHE_ALG = "PAI-GN1"


def _int_to_b64url(value: int) -> str:
    """phe's int_to_base64: minimal big-endian bytes, base64url, no padding."""
    raw = int(value).to_bytes(max(1, _byte_len(value)), "big")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _byte_len(value: int) -> int:
    return (int(value).bit_length() + 7) // 8


def _b64url_to_int(text: Any, name: str) -> int:
    if not isinstance(text, str) or not text:
        raise DecodeError(f"phe JSON field {name!r} must be a non-empty base64url string")
    if len(text) > MAX_B64URL_CHARS:
        raise DecodeError(f"phe JSON field {name!r} is longer than {MAX_B64URL_CHARS} characters")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"phe JSON field {name!r} is not base64url") from exc
    if _int_to_b64url(int.from_bytes(raw, "big")) != text.rstrip("="):
        raise DecodeError(f"phe JSON field {name!r} is not a canonical base64url integer")
    return int.from_bytes(raw, "big")


def _public_jwk(public_key: PublicKey, kid: str | None) -> dict:
    return {
        "kty": PHE_KTY,
        "alg": PHE_ALG,
        "key_ops": ["encrypt"],
        "n": _int_to_b64url(public_key.n),
        "kid": kid if kid is not None else "Paillier public key (usapp)",
    }


def to_phe_json(obj: PublicKey | PrivateKey | EncryptedNumber | list, *, kid: str | None = None) -> str:
    """Spec 10: serialise as phe does.

    - PublicKey -> ``{"kty": "DAJ", "alg": "PAI-GN1", "key_ops": ["encrypt"], "n": b64url, "kid"}``
    - PrivateKey -> ``{"kty": "DAJ", "key_ops": ["decrypt"], "p", "q", "pub": <public JWK>, "kid"}``
    - EncryptedNumber -> pheutil's ``{"v": "<decimal ciphertext>", "e": exponent}``
    - list of EncryptedNumber (one key) -> phe's documented
      ``{"public_key": {"g": g, "n": n}, "values": [["<decimal>", exponent], ...]}``
    """
    if isinstance(obj, PublicKey):
        doc: Any = _public_jwk(obj, kid)
    elif isinstance(obj, PrivateKey):
        doc = {
            "kty": PHE_KTY,
            "key_ops": ["decrypt"],
            "p": _int_to_b64url(obj.p),
            "q": _int_to_b64url(obj.q),
            "pub": _public_jwk(obj.public_key, None),
            "kid": kid if kid is not None else "Paillier private key (usapp)",
        }
    elif isinstance(obj, EncryptedNumber):
        doc = {"v": str(int(obj.ciphertext.c)), "e": obj.exponent}
    elif isinstance(obj, list) and obj and all(isinstance(x, EncryptedNumber) for x in obj):
        pk = obj[0].public_key
        if any(x.public_key != pk for x in obj):
            raise KeyMismatchError("a phe value list holds numbers under one public key only")
        doc = {
            "public_key": {"g": int(pk.g), "n": int(pk.n)},
            "values": [[str(int(x.ciphertext.c)), x.exponent] for x in obj],
        }
    else:
        raise ParameterError("to_phe_json takes a PublicKey, PrivateKey, EncryptedNumber or a non-empty list of them")
    return json.dumps(doc)


def _expect(doc: dict, key: str, kind: type | tuple, what: str) -> Any:
    if key not in doc:
        raise DecodeError(f"phe JSON {what} lacks {key!r}")
    value = doc[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DecodeError(f"phe JSON {what} field {key!r} has the wrong type")
    return value


def _parse_public_jwk(doc: Any, min_bits: int) -> PublicKey:
    if not isinstance(doc, dict):
        raise DecodeError("phe JSON public key must be an object")
    if doc.get("kty") != PHE_KTY or doc.get("alg") != PHE_ALG:
        raise DecodeError("phe JSON public key must have kty 'DAJ' and alg 'PAI-GN1'")
    if doc.get("key_ops") != ["encrypt"]:
        raise DecodeError("phe JSON public key must have key_ops ['encrypt']")
    return PublicKey(mpz(_b64url_to_int(doc.get("n"), "n")), min_bits=min_bits)


def _parse_ciphertext(public_key: PublicKey, value: Any) -> Ciphertext:
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or (len(value) > 1 and value[0] == "0"):
        raise DecodeError("phe JSON ciphertext must be a canonical decimal string")
    if len(value) > len(str(public_key.nsquare)):  # before int(): it is quadratic and capped at 4300 digits
        raise InvalidCiphertextError("phe JSON ciphertext out of range: it has more digits than n^2")
    return public_key.ciphertext(int(value))


def _parse_exponent(value: Any) -> int:
    return _check_exponent(value, DecodeError)


def from_phe_json(text: str | bytes, public_key: PublicKey | None = None, *,
                  min_bits: int = MIN_MODULUS_BITS) -> PublicKey | PrivateKey | EncryptedNumber | tuple:
    """Spec 10: parse any of the forms :func:`to_phe_json` writes.

    A bare ``{"v", "e"}`` number needs ``public_key``; a
    ``{"public_key", "values"}`` document returns ``(PublicKey, [EncryptedNumber, ...])``.
    Keys below ``min_bits`` are refused unless ``min_bits`` is lowered.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise DecodeError("phe JSON must be str or bytes")
    if len(text) > MAX_PHE_JSON_CHARS:
        raise DecodeError(f"phe JSON is longer than {MAX_PHE_JSON_CHARS} characters")
    try:
        doc = json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: deeply nested arrays
        raise DecodeError("not valid JSON") from exc
    if not isinstance(doc, dict):
        raise DecodeError("phe JSON must be an object")
    if "kty" in doc:
        ops = doc.get("key_ops")
        if ops == ["encrypt"]:
            return _parse_public_jwk(doc, min_bits)
        if ops == ["decrypt"]:
            if doc.get("kty") != PHE_KTY:
                raise DecodeError("phe JSON private key must have kty 'DAJ'")
            pub = _parse_public_jwk(_expect(doc, "pub", dict, "private key"), min_bits)
            p = _b64url_to_int(doc.get("p"), "p")
            q = _b64url_to_int(doc.get("q"), "q")
            if p * q != pub.n:
                raise DecodeError("phe JSON private key: p * q does not equal the public n")
            return PrivateKey.from_factors(p, q, min_bits=min_bits)
        raise DecodeError("phe JSON key must have key_ops ['encrypt'] or ['decrypt']")
    if set(doc) == {"v", "e"}:
        if public_key is None:
            raise ParameterError("an encrypted number needs the public key it was encrypted under")
        return EncryptedNumber(_parse_ciphertext(public_key, doc["v"]), _parse_exponent(doc["e"]))
    if set(doc) == {"public_key", "values"}:
        pk_doc = _expect(doc, "public_key", dict, "value list")
        n = _expect(pk_doc, "n", int, "public key")
        g = _expect(pk_doc, "g", int, "public key")
        pk = PublicKey(mpz(n), min_bits=min_bits)
        if g != pk.g:
            raise DecodeError("phe JSON public key: only g = n + 1 is supported")
        if public_key is not None and public_key != pk:
            raise KeyMismatchError("phe JSON values are under another public key")
        values = _expect(doc, "values", list, "value list")
        numbers = []
        for item in values:
            if not isinstance(item, list) or len(item) != 2:
                raise DecodeError("phe JSON value must be a [ciphertext, exponent] pair")
            numbers.append(EncryptedNumber(_parse_ciphertext(pk, item[0]), _parse_exponent(item[1])))
        return pk, numbers
    raise DecodeError("unrecognised phe JSON document")
