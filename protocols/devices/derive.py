"""How every figure of the device profiles is obtained (specs/costs.md sections 4.2 and 4.3).

The JSON profiles next to this module are data; this module is their derivation, kept beside them so
that a reader can check each number.  Measured figures are entered here once, as published (a time
at a stated clock, or a throughput), with their source; every other figure is computed from them by
the rules of section 4.3.  ``python -m protocols.devices.derive`` rewrites the JSON files, and
tests/test_devices.py checks that the shipped files equal :func:`build` so the two cannot drift.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEVICES", "SIZES", "build", "render", "main"]

SIZES = (256, 512, 1024, 2048, 3072, 4096)
"""Operand sizes given explicitly for every size-classed key (section 4.1); other sizes use the rule."""

SS_P_BITS = (512, 1024, 1536, 2048, 3072, 4096)
"""Sizes of p given explicitly for the RFC 5091 type-1 curves ss{p} and the SAKKE curves sakke{p}."""

KIB = 1024
MIB = 1024 * 1024

_WOLF = ("wolfSSL benchmark tables, IDE/STM32Cube/STM32_Benchmarks.md (repository wolfSSL/wolfssl, "
         "commit 0a6a8516f9b5)")
_SRC = {
    "l4_asm": _WOLF + ", section STM32L4A6Z (Cortex-M4 at 80 MHz, wolfSSL 5.6.4, table 'STM Crypto/Hash "
              "Acceleration, SP-ASM Cortex-M Small and ARM ASM Thumb speedups'; RSA, ECC, ChaCha20-Poly1305 "
              "and SHA-512 run in software there)",
    "l4_sw": _WOLF + ", section STM32L4A6Z (Cortex-M4 at 80 MHz, wolfSSL 5.6.4, table 'No HW Crypto, "
             "SP Math All (sp_int.c) NO ASM')",
    "f437_sp": _WOLF + ", section STM32F437 (Cortex-M4 at 160 MHz, wolfSSL 4.4.1, table 'STM Crypto/Hash "
               "Acceleration, -Os, SP-ASM Cortex-M'; the F437 has no public-key accelerator, so RSA and ECC "
               "run in software)",
    "f437_sw": _WOLF + ", section STM32F437 (Cortex-M4 at 160 MHz, wolfSSL 4.4.1, table 'No HW Crypto, -Os, "
               "FastMath')",
    "g071": _WOLF + ", section STM32G071RB (Cortex-M0+ at 64 MHz, wolfSSL 5.6.0, table 'SP Math Small with "
            "ARM Thumb Assembly')",
    "h563": _WOLF + ", section STM32H563ZI (Cortex-M33 at 150 MHz, wolfSSL 5.6.0, table 'No STM HW Crypto, "
            "SP Math ASM Cortex M')",
    "u585_sw": _WOLF + ", section STM32U585 (Cortex-M33 at 160 MHz, wolfSSL 5.3.1, table 'No STM HW Crypto, "
               "SP Math C32': SHA (SHA-1) 5.225 MB/s, SHA-256 1.970 MB/s, both in software)",
    "pornin_m0": ("T. Pornin, X25519 for ARM Cortex-M0/M0+ (repository pornin/x25519-cm0, README): "
                  "3,229,950 cycles on a SAM D20 Xplained Pro (Cortex-M0+) at 8 MHz"),
    "pornin_do": ("doubleodd.group benchmarks page (T. Pornin, do255e/do255s), table of cycles on ARM Cortex "
                  "M0+ and M4: X25519 3,229,983 (M0+) and 563,310 (M4)"),
    "lenngren": ("E. Lenngren, X25519-Cortex-M4 (repository Emill/X25519-Cortex-M4, README 'Performance'): "
                 "548,873 cycles per scalar multiplication on Cortex-M4"),
    "pesonen": ("M. Pesonen, 'Performance Evaluation of Optimal Ate Pairing on Low-Cost Single Microprocessor "
                "Platform', M.Sc. thesis, University of Turku, 2020 (abstract; also Nordic DevZone blog "
                "'Evaluating Ate-Pairing on Embedded nRF9160 Platform'): BN254 optimal ate pairing 'in under "
                "26e6 cycles, or in 410 ms' on the 64 MHz Cortex-M33 of an nRF9160"),
    "host_ratio": ("ratio to one pairing measured on this machine with py-arkworks-bls12381 "
                   "(the project's BLS12-381 library), script in specs/costs.md section 4.3.4"),
    "flash": ("page erase 89,700 us: Zephyr nRF53 soc.h, FLASH_PAGE_ERASE_MAX_TIME_US 89700UL for "
              "CONFIG_SOC_NRF5340_CPUAPP (a maximum; 256 pages of 4 KiB); word write 41 us per 32-bit word: the "
              "nRF52 datasheet figure as quoted in a public nRF52840 MCUboot-installer note (not checked against "
              "the nRF5340 product specification)"),
}

# Ratios of BLS12-381 operations to one pairing, measured on this machine (x86-64, 2 cores) with
# py-arkworks-bls12381 0.5: min of 5 repeats; see specs/costs.md 4.3.4 for the command.
BLS_RATIO = {"g1_mul": 0.112, "g2_mul": 0.428, "h2c_g1": 0.143, "h2c_g2": 0.328, "gt_mul": 0.00318,
             "g1_decode": 0.071, "g2_decode": 0.150}

# RFC 5091 section 9: size n = 2 * |p| of F_p^2 -> bits of the subgroup order q.
_RFC5091_Q = ((1024, 160), (2048, 224), (3072, 256), (7680, 384), (15360, 512))


@dataclass(frozen=True)
class Measured:
    """The measured inputs of one profile (each a published figure, see _SRC)."""

    rsa2048_priv: tuple[float, str]       # cycles, source key
    ecdsa_sign: tuple[float, str]
    ecdsa_verify: tuple[float, str]
    p256_keygen: tuple[float, str]        # fixed-base multiplication + key encoding
    p256_ecdh: tuple[float, str]          # variable-base multiplication + point checks
    sha256_cpb: tuple[float, str]         # cycles per byte
    chacha_cpb: tuple[float, str] | None
    aes128gcm_cpb: tuple[float, str] | None
    aes256gcm_cpb: tuple[float, str] | None
    sha512_cpb: tuple[float, str] | None


def _ms(ms: float, mhz: float) -> float:
    return ms * mhz * 1000.0


def _cpb(rate: float, unit: int, mhz: float) -> float:
    return mhz * 1e6 / (rate * unit)


_M4_SHA512_CPB = _cpb(337.838, KIB, 80)
_M4_CHACHA_CPB = _cpb(1.775, MIB, 80)
_M4_GCM_CPB = {"aes128gcm": _cpb(305.738, KIB, 80), "aes256gcm": _cpb(243.191, KIB, 80)}
_M4_80 = Measured(
    rsa2048_priv=(_ms(1008.0, 80), "l4_asm"), ecdsa_sign=(_ms(42.5, 80), "l4_asm"),
    ecdsa_verify=(_ms(94.417, 80), "l4_asm"), p256_keygen=(_ms(31.25, 80), "l4_asm"),
    p256_ecdh=(_ms(68.812, 80), "l4_asm"), sha256_cpb=(_cpb(847.458, KIB, 80), "l4_sw"),
    chacha_cpb=(_M4_CHACHA_CPB, "l4_asm"), aes128gcm_cpb=(_M4_GCM_CPB["aes128gcm"], "l4_sw"),
    aes256gcm_cpb=(_M4_GCM_CPB["aes256gcm"], "l4_sw"), sha512_cpb=(_M4_SHA512_CPB, "l4_sw"))
_M4_80_25519 = {"x25519": _ms(31.625, 80), "sign": _ms(16.047, 80), "verify": _ms(36.571, 80),
                "keygen": _ms(12.6, 80)}

_M4_168 = Measured(
    rsa2048_priv=(_ms(483.25, 160), "f437_sp"), ecdsa_sign=(_ms(12.39, 160), "f437_sp"),
    ecdsa_verify=(_ms(26.711, 160), "f437_sp"), p256_keygen=(_ms(8.163, 160), "f437_sp"),
    p256_ecdh=(_ms(17.569, 160), "f437_sp"), sha256_cpb=(_cpb(2.602, MIB, 160), "f437_sw"),
    chacha_cpb=(_cpb(2.821, MIB, 160), "f437_sw"), aes128gcm_cpb=None, aes256gcm_cpb=None,
    sha512_cpb=None)

_M0P = Measured(
    rsa2048_priv=(_ms(3241.0, 64), "g071"), ecdsa_sign=(_ms(153.375, 64), "g071"),
    ecdsa_verify=(_ms(349.0, 64), "g071"), p256_keygen=(_ms(112.2, 64), "g071"),
    p256_ecdh=(_ms(250.0, 64), "g071"), sha256_cpb=(_cpb(476.863, KIB, 64), "g071"),
    chacha_cpb=None, aes128gcm_cpb=None, aes256gcm_cpb=None, sha512_cpb=None)
_M0P_AES128_CBC_CPB = _cpb(355.556, KIB, 64)
_M0P_AES256_CBC_CPB = _cpb(280.478, KIB, 64)
_M4_AES128_CBC_CPB = _cpb(425.0, KIB, 80)     # l4_sw table, AES-128-CBC-enc

_M33 = Measured(
    rsa2048_priv=(_ms(307.75, 150), "h563"), ecdsa_sign=(_ms(7.441, 150), "h563"),
    ecdsa_verify=(_ms(15.333, 150), "h563"), p256_keygen=(_ms(4.902, 150), "h563"),
    p256_ecdh=(_ms(10.713, 150), "h563"), sha256_cpb=(_cpb(4.972, MIB, 150), "h563"),
    chacha_cpb=(_cpb(5.683, MIB, 150), "h563"), aes128gcm_cpb=(_cpb(2.048, MIB, 150), "h563"),
    aes256gcm_cpb=(_cpb(1.741, MIB, 150), "h563"), sha512_cpb=None)

_M0P_OVER_M4 = 3229983 / 563310
"""Cortex-M0+ / Cortex-M4 cycle ratio of one author's constant-time X25519 on both cores (pornin_do)."""


