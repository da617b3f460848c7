"""An independent implementation of the escrow's set-up (both modes' fleets, the blind mode's RSA keys),
escrowed-mode HF-certificate issuance, sealed links, data messages and the authorities' decryption
shares, written from specs/escrow.md (sections 2-5, 7, 11),
specs/threshold_elgamal.md (sections 3-4), specs/issuance.md 7.1 and RFC 9180 / RFC 8032 only.

It imports nothing from ``protocols``: only ``cryptography`` (Ed25519, X25519, ChaCha20-Poly1305,
HKDF, X.509 DER encoding) and PyNaCl (edwards25519 scalar multiplication).  It takes the named
draws of ``vectors/escrow.json`` as its randomness and must reproduce every listed value byte for
byte; a mismatch names the value.  This is the proof that a vendor can implement the escrowed mode
from the text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.x509.oid import NameOID
from nacl import bindings as nacl

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "escrow.json"

# --- conventions -------------------------------------------------------------------------------

L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
D = -121665 * pow(121666, -1, P) % P


def lp1(x: bytes) -> bytes:
    return len(x).to_bytes(1, "big") + x


def lp4(x: bytes) -> bytes:
    return len(x).to_bytes(4, "big") + x


def lp8(x: bytes) -> bytes:
    return len(x).to_bytes(8, "big") + x


def cbor(value) -> bytes:
    """Deterministic CBOR (RFC 8949 4.2) for uint, bytes, text, arrays and maps with uint keys."""
    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * width):
                return bytes([major << 5 | extra]) + n.to_bytes(width, "big")
        raise ValueError(n)
    if isinstance(value, bool):
        raise TypeError("no booleans here")
    if isinstance(value, int):
        return head(0, value)
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode()
        return head(3, len(data)) + data
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor(v) for v in value)
    items = sorted((cbor(k), cbor(v)) for k, v in value.items())
    return head(5, len(items)) + b"".join(k + v for k, v in items)


def random_scalar_ok(data: bytes) -> int | None:
    """RandomScalar = RandomBelow(L): keep the low 253 bits of the 32 bytes; None when refused."""
    x = int.from_bytes(data, "big") & ((1 << 253) - 1)
    return x if x < L else None


# --- RFC 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, mode base --------------

KEM_ID = b"KEM" + (0x20).to_bytes(2, "big")
HPKE_ID = b"HPKE" + (0x20).to_bytes(2, "big") + (1).to_bytes(2, "big") + (3).to_bytes(2, "big")


def extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:length]


def labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return extract(salt, b"HPKE-v1" + suite + label + ikm)


def labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def derive_key_pair(ikm: bytes) -> tuple[bytes, bytes]:
    prk = labeled_extract(KEM_ID, b"", b"dkp_prk", ikm)
    sk = labeled_expand(KEM_ID, prk, b"sk", b"", 32)
    return sk, X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes_raw()


def seal_base(pk_r: bytes, info: bytes, aad: bytes, pt: bytes, ikm_e: bytes) -> tuple[bytes, bytes]:
    sk_e, enc = derive_key_pair(ikm_e)
    dh = X25519PrivateKey.from_private_bytes(sk_e).exchange(X25519PublicKey.from_public_bytes(pk_r))
    eae = labeled_extract(KEM_ID, b"", b"eae_prk", dh)
    shared = labeled_expand(KEM_ID, eae, b"shared_secret", enc + pk_r, 32)
    context = (b"\x00" + labeled_extract(HPKE_ID, b"", b"psk_id_hash", b"")
               + labeled_extract(HPKE_ID, b"", b"info_hash", info))
    secret = labeled_extract(HPKE_ID, shared, b"secret", b"")
    key = labeled_expand(HPKE_ID, secret, b"key", context, 32)
    nonce = labeled_expand(HPKE_ID, secret, b"base_nonce", context, 12)
    return enc, ChaCha20Poly1305(key).encrypt(nonce, pt, aad)


# --- edwards25519 (PyNaCl for the group operations; B2 of specs/threshold_elgamal.md 3.4) ---------


def base_mult(k: int) -> bytes:
    return nacl.crypto_scalarmult_ed25519_base_noclamp((k % L).to_bytes(32, "little"))


def mult(point: bytes, k: int) -> bytes:
    return nacl.crypto_scalarmult_ed25519_noclamp((k % L).to_bytes(32, "little"), point)


def _decode(h: bytes) -> tuple[int, int] | None:
    """RFC 8032 5.1.3 (any point on the curve)."""
    y = int.from_bytes(h, "little") & ((1 << 255) - 1)
    sign = h[31] >> 7
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == u:
        pass
    elif v * x * x % P == (-u) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    else:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return x, y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return (x1 * y2 + y1 * x2) * pow(1 + t, -1, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P


def second_generator() -> bytes:
    for ctr in range(256):
        point = _decode(hashlib.sha512(TE_DOMAIN + b"generator" + bytes([ctr])).digest()[:32])
        if point is None:
            continue
        for _ in range(3):
            point = _add(point, point)
        if point != (0, 1):
            return (point[1] | (point[0] & 1) << 255).to_bytes(32, "little")
    raise AssertionError("no B2")


# --- specs/threshold_elgamal.md section 4.2 ------------------------------------------------------

TE_DOMAIN = b"usapp-threshold-elgamal-edwards25519-v1"


def te_seal(X: bytes, aad: bytes, plaintext: bytes, r: int, s: int) -> bytes:
    B2 = second_generator()
    R, S = base_mult(r), mult(X, r)
    key = hkdf_sha256(ikm=S, salt=R, info=TE_DOMAIN + lp8(aad), length=32)
    ct = ChaCha20Poly1305(key).encrypt(bytes(12), plaintext, TE_DOMAIN + lp8(aad) + R)
    R2, W, W2 = mult(B2, r), base_mult(s), mult(B2, s)
    e = int.from_bytes(hashlib.sha512(TE_DOMAIN + b"seal" + lp8(aad) + lp8(ct) + R + W + R2 + W2).digest(),
                       "little") % L
    f = (s + r * e) % L
    return R + R2 + e.to_bytes(32, "little") + f.to_bytes(32, "little") + ct


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return expand(extract(salt, ikm), info, length)


# --- specs/escrow.md ----------------------------------------------------------------------------

ESCROW_DOMAIN = b"usapp-escrow-v1"
ORIGIN, EPOCH = 1767225600, 86400
FLEET_FROM = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
FLEET_TO = dt.datetime(2035, 1, 1, tzinfo=dt.timezone.utc)


def name(cn: str, serial: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "USaPP reference fleet"),
                  x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if serial is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attributes)


def key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def certificate(subject: x509.Name, public, issuer: x509.Name, signer: Ed25519PrivateKey, serial: int,
                start: dt.datetime, end: dt.datetime, ca: bool) -> bytes:
    """Section 11.2 / 5.2 step 7: v3, Ed25519, basicConstraints then keyUsage, both critical."""
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
            .serial_number(serial).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(key_usage(ca), critical=True)
            .sign(signer, None).public_bytes(serialization.Encoding.DER))


def ed_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def ed_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def lagrange_at_zero(i: int, ids: list[int]) -> int:
    num = den = 1
    for j in ids:
        if j != i:
            num, den = num * j % L, den * (j - i) % L
    return num * pow(den, -1, L) % L


class Checker:
    def __init__(self) -> None:
        self.count = 0

    def same(self, what: str, mine: bytes | str | int, stored) -> None:
        if isinstance(mine, bytes):
            mine = mine.hex()
        assert mine == stored, f"{what}: the spec-only implementation computes {mine!r}, the vector holds {stored!r}"
        self.count += 1


def draws_by_name(draws: list[dict]) -> dict[str, bytes]:
    return {d["name"]: bytes.fromhex(d["hex"]) for d in draws if not d["name"].endswith("/rejected")}


def test_escrowed_run_reproduces_from_the_spec_alone():
    envelope = json.loads(VECTORS.read_text(encoding="utf-8"))
    vector = next(v for v in envelope["vectors"] if v["name"] == "escrowed-two-meters-two-epochs")
    fleet, check = vector["fleet"], Checker()
    d = draws_by_name(fleet["draws"])

    # Section 11.2: the fleet.
    lf_key = ed_key(d["lf_root_key"])
    check.same("lf_root_key", d["lf_root_key"], fleet["lf_root_key"])
    lf_root = certificate(name("LFID root"), lf_key.public_key(), name("LFID root"), lf_key, 1, FLEET_FROM, FLEET_TO,
                          True)
    check.same("lf_root", lf_root, fleet["lf_root"])
    escrow_sk, escrow_pk = derive_key_pair(d["escrow_hpke_ikm"])
    check.same("escrow_hpke_private", escrow_sk, fleet["escrow_hpke_private"])
    check.same("escrow_hpke_public", escrow_pk, fleet["escrow_hpke_public"])
    hf_ca_key = ed_key(d["hf_ca_key"])
    check.same("hf_ca_key", d["hf_ca_key"], fleet["hf_ca_key"])
    hf_ca = certificate(name("HFID escrow CA"), hf_ca_key.public_key(), name("HFID escrow CA"), hf_ca_key, 1,
                        FLEET_FROM, FLEET_TO, True)
    check.same("hf_ca_certificate", hf_ca, fleet["hf_ca_certificate"])
    authorities = fleet["authorities"]
    assert (authorities["n"], authorities["t"]) == (3, 2)
    shares = {int(i): int.from_bytes(bytes.fromhex(x), "little") for i, x in authorities["secret_shares"].items()}
    for i, x_i in shares.items():
        check.same(f"X_{i}", base_mult(x_i), authorities["verifying_shares"][str(i)])
    for pair in ([1, 2], [1, 3], [2, 3]):
        secret = sum(shares[i] * lagrange_at_zero(i, pair) for i in pair) % L
        check.same(f"group key from shares {pair}", base_mult(secret), authorities["group_public_key"])
    X = bytes.fromhex(authorities["group_public_key"])
    meters = {}
    for i in range(vector["meters"]):
        serial = f"SM-{i:05d}"
        key = ed_key(d[f"meter{i}.device_key"])
        cert = certificate(name("smart meter", serial), key.public_key(), name("LFID root"), lf_key, 1000 + i,
                           FLEET_FROM, FLEET_TO, False)
        check.same(f"{serial} chain", [cert.hex()], fleet["meters"][serial]["chain"])
        pkcs8 = bytes.fromhex("302e020100300506032b657004220420") + d[f"meter{i}.device_key"]
        check.same(f"{serial} private_key", pkcs8, fleet["meters"][serial]["private_key"])
        meters[serial] = {"key": key, "chain": [cert], "lf_seq": 0, "hf": {}, "hf_seq": {}}

    approved: dict[int, set[str]] = {i: set() for i in shares}       # section 8.3: each authority's approvals
    # Sections 5 and 7: the steps.
    for index, step in enumerate(vector["steps"]):
        where = f"steps[{index}]"
        s = draws_by_name(step["draws"])
        meter = meters[step["serial"]]
        if step["op"] == "issue":
            roles = step["roles"]
            epoch = step["epoch"]
            # 5.1, 4.2: the meter asks.
            hf_key = ed_key(s["hf_key"])
            reply_sk, reply_pk = derive_key_pair(s["reply_ikm"])
            inter = roles[0]["intermediates"]
            check.same(f"{where} hf_public", ed_public(hf_key), inter["hf_public"])
            check.same(f"{where} reply_private", reply_sk, inter["reply_private"])
            check.same(f"{where} reply_public", reply_pk, inter["reply_public"])
            content = cbor({1: ed_public(hf_key), 2: reply_pk})
            check.same(f"{where} sealed_content", content, inter["sealed_content"])
            m = {1: 1, 2: "hfid-request", 3: "escrowed", 4: epoch, 5: meter["chain"]}
            info = ESCROW_DOMAIN + lp4(b"hfid-request") + lp4(b"escrowed") + epoch.to_bytes(4, "big")
            check.same(f"{where} request info", info, inter["hpke_info"])
            check.same(f"{where} request aad", cbor(m), inter["hpke_aad"])
            m[6], m[7] = seal_base(escrow_pk, info, cbor(m), content, s["request_ikmE"])
            m[8] = meter["key"].sign(ESCROW_DOMAIN + lp4(b"hfid-request") + cbor(m))
            request = cbor(m)
            check.same(f"{where} request", request, roles[0]["output"])
            # 5.2: the escrow answers (steps 7 and 8).
            inter = roles[1]["intermediates"]
            serial_number = int.from_bytes(s["hf_serial"], "big") >> 2 | 1 << 125
            check.same(f"{where} hf_serial", format(serial_number, "x"), inter["hf_serial"])
            start = ORIGIN + epoch * EPOCH
            hf_cert = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "usapp HFID")]),
                                  Ed25519PublicKey.from_public_bytes(ed_public(hf_key)), name("HFID escrow CA"),
                                  hf_ca_key, serial_number, dt.datetime.fromtimestamp(start, dt.timezone.utc),
                                  dt.datetime.fromtimestamp(start + EPOCH - 1, dt.timezone.utc), False)
            check.same(f"{where} certificate", hf_cert, inter["certificate"])
            fingerprint = hashlib.sha256(hf_cert).digest()
            check.same(f"{where} fingerprint", fingerprint, inter["fingerprint"])
            body = cbor({1: step["serial"], 2: epoch, 3: fingerprint})
            link = len(body).to_bytes(2, "big") + body + bytes(128 - 2 - len(body))
            check.same(f"{where} link_plaintext", link, inter["link_plaintext"])
            label = ESCROW_DOMAIN + lp4(b"link") + fingerprint
            check.same(f"{where} link_aad", label, inter["link_aad"])
            r, s_ = random_scalar_ok(s["seal_r"]), random_scalar_ok(s["seal_s"])
            check.same(f"{where} seal_r", r.to_bytes(32, "little"), inter["seal_r"])
            check.same(f"{where} seal_s", s_.to_bytes(32, "little"), inter["seal_s"])
            sealed = te_seal(X, label, link, r, s_)
            assert len(sealed) == 272
            check.same(f"{where} sealed_link", sealed, inter["sealed_link"])
            rinfo = (ESCROW_DOMAIN + lp4(b"hfid-response") + lp4(b"escrowed") + epoch.to_bytes(4, "big")
                     + hashlib.sha256(request).digest())
            check.same(f"{where} response info", rinfo, inter["hpke_info"])
            enc, ct = seal_base(reply_pk, rinfo, b"", hf_cert, s["response_ikmE"])
            response = cbor({1: 1, 2: "hfid-response", 3: "escrowed", 4: epoch, 5: enc, 6: ct})
            check.same(f"{where} response", response, roles[1]["output"])
            # 5.4: the meter keeps the credential; 3.2: the HFID.
            check.same(f"{where} credential", hf_cert, roles[2]["output"]["credential"])
            check.same(f"{where} hfid", hashlib.sha256(hf_cert).digest()[:16], roles[2]["output"]["hfid"])
            meter["hf"][epoch] = (hf_key, hf_cert)
        elif step["op"] == "send":
            time, payload = step["time"], bytes.fromhex(step["payload"])
            if step["category"] == "technical":  # 7.1: an adp under the HFID of the epoch of `time`
                epoch = (time - ORIGIN) // EPOCH
                hf_key, credential = meter["hf"][epoch]
                seq = meter["hf_seq"][epoch] = meter["hf_seq"].get(epoch, 0) + 1
                m = {1: 1, 2: "adp", 3: "escrowed", 4: epoch, 5: credential, 6: step["category"],
                     7: step["recipient"], 8: seq, 9: time, 10: payload}
                m[11] = hf_key.sign(ESCROW_DOMAIN + lp4(b"adp") + cbor(m))
                sender = "hfid:" + hashlib.sha256(credential).digest()[:16].hex()
            else:  # a cdp under the LFID
                meter["lf_seq"] += 1
                seq = meter["lf_seq"]
                m = {1: 1, 2: "cdp", 3: meter["chain"], 4: step["category"], 5: step["recipient"], 6: seq, 7: time,
                     8: payload}
                m[9] = meter["key"].sign(ESCROW_DOMAIN + lp4(b"cdp") + cbor(m))
                sender = "lfid:" + step["serial"]
            check.same(f"{where} message", cbor(m), step["roles"][0]["output"])
            check.same(f"{where} sender", sender, step["roles"][1]["output"]["sender"])
            check.same(f"{where} seq", seq, step["roles"][1]["output"]["seq"])
        elif step["op"] == "reidentify":
            # 4.6 and 4.8: the request and the opened link; 8.4: the link opens to this meter and epoch.
            fingerprint = hashlib.sha256(meter["hf"][step["epoch"]][1]).digest()
            request = cbor({1: 1, 2: "reid-request", 3: fingerprint, 4: step["reason"],
                            5: bytes.fromhex(step["request_id"])})
            combiner = step["roles"][-1]
            check.same(f"{where} reid_request", request, combiner["input"]["reid_request"])
            digest = hashlib.sha256(request).hexdigest()
            # 8.3: each approving authority keeps SHA-256(request) until it uses the approval for a share.
            approving = [r for r in step["roles"] if r["action"] == "approve"]
            for role, i in zip(approving, step.get("approve", step["authorities"])):
                check.same(f"{where} authority {i} approves: before", sorted(approved[i]),
                           role["state_before"]["approved"])
                check.same(f"{where} authority {i} request_digest", digest, role["intermediates"]["request_digest"])
                approved[i].add(digest)
                check.same(f"{where} authority {i} approves: after", sorted(approved[i]),
                           role["state_after"]["approved"])
            # specs/threshold_elgamal.md 5.3, 5.4: each listed authority's share with its DLEQ proof.
            sealed = bytes.fromhex(combiner["input"]["sealed_link"])
            R = sealed[:32]
            D_by = {}
            sharing = [r for r in step["roles"] if r["action"] == "share"]
            for role, i in zip(sharing, step["authorities"]):
                check.same(f"{where} authority {i} shares: before", sorted(approved[i]),
                           role["state_before"]["approved"])
                approved[i].discard(digest)
                check.same(f"{where} authority {i} shares: after", sorted(approved[i]),
                           role["state_after"]["approved"])
                x_i = shares[i]
                k = int.from_bytes(hashlib.sha512(TE_DOMAIN + b"nonce" + s[f"authority{i}.dleq_nonce"]
                                                  + x_i.to_bytes(32, "little")).digest(), "little") % L
                check.same(f"{where} authority {i} k", k.to_bytes(32, "little"), role["intermediates"]["k"])
                D, A1, A2 = mult(R, x_i), base_mult(k), mult(R, k)
                c = int.from_bytes(hashlib.sha512(
                    TE_DOMAIN + b"dleq" + i.to_bytes(32, "little") + base_mult(x_i) + R + D + A1 + A2
                    + lp8(request)).digest(), "little") % L
                share = D + c.to_bytes(32, "little") + ((k + c * x_i) % L).to_bytes(32, "little")
                check.same(f"{where} authority {i} share", share, role["output"])
                D_by[i] = D
            # 7: combine with Lagrange coefficients at 0 and open the AEAD.
            ids = sorted(D_by)
            S = None
            for i in ids:
                term = mult(D_by[i], lagrange_at_zero(i, ids))
                S = term if S is None else nacl.crypto_core_ed25519_add(S, term)
            label = ESCROW_DOMAIN + lp4(b"link") + fingerprint
            key = hkdf_sha256(ikm=S, salt=R, info=TE_DOMAIN + lp8(label), length=32)
            opened = ChaCha20Poly1305(key).decrypt(bytes(12), sealed[128:], TE_DOMAIN + lp8(label) + R)
            body = cbor({1: step["serial"], 2: step["epoch"], 3: fingerprint})
            check.same(f"{where} link_plaintext", len(body).to_bytes(2, "big") + body + bytes(126 - len(body)),
                       combiner["output"]["link_plaintext"])
            check.same(f"{where} opened link", opened, combiner["output"]["link_plaintext"])
    print(f"spec-only implementation reproduced {check.count} values")
    assert check.count == 108


# --- section 8.3 and 11.4: the refusals of the approval path -----------------------------------------

class Refused(Exception):
    """A refusal, by the error name of specs/conventions.md section 5.1."""


def _cbor_read(b: bytes, i: int):
    """The deterministic CBOR of specs/conventions.md section 2, as far as a reid-request uses it."""
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
        if i + n > len(b):
            raise IndexError("short")
        return (b[i:i + n] if major == 2 else b[i:i + n].decode()), i + n
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = _cbor_read(b, i)
            out[k], i = _cbor_read(b, i)
        return out, i
    raise ValueError("not in a reid-request")


def decode_reid_request(data: bytes) -> dict:
    """Section 4.6 (and 4.1): a reid-request, canonical; DecodeError otherwise."""
    try:
        m, end = _cbor_read(data, 0)
    except (IndexError, KeyError, ValueError, UnicodeDecodeError):
        raise Refused("DecodeError") from None
    types = {1: int, 2: str, 3: bytes, 4: str, 5: bytes}
    if end != len(data) or not isinstance(m, dict) or set(m) != set(types) or \
            any(not isinstance(m[k], t) for k, t in types.items()) or cbor(m) != data:
        raise Refused("DecodeError")
    if m[1] != 1 or m[2] != "reid-request" or len(m[3]) != 32 or not 1 <= len(m[4].encode()) <= 256 \
            or len(m[5]) != 16:
        raise Refused("DecodeError")
    return m


def edit(data: bytes, how: dict) -> bytes:
    """Section 11.3: truncate, flip (from the end if negative) or append."""
    (kind, value), = how.items()
    if kind == "truncate":
        return data[:value]
    if kind == "append":
        return data + bytes.fromhex(value)
    value %= len(data)
    return data[:value] + bytes([data[value] ^ 1]) + data[value + 1:]


def seal_proof_holds(sealed: bytes, aad: bytes) -> bool:
    """specs/threshold_elgamal.md 4.4: the proof (e, f) that R and R2 share r, bound to the label."""
    R, R2, e, f, ct = sealed[:32], sealed[32:64], sealed[64:96], sealed[96:128], sealed[128:]
    e_, f_ = int.from_bytes(e, "little"), int.from_bytes(f, "little")
    B2 = second_generator()
    W = nacl.crypto_core_ed25519_sub(base_mult(f_), mult(R, e_))
    W2 = nacl.crypto_core_ed25519_sub(mult(B2, f_), mult(R2, e_))
    h = hashlib.sha512(TE_DOMAIN + b"seal" + lp8(aad) + lp8(ct) + R + W + R2 + W2).digest()
    return int.from_bytes(h, "little") % L == e_


def approval_path(vector: dict) -> str | None:
    """Sections 8.2 and 8.3 for the last (reidentify) step of an invalid vector: each approving authority
    decodes the request and keeps SHA-256 of it; each listed authority needs that digest among its
    approvals (StateError), the escrow's sealed link of the named fingerprint (StateError if none), its
    proof under ESCROW_DOMAIN || lp4("link") || fingerprint (VerificationError), and uses the approval
    up.  Earlier steps are the vector's accepted outputs (section 11.4)."""
    links: dict[bytes, bytes] = {}
    credential: dict[tuple[str, int], bytes] = {}
    approved: dict[int, set[str]] = {1: set(), 2: set(), 3: set()}
    *earlier, last = vector["steps"]
    for step in earlier:
        for role in step.get("roles", []):
            if role["role"] == "escrow" and "sealed_link" in role.get("intermediates", {}):
                links[bytes.fromhex(role["intermediates"]["fingerprint"])] = \
                    bytes.fromhex(role["intermediates"]["sealed_link"])
            if role["action"] == "receive_hfid":
                credential[(step["serial"], step["epoch"])] = bytes.fromhex(role["output"]["credential"])
            if role["role"] == "authority":
                assert sorted(approved[role["identifier"]]) == role["state_before"]["approved"]
                digest = hashlib.sha256(bytes.fromhex(role["input"] if role["action"] == "approve"
                                                      else role["input"]["reid_request"])).hexdigest()
                (approved[role["identifier"]].add if role["action"] == "approve"
                 else approved[role["identifier"]].discard)(digest)
                assert sorted(approved[role["identifier"]]) == role["state_after"]["approved"]
    fingerprint = hashlib.sha256(credential[(last["serial"], last["epoch"])]).digest()
    if "fingerprint" in last:
        fingerprint = bytes.fromhex(last["fingerprint"])
    request = cbor({1: 1, 2: "reid-request", 3: fingerprint, 4: last["reason"], 5: bytes.fromhex(last["request_id"])})
    given = request
    if "approve_request_id" in last:
        given = cbor({1: 1, 2: "reid-request", 3: fingerprint, 4: last["reason"],
                      5: bytes.fromhex(last["approve_request_id"])})
    if "approve_edit" in last:
        given = edit(given, last["approve_edit"])
    try:
        for i in last.get("approve", last["authorities"]):
            decode_reid_request(given)
            approved[i].add(hashlib.sha256(given).hexdigest())
        for i in last["authorities"]:
            digest = hashlib.sha256(request).hexdigest()
            if digest not in approved[i]:
                raise Refused("StateError")
            sealed = links.get(fingerprint)
            if "link_of" in last:
                sealed = links[hashlib.sha256(credential[(last["link_of"], last["epoch"])]).digest()]
            if sealed is None:
                raise Refused("StateError")
            if not seal_proof_holds(sealed, ESCROW_DOMAIN + lp4(b"link") + fingerprint):
                raise Refused("VerificationError")
            approved[i].discard(digest)
    except Refused as exc:
        return str(exc)
    return None


