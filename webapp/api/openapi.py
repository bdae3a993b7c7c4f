"""The OpenAPI 3.1 document of the API, written by hand and served at /api/v1/openapi.json.

tests/webapp/api/test_openapi.py keeps it true: every route is in it, and schemathesis
calls every operation with generated requests and checks the answers against it."""

from __future__ import annotations

from flask import jsonify

from engine.preview import SKIP_REASONS
from webapp.api import bp
from webapp.api.auth import SCOPE_NEEDED_FOR, scope_needed
from webapp.api.common import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT
from webapp.api.leads import BULK_LIMIT
from webapp.models import LeadStatus, Outcome, TransferResult
from webapp.services.api_access import OAUTH_TOKEN_SECONDS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, **extra) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _errors(*statuses: int) -> dict:
    return {
        str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"} for status in statuses
    }


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


ERRORS = {
    400: ("BadRequest", "The body is not JSON."),
    401: ("Unauthorized", "No token, or a token that is wrong, revoked or expired."),
    403: (
        "InsufficientScope",
        "The token lacks the scope this operation needs (`code`: insufficient_scope).",
    ),
    404: (
        "NotFound",
        "No such object in the tenant (another tenant's object is answered the same).",
    ),
    409: ("Conflict", "The object's state does not allow this."),
    413: ("TooLarge", "The body is larger than 8 MiB."),
    422: ("Invalid", "Something in the request is not valid; `field` names it."),
}

TIME = {"type": "string", "format": "date-time"}
STRING_OR_NULL = {"type": ["string", "null"]}
INTEGER_OR_NULL = {"type": ["integer", "null"]}
TIME_OR_NULL = _nullable(TIME)
#: What the operator recorded on an attempt (the console's Finish), as an attempt and a lead's
#: `last_result` name it; null until then.
RESULT_FIELDS = {
    "result": {
        **STRING_OR_NULL,
        "description": "The operator's result: one of the campaign's results, as written there.",
    },
    "comment": STRING_OR_NULL,
    "call_back_at": {
        **TIME_OR_NULL,
        "description": "When the operator asked the customer to be called back.",
    },
    "result_action": {
        **_nullable({"enum": ["do_not_call", "close", "retry"]}),
        "description": "What the result did: do_not_call (the number is on the do-not-call "
        "list, the lead closed), close (no more calls), retry (due again after the result's "
        "minutes); null: nothing.",
    },
    "result_at": {**TIME_OR_NULL, "description": "When the operator pressed Finish."},
}

