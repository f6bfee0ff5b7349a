"""Every shape of the JSON API, declared once as pydantic models.

spectree (``refmatch.web.openapi``) validates requests against them (query strings and
bodies) and generates the OpenAPI 3.1 document from them, so the document, the checks
and the answers cannot drift apart. Responses are strict (no unknown properties, every
property present), so a handler that returns something else fails the tests, which
validate every response against the served document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from refmatch.app import tables
from refmatch.domain import limits, vocabulary
from refmatch.domain.models import STRENGTHS

Purpose = Literal["reference", "mentor", "retention"]
ReferenceType = Literal["call", "site_visit", "case_study", "logo", "mentoring", "peer_call"]
NeedStatus = Literal["open", "in_progress", "met"]
RequestState = Literal["requested", "approved", "declined", "scheduled", "completed", "cancelled"]
DealOutcome = Literal["won", "lost", "open"]
Role = Literal["sales", "cs", "reference_manager", "admin"]
RiskLevel = Literal["low", "medium", "high"]
FileFormat = Literal["csv", "xlsx"]
Strength = Literal["strong", "fair", "weak"]
# the vocabulary is defined in refmatch.domain.vocabulary; these literals must say the same
for _literal, _words in (
    (Purpose, vocabulary.PURPOSES),
    (ReferenceType, vocabulary.REFERENCE_TYPES),
    (NeedStatus, vocabulary.NEED_STATUSES),
    (RequestState, vocabulary.REQUEST_STATES),
    (DealOutcome, vocabulary.DEAL_OUTCOMES),
    (Role, vocabulary.ROLES),
    (RiskLevel, vocabulary.RISK_LEVELS),
    (FileFormat, tables.FORMATS),
    (Strength, STRENGTHS),
):
    if get_args(_literal) != tuple(_words):
        raise RuntimeError(f"refmatch.web.schemas: {_literal} differs from the vocabulary {_words}")

Day = Annotated[str, Field(json_schema_extra={"format": "date"})]
Count = Annotated[int, Field(ge=0)]
# input text and numbers, bounded as refmatch.domain.limits says (so the document states the same limits)
Id = Annotated[str, Field(max_length=limits.MAX_ID)]
Short = Annotated[str, Field(max_length=limits.MAX_SHORT)]
Text = Annotated[str, Field(max_length=limits.MAX_TEXT)]
Note = Annotated[str, Field(max_length=limits.MAX_NOTE)]
InCount = Annotated[int, Field(ge=0, le=limits.MAX_COUNT)]


class Strict(BaseModel):
    """No property that is not declared (in requests: refused with its name; in responses: a test failure)."""

    model_config = ConfigDict(extra="forbid")


class Body(Strict):
    """A JSON body: types as JSON has them ("5" is not an integer, true is not a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- errors ---------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """What to fix; ``field`` names the input field when there is one (and more, by error)."""

    field: str | None = None
    message: str | None = None


class ErrorBody(Strict):
    code: str = Field(description="stable, machine-readable: invalid_input, not_found, conflict...")
    message: str
    details: list[ErrorDetail]


class Error(Strict):
    """Every error the API answers: one envelope."""

    error: ErrorBody


# -- query strings ------------------------------------------------------------------------


class PageQuery(Strict):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=limits.MAX_OFFSET)


class FileQuery(Strict):
    format: FileFormat = Field("csv", description="csv (UTF-8, a header row) or xlsx")


class AccountsFilter(Strict):
    q: str | None = Field(
        None, description="full-text search: every word (or a word it begins) in the account or its needs"
    )
    industry: str | None = None
    stage: str | None = None
    region: str | None = None
    products: str | None = Field(None, description="accounts using any of these products (';' or ',' between them)")


class AccountsQuery(AccountsFilter, PageQuery):
    pass


class AccountsExport(AccountsFilter, FileQuery):
    pass


class MatchesQuery(Strict):
    purpose: Purpose = "reference"
    k: int | None = Field(None, ge=1, le=100)
    reference_type: ReferenceType | None = None
    product: str | None = Field(None, description="the product the seeker needs a peer on")


class MatchesExport(MatchesQuery, FileQuery):
    pass


