"""The ``usapp`` command line (docs/architecture.md section 6, "The command line").

    usapp demo [--seed SEED]
    usapp vectors verify [--json] [PATH ...]
    usapp vectors list
    usapp vectors describe FAMILY
    usapp vectors generate [--dir DIR]
    usapp vectors replay --role ROLE --cmd COMMAND [FILE ...]
    usapp bench [NAME ...] [--json] [--plot DIR] [--repeats N] [--quick]
    usapp bench --device NAME|all|host [--json] [--plot DIR] [--repeats N] [--quick]
    usapp bench [NAME ...] --html DIR [--device NAME|all|host] [--json] [--plot DIR] [--repeats N] [--quick]
    usapp role PROTOCOL init --dir DIR [--seed SEED] [--option KEY=VALUE ...]
    usapp role PROTOCOL ROLE --state PATH [--id ID] [--seed SEED]
    usapp interop PROTOCOL [--role ROLE=COMMAND ...] [--dir DIR] [--seed SEED]
    usapp analytics generate|attack|detect|evaluate|privacy|hide|leakage|hiding-study ...
                    (protocols/system/analytics_cli.py)

Results go to stdout, progress and errors to stderr.  An error is one line
``usapp: error: <message>``, never a traceback.  Exit status (EXIT_STATUS):

    0    success
    1    a check failed: a vector file that does not verify, is malformed or
         exceeds a limit (vectors/README.md, Limits); the demo did not match
    2    a usage error (bad command or argument, a missing path, ``generate
         --dir`` naming a file) or any other ``UsappError``
    3    an internal error (a bug: please report the message)
    130  interrupted
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import protocols
from protocols.errors import ParameterError, UsappError
from protocols.system import analytics_cli, benchmark, vectors, vectorsets
from protocols.system.cli_types import positive_int

PROG = "usapp"

DEFAULT_REPEATS = 7
QUICK_REPEATS = 3

BENCH_LIBRARIES = ("usapp", "gmpy2", "phe", "cryptography", "pycryptodome", "cbor2", "pynacl", "pyhpke",
                   "py-arkworks-bls12381")
"""Distributions whose versions ``usapp bench --json`` records."""


EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_STATUS = (
    "exit status: 0 success; 1 a check failed (a vector file that does not verify, "
    "is malformed or exceeds a limit); 2 a usage error (bad argument, missing path) "
    "or any other refused input; 3 an internal error (a bug); 130 interrupted. "
    "Errors are one line on stderr: usapp: error: <message>."
)


def error_line(message: str) -> None:
    """The one line every error prints on stderr (newlines folded)."""
    text = " ".join(str(message).split())
    print(f"{PROG}: error: {text}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``usapp: error: ...``, exit 2)."""

    def error(self, message: str) -> NoReturn:
        error_line(f"{message} (see '{self.prog} --help')")
        raise SystemExit(EXIT_USAGE)


