"""The words of the domain, each defined once: stages, purposes, reference types, statuses, states, roles.

Plain tuples and no imports, so the CLI can build its choices without loading anything.
"""

from __future__ import annotations

DEFAULT_STAGES = ("prospect", "onboarding", "adoption", "value", "expansion")  # the `stages` setting's default
PURPOSES = ("reference", "mentor", "retention")
REFERENCE_TYPES = ("call", "site_visit", "case_study", "logo", "mentoring", "peer_call")
# the reference type each purpose asks for when the caller names none
DEFAULT_REFERENCE_TYPE = {"reference": "call", "mentor": "mentoring", "retention": "peer_call"}
NEED_STATUSES = ("open", "in_progress", "met")
SIGNAL_KINDS = ("health", "usage", "open_tickets", "escalation", "nps", "champion_left")
IMPORT_KINDS = ("accounts", "needs", "advocates", "signals")  # in the order a fresh database takes them

# reference requests: requested -> approved | declined -> scheduled -> completed | cancelled
REQUEST_STATES = ("requested", "approved", "declined", "scheduled", "completed", "cancelled")
# states in which a request uses one of the advocate's quarterly slots (and the requester may see the contact)
USING_CAPACITY = ("approved", "scheduled", "completed")
DEAL_OUTCOMES = ("won", "lost", "open")

ROLES = ("sales", "cs", "reference_manager", "admin")
MANAGER_ROLES = frozenset({"reference_manager", "admin"})
RISK_LEVELS = ("low", "medium", "high")
