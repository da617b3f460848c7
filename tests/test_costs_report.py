"""Costed steps, the ``usapp bench --device`` reports, plots and the HTML page (specs/costs.md section 6)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from protocols.errors import ParameterError
from protocols.system import benchmark, cli, costs, costs_bench, costs_html, costs_report
from protocols.system.costs_host import Checked
from protocols.system.costs_report import DeviceModel

CONTRACT_KEYS = {"protocol", "role", "step", "device", "cycles", "ms", "mj", "bytes_sent", "bytes_received"}


def _device(name: str, figures: dict[str, float], hz: float = 1e6) -> DeviceModel:
    def cycles(key: str) -> float:
        if key not in figures:
            raise ParameterError(f"no figure for key {key}")
        return figures[key]

    return DeviceModel(name, cycles, lambda c: c / hz * 1e3, lambda c: c / hz * 0.3)


TRACES = [
    costs.StepTrace("integrity", "meter", "env.reading", 97, {"ed25519_sign": 1, "hash_block:sha256": 2.5,
                                                             "state_commit": 1}, 0.0007, 15, 107),
    costs.StepTrace("integrity", "utility", "record", 97, {"ed25519_verify": 1, "state_commit": 1}, 0.0009, 107, 136),
    costs.StepTrace("escrow", "meter", "env.send", 24, {"x25519": 2, "state_commit": 1}, 0.0006, 48, 458),
]
M4 = _device("m4", {"ed25519_sign": 1_300_000, "hash_block:sha256": 5_900, "ed25519_verify": 2_900_000,
                    "x25519": 550_000, "state_commit": 10_000})
M0 = _device("m0", {"ed25519_sign": 4_000_000, "hash_block:sha256": 20_000}, hz=48e6)


def test_device_cost_sums_counts_times_cycles() -> None:
    rows = costs_report.cost_on_device(TRACES, M4)
    reading = rows[0]
    assert reading.cycles == pytest.approx(1_300_000 + 2.5 * 5_900 + 10_000)
    assert reading.ms == pytest.approx(reading.cycles / 1e3)
    assert reading.mj == pytest.approx(reading.cycles / 1e6 * 0.3)
    assert reading.missing == () and reading.meter_side and not rows[1].meter_side
    assert (reading.bytes_sent, reading.bytes_received) == (107, 15)


def test_keys_without_a_figure_are_named_and_the_row_is_a_lower_bound() -> None:
    rows = costs_report.cost_on_device(TRACES, M0)
    assert rows[0].missing == ("state_commit",)
    assert rows[0].cycles == pytest.approx(4_000_000 + 2.5 * 20_000)
    text = costs_report.render(rows)
    assert ">=" in text and "m0: ed25519_verify, state_commit, x25519" in text


def test_host_only_keys_are_not_priced_on_a_device() -> None:
    trace = costs.StepTrace("integrity", "meter", "probe", 1, {"state_statement": 12, "state_commit": 1}, 0.001, 1, 1)
    (row,) = costs_report.cost_on_device([trace], M4)
    assert row.cycles == pytest.approx(10_000) and row.missing == ()


def test_json_has_the_contract_keys_and_the_host_extras() -> None:
    doc = costs_report.to_json(costs_report.cost_on_device(TRACES, M4))
    assert all(CONTRACT_KEYS <= set(step) for step in doc["steps"])
    assert all("model_error" not in step for step in doc["steps"])
    checked = [Checked(TRACES[0], 0.0008, 0.0007, 5), Checked(TRACES[1], None, 0.0009, 5)]
    host = costs_report.to_json(costs_report.cost_on_host(checked, clock_hz=2e9))["steps"]
    assert all(CONTRACT_KEYS | {"measured_ms", "model_error"} <= set(step) for step in host)
    assert host[0]["model_error"] == pytest.approx(1 / 7)
    assert host[0]["cycles"] == pytest.approx(0.0008 * 2e9) and host[0]["mj"] is None
    assert host[1]["ms"] is None and host[1]["model_error"] is None
    assert json.loads(json.dumps(doc)) == doc
    assert "model error" in costs_report.render(costs_report.cost_on_host(checked))


def test_meter_section_lists_meter_steps_on_every_device() -> None:
    rows = costs_report.cost_on_device(TRACES, M4) + costs_report.cost_on_device(TRACES, M0)
    text = costs_report.meter_section("integrity", rows)
    assert text.startswith("## Cost to a meter")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0] == "| step | n | bytes in | bytes out | m0 ms / mJ | m4 ms / mJ |"
    assert table[1].startswith("| env.reading | 97 | 15 | 107 | ")            # the utility's step is not there
    assert len(table) == 2 and ">=" in table[1]                              # m0 has no state_commit figure


def test_meter_section_adds_a_table_for_each_variant_of_the_protocol() -> None:
    variant = [costs.StepTrace("integrity-eccsi", t.role, t.step, t.invocations, t.counts, t.seconds,
                               t.bytes_received, t.bytes_sent) for t in TRACES]
    rows = costs_report.cost_on_device(TRACES + variant, M4)
    text = costs_report.meter_section("integrity", rows)
    assert text.count("| env.reading | 97 |") == 2
    assert "### With suite `eccsi-p256`" in text and "deployment option suite `eccsi-p256`" in text
    assert "### With" not in costs_report.meter_section("escrow", rows)


def test_chosen_devices() -> None:
    assert costs_bench.chosen_devices("all", ["a", "b"]) == ["a", "b"]
    assert costs_bench.chosen_devices("b", ["a", "b"]) == ["b"]
    assert costs_bench.chosen_devices("host", ["a"]) == []
    with pytest.raises(ParameterError, match="unknown device"):
        costs_bench.chosen_devices("cray-1", ["a"])


def test_plot_draws_one_chart_per_protocol_of_meter_side_steps(tmp_path) -> None:
    rows = costs_report.cost_on_device(TRACES, M4) + costs_report.cost_on_device(TRACES, M0)
    files = costs_report.plot(rows, tmp_path)
    assert sorted(files) == ["escrow", "integrity"]
    for path in files.values():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Tables, their body rows, images and headings of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables, self.rows, self.images, self.headings = 0, 0, [], []
        self._tbody = False
        self._heading: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "table":
            self.tables += 1
        elif tag == "tbody":
            self._tbody = True
        elif tag == "tr" and self._tbody:
            self.rows += 1
        elif tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag in ("h2", "h3"):
            self._heading = ""

    def handle_endtag(self, tag) -> None:
        if tag == "tbody":
            self._tbody = False
        elif tag in ("h2", "h3") and self._heading is not None:
            self.headings.append(self._heading)
            self._heading = None

    def handle_data(self, data) -> None:
        if self._heading is not None:
            self._heading += data


def _report(tmp_path: Path) -> tuple[Path, int, int]:
    """A page from synthetic rows, their plots, a results dir with one benchmark JSON, one PNG and one bad JSON;
    returns the page, the number of tables and of images it must have."""
    results = tmp_path / "results"
    results.mkdir()
    timing = benchmark.Timing((0.002, 0.003, 0.0025), 10)
    comparison = benchmark.Comparison("paillier encrypt", timing, timing, "phe", (1.0, 1.0, 1.0), 1.0)
    figures = benchmark.Figures("bytes", {"ciphertext": 512}, "ciphertext 512 B")
    benchmark.save_json("paillier", [comparison, figures], {"libraries": {}}, results)
    shutil.copyfile(costs_report.plot(costs_report.cost_on_device(TRACES, M4), tmp_path / "p")["escrow"],
                    results / "battery.png")
    (results / "notes.json").write_text("[1, 2")
    rows = costs_report.cost_on_device(TRACES, M4) + costs_report.cost_on_device(TRACES, M0)
    plots = costs_report.plot(rows, tmp_path / "out")
    page = costs_html.write(tmp_path / "out", rows, plots, results, {"seed": "costs"})
    return page, 2 + 1, len(plots) + 1


def test_html_report_has_every_table_and_image(tmp_path) -> None:
    page, tables, images = _report(tmp_path)
    parsed = _Page()
    parsed.feed(page.read_text())
    assert parsed.tables == tables
    assert parsed.rows == 2 * len(TRACES) + 1
    assert len(parsed.images) == images
    for src in parsed.images:
        assert (page.parent / src).is_file(), src
    assert {"integrity", "escrow", "paillier"} <= set(parsed.headings)
    assert "notes.json" in page.read_text()                # the skipped file is named
    assert "<script" not in page.read_text() and "http" not in page.read_text()


def test_html_into_a_file_is_refused(tmp_path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(ParameterError):
        costs_html.write(target, [], {}, tmp_path)


def _browser() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.slow
@pytest.mark.skipif(_browser() is None, reason="no chromium, chromium-browser or google-chrome on PATH")
def test_html_report_renders_in_headless_chromium(tmp_path) -> None:
    page, tables, images = _report(tmp_path)
    browser = _browser()
    assert browser is not None
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'profile'}"]     # no connection attempts on a closed network
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    parsed = _Page()
    parsed.feed(dom)
    assert parsed.tables == tables and len(parsed.images) == images
    shot = tmp_path / "shot.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_device_report(monkeypatch, capsys, tmp_path) -> None:
    """``usapp bench --device NAME --json`` and ``--html`` on synthetic profiles and traces."""
    monkeypatch.setattr(costs_report, "device_names", lambda: ["m4", "m0"])
    monkeypatch.setattr(costs_report, "device_model", {"m4": M4, "m0": M0}.__getitem__)
    monkeypatch.setattr(costs, "trace_all", lambda *a, **k: {"x": costs.Measured(TRACES)})
    monkeypatch.setattr(benchmark, "default_results_dir", lambda: tmp_path / "none")
    assert cli.main(["bench", "--device", "m4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {s["device"] for s in doc["steps"]} == {"m4"} and len(doc["steps"]) == len(TRACES)
    assert cli.main(["bench", "--html", str(tmp_path / "html")]) == 0
    out = capsys.readouterr().out
    assert "integrity" in out and (tmp_path / "html" / "index.html").is_file()
    assert {p.name for p in (tmp_path / "html").glob("*.png")} == {"costs_escrow.png", "costs_integrity.png"}
    assert cli.main(["bench", "--device", "vax"]) == cli.EXIT_USAGE
    assert cli.main(["bench", "paillier", "--device", "m4"]) == cli.EXIT_USAGE


def test_cli_html_runs_the_named_benchmarks_and_gathers_their_results(monkeypatch, capsys, tmp_path) -> None:
    def run(config: benchmark.BenchConfig) -> list:
        timing = benchmark.Timing((0.002,), 1)
        return [benchmark.Comparison("fake op", timing, timing, "base", (1.0,), 1.0)]

    results = tmp_path / "results"
    monkeypatch.setattr(benchmark, "discover", lambda: {"fake": benchmark.Benchmark("fake", "a fake", run)})
    monkeypatch.setattr(benchmark, "default_results_dir", lambda: results)
    monkeypatch.setattr(costs_report, "device_names", lambda: ["m4"])
    monkeypatch.setattr(costs_report, "device_model", {"m4": M4}.__getitem__)
    monkeypatch.setattr(costs, "trace_all", lambda *a, **k: {"x": costs.Measured(TRACES)})
    assert cli.main(["bench", "fake", "--html", str(tmp_path / "html"), "--quick"]) == 0
    assert json.loads((results / "fake.json").read_text())["comparisons"][0]["name"] == "fake op"
    page = (tmp_path / "html" / "index.html").read_text()
    assert "fake op" in page and "<h3>fake</h3>" in page
    capsys.readouterr()
