"""Vector family ``bf-bls12381``: the project's BF-IBE suite on BLS12-381
(specs/ibe.md section 4; format in section 4.8), generated from fixed HMAC_DRBG seeds.

One vector is one step of one role (specs/ibe.md 4.8.2): ``pairing`` (the pairing of
specs/bls12_381.md section 7 with its uncubed value), ``setup`` and ``extract`` (PKG),
``encapsulate`` (sender), ``decapsulate`` (device), ``hybrid`` (an envelope of
protocols.schemes.ibe_hybrid) and ``hybrid-open`` (device), and the distributed PKG: ``deal`` (dealer), ``combine-dealings``
(combiner), ``node-secret`` and ``extract-share`` (PKG node), ``combine-key-shares`` (device).
Every random value consumed is recorded in ``draws`` (each random_bytes call, in order), and
a vector with ``result: invalid`` must be refused with exactly the error it names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from protocols.errors import UsappError, VectorMismatchError
from protocols.primitives import shamir
from protocols.primitives.bls12_381 import G1, G2, R, pairing
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.schemes import bf_bls12 as bf
from protocols.schemes import ibe_hybrid as hy
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    MAX_PARTIES,
    UINT64,
    role_vector,
    node_key,
    bytes_field,
    dispatch,
    expect_outputs,
    field,
    hex_list_field,
    list_field,
    small_int_field,
    str_field,
)

PROTOCOL = "bf-ibe"
SUITE = bf.SUITE
FILE = "bf_bls12.json"
SEED = "usapp-vectors/bf-bls12/"
COMMON = ("name", "operation", "role", "result", "flags", "error", "comment")

NOTES = {
    "Valid": "the step succeeds; every output field must be reproduced byte for byte",
    "InvalidPoint": "a point encoding that is not a curve point (x not below p, or x^3 + b not a square)",
    "WrongSubgroup": "a point of the curve outside the subgroup of order r",
    "IdentityPoint": "the identity (0xc0 00..) where a non-identity point is required",
    "NonCanonical": "a non-canonical encoding (flag bits)",
    "Truncated": "the input is shorter than its fixed length",
    "TrailingBytes": "the input is longer than its fixed length",
    "TamperedCiphertext": "one bit of U or V flipped after encapsulation",
    "WrongIdentity": "a valid encapsulation opened with another identity's key",
    "BadDealtShare": "a dealt share f_j(i) that does not match dealer j's commitments",
    "MissingProofOfPossession": "a dealing without its proof of possession (R, z)",
    "BadProofOfPossession": "a proof of possession that does not verify (tampered z, or another context)",
    "BadKeyShare": "a key share d_i that is not s_i Q_id",
    "TooFewShares": "fewer than t key shares",
    "WrongEpoch": "an envelope opened for another key epoch",
    "WrongSuite": "an envelope naming another suite",
    "TamperedEnvelope": "one byte of the envelope's AEAD ciphertext, or the caller's aad, changed",
    "Malformed": "an envelope that is not the CBOR map of specs/ibe.md 4.4",
}


def scalar_hex(k: int) -> str:
    """A scalar as I2OSP(k, 32): 64 lower-case hex digits, big-endian (specs/ibe.md 4.8.1)."""
    return k.to_bytes(32, "big").hex()


def _scalar(v: Mapping[str, Any], name: str) -> int:
    raw = bytes_field(v, name)
    if len(raw) != 32:
        raise VectorMismatchError(f"field {name!r} must be 32 bytes (64 hex digits)")
    return int.from_bytes(raw, "big")


class _Recorder:
    """Wraps a DRBG and records every random_bytes call under the name of the value it is for."""

    def __init__(self, seed: str) -> None:
        self.drbg = HmacDrbg.from_seed(seed)
        self.draws: list[dict[str, str]] = []
        self.label = ""

    def random_bytes(self, n: int) -> bytes:
        out = self.drbg.random_bytes(n)
        self.draws.append({"name": self.label, "hex": out.hex()})
        return out


def _draws(v: Mapping[str, Any]) -> ReplayRandom:
    items = list_field(v, "draws")
    if not all(isinstance(d, dict) and set(d) == {"name", "hex"} and isinstance(d["name"], str) for d in items):
        raise VectorMismatchError("field 'draws' must be a list of {name, hex}")
    return ReplayRandom([bytes_field(d, "hex") for d in items])


def _check_seed(v: Mapping[str, Any], run: Callable[[Any], None]) -> None:
    """The recorded draws are what the seed's DRBG gives for the same calls."""
    recorder = _Recorder(str_field(v, "seed"))
    run(recorder)
    if [d["hex"] for d in recorder.draws] != [d["hex"] for d in list_field(v, "draws")]:
        raise VectorMismatchError("field 'draws' is not what HMAC_DRBG(seed) yields")


