"""``usapp interop`` end to end with a vendor stand-in (issue 17, specs/roles.md 5.2-5.3).

The stand-in is our own role process, once as it is (the run must pass and its transcript must equal
our in-process reference byte for byte) and once wrapped by ``protocols.system.roles.tamper`` to flip
one byte of one message (the run must fail and name the step, the message and the field).
"""

from __future__ import annotations

import sys

import pytest

from protocols.system import cli

PY = sys.executable
OURS = f"{PY} -m protocols role {{protocol}} {{role}} --state {{state}} --id {{id}} --seed {{seed}}"


def test_our_own_party_as_a_vendor_command_passes_and_matches_the_reference(tmp_path, capsys):
    status = cli.main(["interop", "integrity", "--dir", str(tmp_path), "--role", f"utility={OURS}"])
    out = capsys.readouterr().out
    assert status == cli.EXIT_OK, out
    assert "ok     the transcript equals our implementation's with the same seeds (spec 5.3)" in out


def test_a_vendor_flipping_one_byte_is_caught_and_named(tmp_path, capsys):
    tamper = f"{PY} -m protocols.system.roles.tamper --type receipt --nth 3 --byte 30 -- {OURS}"
    status = cli.main(["interop", "integrity", "--dir", str(tmp_path), "--role", f"utility={tamper}"])
    captured = capsys.readouterr()
    assert status == cli.EXIT_CHECK_FAILED
    # the refusal: step, recipient, message type, sender, error
    assert "step 13: meter-000 refused receipt from utility (135 bytes): VerificationError" in captured.out
    # the divergence: message index, type, sender, recipient and the CBOR field
    assert ("first divergence: message 13 (receipt from utility to meter-000): field [5]: bytes differ "
            "from offset 0") in captured.out
    assert captured.err.startswith("usapp: error: interop integrity: 2 check(s) failed")


@pytest.mark.parametrize("argv, message", [
    (["interop", "integrity", "--role", "utility"], "--role takes ROLE=COMMAND"),
    (["interop", "nosuch"], "unknown protocol 'nosuch'"),
    (["role", "integrity", "nosuch", "--state", "x.sqlite"], "integrity has no role 'nosuch'"),
    (["role", "integrity", "meter"], "needs --state PATH"),
    (["role", "integrity", "init"], "needs --dir DIR"),
    (["role", "integrity", "init", "--dir", "d", "--option", "x"], "--option takes KEY=VALUE"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("usapp: error: ") and message in err and err.count("\n") == 1


def test_a_missing_state_file_is_refused(tmp_path, capsys):
    status = cli.main(["role", "integrity", "meter", "--state", str(tmp_path / "none.sqlite")])
    assert status == cli.EXIT_USAGE
    assert "no state file at" in capsys.readouterr().err
