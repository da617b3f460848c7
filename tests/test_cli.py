"""The ``usapp`` command line (protocols/system/cli.py): exit codes and output."""

from __future__ import annotations

import hashlib
import json
import sys
import types

import pytest

import protocols.system
from protocols.errors import ParameterError, VectorMismatchError
from protocols.system import benchmark, vectorsets
from protocols.system.benchmark import Benchmark, compare, single
from protocols.system.cli import main
from protocols.system.vectors import dump_envelope
from protocols.system.vectorsets import VectorFamily


def _verify(vector):
    expected = hashlib.sha256(bytes.fromhex(vector["message"])).hexdigest()
    if vector["digest"] != expected:
        raise VectorMismatchError("field 'digest' does not recompute")


def _build():
    return {
        "protocol": "toy",
        "suite": "sha256",
        "source": "tests/test_cli.py",
        "generated_by": "_build",
        "vectors": [
            {"name": "one", "message": "01", "digest": hashlib.sha256(b"\x01").hexdigest()},
            {"name": "two", "message": "0202", "digest": hashlib.sha256(b"\x02\x02").hexdigest()},
        ],
    }


FAMILY = VectorFamily(file="toy.json", protocol="toy", suite="sha256", verify_vector=_verify, build=_build)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(vectorsets, "families", lambda: (FAMILY,))


def _write(path, envelope):
    path.write_text(dump_envelope(envelope), encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path, toy):
    return _write(tmp_path / "toy.json", _build())


@pytest.fixture
def bad(tmp_path, toy):
    envelope = _build()
    envelope["vectors"][1]["digest"] = "00" * 32
    return _write(tmp_path / "vendor-toy.json", envelope)


# --------------------------------------------------------------------------
# usapp vectors


def test_vectors_verify_good_file(good, capsys):
    assert main(["vectors", "verify", str(good)]) == 0
    out, err = capsys.readouterr()
    [line, summary] = out.splitlines()
    assert line.startswith("OK ") and str(good) in line and "2 vectors" in line
    assert "whole file: generated" in line
    assert summary == "1 file(s) checked, 0 failed"
    assert "verifying" in err  # progress goes to stderr


def test_vectors_verify_bad_file(bad, capsys):
    assert main(["vectors", "verify", str(bad)]) == 1
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("FAIL ") and str(bad) in lines[0]
    assert "vector 'two'" in lines[1] and "'digest' does not recompute" in lines[1]
    assert lines[-1] == "1 file(s) checked, 1 failed"


def test_vectors_verify_directory_mixes_results(good, bad, capsys):
    (good.parent / "broken.json").write_text("{", encoding="utf-8")
    assert main(["vectors", "verify", str(good.parent)]) == 1
    out, _ = capsys.readouterr()
    lines = out.splitlines()

    def status(path):
        [line] = [line for line in lines if line.split()[1].rstrip(":") == str(path)]
        return line.split()[0]

    assert status(good) == "OK"
    assert status(bad) == "FAIL"
    assert status(good.parent / "broken.json") == "FAIL"
    assert "3 file(s) checked, 2 failed" in out


def test_vectors_verify_default_directory(good, monkeypatch, capsys):
    (good.parent / "vectors").mkdir()
    good.rename(good.parent / "vectors" / "toy.json")
    monkeypatch.chdir(good.parent)
    assert main(["vectors", "verify"]) == 0
    assert "toy.json" in capsys.readouterr().out


