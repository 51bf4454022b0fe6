"""The ``qmux`` command: ``qmux demo`` and ``qmux serve``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qmux", description="An async session multiplexer for scarce backends.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="walk through IBM's 'Run jobs in a session' on the embedded backends")
    demo.add_argument("--fast", action="store_true", help="run on a virtual clock: no real waiting")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(fast=args.fast)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse refuses first
    return 2  # pragma: no cover
