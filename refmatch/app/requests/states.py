"""The request workflow's states: which moves exist, who may make them, who may see the advocate's contact.

``requested -> approved | declined -> scheduled -> completed | cancelled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refmatch.app.users import User
from refmatch.domain.errors import InvalidInput
from refmatch.domain.vocabulary import REQUEST_STATES, USING_CAPACITY

if TYPE_CHECKING:
    from refmatch.app.requests.views import RequestView

STATES = REQUEST_STATES
TRANSITIONS: dict[str, set[str]] = {
    "requested": {"approved", "declined", "cancelled"},
    "approved": {"scheduled", "cancelled"},
    "scheduled": {"completed", "cancelled"},
    "declined": set(),
    "completed": set(),
    "cancelled": set(),
}
# a button label for each target state
VERBS = {"approved": "approve", "declined": "decline", "scheduled": "schedule", "completed": "complete",
         "cancelled": "cancel"}  # fmt: skip
CONTACT_STATES = USING_CAPACITY  # the requester sees the advocate's contact from approval on
# waiting on someone (a manager's answer, or a date being set): past its due date, such a request is overdue
WAITING = ("requested", "approved")
OPEN = tuple(s for s, moves in TRANSITIONS.items() if moves)  # not yet finished: a second such request is a duplicate


def is_overdue(status: str, due_at: str | None, now_iso: str) -> bool:
    """Still waiting and past its due date (ISO-8601 UTC stamps compare as text)."""
    return status in WAITING and due_at is not None and due_at <= now_iso


# -- who may do what ------------------------------------------------------
def may_apply(user: User, requested_by_user_id: int | None, to_status: str) -> bool:
    """Managers and admins apply every transition; the requester may cancel their own request."""
    if user.is_manager:
        return True
    return to_status == "cancelled" and requested_by_user_id is not None and requested_by_user_id == user.id


def can_see_contact(user: User | None, request: RequestView | None) -> bool:
    """Managers and admins always; the requester once their request is approved; nobody else."""
    if user is None:
        return False
    if user.is_manager:
        return True
    return request is not None and request.requested_by_user_id == user.id and request.status in CONTACT_STATES


# -- problems with the input, each naming its field -------------------------------------
def bad(field_name: str, message: str) -> dict[str, str]:
    return {"field": field_name, "message": message}


def raise_if(problems: list[dict[str, str]]) -> None:
    """InvalidInput listing every problem, if there is any."""
    if problems:
        raise InvalidInput("; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems)
