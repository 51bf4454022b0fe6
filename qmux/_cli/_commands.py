"""The operators' commands against a running ``qmux serve``: one table, one way to run each.

Every command connects with ``qmux.connect`` (``--url``, else ``$QMUX_URL``, else
``http://127.0.0.1:8765``; several nodes of a cluster as ``--url`` repeated or URLs separated by
commas, in both; the token from ``--token-file``, else ``$QMUX_TOKEN``: never from the
command line, where ``ps`` and shell histories would show it), does its work through the same
public API a program uses, and prints a table for people or, with ``--json``, the data for
scripts. The exit statuses are `qmux._cli._exit`'s. ``sessions``, ``jobs``, ``watch`` and ``top``
read the listing and events of SPEC V1 and E1 (``service.sessions()``, ``service.jobs()``,
``service.events()``, ``session.events()``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, TextIO

import httpx
import structlog
import trio
from attrs import define, field, frozen

from .._core import (
    InvalidInputError,
    JobError,
    JobNotFoundError,
    NotFoundError,
    QmuxError,
    SessionNotFoundError,
    parse_duration,
)
from .._remote import RemoteService, connect
from ._exit import Exit, exit_status
from ._views import backend_view, event_view, job_view, session_view

__all__ = ["COMMANDS", "Command", "Output", "add_commands", "read_token", "run_command", "run_from_parser"]

#: how long one request may take before the command gives up (connect, read)
DEFAULT_TIMEOUT: Final = 10.0
#: how long ``qmux cancel JOB`` waits for a running job to end before it reports its status
CANCEL_WAIT: Final = 5.0
#: ``qmux sessions`` and ``qmux jobs`` show this many, newest first, unless ``--limit`` says otherwise
DEFAULT_LIMIT: Final = 50


@define
class Output:
    """Where a command's answer goes: a table for people (drawn with rich), or JSON for scripts.

    rich (the ``cli`` extra) is imported only to draw: ``--json`` works without it.
    """

    json: bool
    stream: TextIO = field(factory=lambda: sys.stdout)
    #: the width tables are drawn to; ``None``: the terminal's (80 when it is not one)
    width: int | None = None
    _console: Any = field(default=None, init=False)

    @property
    def console(self) -> Any:
        """A ``rich.console.Console`` on `stream`."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, width=self.width, soft_wrap=False, highlight=False)
        return self._console

    def show(self, data: Any, table: str) -> None:
        """`data` as JSON, or drawn by ``_tables.<table>_table``."""
        if self.json:
            self.stream.write(json.dumps(data, indent=2) + "\n")
            return
        from . import _tables

        self.console.print(getattr(_tables, f"{table}_table")(data))

    def line(self, data: Any) -> None:
        """One event: a JSON Lines record, or a line for people."""
        if self.json:
            text = json.dumps(data)
        else:
            from ._tables import event_line

            text = event_line(data)
        self.stream.write(text + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """A sentence for people (nothing with ``--json``: the data says it)."""
        if not self.json:
            self.console.print(text)


Runner = Callable[[RemoteService, argparse.Namespace, Output], Awaitable[None]]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


@frozen
class Command:
    """One operators' command: its name, help, arguments and what it does."""

    name: str
    help: str
    run: Runner
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    #: follows the server until interrupted: Ctrl-C ends it with status 0
    live: bool = False
    #: takes ``--json``
    json: bool = True


# -- one session or job, by id -------------------------------------------------------------------


async def _find(service: RemoteService, ident: str, *, job: bool) -> tuple[str, Any]:
    """("session", handle) or ("job", handle): a session first (a session's first job has its id)."""
    if not job:
        try:
            return "session", await service.session(ident)
        except SessionNotFoundError:
            pass
    try:
        return "job", await service.job(ident)
    except JobNotFoundError:
        what = "job" if job else "session or job"
        raise NotFoundError(f"no {what} with id {ident!r} (or not one of this token's tenant)") from None


async def _backends(service: RemoteService, args: argparse.Namespace, out: Output) -> None:
    await service.refresh()
    out.show([backend_view(handle) for handle in service.backends()], "backends")


async def _show(service: RemoteService, args: argparse.Namespace, out: Output) -> None:
    kind, handle = await _find(service, args.id, job=args.job)
    out.show(await (session_view(handle) if kind == "session" else job_view(handle)), "detail")


async def _close(service: RemoteService, args: argparse.Namespace, out: Output) -> None:
    kind, handle = await _find(service, args.id, job=False)
    if kind == "job":
        raise InvalidInputError(f"{args.id} is a job; close takes a session (to stop a job: qmux cancel {args.id})")
    await handle.close()
    await _acted(out, "closed", await session_view(handle))


async def _cancel(service: RemoteService, args: argparse.Namespace, out: Output) -> None:
    kind, handle = await _find(service, args.id, job=args.job)
    await handle.cancel()
    if kind == "job":  # a running job stops at its backend's next step: report it ended, if it does soon
        with trio.move_on_after(CANCEL_WAIT), contextlib.suppress(JobError):
            await handle.result()
    await _acted(out, "cancelled", await (session_view(handle) if kind == "session" else job_view(handle)))


async def _acted(out: Output, action: str, view: dict[str, Any]) -> None:
    out.say(f"{action} {view['kind']} {view['id']}: {view['status']}")
    if out.json:
        out.show({"action": action, **view}, "detail")


def _id_arguments(*, job_flag: bool) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("id", help="a session's or a job's id (a session's first job has the session's id)")
        if job_flag:
            parser.add_argument("--job", action="store_true", help="the id is a job's, even if a session has it")

    return add


# -- listing and events (SPEC V1, E1) --------------------------------------------------------------


def _when(text: str) -> dt.datetime:
    """An aware datetime: ISO 8601 (UTC if it names no zone), or a duration ago ("10m", "2h")."""
    try:
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=parse_duration(text))
    except InvalidInputError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a time (ISO 8601, e.g. 2026-11-24T13:00:00Z) nor a duration ago (e.g. 10m, 2h)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, 1 or more")
    return int(text)


