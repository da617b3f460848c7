"""FROST(Ed25519, SHA-512): two-round threshold Schnorr signatures, RFC 9591.

D. Connolly, C. Komlo, I. Goldberg, C. A. Wood, "The Flexible Round-Optimized
Schnorr Threshold (FROST) Protocol for Two-Round Schnorr Signatures",
RFC 9591, June 2024.  Only the FROST(Ed25519, SHA-512) ciphersuite (RFC 9591
section 6.1) is implemented; its signatures are Ed25519 signatures (RFC 8032
section 5.1) under the group public key.  The spec is specs/frost.md; the
vectors are vectors/rfc9591.json (RFC 9591 Appendix E.1).

Layout follows the RFC:

* section 6.1, the ciphersuite: :data:`CONTEXT_STRING`, :func:`H1` .. :func:`H5`;
  the group is :mod:`protocols.primitives.ed25519`;
* section 4, helpers: :func:`nonce_generate` (4.1), :func:`derive_interpolating_value`
  (4.2), :func:`encode_group_commitment_list` and friends (4.3),
  :func:`compute_binding_factors` (4.4), :func:`compute_group_commitment` (4.5),
  :func:`compute_challenge` (4.6);
* section 5, signing: :func:`commit` (5.1), :func:`sign` (5.2), :func:`aggregate`
  (5.3), :func:`verify_signature_share` (5.3/5.4, identifiable abort), and
  :func:`verify` for the group signature (6.1);
* Appendix A, the signature encoding (:class:`Signature`);
* Appendix C, trusted dealer key generation: :func:`trusted_dealer_keygen`,
  :func:`secret_share_shard`, :func:`secret_share_combine`, :func:`vss_commit`,
  :func:`vss_verify`, :func:`derive_group_info`.

Beyond the RFC (labelled as such): :class:`Signer`, which holds round-one
nonces in memory only, keyed by their commitments, and spends them in
``sign`` (journalled to its store before the share exists) so that a nonce
pair can never sign twice (``ReplayError``), not even after the signer is
restored from a snapshot (:class:`SignerRecord`, specs/frost.md 5.5); :func:`aggregate_and_verify`,
the coordinator's full step with identifiable abort; and the distributed key
generation of the FROST paper (``dkg_*``), which RFC 9591 does not specify.

Randomness is injected: functions that draw take ``rng`` (``None`` means the
OS CSPRNG); every function whose output a vector pins takes its random bytes
explicitly (:func:`nonce_generate_from_randomness`, :func:`commit_with_randomness`,
:func:`secret_share_shard`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

from protocols.errors import DecodeError, ParameterError, ReplayError, StateError, VerificationError
from protocols.primitives import ed25519 as G
from protocols.primitives import hashing, opcount
from protocols.primitives.numtheory import count_modinv
from protocols.primitives.ed25519 import Element
from protocols.primitives.rand import RandomSource, resolve

CONTEXT_STRING = b"FROST-ED25519-SHA512-v1"
"""RFC 9591 section 6.1: the contextString of FROST(Ed25519, SHA-512)."""

SIGNATURE_BYTES = G.Ne + G.Ns
"""Appendix A: a signature is SerializeElement(R) || SerializeScalar(z), 64 bytes."""

COMMITMENT_BYTES = G.Ns + 2 * G.Ne
"""Wire size of :class:`SigningCommitments`: identifier || D || E (specs/frost.md section 5.1)."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _bytes(value: object, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise ParameterError(f"{name} must be bytes")
    return bytes(value)


# ---------------------------------------------------------------------------
# Section 6.1: the hash functions H1 .. H5
# ---------------------------------------------------------------------------


def _H(m: bytes) -> bytes:
    return hashing.sha512(m).digest()


def _to_scalar(digest: bytes) -> int:
    return int.from_bytes(digest, "little") % G.L


def H1(m: bytes) -> int:
    """RFC 9591 section 6.1: H(contextString || "rho" || m) as a little-endian integer mod L."""
    return _to_scalar(_H(CONTEXT_STRING + b"rho" + _bytes(m, "m")))


def H2(m: bytes) -> int:
    """RFC 9591 section 6.1: H(m) as a little-endian integer mod L.  No domain
    separator, for compatibility with RFC 8032 (the Ed25519 challenge)."""
    return _to_scalar(_H(_bytes(m, "m")))


def H3(m: bytes) -> int:
    """RFC 9591 section 6.1: H(contextString || "nonce" || m) as a little-endian integer mod L."""
    return _to_scalar(_H(CONTEXT_STRING + b"nonce" + _bytes(m, "m")))


def H4(m: bytes) -> bytes:
    """RFC 9591 section 6.1: H(contextString || "msg" || m), 64 bytes."""
    return _H(CONTEXT_STRING + b"msg" + _bytes(m, "m"))


def H5(m: bytes) -> bytes:
    """RFC 9591 section 6.1: H(contextString || "com" || m), 64 bytes."""
    return _H(CONTEXT_STRING + b"com" + _bytes(m, "m"))


# ---------------------------------------------------------------------------
# Identifiers, parameters and the data that flows between roles
# ---------------------------------------------------------------------------


def check_parameters(MIN_PARTICIPANTS: int, MAX_PARTICIPANTS: int) -> None:
    """RFC 9591 section 5: 1 <= MIN_PARTICIPANTS <= MAX_PARTICIPANTS < L.

    We also require MIN_PARTICIPANTS >= 2 (a 1-of-n "threshold" hands every
    participant the group secret; specs/frost.md section 3)."""
    if not _is_int(MIN_PARTICIPANTS) or not _is_int(MAX_PARTICIPANTS):
        raise ParameterError("MIN_PARTICIPANTS and MAX_PARTICIPANTS must be ints")
    if MIN_PARTICIPANTS < 2:
        raise ParameterError("MIN_PARTICIPANTS must be at least 2")
    if MAX_PARTICIPANTS < MIN_PARTICIPANTS:
        raise ParameterError("MAX_PARTICIPANTS must be at least MIN_PARTICIPANTS")
    if MAX_PARTICIPANTS >= G.L:
        raise ParameterError("MAX_PARTICIPANTS must be less than the group order")


def check_identifier(identifier: object, MAX_PARTICIPANTS: int | None = None) -> int:
    """RFC 9591 section 5: an identifier is a NonZeroScalar in [1, MAX_PARTICIPANTS]."""
    if not _is_int(identifier):
        raise ParameterError("participant identifier must be an int (bool refused)")
    upper = G.L - 1 if MAX_PARTICIPANTS is None else MAX_PARTICIPANTS
    if not 1 <= identifier <= upper:
        raise ParameterError(f"participant identifier {identifier} is not in [1, {upper}]")
    return identifier


