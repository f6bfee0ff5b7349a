"""Advocates managed in the app: the same checks as an import, audited changes, matching sees them at once,
and the manager's form on the account page."""

from __future__ import annotations

import pytest

from refmatch.app import advocacy, users
from refmatch.domain.errors import Forbidden, InvalidInput
from tests import web_support
from tests.web_support import login, post_form

app = web_support.app
client = web_support.client
cheap_hashes = web_support.cheap_hashes


@pytest.fixture
def people(world):
    return {
        "mia": users.add_user(world, "mia", "long enough", "reference_manager"),
        "sam": users.add_user(world, "sam", "long enough", "sales"),
    }


def terms(**changes):
    base = {"consent": True, "reference_types": ["call"], "capacity_per_quarter": 4, "blackout_until": None,
            "do_not_match": []}  # fmt: skip
    return {**base, **changes}


def as_now(world, external_id, **changes):
    now = advocacy.current(world, external_id)
    return {k: changes.get(k, now[k]) for k in advocacy.FIELDS}


def test_withdrawn_consent_is_audited_and_stops_matching_at_once(world, people):
    assert world.match_account("P1").matches[0].external_id == "A1"
    changes = advocacy.manage(
        world, people["mia"], "A1", **as_now(world, "A1", consent=False), note="asked us to pause"
    )
    assert changes == [{"field": "consent", "old": "yes", "new": "no"}]
    assert "A1" not in [m.external_id for m in world.match_account("P1").matches]
    [event] = advocacy.history(world, "A1")
    assert (event["actor"], event["field"], event["old"], event["new"], event["note"]) == (
        "mia", "consent", "yes", "no", "asked us to pause")  # fmt: skip
    assert advocacy.manage(world, people["mia"], "A1", **as_now(world, "A1")) == []  # nothing changed
    with pytest.raises(Exception, match="append-only"):
        world.conn.execute("UPDATE advocate_events SET actor = 'x'")


def test_do_not_match_is_chosen_from_accounts_and_checked(world, people):
    advocacy.manage(world, people["mia"], "A1", **terms(do_not_match=["P1"]))
    assert advocacy.current(world, "A1")["do_not_match"] == ["P1"]
    assert "A1" not in [m.external_id for m in world.match_account("P1").matches]
    with pytest.raises(InvalidInput, match="do_not_match: unknown account 'NOPE'"):
        advocacy.manage(world, people["mia"], "A1", **terms(do_not_match=["NOPE"]))
    with pytest.raises(InvalidInput, match="do_not_match: must not contain the account itself"):
        advocacy.manage(world, people["mia"], "A1", **terms(do_not_match=["A1"]))


def test_the_import_rules_check_the_values_and_only_managers_may(world, people):
    with pytest.raises(InvalidInput) as info:
        advocacy.manage(world, people["mia"], "A1", **terms(reference_types=["lunch"], capacity_per_quarter="-1",
                                                            blackout_until="next week"))  # fmt: skip
    fields = {d["field"] for d in info.value.details}
    assert fields == {"reference_types", "capacity_per_quarter", "blackout_until"}
    with pytest.raises(Forbidden, match="only a reference manager"):
        advocacy.manage(world, people["sam"], "A1", **terms())


def test_an_account_becomes_an_advocate(world, people):
    assert not advocacy.current(world, "C1")["is_advocate"]
    changes = advocacy.manage(world, people["mia"], "C1", **terms(reference_types=["call", "mentoring"]))
    assert {c["field"] for c in changes} >= {"consent", "reference_types"}
    now = advocacy.current(world, "C1")
    assert now["is_advocate"] and now["consent"] and now["reference_types"] == ["call", "mentoring"]


def test_the_managers_form_on_the_account_page(client):
    login(client, "sales")
    assert "Advocate terms" not in client.get("/accounts/A1").get_data(as_text=True)
    assert post_form(client, "/accounts/A1/advocate", {"consent": "1"}).status_code == 403
    login(client, "manager")
    html = client.get("/accounts/A1").get_data(as_text=True)
    assert "Advocate terms" in html and '<option value="P1"' in html
    form = {"consent": "1", "reference_types": ["call", "site_visit"], "capacity_per_quarter": "6",
            "do_not_match": ["P1"], "note": "new programme"}  # fmt: skip
    response = post_form(client, "/accounts/A1/advocate", form)
    assert response.status_code == 302
    html = client.get("/accounts/A1").get_data(as_text=True)
    assert "Advocate terms saved: reference types, capacity per quarter, do not match." in html
    assert '<option value="P1" selected>' in html and "new programme" in html
    response = post_form(client, "/accounts/A1/advocate", {**form, "capacity_per_quarter": "lots"})
    assert response.status_code == 400 and "capacity_per_quarter" in response.get_data(as_text=True)