@dataclass(frozen=True)
class Device:
    """One profile: identity, clock, energy and where its cycle counts come from."""

    name: str
    core: str
    mcu: str
    clock_hz: int
    current_ua_per_mhz: float
    supply_v: float
    energy_source: str
    energy_derived: bool
    energy_note: str
    measured: Measured
    measured_at: str


DEVICES: dict[str, Device] = {
    "cortex-m0plus-48mhz": Device(
        "cortex-m0plus-48mhz", "ARM Cortex-M0+", "Microchip SAM D20/D21 class (48 MHz); cycles from an "
        "STM32G071RB", 48_000_000, 103.0, 3.3,
        "Atmel (Microchip) blog 'The SAM L21 pushes the boundaries of low power MCUs', 2014-11-11: "
        "SAM D20 (Cortex-M0+, up to 48 MHz) uses 103 uA/MHz",
        True,
        "a vendor publication, not the datasheet's electrical table; the blog gives no supply voltage, 3.3 V "
        "is assumed (the SAM D20 board supply). STM32L031 datasheet DS10668 Rev 6, Features: 'down to 76 "
        "uA/MHz in Run mode' (Cortex-M0+, 32 MHz max) is a lower bound for the class",
        _M0P, "STM32G071RB at 64 MHz (2 flash wait states; fewer at 48 MHz, so these counts are an upper "
        "bound)"),
    "cortex-m4-80mhz": Device(
        "cortex-m4-80mhz", "ARM Cortex-M4", "STMicroelectronics STM32L4 (STM32L4A6Z measured, STM32L412 "
        "energy)", 80_000_000, 79.0, 3.0,
        "STM32L412xx datasheet DS12469 Rev 7, Features: '79 uA/MHz run mode (LDO Mode)', 1.71 V to 3.6 V",
        False,
        "3.0 V is ST's typical-value supply; with the SMPS variant the same datasheet gives 28 uA/MHz at 3.3 V",
        _M4_80, "STM32L4A6Z at 80 MHz"),
    "cortex-m4-168mhz": Device(
        "cortex-m4-168mhz", "ARM Cortex-M4", "STMicroelectronics STM32F4 (STM32F437 measured at 160 MHz)",
        168_000_000, 237.5, 3.6,
        "NOT SOURCED for the STM32F4: proxy from STM32F031x4/x6 datasheet Table 23 (Cortex-M0 at 48 MHz, "
        "all peripherals disabled, 11.4 mA typical at VDD 3.6 V = 237.5 uA/MHz)",
        True,
        "a same-vendor general-purpose (non low-power) process at 3.6 V; the STM32F405/407 datasheet table "
        "'Typical and maximum current consumption in Run mode' must replace it",
        _M4_168, "STM32F437 at 160 MHz (5 flash wait states with the ART accelerator, as at 168 MHz)"),
    "cortex-m33-64mhz": Device(
        "cortex-m33-64mhz", "ARM Cortex-M33", "Nordic nRF5340 application core at 64 MHz; cycles from an "
        "STM32H563ZI", 64_000_000, round(2.7 / 64 * 1000, 2), 3.0,
        "nRF5340 product specification, application core 'CPU running' parameters (docs.nordicsemi.com): "
        "ICPU0_FLASH, CPU running CoreMark at 64 MHz from flash, clock HFINT, cache enabled, 2.7 mA typical "
        "= 42.19 uA/MHz; common conditions of its 'Current consumption' chapter: 3 V supply, DC/DC on, 25 C",
        False,
        "the page is the nRF5340's (it pairs with the network-core 'INETCPU' table); from RAM the same "
        "table gives 2.1 mA",
        _M33, "STM32H563ZI at 150 MHz (instruction and data caches on)"),
}