def _check_element(value: object, name: str) -> Element:
    if not isinstance(value, Element):
        raise ParameterError(f"{name} must be an Element")
    if value.is_identity():
        raise ParameterError(f"{name} is the identity element")
    return value


@dataclass(frozen=True)
class SigningCommitments:
    """Round one's public output of participant ``identifier`` (RFC 9591 section
    5.1): (hiding_nonce_commitment, binding_nonce_commitment), one entry of a
    commitment_list.  Wire form: SerializeScalar(identifier) || D || E."""

    identifier: int
    hiding_nonce_commitment: Element
    binding_nonce_commitment: Element

    def __post_init__(self) -> None:
        check_identifier(self.identifier)
        _check_element(self.hiding_nonce_commitment, "hiding_nonce_commitment")
        _check_element(self.binding_nonce_commitment, "binding_nonce_commitment")

    def to_bytes(self) -> bytes:
        return (G.SerializeScalar(self.identifier) + G.SerializeElement(self.hiding_nonce_commitment)
                + G.SerializeElement(self.binding_nonce_commitment))

    @classmethod
    def from_bytes(cls, data: bytes) -> SigningCommitments:
        if not isinstance(data, (bytes, bytearray)) or len(data) != COMMITMENT_BYTES:
            raise DecodeError(f"signing commitments must be {COMMITMENT_BYTES} bytes")
        data = bytes(data)
        identifier = G.DeserializeScalar(data[:32])
        if identifier == 0:
            raise DecodeError("participant identifier 0 is not allowed")
        return cls(identifier, G.DeserializeElement(data[32:64]), G.DeserializeElement(data[64:96]))


@dataclass(frozen=True)
class SigningNonces:
    """Round one's secret output (RFC 9591 section 5.1): (hiding_nonce,
    binding_nonce), kept out of ``repr``, with the commitments they open.
    MUST be used in at most one ``sign``; :class:`Signer` enforces that."""

    hiding_nonce: int = field(repr=False)
    binding_nonce: int = field(repr=False)
    commitments: SigningCommitments

    def __post_init__(self) -> None:
        G.check_scalar(self.hiding_nonce, "hiding_nonce")
        G.check_scalar(self.binding_nonce, "binding_nonce")
        if not isinstance(self.commitments, SigningCommitments):
            raise ParameterError("commitments must be SigningCommitments")


@dataclass(frozen=True)
class SignatureShare:
    """Round two's output z_i of participant ``identifier`` (RFC 9591 section 5.2).
    Wire form: SerializeScalar(z_i), with the identifier known from the
    authenticated channel."""

    identifier: int
    share: int

    def __post_init__(self) -> None:
        check_identifier(self.identifier)
        G.check_scalar(self.share, "signature share")

    def to_bytes(self) -> bytes:
        return G.SerializeScalar(self.share)

    @classmethod
    def from_bytes(cls, identifier: int, data: bytes) -> SignatureShare:
        return cls(check_identifier(identifier), G.DeserializeScalar(data))


@dataclass(frozen=True)
class Signature:
    """A Schnorr signature (R, z); Appendix A encoding SerializeElement(R) ||
    SerializeScalar(z), which for this ciphersuite is an RFC 8032 Ed25519
    signature."""

    R: Element
    z: int

    def __post_init__(self) -> None:
        _check_element(self.R, "R")
        G.check_scalar(self.z, "z")

    def to_bytes(self) -> bytes:
        return G.SerializeElement(self.R) + G.SerializeScalar(self.z)

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        if not isinstance(data, (bytes, bytearray)) or len(data) != SIGNATURE_BYTES:
            raise DecodeError(f"a signature must be {SIGNATURE_BYTES} bytes")
        data = bytes(data)
        return cls(G.DeserializeElement(data[:32]), G.DeserializeScalar(data[32:]))


@dataclass(frozen=True)
class PublicKeyPackage:
    """The "group info" of RFC 9591 section 5: the group public key PK and
    every participant's public key PK_i, with the threshold parameters."""

    MIN_PARTICIPANTS: int
    MAX_PARTICIPANTS: int
    group_public_key: Element
    participant_public_keys: tuple[Element, ...]
    """PK_i for i = 1 .. MAX_PARTICIPANTS, in order (index i - 1)."""

    def __post_init__(self) -> None:
        check_parameters(self.MIN_PARTICIPANTS, self.MAX_PARTICIPANTS)
        _check_element(self.group_public_key, "group_public_key")
        if not isinstance(self.participant_public_keys, tuple) or \
                len(self.participant_public_keys) != self.MAX_PARTICIPANTS:
            raise ParameterError("participant_public_keys must be a tuple of MAX_PARTICIPANTS Elements")
        for i, pk in enumerate(self.participant_public_keys, start=1):
            _check_element(pk, f"public key of participant {i}")

    def public_key(self, identifier: int) -> Element:
        """PK_i; ParameterError for an identifier outside [1, MAX_PARTICIPANTS]."""
        return self.participant_public_keys[check_identifier(identifier, self.MAX_PARTICIPANTS) - 1]


@dataclass(frozen=True)
class KeyPackage:
    """What participant ``identifier`` holds (RFC 9591 section 5): its secret
    share sk_i (kept out of ``repr``), its verifying share PK_i = [sk_i]B and
    the group public key, with the threshold parameters."""

    identifier: int
    secret_share: int = field(repr=False)
    verifying_share: Element
    group_public_key: Element
    MIN_PARTICIPANTS: int
    MAX_PARTICIPANTS: int

    def __post_init__(self) -> None:
        check_parameters(self.MIN_PARTICIPANTS, self.MAX_PARTICIPANTS)
        check_identifier(self.identifier, self.MAX_PARTICIPANTS)
        G.check_scalar(self.secret_share, "secret share")
        _check_element(self.verifying_share, "verifying_share")
        _check_element(self.group_public_key, "group_public_key")
        if G.ScalarBaseMult(self.secret_share) != self.verifying_share:
            raise VerificationError(f"participant {self.identifier}: secret share does not match its verifying share")


# ---------------------------------------------------------------------------
# Section 4.1: nonce generation
# ---------------------------------------------------------------------------


