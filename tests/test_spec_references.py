"""Every section cross-reference in specs/ resolves to a heading that exists.

A reference is "section N" / "sections N, M and K" / "sections N to M" /
"sections N-M" (N like 3 or 4.2.1), resolved in

- the spec it names right before it: `specs/<name>.md section N`,
  `<name>.md section N`, or `<name> section N` / `<name>.md N.M` where
  <name> is a spec under specs/ (for example "conventions section 3.2");
- otherwise the same file.

References into another document (RFC 9162 section 2.1, SP 800-90A section
10.1.2, Appendix ...) are recognised by the document named right before
"section" and skipped.  A heading "## 3. Title" or "### 3.2 Title" defines
section 3 or 3.2 (specs/conventions.md section 1).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SPECS = Path(__file__).resolve().parent.parent / "specs"
SPEC_FILES = sorted(SPECS.glob("*.md"))
NAMES = {p.stem for p in SPEC_FILES}

_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
_NUM = r"\d+(?:\.\d+)*"
_LIST = rf"{_NUM}(?:(?:\s*,\s*|\s+and\s+|\s+or\s+|\s+to\s+|\s*-\s*|,?\s+and\s+){_NUM}(?![\d]))*"
_REFERENCE = re.compile(rf"\b(?:sections?|§)\s+({_LIST})", re.IGNORECASE)
_SPEC_NAMED = re.compile(
    r"(?:`?(?:specs/)?(?P<name>[a-z0-9_]+)(?:\.md)?`?)\s*(?:'s\s+)?(?:,\s*)?$"
)
_BARE_SPEC_NUMBER = re.compile(rf"`?(?:specs/)?(?P<name>[a-z0-9_]+)\.md`?\s+(?P<num>{_NUM})(?![\d.]*\d)")
_EXTERNAL = re.compile(
    r"(RFC\s?\d{3,5}|\[RFC\d+\]|SP\s?800-\S+|FIPS|draft-\S+|\bdraft\b|IEEE|ISO|SEC\s?\d|"
    r"Wycheproof|CAVP|\[[A-Z][A-Za-z0-9-]*\]|Appendix|the RFC'?s?|RFC's|NIST|BCP\s?\d+|"
    r"ANSI|X9\.\d+|PKCS|CDDL|Milagro|Boneh|paper|\bBF01\b)(?:[^.;:\n]|\.(?!\s+[A-Z])){0,60}$"
)


def _headings(path: Path) -> set[str]:
    return set(_HEADING.findall(path.read_text(encoding="utf-8")))


HEADINGS = {p.stem: _headings(p) for p in SPEC_FILES}


def _numbers(text: str) -> list[str]:
    """Every number in a list like "3, 4.2 and 7" or a range "3 to 5" / "3-5" (ends and inner whole numbers)."""
    out: list[str] = []
    for match in re.finditer(rf"({_NUM})(\s*(?:to|-)\s*)?", text):
        out.append(match.group(1))
    ranges = re.finditer(rf"(\d+)\s*(?:to|-)\s*(\d+)(?![.\d])", text)
    for r in ranges:
        low, high = int(r.group(1)), int(r.group(2))
        if low < high <= low + 20 and "." not in r.group(0):
            out.extend(str(n) for n in range(low + 1, high))
    return out


def _strip_code_blocks(text: str) -> str:
    """Blank out fenced code blocks (pseudo-code may say "section" as a word), keeping line numbers."""
    return re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.DOTALL)


def references(path: Path) -> list[tuple[int, str, str, str]]:
    """(line, target spec, section number, context) for every reference in the file."""
    original = _strip_code_blocks(path.read_text(encoding="utf-8"))
    # join a paragraph's lines (same length, so offsets stay line-true), but not table rows
    text = re.sub(r"(?<!\n)\n(?![\n|])", " ", original)
    found = []
    # "escrow.md 5.2", "specs/frost.md 7" without the word section
    for match in _BARE_SPEC_NUMBER.finditer(text):
        if match.group("name") in NAMES:
            line = original.count("\n", 0, match.start()) + 1
            found.append((line, match.group("name"), match.group("num"), match.group(0)))
    for match in _REFERENCE.finditer(text):
        before = text[max(0, match.start() - 70):match.start()]
        if _EXTERNAL.search(before):
            continue
        named = _SPEC_NAMED.search(before)
        target = path.stem
        if named and named.group("name") in NAMES:
            target = named.group("name")
        line = original.count("\n", 0, match.start()) + 1
        context = text[max(0, match.start() - 40):match.end()].replace("\n", " ")
        for number in _numbers(match.group(1)):
            found.append((line, target, number, context))
    return found


def test_parser_recognises_the_forms():
    assert _numbers("3, 4.2 and 7") == ["3", "4.2", "7"]
    assert set(_numbers("3 to 5")) == {"3", "4", "5"}
    sample = SPECS / "conventions.md"
    refs = references(sample)
    assert any(target == "conventions" and number == "3.2" for _, target, number, _ in refs)


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.name for p in SPEC_FILES])
def test_every_section_reference_resolves(path):
    broken = [
        f"{path.name} (about line {line}): {target}.md section {number} does not exist  [{context.strip()[:90]}]"
        for line, target, number, context in references(path)
        if number not in HEADINGS[target]
    ]
    assert not broken, "\n".join(broken)
