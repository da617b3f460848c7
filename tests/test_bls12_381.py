"""Tests of protocols.primitives.bls12_381 (specs/bls12_381.md) and of the
vector family rfc9380 (vectors/rfc9380.json).

Independent references used here, sharing no code with the module:
RFC 9380's own values (appendices J.9.1, J.10.1, K.1, K.2, read from the
pinned vectors file); a ZCash-format encoder written below from the format's
description; the pairing value e(G1, G2) as computed by mcl (pymcl 1.0.2),
which agreed byte for byte with arkworks when the binding was chosen
(specs/bls12_381.md section 2); and the group laws themselves.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, InvalidCiphertextError, ParameterError, VectorMismatchError
from protocols.primitives import bls12_381 as bls
from protocols.primitives.bls12_381 import G1, G2, GT, P, R
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.system.vectorsets import families
from protocols.system.vectorsets import rfc9380 as family

ENVELOPE = json.loads((Path(__file__).resolve().parent.parent / "vectors" / "rfc9380.json").read_text())
VECTORS = ENVELOPE["vectors"]
VALID = [v for v in VECTORS if v.get("result", "valid") == "valid"]
INVALID = [v for v in VECTORS if v.get("result") == "invalid"]
G1_VECTORS = [v for v in VALID if v["section"] == "J.9.1"]
G2_VECTORS = [v for v in VALID if v["section"] == "J.10.1"]
XMD_VECTORS = [v for v in VALID if v["section"] in ("K.1", "K.2")]

E_G1_G2_SHA256 = "ff9912603bb02b77bc6ec1deaeddf9d1fee40ac17a781fb13c9c6e7a9f74d22b"
"""SHA-256 of the 576-byte encoding of e(G1, G2) for the standard generators;
arkworks (py-arkworks-bls12381 0.5.0) and mcl (pymcl 1.0.2) agree on it."""

G1_GENERATOR_HEX = (
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb")
G2_GENERATOR_HEX = (
    "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
    "024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8")

scalars = st.integers(min_value=0, max_value=R - 1)
nonzero_scalars = st.integers(min_value=1, max_value=R - 1)


def fp(text: str) -> int:
    return int(text, 16)


def fp2(pair: list[str]) -> tuple[int, int]:
    return int(pair[0], 16), int(pair[1], 16)


# -- an independent ZCash-format encoder (for building test inputs) -------------------


def zcash_g1(x: int, y: int) -> bytes:
    """Compressed flag, sign flag when y > (p - 1) / 2, x big-endian."""
    out = bytearray(x.to_bytes(48, "big"))
    out[0] |= 0x80 | (0x20 if y > (P - 1) // 2 else 0)
    return bytes(out)


def zcash_g2(x: tuple[int, int], y: tuple[int, int]) -> bytes:
    """x.c1 || x.c0; y is larger when y.c1 > (p - 1) / 2, or y.c1 = 0 and y.c0 > (p - 1) / 2."""
    larger = y[1] > (P - 1) // 2 if y[1] else y[0] > (P - 1) // 2
    out = bytearray(x[1].to_bytes(48, "big") + x[0].to_bytes(48, "big"))
    out[0] |= 0x80 | (0x20 if larger else 0)
    return bytes(out)


def raises_exactly(expected, match, func, *args, **kwargs):
    with pytest.raises(expected, match=match) as info:
        func(*args, **kwargs)
    assert type(info.value) is expected, f"raised {type(info.value).__name__}, not exactly {expected.__name__}"


# -- RFC 9380 appendix J.9.1 / J.10.1 / K.1 / K.2 ----------------------------------------


def test_vectors_file_holds_the_rfc_cases():
    assert [v["name"] for v in G1_VECTORS] == [f"J.9.1-{i}" for i in range(5)]
    assert [v["name"] for v in G2_VECTORS] == [f"J.10.1-{i}" for i in range(5)]
    assert len(XMD_VECTORS) == 20
    assert {v["dst"] for v in G1_VECTORS} == {"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"}
    assert {v["dst"] for v in G2_VECTORS} == {"QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_"}


@pytest.mark.parametrize("v", G1_VECTORS, ids=lambda v: v["name"])
def test_rfc9380_j91_hash_to_g1(v):
    msg, dst = v["msg"].encode(), v["dst"].encode()
    assert bls.hash_to_field_fp(msg, dst, 2) == [fp(v["u0"]), fp(v["u1"])]
    for i in (0, 1):
        Q = bls.clear_cofactor_g1(fp(v[f"Q{i}_x"]), fp(v[f"Q{i}_y"]))
        assert Q == bls.map_to_g1(fp(v[f"u{i}"]))
    point = bls.hash_to_g1(msg, dst)
    assert point.affine() == (fp(v["P_x"]), fp(v["P_y"]))
    assert point.to_bytes() == zcash_g1(fp(v["P_x"]), fp(v["P_y"]))
    assert G1.from_bytes(point.to_bytes()) == point


@pytest.mark.parametrize("v", G2_VECTORS, ids=lambda v: v["name"])
def test_rfc9380_j101_hash_to_g2(v):
    msg, dst = v["msg"].encode(), v["dst"].encode()
    assert bls.hash_to_field_fp2(msg, dst, 2) == [fp2(v["u0"]), fp2(v["u1"])]
    for i in (0, 1):
        Q = bls.clear_cofactor_g2(fp2(v[f"Q{i}_x"]), fp2(v[f"Q{i}_y"]))
        assert Q == bls.map_to_g2(fp2(v[f"u{i}"]))
    point = bls.hash_to_g2(msg, dst)
    assert point.affine() == (fp2(v["P_x"]), fp2(v["P_y"]))
    assert point.to_bytes() == zcash_g2(fp2(v["P_x"]), fp2(v["P_y"]))
    assert G2.from_bytes(point.to_bytes()) == point


@pytest.mark.parametrize("v", XMD_VECTORS, ids=lambda v: v["name"])
def test_rfc9380_k1_k2_expand_message_xmd(v):
    msg, dst = v["msg"].encode(), v["dst"].encode()
    assert bls.xmd_dst_prime(dst).hex() == v["DST_prime"]
    assert bls.xmd_msg_prime(msg, dst, v["len_in_bytes"]).hex() == v["msg_prime"]
    assert bls.expand_message_xmd(msg, dst, v["len_in_bytes"]).hex() == v["uniform_bytes"]


def test_rfc9380_intermediates_are_off_subgroup_points():
    """Q0 of J.9.1 / J.10.1 is on the curve but outside the subgroup: the
    decoders must refuse it (a concrete not-in-subgroup point)."""
    v = G1_VECTORS[0]
    raises_exactly(DecodeError, "not in the subgroup", G1.from_bytes, zcash_g1(fp(v["Q0_x"]), fp(v["Q0_y"])))
    w = G2_VECTORS[0]
    raises_exactly(DecodeError, "not in the subgroup", G2.from_bytes, zcash_g2(fp2(w["Q0_x"]), fp2(w["Q0_y"])))


@settings(max_examples=40, deadline=None)
@given(msg=st.binary(max_size=200), dst=st.binary(min_size=1, max_size=300))
def test_binding_hash_to_curve_equals_reference_composition(msg, dst):
    """hash_to_curve (the binding) = map(u0) + map(u1) with u from this
    module's own hash_to_field, including DSTs over 255 bytes (RFC 9380 5.3.3)."""
    u = bls.hash_to_field_fp(msg, dst, 2)
    assert bls.hash_to_g1(msg, dst) == bls.map_to_g1(u[0]) + bls.map_to_g1(u[1])
    w = bls.hash_to_field_fp2(msg, dst, 2)
    assert bls.hash_to_g2(msg, dst) == bls.map_to_g2(w[0]) + bls.map_to_g2(w[1])


