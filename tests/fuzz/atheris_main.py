"""Coverage-guided fuzzing of one registry target with atheris (the optional extra: ``pip install atheris``).

    PYTHONPATH=. python -m tests.fuzz.atheris_main TARGET [libFuzzer flags, e.g. -runs=100000 -max_len=65536]

The target's seeds start the corpus (a temporary directory); every input goes
through :func:`tests.fuzz.registry.check`, so a property violation is a crash
and libFuzzer writes the input to ``crash-*`` in the corpus directory.  ``--list`` prints the targets.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-untyped]  # no stubs; optional extra

with atheris.instrument_imports(include=["protocols"]):
    from .registry import check
    from .targets import TARGETS


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] == "--list":
        print("\n".join(t.name for t in TARGETS))
        return
    target = next((t for t in TARGETS if t.name == argv[1]), None)
    if target is None:
        raise SystemExit(f"no fuzz target {argv[1]!r} (--list names them)")
    corpus = Path(tempfile.mkdtemp(prefix="usapp-atheris-"))
    for i, seed in enumerate([*target.seeds(), *target.regressions()]):
        (corpus / f"seed-{i}").write_bytes(seed)

    def one(data: bytes) -> None:
        check(target, data)

    flags = argv[2:]
    if not any(flag.startswith("-artifact_prefix=") for flag in flags):
        flags.append(f"-artifact_prefix={corpus}/")   # crash-* files beside the corpus, not in the work tree
    print(f"corpus and artifacts: {corpus}", file=sys.stderr)
    atheris.Setup([argv[0], *flags, str(corpus)], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