def progress(message: str) -> None:
    """One line of progress on stderr."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Handlers


def cmd_demo(args: argparse.Namespace) -> int:
    from protocols.system import demo  # written separately; heavy imports stay lazy

    return demo.main(args.seed, sys.stdout)  # 1 unless every check of the report passed


_PRIORITY = {"whole-file": 0, "schema": 1, "recompute": 2}
"""Which failure's path a ``--json`` entry reports first: the whole-file
comparison names the very value that changed."""


def _verify_json(results: list[vectors.FileResult]) -> dict[str, Any]:
    """``usapp vectors verify --json``: one entry per vector (and per whole-file
    failure, with ``name`` null).  ``status`` is ``ok`` or ``mismatch``; a
    mismatch has ``path`` (JSON path in the file), ``expected`` (what the
    reference implementation or generator gives), ``actual`` (what the file
    holds) and ``message``."""
    entries: list[dict[str, Any]] = []
    for result in results:
        by_vector: dict[str | None, list[vectors.Failure]] = {}
        for failure in result.failures:
            by_vector.setdefault(failure.vector, []).append(failure)
        rows = list(result.results) + [(None, None)] * (None in by_vector)
        for name, declared in rows:
            failures = sorted(by_vector.get(name, []), key=lambda f: _PRIORITY.get(f.kind, 3))
            entry: dict[str, Any] = {"file": result.file, "name": name, "result": declared,
                     "status": "mismatch" if failures else "ok"}
            if failures:
                first = failures[0]
                entry.update(path=first.path, expected=first.expected, actual=first.actual,
                             message=first.message,
                             mismatches=[{"path": f.path, "expected": f.expected, "actual": f.actual,
                                          "check": f.kind, "message": f.message} for f in failures])
            entries.append(entry)
    failed = sum(1 for result in results if not result.ok)
    return {"files": len(results), "failed_files": failed, "vectors": entries}


def cmd_vectors_verify(args: argparse.Namespace) -> int:
    paths = args.paths or [vectors.default_vectors_dir()]
    results = vectors.verify_paths(paths, progress=progress)
    if not results:
        raise ParameterError(
            "no vector files found in " + ", ".join(str(path) for path in paths)
        )
    if args.json:
        report = _verify_json(results)
        print(json.dumps(report, indent=2, sort_keys=True))
        return _verify_status(report["failed_files"], len(results))
    failed = 0
    for result in results:
        if result.ok:
            print(
                f"OK   {result.file} ({result.family}: {result.vectors} vectors, "
                f"whole file: {result.whole_file})"
            )
            continue
        failed += 1
        family = "" if result.family is None else f" ({result.family})"
        print(f"FAIL {result.file}{family}: {len(result.failures)} failure(s)")
        for failure in result.failures:
            print(f"     {failure}")
    print(f"{len(results)} file(s) checked, {failed} failed")
    return _verify_status(failed, len(results))


def _verify_status(failed: int, checked: int) -> int:
    """Exit status of ``vectors verify``; a failure also ends stderr with one error line."""
    if not failed:
        return EXIT_OK
    error_line(f"{failed} of {checked} vector file(s) failed verification (details on stdout)")
    return EXIT_CHECK_FAILED


def cmd_vectors_list(args: argparse.Namespace) -> int:
    directory = vectors.default_vectors_dir()
    rows = [("FAMILY", "FILE", "VALID", "INVALID", "ACCEPTABLE", "SOURCE", "SPEC")]
    for family in vectorsets.families():
        try:
            info = vectors.family_info(family, directory)
        except UsappError as exc:
            progress(f"{family.file}: {exc}")
            continue
        rows.append((info.protocol, info.file, str(info.valid), str(info.invalid),
                     str(info.acceptable), info.source, info.spec))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0


def cmd_vectors_describe(args: argparse.Namespace) -> int:
    family = vectors.find_family_by_name(args.family)
    schema = vectors.family_schema(family)
    if schema is None:
        raise ParameterError(f"vector family {family.file!r} has no schema under vectors/schema/")
    print(f"{family.file}: protocol {family.protocol!r}, suite {family.suite!r}, "
          f"{'generated' if family.generated else 'transcribed'}")
    for line in vectors.describe_schema(schema):
        print(line)
    return 0


def cmd_vectors_generate(args: argparse.Namespace) -> int:
    directory = args.dir if args.dir is not None else vectors.default_vectors_dir()
    written = vectors.generate(directory, progress=progress)
    if not written:
        progress("no generated vector families are registered")
    for path in written:
        print(path)
    return 0


def cmd_vectors_replay(args: argparse.Namespace) -> int:
    from protocols.system.roles import replay  # the role framework loads only for this command

    try:                                 # the process's stderr joins ours when ours is a real file
        sys.stderr.fileno()
        log: Any = sys.stderr
    except (AttributeError, OSError, ValueError):
        log = None
    outcomes = replay.replay_files(args.files or replay.default_files(), args.role, args.cmd,
                                   say=lambda line: print(line, flush=True), log=log)
    failed = [o for o in outcomes if not o.passed]
    print(f"{len(outcomes)} step(s) replayed, {len(failed)} failed")
    if failed:
        error_line(f"vectors replay: {len(failed)} step(s) differ; first: {failed[0].vector} ({failed[0].step}): "
                   f"{failed[0].detail}")
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _run_benchmarks(args: argparse.Namespace, save: bool = False
                    ) -> tuple[list[benchmark.Comparison | benchmark.Figures], dict[str, Any]]:
    """Run the named benchmarks (all by default); ``save``: each one's JSON into the results directory,
    where ``usapp bench --html`` gathers it (specs/costs.md section 6.4)."""
    known = benchmark.discover()
    names = benchmark.resolve(args.names, known) if args.names else list(known)
    repeats = args.repeats
    if repeats is None:
        repeats = QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    plots = Path(args.plot) if args.plot is not None and args.device is None and args.html is None else None
    config = benchmark.BenchConfig(repeats=repeats, quick=args.quick, progress=progress, scale=args.scale,
                                   results_dir=plots)
    meta = {
        "usapp": protocols.__version__,
        "libraries": benchmark.library_versions(BENCH_LIBRARIES),
        "benchmarks": names,
        "repeats": repeats,
        "quick": args.quick,
    }
    results: list[benchmark.Comparison | benchmark.Figures] = []
    for index, name in enumerate(names, start=1):
        progress(f"bench {name} ({index}/{len(names)}): {known[name].description}")
        found = known[name].run(config)
        results.extend(found)
        if save:
            benchmark.save_json(name, found, {**meta, "benchmarks": [name]})
    return results, meta


def cmd_bench(args: argparse.Namespace) -> int:
    """Named benchmarks (with ``--plot DIR``: their plots written to DIR), or the device reports of
    ``--device``, ``--html``, or ``--plot`` without names (specs/costs.md section 6)."""
    if args.device is not None or args.html is not None or (args.plot is not None and not args.names):
        return cmd_bench_costs(args)
    results, meta = _run_benchmarks(args)
    if args.json:
        print(json.dumps(benchmark.to_json(results, meta), indent=2, sort_keys=True))
    else:
        sys.stdout.write(benchmark.render_table(results))
    return 0


def cmd_bench_costs(args: argparse.Namespace) -> int:
    """``usapp bench --device NAME|all|host [--json] [--plot DIR] [--html DIR]`` (specs/costs.md section 6)."""
    from protocols.system import costs_bench, costs_html, costs_report  # the traces import every protocol

    if args.names and args.html is None:
        raise ParameterError("--device and --plot take no benchmark names (with --html, the named benchmarks "
                             "run first and their results join the report)")
    if args.names:
        _run_benchmarks(args, save=True)
    device = args.device or costs_report.ALL
    runs = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    report = costs_bench.device_report(device, runs=runs, quick=args.quick, progress=progress)
    meta = {"usapp": protocols.__version__, "machine": benchmark.machine_info(), **report.meta}
    plots = {} if args.plot is None and args.html is None else costs_report.plot(report.rows, args.plot or args.html)
    if args.html is not None:
        page = costs_html.write(args.html, report.rows, plots, benchmark.default_results_dir(), meta)
        progress(f"report written to {page}")
    if args.json:
        print(json.dumps(costs_report.to_json(report.rows, {**meta, "plots": plots}), indent=2, sort_keys=True))
    else:
        sys.stdout.write(costs_report.render(report.rows) + costs_bench.host_summary_text(report))
        for protocol, path in plots.items():
            sys.stdout.write(f"{protocol} plot written to {path}\n")
    return 0


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    """``--option KEY=VALUE``: integers stay integers, anything else is text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ParameterError(f"--option takes KEY=VALUE, got {pair!r}")
        options[key] = int(value) if value.lstrip("-").isdigit() else value
    return options


