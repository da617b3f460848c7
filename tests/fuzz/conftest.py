"""Fuzz budgets and the per-target count of inputs tried (printed in the terminal summary).

Short budget (CI): each target's ``examples`` (set by its cost), derandomized so
that CI is reproducible; ``USAPP_FUZZ_SCALE`` multiplies it.  Long budget (the
tests marked slow, ``pytest tests/fuzz -m slow``): ``USAPP_FUZZ_LONG_SCALE`` times
``examples`` (default 25), random, shrinking on.
"""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "fuzz" and getattr(report, "when", "call") == "call":
                    rows.append(value)
    if rows:
        terminalreporter.section("fuzz: inputs tried per target")
        for target, budget, tried, accepted in sorted(rows):
            terminalreporter.write_line(f"{target:55s} {budget:6s} tried {tried:6d}  accepted {accepted:5d}")
