"""Stored state of the group key roles: deterministic CBOR codecs (specs/roles.md section 7.4).

Every ``decode_*`` checks the shape and rebuilds the protocol object (which
checks its own invariants); any fault of a stored value is a
:class:`~protocols.errors.StateFileError`, never a silent reset.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import TypeVar

from protocols import groupkeys as gk
from protocols.errors import StateFileError, UsappError
from protocols.primitives import cbor
from protocols.primitives import ed25519 as G
from protocols.schemes import frost, lkh

MAX_STATE_BYTES = 64 * 1024 * 1024
"""The largest stored state entry (a controller's key tree of a large group)."""

T = TypeVar("T")


def _checked(what: str, build: Callable[[], T]) -> T:
    """Run a decoder; any fault of the stored value becomes ``StateFileError`` naming ``what``."""
    try:
        return build()
    except StateFileError:
        raise
    except (UsappError, ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        raise StateFileError(f"stored {what} is corrupt: {type(exc).__name__}: {exc}") from None


def _uint(value: object, what: str, bound: int = 2**64 - 1) -> int:
    if type(value) is not int or not 0 <= value <= bound:
        raise StateFileError(f"stored {what} is not an integer in [0, {bound}]")
    return value


# -- member keys and the key tree (specs/roles.md 7.4) ------------------------


def encode_member_keys(keys: lkh.MemberKeys) -> dict[int, object]:
    """{1: arity, 2: context, 3: leaf position, 4: [[kid, key], ...] leaf to root}."""
    return {1: keys.arity, 2: keys.context, 3: keys.position, 4: [[kid, key] for kid, key in keys.path]}


def _member_keys(m: object) -> lkh.MemberKeys:
    m = cbor.expect_map(m, {1: int, 2: bytes, 3: int, 4: list}, name="member keys")
    path = []
    for entry in m[4]:
        if (not isinstance(entry, list) or len(entry) != 2 or type(entry[0]) is not int
                or not isinstance(entry[1], bytes) or len(entry[1]) != lkh.KEY_BYTES):
            raise StateFileError("stored member keys: a path entry must be [kid, 32-byte key]")
        path.append((_uint(entry[0], "key id", lkh.MAX_KID), entry[1]))
    if not 2 <= len(path) <= lkh.MAX_HEIGHT + 1 or not 2 <= m[1] <= lkh.MAX_ARITY:
        raise StateFileError("stored member keys: arity or path length out of range")
    return lkh.MemberKeys(m[1], m[2], _uint(m[3], "leaf position"), tuple(path))


def encode_tree(tree: lkh.KeyTree) -> dict[int, object]:
    """{1: arity, 2: context, 3: height, 4: [keys bstr per level], 5: [[kid, ...] per level],
    6: [[count, ...] per level], 7: [[member, leaf], ...] sorted, 8: [free leaf, ...], 9: next_leaf, 10: next_kid}."""
    members = sorted(tree.members.items(), key=lambda item: bytes(item[0]))  # type: ignore[call-overload]
    return {1: tree.arity, 2: tree.context, 3: tree.height, 4: [bytes(k) for k in tree.keys],
            5: [list(k) for k in tree.kids], 6: [list(c) for c in tree.counts],
            7: [[member, leaf] for member, leaf in members], 8: sorted(tree.free), 9: tree.next_leaf,
            10: tree.next_kid}


def _uints(values: object, size: int, what: str) -> array:
    if not isinstance(values, list) or len(values) != size:
        raise StateFileError(f"stored key tree: {what} has the wrong number of positions")
    return array("Q", [_uint(v, what) for v in values])


def _tree(m: object) -> lkh.KeyTree:
    schema = {1: int, 2: bytes, 3: int, 4: list, 5: list, 6: list, 7: list, 8: list, 9: int, 10: int}
    m = cbor.expect_map(m, schema, name="key tree")
    arity, height = m[1], m[3]
    if not 2 <= arity <= lkh.MAX_ARITY or not 1 <= height <= lkh.MAX_HEIGHT or arity ** height > 2**32:
        raise StateFileError("stored key tree: arity or height out of range")
    if not len(m[4]) == len(m[5]) == len(m[6]) == height + 1:
        raise StateFileError("stored key tree: one entry per level is needed")
    keys, kids, counts = [], [], []
    for level in range(height + 1):
        size = arity ** (height - level)
        if not isinstance(m[4][level], bytes) or len(m[4][level]) != lkh.KEY_BYTES * size:
            raise StateFileError(f"stored key tree: level {level} keys have the wrong length")
        keys.append(bytearray(m[4][level]))
        kids.append(_uints(m[5][level], size, "key ids"))
        counts.append(_uints(m[6][level], size, "counts"))
    members: dict[object, int] = {}
    for entry in m[7]:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], bytes):
            raise StateFileError("stored key tree: a member entry must be [member bstr, leaf]")
        members[entry[0]] = _uint(entry[1], "leaf", arity ** height - 1)
    free = [_uint(leaf, "free leaf", arity ** height - 1) for leaf in m[8]]
    if len(members) != len(m[7]) or m[8] != sorted(free):
        raise StateFileError("stored key tree: members repeat or free leaves are not sorted")
    return lkh.KeyTree(arity, m[2], height, keys, kids, counts, members, free,
                       _uint(m[9], "next leaf"), _uint(m[10], "next key id"))


# -- the controller (kv "controller") ----------------------------------------


def encode_controller(st: gk.ControllerState) -> bytes:
    """{1: group, 2: epoch, 3: arity, 4: signing key, 5: seq, 6: tree or null, 7: [[member, HPKE key], ...]}."""
    return cbor.encode({1: st.group, 2: st.epoch, 3: st.arity, 4: st.signing_key, 5: st.seq,
                        6: None if st.tree is None else encode_tree(st.tree),
                        7: [[member, device] for member, device in sorted(st.devices.items())]})