CALL_AT = {
    "type": ["string", "null"],
    "format": "date-time",
    "description": "A callback promised to the customer (e.g. the slot chosen on the CRM's web "
    "form), ISO 8601, UTC when it names no offset. The lead is dialed at this time, before new "
    "leads and retries, even when it has used its campaign's attempts; that call counts as an "
    "attempt. In the past or more than a year ahead: 422 with `field` call_at and the reason.",
    "examples": ["2026-05-01T18:00:00+03:00"],
}
LEAD_INPUT = {
    "phone": {
        "type": "string",
        "description": "The customer's number: E.164 (+12125551234) or as written in the "
        "tenant's default phone region. Stored as E.164.",
        "examples": ["+12125551234"],
    },
    "name": {"type": "string", "maxLength": 200, "description": "The customer's name."},
    "external_id": {
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": 128,
        "description": "The lead's id in the CRM; a second lead with the same id is not "
        "created (the first is answered).",
    },
    "card": {
        "type": ["object", "null"],
        "description": "Free fields from the CRM, shown on the operator's card (at most 64 KiB).",
    },
    "priority": {
        "type": "integer",
        "minimum": -1000,
        "maximum": 1000,
        "default": 0,
        "description": "Higher is called first.",
    },
    "time_zone": {
        "type": ["string", "null"],
        "description": "IANA zone of the customer (calling hours); else from the number "
        "when it tells, else the tenant's.",
    },
    "campaign": {
        "type": ["integer", "string", "null"],
        "description": "The campaign the lead goes to: its id (a number) or its key (e.g. "
        "`tv-offer`, Campaigns page). Absent or null: the tenant's default campaign. One the "
        "tenant does not have, or an archived one: 422 with `field` campaign, nothing stored. "
        "A lead already known by its external_id stays in its own campaign.",
        "examples": ["tv-offer", 3],
    },
    "call_at": CALL_AT,
}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": _ref("ErrorDetail")},
    },
    "ErrorDetail": {
        "type": "object",
        "required": ["code", "message", "field"],
        "properties": {
            "code": {
                "type": "string",
                "description": "Stable: bad_request, unauthorized, insufficient_scope, "
                "forbidden, not_found, method_not_allowed, conflict, lead_finished, lead_dialing, "
                "too_large, "
                "invalid, internal_error.",
            },
            "message": {"type": "string", "description": "For people."},
            "field": {**STRING_OR_NULL, "description": "The field (or parameter) at fault."},
        },
    },
    "CampaignRef": {
        "type": "object",
        "required": ["id", "key"],
        "description": "A campaign as a lead or an attempt names it.",
        "properties": {
            "id": {"type": "integer"},
            "key": {"type": "string", "description": "The tenant's own name for it."},
        },
    },
    "NewLead": {
        "type": "object",
        "required": ["phone"],
        "additionalProperties": False,
        "properties": LEAD_INPUT,
    },
    "Lead": {
        "type": "object",
        "required": [
            "id",
            "campaign",
            "phone",
            "name",
            "external_id",
            "card",
            "priority",
            "time_zone",
            "status",
            "attempts",
            "last_outcome",
            "next_attempt_at",
            "call_at",
            "created_at",
            "last_skip",
            "last_result",
        ],
        "properties": {
            "id": {"type": "integer"},
            "campaign": _ref("CampaignRef"),
            "phone": {"type": "string", "description": "E.164."},
            "name": {"type": "string"},
            "external_id": STRING_OR_NULL,
            "card": {"type": "object"},
            "priority": {"type": "integer"},
            "time_zone": STRING_OR_NULL,
            "status": {
                "enum": [status.value for status in LeadStatus],
                "description": "new: never dialed; dialing: an attempt is in progress; retry: "
                "waits for next_attempt_at; reached: answered and given to an operator; "
                "exhausted: the attempt limit is hit; cancelled; do_not_call: its number is on "
                "the do-not-call list.",
            },
            "attempts": {"type": "integer", "description": "Attempts made so far."},
            "last_outcome": _nullable({"enum": [outcome.value for outcome in Outcome]}),
            "next_attempt_at": TIME_OR_NULL,
            "call_at": {
                **TIME_OR_NULL,
                "description": "The callback promised to the customer, until that call is made.",
            },
            "created_at": TIME,
            "last_skip": {
                **_nullable(_ref("LastSkip")),
                "description": "Preview dialing: why an operator last skipped the lead instead "
                "of calling it, and when; null: never skipped. A skip is no attempt.",
            },
            "last_result": {
                **_nullable(_ref("LastResult")),
                "description": "The operator's latest result on this lead; null: none yet.",
            },
        },
    },
    "LastSkip": {
        "type": "object",
        "required": ["reason", "at"],
        "properties": {
            "reason": {
                "enum": list(SKIP_REASONS),
                "description": "not_now: not a good moment; wrong_data: the lead's data is "
                "wrong; other.",
            },
            "at": TIME,
        },
    },
    "LastResult": {
        "type": "object",
        "required": ["attempt_id", "operator_id", *RESULT_FIELDS],
        "properties": {
            "attempt_id": {"type": "integer", "description": "The attempt it was recorded on."},
            "operator_id": INTEGER_OR_NULL,
            **RESULT_FIELDS,
        },
    },
    "LeadChange": {
        "type": "object",
        "required": ["call_at"],
        "additionalProperties": False,
        "properties": {
            "call_at": {
                **CALL_AT,
                "description": CALL_AT["description"] + " null: the promise "
                "is taken back (the lead is dialed as its attempts and retry times say).",
            },
        },
    },
    "LeadPage": {
        "type": "object",
        "required": ["leads", "next_cursor"],
        "properties": {
            "leads": {"type": "array", "items": _ref("Lead")},
            "next_cursor": {
                **STRING_OR_NULL,
                "description": "Pass as `cursor` for the next page; null on the last.",
            },
        },
    },
    "BulkRequest": {
        "type": "object",
        "required": ["leads"],
        "additionalProperties": False,
        "properties": {
            "leads": {
                "type": "array",
                "minItems": 1,
                "maxItems": BULK_LIMIT,
                "items": _ref("NewLead"),
            }
        },
    },
    "BulkResult": {
        "type": "object",
        "required": ["index", "status"],
        "properties": {
            "index": {"type": "integer", "description": "The lead's place in the request, from 0."},
            "status": {"enum": ["created", "existing", "failed"]},
            "lead": _ref("Lead"),
            "error": _ref("ErrorDetail"),
        },
    },
    "BulkResponse": {
        "type": "object",
        "required": ["created", "existing", "failed", "results"],
        "properties": {
            "created": {"type": "integer"},
            "existing": {"type": "integer"},
            "failed": {"type": "integer"},
            "results": {"type": "array", "items": _ref("BulkResult")},
        },
    },
    "Attempt": {
        "type": "object",
        "required": ["id", "lead_id", "campaign", "outcome", "invite_at"],
        "properties": {
            "id": {"type": "integer"},
            "lead_id": {"type": "integer"},
            "campaign": {
                **_ref("CampaignRef"),
                "description": "The campaign the lead was in when this call was made.",
            },
            "operator_id": INTEGER_OR_NULL,
            "dialed_uri": {"type": "string"},
            "outcome": {
                **_nullable({"enum": [outcome.value for outcome in Outcome]}),
                "description": "null while the attempt is in progress.",
            },
            "detail": STRING_OR_NULL,
            "sip_code": INTEGER_OR_NULL,
            "sip_reason": STRING_OR_NULL,
            "invite_at": TIME,
            "ringing_at": TIME_OR_NULL,
            "answer_at": TIME_OR_NULL,
            "refer_at": TIME_OR_NULL,
            "refer_to": STRING_OR_NULL,
            "transfer_result": _nullable({"enum": [result.value for result in TransferResult]}),
            "transfer_result_at": TIME_OR_NULL,
            "transfer_sip_code": INTEGER_OR_NULL,
            "transfer_sip_reason": STRING_OR_NULL,
            "end_at": TIME_OR_NULL,
            **RESULT_FIELDS,
        },
    },
    "WebhookEvent": {
        "type": "object",
        "required": ["event", "v", "attempt"],
        "properties": {
            "event": {
                "enum": ["attempt.finished", "attempt.result", "test"],
                "description": "attempt.finished: the call ended (no result yet); "
                "attempt.result: the operator pressed Finish; test: Send a test event.",
            },
            "v": {"const": 1},
            "attempt": {
                "allOf": [_ref("Attempt")],
                "type": "object",
                "required": ["lead_external_id", "phone"],
                "properties": {
                    "lead_external_id": STRING_OR_NULL,
                    "phone": {"type": "string", "description": "E.164."},
                },
            },
        },
    },
    "AttemptList": {
        "type": "object",
        "required": ["attempts"],
        "properties": {"attempts": {"type": "array", "items": _ref("Attempt")}},
    },
    "NewDoNotCall": {
        "type": "object",
        "required": ["number"],
        "additionalProperties": False,
        "properties": {
            "number": {
                "type": "string",
                "description": "A number, or a prefix: + and the first digits, then * (+7916*).",
                "examples": ["+12125551234", "+7916*"],
            },
            "note": {"type": "string", "maxLength": 200},
        },
    },
    "DoNotCallEntry": {
        "type": "object",
        "required": ["id", "number", "prefix", "note", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "number": {
                "type": "string",
                "description": "E.164, or the start of numbers when `prefix`.",
            },
            "prefix": {"type": "boolean"},
            "note": {"type": "string"},
            "created_at": TIME,
        },
    },
    "DoNotCallPage": {
        "type": "object",
        "required": ["entries", "next_cursor"],
        "properties": {
            "entries": {"type": "array", "items": _ref("DoNotCallEntry")},
            "next_cursor": STRING_OR_NULL,
        },
    },
    "OAuthToken": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
            "scope": {"type": "string", "description": "The token's scopes, space-separated."},
        },
    },
    "OAuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    },
}