# --- operations: each returns (inputs, outputs), or raises the step's own error -------------------

def _op_pairing(v):
    p, q = G1.from_bytes(bytes_field(v, "P")), G2.from_bytes(bytes_field(v, "Q"))
    value = pairing(p, q)
    ate = value ** pow(3, -1, R)
    if ate ** 3 != value:  # pragma: no cover - arithmetic
        raise VectorMismatchError("e^3 != pairing")
    return ("P", "Q"), {"e_optimal_ate": ate.to_bytes().hex(), "pairing": value.to_bytes().hex()}


def _op_setup(v):
    master = bf.setup(_draws(v))
    _check_seed(v, lambda rng: bf.setup(rng))
    return ("seed", "draws"), {"master_secret": scalar_hex(master.s), "p_pub": master.params.to_bytes().hex()}


def _op_extract(v):
    master = bf.MasterKey(_scalar(v, "master_secret"))
    identity = bytes_field(v, "identity")
    key = bf.extract(master, identity)
    return ("master_secret", "identity"), {"p_pub": master.params.to_bytes().hex(),
                                            "q_id": bf.identity_point(identity).to_bytes().hex(),
                                            "d_id": key.to_bytes().hex()}


def _trace_json(t: bf.KemTrace) -> dict:
    return {"sigma": t.sigma.hex(), "rho": scalar_hex(t.rho), "q_id": t.q_id.to_bytes().hex(),
            "theta": t.theta.to_bytes().hex(), "mask": t.mask.hex(), "U": t.u.hex(), "V": t.v.hex(),
            "enc": (t.u + t.v).hex(), "key": t.key.hex()}


def _op_encapsulate(v):
    params = bf.PublicParams.from_bytes(bytes_field(v, "p_pub"))
    identity = bytes_field(v, "identity")
    trace = bf.encapsulate_trace(params, identity, _draws(v))
    _check_seed(v, lambda rng: bf.encapsulate_trace(params, identity, rng))
    return ("p_pub", "identity", "seed", "draws"), _trace_json(trace)


def _op_decapsulate(v):
    identity, d_id, enc = bytes_field(v, "identity"), bytes_field(v, "d_id"), bytes_field(v, "enc")
    inputs = ("identity", "d_id", "enc")
    private = bf.PrivateKey.from_bytes(identity, d_id)
    out = _trace_json(bf.decapsulate_trace(private, enc))
    del out["enc"], out["q_id"]
    return inputs, out


def _op_hybrid(v):
    params = bf.PublicParams.from_bytes(bytes_field(v, "p_pub"))
    identity, epoch = bytes_field(v, "identity"), small_int_field(v, "epoch", low=0, high=UINT64)
    plaintext, aad = bytes_field(v, "plaintext"), bytes_field(v, "aad")
    seal = lambda rng: hy.seal(hy.Bls12Sender(params), identity, epoch, plaintext, aad, rng)  # noqa: E731
    envelope = seal(_draws(v))
    _check_seed(v, seal)
    trace = bf.encapsulate_trace(params, identity, _draws(v))
    header = {1: hy.VERSION, 2: SUITE, 3: identity, 4: epoch, 5: trace.u + trace.v}
    recipient = hy.Bls12Recipient(bf.PrivateKey.from_bytes(identity, bytes_field(v, "d_id")))
    if hy.open_envelope(recipient, envelope, epoch, aad) != plaintext:
        raise VectorMismatchError("field 'plaintext' does not open")
    return ("p_pub", "identity", "d_id", "epoch", "plaintext", "aad", "seed", "draws"), {
        "kem_key": trace.key.hex(), "enc": (trace.u + trace.v).hex(),
        "aead_aad": hy._aad(header, aad).hex(), "envelope": envelope.hex()}


