"""Tenants and their tokens, where the server's config reads them from.

Both front doors authenticate tenants, so `Tenant`, `TokenAuth` and `token_digest` live with
the shared pipeline (`qmux._http`); ``qmux.server`` exports them as before.
"""

from __future__ import annotations

from .._http import Tenant, TokenAuth, check_token, token_digest

__all__ = ["Tenant", "TokenAuth", "check_token", "token_digest"]
