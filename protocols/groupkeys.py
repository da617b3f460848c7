"""Group key management with threshold-approved critical commands.

Implements specs/groupkeys.md.  Roles (spec 1.2): the head-end's group key
*controller*, which keeps the logical key hierarchy (``protocols.schemes.lkh``)
and signs routine messages; the *meters*, the group's members; and the
*operators*, t of n of whom must jointly sign every critical command with
FROST(Ed25519, SHA-512) (RFC 9591, ``protocols.schemes.frost``), so that a
meter verifies one ordinary Ed25519 signature.

Section map (spec section: code):

- 4   messages ............................ :func:`decode_message`, the ``encode_*`` functions
- 5   routine rekeys (join, leave, batch) .. :meth:`Controller.rekey`, :meth:`Meter.receive`
- 6   group data .......................... :meth:`Controller.send`, :meth:`Meter.receive`
- 7   resync and catch-up ................. :meth:`Controller.resync`
- 8   critical commands ................... :class:`Operator`, :func:`sign_command`, :meth:`Meter.receive`
- 8.6 checkpoints and provisioning ........ :func:`checkpoint_body`, :meth:`Meter.provision`
- 9   recovery ............................ :func:`directory_hash`, :meth:`Controller.recover`

Every decoder validates before it computes; a meter's state changes only when
a message is accepted whole (spec 5.3).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocols import limits
from protocols.errors import (
    DecodeError,
    ParameterError,
    ReplayError,
    ResyncRequiredError,
    StateError,
    VerificationError,
)
from protocols.primitives import cbor
from protocols.primitives import hashing, opcount
from protocols.primitives.aead import ChaCha20Poly1305
from protocols.primitives.rand import RandomSource, resolve
from protocols.primitives import ed25519
from protocols.schemes import frost, hpke, lkh

__all__ = [
    "ACTIONS", "DOMAIN", "MAX_LIFETIME", "VERSION", "Command", "Controller", "ControllerState", "Meter",
    "MeterState", "Operator", "OperatorState", "checkpoint_body", "command_body", "command_key", "command_tbs",
    "decode_message", "directory_hash", "encode_command", "message_tbs", "operator_ceremony", "sign_command",
]

VERSION = 1
DOMAIN = b"usapp-groupkeys-v1"
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32
LIMITS = limits.GROUPKEYS
"""Spec 4.1: every size and range of the messages (protocols/limits.py)."""
MAX_GROUP_BYTES = LIMITS.group_bytes
MAX_MEMBER_BYTES = LIMITS.member_bytes
MAX_EPOCH = LIMITS.max_epoch
MAX_SEQ = LIMITS.max_seq
MAX_MESSAGE_BYTES = LIMITS.max_message_bytes
"""64 MiB: a batch rekey of a million-member group with 1% churn is about 3.5 MB."""
MAX_DATA_BYTES = LIMITS.data_bytes
MAX_TIME = LIMITS.max_time
"""Times are unsigned seconds since 1970-01-01T00:00:00Z (spec 4.1)."""
MAX_LIFETIME = LIMITS.max_lifetime
"""Spec 8.4: a meter refuses an operator-signed message whose not-after lies further ahead of its clock."""
DIRECTORY_BYTES = 32

KINDS = ("rekey", "resync", "data", "command", "checkpoint")
OPERATOR_KINDS = ("command", "checkpoint")
"""The kinds signed by t operators under the command key (spec 8); the others by the controller."""
ACTIONS = ("disconnect", "disconnect-all", "reconnect", "reconnect-all", "rekey-group", "set-command-key")
"""The critical commands of spec 8.1; routine messages can carry none of them."""

# Spec 4: CBOR map keys per message kind (keys 1-3 are version, kind, group).
_SCHEMAS = {
    "rekey": {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: int, 7: int, 8: list, 9: list, 10: bytes},
    "resync": {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: bytes, 7: bytes, 8: bytes, 9: bytes},
    "data": {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: int, 7: bytes, 8: bytes},
    "command": {1: int, 2: str, 3: bytes, 4: int, 5: str, 6: dict, 7: int, 8: int, 9: bytes},
    "checkpoint": {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: bytes, 7: int, 8: bytes},
}
_SIG_KEY = {"rekey": 10, "resync": 9, "data": 8, "command": 9, "checkpoint": 8}
_ARGS: dict[str, dict[int, type]] = {
    "disconnect": {1: list},
    "disconnect-all": {},
    "reconnect": {1: list},
    "reconnect-all": {},
    "rekey-group": {1: int, 2: bytes, 3: bytes},
    "set-command-key": {1: bytes},
}
_PATH = {1: int, 2: int, 3: list}

_Q = struct.Struct(">Q")
_L = struct.Struct(">L")


def _lp(data: bytes) -> bytes:
    return bytes([len(data)]) + data


# ---------------------------------------------------------------------------
# Spec 4: messages
# ---------------------------------------------------------------------------


def message_tbs(kind: str, body: Mapping[int, object]) -> bytes:
    """Spec 4.1: DOMAIN || lp(kind) || CBOR(the message without its signature)."""
    return DOMAIN + _lp(kind.encode()) + cbor.encode(dict(body))


def _uint(value: int, bound: int, what: str) -> int:
    if not 0 <= value <= bound:  # type already checked by expect_map
        raise DecodeError(f"{what} out of range [0, {bound}]")
    return value


def _bstr(value: bytes, low: int, high: int, what: str) -> bytes:
    if not low <= len(value) <= high:
        raise DecodeError(f"{what} must be {low}..{high} bytes" if low != high else f"{what} must be {low} bytes")
    return value


def _check_group(group: object) -> bytes:
    if not isinstance(group, bytes) or not 1 <= len(group) <= MAX_GROUP_BYTES:
        raise ParameterError(f"group must be 1..{MAX_GROUP_BYTES} bytes")
    return group


def _check_member(member: object) -> bytes:
    if not isinstance(member, bytes) or not 1 <= len(member) <= MAX_MEMBER_BYTES:
        raise ParameterError(f"a member id must be 1..{MAX_MEMBER_BYTES} bytes")
    return member


def _check_public_key(key: object, what: str) -> bytes:
    if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_BYTES:
        raise ParameterError(f"{what} must be a {PUBLIC_KEY_BYTES}-byte Ed25519 public key")
    try:
        ed25519.DeserializeElement(key)
    except DecodeError as e:
        raise ParameterError(f"{what}: {e} (spec 3.2)") from None
    return key


def message_kind(data: object) -> str:
    """Spec 4.1: the kind of a group message and its size within the kind's limit, before decoding.

    The kind is read from the message's first bytes (``cbor.peek_kind``); a message that does not
    start as a group message does, or is longer than ``LIMITS.message_bytes[kind]``, is a
    ``DecodeError`` and nothing of it is decoded.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError("a group message must be bytes")
    kind = cbor.peek_kind(data)
    if kind not in KINDS:
        raise DecodeError("not a group message: key 2 must name one of " + ", ".join(KINDS))
    limit = LIMITS.message_bytes[kind]
    if len(data) > limit:
        raise DecodeError(f"{kind}: {len(data)} bytes exceeds the limit of {limit} bytes (spec 4.1)")
    return kind