def _op_hybrid_open(v):
    identity, epoch, aad = bytes_field(v, "identity"), small_int_field(v, "epoch", low=0, high=UINT64), bytes_field(v, "aad")
    envelope = bytes_field(v, "envelope")
    recipient = hy.Bls12Recipient(bf.PrivateKey.from_bytes(identity, bytes_field(v, "d_id")))
    return ("identity", "d_id", "epoch", "aad", "envelope"), {
        "plaintext": hy.open_envelope(recipient, envelope, epoch, aad).hex()}


def _dkg_inputs(v):
    nodes = field(v, "nodes")
    if not isinstance(nodes, list) or len(nodes) > MAX_PARTIES or not all(type(i) is int for i in nodes):
        raise VectorMismatchError(f"field 'nodes' must be a list of at most {MAX_PARTIES} node numbers")
    return small_int_field(v, "threshold", low=0, high=MAX_PARTIES), nodes, bytes_field(v, "context")


def _dealing_json(d: bf.Dealing, threshold, nodes, context) -> dict:
    if d.proof_commitment is None or d.proof_response is None:
        raise VectorMismatchError(f"dealing of node {d.dealer} carries no proof of possession")
    c = bf.pop_challenge(context, threshold, nodes, d.dealer, d.commitments[0], d.proof_commitment)
    return {"commitments": [x.to_bytes().hex() for x in d.commitments],
            "shares": {str(i): scalar_hex(d.shares[i]) for i in nodes},
            "R": d.proof_commitment.to_bytes().hex(), "c": scalar_hex(c), "z": scalar_hex(d.proof_response)}


def _op_deal(v):
    threshold, nodes, context = _dkg_inputs(v)
    dealer = small_int_field(v, "dealer", low=0, high=MAX_PARTIES)
    coefficients = [_scalar({"a": a}, "a") for a in list_field(v, "coefficients", max_items=MAX_PARTIES)]
    k = _scalar(v, "k")
    dealing = bf.deal(dealer, threshold, nodes, _draws(v), context)
    replayed = bf.deal_with_draws(dealer, threshold, nodes, coefficients, k, context)
    if replayed != dealing:
        raise VectorMismatchError("fields 'coefficients', 'k' are not the values the draws give")
    recorder = _Recorder(str_field(v, "dkg_seed"))  # the dealers before this one draw first (4.5.1)
    for node in nodes[:nodes.index(dealer) + 1]:
        start = len(recorder.draws)
        bf.deal(node, threshold, nodes, recorder, context)
    if [d["hex"] for d in recorder.draws[start:]] != [d["hex"] for d in list_field(v, "draws")]:
        raise VectorMismatchError("field 'draws' is not what HMAC_DRBG(dkg_seed) yields for this dealer")
    return ("dkg_seed", "dealer", "threshold", "nodes", "context", "draws", "coefficients", "k"), \
        _dealing_json(dealing, threshold, nodes, context)


def _public_dealings(v, threshold) -> list[bf.Dealing]:
    out = []
    for d in list_field(v, "dealings", max_items=MAX_PARTIES):
        if not isinstance(d, dict):
            raise VectorMismatchError("field 'dealings' must be a list of objects")
        commitments = tuple(G2.from_bytes(c) for c in hex_list_field(d, "commitments", max_items=MAX_PARTIES))
        proof = ((G2.from_bytes(bytes_field(d, "R")), _scalar(d, "z")) if "R" in d else (None, None))
        shares = {int(i): _scalar(d["shares"], i) for i in d.get("shares", {})}
        out.append(bf.Dealing(small_int_field(d, "dealer", low=0, high=MAX_PARTIES), commitments, shares, *proof))
    return out


def _op_combine_dealings(v):
    threshold, nodes, context = _dkg_inputs(v)
    key = bf.combine_dealings(_public_dealings(v, threshold), threshold, nodes, context)
    return ("threshold", "nodes", "context", "dealings"), {
        "p_pub": key.params.to_bytes().hex(),
        "verification_keys": {str(i): key.verification_keys[i].to_bytes().hex() for i in nodes}}


