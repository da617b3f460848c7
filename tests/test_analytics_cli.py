"""``usapp analytics`` end to end (specs/analytics.md section 9), through ``main()``.

The end-to-end tests need the generator, readers, attacks and detectors
(protocols/analytics/loadgen.py, dataset.py, attacks.py, gmm.py, rpca.py).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from protocols.system import analytics_cli
from protocols.system.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["analytics", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory):
    """A small attacked data set and its labels, made once through the command line."""
    directory = tmp_path_factory.mktemp("analytics")
    data, attacked, labels = directory / "data.csv", directory / "attacked.csv", directory / "labels.csv"
    assert main(["analytics", "generate", "--households", "6", "--days", "30", "--interval", "30min",
                 "--seed", "7", "--out", str(data)]) == 0
    assert main(["analytics", "attack", str(data), "--fraction", "0.2", "--seed", "3", "--out", str(attacked),
                 "--labels", str(labels)]) == 0
    return directory


def test_generate_writes_a_long_csv(workdir) -> None:
    with open(workdir / "data.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["meter", "timestamp", "kwh"]
    assert len(rows) - 1 == 6 * 30 * 48
    assert len({row[0] for row in rows[1:]}) == 6


def test_generate_is_seeded(tmp_path, workdir) -> None:
    again = tmp_path / "again.csv"
    assert main(["analytics", "generate", "--households", "6", "--days", "30", "--seed", "7",
                 "--out", str(again)]) == 0
    assert again.read_bytes() == (workdir / "data.csv").read_bytes()


def test_attack_draws_examples(capsys, workdir, tmp_path) -> None:
    status, _, err = _run(capsys, "attack", str(workdir / "data.csv"), "--fraction", "0.3", "--seed", "4",
                          "--out", str(tmp_path / "a.csv"), "--labels", str(tmp_path / "l.csv"),
                          "--plots", str(tmp_path))
    assert status == 0, err
    assert (tmp_path / "attack_examples.png").read_bytes()[:4] == b"\x89PNG"


def test_attack_a_share_of_the_meters(capsys, workdir, tmp_path) -> None:
    status, _, err = _run(capsys, "attack", str(workdir / "data.csv"), "--fraction", "0.2", "--meters-fraction",
                          "0.5", "--kinds", "h1,h6", "--out", str(tmp_path / "a.csv"), "--labels",
                          str(tmp_path / "l.csv"))
    assert status == 0, err
    with open(tmp_path / "l.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    thieves = {row[0] for row in rows if row[2] != "normal"}
    assert len(thieves) == 3 and {row[2] for row in rows} <= {"normal", "h1", "h6"}
    assert sum(row[2] != "normal" for row in rows) == 3 * 6  # 20 % of 30 days each


def test_attack_writes_labels(workdir) -> None:
    with open(workdir / "labels.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["meter", "day", "label"]
    labels = [row[2] for row in rows[1:]]
    assert len(labels) == 6 * 30
    assert 0 < sum(label != "normal" for label in labels) < len(labels)


@pytest.mark.parametrize("method", ["gmm", "rpca", "ensemble"])
def test_detect_then_evaluate(capsys, workdir, method: str) -> None:
    scores = workdir / f"scores-{method}.csv"
    status, _, err = _run(capsys, "detect", str(workdir / "attacked.csv"), "--method", method,
                          "--out", str(scores))
    assert status == 0, err
    with open(scores, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["meter", "day", "score"] and len(rows) - 1 == 6 * 30
    status, out, err = _run(capsys, "evaluate", str(scores), str(workdir / "labels.csv"), "--precision", "0.8")
    assert status == 0, err
    assert "ROC AUC" in out and "MAP@50" in out and "at FPR <= 0.01" in out and "at precision >= 0.8" in out


def test_evaluate_writes_plots(capsys, workdir, tmp_path) -> None:
    scores = workdir / "scores-plots.csv"
    assert main(["analytics", "detect", str(workdir / "attacked.csv"), "--method", "rpca",
                 "--out", str(scores)]) == 0
    status, out, err = _run(capsys, "evaluate", str(scores), str(workdir / "labels.csv"),
                            "--plots", str(tmp_path / "plots"))
    assert status == 0, err
    written = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert {"roc.png", "pr.png", "per_kind_auc.png"} <= set(written)
    assert all((tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in written)


def test_privacy_table(capsys, workdir, tmp_path) -> None:
    status, out, err = _run(capsys, "privacy", str(workdir / "attacked.csv"), str(workdir / "labels.csv"),
                            "--method", "rpca", "--levels", "none,low,1000", "--sizes", "1,2",
                            "--plots", str(tmp_path))
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["setting", "epsilon/N", "units", "anomalous", "AUC"]
    assert sum(line.startswith("dp") for line in lines) == 3
    assert sum(line.startswith("aggregate") for line in lines) == 2
    assert (tmp_path / "privacy_auc.png").is_file()


def test_evaluate_names_the_first_missing_pair(capsys, workdir, tmp_path) -> None:
    scores = workdir / "scores-rpca.csv"
    if not scores.exists():
        assert main(["analytics", "detect", str(workdir / "attacked.csv"), "--method", "rpca",
                     "--out", str(scores)]) == 0
    rows = scores.read_text().splitlines()
    first_meter = rows[1].split(",")[0]
    trimmed = tmp_path / "trimmed.csv"
    trimmed.write_text("\n".join([rows[0]] + [r for r in rows[1:] if not r.startswith(first_meter + ",")]) + "\n")
    status, _, err = _run(capsys, "evaluate", str(trimmed), str(workdir / "labels.csv"))
    assert status == 2
    assert err.startswith("usapp: error: ") and f"no row for meter {first_meter} day 2025-01-01" in err


# --------------------------------------------------------------------------
# Refusals: one line, exit 2 (these need no analytics module)


@pytest.mark.parametrize("argv, message", [
    (["generate", "--households", "2", "--days", "3", "--interval", "7min", "--out", "x.csv"], "7 minutes"),
    (["generate", "--households", "2", "--days", "3", "--interval", "half-hourly", "--out", "x.csv"],
     "not an interval"),
    (["generate", "--households", "0", "--days", "3", "--out", "x.csv"], "at least 1"),
    (["attack", "in.csv", "--fraction", "1.5", "--out", "o.csv", "--labels", "l.csv"], "between 0 and 1"),
    (["attack", "in.csv", "--fraction", "lots", "--out", "o.csv", "--labels", "l.csv"], "not a number"),
    (["detect", "missing.csv", "--out", "s.csv"], "missing.csv: No such file or directory"),
    (["detect", "missing.csv", "--method", "svm", "--out", "s.csv"], "invalid choice"),
    (["evaluate", "scores.csv"], "needs SCORES.csv"),
    (["evaluate", "missing.csv", "labels.csv"], "missing.csv: No such file or directory"),
    ([], "a command is required"),
])
def test_refusals(capsys, tmp_path, monkeypatch, argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    status, out, err = _run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("usapp: error: ") and message in err


def test_bad_levels_and_sizes(capsys, workdir) -> None:
    for option, value, message in (("--levels", "loud", "unknown privacy level"), ("--sizes", "five", "--sizes"),
                                   ("--sizes", "1000", "at least 1000 meters")):
        status, _, err = _run(capsys, "privacy", str(workdir / "attacked.csv"), str(workdir / "labels.csv"),
                              "--method", "rpca", option, value)
        assert status == 2 and message in err, err


def test_interval_forms() -> None:
    assert [analytics_cli.parse_interval(t) for t in ("30min", "30m", " 15 MIN ", "1h", "1min", "60min")] == \
        [30, 30, 15, 60, 1, 60]


def test_cli_import_stays_light() -> None:
    code = "import sys, protocols.system.cli; sys.exit(any(m in sys.modules for m in ('numpy', 'sklearn')))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_progress_bar_on_a_terminal() -> None:
    stream, now = _Stream(True), [0.0]
    bar = analytics_cli.ProgressBar("work", stream, clock=lambda: now[0])
    for done in range(1, 11):
        now[0] += 1
        bar(done, 10)
    text = stream.getvalue()
    assert text.count("\r") == 10 and text.endswith("(10/10)\n") and "[" + "#" * 30 + "]" in text


def test_progress_bar_off_a_terminal_prints_now_and_then() -> None:
    stream, now = _Stream(False), [0.0]
    bar = analytics_cli.ProgressBar("work", stream, clock=lambda: now[0])
    for done in range(1, 101):
        now[0] += 0.5
        bar(done, 100)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[-1] == "usapp: work: 100/100 (100%)"
    assert 5 <= len(lines) <= 12  # one every 5 seconds of 50, plus the last
    quiet = _Stream(True)
    analytics_cli.ProgressBar("work", quiet, enabled=False)(1, 1)
    assert quiet.getvalue() == ""


def test_detect_reports_progress_in_order() -> None:
    from protocols.analytics import detect, loadgen

    data = loadgen.generate(8, 20, seed=1)
    calls: list[tuple[int, int]] = []
    scores = detect.detect(data, "ensemble", progress=lambda done, total: calls.append((done, total)))
    assert scores.shape == (8, 20)
    assert calls[-1] == (2000, 2000) and (1000, 2000) in calls
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
