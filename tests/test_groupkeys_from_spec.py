"""An independent implementation of the group key controller and meter, written from specs/groupkeys.md alone.

It imports nothing from ``protocols``: only the standard library and the
primitives of ``cryptography`` (Ed25519, X25519, ChaCha20-Poly1305, HMAC /
SHA-256).  From a vector's inputs and the controller's draws (named in the
order of spec 11.2) it rebuilds every message the controller sends (resyncs,
rekeys, welcomes, data) and compares them byte for byte with the vectors; its
meter, fed those messages, opens every resync and wrap, reaches every
member's group kid and key (the vectors' ``views``) and decrypts every data
message: the proof that the spec states every choice a vendor needs (issue 15, G5).
Each function cites the spec section it follows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "groupkeys.json"
DOMAIN = b"usapp-groupkeys-v1"


def i2osp(x: int, n: int) -> bytes:
    return x.to_bytes(n, "big")


def lp1(x: bytes) -> bytes:
    """conventions: a one-byte length prefix (spec 4.1)."""
    return bytes([len(x)]) + x


# -- deterministic CBOR (conventions section 2), the subset the messages use, plus null --

CBOR_NULL = b"\xf6"  # conventions 2.3: the simple value null (major type 7, simple value 22)

def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for size, info in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if n < 256 ** size:
            return bytes([major << 5 | info]) + i2osp(n, size)
    raise ValueError("too large")


def cbor(x: object) -> bytes:
    if x is None:
        return CBOR_NULL
    if isinstance(x, bool):
        raise TypeError
    if isinstance(x, int):
        return _head(0, x)
    if isinstance(x, bytes):
        return _head(2, len(x)) + x
    if isinstance(x, str):
        return _head(3, len(x.encode())) + x.encode()
    if isinstance(x, list):
        return _head(4, len(x)) + b"".join(cbor(e) for e in x)
    if isinstance(x, dict):
        items = sorted((cbor(k), cbor(v)) for k, v in x.items())  # keys sorted bytewise by encoding
        return _head(5, len(items)) + b"".join(k + v for k, v in items)
    raise TypeError(type(x))


# -- HKDF-SHA256 (RFC 5869) and the HPKE profile (specs/issuance.md 7.1, RFC 9180) --

def extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:length]


def _lx(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return extract(salt, b"HPKE-v1" + suite + label + ikm)


def _le(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return expand(prk, i2osp(length, 2) + b"HPKE-v1" + suite + label + info, length)


KEM = b"KEM" + i2osp(0x20, 2)
HPKE = b"HPKE" + i2osp(0x20, 2) + i2osp(1, 2) + i2osp(3, 2)


def derive_key_pair(ikm: bytes) -> tuple[X25519PrivateKey, bytes]:
    sk = _le(KEM, _lx(KEM, b"", b"dkp_prk", ikm), b"sk", b"", 32)
    key = X25519PrivateKey.from_private_bytes(sk)
    return key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def seal_base(pk_r: bytes, info: bytes, pt: bytes, ikm_e: bytes) -> tuple[bytes, bytes]:
    sk_e, enc = derive_key_pair(ikm_e)
    dh = sk_e.exchange(X25519PublicKey.from_public_bytes(pk_r))
    shared = _le(KEM, _lx(KEM, b"", b"eae_prk", dh), b"shared_secret", enc + pk_r, 32)
    context = b"\x00" + _lx(HPKE, b"", b"psk_id_hash", b"") + _lx(HPKE, b"", b"info_hash", info)
    secret = _lx(HPKE, shared, b"secret", b"")
    key, nonce = _le(HPKE, secret, b"key", context, 32), _le(HPKE, secret, b"base_nonce", context, 12)
    return enc, ChaCha20Poly1305(key).encrypt(nonce, pt, b"")


# -- the controller (specs/groupkeys.md sections 3 to 7, 9.2, 11.2) --

class Controller:
    def __init__(self, group: bytes, epoch: int, arity: int, signing_key: bytes, draws: list[bytes]) -> None:
        self.group, self.epoch, self.d = group, epoch, arity
        self.sk = Ed25519PrivateKey.from_private_bytes(signing_key)
        self.draws = draws  # the controller's draws, consumed in the order of spec 11.2
        self.seq = 0
        self.ctx = lp1(group) + i2osp(epoch, 4)  # spec 3.3

    def draw(self, n: int) -> bytes:
        chunk = self.draws.pop(0)
        assert len(chunk) == n, (len(chunk), n)
        return chunk

    def sign(self, kind: str, body: dict, sig_key: int) -> bytes:  # spec 4.1
        body[sig_key] = self.sk.sign(DOMAIN + lp1(kind.encode()) + cbor(body))
        return cbor(body)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # spec 3.1 / 9.2: the fresh tree of an epoch
    def start(self, directory: dict[bytes, bytes]) -> dict[bytes, bytes]:
        self.devices = dict(directory)
        members = sorted(directory)
        n, d = len(members), self.d
        self.h = 1
        while d ** self.h < n:
            self.h += 1
        self.leaf = {m: i for i, m in enumerate(members)}
        self.free: list[int] = []
        self.next_leaf = n
        self.nodes: dict[tuple[int, int], tuple[int, bytes]] = {}
        kid, occupied = 1, n
        for level in range(self.h + 1):
            if level:
                occupied = -(-occupied // d)
            material = self.draw(32 * occupied)  # one draw per level (spec 11.2)
            for p in range(occupied):
                self.nodes[(level, p)] = (kid, material[32 * p:32 * p + 32])
                kid += 1
        self.next_kid = kid
        return {m: self.resync(m) for m in members}

    def count(self, level: int, p: int, joined: set[bytes] | None = None) -> int:
        return sum(1 for m, leaf in self.leaf.items()
                   if leaf // self.d ** level == p and (joined is None or m not in joined))

    def new_kid(self) -> int:
        self.next_kid += 1
        return self.next_kid - 1

    # spec 5.1
    def rekey(self, joins: dict[bytes, bytes], leaves: list[bytes]) -> tuple[bytes, dict[bytes, bytes]]:
        d, tainted = self.d, set()
        for m in sorted(leaves):
            position = self.leaf.pop(m)
            self.free.append(position)
            self.nodes.pop((0, position), None)
            tainted |= {(level, position // d ** level) for level in range(self.h + 1)}
        old_h, joined_paths = self.h, set()
        for m in sorted(joins):
            if self.free:
                position = min(self.free)
                self.free.remove(position)
            else:
                if self.next_leaf >= d ** self.h:
                    self.h += 1  # spec 5.4
                position, self.next_leaf = self.next_leaf, self.next_leaf + 1
            self.leaf[m] = position
            self.nodes[(0, position)] = (self.new_kid(), self.draw(32))
        for m in joins:
            joined_paths |= {(level, self.leaf[m] // d ** level) for level in range(self.h + 1)}
        changed = tainted | joined_paths | {(level, 0) for level in range(old_h + 1, self.h + 1)}
        listed = [[0, p, self.nodes.get((0, p), (0, b""))[0]] for (level, p) in sorted(changed) if level == 0]
        wraps = []
        joined = set(joins)
        for level in range(1, self.h + 1):
            for p in sorted(p for (lv, p) in changed if lv == level):
                old = self.nodes.get((level, p))
                if self.count(level, p) == 0:
                    self.nodes.pop((level, p), None)
                    listed.append([level, p, 0])
                    continue
                kid, key = self.new_kid(), self.draw(32)
                self.nodes[(level, p)] = (kid, key)
                listed.append([level, p, kid])
                if self.count(level, p, joined) == 0:
                    continue
                keks = [old] if old is not None and (level, p) not in tainted else [
                    self.nodes[(level - 1, c)] for c in range(d * p, d * p + d)
                    if self.count(level - 1, c, joined) > 0]
                for kek_kid, kek in keks:
                    aad = b"usapp-lkh-v1 wrap" + i2osp(len(self.ctx), 8) + self.ctx + i2osp(kid, 8) + i2osp(kek_kid, 8)
                    ct = ChaCha20Poly1305(kek).encrypt(b"\0\0\0\0" + i2osp(kid, 8), key, aad)
                    wraps.append([kid, kek_kid, ct])
        for m in leaves:
            self.devices.pop(m)
        self.devices.update(joins)
        body = {1: 1, 2: "rekey", 3: self.group, 4: self.epoch, 5: self.next_seq(), 6: d, 7: self.h,
                8: listed, 9: wraps}
        message = self.sign("rekey", body, 10)
        return message, {m: self.resync(m) for m in sorted(joins)}

    # spec 4.3 / 7.1
    def resync(self, member: bytes) -> bytes:
        seq, position = self.next_seq(), self.leaf[member]
        path = [list(self.nodes[(level, position // self.d ** level)]) for level in range(self.h + 1)]
        info = DOMAIN + lp1(b"resync") + lp1(self.group) + i2osp(self.epoch, 4) + i2osp(seq, 8) + lp1(member)
        enc, ct = seal_base(self.devices[member], info, cbor({1: self.d, 2: position, 3: path}), self.draw(32))
        return self.sign("resync", {1: 1, 2: "resync", 3: self.group, 4: self.epoch, 5: seq, 6: member,
                                    7: enc, 8: ct}, 9)

    # spec 6.1
    def send(self, plaintext: bytes) -> bytes:
        seq = self.next_seq()
        kid, gk = self.nodes[(self.h, 0)]
        info = DOMAIN + lp1(b"data") + lp1(self.group) + i2osp(self.epoch, 4) + i2osp(kid, 8)
        key = expand(extract(b"", gk), info, 32)
        body = {1: 1, 2: "data", 3: self.group, 4: self.epoch, 5: seq, 6: kid}
        body[7] = ChaCha20Poly1305(key).encrypt(b"\0\0\0\0" + i2osp(seq, 8), plaintext, cbor(body))
        return self.sign("data", body, 8)


def replay_run(v: dict) -> tuple[int, int]:
    """Rebuild a run's controller messages; return (reproduced, total)."""
    group = bytes.fromhex(v["group"])
    devices = {bytes.fromhex(m): derive_key_pair(bytes.fromhex(ikm))[1] for m, ikm in v["meters"].items()}
    ctl = None
    members: list[bytes] = []
    same = total = 0

    def check(expected: str, got: bytes) -> None:
        nonlocal same, total
        total += 1
        same += expected == got.hex()

    for step in v["steps"]:
        # The operators' nonce draws come first in a step (spec 11.2); the controller's follow.
        draws = [bytes.fromhex(x["hex"]) for x in step["draws"] if not x["name"].startswith("operator ")]
        if step["op"] == "start":
            members = sorted(bytes.fromhex(m) for m in step["members"])
            ctl = Controller(group, 0, v["arity"], bytes.fromhex(v["controller_key"]), draws)
            for m, r in ctl.start({m: devices[m] for m in members}).items():
                check(step["resyncs"][m.hex()], r)
        elif step["op"] == "command" and step["action"] == "rekey-group":
            ctl = Controller(group, step["epoch"], v["arity"], bytes.fromhex(step["new_controller_key"]), draws)
            for m, r in ctl.start({m: devices[m] for m in members}).items():
                check(step["resyncs"][m.hex()], r)
        elif ctl is None:
            raise AssertionError("a run starts with a 'start' step")
        elif step["op"] == "rekey":
            ctl.draws = draws
            joins = [bytes.fromhex(m) for m in step["joins"]]
            leaves = [bytes.fromhex(m) for m in step["leaves"]]
            message, welcomes = ctl.rekey({m: devices[m] for m in joins}, leaves)
            members = sorted(set(members) - set(leaves) | set(joins))
            check(step["rekey"], message)
            for m, w in welcomes.items():
                check(step["welcomes"][m.hex()], w)
        elif step["op"] == "data":
            check(step["data"], ctl.send(bytes.fromhex(step["plaintext"])))
        elif step["op"] == "resync":
            ctl.draws = draws
            check(step["resync"], ctl.resync(bytes.fromhex(step["member"])))
        if ctl is not None:
            assert not ctl.draws, "a draw of the step was left unused"
    return same, total


