"""``usapp demo``: a neighbourhood through the protocols built so far, with a report.

Aggregation over the tree (specs/aggregation.md, v2): meters send
double-masked, tagged Paillier reports of 24 hourly readings up a tree of
data concentrators; a committee of meters signs the reporting and missing
sets; the meters release mask shares only for those signed sets, and the
utility decrypts only the neighbourhood's sums over at least the minimum
reporting set.  Three rounds: everyone reports; some meters advertise then
drop out and one reporting meter stays silent while unmasking; and a round
with differential privacy whose noise is sized for the minimum reporting
set (spec section 10).

Group keys (specs/groupkeys.md): the same meters form a group under a key
tree; a batch of moves out and in is rekeyed, a tariff goes out under the
group key; 3 of 5 operators sign a disconnect with FROST; an attacker holding
the head-end's keys and two operators' shares gets nothing accepted; the
operators recover the group to a new epoch and controller.

Dual-ID escrow (specs/escrow.md): meters get an anonymous HFID for the day
from the escrow (escrowed, then blind mode), send technical data under it and
bills under their LFID; the utility names no household in the technical
data, a second HFID for the day is refused, and 2 of 3 authorities
re-identify one HFID.

Integrity feedback (specs/integrity.md): a meter's day of half-hourly billing
records goes into the utility's Merkle log; the meter checks the fed-back
signed tree head; a utility that alters one record is located at its period
and named by the arbiter.

Every claim the report makes is a check: a comparison of what the protocol
returned with what it must return (the released sums with the true sums, a
refusal with the typed error the spec names, ...).  Each check prints one
line, ``ok`` or ``FAILED``; the report ends with ``N of M checks passed`` and
``usapp demo`` exits 1 unless every check passed.  A step that raises where
it should succeed fails its part's check instead of stopping the demo.

Randomness: every draw comes from HMAC_DRBG of the demo's seed (one named
stream per part, all derived from the seed), so a run is repeated exactly by
giving its seed again; without ``--seed`` the seed is 128 bits from the OS
CSPRNG, and the report prints it first.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TextIO, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import aggregation as agg
from protocols import escrow as esc
from protocols import integrity as ig
from protocols import groupkeys as gk
from protocols.primitives import hashing
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, random_below
from protocols.privacy import accounting
from protocols.privacy.dp import Mechanism, NoiseShareConfig, PrivacyLevel
from protocols.errors import (
    ParameterError, PolicyError, ReplayError, ResyncRequiredError, StateError, UsappError, VerificationError,
)
from protocols.schemes import frost, hpke, merkle
from protocols.schemes.paillier import FastEncryptor, PrivateKey, RandomiserPool, generate_keypair
from protocols.system import escrow_fleet
from protocols.system import neighbourhood as nb

METERS = 50
FANOUT = 8
SLOTS = 24
READING_BITS = 12
"""Hourly readings in watt-hours, below 2^12 (a household's hour rarely exceeds 4 kWh)."""
ESCROW_METERS = 10
MIN_METERS, MAX_METERS = 6, 1000
"""The neighbourhood's size bounds (the group-key part names meters 0..2, the escrow part 0..3)."""
MAX_SEED_CHARS = 256
"""A seed is 1..256 characters (``--seed ''`` is a usage error)."""

Say = Callable[[str], None]
T = TypeVar("T")


# --------------------------------------------------------------------------
# Checks


@dataclass(frozen=True)
class Check:
    """One claim of the report and whether it held (``detail``: what was compared)."""

    name: str
    passed: bool
    detail: str


@dataclass
class Checks:
    """The checks of one run, in order; each is printed as it is made."""

    say: Say
    results: list[Check] = field(default_factory=list)

    def check(self, name: str, passed: bool, detail: str) -> bool:
        self.results.append(Check(name, passed, detail))
        self.say(f"  {'ok    ' if passed else 'FAILED'} {name}" + ("" if passed else f": {detail}"))
        return passed

    def refused(self, name: str, errors: Iterable[UsappError | None], expected: type[UsappError]) -> bool:
        """Every attempt was refused, each with ``expected`` (a subclass of it)."""
        got = list(errors)
        wrong = [_error_name(e) for e in got if not isinstance(e, expected)]
        detail = (f"expected {len(got)} refusals with {expected.__name__}, got {len(got) - len(wrong)}"
                  + (f"; otherwise: {', '.join(sorted(set(wrong)))}" if wrong else ""))
        return self.check(name, bool(got) and not wrong, detail)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.results if not c.passed]


