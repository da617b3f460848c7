"""Spec 3.3, 6 and 8: the meter -- setup, advertise, report, committee signature, unmask.

What a meter must never do, and the state that enforces it (spec 6.1):
it never releases anything about its own masks; per round it answers one
unmask-request, and only for the sets a committee signed, with itself
reporting; it releases, for each neighbour, a share of one secret only --
the self-mask seed if the sets say the neighbour reported, the round mask
key if they say it is missing.  Each round's secrets are fresh, so "once
per round" is "once ever" for every secret it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocols.aggregation import messages as msg
from protocols.aggregation.hood import BitmapSet, Neighbourhood
from protocols.aggregation.schedule import (
    BOX_BYTES,
    CONFIRM_BYTES,
    KEY_BYTES,
    SHARE_BYTES,
    SIGNATURE_BYTES,
    TAG_PRIME,
    VERSION,
    box_cipher,
    box_nonce_aad,
    commit_message,
    confirmation,
    graph_commitment,
    mac_key,
    mask_private,
    pair_mask,
    round_secret,
    self_mask,
    static_secret,
    tag_alphas,
    tag_beta,
    x25519_public,
)
from protocols.errors import (
    ConsistencyError,
    DecodeError,
    EncodingOverflowError,
    ParameterError,
    RecoveryError,
    ReplayError,
    StateError,
    VerificationError,
)
from protocols.primitives import cbor, shamir
from protocols.primitives import hashing, opcount
from protocols.primitives.rand import RandomSource, random_below, resolve
from protocols.privacy import dp
from protocols.schemes.paillier import FastEncryptor, RandomiserPool

MAX_SETUPS = 3
"""Spec 3.3: setups a meter joins (graph commitments it makes) in its lifetime of enrolment."""


@dataclass
class MeterState:
    """What a meter keeps between messages (spec 6.1); a deployment stores it durably
    and commits each change before the message that depends on it leaves.

    The floors are the meter's own policy, set when it is made (spec 3.3):
    it reveals its graph nonce only for a directory that meets them.

    ``key`` (K_i) is shared with the utility, ``tag_key`` (K_alpha) with the
    whole group; ``x25519_private`` keys the share boxes; ``signing_seed``
    is the Ed25519 key a committee member signs with.
    """

    meter_id: str
    key: bytes = field(repr=False)
    tag_key: bytes = field(repr=False)
    x25519_private: bytes = field(repr=False)
    signing_seed: bytes = field(repr=False)
    min_reporting_floor: int = 2
    degree_floor: int = 2
    committee_floor: int = 1
    require_noise: bool = False
    setups: int = 0
    graph_nonce: bytes | None = field(default=None, repr=False)
    directory: bytes | None = None
    advertised: int = -1
    epsilon: int | None = field(default=None, repr=False)
    sigma: int | None = field(default=None, repr=False)
    bundle_round: int = -1
    bundle: tuple[str, ...] = ()
    peer_mask_public: dict = field(default_factory=dict, repr=False)
    own_mask_public: bytes = b""
    bundle_directory: bytes | None = None
    round_secrets: dict = field(default_factory=dict, repr=False)
    held: dict = field(default_factory=dict, repr=False)
    last_reported: int = -1
    last_unmasked: int = -1
    last_committed: int = -1
    pairwise: dict = field(default_factory=dict, repr=False)

    @property
    def x25519_public(self) -> bytes:
        return x25519_public(self.x25519_private)

    @property
    def verify_key(self) -> bytes:
        opcount.record("ed25519_keygen")
        return Ed25519PrivateKey.from_private_bytes(self.signing_seed).public_key().public_bytes_raw()


def _same(a: bytes | None, b: bytes | None) -> bool:
    """Two digests or commitments are equal, compared in constant time (None equals nothing)."""
    return isinstance(a, bytes) and isinstance(b, bytes) and hashing.compare_digest(a, b)


def close_round(state: MeterState) -> None:
    """Spec 6.1: end any open round for good -- erase its secrets and the shares held, and mark it
    answered, so no later directory, committee or request can make the meter release anything of it."""
    state.last_unmasked = max(state.last_unmasked, state.advertised, state.last_reported)
    state.last_committed = max(state.last_committed, state.advertised, state.last_reported)
    state.epsilon = state.sigma = None
    state.bundle_round, state.bundle, state.peer_mask_public, state.held = -1, (), {}, {}
    state.round_secrets, state.bundle_directory = {}, None


# ---------------------------------------------------------------------------
# Spec 3.3: setup (graph commitment and reveal)
# ---------------------------------------------------------------------------


def commit_to_graph(state: MeterState, rng: RandomSource | None = None) -> bytes:
    """Spec 3.3 step 1: draw a fresh nonce nu_i (32 bytes) and return h_i.

    At most MAX_SETUPS times per enrolment (StateError after), so a utility
    that aborts setups to re-draw the graph gets at most that many draws.
    """
    if state.setups >= MAX_SETUPS:
        raise StateError(f"meter {state.meter_id} has joined {MAX_SETUPS} setups already")
    nonce = resolve(rng).random_bytes(KEY_BYTES)
    state.setups += 1
    state.graph_nonce = nonce
    state.directory = None
    close_round(state)
    state.pairwise = {}
    return graph_commitment(state.meter_id, nonce)


def reveal_graph_nonce(state: MeterState, draft: Neighbourhood) -> bytes:
    """Spec 3.3 step 3: reveal nu_i for a directory that lists this meter as it committed.

    The directory is fixed (its digest recorded) before the nonce leaves;
    a second directory for the same commitment is refused (ReplayError).
    """
    if state.graph_nonce is None:
        raise StateError(f"meter {state.meter_id} has no pending graph commitment")
    digest = draft.digest
    if state.directory is not None and not _same(state.directory, digest):
        raise ReplayError(f"meter {state.meter_id} revealed its nonce for another directory")
    me = state.meter_id
    if (draft.meter_public.get(me) != state.x25519_public or draft.meter_verify.get(me) != state.verify_key
            or not _same(draft.commitments.get(me), graph_commitment(me, state.graph_nonce))):
        raise VerificationError(f"the directory does not list meter {me} with its own keys and commitment")
    floors = ((draft.min_reporting, state.min_reporting_floor, "minimum reporting set"),
              (min(draft.degree, len(draft.meters) - 1), min(state.degree_floor, len(draft.meters) - 1), "degree"),
              (draft.committee_size, min(state.committee_floor, len(draft.meters)), "committee"))
    for value, floor, what in floors:
        if value < floor:
            raise ConsistencyError(f"the directory's {what} {value} is below this meter's floor {floor}")
    if state.require_noise and draft.noise is None:
        raise ConsistencyError("the directory adds no noise, which this meter's policy requires")
    state.directory = digest
    return state.graph_nonce


# ---------------------------------------------------------------------------
# Spec 6: the meter's round
# ---------------------------------------------------------------------------


class Meter:
    """The meter role of one neighbourhood (spec 6 and 8)."""

    def __init__(self, hood: Neighbourhood, state: MeterState) -> None:
        hood.neighbours(state.meter_id)
        if not _same(state.directory, hood.digest):
            raise StateError(f"meter {state.meter_id} did not reveal its graph nonce for this directory")
        self.hood = hood
        self.state = state

    def _secret(self, peer: str) -> bytes:
        """s_ij (spec 5.3), cached by the peer's id and key in this group: a key the directory
        changes is never served from the cache."""
        entry = (self.hood.digest, peer, self.hood.meter_public[peer])
        secret = self.state.pairwise.get(entry)
        if secret is None:
            secret = static_secret(self.hood.digest, self.state.meter_id, self.state.x25519_private,
                                   peer, self.hood.meter_public[peer])
            self.state.pairwise[entry] = secret
        return secret

    # -- 6.2 advertise ------------------------------------------------------------

    def advertise(self, round_id: int, rng: RandomSource | None = None) -> bytes:
        """Spec 6.2: a fresh mask key and self-mask seed, each t-of-d shared among the neighbours.

        Draws, in order: epsilon_i and sigma_i (each ``random_below(p)``),
        then the t - 1 coefficients of epsilon_i's polynomial, then those
        of sigma_i's.
        """
        hood, state = self.hood, self.state
        msg.check_round(round_id)
        if round_id <= max(state.advertised, state.last_reported):
            raise ReplayError(f"meter {state.meter_id} already advertised round {state.advertised}")
        source = resolve(rng)
        epsilon = random_below(source, shamir.P25519)
        sigma = random_below(source, shamir.P25519)
        neighbours = hood.neighbours(state.meter_id)
        points = range(1, len(neighbours) + 1)
        eps_shares = shamir.split(epsilon, hood.threshold, points, source)
        sigma_shares = shamir.split(sigma, hood.threshold, points, source)
        mask_public = x25519_public(mask_private(epsilon))
        boxes = bytearray()
        for peer, e, s in zip(neighbours, eps_shares, sigma_shares):
            nonce, aad = box_nonce_aad(hood.group_id, round_id, state.meter_id, peer, mask_public)
            plain = e.y.to_bytes(SHARE_BYTES, "big") + s.y.to_bytes(SHARE_BYTES, "big")
            boxes += box_cipher(self._secret(peer)).encrypt(nonce, plain, aad)
        state.advertised, state.epsilon, state.sigma = round_id, epsilon, sigma
        state.own_mask_public = mask_public
        state.bundle_round, state.bundle, state.peer_mask_public, state.held = -1, (), {}, {}
        body = {1: VERSION, 2: round_id, 3: state.meter_id, 4: mask_public, 5: bytes(boxes)}
        return msg.seal(body, mac_key(state.key, b"up"), b"mask-advert", 6)

    # -- 6.3 bundle -----------------------------------------------------------------

    def accept_bundle(self, raw: bytes) -> tuple[str, ...]:
        """Spec 6.3: check the neighbours' mask keys and open the share boxes addressed to this meter.

        Returns the neighbours this meter will mask with.  Nothing changes
        unless the whole bundle checks.
        """
        hood, state = self.hood, self.state
        m = msg.open_message(raw, msg.MASK_BUNDLE, "mask-bundle", hood)
        msg.check_mac(m, mac_key(state.key, b"down"), b"mask-bundle", 7, "the utility")
        if m[3] != state.meter_id:
            raise VerificationError(f"mask-bundle addressed to {m[3]}, not {state.meter_id}")
        round_id = m[2]
        if round_id != state.advertised or state.epsilon is None:
            raise StateError(f"meter {state.meter_id} has no open advertisement for round {round_id}")
        if state.bundle_round == round_id:
            raise ReplayError(f"meter {state.meter_id} already accepted a bundle for round {round_id}")
        peers = msg.list_of(m[4], str, "mask-bundle neighbours")
        neighbours = hood.neighbours(state.meter_id)
        if len(set(peers)) != len(peers) or not msg.ordered_subset(neighbours, peers):
            raise VerificationError("mask-bundle must list distinct neighbours of the meter, in neighbour order")
        keys = msg.chunks(m[5], KEY_BYTES, len(peers), "mask-bundle mask keys")
        boxes = msg.chunks(m[6], BOX_BYTES, len(peers), "mask-bundle boxes")
        if len(peers) < hood.threshold:
            raise RecoveryError(f"only {len(peers)} neighbours advertised; the round needs {hood.threshold}")
        held, secrets = {}, {}
        for peer, mask_public, box in zip(peers, keys, boxes):
            nonce, aad = box_nonce_aad(hood.group_id, round_id, peer, state.meter_id, mask_public)
            try:
                plain = box_cipher(self._secret(peer)).decrypt(nonce, box, aad)
            except InvalidTag:
                raise VerificationError(f"the share box from {peer} does not open") from None
            eps_share, sigma_share = int.from_bytes(plain[:32], "big"), int.from_bytes(plain[32:], "big")
            if eps_share >= shamir.P25519 or sigma_share >= shamir.P25519:
                raise VerificationError(f"the share box from {peer} holds a value out of range")
            held[peer] = (eps_share, sigma_share)
            secrets[peer] = self._round_secret(round_id, peer, mask_public)
        state.bundle_round, state.bundle = round_id, tuple(peers)
        state.round_secrets, state.bundle_directory = secrets, hood.digest
        state.peer_mask_public = dict(zip(peers, keys))
        state.held = held
        return state.bundle

    # -- 6.4 report -----------------------------------------------------------------

    def _round_secret(self, round_id: int, peer: str, mask_public: bytes) -> bytes:
        """Spec 5.4 a_ij(r); a low-order mask key (only the peer itself can have made it) is refused."""
        if self.state.epsilon is None:
            raise StateError(f"meter {self.state.meter_id} has no mask secret for round {round_id}")
        try:
            return round_secret(self.hood.group_id, round_id, self.state.meter_id, self.state.epsilon, peer,
                                mask_public)
        except ParameterError:
            raise VerificationError(f"neighbour {peer} advertised a low-order mask key") from None

    def _check_readings(self, readings: Sequence[int]) -> None:
        hood = self.hood
        if len(readings) != hood.slots:
            raise ParameterError(f"need {hood.slots} readings, got {len(readings)}")
        limit = 1 << hood.value_bits
        for s, value in enumerate(readings):
            if type(value) is not int or not 0 <= value < limit:
                raise EncodingOverflowError(f"reading {s} out of range: need an integer in [0, 2^{hood.value_bits})")

    def report(self, round_id: int, readings: Sequence[int], rng: RandomSource | None = None, *,
               encryptor: RandomiserPool | FastEncryptor | None = None) -> bytes:
        """Spec 6.4: tag, pack, mask, encrypt and MAC one round's readings.

        Draws, in order: the noise share of each slot (spec 10), then the
        encryption's randomness.  The round's mask key and seed are erased.
        """
        hood, state = self.hood, self.state
        msg.check_round(round_id)
        if round_id <= state.last_reported:
            raise ReplayError(f"meter {state.meter_id} already reported round {state.last_reported}")
        if state.bundle_round != round_id or state.epsilon is None or state.sigma is None:
            raise StateError(f"meter {state.meter_id} has no accepted bundle for round {round_id}")
        self._check_readings(readings)
        values = list(readings)
        if hood.noise is not None:
            values = [v + dp.clamped_noise_share(hood.noise, rng) for v in values]
        n = hood.public_key.n
        alphas = tag_alphas(state.tag_key, round_id, hood.slots)
        tag = (sum(a * v for a, v in zip(alphas, values)) + tag_beta(state.key, round_id)) % TAG_PRIME
        plaintext = hood.layout.pack(values, tag)
        for peer in state.bundle:
            plaintext += hood.sign(state.meter_id, peer) * pair_mask(state.round_secrets[peer], round_id, n)
        plaintext = (plaintext + self_mask(state.sigma, round_id, n)) % n
        if encryptor is None:
            ct = hood.public_key.encrypt(plaintext, rng)
        elif isinstance(encryptor, RandomiserPool):
            ct = encryptor.encrypt(plaintext)
        else:
            ct = encryptor.encrypt(plaintext, rng)
        own_public = state.own_mask_public
        confirmations = b"".join(
            confirmation(self._secret(peer), hood.group_id, round_id, state.meter_id, peer, own_public,
                         state.peer_mask_public[peer]) for peer in state.bundle)
        state.last_reported, state.epsilon, state.sigma = round_id, None, None
        state.round_secrets = {}
        body = {1: VERSION, 2: round_id, 3: state.meter_id, 4: ct.to_bytes(), 5: confirmations}
        return msg.seal(body, mac_key(state.key, b"up"), b"meter-report", 6)

    # -- 8.2 committee signature -------------------------------------------------------

    def sign_commit(self, raw: bytes) -> bytes:
        """Spec 8.2: a committee member signs the round's reporting and missing sets, once per round."""
        hood, state = self.hood, self.state
        if state.meter_id not in hood.committee:
            raise StateError(f"meter {state.meter_id} is not on the committee")
        m = msg.open_message(raw, msg.COMMIT_REQUEST, "commit-request", hood)
        msg.check_mac(m, mac_key(state.key, b"down"), b"commit-request", 6, "the utility")
        if m[3] != state.meter_id:
            raise VerificationError(f"commit-request addressed to {m[3]}, not {state.meter_id}")
        round_id = m[2]
        if round_id <= state.last_committed:
            raise ReplayError(f"meter {state.meter_id} already signed the sets of round {state.last_committed}")
        check_sets(hood, m[4], m[5])
        state.last_committed = round_id
        opcount.record("ed25519_sign")
        signature = Ed25519PrivateKey.from_private_bytes(state.signing_seed).sign(
            commit_message(hood.group_id, hood.digest, round_id, m[4], m[5]))
        return cbor.encode({1: VERSION, 2: round_id, 3: state.meter_id, 4: signature})

    # -- 8.4 unmask -----------------------------------------------------------------

    def unmask(self, raw: bytes) -> bytes:
        """Spec 8.4: release, per bundled neighbour, a share of exactly one of its secrets."""
        hood, state = self.hood, self.state
        m = msg.open_message(raw, msg.UNMASK_REQUEST, "unmask-request", hood)
        msg.check_mac(m, mac_key(state.key, b"down"), b"unmask-request", 9, "the utility")
        round_id = m[2]
        if m[3] != state.meter_id:
            raise VerificationError(f"unmask-request addressed to {m[3]}, not {state.meter_id}")
        if round_id <= state.last_unmasked:
            raise ReplayError(f"meter {state.meter_id} already answered an unmask-request for round "
                              f"{state.last_unmasked}")
        if (round_id != state.last_reported or state.bundle_round != round_id
                or not _same(state.bundle_directory, hood.digest)):
            raise StateError(f"meter {state.meter_id} did not report round {round_id} in this neighbourhood")
        reporting, missing = check_sets(hood, m[4], m[5])
        if state.meter_id not in reporting:
            raise ConsistencyError(f"the sets shown to {state.meter_id} do not list it as reporting")
        bundled = set(state.bundle)
        for peer in sorted(set(hood.neighbours(state.meter_id)) | bundled, key=hood.index):
            listed = peer in reporting or peer in missing
            if listed != (peer in bundled):
                raise ConsistencyError(
                    f"the sets list neighbour {peer} as {'taking part' if listed else 'absent'}, "
                    f"but it {'did not advertise' if listed else 'advertised'} to {state.meter_id}")
        check_committee(hood, round_id, m[4], m[5], m[6], m[7])
        self._check_confirmations(round_id, reporting, m[8])
        shares = bytearray()
        for peer in state.bundle:
            eps_share, sigma_share = state.held[peer]
            released = sigma_share if peer in reporting else eps_share if peer in missing else None
            if released is None:  # excluded by the check above; kept so the rule reads in one place
                raise ConsistencyError(f"neighbour {peer} is in neither set")
            shares += released.to_bytes(SHARE_BYTES, "big")
        state.last_unmasked, state.held = round_id, {}
        body = {1: VERSION, 2: round_id, 3: state.meter_id, 4: bytes(shares)}
        return msg.seal(body, mac_key(state.key, b"up"), b"unmask-response", 5)


    def _check_confirmations(self, round_id: int, reporting: BitmapSet, data: bytes) -> None:
        """Spec 8.4 step 5: every reporting bundled neighbour proves it masked with this meter.

        Without this a utility could hand a target a bundle of neighbours it
        will declare missing while others, who hold the target's shares but
        with whom it never masked, release its seed (spec 11.3).
        """
        hood, state = self.hood, self.state
        peers = [p for p in state.bundle if p in reporting]
        values = msg.chunks(data, CONFIRM_BYTES, len(peers), "unmask-request confirmations")
        for peer, value in zip(peers, values):
            expected = confirmation(self._secret(peer), hood.group_id, round_id, peer, state.meter_id,
                                    state.peer_mask_public[peer], state.own_mask_public)
            if not hashing.compare_digest(expected, value):
                raise ConsistencyError(f"neighbour {peer} is listed as reporting but did not confirm "
                                       f"masking with {state.meter_id}")