def nonce_generate_from_randomness(secret: int, random_bytes: bytes) -> int:
    """RFC 9591 section 4.1, nonce_generate, with its 32 random bytes passed in:
    H3(random_bytes || SerializeScalar(secret))."""
    secret = G.check_scalar(secret, "secret")
    random_bytes = _bytes(random_bytes, "random_bytes")
    if len(random_bytes) != 32:
        raise ParameterError("nonce_generate needs exactly 32 random bytes")
    return H3(random_bytes + G.SerializeScalar(secret))


def nonce_generate(secret: int, rng: RandomSource | None = None) -> int:
    """RFC 9591 section 4.1, nonce_generate(secret): draws 32 bytes from ``rng``."""
    secret = G.check_scalar(secret, "secret")
    return nonce_generate_from_randomness(secret, resolve(rng).random_bytes(32))


# ---------------------------------------------------------------------------
# Section 4.2: polynomials
# ---------------------------------------------------------------------------


def derive_interpolating_value(L: Sequence[int], x_i: int) -> int:
    """RFC 9591 section 4.2: the Lagrange coefficient of x_i at 0 over the
    x-coordinates L.  ParameterError ("invalid parameters") if x_i is not in L,
    an x-coordinate repeats, or one is not a NonZeroScalar."""
    xs = list(L)
    for x in xs:
        check_identifier(x)
    if x_i not in xs:
        raise ParameterError(f"invalid parameters: {x_i} is not in the list of x-coordinates")
    if len(set(xs)) != len(xs):
        raise ParameterError("invalid parameters: an x-coordinate appears more than once")
    numerator = 1
    denominator = 1
    for x_j in xs:
        if x_j == x_i:
            continue
        numerator = numerator * x_j % G.L
        denominator = denominator * (x_j - x_i) % G.L
    if opcount.active():
        count_modinv(G.L)
    return numerator * pow(denominator, -1, G.L) % G.L


def polynomial_evaluate(x: int, coeffs: Sequence[int]) -> int:
    """RFC 9591 Appendix C.1: f(x) by Horner's rule, coefficients constant term first."""
    value = 0
    for coeff in reversed(coeffs):
        value = (value * x + coeff) % G.L
    return value


def polynomial_interpolate_constant(points: Sequence[tuple[int, int]]) -> int:
    """RFC 9591 Appendix C.1: f(0) from points (x, f(x)) with distinct x."""
    x_coords = [x for x, _ in points]
    return sum(y * derive_interpolating_value(x_coords, x) for x, y in points) % G.L


# ---------------------------------------------------------------------------
# Section 4.3: list operations, and the section 5 input validation
# ---------------------------------------------------------------------------


def validate_commitment_list(commitment_list: Sequence[SigningCommitments],
                             MIN_PARTICIPANTS: int, MAX_PARTICIPANTS: int,
                             identifier: int | None = None) -> list[SigningCommitments]:
    """The input checks of RFC 9591 sections 5.2 and 5.3 on a commitment_list:
    SigningCommitments entries, identifiers in [1, MAX_PARTICIPANTS], sorted
    ascending with no duplicates (section 4.3 "MUST be sorted"), between
    MIN_PARTICIPANTS and MAX_PARTICIPANTS entries, and (for a signer) including
    ``identifier``.  ParameterError otherwise."""
    check_parameters(MIN_PARTICIPANTS, MAX_PARTICIPANTS)
    if not isinstance(commitment_list, Sequence) or isinstance(commitment_list, (bytes, str)):
        raise ParameterError("commitment_list must be a sequence of SigningCommitments")
    entries = list(commitment_list)
    if not all(isinstance(c, SigningCommitments) for c in entries):
        raise ParameterError("commitment_list entries must be SigningCommitments")
    for c in entries:
        check_identifier(c.identifier, MAX_PARTICIPANTS)
    ids = [c.identifier for c in entries]
    if len(set(ids)) != len(ids):
        raise ParameterError("commitment_list has a duplicate identifier")
    if ids != sorted(ids):
        raise ParameterError("commitment_list is not sorted in ascending order by identifier")
    if not MIN_PARTICIPANTS <= len(entries) <= MAX_PARTICIPANTS:
        raise ParameterError(
            f"commitment_list has {len(entries)} entries; between {MIN_PARTICIPANTS} "
            f"and {MAX_PARTICIPANTS} are needed")
    if identifier is not None and identifier not in ids:
        raise ParameterError(f"participant {identifier} is not in the commitment_list")
    return entries


def _check_sorted_list(commitment_list: Sequence[SigningCommitments]) -> list[SigningCommitments]:
    """The structural checks every section 4 helper needs (no parameters known)."""
    if not isinstance(commitment_list, Sequence) or isinstance(commitment_list, (bytes, str)):
        raise ParameterError("commitment_list must be a sequence of SigningCommitments")
    entries = list(commitment_list)
    if not entries or not all(isinstance(c, SigningCommitments) for c in entries):
        raise ParameterError("commitment_list must be a non-empty sequence of SigningCommitments")
    ids = [c.identifier for c in entries]
    if any(b <= a for a, b in zip(ids, ids[1:])):
        raise ParameterError("commitment_list is not sorted in ascending order by identifier without duplicates")
    return entries


def encode_group_commitment_list(commitment_list: Sequence[SigningCommitments]) -> bytes:
    """RFC 9591 section 4.3: the concatenation, over the sorted list, of
    SerializeScalar(i) || SerializeElement(D_i) || SerializeElement(E_i)."""
    return b"".join(c.to_bytes() for c in _check_sorted_list(commitment_list))


def participants_from_commitment_list(commitment_list: Sequence[SigningCommitments]) -> list[int]:
    """RFC 9591 section 4.3: the identifiers of the list, in order."""
    return [c.identifier for c in _check_sorted_list(commitment_list)]


def binding_factor_for_participant(binding_factor_list: Sequence[tuple[int, int]], identifier: int) -> int:
    """RFC 9591 section 4.3; ParameterError ("invalid participant") when unknown."""
    for i, binding_factor in binding_factor_list:
        if i == identifier:
            return binding_factor
    raise ParameterError(f"invalid participant: {identifier} is not in the signing set")


# ---------------------------------------------------------------------------
# Sections 4.4 - 4.6
# ---------------------------------------------------------------------------


