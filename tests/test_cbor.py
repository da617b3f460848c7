"""Tests for protocols.primitives.cbor: RFC 8949 section 4.2.1 deterministic CBOR.

Published bytes come from RFC 8949 Appendix A (Table 6) and section 4.2.1's
key-ordering example; the malformed inputs follow Appendix F.  The security
property named here is "strict decoding": every byte string is either the
exact deterministic encoding of a value in the subset, or raises DecodeError
and nothing else (``test_decode_is_total_*``).
"""

from __future__ import annotations

import cbor2
import gmpy2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError
from protocols.primitives.cbor import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_SIZE,
    decode,
    decode_map,
    encode,
    expect_map,
)

# ---------------------------------------------------------------------------
# RFC 8949 Appendix A, the rows whose values are in the project's subset
# ---------------------------------------------------------------------------

APPENDIX_A = [
    (0, "00"),
    (1, "01"),
    (10, "0a"),
    (23, "17"),
    (24, "1818"),
    (25, "1819"),
    (100, "1864"),
    (1000, "1903e8"),
    (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"),
    (18446744073709551616, "c249010000000000000000"),
    (-18446744073709551616, "3bffffffffffffffff"),
    (-18446744073709551617, "c349010000000000000000"),
    (-1, "20"),
    (-10, "29"),
    (-100, "3863"),
    (-1000, "3903e7"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
    (b"", "40"),
    (bytes.fromhex("01020304"), "4401020304"),
    ("", "60"),
    ("a", "6161"),
    ("IETF", "6449455446"),
    ('"\\', "62225c"),
    ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"),
    ("\U00010151", "64f0908591"),
    ([], "80"),
    ([1, 2, 3], "83010203"),
    ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"),
    ({1: 2, 3: 4}, "a201020304"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    (
        {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"},
        "a56161614161626142616361436164614461656145",
    ),
]

# Appendix A rows outside the subset: floats, undefined, other simple values,
# other tags, indefinite lengths.  Each must be rejected.
APPENDIX_A_OUTSIDE_SUBSET = [
    "f90000", "f98000", "f93c00", "fb3ff199999999999a", "f93e00", "f97bff",
    "fa47c35000", "fa7f7fffff", "fb7e37e43c8800759c", "f90001", "f90400",
    "f9c400", "fbc010666666666666", "f97c00", "f97e00", "f9fc00", "fa7f800000",
    "fa7fc00000", "faff800000", "fb7ff0000000000000", "fb7ff8000000000000",
    "fbfff0000000000000",
    "f7", "f0", "f8ff",
    "c074323031332d30332d32315432303a30343a30305a",
    "c11a514b67b0", "c1fb41d452d9ec200000", "d74401020304", "d818456449455446",
    "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
    "5f42010243030405ff", "7f657374726561646d696e67ff", "9fff",
    "9f018202039f0405ffff", "9f01820203820405ff", "83018202039f0405ff",
    "83019f0203ff820405",
    "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
    "bf61610161629f0203ffff", "826161bf61626163ff", "bf6346756ef563416d7421ff",
]


@pytest.mark.parametrize(("value", "hex_bytes"), APPENDIX_A)
def test_appendix_a_encode(value, hex_bytes):
    assert encode(value) == bytes.fromhex(hex_bytes)


@pytest.mark.parametrize(("value", "hex_bytes"), APPENDIX_A)
def test_appendix_a_decode(value, hex_bytes):
    decoded = decode(bytes.fromhex(hex_bytes))
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize("hex_bytes", APPENDIX_A_OUTSIDE_SUBSET)
def test_appendix_a_outside_subset_rejected(hex_bytes):
    with pytest.raises(DecodeError):
        decode(bytes.fromhex(hex_bytes))


# RFC 8949 section 4.2.1: "the following keys are sorted correctly"; the
# integer and text-string keys of that list, which are the ones we allow.
SECTION_4_2_1_KEYS = [(10, "0a"), (100, "1864"), (-1, "20"), ("z", "617a"), ("aa", "626161")]


def test_section_4_2_1_key_order():
    value = {key: 0 for key, _ in reversed(SECTION_4_2_1_KEYS)}
    expected = "a5" + "".join(h + "00" for _, h in SECTION_4_2_1_KEYS)
    assert encode(value).hex() == expected
    assert decode(bytes.fromhex(expected)) == value


def test_length_first_order_is_rejected():
    # RFC 8949 section 4.2.3 (RFC 7049 "canonical") order: -1 before 100.
    # This is what cbor2.dumps(..., canonical=True) produces; 4.2.1 forbids it.
    with pytest.raises(DecodeError, match="bytewise lexicographic order"):
        decode(bytes.fromhex("a22002186401"))
    assert encode({-1: 2, 100: 1}).hex() == "a21864012002"


def test_bignum_boundaries():
    cases = {
        2**64 - 1: "1bffffffffffffffff",
        2**64: "c249010000000000000000",
        -(2**64): "3bffffffffffffffff",
        -(2**64) - 1: "c349010000000000000000",
        2**72: "c24a01" + "00" * 9,
        -(2**72) - 1: "c34a01" + "00" * 9,
        2**2048 - 1: "c2590100" + "ff" * 256,
    }
    for value, hex_bytes in cases.items():
        assert encode(value).hex() == hex_bytes
        assert decode(bytes.fromhex(hex_bytes)) == value


def test_integral_types_encode_by_value():
    big = gmpy2.mpz(3) ** 200
    assert encode(big) == encode(int(big))
    assert encode({"c": gmpy2.mpz(7)}) == encode({"c": 7})
    assert encode((1, (2, 3))) == encode([1, [2, 3]])
    assert encode(bytearray(b"ab")) == encode(b"ab")


# ---------------------------------------------------------------------------
# Hypothesis: the allowed data model
# ---------------------------------------------------------------------------

integers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 23, 24, 255, 256, 2**16, 2**32, 2**64 - 1, 2**64, -(2**64), -(2**64) - 1]),
    st.integers(min_value=-(2**600), max_value=2**600),
)
keys = st.one_of(st.integers(min_value=-(2**64), max_value=2**64 - 1), st.text(max_size=8))
scalars = st.one_of(integers, st.binary(max_size=40), st.text(max_size=20), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)


def _same(a, b):
    """Equality that also tells bool from int and list from tuple."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@given(values)
@settings(max_examples=200, deadline=None)
def test_round_trip(value):
    data = encode(value)
    assert _same(decode(data), value)
    assert encode(decode(data)) == data


@given(values)
@settings(max_examples=100, deadline=None)
def test_independent_decoder_agrees(value):
    # cbor2 as a second, independent decoder of what we emit.
    assert cbor2.loads(encode(value)) == value


@given(st.dictionaries(keys, st.integers(), min_size=2, max_size=12), st.randoms())
@settings(max_examples=100, deadline=None)
def test_map_order_is_bytewise_and_independent_of_insertion(mapping, rnd):
    items = list(mapping.items())
    rnd.shuffle(items)
    data = encode(dict(items))
    pairs = sorted(((encode(k), encode(v)) for k, v in items), key=lambda pair: pair[0])
    assert data == bytes([0xA0 + len(pairs)]) + b"".join(k + v for k, v in pairs)


# ---------------------------------------------------------------------------
# Strict decoding: each rejection with a crafted input
# ---------------------------------------------------------------------------

REJECTIONS = [
    # trailing bytes (Appendix F, kind 1)
    ("0000", "trailing"),
    ("a0f6", "trailing"),
    # truncated input (Appendix F, kind 2)
    ("", "truncated"),
    ("18", "truncated"),
    ("1901", "truncated"),
    ("1b01020304050607", "truncated"),
    ("38", "truncated"),
    ("41", "exceeds"),
    ("6261", "exceeds"),
    ("8200", "exceeds"),
    ("820018", "truncated"),
    ("a100", "exceeds"),
    ("a10018", "truncated"),
    ("a2010203", "exceeds"),
    ("a201020318", "truncated"),
    ("c2", "truncated"),
    ("c24901000000", "exceeds"),
    # non-shortest heads (section 4.2.1)
    ("1800", "non-shortest"),
    ("1817", "non-shortest"),
    ("1900ff", "non-shortest"),
    ("1a0000ffff", "non-shortest"),
    ("1b00000000ffffffff", "non-shortest"),
    ("3800", "non-shortest"),
    ("5800", "non-shortest"),
    ("780161", "non-shortest"),
    ("980100", "non-shortest"),
    ("b8010000", "non-shortest"),
    ("d802" "49" "01" + "00" * 8, "non-shortest"),
    # unsorted and duplicate map keys
    ("a2020001 00", "lexicographic"),
    ("a2626161 00 617a 00", "lexicographic"),
    ("a2617a00 1864 00", "lexicographic"),
    ("a2010001 00", "duplicate"),
    ("a2616100616100", "duplicate"),
    # invalid UTF-8 (RFC 8949 section 5.2 example 0x62c0ae, lone byte, surrogate, overlong)
    ("62c0ae", "UTF-8"),
    ("61ff", "UTF-8"),
    ("6180", "UTF-8"),
    ("63eda080", "UTF-8"),
    ("62c1bf", "UTF-8"),
    # declared lengths beyond the input (Appendix F): never allocated
    ("5affffffff00", "exceeds"),
    ("5bffffffffffffffff010203", "exceeds"),
    ("7affffffff00", "exceeds"),
    ("7b7fffffffffffffff010203", "exceeds"),
    ("9bffffffffffffffff00", "exceeds"),
    ("9a0100000000", "exceeds"),
    ("bbffffffffffffffff00", "exceeds"),
    ("a3000000", "exceeds"),
    ("c25bffffffffffffffff00", "exceeds"),
    # non-preferred bignums (section 3.4.3)
    ("c240", "preferred"),
    ("c3 40", "preferred"),
    ("c24100", "preferred"),
    ("c249" "00" "01" + "00" * 7, "preferred"),
    ("c24101", "64 bits"),
    ("c248ffffffffffffffff", "64 bits"),
    ("c348ffffffffffffffff", "64 bits"),
    ("c24a" "00" "01" + "00" * 8, "preferred"),
    ("c201", "byte string"),
    ("c2626161", "byte string"),
    ("c2c249010000000000000000", "byte string"),
    ("c25f" "49" "01" + "00" * 8 + "ff", "indefinite"),
    # outside the subset
    ("f93c00", "floating-point"),
    ("fa47c35000", "floating-point"),
    ("fb3ff199999999999a", "floating-point"),
    ("f7", "undefined"),
    ("e0", "simple value"),
    ("f3", "simple value"),
    ("f820", "simple value"),
    ("c01a514b67b0", "tag 0"),
    ("c4820001", "tag 4"),
    ("d8184100", "tag 24"),
    ("d9d9f700", "tag 55799"),
    ("5f4101ff", "indefinite"),
    ("7f6161ff", "indefinite"),
    ("9fff", "indefinite"),
    ("bfff", "indefinite"),
    ("ff", "break"),
    # map keys that are not integers or text strings
    ("a14100f6", "keys must be"),
    ("a1f400", "keys must be"),
    ("a1f600", "keys must be"),
    ("a18000", "keys must be"),
    ("a1a000", "keys must be"),
    ("a1c24901000000000000000000", "keys must be"),
    # not well-formed (Appendix F, kind 3)
    ("1c", "reserved"),
    ("3d", "reserved"),
    ("5e", "reserved"),
    ("fc", "reserved"),
    ("f800", "simple value"),
    ("f81f", "simple value"),
    ("1f", "not well-formed"),
    ("3f", "not well-formed"),
    ("df", "not well-formed"),
    ("81ff", "break"),
    ("a1ff00", "keys must be"),
    ("a100ff", "break"),
]


@pytest.mark.parametrize(("hex_bytes", "reason"), REJECTIONS)
def test_rejection(hex_bytes, reason):
    with pytest.raises(DecodeError, match=reason):
        decode(bytes.fromhex(hex_bytes.replace(" ", "")))


def test_nesting_limit():
    ok = b"\x81" * (DEFAULT_MAX_DEPTH - 1) + b"\x80"
    too_deep = b"\x81" * DEFAULT_MAX_DEPTH + b"\x80"
    assert decode(ok) == _nested(DEFAULT_MAX_DEPTH)
    with pytest.raises(DecodeError, match="nesting too deep"):
        decode(too_deep)
    maps_too_deep = b"\xa1\x00" * DEFAULT_MAX_DEPTH + b"\xa0"
    with pytest.raises(DecodeError, match="nesting too deep"):
        decode(maps_too_deep)
    assert decode(too_deep, max_depth=DEFAULT_MAX_DEPTH + 1) == _nested(DEFAULT_MAX_DEPTH + 1)
    with pytest.raises(DecodeError, match="nesting too deep"):
        decode(b"\x80", max_depth=0)
    assert decode(b"\x00", max_depth=0) == 0
    # Hostile nesting far beyond the limit never reaches Python's recursion limit.
    with pytest.raises(DecodeError, match="nesting too deep"):
        decode(b"\x81" * 100_000 + b"\x80")


def _nested(depth):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_size_limit():
    big = encode(b"\x00" * (DEFAULT_MAX_SIZE - 5))
    assert len(big) == DEFAULT_MAX_SIZE
    assert len(decode(big)) == DEFAULT_MAX_SIZE - 5
    over = encode(b"\x00" * (DEFAULT_MAX_SIZE - 4))
    with pytest.raises(DecodeError, match="exceeds max_size"):
        decode(over)
    with pytest.raises(DecodeError, match="exceeds max_size"):
        decode(encode([1, 2, 3]), max_size=3)
    assert decode(encode([1, 2, 3]), max_size=4) == [1, 2, 3]


def test_decode_input_types():
    assert decode(bytearray(b"\x01")) == 1
    assert decode(memoryview(b"\x41\x02")) == b"\x02"
    for bad in ("00", 0, None, [0]):
        with pytest.raises(DecodeError, match="expected bytes"):
            decode(bad)


def test_decode_bad_limits():
    for kwargs in ({"max_size": -1}, {"max_size": True}, {"max_depth": -1}, {"max_depth": 10_000}):
        with pytest.raises(ParameterError):
            decode(b"\x00", **kwargs)


def test_error_messages_carry_no_content():
    secret = bytes(range(200, 232))
    with pytest.raises(DecodeError) as info:
        decode(encode({"k": secret}) + b"\x00")
    assert secret.hex() not in str(info.value)


# ---------------------------------------------------------------------------
# Robustness: decode is total -- a value that re-encodes to the input, or DecodeError
# ---------------------------------------------------------------------------


def _decode_is_exact_or_rejects(data: bytes) -> None:
    try:
        value = decode(data)
    except DecodeError:
        return
    assert encode(value) == data


@given(st.binary(max_size=64))
@settings(max_examples=1000, deadline=None)
def test_decode_is_total_random_bytes(data):
    _decode_is_exact_or_rejects(data)


# Byte strings that look like CBOR: heads of every kind chained together.
cbor_like = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=255).map(lambda b: bytes([b])),
        st.sampled_from([b"\x18", b"\x19", b"\x1a", b"\x1b", b"\xc2", b"\xc3", b"\xa1", b"\x81",
                         b"\x49\x01", b"\x00" * 8, b"\xff" * 4, b"\x61\x61"]),
    ),
    max_size=24,
).map(b"".join)


@given(cbor_like)
@settings(max_examples=500, deadline=None)
def test_decode_is_total_cbor_like_bytes(data):
    _decode_is_exact_or_rejects(data)


@given(values, st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_decode_is_total_truncations_and_flips(value, data):
    encoded = encode(value)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(DecodeError):
        decode(encoded[:cut])
    position = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    replacement = data.draw(st.integers(min_value=0, max_value=255))
    flipped = bytearray(encoded)
    flipped[position] = replacement
    _decode_is_exact_or_rejects(bytes(flipped))
    extra = data.draw(st.binary(min_size=1, max_size=4))
    with pytest.raises(DecodeError):
        decode(encoded + extra)


def test_decode_is_total_every_flip_of_a_message():
    message = encode({"v": 1, "suite": "paillier-2048", "c": 3**1300, "ct": b"\x01" * 30,
                      -5: [True, False, None, -(2**64) - 7]})
    for position in range(len(message)):
        for replacement in (0x00, 0x18, 0x1B, 0x5B, 0x7B, 0x9B, 0xBB, 0xC2, 0xF7, 0xFF,
                            message[position] ^ 0x01, message[position] ^ 0x80):
            flipped = bytearray(message)
            flipped[position] = replacement
            _decode_is_exact_or_rejects(bytes(flipped))
        _decode_is_exact_or_rejects(message[:position])


# ---------------------------------------------------------------------------
# Encoding refusals
# ---------------------------------------------------------------------------

ENCODE_REFUSALS = [
    (1.5, "floating-point"),
    (float("nan"), "floating-point"),
    ([0.0], "floating-point"),
    ({1, 2}, "cannot be encoded"),
    (frozenset(), "cannot be encoded"),
    (object(), "cannot be encoded"),
    (memoryview(b"x"), "cannot be encoded"),
    ({True: 1}, "map key of type bool"),
    ({None: 1}, "map key of type NoneType"),
    ({b"k": 1}, "map key of type bytes"),
    ({(1, 2): 1}, "map key of type tuple"),
    ({1.0: 1}, "map key of type float"),
    ({2**64: 1}, "bignum map keys"),
    ({-(2**64) - 1: 1}, "bignum map keys"),
    ("\ud800", "lone surrogate"),
    ({"k": "\udfff"}, "lone surrogate"),
]


@pytest.mark.parametrize(("value", "reason"), ENCODE_REFUSALS)
def test_encode_refusal(value, reason):
    with pytest.raises(ParameterError, match=reason):
        encode(value)


def test_encode_depth_limit():
    assert encode(_nested(DEFAULT_MAX_DEPTH)) == b"\x81" * (DEFAULT_MAX_DEPTH - 1) + b"\x80"
    with pytest.raises(ParameterError, match="deeper than max_depth"):
        encode(_nested(DEFAULT_MAX_DEPTH + 1))
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(ParameterError, match="deeper than max_depth"):
        encode(cyclic)
    with pytest.raises(ParameterError):
        encode(0, max_depth=-1)


def test_encode_boundary_keys():
    assert decode(encode({2**64 - 1: 0, -(2**64): 0})) == {2**64 - 1: 0, -(2**64): 0}


# ---------------------------------------------------------------------------
# Typed messages
# ---------------------------------------------------------------------------

SCHEMA = {"v": int, "suite": str, "c": int, "aux": (bytes, type(None))}


def test_expect_map_accepts_exact_message():
    message = {"v": 1, "suite": "paillier-2048", "c": 2**2047 + 12345, "aux": None}
    data = encode(message)
    assert decode_map(data, SCHEMA) == message
    assert expect_map(decode(data), SCHEMA) == message


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"v": 1, "suite": "s", "c": 5}, "missing key 'aux'"),
        ({"v": 1, "suite": "s", "c": 5, "aux": None, "x": 0}, "unexpected key 'x'"),
        ({"v": 1, "suite": "s", "c": b"5", "aux": None}, "key 'c' must be int, got bytes"),
        ({"v": True, "suite": "s", "c": 5, "aux": None}, "key 'v' must be int, got bool"),
        ({"v": 1, "suite": "s", "c": 5, "aux": 0}, "key 'aux' must be bytes or NoneType"),
        ([1, 2], "expected a map, got list"),
    ],
)
def test_expect_map_rejects(message, reason):
    with pytest.raises(DecodeError, match=f"^hello: {reason}"):
        decode_map(encode(message), SCHEMA, name="hello")


def test_expect_map_bad_schema():
    with pytest.raises(ParameterError):
        expect_map({"x": 1.0}, {"x": float})
    with pytest.raises(ParameterError):
        expect_map({"x": 1}, {"x": ()})


def test_expect_map_integer_keys():
    schema = {1: int, -1: bytes}
    assert decode_map(encode({-1: b"k", 1: 3}), schema) == {1: 3, -1: b"k"}
    with pytest.raises(DecodeError, match="missing key -1"):
        decode_map(encode({1: 3}), schema)


# ---------------------------------------------------------------------------
# The encoder's fast paths and head() (used by protocols that lay out a fixed message)
# ---------------------------------------------------------------------------


class _Text(str):
    pass


class _Bytes(bytes):
    pass


class _Int(int):
    pass


@given(st.lists(st.one_of(st.binary(max_size=300), st.text(max_size=30),
                          st.integers(min_value=-(2**64), max_value=2**64 - 1), st.booleans(), st.none()),
                max_size=40))
@settings(max_examples=200, deadline=None)
def test_array_fast_paths_match_an_independent_encoder(items):
    """Arrays of byte strings and text take an inline path: same bytes as cbor2 writes."""
    assert encode(items) == cbor2.dumps(items)
    assert encode(tuple(items)) == encode(items)
    assert _same(decode(encode(items)), items)


def test_subclasses_take_the_general_path_with_the_same_bytes():
    assert encode([_Text("abc"), _Bytes(b"xy"), _Int(300)]) == encode(["abc", b"xy", 300])
    assert encode(_Text("\u00fc")) == bytes.fromhex("62c3bc")
    assert encode(["\u00fc", "a"]) == bytes.fromhex("8262c3bc6161")
    with pytest.raises(ParameterError, match="lone surrogate"):
        encode(["ok", "\ud800"])


def test_head_is_the_shortest_head():
    from protocols.primitives.cbor import head

    assert head(0, 23) == bytes.fromhex("17")
    assert head(0, 24) == bytes.fromhex("1818")
    assert head(2, 32) == bytes.fromhex("5820")
    assert head(2, 512) == bytes.fromhex("590200")
    assert head(3, 70000) == bytes.fromhex("7a00011170")
    assert head(4, 2**64 - 1) == bytes.fromhex("9bffffffffffffffff")
    for major, argument in ((8, 0), (-1, 0), (0, -1), (0, 2**64), (True, 0), (0, True), (0, 1.0)):
        with pytest.raises(ParameterError):
            head(major, argument)
