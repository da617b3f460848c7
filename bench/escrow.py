"""Dual-ID escrow: HFID issuance in both modes, HF messages, escrow throughput (specs/escrow.md).

Baseline, measured in the same run: a plain Ed25519-signed message of the
same payload (``cryptography``), signed and verified.  Cases:

- HFID issuance, whole (the meter's request, the escrow's answer, the
  meter's checks), per mode, against signing and verifying one plain message;
- the escrow's part alone (``Escrow.handle``), per mode, restated as
  credentials per second;
- an HF data message (adp): the meter's ``send`` against a plain Ed25519
  sign, and the receiver's ``receive`` (credential and signature checks)
  against a plain Ed25519 verify, per mode;
- re-identification (mode escrowed): two authorities' shares and the opening.

Each issuance is a fresh (meter, epoch) pair, so fleets are provisioned
with enough meters for every timed call; times are medians of the repeats.
"""

from __future__ import annotations

import hashlib
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import escrow as esc
from protocols.primitives.drbg import HmacDrbg
from protocols.system import escrow_fleet
from protocols.system.benchmark import (
    BenchConfig,
    Benchmark,
    Comparison,
    Figures,
    Timing,
    compare,
    format_columns,
    measure,
)

PAYLOAD = bytes(16)
PER_REPEAT = 10
"""Issuances timed per repeat (each for its own meter)."""


def _at(epoch: int, offset: int = 3600) -> int:
    return escrow_fleet.ORIGIN + epoch * escrow_fleet.EPOCH_SECONDS + offset


def _plain():
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = b"usapp bench plain message" + PAYLOAD
    signature = key.sign(message)
    return key, public, message, signature


def _issuance(config: BenchConfig, mode: str) -> tuple[list[Comparison], dict]:
    repeats = config.repeats
    meters = PER_REPEAT * repeats * 2
    config.progress(f"escrow: provisioning {meters} meters, mode {mode}")
    fleet = escrow_fleet.provision(mode, meters, range(0, 1), seed=f"bench-{mode}")
    serials = iter(sorted(fleet.meters))
    rng = HmacDrbg.from_seed(f"bench-escrow/{mode}")
    key, public, message, signature = _plain()
    now = _at(0, 0)

    def whole():
        meter = fleet.meters[next(serials)]
        return meter.receive_hfid(fleet.escrow.handle(meter.request_hfid(0, rng), now, rng))

    requests: list[bytes] = []

    def escrow_only():
        return fleet.escrow.handle(requests.pop(), now, rng)

    config.progress(f"escrow: {mode}: issuance")
    whole_t = measure(whole, repeats=repeats, number=PER_REPEAT)
    plain_t = measure(lambda: public.verify(key.sign(message), message), repeats=repeats, number=200)
    escrow_t = []
    for _ in range(repeats):
        requests[:] = [fleet.meters[next(serials)].request_hfid(0, rng) for _ in range(PER_REPEAT)]
        start = time.perf_counter()
        for _ in range(PER_REPEAT):
            escrow_only()
        escrow_t.append((time.perf_counter() - start) / PER_REPEAT)
    escrow_timing = Timing(tuple(escrow_t), PER_REPEAT)
    sign_t = measure(lambda: key.sign(message), repeats=repeats, number=500)

    config.progress(f"escrow: {mode}: HF messages")
    meter = fleet.meters[sorted(fleet.meters)[0]]
    receiver = fleet.receivers["grid-operator"]
    adp = meter.send("technical", "grid-operator", PAYLOAD, _at(0))
    state = receiver.state

    def receive_new():       # a credential the receiver has not seen: full checks
        state.last_seq.clear()
        state.verified.clear()
        return receiver.receive(adp, _at(0))

    def receive_known():     # the credential was checked before (the same HFID's earlier messages)
        state.last_seq.clear()
        return receiver.receive(adp, _at(0))

    results = [
        Comparison(f"HFID issuance, mode {mode} (request, escrow, meter checks) vs Ed25519 sign + verify",
                   whole_t, plain_t, "Ed25519 sign + verify (cryptography)",
                   tuple(b / o for o, b in zip(whole_t.per_call, plain_t.per_call)), unit="credential"),
        Comparison(f"escrow's answer alone, mode {mode} vs Ed25519 sign", escrow_timing, sign_t,
                   "Ed25519 sign (cryptography)",
                   tuple(b / o for o, b in zip(escrow_timing.per_call, sign_t.per_call)), unit="credential"),
        compare(f"adp send (HF sign), mode {mode} vs Ed25519 sign",
                lambda: meter.send("technical", "grid-operator", PAYLOAD, _at(0)), lambda: key.sign(message),
                baseline_name="Ed25519 sign (cryptography)", repeats=repeats, min_time=config.min_time,
                unit="message", details={"adp_bytes": len(adp)}),
        compare(f"adp receive, new credential (credential + signature checks), mode {mode} vs Ed25519 verify",
                receive_new, lambda: public.verify(signature, message), baseline_name="Ed25519 verify (cryptography)",
                repeats=repeats, min_time=config.min_time, unit="message"),
        compare(f"adp receive, credential seen before (signature check), mode {mode} vs Ed25519 verify",
                receive_known, lambda: public.verify(signature, message),
                baseline_name="Ed25519 verify (cryptography)", repeats=repeats, min_time=config.min_time,
                unit="message"),
    ]
    figures = {"mode": mode, "escrow_credentials_per_second": 1 / escrow_timing.median,
               "escrow_credentials_per_second_spread": [1 / escrow_timing.max, 1 / escrow_timing.min],
               "issuance_seconds": whole_t.median, "adp_bytes": len(adp),
               "credential_bytes": len(meter.state.hf[0].credential)}
    return results, figures


