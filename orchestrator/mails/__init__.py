"""The mails Honnin writes, rendered from package-data templates (string.Template); every value
put into the HTML part is escaped, and a link must be an http(s) URL."""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone
from functools import cache
from importlib import resources
from string import Template

from orchestrator.ports import MailMessage

JST = timezone(timedelta(hours=9), "JST")  # Japan keeps no daylight saving time


@cache
def _template(name: str) -> Template:
    text = resources.files(__package__).joinpath(f"templates/{name}").read_text(encoding="utf-8")
    return Template(text)


def render(name: str, values: dict[str, str]) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the template `name`; a missing value raises KeyError."""
    subject = _template(f"{name}.subject").substitute(values).strip()
    text = _template(f"{name}.txt").substitute(values)
    escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
    page = _template(f"{name}.html").substitute(escaped, subject=html.escape(subject, quote=True))
    return subject, text, page


def japanese_time(moment: datetime) -> str:
    """2026年10月5日 14:30, in Japan's time."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in time: give it a timezone")
    local = moment.astimezone(JST)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _link(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if (
        scheme not in ("https", "http")
        or not sep
        or not host
        or any(ch.isspace() or not ch.isprintable() for ch in url)
    ):
        raise ValueError("the link must be an http(s) URL without spaces")
    return url


def email_confirmation(
    *, message_id: str, to: str, link: str, expires_at: datetime, service: str = "xID"
) -> MailMessage:
    """メールアドレス確認: the single-use link that confirms `to`, and until when it works."""
    subject, text, page = render(
        "email_confirmation",
        {"service": service, "link": _link(link), "expires": japanese_time(expires_at)},
    )
    return MailMessage(message_id=message_id, to=to, subject=subject, text=text, html=page)
