"""``usapp demo``: a neighbourhood through the protocols built so far, with a report.

Aggregation over the tree (specs/aggregation.md, v2): meters send
double-masked, tagged Paillier reports of 24 hourly readings up a tree of
data concentrators; a committee of meters signs the reporting and missing
sets; the meters release mask shares only for those signed sets, and the
utility decrypts only the neighbourhood's sums over at least the minimum
reporting set.  Three rounds: everyone reports; some meters advertise then
drop out and one reporting meter stays silent while unmasking; and a round
with differential privacy whose noise is sized for the minimum reporting
set (spec section 10).  Any aggregation check that fails makes the demo
report a mismatch (``usapp demo`` exits 1).

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
"""

from __future__ import annotations

import hashlib
import math
import time
from fractions import Fraction
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import aggregation as agg
from protocols import escrow as esc
from protocols import integrity as ig
from protocols import groupkeys as gk
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, random_below, resolve
from protocols.privacy.dp import NoiseShareConfig, PrivacyLevel
from protocols.errors import PolicyError, ReplayError, UsappError
from protocols.schemes import frost, hpke, merkle
from protocols.schemes.paillier import FastEncryptor, RandomiserPool, generate_keypair
from protocols.system import escrow_fleet
from protocols.system import neighbourhood as nb

METERS = 50
FANOUT = 8
SLOTS = 24
READING_BITS = 12
"""Hourly readings in watt-hours, below 2^12 (a household's hour rarely exceeds 4 kWh)."""


def _readings(rng: RandomSource | None, meters, missing=()) -> dict[str, list[int]]:
    return {m: [random_below(rng, 1 << READING_BITS) for _ in range(SLOTS)] for m in meters if m not in missing}


def _sums(readings: dict[str, list[int]]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*readings.values()))


def _pools(p: agg.Provisioned, encryptor: FastEncryptor, rng) -> dict[str, RandomiserPool]:
    pools = {}
    for meter in p.hood.meters:
        pools[meter] = RandomiserPool(p.hood.public_key, encryptor)
        pools[meter].refill(1, rng)  # idle time on the meter, before the period ends
    return pools


def run(seed: str | None = None, out: TextIO | None = None, meters: int = METERS) -> dict:
    """Run the demo; print a report to ``out``; return the figures.

    With ``seed`` every random value comes from HMAC_DRBG(seed), so the run
    is reproducible; without it, from the OS CSPRNG.
    """
    rng: RandomSource | None = None if seed is None else HmacDrbg.from_seed("usapp-demo/" + seed)
    say = (lambda line: print(line, file=out)) if out is not None else (lambda line: None)
    started = time.perf_counter()

    key = generate_keypair(2048, rng)
    ids = [f"meter-{i:03d}" for i in range(meters)]
    figures: dict = {"meters": meters}
    aggregation = _aggregation(key, ids, rng, say)
    full_ok, missing_ok, errors = aggregation["round1_ok"], aggregation["round2_ok"], aggregation["dp_errors"]

    groups = _group_keys(ids, rng, say)
    anonymity = _escrow(min(meters, 10), seed, say)
    billing = _integrity(seed, say)

    say(f"done in {time.perf_counter() - started:.1f} s")
    figures.update(matches=full_ok and missing_ok and aggregation["dp_ok"], packed_ok=full_ok,
                   missing_ok=missing_ok, aggregation=aggregation, dp_errors=errors, groupkeys=groups,
                   escrow=anonymity, integrity=billing, seconds=time.perf_counter() - started)
    return figures


def _recoverable(hood: agg.Neighbourhood, reporting: set, dropped: set, silent: set) -> bool:
    """Every taking-part meter has >= t advertising neighbours, and every secret the utility needs
    (a reporting meter's seed, a dropped meter's mask key) >= t neighbours that answer (spec 8.6)."""
    advertisers, answering = reporting | dropped, reporting - silent
    for meter in advertisers:
        peers = [p for p in hood.neighbours(meter) if p in advertisers]
        if len(peers) < hood.threshold or sum(p in answering for p in peers) < hood.threshold:
            return False
    return len(reporting) >= hood.min_reporting


def _failures(hood: agg.Neighbourhood, ids: list[str], dropped_wanted: int) -> tuple[set, set]:
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