def _fig(cycles: float, source: str, derived: bool, note: str) -> dict[str, Any]:
    return {"cycles": float(round(cycles, 1)), "source": source, "derived": derived, "note": note}


def _rule(anchors: dict[int, float], scaling: str, source: str, note: str) -> dict[str, Any]:
    return {"cycles_at": {str(k): float(round(v, 1)) for k, v in sorted(anchors.items())},
            "scaling": scaling, "source": source, "derived": True, "note": note}


def _q_bits(p_bits: int) -> int:
    """Bits of q for a type-1 curve with |p| = p_bits (RFC 5091 section 9, by n = 2|p|)."""
    for n, q in _RFC5091_Q:
        if 2 * p_bits <= n:
            return q
    return _RFC5091_Q[-1][1]


def build(name: str) -> dict[str, Any]:
    """The profile ``name`` as the JSON object its file holds (section 4.1)."""
    d = DEVICES[name]
    m = d.measured
    S = _SRC
    at = f"measured at {d.measured_at}; cycle counts applied unchanged at {d.clock_hz // 1_000_000} MHz"
    ops: dict[str, dict[str, Any]] = {}

    # --- big-integer arithmetic (4.3.1) --------------------------------------------------------------
    rsa, rsa_src = m.rsa2048_priv
    bit1024 = rsa / 2048.0

    def bit(b: int) -> float:
        return bit1024 * (b / 1024.0) ** 2

    def mul(b: int) -> float:
        return bit(b) / 1.2

    base_note = (f"from the RSA-2048 private operation with CRT ({rsa:,.0f} cycles, {S[rsa_src]}): two "
                 "exponentiations mod 1024-bit primes with 1024-bit exponents = 2048 exponent bits at 1024 "
                 f"bits, {bit1024:,.0f} cycles per bit; scaled quadratically in the modulus size")
    for b in SIZES:
        ops[f"modexp_bit:{b}"] = _fig(bit(b), S[rsa_src], True, base_note + f" ({b} bits)")
        ops[f"modmul:{b}"] = _fig(mul(b), S[rsa_src], True,
                                  "one exponent bit of a sliding-window exponentiation is 1 squaring + about "
                                  "0.2 multiplications, so modmul = modexp_bit / 1.2; " + base_note)
        ops[f"modexp:{b}"] = _fig(20 * mul(b), S[rsa_src], True,
                                  "per-call overhead = 20 modmul: Montgomery conversion in and out (2), the "
                                  "R^2 mod n set-up (about 2) and a 16-entry window table (16); " + base_note)
        ops[f"modinv:{b}"] = _fig(24 * mul(b), S[rsa_src], True,
                                  "binary extended Euclid: about 2b iterations of shift/subtract over b/32 "
                                  "words on two pairs of numbers, ~0.75 b^2 cycles on a Cortex-M4, which is "
                                  "24 modmul at every size (both scale as b^2); " + base_note)
    prime_note = ("Baillie-PSW: a base-2 strong probable-prime test (one exponentiation by n - 1: b exponent "
                  "bits; its set-up is left out, as small) and a strong Lucas test (the binary chain for U and "
                  "V: about 4 modmul per bit of n + 1); " + base_note)
    for b in SIZES:
        ops[f"prime_test:{b}"] = _fig(b * bit(b) + 4 * b * mul(b), S[rsa_src], True, prime_note)
    ops["prime_test:*"] = _rule({1024: 1024 * bit(1024) + 4 * 1024 * mul(1024)}, "cubic",
                                S[rsa_src], "any other size class b: the 1024-bit figure times (b/1024)^3 "
                                "(b bits of quadratic work); " + prime_note)
    for key, per in (("modexp_bit", 1.0), ("modmul", 1 / 1.2), ("modexp", 20 / 1.2), ("modinv", 24 / 1.2)):
        ops[f"{key}:*"] = _rule({1024: bit1024 * per}, "quadratic", S[rsa_src],
                                "any other size class b: the 1024-bit figure times (b/1024)^2; " + base_note)

    # --- hashes, AEAD, randomness (4.3.2) ----------------------------------------------------------
    sha256_cpb, sha_src = m.sha256_cpb
    sha256_block = 64 * sha256_cpb
    ops["hash_block:sha256"] = _fig(sha256_block, S[sha_src], False,
                                    f"{sha256_cpb:.1f} cycles/byte over 1 KiB messages x 64 bytes per block; {at}")
    if m.sha512_cpb is not None:
        sha512_cpb, s512 = m.sha512_cpb
        ops["hash_block:sha512"] = _fig(128 * sha512_cpb, S[s512], False,
                                        f"{sha512_cpb:.1f} cycles/byte x 128 bytes per block; {at}")
    else:
        ratio = _M4_SHA512_CPB / _M4_80.sha256_cpb[0]
        ops["hash_block:sha512"] = _fig(128 * sha256_cpb * ratio, S["l4_sw"], True,
                                        f"SHA-512/SHA-256 cycles-per-byte ratio {ratio:.2f} of the Cortex-M4 "
                                        "measurement (same library build) times this device's SHA-256 "
                                        "cycles per byte, x 128 bytes per block")
    sha1_ratio = _cpb(5.225, MIB, 160) / _cpb(1.970, MIB, 160)
    ops["hash_block:sha1"] = _fig(sha256_block * sha1_ratio, S["u585_sw"] + "; " + S[sha_src], True,
                                  f"SHA-1/SHA-256 cycles-per-byte ratio {sha1_ratio:.3f} of one software build "
                                  "(STM32U585: SHA-1 29.2, SHA-256 77.5 cycles/byte) times this device's "
                                  "hash_block:sha256; one 64-byte block")
    keccak_m4 = 13000.0
    keccak = keccak_m4 * (2.5 if d.core.endswith("M0+") else 1.0)
    ops["hash_block:shake256"] = _fig(
        keccak, "no published figure found in this session", True,
        "instruction count of Keccak-f[1600] in 32-bit bit-interleaved form (XKCP ARMv7-M 'inplace-32bi' "
        "design): 24 rounds x about 450 instructions, about 1.2 cycles per instruction on Cortex-M4/M33 "
        "= 13,000 cycles per 136-byte block; x2.5 on Cortex-M0+ (8 low registers, no shifted operands). "
        "The weakest figure of the profile; replace with a pqm4 Keccak measurement")

    aead: dict[str, tuple[float, str, bool, str]] = {}
    if m.chacha_cpb is not None:
        aead["chacha20poly1305"] = (m.chacha_cpb[0], S[m.chacha_cpb[1]], False,
                                    f"{m.chacha_cpb[0]:.1f} cycles/byte (wolfSSL CHA-POLY over 1 KiB); {at}")
    else:
        ratio = sha256_cpb / _M4_80.sha256_cpb[0]
        aead["chacha20poly1305"] = (_M4_CHACHA_CPB * ratio, S["l4_asm"] + "; " + S[sha_src], True,
                                    f"Cortex-M4 {_M4_CHACHA_CPB:.1f} cycles/byte times this core's SHA-256/M4 SHA-256 "
                                    f"ratio {ratio:.2f} (both 32-bit add-rotate-xor code); Poly1305 lacks a "
                                    "32x32->64 multiply on Cortex-M0+, so this is a lower bound")
    for alg, field_, cbc in (("aes128gcm", m.aes128gcm_cpb, _M0P_AES128_CBC_CPB),
                             ("aes256gcm", m.aes256gcm_cpb, _M0P_AES256_CBC_CPB)):
        if field_ is not None:
            aead[alg] = (field_[0], S[field_[1]], False,
                         f"{field_[0]:.1f} cycles/byte (software AES-GCM, no accelerator) over 1 KiB; {at}")
        elif d.core.endswith("M0+"):
            ghash_m4 = _M4_GCM_CPB["aes128gcm"] - _M4_AES128_CBC_CPB
            ratio = sha256_cpb / _M4_80.sha256_cpb[0]
            aead[alg] = (cbc + ghash_m4 * ratio, S["g071"] + "; " + S["l4_sw"], True,
                         f"measured AES-CBC {cbc:.1f} cycles/byte on the Cortex-M0+ plus GHASH: the "
                         f"Cortex-M4 AES-128-GCM minus AES-128-CBC ({ghash_m4:.1f} cycles/byte) times the "
                         f"SHA-256 M0+/M4 ratio {ratio:.2f}")
        else:
            aead[alg] = (_M4_GCM_CPB[alg], S["l4_sw"], True,
                         "no software AES-GCM figure for this part; the Cortex-M4 80 MHz measurement "
                         "(same core, same library build family) is used")
    for alg, (cpb, src, derived, note) in aead.items():
        ops[f"aead_byte:{alg}"] = _fig(cpb, src, derived, note)
        ops[f"aead_call:{alg}"] = _fig(80 * cpb, src, True,
                                       "per seal/open: key and nonce set-up, the Poly1305 key block or the "
                                       "GCM H and J0 blocks, the length block and the tag = about 80 bytes "
                                       "of bulk work; " + note)
    ops["random_byte"] = _fig(sha256_block / 8, S[sha_src], True,
                              "HMAC_DRBG-SHA-256 generate: one HMAC (4 compression blocks without cached "
                              "pads) per 32 output bytes = hash_block:sha256 / 8 per byte; the per-call "
                              "update and the entropy source are not included")

    # --- elliptic curves (4.3.3) -------------------------------------------------------------------
    for key, (cyc, src) in (("ecdsa_p256_sign", m.ecdsa_sign), ("ecdsa_p256_verify", m.ecdsa_verify),
                            ("point_mul_base:p256", m.p256_keygen), ("point_mul:p256", m.p256_ecdh)):
        note = {"point_mul_base:p256": "ECC key generation = one fixed-base multiplication and the key "
                                       "encoding",
                "point_mul:p256": "ECDHE agree = one variable-base multiplication with point validation"
                }.get(key, "")
        ops[key] = _fig(cyc, S[src], False, (note + "; " if note else "") + at)

    if name == "cortex-m4-80mhz":
        x, sign, verify, keygen = (_M4_80_25519[k] for k in ("x25519", "sign", "verify", "keygen"))
        src25519, derived25519 = S["l4_asm"], False
        n25519 = (f"{at}; the Lenngren assembly X25519 takes 548,873 cycles on the same core "
                  f"({S['lenngren']}), 4.6x fewer: a vendor choosing it gains that factor")
    elif name == "cortex-m4-168mhz":
        x, sign, verify, keygen = (_M4_80_25519[k] for k in ("x25519", "sign", "verify", "keygen"))
        src25519, derived25519 = S["l4_asm"], True
        n25519 = ("not in the STM32F437 table; the same core's cycle count from the STM32L4A6Z run "
                  "(wolfSSL 5.6.4) is used")
    else:
        if name == "cortex-m0plus-48mhz":
            x, src25519 = 3229950.0, S["pornin_m0"]
            n25519 = f"X25519 measured ({S['pornin_m0']})"
        else:
            x, src25519 = 548873.0, S["lenngren"]
            n25519 = ("the Cortex-M4 assembly runs unchanged on a Cortex-M33 with the DSP extension (UMAAL); "
                      "equal cycle counts assumed")
        r = _M4_80_25519
        sign, verify, keygen = (x * r[k] / r["x25519"] for k in ("sign", "verify", "keygen"))
        derived25519 = True
        n25519 += ("; Ed25519 from X25519 by the Cortex-M4 wolfSSL ratios sign/X25519 "
                   f"{r['sign'] / r['x25519']:.3f}, verify/X25519 {r['verify'] / r['x25519']:.3f}, "
                   f"keygen/X25519 {r['keygen'] / r['x25519']:.3f} (Pornin's M0+ do255e sign/X25519 "
                   "ratio, 0.47, agrees)")
    x_derived = name in ("cortex-m4-168mhz", "cortex-m33-64mhz")
    ops["x25519"] = _fig(x, src25519, x_derived, n25519)
    ops["point_mul:ed25519"] = _fig(x, src25519, True, "one variable-base multiplication on the Curve25519 "
                                    "field = one X25519 ladder; " + n25519)
    ops["point_decode:ed25519"] = _fig(x * (1 + 270 / 2800), src25519, True,
                                       "RFC 8032 5.1.3 decoding, then the prime-order check RFC 9591 requires: "
                                       "the square root (p-5)/8 power, about 270 field products, plus [L]P, "
                                       "one variable-base multiplication; an X25519 ladder is about 2,800 "
                                       "field products (255 x 10 and the final inversion), so 1 + 270/2800 "
                                       "ladders; " + n25519)
    ops["ed25519_sign"] = _fig(sign, src25519, derived25519, n25519)
    ops["ed25519_verify"] = _fig(verify, src25519, derived25519, n25519)
    ops["ed25519_keygen"] = _fig(keygen, src25519, derived25519, n25519)
    sha512_block = ops["hash_block:sha512"]["cycles"]
    ops["point_mul_base:ed25519"] = _fig(max(keygen - sha512_block, 1.0), src25519, True,
                                         "Ed25519 key generation minus one SHA-512 block; " + n25519)

    # --- pairings (4.3.4) --------------------------------------------------------------------------
    bn254_m33 = 26.0e6
    pairing_m4 = bn254_m33 * (12 / 8) ** 2
    pairing = pairing_m4 * (_M0P_OVER_M4 if d.core.endswith("M0+") else 1.0)
    pnote = (f"BN254 optimal ate on Cortex-M33 {bn254_m33:,.0f} cycles ({S['pesonen']}) x (12/8)^2 = 2.25 for "
             "381-bit against 254-bit F_p multiplication (12 against 8 32-bit limbs, quadratic); Miller loop "
             "lengths are equal (64-bit |x| against 6u+2) and the final exponentiations comparable, so +-20%; "
             "Cortex-M4 and M33 share the UMAAL/DSP instructions such code uses")
    if d.core.endswith("M0+"):
        pnote += (f"; x{_M0P_OVER_M4:.2f} for Cortex-M0+ (the M0+/M4 ratio of one author's X25519 on both "
                  f"cores, {S['pornin_do']})")
    ops["pairing:bls12_381"] = _fig(pairing, S["pesonen"], True, pnote)
    rsrc = S["pesonen"] + "; " + S["host_ratio"]
    for key, ratio_key in (("point_mul:bls12_381_g1", "g1_mul"), ("point_mul:bls12_381_g2", "g2_mul"),
                           ("point_mul_base:bls12_381_g1", "g1_mul"),
                           ("point_mul_base:bls12_381_g2", "g2_mul"),
                           ("hash_to_curve:bls12_381", "h2c_g1"), ("hash_to_curve:bls12_381_g1", "h2c_g1"),
                           ("hash_to_curve:bls12_381_g2", "h2c_g2"),
                           ("point_decode:bls12_381_g1", "g1_decode"), ("point_decode:bls12_381_g2", "g2_decode")):
        ratio = BLS_RATIO[ratio_key]
        extra = " (no fixed-base table assumed)" if "base" in key else ""
        extra += " (the project's IBE hashes identities to G1)" if key == "hash_to_curve:bls12_381" else ""
        ops[key] = _fig(pairing * ratio, rsrc, True,
                        f"{ratio} x pairing:bls12_381, the ratio of the two operations in one library "
                        f"(both F_p-multiplication bound){extra}")
    gt = 383 * BLS_RATIO["gt_mul"]
    ops["gt_exp:bls12_381"] = _fig(pairing * gt, rsrc, True,
                                   f"a 255-bit square-and-multiply in F_p^12 as the project does it: 255 "
                                   f"squarings + ~128 multiplications = 383 F_p^12 products of "
                                   f"{BLS_RATIO['gt_mul']} pairing each = {gt:.2f} pairing (cyclotomic "
                                   "squaring and GLV would halve it)")

    # RFC 5091 type-1 (ss{p}) and SAKKE (sakke{p}) curves from F_p multiplication counts
    inv_per_mul = 24.0
    ss: dict[str, dict[int, float]] = {k: {} for k in ("pairing", "point_mul", "hash_to_curve", "gt_exp")}
    sk: dict[str, dict[int, float]] = {"point_mul": {}, "pairing": {}, "gt_exp": {}}
    for p in SS_P_BITS:
        q = _q_bits(p)
        M = mul(p)
        ss["pairing"][p] = (16 * q + 2.6 * (p - q) + 4 + inv_per_mul) * M
        ss["point_mul"][p] = (8.8 * q + inv_per_mul) * M
        ss["hash_to_curve"][p] = (1.2 * p + 8.8 * (p - q) + inv_per_mul) * M
        ss["gt_exp"][p] = 2.6 * q * M
        sk["point_mul"][p] = (8.8 * (p - 2) + inv_per_mul) * M
        sk["pairing"][p] = (16 * (p - 2) + 2.6 * 2 + 4 + inv_per_mul) * M
        sk["gt_exp"][p] = (2.6 * (p - 2) + inv_per_mul) * M
    counts = {
        "pairing": "Tate pairing with denominator elimination: per Miller bit 7 M (doubling) + 4 M (tangent "
                   "at phi(B)) + 5 M (F_p^2 square and product) = 16 M over |q| bits; final exponentiation "
                   "(p^2-1)/q: an F_p^2 inversion (24 M) and 4 M, then a unitary power of |p|-|q| bits at "
                   "2.6 M per bit",
        "point_mul": "Jacobian double 7 M + mixed add 11 M every 6 bits (5-bit window, as "
                     "supersingular.WINDOW_BITS) = 8.8 M per scalar bit over |q| bits, one inversion (24 M) "
                     "to affine",
        "hash_to_curve": "HashToPoint: cube root (y^2-1)^((2p-1)/3) = 1.2 M per bit of p, then "
                         "multiplication by (p+1)/q: 8.8 M per bit over |p|-|q| bits, one inversion",
        "gt_exp": "unitary F_p^2 power with a |q|-bit exponent: 2.6 M per bit",
    }
    qnote = ("|q| by RFC 5091 section 9 for n = 2|p| (512->160, 1024->224, 1536->256, 2048 and 3072->384, "
             "4096->512); M = this profile's modmul at |p| bits")
    for op, table in ss.items():
        for p, c in table.items():
            ops[f"{op}:ss{p}"] = _fig(c, S[rsa_src], True, f"{counts[op]}; |q| = {_q_bits(p)}; {qnote}")
        ops[f"{op}:ss*"] = _rule(table, "cubic", S[rsa_src],
                                 f"other |p|: interpolated between the sizes given (power law), beyond "
                                 f"them x(|p| ratio)^3; {counts[op]}; {qnote}")
    ops["point_mul_base:ss*"] = _rule(ss["point_mul"], "cubic", S[rsa_src],
                                      "as point_mul:ss* (no fixed-base table assumed); " + counts["point_mul"])
    for p, c in ss["point_mul"].items():
        ops[f"point_mul_base:ss{p}"] = _fig(c, S[rsa_src], True,
                                            "as point_mul (no fixed-base table assumed); " + counts["point_mul"])
    sk_note = {"point_mul": "SAKKE (RFC 6508) scalars are mod q = (p+1)/4 (RFC 6509 parameter set 1), |q| = "
                            "|p|-2: 8.8 M per bit + one inversion",
               "pairing": "Tate pairing on the SAKKE curve: 16 M per bit over |q| = |p|-2 bits; the final "
                          "exponentiation (p^2-1)/q = 4(p-1) is one inversion and a few products",
               "gt_exp": "g^r in PF_p (RFC 6508 6.2.1): a unitary F_p^2 power with an exponent below q, "
                         "|q| = |p|-2 bits, 2.6 M per bit, and one inversion for the representative"}
    for op, table in sk.items():
        for p, c in table.items():
            ops[f"{op}:sakke{p}"] = _fig(c, S[rsa_src], True, f"{sk_note[op]}; M = modmul at |p| bits")
        ops[f"{op}:sakke*"] = _rule(table, "cubic", S[rsa_src], f"{sk_note[op]}; other |p| interpolated")
    for p, c in sk["point_mul"].items():
        ops[f"point_mul_base:sakke{p}"] = _fig(c, S[rsa_src], True, "as point_mul:sakke (no table); "
                                               + sk_note["point_mul"])
    ops["point_mul_base:sakke*"] = _rule(sk["point_mul"], "cubic", S[rsa_src],
                                         "as point_mul:sakke* (no table); " + sk_note["point_mul"])

    # --- encoding and durable state (4.3.5) --------------------------------------------------------
    m0 = d.core.endswith("M0+")
    ops["cbor_encode_byte"] = _fig(8.0 if m0 else 4.0, "no published figure found in this session", True,
                                   "estimate: our messages are mostly byte strings, copied at ~1 cycle/byte "
                                   "(LDM/STM), plus ~40 cycles per item header over ~15 bytes per item; x2 on "
                                   "Cortex-M0+. Small against any public-key operation")
    ops["cbor_decode_byte"] = _fig(12.0 if m0 else 6.0, "no published figure found in this session", True,
                                   "estimate as cbor_encode_byte plus the strict decoder's checks (canonical "
                                   "lengths, bounds), 1.5x the encoder")
    ops["der_decode_byte"] = _fig(12.0 if m0 else 6.0, "no published figure found in this session", True,
                                  "as cbor_decode_byte: an X.509 certificate is tag-length-value items like "
                                  "CBOR, checked as strictly (the public key inside is loaded, not decoded: a "
                                  "signature check decodes it)")
    mhz = d.clock_hz / 1e6
    byte_us = 41.0 / 4 + 89700.0 / 4096
    commit_us = 4 * 41.0 + 16 * 89700.0 / 4096
    ops["state_byte"] = _fig(byte_us * mhz, S["flash"], True,
                             f"log-structured flash store: 41 us per 4-byte word = 10.25 us/byte, plus the "
                             f"page erase (89.7 ms per 4 KiB page) shared by the bytes it frees = 21.9 us/byte;"
                             f" {byte_us:.2f} us x {mhz:.0f} MHz. The CPU is taken as busy-waiting; flash "
                             "timing of other parts is used as a proxy for STM32 profiles")
    ops["state_commit"] = _fig(commit_us * mhz, S["flash"], True,
                               f"a 16-byte commit record (sequence, length, CRC): 4 word writes (164 us) and "
                               f"its share of a page erase (350 us) = {commit_us:.0f} us x {mhz:.0f} MHz")
    return {
        "name": d.name, "core": d.core, "mcu": d.mcu, "clock_hz": d.clock_hz,
        "active_current_ua_per_mhz": d.current_ua_per_mhz, "supply_v": d.supply_v,
        "energy_source": d.energy_source, "energy_derived": d.energy_derived, "energy_note": d.energy_note,
        "ops": dict(sorted(ops.items())),
    }


