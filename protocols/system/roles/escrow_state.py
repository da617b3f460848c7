"""Stored state of the escrow roles: deterministic CBOR maps (specs/roles.md section 9.4).

Every ``load_*`` function decodes a stored value strictly and rebuilds the
protocol object from it; any fault of a stored value is a corrupt state file
(:class:`StateFileError`), never a silent reset.  Every ``dump_*`` function is
the inverse.  Integers too large for 64 bits (RSA factors, the blinding
inverse) are CBOR bignums (RFC 8949 section 3.4.3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from protocols import escrow as esc
from protocols.errors import StateFileError, UsappError
from protocols.primitives import cbor
from protocols.primitives import ed25519 as G
from protocols.schemes import blind_rsa, certificates, frost

MAX_STATE_BYTES = 1 << 24
"""The largest stored value decoded (a meter's HF profiles, the escrow's configuration)."""

T = TypeVar("T")


@contextmanager
def stored(name: str) -> Iterator[None]:
    """Any fault while rebuilding the stored value ``name`` is a corrupt state file."""
    try:
        yield
    except StateFileError:
        raise
    except (UsappError, ValueError, TypeError, KeyError, IndexError, OverflowError, ZeroDivisionError) as exc:
        raise StateFileError(f"stored {name} is corrupt: {type(exc).__name__}: {exc}"[:300]) from None


def decode(raw: bytes, schema: dict[int, Any], name: str) -> dict:
    with stored(name):
        return cbor.decode_map(raw, schema, name=name, max_size=MAX_STATE_BYTES)


def _int_map(value: dict, convert: Callable[[object], T], name: str) -> dict[int, T]:
    """A stored map epoch -> value (epoch a uint)."""
    out: dict[int, T] = {}
    for key, item in value.items():
        if type(key) is not int or not 0 <= key <= esc.MAX_EPOCH:
            raise StateFileError(f"stored {name}: a key is not an epoch")
        out[key] = convert(item)
    return out


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StateFileError("a stored value is not a byte string")
    return value


def _uint(value: object) -> int:
    if type(value) is not int or value < 0:
        raise StateFileError("a stored value is not an unsigned integer")
    return value


# -- shared pieces -------------------------------------------------------------


def dump_anchors(anchors: tuple[certificates.TrustAnchor, ...]) -> list:
    return [[a.certificate, sorted(a.roles)] for a in anchors]


def load_anchors(value: list) -> tuple[certificates.TrustAnchor, ...]:
    anchors = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[1], list):
            raise StateFileError("a stored trust anchor is not [certificate, roles]")
        anchors.append(certificates.TrustAnchor(_bytes(item[0]), frozenset(str(r) for r in item[1])))
    return tuple(anchors)


def dump_group_info(info: frost.PublicKeyPackage) -> dict:
    return {1: info.MIN_PARTICIPANTS, 2: info.MAX_PARTICIPANTS, 3: G.SerializeElement(info.group_public_key),
            4: [G.SerializeElement(pk) for pk in info.participant_public_keys]}


def load_group_info(value: object) -> frost.PublicKeyPackage:
    m = cbor.expect_map(value, {1: int, 2: int, 3: bytes, 4: list}, name="group info")
    return frost.PublicKeyPackage(m[1], m[2], G.DeserializeElement(m[3]),
                                  tuple(G.DeserializeElement(_bytes(pk)) for pk in m[4]))


def dump_key_package(kp: frost.KeyPackage) -> dict:
    return {1: kp.identifier, 2: G.SerializeScalar(kp.secret_share), 3: G.SerializeElement(kp.verifying_share),
            4: G.SerializeElement(kp.group_public_key), 5: kp.MIN_PARTICIPANTS, 6: kp.MAX_PARTICIPANTS}


def load_key_package(raw: bytes) -> frost.KeyPackage:
    m = decode(raw, {1: int, 2: bytes, 3: bytes, 4: bytes, 5: int, 6: int}, "authority key package")
    with stored("authority key package"):
        return frost.KeyPackage(m[1], G.DeserializeScalar(m[2]), G.DeserializeElement(m[3]),
                                G.DeserializeElement(m[4]), m[5], m[6])


# -- the escrow ---------------------------------------------------------------------

_ESCROW = {1: str, 2: int, 3: int, 4: list, 5: bytes, 6: (bytes, type(None)), 7: (bytes, type(None)),
           8: (dict, type(None)), 9: dict, 10: dict}


def dump_escrow(st: esc.EscrowState) -> bytes:
    """kv ``config`` of the escrow: its fixed keys and configuration (spec 9.4)."""
    return cbor.encode({1: st.mode, 2: st.clock.origin, 3: st.clock.length, 4: dump_anchors(st.lf_anchors),
                        5: st.hpke_private, 6: st.hf_ca_key, 7: st.hf_ca_certificate,
                        8: None if st.authorities is None else dump_group_info(st.authorities),
                        9: {e: {1: int(k.p), 2: int(k.q)} for e, k in st.rsa_keys.items()},
                        10: dict(st.epoch_keys)})


def _rsa(value: object) -> blind_rsa.PrivateKey:
    m = cbor.expect_map(value, {1: int, 2: int}, name="RSA key")
    return blind_rsa.PrivateKey.from_factors(m[1], m[2])


def load_escrow(raw: bytes) -> esc.EscrowState:
    m = decode(raw, _ESCROW, "escrow configuration")
    with stored("escrow configuration"):
        return esc.EscrowState(
            m[1], esc.EpochClock(m[2], m[3]), load_anchors(m[4]), m[5], m[6], m[7],
            None if m[8] is None else load_group_info(m[8]),
            _int_map(m[9], _rsa, "RSA keys"), _int_map(m[10], _bytes, "epoch keys"))


# -- the meter ----------------------------------------------------------------------

_METER = {1: str, 2: int, 3: int, 4: list, 5: bytes, 6: bytes, 7: bytes, 8: (bytes, type(None)),
          9: (bytes, type(None)), 10: dict, 11: str, 12: dict}


def dump_meter_config(st: esc.MeterState, escrow_id: str, recipients: dict[str, str]) -> bytes:
    """kv ``config`` of a meter: its LF profile and the escrow's public data (spec 9.4)."""
    return cbor.encode({1: st.mode, 2: st.clock.origin, 3: st.clock.length, 4: list(st.lf.chain),
                        5: st.lf.private_key, 6: st.lf.root, 7: st.escrow_hpke_public, 8: st.hf_root,
                        9: st.authorities_key, 10: dict(st.epoch_keys), 11: escrow_id, 12: dict(recipients)})


