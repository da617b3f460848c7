"""Targets of the primitives and schemes layers: decoders and verifiers of untrusted bytes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn

from protocols.errors import DecodeError, UsappError
from protocols.primitives import bls12_381 as bls
from protocols.primitives import cbor
from protocols.primitives import ed25519 as ed
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.supersingular import Type1Curve
from protocols.schemes import bb1, bf, bf_bls12, blind_rsa, certificates, frost, hpke, ibe_hybrid, merkle
from protocols.schemes import paillier, paillier_encoding, threshold_elgamal

from .registry import ANY, CANONICAL, Target, cached
from .seeds import all_hex_strings, hex_field, vectors

CBOR_STEMS = ("aggregation", "groupkeys", "escrow", "integrity", "issuance", "bf_bls12")


@cached
def cbor_seeds() -> list[bytes]:
    """Every CBOR message in the vectors (hex strings that decode), up to 40 per file."""
    out: list[bytes] = []
    for stem in CBOR_STEMS:
        taken = 0
        for raw in all_hex_strings(stem):
            if taken == 40 or raw[0] >> 5 not in (4, 5):  # arrays and maps only
                continue
            try:
                cbor.decode(raw)
            except UsappError:
                continue
            out.append(raw)
            taken += 1
    return out


def _frame(data: bytes) -> list | None:
    """The harness's own framing of a multi-field input (a CBOR array); None if it does not parse."""
    try:
        value = cbor.decode(data)
    except UsappError:
        return None
    return value if isinstance(value, list) else None


# -- primitives --------------------------------------------------------------------------


@cached
def ed_elements() -> list[bytes]:
    out = hex_field("rfc9591", None, "group_public_key") + hex_field("threshold_elgamal", None, "group_public_key")
    for v in vectors("threshold_elgamal", "open"):
        out += [bytes.fromhex(x) for x in v["verifying_shares"]]
    return list(dict.fromkeys(out))


@cached
def ed_scalars() -> list[bytes]:
    out = []
    for v in vectors("rfc9591", "frost_sign"):
        out += [bytes.fromhex(x) for x in v["participant_shares"].values()]
        out += [bytes.fromhex(r["sig_share"]) for r in v["round_two"].values()]
    return list(dict.fromkeys(out))


def _bls_field(length: int) -> list[bytes]:
    return [raw for raw in all_hex_strings("bf_bls12") if len(raw) == length][:30]


@cached
def g1_seeds() -> list[bytes]:
    return [raw for raw in _bls_field(48) if _ok(bls.G1.from_bytes, raw)]


@cached
def g2_seeds() -> list[bytes]:
    return [raw for raw in _bls_field(96) if _ok(bls.G2.from_bytes, raw)]


@cached
def gt_seeds() -> list[bytes]:
    return [raw for raw in _bls_field(576) if _ok(bls.GT.from_bytes, raw)]


def _ok(call, raw: bytes) -> bool:
    try:
        call(raw)
    except UsappError:
        return False
    return True


@cached
def drbg_seeds() -> list[bytes]:
    """[hash, entropy, nonce, personalization, bytes wanted, additional input] of each CAVP vector."""
    out = []
    for v in vectors("hmac_drbg"):
        additional = v["additional_input"][0] if v["additional_input"] else ""
        out.append(cbor.encode([v["hash"], bytes.fromhex(v["entropy_input"]), bytes.fromhex(v["nonce"]),
                                bytes.fromhex(v["personalization_string"]), len(v["returned_bits"]) // 2,
                                bytes.fromhex(additional)]))
    return out[:40]


def drbg_call(data: bytes) -> bytes | None:
    fields = _frame(data)
    if fields is None or len(fields) != 6:
        return None
    name, entropy, nonce, personalization, wanted, additional = fields
    drbg = HmacDrbg(name)
    drbg.instantiate(entropy, nonce, personalization)
    return drbg.generate(wanted, additional)


# -- Paillier -----------------------------------------------------------------------------


@functools.cache
def _paillier_key(n_hex: str) -> paillier.PublicKey:
    return paillier.PublicKey(paillier.mpz(int(n_hex, 16)), min_bits=1024)


@cached
def paillier_ciphertexts() -> list[bytes]:
    return [bytes.fromhex(v["n"]) + bytes.fromhex(v["ciphertext_encoding"])
            for v in vectors("paillier", "encrypt")][:10]


