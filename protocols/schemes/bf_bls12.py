"""Boneh-Franklin identity-based KEM on BLS12-381, and its threshold extraction
(specs/ibe.md section 4).

No standard defines BF-IBE on BLS12-381, so this module follows the spec's
own definition:

- master secret s in [1, r); public key P_pub = s * g2 in G2;
- Q_id = hash_to_g1(identity, DST_ID) (RFC 9380, BLS12381G1_XMD:SHA-256_SSWU_RO_);
- the identity's private key d_id = s * Q_id in G1, checkable by
  e(d_id, g2) = e(Q_id, P_pub);
- a KEM with the Fujisaki-Okamoto structure of RFC 5091's BFencrypt: sigma
  random, rho = H_r(sigma || id), U = rho * g2, V = sigma XOR
  H_mask(e(Q_id, P_pub)^rho || U || id), key = H_key(sigma || U || V || id);
  decapsulation recomputes rho and refuses unless U = rho * g2.

Threshold extraction (the distributed PKG): s is shared with Shamir's scheme
over Z_r among n nodes; node i returns d_i = s_i * Q_id, checkable against
its verification key V_i = s_i * g2 by e(d_i, g2) = e(Q_id, V_i); any t valid
shares combine by Lagrange interpolation in the exponent.  The shares come
from a joint-Feldman distributed key generation (Pedersen 1991), so no node
ever holds s.  Every dealt share is checked against its dealer's commitments
(:func:`node_secret`), and every dealer proves possession of its constant term
a_0 with a Schnorr proof bound to the DKG's context, t, the node list and the
dealer (:func:`verify_possession`, checked by :func:`combine_dealings`): a
rushing last dealer cannot choose C_0 = X - (the others' C_0) for an X whose
logarithm it knows and so set P_pub alone (specs/ibe.md 4.5.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from protocols.errors import DecodeError, ParameterError, RecoveryError, VerificationError
from protocols.primitives import hashing
from protocols.primitives import shamir
from protocols.primitives.bls12_381 import (
    G1,
    G2,
    GT,
    R,
    expand_message_xmd,
    hash_to_g1,
    multi_pairing,
    pairing,
    random_scalar,
)
from protocols.primitives.rand import RandomSource, resolve

SUITE = "usapp-bf-ibe-bls12381-v1"
"""The suite identifier bound into hybrid ciphertexts and issuance messages."""
DST_ID = b"USAPP-BF-IBE-V01-CS01-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"
DST_RHO = b"USAPP-BF-IBE-V01-CS01-H-RHO"
DST_MASK = b"USAPP-BF-IBE-V01-CS01-H-MASK"
DST_KEY = b"USAPP-BF-IBE-V01-CS01-H-KEY"
SIGMA_BYTES = 32
KEY_BYTES = 32
ENC_BYTES = 96 + SIGMA_BYTES
"""An encapsulation: U (compressed G2, 96 bytes) || V (32 bytes)."""
MAX_IDENTITY_BYTES = 1024


def _identity(identity: object) -> bytes:
    if not isinstance(identity, (bytes, bytearray)) or not 1 <= len(identity) <= MAX_IDENTITY_BYTES:
        raise ParameterError(f"an identity is 1 to {MAX_IDENTITY_BYTES} bytes")
    return bytes(identity)


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def hash_to_scalar(msg: bytes, dst: bytes) -> int:
    """RFC 9380 hash_to_field with m = 1, L = 48, into Z_r (section 5.2)."""
    return int.from_bytes(expand_message_xmd(msg, dst, 48), "big") % R


def identity_point(identity: bytes) -> G1:
    """Q_id = hash_to_g1(identity, DST_ID)."""
    return hash_to_g1(_identity(identity), DST_ID)


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicParams:
    """P_pub = s * g2 (96 bytes compressed)."""

    p_pub: G2

    def __post_init__(self) -> None:
        if not isinstance(self.p_pub, G2) or self.p_pub.is_identity():
            raise ParameterError("P_pub must be a non-identity G2 element")

    def to_bytes(self) -> bytes:
        return self.p_pub.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicParams:
        return cls(G2.from_bytes(data))


@dataclass(frozen=True)
class MasterKey:
    """The master secret s (single-PKG mode only)."""

    s: int = field(repr=False)

    def __post_init__(self) -> None:
        if type(self.s) is not int or not 1 <= self.s < R:
            raise ParameterError("the master secret must be an int in [1, r)")

    @property
    def params(self) -> PublicParams:
        return PublicParams(G2.generator() * self.s)


@dataclass(frozen=True)
class PrivateKey:
    """d_id = s * Q_id for one identity (48 bytes compressed)."""

    identity: bytes
    d: G1 = field(repr=False)

    def to_bytes(self) -> bytes:
        return self.d.to_bytes()

    @classmethod
    def from_bytes(cls, identity: bytes, data: bytes) -> PrivateKey:
        return cls(_identity(identity), G1.from_bytes(data))


def setup(rng: RandomSource | None = None) -> MasterKey:
    """A fresh master secret, uniform in [1, r)."""
    return MasterKey(random_scalar(rng))


def extract(master: MasterKey, identity: bytes) -> PrivateKey:
    """d_id = s * Q_id."""
    return PrivateKey(_identity(identity), identity_point(identity) * master.s)


def verify_private_key(params: PublicParams, key: PrivateKey) -> bool:
    """e(d_id, g2) == e(Q_id, P_pub), as one product e(d_id, -g2) e(Q_id, P_pub) == 1."""
    if key.d.is_identity():
        return False
    check = multi_pairing([(key.d, -G2.generator()), (identity_point(key.identity), params.p_pub)])
    return check.is_identity()


# ---------------------------------------------------------------------------
# KEM
# ---------------------------------------------------------------------------


def _rho(sigma: bytes, identity: bytes) -> int:
    return hash_to_scalar(sigma + _lp(identity), DST_RHO)


def _mask(theta_bytes: bytes, u: bytes, identity: bytes) -> bytes:
    return expand_message_xmd(theta_bytes + u + _lp(identity), DST_MASK, SIGMA_BYTES)


def _key(sigma: bytes, u: bytes, v: bytes, identity: bytes) -> bytes:
    return expand_message_xmd(sigma + u + v + _lp(identity), DST_KEY, KEY_BYTES)


@dataclass(frozen=True)
class KemTrace:
    """Every intermediate of one encapsulation or decapsulation (specs/ibe.md 4.3), exported so
    that the vectors carry them: sigma, rho, Q_id, theta = e(rho Q_id, P_pub) (encapsulation) or
    e(d_id, U) (decapsulation), the 32-byte mask H_mask(...), U, V and the key."""

    sigma: bytes = field(repr=False)
    rho: int = field(repr=False)
    q_id: G1
    theta: GT = field(repr=False)
    mask: bytes = field(repr=False)
    u: bytes
    v: bytes
    key: bytes = field(repr=False)


def encapsulate_with_sigma(params: PublicParams, identity: bytes, sigma: bytes) -> KemTrace:
    """Spec 4.3 steps 1-5 for a given sigma (32 bytes); ParameterError if rho = 0 (draw again)."""
    identity = _identity(identity)
    if not isinstance(sigma, (bytes, bytearray)) or len(sigma) != SIGMA_BYTES:
        raise ParameterError(f"sigma is {SIGMA_BYTES} bytes")
    sigma = bytes(sigma)
    rho = _rho(sigma, identity)
    if rho == 0:  # probability below 2^-254
        raise ParameterError("rho = 0 for this sigma; draw sigma again")
    u = (G2.generator() * rho).to_bytes()
    q_id = identity_point(identity)
    theta = pairing(q_id * rho, params.p_pub)  # = e(Q_id, P_pub)^rho, cheaper
    mask = _mask(theta.to_bytes(), u, identity)
    v = bytes(a ^ b for a, b in zip(sigma, mask))
    return KemTrace(sigma, rho, q_id, theta, mask, u, v, _key(sigma, u, v, identity))


def encapsulate(params: PublicParams, identity: bytes,
                rng: RandomSource | None = None) -> tuple[bytes, bytes]:
    """(key, enc): a 32-byte key and its 128-byte encapsulation to ``identity``."""
    trace = encapsulate_trace(params, identity, rng)
    return trace.key, trace.u + trace.v


def encapsulate_trace(params: PublicParams, identity: bytes, rng: RandomSource | None = None) -> KemTrace:
    """Spec 4.3: draw sigma (one random_bytes(32) call per attempt) until rho != 0."""
    identity = _identity(identity)
    source = resolve(rng)
    while True:
        sigma = source.random_bytes(SIGMA_BYTES)
        if _rho(sigma, identity):
            return encapsulate_with_sigma(params, identity, sigma)


def decapsulate_trace(key: PrivateKey, enc: bytes) -> KemTrace:
    """Spec 4.3 Decapsulate with its intermediates; DecodeError / VerificationError as decapsulate."""
    if not isinstance(enc, (bytes, bytearray)) or len(enc) != ENC_BYTES:
        raise DecodeError(f"an encapsulation is {ENC_BYTES} bytes")
    u_bytes, v = bytes(enc[:96]), bytes(enc[96:])
    u = G2.from_bytes(u_bytes)
    theta = pairing(key.d, u)
    mask = _mask(theta.to_bytes(), u_bytes, key.identity)
    sigma = bytes(a ^ b for a, b in zip(v, mask))
    rho = _rho(sigma, key.identity)
    if rho == 0 or not hashing.compare_digest((G2.generator() * rho).to_bytes(), u_bytes):
        raise VerificationError("the encapsulation does not decrypt under this identity's key")
    return KemTrace(sigma, rho, identity_point(key.identity), theta, mask, u_bytes, v,
                    _key(sigma, u_bytes, v, key.identity))


def decapsulate(key: PrivateKey, enc: bytes) -> bytes:
    """The key of ``enc``; VerificationError unless enc was made for this identity."""
    return decapsulate_trace(key, enc).key


# ---------------------------------------------------------------------------
# Threshold extraction and the joint-Feldman DKG (specs/ibe.md 4.5)
# ---------------------------------------------------------------------------


DST_POP = b"USAPP-BF-IBE-V01-CS01-DKG-POP"
"""Domain of the challenge of a dealer's proof of possession (specs/ibe.md 4.5.2)."""
MAX_CONTEXT_BYTES = 255


