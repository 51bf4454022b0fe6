"""The one IBM Cloud instance a qmux server is: its CRN, its name and its plan.

IBM's client names an instance by CRN on every call (``Service-CRN``) and, given none, looks
the instances of its token up in IBM Cloud's Global Search and their plans in the Global
Catalog. A qmux server answers with this one instance: every tenant uses it, and tenancy is
the token's, not the instance's.
"""

from __future__ import annotations

from typing import Final

__all__ = ["INSTANCE", "INSTANCE_NAME", "PLAN", "PLAN_ID"]

#: the instance CRN the client is told to use; the server accepts any
INSTANCE: Final = "crn:v1:bluemix:public:quantum-computing:us-east:a/qmux:qmux::"
#: the instance's name
INSTANCE_NAME: Final = "qmux"
#: its plan, as the catalog names it: a qmux server is a private deployment with no allowance to
#: pay for, which IBM calls an internal plan
PLAN: Final = "Internal"
PLAN_ID: Final = "qmux-internal"
