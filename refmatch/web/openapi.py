"""The OpenAPI 3.1 document of /api/v1, as Python data.

Schemas are JSON Schema 2020-12 (what 3.1 uses), strict about extra properties, so a
response that drifts from the document fails the tests that validate every response.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from refmatch.domain import vocabulary
from refmatch.domain.models import PURPOSES
from refmatch.risk import LEVELS

STATES = ["requested", "approved", "declined", "scheduled", "completed", "cancelled"]
JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def obj(properties: dict[str, Any], required: list[str] | None = None, *, strict: bool = True) -> dict[str, Any]:
    """An object schema; ``required`` defaults to every property (responses always carry them all)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = list(properties) if required is None else required
    if strict:
        schema["additionalProperties"] = False
    return schema


STR, INT, NUM, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
STRS = {"type": "array", "items": STR}
DATE = nullable("string", format="date")
REF_TYPES = {"type": "string", "enum": list(vocabulary.REFERENCE_TYPES)}


def page_of(item: str) -> dict[str, Any]:
    return obj(
        {
            "items": {"type": "array", "items": ref(item)},
            "total": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "offset": {"type": "integer", "minimum": 0},
        }
    )


_ACCOUNT_FIELDS: dict[str, Any] = {
    "external_id": {**STR, "description": "the CRM's id; the API's account {id}"},
    "name": STR,
    "industry": nullable("string"),
    "employees": nullable("integer", minimum=0),
    "country": nullable("string"),
    "region": nullable("string"),
    "products": STRS,
    "stage": {**STR, "description": "one of the configured journey stages"},
    "stage_since": DATE,
    "health": nullable("number", minimum=0, maximum=100),
    "arr": nullable("number", minimum=0),
    "renewal_date": DATE,
    "owner": nullable("string"),
    "profile": nullable("string"),
    "do_not_match": STRS,
}
_CONTACT = obj({"name": nullable("string"), "title": nullable("string"), "email": nullable("string")})
_ERROR_DETAIL = {
    "type": "object",
    "description": "what to fix; ``field`` names the input field when there is one",
    "properties": {"field": nullable("string"), "message": STR},
}

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {
            "error": obj(
                {
                    "code": {**STR, "description": "stable, machine-readable: invalid_input, not_found, conflict..."},
                    "message": STR,
                    "details": {"type": "array", "items": _ERROR_DETAIL},
                }
            )
        }
    ),
    "Health": obj({"status": {"const": "ok"}}),
    "Ready": obj(
        {
            "status": {"enum": ["ready", "not_ready"]},
            "checks": obj({k: obj({"ok": BOOL, "message": STR}) for k in ("database", "indexes", "model")}),
        }
    ),
    "User": obj(
        {
            "id": INT,
            "username": STR,
            "role": {"enum": ["sales", "cs", "reference_manager", "admin"]},
            "display_name": nullable("string"),
            "is_manager": BOOL,
            "is_admin": BOOL,
        }
    ),
    "AccountSummary": obj(
        {
            **{k: _ACCOUNT_FIELDS[k] for k in ("external_id", "name", "industry", "employees", "country", "region")},
            "size_band": nullable("string"),
            "products": STRS,
            "stage": STR,
            "health": _ACCOUNT_FIELDS["health"],
            "open_needs": {"type": "integer", "minimum": 0},
            "is_advocate": {**BOOL, "description": "an advocate that consents"},
        }
    ),
    "AccountNeed": obj(
        {
            "id": INT,
            "need": STR,
            "status": {"enum": list(vocabulary.NEED_STATUSES)},
            "met_on": DATE,
            "product": nullable("string"),
        }
    ),  # fmt: skip
    "Account": obj(
        {
            **_ACCOUNT_FIELDS,
            "size_band": nullable("string"),
            "created_at": STR,
            "updated_at": STR,
            "needs": {"type": "array", "items": ref("AccountNeed")},
            "stage_history": {"type": "array", "items": obj({"stage": STR, "entered_on": nullable("string")})},
            "advocate": {"oneOf": [ref("Advocate"), {"type": "null"}]},
        }
    ),
    "AccountInput": obj(_ACCOUNT_FIELDS, ["external_id", "name", "stage"]),
    "AccountPatch": obj(_ACCOUNT_FIELDS, []),
    "Need": obj(
        {
            "id": INT,
            "account_external_id": STR,
            "account_name": STR,
            "need": STR,
            "status": {"enum": list(vocabulary.NEED_STATUSES)},
            "met_on": DATE,
            "product": nullable("string"),
        }
    ),
    "Contact": _CONTACT,
    "Advocate": obj(
        {
            "external_id": STR,
            "name": STR,
            "industry": nullable("string"),
            "stage": STR,
            "region": nullable("string"),
            "products": STRS,
            "health": nullable("number"),
            "consent": BOOL,
            "reference_types": {"type": "array", "items": REF_TYPES},
            "capacity": {"type": "integer", "minimum": 0, "description": "requests per quarter"},
            "used_this_quarter": {"type": "integer", "minimum": 0},
            "remaining": {"type": "integer", "minimum": 0},
            "blackout_until": DATE,
            "topics": nullable("string"),
            "contact": {"oneOf": [ref("Contact"), {"type": "null"}], "description": "reference managers only"},
        }
    ),
    "AdvocateLoad": obj(
        {
            "external_id": STR,
            "name": STR,
            "consent": BOOL,
            "reference_types": {"type": "array", "items": REF_TYPES},
            "capacity": {"type": "integer", "minimum": 0},
            "used_this_quarter": {"type": "integer", "minimum": 0},
            "remaining": {"type": "integer", "minimum": 0},
            "last_used_at": nullable("string"),
            "contact": {"oneOf": [ref("Contact"), {"type": "null"}]},
        }
    ),
    "Match": obj(
        {
            "rank": {"type": "integer", "minimum": 1},
            "advocate": obj({"external_id": STR, "name": STR}),
            "score": NUM,
            "components": {
                "type": "object",
                "additionalProperties": NUM,
                "description": "need_coverage, profile_similarity, industry, size, region, products, stage_gap, "
                "fatigue",
            },
            "reasons": STRS,
        }
    ),
    "MatchResult": obj(
        {
            "seeker": obj({"external_id": nullable("string"), "name": STR}),
            "purpose": {"enum": list(PURPOSES)},
            "matches": {"type": "array", "items": ref("Match")},
            "model": STR,
            "index": obj({"built_at": nullable("string"), "data_version": nullable("integer")}),
        }
    ),
    "AdhocMatch": obj(
        {
            "text": {**STR, "description": "free-text description of the prospect"},
            "needs": {**STRS, "description": "its open needs, one per item"},
            "name": STR,
            "industry": STR,
            "employees": {"type": "integer", "minimum": 0},
            "country": STR,
            "region": STR,
            "products": STRS,
            "stage": STR,
            "do_not_match": STRS,
            "purpose": {"enum": list(PURPOSES)},
            "k": {"type": "integer", "minimum": 1, "maximum": 100},
            "reference_type": REF_TYPES,
            "product": STR,
        },
        ["text"],
    ),
    "RequestCreate": obj(
        {
            "advocate_external_id": STR,
            "seeker_external_id": STR,
            "purpose": {"enum": list(PURPOSES)},
            "reference_type": REF_TYPES,
            "note": STR,
            "override_reason": {**STR, "description": "reference managers: go ahead despite capacity or consent"},
        },
        ["advocate_external_id"],
    ),
    "Transition": obj(
        {
            "to_status": {"enum": STATES},
            "note": STR,
            "scheduled_for": {**STR, "description": "ISO date or date-time; only with to_status scheduled"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5, "description": "only when completing"},
            "deal_outcome": {"enum": ["won", "lost", "open"], "description": "only when completing"},
            "influenced_arr": {"type": "number", "minimum": 0, "description": "only when completing"},
            "override_reason": STR,
        },
        ["to_status"],
    ),
    "Event": obj(
        {
            "at": STR,
            "actor": nullable("string"),
            "from_status": {"enum": [*STATES, None]},
            "to_status": {"enum": STATES},
            "note": nullable("string"),
        }
    ),
}
_REQUEST_FIELDS: dict[str, Any] = {
    "id": INT,
    "seeker": {"oneOf": [obj({"external_id": STR, "name": STR}), {"type": "null"}]},
    "advocate": obj({"external_id": STR, "name": STR}),
    "purpose": {"enum": list(PURPOSES)},
    "reference_type": {"oneOf": [REF_TYPES, {"type": "null"}]},
    "status": {"enum": STATES},
    "requested_by": nullable("string"),
    "requested_by_user_id": nullable("integer"),
    "note": nullable("string"),
    "override_reason": nullable("string"),
    "created_at": STR,
    "updated_at": STR,
    "approved_at": nullable("string"),
    "scheduled_for": nullable("string"),
    "completed_at": nullable("string"),
    "rating": nullable("integer"),
    "deal_outcome": nullable("string"),
    "influenced_arr": nullable("number"),
    "contact": {"oneOf": [ref("Contact"), {"type": "null"}], "description": "only when the viewer may see it"},
    "allowed_actions": {"type": "array", "items": {"enum": STATES}, "description": "what this viewer may do next"},
}
SCHEMAS["ReferenceRequestSummary"] = obj(_REQUEST_FIELDS)