@dataclass(frozen=True)
class Dealing:
    """One node's contribution to the DKG (specs/ibe.md 4.5.1): Feldman
    commitments C_k = a_k * g2 to its polynomial, a Schnorr proof of
    possession (R, z) of a_0 bound to the DKG's context, and the share f(j)
    for each node j (sent privately)."""

    dealer: int
    commitments: tuple[G2, ...]
    shares: Mapping[int, int] = field(repr=False)
    proof_commitment: G2 | None = None
    proof_response: int | None = field(default=None, repr=False)


def _check_context(context: object) -> bytes:
    if not isinstance(context, (bytes, bytearray)) or len(context) > MAX_CONTEXT_BYTES:
        raise ParameterError(f"the DKG context is at most {MAX_CONTEXT_BYTES} bytes")
    return bytes(context)


def _check_nodes(threshold: object, nodes: Sequence[int]) -> list[int]:
    nodes = list(nodes)
    if len(set(nodes)) != len(nodes) or any(type(x) is not int or not 1 <= x < R for x in nodes):
        raise ParameterError("node numbers must be distinct ints in [1, r)")
    if type(threshold) is not int or not 1 <= threshold <= len(nodes):
        raise ParameterError("threshold must be between 1 and the number of nodes")
    return nodes


def pop_challenge(context: bytes, threshold: int, nodes: Sequence[int], dealer: int, c0: G2, r: G2) -> int:
    """Spec 4.5.2: c = hash_to_scalar(lp(context) || I2OSP(t, 2) || I2OSP(n, 2) || I2OSP(node, 32) for
    each node in the given order || I2OSP(dealer, 32) || C_0 || R, DST_POP)."""
    message = (_lp(_check_context(context)) + threshold.to_bytes(2, "big") + len(nodes).to_bytes(2, "big")
               + b"".join(x.to_bytes(32, "big") for x in nodes) + dealer.to_bytes(32, "big")
               + c0.to_bytes() + r.to_bytes())
    return hash_to_scalar(message, DST_POP)