def paillier_ciphertext_call(data: bytes) -> paillier.Ciphertext:
    # the harness frames (n, c) by n's fixed length: the first vector key's byte length
    n = paillier_ciphertexts()[0][:_n_length()]
    key = _paillier_key(n.hex())
    if data[:len(n)] != n:
        _refuse()
    return paillier.Ciphertext.from_bytes(key, data[len(n):])


def _n_length() -> int:
    v = next(vectors("paillier", "encrypt"))
    return len(bytes.fromhex(v["n"]))


def _refuse() -> NoReturn:
    raise DecodeError("harness: not this target's framing")


@cached
def phe_json_seeds() -> list[bytes]:
    out = []
    for v in vectors("paillier_encoding", "phe-json-write"):
        out += [v[k].encode() for k in ("public_json", "private_json", "list_json")]
    return out[:9]


@cached
def phe_number_seeds() -> list[bytes]:
    return [v["number_json"].encode() for v in vectors("paillier_encoding", "phe-json-write")][:5]


def phe_number_call(data: bytes) -> object:
    v = next(vectors("paillier_encoding", "phe-json-write"))
    key = paillier.PublicKey(paillier.mpz(int(v["n"], 16)), min_bits=1024)
    return paillier_encoding.from_phe_json(data, key, min_bits=1024)


# -- RFC 5091 Boneh-Franklin and Boneh-Boyen over the type-1 curves -------------------------------

_TOY = {"min_p_bits": 128, "min_q_bits": 128}


def _point(E: Type1Curve, xy: dict):
    return E.point(int(xy["x"], 16), int(xy["y"], 16))


@functools.cache
def _bf_case() -> tuple[bf.BFPublicParameters, bf.BFPrivateKey, bytes]:
    v = next(vectors("rfc5091", "bf-decrypt"))
    E = Type1Curve(int(v["p"], 16), int(v["q"], 16), **_TOY)
    params = bf.BFPublicParameters(E, _point(E, v["P"]), _point(E, v["P_pub"]), bf.hash_function(v["hashfcn"]))
    return params, bf.BFPrivateKey(_point(E, v["S_id"])), bytes.fromhex(v["ciphertext"])


@functools.cache
def _bb1_case() -> tuple[bb1.BB1PublicParameters, bb1.BB1PrivateKey, bytes]:
    v = next(vectors("rfc5091", "bb1-decrypt"))
    E = Type1Curve(int(v["p"], 16), int(v["q"], 16), **_TOY)
    params = bb1.BB1PublicParameters(E, _point(E, v["P"]), _point(E, v["P_1"]), _point(E, v["P_2"]),
                                     _point(E, v["P_3"]), E.fp2(int(v["v"]["a0"], 16), int(v["v"]["a1"], 16)),
                                     bf.hash_function(v["hashfcn"]))
    key = bb1.BB1PrivateKey(_point(E, v["D_0"]), _point(E, v["D_1"]))
    return params, key, bytes.fromhex(v["ciphertext"])


def bf_decrypt_call(data: bytes) -> bytes:
    params, key, _ = _bf_case()
    return bf.BFdecrypt(params, key, bf.BFCiphertext.from_der(data, params))


def bb1_decrypt_call(data: bytes) -> bytes:
    params, key, _ = _bb1_case()
    return bb1.BBdecrypt(params, key, bb1.BB1Ciphertext.from_der(data, params))


# -- BF over BLS12-381 ----------------------------------------------------------------------


@functools.cache
def _bls12_recipient() -> tuple[ibe_hybrid.Bls12Recipient, int, list[bytes], list[bytes]]:
    envelopes, encs = [], []
    first = next(vectors("bf_bls12", "hybrid-open"))
    for v in vectors("bf_bls12", "hybrid-open"):
        if (v["d_id"], v["identity"], v["epoch"], v["aad"]) == (first["d_id"], first["identity"], first["epoch"],
                                                                first["aad"]):
            envelopes.append(bytes.fromhex(v["envelope"]))
    for v in vectors("bf_bls12", "decapsulate"):
        if (v["d_id"], v["identity"]) == (first["d_id"], first["identity"]):
            encs.append(bytes.fromhex(v["enc"]))
    key = bf_bls12.PrivateKey.from_bytes(bytes.fromhex(first["identity"]), bytes.fromhex(first["d_id"]))
    return ibe_hybrid.Bls12Recipient(key), first["epoch"], envelopes, encs