_APPROVAL_FLAGS = {"NotApproved", "ApprovalReused", "UnknownCredential", "WrongLink"}


@pytest.mark.parametrize("vector", [v for v in json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]
                                    if v.get("result") == "invalid" and v["steps"][-1]["op"] == "reidentify"
                                    and (_APPROVAL_FLAGS & set(v["flags"]) or "approve_edit" in v["steps"][-1])],
                         ids=lambda v: v["name"])
def test_approval_refusals_follow_from_the_spec(vector: dict) -> None:
    assert approval_path(vector) == vector["error"]


@pytest.mark.parametrize("serial", ["S", "SM-00000", "x" * 64])
def test_every_link_and_sealed_link_has_one_length(serial):
    body = cbor({1: serial, 2: 2**32 - 1, 3: bytes(32)})
    assert len(body) <= 126
    assert len(te_seal(base_mult(5), b"label", len(body).to_bytes(2, "big") + body + bytes(126 - len(body)), 7,
                       11)) == 272


def _probable_prime(n: int) -> bool:
    """Miller-Rabin with the first 20 primes as bases (a test-side check of 'the smallest prime')."""
    small = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71]
    if n < 2:
        return False
    for p in small:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _next_prime(x: int) -> int:
    n = x + 1
    while not _probable_prime(n):
        n += 1
    return n


