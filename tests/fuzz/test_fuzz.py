"""Issue 16 item 3: every decoder and message handler, fed mutations of valid messages.

Adversary: the network (or a peer, or whoever hands a file to the CLI): it
controls every byte of one input of the target and sees the valid messages
(the seeds).  The property is :func:`tests.fuzz.registry.check`'s: refused
with a UsappError or accepted only when legitimate, never another exception,
bounded memory.  One parametrised test per budget runs every target of
:data:`tests.fuzz.targets.TARGETS`; a target with an open finding is a strict
xfail naming it (the finding's input is among its regressions, so the xfail
is deterministic, and a fix makes it XPASS, which fails until the mark is removed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .mutations import mutant, sweep
from .registry import Target, check
from .targets import TARGETS

SCALE = float(os.environ.get("USAPP_FUZZ_SCALE", "1"))
LONG_SCALE = float(os.environ.get("USAPP_FUZZ_LONG_SCALE", "25"))


def _param(target: Target, *marks: pytest.MarkDecorator):
    if target.finding is not None:
        marks = (*marks, pytest.mark.xfail(strict=True, reason=f"finding {target.finding}"))
    return pytest.param(target, id=target.name, marks=marks)


def _run(target: Target, examples: int, derandomize: bool, request: pytest.FixtureRequest) -> None:
    seeds = list(target.seeds())
    assert seeds, f"{target.name} has no seeds"
    counts = {"tried": 0, "accepted": 0}

    def one(data: bytes) -> None:
        counts["tried"] += 1
        if check(target, data) == "accepted":
            counts["accepted"] += 1

    try:
        for seed in seeds:   # the seeds are valid: the adapter is right
            assert check(target, seed) == "accepted", f"{target.name}: a valid seed is refused"
        for data in target.regressions():
            one(data)

        @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
                  phases=[Phase.generate, Phase.shrink] if not derandomize else [Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def prop(data: st.DataObject) -> None:
            one(data.draw(st.composite(lambda draw: mutant(draw, seeds, target.kind))()))

        prop()
    finally:
        request.node.user_properties.append(
            ("fuzz", (target.name, "long" if not derandomize else "short", counts["tried"], counts["accepted"])))


@pytest.mark.parametrize("target", [_param(t) for t in TARGETS])
def test_fuzz_short(target: Target, request: pytest.FixtureRequest) -> None:
    _run(target, max(1, int(target.examples * SCALE)), True, request)


@pytest.mark.parametrize("target", [_param(t, pytest.mark.slow) for t in TARGETS])
def test_fuzz_long(target: Target, request: pytest.FixtureRequest) -> None:
    _run(target, max(1, int(target.examples * LONG_SCALE)), False, request)


@pytest.mark.parametrize("target", [_param(t) for t in TARGETS if t.kind == "cbor"])
def test_structure_sweep(target: Target, request: pytest.FixtureRequest) -> None:
    """Deterministic: at every path of the first seed's CBOR structure, each hostile value of
    mutations.SWEEP_VALUES (huge ints, a deep nest, a long string, wrong types)."""
    tried = accepted = 0
    try:
        for data in target.regressions():
            tried += 1
            accepted += check(target, data) == "accepted"
        for _, data in sweep(list(target.seeds())[0]):
            tried += 1
            accepted += check(target, data) == "accepted"
    finally:
        request.node.user_properties.append(("fuzz", (target.name, "sweep", tried, accepted)))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cbor.decode", "integrity.decode_tree_head", "frost.SigningCommitments.from_bytes"])
def test_atheris_runs_clean(name: str) -> None:
    """The optional coverage-guided run (tests/fuzz/atheris_main.py), a few thousand inputs, where atheris installs
    (targets without an open finding: a finding's input is in the corpus and stops the run at once)."""
    pytest.importorskip("atheris")
    done = subprocess.run([sys.executable, "-m", "tests.fuzz.atheris_main", name, "-runs=3000"],
                          capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.returncode == 0, done.stderr[-2000:]