def _op_node_secret(v):
    node = small_int_field(v, "node", low=0, high=MAX_PARTIES)
    secret = bf.node_secret(_public_dealings(v, None), node)
    return ("node", "dealings"), {"s_i": scalar_hex(secret)}


def _op_extract_share(v):
    identity = bytes_field(v, "identity")
    return ("node", "s_i", "identity"), {
        "q_id": bf.identity_point(identity).to_bytes().hex(),
        "d_i": bf.extract_share(_scalar(v, "s_i"), identity).to_bytes().hex()}


def _op_combine_key_shares(v):
    threshold = small_int_field(v, "threshold", low=0, high=MAX_PARTIES)
    identity = bytes_field(v, "identity")
    vks = field(v, "verification_keys")
    shares = field(v, "key_shares")
    if not isinstance(vks, dict) or not isinstance(shares, dict):
        raise VectorMismatchError("fields 'verification_keys', 'key_shares' must be objects")
    key = bf.DistributedKey(threshold, bf.PublicParams.from_bytes(bytes_field(v, "p_pub")),
                            {node_key(i): G2.from_bytes(bytes_field(vks, i)) for i in vks})
    parsed = {node_key(i): G1.from_bytes(bytes_field(shares, i), allow_identity=True) for i in shares}
    combined = bf.combine_key_shares(key, identity, parsed)
    used = sorted(parsed)[:threshold]
    lambdas = shamir.lagrange_at_zero(used, prime=R)
    return ("threshold", "identity", "p_pub", "verification_keys", "key_shares"), {
        "used": used, "lagrange": {str(i): scalar_hex(lam) for i, lam in zip(used, lambdas)},
        "d_id": combined.to_bytes().hex()}


OPS = {"pairing": _op_pairing, "setup": _op_setup, "extract": _op_extract, "encapsulate": _op_encapsulate,
       "decapsulate": _op_decapsulate, "hybrid": _op_hybrid, "hybrid-open": _op_hybrid_open, "deal": _op_deal,
       "combine-dealings": _op_combine_dealings, "node-secret": _op_node_secret,
       "extract-share": _op_extract_share, "combine-key-shares": _op_combine_key_shares}
ROLES = {"pairing": "any", "setup": "pkg", "extract": "pkg", "encapsulate": "sender", "decapsulate": "device",
         "hybrid": "sender+device", "hybrid-open": "device", "deal": "dealer", "combine-dealings": "combiner", "node-secret": "pkg-node",
         "extract-share": "pkg-node", "combine-key-shares": "device"}
# the inputs each operation reads when it is refused (an invalid vector has no outputs)
INVALID_INPUTS = {"decapsulate": ("identity", "d_id", "enc"), "hybrid-open": ("identity", "d_id", "epoch", "aad",
                  "envelope"), "combine-dealings": ("threshold", "nodes", "context",
                  "dealings"), "node-secret": ("node", "dealings"),
                  "combine-key-shares": ("threshold", "identity", "p_pub", "verification_keys", "key_shares")}


def _checked(operation: str) -> Callable[[Mapping[str, Any]], None]:
    def run(v: Mapping[str, Any]) -> None:
        if field(v, "role") != ROLES[operation]:
            raise VectorMismatchError(f"field 'role' must be {ROLES[operation]!r}")
        flags = list_field(v, "flags") if "flags" in v else []
        if any(f not in NOTES for f in flags):
            raise VectorMismatchError("field 'flags' names an undocumented flag")
        result = v.get("result", "valid")
        if result == "valid":
            inputs, outputs = OPS[operation](v)
            expect_outputs(v, outputs, (*COMMON, *inputs))
            return
        if result != "invalid" or operation not in INVALID_INPUTS:
            raise VectorMismatchError("field 'result' must be 'valid' or 'invalid' (for a refusable step)")
        expected = str_field(v, "error")
        try:
            OPS[operation](v)
        except VectorMismatchError:
            raise
        except UsappError as exc:
            if type(exc).__name__ != expected:
                raise VectorMismatchError(f"field 'error': refused with {type(exc).__name__}, "
                                          f"not {expected}") from exc
        else:
            raise VectorMismatchError("field 'result': the invalid input was accepted")
        for key in v:
            if key not in (*COMMON, *INVALID_INPUTS[operation]):
                raise VectorMismatchError(f"field {key!r} is not an input of an invalid vector")
    return run