def test_hash_to_curve_separates_domains():
    assert bls.hash_to_g1(b"m", b"A") != bls.hash_to_g1(b"m", b"B")
    assert bls.hash_to_g2(b"m", b"A") != bls.hash_to_g2(b"m", b"B")


def test_hash_to_curve_input_errors():
    raises_exactly(ParameterError, "DST must not be empty", bls.hash_to_g1, b"m", b"")
    raises_exactly(ParameterError, "DST must not be empty", bls.hash_to_g2, b"m", b"")
    raises_exactly(ParameterError, "msg must be bytes", bls.hash_to_g1, "m", b"D")
    raises_exactly(ParameterError, "DST must be bytes", bls.hash_to_g2, b"m", "D")
    raises_exactly(ParameterError, "len_in_bytes", bls.expand_message_xmd, b"", b"D", 0)
    raises_exactly(ParameterError, "ell > 255", bls.expand_message_xmd, b"", b"D", 255 * 32 + 1)
    assert len(bls.expand_message_xmd(b"", b"D", 255 * 32)) == 255 * 32
    raises_exactly(ParameterError, "u must be an int", bls.map_to_g1, P)
    raises_exactly(ParameterError, "u must be a pair", bls.map_to_g2, 5)
    raises_exactly(ParameterError, "not on E", bls.clear_cofactor_g1, 1, 1)
    raises_exactly(ParameterError, "not on E'", bls.clear_cofactor_g2, (1, 0), (1, 0))


