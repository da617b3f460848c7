"""The demo runs end to end and its figures are the plaintext sums."""

from __future__ import annotations

import io

from protocols.system import demo


def test_demo_sums_match_and_report_is_printed():
    out = io.StringIO()
    result = demo.run(seed="test", out=out, meters=8)
    assert result["matches"] and result["packed_ok"]
    assert result["total"] == result["expected"]
    text = out.getvalue()
    assert "matches the sum" in text and "slot sums match" in text


def test_demo_is_reproducible_with_a_seed():
    first = demo.run(seed="repeat", meters=4)
    second = demo.run(seed="repeat", meters=4)
    assert first["total"] == second["total"]
    assert demo.run(seed="other", meters=4)["total"] != first["total"]