def render(name: str) -> str:
    """The JSON text of profile ``name`` (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(build(name), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def _source_keys(source: str) -> str:
    """The short names (keys of the source list) of a figure's source text, in their order there."""
    found = sorted((source.find(text), key) for key, text in _SRC.items() if text in source)
    return ", ".join(key for _, key in found) or "none"


def _tabled(key: str) -> bool:
    """Section 4.2.3: every explicit key but the 256-, 512- and 3072-bit big-integer sizes and the ss{p} and
    sakke{p} sizes other than 512, 1024 and 2048."""
    name, _, size = key.partition(":")
    if size.isdigit():
        return int(size) not in (256, 512, 3072)
    for prefix in ("ss", "sakke"):
        if size.startswith(prefix) and size[len(prefix):].isdigit():
            return int(size[len(prefix):]) in (512, 1024, 2048)
    return True


def markdown(name: str) -> str:
    """The subsection of specs/costs.md 4.2.3 for profile ``name``: the device line and its table."""
    doc = build(name)
    d = DEVICES[name]
    mhz = doc["clock_hz"] / 1e6
    energy = "derived" if doc["energy_derived"] else "measured"
    lines = [f"#### {name}", "",
             f"{d.core}, {mhz:.0f} MHz; {d.mcu}. Energy: {d.current_ua_per_mhz:.1f} uA/MHz at "
             f"{d.supply_v:.1f} V ({energy}).", "",
             "| key | cycles | ms | source | measured or derived |", "|---|---:|---:|---|---|"]
    for key, fig in doc["ops"].items():
        if "cycles" not in fig or not _tabled(key):
            continue
        lines.append(f"| `{key}` | {fig['cycles']:,.0f} | {fig['cycles'] / mhz / 1000:,.3f} | "
                     f"{_source_keys(fig['source'])} | {'derived' if fig['derived'] else 'measured'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Rewrite the JSON profile files next to this module; with ``--markdown``, print the tables of
    specs/costs.md 4.2.3 instead."""
    if argv and argv[0] == "--markdown":
        print("\n".join(markdown(name) for name in DEVICES), end="")
        return 0
    here = Path(__file__).resolve().parent
    for name in DEVICES:
        (here / f"{name}.json").write_text(render(name), encoding="ascii")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
