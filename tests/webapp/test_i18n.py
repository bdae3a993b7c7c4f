"""English and Russian: the language follows the browser and can be switched."""

import re
import shutil

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from webapp.i18n import TRANSLATIONS_DIR, compile_translations

RU = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def test_language_follows_the_browser(client):
    assert "Sign in" in client.get("/login").get_data(as_text=True)
    page = client.get("/login", headers=RU).get_data(as_text=True)
    assert "Войти" in page and '<html lang="ru">' in page


def test_language_can_be_switched_and_stays(client):
    response = client.get("/lang/ru", query_string={"next": "/login"})
    assert response.headers["Location"] == "/login"
    assert "Войти" in client.get("/login").get_data(as_text=True)
    client.get("/lang/en")
    assert "Sign in" in client.get("/login", headers=RU).get_data(as_text=True)
    client.get("/lang/xx")  # unknown languages are ignored
    assert "Sign in" in client.get("/login").get_data(as_text=True)
    assert (
        client.get("/lang/ru", query_string={"next": "//evil.example"}).headers["Location"] == "/"
    )


def test_the_russian_ui_uses_the_products_words(app, client, auth, tenant_a, request):
    from tests.webapp.objects import add_portal_objects

    add_portal_objects(app, tenant_a, request)
    client.get("/lang/ru")
    auth.login(tenant_a.admin_email)
    calling = client.get(f"/campaigns/{tenant_a.campaign_id}/calling").get_data(as_text=True)
    for word in (
        "Множитель вызовов",
        "Время переноса вызова",
        "Часы обзвона",
        "Не удалось дозвониться",
        "Номер недоступен",
        "Номер занят",
        "Техническая ошибка",
        "доли брошенных вызовов",
        "Дни обзвона",
        "Пн",
        "Вс",
        "Дата начала",
        "SIP-учётная запись",
        "Обзвон",
    ):
        assert word in calling, word
    company = client.get("/settings/company").get_data(as_text=True)
    assert "Настройки компании" in company and "Часовой пояс" in company
    assert "Автоматический обзвон включён" in company
    formats = client.get("/settings/formats", follow_redirects=True).get_data(as_text=True)
    assert "Формат набора номера" in formats and "Формат REFER-заголовка" in formats
    accounts = client.get("/settings/sip").get_data(as_text=True)
    assert "SIP-учётные записи" in accounts and "Новая SIP-учётная запись" in accounts
    campaigns = client.get("/campaigns/").get_data(as_text=True)
    assert "Копировать" in campaigns
    operators = client.get("/operators/").get_data(as_text=True)
    assert "Внутренний номер" in operators and "Операторы" in operators
    auth.logout()
    auth.login(tenant_a.operator_email)
    assert "Встать на линию" in client.get("/console/").get_data(as_text=True)


def test_errors_are_in_russian_too(app, client, auth, tenant_a):
    from webapp.extensions import db

    client.get("/lang/ru")
    auth.login(tenant_a.admin_email)
    with app.app_context():
        from webapp.models import SipAccount

        account = SipAccount(tenant_id=tenant_a.id, name="PBX", host="pbx.example", username="u")
        db.session.add(account)
        db.session.commit()
        account_id = account.id
    answer = client.get(
        f"/settings/sip/{account_id}/formats/preview",
        query_string={"kind": "dial", "format": "+{phone}@{host}"},
    ).get_json()
    assert answer["text"].startswith("Неизвестный макрос {phone}")
    page = client.post("/settings/sip/new", data={"host": ""}).get_data(as_text=True)
    assert "Обязательное поле" in page  # WTForms' own messages follow the language


def test_every_message_is_translated_with_the_same_placeholders():
    extracted = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(TRANSLATIONS_DIR.parent.parent),
            method_map=[("webapp/**.py", "python"), ("webapp/**/templates/**.html", "jinja2")],
            keywords={"_": None, "gettext": None, "_l": None, "lazy_gettext": None},
        )
    }
    with (TRANSLATIONS_DIR / "ru/LC_MESSAGES/messages.po").open("rb") as po_file:
        catalog = read_po(po_file)
    translated = {m.id: m.string for m in catalog if m.id}
    assert extracted - set(translated) == set(), "extract and translate: docs/portal.md, Languages"
    for message_id, text in translated.items():
        assert text, message_id
        assert sorted(PLACEHOLDER.findall(message_id)) == sorted(PLACEHOLDER.findall(text))
        assert message_id.count("{") == text.count("{"), message_id


def test_compiles_only_what_changed(tmp_path):
    target = tmp_path / "ru/LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(TRANSLATIONS_DIR / "ru/LC_MESSAGES/messages.po", target)
    assert compile_translations(tmp_path) == [target / "messages.mo"]
    assert compile_translations(tmp_path) == []
    assert compile_translations(tmp_path, force=True) == [target / "messages.mo"]
