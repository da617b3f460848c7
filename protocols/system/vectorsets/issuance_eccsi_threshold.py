"""Vector family ``issuance`` / ``usapp-eccsi-p256-threshold-v1``: ECCSI issuance split t-of-n
(specs/issuance.md sections 10.5 and 13.2; protocols/schemes/eccsi_threshold.py).

Operation ``split-enroll`` (result valid): a dealer's ceremony (10.5.1) from HMAC_DRBG(deal_seed),
its draws listed by name (the KSAK, then a_1 .. a_{t-1}); the device's check of the published node
keys; then, for the identity's identifier and the session S, every node's round values of 10.5.2
(its u_i HMAC_DRBG and outputs, U_i, the commitment input and c_i, lambda_i(0), SSK_i); one
enrollment through the real PKG and meter of specs/issuance.md sections 4 to 9 per node of S, in
increasing order, each from HMAC_DRBG(its run_seed) (challenge nonce, HPKE ikm, HPKE ikmE), with
``ThresholdEccsiNodeExtractor`` and ``threshold_eccsi_share_verifier``; the combination of 10.5.3
(PVT, HS, SSK); and a signature with the combined key, j from HMAC_DRBG(sign_seed), verified with
the KPAK and the identifier alone.

Operation ``refuse`` (result invalid): the published keys, the session and the round values of
the valid vector, one of them changed, given to one step (``target``): ``check-publics``
(10.5.1), ``combine-pvt`` (a node's check of the reveals, 10.5.2), ``verify-response`` (the
device's check of one node's answer, 10.5.3), ``combine`` (10.5.3), ``session`` (10.5.2) or
``share-verifier`` (the device's check of one node's delivery, 10.5.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols import issuance as iss
from protocols import issuance_eccsi as ie
from protocols.errors import VectorMismatchError
from protocols.primitives import hashing
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_range
from protocols.schemes import eccsi
from protocols.schemes import eccsi_threshold as et
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets import issuance_eccsi as single
from protocols.system.vectorsets._fields import (
    MAX_PARTIES,
    bytes_field,
    dispatch,
    expect,
    expect_outputs,
    expect_refusal,
    field,
    list_field,
    recompute,
    small_int_field,
    str_field,
)
from protocols.system.vectorsets.rfc6507 import Recorder

PROTOCOL = "issuance"
SUITE = ie.THRESHOLD_SUITE
FILE = "issuance_eccsi_threshold.json"
SEED = "usapp-vectors/eccsi-threshold/"
META = single.META
INPUTS = (*single.DEVICE_INPUTS, "deal_seed", "threshold", "nodes", "session", "enrollments", "sign_seed", "message")
NODE_INPUTS = ("node", "run_seed")

NOTES = {
    "LyingNode": "a node's answer SSK_i changed by one: [SSK_i]G != [lambda_i]KPAK_i + [HS]U_i, the node named",
    "Commitment": "a node's U_i that does not match its commitment c_i",
    "InvalidPoint": "a point off P-256",
    "Truncated": "a field one octet short",
    "Missing": "the answer or U_i of one node of the session missing",
    "WrongSession": "a session that is not exactly t distinct nodes of the KMS",
    "ForgedNodeKey": "a published node key KPAK_i that does not lie on the polynomial of the others",
}


def _int_list(v: Mapping[str, Any], name: str) -> list[int]:
    return [small_int_field({name: x}, name, low=1, high=et.MAX_NODES)
            for x in list_field(v, name, max_items=MAX_PARTIES)]


def _point_map(v: Mapping[str, Any], name: str) -> dict[int, bytes]:
    return _hex_map(v, name, eccsi.POINT_BYTES + 1)


def _deal(seed: str, threshold: int, nodes: list[int]) -> tuple[et.ThresholdKms, dict[int, et.NodeKey], list]:
    rng = Recorder(seed)
    rng.label = "KSAK"

    class Labelled:
        """Names the draws: the first is the KSAK's, the next t - 1 are a_1 .. a_{t-1}."""

        def random_bytes(self, n: int) -> bytes:
            rng.label = "KSAK" if not rng.draws else f"a_{len(rng.draws)}"
            return rng.random_bytes(n)

    kms, keys = et.deal(Labelled(), threshold, nodes)
    return kms, keys, rng.draws