def deal(dealer: int, threshold: int, nodes: Sequence[int], rng: RandomSource | None = None,
         context: bytes = b"") -> Dealing:
    """Spec 4.5.1: node ``dealer``'s random polynomial f of degree t - 1 (coefficients drawn
    a_0..a_{t-1} in order, a_0 non-zero), its commitments, then the proof of possession of a_0
    (k = RandomRange(1, r) drawn last; R = k g2, z = k + c a_0 mod r) and f(j) for each node j."""
    nodes = _check_nodes(threshold, nodes)
    if dealer not in nodes:
        raise ParameterError("the dealer must be one of the nodes")
    context = _check_context(context)
    source = resolve(rng)
    coefficients = [random_scalar(source)] + [random_scalar(source, nonzero=False) for _ in range(threshold - 1)]
    k = random_scalar(source)
    return deal_with_draws(dealer, threshold, nodes, coefficients, k, context)


def deal_with_draws(dealer: int, threshold: int, nodes: Sequence[int], coefficients: Sequence[int], k: int,
                    context: bytes = b"") -> Dealing:
    """Spec 4.5.1 for given draws: coefficients a_0..a_{t-1} (a_0 in [1, r), the others in [0, r)) and
    the proof nonce k in [1, r); ParameterError otherwise."""
    nodes = _check_nodes(threshold, nodes)
    if dealer not in nodes:
        raise ParameterError("the dealer must be one of the nodes")
    context = _check_context(context)
    coefficients = list(coefficients)
    if (len(coefficients) != threshold or any(type(a) is not int or not 0 <= a < R for a in coefficients)
            or coefficients[0] == 0 or type(k) is not int or not 1 <= k < R):
        raise ParameterError("t coefficients in [0, r) with a_0 != 0, and k in [1, r), are needed")
    g2 = G2.generator()
    commitments = tuple(g2 * a for a in coefficients)
    r = g2 * k
    z = (k + pop_challenge(context, threshold, nodes, dealer, commitments[0], r) * coefficients[0]) % R
    return Dealing(dealer, commitments, {x: _evaluate(coefficients, x) for x in nodes}, r, z)


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    acc = 0
    for a in reversed(coefficients):
        acc = (acc * x + a) % R
    return acc


