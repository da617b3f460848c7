"""The benchmark harness (protocols/system/benchmark.py).

Every timing here comes from a fake clock that the measured functions advance,
so the statistics are exact and nothing depends on the machine's speed.  No
test asserts anything about real time.
"""

from __future__ import annotations

import json
import statistics
import sys
import tomllib
from pathlib import Path

import pytest

from protocols.errors import ParameterError
from protocols.system import benchmark
from protocols.system.benchmark import (
    Benchmark,
    Comparison,
    Figures,
    Timing,
    calibrate,
    compare,
    measure,
    render_table,
    single,
    to_json,
)

REPO = Path(__file__).resolve().parent.parent


class FakeClock:
    """A clock that only moves when a measured function says it took time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []

    def __call__(self) -> float:
        return self.now

    def task(self, label: str, costs):
        """A function that records its label and advances the clock by the
        next cost (cycling)."""
        costs = list(costs)
        state = {"i": 0}

        def run():
            self.log.append(label)
            self.now += costs[state["i"] % len(costs)]
            state["i"] += 1

        return run


# --------------------------------------------------------------------------
# Timing statistics


def test_timing_statistics():
    timing = Timing((0.005, 0.001, 0.004, 0.002, 0.003), number=10)
    assert timing.repeats == 5
    assert timing.median == 0.003
    assert (timing.min, timing.max) == (0.001, 0.005)
    assert timing.quartiles == (0.002, 0.004)
    assert timing.iqr == pytest.approx(0.002)
    assert Timing((0.5,), 1).iqr == 0.0
    even = Timing((1.0, 2.0, 3.0, 4.0), 1)
    assert even.median == 2.5
    assert even.quartiles == (1.75, 3.25)


def test_timing_rejects_empty_and_bad_number():
    with pytest.raises(ParameterError):
        Timing((), 1)
    with pytest.raises(ParameterError):
        Timing((1.0,), 0)


def test_measure_with_fixed_number_is_per_call():
    clock = FakeClock()
    fn = clock.task("f", [0.001, 0.003])  # alternating cost: each repeat of 2 calls = 4 ms
    timing = measure(fn, repeats=3, number=2, timer=clock)
    assert timing.number == 2
    assert timing.per_call == pytest.approx((0.002, 0.002, 0.002))
    assert len(clock.log) == 6


def test_measure_per_repeat_values():
    clock = FakeClock()
    fn = clock.task("f", [0.01, 0.02, 0.03, 0.04, 0.05])
    timing = measure(fn, repeats=5, number=1, timer=clock)
    assert timing.per_call == pytest.approx((0.01, 0.02, 0.03, 0.04, 0.05))
    assert timing.median == pytest.approx(0.03)
    assert timing.iqr == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        (0.011, 5),  # 1, 2 calls too short; 5 calls = 55 ms
        (1 / 1024, 100),  # 50 calls = 48.8 ms, 100 calls = 97.7 ms
        (0.2, 1),  # a slow call needs no repetition
        (0.0, benchmark.MAX_NUMBER),  # a clock that never moves stops at the cap
    ],
)
def test_calibration(cost, expected, monkeypatch):
    if cost == 0.0:
        monkeypatch.setattr(benchmark, "MAX_NUMBER", 1000)
        expected = 1000
    clock = FakeClock()
    assert calibrate(clock.task("f", [cost]), timer=clock) == expected


def test_measure_calibrates_when_number_is_none():
    clock = FakeClock()
    timing = measure(clock.task("f", [0.011]), repeats=2, timer=clock)
    assert timing.number == 5
    assert timing.per_call == pytest.approx((0.011, 0.011))


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"repeats": 2, "number": 0}, {"repeats": True}])
def test_measure_rejects_bad_counts(kwargs):
    with pytest.raises(ParameterError):
        measure(lambda: None, **kwargs)


# --------------------------------------------------------------------------
# Comparisons


def test_compare_interleaves_and_computes_ratios():
    clock = FakeClock()
    ours = clock.task("A", [1.0, 2.0, 1.0])
    base = clock.task("B", [3.0, 3.0, 4.0])
    result = compare(
        "case", ours, base, baseline_name="phe", repeats=3, number=1, timer=clock,
        target=2.0, unit="encrypt", setup_note="2048-bit n", details={"bytes": 512},
    )
    assert clock.log == ["A", "B"] * 3
    assert result.ours.per_call == (1.0, 2.0, 1.0)
    assert result.baseline.per_call == (3.0, 3.0, 4.0)
    assert result.paired_ratios == (3.0, 1.5, 4.0)
    assert result.ratio == 3.0  # median 3 / median 1
    assert result.ratio_spread == (1.5, 4.0)
    assert result.meets_target is True
    assert result.details == {"bytes": 512}
    assert result.unit == "encrypt" and result.baseline_name == "phe"


def test_ratio_lies_within_the_paired_spread():
    clock = FakeClock()
    result = compare(
        "c", clock.task("A", [1, 5, 2, 9, 3]), clock.task("B", [4, 1, 7, 2, 8]),
        baseline_name="b", repeats=5, number=1, timer=clock,
    )
    low, high = result.ratio_spread
    assert low <= result.ratio <= high
    assert result.ratio == pytest.approx(statistics.median([4, 1, 7, 2, 8]) / 3)


def test_meets_target():
    timing = Timing((1.0,), 1)
    slower = Timing((2.0,), 1)
    assert Comparison("x", timing, slower, "b", (2.0,), target=2.0).meets_target is True
    assert Comparison("x", timing, slower, "b", (2.0,), target=2.5).meets_target is False
    assert Comparison("x", timing, slower, "b", (2.0,)).meets_target is None
    assert Comparison("x", slower, timing, "b", (0.5,), target=1.0).meets_target is False


def test_compare_calibrates_each_side_separately():
    clock = FakeClock()
    result = compare(
        "c", clock.task("A", [0.011]), clock.task("B", [0.2]),
        baseline_name="b", repeats=2, timer=clock,
    )
    assert (result.ours.number, result.baseline.number) == (5, 1)
    assert result.ratio == pytest.approx(0.2 / 0.011)


def test_compare_rejects_bad_target():
    with pytest.raises(ParameterError):
        compare("c", lambda: None, lambda: None, baseline_name="b", repeats=1, number=1, target=0)


def test_single_has_no_ratio():
    clock = FakeClock()
    result = single("alone", clock.task("A", [0.5]), repeats=2, number=1, timer=clock, details={"n": 3})
    assert result.baseline is None and result.ratio is None
    assert result.ratio_spread is None and result.meets_target is None


def test_zero_time_ratios_are_not_numbers_in_json():
    clock = FakeClock()
    result = compare(
        "zero", clock.task("A", [0.0]), clock.task("B", [1.0]),
        baseline_name="b", repeats=2, number=1, timer=clock, target=1.0,
    )
    assert result.ratio == float("inf")
    entry = to_json([result], {})["comparisons"][0]
    assert entry["ratio"] is None and entry["ratio_spread"] == {"min": None, "max": None}
    json.dumps(to_json([result], {}), allow_nan=False)


# --------------------------------------------------------------------------
# Rendering


def _results():
    clock = FakeClock()
    fast = compare(
        "encrypt", clock.task("A", [0.001]), clock.task("B", [0.004]),
        baseline_name="phe", repeats=3, number=1, timer=clock, target=2.0,
        details={"ciphertext_bytes": 512},
    )
    slow = compare(
        "decrypt", clock.task("A", [0.004]), clock.task("B", [0.001]),
        baseline_name="phe", repeats=3, number=1, timer=clock, target=1.0,
        setup_note="CRT on both sides",
    )
    alone = single("pack", clock.task("A", [2e-6]), repeats=3, number=1, timer=clock)
    return [fast, slow, alone]


def test_render_table():
    table = render_table(_results())
    lines = table.splitlines()
    assert lines[0].split()[:1] == ["case"]
    encrypt = next(line for line in lines if line.startswith("encrypt "))
    assert "1 ms/op" in encrypt and "4 ms (phe)" in encrypt
    assert "4.00 [4.00..4.00]" in encrypt and ">= 2" in encrypt and encrypt.endswith("yes")
    decrypt = next(line for line in lines if line.startswith("decrypt "))
    assert "0.25" in decrypt and decrypt.endswith("NO")
    pack = next(line for line in lines if line.startswith("pack "))
    assert "2 us/op" in pack
    assert "encrypt: ciphertext_bytes=512" in table
    assert "decrypt: CRT on both sides" in table
    assert "> 1 means ours is faster" in table


def test_render_table_without_results():
    assert render_table([]) == "(no results)\n"


def test_quick_config_calibrates_shorter():
    full = benchmark.BenchConfig(repeats=3, quick=False, progress=print)
    quick = benchmark.BenchConfig(repeats=3, quick=True, progress=print)
    assert quick.min_time < full.min_time == benchmark.MIN_REPEAT_SECONDS


def test_format_seconds():
    fmt = benchmark.format_seconds
    assert fmt(1.5) == "1.5 s"
    assert fmt(0.00123) == "1.23 ms"
    assert fmt(4.56e-6) == "4.56 us"
    assert fmt(7e-9) == "7 ns"
    assert fmt(0.0) == "0 ns"


def test_json_shape():
    meta = {"libraries": {"phe": "1.5.0", "gmpy2": "2.3.2"}, "repeats": 3, "quick": True}
    document = to_json(_results(), meta)
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert document["format"] == benchmark.JSON_FORMAT
    assert set(document["machine"]) >= {"python", "platform", "cpu_count", "machine"}
    assert document["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert document["libraries"] == {"phe": "1.5.0", "gmpy2": "2.3.2"}
    assert document["meta"] == {"repeats": 3, "quick": True}
    encrypt, decrypt, pack = document["comparisons"]
    assert set(encrypt) == {
        "name", "unit", "setup_note", "ours", "baseline_name", "baseline", "ratio",
        "ratio_spread", "target", "meets_target", "details",
    }
    assert set(encrypt["ours"]) == {"median", "min", "max", "iqr", "repeats", "number", "per_call"}
    assert encrypt["ours"]["repeats"] == 3 and encrypt["ours"]["number"] == 1
    assert encrypt["ratio"] == pytest.approx(4.0)
    assert encrypt["ratio_spread"] == {"min": pytest.approx(4.0), "max": pytest.approx(4.0)}
    assert (encrypt["target"], encrypt["meets_target"]) == (2.0, True)
    assert encrypt["details"] == {"ciphertext_bytes": 512}
    assert decrypt["meets_target"] is False and decrypt["setup_note"] == "CRT on both sides"
    assert pack["baseline"] is None and pack["ratio"] is None and pack["baseline_name"] is None


# --------------------------------------------------------------------------
# Per-item restatement, figures and output files


def test_timing_scaled():
    timing = Timing((0.2, 0.4), number=5)
    half = timing.scaled(0.5)
    assert half.per_call == (0.1, 0.2) and half.number == 5
    for bad in (0, -1.0, float("inf"), "2"):
        with pytest.raises(ParameterError):
            timing.scaled(bad)


def test_per_item_divides_each_side_by_its_count():
    clock = FakeClock()
    # ours: 0.07 s per call of 70 items; baseline: 0.01 s per call of 1 item
    result = compare(
        "packed", clock.task("A", [0.07, 0.14]), clock.task("B", [0.01]),
        baseline_name="phe", repeats=2, number=1, timer=clock, target=20.0, details={"slots": 70},
    )
    item = benchmark.per_item(result, 70, 1, unit="reading")
    assert item.ours.per_call == pytest.approx((0.001, 0.002))
    assert item.baseline.per_call == pytest.approx((0.01, 0.01))
    assert item.paired_ratios == pytest.approx((10.0, 5.0))
    assert item.ratio == pytest.approx(0.01 / 0.0015)
    assert item.unit == "reading" and item.target == 20.0 and item.meets_target is False
    assert item.details == {"slots": 70, "items_per_call": 70, "baseline_items_per_call": 1}
    same = benchmark.per_item(result, 10, name="renamed")
    assert same.name == "renamed" and same.paired_ratios == pytest.approx(result.paired_ratios)
    alone = benchmark.per_item(single("x", clock.task("C", [1.0]), repeats=1, number=1, timer=clock), 4)
    assert alone.ours.per_call == (0.25,) and alone.baseline is None
    assert alone.details == {"items_per_call": 4}
    with pytest.raises(ParameterError):
        benchmark.per_item(result, 0)


def test_figures_in_table_and_json():
    figures = benchmark.Figures(
        "scaling", values={"rows": [{"N": 100, "round_s": 0.5}]},
        text="\n".join(benchmark.format_columns(("N", "round"), [("100", "500 ms")])),
        files={"plot": "/tmp/x.png"},
    )
    table = render_table(_results() + [figures])
    assert table.index("> 1 means ours is faster") < table.index("== scaling ==")
    assert "100  500 ms" in table and "plot written to /tmp/x.png" in table
    assert render_table([figures]).startswith("== scaling ==\nN    round\n---  ------\n")
    document = to_json(_results() + [figures], {})
    assert len(document["comparisons"]) == 3
    assert document["figures"] == [
        {"name": "scaling", "values": {"rows": [{"N": 100, "round_s": 0.5}]}, "files": {"plot": "/tmp/x.png"}}
    ]
    assert to_json(_results(), {})["figures"] == []


def test_format_columns_needs_one_cell_per_column():
    with pytest.raises(ParameterError):
        benchmark.format_columns(("a", "b"), [("1",)])


def test_output_path(tmp_path):
    config = benchmark.BenchConfig(repeats=1, quick=True, progress=print, results_dir=tmp_path / "out")
    path = config.output_path("plot.png")
    assert path == tmp_path / "out" / "plot.png" and path.parent.is_dir()
    for bad in ("", "../plot.png", "sub/plot.png"):
        with pytest.raises(ParameterError):
            config.output_path(bad)


def test_default_results_dir_is_beside_the_bench_folder_in_a_checkout():
    assert benchmark.BenchConfig(repeats=1, quick=True, progress=print).results_dir is None
    assert benchmark.default_results_dir() == REPO / "bench" / benchmark.RESULTS_DIR_NAME


def test_library_versions():
    versions = benchmark.library_versions(["pytest", "no-such-distribution-here"])
    assert versions["pytest"] == pytest.__version__
    assert versions["no-such-distribution-here"] is None


def test_require_module():
    assert benchmark.require_module("json") is json
    with pytest.raises(ParameterError, match=r"pip install '\.\[bench\]'"):
        benchmark.require_module("no_such_module_for_usapp")


def test_require_module_names_an_extra_that_provides_the_baselines():
    """The install hint's extra exists in pyproject.toml and lists every optional module the benchmarks need."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    names = {requirement.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip()
             for requirement in extras["bench"]}
    assert {"phe", "matplotlib"} <= names
    with pytest.raises(ParameterError, match="'bench' extra"):
        benchmark.require_module("no_such_module_for_usapp")