def cmd_role(args: argparse.Namespace) -> int:
    from protocols.system.roles import process  # the role framework loads only for these commands

    module = process.protocol_module(args.protocol)
    if args.role == "init":
        if args.dir is None:
            raise ParameterError("usapp role PROTOCOL init needs --dir DIR")
        deployment = module.deploy(args.seed or "init", **_options(args.option))
        for ident in process.write_deployment(deployment, args.dir):
            print(f"{ident} {deployment.parties[ident][0]}")
        return EXIT_OK
    if args.state is None:
        raise ParameterError(f"usapp role {args.protocol} {args.role} needs --state PATH")
    return process.run(args.protocol, args.role, args.state, args.id, args.seed)


def _role_commands(pairs: Sequence[str]) -> dict[str, str]:
    commands: dict[str, str] = {}
    for pair in pairs:
        name, sep, command = pair.partition("=")
        if not sep or not name or not command.strip():
            raise ParameterError(f"--role takes ROLE=COMMAND (or ID=COMMAND), got {pair!r}")
        commands[name] = command
    return commands


def cmd_interop(args: argparse.Namespace) -> int:
    import tempfile

    from protocols.system.roles import harness

    def say(line: str) -> None:
        print(line, flush=True)

    directory = args.dir or tempfile.mkdtemp(prefix=f"usapp-interop-{args.protocol}-")
    say(f"interop {args.protocol}: parties' state files and logs in {directory}")
    checks, network, figures = harness.run_scenario(
        args.protocol, directory, seed=args.seed, init_seed=args.seed, commands=_role_commands(args.role),
        say=say, options=_options(args.option))
    if args.transcript is not None:
        with open(args.transcript, "wb") as out:
            for message in network.transcript:
                out.write(message.line())
        say(f"transcript: {len(network.transcript)} lines in {args.transcript}")
    commands = _role_commands(args.role)
    if commands and not args.no_compare:
        # Spec 5.3: the same seeds through our own parties (in this process); the first difference is the
        # vendor's (a vendor's party must implement the seeded randomness of spec 3.4 for this check).
        _, reference, _ = harness.run_scenario(args.protocol, os.path.join(directory, "reference"),
                                               seed=args.seed, init_seed=args.seed, in_process=True,
                                               options=_options(args.option))
        where = harness.first_divergence(reference.transcript, network.transcript)
        checks.check("the transcript equals our implementation's with the same seeds (spec 5.3)", where is None,
                     f"first divergence: {where}")
    failed = [c for c in checks.results if not c.passed]
    say(f"{len(network.transcript)} messages routed; "
        f"{len(checks.results) - len(failed)} of {len(checks.results)} checks passed")
    if failed:
        error_line(f"interop {args.protocol}: {len(failed)} check(s) failed; first: {failed[0].name}: "
                   f"{failed[0].detail}")
        return EXIT_CHECK_FAILED
    return EXIT_OK


