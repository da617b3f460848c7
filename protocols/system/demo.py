"""``usapp demo``: what is built so far, end to end, with a short report.

A neighbourhood of meters encrypts its readings under the utility's Paillier
key (offline/online encryption, specs/paillier.md section 4.3), an aggregator
multiplies the ciphertexts without learning any reading, and the utility
decrypts only the sum.  A second round packs several time slots per
ciphertext (section 9).  The protocol of issue "aggregation over the tree"
(blinding, authenticity, missing meters) will replace this plain round.
"""

from __future__ import annotations

import time
from typing import TextIO

from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, random_below
from protocols.schemes.paillier import FastEncryptor, RandomiserPool, generate_keypair, sum_ciphertexts
from protocols.schemes.paillier_encoding import PackingLayout, decrypt_packed, encrypt_packed, sum_packed

METERS = 50
SLOTS = 24
READING_BITS = 16
"""Readings in watt-hours per period, below 2^16."""


def run(seed: str | None = None, out: TextIO | None = None, meters: int = METERS) -> dict:
    """Run the demo; print a report to ``out``; return the figures.

    With ``seed`` every random value comes from HMAC_DRBG(seed), so the run
    is reproducible; without it, from the OS CSPRNG.
    """
    rng: RandomSource | None = None if seed is None else HmacDrbg.from_seed("usapp-demo/" + seed)
    say = (lambda line: print(line, file=out)) if out is not None else (lambda line: None)

    started = time.perf_counter()
    utility_key = generate_keypair(2048, rng)
    pk = utility_key.public_key
    say(f"utility: generated a {pk.bits}-bit Paillier key")

    readings = [random_below(rng, 1 << READING_BITS) for _ in range(meters)]
    encryptor = FastEncryptor.create(pk, rng)
    ciphertexts = []
    offline = online = 0.0
    for reading in readings:
        pool = RandomiserPool(pk, encryptor)
        t0 = time.perf_counter()
        pool.refill(1, rng)  # idle time on the meter
        t1 = time.perf_counter()
        ciphertexts.append(pool.encrypt(reading))  # at the end of the period
        online += time.perf_counter() - t1
        offline += t1 - t0
    say(f"meters: {meters} readings encrypted; per meter {1e3 * offline / meters:.2f} ms offline, "
        f"{1e6 * online / meters:.1f} us online; {pk.ciphertext_length()} bytes each on the wire")

    aggregate = sum_ciphertexts(ciphertexts)
    say(f"aggregator: multiplied {meters} ciphertexts (it holds no key and learns no reading)")
    total = int(utility_key.decrypt(aggregate))
    expected = sum(readings)
    status = "matches" if total == expected else "DOES NOT MATCH"
    say(f"utility: decrypted the neighbourhood total {total} Wh ({status} the sum of the readings)")

    layout = PackingLayout(READING_BITS, SLOTS, max_summands=max(meters, 2))
    profiles = [[random_below(rng, 1 << READING_BITS) for _ in range(SLOTS)] for _ in range(meters)]
    packed = [encrypt_packed(pk, layout, profile, encryptor=encryptor, rng=rng) for profile in profiles]
    slot_sums = decrypt_packed(utility_key, sum_packed(packed), SLOTS)
    packed_ok = slot_sums == [sum(column) for column in zip(*profiles)]
    say(f"packed round: {SLOTS} hourly readings per ciphertext ({layout.slot_bits}-bit slots), "
        f"{meters} meters; slot sums {'match' if packed_ok else 'DO NOT MATCH'}; "
        f"{pk.ciphertext_length() / SLOTS:.0f} bytes per reading instead of {pk.ciphertext_length()}")
    elapsed = time.perf_counter() - started
    say(f"done in {elapsed:.1f} s")
    return {"meters": meters, "total": total, "expected": expected, "packed_ok": packed_ok,
            "matches": total == expected, "seconds": elapsed}