# --------------------------------------------------------------------------
# Discovery and packaging


def _fake_package(root: Path, modules: dict[str, str]) -> None:
    package = root / benchmark.BENCH_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text('"""fake benchmarks"""\n')
    for name, source in modules.items():
        (package / f"{name}.py").write_text(source)


BENCH_SOURCE = (
    "from protocols.system.benchmark import Benchmark\n"
    "BENCHMARK = Benchmark({name!r}, 'a fake', lambda config: [])\n"
)


@pytest.fixture
def isolated_bench_package(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m.split(".")[0] == benchmark.BENCH_PACKAGE]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] == benchmark.BENCH_PACKAGE]:
        del sys.modules[name]


def test_discover_finds_every_benchmark_module(isolated_bench_package):
    _fake_package(
        isolated_bench_package,
        {
            "zeta": BENCH_SOURCE.format(name="zeta"),
            "alpha": BENCH_SOURCE.format(name="alpha"),
            "helpers": "X = 1\n",
        },
    )
    found = benchmark.discover()
    assert list(found) == ["alpha", "zeta"]
    assert all(isinstance(b, Benchmark) for b in found.values())


@pytest.mark.parametrize(
    "modules",
    [
        {"bad": "BENCHMARK = 'not a Benchmark'\n"},
        {"one": BENCH_SOURCE.format(name="same"), "two": BENCH_SOURCE.format(name="same")},
    ],
)
def test_discover_rejects_bad_registrations(isolated_bench_package, modules):
    _fake_package(isolated_bench_package, modules)
    with pytest.raises(ParameterError):
        benchmark.discover()