OPERATIONS = {name: _checked(name) for name in OPS}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# --- generation ---------------------------------------------------------------------------------

def _vector(name: str, operation: str, inputs: dict, result: str = "valid", flags=("Valid",),
            error: str | None = None, comment: str | None = None) -> dict:
    outputs = (lambda vector: OPS[operation](vector)[1]) if result == "valid" else None
    v = role_vector(name, operation, ROLES[operation], inputs, outputs, result, flags, error, comment)
    _checked(operation)(v)  # every generated vector verifies, invalid ones refused with their error
    return v


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


def _off_subgroup_g2() -> bytes:
    """A point of E' outside G2: the first x = 0 + c1 I (c1 = 1, 2, ..) whose lift is on E' and
    fails the subgroup check of specs/bls12_381.md 4.2."""
    from protocols.errors import DecodeError
    for c1 in range(1, 1000):
        raw = bytes([0x80]) + c1.to_bytes(48, "big")[1:] + bytes(48)
        try:
            G2.from_bytes(raw)
        except DecodeError as exc:
            if "subgroup" in str(exc):
                return raw
    raise VectorMismatchError("no off-subgroup point found")  # pragma: no cover


def _x_not_on_curve_g2() -> bytes:
    from protocols.errors import DecodeError
    for c1 in range(1, 1000):
        raw = bytes([0x80]) + c1.to_bytes(48, "big")[1:] + bytes(48)
        try:
            G2.from_bytes(raw)
        except DecodeError as exc:
            if "off curve" in str(exc):
                return raw
    raise VectorMismatchError("no off-curve x found")  # pragma: no cover


def _dealings_json(dealings, threshold, nodes, context, with_shares_for=None):
    out = []
    for d in dealings:
        j = _dealing_json(d, threshold, nodes, context)
        item = {"dealer": d.dealer, "commitments": j["commitments"], "R": j["R"], "z": j["z"]}
        if with_shares_for is not None:
            item = {"dealer": d.dealer, "commitments": j["commitments"],
                    "shares": {str(with_shares_for): j["shares"][str(with_shares_for)]}}
        out.append(item)
    return out