def _reidentification(config: BenchConfig) -> Comparison:
    fleet = escrow_fleet.provision("escrowed", 1, range(0, 1), seed="bench-reid")
    meter = fleet.meters["SM-00000"]
    rng = HmacDrbg.from_seed("bench-reid")
    hf = meter.receive_hfid(fleet.escrow.handle(meter.request_hfid(0, rng), _at(0, 0), rng))
    fingerprint = hashlib.sha256(hf.credential).digest()
    sealed = fleet.escrow.sealed_link(fingerprint)
    request = esc.reidentification_request(fingerprint, "bench", bytes(16))
    a1, a2 = fleet.authorities[:2]

    def reid():
        a1.approve(request)
        a2.approve(request)
        shares = {1: a1.share(request, fleet.escrow, rng), 2: a2.share(request, fleet.escrow, rng)}
        return esc.reidentify(fleet.authority_info, request, sealed, shares)

    key, public, message, signature = _plain()
    return compare("re-identification, 2 of 3 authorities (shares, proofs, opening) vs Ed25519 sign + verify",
                   reid, lambda: public.verify(key.sign(message), message),
                   baseline_name="Ed25519 sign + verify (cryptography)", repeats=config.repeats,
                   min_time=config.min_time, unit="link")


def run(config: BenchConfig) -> list[Comparison | Figures]:
    results: list[Comparison | Figures] = []
    rows = []
    for mode in esc.MODES:
        comparisons, figures = _issuance(config, mode)
        results.extend(comparisons)
        rows.append(figures)
    results.append(_reidentification(config))
    lines = format_columns(("mode", "escrow credentials/s [min..max]", "whole issuance", "credential B", "adp B"),
                           [(r["mode"], "{:,.0f} [{:,.0f}..{:,.0f}]".format(
                               r["escrow_credentials_per_second"], *r["escrow_credentials_per_second_spread"]),
                             f"{r['issuance_seconds'] * 1e3:.2f} ms", str(r["credential_bytes"]),
                             str(r["adp_bytes"])) for r in rows])
    lines.append("")
    lines.append(f"escrow credentials/s = 1 / the median time of Escrow.handle over {PER_REPEAT} requests per "
                 "repeat (one core); the blind mode signs with a 2048-bit RSA key (RFC 9474).")
    results.append(Figures("escrow throughput", {"modes": rows}, "\n".join(lines)))
    return results


BENCHMARK = Benchmark(
    name="escrow",
    description="HFID issuance (escrowed and blind), HF messages and escrow throughput against plain Ed25519",
    run=run,
)