def commitment_at(commitments: Sequence[G2], x: int) -> G2:
    """sum_k x^k C_k: the commitment to f(x)."""
    acc = G2.identity()
    power = 1
    for c in commitments:
        acc = acc + c * power
        power = power * x % R
    return acc


def _check_dealing(dealing: object, threshold: int | None = None) -> Dealing:
    """The public part of a dealing: a Dealing whose commitments are G2 elements, exactly t of them
    when t is given (``VerificationError`` naming the dealer otherwise)."""
    if not isinstance(dealing, Dealing) or type(dealing.dealer) is not int or not isinstance(dealing.shares, Mapping):
        raise ParameterError("a dealing must be a Dealing with an int dealer and a mapping of shares")
    commitments = dealing.commitments
    if not isinstance(commitments, tuple) or not commitments or any(not isinstance(c, G2) for c in commitments):
        raise VerificationError(f"dealer {dealing.dealer}: the commitments must be a non-empty tuple of G2 elements")
    if threshold is not None and len(commitments) != threshold:
        raise VerificationError(f"dealer {dealing.dealer} committed to a polynomial of the wrong degree "
                                f"({len(commitments)} commitments, {threshold} expected)")
    return dealing


def verify_dealt_share(dealing: Dealing, node: int, share: int) -> None:
    """Feldman check: share * g2 == sum_k node^k C_k; VerificationError naming the dealer."""
    dealing = _check_dealing(dealing)
    if type(share) is not int or not 0 <= share < R:
        raise VerificationError(f"dealer {dealing.dealer}: share for node {node} out of range")
    if G2.generator() * share != commitment_at(dealing.commitments, node):
        raise VerificationError(f"dealer {dealing.dealer}: share for node {node} does not match "
                                "its commitments")


def verify_possession(dealing: Dealing, threshold: int, nodes: Sequence[int], context: bytes = b"") -> None:
    """Spec 4.5.2: z g2 == R + c C_0 for c of :func:`pop_challenge`; VerificationError naming the dealer.

    A dealer that chose C_0 from the others' (a rogue key, C_0 = X - sum of theirs) does not know
    its discrete logarithm and cannot answer; a proof copied from another dealer, DKG or context
    has another challenge."""
    nodes = _check_nodes(threshold, nodes)
    dealing = _check_dealing(dealing, threshold)
    r, z = dealing.proof_commitment, dealing.proof_response
    if not isinstance(r, G2) or type(z) is not int or not 0 <= z < R:
        raise VerificationError(f"dealer {dealing.dealer}: no proof of possession of its constant term")
    c0 = dealing.commitments[0]
    if c0.is_identity() or r.is_identity():
        raise VerificationError(f"dealer {dealing.dealer}: C_0 or the proof's R is the identity")
    if G2.generator() * z != r + c0 * pop_challenge(context, threshold, nodes, dealing.dealer, c0, r):
        raise VerificationError(f"dealer {dealing.dealer}: the proof of possession of its constant term "
                                "does not verify")


@dataclass(frozen=True)
class DistributedKey:
    """The public outcome of the DKG: P_pub and each node's verification key V_i = s_i * g2."""

    threshold: int
    params: PublicParams
    verification_keys: Mapping[int, G2]


