"""Deterministic CBOR for the project's wire messages (RFC 8949 section 4.2.1).

Every wire message is encoded with the "core deterministic encoding
requirements" of RFC 8949 (STD 94) section 4.2.1, restricted to the subset of
the CBOR data model that the protocols need, and every received message is
decoded by a strict, validity-checking decoder (section 5.4) that accepts a
byte string only if it is exactly the deterministic encoding of a value in
that subset.  So for every accepted input ``b``, ``encode(decode(b)) == b``.

The subset (specs/conventions.md, "Wire encoding"):

=====================  ==========================================  =============
Python                 CBOR                                        RFC 8949
=====================  ==========================================  =============
``int`` in             major type 0 (unsigned) or 1 (negative)     3.1
[-2**64, 2**64 - 1]
other ``int``          tag 2 / tag 3 bignum on a byte string       3.4.3
                       without leading zero bytes
``bytes``              major type 2, byte string                   3.1
``str``                major type 3, text string (valid UTF-8)     3.1
``list``               major type 4, array (tuples encode too)     3.1
``dict``               major type 5, map; keys ``int`` in the      3.1, 5.6
                       64-bit range or ``str``
``False/True/None``    simple values 20, 21, 22 (0xf4, f5, f6)     3.3
=====================  ==========================================  =============

Not in the subset, refused by :func:`encode` with
:class:`~protocols.errors.ParameterError` and rejected by :func:`decode` with
:class:`~protocols.errors.DecodeError`: floating-point numbers, ``undefined``
and every other simple value, every tag other than 2 and 3, indefinite-length
items, and map keys that are not integers (major type 0/1) or text strings.
The rule is: a problem with a Python value handed to ``encode`` is the
caller's ``ParameterError``; a problem with bytes handed to ``decode`` is a
``DecodeError``, whatever the cause (ill-formed, invalid, non-deterministic,
outside the subset, over a limit).

Deterministic encoding rules applied (section 4.2.1, with 4.1 and 4.2.2):

* every argument (integer value, string length, array/map count, tag number)
  in the shortest form (section 4.1);
* definite lengths only;
* map keys sorted by the bytewise lexicographic order of their encodings --
  not the "length-first" order of RFC 7049 section 3.9 / RFC 8949 section
  4.2.3 (this is why the project does not use ``cbor2.dumps(...,
  canonical=True)``, which sorts length-first: it encodes ``{100: 1, -1: 2}``
  as ``a2 20 02 1864 01`` where section 4.2.1 requires ``a2 1864 01 20 02``);
* integers that fit major types 0/1 never use a bignum, and bignum contents
  carry no leading zero bytes (sections 3.4.3 and 4.2.2, which recommends
  this preferred-serialization choice).

The decoder is the project's own, not a wrapper around ``cbor2.loads``:
``cbor2.loads`` accepts non-shortest heads (``18 00`` gives 0), unsorted
keys and duplicate keys (``a2 01 01 01 02`` gives ``{1: 2}``), so a wrapper
would have to re-encode and compare with our encoder anyway, after letting
a general-purpose decoder act on hostile input first.  Ours checks each rule
as it reads, and ``cbor2`` serves the tests as an independent second decoder.

Decoder limits (section 10, "Security Considerations": hostile lengths and
nesting): the whole input at most ``max_size`` bytes (default 1 MiB), at most
``max_depth`` arrays/maps open at once (default 16), and every declared length
or count is checked against the bytes that remain before anything is read or
allocated.  Duplicate map keys are rejected (section 5.6 allows a protocol to
treat them as an error; we do), as is invalid UTF-8 (section 5.3.1).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from protocols.errors import DecodeError, ParameterError
from protocols.primitives import opcount

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "decode",
    "decode_map",
    "encode",
    "expect_map",
    "head",
    "peek_kind",
]

DEFAULT_MAX_SIZE = 1 << 20
"""Largest input :func:`decode` accepts by default, in bytes (1 MiB)."""

DEFAULT_MAX_DEPTH = 16
"""Most arrays/maps that may be open at once (``[[...]]`` has depth 2)."""

_DEPTH_CEILING = 256
"""Hard ceiling on ``max_depth`` so that recursion can never exhaust the stack."""

# Major types, RFC 8949 section 3.1.
_MT_UINT, _MT_NINT, _MT_BYTES, _MT_TEXT, _MT_ARRAY, _MT_MAP, _MT_TAG, _MT_SIMPLE = range(8)
_MAJOR_NAMES = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple value or float",
)

# Tag numbers 2 and 3: unsigned and negative bignums, RFC 8949 section 3.4.3.
_TAG_BIGNUM_POS = 2
_TAG_BIGNUM_NEG = 3

# Simple values, RFC 8949 section 3.3, Table 4.
_SIMPLE_FALSE, _SIMPLE_TRUE, _SIMPLE_NULL, _SIMPLE_UNDEFINED = 20, 21, 22, 23

_UINT64_LIMIT = 1 << 64
"""Major types 0 and 1 hold arguments in [0, 2**64 - 1] (section 3.1)."""

# Additional information 24..27: the argument follows in 1, 2, 4 or 8 bytes
# (section 3); the smallest argument for which each width is the shortest
# form (section 4.2.1, first bullet).
_ARG_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}
_ARG_MINIMUM = {24: 24, 25: 1 << 8, 26: 1 << 16, 27: 1 << 32}


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


def _head(major: int, argument: int) -> bytes:
    """The head of a data item with the shortest argument (RFC 8949 sections 3, 4.2.1)."""
    initial = major << 5
    if argument < 24:
        return bytes((initial | argument,))
    if argument < 1 << 8:
        return bytes((initial | 24, argument))
    if argument < 1 << 16:
        return bytes((initial | 25,)) + argument.to_bytes(2, "big")
    if argument < 1 << 32:
        return bytes((initial | 26,)) + argument.to_bytes(4, "big")
    return bytes((initial | 27,)) + argument.to_bytes(8, "big")


def head(major: int, argument: int) -> bytes:
    """The shortest head of major type ``major`` (0-7) with ``argument`` in [0, 2**64)
    (RFC 8949 sections 3, 4.2.1): for callers that lay out a fixed message themselves."""
    if type(major) is not int or not 0 <= major <= 7:
        raise ParameterError("major type must be an integer in [0, 7]")
    if type(argument) is not int or not 0 <= argument < _UINT64_LIMIT:
        raise ParameterError("head argument must be an integer in [0, 2**64 - 1]")
    return _head(major, argument)


def _encode_int(value: int) -> bytes:
    """An integer in preferred serialization (RFC 8949 sections 3.1, 3.4.3, 4.2.2).

    Major type 0 or 1 whenever the value fits; otherwise tag 2 (value n) or
    tag 3 (value -1 - n) on the big-endian bytes of n without leading zeros.
    """
    if 0 <= value < _UINT64_LIMIT:
        return _head(_MT_UINT, value)
    if -_UINT64_LIMIT <= value < 0:
        return _head(_MT_NINT, -1 - value)
    if value > 0:
        tag, n = _TAG_BIGNUM_POS, value
    else:
        tag, n = _TAG_BIGNUM_NEG, -1 - value
    content = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return _head(_MT_TAG, tag) + _head(_MT_BYTES, len(content)) + content


def _encode_text(value: str) -> bytes:
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParameterError(
            "text string is not valid Unicode (it holds a lone surrogate) and "
            "has no UTF-8 encoding (RFC 8949 section 3.1, major type 3)"
        ) from None
    return _head(_MT_TEXT, len(raw)) + raw


def _encode_key(key: object) -> bytes:
    """A map key: an integer in the 64-bit range or a text string (section 5.6)."""
    if isinstance(key, str):
        return _encode_text(key)
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        value = int(key)
        if not -_UINT64_LIMIT <= value < _UINT64_LIMIT:
            raise ParameterError(
                "map key integer is outside [-2**64, 2**64 - 1]; bignum map keys are not allowed"
            )
        return _encode_int(value)
    raise ParameterError(
        f"map key of type {type(key).__name__} is not allowed; keys are integers or text strings"
    )


def _encode_item(obj: object, depth: int, max_depth: int) -> bytes:
    # Exact built-in types first (the common case, and bool is not int here);
    # subclasses and other types take the general checks below.
    if type(obj) is bytes:
        return _head(_MT_BYTES, len(obj)) + obj
    if type(obj) is str:
        return _encode_text(obj)
    if type(obj) is int:
        return _encode_int(obj)
    # bool before int: bool is a subclass of int in Python.
    if obj is False:
        return bytes((0xE0 | _SIMPLE_FALSE,))
    if obj is True:
        return bytes((0xE0 | _SIMPLE_TRUE,))
    if obj is None:
        return bytes((0xE0 | _SIMPLE_NULL,))
    if isinstance(obj, numbers.Integral) and not isinstance(obj, bool):
        return _encode_int(int(obj))
    if isinstance(obj, (bytes, bytearray)):
        return _head(_MT_BYTES, len(obj)) + bytes(obj)
    if isinstance(obj, str):
        return _encode_text(obj)
    if isinstance(obj, (list, tuple)):
        if depth >= max_depth:
            raise ParameterError(f"value nests arrays/maps deeper than max_depth {max_depth}")
        parts = [_head(_MT_ARRAY, len(obj))]
        append = parts.append
        for item in obj:
            # byte strings and ASCII text inline (what long arrays hold); the rest in full
            kind = type(item)
            if kind is bytes:
                append(_head(_MT_BYTES, len(item)))
                append(item)
            elif kind is str and item.isascii():
                append(_head(_MT_TEXT, len(item)))
                append(item.encode("ascii"))
            else:
                append(_encode_item(item, depth + 1, max_depth))
        return b"".join(parts)
    if isinstance(obj, Mapping):
        if depth >= max_depth:
            raise ParameterError(f"value nests arrays/maps deeper than max_depth {max_depth}")
        # Sort on the encoded key alone (section 4.2.1); values are never compared.
        pairs = sorted(
            ((_encode_key(key), value) for key, value in obj.items()), key=lambda pair: pair[0]
        )
        parts = [_head(_MT_MAP, len(pairs))]
        previous = None
        for key_bytes, value in pairs:
            if key_bytes == previous:
                raise ParameterError("map has two keys with the same encoding")
            previous = key_bytes
            parts.append(key_bytes)
            parts.append(_encode_item(value, depth + 1, max_depth))
        return b"".join(parts)
    if isinstance(obj, float):
        raise ParameterError(
            "floating-point values are not allowed on the wire (RFC 8949 section 4.2.2 "
            "leaves float rules to the protocol; this project excludes floats)"
        )
    raise ParameterError(f"values of type {type(obj).__name__} cannot be encoded")


def encode(obj: object, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode ``obj`` with RFC 8949 section 4.2.1 core deterministic encoding.

    Inputs validation: ``obj`` must be in the project's subset (module
    docstring); integers may be ``int``, any other ``numbers.Integral`` (such
    as ``gmpy2.mpz``) and are encoded by value.  Tuples encode as arrays;
    any ``Mapping`` encodes as a map.  Anything else -- floats, sets, bool or
    bytes map keys, strings with lone surrogates, nesting deeper than
    ``max_depth`` (which also stops self-referencing containers) -- raises
    :class:`~protocols.errors.ParameterError`.

    Procedure: shortest-form heads (section 4.1), definite lengths, map entries
    ordered by the bytewise lexicographic order of the encoded keys (section
    4.2.1), bignums only outside the 64-bit range and without leading zero
    bytes (sections 3.4.3, 4.2.2).
    """
    _check_depth_parameter(max_depth)
    out = _encode_item(obj, 0, max_depth)
    opcount.record("cbor_encode_byte", len(out))  # once per call, by output length (specs/costs.md 2.1)
    return out


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