# -- the vector family -------------------------------------------------------------------


def test_family_is_registered_and_verifies_every_vector():
    assert family.FAMILY in families()
    assert not family.FAMILY.generated
    for v in VECTORS:
        family.verify_vector(v)


@pytest.mark.parametrize("name, field, value", [
    ("J.9.1-1", "u0", "0" * 96),
    ("J.9.1-1", "P_y", "0" * 96),
    ("J.9.1-2", "Q1_x", "0" * 96),
    ("J.10.1-3", "u1", ["0" * 96, "0" * 96]),
    ("J.10.1-3", "Q0_y", ["0" * 96, "0" * 96]),
    ("K.1-4", "uniform_bytes", "00" * 32),
    ("K.2-0", "msg_prime", "00"),
])
def test_family_reports_an_edited_value(name, field, value):
    vector = dict(next(v for v in VECTORS if v["name"] == name), **{field: value})
    with pytest.raises(VectorMismatchError, match=field):
        family.verify_vector(vector)


def test_family_reports_malformed_fields():
    vector = dict(G1_VECTORS[0], u0="0x" + G1_VECTORS[0]["u0"])
    with pytest.raises(VectorMismatchError, match="96 lower-case hex"):
        family.verify_vector(vector)


# -- encodings of G1 and G2 (spec sections 4.1, 4.2) -----------------------------------------


def test_generator_and_identity_encodings():
    assert G1.generator().to_bytes().hex() == G1_GENERATOR_HEX
    assert G2.generator().to_bytes().hex() == G2_GENERATOR_HEX
    assert G1.identity().to_bytes() == b"\xc0" + bytes(47)
    assert G2.identity().to_bytes() == b"\xc0" + bytes(95)
    assert G1.from_bytes(b"\xc0" + bytes(47), allow_identity=True).is_identity()
    assert G2.from_bytes(b"\xc0" + bytes(95), allow_identity=True).is_identity()


@settings(max_examples=25, deadline=None)
@given(k=nonzero_scalars)
def test_round_trip_g1_g2(k):
    for point in (G1.generator() * k, G2.generator() * k):
        raw = point.to_bytes()
        assert len(raw) == (48 if isinstance(point, G1) else 96)
        again = type(point).from_bytes(raw)
        assert again == point and again.to_bytes() == raw
        # the sign flag selects the other square root: the negated point
        flipped = bytes([raw[0] ^ 0x20]) + raw[1:]
        assert type(point).from_bytes(flipped) == -point


@pytest.mark.parametrize("cls, size", [(G1, 48), (G2, 96)])
def test_wrong_length_and_type(cls, size):
    raw = cls.generator().to_bytes()
    raises_exactly(DecodeError, f"is {size} bytes, got {size - 1}", cls.from_bytes, raw[:-1])
    raises_exactly(DecodeError, f"is {size} bytes, got {size + 1}", cls.from_bytes, raw + b"\x00")
    raises_exactly(DecodeError, "is 48 bytes, got 0" if size == 48 else "is 96 bytes, got 0", cls.from_bytes, b"")
    raises_exactly(DecodeError, "must be bytes", cls.from_bytes, raw.hex())
    assert cls.from_bytes(bytearray(raw)) == cls.generator()


@pytest.mark.parametrize("cls, size", [(G1, 48), (G2, 96)])
def test_flag_bits(cls, size):
    raw = cls.generator().to_bytes()
    raises_exactly(DecodeError, "compression flag", cls.from_bytes, bytes([raw[0] & 0x7F]) + raw[1:])
    raises_exactly(DecodeError, "compression flag", cls.from_bytes, bytes(size))
    raises_exactly(DecodeError, "compression flag", cls.from_bytes, b"\x40" + bytes(size - 1))
    # identity: only 0xc0 || 0...0, and only when allowed
    raises_exactly(DecodeError, "identity, which is refused", cls.from_bytes, b"\xc0" + bytes(size - 1))
    for bad in (b"\xe0" + bytes(size - 1),                 # infinity with the sign flag
                b"\xc0" + bytes(size - 2) + b"\x01",       # infinity with x bits set
                bytes([raw[0] | 0x40]) + raw[1:]):         # infinity flag on the generator's x
        raises_exactly(DecodeError, "identity must be encoded as 0xc0", cls.from_bytes, bad, allow_identity=True)


