"""Packaging and project documents (issue 16 items 5 and 6).

The licence, the package metadata, the changelog, ``py.typed``, ``python -m
protocols``, the README's set-up, the git-ignored benchmark output, the CI
script, and that no file refers to a document outside the repository.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import protocols
from protocols.system import benchmark

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]

SKIP_DIRS = {".git", ".ci-venv", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache", "build",
             "dist", "results", "usapp-bench-results"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".json", ".txt", ".cfg", ".ini", ".yml", ".yaml"}


def _project_files() -> list[Path]:
    """The repository's text files (not virtual environments, caches or build output)."""
    found = []
    for path in REPO.rglob("*"):
        parts = path.relative_to(REPO).parts
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in parts[:-1]):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.relative_to(REPO) == Path(".ci/run")):
            found.append(path)
    return sorted(found)


# --------------------------------------------------------------------------
# Licence and metadata


def test_license_is_the_full_apache_2_0_text():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    for section in range(1, 10):
        assert re.search(rf"^\s+{section}\. [A-Z]", text, re.MULTILINE), f"section {section} missing"
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190


def test_pyproject_metadata():
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    assert PROJECT["authors"] and all(author.get("name") for author in PROJECT["authors"])
    classifiers = PROJECT["classifiers"]
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3.11" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # PEP 639: the expression replaces them
    for url in PROJECT.get("urls", {}).values():  # no placeholder addresses
        assert not re.search(r"example\.|localhost|TODO|placeholder", url, re.IGNORECASE), url
    assert PROJECT["version"] == protocols.__version__
    assert PROJECT["scripts"]["usapp"] == "protocols.system.cli:main"


def test_mypy_is_in_the_test_extra():
    names = {re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
             for requirement in PROJECT["optional-dependencies"]["test"]}
    assert "mypy" in names


def test_py_typed_is_shipped_as_package_data():
    assert (REPO / "protocols" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["protocols"]


# --------------------------------------------------------------------------
# Entry points


def _python_m(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "protocols", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_python_m_protocols_runs_the_command_line():
    done = _python_m("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"usapp {protocols.__version__}"


def test_python_m_protocols_reports_a_usage_error_in_one_line():
    done = _python_m("demo", "--seed", "")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("usapp: error: ")


# --------------------------------------------------------------------------
# Changelog, README, CI


def test_changelog_follows_keep_a_changelog():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n") and "https://keepachangelog.com/en/1.1.0/" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert versions and versions[0] == "Unreleased"
    kinds = re.findall(r"^### (.+)$", text, re.MULTILINE)
    assert kinds and set(kinds) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    for issue in (3, 4, 5, 6, 7, 13, 14, 15, 16):  # every issue the git history names
        assert f"**Issue {issue}**" in text


def test_readme_sets_up_a_virtual_environment_before_installing():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    venv, install = text.find("python3 -m venv .venv"), text.find("pip install . && usapp demo")
    assert 0 <= venv < install
    assert "(docs/architecture.md)" in text
    assert ".venv/" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_ci_runs_mypy_and_the_demo_under_set_e():
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "set -euo pipefail" in lines and "usapp demo --seed ci" in lines
    assert "python -m mypy" in lines and "# python -m mypy" not in lines


def test_benchmark_output_is_git_ignored():
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert f"bench/{benchmark.RESULTS_DIR_NAME}/" in ignored and "usapp-bench-results/" in ignored
    assert benchmark.default_results_dir() == REPO / "bench" / benchmark.RESULTS_DIR_NAME
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run([git, "ls-files", "bench/results", "usapp-bench-results"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    assert tracked == ""
    for output in ("bench/results/plot.png", "usapp-bench-results/plot.png"):
        assert subprocess.run([git, "check-ignore", "-q", output], cwd=REPO).returncode == 0, output


# --------------------------------------------------------------------------
# No document outside the repository


OUTSIDE = [
    re.compile("DESIGN" + r"\.md"),
    re.compile("STYLE" + r"\.md"),
    re.compile("STANDARDS" + "-NOTES"),
    re.compile(r"\.\./" + "shared"),
    re.compile(r"(?<![\w.])/(?:work|home|root|mnt|srv|Users)/[\w.-]"),
]
"""Documents the project once referred to that are not in the repository, and absolute paths into a
particular machine."""

MD_REFERENCE = re.compile(r"(?<![\w/.<>{}*-])((?:\.\./)*(?:[\w-]+/)*[\w-][\w.-]*\.md)\b")
"""A Markdown file named in text: ``specs/escrow.md``, ``README.md``, ``../x.md``."""

PUBLISHED = re.compile(r"^(?:draft-|STM32_Benchmarks\.md$)")
"""Published documents cited by name, not project documents: an IETF draft's source file, and the
benchmark tables of another project's repository that the device profiles cite (protocols/devices)."""


def _md_names() -> set[str]:
    return {path.name for path in _project_files() if path.suffix == ".md"}


def test_no_file_refers_to_a_document_outside_the_repository():
    names = _md_names()
    found = []
    for path in _project_files():
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            for pattern in OUTSIDE:
                if pattern.search(line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
            for match in MD_REFERENCE.finditer(line):
                ref = match.group(1)
                if PUBLISHED.match(Path(ref).name):
                    continue
                resolved = (REPO / ref).is_file() or (path.parent / ref).resolve().is_file()
                if not resolved and not ("/" not in ref and ref in names):
                    found.append(f"{path.relative_to(REPO)}:{number}: {ref}")
    assert found == []


def test_the_reference_check_catches_outside_documents(tmp_path):
    """The patterns above do find the references this issue removed."""
    samples = ["Layers (see " + "DESIGN.md)", "an exception to PEP 8 (" + "STYLE.md).",
               "the project's " + "STANDARDS-NOTES", 'Path("/wo' + 'rk/shared/reference-vectors/x.json")']
    for sample in samples:
        assert any(pattern.search(sample) for pattern in OUTSIDE), sample
    assert MD_REFERENCE.findall("see `docs/missing.md` and specs/escrow.md") == ["docs/missing.md",
                                                                                   "specs/escrow.md"]
    assert not (REPO / "docs" / "missing.md").exists()


def test_architecture_document_covers_what_the_code_cites():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    for heading in ("## 1. Layers", "### 3.1 Typed errors", "### 3.3 Randomness is injected", "### 3.5 Input limits",
                    "### 3.7 Style", "## 6. The command line", "## 8. Adding a protocol"):
        assert heading in text
    assert "protocols/limits.py" in text and "through a maintained binding" in text
    cited = {int(n) for n in re.findall(r"docs/architecture\.md section (\d+)", "\n".join(
        p.read_text(encoding="utf-8") for p in _project_files() if p.suffix == ".py"))}
    sections = {int(n) for n in re.findall(r"^##+ (\d+)\.", text, re.MULTILINE)}
    assert cited and cited <= sections
