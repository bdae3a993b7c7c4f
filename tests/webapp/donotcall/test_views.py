"""The do-not-call list page: admins add numbers and prefixes, one or pasted in bulk, and
delete them (each change wakes the engine); supervisors read; search and paging."""

import pytest

from tests.webapp.jobs import Wakes
from webapp.extensions import db
from webapp.models import DoNotCall, Tenant


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def entries(app, tenant_id) -> dict[str, tuple[bool, str]]:
    with app.app_context():
        rows = db.session.scalars(db.select(DoNotCall).where(DoNotCall.tenant_id == tenant_id))
        return {row.number: (row.prefix, row.note) for row in rows}


def test_add_a_number_and_a_prefix_then_delete(app, client, admin):
    wakes = Wakes(admin.id)
    response = client.post("/do-not-call/add", data={"number": "+1 212 555 0123", "note": "asked"})
    assert response.status_code == 302
    page = client.get("/do-not-call/").get_data(as_text=True)
    assert "+12125550123 is on the do-not-call list." in page and "asked" in page
    client.post("/do-not-call/add", data={"number": "+7916*", "note": "mobiles"})
    assert entries(app, admin.id) == {"+12125550123": (False, "asked"), "+7916": (True, "mobiles")}
    assert "+7916*" in client.get("/do-not-call/").get_data(as_text=True)
    with app.app_context():
        entry_id = db.session.scalar(db.select(DoNotCall.id).where(DoNotCall.number == "+7916"))
    response = client.post(f"/do-not-call/{entry_id}/delete", follow_redirects=True)
    assert "+7916* is off the do-not-call list." in response.get_data(as_text=True)
    assert set(entries(app, admin.id)) == {"+12125550123"}
    assert wakes.types() == ["do_not_call"] * 3
    wakes.close()


def test_a_bad_entry_is_refused_with_the_reason(app, client, admin):
    page = client.post("/do-not-call/add", data={"number": "12"}).get_data(as_text=True)
    assert "cannot be a phone number" in page
    page = client.post("/do-not-call/add", data={"number": "7916*"}).get_data(as_text=True)
    assert "is not a prefix" in page
    assert entries(app, admin.id) == {}


def test_a_pasted_list_adds_good_lines_and_returns_bad_ones(app, client, admin):
    with app.app_context():
        db.session.get(Tenant, admin.id).default_phone_region = "RU"
        db.session.commit()
    pasted = "8 916 111-22-33\n\nnonsense\n+7495*\tMoscow landlines\n+79162223344; angry\n12\n"
    response = client.post("/do-not-call/bulk", data={"entries": pasted, "note": "list 1"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "3 entries are on the do-not-call list." in page
    assert "Line 2: " in page and "Line 5: " in page  # counted without the empty line
    box = page.split('name="entries"')[1].split("</textarea>")[0]
    assert "nonsense" in box and "12" in box and "916" not in box
    assert entries(app, admin.id) == {
        "+79161112233": (False, "list 1"),
        "+7495": (True, "Moscow landlines"),
        "+79162223344": (False, "angry"),
    }
    ok = client.post("/do-not-call/bulk", data={"entries": "+79165556677"})
    assert ok.status_code == 302


def test_search_and_paging(app, client, admin):
    with app.app_context():
        for i in range(60):
            db.session.add(
                DoNotCall(
                    tenant_id=admin.id, number=f"+1212555{i:04d}", note="vip" if i == 7 else ""
                )
            )
        db.session.commit()
    first = client.get("/do-not-call/").get_data(as_text=True)
    assert "+12125550059" in first and "+12125550000" not in first and "Older entries" in first
    before = first.split("before=")[1].split('"')[0].split("&")[0]
    second = client.get(f"/do-not-call/?before={before}").get_data(as_text=True)
    assert "+12125550000" in second and "+12125550059" not in second
    found = client.get("/do-not-call/", query_string={"q": "1 212 555 001"}).get_data(as_text=True)
    assert "+12125550019" in found and "+12125550020" not in found
    found = client.get("/do-not-call/", query_string={"q": "vip"}).get_data(as_text=True)
    assert "+12125550007" in found and "+12125550008" not in found


def test_supervisors_read_only(app, client, auth, tenant_a):
    with app.app_context():
        db.session.add(DoNotCall(tenant_id=tenant_a.id, number="+12125550123"))
        db.session.commit()
        entry_id = db.session.scalar(db.select(DoNotCall.id))
    auth.login(tenant_a.supervisor_email)
    page = client.get("/do-not-call/").get_data(as_text=True)
    assert "+12125550123" in page and "add-form" not in page and "Delete" not in page
    assert client.post("/do-not-call/add", data={"number": "+12125550124"}).status_code == 403
    assert client.post("/do-not-call/bulk", data={"entries": "+12125550124"}).status_code == 403
    assert client.post(f"/do-not-call/{entry_id}/delete").status_code == 403
    assert set(entries(app, tenant_a.id)) == {"+12125550123"}


def test_the_list_shows_only_the_own_tenant(app, client, auth, tenant_a, tenant_b):
    with app.app_context():
        db.session.add(DoNotCall(tenant_id=tenant_b.id, number="+12125550999", note="Bravo's"))
        db.session.commit()
    auth.login(tenant_a.admin_email)
    for query in ({}, {"q": "+1212"}, {"q": "Bravo"}):
        assert "+12125550999" not in client.get("/do-not-call/", query_string=query).get_data(
            as_text=True
        )


def test_the_page_speaks_russian(client, admin):
    client.get("/lang/ru")
    page = client.get("/do-not-call/").get_data(as_text=True)
    assert "Стоп-лист" in page and "Добавить номер или префикс" in page
    assert "Импорт из файла CSV" in client.get("/leads/").get_data(as_text=True)