def _error_name(error: UsappError | None) -> str:
    return "accepted" if error is None else type(error).__name__


def _refusal(action: Callable[[], object]) -> UsappError | None:
    """The typed error ``action`` raises, or None if it was accepted."""
    try:
        action()
    except UsappError as exc:
        return exc
    return None


def _part(checks: Checks, name: str, run: Callable[[], T]) -> T | None:
    """Run one part of the demo; an error where every step should succeed fails the part's check."""
    try:
        value = run()
    except UsappError as exc:
        checks.check(f"{name}: every step that should succeed did", False, f"{type(exc).__name__}: {exc}")
        return None
    return value


def _result(transcript: nb.Transcript) -> agg.RoundResult:
    if transcript.result is None:
        raise StateError(f"round {transcript.round} has no result")
    return transcript.result


# --------------------------------------------------------------------------
# The run


@dataclass
class DemoResult:
    """What :func:`run` returns: the seed, every check, and the figures of each part."""

    seed: str
    checks: list[Check]
    figures: dict[str, Any]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]


def check_seed(seed: str) -> str:
    """``ParameterError`` unless ``seed`` is 1..MAX_SEED_CHARS characters."""
    if not isinstance(seed, str) or not 1 <= len(seed) <= MAX_SEED_CHARS:
        raise ParameterError(f"--seed must be 1 to {MAX_SEED_CHARS} characters (omit it for a random seed)")
    return seed


def run(seed: str | None = None, out: TextIO | None = None, meters: int = METERS) -> DemoResult:
    """Run the demo; print a report to ``out``; return the checks and figures.

    Every random value comes from HMAC_DRBG("usapp-demo/" + seed ...), so a run
    with the same seed is the same run; without ``seed`` a random one is drawn
    from the OS CSPRNG (and printed first).
    """
    seed = secrets.token_hex(16) if seed is None else check_seed(seed)
    if not MIN_METERS <= meters <= MAX_METERS:
        raise ParameterError(f"the demo runs {MIN_METERS} to {MAX_METERS} meters, not {meters}")
    say: Say = (lambda line: print(line, file=out)) if out is not None else (lambda line: None)
    started = time.perf_counter()
    say(f"seed: {seed} (usapp demo --seed {seed} repeats this run)")
    checks = Checks(say)

    def stream(part: str) -> HmacDrbg:
        return HmacDrbg.from_seed(f"usapp-demo/{seed}" + (f"/{part}" if part else ""))

    rng = stream("")
    ids = [f"meter-{i:03d}" for i in range(meters)]
    figures: dict[str, Any] = {"meters": meters}
    figures["aggregation"] = _part(checks, "aggregation",
                                   lambda: _aggregation(generate_keypair(2048, rng), ids, rng, say, checks))
    figures["groupkeys"] = _part(checks, "group keys", lambda: _group_keys(ids, rng, say, checks))
    figures["escrow"] = _part(checks, "escrow", lambda: _escrow(min(meters, ESCROW_METERS), stream, say, checks))
    figures["integrity"] = _part(checks, "integrity", lambda: _integrity(stream("integrity"), say, checks))

    seconds = time.perf_counter() - started
    result = DemoResult(seed, checks.results, figures, seconds)
    say(f"done in {seconds:.1f} s")
    for name in result.failed:
        say(f"failed check: {name}")
    say(f"{len(result.checks) - len(result.failed)} of {len(result.checks)} checks passed")
    return result


def main(seed: str | None, out: TextIO, meters: int = METERS) -> int:
    """``usapp demo``: 0 if every check passed, else 1."""
    return 0 if run(seed, out, meters).ok else 1


# --------------------------------------------------------------------------
# Aggregation


def _readings(rng: RandomSource, meters: Iterable[str], missing: Iterable[str] = ()) -> dict[str, list[int]]:
    skip = set(missing)
    return {m: [random_below(rng, 1 << READING_BITS) for _ in range(SLOTS)] for m in meters if m not in skip}


