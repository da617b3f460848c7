"""The demo runs a neighbourhood through the aggregation protocol and its figures are the plaintext sums."""

from __future__ import annotations

import io

from protocols.system import demo


def test_demo_sums_match_and_report_is_printed():
    out = io.StringIO()
    result = demo.run(seed="test", out=out, meters=12)
    assert result["matches"] and result["packed_ok"] and result["missing_ok"]
    text = out.getvalue()
    assert "matching the readings" in text and "sums of the" in text and "differential privacy" in text
    assert "DO NOT MATCH" not in text and "NOT MATCHING" not in text
    groups = result["groupkeys"]
    assert not groups["departed_reads"] and groups["read"] == groups["members"] == 12
    assert groups["applied"] == 1 and groups["attack_refused"] and groups["recovered"] and groups["old_refused"]
    assert "READ IT" not in text and "NOT every member" not in text
    for mode, figures in result["escrow"].items():
        assert figures["senders"] == figures["billed"] == 10 and figures["named"] == 0
        assert figures["second"] == "refused" and figures["policy"] == "refused"
    assert result["escrow"]["escrowed"]["reidentified"] == "SM-00003"
    assert result["integrity"] == {"match": True, "located": 20, "verdict": "utility"}


def test_demo_is_reproducible_with_a_seed():
    first = demo.run(seed="repeat", meters=6)
    second = demo.run(seed="repeat", meters=6)
    assert first["dp_errors"] == second["dp_errors"]