# --------------------------------------------------------------------------
# Parser and entry point


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="USaPP smart-meter security and privacy protocols: reference implementation.",
        epilog=EXIT_STATUS,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {protocols.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run a whole neighbourhood through every protocol and report"
    )
    demo.add_argument(
        "--seed", default=None,
        help="seed the deterministic randomness, so a run can be repeated (default: a random seed, printed)",
    )
    demo.set_defaults(handler=cmd_demo)

    vec = commands.add_parser("vectors", help="verify or generate the JSON test vectors")
    vec_commands = vec.add_subparsers(dest="vectors_command", metavar="ACTION")
    verify = vec_commands.add_parser(
        "verify",
        help="recompute vector files (default: the project's vectors/ directory)",
        description=(
            "Recompute every vector of each file. The project's own files (the "
            "family's file name) are also checked whole; a vendor's file under "
            "another name is checked by recomputation only. Files over "
            f"{vectors.MAX_FILE_BYTES} bytes, nested over {vectors.MAX_JSON_DEPTH} deep or "
            "with fields outside their bounds are refused (vectors/README.md, Limits)."
        ),
        epilog=EXIT_STATUS,
    )
    verify.add_argument("paths", nargs="*", metavar="PATH", help="a vectors file or a directory of them")
    verify.add_argument(
        "--json", action="store_true",
        help="print one JSON entry per vector (file, name, result, status; on a mismatch path, expected, actual)",
    )
    verify.set_defaults(handler=cmd_vectors_verify)
    listing = vec_commands.add_parser(
        "list", help="list the vector families: counts of valid/invalid vectors, source, spec sections"
    )
    listing.set_defaults(handler=cmd_vectors_list)
    describe = vec_commands.add_parser("describe", help="print a family's format (from its JSON Schema)")
    describe.add_argument("family", metavar="FAMILY", help="file stem (rfc9162), file name or protocol")
    describe.set_defaults(handler=cmd_vectors_describe)
    generate = vec_commands.add_parser(
        "generate", help="regenerate the generated vector files from their fixed seeds"
    )
    generate.add_argument("--dir", default=None, help="output directory (default: the vectors/ directory)")
    generate.set_defaults(handler=cmd_vectors_generate)
    replaying = vec_commands.add_parser(
        "replay", help="feed a role process the per-role steps of the vectors and compare its outputs byte for byte",
        description="Each per-role vector of ROLE is sent to COMMAND as a vector.step line; its vector.outputs "
                    "(or refusal) is compared with the vector (docs/interop.md).", epilog=EXIT_STATUS)
    replaying.add_argument("files", nargs="*", metavar="FILE", help="vector files (default: every family it replays)")
    replaying.add_argument("--role", required=True, help="the role whose vectors are replayed (meter, utility, ...)")
    replaying.add_argument("--cmd", required=True, metavar="COMMAND",
                           help="the role process; {protocol} {role} {id} are filled in")
    replaying.set_defaults(handler=cmd_vectors_replay)
    vec.set_defaults(handler=None, subparser=vec, choices=", ".join(vec_commands.choices))

    bench = commands.add_parser("bench", help="run benchmarks against their baselines")
    bench.add_argument("names", nargs="*", metavar="NAME",
                       help="benchmarks to run, by name or alias, each once (default: all)")
    bench.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    bench.add_argument(
        "--repeats", type=positive_int, default=None,
        help=f"timed repeats per case (default {DEFAULT_REPEATS}, {QUICK_REPEATS} with --quick)",
    )
    bench.add_argument("--quick", action="store_true", help="small parameters: a smoke run, not a measurement")
    bench.add_argument("--device", default=None, metavar="NAME",
                       help="cost every protocol step on a device profile (NAME, 'all', or 'host': this machine, "
                            "measured, with the model's error per step; --repeats runs); specs/costs.md")
    bench.add_argument("--plot", default=None, metavar="DIR",
                       help="with --device (or no names): one bar chart per protocol in DIR; with benchmark "
                            "names: their plots in DIR")
    bench.add_argument("--html", default=None, metavar="DIR",
                       help="write DIR/index.html: the device tables (--device, default all) and every "
                            "benchmark's tables and plots found in the results directory (after running the "
                            "NAMEd benchmarks, whose results are saved there)")
    bench.add_argument("--scale", action="store_true", help="the scaling runs of benchmarks that have them "
                       "(aggregation: 10^3 to 10^6 meters on 1 and 2 workers)")
    bench.set_defaults(handler=cmd_bench)

    role = commands.add_parser(
        "role", help="run one party of a protocol as a process (JSON lines on stdin/stdout; specs/roles.md)",
        description="'usapp role PROTOCOL init --dir DIR' provisions every party of a deployment; "
                    "'usapp role PROTOCOL ROLE --state PATH' runs one party until end of input.",
        epilog=EXIT_STATUS)
    role.add_argument("protocol", metavar="PROTOCOL", help="aggregation, groupkeys, issuance, escrow or integrity")
    role.add_argument("role", metavar="ROLE", help="the role to run, or 'init'")
    role.add_argument("--state", default=None, help="the party's SQLite state file")
    role.add_argument("--id", default=None, help="the party's id (checked against the state file)")
    role.add_argument("--seed", default=None,
                      help="deterministic randomness: HMAC_DRBG of this seed (specs/roles.md 3.4); "
                           "with init, the seed of every provisioned key")
    role.add_argument("--dir", default=None, help="init: the directory for the state and provisioning files")
    role.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="init: a protocol's deployment option (specs/roles.md), repeatable")
    role.set_defaults(handler=cmd_role)

    interop = commands.add_parser(
        "interop", help="run a whole protocol between role processes, any of them a vendor's, and check it",
        epilog=EXIT_STATUS)
    interop.add_argument("protocol", metavar="PROTOCOL", help="aggregation, groupkeys, issuance, escrow or integrity")
    interop.add_argument("--role", action="append", default=[], metavar="ROLE=COMMAND",
                         help="run a role (or one party, ID=COMMAND) with a vendor's command; {protocol} "
                              "{role} {state} {id} {seed} are filled in; repeatable")
    interop.add_argument("--dir", default=None, help="directory for state files and logs (default: a new one)")
    interop.add_argument("--seed", default="interop", help="seed of the deployment and of every party")
    interop.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="a protocol's deployment option, repeatable")
    interop.add_argument("--transcript", default=None, metavar="FILE",
                         help="write every routed message to FILE, one line each, in the order delivered")
    interop.add_argument("--no-compare", action="store_true",
                         help="with --role: do not compare the transcript with our own parties' run (for a "
                              "vendor party without the seeded randomness of specs/roles.md 3.4)")
    interop.set_defaults(handler=cmd_interop)

    analytics_cli.add_parser(commands, EXIT_STATUS)  # its handlers import numpy and the detectors when they run

    parser.set_defaults(handler=None, subparser=parser, choices=", ".join(commands.choices))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    if args.handler is None:
        error_line(f"{args.subparser.prog}: a command is required, one of: {args.choices} "
                   f"(see '{args.subparser.prog} --help')")
        return EXIT_USAGE
    try:
        status: int = args.handler(args)
        sys.stdout.flush()
        return status
    except UsappError as exc:
        error_line(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (usapp ... | head): not an error
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:
        error_line(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return EXIT_USAGE
    except (RecursionError, MemoryError) as exc:
        error_line(f"input too large or too deep: {type(exc).__name__}")
        return EXIT_USAGE
    except Exception as exc:  # a bug: still one line, never a traceback
        error_line(f"internal error (a bug, please report): {type(exc).__name__}: {exc}")
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
