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
- `openapi_document` (``_openapi``): an API's description, generated from its route table;
- `event_reply`, `Feed` (``_sse``): an event subscription as Server-Sent Events;
- `page_of`, the cursor and the keys of a listing (``_listing``): listing in pages;
- `Peers`, `Locate` (``_forwarding``): several nodes, one API: what a node knows of the others,
  and where each route's answer is; `Relay` (``_relay``) answers there: relayed to the node
  that holds what a request names, or fanned out to every node and merged (``_fanout``:
  `ByName`, `Totals`; ``_merged_listings``: `Listing`, `OffsetListing`; ``_merged_events``:
  `MergedEvents`).

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
    EventDocument,
    IsoTime,
    JobProgram,
    JobState,
    Seconds,
    SessionDocument,
    Timestamp,
    job_state,
    session_document,
)
from ._fanout import ByName, Totals
from ._forwarding import (
    FORWARDED_BY,
    PARTIAL,
    Clue,
    FanOut,
    Locate,
    Merge,
    Peers,
    in_body,
    in_path,
    in_query,
    locate,
)
from ._limits import MAX_JSON_DEPTH, HttpLimits, check_content_length, check_json_depth, read_body
from ._listing import Key, Page, decode_cursor, encode_cursor, job_key, page_of, parse_instant, session_key
from ._merged_events import MergedEvents, resume_id, resume_point
from ._merged_listings import Listing, OffsetListing
from ._messages import HttpError, Message, Producer, Receive, Reply, Request, Scope, Send, header
from ._openapi import generic_errors, openapi_document
from ._pipeline import Answered, FrontDoor, HttpApp, RequestObserver
from ._relay import Relay
from ._routing import RAW_JSON, RAW_TEXT, EventStream, Handler, Route, find_route
from ._sse import EVENT_SEQ_HEADER, KEEPALIVE_SECONDS, Feed, encode_event, event_reply
from ._tenants import TOKEN_SHA256, Tenant, TokenAuth, check_token, token_digest
from ._view import ServiceView, Taken, WorkObserver

__all__ = [
    "EVENT_SEQ_HEADER",
    "FORWARDED_BY",
    "KEEPALIVE_SECONDS",
    "MAX_JSON_DEPTH",
    "PARTIAL",
    "RAW_JSON",
    "RAW_TEXT",
    "TOKEN_SHA256",
    "Admission",
    "Answered",
    "AuthThrottle",
    "BackendStatus",
    "ByName",
    "Clue",
    "Device",
    "DeviceStatus",
    "Dialect",
    "ErrorBody",
    "ErrorCause",
    "ErrorDetail",
    "EventDocument",
    "EventStream",
    "FanOut",
    "Feed",
    "FrontDoor",
    "Handler",
    "HttpApp",
    "HttpError",
    "HttpLimits",
    "IsoTime",
    "JobProgram",
    "JobState",
    "Key",
    "Listing",
    "Locate",
    "Merge",
    "MergedEvents",
    "Message",
    "OffsetListing",
    "Page",
    "Peers",
    "Producer",
    "Receive",
    "Relay",
    "Reply",
    "Request",
    "RequestObserver",
    "Route",
    "Scope",
    "Seconds",
    "Send",
    "ServiceView",
    "SessionDocument",
    "Taken",
    "Tenant",
    "Timestamp",
    "TokenAuth",
    "TokenBucket",
    "Totals",
    "WorkObserver",
    "check_content_length",
    "check_json_depth",
    "check_token",
    "decode_body",
    "decode_cursor",
    "decode_query",
    "encode_cursor",
    "encode_event",
    "event_reply",
    "find_route",
    "generic_errors",
    "handlers",
    "header",
    "in_body",
    "in_path",
    "in_query",
    "job_key",
    "job_state",
    "locate",
    "openapi_document",
    "page_of",
    "parse_instant",
    "read_body",
    "resume_id",
    "resume_point",
    "session_document",
    "session_key",
    "token_digest",
]
