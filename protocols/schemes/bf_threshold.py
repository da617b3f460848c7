"""Threshold extraction (a distributed PKG) for RFC 5091 Boneh-Franklin
(specs/ibe.md section 3.12).

RFC 5091 itself defines no threshold extraction: its PKG runs BFsetup
(Algorithm 5.1.2) and BFextractPriv (Algorithm 5.3.1) alone and holds the
master secret s.  This module adds, on the RFC's type-1 curve and without
changing any RFC algorithm, the design the BLS12-381 suite already uses
(:mod:`protocols.schemes.bf_bls12`, specs/ibe.md 4.5), so that no single
node ever holds s:

| step | who | here |
|---|---|---|
| agree on the group (E, p, q, P, hashfcn; RFC 5091 5.1.2 steps 2-4), t and the node numbers | all | :class:`ThresholdParameters`, :func:`threshold_setup` |
| joint-Feldman DKG over Z_q: a polynomial per node with commitments [a_k]P (Pedersen 1991) | each node | :func:`deal` |
| Feldman check of a dealt share; a bad one names its dealer | each node | :func:`verify_dealt_share`, :func:`node_secret` |
| P_pub = sum of the constant-term commitments; V_i = [s_i]P | anyone | :func:`combine_dealings` -> :class:`DistributedKey` |
| node i's key share d_i = [s_i]Q_id (Q_id of RFC 5091 5.2.1) | node i | :func:`extract_share` |
| e'(d_i, P) = e'(Q_id, V_i); a bad share names its node | the device | :func:`verify_key_share` |
| S_id = sum lambda_i d_i (Lagrange at 0 over Z_q) | the device | :func:`combine_key_shares` |

The result of the DKG is an ordinary, valid RFC 5091 parameter set
(:class:`~protocols.schemes.bf.BFPublicParameters`, section 5.1.2, with
P_pub = [s]P for s = sum_j a_(j,0) mod q, never computed), which the
unchanged BFencrypt (5.4.1) uses; the combined key is the
:class:`~protocols.schemes.bf.BFPrivateKey` that BFextractPriv would give with
s, and the unchanged BFdecrypt (5.5.1) accepts it.

References: T. Pedersen, "A Threshold Cryptosystem without a Trusted Party",
EUROCRYPT 1991 (the joint-Feldman DKG); R. Gennaro, S. Jarecki, H.
Krawczyk, T. Rabin, "Secure Distributed Key Generation for Discrete-Log
Based Cryptosystems", EUROCRYPT 1999 (a rushing dealer can bias P_pub in
joint-Feldman; the bias does not help forge keys here and is not corrected,
as in specs/ibe.md 4.5); D. Boneh, M. Franklin, CRYPTO 2001
(who suggest a distributed PKG for BF); A. Shamir 1979 (:mod:`protocols.primitives.shamir`).

Validation: every point a function receives is checked to be a point of
order q of the curve (:meth:`Type1Curve.check_point`: not 0, on the curve, in
the subgroup), node numbers are distinct ints in [1, q), 1 <= t <= n.  Faults
attributable to a dealer or a node raise ``VerificationError`` naming it;
malformed arguments raise ``ParameterError``; too few shares
``RecoveryError``.  Secret values (coefficients, dealt shares, s_i) never
appear in a ``repr`` or a message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeGuard

from gmpy2 import mpz

from protocols.errors import ParameterError, RecoveryError, VerificationError
from protocols.primitives import hashing
from protocols.primitives import shamir
from protocols.primitives.rand import RandomSource, random_range, resolve
from protocols.primitives.supersingular import (
    INFINITY,
    PairingRatio1,
    Point,
    PointAdd1,
    PointMultiply,
    Type1Curve,
)
from protocols.schemes.bf import (
    HASH_FUNCTIONS,
    BFPrivateKey,
    BFPublicParameters,
    BFderivePubl,
    HashFunction,
    generate_type1_group,
    security_level,
)

__all__ = [
    "ThresholdParameters",
    "threshold_setup",
    "Dealing",
    "deal",
    "commitment_at",
    "verify_dealt_share",
    "DistributedKey",
    "combine_dealings",
    "node_secret",
    "extract_share",
    "verify_key_share",
    "combine_key_shares",
]


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, (int, type(mpz(0)))) and not isinstance(value, bool)


def _check_node(node: object, q: int, what: str = "node number") -> int:
    """A node number: an int in [1, q) (the evaluation point of its share)."""
    if not _is_int(node):
        raise ParameterError(f"a {what} must be an int (bool refused)")
    if not 1 <= node < q:
        raise ParameterError(f"{what} {int(node)} is not in [1, q - 1]")
    return int(node)


def _same_point(E: Type1Curve, A: Point, B: Point) -> bool:
    """A == B, comparing the fixed-length encodings in constant time."""
    if A.infinity or B.infinity:
        return A.infinity and B.infinity
    return hashing.compare_digest(E.encode_fp(A.x) + E.encode_fp(A.y), E.encode_fp(B.x) + E.encode_fp(B.y))


# ---------------------------------------------------------------------------
# The group and the node set
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdParameters:
    """What the n PKG nodes agree on before the DKG: the RFC 5091 group (the
    type-1 curve E with p and q, the generator P of order q, hashfcn; RFC 5091
    section 5.1.2 steps 2-4), the threshold t and the node numbers.

    Validated on construction (``ParameterError``): P a point of order q,
    hashfcn one of RFC 5091's, 1 <= t <= n, node numbers distinct ints in
    [1, q - 1].  The group has no trapdoor: anyone may generate it
    (:func:`threshold_setup`), as long as every node receives the same one."""

    curve: Type1Curve
    P: Point
    hashfcn: HashFunction
    threshold: int
    nodes: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.curve, Type1Curve):
            raise ParameterError("curve must be a Type1Curve")
        if self.hashfcn not in HASH_FUNCTIONS.values():
            raise ParameterError("hashfcn must be one of RFC 5091's hash functions")
        self.curve.check_point(self.P, "the generator P")
        if isinstance(self.nodes, (str, bytes, bytearray)) or not isinstance(self.nodes, Iterable):
            raise ParameterError("nodes must be a sequence of node numbers")
        nodes = tuple(_check_node(x, self.curve.q) for x in self.nodes)
        if not nodes:
            raise ParameterError("at least one PKG node is needed")
        if len(set(nodes)) != len(nodes):
            duplicate = next(x for x in nodes if nodes.count(x) > 1)
            raise ParameterError(f"node number {duplicate} appears twice")
        if not _is_int(self.threshold) or not 1 <= self.threshold <= len(nodes):
            raise ParameterError(f"threshold must be an int between 1 and the number of nodes ({len(nodes)})")
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "threshold", int(self.threshold))

    @property
    def q(self) -> int:
        return int(self.curve.q)

    @classmethod
    def from_public_parameters(cls, params: BFPublicParameters, threshold: int,
                               nodes: Sequence[int]) -> ThresholdParameters:
        """The group of existing RFC 5091 parameters (their P_pub is ignored)."""
        if not isinstance(params, BFPublicParameters):
            raise ParameterError("params must be BFPublicParameters")
        return cls(params.curve, params.P, params.hashfcn, threshold, tuple(nodes))


def threshold_setup(n: int, threshold: int, nodes: Sequence[int],
                    rng: RandomSource | None = None) -> ThresholdParameters:
    """RFC 5091 Algorithm 5.1.2 steps 2-4 (BFsetup1 without step 5, the
    master secret): the group at security parameter n (one of
    :data:`protocols.schemes.bf.SETUP_LEVELS`), drawn from ``rng`` exactly as
    :func:`~protocols.schemes.bf.generate_type1_group` draws it, with the
    level's hashfcn.  The master secret is then made by the DKG (:func:`deal`)."""
    level = security_level(n)
    E, P = generate_type1_group(level.n_p, level.n_q, resolve(rng))
    return ThresholdParameters(E, P, level.hashfcn, threshold, tuple(nodes))


