"""Vector family ``bf-bls12381``: the project's BF-IBE suite on BLS12-381
(specs/ibe.md section 4), generated from fixed HMAC_DRBG seeds.

Operations: ``extract`` (Q_id, d_id from a master secret), ``encapsulate``
(key and encapsulation from a seed, then decapsulation), ``hybrid`` (an
envelope of protocols.schemes.ibe_hybrid) and ``threshold`` (a DKG from a
seed and a context, every dealer's proof of possession, every node's
verification key, key shares and the combined key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.errors import VectorMismatchError
from protocols.primitives.bls12_381 import G1
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import bf_bls12 as bf
from protocols.schemes import ibe_hybrid as hy
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect,
    field,
    hexint,
    int_field,
    small_int_field,
    str_field,
)

PROTOCOL = "bf-ibe"
SUITE = bf.SUITE
FILE = "bf_bls12.json"
SEED = "usapp-vectors/bf-bls12/"


def _extract(v: Mapping[str, Any]) -> None:
    master = bf.MasterKey(int_field(v, "master_secret"))
    identity = bytes_field(v, "identity")
    expect("p_pub", bytes_field(v, "p_pub").hex(), master.params.to_bytes().hex())
    expect("q_id", bytes_field(v, "q_id").hex(), bf.identity_point(identity).to_bytes().hex())
    expect("d_id", bytes_field(v, "d_id").hex(), bf.extract(master, identity).to_bytes().hex())


def _encapsulate(v: Mapping[str, Any]) -> None:
    params = bf.PublicParams.from_bytes(bytes_field(v, "p_pub"))
    identity = bytes_field(v, "identity")
    key, enc = bf.encapsulate(params, identity, HmacDrbg.from_seed(str_field(v, "seed")))
    expect("key", bytes_field(v, "key").hex(), key.hex())
    expect("enc", bytes_field(v, "enc").hex(), enc.hex())
    private = bf.PrivateKey.from_bytes(identity, bytes_field(v, "d_id"))
    expect("key", bytes_field(v, "key").hex(), bf.decapsulate(private, enc).hex())


def _hybrid(v: Mapping[str, Any]) -> None:
    params = bf.PublicParams.from_bytes(bytes_field(v, "p_pub"))
    identity = bytes_field(v, "identity")
    epoch = small_int_field(v, "epoch")
    plaintext, aad = bytes_field(v, "plaintext"), bytes_field(v, "aad")
    envelope = hy.seal(hy.Bls12Sender(params), identity, epoch, plaintext, aad,
                       HmacDrbg.from_seed(str_field(v, "seed")))
    expect("envelope", bytes_field(v, "envelope").hex(), envelope.hex())
    recipient = hy.Bls12Recipient(bf.PrivateKey.from_bytes(identity, bytes_field(v, "d_id")))
    expect("plaintext", plaintext.hex(), hy.open_envelope(recipient, envelope, epoch, aad).hex())


def _dkg(seed: str, threshold: int, nodes: list[int], context: bytes):
    rng = HmacDrbg.from_seed(seed)
    dealings = [bf.deal(i, threshold, nodes, rng, context) for i in nodes]
    return dealings, bf.combine_dealings(dealings, threshold, nodes, context)


def _threshold_json(seed: str, threshold: int, nodes: list[int], identity: bytes, used: list[int],
                    context: bytes) -> dict:
    dealings, key = _dkg(seed, threshold, nodes, context)
    shares = {i: bf.extract_share(bf.node_secret(dealings, i), identity) for i in used}
    combined = bf.combine_key_shares(key, identity, shares)
    return {
        "p_pub": key.params.to_bytes().hex(),
        "proofs_of_possession": {str(d.dealer): {"R": d.proof_commitment.to_bytes().hex(),
                                                 "z": hexint(d.proof_response)} for d in dealings},
        "verification_keys": {str(i): key.verification_keys[i].to_bytes().hex() for i in nodes},
        "key_shares": {str(i): shares[i].to_bytes().hex() for i in used},
        "d_id": combined.to_bytes().hex(),
    }


def _threshold(v: Mapping[str, Any]) -> None:
    nodes = field(v, "nodes")
    used = field(v, "used")
    if not all(isinstance(x, list) and all(type(i) is int for i in x) for x in (nodes, used)):
        raise VectorMismatchError("fields 'nodes' and 'used' must be lists of node numbers")
    computed = _threshold_json(str_field(v, "seed"), small_int_field(v, "threshold"), nodes,
                               bytes_field(v, "identity"), used, bytes_field(v, "context"))
    for name, value in computed.items():
        expect(name, field(v, name), value)
    G1.from_bytes(bytes.fromhex(computed["d_id"]))


OPERATIONS = {"extract": _extract, "encapsulate": _encapsulate, "hybrid": _hybrid, "threshold": _threshold}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


def build() -> dict:
    master = bf.setup(HmacDrbg.from_seed(SEED + "master"))
    p_pub = master.params.to_bytes().hex()
    vectors: list[dict[str, Any]] = []
    identities = [b"usapp-id-v1|serial=SM-0001|role=meter|epoch=1", b"usapp-id-v1|serial=SM-0001|role=meter|epoch=2",
                  b"\x00", bytes(range(256))]
    for i, identity in enumerate(identities):
        key = bf.extract(master, identity)
        vectors.append({"name": f"extract-{i}", "operation": "extract", "master_secret": hexint(master.s),
                        "identity": identity.hex(), "p_pub": p_pub,
                        "q_id": bf.identity_point(identity).to_bytes().hex(), "d_id": key.to_bytes().hex()})
        seed = SEED + f"encapsulate-{i}"
        shared, enc = bf.encapsulate(master.params, identity, HmacDrbg.from_seed(seed))
        vectors.append({"name": f"encapsulate-{i}", "operation": "encapsulate", "p_pub": p_pub,
                        "identity": identity.hex(), "d_id": key.to_bytes().hex(), "seed": seed,
                        "key": shared.hex(), "enc": enc.hex()})
    for i, (plaintext, aad, epoch) in enumerate([(b"", b"", 0), (b"disconnect meter SM-0001 at 12:00", b"hdr", 1)]):
        identity = identities[min(epoch, 1)]
        seed = SEED + f"hybrid-{i}"
        envelope = hy.seal(hy.Bls12Sender(master.params), identity, epoch, plaintext, aad, HmacDrbg.from_seed(seed))
        vectors.append({"name": f"hybrid-{i}", "operation": "hybrid", "p_pub": p_pub, "identity": identity.hex(),
                        "d_id": bf.extract(master, identity).to_bytes().hex(), "epoch": epoch,
                        "plaintext": plaintext.hex(), "aad": aad.hex(), "seed": seed, "envelope": envelope.hex()})
    for i, (threshold, nodes, used) in enumerate([(2, [1, 2, 3], [1, 3]), (3, [1, 2, 3, 4, 5], [2, 4, 5])]):
        seed = SEED + f"dkg-{i}"
        context = (SEED + f"dkg-{i}/session").encode()
        identity = identities[0]
        vectors.append({"name": f"threshold-{i}", "operation": "threshold", "seed": seed, "context": context.hex(),
                        "threshold": threshold, "nodes": nodes, "used": used, "identity": identity.hex(),
                        **_threshold_json(seed, threshold, nodes, identity, used, context)})
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; the suite is defined in specs/ibe.md section 4",
        "generated_by": f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed, seeds {SEED}...)",
        "description": ("BF-IBE on BLS12-381: Q_id = hash_to_g1(id), d_id = s Q_id, an FO-style KEM, the hybrid "
                        "envelope, and threshold extraction from a joint-Feldman DKG. Points are compressed "
                        "(ZCash format); DKG dealers deal in node order from one DRBG (each its coefficients "
                        "a_0..a_{t-1}, then its proof-of-possession nonce k; specs/ibe.md 4.5), with the "
                        "context (hex) bound into every proof; proofs_of_possession lists each dealer's R "
                        "(compressed G2) and z (hex)."),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
