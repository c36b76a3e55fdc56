"""The embedded file outbox on a real folder, and the mailer bootstrap builds from Settings."""

from __future__ import annotations

import email
import email.policy
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from adapters.clock import FakeClock
from adapters.mail import FileOutbox, Sender, SmtpMailer
from honnin.bootstrap import bootstrap
from honnin.mail import make_mailer
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError, MailTemporaryError
from orchestrator.mails import email_confirmation

TO = "hanako@example.jp"


def confirmation(message_id: str = "mail-0001", link: str = "https://honnin.example/c?t=first"):
    expires = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    return email_confirmation(message_id=message_id, to=TO, link=link, expires_at=expires)


def outbox(folder: Path) -> FileOutbox:
    return FileOutbox(folder, Sender("no-reply@honnin.example", "本人確認"), FakeClock())


async def test_one_private_eml_per_message_named_by_its_id(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    box = outbox(folder)
    with capture_logs() as logs:
        await box.send(confirmation("mail-0001"))
        await box.send(confirmation("mail-0002"))
    assert sorted(p.name for p in folder.iterdir()) == ["mail-0001.eml", "mail-0002.eml"]
    assert stat.S_IMODE(os.stat(folder / "mail-0001.eml").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    mail = email.message_from_bytes((folder / "mail-0001.eml").read_bytes(), policy=email.policy.default)
    assert mail["Subject"] == "【xID】メールアドレスの確認"
    assert mail["To"] == TO
    assert "https://honnin.example/c?t=first" in mail.get_body(("plain",)).get_content()
    assert [entry["event"] for entry in logs] == ["mail.written", "mail.written"]
    assert TO not in str(logs)


async def test_sending_the_same_id_again_replaces_the_file(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    await box.send(confirmation(link="https://honnin.example/c?t=first"))
    await box.send(confirmation(link="https://honnin.example/c?t=second"))
    assert [p.name for p in tmp_path.iterdir()] == ["mail-0001.eml"]
    mail = email.message_from_bytes(box.path_of("mail-0001").read_bytes(), policy=email.policy.default)
    body = mail.get_body(("plain",)).get_content()
    assert "t=second" in body
    assert "t=first" not in body


async def test_a_write_that_fails_leaves_no_half_file_and_is_temporary(tmp_path: Path, monkeypatch) -> None:
    box = outbox(tmp_path)
    await box.send(confirmation("mail-0001", link="https://honnin.example/c?t=first"))
    before = box.path_of("mail-0001").read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)  # the crash between writing and renaming
    with pytest.raises(MailTemporaryError) as failed:
        await box.send(confirmation("mail-0001", link="https://honnin.example/c?t=second"))
    assert failed.value.code == "mail_outbox_unwritable"
    assert [p.name for p in tmp_path.iterdir()] == ["mail-0001.eml"], "no temp file left behind"
    assert box.path_of("mail-0001").read_bytes() == before, "the earlier mail is whole"
    monkeypatch.undo()
    await box.send(confirmation("mail-0001", link="https://honnin.example/c?t=second"))
    assert box.path_of("mail-0001").read_bytes() != before, "the retry goes through"


async def test_a_folder_that_cannot_be_made_is_temporary(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(MailTemporaryError):
        await outbox(tmp_path / "file" / "mail").send(confirmation())


# --- settings → mailer ---------------------------------------------------------------------------------


def test_the_default_is_the_file_outbox_in_the_data_folder(tmp_path: Path) -> None:
    mailer = make_mailer(Settings(data_dir=tmp_path), FakeClock())
    assert isinstance(mailer, FileOutbox)
    assert mailer.directory == tmp_path / "mail"
    elsewhere = make_mailer(Settings(data_dir=tmp_path, mail_dir=tmp_path / "out"), FakeClock())
    assert isinstance(elsewhere, FileOutbox)
    assert elsewhere.directory == tmp_path / "out"


def test_smtp_settings_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    for key, value in {
        "HONNIN_MAIL": "smtp",
        "HONNIN_SMTP_HOST": "mail",
        "HONNIN_SMTP_PORT": "1025",
        "HONNIN_SMTP_TLS": "none",
        "HONNIN_SMTP_TIMEOUT_SECONDS": "3.5",
        "HONNIN_MAIL_FROM": "no-reply@honnin.example",
        "HONNIN_MAIL_FROM_NAME": "本人確認",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HONNIN_SMTP_USERNAME", "")  # as compose passes a variable left unset
    monkeypatch.setenv("HONNIN_SMTP_PASSWORD", "")
    mailer = make_mailer(Settings(data_dir=tmp_path), FakeClock())
    assert isinstance(mailer, SmtpMailer)
    config = mailer.config
    assert (config.username, config.password) == (None, None), "no AUTH with empty credentials"
    assert (config.host, config.effective_port, config.tls, config.timeout_seconds) == (
        "mail",
        1025,
        "none",
        3.5,
    )
    assert (mailer.sender.address, mailer.sender.name) == ("no-reply@honnin.example", "本人確認")


@pytest.mark.parametrize(("tls", "port"), [("none", 25), ("starttls", 587), ("tls", 465)])
def test_the_port_follows_the_tls_mode(tls, port, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, mail="smtp", smtp_tls=tls, mail_from="a@honnin.example")
    mailer = make_mailer(settings, FakeClock())
    assert isinstance(mailer, SmtpMailer)
    assert mailer.config.effective_port == port


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"mail": "smtp"}, "HONNIN_MAIL_FROM"),
        ({"mail_from": "not an address"}, "HONNIN_MAIL_FROM"),
        (
            {"mail": "smtp", "mail_from": "a@b.jp", "smtp_tls": "none", "smtp_username": "u",
             "smtp_password": SecretStr("p")},
            "in clear",
        ),
        ({"mail": "smtp", "mail_from": "a@b.jp", "smtp_ca_file": Path("/nonexistent/ca.pem")},
         "SMTP_CA_FILE"),
    ],
)  # fmt: skip
def test_settings_that_cannot_work_are_refused_at_start(overrides, says, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=says):
        make_mailer(Settings(data_dir=tmp_path, **overrides), FakeClock())


async def test_bootstrap_wires_the_mailer_into_the_app(tmp_path: Path) -> None:
    app = await bootstrap(Settings(data_dir=tmp_path, verifier_enabled=False))
    try:
        assert isinstance(app.mailer, FileOutbox)
        await app.mailer.send(confirmation())
        assert (tmp_path / "mail" / "mail-0001.eml").exists()
    finally:
        await app.close()
