"""ECCSI key issuance split t-of-n (specs/issuance.md section 10.5).

RFC 6507 5.1.1 issues SSK = KSAK + HS * v mod q with PVT = [v]G: linear in the KSAK and in v.
Here no node holds the KSAK or v:

* the KSAK is Shamir-shared (KSAK_i = f(i), f(0) = KSAK, over Z_q); KPAK = [KSAK]G and every
  node's KPAK_i = [KSAK_i]G are public (:func:`deal`, :func:`check_publics`);
* for an identifier ID and a session S of exactly t nodes, node i derives u_i deterministically
  (HMAC_DRBG of its share, ID and S), commits to U_i = [u_i]G, then reveals it (two rounds, so
  that no node chooses its U_i after seeing the others'); PVT = sum of the U_i, v = sum of the
  u_i, which no node knows (:func:`commit`, :func:`combine_pvt`);
* node i answers SSK_i = lambda_i KSAK_i + HS u_i mod q (:func:`respond`); the device checks
  [SSK_i]G = [lambda_i]KPAK_i + [HS]U_i for each node (:func:`verify_response`), adds the
  SSK_i and runs RFC 6507 5.1.2 ValidateSsk on the sum (:func:`combine`).

SAKKE's RSK [(ID + z)^-1]P is not linear in z and is not split here (spec 10.5.4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from Crypto.PublicKey.ECC import EccPoint

from protocols.errors import DecodeError, ParameterError, RecoveryError, VerificationError
from protocols.primitives import hashing, shamir
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, random_range
from protocols.schemes import eccsi

__all__ = [
    "MAX_NODES", "NodeKey", "ThresholdKms", "check_publics", "combine", "combine_pvt", "commit", "deal",
    "lagrange", "respond", "session", "verify_response",
]

MAX_NODES = 255
"""Node numbers are 1 to 255 (one octet in the session encoding)."""
U_PERSONALIZATION = b"usapp-eccsi-threshold-u/v1"
COMMIT_LABEL = b"usapp-eccsi-threshold-commit/v1"
q = eccsi.q


@dataclass(frozen=True)
class ThresholdKms:
    """Spec 10.5.1: the public side: threshold t, the node numbers, the KPAK and each node's
    KPAK_i (65-octet points)."""

    threshold: int
    nodes: tuple[int, ...]
    KPAK: bytes
    publics: Mapping[int, bytes]


@dataclass(frozen=True)
class NodeKey:
    """Spec 10.5.1: node ``node``'s Shamir share KSAK_i of the KSAK (hidden from ``repr``)."""

    node: int
    share: int = field(repr=False)


def _check_nodes(nodes: object) -> tuple[int, ...]:
    if not isinstance(nodes, (list, tuple)) or not nodes:
        raise ParameterError("nodes must be a non-empty list of node numbers")
    out = tuple(nodes)
    if any(type(i) is not int or not 1 <= i <= MAX_NODES for i in out) or len(set(out)) != len(out):
        raise ParameterError(f"node numbers are distinct integers in [1, {MAX_NODES}]")
    return out


def deal(rng: RandomSource | None, threshold: int, nodes: Sequence[int]) -> tuple[ThresholdKms, dict[int, NodeKey]]:
    """Spec 10.5.1: a dealer's ceremony: KSAK = RandomRange(rng, 1, q), then shamir.split over Z_q
    (a_1 .. a_{t-1} by RandomBelow(rng, q)); the KSAK is then discarded.  A share of 0 (KPAK_i
    would be the point at infinity, probability about n/q) is a ``ParameterError``."""
    points = _check_nodes(list(nodes))
    if type(threshold) is not int or not 1 <= threshold <= len(points):
        raise ParameterError("the threshold is an integer in [1, number of nodes]")
    KSAK = random_range(rng, 1, q)
    shares = shamir.split(KSAK, threshold, points, rng, prime=q)
    if any(s.y == 0 for s in shares):
        raise ParameterError("a node's share is 0: deal again")
    publics = {s.x: eccsi.encode_point(eccsi.base_multiply(s.y)) for s in shares}
    kms = ThresholdKms(threshold, points, eccsi.encode_point(eccsi.base_multiply(KSAK)), publics)
    return kms, {s.x: NodeKey(s.x, s.y) for s in shares}


def lagrange(S: Sequence[int], node: int, at: int = 0) -> int:
    """lambda_i for interpolating at ``at`` from the points S (mod q)."""
    numerator, denominator = 1, 1
    for j in S:
        if j != node:
            numerator = numerator * (at - j) % q
            denominator = denominator * (node - j) % q
    return numerator * pow(denominator, -1, q) % q


