"""CSV import of leads, run by a real RQ worker (burst mode) on the real Redis, against
SQLite and PostgreSQL: upload, mapping, preview, the job, its report."""

import io
import re
from pathlib import Path

import pytest

from tests.webapp.jobs import Wakes, run_jobs
from webapp.extensions import db
from webapp.models import Lead, Tenant

GOOD_AND_BAD = (
    "phone,name,crm id,priority,city\n"
    "+7 916 123-45-67,Ivan Petrov,A-1,5,Moscow\n"
    "12,Bad Number,A-2,0,Omsk\n"
    "+79161234568,Olga,alpha-crm-1,0,Kazan\n"
    "+79161234569,Petr,A-1,0,Tver\n"
    "+79161234570,Anna,A-3,high,Tula\n"
    "+1 212 555 0123,John,,,New York\n"
)


@pytest.fixture
def config_overrides(tmp_path):
    return {"upload_dir": str(tmp_path / "uploads"), "import_max_megabytes": 1}


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def upload(client, content: bytes | str, name: str = "leads.csv"):
    if isinstance(content, str):
        content = content.encode()
    return client.post(
        "/leads/import",
        data={"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def mapping_url(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def start(
    client, url: str, mapping: list[str], header: bool = True, campaign: int | None = None
) -> str:
    data = {f"col{i}": target for i, target in enumerate(mapping)}
    data["start"] = "1"
    if campaign is not None:
        data["campaign"] = str(campaign)
    if header:
        data["header"] = "y"
    response = client.post(url, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "/leads/import/jobs/" in response.headers["Location"]
    return response.headers["Location"]


def leads_of(app, tenant_id) -> dict[str, Lead]:
    with app.app_context():
        leads = db.session.scalars(db.select(Lead).where(Lead.tenant_id == tenant_id)).all()
        for lead in leads:
            db.session.expunge(lead)
        return {lead.phone: lead for lead in leads}


def test_good_rows_are_imported_and_bad_rows_listed_with_their_reason(app, client, admin):
    url = mapping_url(upload(client, GOOD_AND_BAD))
    page = client.get(url).get_data(as_text=True)
    assert "6 rows" in page and "UTF-8" in page and "commas" in page
    # The guessed mapping: phone, name, CRM id, priority by their names; city onto the card.
    for i, target in enumerate(["phone", "name", "external_id", "priority", "card"]):
        select = page.split(f'name="col{i}"')[1].split("</select>")[0]
        assert re.search(rf'<option selected value="{target}">', select), (i, target)
    # The preview shows what each row becomes, and the reason a row cannot be taken.
    assert "+79161234567" in page and "Ivan Petrov" in page
    assert "&#39;12&#39; cannot be a phone number" in page

    wakes = Wakes(admin.id)
    job_url = start(client, url, ["phone", "name", "external_id", "priority", "card"])
    waiting = client.get(job_url).get_data(as_text=True)
    assert "<progress" in waiting and "Refresh" in waiting
    assert client.get(job_url + "/status").get_json()["state"] == "waiting"
    run_jobs(app)
    assert wakes.types() == ["new_lead"]  # once for the whole file
    wakes.close()

    status = client.get(job_url + "/status").get_json()
    assert (status["state"], status["done"], status["total"]) == ("done", 6, 6)
    report = client.get(job_url).get_data(as_text=True)
    assert "Imported 2 of 6 rows." in report
    assert "2 rows could not be imported." in report
    assert "2 rows were skipped: their CRM id is already known." in report
    bad = report.split('id="bad-rows"')[1].split("</table>")[0]
    assert re.search(r"<td>3</td><td>Phone number: .*12.* cannot be a phone number", bad)
    assert re.search(r"<td>6</td><td>Priority: The priority must be a whole number", bad)
    duplicates = report.split('id="duplicate-rows"')[1].split("</table>")[0]
    assert "<td>4</td><td>alpha-crm-1</td>" in duplicates
    assert "<td>5</td><td>A-1</td>" in duplicates

    leads = leads_of(app, admin.id)
    ivan = leads["+79161234567"]
    assert (ivan.name, ivan.external_id, ivan.priority, ivan.card) == (
        "Ivan Petrov",
        "A-1",
        5,
        {"city": "Moscow"},
    )
    assert ivan.status == "new"
    john = leads["+12125550123"]
    assert (john.external_id, john.priority, john.card) == (None, 0, {"city": "New York"})
    assert john.time_zone == "America/New_York"  # from the number: it has one zone
    assert len(leads) == 3  # the tenant's own lead and the two imported
    # The file is gone once imported, and the mapping page with it.
    assert list(Path(app.extensions["autocall.config"].upload_dir).iterdir()) == []
    assert client.get(url).status_code == 404
    # The new leads are in the list.
    listing = client.get("/leads/").get_data(as_text=True)
    assert "Ivan Petrov" in listing and "John" in listing


def test_a_windows_1251_file_with_semicolons_from_russian_excel(app, client, admin):
    with app.app_context():
        db.session.get(Tenant, admin.id).default_phone_region = "RU"
        db.session.commit()
    content = "Телефон;ФИО;Город;Комментарий\r\n8 916 765-43-21;Иван Петров;Москва;перезвонить\r\n"
    url = mapping_url(upload(client, content.encode("cp1251")))
    page = client.get(url).get_data(as_text=True)
    assert "Windows-1251" in page and "semicolons" in page and "Иван Петров" in page
    start(client, url, ["phone", "name", "card", "card"])
    run_jobs(app)
    lead = leads_of(app, admin.id)["+79167654321"]
    assert lead.name == "Иван Петров"
    assert lead.card == {"Город": "Москва", "Комментарий": "перезвонить"}


def test_utf8_with_a_bom_and_a_mapping_chosen_by_hand_without_a_header(app, client, admin):
    content = "\ufeffOrder 7;+44 20 7946 0018;Europe/London;Jane\n;;;\nOrder 8;+44 20 7946 0019;;\n"
    url = mapping_url(upload(client, content.encode("utf-8")))
    page = client.get(url).get_data(as_text=True)
    assert "UTF-8" in page
    start(client, url, ["external_id", "phone", "time_zone", "name"], header=False)
    run_jobs(app)
    leads = leads_of(app, admin.id)
    jane = leads["+442079460018"]
    assert (jane.external_id, jane.time_zone, jane.name, jane.card) == (
        "Order 7",
        "Europe/London",
        "Jane",
        {},
    )
    assert leads["+442079460019"].external_id == "Order 8"  # the empty row is no lead


def test_the_mapping_needs_one_phone_column(app, client, admin):
    url = mapping_url(upload(client, GOOD_AND_BAD))
    page = client.post(url, data={"header": "y", "col0": "card", "col1": "name", "start": "1"})
    assert page.status_code == 200
    assert "Choose the column that holds the phone number." in page.get_data(as_text=True)
    page = client.post(url, data={"header": "y", "col0": "phone", "col1": "phone", "start": "1"})
    assert "Only one column can be the phone number." in page.get_data(as_text=True)


def test_a_file_is_imported_once(app, client, admin):
    url = mapping_url(upload(client, GOOD_AND_BAD))
    job_url = start(client, url, ["phone", "name", "external_id", "priority", "card"])
    again = client.post(url, data={"header": "y", "col0": "phone", "start": "1"})
    assert again.headers["Location"] == job_url


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"PK\x03\x04 a workbook", "Excel workbook, not CSV"),
        (b"\x00\x01\x02binary", "not a text file"),
        (b"  \n\n", "The file is empty."),
        (b";;;\n;;\n", "The file is empty."),
        (
            b'phone,name\n+79161234567,"Ivan\n+79161234568,Olga\n' + b"x" * 140_000,
            "The row on line 2 cannot be read: a quote",
        ),
    ],
)
def test_files_that_are_not_csv_are_refused_with_a_reason(client, admin, content, words):
    page = upload(client, content).get_data(as_text=True)
    assert words in page


