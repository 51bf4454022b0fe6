"""What the HTTP front doors share: one request pipeline, and the view of the service behind it.

The native REST API (``qmux.server``) and the IBM-compatible API (``qmux.ibm``) differ only in
their routes, schemas and error dialect; everything else is here, once:

- `HttpApp` (``_pipeline``): the ASGI app; route -> authenticate -> admit -> read within limits
  -> decode -> handle -> encode -> log, for each of its `FrontDoor`s;
- `Route`, `find_route` (``_routing``); `Request`, `Reply`, `HttpError` (``_messages``);
- `Dialect` (``_dialect``): how a front door answers errors and how strictly it reads;
- `Admission`, `AuthThrottle` (``_admission``): per-tenant admission, the failed-authentication throttle;
- `read_body`, `check_json_depth`, `HttpLimits` (``_limits``); `decode_body`, `decode_query` (``_decoding``);
- `ServiceView` (``_view``): tenancy, the shutdown gate and long polls, over one service;
- `Tenant`, `TokenAuth` (``_tenants``): tenants and their bearer tokens;
- the documents (``_documents``) and operations (``_handlers``) both APIs serve alike;
- `openapi_document` (``_openapi``): an API's description, generated from its route table.

Needs the ``server`` extra (msgspec).
"""

from __future__ import annotations

from . import _handlers as handlers
from ._admission import Admission, AuthThrottle, TokenBucket
from ._decoding import decode_body, decode_query
from ._dialect import Dialect, ErrorBody, ErrorCause, ErrorDetail
from ._documents import (
    BackendStatus,
    Device,
    DeviceStatus,
    IsoTime,
    JobProgram,
    JobState,
    Seconds,
    SessionDocument,
    Timestamp,
    job_state,
    session_document,
)
from ._limits import MAX_JSON_DEPTH, HttpLimits, check_content_length, check_json_depth, read_body
from ._messages import HttpError, Message, Receive, Reply, Request, Scope, Send, header
from ._openapi import generic_errors, openapi_document
from ._pipeline import FrontDoor, HttpApp
from ._routing import RAW_JSON, Handler, Route, find_route
from ._tenants import Tenant, TokenAuth, check_token, token_digest
from ._view import ServiceView

__all__ = [
    "MAX_JSON_DEPTH",
    "RAW_JSON",
    "Admission",
    "AuthThrottle",
    "BackendStatus",
    "Device",
    "DeviceStatus",
    "Dialect",
    "ErrorBody",
    "ErrorCause",
    "ErrorDetail",
    "FrontDoor",
    "Handler",
    "HttpApp",
    "HttpError",
    "HttpLimits",
    "IsoTime",
    "JobProgram",
    "JobState",
    "Message",
    "Receive",
    "Reply",
    "Request",
    "Route",
    "Scope",
    "Seconds",
    "Send",
    "ServiceView",
    "SessionDocument",
    "Tenant",
    "Timestamp",
    "TokenAuth",
    "TokenBucket",
    "check_content_length",
    "check_json_depth",
    "check_token",
    "decode_body",
    "decode_query",
    "find_route",
    "generic_errors",
    "handlers",
    "header",
    "job_state",
    "openapi_document",
    "read_body",
    "session_document",
    "token_digest",
]