def test_vectors_verify_missing_path_is_a_usage_error(tmp_path, toy, capsys):
    assert main(["vectors", "verify", str(tmp_path / "nope.json")]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("usapp: error: ") and "nope.json" in err
    assert "Traceback" not in err


def test_vectors_verify_empty_directory(tmp_path, toy, capsys):
    assert main(["vectors", "verify", str(tmp_path)]) == 2
    assert "no vector files" in capsys.readouterr().err


def test_vectors_generate(tmp_path, toy, capsys):
    target = tmp_path / "out"
    assert main(["vectors", "generate", "--dir", str(target)]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [str(target / "toy.json")]
    assert (target / "toy.json").read_text(encoding="utf-8") == dump_envelope(_build())
    assert main(["vectors", "verify", str(target)]) == 0


def test_vectors_without_action_is_a_one_line_usage_error(capsys):
    assert main(["vectors"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("usapp: error: ") and "verify" in line


# --------------------------------------------------------------------------
# usapp bench


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def costs(self, seconds):
        def run():
            self.now += seconds
        return run


def _fake_run(config):
    config.progress("fake step")
    clock = Clock()
    return [
        compare(
            "fake-op", clock.costs(0.001), clock.costs(0.003), baseline_name="baseline",
            repeats=config.repeats, number=1, timer=clock, target=2.0, details={"quick": config.quick},
        ),
        single("fake-alone", clock.costs(0.002), repeats=config.repeats, number=1, timer=clock),
    ]


def _failing_run(config):
    raise ParameterError("modulus too small for this benchmark")


FAKES = {
    "fake": Benchmark("fake", "a fake benchmark", _fake_run),
    "failing": Benchmark("failing", "raises a UsappError", _failing_run),
}


@pytest.fixture
def fake_benchmarks(monkeypatch):
    monkeypatch.setattr(benchmark, "discover", lambda: dict(FAKES))


def test_bench_unknown_name(fake_benchmarks, capsys):
    assert main(["bench", "fake", "nosuch"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usapp: error: unknown benchmark(s): nosuch")
    assert "fake" in err and "failing" in err


def test_bench_table(fake_benchmarks, capsys):
    assert main(["bench", "fake", "--repeats", "4"]) == 0
    out, err = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.startswith("fake-op"))
    assert "3.00" in row and row.endswith("yes")
    assert any(line.startswith("fake-alone") for line in out.splitlines())
    assert "fake step" in err and "bench fake (1/1)" in err


def test_bench_json(fake_benchmarks, capsys):
    assert main(["bench", "fake", "--json", "--quick"]) == 0
    out, _ = capsys.readouterr()
    document = json.loads(out)
    assert document["meta"]["benchmarks"] == ["fake"]
    assert document["meta"]["quick"] is True
    assert document["meta"]["repeats"] == 3  # the --quick default
    assert "phe" in document["libraries"]
    op, alone = document["comparisons"]
    assert op["name"] == "fake-op" and op["ours"]["repeats"] == 3
    assert op["ratio"] == pytest.approx(3.0) and op["meets_target"] is True
    assert op["details"] == {"quick": True}
    assert alone["ratio"] is None


def test_bench_usapp_error_is_exit_2_without_traceback(fake_benchmarks, capsys):
    assert main(["bench", "failing"]) == 2
    _, err = capsys.readouterr()
    assert "usapp: error: modulus too small for this benchmark" in err
    assert "Traceback" not in err


def test_bench_runs_everything_by_default(monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "discover", lambda: {"fake": FAKES["fake"]})
    assert main(["bench"]) == 0
    assert "fake-op" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["bench", "--repeats", "0"], ["bench", "--repeats", "x"], ["nosuch"]])
def test_argument_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("usapp: error: ") and "--help" in line


def test_no_command_is_a_one_line_usage_error(capsys):
    assert main([]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("usapp: error: ") and "demo" in line and "vectors" in line


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "vectors" in capsys.readouterr().out


# --------------------------------------------------------------------------
# usapp demo


def test_demo_passes_seed_and_stdout(monkeypatch, capsys):
    calls = []

    def demo_main(seed, out):
        calls.append(seed)
        out.write("demo report\n")
        return 0 if seed is not None else 1

    fake = types.ModuleType("protocols.system.demo")
    fake.main = demo_main
    monkeypatch.setitem(sys.modules, "protocols.system.demo", fake)
    monkeypatch.setattr(protocols.system, "demo", fake, raising=False)
    assert main(["demo", "--seed", "neighbourhood-1"]) == 0
    assert main(["demo"]) == 1  # the fake reports a mismatch without a seed: exit 1
    assert calls == ["neighbourhood-1", None]
    assert capsys.readouterr().out == "demo report\ndemo report\n"