class RiskQuery(Strict):
    as_of: Day | None = Field(None, description="score as of this day (YYYY-MM-DD); default today")


class AtRiskFilter(Strict):
    level: RiskLevel | None = Field(None, description="the lowest level listed; default the configured at-risk level")


class AtRiskQuery(AtRiskFilter):
    limit: int = Field(20, ge=1, le=100, description="each account of a page is matched: pages stay small")
    offset: int = Field(0, ge=0, le=limits.MAX_OFFSET)


class AtRiskExport(AtRiskFilter, FileQuery):
    pass


class ForecastQuery(Strict):
    by: str = Field(
        "industry,product,region",
        max_length=40,
        description="segments: a comma-separated choice of industry, product, region",
    )
    quarters: int = Field(4, ge=1, le=12, description="quarters ahead, the current one first")
    lookback: int = Field(4, ge=1, le=12, description="past quarters the request rate is taken over")
    pipeline_quarters: int = Field(2, ge=1, le=12, description="quarters over which open prospects ask")
    as_of: Day | None = Field(None, description="forecast as of this day (YYYY-MM-DD); default today")


class ForecastExport(ForecastQuery, FileQuery):
    pass


class OutcomesExport(FileQuery):
    table: Literal["quarters", "products", "industries", "advocates"] = Field(
        "quarters", description="deals and influenced ARR by quarter, product or industry; or per advocate"
    )


class NeedsQuery(PageQuery):
    account: str | None = Field(None, description="an account's external id")
    status: NeedStatus | None = None
    q: str | None = Field(None, description="case-insensitive substring search")


class AdvocatesFilter(Strict):
    q: str | None = Field(None, description="case-insensitive substring search")
    consent: bool | None = None
    reference_type: ReferenceType | None = None
    near_capacity: bool = Field(
        False, description="only advocates that used at least near_capacity_share (75%) of the quarter's slots"
    )


class AdvocatesQuery(AdvocatesFilter, PageQuery):
    pass


class AdvocatesExport(AdvocatesFilter, FileQuery):
    pass


class LoadQuery(PageQuery):
    near_capacity: bool = False


class RequestsFilter(Strict):
    status: RequestState | None = None
    advocate: str | None = Field(None, description="the advocate's external id")
    mine: bool = Field(False, description="only the caller's own requests")
    overdue: bool = Field(False, description="only requests still waiting past their due date, longest overdue first")


class RequestsQuery(RequestsFilter, PageQuery):
    pass


class RequestsExport(RequestsFilter, FileQuery):
    pass


# -- accounts ---------------------------------------------------------------------------


def _imported(schema: dict[str, Any], description: str = "") -> Any:
    """A body field checked by the import rules, not here: documented with ``schema``, any value accepted."""

    def shape(document: dict[str, Any]) -> None:
        document.pop("default", None)  # absent, not null: the import rules apply their own defaults
        document.update(schema)
        if description:
            document["description"] = description

    return Field(None, json_schema_extra=shape)


_NULLABLE_STR = {"type": ["string", "null"], "maxLength": limits.MAX_SHORT}
_NULLABLE_TEXT = {"type": ["string", "null"], "maxLength": limits.MAX_TEXT}
_STRINGS = {"type": "array", "items": {"type": "string", "maxLength": limits.MAX_SHORT}, "maxItems": limits.MAX_ITEMS}
_IDS = {"type": "array", "items": {"type": "string", "maxLength": limits.MAX_ID}, "maxItems": limits.MAX_ITEMS}
_DATE = {"type": ["string", "null"], "format": "date"}