# -- risk ---------------------------------------------------------------------------------
LEVEL = {"enum": list(LEVELS)}
SCHEMAS["RiskReason"] = obj(
    {
        "rule": {**STR, "description": "the rule that fired (see 'refmatch risk config')"},
        "trouble": {**STR, "description": "the trouble it names, in plain words: falling usage, champion left..."},
        "points": {**NUM, "description": "what it adds to the 0-100 score"},
        "text": {**STR, "description": "the evidence, in plain words"},
    }
)
_RISK_FIELDS: dict[str, Any] = {
    "external_id": STR,
    "name": STR,
    "stage": STR,
    "score": {"type": "number", "minimum": 0, "maximum": 100},
    "level": LEVEL,
    "at_risk": {**BOOL, "description": "at or above the configured at-risk level"},
    "churned": BOOL,
    "troubles": {**STRS, "description": "the troubles of the reasons, each once"},
    "reasons": {"type": "array", "items": ref("RiskReason")},
    "at_risk_since": {**nullable("string", format="date"), "description": "the start of the open risk episode"},
}
SCHEMAS["AtRiskAccount"] = obj(
    {
        **_RISK_FIELDS,
        "renewal_date": DATE,
        "matches": {
            "type": "array",
            "items": ref("Match"),
            "maxItems": 3,
            "description": "the top retention peers: the reasons name the troubles each overcame",
        },
    }
)
SCHEMAS["RiskEpisode"] = obj(
    {
        "external_id": STR,
        "name": STR,
        "entered_on": {**STR, "format": "date"},
        "ended_on": DATE,
        "outcome": {"enum": ["open", "resolved", "churned"]},
        "peak_score": NUM,
        "peak_level": LEVEL,
        "last_score": nullable("number"),
        "rules": STRS,
        "troubles": STRS,
        "reasons_at_entry": {"type": "array", "items": ref("RiskReason")},
    }
)
SCHEMAS["AccountRisk"] = obj(
    {
        **_RISK_FIELDS,
        "as_of": {**STR, "format": "date"},
        "rules": {
            "type": "array",
            "description": "every rule, fired or not, with the value it measured (null: not known)",
            "items": obj({"rule": STR, "trouble": STR, "points": NUM, "fired": BOOL, "measure": nullable("number")}),
        },
        "episodes": {"type": "array", "items": ref("RiskEpisode"), "description": "newest first"},
        "signals": {
            "type": "object",
            "description": "each signal kind's series as [date, value] pairs, oldest first",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "array",
                    "prefixItems": [{**STR, "format": "date"}, NUM],
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
        },
    }
)
SCHEMAS["AtRiskAccountPage"] = page_of("AtRiskAccount")
SCHEMAS["ReferenceRequest"] = obj({**_REQUEST_FIELDS, "events": {"type": "array", "items": ref("Event")}})
for _name in ("AccountSummary", "Need", "Advocate", "AdvocateLoad", "ReferenceRequestSummary"):
    SCHEMAS[f"{_name}Page"] = page_of(_name)