class _Decoder:
    """Strict decoder over one input buffer; every read checks bounds first."""

    __slots__ = ("data", "pos", "max_depth")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str, offset: int) -> bytes:
        """Consume ``n`` bytes, checking first that they are there (section 3)."""
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise DecodeError(
                f"truncated input: {what} at offset {offset} needs {n} more bytes, "
                f"{self.remaining()} remain"
            )
        self.pos = end
        return self.data[start:end]

    def peek_major(self, what: str) -> int:
        if self.remaining() < 1:
            raise DecodeError(f"truncated input: {what} expected at offset {self.pos}")
        return self.data[self.pos] >> 5

    def head(self) -> tuple[int, int, int]:
        """Read one head; return (major type, argument, offset of the head).

        RFC 8949 section 3: additional information < 24 is the argument;
        24..27 take 1, 2, 4, 8 more bytes, which must be the shortest form
        (section 4.2.1); 28..30 are not well-formed; 31 is indefinite length,
        "break", or not well-formed, all rejected here.  Major type 7 is
        handled completely: only false, true, null (section 3.3) pass.
        """
        offset = self.pos
        data = self.data
        if offset >= len(data):
            raise DecodeError(f"truncated input: data item expected at offset {offset}")
        initial = data[offset]
        self.pos = offset + 1
        major, info = initial >> 5, initial & 0x1F
        if major == _MT_SIMPLE:
            return major, self._simple(info, offset), offset
        if info < 24:
            return major, info, offset
        width = _ARG_WIDTH.get(info)
        if width is not None:
            end = offset + 1 + width
            if end > len(data):
                self.take(width, f"{width}-byte argument of the head", offset)  # raises
            self.pos = end
            argument = int.from_bytes(data[offset + 1:end], "big")
            if argument < _ARG_MINIMUM[info]:
                raise DecodeError(
                    f"non-shortest head at offset {offset}: {_MAJOR_NAMES[major]} argument "
                    f"{argument} encoded in a {width}-byte field (RFC 8949 section 4.2.1)"
                )
            return major, argument, offset
        if info == 31:
            if major in (_MT_BYTES, _MT_TEXT, _MT_ARRAY, _MT_MAP):
                raise DecodeError(
                    f"indefinite-length {_MAJOR_NAMES[major]} at offset {offset} is not "
                    "allowed (RFC 8949 section 4.2.1)"
                )
            raise DecodeError(
                f"not well-formed: additional information 31 with major type {major} "
                f"at offset {offset} (RFC 8949 section 3)"
            )
        raise DecodeError(
            f"not well-formed: reserved additional information {info} at offset {offset} "
            "(RFC 8949 section 3)"
        )

    def _simple(self, info: int, offset: int) -> int:
        """Major type 7 (RFC 8949 section 3.3): keep false, true, null only."""
        if info in (_SIMPLE_FALSE, _SIMPLE_TRUE, _SIMPLE_NULL):
            return info
        if info == _SIMPLE_UNDEFINED:
            raise DecodeError(f"undefined (0xf7) at offset {offset} is not allowed")
        if info in (25, 26, 27):
            raise DecodeError(f"floating-point value at offset {offset} is not allowed")
        if info == 24:
            raise DecodeError(
                f"two-byte simple value (0xf8) at offset {offset} is not allowed "
                "(values below 32 are not well-formed, the rest are not in the subset)"
            )
        if info == 31:
            raise DecodeError(
                f"break stop code (0xff) at offset {offset}: indefinite-length items are not allowed"
            )
        if info < 20:
            raise DecodeError(f"unassigned simple value {info} at offset {offset} is not allowed")
        raise DecodeError(
            f"not well-formed: reserved additional information {info} in major type 7 "
            f"at offset {offset} (RFC 8949 section 3)"
        )

    def check_count(self, count: int, min_bytes_each: int, what: str, offset: int) -> None:
        """A declared length must fit in what remains before anything is read."""
        if count > self.remaining() // min_bytes_each:
            raise DecodeError(
                f"declared {what} {count} at offset {offset} exceeds the "
                f"{self.remaining()} remaining bytes of input"
            )

    def item(self, depth: int) -> Any:
        """Decode one data item; ``depth`` counts the arrays/maps enclosing it."""
        major, argument, offset = self.head()
        if major == _MT_BYTES:
            start = self.pos
            end = start + argument
            if end > len(self.data):
                self.check_count(argument, 1, "byte string length", offset)  # raises
            self.pos = end
            return self.data[start:end]
        if major == _MT_UINT:
            return argument
        if major == _MT_NINT:
            return -1 - argument
        if major == _MT_TEXT:
            self.check_count(argument, 1, "text string length", offset)
            raw = self.take(argument, "text string", offset)
            try:
                return raw.decode("utf-8", "strict")
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"text string at offset {offset} is not valid UTF-8 (content byte "
                    f"{exc.start}: {exc.reason}; RFC 8949 section 5.3.1)"
                ) from None
        if major == _MT_ARRAY:
            self.enter(depth, offset)
            self.check_count(argument, 1, "array count", offset)
            return self.array_items(argument, depth + 1)
        if major == _MT_MAP:
            self.enter(depth, offset)
            self.check_count(argument, 2, "map pair count", offset)
            return self.map_entries(argument, depth + 1)
        if major == _MT_TAG:
            return self.bignum(argument, offset)
        # Major type 7: head() let only false, true and null through.
        return {_SIMPLE_FALSE: False, _SIMPLE_TRUE: True, _SIMPLE_NULL: None}[argument]

    def array_items(self, count: int, depth: int) -> list:
        """The items of an array.  Byte and text strings with a head of one to three
        bytes that is shortest, fits the input and (text) holds valid UTF-8 are read
        inline -- the common case of long arrays; any other item, including every
        faulty one, is read again by :meth:`item`, which makes every check and
        raises the error it always raised."""
        data = self.data
        size = len(data)
        items: list[Any] = []
        append = items.append
        for _ in range(count):
            pos = self.pos
            initial = data[pos] if pos < size else 0xFF
            major, info = initial >> 5, initial & 0x1F
            if major == _MT_BYTES or major == _MT_TEXT:
                if info < 24:
                    start = pos + 1
                    end = start + info
                elif info == 24 and pos + 1 < size and data[pos + 1] >= 24:
                    start = pos + 2
                    end = start + data[pos + 1]
                elif info == 25 and pos + 2 < size and data[pos + 1]:  # 256 <= length < 65536
                    start = pos + 3
                    end = start + (data[pos + 1] << 8 | data[pos + 2])
                else:
                    end = size + 1
                if end <= size:
                    if major == _MT_BYTES:
                        self.pos = end
                        append(data[start:end])
                        continue
                    try:
                        text = data[start:end].decode("utf-8", "strict")
                    except UnicodeDecodeError:
                        pass
                    else:
                        self.pos = end
                        append(text)
                        continue
            append(self.item(depth))
        return items

    def enter(self, depth: int, offset: int) -> None:
        if depth >= self.max_depth:
            raise DecodeError(
                f"nesting too deep at offset {offset}: more than {self.max_depth} "
                "arrays/maps open at once"
            )

    def map_entries(self, count: int, depth: int) -> dict:
        """Map pairs with keys in strictly ascending bytewise order (section 4.2.1)."""
        result: dict = {}
        previous: bytes | None = None
        for _ in range(count):
            start = self.pos
            major = self.peek_major("map key")
            if major not in (_MT_UINT, _MT_NINT, _MT_TEXT):
                raise DecodeError(
                    f"map key at offset {start} is a {_MAJOR_NAMES[major]}; keys must be "
                    "integers (major type 0/1) or text strings"
                )
            key = self.item(depth)
            key_bytes = self.data[start : self.pos]
            if previous is not None:
                if key_bytes == previous:
                    raise DecodeError(f"duplicate map key at offset {start} (RFC 8949 section 5.6)")
                if key_bytes < previous:
                    raise DecodeError(
                        f"map keys not in bytewise lexicographic order at offset {start} "
                        "(RFC 8949 section 4.2.1)"
                    )
            previous = key_bytes
            result[key] = self.item(depth)
        return result

    def bignum(self, tag: int, offset: int) -> int:
        """Tag 2 or 3 on a byte string, in preferred serialization (section 3.4.3).

        The content must be a definite byte string of at least 9 bytes with a
        non-zero first byte: anything shorter fits major type 0/1, which
        preferred serialization must use instead (sections 3.4.3, 4.2.2).
        """
        if tag not in (_TAG_BIGNUM_POS, _TAG_BIGNUM_NEG):
            raise DecodeError(f"tag {tag} at offset {offset} is not allowed (only bignum tags 2, 3)")
        if self.peek_major("bignum content") != _MT_BYTES:
            raise DecodeError(
                f"bignum tag {tag} at offset {offset} must enclose a byte string "
                "(RFC 8949 section 3.4.3)"
            )
        _, length, content_offset = self.head()
        self.check_count(length, 1, "bignum length", content_offset)
        content = self.take(length, "bignum content", content_offset)
        if length == 0 or content[0] == 0:
            raise DecodeError(
                f"bignum at offset {offset} is not in preferred serialization: "
                "empty or leading zero byte (RFC 8949 section 3.4.3)"
            )
        if length <= 8:
            raise DecodeError(
                f"bignum at offset {offset} fits in 64 bits and must be encoded as a "
                "major type 0/1 integer (RFC 8949 sections 3.4.3, 4.2.2)"
            )
        n = int.from_bytes(content, "big")
        return n if tag == _TAG_BIGNUM_POS else -1 - n


