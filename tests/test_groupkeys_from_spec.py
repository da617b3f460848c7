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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "groupkeys.json"
DOMAIN = b"usapp-groupkeys-v1"


def i2osp(x: int, n: int) -> bytes:
    return x.to_bytes(n, "big")


def lp1(x: bytes) -> bytes:
    """conventions: a one-byte length prefix (spec 4.1)."""
    return bytes([len(x)]) + x


# -- deterministic CBOR (conventions section 2), the subset the messages use --

def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for size, info in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if n < 256 ** size:
            return bytes([major << 5 | info]) + i2osp(n, size)
    raise ValueError("too large")


def cbor(x: object) -> bytes:
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


# -- the meter (specs/groupkeys.md sections 4, 5.2, 6.2, 7.2), from the spec text alone --

def uncbor(data: bytes, i: int = 0) -> tuple[object, int]:
    """The deterministic CBOR subset of spec 4.1: unsigned ints, byte and text strings, arrays, maps."""
    major, info = data[i] >> 5, data[i] & 31
    i += 1
    if info < 24:
        n = info
    else:
        size = 1 << (info - 24)
        n, i = int.from_bytes(data[i:i + size], "big"), i + size
    if major == 0:
        return n, i
    if major in (2, 3):
        raw = data[i:i + n]
        return (raw if major == 2 else raw.decode()), i + n
    if major == 4:
        out = []
        for _ in range(n):
            item, i = uncbor(data, i)
            out.append(item)
        return out, i
    if major == 5:
        m = {}
        for _ in range(n):
            k, i = uncbor(data, i)
            m[k], i = uncbor(data, i)
        return m, i
    raise ValueError(major)


def open_base(sk_r: X25519PrivateKey, enc: bytes, info: bytes, ct: bytes) -> bytes:
    """RFC 9180 5.1.1 / 5.2, base mode, DHKEM(X25519, HKDF-SHA256), ChaCha20-Poly1305."""
    pk_r = sk_r.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    dh = sk_r.exchange(X25519PublicKey.from_public_bytes(enc))
    shared = _le(KEM, _lx(KEM, b"", b"eae_prk", dh), b"shared_secret", enc + pk_r, 32)
    context = b"\x00" + _lx(HPKE, b"", b"psk_id_hash", b"") + _lx(HPKE, b"", b"info_hash", info)
    secret = _lx(HPKE, shared, b"secret", b"")
    key, nonce = _le(HPKE, secret, b"key", context, 32), _le(HPKE, secret, b"base_nonce", context, 12)
    return ChaCha20Poly1305(key).decrypt(nonce, ct, b"")


class Meter:
    """A member: its leaf, the kids and keys on its path (level 0 .. h), the last sequence number."""

    def __init__(self, group: bytes, member: bytes, ikm: bytes) -> None:
        self.group, self.member = group, member
        self.sk, _ = derive_key_pair(ikm)
        self.epoch, self.seq, self.path = None, 0, None
        self.controller_key = b""

    def receive(self, message: bytes) -> bytes | None:
        m, end = uncbor(message)
        assert end == len(message)
        kind = m[2]
        sig_key = {"resync": 9, "rekey": 10, "data": 8}[kind]
        body = {k: val for k, val in m.items() if k != sig_key}
        Ed25519PublicKey.from_public_bytes(self.controller_key).verify(
            m[sig_key], DOMAIN + lp1(kind.encode()) + cbor(body))  # spec 4.1
        assert m[3] == self.group and m[5] > self.seq
        if kind == "resync":  # spec 7.2: a resync may start the meter on its epoch
            assert m[6] == self.member
            self.epoch, self.seq = m[4], m[5]
            info = DOMAIN + lp1(b"resync") + lp1(self.group) + i2osp(m[4], 4) + i2osp(m[5], 8) + lp1(self.member)
            payload, _ = uncbor(open_base(self.sk, m[7], info, m[8]))
            self.d, self.position, self.path = payload[1], payload[2], [tuple(e) for e in payload[3]]
            return None
        assert m[4] == self.epoch
        self.seq = m[5]
        ctx = lp1(self.group) + i2osp(self.epoch, 4)  # spec 3.3
        if kind == "rekey":  # spec 5.2
            known = dict(self.path)
            for kid, kek_kid, ct in m[9]:
                if kek_kid in known and kid not in known:
                    aad = b"usapp-lkh-v1 wrap" + i2osp(len(ctx), 8) + ctx + i2osp(kid, 8) + i2osp(kek_kid, 8)
                    known[kid] = ChaCha20Poly1305(known[kek_kid]).decrypt(b"\0\0\0\0" + i2osp(kid, 8), ct, aad)
            height = m[7]
            path = self.path + [None] * (height + 1 - len(self.path))
            for level, p, kid in m[8]:
                if p == self.position // self.d ** level:
                    path[level] = (kid, known[kid])
            self.path = path
            return None
        kid, key = self.path[-1]  # spec 6.2
        assert m[6] == kid
        info = DOMAIN + lp1(b"data") + lp1(self.group) + i2osp(self.epoch, 4) + i2osp(kid, 8)
        data_key = expand(extract(b"", key), info, 32)
        return ChaCha20Poly1305(data_key).decrypt(b"\0\0\0\0" + i2osp(m[5], 8), m[7],
                                                  cbor({k: m[k] for k in range(1, 7)}))


