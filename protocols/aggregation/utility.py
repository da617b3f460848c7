"""Spec 6.3 and 8-9: the utility -- bundles, receipt, the committed sets, unmasking, audit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from gmpy2 import mpz

from protocols.aggregation import messages as msg
from protocols.aggregation.aggregator import combine, contribution_of
from protocols.aggregation.executor import Executor, run_tasks
from protocols.aggregation.partition import post_order
from protocols.aggregation.hood import Neighbourhood
from protocols.aggregation.schedule import (
    BOX_BYTES,
    CONFIRM_BYTES,
    KEY_BYTES,
    SHARE_BYTES,
    SIGNATURE_BYTES,
    TAG_PRIME,
    VERSION,
    commit_message,
    is_low_order,
    mac_key,
    pair_mask,
    round_secret,
    self_mask,
    tag_alphas,
    tag_beta,
)
from protocols.errors import (
    AggregateMismatchError,
    ConsistencyError,
    DecodeError,
    DroppedContributionError,
    DuplicateContributionError,
    InjectedContributionError,
    ParameterError,
    RecoveryError,
    ReplayError,
    StateError,
    VerificationError,
)
from protocols.primitives import hashing, opcount
from protocols.primitives import shamir
from protocols.schemes.paillier import Ciphertext, PrivateKey


@dataclass
class UtilityState:
    """The utility's secrets and its round counter (spec 8)."""

    private_key: PrivateKey = field(repr=False)
    meter_keys: Mapping[str, bytes] = field(repr=False)
    aggregator_keys: Mapping[str, bytes] = field(repr=False)
    tag_key: bytes = field(repr=False)
    last_round: int = -1


@dataclass
class RoundState:
    """One round at the utility, from the adverts to the result."""

    round: int
    mask_public: dict[str, bytes]
    bundles: dict[str, tuple[str, ...]]
    report: msg.AggregateReport | None = None
    reporting: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    reporting_map: bytes = b""
    missing_map: bytes = b""
    confirmations: dict[str, bytes] = field(default_factory=dict, repr=False)
    signatures: dict[str, bytes] = field(default_factory=dict, repr=False)
    requested: set = field(default_factory=set, repr=False)


@dataclass(frozen=True)
class RoundResult:
    """Spec 8.5: what the utility learns from a round."""

    round: int
    sums: tuple[int, ...]
    reporting: tuple[str, ...]
    missing: tuple[str, ...]
    noisy: bool