ALIASED_SOURCE = (
    "from protocols.system.benchmark import Benchmark, Figures\n"
    "RUNS = []\n"
    "def run(config):\n"
    "    RUNS.append(config)\n"
    "    return [Figures('pair', {'x': 1})]\n"
    "BENCHMARK = Benchmark('one_two', 'a fake', run, aliases=('one', 'two'))\n"
)


def test_aliases_select_their_benchmark_once(isolated_bench_package):
    """``usapp bench one two`` (two aliases of one benchmark) runs it once; its own name and the
    aliases mix; order is the order first named; an unknown name lists the aliases."""
    _fake_package(isolated_bench_package, {"pair": ALIASED_SOURCE, "alpha": BENCH_SOURCE.format(name="alpha")})
    known = benchmark.discover()
    assert list(known) == ["alpha", "one_two"] and known["one_two"].aliases == ("one", "two")
    assert benchmark.resolve(["one", "two"], known) == ["one_two"]
    assert benchmark.resolve(["two", "alpha", "one_two"], known) == ["one_two", "alpha"]
    with pytest.raises(ParameterError, match=r"unknown benchmark\(s\): three; known: alpha, one_two \(one, two\)"):
        benchmark.resolve(["one", "three"], known)


@pytest.mark.parametrize("alias", ["alpha", "one_two", ""])
def test_an_alias_may_not_shadow_a_name(isolated_bench_package, alias):
    _fake_package(isolated_bench_package, {
        "pair": f"from protocols.system.benchmark import Benchmark\n"
                f"BENCHMARK = Benchmark('one_two', 'a fake', lambda c: [], aliases=({alias!r},))\n",
        "alpha": BENCH_SOURCE.format(name="alpha")})
    with pytest.raises(ParameterError, match="alias"):
        benchmark.discover()