def build() -> dict:
    vectors: list[dict[str, Any]] = []
    g1, g2 = G1.generator(), G2.generator()
    for i, (a, b) in enumerate([(1, 1), (7, 11)]):
        vectors.append(_vector(f"pairing-{i}", "pairing", {"P": (g1 * a).to_bytes().hex(),
                                                           "Q": (g2 * b).to_bytes().hex()}))
    rec = _Recorder(SEED + "master")
    rec.label = "s"
    master = bf.setup(rec)
    vectors.append(_vector("setup-0", "setup", {"seed": SEED + "master", "draws": rec.draws}))
    p_pub = master.params.to_bytes().hex()
    ms = scalar_hex(master.s)
    identities = [b"usapp-id-v1|serial=SM-0001|role=meter|epoch=1", b"usapp-id-v1|serial=SM-0001|role=meter|epoch=2",
                  b"\x00", bytes(range(256))]
    encs = []
    for i, identity in enumerate(identities):
        vectors.append(_vector(f"extract-{i}", "extract", {"master_secret": ms, "identity": identity.hex()}))
        seed = SEED + f"encapsulate-{i}"
        rec = _Recorder(seed)
        rec.label = "sigma"
        bf.encapsulate_trace(master.params, identity, rec)
        enc = _vector(f"encapsulate-{i}", "encapsulate", {"p_pub": p_pub, "identity": identity.hex(), "seed": seed,
                                                          "draws": rec.draws})
        vectors.append(enc)
        encs.append(enc)
        d_id = bf.extract(master, identity).to_bytes().hex()
        vectors.append(_vector(f"decapsulate-{i}", "decapsulate", {"identity": identity.hex(), "d_id": d_id,
                                                                   "enc": enc["enc"]}))
    # invalid decapsulations (the device's refusals), all for identity 0
    ident, d_id0 = identities[0].hex(), bf.extract(master, identities[0]).to_bytes().hex()
    enc0 = bytes.fromhex(encs[0]["enc"])
    v0 = enc0[96:]
    bad = [
        ("truncated", enc0[:-1], ["Truncated"], "DecodeError"),
        ("trailing-byte", enc0 + b"\x00", ["TrailingBytes"], "DecodeError"),
        ("empty", b"", ["Truncated"], "DecodeError"),
        ("u-uncompressed-flag", bytes([enc0[0] & 0x7F]) + enc0[1:], ["NonCanonical"], "DecodeError"),
        ("u-x-not-below-p", bytes([0x9F]) + b"\xff" * 95 + v0, ["InvalidPoint"], "DecodeError"),
        ("u-off-curve", _x_not_on_curve_g2() + v0, ["InvalidPoint"], "DecodeError"),
        ("u-wrong-subgroup", _off_subgroup_g2() + v0, ["WrongSubgroup"], "DecodeError"),
        ("u-identity", bytes([0xC0]) + bytes(95) + v0, ["IdentityPoint"], "DecodeError"),
        ("u-identity-noncanonical", bytes([0xE0]) + bytes(95) + v0, ["NonCanonical"], "DecodeError"),
        ("u-negated", (-G2.from_bytes(enc0[:96])).to_bytes() + v0, ["TamperedCiphertext"], "VerificationError"),
        ("v-bit-flipped", _flip(enc0, 96), ["TamperedCiphertext"], "VerificationError"),
        ("v-last-bit-flipped", _flip(enc0, 127), ["TamperedCiphertext"], "VerificationError"),
    ]
    for label, enc, flags, error in bad:
        vectors.append(_vector(f"decapsulate-invalid-{label}", "decapsulate",
                               {"identity": ident, "d_id": d_id0, "enc": enc.hex()}, "invalid", flags, error))
    other = identities[1]
    vectors.append(_vector("decapsulate-invalid-wrong-identity", "decapsulate",
                           {"identity": other.hex(), "d_id": bf.extract(master, other).to_bytes().hex(),
                            "enc": enc0.hex()}, "invalid", ["WrongIdentity"], "VerificationError",
                           "encapsulate-0 (made for identity 0) opened with identity 1's key"))
    for i, (plaintext, aad, epoch) in enumerate([(b"", b"", 0), (b"disconnect meter SM-0001 at 12:00", b"hdr", 1)]):
        identity = identities[min(epoch, 1)]
        seed = SEED + f"hybrid-{i}"
        rec = _Recorder(seed)
        rec.label = "sigma"
        hy.seal(hy.Bls12Sender(master.params), identity, epoch, plaintext, aad, rec)
        vectors.append(_vector(f"hybrid-{i}", "hybrid", {
            "p_pub": p_pub, "identity": identity.hex(), "d_id": bf.extract(master, identity).to_bytes().hex(),
            "epoch": epoch, "plaintext": plaintext.hex(), "aad": aad.hex(), "seed": seed, "draws": rec.draws}))
    vectors.extend(_hybrid_open_vectors(vectors, identities, master))
    for n_, (threshold, nodes, used) in enumerate([(2, [1, 2, 3], [1, 3]), (3, [1, 2, 3, 4, 5], [2, 4, 5])]):
        vectors.extend(_dkg_vectors(n_, threshold, nodes, used, identities[0]))
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; the suite is defined in specs/ibe.md section 4",
        "generated_by": f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed, seeds {SEED}...)",
        "description": ("BF-IBE on BLS12-381, one vector per step of one role (specs/ibe.md 4.8): the pairing "
                        "(specs/bls12_381.md 7), setup, extract, encapsulate and decapsulate with every "
                        "intermediate, the hybrid envelope and its opening, and the distributed PKG (deal, combine-dealings, "
                        "node-secret, extract-share, combine-key-shares). Every random_bytes call is in 'draws'; "
                        "scalars are 32-byte big-endian hex; invalid vectors name the spec's error."),
        "notes": NOTES,
        "vectors": vectors,
    }


