"""The reference-request workflow: its states (``states``), commands (``commands``) and read models (``views``).

``requested -> approved | declined -> scheduled -> completed | cancelled``. Callers use
this package's names; the modules say where each rule lives.
"""

from refmatch.app.requests.commands import create_request, transition
from refmatch.app.requests.states import CONTACT_STATES, STATES, TRANSITIONS, VERBS, can_see_contact, may_apply
from refmatch.app.requests.views import (
    MAX_PAGE,
    Event,
    RequestView,
    advocate_load,
    events,
    get_request,
    list_requests,
)
from refmatch.domain.vocabulary import DEAL_OUTCOMES

__all__ = [
    "CONTACT_STATES",
    "DEAL_OUTCOMES",
    "MAX_PAGE",
    "STATES",
    "TRANSITIONS",
    "VERBS",
    "Event",
    "RequestView",
    "advocate_load",
    "can_see_contact",
    "create_request",
    "events",
    "get_request",
    "list_requests",
    "may_apply",
    "transition",
]