def test_usapp_bench_sakke_eccsi_runs_the_one_benchmark_once(monkeypatch, capsys):
    """Issue 21: ``usapp bench sakke eccsi`` selects ``sakke_eccsi`` (run once); ``sakke_eccsi`` still
    works.  The benchmark's own run is replaced by a stub, so nothing is timed here."""
    from protocols.system import cli

    import importlib.util

    spec = importlib.util.spec_from_file_location("sakke_eccsi_under_test", REPO / "bench" / "sakke_eccsi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)               # this checkout's bench, even if usapp_bench is installed
    real = module.BENCHMARK
    assert real.name == "sakke_eccsi" and {"sakke", "eccsi"} <= set(real.aliases)
    known = {**benchmark.discover(), "sakke_eccsi": real}
    calls = []

    def stub(config):
        calls.append(config.quick)
        return [Figures("stub", {"x": 1})]

    stubbed = {name: (Benchmark(b.name, b.description, stub, b.aliases) if name == "sakke_eccsi" else b)
               for name, b in known.items()}
    monkeypatch.setattr(benchmark, "discover", lambda: stubbed)
    for argv in (["bench", "sakke", "eccsi", "--quick"], ["bench", "sakke_eccsi", "--quick"],
                 ["bench", "eccsi", "sakke_eccsi", "sakke"]):
        calls.clear()
        capsys.readouterr()
        assert cli.main(argv) == 0
        assert calls == [argv[-1] == "--quick"]
        assert "stub" in capsys.readouterr().out
    assert cli.main(["bench", "sakke", "eccsi", "--quick", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["benchmarks"] == ["sakke_eccsi"]
    assert cli.main(["bench", "sakke", "nosuch"]) == 2
    assert "unknown benchmark(s): nosuch" in capsys.readouterr().err


def test_source_checkout_loads_bench_folder():
    package = benchmark._load_bench_package()
    location = Path(package.__path__[0]).resolve()
    if location != (REPO / "bench").resolve():
        pytest.skip(f"usapp_bench is installed elsewhere ({location})")
    assert package.__name__ == benchmark.BENCH_PACKAGE
    benchmark.discover()  # every module of bench/ imports and registers cleanly


def test_pyproject_ships_every_package_and_usapp_bench():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "protocols").rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert benchmark.BENCH_PACKAGE in listed
    assert setuptools["package-dir"][benchmark.BENCH_PACKAGE] == "bench"
    assert config["project"]["scripts"]["usapp"] == "protocols.system.cli:main"


def test_usapp_bench_name_with_plot_writes_the_benchmarks_plots_into_the_folder(monkeypatch, tmp_path, capsys):
    """``usapp bench NAME --plot DIR`` runs the named benchmark with DIR as its results folder (the device
    reports are for ``--plot`` without names)."""
    from protocols.system import cli

    seen = []

    def run(config):
        path = config.output_path("stub.png")
        path.write_bytes(b"png")
        seen.append(path)
        return [Figures("stub", {"x": 1})]

    monkeypatch.setattr(benchmark, "discover", lambda: {"stub": Benchmark("stub", "a stub", run)})
    assert cli.main(["bench", "stub", "--plot", str(tmp_path / "plots"), "--quick"]) == 0
    assert seen == [tmp_path / "plots" / "stub.png"] and seen[0].read_bytes() == b"png"
    capsys.readouterr()