EMPTY_PROFILES = cbor.encode({1: {}, 2: {}, 3: 0, 4: {}})
"""A new meter's kv ``profiles``: no HF profile, no pending request, no message sent."""


def dump_meter_profiles(st: esc.MeterState) -> bytes:
    """kv ``profiles``: {1: {epoch: HF profile}, 2: {epoch: pending request}, 3: lf_seq, 4: {epoch: hf_seq}}."""
    return cbor.encode({
        1: {e: {1: p.credential, 2: p.private_key, 3: p.root} for e, p in st.hf.items()},
        2: {e: {1: p.request, 2: p.hf_private, 3: p.reply_private, 4: p.blind_inv, 5: p.blind_message}
            for e, p in st.pending.items()},
        3: st.lf_seq, 4: dict(st.hf_seq)})


def _profile(epoch: int, value: object) -> esc.HfProfile:
    m = cbor.expect_map(value, {1: bytes, 2: bytes, 3: bytes}, name="HF profile")
    return esc.HfProfile(epoch, m[1], m[2], m[3])


def _pending(epoch: int, value: object) -> esc.PendingHfid:
    m = cbor.expect_map(value, {1: bytes, 2: bytes, 3: bytes, 4: (int, type(None)), 5: (bytes, type(None))},
                        name="pending HFID request")
    return esc.PendingHfid(epoch, m[1], m[2], m[3], m[4], m[5])


def load_meter(config: bytes, profiles: bytes) -> tuple[esc.MeterState, str, dict[str, str]]:
    """The meter's state, the escrow's id and its recipients' ids."""
    c = decode(config, _METER, "meter configuration")
    p = decode(profiles, {1: dict, 2: dict, 3: int, 4: dict}, "meter profiles")
    with stored("meter state"):
        st = esc.MeterState(
            c[1], esc.EpochClock(c[2], c[3]), esc.LfProfile(tuple(_bytes(d) for d in c[4]), c[5], c[6]), c[7],
            c[8], c[9], _int_map(c[10], _bytes, "epoch keys"))
        st.hf = {e: _profile(e, v) for e, v in _int_map(p[1], lambda v: v, "HF profiles").items()}
        st.pending = {e: _pending(e, v) for e, v in _int_map(p[2], lambda v: v, "pending requests").items()}
        st.lf_seq = p[3]
        st.hf_seq = _int_map(p[4], _uint, "sequence numbers")
        recipients = {str(k): str(v) for k, v in c[12].items()}
        if any(type(k) is not str or type(v) is not str for k, v in c[12].items()) or st.lf_seq < 0:
            raise StateFileError("stored meter state has a bad recipient map or sequence number")
    return st, c[11], recipients


# -- a receiver ---------------------------------------------------------------------

_RECEIVER = {1: str, 2: str, 3: int, 4: int, 5: list, 6: (bytes, type(None)), 7: (bytes, type(None)), 8: dict}


def dump_receiver(st: esc.ReceiverState) -> bytes:
    """kv ``config`` of a receiver (spec 9.4)."""
    return cbor.encode({1: st.recipient, 2: st.mode, 3: st.clock.origin, 4: st.clock.length,
                        5: dump_anchors(st.lf_anchors), 6: st.hf_root, 7: st.authorities_key,
                        8: dict(st.epoch_keys)})


def load_receiver(raw: bytes) -> esc.Receiver:
    m = decode(raw, _RECEIVER, "receiver configuration")
    with stored("receiver configuration"):
        st = esc.ReceiverState(m[1], m[2], esc.EpochClock(m[3], m[4]), load_anchors(m[5]), m[6],
                               authorities_key=m[7])
        receiver = esc.Receiver(st)
        for epoch in sorted(_int_map(m[8], _bytes, "epoch keys")):
            receiver.install_epoch_key(m[8][epoch])
    return receiver