# ---------------------------------------------------------------------------
# The joint-Feldman DKG (Pedersen 1991) over Z_q
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dealing:
    """Node ``dealer``'s contribution: the Feldman commitments C_k = [a_k]P
    (k = 0 .. t - 1, published) to its polynomial f(x) = sum a_k x^k over Z_q,
    and f(j) for each node j (sent to node j privately; kept out of ``repr``)."""

    dealer: int
    commitments: tuple[Point, ...]
    shares: Mapping[int, int] = field(repr=False)


def _evaluate(coefficients: Sequence[int], x: int, q: int) -> int:
    acc = 0
    for a in reversed(coefficients):  # Horner
        acc = (acc * x + a) % q
    return acc


def deal(setup: ThresholdParameters, dealer: int, rng: RandomSource | None = None) -> Dealing:
    """Node ``dealer``'s dealing (Pedersen 1991): coefficients a_0, ..., a_(t-1)
    drawn in that order, each RandomRange(rng, 1, q) (non-zero, so that no
    commitment is the point at infinity, which validation refuses), the
    commitments [a_k]P, and f(j) mod q for every node j of ``setup``."""
    if not isinstance(setup, ThresholdParameters):
        raise ParameterError("setup must be ThresholdParameters")
    dealer = _check_node(dealer, setup.q, "dealer number")
    if dealer not in setup.nodes:
        raise ParameterError(f"dealer {dealer} is not one of the PKG nodes")
    source = resolve(rng)
    q = setup.q
    coefficients = [random_range(source, 1, q) for _ in range(setup.threshold)]
    commitments = tuple(PointMultiply(setup.curve, a, setup.P) for a in coefficients)
    shares = MappingProxyType({j: _evaluate(coefficients, j, q) for j in setup.nodes})
    return Dealing(dealer, commitments, shares)


