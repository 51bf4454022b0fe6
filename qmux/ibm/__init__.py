"""Stand in for IBM Quantum's cloud: unmodified qiskit-ibm-runtime code runs against ``qmux serve --ibm-compat``.

``qmux serve --ibm-compat`` serves the part of IBM's Runtime REST API that qiskit-ibm-runtime
0.51 uses (under ``/experimental``, with IAM's ``/identity/token`` at the root) beside the
native API, over the same `qmux.Service`: the same session actors enforce max_time, ITTL,
close and cancel for both, so ``QiskitRuntimeService()``, ``Session``, ``Batch``,
``SamplerV2`` and ``EstimatorV2`` behave as SPEC.md says. It prints the environment that
points the client at it (`export_lines`). Needs the ``ibm`` extra:
``pip install 'qmux[server,ibm]'`` (qiskit-ibm-runtime writes the results its client reads).

`mount_ibm` puts IBM's front door in front of a native app; both run through the one pipeline
of `qmux._http`. The pieces are documented in their modules: `_app` (the dialect and the
mount), `_routes` (the route table), `_api` (the handlers only IBM's API has), `_jobs` (what
``GET /jobs`` lists), `_auth` (IAM tokens), `_backends` (what the client's ISA check sees),
`_codec` (params and results), `_env` (the environment).
"""

from __future__ import annotations

from ._api import IbmApi
from ._app import CompatApp, IbmApp, mount_ibm
from ._auth import IamTokens
from ._codec import require_ibm_runtime
from ._env import INSTANCE, client_environment, export_lines
from ._routes import API_PREFIX, IAM_PATH

__all__ = [
    "API_PREFIX",
    "IAM_PATH",
    "INSTANCE",
    "CompatApp",
    "IamTokens",
    "IbmApi",
    "IbmApp",
    "client_environment",
    "export_lines",
    "mount_ibm",
    "require_ibm_runtime",
]