def _check_depth_parameter(max_depth: object) -> None:
    if (
        not isinstance(max_depth, int)
        or isinstance(max_depth, bool)
        or not 0 <= max_depth <= _DEPTH_CEILING
    ):
        raise ParameterError(f"max_depth must be an integer in [0, {_DEPTH_CEILING}]")


def decode(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Decode exactly one deterministically encoded data item (RFC 8949 section 4.2.1).

    Inputs validation, before any decoding: ``data`` is ``bytes``,
    ``bytearray`` or ``memoryview`` of at most ``max_size`` bytes.  Then, while
    decoding, every length and count is checked against the remaining input
    before it is used, and the item is rejected with
    :class:`~protocols.errors.DecodeError` (a message naming the fault and
    its offset) if it is:

    * not well-formed (section 3, Appendix F): truncated, reserved additional
      information, additional information 31 on major type 0/1/6, a stray
      break, trailing bytes after the item;
    * not deterministic (section 4.2.1): a non-shortest head, an indefinite
      length, map keys out of bytewise lexicographic order, a non-preferred
      bignum (section 3.4.3);
    * not valid (section 5.3.1): duplicate map keys, invalid UTF-8;
    * outside the subset: floats, undefined or other simple values, tags
      other than 2 and 3, map keys other than integers and text strings;
    * over a limit: more than ``max_depth`` arrays/maps open at once.

    Returns ``int``, ``bytes``, ``str``, ``list``, ``dict``, ``bool`` or
    ``None``; ``encode(decode(data)) == data`` whenever this returns.
    ``ParameterError`` is raised only for bad ``max_size`` / ``max_depth``.
    """
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0:
        raise ParameterError("max_size must be a non-negative integer")
    _check_depth_parameter(max_depth)
    if isinstance(data, memoryview):
        size = data.nbytes
    elif isinstance(data, (bytes, bytearray)):
        size = len(data)
    else:
        raise DecodeError(f"expected bytes to decode, got {type(data).__name__}")
    if size > max_size:
        raise DecodeError(f"input of {size} bytes exceeds max_size {max_size}")
    opcount.record("cbor_decode_byte", size)  # once per call, by input length (specs/costs.md 2.1)
    decoder = _Decoder(bytes(data), max_depth)
    value = decoder.item(0)
    if decoder.remaining():
        raise DecodeError(
            f"{decoder.remaining()} trailing bytes after the data item at offset {decoder.pos}"
        )
    return value


# ---------------------------------------------------------------------------
# Typed protocol messages
# ---------------------------------------------------------------------------


def peek_kind(data: bytes | bytearray) -> str | None:
    """The kind of a protocol message, read from its first bytes without decoding it.

    The protocols whose messages are maps ``{1: version, 2: kind, ...}`` with a version below 24
    and a kind of at most 23 ASCII characters have, in the deterministic encoding (RFC 8949
    section 4.2.1, keys in bytewise order), exactly the prefix ``A2..B7 01 <version> 02 <60+len>
    <kind>``.  This returns ``kind`` for input that starts so, else None, reading at most 28
    bytes: the caller picks the kind's size limit before it decodes anything (issue 16, H1).
    """
    if len(data) < 5 or not 0xA2 <= data[0] <= 0xB7 or data[1] != 0x01 or data[2] > 0x17 or data[3] != 0x02:
        return None
    length = data[4] - 0x60
    if not 1 <= length <= 23 or len(data) < 5 + length:
        return None
    text = bytes(data[5:5 + length])
    return text.decode("ascii") if text.isascii() else None

_SCHEMA_TYPES = (int, bytes, str, list, dict, bool, type(None))


def _key_label(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def expect_map(obj: object, schema: Mapping[Any, Any], *, name: str = "message") -> dict:
    """Check a decoded value is a map with exactly ``schema``'s keys and types.

    ``schema`` maps each key to a type or a tuple of types drawn from
    ``int, bytes, str, list, dict, bool, type(None)``.  Types are matched
    exactly as :func:`decode` produces them, so ``True`` is not an ``int``.
    Raises :class:`~protocols.errors.DecodeError` naming the message and the
    key that is missing, unexpected or of the wrong type; returns ``obj``.

    Example: ``expect_map(decode(b), {"v": int, "suite": str, "c": int})``.
    Range checks (``v == 1``, ``0 < c < n**2``) stay with the caller.
    """
    expected: dict[Any, tuple[type, ...]] = {}
    for key, types in schema.items():
        allowed = types if isinstance(types, tuple) else (types,)
        if not allowed or any(t not in _SCHEMA_TYPES for t in allowed):
            raise ParameterError(f"schema for key {_key_label(key)} names a type decode never returns")
        expected[key] = allowed
    if not isinstance(obj, dict):
        raise DecodeError(f"{name}: expected a map, got {type(obj).__name__}")
    for key in expected:
        if key not in obj:
            raise DecodeError(f"{name}: missing key {_key_label(key)}")
    for key in obj:
        if key not in expected:
            raise DecodeError(f"{name}: unexpected key {_key_label(key)}")
    for key, allowed in expected.items():
        if type(obj[key]) not in allowed:
            wanted = " or ".join(t.__name__ for t in allowed)
            raise DecodeError(
                f"{name}: key {_key_label(key)} must be {wanted}, got {type(obj[key]).__name__}"
            )
    return obj


def decode_map(
    data: bytes,
    schema: Mapping[Any, Any],
    *,
    name: str = "message",
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> dict:
    """:func:`decode` then :func:`expect_map`: a typed protocol message in one call."""
    return expect_map(decode(data, max_size=max_size, max_depth=max_depth), schema, name=name)