class Utility:
    """The utility role (spec 6.3, 8 and 9)."""

    def __init__(self, hood: Neighbourhood, state: UtilityState) -> None:
        if state.private_key.public_key != hood.public_key:
            raise ParameterError("the utility's private key does not match the neighbourhood's public key")
        self.hood = hood
        self.state = state

    # -- 6.3 bundles ------------------------------------------------------------------

    def bundles(self, round_id: int, adverts: Sequence[bytes]) -> tuple[RoundState, dict[str, bytes]]:
        """Spec 6.3: check the mask-adverts; to each advertiser, its advertising neighbours' keys and boxes."""
        hood, state = self.hood, self.state
        msg.check_round(round_id)
        if round_id <= state.last_round:
            raise ReplayError(f"round {round_id} is not after the last finished round {state.last_round}")
        keys: dict[str, bytes] = {}
        boxes: dict[str, bytes] = {}
        for raw in adverts:
            m = msg.open_message(raw, msg.MASK_ADVERT, "mask-advert", hood)
            sender = m[3]
            if sender not in hood.meter_public:
                raise InjectedContributionError(f"mask-advert from {sender!r}, which is not a meter")
            msg.check_mac(m, mac_key(state.meter_keys[sender], b"up"), b"mask-advert", 6, sender)
            msg.check_round_of(m[2], round_id, "mask-advert", sender)
            if sender in keys:
                raise DuplicateContributionError(f"two mask-adverts from {sender}")
            if len(m[4]) != KEY_BYTES:
                raise DecodeError(f"mask-advert from {sender}: the mask key must be {KEY_BYTES} bytes")
            if is_low_order(m[4]):
                raise VerificationError(f"mask-advert from {sender}: the mask key is a low-order point")
            msg.chunks(m[5], BOX_BYTES, len(hood.neighbours(sender)), f"mask-advert from {sender}: boxes")
            keys[sender], boxes[sender] = m[4], m[5]
        rs = RoundState(round_id, keys, {})
        out = {}
        for meter in hood.meters:
            if meter not in keys:
                continue
            peers = [p for p in hood.neighbours(meter) if p in keys]
            addressed = b"".join(_box_at(boxes[p], hood.neighbours(p).index(meter)) for p in peers)
            body = {1: VERSION, 2: round_id, 3: meter, 4: peers, 5: b"".join(keys[p] for p in peers), 6: addressed}
            out[meter] = msg.seal(body, mac_key(state.meter_keys[meter], b"down"), b"mask-bundle", 7)
            rs.bundles[meter] = tuple(peers)
        return rs, out

    # -- 8.1 receipt ------------------------------------------------------------------

    def receive(self, rs: RoundState, report: bytes) -> RoundState:
        """Spec 8.1: check the root's aggregate-report; fix the reporting and missing sets."""
        hood = self.hood
        if rs.round <= self.state.last_round:
            raise ReplayError(f"round {rs.round} is not after the last finished round {self.state.last_round}")
        if rs.report is not None:
            raise ReplayError(f"round {rs.round} already has the root's report")
        top = msg.AggregateReport.decode(report, hood)
        if top.sender != hood.root:
            raise InjectedContributionError(f"the round's report comes from {top.sender}, not the root {hood.root}")
        msg.check_mac(top.fields, mac_key(self.state.aggregator_keys[top.sender], b"up"), b"aggregate-report", 7,
                      top.sender)
        msg.check_round_of(top.round, rs.round, "aggregate-report", top.sender)
        for meter, value in zip(top.covered, top.confirmation_list):
            if meter not in rs.bundles:
                raise InjectedContributionError(f"the root covers meter {meter}, which was sent no bundle")
            if len(value) != CONFIRM_BYTES * len(rs.bundles[meter]):
                raise DecodeError(f"meter {meter} confirmed {len(value) // CONFIRM_BYTES} neighbours, "
                                  f"its bundle has {len(rs.bundles[meter])}")
        if len(top.covered) < hood.min_reporting:
            raise RecoveryError(f"{len(top.covered)} meters reported, fewer than the minimum "
                                f"{hood.min_reporting}: the round cannot be released")
        rs.confirmations = dict(zip(top.covered, top.confirmation_list))
        covered = set(top.covered)
        rs.report, rs.reporting = top, top.covered
        rs.missing = tuple(m for m in hood.meters if m in rs.bundles and m not in covered)
        rs.reporting_map, rs.missing_map = hood.bitmap(rs.reporting), hood.bitmap(rs.missing)
        return rs

    # -- 8.2 committee ------------------------------------------------------------------

    def commit_requests(self, rs: RoundState) -> dict[str, bytes]:
        """Spec 8.2: the sets, to each committee member."""
        out = {}
        for member in self.hood.committee:
            body = {1: VERSION, 2: rs.round, 3: member, 4: rs.reporting_map, 5: rs.missing_map}
            out[member] = msg.seal(body, mac_key(self.state.meter_keys[member], b"down"), b"commit-request", 6)
        return out

    def collect_signatures(self, rs: RoundState, answers: Sequence[bytes]) -> None:
        """Spec 8.2: keep the valid committee signatures; RecoveryError below tau."""
        hood = self.hood
        message = commit_message(hood.group_id, hood.digest, rs.round, rs.reporting_map, rs.missing_map)
        collected = dict(rs.signatures)
        for raw in answers:
            m = msg.open_message(raw, msg.COMMIT_SIGNATURE, "commit-signature", hood)
            signer = m[3]
            if signer not in hood.committee:
                raise InjectedContributionError(f"commit-signature from {signer!r}, which is not on the committee")
            msg.check_round_of(m[2], rs.round, "commit-signature", signer)
            if signer in collected:
                raise ReplayError(f"two commit-signatures from {signer}")
            if len(m[4]) != SIGNATURE_BYTES:
                raise DecodeError(f"commit-signature from {signer}: the signature must be {SIGNATURE_BYTES} bytes")
            opcount.record("ed25519_verify")
            try:
                Ed25519PublicKey.from_public_bytes(hood.meter_verify[signer]).verify(m[4], message)
            except (InvalidSignature, ValueError):
                raise VerificationError(f"commit-signature from {signer} does not verify") from None
            collected[signer] = m[4]
        rs.signatures = collected
        if len(collected) < hood.committee_threshold:
            raise RecoveryError(f"{len(collected)} committee signatures, {hood.committee_threshold} needed")

    # -- 8.3 unmask-requests ------------------------------------------------------------

    def unmask_requests(self, rs: RoundState) -> dict[str, bytes]:
        """Spec 8.3: the signed sets, to every reporting meter."""
        hood = self.hood
        if len(rs.signatures) < hood.committee_threshold:
            raise ConsistencyError("the sets carry too few committee signatures to be shown to meters")
        signers = [m for m in hood.committee if m in rs.signatures][:hood.committee_threshold]
        sigs = b"".join(rs.signatures[s] for s in signers)
        out = {}
        reporting = set(rs.reporting)
        for meter in rs.reporting:
            confirmations = b"".join(
                _item_at(rs.confirmations[peer], rs.bundles[peer].index(meter), CONFIRM_BYTES)
                for peer in rs.bundles[meter] if peer in reporting and meter in rs.bundles[peer])
            body = {1: VERSION, 2: rs.round, 3: meter, 4: rs.reporting_map, 5: rs.missing_map, 6: signers, 7: sigs,
                    8: confirmations}
            out[meter] = msg.seal(body, mac_key(self.state.meter_keys[meter], b"down"), b"unmask-request", 9)
            rs.requested.add(meter)
        return out

    # -- 8.5 finishing ------------------------------------------------------------------

    def _read_response(self, rs: RoundState, raw: bytes) -> tuple[str, list[int]]:
        m = msg.open_message(raw, msg.UNMASK_RESPONSE, "unmask-response", self.hood)
        sender = m[3]
        if sender not in rs.requested:
            raise InjectedContributionError(f"unmask-response from {sender!r}, which was not asked")
        msg.check_mac(m, mac_key(self.state.meter_keys[sender], b"up"), b"unmask-response", 5, sender)
        msg.check_round_of(m[2], rs.round, "unmask-response", sender)
        shares = msg.chunks(m[4], SHARE_BYTES, len(rs.bundles[sender]), f"unmask-response from {sender}: shares")
        values = [int.from_bytes(s, "big") for s in shares]
        if any(v >= shamir.P25519 for v in values):
            raise DecodeError(f"unmask-response from {sender}: share out of range")
        return sender, values

    def finish(self, rs: RoundState, responses: Sequence[bytes], executor: Executor | None = None, *,
               slices: int | None = None, retries: int = 1) -> RoundResult:
        """Spec 8.5: recover the seeds of R and the mask keys of M, decrypt, check range and tag, release.

        Steps 3-5 run as ``slices`` :class:`UnmaskJob` tasks on ``executor``
        (spec 13.2; in this thread by default, four slices per worker
        otherwise); the masks are summed mod n, so the result is the same.
        """
        hood, state = self.hood, self.state
        if rs.round <= state.last_round:
            raise ReplayError(f"round {rs.round} is not after the last finished round {state.last_round}")
        if rs.report is None or len(rs.signatures) < hood.committee_threshold:
            raise StateError(f"round {rs.round} has no checked root report and signed sets to finish")
        n = hood.public_key.n
        answered: dict[str, list[int]] = {}
        for raw in responses:
            sender, values = self._read_response(rs, raw)
            if sender in answered:
                raise ReplayError(f"two unmask-responses from {sender}")
            answered[sender] = values
        total = mpz(state.private_key.decrypt(rs.report.ciphertext))
        if executor is None:
            jobs = [UnmaskJob(hood, rs.round, rs.bundles, rs.mask_public, answered, rs.reporting, rs.reporting,
                              rs.missing)]
            masks = [unmask_slice(jobs[0])]
        else:
            count = 4 * executor.workers if slices is None else slices
            if type(count) is not int or not 1 <= count <= MAX_UNMASK_SLICES:
                raise ParameterError(f"slices must be an integer in [1, {MAX_UNMASK_SLICES}]")
            jobs = [UnmaskJob(hood, rs.round, rs.bundles, rs.mask_public, answered, rs.reporting, seeds, keys)
                    for seeds, keys in _slices(rs.reporting, rs.missing, count)]
            masks = run_tasks(executor, unmask_slice, jobs, retries=retries,
                              labels=[f"unmask slice {i}" for i in range(len(jobs))])
        total -= sum(masks)
        sums, tag_sum = hood.layout.unpack(int(total % n), n)
        low, high = hood.layout.physical_range(len(rs.reporting))
        if any(not low <= v <= high for v in sums):
            raise AggregateMismatchError(f"round {rs.round}: a slot sum lies outside [{low}, {high}], the range "
                                         f"{len(rs.reporting)} honest meters can produce")
        alphas = tag_alphas(state.tag_key, rs.round, hood.slots)
        expected = (sum(a * v for a, v in zip(alphas, sums)) +
                    sum(tag_beta(state.meter_keys[m], rs.round) for m in rs.reporting)) % TAG_PRIME
        if not hashing.compare_digest((tag_sum % TAG_PRIME).to_bytes(16, "big"), expected.to_bytes(16, "big")):
            raise AggregateMismatchError(
                f"round {rs.round}: the aggregate does not match the {len(rs.reporting)} contributions it claims "
                "(run Utility.audit to name the faulty node)")
        state.last_round = rs.round
        return RoundResult(rs.round, tuple(sums), rs.reporting, rs.missing, hood.noise is not None)

    # -- 9 audit ------------------------------------------------------------------------

    def audit(self, rs: RoundState, retained: Mapping[str, Sequence[bytes]], executor: Executor | None = None,
              *, retries: int = 1) -> None:
        """Spec 9: walk the tree from the root and raise the typed error naming
        the first aggregator whose report is not the product of its inputs.

        ``retained`` maps each aggregator to the child reports it kept.
        Returns None if every aggregator is consistent (the fault is then in
        a meter's report or unmask-response).  With an ``executor`` the
        root is checked here and each child aggregator's subtree is one
        :class:`AuditJob` on it (spec 13.2); the subtrees' errors come back
        in the root's child order, the order of the sequential walk.
        """
        if rs.report is None:
            raise StateError(f"round {rs.round}: no report of the root was received to audit")
        if executor is None:
            self._audit_node(rs, rs.report, retained)
            return
        jobs = []
        for part in self._audit_one(rs, rs.report, retained):
            below = {node: retained[node] for node in post_order(self.hood.tree, part.sender) if node in retained}
            jobs.append(AuditJob(self.hood, self.state, rs, part, below))
        run_tasks(executor, audit_subtree, jobs, retries=retries, labels=[f"audit {j.report.sender}" for j in jobs])

    def _audit_node(self, rs: RoundState, report: msg.AggregateReport,
                    retained: Mapping[str, Sequence[bytes]]) -> None:
        for part in self._audit_one(rs, report, retained):
            self._audit_node(rs, part, retained)

    def _audit_one(self, rs: RoundState, report: msg.AggregateReport,
                   retained: Mapping[str, Sequence[bytes]]) -> list[msg.AggregateReport]:
        """Spec 9 at one aggregator; returns the aggregate-reports among its inputs, to audit next."""
        hood, node = self.hood, report.sender
        if node not in retained:
            raise RecoveryError(f"audit: aggregator {node} kept no inputs for round {rs.round}")
        parts, seen = [], set()
        for raw in retained[node]:
            part = msg.decode_child(raw, hood)
            if part.sender not in hood.children(node):
                raise InjectedContributionError(f"audit: {node} used a report from {part.sender}, not its child")
            if part.sender in seen:
                raise DuplicateContributionError(f"audit: {node} used two reports from {part.sender}")
            seen.add(part.sender)
            if isinstance(part, msg.MeterReport):
                key, kind, mac_field = self.state.meter_keys[part.sender], b"meter-report", 6
            else:
                key, kind, mac_field = self.state.aggregator_keys[part.sender], b"aggregate-report", 7
            try:
                msg.check_mac(part.fields, mac_key(key, b"up"), kind, mac_field, part.sender)
            except VerificationError:
                raise InjectedContributionError(
                    f"audit: {node} used a report from {part.sender} that {part.sender} did not make") from None
            if part.round != rs.round:
                raise ReplayError(f"audit: {node} used {part.sender}'s report of round {part.round} "
                                  f"in round {rs.round}")
            parts.append(part)
        body = combine([contribution_of(part) for part in parts], rs.round, node, hood)
        claimed, derived = set(report.covered), set(body[5])
        for meter in report.covered:
            if meter not in derived:
                raise DroppedContributionError(f"audit: {node} claims meter {meter} but holds no report of it")
        derived_confirmations = dict(zip(body[5], body[6]))
        for meter, value in zip(report.covered, report.confirmation_list):
            if meter in derived_confirmations and not hashing.compare_digest(value, derived_confirmations[meter]):
                raise InjectedContributionError(f"audit: {node} changed the confirmations of meter {meter}")
        n2 = hood.public_key.nsquare
        product = mpz(Ciphertext.from_bytes(hood.public_key, body[4]).c)
        actual = report.ciphertext.c
        if actual != product or claimed != derived:
            for part in parts:
                c = part.ciphertext.c
                names = ", ".join(part.covered)
                if actual * c % n2 == product:
                    raise DroppedContributionError(f"audit: {node} left out the contribution of {names}")
                if product * c % n2 == actual:
                    raise DuplicateContributionError(f"audit: {node} counted the contribution of {names} twice")
            if claimed != derived:
                dropped = ", ".join(sorted(derived - claimed))
                raise DroppedContributionError(f"audit: {node} received but did not claim {dropped}")
            raise InjectedContributionError(f"audit: {node}'s aggregate contains a term none of its inputs made")
        return [part for part in parts if isinstance(part, msg.AggregateReport)]