def decode_controller(raw: bytes) -> gk.Controller:
    def build() -> gk.Controller:
        m = cbor.decode_map(raw, {1: bytes, 2: int, 3: int, 4: bytes, 5: int, 6: (dict, type(None)), 7: list},
                            name="controller state", max_size=MAX_STATE_BYTES)
        devices = {}
        for entry in m[7]:
            if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(x, bytes) for x in entry):
                raise StateFileError("stored controller: a directory entry must be [member, HPKE key]")
            devices[entry[0]] = entry[1]
        tree = None if m[6] is None else _tree(m[6])
        st = gk.ControllerState(m[1], m[2], m[3], m[4], seq=_uint(m[5], "controller seq"), tree=tree,
                                devices=devices)
        return gk.Controller(st)
    return _checked("controller state", build)


# -- the member (kv "meter", "anchor", "clock") ---------------------------------


def encode_meter(st: gk.MeterState) -> bytes:
    """{1: group, 2: member, 3: device private key, 4: command key, 5: controller key, 6: epoch,
    7: seq (the replay window), 8: command seq, 9: member keys or null, 10: supply on}."""
    return cbor.encode({1: st.group, 2: st.member, 3: st.device_private, 4: st.command_key,
                        5: st.controller_key, 6: st.epoch, 7: st.seq, 8: st.command_seq,
                        9: None if st.keys is None else encode_member_keys(st.keys), 10: st.supply_on})


def decode_meter(raw: bytes) -> gk.Meter:
    def build() -> gk.Meter:
        m = cbor.decode_map(raw, {1: bytes, 2: bytes, 3: bytes, 4: bytes, 5: bytes, 6: int, 7: int, 8: int,
                                  9: (dict, type(None)), 10: bool}, name="meter state", max_size=MAX_STATE_BYTES)
        st = gk.MeterState(m[1], m[2], m[3], command_key=m[4], controller_key=m[5],
                           epoch=_uint(m[6], "epoch", gk.MAX_EPOCH), seq=_uint(m[7], "seq"),
                           command_seq=_uint(m[8], "command seq"),
                           keys=None if m[9] is None else _member_keys(m[9]), supply_on=m[10])
        return gk.Meter(st)
    return _checked("meter state", build)


def encode_anchor(group: bytes, member: bytes, device_private: bytes, command_key: bytes) -> bytes:
    """{1: group, 2: member, 3: device private key, 4: command key}: what an unprovisioned meter holds."""
    return cbor.encode({1: group, 2: member, 3: device_private, 4: command_key})


def decode_anchor(raw: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    def build() -> tuple[bytes, bytes, bytes, bytes]:
        m = cbor.decode_map(raw, {1: bytes, 2: bytes, 3: bytes, 4: bytes}, name="meter anchor", max_size=4096)
        return m[1], m[2], m[3], m[4]
    return _checked("meter anchor", build)


def encode_clock(now: int) -> bytes:
    return cbor.encode(now)


def decode_clock(raw: bytes) -> int:
    return _checked("meter clock", lambda: _uint(cbor.decode(raw, max_size=16), "meter clock", gk.MAX_TIME))


# -- the operator (kv "operator"; tables approvals, nonces, spent) --------------


def encode_key_package(kp: frost.KeyPackage) -> dict[int, object]:
    """{1: identifier, 2: SerializeScalar(secret share), 3: verifying share, 4: group public key,
    5: MIN_PARTICIPANTS, 6: MAX_PARTICIPANTS}."""
    return {1: kp.identifier, 2: G.SerializeScalar(kp.secret_share), 3: G.SerializeElement(kp.verifying_share),
            4: G.SerializeElement(kp.group_public_key), 5: kp.MIN_PARTICIPANTS, 6: kp.MAX_PARTICIPANTS}


def key_package(m: object) -> frost.KeyPackage:
    """The key package of an operator record or stored state (``DecodeError``/``ParameterError`` if bad)."""
    m = cbor.expect_map(m, {1: int, 2: bytes, 3: bytes, 4: bytes, 5: int, 6: int}, name="key package")
    return frost.KeyPackage(m[1], G.DeserializeScalar(m[2]), G.DeserializeElement(m[3]),
                            G.DeserializeElement(m[4]), m[5], m[6])


def encode_operator(group: bytes, kp: frost.KeyPackage) -> bytes:
    """{1: group, 2: key package}."""
    return cbor.encode({1: group, 2: encode_key_package(kp)})


def decode_operator(raw: bytes) -> tuple[bytes, frost.KeyPackage]:
    def build() -> tuple[bytes, frost.KeyPackage]:
        m = cbor.decode_map(raw, {1: bytes, 2: dict}, name="operator state", max_size=4096)
        return m[1], key_package(m[2])
    return _checked("operator state", build)


def decode_nonces(hiding: object, binding: object, commitment: object) -> frost.SigningNonces:
    """A stored nonce pair (two SerializeScalar) with the commitments it opens."""
    def build() -> frost.SigningNonces:
        if not isinstance(hiding, bytes) or not isinstance(binding, bytes) or not isinstance(commitment, bytes):
            raise StateFileError("stored nonces must be blobs")
        nonces = frost.SigningNonces(G.DeserializeScalar(hiding), G.DeserializeScalar(binding),
                                     frost.SigningCommitments.from_bytes(commitment))
        if (G.ScalarBaseMult(nonces.hiding_nonce) != nonces.commitments.hiding_nonce_commitment
                or G.ScalarBaseMult(nonces.binding_nonce) != nonces.commitments.binding_nonce_commitment):
            raise StateFileError("stored nonces do not open their commitments")
        return nonces
    return _checked("nonces", build)