def commitment_at(setup: ThresholdParameters, commitments: Sequence[Point], x: int) -> Point:
    """sum_k [x^k mod q]C_k: the commitment [f(x)]P to f(x)."""
    E, q = setup.curve, setup.q
    acc = INFINITY
    power = 1
    for C in commitments:
        acc = PointAdd1(E, acc, PointMultiply(E, power, C))
        power = power * x % q
    return acc


def _check_dealing(setup: ThresholdParameters, dealing: object) -> Dealing:
    """The public part of a dealing: its dealer is a node, it has exactly t
    commitments and each is a point of order q.  A fault in the commitments
    names the dealer (``VerificationError``)."""
    if not isinstance(setup, ThresholdParameters):
        raise ParameterError("setup must be ThresholdParameters")
    if not isinstance(dealing, Dealing):
        raise ParameterError("a dealing must be a Dealing")
    dealer = _check_node(dealing.dealer, setup.q, "dealer number")
    if dealer not in setup.nodes:
        raise ParameterError(f"dealer {dealer} is not one of the PKG nodes")
    if not isinstance(dealing.commitments, (tuple, list)) or len(dealing.commitments) != setup.threshold:
        raise VerificationError(f"dealer {dealer}: {setup.threshold} commitments expected "
                                "(a polynomial of degree t - 1)")
    for k, C in enumerate(dealing.commitments):
        setup.curve.check_point(C, f"dealer {dealer}: commitment C_{k}", VerificationError)
    return dealing


def verify_dealt_share(setup: ThresholdParameters, dealing: Dealing, node: int, share: int) -> None:
    """Feldman's check, run by node ``node`` on the share f(node) that
    ``dealing`` sent it: [share]P == sum_k [node^k]C_k.  Any failure (a
    commitment that is not a point of order q, a share out of [0, q), a share
    that does not match) raises ``VerificationError`` naming the dealer, so
    that the nodes can disqualify it."""
    dealing = _check_dealing(setup, dealing)
    node = _check_node(node, setup.q)
    if node not in setup.nodes:
        raise ParameterError(f"node {node} is not one of the PKG nodes")
    if not _is_int(share) or not 0 <= share < setup.q:
        raise VerificationError(f"dealer {dealing.dealer}: the share for node {node} is not in [0, q)")
    expected = commitment_at(setup, dealing.commitments, node)
    if not _same_point(setup.curve, PointMultiply(setup.curve, share, setup.P), expected):
        raise VerificationError(f"dealer {dealing.dealer}: the share for node {node} does not "
                                "match its commitments")


@dataclass(frozen=True)
class DistributedKey:
    """The public outcome of the DKG: RFC 5091 public parameters whose P_pub =
    [s]P for the never-assembled s, the threshold t, and each node's
    verification key V_i = [s_i]P.  Validated on construction
    (``ParameterError``): 1 <= t <= number of nodes, node numbers ints in
    [1, q - 1], every V_i a point of order q."""

    params: BFPublicParameters
    threshold: int
    verification_keys: Mapping[int, Point]

    def __post_init__(self) -> None:
        if not isinstance(self.params, BFPublicParameters):
            raise ParameterError("params must be BFPublicParameters")
        if not isinstance(self.verification_keys, Mapping) or not self.verification_keys:
            raise ParameterError("verification_keys must map node numbers to points")
        E = self.params.curve
        keys = {}
        for node, V in self.verification_keys.items():
            node = _check_node(node, E.q)
            keys[node] = E.check_point(V, f"the verification key of node {node}")
        if not _is_int(self.threshold) or not 1 <= self.threshold <= len(keys):
            raise ParameterError("threshold must be an int between 1 and the number of nodes")
        object.__setattr__(self, "threshold", int(self.threshold))
        object.__setattr__(self, "verification_keys", MappingProxyType(keys))