def authenticate_raw(data: bytes | bytearray, kind: str, public_key: bytes) -> None:
    """Spec 4.1: a message over ``LIMITS.authenticate_before_decode_bytes`` is verified before it is decoded.

    The signature has the largest key (below 24) of the kind's map, so a valid message is
    ``A0+n || E || key 58 40 || sig`` where ``A0+(n-1) || E`` is the deterministic encoding of
    the map without its signature: the signed ``tbs`` is rebuilt from the raw bytes and checked
    (``VerificationError``) before any decoding; a message without that layout is a
    ``DecodeError``.  Shorter messages are decoded first and verified after (``Meter.receive``).
    """
    if len(data) <= LIMITS.authenticate_before_decode_bytes:
        return
    trailer = bytes((_SIG_KEY[kind], 0x58, SIGNATURE_BYTES))
    if not 0xA2 <= data[0] <= 0xB7 or data[-SIGNATURE_BYTES - 3:-SIGNATURE_BYTES] != trailer:
        raise DecodeError(f"{kind}: the signature is not the last entry of the map")
    tbs = b"".join((DOMAIN, _lp(kind.encode()), bytes((data[0] - 1,)), memoryview(data)[1:-SIGNATURE_BYTES - 3]))
    _verify(public_key, bytes(data[-SIGNATURE_BYTES:]), tbs, kind)


def decode_message(data: object, *, authenticated: bool = False) -> tuple[str, dict]:
    """Spec 4: decode any group message; return (kind, map) after the checks of spec 4.2-4.5.

    Checks the envelope, the exact keys and types of the kind, lengths and
    ranges; signatures and state are the receiver's (spec 5.3).  A message over
    ``LIMITS.authenticate_before_decode_bytes`` is decoded only with
    ``authenticated=True``, which says :func:`authenticate_raw` accepted it (spec 4.1).
    """
    kind = message_kind(data)
    if not isinstance(data, (bytes, bytearray)):  # message_kind refused it already; this tells mypy
        raise DecodeError("a group message must be bytes")
    if len(data) > LIMITS.authenticate_before_decode_bytes and not authenticated:
        raise DecodeError(f"{kind}: a message over {LIMITS.authenticate_before_decode_bytes} bytes is decoded "
                          "only after its signature verifies over its raw bytes (spec 4.1)")
    m = cbor.decode(bytes(data), max_size=LIMITS.message_bytes[kind])
    if not isinstance(m, dict) or m.get(2) not in KINDS:
        raise DecodeError("not a group message: key 2 must name one of " + ", ".join(KINDS))
    kind = m[2]
    cbor.expect_map(m, _SCHEMAS[kind], name=kind)
    if m[1] != VERSION:
        raise DecodeError(f"{kind}: unknown version {m[1]}")
    _bstr(m[3], 1, MAX_GROUP_BYTES, f"{kind}: group")
    _bstr(m[_SIG_KEY[kind]], SIGNATURE_BYTES, SIGNATURE_BYTES, f"{kind}: signature")
    if kind == "command":
        _uint(m[4], MAX_SEQ, "command: sequence number")
        if m[5] not in ACTIONS:
            raise DecodeError(f"command: unknown action {m[5]!r}")
        _uint(m[7], MAX_EPOCH, "command: epoch")
        _uint(m[8], MAX_TIME, "command: not-after")
        _decode_args(m[5], m[6], m[7])
        return kind, m
    if kind == "checkpoint":
        _uint(m[4], MAX_SEQ, "checkpoint: command sequence number")
        _uint(m[5], MAX_EPOCH, "checkpoint: epoch")
        _decode_public_key(m[6], "checkpoint: controller key")
        _uint(m[7], MAX_TIME, "checkpoint: not-after")
        return kind, m
    _uint(m[4], MAX_EPOCH, f"{kind}: epoch")
    _uint(m[5], MAX_SEQ, f"{kind}: sequence number")
    if kind == "rekey":
        if not 2 <= m[6] <= lkh.MAX_ARITY or not 1 <= m[7] <= lkh.MAX_HEIGHT:
            raise DecodeError("rekey: arity or height out of range")
        _check_nodes(m[8], m[6], m[7])
        _check_wraps(m[9])
    elif kind == "resync":
        _bstr(m[6], 1, MAX_MEMBER_BYTES, "resync: member")
        _bstr(m[7], hpke.HPKE_PUBLIC_BYTES, hpke.HPKE_PUBLIC_BYTES, "resync: enc")
        _bstr(m[8], hpke.HPKE_TAG_BYTES + 1, LIMITS.resync_ct_bytes, "resync: ct")
    else:
        _uint(m[6], lkh.MAX_KID, "data: key id")
        _bstr(m[7], 16, MAX_DATA_BYTES + 16, "data: ct")
    return kind, m