def _listing_arguments(kind: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--backend", help="only on this backend")
        if kind == "sessions":
            parser.add_argument("--state", choices=("open", "active", "inactive", "closed"), help="only in this state")
        else:
            parser.add_argument(
                "--status", choices=("QUEUED", "RUNNING", "DONE", "ERROR", "CANCELLED"), help="only in this status"
            )
            parser.add_argument("--session", dest="session_id", help="only this session's jobs")
            parser.add_argument("--tag", dest="tags", action="append", help="only jobs with this tag (repeat: all)")
        parser.add_argument("--since", dest="created_after", type=_when, help="created after: a time or a duration ago")
        parser.add_argument(
            "--until", dest="created_before", type=_when, help="created before: a time or a duration ago"
        )
        parser.add_argument("--limit", type=_positive, default=DEFAULT_LIMIT, help="at most this many, newest first")

    return add


_FILTERS: Final = ("backend", "state", "status", "session_id", "tags", "created_after", "created_before", "limit")


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    """The listing filters given (by the API's names); those not given are left to the server."""
    return {name: getattr(args, name) for name in _FILTERS if getattr(args, name, None) is not None}


async def _sessions(service: RemoteService, args: argparse.Namespace, out: Output) -> None:
    found = [await session_view(session) async for session in service.sessions(**_filters(args))]
    out.show(found, "sessions")


async def _jobs(service: RemoteService, args: argparse.Namespace, out: Output) -> None:
    found = [await job_view(job) async for job in service.jobs(**_filters(args))]
    out.show(found, "jobs")


async def _watch(service: RemoteService, args: argparse.Namespace, out: Output) -> None:
    """One session's events (its state first; ends once it has closed and its jobs ended), or all."""
    if args.session_id is not None:
        events = (await service.session(args.session_id)).events()
    else:
        backend = {"backend": args.backend} if args.backend is not None else {}
        events = service.events(**backend)
    async for event in events:
        out.line(event_view(event))


def _watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", dest="session_id", help="only this session's events (ends once it has closed)")
    parser.add_argument("--backend", help="only the events of this backend's sessions and jobs")


async def _top(service: RemoteService, args: argparse.Namespace, out: Output) -> None:
    from ._top import run_top

    await run_top(service, out.console, refresh=args.refresh)


def _top_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refresh", type=float, default=2.0, help="seconds between reads of the queue depths")


COMMANDS: Final[tuple[Command, ...]] = (
    Command("backends", "the backends, their configuration and queue depth", _backends),
    Command(
        "sessions",
        "sessions, newest first (filters: --backend, --state, --since, --until, --limit)",
        _sessions,
        _listing_arguments("sessions"),
    ),
    Command(
        "jobs",
        "jobs, newest first (filters: --backend, --status, --session, --tag, --since, --until, --limit)",
        _jobs,
        _listing_arguments("jobs"),
    ),
    Command("show", "one session or job: state, times, usage, why it ended", _show, _id_arguments(job_flag=True)),
    Command(
        "close",
        "close a session: it takes no new jobs, its queued jobs still run (SPEC S12)",
        _close,
        _id_arguments(job_flag=False),
    ),
    Command(
        "cancel",
        "cancel a session (its queued jobs fail, SPEC S13) or a job (SPEC J2)",
        _cancel,
        _id_arguments(job_flag=True),
    ),
    Command(
        "watch",
        "follow events as they happen, one line each (--json: JSON Lines)",
        _watch,
        _watch_arguments,
        live=True,
    ),
    Command(
        "top",
        "a live view of the backends, their holders and queues, and the open sessions",
        _top,
        _top_arguments,
        live=True,
        json=False,
    ),
)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add each operators' command to the ``qmux`` parser, with the connection options they share."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        action="append",
        help="the server; several nodes of a cluster: repeat it, or separate URLs with commas, tried in that "
        "order (default: $QMUX_URL, the same forms, else http://127.0.0.1:8765)",
    )
    common.add_argument("--token-file", metavar="FILE", help="read the token from FILE (default: $QMUX_TOKEN)")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds one request may take")
    for command in COMMANDS:
        parser = commands.add_parser(command.name, help=command.help, description=command.help, parents=[common])
        if command.json:
            parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
        command.arguments(parser)
        parser.set_defaults(operators_command=command)