def hybrid_open_call(data: bytes) -> bytes:
    recipient, epoch, _, _ = _bls12_recipient()
    return ibe_hybrid.open_envelope(recipient, data, epoch)


def decapsulate_call(data: bytes) -> bytes:
    recipient = _bls12_recipient()[0]
    return bf_bls12.decapsulate(recipient.key, data)


# -- FROST, threshold ElGamal, HPKE, blind RSA, certificates, Merkle ------------------------------


@cached
def frost_signatures() -> list[bytes]:
    return [
        bytes.fromhex(v["group_public_key"]) + bytes.fromhex(v["message"]) + b"|" +
        bytes.fromhex(v["final_output"]["sig"]) for v in vectors("rfc9591", "frost_sign")]


def frost_verify_call(data: bytes) -> None:
    """Input: group key (32) || message || "|" || signature (the last 64 bytes)."""
    if len(data) < 97 or data[-65:-64] != b"|":
        _refuse()
    frost.verify(data[32:-65], data[-64:], data[:32])


@cached
def frost_commitments() -> list[bytes]:
    out = []
    for v in vectors("rfc9591", "frost_sign"):
        for identifier, r in v["round_one"].items():
            out.append(ed.SerializeScalar(int(identifier)) + bytes.fromhex(r["hiding_nonce_commitment"])
                       + bytes.fromhex(r["binding_nonce_commitment"]))
    return out


@functools.cache
def _elgamal_case() -> tuple[dict, bytes]:
    v = next(vectors("threshold_elgamal", "open"))
    return dict(v), bytes.fromhex(v["sealed"])


def elgamal_open_call(data: bytes) -> bytes:
    v, _ = _elgamal_case()
    return threshold_elgamal.open_with_secret(_elgamal_secret(), data, bytes.fromhex(v["aad"]))


@functools.cache
def _elgamal_secret() -> int:
    v, _ = _elgamal_case()
    shares = [(i + 1, ed.DeserializeScalar(bytes.fromhex(s))) for i, s in enumerate(v["secret_shares"])]
    return frost.secret_share_combine(shares[: v["threshold"]], v["threshold"])


@cached
def elgamal_share_seeds() -> list[bytes]:
    v, _ = _elgamal_case()
    return [bytes.fromhex(s["share"]) for s in v["shares"] if "share" in s]


@functools.cache
def _hpke_case() -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    v = next(vectors("hpke_rfc9180", "base"))
    return (bytes.fromhex(v["skRm"]), bytes.fromhex(v["info"]),
            [(bytes.fromhex(e["aad"]), bytes.fromhex(v["enc"]) + bytes.fromhex(e["ct"])) for e in v["encryptions"]])


def hpke_open_call(data: bytes) -> bytes:
    """Input: enc (32) || ct, opened with the first encryption's aad (sequence 0 of the context)."""
    sk, info, encryptions = _hpke_case()
    return hpke.OpenBase(data[:32], sk, info, encryptions[0][0], data[32:])


@functools.cache
def _rsa_case() -> tuple[blind_rsa.PublicKey, dict]:
    v = next(vectors("rfc9474", "rsabssa"))
    sk = blind_rsa.PrivateKey.from_factors(int(v["p"], 16), int(v["q"], 16), int(v["e"], 16))
    return sk.public, dict(v)


def rsa_verify_call(data: bytes) -> None:
    pk, v = _rsa_case()
    blind_rsa.Verify(pk, bytes.fromhex(v["prepared_msg"]), data, blind_rsa.variant(v["variant"]))


def rsa_finalize_call(data: bytes) -> bytes:
    pk, v = _rsa_case()
    return blind_rsa.Finalize(pk, bytes.fromhex(v["prepared_msg"]), data, int(v["inv"], 16),
                              blind_rsa.variant(v["variant"]))


@cached
def certificate_seeds() -> list[bytes]:
    out = hex_field("issuance", None, "root_certificate")
    for v in vectors("issuance", "enroll"):
        out += [bytes.fromhex(c) for c in v["chain"]]
    return list(dict.fromkeys(out))


@cached
def inclusion_seeds() -> list[bytes]:
    """[leaf hash, index, size, path, root] of each RFC 9162 inclusion vector."""
    return [cbor.encode([bytes.fromhex(v["leaf_hash"]), v["leaf_index"], v["tree_size"],
                         [bytes.fromhex(p) for p in v["path"]], bytes.fromhex(v["root"])])
            for v in vectors("rfc9162", "inclusion")]


