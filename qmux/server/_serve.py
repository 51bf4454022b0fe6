"""``qmux serve``: the HTTP API on hypercorn's Trio worker, over one `qmux.Service`.

hypercorn does the connection's work, within the ``[server]`` bounds: HTTPS when ``certfile``
and ``keyfile`` are given (checked before anything starts), and ``header_timeout`` for a
connection to send a request's headers (from its opening, its TLS handshake included, or from its
last answer; a slow sender holds no request slot meanwhile, and is then closed).

Shutdown, on SIGINT or SIGTERM (or when `serve`'s trigger returns): stop taking new sessions
and jobs and answer waiting long polls at once; stop accepting connections and give requests
in flight the grace period; then the service drains for the same grace (sessions close, their
queued jobs may still run) and cancels what is left. A second signal cancels at once.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import signal
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, cast

import attrs
import hypercorn.config
import hypercorn.trio
import structlog
import trio

from .._core import Backend, InvalidInputError, Service
from .._open import open_service
from ..cluster import LeaseLostError, lease_lost_in
from ._app import QmuxApp, create_app
from ._auth import Tenant
from ._config import ServerConfig, load_config
from ._journal import WatchedJournal, watched_journal

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

    from ..cluster import Node

__all__ = ["LEASE_LOST", "main", "serve"]

#: ``qmux serve``'s exit status when its node lost a lease and stopped (a supervisor restarts it)
LEASE_LOST = 3

_log = structlog.get_logger("qmux.server")

ShutdownTrigger = Callable[[], Awaitable[object]]


async def serve(
    config: ServerConfig,
    *,
    shutdown_trigger: ShutdownTrigger | None = None,
    ibm_compat: bool = False,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until `shutdown_trigger` returns (default: the first SIGINT or SIGTERM), then shut down.

    Started with ``url = await nursery.start(serve, config)``, it reports the URL it listens
    on once it accepts connections (the real port when the config asks for port 0).
    `ibm_compat`: also serve IBM's Runtime API (`qmux.ibm`) beside the native one.
    """
    if shutdown_trigger is not None:
        await _serve(config, shutdown_trigger, task_status, ibm_compat)
        return
    with trio.CancelScope() as forced, trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        first = trio.Event()

        async def watch() -> None:
            async for signum in signals:
                if not first.is_set():
                    _log.info("server.signal", signal=signal.Signals(signum).name)
                    first.set()
                else:
                    _log.warning("server.forced_stop", signal=signal.Signals(signum).name)
                    forced.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await _serve(config, first.wait, task_status, ibm_compat)
            nursery.cancel_scope.cancel()


async def _serve(
    config: ServerConfig, trigger: ShutdownTrigger, task_status: trio.TaskStatus[str], ibm_compat: bool = False
) -> None:
    settings = config.server
    grace = config.service.shutdown_grace
    hconfig = _hypercorn_config(config, grace)
    backends = list(config.backends) if config.backends is not None else None
    node = _node(config, backends)
    # watched: /readyz checks it, metrics follow what it recovers
    journal = WatchedJournal(node.store) if node is not None else watched_journal(settings.journal)
    running: AbstractAsyncContextManager[Service]
    if node is not None:
        from ..cluster import open_node

        running = open_node(node, settings=config.service, journal=journal)
    else:
        running = open_service(backends, settings=config.service, journal=journal)
    async with running as service:
        app = create_app(
            service, config.tenants, settings, journal=journal, peers=node.directory if node is not None else None
        )
        asgi: object = app
        if ibm_compat:
            from ..ibm import mount_ibm

            key = await trio.to_thread.run_sync(node.directory.shared_key, "ibm-access-tokens") if node else None
            asgi = mount_ibm(app, service, config.tenants, token_key=key)
        http_stopped = trio.Event()
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                functools.partial(
                    hypercorn.trio.serve,
                    cast("ASGIFramework", asgi),
                    hconfig,
                    shutdown_trigger=http_stopped.wait,
                )
            )
            url = binds[0]
            _log.info(
                "server.started",
                url=url,
                backends=[handle.name for handle in service.backends()],
                tenants=len(config.tenants),
                **({"node": node.name} if node is not None else {}),
            )
            task_status.started(url)
            await trigger()
            _stop_http(app, http_stopped, grace)
        _log.info("server.http_stopped")
    _log.info("server.stopped")