class AccountBody(BaseModel):
    """An account as the import columns define it. Its values are checked by refmatch.importing, the rule the
    CSV and JSON Lines imports follow, which names every problem at once; so here nothing is refused."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    external_id: Any = _imported(
        {"type": "string", "maxLength": limits.MAX_ID}, "the CRM's id; the API's account {external_id}"
    )
    name: Any = _imported({"type": "string", "maxLength": limits.MAX_SHORT})
    industry: Any = _imported(_NULLABLE_STR)
    employees: Any = _imported({"type": ["integer", "null"], "minimum": 0, "maximum": limits.MAX_COUNT})
    country: Any = _imported(_NULLABLE_STR)
    region: Any = _imported(_NULLABLE_STR)
    products: Any = _imported(_STRINGS)
    stage: Any = _imported({"type": "string"}, "one of the configured journey stages")
    stage_since: Any = _imported(_DATE)
    health: Any = _imported({"type": ["number", "null"], "minimum": 0, "maximum": 100})
    arr: Any = _imported({"type": ["number", "null"], "minimum": 0})
    renewal_date: Any = _imported(_DATE)
    owner: Any = _imported(_NULLABLE_STR)
    profile: Any = _imported(_NULLABLE_TEXT)
    do_not_match: Any = _imported(_IDS)


class AccountInput(AccountBody):
    """A new account, validated like an import row; external_id, name and stage are required."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"additionalProperties": False, "required": ["external_id", "name", "stage"]}
    )


class AccountPatch(AccountBody):
    """The fields to change, validated like an import row; null clears one."""


class AccountSummary(Strict):
    external_id: str
    name: str
    industry: str | None
    employees: Count | None
    country: str | None
    region: str | None
    size_band: str | None
    products: list[str]
    stage: str
    health: float | None = Field(ge=0, le=100)
    open_needs: Count
    is_advocate: bool = Field(description="an advocate that consents")


class AccountNeed(Strict):
    id: int
    need: str
    status: NeedStatus
    met_on: Day | None
    product: str | None


class Contact(Strict):
    name: str | None
    title: str | None
    email: str | None


class Advocate(Strict):
    external_id: str
    name: str
    industry: str | None
    stage: str
    region: str | None
    products: list[str]
    health: float | None
    consent: bool
    reference_types: list[ReferenceType]
    capacity: Count = Field(description="requests per quarter")
    used_this_quarter: Count
    remaining: Count
    blackout_until: Day | None
    topics: str | None
    contact: Contact | None = Field(description="reference managers only")


class StageEntry(Strict):
    stage: str
    entered_on: str | None


class Account(Strict):
    external_id: str
    name: str
    industry: str | None
    employees: Count | None
    country: str | None
    region: str | None
    products: list[str]
    stage: str
    stage_since: Day | None
    health: float | None = Field(ge=0, le=100)
    arr: float | None = Field(ge=0)
    renewal_date: Day | None
    owner: str | None
    profile: str | None
    do_not_match: list[str]
    size_band: str | None
    created_at: str
    updated_at: str
    needs: list[AccountNeed]
    stage_history: list[StageEntry]
    advocate: Advocate | None


class Need(Strict):
    id: int
    account_external_id: str
    account_name: str
    need: str
    status: NeedStatus
    met_on: Day | None
    product: str | None


class AdvocateLoad(Strict):
    external_id: str
    name: str
    consent: bool
    reference_types: list[ReferenceType]
    capacity: Count
    used_this_quarter: Count
    remaining: Count
    last_used_at: str | None
    contact: Contact | None


# -- matching ----------------------------------------------------------------------------


class Party(Strict):
    external_id: str
    name: str


class MaybeParty(Strict):
    external_id: str | None
    name: str


class Match(Strict):
    rank: int = Field(ge=1)
    advocate: Party
    score: float
    strength: Strength = Field(
        description="the score against the calibrated thresholds (strength_* settings); never strong when the "
        "seeker has open needs and the match met none of them"
    )
    components: dict[str, float] = Field(
        description="need_coverage, profile_similarity, industry, size, region, products, stage_gap, lexical, fatigue"
    )
    reasons: list[str]


class IndexInfo(Strict):
    built_at: str | None
    data_version: int | None


class MatchResult(Strict):
    seeker: MaybeParty
    purpose: Purpose
    matches: list[Match]
    note: str | None = Field(description="when no match is better than weak: so, and what none of them has")
    model: str
    index: IndexInfo


