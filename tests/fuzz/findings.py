"""Open findings of the fuzz suite (/tmp/share/fuzz-findings.md has the details).

Each entry names a target, the finding and the inputs that show it (tried
first, so the strict xfail is deterministic).  When a fix is merged the
target's test XPASSes, which fails: delete the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .mutations import replaced
from .targets_primitives import drbg_huge, envelope_huge, merkle_huge_consistency, merkle_huge_inclusion, phe_deep
from .targets_system import deep_files, hpke_long_info, rfc9591_list_field

HUGE = 1 << 70_000


@dataclass(frozen=True)
class Finding:
    id: str
    what: str
    inputs: Callable[[], Sequence[bytes]]


def _at(seeds: Callable[[], Sequence[bytes]], path: Sequence[object], value: object) -> Callable[[], list[bytes]]:
    """The target's seeds with ``path`` set to ``value``."""
    return lambda: [replaced(seed, path, value) for seed in seeds()]


INT_MESSAGE = "a huge int (CBOR bignum) in {}: ValueError from str(int) in the error message, not a UsappError"
DEEP_JSON = "JSON nested deeper than the recursion limit: RecursionError escapes ({} catches ValueError only)"


def findings(seeds_of: Callable[[str], Callable[[], Sequence[bytes]]]) -> dict[str, Finding]:
    """Target name -> its open finding; ``seeds_of(name)`` gives a target's seeds."""
    out: dict[str, Finding] = {}

    def add(fid: str, what: str, names: Sequence[str], inputs: Callable[[str], Callable[[], Sequence[bytes]]]) -> None:
        for name in names:
            new = Finding(fid, what, inputs(name))
            old = out.get(name)
            if old is not None and old.id != fid:   # a second finding on one target: both must be fixed
                first, second = old.inputs, new.inputs
                new = Finding(f"{old.id}+{fid}", f"{old.what}; {fid}: {what}",
                              lambda a=first, b=second: [*a(), *b()])   # type: ignore[misc]
            out[name] = new

    add("F1", INT_MESSAGE.format("HmacDrbg.generate's length"), ["drbg.instantiate+generate"], lambda n: drbg_huge)
    add("F2", INT_MESSAGE.format("a Merkle proof's index or size"), ["merkle.verify_inclusion"],
        lambda n: merkle_huge_inclusion)
    add("F2", INT_MESSAGE.format("a Merkle proof's sizes"), ["merkle.verify_consistency"],
        lambda n: merkle_huge_consistency)
    add("F3", INT_MESSAGE.format("an IBE envelope's version or epoch"), ["ibe_hybrid.open_envelope"],
        lambda n: envelope_huge)
    add("F4", DEEP_JSON.format("from_phe_json"),
        ["paillier_encoding.from_phe_json", "paillier_encoding.from_phe_json(number)"], lambda n: phe_deep)
    add("F5", DEEP_JSON.format("vectors.parse_json"), ["vectors.parse_json", "vectors.verify_file",
                                                        "cli vectors verify"], lambda n: deep_files)
    add("F11", "a vector whose object field is a list (rfc9591 vector 7 'commitments' = [1]): TypeError escapes "
        "from vectorsets/_fields.py:29 field() (verify_file lets non-Usapp errors of a family propagate)",
        ["vectors.verify_file", "cli vectors verify"], lambda n: rfc9591_list_field)
    add("F12", "no size bound on a vector file: a 1 MiB hex field (hpke_rfc9180 vectors[0].info) makes verify_file "
        "allocate about 80 MB (75x, linear: 4 MiB -> 309 MB), over the memory budget",
        ["vectors.verify_file", "cli vectors verify"], lambda n: hpke_long_info)
    add("F6", INT_MESSAGE.format("a group message's version (groupkeys.py decode_message)"),
        ["groupkeys.decode_message", "groupkeys.Meter.receive", "groupkeys.Controller.recover"],
        lambda n: _at(seeds_of(n), [1], HUGE))
    add("F7", INT_MESSAGE.format("an escrow message's version (escrow.py decode_message)"),
        ["escrow.decode_message", "escrow.Escrow.handle[escrowed]", "escrow.Escrow.handle[blind]",
         "escrow.Meter.receive_hfid[escrowed]", "escrow.Meter.receive_hfid[blind]",
         "escrow.Receiver.receive[escrowed]", "escrow.Receiver.receive[blind]", "escrow.verify_epoch_key",
         "escrow.Authority.share(reid-request)"],
        lambda n: _at(seeds_of(n), [1], HUGE))
    add("F8", INT_MESSAGE.format("an issuance message's version (issuance.py:265)"),
        ["issuance.decode_challenge", "issuance.decode_enrollment", "issuance.decode_delivery", "issuance.Pkg.enroll",
         "issuance.Meter.enroll(challenge)", "issuance.Meter.receive(delivery)"],
        lambda n: _at(seeds_of(n), [1], HUGE))
    add("F8", INT_MESSAGE.format("a log entry's fields (issuance.py:399, :454)"),
        ["issuance.LogEntry.from_bytes", "issuance.verify_log"], lambda n: _at(seeds_of(n), [4], HUGE))
    add("F9", "a feedback with a tampered 'since' (key 4, any int: 2**64, -1, a bignum) is accepted on a meter's "
        "first check: 'since' and the proof are neither range-checked nor used when the meter has checked nothing "
        "before (integrity.py Meter.check)", ["integrity.Meter.check(feedback)"],
        lambda n: _at(seeds_of(n), [4], -1))
    add("F10", "lkh.Rekey is not validated: MemberKeys.apply on a Rekey with a wrong-typed field (a str height, a "
        "list kid, an int ct) raises TypeError / ValueError (lkh.py:82-210); groupkeys validates before it builds "
        "one, other callers of the public lkh API do not", ["lkh.MemberKeys.apply"],
        lambda n: _at(seeds_of(n), [0], "x"))
    return out
