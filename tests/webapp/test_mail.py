from webapp.mail import send_mail


def test_memory_backend_keeps_messages(app, outbox):
    with app.app_context():
        send_mail("a@b.example", "Hello", "Body")
    assert [(m.to, m.subject, m.body) for m in outbox] == [("a@b.example", "Hello", "Body")]
    assert outbox[0].sender.startswith("AutoCall Cloud")


def test_console_backend_prints(database_url, capsys):
    from tests.conftest import app_config
    from webapp import create_app

    app = create_app(app_config(database_url, mail_backend="console"))
    with app.app_context():
        send_mail("a@b.example", "Hello", "the link")
    out = capsys.readouterr().out
    assert "To: a@b.example" in out and "Subject: Hello" in out and "the link" in out
