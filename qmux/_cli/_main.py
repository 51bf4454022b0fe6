"""The ``qmux`` command: ``qmux demo``, ``qmux serve``, and the operators' commands (``_commands``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``qmux`` parser: every command and its options."""
    from ._commands import add_commands

    parser = argparse.ArgumentParser(
        prog="qmux",
        description="An async session multiplexer for scarce backends.",
        epilog="The operators' commands (backends, sessions, jobs, show, close, cancel, watch, top) talk to a "
        "running server: --url (default $QMUX_URL; several nodes: repeat it or separate with commas), the token "
        "from $QMUX_TOKEN or --token-file. Exit status: "
        "0 done, 1 refused or not found, 2 usage, 3 cannot connect, 4 token refused.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="walk through IBM's 'Run jobs in a session' on the embedded backends")
    demo.add_argument("--fast", action="store_true", help="run on a virtual clock: no real waiting")
    serve = commands.add_parser("serve", help="serve a qmux service over HTTP (needs the 'server' extra)")
    serve.add_argument("--config", metavar="FILE", help="TOML file: [server], [[tenants]], [service], [backends.*]")
    serve.add_argument("--host", help="address to listen on (default: the config's, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: the config's, else 8765; 0: any free port)")
    serve.add_argument("--log-format", choices=("console", "json"), default="console", help="log lines on stderr")
    serve.add_argument(
        "--ibm-compat",
        action="store_true",
        help="also serve IBM's Runtime API, for unmodified qiskit-ibm-runtime code (needs the 'ibm' extra); "
        "prints the environment that points the client here",
    )
    add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "operators_command", None) is not None:
        from ._commands import run_from_parser

        return run_from_parser(args.operators_command, args, dict(os.environ))
    if args.command == "serve":
        try:
            from ..server._serve import main as serve_main
        except ImportError as exc:
            parser.exit(2, f"qmux serve needs the server extra ({exc.name} is missing): pip install 'qmux[server]'\n")
        if args.ibm_compat:
            from .._core import QiskitNotInstalledError
            from ..ibm import require_ibm_runtime

            try:
                require_ibm_runtime()  # here, in the main thread, before any worker thread touches qiskit
            except QiskitNotInstalledError as exc:
                parser.exit(2, f"qmux serve --ibm-compat: {exc}\n")
        return serve_main(
            config_path=args.config,
            host=args.host,
            port=args.port,
            log_format=args.log_format,
            ibm_compat=args.ibm_compat,
        )
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(fast=args.fast)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse refuses first
    return 2  # pragma: no cover