def test_coordinates_not_below_p():
    top = (P >> 376) | 0x80
    x_is_p = bytes([top]) + (P % (1 << 376)).to_bytes(47, "big")
    all_ones = b"\x9f" + b"\xff" * 47  # x = 2^381 - 1
    for raw in (x_is_p, all_ones):
        raises_exactly(DecodeError, "not below p", G1.from_bytes, raw)
    g2 = G2.generator().to_bytes()
    raises_exactly(DecodeError, "not below p", G2.from_bytes, x_is_p + g2[48:])          # x.c1 = p
    raises_exactly(DecodeError, "not below p", G2.from_bytes, g2[:48] + P.to_bytes(48, "big"))  # x.c0 = p


def test_off_curve():
    # x = 1: 1 + 4 = 5 is not a square mod p, so no point of E has x = 1
    raises_exactly(DecodeError, "off curve", G1.from_bytes, b"\x80" + bytes(46) + b"\x01")
    # x = 1 + 0 I: 1 + 4(1 + I) = 5 + 4I has a non-square norm 41, so it is off E'
    raises_exactly(DecodeError, "off curve", G2.from_bytes, b"\x80" + bytes(47) + bytes(47) + b"\x01")


def test_not_in_subgroup():
    # (0, 2) is on E (2^2 = 0^3 + 4) and has order 3, not r
    raises_exactly(DecodeError, "not in the subgroup", G1.from_bytes, zcash_g1(0, 2))
    raises_exactly(DecodeError, "not in the subgroup", G1.from_bytes, zcash_g1(0, P - 2))


def test_caller_chosen_error_class():
    raises_exactly(InvalidCiphertextError, "not in the subgroup", G1.from_bytes, zcash_g1(0, 2),
                   error=InvalidCiphertextError)
    raises_exactly(InvalidCiphertextError, "is 96 bytes", G2.from_bytes, b"", error=InvalidCiphertextError)
    raises_exactly(InvalidCiphertextError, "not below r", bls.scalar_from_bytes, R.to_bytes(32, "big"),
                   error=InvalidCiphertextError)


# -- group law, operators, values -------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(a=scalars, b=scalars)
def test_scalar_multiplication_is_modulo_r(a, b):
    for g in (G1.generator(), G2.generator()):
        assert g * a + g * b == g * ((a + b) % R)
        assert g * (a + R) == g * a == a * g
        assert g * (-a) == -(g * a)
        assert (g * a) - (g * a) == type(g).identity()
    assert (G1.generator() * R).is_identity() and (G2.generator() * R).is_identity()


def test_operator_type_errors():
    raises_exactly(ParameterError, "scalar must be an int", lambda: G1.generator() * True)
    raises_exactly(ParameterError, "scalar must be an int", lambda: G2.generator() * 1.0)
    raises_exactly(ParameterError, "another G1", lambda: G1.generator() + G2.generator())
    raises_exactly(ParameterError, "another G2", lambda: G2.generator() - G1.generator())
    raises_exactly(ParameterError, "no affine", G1.identity().affine)
    raises_exactly(ParameterError, "wraps a binding point", G1, b"\x00")
    assert G1.generator() != G2.generator()
    with pytest.raises(AttributeError):
        G1.generator()._p = None


def test_values_are_immutable_hashable_and_picklable():
    g1, g2 = G1.generator() * 5, G2.generator() * 7
    gt = bls.pairing(g1, g2)
    for value in (g1, g2, gt, G1.identity(), G2.identity(), GT.one()):
        assert copy.deepcopy(value) == value and copy.copy(value) is value
        assert pickle.loads(pickle.dumps(value)) == value
        assert hash(value) == hash(pickle.loads(pickle.dumps(value)))
    assert len({g1, G1.generator() * 5, G1.generator()}) == 2


def test_repr_shows_no_value():
    secret = G1.generator() * 123456789
    for value in (secret, G2.generator() * 5, bls.pairing(secret, G2.generator())):
        text = repr(value)
        assert value.to_bytes().hex()[:16] not in text and "byte element" in text


# -- scalars (spec section 4.4) ---------------------------------------------------------------