def _u_fields(key: et.NodeKey, ID: bytes, S: tuple[int, ...]) -> dict:
    """Spec 10.5.2 step 1 for node i: the DRBG's personalization and outputs, u_i, U_i, c_i."""
    personalization = et.U_PERSONALIZATION + bytes([len(S)]) + bytes(S)
    drbg = HmacDrbg("SHA-256")
    drbg.instantiate(eccsi.I2OSP_N(key.share), ID, personalization)
    tap = single.OutputTap(drbg)
    outputs = tap.outputs
    u = random_range(tap, 1, eccsi.q)
    U = eccsi.encode_point(eccsi.base_multiply(u))
    commit_input = et.COMMIT_LABEL + bytes([key.node]) + len(ID).to_bytes(2, "big") + ID + U
    return {"u_personalization": personalization.hex(), "u_drbg_outputs": outputs, "u": eccsi.I2OSP_N(u).hex(),
            "U": U.hex(), "commitment_input": commit_input.hex(),
            "commitment": hashing.sha256(commit_input).digest().hex()}


def split_outputs(v: Mapping[str, Any]) -> dict:
    """Every output of a ``split-enroll`` vector, recomputed from its inputs."""
    d = single.device(v, SUITE)
    threshold = small_int_field(v, "threshold", low=1, high=MAX_PARTIES)
    nodes = _int_list(v, "nodes")
    kms, keys, deal_draws = _deal(str_field(v, "deal_seed", max_len=256), threshold, nodes)
    et.check_publics(kms)
    S = et.session(kms, _int_list(v, "session"))
    if _int_list(v, "session") != list(S):
        raise VectorMismatchError("field 'session': the nodes in increasing order", field="session")
    items = list_field(v, "enrollments", max_items=MAX_PARTIES)
    if any(not isinstance(item, dict) for item in items) or \
            [small_int_field(item, "node", low=1, high=et.MAX_NODES) for item in items] != list(S):
        raise VectorMismatchError("field 'enrollments': one per node of the session, in order", field="enrollments")
    identity = iss.Identity(d["namespace"], d["serial"], d["role"], d["epoch"]).to_bytes()
    ID = ie.identifier_of(identity).encode()

    def rounds(ID_: bytes, session: tuple[int, ...]) -> tuple[dict, dict]:
        made = {i: et.commit(keys[i], kms, ID_, session) for i in session}
        return {i: made[i][1] for i in made}, {i: made[i][0] for i in made}

    commitments, reveals = rounds(ID, S)
    per_node, shares = [], {}
    for item, node in zip(items, S):
        rng = Recorder(str_field(item, "run_seed", max_len=256))
        extractor = ie.ThresholdEccsiNodeExtractor(keys[node], kms, S, rounds)
        run, issued = single.enrollment(d, extractor, ie.threshold_eccsi_share_verifier(kms, S, node), rng)
        answer = et.respond(keys[node], kms, ID, S, commitments, reveals)
        u = _u_fields(keys[node], ID, S)
        if u["U"] != reveals[node].hex() or u["commitment"] != commitments[node].hex():
            raise VectorMismatchError(f"node {node}: U_i or c_i differ from the traced step", field="enrollments")
        per_node.append({**u, "lambda": eccsi.I2OSP_N(et.lagrange(S, node)).hex(), "SSK_i": answer.hex(),
                         "share": issued.key.hex(), "draws": rng.draws, **run})
        shares[node] = issued
    key = ie.combine_eccsi_shares(kms, S, shares)
    sign_rng = Recorder(str_field(v, "sign_seed", max_len=256))
    sign_rng.label = "j"
    M = bytes_field(v, "message", max_len=4096)
    signature = eccsi.Sign(key, M, sign_rng)
    signed = single.signature_fields(key, M, 1 + int.from_bytes(bytes.fromhex(sign_rng.draws[-1]["hex"]), "big"))
    if signed["signature"] != signature.hex():
        raise VectorMismatchError("field 'signing': Sign and its trace differ", field="signing")
    check = eccsi.verify_trace(kms.KPAK, ID, M, signature)
    return {
        "deal_draws": deal_draws,
        "node_shares": {str(i): eccsi.I2OSP_N(keys[i].share).hex() for i in nodes},
        "KPAK": kms.KPAK.hex(), "node_keys": {str(i): kms.publics[i].hex() for i in nodes},
        "uri": ie.identifier_of(identity).uri, "identifier": ID.hex(),
        "per_node": per_node,
        "PVT": key.PVT.hex(), "HS_input": eccsi.hs_input(kms.KPAK, ID, key.PVT).hex(), "HS": key.HS.hex(),
        "SSK": eccsi.I2OSP_N(key.SSK).hex(),
        "sign_draws": sign_rng.draws, "signing": signed, "verify_Y": check.Y.hex(), "verify_J": check.J.hex(),
    }


