"""An independent implementation of specs/integrity.md, written from the spec text alone, checked against
vectors/integrity.json (issue 15: a vendor reproduces every vector from the text).

It uses hashlib and cryptography only; it imports nothing from protocols.integrity, protocols.schemes.merkle
or protocols.primitives.cbor.  Covered: the record (sections 2, 3.1, 3.2), the signed tree head (4.2), Y
(5.1) and the meter's check (5.2), probes and the bisection (6.1, 6.2), inclusion messages (7), with the
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


def test_the_integrity_vectors_reproduce_from_the_spec_alone() -> None:
    t = Tally()
    runs = [v for v in VECTORS["vectors"] if v["operation"] == "run"]
    disputes = [v for v in VECTORS["vectors"] if v["operation"] == "dispute"]
    assert runs and disputes
    for v in runs:
        reproduce(v, t)
    for v in disputes:
        reproduce_dispute(v, t)
    print(f"\nfrom-spec integrity: {t.checked - len(t.failed)} of {t.checked} values reproduced "
          f"({len(runs)} run and {len(disputes)} dispute vectors)")
    assert t.failed == []


@pytest.mark.parametrize("v", [v for v in VECTORS["vectors"] if v["operation"] == "refuse"], ids=lambda v: v["name"])
def test_refusal_vectors_name_a_spec_error(v: dict) -> None:
    assert v["result"] == "invalid" and v["error"] in {"DecodeError", "VerificationError", "ReplayError", "StateError"}
    assert set(v["flags"]) <= set(VECTORS["notes"])