def test_the_spec_alone_reproduces_every_controller_message() -> None:
    runs = [v for v in json.loads(VECTORS.read_text())["vectors"] if v["operation"] == "run"]
    counts = [replay_run(v) for v in runs]
    reproduced, total = sum(c[0] for c in counts), sum(c[1] for c in counts)
    print(f"\nfrom the spec alone: {reproduced} of {total} controller messages in {len(runs)} runs")
    assert total >= 40
    assert reproduced == total, counts


# -- the meter (specs/groupkeys.md sections 3.2, 4, 5.2, 5.3, 6.2, 7.1, 8.4, 8.6), from the spec text alone --

MAX_GROUP, MAX_MEMBER, MAX_EPOCH, MAX_SEQ, MAX_TIME = 64, 128, 2**32 - 1, 2**64 - 1, 2**64 - 1  # spec 4.1
MAX_KID, MAX_ARITY, MAX_HEIGHT = 2**63 - 1, 256, 64  # spec 3.1
MAX_LIFETIME = 604_800  # spec 8.4
KINDS = {  # spec 4.2 to 4.6: the exact keys and their types; the signature key last
    "rekey": {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: int, 7: int, 8: list, 9: list, 10: bytes},
    "resync": {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: bytes, 7: bytes, 8: bytes, 9: bytes},
    "data": {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: int, 7: bytes, 8: bytes},
    "command": {1: int, 2: str, 3: bytes, 4: int, 5: str, 6: dict, 7: int, 8: int, 9: bytes},
    "checkpoint": {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: bytes, 7: int, 8: bytes},
}
ARGS: dict[str, dict[int, type]] = {"disconnect": {1: list}, "reconnect": {1: list}, "disconnect-all": {}, "reconnect-all": {},
        "rekey-group": {1: int, 2: bytes, 3: bytes}, "set-command-key": {1: bytes}}  # spec 4.5