def _split_enroll(v: Mapping[str, Any]) -> None:
    if v.get("result", "valid") != "valid":
        raise VectorMismatchError("field 'result': split-enroll vectors are valid", field="result")
    outputs = recompute("result", lambda: split_outputs(v))
    for index, (item, computed) in enumerate(zip(list_field(v, "enrollments"), outputs.pop("per_node"))):
        for key in item:
            if key not in NODE_INPUTS and key not in computed:
                raise VectorMismatchError(f"enrollments[{index}].{key} is neither an input nor an output")
        for name, value in computed.items():
            expect(f"enrollments[{index}].{name}", field(item, name), value)
    expect_outputs(v, outputs, (*META, *INPUTS))


# ---------------------------------------------------------------------------
# refuse
# ---------------------------------------------------------------------------

REFUSE_INPUTS = ("target", "threshold", "nodes", "KPAK", "node_keys", "session", "identifier", "commitments",
                 "reveals", "answers", "node", "identity", "share")


def _public_kms(v: Mapping[str, Any]) -> et.ThresholdKms:
    return et.ThresholdKms(small_int_field(v, "threshold", low=1, high=MAX_PARTIES), tuple(_int_list(v, "nodes")),
                           bytes_field(v, "KPAK", max_len=eccsi.POINT_BYTES + 1), _point_map(v, "node_keys"))


def _hex_map(v: Mapping[str, Any], name: str, max_len: int) -> dict[int, bytes]:
    value = field(v, name)
    if not isinstance(value, dict) or len(value) > MAX_PARTIES or \
            not all(k.isdigit() and 1 <= int(k) <= et.MAX_NODES for k in value):
        raise VectorMismatchError(f"field {name!r} must map node numbers to hex strings", field=name)
    return {int(k): bytes_field(value, k, max_len=max_len) for k in value}


def _answers(v: Mapping[str, Any]) -> dict[int, bytes]:
    return _hex_map(v, "answers", eccsi.N + 1)