def test_blind_fleet_rsa_keys_reproduce_from_the_spec_alone():
    """specs/escrow.md 11.2: p = NextPrime(RandomBits(1024) OR 3 * 2^1022), then q; d = e^-1 mod lcm."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from math import gcd, lcm

    envelope = json.loads(VECTORS.read_text(encoding="utf-8"))
    vector = next(v for v in envelope["vectors"] if v["name"] == "blind-two-meters-two-epochs")
    fleet, check = vector["fleet"], Checker()
    d = draws_by_name(fleet["draws"])
    for epoch, stored in fleet["rsa_keys"].items():
        p = _next_prime(int.from_bytes(d[f"epoch{epoch}.rsa_p_seed"], "big") | 3 << 1022)
        q = _next_prime(int.from_bytes(d[f"epoch{epoch}.rsa_q_seed"], "big") | 3 << 1022)
        assert p != q and (p * q).bit_length() == 2048 and gcd(65537, (p - 1) * (q - 1)) == 1
        n, e = p * q, 65537
        check.same(f"epoch {epoch} p", format(p, "x"), stored["p"])
        check.same(f"epoch {epoch} q", format(q, "x"), stored["q"])
        check.same(f"epoch {epoch} n", format(n, "x"), stored["n"])
        check.same(f"epoch {epoch} e", format(e, "x"), stored["e"])
        check.same(f"epoch {epoch} d", format(pow(e, -1, lcm(p - 1, q - 1)), "x"), stored["d"])
        spki = rsa.RSAPublicNumbers(e, n).public_key().public_bytes(serialization.Encoding.DER,
                                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        check.same(f"epoch {epoch} spki", spki, stored["spki"])
    escrow_sk, escrow_pk = derive_key_pair(d["escrow_hpke_ikm"])
    check.same("escrow_hpke_public", escrow_pk, fleet["escrow_hpke_public"])
    lf_key = ed_key(d["lf_root_key"])
    check.same("lf_root", certificate(name("LFID root"), lf_key.public_key(), name("LFID root"), lf_key, 1,
                                      FLEET_FROM, FLEET_TO, True), fleet["lf_root"])
    print(f"spec-only implementation reproduced {check.count} values of the blind fleet")
    assert check.count == 14