def test_scalar_encoding():
    assert bls.scalar_to_bytes(R - 1) == (R - 1).to_bytes(32, "big")
    assert bls.scalar_from_bytes((R - 1).to_bytes(32, "big")) == R - 1
    assert bls.scalar_from_bytes(bytes(32), allow_zero=True) == 0
    raises_exactly(DecodeError, "zero", bls.scalar_from_bytes, bytes(32))
    raises_exactly(DecodeError, "not below r", bls.scalar_from_bytes, R.to_bytes(32, "big"))
    raises_exactly(DecodeError, "not below r", bls.scalar_from_bytes, b"\xff" * 32)
    raises_exactly(DecodeError, "32 bytes, got 31", bls.scalar_from_bytes, bytes(31))
    raises_exactly(DecodeError, "must be bytes", bls.scalar_from_bytes, 5)
    raises_exactly(ParameterError, r"\[0, r\)", bls.scalar_to_bytes, R)
    raises_exactly(ParameterError, r"\[0, r\)", bls.scalar_to_bytes, -1)
    raises_exactly(ParameterError, "no inverse", bls.scalar_inverse, R)
    assert bls.scalar_inverse(7) * 7 % R == 1


def test_random_scalar_draws_by_the_conventions_rule():
    # RandomRange(rng, 1, r) = 1 + RandomBelow(rng, r - 1): 32-byte draws, low
    # 255 bits kept, rejected when >= r - 1 (conventions section 3.2)
    rng = ReplayRandom([b"\xff" * 32, (R - 2).to_bytes(32, "big")])
    assert bls.random_scalar(rng) == R - 1 and rng.exhausted
    rng = ReplayRandom([(R - 1).to_bytes(32, "big"), bytes(32)])
    assert bls.random_scalar(rng) == 1 and rng.exhausted
    rng = ReplayRandom([(R - 1).to_bytes(32, "big")])
    assert bls.random_scalar(rng, nonzero=False) == R - 1 and rng.exhausted
    drbg = HmacDrbg.from_seed("usapp-tests/bls12-381")
    assert all(1 <= bls.random_scalar(drbg) < R for _ in range(20))
    assert 1 <= bls.random_scalar() < R


# -- the pairing (spec section 7) ---------------------------------------------------------------


def test_pairing_known_answer_and_non_degeneracy():
    e = bls.pairing(G1.generator(), G2.generator())
    assert hashlib.sha256(e.to_bytes()).hexdigest() == E_G1_G2_SHA256
    assert not e.is_identity()
    assert e ** R == GT.one()
    assert bls.pairing(G1.identity(), G2.generator()).is_identity()
    assert bls.pairing(G1.generator(), G2.identity()).is_identity()


@settings(max_examples=15, deadline=None)
@given(a=scalars, b=scalars)
def test_bilinearity(a, b):
    g1, g2 = G1.generator(), G2.generator()
    e = bls.pairing(g1, g2)
    assert bls.pairing(g1 * a, g2 * b) == e ** (a * b)
    assert bls.pairing(g1 * a, g2 * b) == bls.pairing(g1 * (a * b), g2)
    assert bls.pairing(g1 * a, g2) * bls.pairing(g1 * b, g2) == bls.pairing(g1 * (a + b), g2)
    assert bls.pairing(g1, g2 * a) * bls.pairing(g1, g2 * b) == bls.pairing(g1, g2 * (a + b))


@settings(max_examples=10, deadline=None)
@given(a=scalars, b=scalars, c=scalars)
def test_multi_pairing_is_the_product(a, b, c):
    g1, g2 = G1.generator(), G2.generator()
    pairs = [(g1 * a, g2 * b), (g1 * c, g2)]
    assert bls.multi_pairing(pairs) == bls.pairing(*pairs[0]) * bls.pairing(*pairs[1])
    assert bls.multi_pairing([(g1 * a, g2 * b), (-(g1 * (a * b)), g2)]).is_identity()


def test_pairing_input_errors():
    raises_exactly(ParameterError, "a G1 element and a G2 element", bls.pairing, G2.generator(), G1.generator())
    raises_exactly(ParameterError, "non-empty sequence", bls.multi_pairing, [])
    raises_exactly(ParameterError, "non-empty sequence", bls.multi_pairing, b"ab")
    raises_exactly(ParameterError, r"\(G1, G2\) pairs", bls.multi_pairing, [(G1.generator(),)])


# -- GT (spec sections 4.3, 5) ----------------------------------------------------------------