def _hybrid_open_vectors(vectors, identities, master) -> list[dict]:
    from protocols.primitives import cbor
    out = []
    for v in [x for x in vectors if x["operation"] == "hybrid"]:
        base = {k: v[k] for k in ("identity", "d_id", "epoch", "aad", "envelope")}
        out.append(_vector(v["name"].replace("hybrid", "hybrid-open"), "hybrid-open", base))
    v = vectors[-1]  # hybrid-1
    base = {k: v[k] for k in ("identity", "d_id", "epoch", "aad", "envelope")}
    env = bytes.fromhex(v["envelope"])
    message = cbor.decode(env)
    other_suite = cbor.encode({**message, 2: "bf-rfc5091"})
    other = identities[0]
    cases = [
        ("truncated", {**base, "envelope": env[:-1].hex()}, ["Malformed", "Truncated"], "DecodeError"),
        ("trailing-byte", {**base, "envelope": (env + b"\x00").hex()}, ["Malformed", "TrailingBytes"], "DecodeError"),
        ("wrong-suite", {**base, "envelope": other_suite.hex()}, ["WrongSuite"], "ParameterError"),
        ("wrong-epoch", {**base, "epoch": v["epoch"] + 1}, ["WrongEpoch"], "StateError"),
        ("wrong-identity", {**base, "identity": other.hex(), "d_id": bf.extract(master, other).to_bytes().hex()},
         ["WrongIdentity"], "VerificationError"),
        ("tampered-ciphertext", {**base, "envelope": _flip(env, len(env) - 1).hex()}, ["TamperedEnvelope"],
         "VerificationError"),
        ("other-aad", {**base, "aad": (bytes.fromhex(v["aad"]) + b"x").hex()}, ["TamperedEnvelope"],
         "VerificationError"),
    ]
    for label, inputs, flags, error in cases:
        out.append(_vector(f"hybrid-open-invalid-{label}", "hybrid-open", inputs, "invalid", flags, error))
    return out


def _dkg_vectors(n_: int, threshold: int, nodes: list[int], used: list[int], identity: bytes) -> list[dict]:
    seed = SEED + f"dkg-{n_}"
    context = (SEED + f"dkg-{n_}/session").encode()
    rec = _Recorder(seed)
    dealings, out = [], []
    for j in nodes:
        start = len(rec.draws)
        labels = [f"a_{{{j},{k}}}" for k in range(threshold)] + [f"k_{j}"]
        before = len(rec.draws)
        d = bf.deal(j, threshold, nodes, rec, context)
        # name the draws after the fact: one 32-byte call per attempt, rejected attempts keep the name
        coeffs_and_k = _name_scalar_draws(rec.draws[before:], labels)
        dealings.append(d)
        draws = rec.draws[start:]
        out.append(_vector(f"dkg-{n_}-deal-{j}", "deal", {
            "dkg_seed": seed, "dealer": j, "threshold": threshold, "nodes": nodes, "context": context.hex(),
            "draws": draws, "coefficients": [scalar_hex(a) for a in coeffs_and_k[:-1]],
            "k": scalar_hex(coeffs_and_k[-1])}))
    ctx = context.hex()
    public = _dealings_json(dealings, threshold, nodes, context)
    out.append(_vector(f"dkg-{n_}-combine-dealings", "combine-dealings",
                       {"threshold": threshold, "nodes": nodes, "context": ctx, "dealings": public}))
    key = bf.combine_dealings(dealings, threshold, nodes, context)
    secrets = {}
    for i in nodes:
        v = _vector(f"dkg-{n_}-node-secret-{i}", "node-secret",
                    {"node": i, "dealings": _dealings_json(dealings, threshold, nodes, context, with_shares_for=i)})
        secrets[i] = int(v["s_i"], 16)
        out.append(v)
    shares = {}
    for i in used:
        v = _vector(f"dkg-{n_}-extract-share-{i}", "extract-share", {"node": i, "s_i": scalar_hex(secrets[i]),
                                                                     "identity": identity.hex()})
        shares[str(i)] = v["d_i"]
        out.append(v)
    vks = {str(i): key.verification_keys[i].to_bytes().hex() for i in nodes}
    base = {"threshold": threshold, "identity": identity.hex(), "p_pub": key.params.to_bytes().hex(),
            "verification_keys": vks}
    out.append(_vector(f"dkg-{n_}-combine-key-shares", "combine-key-shares", {**base, "key_shares": shares}))
    if n_ == 0:
        out.extend(_dkg_invalid(n_, threshold, nodes, context, dealings, base, shares))
    return out