def check_sets(hood: Neighbourhood, reporting_map: bytes, missing_map: bytes) -> tuple[BitmapSet, BitmapSet]:
    """Spec 8.1: decode the two bitmaps; disjoint, and at least min_reporting reporting meters."""
    reporting = hood.member_set(reporting_map, "reporting set")
    missing = hood.member_set(missing_map, "missing set")
    if reporting.overlaps(missing):
        raise DecodeError("a meter is both reporting and missing")
    if len(reporting) < hood.min_reporting:
        raise ConsistencyError(f"the reporting set has {len(reporting)} meters, below the minimum "
                               f"{hood.min_reporting} fixed at setup")
    return reporting, missing


def check_committee(hood: Neighbourhood, round_id: int, reporting_map: bytes, missing_map: bytes,
                    signers: list, signatures: bytes) -> None:
    """Spec 8.4 step 4: at least tau distinct committee members signed exactly these sets."""
    signers = msg.list_of(signers, str, "unmask-request signers")
    sigs = msg.chunks(signatures, SIGNATURE_BYTES, len(signers), "unmask-request signatures")
    if len(set(signers)) != len(signers) or any(s not in hood.committee for s in signers):
        raise ConsistencyError("the signers must be distinct committee members")
    if len(signers) < hood.committee_threshold:
        raise ConsistencyError(f"{len(signers)} committee signatures on the sets, "
                               f"{hood.committee_threshold} needed")
    message = commit_message(hood.group_id, hood.digest, round_id, reporting_map, missing_map)
    for signer, signature in zip(signers, sigs):
        opcount.record("ed25519_verify")
        try:
            Ed25519PublicKey.from_public_bytes(hood.meter_verify[signer]).verify(signature, message)
        except (InvalidSignature, ValueError):
            raise ConsistencyError(f"committee member {signer} did not sign these sets") from None