def _aggregation(key, ids: list[str], rng: RandomSource | None, say) -> dict:
    """The aggregation part of the demo (specs/aggregation.md, v2); returns what it checked."""
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
    result = transcript.result
    round1_ok = result.sums == _sums(readings) and not result.missing and len(result.reporting) == meters
    say(f"round 1: reporting set {len(result.reporting)} meters, missing set empty; {_committee(hood, transcript)}; "
        f"the utility released 24 hourly sums, {'exactly matching' if round1_ok else 'NOT MATCHING'} the "
        f"readings (day total {sum(result.sums)} Wh); {elapsed:.2f} s; per meter "
        f"{transcript.setup_bytes() // meters} bytes of adverts and bundles, {transcript.upload_bytes() // meters} "
        f"bytes up, {transcript.unmask_bytes() // meters} bytes for the committee and the unmasking")

    # Round 2: some meters advertise then fail before reporting; one reporting meter stays silent while unmasking.
    dropped, silent = _failures(hood, ids, max(1, meters // 12))
    readings = _readings(rng, ids, dropped)
    transcript = nb.run_round(p, 2, readings, rng, encryptors=_pools(p, encryptor, rng), dropped=sorted(dropped),
                              silent=sorted(silent))
    result = transcript.result
    round2_ok = (result.sums == _sums(readings) and set(result.missing) == dropped
                 and set(result.reporting) == set(readings))
    quiet = f"{', '.join(sorted(silent))} reported but stayed silent while unmasking" if silent else \
        "no meter could stay silent without making the round unrecoverable"
    say(f"round 2: {len(dropped)} meters advertised and dropped out before reporting, missing set "
        f"{{{', '.join(result.missing)}}}; reporting set {len(result.reporting)} meters; {quiet}; "
        f"{_committee(hood, transcript)}; sums of the {len(readings)} that reported "
        f"{'match exactly' if round2_ok else 'DO NOT MATCH'}")

    # Round 3: differential privacy, the companion article's "medium" level, noise sized for the
    # smallest release the meters allow (min_reporting), not for the whole neighbourhood.
    smallest = max(2, math.ceil(meters / 2))
    noise = NoiseShareConfig(PrivacyLevel.MEDIUM, sensitivity=(1 << READING_BITS) - 1, participants=smallest,
                             honest_fraction=Fraction(1, 2), delta=Fraction(1, 10 ** 6))
    dp = agg.provision(key, ids, tree, root, rng, group_id=b"demo-neighbourhood-dp", slots=SLOTS,
                       value_bits=READING_BITS, min_reporting=smallest, noise=noise)
    readings = _readings(rng, ids)
    transcript = nb.run_round(dp, 1, readings, rng, encryptors=_pools(dp, encryptor, rng))
    result = transcript.result
    true_sums = _sums(readings)
    errors = [released - true for released, true in zip(result.sums, true_sums)]
    low, high = dp.hood.layout.physical_range(len(result.reporting))
    dp_ok = result.noisy and len(result.reporting) == meters and all(low <= v <= high for v in result.sums)
    relative = sorted(abs(e) / t for e, t in zip(errors, true_sums))[len(errors) // 2]
    say(f"round 3 (differential privacy, level {noise.level.value}, epsilon {noise.epsilon}, "
        f"delta {noise.delta}, noise sized for the minimum reporting set of {smallest} meters): reporting set "
        f"{len(result.reporting)} meters; {_committee(dp.hood, transcript)}; released sums differ from the "
        f"true sums by {min(errors)}..{max(errors)} Wh, median {100 * relative:.0f}% of the true sum "
        f"{'(within the physical range)' if dp_ok else '(A CHECK FAILED)'} (each meter adds a full noise with "
        f"probability {float(noise.beta):.3f}; specs/dp.md gives the accuracy cost)")
    return {"round1_ok": round1_ok, "round2_ok": round2_ok, "dp_ok": dp_ok, "dp_errors": errors,
            "dropped": sorted(dropped), "silent": sorted(silent)}


def _group_keys(ids: list[str], rng: RandomSource | None, say) -> dict:
    """The group key part of the demo (specs/groupkeys.md); returns what it checked."""
    group = b"demo-neighbourhood"
    members = [m.encode() for m in ids]
    now = escrow_fleet.ORIGIN                      # the meters' clock (spec 4.1)
    operators, info = gk.operator_ceremony(5, 3, group, rng)
    command_key = gk.command_key(info)
    devices = {m: hpke.DeriveKeyPair(resolve(rng).random_bytes(32)) for m in members + [b"meter-new", b"meter-late"]}
    controller = gk.Controller(gk.ControllerState(group, 0, 4, resolve(rng).random_bytes(32)))

    def operators_sign(body: dict) -> bytes:
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
    say(f"group keys: {len(members)} meters in a key tree of arity 4 (height {controller.state.tree.height}); "
        f"command key from a 3-of-5 operator DKG; each meter provisioned from an operator-signed checkpoint")

    moved_out = members[1]
    rekey, welcomes = controller.rekey({b"meter-new": devices[b"meter-new"][1]}, [moved_out], rng)
    current = sorted(controller.state.tree.members)
    for m in current:
        meters[m].receive(welcomes[m] if m in welcomes else rekey)
    tariff = controller.send(b"tariff: 0.21/kWh from 17:00")
    read = sum(meters[m].receive(tariff) == b"tariff: 0.21/kWh from 17:00" for m in current)
    try:
        meters[moved_out].receive(tariff)
        departed_reads = True
    except UsappError:
        departed_reads = False
    say(f"group keys: {moved_out.decode()} moved out and meter-new moved in: one rekey of {len(rekey)} bytes; "
        f"{read} of {len(current)} members read the tariff, the departed meter "
        f"{'READ IT' if departed_reads else 'cannot'}")

    seq += 1
    body = gk.command_body(group, seq, "disconnect", {1: [members[2]]}, epoch=0, not_after=now + 3600)
    command = operators_sign(body)
    applied = [m for m in current if meters[m].receive(command, now).applies_to_me]
    say(f"group keys: operators 3, 4, 5 signed a disconnect of {members[2].decode()} for epoch 0, valid one hour, "
        f"with FROST (one 64-byte Ed25519 signature); {len(applied)} meter opened its contactor")

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
    refused = 0
    for message in forged:
        for m in current:
            try:
                meters[m].receive(message, now)
            except UsappError:
                refused += 1
    cut = [m for m in current if not meters[m].state.supply_on]
    say(f"group keys: an attacker with the head-end's key and 2 operators' shares tried disconnect-all twice: "
        f"refused {refused} of {2 * len(current)} times; {len(cut)} meter off (the one the operators chose)")

    late = provision(b"meter-late")
    try:
        late.receive(command, now + 600)
        late_replay_refused = False
    except ReplayError:
        late_replay_refused = True
    say(f"group keys: the recorded disconnect replayed to a meter provisioned 10 minutes later "
        f"{'is refused (its checkpoint is past it)' if late_replay_refused else 'WAS ACCEPTED'}")

    seq += 1
    new = gk.Controller(gk.ControllerState(group, 1, 4, resolve(rng).random_bytes(32)))
    directory = {m: devices[m][1] for m in current}
    recover = gk.command_body(group, seq, "rekey-group", {1: 1, 2: new.public_key,
                                                           3: gk.directory_hash(group, 1, directory)},
                              epoch=0, not_after=now + 3600)
    command = operators_sign(recover)
    for m in current:
        meters[m].receive(command, now)
    phantom = {**directory, b"phantom": devices[b"meter-late"][1]}
    try:
        new.recover(command, command_key, phantom, rng)
        phantom_refused = False
    except UsappError:
        phantom_refused = True
    for m, message in new.recover(command, command_key, directory, rng).items():
        meters[m].receive(message)
    recovered = all(meters[m].group_key == new.state.tree.group_key for m in current)
    old_refused = 0
    old = controller.send(b"from the old head-end")
    for m in current:
        try:
            meters[m].receive(old)
        except UsappError:
            old_refused += 1
    say(f"group keys: operators recovered the group to epoch 1 with a new controller key and the hash of the "
        f"member directory they reviewed: {'every member' if recovered else 'NOT every member'} holds the new "
        f"group key; a directory with an extra member is {'refused' if phantom_refused else 'ACCEPTED'}; the old "
        f"head-end's messages are refused by {old_refused} of {len(current)}")
    return {"departed_reads": departed_reads, "read": read, "members": len(current), "applied": len(applied),
            "attack_refused": refused == 2 * len(current), "recovered": recovered,
            "old_refused": old_refused == len(current), "late_replay_refused": late_replay_refused,
            "phantom_refused": phantom_refused}


def _escrow(count: int, seed: str | None, say) -> dict:
    """The dual-ID escrow part of the demo (specs/escrow.md); returns what it checked."""
    out = {}
    for mode in esc.MODES:
        fleet = escrow_fleet.provision(mode, count, range(1), seed=f"demo/{seed}/{mode}")
        rng = HmacDrbg.from_seed(f"usapp-demo/{seed}/escrow/{mode}") if seed is not None else None
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
        named = sum(s.split(":", 1)[1] in sender for s in attributable for sender in senders)
        meter = fleet.meters["SM-00000"]
        twin = esc.Meter(esc.MeterState(mode, meter.state.clock, meter.state.lf, meter.state.escrow_hpke_public,
                                        meter.state.hf_root, meter.state.authorities_key,
                                        dict(meter.state.epoch_keys)))
        try:
            fleet.escrow.handle(twin.request_hfid(0, rng), start, rng)
            second = "ISSUED"
        except ReplayError:
            second = "refused"
        try:
            meter.send("technical", "supplier", b"x", start + 900)
            policy = "SENT"
        except PolicyError:
            policy = "refused"
        line = (f"escrow ({mode}): {count} meters got an HFID for the day; the grid operator saw "
                f"{len(senders)} anonymous senders and named {named} households; the supplier billed "
                f"{len(attributable)} attributable meters; a second HFID for the day {second}; technical data "
                f"to the supplier {policy}")
        reid = None
        if mode == "escrowed":
            credential = fleet.meters["SM-00003"].state.hf[0].credential
            fingerprint = hashlib.sha256(credential).digest()
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
        out[mode] = {"senders": len(senders), "named": named, "billed": len(attributable), "second": second,
                     "policy": policy, "reidentified": reid}
    return out


def _integrity(seed: str | None, say) -> dict:
    """The integrity-feedback part of the demo (specs/integrity.md); returns what it checked."""
    rng = HmacDrbg.from_seed(f"usapp-demo/{seed}/integrity") if seed is not None else None
    utility = ig.Utility(ig.UtilityState(resolve(rng).random_bytes(32)))
    meter = ig.Meter(ig.MeterState(b"meter-000", resolve(rng).random_bytes(32), utility.public_key))
    utility.register(b"meter-000", meter.public_key)
    start, totals = escrow_fleet.ORIGIN, [0, 0]
    for i in range(48):
        totals = [totals[0] + random_below(rng, 800), totals[1] + random_below(rng, 200)]
        meter.receipt(utility.accept(meter.record(start + 1800 * i, totals), start + 1800 * i + 60))
    y = utility.feedback(b"meter-000", 0, start + 86_400)
    match = meter.check(y).match
    record = utility.state.records[b"meter-000"][20]
    forged = ig.Record(record.meter, record.period, record.counter,
                       (record.registers[0] - 500,) + record.registers[1:], record.signature)
    honest_leaves = [r.to_bytes() for r in utility.state.records[b"meter-000"]]
    leaves = honest_leaves[:20] + [forged.to_bytes()] + honest_leaves[21:]
    cheat = ig.Utility(ig.UtilityState(utility.state.signing_key))
    cheat.state.meters[b"meter-000"] = meter.public_key
    cheat.state.logs[b"meter-000"] = merkle.MerkleLog.from_entries(leaves)
    cheat.state.records[b"meter-000"] = [ig.decode_record(leaf) for leaf in leaves]
    checker = ig.Meter(ig.MeterState(b"meter-000", meter.state.device_key, utility.public_key,
                                     list(meter.state.records), meter.state.log))
    finding = checker.check(cheat.feedback(b"meter-000", 0, start + 86_400))
    if finding.index is None:
        finding = ig.locate(checker, cheat, checker.state.checked)
    verdict = ig.arbitrate(meter.public_key, utility.public_key, b"meter-000",
                           [r.to_bytes() for r in meter.state.records], [h.to_bytes() for h in meter.state.receipts],
                           cheat.tree_head(b"meter-000", start + 86_400).to_bytes(), leaves)
    say(f"integrity: 48 half-hourly records in the utility's log; the fed-back tree head ({len(y)} bytes) "
        f"{'matches' if match else 'DOES NOT MATCH'} the meter's records; a utility that lowered one record is "
        f"located at record {finding.index} (period {finding.period}) and the arbiter names the {verdict.party}")
    return {"match": match, "located": finding.index, "verdict": verdict.party}