def combine_dealings(setup: ThresholdParameters, dealings: Sequence[Dealing]) -> DistributedKey:
    """The DKG's public result over the qualified dealings (each node has
    checked its own shares, :func:`verify_dealt_share`, and dealers with a
    justified complaint were left out):

    - C_k = sum_j C_(j,k) (sum of the dealers' commitments, per k);
    - P_pub = C_0 = [s]P with s = sum_j a_(j,0) mod q (never computed);
    - V_i = sum_k [i^k]C_k = [s_i]P for every node i.

    ``ParameterError`` for no dealing, a dealer twice or a non-node dealer;
    ``VerificationError`` naming the dealer for malformed commitments.  In
    the negligible case s in {0, 1} (P_pub = 0 or P; RFC 5091 5.1.2 step 5(a)
    draws s in [2, q - 1]) or some s_i = 0, ``ParameterError``: run the DKG again."""
    if not isinstance(setup, ThresholdParameters):
        raise ParameterError("setup must be ThresholdParameters")
    if isinstance(dealings, (str, bytes, bytearray)) or not isinstance(dealings, Sequence):
        raise ParameterError("dealings must be a sequence of Dealing")
    if not dealings:
        raise ParameterError("the DKG needs at least one qualified dealer")
    E = setup.curve
    seen: set[int] = set()
    summed = [INFINITY] * setup.threshold
    for dealing in dealings:
        dealing = _check_dealing(setup, dealing)
        if dealing.dealer in seen:
            raise ParameterError(f"dealer {dealing.dealer} appears twice")
        seen.add(dealing.dealer)
        summed = [PointAdd1(E, acc, C) for acc, C in zip(summed, dealing.commitments)]
    P_pub = summed[0]
    if P_pub.infinity or _same_point(E, P_pub, setup.P):
        raise ParameterError("the DKG gave s = 0 or 1 (probability 2/q); run it again")
    verification = {}
    for node in setup.nodes:
        V = commitment_at(setup, summed, node)
        if V.infinity:
            raise ParameterError(f"the DKG gave node {node} the share 0 (probability 1/q); run it again")
        verification[node] = V
    params = BFPublicParameters(E, setup.P, P_pub, setup.hashfcn)
    return DistributedKey(params, setup.threshold, verification)


def node_secret(setup: ThresholdParameters, dealings: Sequence[Dealing], node: int) -> int:
    """Node ``node``'s secret share s_i = sum_j f_j(i) mod q over the qualified
    dealings, each dealt share checked first (:func:`verify_dealt_share`,
    ``VerificationError`` naming its dealer).  ``ParameterError`` if a dealing
    holds no share for this node or a dealer appears twice."""
    if isinstance(dealings, (str, bytes, bytearray)) or not isinstance(dealings, Sequence) or not dealings:
        raise ParameterError("dealings must be a non-empty sequence of Dealing")
    node = _check_node(node, setup.q)
    seen: set[int] = set()
    total = 0
    for dealing in dealings:
        if not isinstance(dealing, Dealing) or not isinstance(dealing.shares, Mapping):
            raise ParameterError("a dealing must be a Dealing with a mapping of shares")
        if dealing.dealer in seen:
            raise ParameterError(f"dealer {dealing.dealer} appears twice")
        seen.add(dealing.dealer)
        if node not in dealing.shares:
            raise ParameterError(f"dealer {dealing.dealer} dealt no share to node {node}")
        share = dealing.shares[node]
        verify_dealt_share(setup, dealing, node, share)
        total = (total + int(share)) % setup.q
    return total


# ---------------------------------------------------------------------------
# Threshold extraction
# ---------------------------------------------------------------------------


def extract_share(params: BFPublicParameters, secret_share: int, id: bytes) -> Point:
    """Node i's key share for ``id``: d_i = [s_i]Q_id, with Q_id =
    BFderivePubl(id) (RFC 5091 Algorithm 5.2.1): BFextractPriv (5.3.1) with the
    node's share s_i in place of s.  ``ParameterError`` unless s_i is in [1, q)."""
    if not isinstance(params, BFPublicParameters):
        raise ParameterError("params must be BFPublicParameters")
    if not _is_int(secret_share) or not 1 <= secret_share < params.curve.q:
        raise ParameterError("a node's secret share is an int in [1, q - 1]")
    return PointMultiply(params.curve, secret_share, BFderivePubl(params, id))