def check_publics(kms: ThresholdKms) -> None:
    """Spec 10.5.1: the device's check of the published keys (Feldman's check in the exponent):
    the first t KPAK_i interpolate to the KPAK at 0 and to every other KPAK_j at j; each a point
    of E (``DecodeError``); else ``VerificationError``."""
    t, nodes = kms.threshold, _check_nodes(list(kms.nodes))
    if set(kms.publics) != set(nodes) or type(t) is not int or not 1 <= t <= len(nodes):
        raise ParameterError("the publics must name exactly the nodes; 1 <= t <= n")
    points = {i: eccsi.decode_point(kms.publics[i], f"KPAK_{i}") for i in nodes}
    base = nodes[:t]
    for target, expected in [(0, eccsi.check_kpak(kms.KPAK))] + [(j, points[j]) for j in nodes[t:]]:
        total = None
        for i in base:
            term = eccsi.multiply(points[i], lagrange(base, i, target))
            total = term if total is None else total + term
        if total is None or total.is_point_at_infinity() or \
                eccsi.encode_point(total) != eccsi.encode_point(expected):
            raise VerificationError(f"the node keys do not lie on one polynomial of degree t - 1 (at {target})")


def session(kms: ThresholdKms, S: Sequence[int]) -> tuple[int, ...]:
    """Spec 10.5.2: the t nodes that issue, sorted; ``ParameterError`` unless exactly t distinct
    nodes of the KMS."""
    nodes = tuple(sorted(_check_nodes(list(S))))
    if len(nodes) != kms.threshold or not set(nodes) <= set(kms.nodes):
        raise ParameterError(f"a session is exactly {kms.threshold} distinct nodes of the KMS")
    return nodes


def _u(key: NodeKey, ID: bytes, S: tuple[int, ...]) -> int:
    """Spec 10.5.2: u_i = RandomRange(drbg, 1, q) of HMAC_DRBG(entropy_input = I2OSP(KSAK_i, 32),
    nonce = ID, personalization = U_PERSONALIZATION || I2OSP(t, 1) || the node numbers, 1 octet each)."""
    drbg = HmacDrbg("SHA-256")
    drbg.instantiate(eccsi.I2OSP_N(key.share), bytes(ID), U_PERSONALIZATION + bytes([len(S)]) + bytes(S))
    return random_range(drbg, 1, q)


def _commitment(node: int, ID: bytes, U: bytes) -> bytes:
    """SHA-256(COMMIT_LABEL || I2OSP(i, 1) || I2OSP(len(ID), 2) || ID || U_i)."""
    return hashing.sha256(COMMIT_LABEL + bytes([node]) + len(ID).to_bytes(2, "big") + bytes(ID) + U).digest()


def _identifier(ID: object) -> bytes:
    if not isinstance(ID, (bytes, bytearray)) or not 1 <= len(ID) <= eccsi.MAX_ID_BYTES:
        raise ParameterError(f"ID is 1 to {eccsi.MAX_ID_BYTES} octets")
    return bytes(ID)


def commit(key: NodeKey, kms: ThresholdKms, ID: bytes, S: Sequence[int]) -> tuple[bytes, bytes]:
    """Spec 10.5.2 round 1: node i's (U_i, commitment); it sends the commitment first, U_i only
    after it holds every other node's commitment.  Deterministic in (KSAK_i, ID, S)."""
    nodes = session(kms, S)
    ID = _identifier(ID)
    if key.node not in nodes:
        raise ParameterError(f"node {key.node} is not in the session")
    U = eccsi.encode_point(eccsi.base_multiply(_u(key, ID, nodes)))
    return U, _commitment(key.node, ID, U)


def combine_pvt(kms: ThresholdKms, ID: bytes, S: Sequence[int], commitments: Mapping[int, bytes],
                reveals: Mapping[int, bytes]) -> bytes:
    """Spec 10.5.2: PVT = the sum of the U_i of the session, after checking each U_i is a point of
    E (``DecodeError``) and matches node i's commitment (``VerificationError`` naming the node)."""
    nodes = session(kms, S)
    ID = _identifier(ID)
    if set(commitments) != set(nodes) or set(reveals) != set(nodes):
        raise RecoveryError("a commitment and a U_i from every node of the session are needed")
    total = None
    for i in nodes:
        point = eccsi.decode_point(reveals[i], f"U_{i}")
        if not hashing.compare_digest(_commitment(i, ID, bytes(reveals[i])), bytes(commitments[i])):
            raise VerificationError(f"node {i}'s U_i does not match its commitment")
        total = point if total is None else total + point
    if total is None or total.is_point_at_infinity():
        raise VerificationError("the U_i sum to the point at infinity: no PVT")
    return eccsi.encode_point(total)