def inclusion_call(data: bytes) -> None:
    fields = _frame(data)
    if fields is None or len(fields) != 5:
        _refuse()
    merkle.verify_inclusion(*fields)


@cached
def consistency_seeds() -> list[bytes]:
    return [cbor.encode([v["old_size"], v["new_size"], bytes.fromhex(v["old_root"]), bytes.fromhex(v["new_root"]),
                         [bytes.fromhex(p) for p in v["proof"]]])
            for v in vectors("rfc9162", "consistency")]


def consistency_call(data: bytes) -> None:
    fields = _frame(data)
    if fields is None or len(fields) != 5:
        _refuse()
    merkle.verify_consistency(*fields)


HUGE = 1 << 70000
"""An int of 21072 decimal digits: past Python's 4300-digit int->str limit."""


def drbg_huge() -> list[bytes]:
    return [cbor.encode(["SHA-256", bytes(32), bytes(16), b"", n, b""]) for n in (HUGE, -HUGE)]


def merkle_huge_inclusion() -> list[bytes]:
    leaf, root = bytes(32), bytes(32)
    return [cbor.encode([leaf, HUGE, 5, [], root]), cbor.encode([leaf, 0, -HUGE, [], root])]


def merkle_huge_consistency() -> list[bytes]:
    return [cbor.encode([HUGE, 5, bytes(32), bytes(32), []]), cbor.encode([1, -HUGE, bytes(32), bytes(32), []])]


def phe_deep() -> list[bytes]:
    return [b'{"kty":' + b"[" * 20_000 + b"]" * 20_000 + b"}", b'{"v":' + b"[" * 20_000 + b"]" * 20_000 + b',"e":0}']


def envelope_huge() -> list[bytes]:
    envelope = cbor.decode(_bls12_recipient()[2][0])
    return [cbor.encode({**envelope, key: HUGE}) for key in (1, 4)]


def _roundtrip(encode: Callable[[Any], bytes]) -> Callable[[bytes, object], bool]:
    """Canonical: the decoded value encodes back to exactly the input."""
    return lambda data, result: encode(result) == bytes(data)


def _to_bytes(value: Any) -> bytes:
    return bytes(value.to_bytes())


def _to_der(value: Any) -> bytes:
    return bytes(value.to_der())


