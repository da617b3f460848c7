"""An independent implementation of specs/integrity.md, written from the spec text alone, checked against
vectors/integrity.json (issue 15: a vendor reproduces every vector from the text).

It uses hashlib and cryptography only; it imports nothing from protocols.integrity, protocols.schemes.merkle
or protocols.primitives.cbor.  Covered: the record (sections 2, 3.1, 3.2), the signed tree head (4.2), Y
(5.1) and the meter's check (5.2), probes and the bisection (6.1, 6.2), inclusion messages (7), the arbiter
(8.2), the restore and resync with every per-role step and every refusal (9.1, 9.2, 12.1 to 12.3), with the
Merkle tree of RFC 9162 section 2.1 written out here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VECTORS = json.loads((Path(__file__).resolve().parent.parent / "vectors" / "integrity.json").read_text())
DOMAIN = b"usapp-integrity-v2"                                   # spec 2


# -- deterministic CBOR (specs/conventions.md section 2), just what the messages use -----------------------

def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | info]) + n.to_bytes(width, "big")
    raise ValueError("too large")


def cbor(x) -> bytes:
    if isinstance(x, bool) or x is None:
        raise TypeError("not used by the spec")
    if isinstance(x, int):
        return _head(0, x)
    if isinstance(x, bytes):
        return _head(2, len(x)) + x
    if isinstance(x, str):
        raw = x.encode()
        return _head(3, len(raw)) + raw
    if isinstance(x, list):
        return _head(4, len(x)) + b"".join(cbor(i) for i in x)
    if isinstance(x, dict):
        return _head(5, len(x)) + b"".join(cbor(k) + cbor(x[k]) for k in sorted(x))
    raise TypeError(type(x))


def lp4(x: bytes) -> bytes:
    return len(x).to_bytes(4, "big") + x


def sign(key: Ed25519PrivateKey, kind: str, body: dict) -> bytes:
    return key.sign(DOMAIN + lp4(kind.encode()) + cbor(body))


def public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# -- RFC 9162 section 2.1 --------------------------------------------------------------------------------

def leaf(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf(d[0])
    k = split(len(d))
    return node(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = split(len(d))
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return [] if m == 0 or m == len(d) else subproof(m, d, True)   # spec 2: empty at 0 and n


# -- the messages (spec 3.1, 4.2, 5.1, 6.1, 7) -------------------------------------------------------------

def record(key, meter: bytes, period: int, counter: int, registers: list[int], boot: int = 0) -> bytes:
    body = {1: 2, 2: "record", 3: meter, 4: period, 5: counter, 6: list(registers), 7: boot}
    return cbor({**body, 8: sign(key, "record", body)})


def tree_head(key, meter: bytes, leaves: list[bytes], time: int) -> bytes:
    body = {1: 2, 2: "tree-head", 3: meter, 4: len(leaves), 5: mth(leaves), 6: time}
    return cbor({**body, 7: sign(key, "tree-head", body)})


def feedback(key, meter, leaves, since, time) -> bytes:
    return cbor({1: 2, 2: "feedback", 3: tree_head(key, meter, leaves, time), 4: since, 5: proof(since, leaves)})


def probe(leaves, k, n) -> bytes:
    return cbor({1: 2, 2: "probe", 3: k, 4: n, 5: mth(leaves[:k]), 6: proof(k, leaves[:n])})


def inclusion(leaves, i, n) -> bytes:
    return cbor({1: 2, 2: "inclusion", 3: i, 4: n, 5: leaves[i], 6: path(i, leaves[:n])})


class Tally:
    def __init__(self) -> None:
        self.checked = 0
        self.failed: list[str] = []

    def eq(self, what: str, mine, stored) -> None:
        self.checked += 1
        if mine != stored:
            self.failed.append(what)


def tamper(leaves: list[bytes], kind: str, i: int, records: list[dict], mkey, meter) -> list[bytes]:
    """Spec 12.1: the utility's change (altered: register 0 + 1, the meter's signature and boot kept)."""
    out = list(leaves)
    if kind == "altered":
        # re-encode record i with register 0 + 1 and the original signature (a forged record)
        r, original = records[i], leaves[i]
        sig = original[-64:]
        regs = [r["registers"][0] + 1, *r["registers"][1:]]
        out[i] = cbor({1: 2, 2: "record", 3: meter, 4: r["period"], 5: i, 6: regs, 7: 0, 8: sig})
    elif kind == "dropped":
        del out[i]
    elif kind == "inserted":
        out.insert(i, leaves[i])
    elif kind == "reordered":
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def locate(own: list[bytes], theirs: list[bytes]) -> tuple[list[dict], int | None]:
    """Spec 6.2 with the probes of 6.1 (the meter's side; the utility's probes come from ``theirs``)."""
    n, k = len(theirs), len(own)
    good, bad, probes = 0, n, []

    def agrees(size: int) -> bool:
        root = mth(theirs[:size])            # the probe's root(k); the proof is checked by the real suite
        return size <= k and root == mth(own[:size])

    if n <= k:
        ok = agrees(n)
        probes.append({"size": n, "agree": ok, "good": n if ok else 0, "bad": n})
        if ok:
            return probes, None if n == k else n
    while bad - good > 1:
        mid = (good + bad) // 2
        if agrees(mid):
            good = mid
        else:
            bad = mid
        probes.append({"size": mid, "agree": good == mid, "good": good, "bad": bad})
    return probes, bad - 1


def reproduce(v: dict, t: Tally) -> None:
    mkey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["meter_key"]))
    ukey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["utility_key"]))
    meter, time = bytes.fromhex(v["meter"]), v["time"]
    t.eq("meter_public", public(mkey).hex(), v["meter_public"])
    t.eq("utility_public", public(ukey).hex(), v["utility_public"])
    leaves: list[bytes] = []
    checked, fb = 0, iter(v["feedback"])
    steps = iter(s for s in v["steps"])
    for i, r in enumerate(v["records"]):
        rec = record(mkey, meter, r["period"], i, r["registers"])
        step = next(steps)
        body = {1: 2, 2: "record", 3: meter, 4: r["period"], 5: i, 6: r["registers"], 7: 0}
        t.eq(f"steps record {i} tbs", (DOMAIN + lp4(b"record") + cbor(body)).hex(), step["intermediates"]["tbs"])
        t.eq(f"steps record {i} leaf_hash", leaf(rec).hex(), step["intermediates"]["leaf_hash"])
        t.eq(f"accepted[{i}]", rec.hex(), v["accepted"][i])
        leaves.append(rec)
        t.eq(f"steps record {i} root", mth(leaves).hex(), step["state_after"]["root"])
        t.eq(f"receipts[{i}]", tree_head(ukey, meter, leaves, time).hex(), v["receipts"][i])
        step = next(steps)
        t.eq(f"steps accept {i}", tree_head(ukey, meter, leaves, time).hex(), step["output"])
        next(steps)                                                   # meter / receipt: "kept"
        if len(leaves) in v["checks"]:
            f = next(fb)
            y = feedback(ukey, meter, leaves, checked, time)
            t.eq(f"feedback size {len(leaves)} y", y.hex(), f["y"])
            t.eq(f"feedback size {len(leaves)} since", checked, f["since"])
            checked = len(leaves)
            next(steps), next(steps)                                   # utility / feedback, meter / check
    head = tree_head(ukey, meter, leaves, time)                          # spec 7: the last checked head
    t.eq("inclusion_head", head.hex(), v["inclusion_head"])
    t.eq("root", mth(leaves).hex(), v["root"])
    t.eq("inclusion", inclusion(leaves, v["inclusion_index"], len(leaves)).hex(), v["inclusion"])
    if v["tamper"] == "none":
        return
    theirs = tamper(leaves, v["tamper"], v["tamper_index"], v["records"], mkey, meter)
    tv = v["tampered"]
    t.eq("tampered.y", feedback(ukey, meter, theirs, 0, time).hex(), tv["y"])      # I1: since 0
    probes, index = locate(leaves, theirs)
    t.eq("tampered.probes", probes, tv["probes"])
    t.eq("tampered.index", index, tv["index"])
    period = v["records"][index]["period"] if index is not None and index < len(leaves) else None
    t.eq("tampered.period", period, tv["period"])
    messages = [s["output"] for s in tv["steps"] if s["action"] == "probe"]
    for p, message in zip(probes, messages):
        t.eq(f"tampered probe {p['size']}", probe(theirs, p["size"], len(theirs)).hex(), message)


def reproduce_dispute(v: dict, t: Tally) -> None:
    """The honest part of a dispute's evidence: the meter's records and receipts before the change."""
    mkey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["meter_key"]))
    ukey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["utility_key"]))
    meter, time = bytes.fromhex(v["meter"]), v["time"]
    leaves = [record(mkey, meter, r["period"], i, r["registers"]) for i, r in enumerate(v["records"])]
    receipts = [tree_head(ukey, meter, leaves[:i + 1], time).hex() for i in range(len(leaves))]
    for i, (a, b) in enumerate(zip(receipts, v["meter_receipts"])):
        t.eq(f"{v['name']} meter_receipts[{i}]", a, b)
    if v["change"] in ("none", "meter-omitted", "meter-unacknowledged", "utility-records-not-under-head"):
        t.eq(f"{v['name']} utility_head", tree_head(ukey, meter, leaves, time).hex(), v["utility_head"])
    if v["change"] == "utility-truncated":
        cut = leaves[:v["change_index"] + 1]
        t.eq(f"{v['name']} utility_head", tree_head(ukey, meter, cut, time).hex(), v["utility_head"])


# -- the arbiter (spec 8.2), with a small CBOR reader for records and heads --------------------------------

def _read(b: bytes, i: int):
    major, info = b[i] >> 5, b[i] & 31
    i += 1
    if info < 24:
        n = info
    else:
        width = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        n, i = int.from_bytes(b[i:i + width], "big"), i + width
    if major == 0:
        return n, i
    if major in (2, 3):
        raw = b[i:i + n]
        return (raw if major == 2 else raw.decode()), i + n
    if major == 4:
        items: list = []
        for _ in range(n):
            x, i = _read(b, i)
            items.append(x)
        return items, i
    if major == 5:
        mapping: dict = {}
        for _ in range(n):
            k, i = _read(b, i)
            mapping[k], i = _read(b, i)
        return mapping, i
    raise ValueError("not used by the spec")


def uncbor(b: bytes) -> dict:
    x, end = _read(b, 0)
    assert end == len(b)
    return x


def signed_by(public_key: bytes, kind: str, m: dict, sig_key: int) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    body = {k: v for k, v in m.items() if k != sig_key}
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(m[sig_key], DOMAIN + lp4(kind.encode()) + cbor(body))
        return True
    except InvalidSignature:
        return False


class Void(Exception):
    """Spec 8.2 rule 1: VerificationError."""


def arbitrate(mpub: bytes, upub: bytes, meter: bytes, mine_b: list[bytes], receipts_b: list[bytes],
              head_b: bytes, theirs_b: list[bytes]) -> dict:
    head = uncbor(head_b)
    if head[3] != meter or not signed_by(upub, "tree-head", head, 7):
        raise Void
    if head[4] != len(theirs_b) or head[5] != mth(theirs_b):
        raise Void                                                              # rule 1
    mine, theirs = [uncbor(r) for r in mine_b], [uncbor(r) for r in theirs_b]
    if not all(signed_by(mpub, "record", r, 8) for r in mine):
        raise Void

    def verdict(party, index, period, kind):
        return {"party": party, "kind": kind, "index": index, "period": period}

    for i, r in enumerate(theirs):                                              # rule 2
        if not signed_by(mpub, "record", r, 8):
            return verdict("utility", i, r[4], "forged")
        if r[5] != i or r[3] != meter or (i and r[7] < theirs[i - 1][7]):
            return verdict("utility", i, r[4], "out-of-order")
    first = next((i for i, (a, b) in enumerate(zip(mine_b, theirs_b)) if a != b), None)
    if first is None and len(mine_b) != len(theirs_b):
        first = min(len(mine_b), len(theirs_b))
    for data in receipts_b:                                                     # rule 3
        rc = uncbor(data)
        if not signed_by(upub, "tree-head", rc, 7) or rc[3] != meter:
            raise Void
        if rc[4] <= len(theirs_b) and mth(theirs_b[:rc[4]]) == rc[5]:
            continue
        covers = rc[4] <= len(mine_b) and mth(mine_b[:rc[4]]) == rc[5]
        index = first if covers else None
        period = mine[first][4] if covers and first is not None and first < len(mine) else None
        return verdict("utility", index, period, "rewritten")
    for i, r in enumerate(mine):                                                # rule 4
        if r[5] != i or r[3] != meter or (i and r[7] < mine[i - 1][7]):
            return verdict("meter", i, r[4], "meter-gap")
    if first is None:
        return verdict(None, None, None, "agree")
    if first < len(mine) and first < len(theirs):
        m, u = mine[first], theirs[first]
        if m[7] > u[7] and all(m[4] > r[4] for r in theirs if r[7] < m[7]):
            return verdict(None, first, m[4], "lost-state")
        return verdict("meter", first, m[4], "double-signed")
    if first < len(theirs):
        return verdict("meter", first, theirs[first][4], "omitted")
    return verdict(None, first, mine[first][4], "unacknowledged")              # rule 5


def reproduce_verdict(v: dict, t: Tally) -> None:
    args = (bytes.fromhex(v["meter_public"]), bytes.fromhex(v["utility_public"]), bytes.fromhex(v["meter"]),
            [bytes.fromhex(r) for r in v["meter_records"]], [bytes.fromhex(r) for r in v["meter_receipts"]],
            bytes.fromhex(v["utility_head"]), [bytes.fromhex(r) for r in v["utility_records"]])
    got: dict | str
    try:
        got = arbitrate(*args)
    except Void:
        got = "VerificationError"
    t.eq(f"{v['name']} verdict", got, v.get("verdict", v.get("error")))


# -- the roles' refusals (spec 3.1, 4.2, 4.3, 5.2, 6.1, 7), with RFC 9162 2.1.3.2 and 2.1.4.2 ----------------

class Refused(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def decode(data: bytes, kind: str, keys: dict) -> dict:
    try:
        m = uncbor(data)
    except (AssertionError, IndexError, KeyError, ValueError, UnicodeDecodeError):
        raise Refused("DecodeError") from None
    if not isinstance(m, dict) or set(m) != set(keys) or any(not isinstance(m[k], t) for k, t in keys.items()):
        raise Refused("DecodeError")
    if m[1] != 2 or m[2] != kind or cbor(m) != data:                          # spec 2, 3.1: canonical
        raise Refused("DecodeError")
    return m


RECORD = {1: int, 2: str, 3: bytes, 4: int, 5: int, 6: list, 7: int, 8: bytes}
HEAD = {1: int, 2: str, 3: bytes, 4: int, 5: bytes, 6: int, 7: bytes}


def decode_record(data: bytes) -> dict:
    m = decode(data, "record", RECORD)
    if not 1 <= len(m[3]) <= 128 or not 1 <= len(m[6]) <= 16 or len(m[8]) != 64 or m[7] >= 1 << 32:
        raise Refused("DecodeError")
    return m


def decode_head(data: bytes, meter: bytes, upub: bytes) -> dict:
    m = decode(data, "tree-head", HEAD)
    if len(m[5]) != 32 or len(m[7]) != 64:
        raise Refused("DecodeError")
    if m[3] != meter or not signed_by(upub, "tree-head", m, 7):
        raise Refused("VerificationError")
    return m


def proof_list(value) -> list[bytes]:
    if not isinstance(value, list) or len(value) > 64 or any(not isinstance(h, bytes) or len(h) != 32 for h in value):
        raise Refused("DecodeError")
    return value


def verify_inclusion(h: bytes, index: int, size: int, path_: list[bytes], root: bytes) -> None:
    fn, sn, r = index, size - 1, h
    for p in path_:
        if sn == 0:
            raise Refused("VerificationError")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise Refused("VerificationError")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, c: list[bytes]) -> None:
    if first & (first - 1) == 0:
        c = [first_root, *c]
    if not c:
        raise Refused("VerificationError")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = c[0]
    for h in c[1:]:
        if sn == 0:
            raise Refused("VerificationError")
        if fn & 1 or fn == sn:
            fr, sr = node(h, fr), node(h, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, h)
        fn, sn = fn >> 1, sn >> 1
    if fr != first_root or sr != second_root or sn != 0:
        raise Refused("VerificationError")


def refuse(v: dict) -> str | None:
    mkey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["meter_key"]))
    ukey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["utility_key"]))
    meter, time, mpub, upub = bytes.fromhex(v["meter"]), v["time"], public(mkey), public(ukey)
    leaves = [record(mkey, meter, r["period"], i, r["registers"]) for i, r in enumerate(v["records"])]
    checked = uncbor(tree_head(ukey, meter, leaves[:v["checked"]], time)) if v["checked"] else None
    data = bytes.fromhex(v["input"])
    try:
        if v["step"] == "accept":                                               # spec 4.3
            r = decode_record(data)
            if r[3] != meter or not signed_by(mpub, "record", r, 8):
                raise Refused("VerificationError")
            prev = uncbor(leaves[-1])
            if r[5] < len(leaves):
                raise Refused("ReplayError")
            if r[5] > len(leaves) or r[4] <= prev[4] or r[7] < prev[7] or len(r[6]) != len(prev[6]) or any(
                    a < b for a, b in zip(r[6], prev[6])):
                raise Refused("StateError")
        elif v["step"] == "receipt":                                            # spec 4.3
            h = decode_head(data, meter, upub)
            if h[4] > len(leaves) or h[5] != mth(leaves[:h[4]]):
                raise Refused("VerificationError")
        elif v["step"] == "check":                                              # spec 5.2
            y = decode(data, "feedback", {1: int, 2: str, 3: bytes, 4: int, 5: list})
            h = decode_head(y[3], meter, upub)
            proof_ = proof_list(y[5])
            if checked is not None:
                if h[4] < checked[4]:
                    raise Refused("VerificationError")
                if y[4] != checked[4]:
                    raise Refused("DecodeError")
                if h[4] == checked[4]:
                    if h[5] != checked[5]:
                        raise Refused("VerificationError")
                elif checked[4] > 0:
                    verify_consistency(checked[4], h[4], checked[5], h[5], proof_)
        elif v["step"] == "check-probe":                                        # spec 6.1
            if checked is None:
                raise AssertionError("spec 12.1: a probe is checked against the checked head")
            pr = decode(data, "probe", {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list})
            if pr[4] != checked[4] or not 0 < pr[3] <= pr[4] or len(pr[5]) != 32:
                raise Refused("DecodeError")
            proof_ = proof_list(pr[6])
            if pr[3] == pr[4]:
                if pr[5] != checked[5]:
                    raise Refused("VerificationError")
            else:
                verify_consistency(pr[3], pr[4], pr[5], checked[5], proof_)
        elif v["step"] == "check-inclusion":                                    # spec 7
            if checked is None:
                raise AssertionError("spec 12.1: an inclusion is checked against the checked head")
            inc = decode(data, "inclusion", {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list})
            if inc[4] != checked[4] or not 0 <= inc[3] < inc[4]:
                raise Refused("DecodeError")
            verify_inclusion(leaf(inc[5]), inc[3], inc[4], proof_list(inc[6]), checked[5])
            decode_record(inc[5])
    except Refused as exc:
        return exc.name
    return None


# -- restore and resync (spec 9, vectors 12.1 and 12.2) ------------------------------------------------------

def finding(head_size: int, head_root: bytes, own: list[bytes]) -> dict:
    """Spec 5.2: the meter's finding on a verified head."""
    k = len(own)
    if head_size == k and (k == 0 or head_root == mth(own)):
        return {"match": True, "index": None, "period": None}
    if head_size < k and (head_size == 0 or head_root == mth(own[:head_size])):
        return {"match": False, "index": head_size, "period": uncbor(own[head_size])[4]}
    return {"match": False, "index": None, "period": None}