def _sums(readings: Mapping[str, list[int]]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*readings.values()))


def _pools(p: agg.Provisioned, encryptor: FastEncryptor, rng: RandomSource) -> dict[str, RandomiserPool]:
    pools = {}
    for meter in p.hood.meters:
        pools[meter] = RandomiserPool(p.hood.public_key, encryptor)
        pools[meter].refill(1, rng)  # idle time on the meter, before the period ends
    return pools


def _recoverable(hood: agg.Neighbourhood, reporting: set[str], dropped: set[str], silent: set[str]) -> bool:
    """Every taking-part meter has >= t advertising neighbours, and every secret the utility needs
    (a reporting meter's seed, a dropped meter's mask key) >= t neighbours that answer (spec 8.6)."""
    advertisers, answering = reporting | dropped, reporting - silent
    threshold = hood.threshold if hood.threshold is not None else 0
    for meter in advertisers:
        peers = [p for p in hood.neighbours(meter) if p in advertisers]
        if len(peers) < threshold or sum(p in answering for p in peers) < threshold:
            return False
    return hood.min_reporting is not None and len(reporting) >= hood.min_reporting


def _failures(hood: agg.Neighbourhood, ids: list[str], dropped_wanted: int) -> tuple[set[str], set[str]]:
    """Dropped meters (from the fourth on) and one silent meter, as many as leave the round recoverable."""
    dropped: set[str] = set()
    for meter in ids[3:]:
        trial = dropped | {meter}
        if len(dropped) < dropped_wanted and _recoverable(hood, set(ids) - trial, trial, set()):
            dropped.add(meter)
    reporting = set(ids) - dropped
    silent = next(({m} for m in hood.meters if m in reporting and _recoverable(hood, reporting, dropped, {m})), set())
    return dropped, silent


def _committee(hood: agg.Neighbourhood, transcript: nb.Transcript) -> str:
    return (f"{len(transcript.commit_signatures)} of the {len(hood.committee)} committee members signed the sets "
            f"({hood.committee_threshold} needed)")


def _signed(checks: Checks, label: str, hood: agg.Neighbourhood, transcript: nb.Transcript) -> None:
    signers = set(transcript.commit_signatures)
    needed = hood.committee_threshold if hood.committee_threshold is not None else len(hood.committee) + 1
    checks.check(f"{label}: at least {needed} committee members signed the sets",
                 len(signers) >= needed and signers <= set(hood.committee),
                 f"{len(signers)} signatures, {len(signers - set(hood.committee))} from outside the committee")


