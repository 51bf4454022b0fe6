"""System tests' fixtures: a real PostgreSQL server (started on first use) for the journal's tests."""

from __future__ import annotations

from ..support.postgres import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]