def _decode_args(action: str, args: dict, epoch: int) -> dict:
    cbor.expect_map(args, _ARGS[action], name=f"command {action}")
    if action in ("disconnect", "reconnect"):
        if not args[1] or len(args[1]) > LIMITS.max_targets:
            raise DecodeError(f"command {action}: the target list must be non-empty")
        for target in args[1]:
            if not isinstance(target, bytes) or not 1 <= len(target) <= MAX_MEMBER_BYTES:
                raise DecodeError(f"command {action}: a target must be a member id")
        if len(set(args[1])) != len(args[1]) or list(args[1]) != sorted(args[1]):
            raise DecodeError(f"command {action}: targets must be sorted and distinct")
    elif action == "rekey-group":
        _uint(args[1], MAX_EPOCH, "command rekey-group: epoch")
        if args[1] <= epoch:
            raise DecodeError(f"command rekey-group: the new epoch {args[1]} must follow the command's epoch {epoch}")
        _decode_public_key(args[2], "command rekey-group: controller key")
        _bstr(args[3], DIRECTORY_BYTES, DIRECTORY_BYTES, "command rekey-group: directory hash")
    elif action == "set-command-key":
        _decode_public_key(args[1], "command set-command-key: key")
    return args


def _decode_public_key(key: bytes, what: str) -> bytes:
    try:
        _check_public_key(key, what)
    except ParameterError as e:
        raise DecodeError(str(e)) from None
    return key


def _check_nodes(nodes: list, arity: int, height: int) -> None:
    """Spec 4.2: every node inside the tree, sorted, the root last."""
    last = (-1, -1)
    for entry in nodes:
        if (not isinstance(entry, list) or len(entry) != 3
                or any(type(x) is not int or x < 0 for x in entry)):
            raise DecodeError("rekey: a node must be [level, position, kid] of unsigned integers")
        level, position, kid = entry
        if level > height or position >= arity ** (height - level) or kid > lkh.MAX_KID:
            raise DecodeError(f"rekey: node ({level}, {position}) is outside the tree")
        if (level, position) <= last:
            raise DecodeError("rekey: nodes must be sorted by (level, position) without repeats")
        last = (level, position)
    if last != (height, 0):
        raise DecodeError("rekey: the last node must be the root")


def _check_wraps(wraps: list) -> None:
    """Spec 4.2: [kid, kek, 48-byte wrap] entries."""
    for entry in wraps:
        if (not isinstance(entry, list) or len(entry) != 3 or type(entry[0]) is not int
                or type(entry[1]) is not int or not isinstance(entry[2], bytes)):
            raise DecodeError("rekey: a wrap must be [kid, kek, bstr]")
        if not 1 <= entry[0] <= lkh.MAX_KID or not 1 <= entry[1] <= lkh.MAX_KID:
            raise DecodeError("rekey: a wrap's key ids must be in [1, 2^63)")
        if len(entry[2]) != lkh.WRAP_BYTES:
            raise DecodeError(f"rekey: a wrapped key must be {lkh.WRAP_BYTES} bytes")


def _rekey_of(m: dict) -> lkh.Rekey:
    """The tree change a decoded rekey message carries (its fields already checked)."""
    return lkh.Rekey(m[7], tuple(tuple(node) for node in m[8]), tuple(lkh.Wrap(*w) for w in m[9]))


def _verify(public_key: bytes, signature: bytes, tbs: bytes, what: str) -> None:
    opcount.record("ed25519_verify")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, tbs)
    except InvalidSignature:
        raise VerificationError(f"{what}: signature does not verify") from None


def _lkh_context(group: bytes, epoch: int) -> bytes:
    """Spec 3.3: the wrap context binds the group and the epoch."""
    return _lp(group) + _L.pack(epoch)


