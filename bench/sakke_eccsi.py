"""SAKKE and ECCSI (RFC 6508, RFC 6507) against the conventional schemes a meter
would otherwise use (specs/sakke_eccsi.md section 7), in the same run.

* ECCSI sign and verify (P-256 through pycryptodome, protocols.schemes.eccsi)
  against Ed25519 and ECDSA P-256 with SHA-256 from ``cryptography``, on the
  same message (a 200-byte record);
* SAKKE encapsulate and decapsulate (RFC 6509 parameter set 1, the 1024-bit
  pairing over gmpy2, protocols.schemes.sakke) against X25519 HPKE
  (protocols.schemes.hpke, RFC 9180 Base mode) sealing and opening the same
  16-byte secret;
* the key issuance steps (ECCSI SSK/PVT issue and validation, SAKKE RSK
  extraction and validation), timed alone;
* the bytes on the wire of each.

Ratios are baseline median / ours median (> 1: ours faster) with the spread of
the paired per-repeat ratios; no target is set.  Decapsulation includes the
subgroup check of R_(b,S) and the check of RFC 6508 6.2.2 step 5.
"""

from __future__ import annotations

from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import eccsi, hpke, sakke
from protocols.system.benchmark import BenchConfig, Benchmark, Comparison, Figures, compare, single

SEED = "usapp-bench/sakke_eccsi/"
IDENTITY = eccsi.Identifier("2026-03", "tel:+447700900123").encode()
MESSAGE = bytes(range(200))
INFO = b"usapp-bench sakke_eccsi"

COUNTS = {
    "eccsi sign": "1 P-256 scalar mul (J = [j]G), 1 SHA-256, 1 inversion mod q",
    "eccsi verify": "on-curve check of PVT and KPAK, 2 SHA-256, 3 P-256 scalar muls, 2 additions",
    "ed25519 sign": "RFC 8032: 1 fixed-base scalar mul, 2 SHA-512",
    "ed25519 verify": "RFC 8032: 1 double scalar mul, 1 SHA-512, 1 decompression",
    "ecdsa sign": "1 P-256 fixed-base scalar mul, 1 inversion (OpenSSL)",
    "ecdsa verify": "1 P-256 double scalar mul (OpenSSL)",
    "sakke encapsulate": "2 HashToIntegerRange, 2 scalar muls on the 1024-bit curve ([b]P, [r](.)), "
                         "1 PF_p exponentiation (g^r); Z checked once beforehand (KmsPublicKey)",
    "sakke decapsulate": "1 subgroup check of R ([q]R), 1 pairing, 2 HashToIntegerRange, 1 scalar mul "
                         "([r] of the [b]P + Z kept from RSK validation)",
    "hpke seal": "X25519 keygen and DH, HKDF key schedule, ChaCha20-Poly1305 seal",
    "hpke open": "X25519 DH, HKDF key schedule, ChaCha20-Poly1305 open",
}