def reproduce_resync(v: dict, t: Tally) -> None:
    """Spec 9.1 and 9.2 with the transcript of 12.2: every step of a `resync` vector, field by field."""
    mkey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["meter_key"]))
    ukey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["utility_key"]))
    meter, time, b, name = bytes.fromhex(v["meter"]), v["time"], v["backup_size"], v["name"]
    theirs = [record(mkey, meter, r["period"], i, r["registers"]) for i, r in enumerate(v["records"])]
    n = len(theirs)
    own = theirs[:b]                                                   # the backup: b records, head b checked
    state = {"size": b, "root": mth(own).hex(), "checked_size": b, "receipts": b, "boot": 0, "restored_at": None}
    expected: list[dict] = []

    def mstate() -> dict:
        return {**state, "size": len(own), "root": mth(own).hex()}

    def ustate() -> dict:
        return {"size": len(theirs), "root": mth(theirs).hex()}

    def sign(period: int, registers: list[int], action: str = "record") -> bytes:
        body = {1: 2, 2: "record", 3: meter, 4: period, 5: len(own), 6: registers, 7: state["boot"]}
        before = mstate()
        rec = record(mkey, meter, period, len(own), registers, state["boot"])
        own.append(rec)
        expected.append({"role": "meter", "action": action, "state_before": before,
                         "input": {"period": period, "registers": registers},
                         "intermediates": {"counter": body[5], "boot": body[7],
                                           "tbs": (DOMAIN + lp4(b"record") + cbor(body)).hex(),
                                           "leaf_hash": leaf(rec).hex()},
                         "output": rec.hex(), "state_after": mstate()})
        return rec

    def send(rec: bytes) -> None:                                      # 4.3: accept, receipt
        before = ustate()
        theirs.append(rec)
        receipt = tree_head(ukey, meter, theirs, time)
        expected.append({"role": "utility", "action": "accept", "state_before": before, "input": rec.hex(),
                         "output": receipt.hex(), "state_after": ustate()})
        expected.append({"role": "meter", "action": "receipt", "state_before": {"receipts": state["receipts"]},
                         "input": receipt.hex(), "output": "kept", "state_after": {"receipts": state["receipts"] + 1}})
        state["receipts"] += 1

    def feedback_check(since: int) -> tuple[bytes, dict]:
        y = feedback(ukey, meter, theirs, since, time)
        expected.append({"role": "utility", "action": "feedback", "state_before": ustate(),
                         "input": {"since": since, "time": time},
                         "intermediates": {"head": tree_head(ukey, meter, theirs, time).hex(),
                                           "proof": [h.hex() for h in proof(since, theirs)]},
                         "output": y.hex(), "state_after": ustate()})
        before = mstate()
        found = finding(len(theirs), mth(theirs), own)
        state["checked_size"] = len(theirs)
        expected.append({"role": "meter", "action": "check", "state_before": before, "input": y.hex(),
                         "output": found, "state_after": mstate()})
        return y, found

    boot_before = v["boot_before"]                                     # 9.1: restore
    before = {**mstate(), "boot_counter": boot_before}
    state.update({"boot": boot_before + 1, "restored_at": b})
    expected.append({"role": "meter", "action": "restore", "state_before": before,
                     "input": {"boot_counter": boot_before}, "output": {"boot": boot_before + 1},
                     "state_after": {**mstate(), "boot_counter": boot_before + 1}})
    t.eq(f"{name} boot", state["boot"], v["boot"])
    first = sign(v["later"][0]["period"], v["later"][0]["registers"])
    t.eq(f"{name} first_later", first.hex(), v["first_later"])
    refused = "ReplayError" if b < len(theirs) else "none"             # 4.3: counter b is already held
    t.eq(f"{name} first_refused", refused, v["first_refused"])
    expected.append({"role": "utility", "action": "accept", "state_before": ustate(), "input": first.hex(),
                     "output": {"error": "ReplayError"}, "state_after": ustate()})
    if v["resync"]:
        y, _ = feedback_check(b)                                       # 9.2 step 1
        t.eq(f"{name} y", y.hex(), v["y"])
        head = tree_head(ukey, meter, theirs, time)
        c = min(b, n)
        if c:                                                          # step 2
            pr = probe(theirs, c, n)
            expected.append({"role": "utility", "action": "probe", "state_before": ustate(),
                             "input": {"size": c, "head_size": n},
                             "intermediates": {"root": mth(theirs[:c]).hex(),
                                               "proof": [h.hex() for h in proof(c, theirs[:n])]},
                             "output": pr.hex(), "state_after": ustate()})
            expected.append({"role": "meter", "action": "check-probe", "state_before": {**mstate(), "head": head.hex()},
                             "input": pr.hex(), "intermediates": {"own_root": mth(own[:c]).hex()},
                             "output": {"agree": mth(own[:c]) == mth(theirs[:c])}, "state_after": mstate()})
        inclusions = []
        for i in range(b, n):                                          # step 3
            inc = inclusion(theirs, i, n)
            inclusions.append(inc.hex())
            expected.append({"role": "utility", "action": "inclusion", "state_before": ustate(),
                             "input": {"index": i, "head_size": n},
                             "intermediates": {"leaf_hash": leaf(theirs[i]).hex(),
                                               "proof": [h.hex() for h in path(i, theirs[:n])]},
                             "output": inc.hex(), "state_after": ustate()})
            expected.append({"role": "meter", "action": "check-inclusion",
                             "state_before": {**mstate(), "head": head.hex()}, "input": inc.hex(),
                             "output": theirs[i].hex(), "state_after": mstate()})
        t.eq(f"{name} inclusions", inclusions, v["inclusions"])
        later_signed = own[b:]
        before = mstate()
        own[:] = theirs[:n]                                            # adopt: first b records and n - b adopted
        state.update({"receipts": state["receipts"] + 1, "restored_at": None})
        last_period = uncbor(theirs[n - 1])[4]
        resign = [uncbor(r) for r in later_signed if uncbor(r)[4] > last_period]
        expected.append({"role": "meter", "action": "adopt", "state_before": before, "input": head.hex(),
                         "intermediates": {"records_root": mth(own).hex()},
                         "output": {"adopted": n - b, "superseded": len(later_signed) - len(resign)},
                         "state_after": mstate()})
        resigned = [sign(r[4], r[6], "resign") for r in resign]        # step 4
        t.eq(f"{name} adopted", n - b, v["adopted"])
        t.eq(f"{name} resigned", [r.hex() for r in resigned], v["resigned"])
        t.eq(f"{name} superseded", len(later_signed) - len(resign), v["superseded"])
        for rec in resigned:
            send(rec)
        for r in v["later"][1:]:
            send(sign(r["period"], r["registers"]))
        y, found = feedback_check(state["checked_size"])
        t.eq(f"{name} final_feedback", y.hex(), v["final_feedback"])
        t.eq(f"{name} final_match", found["match"], v["final_match"])
    else:
        for r in v["later"][1:]:
            sign(r["period"], r["registers"])
        evidence = {"meter_public": public(mkey).hex(), "utility_public": public(ukey).hex(),
                    "meter_records": [r.hex() for r in own],
                    "meter_receipts": [tree_head(ukey, meter, theirs[:k], time).hex() for k in range(1, b + 1)],
                    "utility_head": tree_head(ukey, meter, theirs, time).hex(),
                    "utility_records": [r.hex() for r in theirs]}
        verdict = arbitrate(public(mkey), public(ukey), meter, own, [bytes.fromhex(h) for h in
                                                                    evidence["meter_receipts"]],
                            tree_head(ukey, meter, theirs, time), theirs)
        expected.append({"role": "arbiter", "action": "arbitrate", "input": evidence, "output": verdict})
        t.eq(f"{name} verdict", verdict, v["verdict"])
    t.eq(f"{name} step count", len(expected), len(v["steps"]))
    for i, (mine, stored) in enumerate(zip(expected, v["steps"])):
        t.eq(f"{name} steps[{i}] {mine['role']}/{mine['action']}", mine, stored)


