"""The suites side by side on each device (specs/costs.md section 6.6)."""

from __future__ import annotations

import pytest

from protocols.system import costs_report, costs_suites


@pytest.fixture(scope="module")
def rows():
    return costs_suites.table()


def test_every_operation_is_counted_and_priced_on_every_device(rows) -> None:
    devices = costs_report.device_names()
    assert len(rows) == len(costs_suites.operations())
    for row in rows:
        assert row["counts"], row["operation"]
        assert set(row["ms"]) == set(devices) and not row["missing"]
        assert all(ms > 0 for ms in row["ms"].values())


def test_the_counts_are_those_of_the_operation(rows) -> None:
    by_name = {(r["suite"], r["operation"]): r["counts"] for r in rows}
    assert by_name[("Ed25519", "sign")] == {"ed25519_sign": 1}
    plain = by_name[(f"Paillier {costs_suites.PAILLIER_BITS} (r^n)", "encrypt")]
    assert plain["modexp_bit:4096"] == costs_suites.PAILLIER_BITS
    sakke = by_name[("SAKKE (RFC 6509 parameter set 1)", "decapsulate")]
    assert sakke["pairing:sakke1024"] == 1
    bls = by_name[("BF-IBE on BLS12-381", "decapsulate")]
    assert bls["pairing:bls12_381"] >= 1 and bls["point_decode:bls12_381_g2"] == 1


def test_djn_short_exponents_are_cheaper_than_r_to_the_n_on_every_device(rows) -> None:
    plain, djn = (next(r for r in rows if r["suite"].startswith("Paillier") and tag in r["suite"])
                  for tag in ("r^n", "DJN"))
    assert all(djn["ms"][d] < plain["ms"][d] / 5 for d in plain["ms"])


def test_the_markdown_table_has_a_line_per_operation(rows) -> None:
    text = costs_suites.markdown(rows)
    assert len(text.strip().splitlines()) == 2 + len(rows)
    assert costs_suites.markdown([]).startswith("| suite | operation |")