class SpecError(Exception):
    """A refusal, named as the spec names it (specs/conventions.md 5.1)."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")
        self.name = name


def refuse(name: str, why: str) -> SpecError:
    return SpecError(name, why)


def uncbor(data: bytes, i: int = 0) -> tuple[object, int]:
    """Read one item of the subset the messages use: unsigned ints, byte and text strings, arrays, maps, null."""
    major, info = data[i] >> 5, data[i] & 31
    i += 1
    if major == 7 and info == 22:  # conventions 2.3: null, 0xf6 (no other simple value, no float)
        return None, i
    if info < 24:
        n = info
    elif info < 28:
        size = 1 << (info - 24)
        if i + size > len(data):
            raise IndexError("truncated head")
        n, i = int.from_bytes(data[i:i + size], "big"), i + size
    else:
        raise ValueError("indefinite length or reserved head")
    if major == 0:
        return n, i
    if major in (2, 3):
        if i + n > len(data):
            raise IndexError("truncated string")
        raw = data[i:i + n]
        return (raw if major == 2 else raw.decode()), i + n
    if major == 4:
        out = []
        for _ in range(n):
            item, i = uncbor(data, i)
            out.append(item)
        return out, i
    if major == 5:
        m: dict = {}
        for _ in range(n):
            k, i = uncbor(data, i)
            m[k], i = uncbor(data, i)
        return m, i
    raise ValueError(f"major type {major} is outside the subset")


def decode_det(data: bytes) -> object:
    """conventions 2.3: accept only the deterministic encoding itself, so encode(decode(b)) == b: this one
    comparison refuses truncation, trailing bytes, non-shortest heads and unsorted or repeated map keys."""
    try:
        item, end = uncbor(data)
        if end != len(data) or cbor(item) != data:
            raise ValueError("not the deterministic encoding")
    except (IndexError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise refuse("DecodeError", f"CBOR: {exc}") from None
    return item


def expect_map(m: object, schema: dict, what: str) -> dict:
    if not isinstance(m, dict) or set(m) != set(schema):
        raise refuse("DecodeError", f"{what}: keys")
    for key, kind in schema.items():
        if type(m[key]) is not kind:
            raise refuse("DecodeError", f"{what}: key {key} type")
    return m


def check(condition: bool, what: str, name: str = "DecodeError") -> None:
    if not condition:
        raise refuse(name, what)


ED_P = 2**255 - 19
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
ED_L = 2**252 + 27742317777372353535851937790883648493  # RFC 8032 5.1: the prime order


def _ed_add(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """RFC 8032 5.1.4: addition in extended coordinates (X, Y, Z, T)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % ED_P, (y1 + x1) * (y2 + x2) % ED_P
    cc, dd = 2 * t1 * t2 * ED_D % ED_P, 2 * z1 * z2 % ED_P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % ED_P, g * h % ED_P, f * g % ED_P, e * h % ED_P