def _python_only(value: GT) -> GT:
    """The same element without the binding's value, so that arithmetic on it
    takes the plain Python F_p^12 path."""
    return GT(value.to_bytes())


@settings(max_examples=10, deadline=None)
@given(a=nonzero_scalars, b=nonzero_scalars, k=st.integers(min_value=-R, max_value=2 * R))
def test_gt_python_arithmetic_equals_the_binding(a, b, k):
    x = bls.pairing(G1.generator() * a, G2.generator())
    y = bls.pairing(G1.generator(), G2.generator() * b)
    px, py = _python_only(x), _python_only(y)
    assert px._ark is None and x._ark is not None
    assert px * py == x * y
    assert px ** k == x ** k
    assert x.inverse() * x == GT.one() and px / py == x / y
    assert x ** -1 == x.inverse()


@settings(max_examples=5, deadline=None)
@given(a=nonzero_scalars)
def test_gt_round_trip(a):
    x = bls.pairing(G1.generator() * a, G2.generator())
    raw = x.to_bytes()
    assert len(raw) == 576
    assert GT.from_bytes(raw) == x and GT.from_bytes(raw).to_bytes() == raw


def test_gt_rejections():
    one = GT.one().to_bytes()
    assert one == b"\x01" + bytes(575)
    raw = bls.pairing(G1.generator(), G2.generator()).to_bytes()
    raises_exactly(DecodeError, "is 576 bytes, got 575", GT.from_bytes, raw[:-1])
    raises_exactly(DecodeError, "must be bytes", GT.from_bytes, raw.hex())
    raises_exactly(DecodeError, "identity, which is refused", GT.from_bytes, one)
    assert GT.from_bytes(one, allow_identity=True).is_identity()
    # coefficient c0.c0.c0 + p: the same field element, not canonical
    first = (int.from_bytes(raw[:48], "little") + P).to_bytes(48, "little")
    raises_exactly(DecodeError, "not below p", GT.from_bytes, first + raw[48:])
    # 0, 2 and a pairing value with one coefficient changed are not in GT
    raises_exactly(DecodeError, "not in the subgroup", GT.from_bytes, bytes(576))
    raises_exactly(DecodeError, "not in the subgroup", GT.from_bytes, b"\x02" + bytes(575))
    raises_exactly(DecodeError, "not in the subgroup", GT.from_bytes, bytes([raw[0] ^ 1]) + raw[1:])
    raises_exactly(ParameterError, "576-byte encoding", GT, b"\x01")
    raises_exactly(ParameterError, "another GT", lambda: GT.one() * 1)
    raises_exactly(ParameterError, "exponent must be an int", lambda: GT.one() ** 1.5)


def test_rfc9380_invalid_vectors_are_derived_and_documented():
    """The derived refusals (not from the RFC) are exactly derive_negatives of the
    transcribed vectors; every flag is in the notes; each is refused with ParameterError."""
    assert INVALID == family.derive_negatives(VALID)
    assert ENVELOPE["notes"] == family.NOTES
    assert {f for v in INVALID for f in v["flags"]} == set(family.NOTES)
    assert all("not from the source" in v["origin"] and v["error"] == "ParameterError" for v in INVALID)


@pytest.mark.parametrize(
    "name, changes, what",
    [
        ("J.9.1-1-rejects-empty-dst", {"dst": "A"}, "accepted"),
        ("J.10.1-1-rejects-empty-dst", {"dst": "A"}, "accepted"),
        ("K.1-0-rejects-ell-over-255", {"len_in_bytes": 8160}, "accepted"),
        ("K.1-0-rejects-zero-length", {"error": "DecodeError"}, "refused with ParameterError"),
        ("K.1-0-rejects-empty-dst", {"result": "valid"}, "result"),
    ],
)
def test_rfc9380_invalid_vector_accepted_or_misnamed_is_a_mismatch(name, changes, what):
    vector = dict(next(v for v in INVALID if v["name"] == name), **changes)
    with pytest.raises(VectorMismatchError, match=what):
        family.verify_vector(vector)


def test_long_dst_is_hashed_not_refused():
    """A DST over 255 bytes is not a refusal (RFC 9380 section 5.3.3): K.2 is valid."""
    long_dst = next(v for v in XMD_VECTORS if v["section"] == "K.2")["dst"].encode()
    assert len(long_dst) > 255
    assert len(bls.xmd_dst_prime(long_dst)) == 33