ERRORS = {
    "400": "invalid input: the details name each field to fix",
    "401": "not signed in, or an invalid or revoked bearer token",
    "403": "the user's role may not do this, or a browser request without its X-CSRF-Token",
    "404": "no such object",
    "409": "conflict: an illegal workflow transition, an advocate without consent or capacity, a duplicate",
    "413": "request body too large",
    "422": "the body is JSON but not an object",
    "500": "internal error (never a traceback)",
    "503": "the indexes are missing or stale: run 'refmatch index build'",
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def op(
    summary: str,
    ok: str | None,
    *,
    status: str = "200",
    errors: tuple[str, ...] = (),
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    public: bool = False,
    tag: str = "",
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if ok:
        responses[status] = _json(ref(ok), summary)
    codes = set(errors) | ({"500"} if public else {"401", "403", "500"})
    if body:
        codes |= {"400", "413", "422"}
    if params and any(p["in"] == "query" for p in params):
        codes.add("400")
    for code in sorted(codes):
        responses[code] = {"$ref": f"#/components/responses/E{code}"}
    out: dict[str, Any] = {"summary": summary, "operationId": "", "responses": responses}
    if tag:
        out["tags"] = [tag]
    if params:
        out["parameters"] = params
    if body:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    if public:
        out["security"] = []
    return out


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        p["description"] = description
    return p


def path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


PAGE_PARAMS = [
    query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
    query("offset", {"type": "integer", "minimum": 0, "default": 0}),
]
ACCOUNT_ID = path_param("id", STR, "the account's external id")
REQUEST_ID = path_param("id", INT, "the reference request's id")
Q = query("q", STR, "case-insensitive substring search")


def _paths() -> dict[str, Any]:
    return {
        "/healthz": {"get": op("The process is alive", "Health", public=True, tag="ops")},
        "/readyz": {
            "get": op(
                "Database open, indexes loaded and not stale, model loaded (503 with the checks if not)",
                "Ready",
                public=True,
                tag="ops",
            )
            | {"responses": {"200": _json(ref("Ready"), "ready"), "503": _json(ref("Ready"), "not ready")}}
        },
        "/api/v1/openapi.json": {
            "get": {
                **op("This document", None, tag="meta"),
                "responses": {
                    "200": {
                        "description": "the OpenAPI 3.1 document",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    },
                    "401": {"$ref": "#/components/responses/E401"},
                },
            }
        },  # fmt: skip
        "/api/v1/me": {"get": op("The signed-in user", "User", tag="meta")},
        "/api/v1/accounts": {
            "get": op(
                "Accounts: full-text search (q: name, id, industry, products, profile and needs), filters, pagination",
                "AccountSummaryPage",
                params=[
                    query("q", STR, "full-text search: every word (or a word it begins) in the account or its needs"),
                    query("industry", STR),
                    query("stage", STR),
                    query("region", STR),
                    query("products", STR, "accounts using any of these products (';' or ',' between them)"),
                    *PAGE_PARAMS,
                ],
                tag="accounts",
            ),
            "post": op(
                "Create an account (reference managers, admins); validated like an import row",
                "Account",
                status="201",
                body="AccountInput",
                errors=("409",),
                tag="accounts",
            ),
        },
        "/api/v1/accounts/{id}": {
            "parameters": [ACCOUNT_ID],
            "get": op("An account with its needs and advocate profile", "Account", errors=("404",), tag="accounts"),
            "patch": op(
                "Update an account (reference managers, admins): the fields given; null clears one",
                "Account",
                body="AccountPatch",
                errors=("404",),
                tag="accounts",
            ),
        },
        "/api/v1/accounts/{id}/matches": {
            "parameters": [ACCOUNT_ID],
            "get": op(
                "Matches for a stored seeker, with component scores and reasons",
                "MatchResult",
                params=[
                    query("purpose", {"enum": list(PURPOSES), "default": "reference"}),
                    query("k", {"type": "integer", "minimum": 1, "maximum": 100}),
                    query("reference_type", REF_TYPES),
                    query("product", STR, "the product the seeker needs a peer on"),
                ],
                errors=("404", "503"),
                tag="matching",
            ),
        },
        "/api/v1/accounts/{id}/risk": {
            "parameters": [ACCOUNT_ID],
            "get": op(
                "An account's risk: score, level, reasons, every rule's measure, its episodes and signals",
                "AccountRisk",
                params=[query("as_of", {**STR, "format": "date"}, "score as of this day (YYYY-MM-DD); default today")],
                errors=("404",),
                tag="risk",
            ),
        },
        "/api/v1/at-risk": {
            "get": op(
                "Accounts at a risk level or above, riskiest first, each with its top 3 retention peers",
                "AtRiskAccountPage",
                params=[
                    query("level", LEVEL, "the lowest level listed; default the configured at-risk level"),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
                    query("offset", {"type": "integer", "minimum": 0, "default": 0}),
                ],
                errors=("503",),
                tag="risk",
            )
        },
        "/api/v1/match": {
            "post": op(
                "Ad-hoc matching: a prospect described in free text, with optional needs and fields",
                "MatchResult",
                body="AdhocMatch",
                errors=("503",),
                tag="matching",
            )
        },
        "/api/v1/needs": {
            "get": op(
                "Needs: by account, status, text search",
                "NeedPage",
                params=[
                    query("account", STR, "an account's external id"),
                    query("status", {"enum": list(vocabulary.NEED_STATUSES)}),
                    Q,
                    *PAGE_PARAMS,
                ],
                tag="accounts",
            )
        },
        "/api/v1/advocates": {
            "get": op(
                "Advocates with consent, reference types and this quarter's load",
                "AdvocatePage",
                params=[
                    Q,
                    query("consent", BOOL),
                    query("reference_type", REF_TYPES),
                    query("near_capacity", BOOL, "only advocates with at most one slot left"),
                    *PAGE_PARAMS,
                ],
                tag="advocates",
            )
        },
        "/api/v1/advocates/load": {
            "get": op(
                "The advocate load view: slots used this quarter, fullest first",
                "AdvocateLoadPage",
                params=[query("near_capacity", BOOL), *PAGE_PARAMS],
                tag="advocates",
            )
        },
        "/api/v1/requests": {
            "get": op(
                "Reference requests, newest first",
                "ReferenceRequestSummaryPage",
                params=[
                    query("status", {"enum": STATES}),
                    query("advocate", STR, "the advocate's external id"),
                    query("mine", BOOL, "only the caller's own requests"),
                    *PAGE_PARAMS,
                ],
                tag="requests",
            ),
            "post": op(
                "Ask an advocate for a reference (409 without consent or capacity)",
                "ReferenceRequest",
                status="201",
                body="RequestCreate",
                errors=("404", "409"),
                tag="requests",
            ),
        },
        "/api/v1/requests/{id}": {
            "parameters": [REQUEST_ID],
            "get": op("A reference request with its audit trail", "ReferenceRequest", errors=("404",), tag="requests"),
        },
        "/api/v1/requests/{id}/transition": {
            "parameters": [REQUEST_ID],
            "post": op(
                "Move a request along requested -> approved | declined -> scheduled -> completed | cancelled",
                "ReferenceRequest",
                body="Transition",
                errors=("404", "409"),
                tag="requests",
            ),
        },
    }


@cache
def _document() -> dict[str, Any]:
    paths = _paths()
    for path, item in paths.items():
        for method, operation in item.items():
            if method != "parameters":
                operation["operationId"] = (
                    method
                    + "_"
                    + path.strip("/")
                    .replace("/", "_")
                    .replace("{", "")
                    .replace("}", "")
                    .replace(".", "_")
                    .removeprefix("api_v1_")
                )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "refmatch API",
            "version": "1",
            "summary": "Match customers to peer references; manage reference requests.",
            "description": "Authenticate with 'Authorization: Bearer <token>' (refmatch token create) or a "
            "signed-in browser session; a session must send X-CSRF-Token on every POST/PATCH. "
            'Every error is {"error": {"code", "message", "details"}}.',
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "tags": [{"name": t} for t in ("accounts", "matching", "risk", "advocates", "requests", "meta", "ops")],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {f"E{code}": _json(ref("Error"), text) for code, text in ERRORS.items()},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "an API token"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "refmatch_session"},
            },
        },
    }


def document() -> dict[str, Any]:
    """The document (a copy: callers may change it)."""
    return copy.deepcopy(_document())