class AdhocMatch(Body):
    text: Text = Field(description="free-text description of the prospect")
    needs: list[Text] | None = Field(None, max_length=limits.MAX_ITEMS, description="its open needs, one per item")
    name: Short | None = None
    industry: Short | None = None
    employees: InCount | None = None
    country: Short | None = None
    region: Short | None = None
    products: list[Short] | None = Field(None, max_length=limits.MAX_ITEMS)
    stage: Short | None = None
    do_not_match: list[Id] | None = Field(None, max_length=limits.MAX_ITEMS)
    purpose: Purpose | None = None
    k: int | None = Field(None, ge=1, le=100)
    reference_type: ReferenceType | None = None
    product: Short | None = None


# -- reference requests ---------------------------------------------------------------------


class RequestCreate(Body):
    advocate_external_id: Id
    seeker_external_id: Id | None = None
    purpose: Purpose | None = None
    reference_type: ReferenceType | None = None
    note: Note | None = None
    override_reason: Note | None = Field(None, description="reference managers: go ahead despite capacity or consent")


class Transition(Body):
    to_status: RequestState
    note: Note | None = None
    scheduled_for: str | None = Field(
        None, max_length=40, description="ISO date or date-time; only with to_status scheduled"
    )
    rating: int | None = Field(None, ge=1, le=5, description="only when completing")
    deal_outcome: DealOutcome | None = Field(None, description="only when completing")
    influenced_arr: float | None = Field(None, ge=0, le=1e15, description="only when completing")
    override_reason: Note | None = None


class Event(Strict):
    at: str
    actor: str | None
    from_status: RequestState | None
    to_status: RequestState
    note: str | None


class ReferenceRequestSummary(Strict):
    id: int
    seeker: Party | None
    advocate: Party
    purpose: Purpose
    reference_type: ReferenceType | None
    status: RequestState
    requested_by: str | None
    requested_by_user_id: int | None
    note: str | None
    override_reason: str | None
    created_at: str
    updated_at: str
    approved_at: str | None
    scheduled_for: str | None
    completed_at: str | None
    rating: int | None
    deal_outcome: str | None
    influenced_arr: float | None
    due_at: str | None = Field(description="when an answer and a date are due (request_turnaround_hours)")
    overdue: bool = Field(description="still requested or approved, past its due date")
    contact: Contact | None = Field(description="only when the viewer may see it")
    allowed_actions: list[RequestState] = Field(description="what this viewer may do next")


class ReferenceRequest(ReferenceRequestSummary):
    events: list[Event]


# -- risk --------------------------------------------------------------------------------


class RiskReason(Strict):
    rule: str = Field(description="the rule that fired (see 'refmatch risk config')")
    trouble: str = Field(description="the trouble it names, in plain words: falling usage, champion left...")
    points: float = Field(description="what it adds to the 0-100 score")
    text: str = Field(description="the evidence, in plain words")


class RiskFields(Strict):
    external_id: str
    name: str
    stage: str
    score: float = Field(ge=0, le=100)
    level: RiskLevel
    at_risk: bool = Field(description="at or above the configured at-risk level")
    churned: bool
    troubles: list[str] = Field(description="the troubles of the reasons, each once")
    reasons: list[RiskReason]
    at_risk_since: Day | None = Field(description="the start of the open risk episode")


class AtRiskAccount(RiskFields):
    renewal_date: Day | None
    matches: list[Match] = Field(
        max_length=3, description="the top retention peers: the reasons name the troubles each overcame"
    )


class RiskEpisode(Strict):
    external_id: str
    name: str
    entered_on: Day
    ended_on: Day | None
    outcome: Literal["open", "resolved", "churned"]
    peak_score: float
    peak_level: RiskLevel
    last_score: float | None
    rules: list[str]
    troubles: list[str]
    reasons_at_entry: list[RiskReason]


class RuleMeasure(Strict):
    rule: str
    trouble: str
    points: float
    fired: bool
    measure: float | None


class AccountRisk(RiskFields):
    as_of: Day
    rules: list[RuleMeasure] = Field(
        description="every rule, fired or not, with the value it measured (null: not known)"
    )
    episodes: list[RiskEpisode] = Field(description="newest first")
    signals: dict[str, list[tuple[Day, float]]] = Field(
        description="each signal kind's series as [date, value] pairs, oldest first"
    )


# -- meta and operations -----------------------------------------------------------------------


