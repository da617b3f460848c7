"""Paillier against python-paillier (phe) in the same run (specs/paillier.md).

Both libraries use the same 2048-bit key (from a fixed DRBG seed) and gmpy2.
Each case times our operation and phe's equivalent public API call,
interleaved, and reports baseline median / ours median with the spread of the
paired per-repeat ratios.  Targets are the issue's minimum ratios.
"""

from __future__ import annotations

import functools
import operator

from protocols.primitives.drbg import HmacDrbg
from protocols.schemes.paillier import (
    FastEncryptor,
    ParallelDecryptor,
    generate_keypair,
    sum_ciphertexts,
)
from protocols.system.benchmark import BenchConfig, Benchmark, Comparison, compare, require_module

KEY_SEED = "usapp-bench/paillier-2048"


def run(config: BenchConfig) -> list[Comparison]:
    phe = require_module("phe")
    bits = 2048
    config.progress(f"paillier: generating a {bits}-bit key")
    rng = HmacDrbg.from_seed(KEY_SEED + "/operations")
    sk = generate_keypair(bits, HmacDrbg.from_seed(KEY_SEED))
    pk = sk.public_key
    phe_pk = phe.PaillierPublicKey(int(pk.n))
    phe_sk = phe.PaillierPrivateKey(phe_pk, int(sk.p), int(sk.q))
    m = 123456789
    repeats = config.repeats
    common = {"baseline_name": "phe " + getattr(phe, "__version__", "1.5"), "repeats": repeats,
              "min_time": config.min_time}
    results = []

    def case(name, ours, baseline, target, **kw):
        config.progress(f"paillier: {name}")
        results.append(compare(name, ours, baseline, target=target, **common, **kw))

    case("encrypt (standard)", lambda: pk.encrypt(m), lambda: phe_pk.encrypt(m), 1.0, unit="encrypt",
         setup_note="r uniform in Z*_n, r^n mod n^2 by one powmod (both)")

    config.progress("paillier: building the DJN fixed-base tables")
    for window, target in ((4, 5.0), (8, None)):
        encryptor = FastEncryptor.create(pk, rng, window=window)
        table = encryptor.table
        case(f"encrypt (fast, DJN, window {window})", lambda e=encryptor: e.encrypt(m, rng),
             lambda: phe_pk.encrypt(m), target, unit="encrypt",
             setup_note="randomiser h_s^a, a of ceil(k/2) bits, fixed-base table",
             details={"table_entries": table.entries,
                      "table_bytes": table.entries * pk.ciphertext_length(),
                      "multiplications_per_encryption_max": len(table.rows)})

    rn = pk.randomiser(rng)
    case("encrypt (online, precomputed randomiser)", lambda: pk.encrypt_with_randomiser(m, rn),
         lambda: phe_pk.encrypt(m), 200.0, unit="encrypt",
         setup_note="online step only: (1 + m n) * r^n mod n^2 with r^n computed offline "
                    "(timed with one randomiser; RandomiserPool uses each exactly once)")

    a, b = pk.encrypt(5, rng), pk.encrypt(7, rng)
    pa, pb = phe.EncryptedNumber(phe_pk, int(a.c)), phe.EncryptedNumber(phe_pk, int(b.c))
    case("add ciphertexts", lambda: a + b, lambda: pa + pb, 2.0, unit="addition")

    case("decrypt (CRT, one thread)", lambda: sk.decrypt(a), lambda: phe_sk.decrypt(pa), 1.2, unit="decrypt",
         setup_note="both compute c^(p-1) mod p^2 and c^(q-1) mod q^2; the exponentiations dominate")
    with ParallelDecryptor(sk) as decryptor:
        case("decrypt (CRT halves on two threads)", lambda: decryptor.decrypt(a), lambda: phe_sk.decrypt(pa),
             1.2, unit="decrypt", setup_note="p and q halves in parallel, GIL released by gmpy2")

    count = 1000 if config.quick else 10_000
    config.progress(f"paillier: encrypting {count} readings for the sum")
    encryptor = FastEncryptor.create(pk, rng, window=8)
    ours_list = [encryptor.encrypt(i % 1000, rng) for i in range(count)]
    phe_list = [phe.EncryptedNumber(phe_pk, int(c.c)) for c in ours_list]
    case(f"sum {count} ciphertexts", lambda: sum_ciphertexts(ours_list),
         lambda: functools.reduce(operator.add, phe_list), 2.0, unit=f"sum of {count}",
         setup_note="ours: sum_ciphertexts; phe: reduce(operator.add) over EncryptedNumber")
    return results


BENCHMARK = Benchmark(
    name="paillier",
    description="Paillier (2048-bit) encryption modes, addition, decryption and sums against phe",
    run=run,
)