def respond(key: NodeKey, kms: ThresholdKms, ID: bytes, S: Sequence[int], commitments: Mapping[int, bytes],
            reveals: Mapping[int, bytes]) -> bytes:
    """Spec 10.5.2 round 2: node i checks the reveals (its own U_i among them), computes PVT and
    HS = hash(G || KPAK || ID || PVT), and answers SSK_i = lambda_i KSAK_i + HS u_i mod q (32 octets)."""
    nodes = session(kms, S)
    ID = _identifier(ID)
    u = _u(key, ID, nodes)
    if key.node not in nodes or bytes(reveals.get(key.node, b"")) != eccsi.encode_point(eccsi.base_multiply(u)):
        raise VerificationError(f"node {key.node}'s own U_i is not the one revealed")
    PVT = combine_pvt(kms, ID, nodes, commitments, reveals)
    HS = int.from_bytes(eccsi.compute_HS(kms.KPAK, ID, PVT), "big")
    return eccsi.I2OSP_N((lagrange(nodes, key.node) * key.share + HS * u) % q)


def verify_response(kms: ThresholdKms, ID: bytes, S: Sequence[int], reveals: Mapping[int, bytes], node: int,
                    response: bytes) -> int:
    """Spec 10.5.3: the device's check of node i's answer: a U_i from every node of the session
    (``RecoveryError``), 32 octets (``DecodeError``) and [SSK_i]G = [lambda_i]KPAK_i + [HS]U_i
    (``VerificationError`` naming the node)."""
    nodes = session(kms, S)
    if node not in nodes or node not in kms.publics:
        raise ParameterError(f"node {node} is not in the session, or has no published key")
    if not isinstance(reveals, Mapping) or set(reveals) != set(nodes):
        raise RecoveryError("a U_i from every node of the session is needed")
    if not isinstance(response, (bytes, bytearray)) or len(response) != eccsi.N:
        raise DecodeError(f"node {node}'s answer must be {eccsi.N} octets")
    PVT = eccsi.encode_point(_sum_points([eccsi.decode_point(reveals[i], f"U_{i}") for i in nodes]))
    HS = int.from_bytes(eccsi.compute_HS(kms.KPAK, _identifier(ID), PVT), "big")
    value = int.from_bytes(response, "big") % q
    left = eccsi.base_multiply(value) if value else None
    right = eccsi.multiply(eccsi.decode_point(kms.publics[node], f"KPAK_{node}"), lagrange(nodes, node)) + \
        eccsi.multiply(eccsi.decode_point(reveals[node], f"U_{node}"), HS)
    if left is None or right.is_point_at_infinity() or eccsi.encode_point(left) != eccsi.encode_point(right):
        raise VerificationError(f"node {node}'s answer fails [SSK_i]G = [lambda_i]KPAK_i + [HS]U_i")
    return value


def _sum_points(points: list[EccPoint]) -> EccPoint:
    total = points[0]
    for point in points[1:]:
        total = total + point
    if total.is_point_at_infinity():
        raise VerificationError("the U_i sum to the point at infinity: no PVT")
    return total


def combine(kms: ThresholdKms, ID: bytes, S: Sequence[int], reveals: Mapping[int, bytes],
            responses: Mapping[int, bytes]) -> eccsi.SigningKey:
    """Spec 10.5.3: every node's answer checked, SSK = the sum of the SSK_i mod q, PVT = the sum of
    the U_i, then RFC 6507 5.1.2 ValidateSsk under the KPAK (``VerificationError``)."""
    nodes = session(kms, S)
    if set(responses) != set(nodes) or set(reveals) != set(nodes):
        raise RecoveryError("an answer and a U_i from every node of the session are needed")
    SSK = sum(verify_response(kms, ID, nodes, reveals, i, responses[i]) for i in nodes) % q
    PVT = eccsi.encode_point(_sum_points([eccsi.decode_point(reveals[i], f"U_{i}") for i in nodes]))
    return eccsi.ValidateSsk(kms.KPAK, _identifier(ID), eccsi.I2OSP_N(SSK), PVT)