class User(Strict):
    id: int
    username: str
    role: Role
    display_name: str | None
    is_manager: bool
    is_admin: bool


class Health(Strict):
    status: Literal["ok"]


class Check(Strict):
    ok: bool
    message: str


class IndexCheck(Check):
    pending_texts: Count | None = Field(
        None, description="texts new, changed or deleted since the index snapshot served was built"
    )
    snapshot_age_s: Count | None = Field(None, description="seconds since the index snapshot served was built")


class Checks(Strict):
    database: Check
    indexes: IndexCheck
    model: Check


class Ready(Strict):
    status: Literal["ready", "not_ready"]
    checks: Checks


class Page(Strict):
    total: Count
    limit: int = Field(ge=1)
    offset: Count


class AccountSummaryPage(Page):
    items: list[AccountSummary]


class NeedPage(Page):
    items: list[Need]


class AdvocatePage(Page):
    items: list[Advocate]


class AdvocateLoadPage(Page):
    items: list[AdvocateLoad]


class ReferenceRequestSummaryPage(Page):
    items: list[ReferenceRequestSummary]


class AtRiskAccountPage(Page):
    items: list[AtRiskAccount]


class ForecastQuarter(Strict):
    quarter: str = Field(description="YYYY-Qn")
    demand: float = Field(description="expected reference requests: the larger of the run rate and the pipeline")
    capacity: int = Field(description="slots of the advocates who could serve the segment (the current quarter: left)")
    shortfall: float = Field(description="demand not covered")


class ForecastSegment(Strict):
    key: dict[str, str] = Field(description="the segment's value of each dimension it is grouped by")
    name: str
    prospects: int = Field(description="open prospects with an open need")
    run_rate: float = Field(description="reference requests per quarter over the lookback")
    advocates: int = Field(description="advocates who could serve it")
    quarters: list[ForecastQuarter]
    dry: str | None = Field(description="the first quarter whose demand exceeds its capacity")
    shortfall: float = Field(description="over the horizon")


class Forecast(Strict):
    as_of: str
    by: list[str]
    quarters: list[str]
    lookback: int
    pipeline_quarters: int
    per_prospect: float = Field(description="reference requests per prospect that asked, over the lookback")
    segments: list[ForecastSegment] = Field(description="soonest to run dry and largest shortfall first")


class Recruit(Strict):
    external_id: str
    name: str
    stage: str
    health: float | None
    nps: float | None = Field(description="the latest NPS answer, where known")
    status: Literal["never asked", "not consenting"]
    segments: list[str] = Field(description="segments running dry that it would serve")
    covers: float = Field(description="shortfall slots it would cover over the horizon, at the default capacity")


class RecruitList(Strict):
    as_of: str
    items: list[Recruit] = Field(description="most shortfall covered first, then NPS and health")


class DealTotals(Strict):
    key: str = Field(description="the quarter (YYYY-Qn), product or industry; 'all' for the whole")
    won: int
    lost: int
    open: int
    influenced_arr: float = Field(description="recorded on won deals")
    win_rate: float | None = Field(description="won / (won + lost); null with no decided deal")


class AdvocateOutcome(Strict):
    external_id: str
    name: str
    asked: int
    accepted: int = Field(description="approved, scheduled or completed")
    declined: int
    completed: int
    ratings: int
    rating: float | None
    influenced_arr: float
    acceptance: float | None = Field(description="accepted / (accepted + declined)")
    completion: float | None = Field(description="completed / accepted")


class Converted(Strict):
    prospects: int
    won: int = Field(description="a won deal recorded, or a customer now")
    share: float | None


class Outcomes(Strict):
    deals: DealTotals
    by_quarter: list[DealTotals] = Field(description="by the quarter the reference was completed in")
    by_product: list[DealTotals] = Field(description="under each product the seeker uses")
    by_industry: list[DealTotals]
    advocates: list[AdvocateOutcome]
    ratings: int
    rating: float | None = Field(description="the mean rating of reference requests")
    converted: dict[str, Converted] = Field(
        description="prospects that asked, 'with' a completed reference and 'without' one: how many were won"
    )


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A page of a list, as every *Page model has it."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}