def _resync_info(group: bytes, epoch: int, seq: int, member: bytes) -> bytes:
    """Spec 7.1: HPKE info of a resync."""
    return DOMAIN + _lp(b"resync") + _lp(group) + _L.pack(epoch) + _Q.pack(seq) + _lp(member)


def _data_key(group_key: bytes, group: bytes, epoch: int, kid: int) -> bytes:
    """Spec 6.1: HKDF-SHA256(salt = "", IKM = group key, info = DOMAIN || "data" || group || epoch || kid)."""
    info = DOMAIN + _lp(b"data") + _lp(group) + _L.pack(epoch) + _Q.pack(kid)
    return hashing.hkdf_sha256(group_key, 32, None, info)


def _data_nonce(seq: int) -> bytes:
    return b"\0\0\0\0" + _Q.pack(seq)


def _check_time(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TIME:
        raise ParameterError(f"{what} must be an integer number of seconds in [0, 2^64)")
    return value


def _check_directory(members: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    if not isinstance(members, Mapping):
        raise ParameterError("the member directory must map member ids to HPKE public keys")
    for member, device in members.items():
        _check_member(member)
        hpke.check_public_key(device, "a member's HPKE public key")
    return dict(members)


def directory_hash(group: bytes, epoch: int, members: Mapping[bytes, bytes]) -> bytes:
    """Spec 9.2: SHA-256(DOMAIN || lp("directory") || lp(group) || I2OSP(epoch, 4)
    || CBOR([[member, HPKE public key], ...] sorted by member id)).

    The operators sign it in ``rekey-group`` (argument 3) over the directory
    they reviewed; the new controller starts the epoch for exactly that
    directory (:meth:`Controller.recover`).
    """
    _check_group(group)
    if type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH:
        raise ParameterError("epoch must be an integer in [0, 2^32)")
    entries = [[member, device] for member, device in sorted(_check_directory(members).items())]
    return hashing.sha256(DOMAIN + _lp(b"directory") + _lp(group) + _L.pack(epoch) + cbor.encode(entries)).digest()


# ---------------------------------------------------------------------------
# The controller (spec 5-7, 9)
# ---------------------------------------------------------------------------


@dataclass
class ControllerState:
    """The head-end's group key controller (spec 3.2).

    ``signing_key`` is the raw 32-byte Ed25519 private key whose public half
    meters hold as the controller key of this epoch; ``devices`` maps each
    member to its HPKE (X25519) public key for resyncs.
    """

    group: bytes
    epoch: int
    arity: int
    signing_key: bytes = field(repr=False)
    seq: int = 0
    tree: lkh.KeyTree | None = field(default=None, repr=False)
    devices: dict[bytes, bytes] = field(default_factory=dict)


class Controller:
    """Spec 5-7, 9: rekeys, group data and resyncs, all signed with the controller key."""

    def __init__(self, state: ControllerState) -> None:
        _check_group(state.group)
        if type(state.epoch) is not int or not 0 <= state.epoch <= MAX_EPOCH:
            raise ParameterError("epoch must be an integer in [0, 2^32)")
        if not isinstance(state.signing_key, bytes) or len(state.signing_key) != 32:
            raise ParameterError("the controller's signing key must be a raw 32-byte Ed25519 private key")
        lkh._check_arity(state.arity)
        self.state = state
        self._key = Ed25519PrivateKey.from_private_bytes(state.signing_key)

    @property
    def public_key(self) -> bytes:
        opcount.record("ed25519_keygen")
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def _next_seq(self) -> int:
        if self.state.seq >= MAX_SEQ:
            raise StateError("the sequence numbers of this epoch are exhausted: start a new epoch")
        self.state.seq += 1
        return self.state.seq

    def _sign(self, kind: str, body: dict) -> bytes:
        opcount.record("ed25519_sign")
        body[_SIG_KEY[kind]] = self._key.sign(message_tbs(kind, body))
        return cbor.encode(body)

    def start_epoch(self, members: Mapping[bytes, bytes], rng: RandomSource | None = None) -> dict[bytes, bytes]:
        """Spec 9.2: the group's first epoch (epoch 0): a fresh tree for
        ``members`` (member id -> HPKE public key); one resync each.

        Every later epoch starts through :meth:`recover`, for the directory
        the operators signed; here it is a ``StateError``.
        """
        if self.state.epoch != 0:
            raise StateError(f"epoch {self.state.epoch} starts only through recover(), for the member directory "
                             f"the operators signed in rekey-group (spec 9.2)")
        return self._start(_check_directory(members), resolve(rng))

    def recover(self, command: bytes, command_key: bytes, members: Mapping[bytes, bytes],
                rng: RandomSource | None = None) -> dict[bytes, bytes]:
        """Spec 9.2 step 3: start this controller's epoch after the operators' ``rekey-group``.

        ``command`` must verify under ``command_key``, be a ``rekey-group`` for
        this group, move to this controller's epoch, install this controller's
        public key and name the hash of exactly ``members``; else
        ``VerificationError`` (a member outside the signed directory, a
        changed HPKE key or a missing member all change the hash).  Returns
        one resync per member, as :meth:`start_epoch`; a second call is a
        ``StateError``.
        """
        _check_public_key(command_key, "the command-verification key")
        members = _check_directory(members)
        authenticate_raw(command, message_kind(command), command_key)
        kind, m = decode_message(command, authenticated=True)
        st = self.state
        if st.tree is not None:
            raise StateError(f"epoch {st.epoch} has started already")
        if kind != "command" or m[5] != "rekey-group":
            raise VerificationError("recovery needs the operators' rekey-group command")
        if m[3] != st.group:
            raise VerificationError("rekey-group: addressed to another group")
        _verify(command_key, m[9], message_tbs("command", _unsigned(kind, m)), "rekey-group (operators' signature)")
        args = m[6]
        if args[1] != st.epoch:
            raise VerificationError(f"rekey-group moves to epoch {args[1]}, this controller runs epoch {st.epoch}")
        if args[2] != self.public_key:
            raise VerificationError("rekey-group installs another controller key")
        if not hashing.compare_digest(args[3], directory_hash(st.group, st.epoch, members)):
            raise VerificationError("the member directory is not the one the operators signed in rekey-group")
        return self._start(members, resolve(rng))

    def _start(self, members: dict[bytes, bytes], rng: RandomSource) -> dict[bytes, bytes]:
        st = self.state
        st.devices = dict(members)
        st.tree = lkh.KeyTree.create(st.arity, _lkh_context(st.group, st.epoch), sorted(members), rng)
        return {member: self.resync(member, rng) for member in sorted(members)}

    def _tree(self) -> lkh.KeyTree:
        if self.state.tree is None:
            raise StateError("the controller has no tree for this epoch yet (start_epoch)")
        return self.state.tree

    def rekey(self, joins: Mapping[bytes, bytes] | None = None, leaves: Sequence[bytes] = (),
              rng: RandomSource | None = None) -> tuple[bytes, dict[bytes, bytes]]:
        """Spec 5.1: one batch of joins (member -> HPKE public key) and leaves.

        Returns the multicast rekey message and a resync (the welcome) for each
        joiner.  The controller's state changes only if the batch is valid.
        """
        joins = dict(joins or {})
        for member, device in joins.items():
            _check_member(member)
            hpke.check_public_key(device, "a joiner's HPKE public key")
        for member in leaves:
            _check_member(member)
        rng = resolve(rng)
        tree = self._tree()
        change = tree.rekey(sorted(joins), sorted(leaves), rng)
        for member in leaves:
            self.state.devices.pop(member, None)
        self.state.devices.update(joins)
        st = self.state
        body = {1: VERSION, 2: "rekey", 3: st.group, 4: st.epoch, 5: self._next_seq(), 6: tree.arity,
                7: change.height, 8: [list(n) for n in change.nodes],
                9: [[w.kid, w.kek, w.ct] for w in change.wraps]}
        message = self._sign("rekey", body)
        return message, {member: self.resync(member, rng) for member in sorted(joins)}

    def resync(self, member: bytes, rng: RandomSource | None = None) -> bytes:
        """Spec 7.1: the member's whole current path, sealed to its HPKE key and signed."""
        st = self.state
        keys = self._tree().member_keys(member)
        seq = self._next_seq()
        payload = cbor.encode({1: keys.arity, 2: keys.position, 3: [[kid, key] for kid, key in keys.path]})
        enc, ct = hpke.SealBase(st.devices[member], _resync_info(st.group, st.epoch, seq, member), b"",
                                payload, rng)
        return self._sign("resync", {1: VERSION, 2: "resync", 3: st.group, 4: st.epoch, 5: seq, 6: member,
                                     7: enc, 8: ct})

    def send(self, plaintext: bytes) -> bytes:
        """Spec 6.1: group data under the current group key, signed by the controller."""
        if not isinstance(plaintext, bytes) or len(plaintext) > MAX_DATA_BYTES:
            raise ParameterError(f"group data must be at most {MAX_DATA_BYTES} bytes")
        st = self.state
        tree = self._tree()
        if not tree.members:
            raise StateError("the group has no members")
        seq, kid = self._next_seq(), tree.group_kid
        body = {1: VERSION, 2: "data", 3: st.group, 4: st.epoch, 5: seq, 6: kid}
        aead = ChaCha20Poly1305(_data_key(tree.group_key, st.group, st.epoch, kid))
        body[7] = aead.encrypt(_data_nonce(seq), plaintext, cbor.encode(body))
        return self._sign("data", body)


# ---------------------------------------------------------------------------
# Critical commands (spec 8)
# ---------------------------------------------------------------------------


def command_body(group: bytes, seq: int, action: str, args: Mapping[int, object], *, epoch: int,
                 not_after: int) -> dict:
    """Spec 8.1: the command map without its signature, checked as a meter would check it.

    ``epoch`` is the epoch the command is for (a ``rekey-group`` names the
    epoch it leaves); ``not_after`` the last second (spec 4.1) at which a
    meter may accept it.
    """
    _check_group(group)
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise ParameterError("a command's sequence number must be in [1, 2^64)")
    if type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH:
        raise ParameterError("a command's epoch must be an integer in [0, 2^32)")
    _check_time(not_after, "a command's not-after")
    if action not in ACTIONS:
        raise ParameterError(f"unknown action {action!r}; the critical commands are " + ", ".join(ACTIONS))
    args = dict(args)
    if action in ("disconnect", "reconnect"):
        targets = args.get(1, ())
        if not isinstance(targets, (list, tuple)) or any(not isinstance(t, bytes) for t in targets):
            raise ParameterError(f"command {action}: the targets must be a list of member ids (bytes)")
        args[1] = sorted(targets)
    try:
        _decode_args(action, args, epoch)
    except DecodeError as e:
        raise ParameterError(str(e)) from None
    return {1: VERSION, 2: "command", 3: group, 4: seq, 5: action, 6: args, 7: epoch, 8: not_after}


def checkpoint_body(group: bytes, seq: int, epoch: int, controller_key: bytes, not_after: int) -> dict:
    """Spec 8.6: the operators' statement "the last command of this group has
    sequence number ``seq``; the group is at ``epoch`` under ``controller_key``",
    valid until ``not_after``.  A joining meter is provisioned from it."""
    _check_group(group)
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise ParameterError("a checkpoint's sequence number must be in [0, 2^64)")
    if type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH:
        raise ParameterError("a checkpoint's epoch must be an integer in [0, 2^32)")
    _check_public_key(controller_key, "a checkpoint's controller key")
    _check_time(not_after, "a checkpoint's not-after")
    return {1: VERSION, 2: "checkpoint", 3: group, 4: seq, 5: epoch, 6: controller_key, 7: not_after}


def _operator_kind(body: Mapping[int, object]) -> str:
    kind = body.get(2) if isinstance(body, Mapping) else None
    if kind not in OPERATOR_KINDS:
        raise ParameterError("operators sign only command and checkpoint bodies (command_body, checkpoint_body)")
    return kind


def command_tbs(body: Mapping[int, object]) -> bytes:
    """Spec 8.2: the bytes the operators sign (and a meter verifies), for a command or a checkpoint."""
    return message_tbs(_operator_kind(body), body)


def encode_command(body: Mapping[int, object], signature: bytes) -> bytes:
    """Spec 8.2: the command or checkpoint message: its body and the operators' 64-byte signature."""
    kind = _operator_kind(body)
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise ParameterError(f"a command signature must be {SIGNATURE_BYTES} bytes")
    return cbor.encode({**body, _SIG_KEY[kind]: signature})


def _unsigned(kind: str, m: Mapping[int, object]) -> dict:
    return {k: v for k, v in m.items() if k != _SIG_KEY[kind]}


@dataclass
class OperatorState:
    """An operator (spec 8.3): its FROST signer (key share and nonces) and the
    SHA-256 digests of the command or checkpoint tbs it approved and has not
    yet signed.  A copy or restore of this state carries no pending nonce
    (``frost.Signer``, specs/frost.md 5.5)."""

    signer: frost.Signer
    approved: set[bytes] = field(default_factory=set)


class Operator:
    """One of the n operators; signs a command only if it approved exactly that command (spec 8.3)."""

    def __init__(self, state: OperatorState) -> None:
        if not isinstance(state.signer, frost.Signer):
            raise ParameterError("an operator needs a frost.Signer")
        self.state = state

    @property
    def identifier(self) -> int:
        return self.state.signer.identifier

    def approve(self, body: Mapping[int, object]) -> None:
        """Record this operator's approval of one command (its own review, out of band)."""
        self.state.approved.add(hashing.sha256(command_tbs(body)).digest())

    def commit(self, rng: RandomSource | None = None) -> frost.SigningCommitments:
        """RFC 9591 section 5.1, round one."""
        return self.state.signer.commit(rng)

    def sign(self, body: Mapping[int, object], commitment_list: Sequence[frost.SigningCommitments]
             ) -> frost.SignatureShare:
        """RFC 9591 section 5.2, round two, for an approved command only; the approval is used up."""
        tbs = command_tbs(body)
        digest = hashing.sha256(tbs).digest()
        if digest not in self.state.approved:
            raise StateError(f"operator {self.identifier} has not approved this command")
        share = self.state.signer.sign(tbs, commitment_list)
        self.state.approved.discard(digest)
        return share


def sign_command(body: Mapping[int, object], operators: Sequence[Operator], group_info: frost.PublicKeyPackage,
                 rng: RandomSource | None = None) -> bytes:
    """Spec 8.2, the coordinator: both FROST rounds with ``operators``, share checks, aggregation.

    ``body`` is a command (:func:`command_body`) or a checkpoint (:func:`checkpoint_body`).
    A share that does not verify raises ``VerificationError`` naming its
    operator (RFC 9591 section 5.4); an operator that did not approve the
    command raises ``StateError``.  Returns the command message.
    """
    if len({op.identifier for op in operators}) != len(operators):
        raise ParameterError("an operator is listed twice")
    tbs = command_tbs(body)
    rng = resolve(rng)
    commitments = sorted((op.commit(rng) for op in operators), key=lambda c: c.identifier)
    shares = [op.sign(body, commitments) for op in operators]
    signature = frost.aggregate_and_verify(group_info, commitments, tbs, shares)
    return encode_command(body, signature.to_bytes())


def operator_ceremony(operators: int, threshold: int, group: bytes, rng: RandomSource | None = None
                      ) -> tuple[list[Operator], frost.PublicKeyPackage]:
    """Spec 8.5: the operators' distributed key generation (specs/frost.md), all parties in one process.

    A simulation for tests, vectors and the demo: in deployment each operator
    runs its own part and sends its round-2 shares privately.  The context
    binds the group id.  Returns the operators and the group info, whose
    group public key is the command key.
    """
    _check_group(group)
    rng = resolve(rng)
    context = DOMAIN + _lp(b"operators") + _lp(group)
    ids = range(1, operators + 1)
    parts = {i: frost.dkg_part1(i, operators, threshold, context, rng) for i in ids}
    round1 = {i: package for i, (_, package) in parts.items()}
    sent = {i: frost.dkg_part2(secret, round1) for i, (secret, _) in parts.items()}
    out, info = [], None
    for i in ids:
        received = {j: sent[j][i] for j in ids if j != i}
        key_package, info = frost.dkg_part3(parts[i][0], round1, received)
        out.append(Operator(OperatorState(frost.Signer(key_package))))
    if info is None:
        raise ParameterError("the ceremony needs at least one operator")
    return out, info


def command_key(group_info: frost.PublicKeyPackage) -> bytes:
    """The 32-byte command key a meter holds: the FROST group public key (spec 3.2)."""
    return ed25519.SerializeElement(group_info.group_public_key)


# ---------------------------------------------------------------------------
# The meter (spec 5.3, 6.2, 7.2, 8.4)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """An accepted critical command (spec 8.1), as the meter acts on it."""

    seq: int
    action: str
    args: Mapping[int, object]
    applies_to_me: bool


@dataclass
class MeterState:
    """A member's state (spec 3.2).  Everything but ``device_private`` and
    ``keys`` is public; ``keys`` is None until the first resync of an epoch.
    A meter is provisioned with :meth:`Meter.provision`, which takes
    ``epoch``, ``controller_key`` and ``command_seq`` from an operator-signed
    checkpoint (spec 8.6); building the state by hand is for restoring one."""

    group: bytes
    member: bytes
    device_private: bytes = field(repr=False)
    command_key: bytes = b""
    controller_key: bytes = b""
    epoch: int = 0
    seq: int = 0
    command_seq: int = 0
    keys: lkh.MemberKeys | None = field(default=None, repr=False)
    supply_on: bool = True


class Meter:
    """A group member: accepts routine messages signed by the controller and
    critical commands and checkpoints signed by t of n operators (spec 5.3)."""

    def __init__(self, state: MeterState) -> None:
        _check_group(state.group)
        _check_member(state.member)
        if not isinstance(state.device_private, bytes) or len(state.device_private) != hpke.HPKE_PRIVATE_BYTES:
            raise ParameterError("the meter's HPKE private key must be 32 bytes")
        _check_public_key(state.command_key, "the command-verification key")
        _check_public_key(state.controller_key, "the controller key")
        self.state = state

    @classmethod
    def provision(cls, group: bytes, member: bytes, device_private: bytes, command_key: bytes,
                  checkpoint: bytes, now: int) -> Meter:
        """Spec 8.6: a new meter from its trust anchor (the command key) and an operator-signed checkpoint.

        The checkpoint must decode, be for ``group``, verify under
        ``command_key`` and be valid at ``now`` (spec 8.4); the meter starts at
        its epoch and controller key, and refuses every command numbered at or
        below its sequence number.
        """
        _check_group(group)
        _check_public_key(command_key, "the command-verification key")
        now = _check_time(now, "the meter's clock")
        kind, m = decode_message(checkpoint)
        if kind != "checkpoint":
            raise DecodeError(f"provisioning needs a checkpoint, not a {kind}")
        if m[3] != group:
            raise VerificationError("checkpoint: addressed to another group")
        _verify(command_key, m[8], message_tbs(kind, _unsigned(kind, m)), "checkpoint (operators' threshold signature)")
        _check_validity(m[7], now, "checkpoint")
        return cls(MeterState(group, member, device_private, command_key=command_key, controller_key=m[6],
                              epoch=m[5], command_seq=m[4]))

    @property
    def group_key(self) -> bytes:
        if self.state.keys is None:
            raise ResyncRequiredError("the meter holds no group key for this epoch: it needs a resync")
        return self.state.keys.group_key

    def receive(self, data: bytes, now: int | None = None) -> Command | bytes | None:
        """Spec 5.3: check and apply one message; the state changes only if it is accepted.

        ``now`` is the meter's clock (spec 4.1), needed for commands and
        checkpoints.  Returns the plaintext of group data, the accepted
        ``Command`` of a critical command, and None for a rekey, resync or
        checkpoint.
        """
        st = self.state
        kind = message_kind(data)
        authenticate_raw(data, kind, st.command_key if kind in OPERATOR_KINDS else st.controller_key)
        kind, m = decode_message(data, authenticated=True)
        if m[3] != st.group:
            raise VerificationError(f"{kind}: addressed to another group")
        body = _unsigned(kind, m)
        if kind in OPERATOR_KINDS:
            if now is None:
                raise ParameterError(f"{kind}: the meter needs its clock (now) to check the not-after")
            now = _check_time(now, "the meter's clock")
            _verify(st.command_key, m[_SIG_KEY[kind]], message_tbs(kind, body),
                    f"{kind} (operators' threshold signature)")
            if kind == "command":
                return self._command(m, now)
            self._checkpoint(m, now)
            return None
        _verify(st.controller_key, m[_SIG_KEY[kind]], message_tbs(kind, body), kind)
        if m[4] != st.epoch:
            raise StateError(f"{kind}: epoch {m[4]} is not the meter's epoch {st.epoch}")
        if m[5] <= st.seq:
            raise ReplayError(f"{kind}: sequence number {m[5]} is not after {st.seq} (replayed or out of order)")
        if kind == "resync":
            keys = self._open_resync(m)
            st.keys, st.seq = keys, m[5]
            return None
        if st.keys is None:
            raise ResyncRequiredError(f"{kind}: the meter holds no keys for this epoch: it needs a resync")
        if kind == "rekey":
            if m[6] != st.keys.arity:
                raise DecodeError(f"rekey: arity {m[6]} is not the tree's arity {st.keys.arity}")
            keys = st.keys.apply(_rekey_of(m))
            st.keys, st.seq = keys, m[5]
            return None
        if m[6] != st.keys.group_kid:
            raise ResyncRequiredError(f"data: under group key {m[6]}, the meter holds {st.keys.group_kid}")
        aead = ChaCha20Poly1305(_data_key(st.keys.group_key, st.group, st.epoch, m[6]))
        try:
            plaintext = aead.decrypt(_data_nonce(m[5]), m[7], cbor.encode({k: body[k] for k in range(1, 7)}))
        except InvalidTag:
            raise VerificationError("data: the ciphertext does not open under the group key") from None
        st.seq = m[5]
        return plaintext

    def _open_resync(self, m: dict) -> lkh.MemberKeys:
        st = self.state
        if m[6] != st.member:
            raise VerificationError("resync: addressed to another member")
        payload = hpke.OpenBase(m[7], st.device_private, _resync_info(st.group, m[4], m[5], st.member), b"", m[8])
        p = cbor.decode_map(payload, _PATH, name="resync payload")
        arity, position, path = p[1], p[2], p[3]
        if not 2 <= arity <= lkh.MAX_ARITY or not 2 <= len(path) <= lkh.MAX_HEIGHT + 1:
            raise DecodeError("resync payload: arity or path length out of range")
        if not 0 <= position < arity ** (len(path) - 1):
            raise DecodeError("resync payload: leaf position outside the tree")
        out = []
        for entry in path:
            if (not isinstance(entry, list) or len(entry) != 2 or type(entry[0]) is not int
                    or not 1 <= entry[0] <= lkh.MAX_KID or not isinstance(entry[1], bytes)
                    or len(entry[1]) != lkh.KEY_BYTES):
                raise DecodeError("resync payload: a path entry must be [kid, 32-byte key]")
            out.append((entry[0], entry[1]))
        return lkh.MemberKeys(arity, _lkh_context(st.group, m[4]), position, tuple(out))

    def _command(self, m: dict, now: int) -> Command:
        """Spec 8.4, after the signature: epoch, sequence number, validity, then the action."""
        st = self.state
        if m[7] != st.epoch:
            raise StateError(f"command: for epoch {m[7]}, the meter is in epoch {st.epoch}")
        if m[4] <= st.command_seq:
            raise ReplayError(f"command: sequence number {m[4]} is not after {st.command_seq}")
        _check_validity(m[8], now, "command")
        action, args = m[5], m[6]
        applies = True
        if action in ("disconnect", "reconnect"):
            applies = st.member in args[1]
        if applies and action in ("disconnect", "disconnect-all"):
            st.supply_on = False
        elif applies and action in ("reconnect", "reconnect-all"):
            st.supply_on = True
        elif action == "rekey-group":
            st.epoch, st.seq, st.keys, st.controller_key = args[1], 0, None, args[2]
        elif action == "set-command-key":
            st.command_key = args[1]
        st.command_seq = m[4]
        return Command(m[4], action, dict(args), applies)

    def _checkpoint(self, m: dict, now: int) -> None:
        """Spec 8.6: catch up to an operator-signed checkpoint (a meter that missed a recovery)."""
        st = self.state
        if m[5] < st.epoch:
            raise StateError(f"checkpoint: epoch {m[5]} is before the meter's epoch {st.epoch}")
        if m[4] < st.command_seq:
            raise ReplayError(f"checkpoint: command sequence number {m[4]} is behind the meter's {st.command_seq}")
        if m[5] == st.epoch and m[6] != st.controller_key:
            raise StateError("checkpoint: names another controller key for the meter's epoch")
        _check_validity(m[7], now, "checkpoint")
        if m[5] > st.epoch:
            st.epoch, st.seq, st.keys, st.controller_key = m[5], 0, None, m[6]
        st.command_seq = m[4]
        return None


def _check_validity(not_after: int, now: int, what: str) -> None:
    """Spec 8.4: now <= not_after <= now + MAX_LIFETIME."""
    if now > not_after:
        raise StateError(f"{what}: expired at {not_after}, the meter's clock reads {now}")
    if not_after - now > MAX_LIFETIME:
        raise StateError(f"{what}: not-after {not_after} is more than {MAX_LIFETIME} s ahead of the meter's clock")
