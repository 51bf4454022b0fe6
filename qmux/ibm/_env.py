"""The environment that points qiskit-ibm-runtime, unmodified, at a qmux server.

``qmux serve --ibm-compat`` prints these as ``export`` lines at start. Each variable, and why
(IBM-RUNTIME-WIRE.md has the observations behind them):

- ``QISKIT_IBM_URL``: the Runtime API's base URL. It contains ``experimental``, or the client's
  resolver would compute IBM's regional host from the instance CRN and drop the port.
- ``IAM_URL``: the server's root, where the client trades its API key at ``/identity/token``
  (without it the client calls IBM Cloud's IAM, and stalls when that is out of reach).
- ``QISKIT_IBM_INSTANCE``: a CRN (the client checks the form); one qmux server is one instance.
- ``GLOBAL_SEARCH_URL`` and ``GLOBAL_CATALOG_URL``: where the client looks up the instances its
  token may use when it is given none (``QiskitRuntimeService(token=..., url=...)``): IBM Cloud's
  Global Search and Global Catalog, which this server answers with its one instance and plan.
- ``QISKIT_IBM_TOKEN``: the API key, which is a qmux tenant's token.
"""

from __future__ import annotations

import shlex

from ._instance import INSTANCE
from ._routes import API_PREFIX, GLOBAL_CATALOG_PREFIX, GLOBAL_SEARCH_PREFIX

__all__ = ["INSTANCE", "client_environment", "export_lines"]


def client_environment(url: str, token: str) -> dict[str, str]:
    """The variables that point qiskit-ibm-runtime at the qmux server at `url` (its root) as `token`'s tenant."""
    root = url.rstrip("/")
    return {
        "QISKIT_IBM_TOKEN": token,
        "QISKIT_IBM_URL": f"{root}{API_PREFIX}",
        "QISKIT_IBM_INSTANCE": INSTANCE,
        "IAM_URL": root,
        "GLOBAL_SEARCH_URL": f"{root}{GLOBAL_SEARCH_PREFIX}",
        "GLOBAL_CATALOG_URL": f"{root}{GLOBAL_CATALOG_PREFIX}",
    }


def export_lines(url: str, token: str | None = None, *, token_variable: str | None = None) -> list[str]:
    """Shell lines to paste (or ``eval``) that point the client at the server at `url`.

    The token line shows `token` itself, or ``"$NAME"`` when the token is in the environment
    variable `token_variable` (its value is not printed); with neither, it is a comment to fill in.
    """
    lines = ["# point qiskit-ibm-runtime at this server:"]
    for name, value in client_environment(url, token or "").items():
        if name != "QISKIT_IBM_TOKEN":
            lines.append(f"export {name}={shlex.quote(value)}")
        elif token is not None:
            lines.append(f"export {name}={shlex.quote(token)}")
        elif token_variable is not None:
            lines.append(f'export {name}="${token_variable}"')
        else:
            lines.append(f"# export {name}=<the token of one of the config's [[tenants]]>")
    return lines