def test_a_file_over_the_limit_is_refused_with_a_clear_message(app, client, admin):
    content = "phone\n" + "+79161234567\n" * 100_000  # 1.3 MB, over the test's 1 MB
    response = upload(client, content)
    assert response.status_code == 200
    assert "The file is larger than 1 MB" in response.get_data(as_text=True)


def test_supervisors_and_operators_cannot_import(client, auth, tenant_a):
    auth.login(tenant_a.supervisor_email)
    assert client.get("/leads/import").status_code == 403
    assert upload(client, GOOD_AND_BAD).status_code == 403
    assert "Import from a CSV file" not in client.get("/leads/").get_data(as_text=True)
    auth.logout()
    auth.login(tenant_a.operator_email)
    assert upload(client, GOOD_AND_BAD).status_code == 403


def test_another_tenants_upload_and_import_are_not_found(app, client, auth, tenant_a, tenant_b):
    auth.login(tenant_b.admin_email)
    url = mapping_url(upload(client, GOOD_AND_BAD))
    job_url = start(client, url, ["phone"])
    auth.logout()
    auth.login(tenant_a.admin_email)
    assert client.get(job_url).status_code == 404
    assert client.get(job_url + "/status").status_code == 404
    run_jobs(app)
    assert client.get(job_url).status_code == 404