def accept_refusal(data: bytes, log: list[bytes], meter: bytes, mpub: bytes) -> None:
    """Spec 4.3: the utility's refusals of a record, given its log."""
    r = decode_record(data)
    if r[3] != meter or not signed_by(mpub, "record", r, 8):
        raise Refused("VerificationError")
    prev = uncbor(log[-1])
    if r[5] < len(log):
        raise Refused("ReplayError")
    if r[5] > len(log) or r[4] <= prev[4] or r[7] < prev[7] or len(r[6]) != len(prev[6]) or any(
            a < b for a, b in zip(r[6], prev[6])):
        raise Refused("StateError")


def resync_refusal(v: dict) -> str | None:
    """Spec 9.1 and 9.2 (the meter) and 4.3 (the utility) for a `resync-refuse` vector (12.1)."""
    mkey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["meter_key"]))
    ukey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["utility_key"]))
    meter, time, mpub, upub = bytes.fromhex(v["meter"]), v["time"], public(mkey), public(ukey)
    leaves = [record(mkey, meter, r["period"], i, r["registers"]) for i, r in enumerate(v["records"])]
    b, c0 = v["backup_size"], v["backup_checked"]
    checked = uncbor(tree_head(ukey, meter, leaves[:c0], time)) if c0 else None
    try:
        if v["step"] == "resync-unrestored":
            raise Refused("StateError")                                # 9.2 step 0
        if v["boot_before"] >= 2**32 - 1:
            raise Refused("StateError")                                # 9.1: the counter is exhausted
        if v["step"] == "restore":
            return None
        boot = v["boot_before"] + 1
        own = leaves[:b] + [record(mkey, meter, v["later"][0]["period"], b, v["later"][0]["registers"], boot)]
        if v["step"] == "accept-before-resync":
            accept_refusal(bytes.fromhex(v["input"]), leaves, meter, mpub)
            return None
        if v["step"] == "accept-after-resync":                         # an honest resync, re-signed records sent
            last = uncbor(leaves[-1])[4]
            log = list(leaves)
            for signed_since in own[b:]:
                m = uncbor(signed_since)
                if m[4] > last:
                    log.append(record(mkey, meter, m[4], len(log), m[6], boot))
            accept_refusal(bytes.fromhex(v["input"]), log, meter, mpub)
            return None
        a = v["answers"]                                               # 9.2 step 1: Y as in 5.2
        y = decode(bytes.fromhex(a["y"]), "feedback", {1: int, 2: str, 3: bytes, 4: int, 5: list})
        h = decode_head(y[3], meter, upub)
        proof_ = proof_list(y[5])
        if checked is not None:
            if h[4] < checked[4]:
                raise Refused("VerificationError")
            if y[4] != checked[4]:
                raise Refused("DecodeError")
            if h[4] == checked[4]:
                if h[5] != checked[5]:
                    raise Refused("VerificationError")
            else:
                verify_consistency(checked[4], h[4], checked[5], h[5], proof_)
        n = h[4]
        c = min(b, n)
        if c:                                                          # step 2: the probe at c, as in 6.1
            pr = decode(bytes.fromhex(a["probe"]), "probe", {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list})
            if pr[4] != n or not 0 < pr[3] <= pr[4] or len(pr[5]) != 32:
                raise Refused("DecodeError")
            pproof = proof_list(pr[6])
            if pr[3] == pr[4]:
                if pr[5] != h[5]:
                    raise Refused("VerificationError")
            else:
                verify_consistency(pr[3], pr[4], pr[5], h[5], pproof)
            if not (pr[3] <= len(own) and pr[5] == mth(own[:pr[3]])):
                raise Refused("VerificationError")
        prev = uncbor(own[b - 1])
        for i in range(b, n):                                          # step 3: inclusion, as in 7
            inc = decode(bytes.fromhex(a["inclusions"][i - b]), "inclusion",
                         {1: int, 2: str, 3: int, 4: int, 5: bytes, 6: list})
            if inc[4] != n or not 0 <= inc[3] < inc[4]:
                raise Refused("DecodeError")
            verify_inclusion(leaf(inc[5]), inc[3], inc[4], proof_list(inc[6]), h[5])
            r = decode_record(inc[5])
            if not signed_by(mpub, "record", r, 8) or r[3] != meter or r[5] != i or r[7] > boot:
                raise Refused("VerificationError")
            if r[4] <= prev[4] or r[7] < prev[7] or any(x < q for x, q in zip(r[6], prev[6])):
                raise Refused("VerificationError")
            prev = r
    except Refused as exc:
        return exc.name
    return None