def run(config: BenchConfig) -> list[Comparison | Figures]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    repeats = config.repeats
    rng = HmacDrbg.from_seed(SEED + "operations")
    results: list[Comparison | Figures] = []

    config.progress("sakke_eccsi: ECCSI keys")
    kms = eccsi.KeyGen(HmacDrbg.from_seed(SEED + "eccsi-kms"))
    issued = eccsi.ConstructSskPvt(kms, IDENTITY, rng)
    key = eccsi.ValidateSsk(kms.KPAK, IDENTITY, issued.SSK, issued.PVT)
    signature = eccsi.Sign(key, MESSAGE, rng)
    eccsi.Verify(kms.KPAK, IDENTITY, MESSAGE, signature)
    ed_key = ed25519.Ed25519PrivateKey.from_private_bytes(HmacDrbg.from_seed(SEED + "ed25519").random_bytes(32))
    ed_public = ed_key.public_key()
    ed_signature = ed_key.sign(MESSAGE)
    ecdsa_scalar = int.from_bytes(HmacDrbg.from_seed(SEED + "ecdsa").random_bytes(32), "big") % (eccsi.q - 1) + 1
    ecdsa_key = ec.derive_private_key(ecdsa_scalar, ec.SECP256R1())
    ecdsa_public = ecdsa_key.public_key()
    ecdsa_alg = ec.ECDSA(hashes.SHA256())
    ecdsa_signature = ecdsa_key.sign(MESSAGE, ecdsa_alg)

    config.progress("sakke_eccsi: SAKKE keys (1024-bit parameter set 1)")
    params = sakke.PARAMETER_SET_1
    sakke_kms = sakke.KeyGen(params, HmacDrbg.from_seed(SEED + "sakke-kms"))
    Z = sakke.KmsPublicKey.decode(params, sakke_kms.public_key)  # the sender checks Z once
    rsk = sakke.ExtractRSK(sakke_kms, IDENTITY)
    receiver = sakke.ValidateRSK(params, sakke_kms.public_key, IDENTITY, rsk)
    ssv, encapsulated = sakke.Encapsulate(params, Z, IDENTITY, rng)
    if sakke.Decapsulate(receiver, encapsulated) != ssv:
        raise RuntimeError("SAKKE round trip failed: the benchmark is measuring a bug")
    hpke_sk, hpke_pk = hpke.DeriveKeyPair(HmacDrbg.from_seed(SEED + "hpke").random_bytes(32))
    enc, ct = hpke.SealBase(hpke_pk, INFO, b"", ssv, rng)
    if hpke.OpenBase(enc, hpke_sk, INFO, b"", ct) != ssv:
        raise RuntimeError("HPKE round trip failed: the benchmark is measuring a bug")

    def versus(name: str, ours, baseline, baseline_name: str, ours_counts: str, base_counts: str) -> None:
        config.progress(f"sakke_eccsi: {name}")
        results.append(compare(name, ours, baseline, baseline_name=baseline_name, repeats=repeats,
                               min_time=config.min_time,
                               details={"ours_operations": COUNTS[ours_counts],
                                        "baseline_operations": COUNTS[base_counts]}))

    versus("sign: ECCSI P-256 vs Ed25519", lambda: eccsi.Sign(key, MESSAGE, rng),
           lambda: ed_key.sign(MESSAGE), "Ed25519 (cryptography)", "eccsi sign", "ed25519 sign")
    versus("sign: ECCSI P-256 vs ECDSA P-256", lambda: eccsi.Sign(key, MESSAGE, rng),
           lambda: ecdsa_key.sign(MESSAGE, ecdsa_alg), "ECDSA P-256 SHA-256 (cryptography)",
           "eccsi sign", "ecdsa sign")
    versus("verify: ECCSI P-256 vs Ed25519", lambda: eccsi.Verify(kms.KPAK, IDENTITY, MESSAGE, signature),
           lambda: ed_public.verify(ed_signature, MESSAGE), "Ed25519 (cryptography)",
           "eccsi verify", "ed25519 verify")
    versus("verify: ECCSI P-256 vs ECDSA P-256", lambda: eccsi.Verify(kms.KPAK, IDENTITY, MESSAGE, signature),
           lambda: ecdsa_public.verify(ecdsa_signature, MESSAGE, ecdsa_alg), "ECDSA P-256 SHA-256 (cryptography)",
           "eccsi verify", "ecdsa verify")
    versus("encapsulate: SAKKE vs X25519 HPKE", lambda: sakke.Encapsulate(params, Z, IDENTITY, rng),
           lambda: hpke.SealBase(hpke_pk, INFO, b"", ssv, rng), "X25519 HPKE SealBase of the 16-byte SSV",
           "sakke encapsulate", "hpke seal")
    versus("decapsulate: SAKKE vs X25519 HPKE", lambda: sakke.Decapsulate(receiver, encapsulated),
           lambda: hpke.OpenBase(enc, hpke_sk, INFO, b"", ct), "X25519 HPKE OpenBase",
           "sakke decapsulate", "hpke open")

    for name, fn in (
        ("issue: ECCSI SSK and PVT (KMS, RFC 6507 5.1.1)", lambda: eccsi.ConstructSskPvt(kms, IDENTITY, rng)),
        ("validate: ECCSI SSK and PVT (device, RFC 6507 5.1.2)",
         lambda: eccsi.ValidateSsk(kms.KPAK, IDENTITY, issued.SSK, issued.PVT)),
        ("issue: SAKKE RSK (KMS, RFC 6508 6.1.1)", lambda: sakke.ExtractRSK(sakke_kms, IDENTITY)),
        ("validate: SAKKE RSK (device, RFC 6508 6.1.2)",
         lambda: sakke.ValidateRSK(params, sakke_kms.public_key, IDENTITY, rsk)),
    ):
        config.progress(f"sakke_eccsi: {name}")
        results.append(single(name, fn, repeats=repeats, unit="key", min_time=config.min_time))

    sizes = {
        "eccsi_signature": len(signature), "ed25519_signature": len(ed_signature),
        "ecdsa_p256_signature_der": len(ecdsa_signature),
        "sakke_encapsulated_data": len(encapsulated), "hpke_enc_plus_ciphertext": len(enc) + len(ct),
        "eccsi_ssk": len(issued.SSK), "eccsi_pvt": len(issued.PVT), "sakke_rsk": len(rsk),
        "sakke_kms_public_key": len(sakke_kms.public_key), "eccsi_kpak": len(kms.KPAK),
    }
    text = "\n".join(f"{name}: {value} bytes" for name, value in sizes.items())
    results.append(Figures("sakke_eccsi bytes on the wire", {"bytes": sizes}, text))
    return results


BENCHMARK = Benchmark(
    name="sakke_eccsi",
    description="ECCSI (RFC 6507) sign/verify vs Ed25519 and ECDSA P-256; SAKKE (RFC 6508) "
                "encapsulate/decapsulate vs X25519 HPKE",
    run=run,
    aliases=("sakke", "eccsi"),
)