def check_point(key: bytes, what: str) -> None:
    """Spec 3.2: a canonical encoding (RFC 8032 5.1.3) of a point of prime order L, not the identity."""
    check(len(key) == 32, f"{what}: 32 bytes")
    y = int.from_bytes(key, "little")
    sign, y = y >> 255, y & (2**255 - 1)
    check(y < ED_P, f"{what}: y not canonical")
    u, v = (y * y - 1) % ED_P, (ED_D * y * y + 1) % ED_P
    x = u * pow(v, 3, ED_P) * pow(u * pow(v, 7, ED_P), (ED_P - 5) // 8, ED_P) % ED_P
    if v * x * x % ED_P == (-u) % ED_P:
        x = x * pow(2, (ED_P - 1) // 4, ED_P) % ED_P
    check(v * x * x % ED_P == u, f"{what}: not on the curve")
    check(not (x == 0 and sign), f"{what}: x = 0 with the sign bit")
    if x & 1 != sign:
        x = ED_P - x
    point, acc = (x, y, 1, x * y % ED_P), (0, 1, 1, 0)
    check(point[:2] != (0, 1), f"{what}: the identity")
    for bit in bin(ED_L)[2:]:  # [L]P by double-and-add: the identity iff P has order dividing L
        acc = _ed_add(acc, acc)
        if bit == "1":
            acc = _ed_add(acc, point)
    check(acc[0] % ED_P == 0 and (acc[1] - acc[2]) % ED_P == 0, f"{what}: not of prime order")


def decode_message(data: bytes) -> tuple[str, dict]:
    """Spec 4: the envelope, exact keys and types, versions, lengths, ranges -- all DecodeError."""
    check(len(data) <= 1 << 26, "at most 64 MiB")
    m = decode_det(data)
    if not isinstance(m, dict) or m.get(2) not in KINDS:
        raise refuse("DecodeError", "key 2 names no kind")
    kind = m[2]
    expect_map(m, KINDS[kind], kind)
    check(m[1] == 1, "version")
    check(1 <= len(m[3]) <= MAX_GROUP, "group")
    check(len(m[max(m)]) == 64, "signature")
    if kind == "command":
        check(m[4] <= MAX_SEQ and m[7] <= MAX_EPOCH and m[8] <= MAX_TIME, "ranges")
        check(m[5] in ARGS, "action")
        args = expect_map(m[6], ARGS[m[5]], "args")
        if m[5] in ("disconnect", "reconnect"):
            targets = args[1]
            check(bool(targets) and all(type(t) is bytes and 1 <= len(t) <= MAX_MEMBER for t in targets), "targets")
            check(targets == sorted(set(targets)), "targets sorted and distinct")
        elif m[5] == "rekey-group":
            check(m[7] < args[1] <= MAX_EPOCH, "the new epoch must be above key 7")
            check_point(args[2], "controller key")
            check(len(args[3]) == 32, "directory hash")
        elif m[5] == "set-command-key":
            check_point(args[1], "command key")
        return kind, m
    if kind == "checkpoint":
        check(m[4] <= MAX_SEQ and m[5] <= MAX_EPOCH and m[7] <= MAX_TIME, "ranges")
        check_point(m[6], "controller key")
        return kind, m
    check(m[4] <= MAX_EPOCH and m[5] <= MAX_SEQ, "epoch and seq")
    if kind == "rekey":
        d, h = m[6], m[7]
        check(2 <= d <= MAX_ARITY and 1 <= h <= MAX_HEIGHT, "arity, height")
        last = (-1, -1)
        for node in m[8]:
            check(isinstance(node, list) and len(node) == 3 and all(type(x) is int for x in node), "node")
            level, position, kid = node
            check(level <= h and position < d ** (h - level) and kid <= MAX_KID, "node inside the tree")
            check((level, position) > last, "nodes sorted")
            last = (level, position)
        check(last == (h, 0), "the root last")
        for w in m[9]:
            check(isinstance(w, list) and len(w) == 3 and type(w[0]) is int and type(w[1]) is int
                  and type(w[2]) is bytes, "wrap")
            check(1 <= w[0] <= MAX_KID and 1 <= w[1] <= MAX_KID and len(w[2]) == 48, "wrap fields")
    elif kind == "resync":
        check(1 <= len(m[6]) <= MAX_MEMBER and len(m[7]) == 32 and 17 <= len(m[8]) <= 1 << 16, "resync fields")
    else:
        check(m[6] <= MAX_KID and 16 <= len(m[7]) <= 65552, "data fields")
    return kind, m


def verify(public_key: bytes, kind: str, m: dict) -> None:
    """Spec 4.1: the signature (last key) over DOMAIN || lp1(kind) || CBOR(the map without it)."""
    sig_key = max(m)
    body = {k: v for k, v in m.items() if k != sig_key}
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(m[sig_key], DOMAIN + lp1(kind.encode()) + cbor(body))
    except (InvalidSignature, ValueError):
        raise refuse("VerificationError", f"{kind}: signature") from None


def check_validity(not_after: int, now: int) -> None:
    """Spec 8.4 step 3."""
    check(now <= not_after, "expired", "StateError")
    check(not_after - now <= MAX_LIFETIME, "too far ahead", "StateError")


class Meter:
    """A member (spec 3.2): its trust state and, after a resync, its path (level 0 .. h) in the tree."""

    def __init__(self, group: bytes, member: bytes, sk: X25519PrivateKey, state: dict) -> None:
        self.group, self.member, self.sk = group, member, sk
        self.command_key = bytes.fromhex(state["command_key"])
        self.controller_key = bytes.fromhex(state["controller_key"])
        self.epoch, self.seq, self.command_seq = state["epoch"], state["seq"], state["command_seq"]
        self.supply_on = state["supply_on"]
        keys = state["keys"]
        self.keys: tuple[int, int, list[tuple[int, bytes]]] | None = None if keys is None else (
            keys["arity"], keys["position"], [(kid, bytes.fromhex(key)) for kid, key in keys["path"]])

    @classmethod
    def provision(cls, group: bytes, member: bytes, sk: X25519PrivateKey, command_key: bytes,
                  checkpoint: bytes, now: int) -> Meter:
        """Spec 8.6: decode, the group, the signature under the command key, the validity at now."""
        kind, m = decode_message(checkpoint)
        check(kind == "checkpoint", "provisioning needs a checkpoint")
        check(m[3] == group, "group", "VerificationError")
        verify(command_key, kind, m)
        check_validity(m[7], now)
        return cls(group, member, sk, {"command_key": command_key.hex(), "controller_key": m[6].hex(),
                                       "epoch": m[5], "seq": 0, "command_seq": m[4], "supply_on": True,
                                       "keys": None})

    def state(self) -> dict:
        """The meter state in the layout of the vectors (spec 11.3)."""
        keys = None if self.keys is None else {
            "arity": self.keys[0], "position": self.keys[1], "path": [[kid, key.hex()] for kid, key in self.keys[2]]}
        return {"command_key": self.command_key.hex(), "command_seq": self.command_seq,
                "controller_key": self.controller_key.hex(), "epoch": self.epoch, "keys": keys, "seq": self.seq,
                "supply_on": self.supply_on}

    def receive(self, message: bytes, now: int | None = None) -> dict:
        """Spec 5.3, in its order; the state changes only when every check passes. Returns the output
        in the layout of the vectors' meter sub-vectors."""
        kind, m = decode_message(message)
        check(m[3] == self.group, "group", "VerificationError")
        if kind in ("command", "checkpoint"):
            if type(now) is not int or not 0 <= now <= MAX_TIME:
                raise refuse("ParameterError", "the meter's clock")
            verify(self.command_key, kind, m)
            return self.command(m, now) if kind == "command" else self.checkpoint(m, now)
        verify(self.controller_key, kind, m)
        check(m[4] == self.epoch, "epoch", "StateError")
        check(m[5] > self.seq, "sequence number", "ReplayError")
        if kind == "resync":
            self.keys, self.seq = self.open_resync(m), m[5]
            return {"accepted": "keys"}
        if self.keys is None:
            raise refuse("ResyncRequiredError", "no keys for the epoch")
        if kind == "rekey":
            self.keys, self.seq = self.apply(m), m[5]
            return {"accepted": "keys"}
        kid, key = self.keys[2][-1]  # spec 6.2
        check(m[6] == kid, "another group key", "ResyncRequiredError")
        info = DOMAIN + lp1(b"data") + lp1(self.group) + i2osp(self.epoch, 4) + i2osp(kid, 8)
        try:
            plaintext = ChaCha20Poly1305(expand(extract(b"", key), info, 32)).decrypt(
                b"\0\0\0\0" + i2osp(m[5], 8), m[7], cbor({k: m[k] for k in range(1, 7)}))
        except InvalidTag:
            raise refuse("VerificationError", "data does not open") from None
        self.seq = m[5]
        return {"accepted": "data", "plaintext": plaintext.hex()}

    def open_resync(self, m: dict) -> tuple[int, int, list[tuple[int, bytes]]]:
        """Spec 7.1 and 4.3: the addressee, the seal, the path's shape."""
        check(m[6] == self.member, "another member", "VerificationError")
        info = DOMAIN + lp1(b"resync") + lp1(self.group) + i2osp(m[4], 4) + i2osp(m[5], 8) + lp1(self.member)
        try:
            payload = open_base(self.sk, m[7], info, m[8])
        except (InvalidTag, ValueError):
            raise refuse("VerificationError", "the seal does not open") from None
        p = expect_map(decode_det(payload), {1: int, 2: int, 3: list}, "path")
        d, position, path = p[1], p[2], p[3]
        check(2 <= d <= MAX_ARITY and 2 <= len(path) <= MAX_HEIGHT + 1, "arity, path length")
        check(position < d ** (len(path) - 1), "leaf inside the tree")
        for entry in path:
            check(isinstance(entry, list) and len(entry) == 2 and type(entry[0]) is int
                  and 1 <= entry[0] <= MAX_KID and type(entry[1]) is bytes and len(entry[1]) == 32, "path entry")
        return d, position, [(kid, key) for kid, key in path]

    def apply(self, m: dict) -> tuple[int, int, list[tuple[int, bytes]]]:
        """Spec 5.2, in its order (receive has checked that the meter holds keys)."""
        if self.keys is None:
            raise refuse("ResyncRequiredError", "no keys for the epoch")
        d, position, old = self.keys
        check(m[6] == d, "arity")
        height = len(old) - 1
        check(m[7] >= height, "the rekey shrinks the tree")
        changed = {(level, p): kid for level, p, kid in m[8]}
        check((0, position) not in changed, "own leaf listed: removed", "StateError")
        held = dict(old)
        path = list(old)
        ctx = lp1(self.group) + i2osp(self.epoch, 4)  # spec 3.3
        for level in range(1, m[7] + 1):
            kid = changed.get((level, position // d ** level))
            if kid is None:
                check(level <= height, "a grown level without a key")
                continue
            check(kid != 0, "a node on the path emptied: removed", "StateError")
            wrap = next((w for w in m[9] if w[0] == kid and w[1] in held), None)
            if wrap is None:
                raise refuse("ResyncRequiredError", "no wrap under a held key")
            aad = b"usapp-lkh-v1 wrap" + i2osp(len(ctx), 8) + ctx + i2osp(kid, 8) + i2osp(wrap[1], 8)
            try:
                key = ChaCha20Poly1305(held[wrap[1]]).decrypt(b"\0\0\0\0" + i2osp(kid, 8), wrap[2], aad)
            except InvalidTag:
                raise refuse("VerificationError", "a wrap does not open") from None
            held[kid] = key
            if level < len(path):
                path[level] = (kid, key)
            else:
                path.append((kid, key))
        check(path[-1][0] == m[8][-1][2], "the root is not the rekey's", "ResyncRequiredError")
        return d, position, path

    def command(self, m: dict, now: int) -> dict:
        """Spec 8.4 steps 1-5."""
        check(m[7] == self.epoch, "epoch", "StateError")
        check(m[4] > self.command_seq, "command sequence number", "ReplayError")
        check_validity(m[8], now)
        action, args = m[5], m[6]
        applies = self.member in args[1] if action in ("disconnect", "reconnect") else True
        if applies and action in ("disconnect", "disconnect-all"):
            self.supply_on = False
        elif applies and action in ("reconnect", "reconnect-all"):
            self.supply_on = True
        elif action == "rekey-group":
            self.epoch, self.seq, self.keys, self.controller_key = args[1], 0, None, args[2]
        elif action == "set-command-key":
            self.command_key = args[1]
        self.command_seq = m[4]
        return {"accepted": "command", "applies_to_me": applies}

    def checkpoint(self, m: dict, now: int) -> dict:
        """Spec 8.6, a checkpoint through receive."""
        check(m[5] >= self.epoch, "an earlier epoch", "StateError")
        check(m[4] >= self.command_seq, "behind the meter", "ReplayError")
        check(m[5] > self.epoch or m[6] == self.controller_key, "another controller key", "StateError")
        check_validity(m[7], now)
        if m[5] > self.epoch:
            self.epoch, self.seq, self.keys, self.controller_key = m[5], 0, None, m[6]
        self.command_seq = m[4]
        return {"accepted": "checkpoint"}


def open_base(sk_r: X25519PrivateKey, enc: bytes, info: bytes, ct: bytes) -> bytes:
    """RFC 9180 5.1.1 / 5.2, base mode, DHKEM(X25519, HKDF-SHA256), ChaCha20-Poly1305."""
    pk_r = sk_r.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    dh = sk_r.exchange(X25519PublicKey.from_public_bytes(enc))
    shared = _le(KEM, _lx(KEM, b"", b"eae_prk", dh), b"shared_secret", enc + pk_r, 32)
    context = b"\x00" + _lx(HPKE, b"", b"psk_id_hash", b"") + _lx(HPKE, b"", b"info_hash", info)
    secret = _lx(HPKE, shared, b"secret", b"")
    key, nonce = _le(HPKE, secret, b"key", context, 32), _le(HPKE, secret, b"base_nonce", context, 12)
    return ChaCha20Poly1305(key).decrypt(nonce, ct, b"")


def _vectors() -> list[dict]:
    return json.loads(VECTORS.read_text())["vectors"]


def _output(meter: Meter, message: bytes, now: int | None) -> dict:
    try:
        return meter.receive(message, now)
    except SpecError as exc:
        return {"error": exc.name}


def meter_roles(v: dict) -> tuple[int, int]:
    """Every meter sub-vector of a run (spec 11.3 roles): from its state_before (or provisioned), the spec
    meter gives the stored output -- keys, data, command, checkpoint, or a leaver's error -- and state_after."""
    group = bytes.fromhex(v["group"])
    same = total = 0
    for step in v["steps"]:
        for role in step.get("roles", []):
            if role["role"] != "meter":
                continue
            member = bytes.fromhex(role["member"])
            sk, _ = derive_key_pair(bytes.fromhex(v["meters"][role["member"]]))
            message = bytes.fromhex(role["input"])
            if role.get("provision"):
                try:
                    meter = Meter.provision(group, member, sk, bytes.fromhex(v["command_key"]), message, role["now"])
                    output = {"accepted": "checkpoint"}
                except SpecError as exc:
                    output = {"error": exc.name}
            else:
                meter = Meter(group, member, sk, role["state_before"])
                output = _output(meter, message, role["now"])
            total += 1
            same += output == role["output"] and meter.state() == role["state_after"]
    return same, total


def test_the_spec_alone_plays_every_meter_sub_vector_of_the_runs() -> None:
    """Specs 5.2, 5.3, 6.2, 7.1, 8.4, 8.6: each meter step of each run, leavers' refusals included."""
    runs = [v for v in _vectors() if v["operation"] == "run"]
    counts = [meter_roles(v) for v in runs]
    reached, total = sum(c[0] for c in counts), sum(c[1] for c in counts)
    print(f"\nfrom the spec alone: {reached} of {total} meter sub-vectors in {len(runs)} runs")
    assert total >= 100
    assert reached == total, counts


def meter_run(v: dict) -> tuple[int, int, int]:
    """Feed every meter the controller messages of a run in order: count the views (group kid and key) and
    plaintexts reached, and check that a removed member refuses every later rekey and data message.
    Returns (reached, total, leaver refusals)."""
    group = bytes.fromhex(v["group"])
    keys = {bytes.fromhex(m): derive_key_pair(bytes.fromhex(ikm))[0] for m, ikm in v["meters"].items()}
    meters: dict[bytes, Meter] = {}
    members: set[bytes] = set()
    left: set[bytes] = set()
    same = total = refused = 0
    now = v["now"]
    for step in v["steps"]:
        if step.get("checkpoint"):  # spec 8.6: every meter provisioned (or caught up) from the checkpoint
            for m in keys:
                if m not in meters:
                    meters[m] = Meter.provision(group, m, keys[m], bytes.fromhex(v["command_key"]),
                                                bytes.fromhex(step["checkpoint"]), now)
        if step["op"] == "command":
            for m in sorted(meters):
                meters[m].receive(bytes.fromhex(step["command"]), now)
        if step["op"] == "rekey":
            leaves = {bytes.fromhex(m) for m in step["leaves"]}
            errors = step.get("leavers_refuse", [])
            assert len(errors) == len(step["leaves"])
            for m, error in zip(step["leaves"], errors):  # spec 5.2 step 2: its leaf is listed
                out = _output(meters[bytes.fromhex(m)], bytes.fromhex(step["rekey"]), None)
                assert out == {"error": error}, (m, out)
                refused += 1
            members -= leaves
            left |= leaves
            for m in sorted(members):
                meters[m].receive(bytes.fromhex(step["rekey"]))
            members |= {bytes.fromhex(m) for m in step["joins"]}
            left -= members
        for name in ("resyncs", "welcomes"):
            for m, r in step.get(name, {}).items():
                meters[bytes.fromhex(m)].receive(bytes.fromhex(r))
                members.add(bytes.fromhex(m))
        if step["op"] == "resync":
            meters[bytes.fromhex(step["member"])].receive(bytes.fromhex(step["resync"]))
        if step["op"] == "data":
            for m in sorted(members):
                total += 1
                got = meters[m].receive(bytes.fromhex(step["data"]))
                same += got == {"accepted": "data", "plaintext": step["plaintext"]}
            for m in sorted(left):  # spec 6.2 and 10.1: a departed member reads no later data
                out = _output(meters[m], bytes.fromhex(step["data"]), None)
                assert "error" in out, (m.hex(), out)
                refused += 1
        for m, view in step.get("views", {}).items():
            meter = meters.get(bytes.fromhex(m))
            if bytes.fromhex(m) in members and meter is not None and meter.keys is not None:
                kid, key = meter.keys[2][-1]
                total += 1
                same += (kid, key.hex()) == (view["group_kid"], view["group_key"])
        current = {view["group_key"] for view in step.get("views", {}).values()}
        for m in left:  # spec 10.1: a removed member does not hold the group key of the step
            keys_left = meters[m].keys
            assert keys_left is None or keys_left[2][-1][1].hex() not in current, m.hex()
    return same, total, refused


def test_the_spec_alone_builds_a_meter_that_reaches_every_group_key_and_drops_leavers() -> None:
    """Specs 5.2, 6.2, 7.2, 10.1: each meter of each run, fed the controller's messages, opens every resync
    and wrap, reaches the vectors' group kid and key after every step and decrypts every data message; each
    leaver refuses its removal rekey with the spec's error and every later data message."""
    runs = [v for v in _vectors() if v["operation"] == "run"]
    counts = [meter_run(v) for v in runs]
    reached, total, refused = (sum(c[i] for c in counts) for i in range(3))
    print(f"\nfrom the spec alone: {reached} of {total} meter views and plaintexts in {len(runs)} runs; "
          f"{refused} leaver refusals")
    assert total >= 100 and refused >= 3
    assert reached == total, counts


def _refusals(operation: str) -> list[dict]:
    return [v for v in _vectors() if v["operation"] == operation]


@pytest.mark.parametrize("v", _refusals("meter-receive"), ids=lambda v: v["name"])
def test_the_spec_alone_refuses_every_meter_receive_vector_with_its_error(v: dict) -> None:
    """Spec 11.4 meter-receive: the spec meter in state ``meter`` refuses ``message`` at ``now`` with
    ``error`` and keeps its state."""
    s = v["meter"]
    meter = Meter(bytes.fromhex(s["group"]), bytes.fromhex(s["member"]),
                  X25519PrivateKey.from_private_bytes(bytes.fromhex(s["device_private"])), s)
    before = meter.state()
    with pytest.raises(SpecError) as caught:
        meter.receive(bytes.fromhex(v["message"]), v["now"])
    assert caught.value.name == v["error"], str(caught.value)
    assert meter.state() == before


@pytest.mark.parametrize("v", _refusals("meter-provision"), ids=lambda v: v["name"])
def test_the_spec_alone_refuses_every_meter_provision_vector_with_its_error(v: dict) -> None:
    """Spec 11.4 meter-provision and 8.6."""
    with pytest.raises(SpecError) as caught:
        Meter.provision(bytes.fromhex(v["group"]), bytes.fromhex(v["member"]),
                        X25519PrivateKey.from_private_bytes(bytes.fromhex(v["device_private"])),
                        bytes.fromhex(v["command_key"]), bytes.fromhex(v["checkpoint"]), v["now"])
    assert caught.value.name == v["error"], str(caught.value)


def test_every_meter_refusal_of_the_file_is_played() -> None:
    """The two parametrized tests above cover all meter refusals of spec 11.4 (43 + 8), the replayed rekey,
    the rekey of an old epoch and the keys of order 2 among them."""
    names = {v["name"] for v in _refusals("meter-receive")}
    assert {"rekey-replayed", "rekey-of-epoch-0-at-a-meter-in-epoch-1", "rekey-to-the-leaver"} <= names
    assert (len(names), len(_refusals("meter-provision"))) == (43, 8)


def test_device_private_is_the_raw_hpke_private_key() -> None:
    """Spec 11.4: ``device_private`` is skR itself (DeriveKeyPair's output), not an ikm: the replayed
    resync opens, under the vector's device_private, for a meter that has not yet accepted it."""
    v = next(x for x in _refusals("meter-receive") if x["name"] == "resync-replayed")
    s = dict(v["meter"])
    message = bytes.fromhex(v["message"])
    seq = decode_message(message)[1][5]
    s["seq"], s["keys"] = seq - 1, None
    meter = Meter(bytes.fromhex(s["group"]), bytes.fromhex(s["member"]),
                  X25519PrivateKey.from_private_bytes(bytes.fromhex(s["device_private"])), s)
    assert meter.receive(message) == {"accepted": "keys"}
    assert meter.keys is not None and meter.seq == seq


def test_the_point_check_accepts_every_key_of_the_vectors_and_refuses_small_and_mixed_order() -> None:
    """Spec 3.2: every command and controller key in the file is a valid point; the identity, the point of
    order 2, a non-canonical y and a key of mixed order (a valid key plus the order-2 point) are refused."""
    keys = set()
    for v in _vectors():
        for s in (v.get("meter"), v if v["operation"] == "meter-provision" else None):
            if isinstance(s, dict):
                keys.add(s["command_key"])
        if v["operation"] == "run":
            keys |= {v["command_key"], v["controller_public"]}
    for key in keys:
        check_point(bytes.fromhex(key), "key")
    valid = next(iter(keys))
    x, y = _affine(bytes.fromhex(valid))
    mixed = _encode(*_affine_add((x, y), (0, ED_P - 1)))
    for bad in ("01" + "00" * 31, "ec" + "ff" * 30 + "7f", "ed" + "ff" * 30 + "7f", mixed.hex()):
        with pytest.raises(SpecError) as caught:
            check_point(bytes.fromhex(bad), "key")
        assert caught.value.name == "DecodeError", bad


def _affine(key: bytes) -> tuple[int, int]:
    y = int.from_bytes(key, "little") & (2**255 - 1)
    u, v = (y * y - 1) % ED_P, (ED_D * y * y + 1) % ED_P
    x = u * pow(v, 3, ED_P) * pow(u * pow(v, 7, ED_P), (ED_P - 5) // 8, ED_P) % ED_P
    if v * x * x % ED_P != u:
        x = x * pow(2, (ED_P - 1) // 4, ED_P) % ED_P
    return (ED_P - x if x & 1 != key[31] >> 7 else x), y


def _affine_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    x1, y1 = a
    x2, y2 = b
    k = ED_D * x1 * x2 * y1 * y2 % ED_P
    return ((x1 * y2 + x2 * y1) * pow(1 + k, ED_P - 2, ED_P) % ED_P,
            (y1 * y2 + x1 * x2) * pow(1 - k, ED_P - 2, ED_P) % ED_P)


def _encode(x: int, y: int) -> bytes:
    return (y | (x & 1) << 255).to_bytes(32, "little")


def test_the_codec_writes_and_reads_null_as_0xf6_and_refuses_every_other_simple_value() -> None:
    """Conventions 2.3: null is the one-byte 0xf6, in the deterministic encoding as anywhere else; undefined
    (0xf7) and null written with a one-byte extension (0xf8 0x16) are outside the subset."""
    assert cbor(None) == CBOR_NULL == b"\xf6"
    assert cbor({7: None, 1: [None, 0]}) == bytes.fromhex("a2" "0182f600" "07f6")
    assert decode_det(b"\xf6") is None
    assert decode_det(bytes.fromhex("a20182f60007f6")) == {1: [None, 0], 7: None}
    for bad in (b"\xf7", b"\xf8\x16", b"\xf6\xf6", b"\xf6\x00"):
        with pytest.raises(SpecError, match="DecodeError"):
            decode_det(bad)