def compute_binding_factor_inputs(group_public_key: Element, commitment_list: Sequence[SigningCommitments],
                                  msg: bytes) -> list[tuple[int, bytes]]:
    """RFC 9591 section 4.4, the rho_input of each participant:
    SerializeElement(PK) || H4(msg) || H5(encode_group_commitment_list(list)) || SerializeScalar(i).
    (Exposed because Appendix E lists it as binding_factor_input.)"""
    msg = _bytes(msg, "msg")
    entries = _check_sorted_list(commitment_list)
    prefix = (G.SerializeElement(_check_element(group_public_key, "group_public_key"))
              + H4(msg) + H5(encode_group_commitment_list(entries)))
    return [(c.identifier, prefix + G.SerializeScalar(c.identifier)) for c in entries]


def compute_binding_factors(group_public_key: Element, commitment_list: Sequence[SigningCommitments],
                            msg: bytes) -> list[tuple[int, int]]:
    """RFC 9591 section 4.4: [(i, H1(rho_input_i)), ...] in list order."""
    return [(i, H1(rho_input)) for i, rho_input in
            compute_binding_factor_inputs(group_public_key, commitment_list, msg)]


def compute_group_commitment(commitment_list: Sequence[SigningCommitments],
                             binding_factor_list: Sequence[tuple[int, int]]) -> Element:
    """RFC 9591 section 4.5: R = sum_i (D_i + [rho_i] E_i)."""
    group_commitment = G.Identity()
    for c in _check_sorted_list(commitment_list):
        binding_factor = binding_factor_for_participant(binding_factor_list, c.identifier)
        group_commitment = (group_commitment + c.hiding_nonce_commitment
                            + G.ScalarMult(c.binding_nonce_commitment, binding_factor))
    return group_commitment


def compute_challenge(group_commitment: Element, group_public_key: Element, msg: bytes) -> int:
    """RFC 9591 section 4.6: H2(SerializeElement(R) || SerializeElement(PK) || msg)."""
    return H2(G.SerializeElement(group_commitment) + G.SerializeElement(group_public_key) + _bytes(msg, "msg"))


# ---------------------------------------------------------------------------
# Section 5.1: round one
# ---------------------------------------------------------------------------


def commit_with_randomness(identifier: int, sk_i: int, hiding_nonce_randomness: bytes,
                           binding_nonce_randomness: bytes) -> tuple[SigningNonces, SigningCommitments]:
    """RFC 9591 section 5.1, commit(sk_i), with the 32 random bytes of each
    nonce_generate call passed in (hiding first, as the RFC calls them)."""
    check_identifier(identifier)
    sk_i = G.check_scalar(sk_i, "sk_i")
    hiding_nonce = nonce_generate_from_randomness(sk_i, hiding_nonce_randomness)
    binding_nonce = nonce_generate_from_randomness(sk_i, binding_nonce_randomness)
    comms = SigningCommitments(identifier, G.ScalarBaseMult(hiding_nonce), G.ScalarBaseMult(binding_nonce))
    return SigningNonces(hiding_nonce, binding_nonce, comms), comms


def commit(identifier: int, sk_i: int, rng: RandomSource | None = None) -> tuple[SigningNonces, SigningCommitments]:
    """RFC 9591 section 5.1, commit(sk_i): two nonce_generate calls, the hiding
    nonce's 32 bytes drawn from ``rng`` first, then the binding nonce's."""
    source = resolve(rng)
    hiding_randomness = source.random_bytes(32)
    binding_randomness = source.random_bytes(32)
    return commit_with_randomness(identifier, sk_i, hiding_randomness, binding_randomness)


# ---------------------------------------------------------------------------
# Section 5.2: round two
# ---------------------------------------------------------------------------


def sign(identifier: int, sk_i: int, group_public_key: Element, nonce_i: SigningNonces,
         msg: bytes, commitment_list: Sequence[SigningCommitments]) -> SignatureShare:
    """RFC 9591 section 5.2, sign: z_i = d_i + e_i rho_i + lambda_i sk_i c.

    Low-level: this function cannot know whether ``nonce_i`` was used before.
    Callers MUST use each nonce pair once (section 5.2); :class:`Signer` does
    that for them and is what the protocols use.  The inputs are checked as
    section 5.2 requires: the list is sorted without duplicates and contains
    ``identifier`` with exactly the commitments of ``nonce_i``.
    """
    check_identifier(identifier)
    sk_i = G.check_scalar(sk_i, "sk_i")
    _check_element(group_public_key, "group_public_key")
    if not isinstance(nonce_i, SigningNonces):
        raise ParameterError("nonce_i must be SigningNonces")
    entries = _check_sorted_list(commitment_list)
    mine = [c for c in entries if c.identifier == identifier]
    if not mine:
        raise ParameterError(f"participant {identifier} is not in the commitment_list")
    if mine[0] != nonce_i.commitments:
        raise ParameterError(f"the commitment_list does not carry participant {identifier}'s round-one commitments")
    binding_factor_list = compute_binding_factors(group_public_key, entries, msg)
    binding_factor = binding_factor_for_participant(binding_factor_list, identifier)
    group_commitment = compute_group_commitment(entries, binding_factor_list)
    lambda_i = derive_interpolating_value(participants_from_commitment_list(entries), identifier)
    challenge = compute_challenge(group_commitment, group_public_key, msg)
    sig_share = (nonce_i.hiding_nonce + nonce_i.binding_nonce * binding_factor
                 + lambda_i * sk_i * challenge) % G.L
    return SignatureShare(identifier, sig_share)


@dataclass(frozen=True)
class SignerRecord:
    """What a participant's durable store holds (beyond the RFC; specs/frost.md
    section 5.5): its key package and the encodings of every commitment it
    has spent.  It never holds pending nonces, so no backup, export or copy
    of it can re-arm one."""

    key_package: KeyPackage
    spent: frozenset[bytes]

    def __post_init__(self) -> None:
        if not isinstance(self.key_package, KeyPackage):
            raise ParameterError("a signer record needs a KeyPackage")
        if not isinstance(self.spent, frozenset) or not all(
                isinstance(k, bytes) and len(k) == COMMITMENT_BYTES for k in self.spent):
            raise ParameterError(f"spent must be a frozenset of {COMMITMENT_BYTES}-byte commitment encodings")


