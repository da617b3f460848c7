"""The suites side by side on each device (specs/costs.md section 6.6).

One operation of each suite a meter may be given (one Paillier encryption, plain or with DJN short
exponents; one identity-based encryption and decryption on RFC 5091's type-1 curve or on BLS12-381;
one signature and verification with Ed25519, ECDSA P-256 or ECCSI; one key encapsulation and
decapsulation with HPKE X25519 or SAKKE), counted by running the project's code under an open counter
(section 2) and priced with every device profile (section 4): the figures behind the README's table of
which suite a Cortex-M0+ meter can run.  Keys and inputs are built before the counter opens, so only
the operation itself is counted; a once-per-period check (ECCSI's SSK validation, SAKKE's RSK
validation) is an operation of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from protocols.errors import ParameterError
from protocols.primitives import opcount
from protocols.primitives.drbg import HmacDrbg
from protocols.system import costs_report

SEED = "usapp-costs-suites"
"""The seed of the DRBG every key and input is drawn from."""
PAILLIER_BITS = 2048
BF_LEVEL = 2048
"""RFC 5091 security level n (bits of F_p^2) of the type-1 suite compared: a 1024-bit p."""
COMMAND_LATENCY_MS = 1000.0
"""The issue's bound on a command's latency (README, design decisions)."""


@dataclass(frozen=True)
class SuiteOperation:
    """One operation of one suite; ``run`` performs it once."""

    suite: str
    operation: str
    run: Callable[[], object]


def operations(seed: str = SEED) -> list[SuiteOperation]:
    """Every compared operation, its keys and inputs built with nothing counted."""
    with opcount.suspended():
        return _build(HmacDrbg.from_seed(seed))


def _build(rng: HmacDrbg) -> list[SuiteOperation]:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from protocols.schemes import bf, bf_bls12, certificates, eccsi, hpke, paillier, sakke

    ops: list[SuiteOperation] = []
    public = paillier.generate_keypair(PAILLIER_BITS, rng).public_key
    djn = paillier.FastEncryptor.create(public, rng)
    reading = 1234
    ops.append(SuiteOperation(f"Paillier {PAILLIER_BITS} (r^n)", "encrypt", lambda: public.encrypt(reading, rng)))
    ops.append(SuiteOperation(f"Paillier {PAILLIER_BITS} (DJN short exponent)", "encrypt",
                              lambda: djn.encrypt(reading, rng)))

    identity, message = b"2026-12\x00tel:+447700900042\x00", rng.random_bytes(32)
    params, master = bf.BFsetup(BF_LEVEL, rng)
    bf_key = bf.BFextractPriv(params, master, identity)
    bf_ct = bf.BFencrypt(params, identity, message, rng)
    ops.append(SuiteOperation("BF-IBE RFC 5091 (1024-bit p)", "encrypt",
                              lambda: bf.BFencrypt(params, identity, message, rng)))
    ops.append(SuiteOperation("BF-IBE RFC 5091 (1024-bit p)", "decrypt",
                              lambda: bf.BFdecrypt(params, bf_key, bf_ct)))
    bls_master = bf_bls12.setup(rng)
    bls_params = bf_bls12.PublicParams(bf_bls12.G2.generator() * bls_master.s)
    bls_key = bf_bls12.extract(bls_master, identity)
    _, enc = bf_bls12.encapsulate(bls_params, identity, rng)
    ops.append(SuiteOperation("BF-IBE on BLS12-381", "encapsulate",
                              lambda: bf_bls12.encapsulate(bls_params, identity, rng)))
    ops.append(SuiteOperation("BF-IBE on BLS12-381", "decapsulate", lambda: bf_bls12.decapsulate(bls_key, enc)))

    ed = ed25519.Ed25519PrivateKey.from_private_bytes(rng.random_bytes(32))
    ed_sig = certificates.sign(ed, message)
    ops.append(SuiteOperation("Ed25519", "sign", lambda: certificates.sign(ed, message)))
    ops.append(SuiteOperation("Ed25519", "verify",
                              lambda: certificates.verify_signature(ed.public_key(), ed_sig, message, "ed25519")))
    p256 = ec.derive_private_key(1 + int.from_bytes(rng.random_bytes(32), "big") % (eccsi.q - 1), ec.SECP256R1())
    p256_sig = certificates.sign(p256, message)
    ops.append(SuiteOperation("ECDSA P-256", "sign", lambda: certificates.sign(p256, message)))
    ops.append(SuiteOperation("ECDSA P-256", "verify",
                              lambda: certificates.verify_signature(p256.public_key(), p256_sig, message, "p256")))

    kms = eccsi.KeyGen(rng)
    issued = eccsi.ConstructSskPvt(kms, identity, rng)
    kpak = kms.KPAK
    ssk, pvt = issued.SSK, issued.PVT
    signing = eccsi.ValidateSsk(kpak, identity, ssk, pvt)
    signature = eccsi.Sign(signing, message, rng)
    ops.append(SuiteOperation("ECCSI P-256", "validate SSK (once a period)",
                              lambda: eccsi.ValidateSsk(kpak, identity, ssk, pvt)))
    ops.append(SuiteOperation("ECCSI P-256", "sign", lambda: eccsi.Sign(signing, message, rng)))
    ops.append(SuiteOperation("ECCSI P-256", "verify", lambda: eccsi.Verify(kpak, identity, message, signature)))

    skm = rng.random_bytes(32)
    pkm = hpke.public_key(skm)
    enc_h, ct = hpke.SealBase(pkm, b"costs", b"", message, rng)
    ops.append(SuiteOperation("HPKE X25519 / ChaCha20-Poly1305", "seal 32 bytes",
                              lambda: hpke.SealBase(pkm, b"costs", b"", message, rng)))
    ops.append(SuiteOperation("HPKE X25519 / ChaCha20-Poly1305", "open 32 bytes",
                              lambda: hpke.OpenBase(enc_h, skm, b"costs", b"", ct)))

    sk_params = sakke.PARAMETER_SET_1
    sk_kms = sakke.KeyGen(sk_params, rng)
    rsk = sakke.ExtractRSK(sk_kms, identity)
    z_pub = sk_kms.public_key
    receiver = sakke.ValidateRSK(sk_params, z_pub, identity, rsk)
    _, encapsulated = sakke.Encapsulate(sk_params, z_pub, identity, rng)
    ops.append(SuiteOperation("SAKKE (RFC 6509 parameter set 1)", "validate RSK (once a period)",
                              lambda: sakke.ValidateRSK(sk_params, z_pub, identity, rsk)))
    ops.append(SuiteOperation("SAKKE (RFC 6509 parameter set 1)", "encapsulate",
                              lambda: sakke.Encapsulate(sk_params, z_pub, identity, rng)))
    ops.append(SuiteOperation("SAKKE (RFC 6509 parameter set 1)", "decapsulate",
                              lambda: sakke.Decapsulate(receiver, encapsulated)))
    return ops


def counted(op: SuiteOperation) -> dict[str, int]:
    """What one run of ``op`` counts (section 2)."""
    with opcount.counting() as counts:
        op.run()
    return {k: v for k, v in sorted(Counter(counts).items()) if v}


def table(devices: Sequence[str] | None = None, seed: str = SEED) -> list[dict[str, Any]]:
    """One row per operation: its counts, and per device its milliseconds (``None`` where a counted key has
    no figure, with the key listed)."""
    names = list(devices) if devices is not None else costs_report.device_names()
    models = [costs_report.device_model(name) for name in names]
    rows = []
    for op in operations(seed):
        counts = counted(op)
        row: dict[str, Any] = {"suite": op.suite, "operation": op.operation, "counts": counts, "ms": {},
                               "missing": {}}
        for model in models:
            cycles, missing = 0.0, []
            for key, n in counts.items():
                try:
                    cycles += n * model.cycles(key)
                except ParameterError:
                    missing.append(key)
            row["ms"][model.name] = None if missing else model.ms(cycles)
            if missing:
                row["missing"][model.name] = missing
        rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table, one column per device (ms, to 3 significant figures)."""
    names = list(rows[0]["ms"]) if rows else []
    lines = ["| suite | operation | " + " | ".join(names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for row in rows:
        cells = ["n/a" if row["ms"][n] is None else f"{row['ms'][n]:,.{_digits(row['ms'][n])}f}" for n in names]
        lines.append(f"| {row['suite']} | {row['operation']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _digits(ms: float) -> int:
    return 0 if ms >= 100 else 1 if ms >= 10 else 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocols.system.costs_suites",
                                     description="One operation of each suite, in ms on each device profile "
                                                 "(specs/costs.md section 6.6).")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = table()
    print(json.dumps(rows, indent=1, sort_keys=True) if args.json else markdown(rows), end="\n" if args.json else "")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