@dataclass(frozen=True)
class AuditJob:
    """Spec 13.2: the audit (spec 9) of one subtree, from its top aggregator's report down."""

    hood: Neighbourhood
    state: UtilityState
    rs: RoundState
    report: msg.AggregateReport
    retained: Mapping[str, Sequence[bytes]]


def audit_subtree(job: AuditJob) -> None:
    """Spec 9 over one subtree: the typed error naming its first inconsistent aggregator, or None."""
    Utility(job.hood, job.state)._audit_node(job.rs, job.report, job.retained)


MAX_UNMASK_SLICES = 4096
"""Most tasks :meth:`Utility.finish` cuts steps 3-5 of spec 8.5 into (spec 13.2)."""


@dataclass(frozen=True)
class UnmaskJob:
    """Spec 13.2: one task of spec 8.5 steps 3-5 -- the masks of the meters ``seeds_of`` (of R) and
    ``keys_of`` (of M), from the shares the answering meters released."""

    hood: Neighbourhood
    round: int
    bundles: Mapping[str, tuple[str, ...]]
    mask_public: Mapping[str, bytes]
    answered: Mapping[str, list[int]]
    reporting: tuple[str, ...]
    seeds_of: tuple[str, ...]
    keys_of: tuple[str, ...]


def _recover(job: UnmaskJob, meter: str, what: str) -> int:
    """Spec 8.5 step 3: a meter's secret from the shares its bundled neighbours released."""
    hood, bundles, answered = job.hood, job.bundles, job.answered
    shares = []
    for x, peer in enumerate(hood.neighbours(meter), start=1):
        if peer in answered and meter in bundles.get(peer, ()):
            shares.append(shamir.Share(x, answered[peer][bundles[peer].index(meter)]))
    if len(shares) < hood.threshold:
        raise RecoveryError(f"only {len(shares)} of the {hood.threshold} shares of meter {meter}'s {what} arrived")
    if len(shares) > hood.threshold:
        shamir.check_consistent(shares, hood.threshold)
    return shamir.recover(shares, hood.threshold)


