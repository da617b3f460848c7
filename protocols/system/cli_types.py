"""argparse value types shared by the ``usapp`` command groups (cli.py, analytics_cli.py)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer of at least 1, or an argparse error naming the text."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value