def read_token(token_file: str | None, environ: dict[str, str]) -> str:
    """The token: the first line of `token_file`, else ``$QMUX_TOKEN``; never shown in a message."""
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as file:
                token = file.readline().strip()
        except OSError as exc:
            raise InvalidInputError(f"cannot read the token file {token_file!r}: {exc.strerror}") from None
        if not token:
            raise InvalidInputError(f"the token file {token_file!r} is empty")
        return token
    token = environ.get("QMUX_TOKEN", "").strip()
    if not token:
        raise InvalidInputError("no token: set QMUX_TOKEN, or pass --token-file FILE")
    return token


async def run_command(
    command: Command,
    args: argparse.Namespace,
    out: Output,
    *,
    environ: dict[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> Exit:
    """Run `command`; its exit status. A refusal is told on stderr (never the token)."""
    try:
        token = read_token(args.token_file, environ)
        async with connect(args.url, token=token, timeout=args.timeout, retries=1, transport=transport) as service:
            await command.run(service, args, out)
    except QmuxError as error:
        return _fail(command, exit_status(error), str(error))
    return Exit.OK


def _fail(command: Command, status: Exit, message: str) -> Exit:
    print(f"qmux {command.name}: {message}", file=sys.stderr)
    return status


def run_from_parser(command: Command, args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Run `command` from the ``qmux`` parser's `args`; the process's exit status."""
    out = Output(json=getattr(args, "json", False))
    if not out.json and importlib.util.find_spec("rich") is None:
        return _fail(
            command, Exit.USAGE, "needs the cli extra to draw tables (rich): pip install 'qmux[cli]'; or --json"
        )
    structlog.configure(  # an application: only warnings, on stderr, so that stdout is the answer
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    try:
        return int(trio.run(lambda: run_command(command, args, out, environ=environ)))
    except KeyboardInterrupt:
        return int(Exit.OK if command.live else Exit.INTERRUPTED)