def unmask_slice(job: UnmaskJob) -> int:
    """Spec 8.5 steps 3-5 for one slice: the sum, mod n, of the self-masks b_j(r) of ``seeds_of``
    and of the signed pairwise masks sign(p, j) m_pj(r) of ``keys_of`` with their reporting peers;
    meters in directory order, so the first failing recovery is the one the whole step meets first."""
    hood, n = job.hood, job.hood.public_key.n
    total = mpz(0)
    for meter in job.seeds_of:
        total += self_mask(_recover(job, meter, "self-mask seed"), job.round, n)
    reporting = set(job.reporting)
    for meter in job.keys_of:
        epsilon = _recover(job, meter, "round mask key")
        for peer in job.bundles[meter]:
            if peer in reporting and meter in job.bundles[peer]:
                secret = round_secret(hood.group_id, job.round, meter, epsilon, peer, job.mask_public[peer])
                total += hood.sign(peer, meter) * pair_mask(secret, job.round, n)
    return int(total % n)


def _slices(reporting: tuple[str, ...], missing: tuple[str, ...], count: int) -> list[tuple[tuple, tuple]]:
    """R then M cut into at most ``count`` consecutive slices of near-equal length, in order."""
    work = [(m, True) for m in reporting] + [(m, False) for m in missing]
    size = max(1, -(-len(work) // count))
    out = []
    for start in range(0, len(work), size):
        part = work[start:start + size]
        out.append((tuple(m for m, seed in part if seed), tuple(m for m, seed in part if not seed)))
    return out or [((), ())]


def _item_at(items: bytes, index: int, size: int) -> bytes:
    """The item at 0-based ``index`` of a concatenation of fixed-size items (spec 6.1)."""
    return items[size * index:size * (index + 1)]


def _box_at(boxes: bytes, index: int) -> bytes:
    return _item_at(boxes, index, BOX_BYTES)