def _distinct_dealers(dealings: Sequence[Dealing], nodes: Sequence[int]) -> None:
    if isinstance(dealings, (str, bytes, bytearray)) or not isinstance(dealings, Sequence) or not dealings:
        raise ParameterError("the DKG needs at least one qualified dealer")
    seen: set[int] = set()
    for d in dealings:
        _check_dealing(d)
        if d.dealer not in nodes:
            raise ParameterError(f"dealer {d.dealer} is not one of the PKG nodes")
        if d.dealer in seen:
            raise ParameterError(f"dealer {d.dealer} appears twice")
        seen.add(d.dealer)


def combine_dealings(dealings: Sequence[Dealing], threshold: int, nodes: Sequence[int],
                     context: bytes = b"") -> DistributedKey:
    """Spec 4.5.3: every dealer a distinct node with t commitments and a valid proof of possession
    of a_0 for ``context`` (VerificationError naming it); then P_pub = sum of the dealers' C_0 and
    V_i = sum of their commitments at i.  ParameterError if P_pub or a V_i is the identity."""
    nodes = _check_nodes(threshold, nodes)
    _distinct_dealers(dealings, nodes)
    for d in dealings:
        verify_possession(d, threshold, nodes, context)
    p_pub = G2.identity()
    for d in dealings:
        p_pub = p_pub + d.commitments[0]
    if p_pub.is_identity():
        raise ParameterError("the DKG gave s = 0 (probability 1/r); run it again")
    verification = {}
    for node in nodes:
        acc = G2.identity()
        for d in dealings:
            acc = acc + commitment_at(d.commitments, node)
        if acc.is_identity():
            raise ParameterError(f"the DKG gave node {node} the share 0 (probability 1/r); run it again")
        verification[node] = acc
    return DistributedKey(threshold, PublicParams(p_pub), verification)


def node_secret(dealings: Sequence[Dealing], node: int) -> int:
    """Spec 4.5.3: s_i = sum over qualified dealers of f_j(i), each dealt share checked first
    against its dealer's commitments (VerificationError naming the dealer); ParameterError for
    no dealing, a dealer twice, dealings of different degrees or a dealing without a share for i."""
    if isinstance(dealings, (str, bytes, bytearray)) or not isinstance(dealings, Sequence) or not dealings:
        raise ParameterError("dealings must be a non-empty sequence of Dealing")
    seen: set[int] = set()
    degree = None
    total = 0
    for d in dealings:
        _check_dealing(d)
        if d.dealer in seen:
            raise ParameterError(f"dealer {d.dealer} appears twice")
        seen.add(d.dealer)
        if degree is not None and len(d.commitments) != degree:
            raise VerificationError(f"dealer {d.dealer} committed to a polynomial of another degree")
        degree = len(d.commitments)
        if node not in d.shares:
            raise ParameterError(f"node {node} was not dealt a share by dealer {d.dealer}")
        verify_dealt_share(d, node, d.shares[node])
        total = (total + d.shares[node]) % R
    return total


def extract_share(secret_share: int, identity: bytes) -> G1:
    """d_i = s_i * Q_id: one node's share of the identity's key."""
    return identity_point(identity) * secret_share


def verify_key_share(key: DistributedKey, node: int, identity: bytes, share: G1) -> None:
    """e(d_i, g2) == e(Q_id, V_i); VerificationError naming the node otherwise."""
    if node not in key.verification_keys:
        raise VerificationError(f"key share from node {node}, which is not a PKG node")
    check = multi_pairing([(share, -G2.generator()), (identity_point(identity), key.verification_keys[node])])
    if share.is_identity() or not check.is_identity():
        raise VerificationError(f"the key share from node {node} is not s_{node} * Q_id")


def combine_key_shares(key: DistributedKey, identity: bytes, shares: Mapping[int, G1]) -> PrivateKey:
    """Check every share, then d_id = sum lambda_i d_i over the first t valid ones."""
    for node, share in shares.items():
        verify_key_share(key, node, identity, share)
    if len(shares) < key.threshold:
        raise RecoveryError(f"{len(shares)} key shares, {key.threshold} needed")
    nodes = sorted(shares)[:key.threshold]
    lambdas = shamir.lagrange_at_zero(nodes, prime=R)
    d = G1.identity()
    for node, lam in zip(nodes, lambdas):
        d = d + shares[node] * lam
    private = PrivateKey(_identity(identity), d)
    if not verify_private_key(key.params, private):
        raise VerificationError("the combined key does not verify against P_pub")
    return private