def _pairings_agree(E: Type1Curve, A: Point, B: Point, C: Point, D: Point) -> bool:
    """e'(A, B) == e'(C, D), as one product e'(A, B) e'(-C, D) == 1 sharing a
    final exponentiation (RFC 5091 Algorithm 4.6.2, PairingRatio1)."""
    return PairingRatio1(E, A, B, C, D).is_one()


def _check_key(key: object) -> DistributedKey:
    if not isinstance(key, DistributedKey):
        raise ParameterError("key must be a DistributedKey")
    return key


def _verify_share(key: DistributedKey, node: object, Q_id: Point, share: object) -> Point:
    E = key.params.curve
    node = _check_node(node, E.q)
    if node not in key.verification_keys:
        raise VerificationError(f"a key share from node {node}, which is not a PKG node")
    point = E.check_point(share, f"the key share from node {node}", VerificationError)
    if not _pairings_agree(E, point, key.params.P, Q_id, key.verification_keys[node]):
        raise VerificationError(f"the key share from node {node} is not [s_{node}]Q_id")
    return point


def verify_key_share(key: DistributedKey, node: int, id: bytes, share: Point) -> None:
    """The device's check of node i's share: d_i is a point of order q and
    e'(d_i, P) == e'(Q_id, V_i) (the modified pairing of RFC 5091 4.5, as
    one pairing product).  ``VerificationError`` naming the node otherwise,
    or when it is not a PKG node; ``ParameterError`` for a node number that
    is not an int in [1, q - 1]."""
    key = _check_key(key)
    _verify_share(key, node, BFderivePubl(key.params, id), share)


def _share_pairs(shares: object) -> list[tuple[object, object]]:
    """A mapping node -> share, or a sequence of (node, share) pairs in which
    no node appears twice (``ParameterError``)."""
    if isinstance(shares, Mapping):
        return list(shares.items())
    if isinstance(shares, (str, bytes, bytearray)) or not isinstance(shares, Sequence):
        raise ParameterError("shares must map node numbers to points, or be (node, point) pairs")
    pairs = []
    seen = set()
    for item in shares:
        if not isinstance(item, tuple) or len(item) != 2:
            raise ParameterError("each key share is a (node, point) pair")
        node, share = item
        if _is_int(node) and int(node) in seen:
            raise ParameterError(f"two key shares from node {int(node)}")
        if _is_int(node):
            seen.add(int(node))
        pairs.append((node, share))
    return pairs


def combine_key_shares(key: DistributedKey, id: bytes,
                       shares: Mapping[int, Point] | Sequence[tuple[int, Point]]) -> BFPrivateKey:
    """The identity's RFC 5091 private key from t key shares.

    1. Every share given is checked (:func:`verify_key_share`;
       ``VerificationError`` naming the first bad node; a caller that wants
       to go on without it drops that node and calls again).
    2. Fewer than t shares: ``RecoveryError``.
    3. S_id = sum_i [lambda_i]d_i over the t shares of the lowest node
       numbers, lambda_i the Lagrange coefficients at 0 over Z_q
       (:func:`protocols.primitives.shamir.lagrange_at_zero`).  As every d_i
       = [s_i]Q_id and s = sum lambda_i s_i mod q, S_id = [s]Q_id: the key
       BFextractPriv (RFC 5091 5.3.1) would give with s.
    4. S_id is checked against P_pub: e'(S_id, P) == e'(Q_id, P_pub)
       (``VerificationError`` otherwise, which means the verification keys
       do not belong to P_pub).
    """
    key = _check_key(key)
    params = key.params
    E = params.curve
    pairs = _share_pairs(shares)
    Q_id = BFderivePubl(params, id)
    checked: dict[int, Point] = {}
    for node, share in pairs:
        checked[_check_node(node, E.q)] = _verify_share(key, node, Q_id, share)
    if len(checked) < key.threshold:
        raise RecoveryError(f"{len(checked)} valid key shares, {key.threshold} needed")
    nodes = sorted(checked)[:key.threshold]
    lambdas = shamir.lagrange_at_zero(nodes, prime=int(E.q))
    S_id = INFINITY
    for node, lam in zip(nodes, lambdas):
        S_id = PointAdd1(E, S_id, PointMultiply(E, lam, checked[node]))
    if S_id.infinity or not _pairings_agree(E, S_id, params.P, Q_id, params.P_pub):
        raise VerificationError("the combined key does not verify against P_pub")
    return BFPrivateKey(S_id)