def _aggregation(key: PrivateKey, ids: list[str], rng: RandomSource, say: Say, checks: Checks) -> dict[str, Any]:
    """The aggregation part of the demo (specs/aggregation.md, v2); returns its figures."""
    meters = len(ids)
    tree, root = agg.balanced_tree(ids, FANOUT, prefix="concentrator")
    p = agg.provision(key, ids, tree, root, rng, group_id=b"demo-neighbourhood", slots=SLOTS,
                      value_bits=READING_BITS)
    hood = p.hood
    degrees = [len(hood.neighbours(m)) for m in hood.meters]
    say(f"utility: {hood.public_key.bits}-bit Paillier key; {meters} meters under {len(tree)} data "
        f"concentrators (fan-out {FANOUT}); mask graph from the meters' committed nonces: "
        f"{min(degrees)}..{max(degrees)} neighbours each, shares threshold {hood.threshold}; committee of "
        f"{len(hood.committee)}; a round is released only if at least {hood.min_reporting} meters report; "
        f"{SLOTS} hourly readings per report ({hood.layout.slot_bits}-bit slots)")
    encryptor = FastEncryptor.create(hood.public_key, rng)

    # Round 1: everyone reports.
    readings = _readings(rng, ids)
    t0 = time.perf_counter()
    transcript = nb.run_round(p, 1, readings, rng, encryptors=_pools(p, encryptor, rng))
    elapsed = time.perf_counter() - t0
    result = _result(transcript)
    say(f"round 1: reporting set {len(result.reporting)} meters, missing set {{{', '.join(result.missing)}}}; "
        f"{_committee(hood, transcript)}; the utility released {len(result.sums)} hourly sums (day total "
        f"{sum(result.sums)} Wh); {elapsed:.2f} s; per meter {transcript.setup_bytes() // meters} bytes of adverts "
        f"and bundles, {transcript.upload_bytes() // meters} bytes up, {transcript.unmask_bytes() // meters} bytes "
        f"for the committee and the unmasking")
    checks.check("aggregation round 1: the released sums equal the sums of the readings",
                 result.sums == _sums(readings), f"released {result.sums[:3]}..., true {_sums(readings)[:3]}...")
    checks.check("aggregation round 1: every meter is in the reporting set and the missing set is empty",
                 set(result.reporting) == set(ids) and not result.missing,
                 f"reporting {len(result.reporting)} of {meters}, missing {list(result.missing)}")
    _signed(checks, "aggregation round 1", hood, transcript)

    # Round 2: some meters advertise then fail before reporting; one reporting meter stays silent while unmasking.
    dropped, silent = _failures(hood, ids, max(1, meters // 12))
    readings = _readings(rng, ids, dropped)
    transcript = nb.run_round(p, 2, readings, rng, encryptors=_pools(p, encryptor, rng), dropped=sorted(dropped),
                              silent=sorted(silent))
    result = _result(transcript)
    quiet = f"{', '.join(sorted(silent))} reported but stayed silent while unmasking" if silent else \
        "no meter could stay silent without making the round unrecoverable"
    say(f"round 2: {len(dropped)} meters advertised and dropped out before reporting, missing set "
        f"{{{', '.join(result.missing)}}}; reporting set {len(result.reporting)} meters; {quiet}; "
        f"{_committee(hood, transcript)}; the utility recovered the masks and released the sums of the "
        f"{len(result.reporting)} that reported")
    checks.check("aggregation round 2: with meters dropped and one silent, the recovered sums equal the sums of "
                 "the readings that were reported", result.sums == _sums(readings),
                 f"released {result.sums[:3]}..., true {_sums(readings)[:3]}...")
    checks.check("aggregation round 2: the missing set is exactly the dropped meters, the reporting set the rest",
                 set(result.missing) == dropped and set(result.reporting) == set(readings),
                 f"missing {sorted(result.missing)}, dropped {sorted(dropped)}")
    _signed(checks, "aggregation round 2", hood, transcript)

    # Round 3: differential privacy at level medium (epsilon 1 per household-day over the day's SLOTS
    # releases), Skellam shares (specs/dp.md section 4.5) sized for the smallest release the meters
    # allow (min_reporting) with half of it assumed honest.
    smallest = max(2, math.ceil(meters / 2))
    noise = NoiseShareConfig(PrivacyLevel.MEDIUM, sensitivity=(1 << READING_BITS) - 1, participants=smallest,
                             honest_fraction=Fraction(1, 2), delta=Fraction(1, 10 ** 6),
                             mechanism=Mechanism.SKELLAM, releases=SLOTS)
    dp = agg.provision(key, ids, tree, root, rng, group_id=b"demo-neighbourhood-dp", slots=SLOTS,
                       value_bits=READING_BITS, min_reporting=smallest, noise=noise)
    readings = _readings(rng, ids)
    transcript = nb.run_round(dp, 1, readings, rng, encryptors=_pools(dp, encryptor, rng))
    result = _result(transcript)
    true_sums = _sums(readings)
    errors = [released - true for released, true in zip(result.sums, true_sums)]
    low, high = dp.hood.layout.physical_range(len(result.reporting))
    relative = sorted(abs(e) / max(t, 1) for e, t in zip(errors, true_sums))[len(errors) // 2] if errors else 0.0
    median_error = sorted(abs(e) for e in errors)[len(errors) // 2] if errors else 0
    # Each released sum carries Skellam(lam * R) noise, R the reporting meters: sd sqrt(2 lam R); the
    # median of |noise| is 0.674 sd (the noise is Gaussian to within 10^-4 at these parameters).
    expected_sd = math.sqrt(2 * float(noise.share_mean) * len(result.reporting))
    central_sd = math.sqrt(2 * noise.mu)
    account = accounting.account(noise)
    say(f"round 3 (differential privacy, level {noise.level.value}, Skellam shares, epsilon {noise.epsilon} and "
        f"delta {noise.delta} per household-day of {SLOTS} releases (computed {account.epsilon_day:.4f}; per "
        f"month {account.epsilon_month:.2f} at delta {account.delta_month:.1e}), noise sized for the minimum "
        f"reporting set of {smallest} meters, half honest): reporting set {len(result.reporting)} meters; "
        f"{_committee(dp.hood, transcript)}; released sums differ from the true sums by "
        f"{min(errors, default=0)}..{max(errors, default=0)} Wh, median |error| {median_error} Wh (expected "
        f"{0.6745 * expected_sd:.0f} Wh: sd {expected_sd:.0f} Wh, {expected_sd / central_sd:.2f} times the central "
        f"Skellam's), median {100 * relative:.0f}% of the true sum (specs/dp.md section 6 gives the error "
        f"for each N and level)")
    checks.check("aggregation round 3: a noisy release over every meter, each sum within the physical range",
                 result.noisy and set(result.reporting) == set(ids) and len(result.sums) == SLOTS
                 and all(low <= v <= high for v in result.sums),
                 f"noisy {result.noisy}, reporting {len(result.reporting)} of {meters}, range {low}..{high}, "
                 f"sums {min(result.sums, default=None)}..{max(result.sums, default=None)}")
    _signed(checks, "aggregation round 3", dp.hood, transcript)
    return {"dp_errors": errors, "dropped": sorted(dropped), "silent": sorted(silent)}


# --------------------------------------------------------------------------
# Group keys


def _group_keys(ids: list[str], rng: RandomSource, say: Say, checks: Checks) -> dict[str, Any]:
    """The group key part of the demo (specs/groupkeys.md); returns its figures."""
    group = b"demo-neighbourhood"
    members = [m.encode() for m in ids]
    now = escrow_fleet.ORIGIN                      # the meters' clock (spec 4.1)
    operators, info = gk.operator_ceremony(5, 3, group, rng)
    command_key = gk.command_key(info)
    devices = {m: hpke.DeriveKeyPair(rng.random_bytes(32)) for m in members + [b"meter-new", b"meter-late"]}
    controller = gk.Controller(gk.ControllerState(group, 0, 4, rng.random_bytes(32)))

    def operators_sign(body: dict[int, Any]) -> bytes:
        for op in operators[2:]:
            op.approve(body)
        return gk.sign_command(body, operators[2:], info, rng)

    seq = 0

    def provision(member: bytes) -> gk.Meter:   # spec 8.6: from the operators' checkpoint at the last command
        checkpoint = operators_sign(gk.checkpoint_body(group, seq, controller.state.epoch, controller.public_key,
                                                       now + 3600))
        return gk.Meter.provision(group, member, devices[member][0], command_key, checkpoint, now)

    meters = {m: provision(m) for m in members + [b"meter-new"]}
    for m, message in controller.start_epoch({m: devices[m][1] for m in members}, rng).items():
        meters[m].receive(message)
    tree = controller.state.tree
    say(f"group keys: {len(members)} meters in a key tree of arity 4 (height {tree.height if tree else '?'}); "
        f"command key from a 3-of-5 operator DKG; each meter provisioned from an operator-signed checkpoint")

    moved_out = members[1]
    rekey, welcomes = controller.rekey({b"meter-new": devices[b"meter-new"][1]}, [moved_out], rng)
    current = _members(controller)
    for m in current:
        meters[m].receive(welcomes[m] if m in welcomes else rekey)
    text = b"tariff: 0.21/kWh from 17:00"
    tariff = controller.send(text)
    read = [m for m in current if meters[m].receive(tariff) == text]
    departed = _refusal(lambda: meters[moved_out].receive(tariff))
    say(f"group keys: {moved_out.decode()} moved out and meter-new moved in: one rekey of {len(rekey)} bytes; "
        f"{len(read)} of {len(current)} members read the tariff; the departed meter: {_error_name(departed)}")
    checks.check("group keys: every member after the rekey reads the tariff",
                 bool(current) and read == current and moved_out not in current and b"meter-new" in current,
                 f"{len(read)} of {len(current)} read it")
    checks.refused("group keys: the meter that moved out cannot read the tariff", [departed], ResyncRequiredError)

    seq += 1
    target = members[2]
    body = gk.command_body(group, seq, "disconnect", {1: [target]}, epoch=0, not_after=now + 3600)
    command = operators_sign(body)
    applied = []
    for m in current:
        accepted = meters[m].receive(command, now)
        if isinstance(accepted, gk.Command) and accepted.applies_to_me:
            applied.append(m)
    say(f"group keys: operators 3, 4, 5 signed a disconnect of {target.decode()} for epoch 0, valid one hour, "
        f"with FROST (one 64-byte Ed25519 signature); {len(applied)} meter(s) opened the contactor")
    checks.check(f"group keys: the operators' disconnect applies to {target.decode()} alone", applied == [target],
                 f"applied by {[m.decode() for m in applied]}")

    # The attacker: the head-end's signing key, and operators 1 and 2 who have not approved anything.
    evil = gk.command_body(group, seq + 1, "disconnect-all", {}, epoch=0, not_after=now + 3600)
    forged = [gk.encode_command(evil, Ed25519PrivateKey.from_private_bytes(
        controller.state.signing_key).sign(gk.command_tbs(evil)))]
    nonces = {op.identifier: frost.commit(op.identifier, op.state.signer.key_package.secret_share, rng)[0]
              for op in operators[:2]}
    commitments = [nonces[i].commitments for i in sorted(nonces)]
    shares = [frost.sign(i, operators[i - 1].state.signer.key_package.secret_share, info.group_public_key,
                         nonces[i], gk.command_tbs(evil), commitments) for i in sorted(nonces)]
    forged.append(gk.encode_command(evil, frost.aggregate(commitments, gk.command_tbs(evil),
                                                          info.group_public_key, shares).to_bytes()))
    attack = [_refusal(lambda: meters[m].receive(message, now)) for message in forged for m in current]
    cut = [m for m in current if not meters[m].state.supply_on]
    say(f"group keys: an attacker with the head-end's key and 2 operators' shares tried disconnect-all twice: "
        f"refused {sum(e is not None for e in attack)} of {len(attack)} times; {len(cut)} meter(s) off")
    checks.refused("group keys: the attacker's disconnect-all (head-end key, 2 of 5 operators) is refused by "
                   "every meter", attack, VerificationError)
    checks.check(f"group keys: after the attack only {target.decode()} is off", cut == [target],
                 f"off: {[m.decode() for m in cut]}")

    late = provision(b"meter-late")
    replay = _refusal(lambda: late.receive(command, now + 600))
    say(f"group keys: the recorded disconnect replayed to a meter provisioned 10 minutes later: "
        f"{_error_name(replay)}")
    checks.refused("group keys: the disconnect replayed to a meter provisioned after it is refused",
                   [replay], ReplayError)

    seq += 1
    new = gk.Controller(gk.ControllerState(group, 1, 4, rng.random_bytes(32)))
    directory = {m: devices[m][1] for m in current}
    recover = gk.command_body(group, seq, "rekey-group", {1: 1, 2: new.public_key,
                                                           3: gk.directory_hash(group, 1, directory)},
                              epoch=0, not_after=now + 3600)
    command = operators_sign(recover)
    for m in current:
        meters[m].receive(command, now)
    phantom = {**directory, b"phantom": devices[b"meter-late"][1]}
    phantom_error = _refusal(lambda: new.recover(command, command_key, phantom, rng))
    checks.refused("group keys: a recovery for a directory with an extra member is refused", [phantom_error],
                   VerificationError)
    delivered = [_refusal(lambda: meters[m].receive(message))
                 for m, message in new.recover(command, command_key, directory, rng).items()]
    new_tree = new.state.tree
    holding = [m for m in current if new_tree is not None and _holds(meters[m], new_tree.group_key)]
    old = controller.send(b"from the old head-end")
    stale = [_refusal(lambda: meters[m].receive(old)) for m in current]
    say(f"group keys: operators recovered the group to epoch 1 with a new controller key and the hash of the "
        f"member directory they reviewed: {len(holding)} of {len(current)} members hold the new group key; a "
        f"directory with an extra member: {_error_name(phantom_error)}; the old head-end's messages are refused "
        f"by {sum(e is not None for e in stale)} of {len(current)}")
    checks.check("group keys: after the recovery every member holds the new group key", holding == current,
                 f"{len(holding)} of {len(current)}; refused: "
                 f"{', '.join(sorted({_error_name(e) for e in delivered if e is not None})) or 'none'}")
    checks.refused("group keys: after the recovery the old head-end's messages are refused by every member",
                   stale, VerificationError)
    return {"members": len(current), "read": len(read), "applied": len(applied), "off": len(cut)}


def _members(controller: gk.Controller) -> list[bytes]:
    """The controller's members (the key tree's leaves), sorted."""
    tree = controller.state.tree
    return sorted(m for m in tree.members if isinstance(m, bytes)) if tree is not None else []


def _holds(meter: gk.Meter, group_key: bytes) -> bool:
    try:
        return meter.group_key == group_key
    except UsappError:
        return False


# --------------------------------------------------------------------------
# Dual-ID escrow


def _escrow(count: int, stream: Callable[[str], HmacDrbg], say: Say, checks: Checks) -> dict[str, Any]:
    """The dual-ID escrow part of the demo (specs/escrow.md); returns its figures."""
    out: dict[str, Any] = {}
    for mode in esc.MODES:
        fleet = escrow_fleet.provision(mode, count, range(1), rng=stream(f"escrow-fleet/{mode}"))
        rng = stream(f"escrow/{mode}")
        start = escrow_fleet.ORIGIN
        senders, attributable = set(), set()
        for serial, meter in sorted(fleet.meters.items()):
            meter.receive_hfid(fleet.escrow.handle(meter.request_hfid(0, rng), start, rng))
            for slot in range(1, 4):
                t = start + 900 * slot
                received = fleet.receivers["grid-operator"].receive(
                    meter.send("technical", "grid-operator", b"voltage 230 V   ", t), t)
                senders.add(received.sender)
            t = start + 79_200
            bill = fleet.receivers["supplier"].receive(meter.send("customer", "supplier", b"12.3 kWh", t), t)
            attributable.add(bill.sender)
        serials = sorted(fleet.meters)
        named = sorted(s for s in serials for sender in senders if s in sender)
        meter = fleet.meters[serials[0]]
        twin = esc.Meter(esc.MeterState(mode, meter.state.clock, meter.state.lf, meter.state.escrow_hpke_public,
                                        meter.state.hf_root, meter.state.authorities_key,
                                        dict(meter.state.epoch_keys)))
        second = _refusal(lambda: fleet.escrow.handle(twin.request_hfid(0, rng), start, rng))
        policy = _refusal(lambda: meter.send("technical", "supplier", b"x", start + 900))
        line = (f"escrow ({mode}): {count} meters got an HFID for the day; the grid operator saw "
                f"{len(senders)} anonymous senders and named {len(named)} households; the supplier billed "
                f"{len(attributable)} attributable meters; a second HFID for the day: {_error_name(second)}; "
                f"technical data to the supplier: {_error_name(policy)}")
        reid = None
        if mode == "escrowed" and fleet.authority_info is not None:
            chosen_meter = serials[min(3, count - 1)]
            credential = fleet.meters[chosen_meter].state.hf[0].credential
            fingerprint = hashing.sha256(credential).digest()
            request = esc.reidentification_request(fingerprint, "demo: a court order", bytes(16))
            chosen = [fleet.authorities[0], fleet.authorities[2]]
            for authority in chosen:
                authority.approve(request)
            shares = {a.key_package.identifier: a.share(request, fleet.escrow, rng) for a in chosen}
            reid = esc.reidentify(fleet.authority_info, request, fleet.escrow.sealed_link(fingerprint),
                                  shares).lfid_serial
            line += f"; authorities 1 and 3 re-identified one HFID as {reid}"
        else:
            line += "; the escrow itself cannot link (blind signatures)"
        say(line)
        checks.check(f"escrow ({mode}): the grid operator got every meter's technical data from {count} distinct "
                     f"anonymous HFIDs naming no meter",
                     len(senders) == count and all(s.startswith("hfid:") for s in senders) and not named,
                     f"{len(senders)} senders, named {named}")
        checks.check(f"escrow ({mode}): the supplier got a bill from each of the {count} meters under its LFID",
                     attributable == {f"lfid:{s}" for s in serials}, f"billed {sorted(attributable)}")
        checks.refused(f"escrow ({mode}): a second HFID for the same meter and day is refused", [second],
                       ReplayError)
        checks.refused(f"escrow ({mode}): technical data addressed to the supplier is refused", [policy],
                       PolicyError)
        if mode == "escrowed":
            checks.check("escrow (escrowed): 2 of 3 authorities re-identify the HFID as its meter",
                         reid == chosen_meter, f"re-identified as {reid}, expected {chosen_meter}")
        out[mode] = {"senders": len(senders), "named": len(named), "billed": len(attributable),
                     "reidentified": reid}
    return out


# --------------------------------------------------------------------------
# Integrity feedback


def _integrity(rng: RandomSource, say: Say, checks: Checks) -> dict[str, Any]:
    """The integrity-feedback part of the demo (specs/integrity.md); returns its figures."""
    utility = ig.Utility(ig.UtilityState(rng.random_bytes(32)))
    meter = ig.Meter(ig.MeterState(b"meter-000", rng.random_bytes(32), utility.public_key))
    utility.register(b"meter-000", meter.public_key)
    start, totals = escrow_fleet.ORIGIN, [0, 0]
    for i in range(48):
        totals = [totals[0] + random_below(rng, 800), totals[1] + random_below(rng, 200)]
        meter.receipt(utility.accept(meter.record(start + 1800 * i, totals), start + 1800 * i + 60))
    y = utility.feedback(b"meter-000", 0, start + 86_400)
    match = meter.check(y).match
    altered = 20
    record = utility.state.records[b"meter-000"][altered]
    forged = ig.Record(record.meter, record.period, record.counter,
                       (record.registers[0] - 500,) + record.registers[1:], record.signature)
    honest_leaves = [r.to_bytes() for r in utility.state.records[b"meter-000"]]
    leaves = honest_leaves[:altered] + [forged.to_bytes()] + honest_leaves[altered + 1:]
    cheat = ig.Utility(ig.UtilityState(utility.state.signing_key))
    cheat.state.meters[b"meter-000"] = meter.public_key
    cheat.state.logs[b"meter-000"] = merkle.MerkleLog.from_entries(leaves)
    cheat.state.records[b"meter-000"] = [ig.decode_record(leaf) for leaf in leaves]
    checker = ig.Meter(ig.MeterState(b"meter-000", meter.state.device_key, utility.public_key,
                                     list(meter.state.records), meter.state.log))
    finding = checker.check(cheat.feedback(b"meter-000", 0, start + 86_400))
    if finding.index is None and checker.state.checked is not None:
        finding = ig.locate(checker, cheat, checker.state.checked)
    verdict = ig.arbitrate(meter.public_key, utility.public_key, b"meter-000",
                           [r.to_bytes() for r in meter.state.records], [h.to_bytes() for h in meter.state.receipts],
                           cheat.tree_head(b"meter-000", start + 86_400).to_bytes(), leaves)
    say(f"integrity: 48 half-hourly records in the utility's log; the fed-back tree head ({len(y)} bytes) "
        f"{'matches' if match else 'does not match'} the meter's records; a utility that lowered one record is "
        f"located at record {finding.index} (period {finding.period}) and the arbiter names the {verdict.party}")
    checks.check("integrity: the honest utility's fed-back tree head matches the meter's records", match,
                 "the meter's check found no match")
    checks.check(f"integrity: the lowered record is located at index {altered}, its period",
                 not finding.match and finding.index == altered and finding.period == record.period,
                 f"located at index {finding.index}, period {finding.period}")
    checks.check("integrity: the arbiter names the utility", verdict.party == "utility",
                 f"named {verdict.party}")
    return {"match": match, "located": finding.index, "verdict": verdict.party}
