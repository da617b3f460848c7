"""The line format of role processes (specs/roles.md section 2).

One JSON object per line: ``{"from": ID, "to": ID, "type": TYPE, "body": B64}``
with ``body`` the message's bytes (the protocol spec's deterministic CBOR) in
standard base64 with padding.  Parsing is strict and bounded: the line length
is checked before any JSON is parsed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from protocols.errors import DecodeError, shown
from protocols.primitives import cbor

HARNESS = "env"
"""The sender id of inputs from a role's environment (its clock, sensor, console, the harness)."""

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest message body (spec 2.2); every protocol's own limits are smaller."""
MAX_LINE_BYTES = 4 * ((MAX_BODY_BYTES + 2) // 3) + 512
"""A line: the base64 body plus the JSON object around it (ids and type at most 64 characters each)."""
MAX_ID_CHARS = 64
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TYPE = re.compile(r"[a-z0-9.-]{1,64}")

OK, REFUSED = "ok", "refused"
"""The status types the framework sends after every input (spec 2.3); no handler sends them."""
MAX_REFUSAL_TEXT = 1024


def check_id(value: object, what: str) -> str:
    """``DecodeError`` unless ``value`` is an id: 1..64 characters of ``[A-Za-z0-9._:-]``."""
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise DecodeError(f"{what} must be 1 to {MAX_ID_CHARS} characters of [A-Za-z0-9._:-], got {shown(value)}")
    return value


def check_type(value: object) -> str:
    """``DecodeError`` unless ``value`` is a message type: 1..64 characters of ``[a-z0-9.-]``."""
    if not isinstance(value, str) or _TYPE.fullmatch(value) is None:
        raise DecodeError(f"type must be 1 to 64 characters of [a-z0-9.-], got {shown(value)}")
    return value


@dataclass(frozen=True)
class Envelope:
    """One message between parties: its sender, recipient, type and body bytes."""

    sender: str
    to: str
    type: str
    body: bytes = b""

    def __post_init__(self) -> None:
        check_id(self.sender, "from")
        check_id(self.to, "to")
        check_type(self.type)
        if not isinstance(self.body, bytes) or len(self.body) > MAX_BODY_BYTES:
            raise DecodeError(f"body must be at most {MAX_BODY_BYTES} bytes")

    def line(self) -> bytes:
        """The JSON line, keys in the order from, to, type, body, no spaces, ending in a newline."""
        text = json.dumps({"from": self.sender, "to": self.to, "type": self.type,
                           "body": base64.b64encode(self.body).decode("ascii")}, separators=(",", ":"))
        return text.encode("ascii") + b"\n"

    def __repr__(self) -> str:
        return f"Envelope({self.sender} -> {self.to}, {self.type}, {len(self.body)} bytes)"


def parse_line(line: bytes) -> Envelope:
    """Spec 2.1: one line (with or without its newline) -> an :class:`Envelope`, or ``DecodeError``."""
    if not isinstance(line, (bytes, bytearray)):
        raise DecodeError("a line must be bytes")
    if len(line) > MAX_LINE_BYTES:
        raise DecodeError(f"line of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
    try:
        obj = json.loads(bytes(line))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DecodeError(f"a line must be one JSON object: {type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise DecodeError("a line must be one JSON object")
    keys = set(obj)
    if keys != {"from", "to", "type", "body"}:
        missing, extra = sorted({"from", "to", "type", "body"} - keys), sorted(keys - {"from", "to", "type", "body"})
        raise DecodeError(f"a line has exactly the keys from, to, type, body (missing {missing}, unexpected "
                          f"{[shown(k) for k in extra][:3]})")
    body = obj["body"]
    if not isinstance(body, str):
        raise DecodeError("body must be a base64 string")
    try:
        raw = base64.b64decode(body.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise DecodeError("body is not standard base64 with padding") from None
    if base64.b64encode(raw).decode("ascii") != body:
        raise DecodeError("body is not canonical base64")
    return Envelope(check_id(obj["from"], "from"), check_id(obj["to"], "to"), check_type(obj["type"]), raw)


def refusal_body(error: str, message: str) -> bytes:
    """Spec 2.3: the body of a ``refused`` line, CBOR ``{1: error name, 2: message}``."""
    return cbor.encode({1: error[:MAX_ID_CHARS], 2: message[:MAX_REFUSAL_TEXT]})


def read_refusal(body: bytes) -> tuple[str, str]:
    """The (error name, message) of a ``refused`` body, or ``DecodeError``."""
    m = cbor.decode_map(body, {1: str, 2: str}, name="refused", max_size=4 * MAX_REFUSAL_TEXT + 512)
    return m[1], m[2]