LEAD_ID = {
    "name": "lead_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}
PAGE = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {
        "name": "cursor",
        "in": "query",
        "description": "`next_cursor` of the previous page.",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
    },
]


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "description": description, "schema": schema}


LEAD_FILTERS = [
    _query(
        "campaign",
        {"type": "string"},
        "Only leads of this campaign, named by its id or its key (archived ones too); one the "
        "tenant does not have: 422.",
    ),
    _query(
        "status", {"enum": [status.value for status in LeadStatus]}, "Only leads with this status."
    ),
    _query("phone", {"type": "string"}, "Only leads with this number (read like a lead's phone)."),
    _query("external_id", {"type": "string"}, "The lead with this CRM id."),
    _query("created_from", TIME, "Created at or after."),
    _query("created_to", TIME, "Created before."),
    _query("next_attempt_from", TIME, "Next attempt at or after."),
    _query("next_attempt_to", TIME, "Next attempt before."),
    *PAGE,
]

PATHS = {
    "/oauth/token": {
        "post": {
            "operationId": "issueToken",
            "summary": "An access token for an API client (OAuth 2 client credentials)",
            "description": "Authenticate with HTTP Basic (client_id, client_secret) or send them "
            f"in the form. The token lives {OAUTH_TOKEN_SECONDS // 60} minutes. It has the "
            "client's scopes, or those of them asked for in `scope` (space-separated).",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["grant_type"],
                            "properties": {
                                "grant_type": {"const": "client_credentials"},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string"},
                                "scope": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(_ref("OAuthToken"), "A bearer token."),
                "400": _json(
                    _ref("OAuthError"),
                    "The request is not a valid token request (`invalid_scope`: a scope that "
                    "does not exist or the client does not have).",
                ),
                "401": _json(_ref("OAuthError"), "The client id or secret is wrong."),
            },
        }
    },
    "/leads": {
        "post": {
            "operationId": "createLead",
            "summary": "Create a lead",
            "description": "Idempotent on `external_id`: sending a lead again answers the lead "
            "already created (200) instead of creating another (201).",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewLead")}},
            },
            "responses": {
                "201": _json(
                    _ref("Lead"), "Created.", headers={"Location": {"schema": {"type": "string"}}}
                ),
                "200": _json(_ref("Lead"), "A lead with this external_id exists; here it is."),
                **_errors(400, 401, 403, 413, 422),
            },
        },
        "get": {
            "operationId": "listLeads",
            "summary": "List leads, newest first",
            "parameters": LEAD_FILTERS,
            "responses": {
                "200": _json(_ref("LeadPage"), "A page of leads."),
                **_errors(401, 403, 422),
            },
        },
    },
    "/leads/bulk": {
        "post": {
            "operationId": "createLeads",
            "summary": f"Create up to {BULK_LIMIT} leads at once",
            "description": "Each lead is answered at its index: created, existing (same "
            "external_id) or failed with the error. Good leads are created even when others fail.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("BulkRequest")}},
            },
            "responses": {
                "200": _json(_ref("BulkResponse"), "One result per lead."),
                **_errors(400, 401, 403, 413, 422),
            },
        }
    },
    "/leads/{lead_id}": {
        "get": {
            "operationId": "getLead",
            "summary": "A lead",
            "parameters": [LEAD_ID],
            "responses": {"200": _json(_ref("Lead"), "The lead."), **_errors(401, 403, 404)},
        },
        "patch": {
            "operationId": "updateLead",
            "summary": "Promise a callback on a lead (or take it back)",
            "description": "Sets `call_at`: the lead is dialed at that time, whatever its status "
            "(reached, exhausted and cancelled leads too) and attempts. A lead on the do-not-call "
            "list: 422; a lead in a call now: 409 (`lead_dialing`), try again after the call.",
            "parameters": [LEAD_ID],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("LeadChange")}},
            },
            "responses": {
                "200": _json(_ref("Lead"), "The lead, with its callback."),
                **_errors(400, 401, 403, 404, 409, 422),
            },
        },
    },
    "/leads/{lead_id}/cancel": {
        "post": {
            "operationId": "cancelLead",
            "summary": "Stop calling a lead",
            "description": "Idempotent. A lead already reached or exhausted is not changed (409).",
            "parameters": [LEAD_ID],
            "responses": {
                "200": _json(_ref("Lead"), "The lead, cancelled."),
                **_errors(401, 403, 404, 409),
            },
        }
    },
    "/leads/{lead_id}/attempts": {
        "get": {
            "operationId": "listAttempts",
            "summary": "The lead's attempts (calls), oldest first",
            "parameters": [LEAD_ID],
            "responses": {
                "200": _json(_ref("AttemptList"), "The attempts."),
                **_errors(401, 403, 404),
            },
        }
    },
    "/do-not-call": {
        "get": {
            "operationId": "listDoNotCall",
            "summary": "The do-not-call list, newest first",
            "parameters": PAGE,
            "responses": {
                "200": _json(_ref("DoNotCallPage"), "A page of entries."),
                **_errors(401, 403, 422),
            },
        },
        "post": {
            "operationId": "addDoNotCall",
            "summary": "Never call a number (or numbers starting with a prefix)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewDoNotCall")}},
            },
            "responses": {
                "201": _json(_ref("DoNotCallEntry"), "Added."),
                "200": _json(_ref("DoNotCallEntry"), "Already on the list."),
                **_errors(400, 401, 403, 413, 422),
            },
        },
    },
    "/do-not-call/{entry_id}": {
        "delete": {
            "operationId": "removeDoNotCall",
            "summary": "Take an entry off the do-not-call list",
            "parameters": [{**LEAD_ID, "name": "entry_id"}],
            "responses": {"204": {"description": "Removed."}, **_errors(401, 403, 404)},
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3.1.", "content": {"application/json": {}}}
            },
        }
    },
}


