"""The do-not-call list through the API."""

import pytest

from webapp.extensions import db
from webapp.models import DoNotCall


def test_add_list_and_remove(app, api, tenant_a, wakes):
    received = wakes(tenant_a.id)
    number = api.post("/do-not-call", {"number": "(212) 555-1234", "note": "asked by phone"})
    assert number.status_code == 201
    assert number.get_json()["number"] == "+12125551234"
    assert number.get_json()["prefix"] is False
    assert number.get_json()["note"] == "asked by phone"
    prefix = api.post("/do-not-call", {"number": "+7916*"})
    assert prefix.status_code == 201
    assert (prefix.get_json()["number"], prefix.get_json()["prefix"]) == ("+7916", True)
    assert received() == ["do_not_call", "do_not_call"]

    again = api.post("/do-not-call", {"number": "+1 212 555 1234"})
    assert again.status_code == 200
    assert again.get_json()["id"] == number.get_json()["id"]

    page = api.get("/do-not-call").get_json()
    assert [e["id"] for e in page["entries"]] == [prefix.get_json()["id"], number.get_json()["id"]]
    first = api.get("/do-not-call", limit=1).get_json()
    assert len(first["entries"]) == 1 and first["next_cursor"] is not None
    rest = api.get("/do-not-call", limit=1, cursor=first["next_cursor"]).get_json()
    assert rest["entries"][0]["id"] == number.get_json()["id"] and rest["next_cursor"] is None

    entry_id = number.get_json()["id"]
    assert api.delete(f"/do-not-call/{entry_id}").status_code == 204
    assert received() == ["do_not_call"]
    missing = api.delete(f"/do-not-call/{entry_id}")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"
    with app.app_context():
        assert db.session.get(DoNotCall, entry_id) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "hello"}, "number"),
        ({"number": "7916*"}, "number"),
        ({"number": ""}, "number"),
        ({"number": 79161234567}, "number"),
        ({}, "number"),
        ({"number": "+12125551234", "note": "n" * 201}, "note"),
        ({"number": "+12125551234", "reason": "x"}, "reason"),
    ],
)
def test_a_bad_entry_is_a_422_naming_the_field(api, body, field):
    response = api.post("/do-not-call", body)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