def _node(config: ServerConfig, backends: list[Backend] | None) -> Node | None:
    """This process as a node of a cluster, if the config has a ``[cluster]`` table."""
    if config.cluster is None:
        return None
    from ..cluster import Node

    if backends is None:
        from ..backends import default_backends

        backends = list(default_backends())
    assert config.server.journal is not None  # checked with the config
    lease = config.cluster.lease

    def deadline() -> None:
        # crash-only: the journal is sealed already; if the orderly stop hangs on a database that
        # does not answer, the process still ends within a lease, before a restart could matter
        timer = threading.Timer(lease, os._exit, (LEASE_LOST,))
        timer.daemon = True
        timer.start()

    return Node(
        config.cluster,
        config.server.journal,
        backends,
        retain_finished=config.service.retain_finished,
        on_lost=deadline,
    )


def _stop_http(app: QmuxApp, http_stopped: trio.Event, grace: float) -> None:
    _log.info("server.stopping", grace=grace)
    app.begin_shutdown()
    http_stopped.set()


def _hypercorn_config(config: ServerConfig, grace: float) -> hypercorn.config.Config:
    """hypercorn's config for `config`; `InvalidInputError` if its certificate or key cannot be loaded."""
    settings = config.server
    hconfig = hypercorn.config.Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    hconfig.bind = [f"{host}:{settings.port}"]
    hconfig.graceful_timeout = grace
    hconfig.keep_alive_timeout = settings.header_timeout  # idle, or still sending headers: closed after it
    hconfig.ssl_handshake_timeout = settings.header_timeout
    if settings.certfile is not None and settings.keyfile is not None:
        hconfig.certfile, hconfig.keyfile = settings.certfile, settings.keyfile
        try:
            hconfig.create_ssl_context()
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInputError(
                f"[server] certfile={settings.certfile!r} and keyfile={settings.keyfile!r} cannot be loaded as a "
                f"PEM certificate chain and its private key: {exc}"
            ) from None
    hconfig.accesslog = None  # the app logs every request as an `http.request` event
    hconfig.errorlog = logging.getLogger("hypercorn.error")  # handed over as is: the application configures it
    hconfig.include_server_header = False
    hconfig.h11_max_incomplete_size = 64 * 1024
    return hconfig


# -- the ``qmux serve`` command (an application: it may configure logging) -------------------------


def main(
    *,
    config_path: str | None,
    host: str | None,
    port: int | None,
    log_format: str = "console",
    ibm_compat: bool = False,
) -> int:
    """Run ``qmux serve``; the exit status. Without a config file: one tenant, "default", whose
    token is ``$QMUX_TOKEN`` or, if unset, a fresh one printed at start."""
    _configure_logging(log_format)
    printed_token: str | None = None
    try:
        if config_path is not None:
            config = load_config(config_path)
        else:
            token = os.environ.get("QMUX_TOKEN")
            if not token:
                token = printed_token = secrets.token_urlsafe(24)
            config = ServerConfig(tenants=(Tenant.from_token("default", token),))
        overrides: dict[str, Any] = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
        if overrides:
            config = attrs.evolve(config, server=attrs.evolve(config.server, **overrides))
    except InvalidInputError as exc:
        print(f"qmux serve: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        try:
            await serving()
        except BaseExceptionGroup as group:
            lost = lease_lost_in(group)
            if lost is None:
                raise
            raise lost from None

    async def serving() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(functools.partial(serve, config, ibm_compat=ibm_compat))
            print(f"qmux serving on {url}", flush=True)
            if printed_token is not None:
                print(f"token (no config, no QMUX_TOKEN): {printed_token}", flush=True)
            if ibm_compat:
                from ..ibm import export_lines

                from_env = "QMUX_TOKEN" if config_path is None and printed_token is None else None
                print("\n".join(export_lines(url, printed_token, token_variable=from_env)), flush=True)

    try:
        trio.run(run)
    except InvalidInputError as exc:  # found as the server starts (a certificate that cannot be loaded)
        print(f"qmux serve: {exc}", file=sys.stderr)
        return 2
    except LeaseLostError as exc:  # a node of a cluster stopped so that another serves its backends
        print(f"qmux serve: {exc}", file=sys.stderr)
        return LEASE_LOST
    return 0


def _configure_logging(log_format: str) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if log_format == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if log_format == "json" else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
