"""The OpenAPI 3.1 description of the HTTP API, served at `/api/v1/openapi.json`."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from callkeeper import __version__
from callkeeper.inbox.model import DEFAULT_INBOX_LIMIT, MAX_INBOX_LIMIT, InboxState
from callkeeper.records import Direction, Outcome, Reason

# The contract, shared by the server's validation and this document.
CALL_ID = "[A-Za-z0-9._:@+-]{1,256}"
E164 = r"\+[1-9][0-9]{1,14}"
MAX_NAME_LENGTH = 128
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_BODY_BYTES = 64 * 1024
PRESENCE_STATES = ("available", "away", "dnd", "busy", "offline")
SETTABLE_PRESENCE = ("available", "away", "dnd")  # dnd: do not disturb, at the desk taking no calls
LINE_MODES = ("open", "closed", "auto")
OUTCOMES = tuple(outcome.value for outcome in Outcome)
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "held", "cancelled")
REASONS = tuple(reason.value for reason in Reason)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these properties, all present."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH}
PRESENCE = {"type": "string", "enum": list(PRESENCE_STATES)}
LINE_MODE = {"type": "string", "enum": list(LINE_MODES)}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {"error": STRING, "detail": {}},
        "required": ["error", "detail"],
    },
    "Step": _obj({"stage": STRING, "at": DATE_TIME, "detail": STRING}),
    "Voicemail": _obj(
        {"left": {"type": "boolean"}, "seconds": {"type": "integer", "minimum": 0}, "mailbox": STRING}
    ),
    "Followup": _obj(
        {
            "kind": {"type": "string", "description": "sms or webhook"},
            "status": {"type": "string", "enum": list(OUTBOX_STATUSES)},
            "to": STRING,
            "created_at": DATE_TIME,
            "due_at": NULLABLE_DATE_TIME,
            "sent_at": NULLABLE_DATE_TIME,
            "provider_id": NULLABLE_STRING,
            "detail": STRING,
        }
    ),
    "Call": {
        **_obj(
            {
                "id": STRING,
                "direction": {"type": "string", "enum": [d.value for d in Direction]},
                "line": NULLABLE_STRING,
                "caller": STRING,
                "dialed": STRING,
                "started_at": DATE_TIME,
                "ended_at": NULLABLE_DATE_TIME,
                "outcome": {"type": ["string", "null"], "enum": [*OUTCOMES, None]},
                "reason": {"type": ["string", "null"], "enum": [*(r.value for r in Reason), None]},
                "short": {"type": "boolean"},
                "answered_by": NULLABLE_STRING,
                "voicemail": _nullable(_ref("Voicemail")),
                "steps": {"type": "array", "items": _ref("Step")},
                "followups": {"type": "array", "items": _ref("Followup")},
                "end_observed": {"type": "boolean"},
                "host": STRING,
                "extra": {"type": "object"},
            }
        ),
        "description": "One call from arrival to verdict; `outcome` and `reason` are null while it is "
        "in progress.",
    },
    "CallList": _obj({"calls": {"type": "array", "items": _ref("Call")}}),
    "User": _obj({"name": STRING, "presence": PRESENCE}),
    "UserList": _obj({"users": {"type": "array", "items": _ref("User")}}),
    "PresenceUpdate": _obj({"presence": {"type": "string", "enum": list(SETTABLE_PRESENCE)}}),
    "Line": _obj({"name": STRING, "override": LINE_MODE}),
    "LineList": _obj({"lines": {"type": "array", "items": _ref("Line")}}),
    "LineOverrideUpdate": _obj({"mode": LINE_MODE}),
    "DialerRequest": {
        "type": "object",
        "properties": {
            "contact": {"type": "string", "pattern": f"^{E164}$"},
            "line": NAME,
            "user": NAME,
            "ring_group": NAME,
        },
        "required": ["contact", "line"],
        "oneOf": [{"required": ["user"]}, {"required": ["ring_group"]}],
        "additionalProperties": False,
        "description": "Exactly one of `user` and `ring_group`.",
    },
    "DialerCall": _obj({"id": STRING}),
    "QueuedCaller": _obj(
        {"call_id": STRING, "caller": STRING, "waiting_seconds": {"type": "number", "minimum": 0}}
    ),
    "Queues": _obj(
        {
            "queues": {
                "type": "object",
                "description": "Waiting callers by ring group, longest waiting first.",
                "additionalProperties": {"type": "array", "items": _ref("QueuedCaller")},
            }
        }
    ),
    "OptOut": _obj({"number": STRING, "source": STRING, "at": DATE_TIME}),
    "OptOutList": _obj({"opt_outs": {"type": "array", "items": _ref("OptOut")}}),
    "OptOutState": _obj(
        {
            "number": STRING,
            "opted_out": {"type": "boolean"},
            "source": NULLABLE_STRING,
            "at": NULLABLE_DATE_TIME,
        }
    ),
    "InboxVoicemail": _obj(
        {"call_id": STRING, "seconds": {"type": "integer", "minimum": 0}, "mailbox": STRING}
    ),
    "InboxText": _obj(
        {
            "call_id": STRING,
            "to": STRING,
            "status": {"type": "string", "enum": list(OUTBOX_STATUSES)},
            "created_at": DATE_TIME,
            "sent_at": NULLABLE_DATE_TIME,
            "detail": STRING,
            "body": {"type": "string", "description": "What the text says (empty if it was never written)."},
        }
    ),
    "InboxItem": {
        **_obj(
            {
                "call_id": STRING,
                "call_ids": {"type": "array", "items": STRING, "minItems": 1},
                "caller": STRING,
                "line": STRING,
                "direction": {"type": "string", "enum": [d.value for d in Direction]},
                "outcome": {"type": "string", "enum": list(OUTCOMES)},
                "reason": {"type": "string", "enum": list(REASONS)},
                "reason_text": STRING,
                "started_at": DATE_TIME,
                "waited_seconds": {"type": "number", "minimum": 0},
                "attempts": {"type": "integer", "minimum": 0},
                "voicemail": _nullable(_ref("InboxVoicemail")),
                "followup_text": _nullable(_ref("InboxText")),
                "state": {"type": "string", "enum": [s.value for s in InboxState]},
                "handled_by": NULLABLE_STRING,
                "handled_at": NULLABLE_DATE_TIME,
                "note": NULLABLE_STRING,
                "resolved_by": NULLABLE_STRING,
                "short": {"type": "boolean"},
                "ignored": {"type": "boolean"},
            }
        ),
        "description": "One caller on one line with every call not yet worked: `call_id`, `outcome` and "
        "`reason` are the latest call's (a callback that did not reach them is one), `reason_text` says it "
        "in plain words; `attempts` counts their calls and the callbacks that rang them in vain. "
        "`resolved_by` is the answered call that closed the item by itself.",
    },
    "InboxList": _obj({"items": {"type": "array", "items": _ref("InboxItem")}}),
    "HandledRequest": {
        "type": "object",
        "properties": {"by": NAME, "note": {"type": ["string", "null"], "maxLength": 2000}},
        "required": ["by"],
        "additionalProperties": False,
    },
    "CallbackRequest": _obj({"user": NAME}),
    "Callback": _obj({"call_id": STRING}),
    "DailyReportRow": _obj(
        {
            "line": STRING,
            "day": {"type": "string", "format": "date"},
            **{
                name: {"type": "integer", "minimum": 0}
                for name in (
                    "calls",
                    "answered",
                    "missed",
                    "abandoned",
                    "short_abandons",
                    "ignored",
                    "voicemails",
                )
            },
            "called_back_share": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "callback_median_seconds": {"type": ["number", "null"], "minimum": 0},
            "callback_p90_seconds": {"type": ["number", "null"], "minimum": 0},
        }
    ),
    "DailyReport": _obj({"rows": {"type": "array", "items": _ref("DailyReportRow")}}),
    "Health": _obj({"status": {"const": "ok"}}),
    "Readiness": _obj(
        {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            "checks": _obj({check: {"type": "boolean"} for check in ("ari", "config", "store")}),
            "detail": _obj(
                {
                    "missing_sounds": {
                        "type": "object",
                        "description": "Sounds the config plays that Asterisk lacks: sound id -> YAML paths.",
                        "additionalProperties": {"type": "array", "items": STRING},
                    }
                }
            ),
        }
    ),
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


RESPONSES: dict[str, Any] = {
    "BadRequest": _error(
        "A query parameter or path id is invalid, unknown or repeated; or the body is not JSON."
    ),
    "Unauthorized": {
        **_error("The bearer token is missing or wrong."),
        "headers": {"WWW-Authenticate": {"schema": STRING}},
    },
    "NotFound": _error("No such resource."),
    "UnsupportedMediaType": _error("The body is not application/json."),
    "TooLarge": _error(f"The body is larger than {MAX_BODY_BYTES // 1024} KiB."),
    "Unprocessable": _error("The JSON body has unknown or missing fields or an invalid value."),
    "Conflict": _error("Nobody is free to take the call."),
    "InboxConflict": _error("The item is handled already, or nobody is free to take the call."),
    "Gone": _error("The voicemail message was deleted meanwhile."),
    "NotWav": _error("The message was not recorded as WAV (voicemail.conf `format = wav`)."),
    "SpoolMissing": _error("asterisk.voicemail_spool is not a folder this host can read."),
    "UnknownHost": _error(
        "The Host header names no address or name of this server (http.listen, http.names, the host "
        "of http.public_url; loopback names on loopback): a DNS rebinding or a misdirected request."
    ),
}


def _errors(*names: str) -> dict[str, Any]:
    codes = {
        "BadRequest": "400",
        "Unauthorized": "401",
        "NotFound": "404",
        "Conflict": "409",
        "InboxConflict": "409",
        "Gone": "410",
        "TooLarge": "413",
        "UnsupportedMediaType": "415",
        "Unprocessable": "422",
        "SpoolMissing": "503",
        "UnknownHost": "421",
    }
    return {
        codes[name]: {"$ref": f"#/components/responses/{name}"}
        for name in ("Unauthorized", "UnknownHost", *names)
    }


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


USER = _path_param("name", NAME, "A user name from the configuration.")
LINE = _path_param("name", NAME, "A line name from the configuration.")
NUMBER = _path_param(
    "number", {"type": "string", "pattern": f"^{E164}$"}, "An E.164 number; send '+' as is or as %2B."
)
BODY_ERRORS = ("BadRequest", "NotFound", "TooLarge", "UnsupportedMediaType", "Unprocessable")
CALL_ID_PARAMETER = _path_param(
    "call_id", {"type": "string", "pattern": f"^{CALL_ID}$"}, "The call's id (its first channel's id)."
)
INBOX_CALL = _path_param(
    "call_id", {"type": "string", "pattern": f"^{CALL_ID}$"}, "The id of any call of the item."
)


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "schema": schema}
    return parameter | ({"description": description} if description else {})


DAY = {"type": "string", "format": "date"}
FLAG = {"type": "string", "enum": ["true", "false"], "default": "false"}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness: 200 while the process runs. Needs no token.",
            "security": [],
            "responses": {
                "200": _json(_ref("Health"), "Alive."),
                "400": {"$ref": "#/components/responses/BadRequest"},
            },
        }
    },
    "/readyz": {
        "get": {
            "operationId": "readyz",
            "summary": "Readiness: ARI connected, configuration loaded and the store writable.",
            "responses": {
                "200": _json(_ref("Readiness"), "Ready."),
                "503": _json(_ref("Readiness"), "Not ready; `checks` tells which check failed."),
                **_errors("BadRequest"),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics (text exposition format 0.0.4).",
            "responses": {
                "200": {
                    "description": "The metrics.",
                    "content": {"text/plain": {"schema": STRING}},
                },
                **_errors("BadRequest"),
            },
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "responses": {"200": _json({"type": "object"}, "The OpenAPI document."), **_errors("BadRequest")},
        }
    },
    "/api/v1/calls": {
        "get": {
            "operationId": "listCalls",
            "summary": "Call records, newest first.",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                },
                {
                    "name": "since",
                    "in": "query",
                    "description": "Only calls started at or after this ISO 8601 date-time; "
                    "without an offset it is UTC.",
                    "schema": {"type": "string", "format": "date-time"},
                },
                _query(
                    "until",
                    {"type": "string", "format": "date-time"},
                    "Only calls started before this ISO 8601 date-time; without an offset it is UTC.",
                ),
                {"name": "line", "in": "query", "schema": NAME},
                {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": list(OUTCOMES)}},
                _query(
                    "format",
                    {"type": "string", "enum": ["json", "csv"], "default": "json"},
                    f"csv: one row per call with a header row (the report's calls, for a spreadsheet); "
                    f"`limit` then defaults to {MAX_LIMIT}. More: ask again with `until` set to the "
                    "oldest row's started_at.",
                ),
            ],
            "responses": {
                "200": {
                    "description": "The calls, each with its texts and webhooks.",
                    "content": {
                        "application/json": {"schema": _ref("CallList")},
                        "text/csv": {"schema": STRING},
                    },
                },
                **_errors("BadRequest"),
            },
        }
    },
    "/api/v1/calls/{call_id}": {
        "get": {
            "operationId": "getCall",
            "summary": "One call record.",
            "parameters": [CALL_ID_PARAMETER],
            "responses": {"200": _json(_ref("Call"), "The call."), **_errors("BadRequest", "NotFound")},
        }
    },
    "/api/v1/calls/{call_id}/voicemail": {
        "get": {
            "operationId": "getVoicemail",
            "summary": "The voicemail message the call left, as WAV (read from asterisk.voicemail_spool).",
            "parameters": [CALL_ID_PARAMETER],
            "responses": {
                "200": {
                    "description": "The message.",
                    "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
                },
                **_errors("BadRequest", "NotFound", "Gone", "SpoolMissing"),
                "415": {"$ref": "#/components/responses/NotWav"},
            },
        }
    },
    "/api/v1/inbox": {
        "get": {
            "operationId": "listInbox",
            "summary": "The missed-call inbox: one item per caller and line, newest first.",
            "description": "Items whose calls were all short abandons (or all ignored) are left out unless "
            "asked for.",
            "parameters": [
                _query("state", {"type": "string", "enum": [s.value for s in InboxState], "default": "open"}),
                _query("line", NAME),
                _query(
                    "limit",
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_INBOX_LIMIT,
                        "default": DEFAULT_INBOX_LIMIT,
                    },
                ),
                _query("outcome", {"type": "string", "enum": list(OUTCOMES)}, "Of the latest call."),
                _query("reason", {"type": "string", "enum": list(REASONS)}, "Of the latest call."),
                _query("number", {"type": "string", "pattern": "^[0-9+*#]{1,32}$"}, "Part of the number."),
                _query("from", DAY, "Latest missed call on or after this day (UTC)."),
                _query("to", DAY, "Latest missed call on or before this day (UTC)."),
                _query("show_short_abandons", FLAG),
                _query("show_ignored", FLAG),
            ],
            "responses": {"200": _json(_ref("InboxList"), "The items."), **_errors("BadRequest", "NotFound")},
        }
    },
    "/api/v1/inbox/{call_id}": {
        "parameters": [INBOX_CALL],
        "get": {
            "operationId": "getInboxItem",
            "summary": "The inbox item one of whose calls this is.",
            "responses": {"200": _json(_ref("InboxItem"), "The item."), **_errors("BadRequest", "NotFound")},
        },
    },
    "/api/v1/inbox/{call_id}/handled": {
        "parameters": [INBOX_CALL],
        "post": {
            "operationId": "markInboxHandled",
            "summary": "Mark the item handled by a user, with an optional note.",
            "requestBody": _body("HandledRequest"),
            "responses": {
                "200": _json(_ref("InboxItem"), "The item now."),
                **_errors(*BODY_ERRORS, "InboxConflict"),
            },
        },
    },
    "/api/v1/inbox/{call_id}/callback": {
        "parameters": [INBOX_CALL],
        "post": {
            "operationId": "callBackInboxItem",
            "summary": "Ring the user, then the caller from the line they called; if they answer, the item "
            "is handled.",
            "requestBody": _body("CallbackRequest"),
            "responses": {
                "202": _json(_ref("Callback"), "The outbound call's id (its record appears under /calls)."),
                **_errors(*BODY_ERRORS, "InboxConflict"),
            },
        },
    },
    "/api/v1/reports/daily": {
        "get": {
            "operationId": "dailyReport",
            "summary": "Per line and day (in the line's time zone): calls by verdict, callbacks, voicemails.",
            "parameters": [
                _query("line", NAME),
                _query("from", DAY, "First day (default: 6 days before `to`)."),
                _query("to", DAY, "Last day (default: today, UTC)."),
            ],
            "responses": {
                "200": _json(
                    _ref("DailyReport"), "One row per line and day that had calls, by line and day."
                ),
                **_errors("BadRequest", "NotFound"),
            },
        }
    },
    "/api/v1/users": {
        "get": {
            "operationId": "listUsers",
            "summary": "Users and their presence.",
            "responses": {"200": _json(_ref("UserList"), "The users."), **_errors("BadRequest")},
        }
    },
    "/api/v1/users/{name}/presence": {
        "parameters": [USER],
        "get": {
            "operationId": "getPresence",
            "summary": "A user's presence.",
            "responses": {
                "200": _json(_ref("User"), "The user's presence."),
                **_errors("BadRequest", "NotFound"),
            },
        },
        "put": {
            "operationId": "setPresence",
            "summary": "Set a user available or away; the answer is the resulting presence "
            "(busy while on a call).",
            "requestBody": _body("PresenceUpdate"),
            "responses": {"200": _json(_ref("User"), "The user's presence now."), **_errors(*BODY_ERRORS)},
        },
    },
    "/api/v1/lines": {
        "get": {
            "operationId": "listLines",
            "summary": "Lines and their override (open, closed, or auto: by business hours).",
            "responses": {"200": _json(_ref("LineList"), "The lines."), **_errors("BadRequest")},
        }
    },
    "/api/v1/lines/{name}/override": {
        "parameters": [LINE],
        "put": {
            "operationId": "setLineOverride",
            "summary": "Force a line open or closed, or back to its business hours (auto).",
            "requestBody": _body("LineOverrideUpdate"),
            "responses": {"200": _json(_ref("Line"), "The line now."), **_errors(*BODY_ERRORS)},
        },
    },
    "/api/v1/dialer/calls": {
        "post": {
            "operationId": "dialContact",
            "summary": "Progressive dialer: ring a free user, then call the contact and bridge them.",
            "requestBody": _body("DialerRequest"),
            "responses": {
                "202": _json(_ref("DialerCall"), "The outbound call's id (its record appears under /calls)."),
                **_errors(*BODY_ERRORS, "Conflict"),
            },
        }
    },
    "/api/v1/sms/{provider}/inbound": {
        "parameters": [_path_param("provider", NAME, "An SMS provider name from the configuration.")],
        "post": {
            "operationId": "inboundSms",
            "summary": "The provider's inbound-message webhook: STOP opts the sender out, START back in.",
            "description": "Signed by the provider, not with the bearer token. Twilio: X-Twilio-Signature "
            "over http.public_url (or the URL this server sees) and the form (From, Body, MessageSid). "
            "The webhook provider: X-Callkeeper-Timestamp (Unix seconds, within 300 s of the server's "
            "clock) and X-Callkeeper-Signature, `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<raw "
            "body>` with the provider's secret; the body is JSON {from, body}. Each message is taken "
            "once: a MessageSid or signature seen before is refused (409). Opt-out words (the whole "
            "message or its first word): STOP, STOPALL, STOP ALL, UNSUBSCRIBE, CANCEL, END, QUIT, "
            "OPTOUT, REVOKE; opt-in (the whole message): START, UNSTOP, YES; any case, surrounding "
            "spaces and punctuation ignored, full-width letters folded.",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "200": {
                    "description": "Taken (TwiML for Twilio, JSON otherwise).",
                    "content": {
                        "text/xml": {"schema": STRING},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "400": {"$ref": "#/components/responses/BadRequest"},
                "403": _error(
                    "The signature does not match, the timestamp is too far off, or the message is "
                    "incomplete."
                ),
                "404": {"$ref": "#/components/responses/NotFound"},
                "409": _error("This message was taken before (a replay)."),
                "413": {"$ref": "#/components/responses/TooLarge"},
                "421": {"$ref": "#/components/responses/UnknownHost"},
            },
        },
    },
    "/api/v1/queues": {
        "get": {
            "operationId": "listQueues",
            "summary": "Callers waiting in the ring groups' queues.",
            "responses": {"200": _json(_ref("Queues"), "The queues."), **_errors("BadRequest")},
        }
    },
    "/api/v1/opt-outs": {
        "get": {
            "operationId": "listOptOuts",
            "summary": "Numbers that receive no follow-up texts.",
            "responses": {
                "200": _json(_ref("OptOutList"), "The opted-out numbers."),
                **_errors("BadRequest"),
            },
        }
    },
    "/api/v1/opt-outs/{number}": {
        "parameters": [NUMBER],
        "get": {
            "operationId": "getOptOut",
            "summary": "Whether a number is opted out of follow-up texts.",
            "responses": {"200": _json(_ref("OptOutState"), "The number's state."), **_errors("BadRequest")},
        },
        "put": {
            "operationId": "optOut",
            "summary": "Opt a number out of follow-up texts (source `api`).",
            "responses": {
                "200": _json(_ref("OptOutState"), "The number's state now."),
                **_errors("BadRequest"),
            },
        },
        "delete": {
            "operationId": "optIn",
            "summary": "Allow follow-up texts to a number again.",
            "responses": {
                "200": _json(_ref("OptOutState"), "The number's state now."),
                **_errors("BadRequest"),
            },
        },
    },
}


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callkeeper",
            "version": __version__,
            "description": "Call history, presence, line overrides, queues and text opt-outs of a callkeeper "
            'daemon. Errors are JSON `{"error": ..., "detail": ...}`.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "http.token of the configuration; needed when one is set.",
                }
            },
            "schemas": SCHEMAS,
            "responses": RESPONSES,
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy: callers may change it."""
    return copy.deepcopy(_document())