@dataclass
class Signer:
    """A participant's signing state (beyond the RFC; specs/frost.md section 5.5).

    ``commit`` keeps the fresh nonces in memory only, keyed by the encoding of
    their commitments; they are not a dataclass field, and a copy, deep copy,
    pickle, :meth:`export` or :func:`dataclasses.replace` of a Signer carries
    none of them, so restoring any snapshot drops every pending nonce.
    ``sign`` finds this participant's commitments in the coordinator's list,
    removes the matching nonces, adds the commitments to ``spent`` and hands
    the new :class:`SignerRecord` to ``journal`` (the durable store's write)
    *before* computing the share; if the journal raises, no share is made.
    A second ``sign`` with the same commitments raises ReplayError (RFC 9591
    section 5.2: "MUST NOT use the nonce as input more than once").
    """

    key_package: KeyPackage
    spent: set[bytes] = field(default_factory=set, repr=False)
    journal: Callable[[SignerRecord], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key_package, KeyPackage):
            raise ParameterError("Signer needs a KeyPackage")
        if not isinstance(self.spent, set):
            raise ParameterError("spent must be a set of commitment encodings")
        if self.journal is not None and not callable(self.journal):
            raise ParameterError("journal must be callable")
        self._pending: dict[bytes, SigningNonces] = {}

    def __getstate__(self) -> dict:
        """Copies and pickles leave the pending nonces behind (section 5.5)."""
        return {k: v for k, v in self.__dict__.items() if k != "_pending"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pending = {}

    def export(self) -> SignerRecord:
        """The durable part of this signer: key package and spent commitments, no nonces."""
        return SignerRecord(self.key_package, frozenset(self.spent))

    @classmethod
    def restore(cls, record: SignerRecord, journal: Callable[[SignerRecord], None] | None = None) -> Signer:
        """A signer from its durable record (a restart or a restore from backup): no pending nonces."""
        if not isinstance(record, SignerRecord):
            raise ParameterError("restore needs a SignerRecord")
        return cls(record.key_package, set(record.spent), journal)

    @property
    def identifier(self) -> int:
        return self.key_package.identifier

    def commit(self, rng: RandomSource | None = None) -> SigningCommitments:
        """Round one (RFC 9591 section 5.1): fresh nonces, kept in memory; returns the commitments."""
        nonces, comms = commit(self.identifier, self.key_package.secret_share, rng)
        key = comms.to_bytes()
        if key in self._pending or key in self.spent:  # only with a broken rng
            raise ReplayError(f"participant {self.identifier}: round one produced commitments seen before")
        self._pending[key] = nonces
        return comms

    @property
    def pending(self) -> int:
        """How many commitments await a ``sign``."""
        return len(self._pending)

    def sign(self, msg: bytes, commitment_list: Sequence[SigningCommitments]) -> SignatureShare:
        """Round two (RFC 9591 section 5.2) with the section 5.2 input checks;
        spends the nonces behind this participant's entry of the list and
        journals that before the share exists (specs/frost.md section 5.5)."""
        kp = self.key_package
        entries = validate_commitment_list(commitment_list, kp.MIN_PARTICIPANTS, kp.MAX_PARTICIPANTS,
                                           kp.identifier)
        mine = next(c for c in entries if c.identifier == kp.identifier)
        key = mine.to_bytes()
        if key in self.spent:
            raise ReplayError(f"participant {kp.identifier}: these nonces have already been used to sign")
        nonces = self._pending.pop(key, None)
        if nonces is None:
            raise StateError(f"participant {kp.identifier}: no pending round-one nonces match its commitments "
                             f"in the list (never made here, or dropped by a restart or restore)")
        self.spent.add(key)
        if self.journal is not None:
            self.journal(self.export())
        return sign(kp.identifier, kp.secret_share, kp.group_public_key, nonces, msg, entries)


# ---------------------------------------------------------------------------
# Section 5.3: aggregation; identifiable abort
# ---------------------------------------------------------------------------


def _shares_for(entries: list[SigningCommitments], sig_shares: Sequence[SignatureShare]) -> dict[int, SignatureShare]:
    if not isinstance(sig_shares, Sequence) or not all(isinstance(s, SignatureShare) for s in sig_shares):
        raise ParameterError("sig_shares must be a sequence of SignatureShare")
    ids = {c.identifier for c in entries}
    by_id: dict[int, SignatureShare] = {}
    for share in sig_shares:
        if share.identifier not in ids:
            raise VerificationError(
                f"signature share from participant {share.identifier}, who is not in the signing set")
        if share.identifier in by_id:
            raise VerificationError(f"two signature shares from participant {share.identifier}")
        by_id[share.identifier] = share
    missing = sorted(ids - by_id.keys())
    if missing:
        raise ParameterError(f"no signature share from participant(s) {missing}")
    return by_id


def aggregate(commitment_list: Sequence[SigningCommitments], msg: bytes, group_public_key: Element,
              sig_shares: Sequence[SignatureShare]) -> Signature:
    """RFC 9591 section 5.3, aggregate: (R, z = sum z_i).

    Inputs checked first: the list is sorted without duplicates; there is
    exactly one share per listed participant (a share from a participant
    outside the list is a VerificationError naming it, a missing one a
    ParameterError).  The coordinator SHOULD then :func:`verify` the result;
    :func:`aggregate_and_verify` does both, with identifiable abort.
    """
    entries = _check_sorted_list(commitment_list)
    by_id = _shares_for(entries, sig_shares)
    binding_factor_list = compute_binding_factors(group_public_key, entries, msg)
    group_commitment = compute_group_commitment(entries, binding_factor_list)
    z = sum(share.share for share in by_id.values()) % G.L
    return Signature(group_commitment, z)


def verify_signature_share(identifier: int, PK_i: Element, comm_i: SigningCommitments, sig_share_i: int,
                           commitment_list: Sequence[SigningCommitments], group_public_key: Element,
                           msg: bytes) -> None:
    """RFC 9591 section 5.3 (used for identifiable abort, section 5.4):
    [z_i]B == D_i + [rho_i]E_i + [c lambda_i]PK_i.

    Raises VerificationError naming ``identifier`` when the share is invalid
    (the RFC's "return False"); returns None when it is valid.
    """
    check_identifier(identifier)
    _check_element(PK_i, "PK_i")
    sig_share_i = G.check_scalar(sig_share_i, "sig_share_i")
    entries = _check_sorted_list(commitment_list)
    if not isinstance(comm_i, SigningCommitments) or comm_i.identifier != identifier:
        raise ParameterError(f"comm_i is not participant {identifier}'s commitments")
    if comm_i not in entries:
        raise VerificationError(f"participant {identifier}'s commitments are not in the commitment_list")
    binding_factor_list = compute_binding_factors(group_public_key, entries, msg)
    binding_factor = binding_factor_for_participant(binding_factor_list, identifier)
    group_commitment = compute_group_commitment(entries, binding_factor_list)
    comm_share = comm_i.hiding_nonce_commitment + G.ScalarMult(comm_i.binding_nonce_commitment, binding_factor)
    challenge = compute_challenge(group_commitment, group_public_key, msg)
    lambda_i = derive_interpolating_value(participants_from_commitment_list(entries), identifier)
    l = G.ScalarBaseMult(sig_share_i)
    r = comm_share + G.ScalarMult(PK_i, challenge * lambda_i)
    if l != r:
        raise VerificationError(f"invalid signature share from participant {identifier}")


def aggregate_and_verify(group_info: PublicKeyPackage, commitment_list: Sequence[SigningCommitments],
                         msg: bytes, sig_shares: Sequence[SignatureShare]) -> Signature:
    """The coordinator's step (RFC 9591 sections 5.3 and 5.4): validate the
    list against the group parameters, aggregate, verify the signature; if it
    does not verify, check every share and raise VerificationError naming the
    first participant whose share is invalid (identifiable abort)."""
    entries = validate_commitment_list(commitment_list, group_info.MIN_PARTICIPANTS, group_info.MAX_PARTICIPANTS)
    signature = aggregate(entries, msg, group_info.group_public_key, sig_shares)
    try:
        verify(msg, signature, group_info.group_public_key)
        return signature
    except VerificationError:
        pass
    for share in sorted(sig_shares, key=lambda s: s.identifier):
        comm_i = next(c for c in entries if c.identifier == share.identifier)
        verify_signature_share(share.identifier, group_info.public_key(share.identifier), comm_i,
                               share.share, entries, group_info.group_public_key, msg)
    raise VerificationError("the aggregate signature does not verify although every share does")  # pragma: no cover


def verify(msg: bytes, signature: Signature | bytes, group_public_key: Element | bytes) -> None:
    """Verify a FROST(Ed25519, SHA-512) signature (RFC 9591 section 6.1):
    RFC 8032 section 5.1.7 with the cofactored equation [8][z]B = [8]R + [8][c]PK.

    R and PK are deserialized with DeserializeElement, so both lie in the
    prime-order subgroup, where the cofactored and cofactorless equations
    agree; we check [z]B == R + [c]PK.  This is stricter than a plain RFC 8032
    verifier (it refuses an R or PK with a small-order component, which a
    FROST signer never produces).  A FROST(Ed25519) signature MUST also verify
    under any plain RFC 8032 Ed25519 verifier with PK as the public key;
    tests/test_frost.py checks that with ``cryptography``'s Ed25519PublicKey.
    Raises VerificationError (or DecodeError for a malformed encoding).
    """
    if isinstance(signature, (bytes, bytearray)):
        signature = Signature.from_bytes(signature)
    if not isinstance(signature, Signature):
        raise ParameterError("signature must be a Signature or its 64-byte encoding")
    if isinstance(group_public_key, (bytes, bytearray)):
        group_public_key = G.DeserializeElement(group_public_key)
    _check_element(group_public_key, "group_public_key")
    c = compute_challenge(signature.R, group_public_key, msg)
    if G.ScalarBaseMult(signature.z) != signature.R + G.ScalarMult(group_public_key, c):
        raise VerificationError("FROST(Ed25519, SHA-512) signature does not verify under the group public key")


# ---------------------------------------------------------------------------
# Appendix C: trusted dealer key generation
# ---------------------------------------------------------------------------


def secret_share_shard(s: int, coefficients: Sequence[int], MAX_PARTICIPANTS: int
                       ) -> tuple[list[tuple[int, int]], list[int]]:
    """RFC 9591 Appendix C.1: shares (i, f(i)) for i = 1 .. MAX_PARTICIPANTS of
    f = s + coefficients[0] x + ..., and the full coefficient list [s] + coefficients."""
    s = G.check_scalar(s, "s")
    coeffs = [s] + [G.check_scalar(a, "coefficient") for a in coefficients]
    if not _is_int(MAX_PARTICIPANTS) or not 1 <= MAX_PARTICIPANTS < G.L:
        raise ParameterError("MAX_PARTICIPANTS must be an int in [1, L - 1]")
    if len(coeffs) > MAX_PARTICIPANTS:
        raise ParameterError("more coefficients than participants: the secret could never be recovered")
    return [(x, polynomial_evaluate(x, coeffs)) for x in range(1, MAX_PARTICIPANTS + 1)], coeffs


def secret_share_combine(shares: Sequence[tuple[int, int]], MIN_PARTICIPANTS: int) -> int:
    """RFC 9591 Appendix C.1: s = f(0) from at least MIN_PARTICIPANTS shares."""
    if len(shares) < MIN_PARTICIPANTS:
        raise ParameterError("invalid parameters: fewer than MIN_PARTICIPANTS shares")
    return polynomial_interpolate_constant(list(shares))


def vss_commit(coeffs: Sequence[int]) -> list[Element]:
    """RFC 9591 Appendix C.2: [a_j]B for each coefficient."""
    return [G.ScalarBaseMult(G.check_scalar(a, "coefficient")) for a in coeffs]


def _commitment_at(vss_commitment: Sequence[Element], i: int) -> Element:
    """sum_j [i^j] C_j (the public image of f(i))."""
    acc = G.Identity()
    power = 1
    for C_j in vss_commitment:
        acc = acc + G.ScalarMult(C_j, power)
        power = power * i % G.L
    return acc


def vss_verify(share_i: tuple[int, int], vss_commitment: Sequence[Element]) -> None:
    """RFC 9591 Appendix C.2: [sk_i]B == sum_j [i^j] C_j.  VerificationError
    naming participant i when it fails (the RFC's "return False")."""
    i, secret_key_i = share_i
    check_identifier(i)
    G.check_scalar(secret_key_i, "secret_key_i")
    if not vss_commitment or not all(isinstance(C, Element) for C in vss_commitment):
        raise ParameterError("vss_commitment must be a non-empty list of Elements")
    if G.ScalarBaseMult(secret_key_i) != _commitment_at(vss_commitment, i):
        raise VerificationError(f"share of participant {i} does not match the VSS commitment")


def derive_group_info(MAX_PARTICIPANTS: int, MIN_PARTICIPANTS: int, vss_commitment: Sequence[Element]
                      ) -> tuple[Element, list[Element]]:
    """RFC 9591 Appendix C.2: PK = C_0 and PK_i = sum_j [i^j] C_j, i = 1 .. MAX."""
    check_parameters(MIN_PARTICIPANTS, MAX_PARTICIPANTS)
    if len(vss_commitment) != MIN_PARTICIPANTS or not all(isinstance(C, Element) for C in vss_commitment):
        raise ParameterError("vss_commitment must hold MIN_PARTICIPANTS Elements")
    return vss_commitment[0], [_commitment_at(vss_commitment, i) for i in range(1, MAX_PARTICIPANTS + 1)]


def trusted_dealer_keygen(secret_key: int, MAX_PARTICIPANTS: int, MIN_PARTICIPANTS: int,
                          rng: RandomSource | None = None
                          ) -> tuple[list[tuple[int, int]], Element, list[Element]]:
    """RFC 9591 Appendix C: MIN_PARTICIPANTS - 1 random coefficients (drawn in
    order with RandomScalar), secret_share_shard, vss_commit.  Returns
    (participant_private_keys, group_public_key, vss_commitment).  The dealer
    learns the group secret; :func:`dkg_part1` .. :func:`dkg_part3` avoid that."""
    check_parameters(MIN_PARTICIPANTS, MAX_PARTICIPANTS)
    secret_key = G.check_scalar(secret_key, "secret_key")
    if secret_key == 0:
        raise ParameterError("secret_key must be non-zero")
    source = resolve(rng)
    coefficients = [G.RandomScalar(source) for _ in range(MIN_PARTICIPANTS - 1)]
    participant_private_keys, coeffs = secret_share_shard(secret_key, coefficients, MAX_PARTICIPANTS)
    vss_commitment = vss_commit(coeffs)
    return participant_private_keys, vss_commitment[0], vss_commitment


def key_packages_from_dealer(participant_private_keys: Sequence[tuple[int, int]], vss_commitment: Sequence[Element],
                             MAX_PARTICIPANTS: int, MIN_PARTICIPANTS: int
                             ) -> tuple[list[KeyPackage], PublicKeyPackage]:
    """Each participant's checks of Appendix C (vss_verify of its share), then
    its KeyPackage, and the group info from derive_group_info."""
    group_public_key, public_keys = derive_group_info(MAX_PARTICIPANTS, MIN_PARTICIPANTS, vss_commitment)
    packages = []
    for i, sk_i in participant_private_keys:
        vss_verify((i, sk_i), vss_commitment)
        packages.append(KeyPackage(i, sk_i, public_keys[i - 1], group_public_key, MIN_PARTICIPANTS, MAX_PARTICIPANTS))
    return packages, PublicKeyPackage(MIN_PARTICIPANTS, MAX_PARTICIPANTS, group_public_key, tuple(public_keys))


# ---------------------------------------------------------------------------
# Distributed key generation (beyond RFC 9591; specs/frost.md section 7)
# ---------------------------------------------------------------------------
#
# RFC 9591 does not specify a distributed key generation (section 5 leaves
# key distribution out of scope; Appendix C gives a trusted dealer only).  This
# is the KeyGen of the FROST paper: C. Komlo and I. Goldberg, "FROST:
# Flexible Round-Optimized Schnorr Threshold Signatures", SAC 2020, Figure 1:
# every participant deals a Feldman VSS of a random constant term and proves
# knowledge of that term with a Schnorr proof bound to its identifier and the
# context; no party ever holds the group secret.  The proof's hash is ours
# (the paper leaves it abstract) and is defined exactly in dkg_challenge.

DKG_LABEL = b"dkg"
"""Domain separator of H_DKG: SHA-512(contextString || "dkg" || m) mod L."""


def H_DKG(m: bytes) -> int:
    """The DKG proof-of-knowledge hash (specs/frost.md section 7.2):
    H(contextString || "dkg" || m) as a little-endian integer mod L."""
    return _to_scalar(_H(CONTEXT_STRING + DKG_LABEL + _bytes(m, "m")))


def dkg_challenge(identifier: int, MIN_PARTICIPANTS: int, MAX_PARTICIPANTS: int, context: bytes,
                  constant_commitment: Element, R: Element) -> int:
    """c_i = H_DKG(SerializeScalar(i) || I2OSP(MIN, 4) || I2OSP(MAX, 4) ||
    I2OSP(len(context), 8) || context || SerializeElement(phi_i0) || SerializeElement(R_i))
    (Komlo-Goldberg Figure 1, round 1 step 2: c_i = H(i, Phi, g^{a_i0}, R_i),
    with the threshold parameters bound as well)."""
    context = _bytes(context, "context")
    return H_DKG(G.SerializeScalar(check_identifier(identifier)) + MIN_PARTICIPANTS.to_bytes(4, "big")
                 + MAX_PARTICIPANTS.to_bytes(4, "big") + len(context).to_bytes(8, "big") + context
                 + G.SerializeElement(constant_commitment) + G.SerializeElement(R))


@dataclass(frozen=True)
class DkgRound1Package:
    """What participant ``identifier`` broadcasts in round 1: the Feldman
    commitment (phi_i0, ..., phi_i(t-1)) and the proof (R_i, mu_i)."""

    identifier: int
    commitment: tuple[Element, ...]
    proof_R: Element
    proof_mu: int

    def __post_init__(self) -> None:
        check_identifier(self.identifier)
        if not isinstance(self.commitment, tuple) or not self.commitment:
            raise ParameterError("commitment must be a non-empty tuple of Elements")
        for k, phi in enumerate(self.commitment):
            _check_element(phi, f"commitment[{k}] of participant {self.identifier}")
        _check_element(self.proof_R, "proof_R")
        G.check_scalar(self.proof_mu, "proof_mu")


@dataclass(frozen=True)
class DkgSecretPackage:
    """What participant ``identifier`` keeps between the rounds: its
    polynomial's coefficients (secret, kept out of ``repr``)."""

    identifier: int
    coefficients: tuple[int, ...] = field(repr=False)
    MIN_PARTICIPANTS: int
    MAX_PARTICIPANTS: int
    context: bytes
    package: DkgRound1Package


@dataclass(frozen=True)
class DkgShare:
    """f_sender(recipient), sent privately in round 2 (secret, out of ``repr``)."""

    sender: int
    recipient: int
    value: int = field(repr=False)

    def __post_init__(self) -> None:
        check_identifier(self.sender)
        check_identifier(self.recipient)
        G.check_scalar(self.value, "DKG share")


def dkg_part1(identifier: int, MAX_PARTICIPANTS: int, MIN_PARTICIPANTS: int, context: bytes,
              rng: RandomSource | None = None) -> tuple[DkgSecretPackage, DkgRound1Package]:
    """Komlo-Goldberg Figure 1, round 1, steps 1-3 for participant ``identifier``:
    draw a_i0, ..., a_i(t-1) (in that order) and the proof nonce k with
    RandomScalar, commit phi_ij = [a_ij]B, prove knowledge of a_i0:
    R_i = [k]B, mu_i = k + a_i0 c_i with c_i = :func:`dkg_challenge`.

    ``context`` (the paper's Phi) must be unique to this key generation (e.g.
    the group's name and a session identifier); every participant uses the same."""
    check_parameters(MIN_PARTICIPANTS, MAX_PARTICIPANTS)
    check_identifier(identifier, MAX_PARTICIPANTS)
    context = _bytes(context, "context")
    source = resolve(rng)
    coefficients = [G.RandomScalar(source) for _ in range(MIN_PARTICIPANTS)]
    if coefficients[0] == 0:  # probability 1/L; a zero constant term would be the identity
        raise ParameterError("drew a zero constant term; run dkg_part1 again")
    k = G.RandomScalar(source)
    commitment = tuple(vss_commit(coefficients))
    R = G.ScalarBaseMult(k)
    c = dkg_challenge(identifier, MIN_PARTICIPANTS, MAX_PARTICIPANTS, context, commitment[0], R)
    package = DkgRound1Package(identifier, commitment, R, (k + coefficients[0] * c) % G.L)
    return (DkgSecretPackage(identifier, tuple(coefficients), MIN_PARTICIPANTS, MAX_PARTICIPANTS, context, package),
            package)


def dkg_verify_proof(package: DkgRound1Package, MIN_PARTICIPANTS: int, MAX_PARTICIPANTS: int,
                     context: bytes) -> None:
    """Komlo-Goldberg Figure 1, round 1 step 5: the commitment has t entries and
    R_l == [mu_l]B - [c_l]phi_l0.  VerificationError naming participant l otherwise."""
    if not isinstance(package, DkgRound1Package):
        raise ParameterError("package must be a DkgRound1Package")
    check_identifier(package.identifier, MAX_PARTICIPANTS)
    if len(package.commitment) != MIN_PARTICIPANTS:
        raise VerificationError(
            f"participant {package.identifier}: commitment has {len(package.commitment)} entries, "
            f"{MIN_PARTICIPANTS} expected")
    c = dkg_challenge(package.identifier, MIN_PARTICIPANTS, MAX_PARTICIPANTS, context,
                      package.commitment[0], package.proof_R)
    if package.proof_R != G.ScalarBaseMult(package.proof_mu) - G.ScalarMult(package.commitment[0], c):
        raise VerificationError(f"participant {package.identifier}: invalid proof of knowledge of its constant term")


def _check_round1(secret: DkgSecretPackage, round1_packages: Mapping[int, DkgRound1Package]) -> None:
    if not isinstance(secret, DkgSecretPackage):
        raise ParameterError("secret must be a DkgSecretPackage")
    if not isinstance(round1_packages, Mapping):
        raise ParameterError("round1_packages must map identifiers to DkgRound1Package")
    expected = set(range(1, secret.MAX_PARTICIPANTS + 1))
    if set(round1_packages) != expected:
        raise ParameterError(f"round 1 packages must come from exactly participants 1..{secret.MAX_PARTICIPANTS}")
    for l, package in sorted(round1_packages.items()):
        if not isinstance(package, DkgRound1Package) or package.identifier != l:
            raise ParameterError(f"round 1 package filed under {l} is not participant {l}'s")
    if round1_packages[secret.identifier] != secret.package:
        raise VerificationError(f"participant {secret.identifier}'s own round 1 package was altered")
    for l, package in sorted(round1_packages.items()):
        if l != secret.identifier:
            dkg_verify_proof(package, secret.MIN_PARTICIPANTS, secret.MAX_PARTICIPANTS, secret.context)


def dkg_part2(secret: DkgSecretPackage, round1_packages: Mapping[int, DkgRound1Package]) -> dict[int, DkgShare]:
    """Komlo-Goldberg Figure 1, round 2 step 1, after round 1 step 5: verify
    every other participant's proof (VerificationError naming a culprit), then
    compute f_i(l) for every other participant l, to be sent privately."""
    _check_round1(secret, round1_packages)
    return {l: DkgShare(secret.identifier, l, polynomial_evaluate(l, secret.coefficients))
            for l in range(1, secret.MAX_PARTICIPANTS + 1) if l != secret.identifier}


def dkg_part3(secret: DkgSecretPackage, round1_packages: Mapping[int, DkgRound1Package],
              received: Mapping[int, DkgShare]) -> tuple[KeyPackage, PublicKeyPackage]:
    """Komlo-Goldberg Figure 1, round 2 steps 2-4: check each received share
    [f_l(i)]B == sum_k [i^k] phi_lk (VerificationError naming the sender l),
    s_i = sum_l f_l(i), PK = sum_l phi_l0, and every PK_j from the summed
    commitments.  Returns this participant's KeyPackage and the group info."""
    _check_round1(secret, round1_packages)
    i = secret.identifier
    others = set(range(1, secret.MAX_PARTICIPANTS + 1)) - {i}
    if not isinstance(received, Mapping) or set(received) != others:
        raise ParameterError(f"participant {i} needs one round 2 share from each of {sorted(others)}")
    s_i = polynomial_evaluate(i, secret.coefficients)
    for l in sorted(others):
        share = received[l]
        if not isinstance(share, DkgShare) or share.sender != l or share.recipient != i:
            raise ParameterError(f"round 2 share filed under {l} is not from {l} to {i}")
        if G.ScalarBaseMult(share.value) != _commitment_at(round1_packages[l].commitment, i):
            raise VerificationError(f"participant {l} sent participant {i} a share that does not match its commitment")
        s_i = (s_i + share.value) % G.L
    summed = [G.Identity()] * secret.MIN_PARTICIPANTS
    for l in sorted(round1_packages):
        summed = [acc + phi for acc, phi in zip(summed, round1_packages[l].commitment)]
    group_public_key, public_keys = derive_group_info(secret.MAX_PARTICIPANTS, secret.MIN_PARTICIPANTS, summed)
    group = PublicKeyPackage(secret.MIN_PARTICIPANTS, secret.MAX_PARTICIPANTS, group_public_key, tuple(public_keys))
    key = KeyPackage(i, s_i, public_keys[i - 1], group_public_key, secret.MIN_PARTICIPANTS, secret.MAX_PARTICIPANTS)
    return key, group