def _name_scalar_draws(draws: list[dict], labels: list[str]) -> list[int]:
    """Name each 32-byte call after the scalar it is for (RandomScalar / RandomBelow(r) rejection, 4.5.1)."""
    values, index = [], 0
    for n, label in enumerate(labels):
        nonzero = n == 0 or n == len(labels) - 1
        while True:
            draws[index]["name"] = label
            x = int(draws[index]["hex"], 16) & ((1 << 255) - 1)
            index += 1
            if nonzero and x < R - 1:
                values.append(x + 1)
                break
            if not nonzero and x < R:
                values.append(x)
                break
    return values


def _dkg_invalid(n_, threshold, nodes, context, dealings, base, shares) -> list[dict]:
    out = []
    ctx = context.hex()
    public = _dealings_json(dealings, threshold, nodes, context)
    missing = [dict(d) for d in public]
    del missing[1]["R"], missing[1]["z"]
    out.append(_vector(f"dkg-{n_}-combine-dealings-invalid-missing-pop", "combine-dealings",
                       {"threshold": threshold, "nodes": nodes, "context": ctx, "dealings": missing},
                       "invalid", ["MissingProofOfPossession"], "VerificationError",
                       "dealer 2's dealing carries no proof of possession"))
    tampered = [dict(d) for d in public]
    tampered[2]["z"] = scalar_hex((int(tampered[2]["z"], 16) + 1) % R)
    out.append(_vector(f"dkg-{n_}-combine-dealings-invalid-tampered-z", "combine-dealings",
                       {"threshold": threshold, "nodes": nodes, "context": ctx, "dealings": tampered},
                       "invalid", ["BadProofOfPossession"], "VerificationError", "dealer 3's z plus one"))
    out.append(_vector(f"dkg-{n_}-combine-dealings-invalid-other-context", "combine-dealings",
                       {"threshold": threshold, "nodes": nodes, "context": (context + b"x").hex(),
                        "dealings": public}, "invalid", ["BadProofOfPossession"], "VerificationError",
                       "the proofs were made for another context"))
    off = [dict(d) for d in public]
    off[0]["commitments"] = [_off_subgroup_g2().hex()] + off[0]["commitments"][1:]
    out.append(_vector(f"dkg-{n_}-combine-dealings-invalid-commitment-wrong-subgroup", "combine-dealings",
                       {"threshold": threshold, "nodes": nodes, "context": ctx, "dealings": off},
                       "invalid", ["WrongSubgroup"], "DecodeError", "dealer 1's C_0 is outside G2"))
    node = nodes[0]
    dealt = _dealings_json(dealings, threshold, nodes, context, with_shares_for=node)
    dealt[1]["shares"] = {str(node): scalar_hex((int(dealt[1]["shares"][str(node)], 16) + 1) % R)}
    out.append(_vector(f"dkg-{n_}-node-secret-invalid-bad-dealt-share", "node-secret",
                       {"node": node, "dealings": dealt}, "invalid", ["BadDealtShare"], "VerificationError",
                       "dealer 2's share for node 1 plus one"))
    first = sorted(shares, key=int)[0]
    bad = dict(shares)
    bad[first] = (G1.from_bytes(bytes.fromhex(shares[first])) + G1.generator()).to_bytes().hex()
    out.append(_vector(f"dkg-{n_}-combine-key-shares-invalid-bad-share", "combine-key-shares",
                       {**base, "key_shares": bad}, "invalid", ["BadKeyShare"], "VerificationError",
                       f"node {first}'s key share plus g1"))
    out.append(_vector(f"dkg-{n_}-combine-key-shares-invalid-too-few", "combine-key-shares",
                       {**base, "key_shares": {first: shares[first]}}, "invalid", ["TooFewShares"],
                       "RecoveryError"))
    return out


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