def meter_run(v: dict) -> tuple[int, int]:
    """Feed every meter the controller messages of a run; count the views (group kid and key) reached."""
    group = bytes.fromhex(v["group"])
    meters = {bytes.fromhex(m): Meter(group, bytes.fromhex(m), bytes.fromhex(ikm)) for m, ikm in v["meters"].items()}
    for meter in meters.values():
        meter.controller_key = bytes.fromhex(v["controller_public"])
    members: set[bytes] = set()
    same = total = 0
    for step in v["steps"]:
        if step["op"] == "command" and step["action"] == "rekey-group":
            for meter in meters.values():  # spec 8.4: the new epoch's controller key, seq 0
                meter.controller_key = Ed25519PrivateKey.from_private_bytes(
                    bytes.fromhex(step["new_controller_key"])).public_key().public_bytes(Encoding.Raw,
                                                                                         PublicFormat.Raw)
                meter.seq = 0
        if step["op"] == "rekey":
            leaves = {bytes.fromhex(m) for m in step["leaves"]}
            members -= leaves
            for m in sorted(members):
                meters[m].receive(bytes.fromhex(step["rekey"]))
            members |= {bytes.fromhex(m) for m in step["joins"]}
        for name in ("resyncs", "welcomes"):
            for m, r in step.get(name, {}).items():
                meters[bytes.fromhex(m)].receive(bytes.fromhex(r))
                members.add(bytes.fromhex(m))
        if step["op"] == "resync":
            meters[bytes.fromhex(step["member"])].receive(bytes.fromhex(step["resync"]))
        if step["op"] == "data":
            for m in sorted(members):
                total += 1
                same += meters[m].receive(bytes.fromhex(step["data"])) == bytes.fromhex(step["plaintext"])
        for m, view in step.get("views", {}).items():
            if bytes.fromhex(m) in members and meters[bytes.fromhex(m)].path:
                kid, key = meters[bytes.fromhex(m)].path[-1]
                total += 1
                same += (kid, key.hex()) == (view["group_kid"], view["group_key"])
    return same, total


def test_the_spec_alone_builds_a_meter_that_reaches_every_group_key() -> None:
    """Specs 5.2, 6.2, 7.2: each meter of each run, fed the controller's messages, opens every resync and wrap,
    reaches the vectors' group kid and key after every step and decrypts every data message."""
    runs = [v for v in json.loads(VECTORS.read_text())["vectors"] if v["operation"] == "run"]
    counts = [meter_run(v) for v in runs]
    reached, total = sum(c[0] for c in counts), sum(c[1] for c in counts)
    print(f"\nfrom the spec alone: {reached} of {total} meter views and plaintexts in {len(runs)} runs")
    assert total >= 100
    assert reached == total, counts