def _refusal(v: Mapping[str, Any]) -> None:
    for key in v:
        if key not in (*META, *REFUSE_INPUTS):
            raise VectorMismatchError(f"field {key!r} is not an input of refuse", field=key)
    if v.get("result") != "invalid":
        raise VectorMismatchError("field 'result': refuse vectors are invalid", field="result")
    kms = _public_kms(v)
    target = str_field(v, "target", max_len=32)
    S = _int_list(v, "session")
    if target == "check-publics":
        expect_refusal(v, lambda: et.check_publics(kms))
        return
    if target == "session":
        expect_refusal(v, lambda: et.session(kms, S))
        return
    if target == "share-verifier":
        identity = str_field(v, "identity", max_len=256).encode("ascii", "replace")
        share = bytes_field(v, "share", max_len=eccsi.N + eccsi.POINT_BYTES * MAX_PARTIES + 1)
        node = small_int_field(v, "node", low=1, high=et.MAX_NODES)
        expect_refusal(v, lambda: ie.threshold_eccsi_share_verifier(kms, S, node)(identity, share))
        return
    ID = bytes_field(v, "identifier", max_len=eccsi.MAX_ID_BYTES)
    reveals = _point_map(v, "reveals")
    if target == "combine-pvt":
        commitments = _hex_map(v, "commitments", 33)
        expect_refusal(v, lambda: et.combine_pvt(kms, ID, S, commitments, reveals))
    elif target == "verify-response":
        node = small_int_field(v, "node", low=1, high=et.MAX_NODES)
        answers = _answers(v)
        expect_refusal(v, lambda: et.verify_response(kms, ID, S, reveals, node, answers.get(node, b"")))
    elif target == "combine":
        expect_refusal(v, lambda: et.combine(kms, ID, S, reveals, _answers(v)))
    else:
        raise VectorMismatchError(f"field 'target': unknown target {target!r}", field="target")


OPERATIONS = {"split-enroll": _split_enroll, "refuse": _refusal}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def _case(name: str, serial: str, threshold: int, nodes: list[int], session: list[int], message: bytes) -> dict:
    vector = single.device_inputs(name, serial, "ed25519-under-root", SUITE)
    vector.update({"operation": "split-enroll", "deal_seed": SEED + name + "/deal", "threshold": threshold,
                   "nodes": nodes, "session": session, "sign_seed": SEED + name + "/sign",
                   "message": message.hex(), "result": "valid",
                   "enrollments": [{"node": i, "run_seed": f"{SEED}{name}/node-{i}"} for i in session]})
    outputs = split_outputs(vector)
    for item, computed in zip(vector["enrollments"], outputs.pop("per_node")):
        item.update(computed)
    vector.update(outputs)
    return vector


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


def _negatives(base: dict) -> list[dict]:
    S = base["session"]
    per = {item["node"]: item for item in base["enrollments"]}
    reveals = {str(i): per[i]["U"] for i in S}
    commitments = {str(i): per[i]["commitment"] for i in S}
    answers = {str(i): per[i]["SSK_i"] for i in S}
    public = {"threshold": base["threshold"], "nodes": base["nodes"], "KPAK": base["KPAK"],
              "node_keys": base["node_keys"], "session": S}
    rounds = {**public, "identifier": base["identifier"]}
    a, b = S[0], S[1]
    lying = dict(answers)
    lying[str(b)] = eccsi.I2OSP_N((int(answers[str(b)], 16) + 1) % eccsi.q).hex()
    swapped = dict(reveals)
    swapped[str(b)] = eccsi.encode_point(eccsi.G()).hex()
    off = dict(reveals)
    off[str(a)] = _flip(bytes.fromhex(reveals[str(a)]), 64).hex()
    forged = dict(base["node_keys"])
    last = str(base["nodes"][-1])
    forged[last] = base["node_keys"][str(base["nodes"][0])]
    identity = per[a]["identity"]
    share = bytes.fromhex(per[a]["share"])
    lying_share = eccsi.I2OSP_N((int.from_bytes(share[:32], "big") + 1) % eccsi.q) + share[32:]
    missing = {k: x for k, x in answers.items() if k != str(b)}
    cases: list[tuple[str, dict, list[str], str, str]] = [
        ("answer-lies", {"target": "verify-response", **rounds, "reveals": reveals, "answers": lying, "node": b},
         ["LyingNode"], "VerificationError", f"node {b}'s SSK_i + 1"),
        ("combine-with-a-lying-node", {"target": "combine", **rounds, "reveals": reveals, "answers": lying},
         ["LyingNode"], "VerificationError", f"node {b}'s SSK_i + 1, named on combination"),
        ("answer-truncated", {"target": "verify-response", **rounds, "reveals": reveals, "node": a,
                              "answers": {**answers, str(a): answers[str(a)][:-2]}}, ["Truncated"], "DecodeError",
         "31 octets"),
        ("answer-missing", {"target": "combine", **rounds, "reveals": reveals, "answers": missing}, ["Missing"],
         "RecoveryError", f"no answer from node {b}"),
        ("reveal-not-committed", {"target": "combine-pvt", **rounds, "reveals": swapped,
                                  "commitments": commitments}, ["Commitment"], "VerificationError",
         f"node {b}'s U_i replaced by G"),
        ("reveal-off-curve", {"target": "combine-pvt", **rounds, "reveals": off, "commitments": commitments},
         ["InvalidPoint"], "DecodeError", f"the last octet of node {a}'s U_i XOR 1"),
        ("session-too-small", {"target": "session", **public, "session": S[:-1]}, ["WrongSession"],
         "ParameterError", "t - 1 nodes"),
        ("session-unknown-node", {"target": "session", **public, "session": [*S[:-1], 200]}, ["WrongSession"],
         "ParameterError", "node 200 is not a node of the KMS"),
        ("node-key-forged", {"target": "check-publics", **public, "node_keys": forged}, ["ForgedNodeKey"],
         "VerificationError", f"KPAK_{last} replaced by KPAK_{base['nodes'][0]}"),
        ("delivery-lies", {"target": "share-verifier", **public, "identity": identity, "node": a,
                           "share": lying_share.hex()}, ["LyingNode"], "VerificationError",
         f"node {a}'s delivered SSK_i + 1"),
        ("delivery-truncated", {"target": "share-verifier", **public, "identity": identity, "node": a,
                                "share": share[:-1].hex()}, ["Truncated"], "DecodeError",
         f"{len(share) - 1} octets"),
    ]
    out = []
    for label, inputs, flags, error, comment in cases:
        vector = {"name": f"refuse-{label}", "operation": "refuse", **inputs, "result": "invalid", "flags": flags,
                  "error": error, "comment": comment}
        _refusal(vector)
        out.append(vector)
    return out