def test_the_integrity_vectors_reproduce_from_the_spec_alone() -> None:
    t = Tally()
    runs = [v for v in VECTORS["vectors"] if v["operation"] == "run"]
    disputes = [v for v in VECTORS["vectors"] if v["operation"] == "dispute"]
    assert runs and disputes
    for v in runs:
        reproduce(v, t)
    for v in disputes:
        reproduce_dispute(v, t)
        reproduce_verdict(v, t)
    refusals = [v for v in VECTORS["vectors"] if v["operation"] == "refuse"]
    for v in refusals:
        t.eq(f"{v['name']} error", refuse(v), v["error"])
    resyncs = [v for v in VECTORS["vectors"] if v["operation"] == "resync"]
    assert len(resyncs) == 3
    for v in resyncs:
        reproduce_resync(v, t)
    resync_refusals = [v for v in VECTORS["vectors"] if v["operation"] == "resync-refuse"]
    for v in resync_refusals:
        t.eq(f"{v['name']} error", resync_refusal(v), v["error"])
    print(f"\nfrom-spec integrity: {t.checked - len(t.failed)} of {t.checked} values reproduced "
          f"({len(runs)} run, {len(disputes)} dispute, {len(refusals)} refusal, {len(resyncs)} resync and "
          f"{len(resync_refusals)} resync-refusal vectors)")
    if t.failed:
        print("not reproduced:", t.failed)
    assert t.failed == []


@pytest.mark.parametrize("v", [v for v in VECTORS["vectors"] if v["operation"] in ("refuse", "resync-refuse")],
                         ids=lambda v: v["name"])
def test_refusal_vectors_name_a_spec_error(v: dict) -> None:
    assert v["result"] == "invalid" and v["error"] in {"DecodeError", "VerificationError", "ReplayError", "StateError"}
    assert set(v["flags"]) <= set(VECTORS["notes"])
