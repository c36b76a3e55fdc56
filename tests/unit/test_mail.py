"""Mail without a server: the confirmation template, the MIME it becomes, masking, classification."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone

import aiosmtplib
import pytest

from adapters.mail import RecordingMailer, Sender, classify, to_mime
from orchestrator.errors import MailPermanentError, MailTemporaryError, PermanentError, RetryableError
from orchestrator.mails import email_confirmation, japanese_time, render
from orchestrator.ports import MailMessage
from schemas.privacy import mask_email

EXPIRES = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
LINK = "https://honnin.example/app/v1/email/confirm?token=AbC&lang=ja"


def confirmation(**overrides):
    values = {"message_id": "m-1", "to": "hanako@example.jp", "link": LINK, "expires_at": EXPIRES} | overrides
    return email_confirmation(**values)


# --- the template ---------------------------------------------------------------------------------


def test_the_confirmation_says_what_the_seed_asks() -> None:
    mail = confirmation()
    assert mail.subject == "【xID】メールアドレスの確認"
    for part in (mail.text, mail.html):
        assert "メールアドレス確認" in part
        assert "2026年11月23日 18:30（日本時間）" in part, "the expiry, in Japan's time"
        assert "一度だけ" in part, "single use"
        assert "再入力する" in part, "a new mail on 再入力する"
        assert "使えなくなります" in part, "voids the old link"
        assert "利用を開始する" in part, "what to do next in the app"
        assert "登録が行われたため" in part, "why this mail was sent"
        assert "お心当たりのない場合" in part, "what to do if it was not you"
    assert LINK in mail.text
    assert 'href="https://honnin.example/app/v1/email/confirm?token=AbC&amp;lang=ja"' in mail.html


def test_every_value_in_the_html_is_escaped() -> None:
    mail = confirmation(service='<b>"市"</b>', link="https://x.example/c?a=<script>&b='1'")
    assert "<b>" not in mail.html
    assert "<script>" not in mail.html
    assert "&lt;b&gt;&quot;市&quot;&lt;/b&gt;" in mail.html
    assert "&lt;script&gt;" in mail.html
    assert "&#x27;1&#x27;" in mail.html
    assert '<b>"市"</b>' in mail.text, "plain text is not HTML"


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "ftp://x.example/c",
        "https://",
        "https://x.example/a b",
        "x.example/c",
        "https://x\n",
    ],
)
def test_the_link_must_be_an_http_url(link) -> None:
    with pytest.raises(ValueError, match="http"):
        confirmation(link=link)


def test_times_are_japans_and_naive_ones_are_refused() -> None:
    assert japanese_time(datetime(2026, 12, 31, 15, 0, tzinfo=UTC)) == "2027年1月1日 00:00"
    assert (
        japanese_time(datetime(2026, 1, 5, 9, 5, tzinfo=timezone(timedelta(hours=9)))) == "2026年1月5日 09:05"
    )
    with pytest.raises(ValueError, match="timezone"):
        japanese_time(datetime(2026, 1, 5, 9, 5))


def test_a_value_the_template_needs_and_does_not_get_fails_loudly() -> None:
    with pytest.raises(KeyError):
        render("email_confirmation", {"service": "xID", "link": LINK})


# --- the message and its MIME -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_id", "hanako@example.jp"),
        ("message_id", ""),
        ("message_id", "-starts-with-a-dash"),
        ("message_id", "x" * 129),
        ("message_id", "../escape"),
        ("to", "two@example.jp, three@example.jp"),
        ("to", "no-at-sign"),
        ("to", "a@b.jp\r\nBcc: c@d.jp"),
        ("subject", "件名\r\nBcc: c@d.jp"),
    ],
)
def test_a_message_that_could_inject_or_leak_is_refused(field, value) -> None:
    values = {"message_id": "m-1", "to": "a@b.jp", "subject": "件名", "text": "本文"} | {field: value}
    with pytest.raises(ValueError, match=field):
        MailMessage(**values)


def parsed(mail: MailMessage, sender: Sender | None = None) -> email.message.EmailMessage:
    raw = to_mime(mail, sender or Sender("no-reply@honnin.example", "本人確認"), EXPIRES).as_bytes()
    assert raw.isascii()
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_the_mime_is_multipart_alternative_utf8_with_encoded_japanese_headers() -> None:
    mime = parsed(confirmation())
    assert mime.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mime.iter_parts()] == ["text/plain", "text/html"]
    assert all(p["Content-Transfer-Encoding"] == "base64" for p in mime.iter_parts())
    assert mime["Subject"] == "【xID】メールアドレスの確認"
    assert str(mime["From"]) == "本人確認 <no-reply@honnin.example>"
    assert mime["Message-ID"] == "<m-1@honnin.example>"
    assert mime["Date"].datetime == EXPIRES
    assert mime["Auto-Submitted"] == "auto-generated"


def test_a_text_only_message_is_one_plain_part() -> None:
    mime = parsed(MailMessage("m-2", "a@b.jp", "件名", "本文だけ"))
    assert mime.get_content_type() == "text/plain"
    assert mime.get_content() == "本文だけ\r\n", "text in canonical form, CRLF, inside the base64"


def test_an_internationalised_domain_goes_as_punycode_and_a_non_ascii_local_part_is_permanent() -> None:
    assert str(parsed(MailMessage("m-3", "taro@例え.jp", "件名", "本文"))["To"]) == "taro@xn--r8jz45g.jp"
    with pytest.raises(MailPermanentError) as refused:
        parsed(MailMessage("m-4", "たろう@example.jp", "件名", "本文"))
    assert refused.value.code == "mail_address_unsupported"


# --- masking ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("hanako@example.jp", "h***@e***.jp"),
        ("hanako.koteki@docomo.ne.jp", "h***@d***.n***.jp"),
        ("a@b", "a***@b"),
        ("not-an-address", "***"),
        ("@example.jp", "***"),
    ],
)
def test_mask_email_keeps_a_first_letter_and_the_top_level_domain(address, masked) -> None:
    assert mask_email(address) == masked


# --- classification of what aiosmtplib raises ----------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "4.2.1 busy", "a@b")]),
         MailTemporaryError, "mail_deferred"),
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "5.1.1 <a@b> no", "a@b")]),
         MailPermanentError, "mail_rejected"),
        (aiosmtplib.SMTPDataError(451, "4.3.0 local error"), MailTemporaryError, "mail_deferred"),
        (aiosmtplib.SMTPDataError(554, "5.6.0 rejected"), MailPermanentError, "mail_rejected"),
        (aiosmtplib.SMTPSenderRefused(553, "5.7.1 <x@y> no", "x@y"), MailTemporaryError, "mail_server_setup"),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad"), MailTemporaryError, "mail_server_setup"),
        (aiosmtplib.SMTPAuthenticationError(454, "4.7.0 try later"), MailTemporaryError, "mail_deferred"),
        (aiosmtplib.SMTPConnectTimeoutError("timed out"), MailTemporaryError, "mail_timeout"),
        (aiosmtplib.SMTPReadTimeoutError("timed out"), MailTemporaryError, "mail_timeout"),
        (aiosmtplib.SMTPServerDisconnected("gone"), MailTemporaryError, "mail_unreachable"),
        (ConnectionRefusedError(111, "refused"), MailTemporaryError, "mail_unreachable"),
        (aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."),
         MailTemporaryError, "mail_server_setup"),
        (ValueError("address cannot be encoded"), MailPermanentError, "mail_address_unsupported"),
    ],
)  # fmt: skip
def test_classification(exc, kind, code) -> None:
    error = classify(exc)
    assert (type(error), error.code) == (kind, code)
    assert isinstance(error, RetryableError if kind is MailTemporaryError else PermanentError)
    assert "a@b" not in error.message
    assert "x@y" not in error.message


# --- the fake -----------------------------------------------------------------------------------------


async def test_the_recording_mailer_fails_as_told_then_records() -> None:
    fake = RecordingMailer()
    fake.failures.append(MailTemporaryError("451", smtp_code=451))
    with pytest.raises(MailTemporaryError):
        await fake.send(confirmation())
    await fake.send(confirmation())
    assert [m.message_id for m in fake.attempts] == ["m-1", "m-1"]
    assert [m.message_id for m in fake.sent] == ["m-1"]
    await fake.close()
    assert fake.closed