def _scoped(paths: dict) -> dict:
    """Each operation that takes a bearer names the scope it needs (webapp/api/auth.py)."""
    for item in paths.values():
        for method, operation in item.items():
            if "security" not in operation:  # (the public ones say [])
                scope = scope_needed(method)
                operation["security"] = [{"apiToken": [scope]}, {"oauth2": [scope]}]
    return paths


SCOPES = {scope: f"For {words}." for scope, words in SCOPE_NEEDED_FOR.items()}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "AutoCall Cloud API",
        "version": "1.0.0",
        "description": "Leads and the do-not-call list of one tenant. Authenticate with an API "
        "token (Settings → API access) or an OAuth 2 client's token: `Authorization: Bearer "
        "act_...`. A token has scopes: `read` for every GET, `leads` for every other method "
        "(403 `insufficient_scope` without it); an admin's token may expire (401 saying so). "
        'Errors are `{"error": {"code", "message", "field"}}`.',
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"apiToken": []}, {"oauth2": []}],
    "paths": _scoped(PATHS),
    "webhooks": {
        event: {
            "post": {
                "summary": summary,
                "description": "Signed: `X-AutoCall-Signature: t=<unix time>,v1=<hex "
                'HMAC-SHA256 of "<t>.<body>" keyed with the endpoint\'s secret>`; '
                "`X-AutoCall-Delivery` is the same on every try. Answer any 2xx; anything "
                "else is tried again after 1 min, 5 min, 30 min, 2 h and 6 h.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("WebhookEvent")}},
                },
                "responses": {"200": {"description": "Received (any 2xx)."}},
            }
        }
        for event, summary in (
            ("attempt.finished", "An attempt's call ended (before the operator's result)"),
            ("attempt.result", "The operator recorded the attempt's result (Finish)"),
        )
    },
    "components": {
        "securitySchemes": {
            "apiToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token, act_..., with the scopes read and/or leads.",
            },
            "oauth2": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {"tokenUrl": "/api/v1/oauth/token", "scopes": SCOPES}
                },
            },
        },
        "schemas": SCHEMAS,
        "responses": {
            name: _json(_ref("Error"), description) for name, description in ERRORS.values()
        },
    },
}


@bp.get("/openapi.json")
def openapi():
    return jsonify(DOCUMENT)
