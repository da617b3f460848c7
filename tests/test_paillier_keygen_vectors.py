"""Paillier key generation from its recorded draws (specs/paillier.md 3.1.1): every random_bytes
call of the keygen vectors is listed in order with what became of it, and the key follows from
the draws alone."""

from __future__ import annotations

import copy
import json
from math import gcd, prod
from pathlib import Path

import pytest

from protocols.errors import VectorMismatchError
from protocols.primitives.rand import ReplayRandom
from protocols.schemes.paillier import generate_keypair
from protocols.system.vectorsets import paillier as family

ENVELOPE = json.loads((Path(__file__).parent.parent / "vectors" / "paillier.json").read_text())
KEYGENS = {v["name"]: v for v in ENVELOPE["vectors"] if v["operation"] == "keygen"}
ODD_PRIMES_BELOW_2000 = prod(n for n in range(3, 2000, 2) if all(n % d for d in range(3, int(n**0.5) + 1, 2)))


def _candidate(entry: dict, half: int) -> int:
    """Section 3.1: OS2IP of the draw, low half bits, OR 3 * 2^(half-2) OR 1."""
    return (int(entry["hex"], 16) & ((1 << half) - 1)) | (3 << (half - 2)) | 1


@pytest.mark.parametrize("name", sorted(KEYGENS))
def test_the_draws_alone_give_the_key(name):
    v = KEYGENS[name]
    draws = [bytes.fromhex(d["hex"]) for d in v["draws"]]
    replay = ReplayRandom(draws)
    key = generate_keypair(v["bits"], replay)
    assert replay.exhausted
    assert (format(int(key.p), "x"), format(int(key.q), "x")) == (v["p"], v["q"])
    assert len(draws) == v["draw_calls"] and sum(map(len, draws)) == v["bytes_drawn"]


@pytest.mark.parametrize("name", sorted(KEYGENS))
def test_the_outcomes_follow_the_spec_text(name):
    """Read from the text of 3.1 / 3.1.1, not from the code: accepted candidates are p and q,
    trial-division rejections share a factor with P, each prime has 40 passing bases, and a
    candidate's base draws follow it directly."""
    v = KEYGENS[name]
    half = v["bits"] // 2
    accepted = [_candidate(d, half) for d in v["draws"] if d["outcome"] == "prime"]
    assert sorted(accepted) == [int(v["p"], 16), int(v["q"], 16)]
    for d in v["draws"]:
        assert len(d["hex"]) == half // 4
        if d["outcome"] == "composite-trial-division":
            assert gcd(_candidate(d, half), ODD_PRIMES_BELOW_2000) != 1
    current, owner, passes = 0, "", 0
    for d in v["draws"]:
        if d["name"].endswith("-candidate"):
            assert passes in (0, 40)
            current, owner, passes = _candidate(d, half), d["name"][0], 0
        else:
            assert current and d["name"] == f"{owner}-mr-base"  # a base belongs to the candidate before it
            value = int(d["hex"], 16) & ((1 << (current - 4).bit_length()) - 1)
            assert (value >= current - 3) == (d["outcome"] == "out-of-range")
            if d["outcome"] == "pass":
                assert pow(2 + value, current - 1, current) == 1
                passes += 1
    assert passes == 40
    assert sum(d["outcome"] == "pass" for d in v["draws"]) == 80


def test_keygen_vectors_verify_and_edits_are_mismatches():
    v = KEYGENS["keygen-2048"]
    family.verify_vector(v)
    first_rejected = next(i for i, d in enumerate(v["draws"]) if d["outcome"] == "composite-trial-division")
    edits = []
    changed = copy.deepcopy(v)
    changed["draws"][first_rejected]["outcome"] = "composite-bpsw"
    edits.append(changed)
    changed = copy.deepcopy(v)
    del changed["draws"][first_rejected]
    edits.append(changed)
    changed = copy.deepcopy(v)
    changed["draws"].append(copy.deepcopy(v["draws"][0]))
    edits.append(changed)
    changed = copy.deepcopy(v)
    changed["draws"][first_rejected]["name"] = "q-candidate"
    edits.append(changed)
    for edit in edits:
        with pytest.raises(VectorMismatchError, match="draws"):
            family.verify_vector(edit)


def test_walk_reports_short_or_exhausted_draws():
    v = KEYGENS["keygen-2048"]
    draws = [bytes.fromhex(d["hex"]) for d in v["draws"]]
    with pytest.raises(VectorMismatchError, match="draws"):
        family.annotate_keygen_draws(2048, draws[:-1])
    with pytest.raises(VectorMismatchError, match="draws"):
        family.annotate_keygen_draws(2048, [draws[0][:-1]] + draws[1:])
    entries, p, q = family.annotate_keygen_draws(2048, draws)
    assert entries == v["draws"]