def build() -> dict:
    runs = [_case("3-of-5-session-1-3-5", "SM-000123", 3, [1, 2, 3, 4, 5], [1, 3, 5],
                  b"billing record 2026-12 kWh=1234"),
            _case("2-of-3-session-2-3", "SM-004567", 2, [1, 2, 3], [2, 3], b"")]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("generated by the USaPP reference implementation; specs/issuance.md sections 4 to 9, 10.4.2, "
                   "10.5 and 13.2 (RFC 6507 on P-256)"),
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed: the deal from {SEED}<name>/deal, "
                         f"node i's enrollment from {SEED}<name>/node-<i>, j from {SEED}<name>/sign; certificates "
                         "and the device key as vectors/issuance.json)"),
        "description": (
            "Operation 'split-enroll': ECCSI issuance by t of n nodes. Chosen: the device inputs of "
            "vectors/issuance.json (epoch 683 = 2026-12), deal_seed, threshold, nodes, session, each node's "
            "run_seed, sign_seed, message. Deal draws (32 octets each, RandomRange(1, q) then RandomBelow(q)): "
            "KSAK, a_1 .. a_{t-1}. Per node of the session (in 'enrollments'): its u_i HMAC_DRBG "
            "personalization and outputs, u_i, U_i, the commitment input and c_i, lambda_i(0), SSK_i, the "
            "delivered share (SSK_i || U_j of every j of S), the enrollment draws, messages and log. Then PVT, "
            "HS input, HS and the combined SSK, and a signature (j from HMAC_DRBG(sign_seed)) with its "
            "intermediates. Operation 'refuse' (invalid): the public keys, session and round values with one "
            "change, given to the step 'target' names; it MUST raise 'error'."),
        "parameters": {"eccsi_curve": "P-256", "hash": "SHA-256", "u_personalization_prefix":
                       et.U_PERSONALIZATION.decode("ascii"), "commit_label": et.COMMIT_LABEL.decode("ascii")},
        "notes": NOTES,
        "vectors": [*runs, *_negatives(runs[0])],
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