def _campaigns(app, tenant_id: int) -> dict[str, int]:
    """The tenant's campaigns by key, with a running `tv` and an archived `old` made."""
    from webapp.models import Campaign
    from webapp.services.campaigns import create_campaign

    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        create_campaign(tenant, "TV offer", "tv", None)
        create_campaign(tenant, "Old offer", "old", None).state = "archived"
        db.session.commit()
        rows = db.session.scalars(db.select(Campaign).where(Campaign.tenant_id == tenant_id))
        return {campaign.key: campaign.id for campaign in rows}


def test_the_leads_go_to_the_campaign_chosen_and_the_job_says_which(app, client, admin):
    keys = _campaigns(app, admin.id)
    url = mapping_url(upload(client, GOOD_AND_BAD))
    page = client.get(url).get_data(as_text=True)
    select = page.split('name="campaign"')[1].split("</select>")[0]
    # The non-archived campaigns, the default one chosen.
    assert f'<option selected value="{keys["default"]}">Default</option>' in select
    assert f'<option value="{keys["tv"]}">TV offer</option>' in select
    assert "Old offer" not in select
    job_url = start(client, url, ["phone", "name", "card", "card", "card"], campaign=keys["tv"])
    assert 'id="import-campaign">Into the campaign TV offer.' in client.get(job_url).get_data(
        as_text=True
    )
    run_jobs(app)
    leads = leads_of(app, admin.id)
    assert {lead.phone: lead.campaign_id for lead in leads.values()} == {
        "+79161234567": keys["tv"],
        "+79161234568": keys["tv"],
        "+79161234569": keys["tv"],
        "+79161234570": keys["tv"],
        "+12125550123": keys["tv"],
        leads_of_fixture(app, admin): keys["default"],
    }
    assert "Into the campaign TV offer." in client.get(job_url).get_data(as_text=True)


def leads_of_fixture(app, tenant) -> str:
    with app.app_context():
        return db.session.get(Lead, tenant.lead_id).phone


def test_an_archived_or_another_tenants_campaign_is_no_choice(app, client, admin, tenant_b):
    keys = _campaigns(app, admin.id)
    theirs = _campaigns(app, tenant_b.id)["tv"]
    url = mapping_url(upload(client, GOOD_AND_BAD))
    for campaign in (keys["old"], theirs):
        data = {"header": "y", "col0": "phone", "start": "1", "campaign": str(campaign)}
        page = client.post(url, data=data)
        assert page.status_code == 200
        assert "Not a valid choice" in page.get_data(as_text=True)


def test_a_campaign_archived_before_the_job_runs_takes_nothing(app, client, admin):
    keys = _campaigns(app, admin.id)
    url = mapping_url(upload(client, GOOD_AND_BAD))
    job_url = start(client, url, ["phone"], campaign=keys["tv"])
    with app.app_context():
        from webapp.models import Campaign

        db.session.get(Campaign, keys["tv"]).state = "archived"
        db.session.commit()
    run_jobs(app)
    report = client.get(job_url).get_data(as_text=True)
    assert "Nothing was imported: The campaign &#39;TV offer&#39; is archived" in report
    assert len(leads_of(app, admin.id)) == 1
    assert list(Path(app.extensions["autocall.config"].upload_dir).iterdir()) == []
