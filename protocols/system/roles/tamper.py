"""A stand-in for a faulty vendor: run a role process and flip one byte of one of its messages.

    python -m protocols.system.roles.tamper --type TYPE [--nth K] --byte N -- COMMAND ...

runs COMMAND as a child process (it reads this process's stdin directly and
logs to the same stderr) and copies its stdout line by line, except that the
body of the K-th output message of type TYPE (K = 1 by default) has byte N
XORed with 0x01 (N < 0 counts from the end of the body).  Everything else,
status lines included, passes through unchanged; the exit status is the
child's.  It is the "vendor" the interop harness and ``usapp vectors replay``
must catch and name (docs/interop.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TextIO

from protocols.errors import DecodeError
from protocols.system.roles import wire


@dataclass
class Flipper:
    """Flips byte ``byte`` of the body of the ``nth`` message of type ``type``; counts what it saw."""

    type: str
    nth: int = 1
    byte: int = 0
    seen: int = 0
    flipped: bool = False

    def line(self, line: bytes, err: TextIO) -> bytes:
        """The line to pass on (a line that is not a message passes unchanged)."""
        try:
            envelope = wire.parse_line(line)
        except DecodeError:
            return line
        if envelope.type != self.type:
            return line
        self.seen += 1
        if self.seen != self.nth:
            return line
        body = bytearray(envelope.body)
        if not -len(body) <= self.byte < len(body):
            print(f"tamper: {self.type} number {self.nth} has only {len(body)} body bytes; passed unchanged",
                  file=err, flush=True)
            return line
        body[self.byte] ^= 0x01
        self.flipped = True
        print(f"tamper: flipped byte {self.byte} of {self.type} number {self.nth} from {envelope.sender} "
              f"to {envelope.to}", file=err, flush=True)
        return wire.Envelope(envelope.sender, envelope.to, envelope.type, bytes(body)).line()


def relay(source: IO[bytes], sink: IO[bytes], flipper: Flipper, err: TextIO) -> None:
    """Copy lines from ``source`` to ``sink`` through ``flipper``, flushing after each."""
    while True:
        line = source.readline(wire.MAX_LINE_BYTES + 1)
        if not line:
            return
        sink.write(flipper.line(line, err))
        sink.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m protocols.system.roles.tamper",
        description="Run a role process and flip one byte of the body of one of its output messages.")
    parser.add_argument("--type", required=True, help="the message type to tamper with")
    parser.add_argument("--nth", type=int, default=1, help="which message of that type (1 = the first)")
    parser.add_argument("--byte", type=int, required=True, help="the body byte to XOR with 0x01 (<0: from the end)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ... (the role process)")
    args = parser.parse_args(argv)
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command or args.nth < 1:
        parser.error("give --nth >= 1 and a command after --")
    try:
        wire.check_type(args.type)
    except DecodeError as exc:
        parser.error(str(exc))
    child = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert child.stdout is not None
    flipper = Flipper(args.type, args.nth, args.byte)
    try:
        relay(child.stdout, sys.stdout.buffer, flipper, sys.stderr)
    except BrokenPipeError:
        child.kill()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
