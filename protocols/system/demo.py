"""``usapp demo``: a neighbourhood through the protocols built so far, with a report.

Aggregation over the tree (specs/aggregation.md): meters send blinded,
tagged Paillier reports of 24 hourly readings up a tree of data
concentrators; the utility unmasks and decrypts only the neighbourhood's
sums, and checks that they cover exactly the meters that are claimed.
Three rounds: everyone reports; some meters are missing and one skips the
unmask phase; and a round with differential privacy (spec section 10).
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import TextIO

from protocols import aggregation as agg
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, random_below
from protocols.privacy.dp import NoiseShareConfig, PrivacyLevel
from protocols.schemes.paillier import FastEncryptor, RandomiserPool, generate_keypair
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
    tree, root = agg.balanced_tree(ids, FANOUT, prefix="concentrator")
    p = agg.provision(key, ids, tree, root, rng, group_id=b"demo-neighbourhood", slots=SLOTS,
                      value_bits=READING_BITS)
    hood = p.hood
    say(f"utility: {hood.public_key.bits}-bit Paillier key; {meters} meters under {len(tree)} data "
        f"concentrators (fan-out {FANOUT}); each meter masks with {len(hood.neighbours(ids[0]))} neighbours, "
        f"threshold {hood.threshold}; {SLOTS} hourly readings per report ({hood.layout.slot_bits}-bit slots)")
    encryptor = FastEncryptor.create(hood.public_key, rng)
    figures: dict = {"meters": meters}

    # Round 1: everyone reports.
    readings = _readings(rng, ids)
    t0 = time.perf_counter()
    transcript = nb.run_round(p, 1, readings, rng, encryptors=_pools(p, encryptor, rng))
    elapsed = time.perf_counter() - t0
    full_ok = transcript.result.sums == _sums(readings)
    say(f"round 1: {meters} meters reported; the utility released 24 hourly sums, "
        f"{'matching' if full_ok else 'NOT MATCHING'} the readings (day total "
        f"{sum(transcript.result.sums)} Wh); {elapsed:.2f} s; per meter "
        f"{transcript.upload_bytes() // meters} bytes up, "
        f"{transcript.unmask_bytes() // meters} bytes to unmask")

    # Round 2: some meters are missing; one reporting meter skips the unmask phase.
    missing = set(ids[3:3 + min(hood.max_missing, max(1, meters // 12))])
    readings = _readings(rng, ids, missing)
    silent = [m for m in hood.meters if m in readings and all(x in readings for x in hood.neighbours(m))][:1]
    transcript = nb.run_round(p, 2, readings, rng, encryptors=_pools(p, encryptor, rng), silent=silent)
    missing_ok = transcript.result.sums == _sums(readings) and set(transcript.result.missing) == missing
    quiet = f", {silent[0]} silent while unmasking" if silent else ""
    say(f"round 2: {len(missing)} meters missing ({', '.join(sorted(missing))}){quiet}; "
        f"sums of the {len(readings)} that reported "
        f"{'match' if missing_ok else 'DO NOT MATCH'}; the utility names the missing meters")

    # Round 3: differential privacy, the companion article's "medium" level.
    noise = NoiseShareConfig(PrivacyLevel.MEDIUM, sensitivity=(1 << READING_BITS) - 1, participants=meters,
                             honest_fraction=Fraction(1, 2), delta=Fraction(1, 10 ** 6))
    dp = agg.provision(key, ids, tree, root, rng, group_id=b"demo-neighbourhood-dp", slots=SLOTS,
                       value_bits=READING_BITS, noise=noise)
    readings = _readings(rng, ids)
    transcript = nb.run_round(dp, 1, readings, rng, encryptors=_pools(dp, encryptor, rng))
    true_sums = _sums(readings)
    errors = [released - true for released, true in zip(transcript.result.sums, true_sums)]
    relative = sorted(abs(e) / t for e, t in zip(errors, true_sums))[len(errors) // 2]
    say(f"round 3 (differential privacy, level {noise.level.value}, epsilon {noise.epsilon}, "
        f"delta {noise.delta}): released sums differ from the true sums by "
        f"{min(errors)}..{max(errors)} Wh, median {100 * relative:.0f}% of the true sum (each meter adds a "
        f"full noise with probability {float(noise.beta):.3f}; specs/dp.md gives the accuracy cost)")

    say(f"done in {time.perf_counter() - started:.1f} s")
    figures.update(matches=full_ok and missing_ok, packed_ok=full_ok, missing_ok=missing_ok,
                   dp_errors=errors, seconds=time.perf_counter() - started)
    return figures