TARGETS = [
    Target("cbor.decode", cbor_seeds, cbor.decode, kind="cbor", accept=CANONICAL,
           canonical=_roundtrip(cbor.encode), examples=150),
    Target("ed25519.DeserializeElement", ed_elements, ed.DeserializeElement, accept=CANONICAL,
           canonical=_roundtrip(ed.SerializeElement), examples=60),
    Target("ed25519.DeserializeScalar", ed_scalars, ed.DeserializeScalar, accept=CANONICAL,
           canonical=_roundtrip(ed.SerializeScalar), examples=60),
    Target("bls12_381.G1.from_bytes", g1_seeds, bls.G1.from_bytes, accept=CANONICAL,
           canonical=_roundtrip(_to_bytes), examples=40),
    Target("bls12_381.G2.from_bytes", g2_seeds, bls.G2.from_bytes, accept=CANONICAL,
           canonical=_roundtrip(_to_bytes), examples=30),
    Target("bls12_381.GT.from_bytes", gt_seeds, bls.GT.from_bytes, accept=CANONICAL,
           canonical=_roundtrip(_to_bytes), examples=8),
    Target("drbg.instantiate+generate", drbg_seeds, drbg_call, kind="cbor", accept=ANY, examples=60),
    Target("paillier.PublicKey.from_bytes", lambda: hex_field("paillier", "keygen", "n_encoding")[:3],
           lambda d: paillier.PublicKey.from_bytes(d, min_bits=1024), accept=CANONICAL,
           canonical=_roundtrip(_to_bytes), examples=30),
    Target("paillier.PrivateKey.from_bytes", lambda: hex_field("paillier", "keygen", "private_key_encoding")[:2],
           lambda d: paillier.PrivateKey.from_bytes(d, min_bits=1024), accept=CANONICAL,
           canonical=_roundtrip(_to_bytes), examples=20),
    Target("paillier.Ciphertext.from_bytes", paillier_ciphertexts, paillier_ciphertext_call, accept=CANONICAL,
           canonical=lambda d, c: _to_bytes(c) == bytes(d)[_n_length():], examples=30),
    Target("paillier_encoding.from_phe_json", phe_json_seeds,
           lambda d: paillier_encoding.from_phe_json(d, min_bits=1024), kind="json", accept=ANY, examples=40),
    Target("paillier_encoding.from_phe_json(number)", phe_number_seeds, phe_number_call, kind="json", accept=ANY,
           examples=30),
    Target("bf.BFPublicParameters.from_der", lambda: [_bf_case()[0].to_der()],
           lambda d: bf.BFPublicParameters.from_der(d, **_TOY), accept=CANONICAL,
           canonical=_roundtrip(_to_der), examples=30),
    Target("bf.BFMasterSecret.from_der", lambda: [bf.BFMasterSecret(12345678901234567).to_der()],
           bf.BFMasterSecret.from_der, accept=CANONICAL, canonical=_roundtrip(_to_der), examples=30),
    Target("bf.BFPrivateKey.from_der", lambda: [_bf_case()[1].to_der()],
           lambda d: bf.BFPrivateKey.from_der(d, _bf_case()[0]), accept=CANONICAL,
           canonical=_roundtrip(_to_der), examples=30),
    Target("bf.decrypt(BFCiphertext.from_der)", lambda: [_bf_case()[2]], bf_decrypt_call, examples=30),
    Target("bb1.BB1PublicParameters.from_der", lambda: [_bb1_case()[0].to_der()],
           lambda d: bb1.BB1PublicParameters.from_der(d, **_TOY), accept=CANONICAL,
           canonical=_roundtrip(_to_der), examples=30),
    Target("bb1.BB1PrivateKey.from_der", lambda: [_bb1_case()[1].to_der()],
           lambda d: bb1.BB1PrivateKey.from_der(d, _bb1_case()[0]), accept=CANONICAL,
           canonical=_roundtrip(_to_der), examples=30),
    Target("bb1.decrypt(BB1Ciphertext.from_der)", lambda: [_bb1_case()[2]], bb1_decrypt_call, examples=30),
    Target("bf_bls12.PublicParams.from_bytes", g2_seeds, bf_bls12.PublicParams.from_bytes, accept=CANONICAL,
           canonical=_roundtrip(_to_bytes), examples=20),
    Target("bf_bls12.decapsulate", lambda: _bls12_recipient()[3], decapsulate_call, examples=15),
    Target("ibe_hybrid.open_envelope", lambda: _bls12_recipient()[2], hybrid_open_call, kind="cbor", examples=15),
    Target("frost.SigningCommitments.from_bytes", frost_commitments, frost.SigningCommitments.from_bytes,
           accept=CANONICAL, canonical=_roundtrip(_to_bytes), examples=40),
    Target("frost.Signature.from_bytes", lambda: [s[-64:] for s in frost_signatures()], frost.Signature.from_bytes,
           accept=CANONICAL, canonical=_roundtrip(_to_bytes), examples=40),
    Target("frost.verify", frost_signatures, frost_verify_call, examples=40),
    Target("threshold_elgamal.open_with_secret", lambda: [_elgamal_case()[1]], elgamal_open_call, examples=40),
    Target("threshold_elgamal.DecryptionShare.from_bytes", elgamal_share_seeds,
           lambda d: threshold_elgamal.DecryptionShare.from_bytes(1, d), accept=CANONICAL,
           canonical=_roundtrip(_to_bytes), examples=40),
    Target("hpke.OpenBase", lambda: [_hpke_case()[2][0][1]], hpke_open_call, examples=40),
    Target("blind_rsa.Verify", lambda: [bytes.fromhex(_rsa_case()[1]["sig"])], rsa_verify_call, examples=30),
    Target("blind_rsa.Finalize", lambda: [bytes.fromhex(_rsa_case()[1]["blind_sig"])], rsa_finalize_call,
           examples=30),
    Target("certificates.load_certificate", certificate_seeds,
           lambda d: certificates.load_certificate(d, "fuzzed certificate"), accept=ANY, examples=40),
    Target("certificates.load_device_key", lambda: hex_field("issuance", "enroll", "device_key"),
           certificates.load_device_key, accept=ANY, examples=40),
    Target("merkle.verify_inclusion", inclusion_seeds, inclusion_call, kind="cbor", examples=40),
    Target("merkle.verify_consistency", consistency_seeds, consistency_call, kind="cbor", examples=40),
]
