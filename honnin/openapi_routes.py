"""Every route both HTTP APIs serve, for the OpenAPI document; a test holds it to the router."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from honnin import __version__
from honnin.openapi import Route, Webhook, document
from honnin.openapi_ops import OPS_ROUTES
from schemas import api_card_bridge as bridge
from schemas import api_web as web
from schemas import api_webhooks as hooks
from schemas import api_xid as xid
from schemas.events import event_type

ONE = "/v1/registrations/{registration_id}"
LINK = "/app/v1/links/{token}"
WEB_ERRORS = (400, 401, 404, 409, 413, 415, 422, 503)
LINK_ERRORS = (403, 404, 409, 410, 503)
XID = "/app/v1/xid/registrations"
XID_ONE = XID + "/{registration_id}"
XID_ERRORS = (400, 401, 404, 409, 413, 415, 422, 503)
EMAIL_LINK = "/app/v1/xid/email-confirmations/{token}"
OS_QUERY = (
    "os",
    "the phone's OS: the PC page shows one QR code per OS, each encoding the link with ?os=;"
    " any other value is 400 unknown_os",
    ("ios", "android"),
)
LANDING = (
    "The app asks with Accept: application/json (or none) and gets this JSON. A browser (Accept ranking"
    " text/html first: the QR code, 【アプリを起動する】 without the app) gets a landing page (text/html)"
    " whose button opens the app: honnin-jpki://open?link=… on iOS, intent://open?link=…"
    "#Intent;scheme=honnin-jpki;end on Android (?os= chooses; otherwise the User-Agent, or both)."
    " In demo mode it also links the phone-app simulator. Errors are a page too, with the same status."
)


def _page(method: str, path: str, summary: str) -> Route:
    """A console page (/ops/): HTML for a person, its session a cookie, every POST with a CSRF token."""
    return Route(method, path, summary, None, tag="console", security=False, media_type="text/html")


CONSOLE_ROUTES = [
    _page("GET", "/ops/", "The console: counts, charts, parked and failed registrations, dead letters"),
    _page("GET", "/ops/login", "The console's login form (an operator token)"),
    _page("POST", "/ops/login", "Log in: an operator token for a signed, expiring session cookie"),
    _page("POST", "/ops/logout", "Log out"),
    _page("POST", "/ops/replay", "Replay: step=dry_run shows what would happen, step=confirm does it"),
    _page("GET", "/ops/registrations/{registration_id}", "One registration, its history and decisions"),
]


def _app(
    method: str,
    path: str,
    summary: str,
    response: type[BaseModel],
    *,
    status: int = 200,
    request: type[BaseModel] | None = None,
    errors: tuple[int, ...] = XID_ERRORS,
    body_required: bool = True,
) -> Route:
    """An xID app route: tagged `xid`, behind the app client credential."""
    return Route(
        method, path, summary, response, status, request, errors,
        tag="xid", scheme="appClient", body_required=body_required,
    )  # fmt: skip


XID_ROUTES = [
    _app(
        "POST",
        XID,
        "Start an xID registration with the accepted terms",
        xid.XidStarted,
        status=201,
        request=xid.XidStartRequest,
        errors=XID_ERRORS,
    ),
    _app(
        "GET",
        XID_ONE,
        "State, verification, e-mail delivery and municipality",
        xid.XidStatus,
        errors=(401, 404),
    ),
    _app(
        "POST",
        XID_ONE + "/certificate",
        "The signing certificate: its four facts come back (基本情報の確認)",
        xid.FactsShown,
        request=xid.CertificateRequest,
        errors=XID_ERRORS,
    ),
    _app(
        "POST",
        XID_ONE + "/consent",
        "本人確認に関する同意: the challenge and the bytes to sign",
        xid.ChallengeToSign,
        request=xid.ConsentRequest,
        errors=XID_ERRORS,
    ),
    _app(
        "GET",
        XID_ONE + "/challenge",
        "What to sign now (a fresh challenge after a failure)",
        xid.ChallengeToSign,
        errors=(401, 404, 409),
    ),
    _app(
        "POST",
        XID_ONE + "/signature",
        "The card's signature over the consent message",
        xid.SignatureTaken,
        status=202,
        request=xid.XidSignatureRequest,
        errors=XID_ERRORS,
    ),
    _app(
        "POST",
        XID_ONE + "/activation",
        "ID有効化: the device public key; お住まいの自治体 comes back",
        xid.Enabled,
        request=xid.ActivationRequest,
        errors=XID_ERRORS,
    ),
    _app(
        "POST",
        XID_ONE + "/email",
        "メールアドレスの登録 / 再入力する: a confirmation link is mailed",
        xid.EmailQueued,
        status=202,
        request=xid.EmailRequest,
        errors=XID_ERRORS,
    ),
    _app(
        "POST",
        XID_ONE + "/start-using",
        "利用を開始する: only after the address is confirmed",
        xid.InUse,
        request=xid.EmptyRequest,
        errors=XID_ERRORS,
        body_required=False,
    ),
    _app(
        "GET", XID_ONE + "/municipality", "お住まいの自治体", xid.MunicipalityAnswer, errors=(401, 404, 409)
    ),
    Route(
        "GET",
        EMAIL_LINK,
        "メールアドレス確認: the page the mailed link opens (never confirms by itself)",
        xid.LinkAnswer,
        errors=(404, 409, 410),
        tag="xid",
        security=False,
        media_type="text/html",
    ),
    Route(
        "POST",
        EMAIL_LINK,
        "メールアドレス確認: the page's button confirms the address (JSON on request)",
        xid.LinkAnswer,
        errors=(404, 409, 410),
        tag="xid",
        security=False,
    ),
]

FEED_PARAMETERS = [
    {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "the cursor of the last page; without it, the oldest event kept",
        "schema": {"type": "string"},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    {
        "name": "wait",
        "in": "query",
        "required": False,
        "description": "seconds to wait for an event when there is none yet (long poll)",
        "schema": {"type": "number", "minimum": 0, "maximum": 30, "default": 0},
    },
]

ROUTES = [
    Route(
        "POST",
        "/v1/registrations",
        "Start a registration (必要事項を入力, 【アプリを起動する】)",
        web.StartRegistrationResponse,
        201,
        web.StartRegistrationRequest,
        WEB_ERRORS,
    ),
    Route(
        "GET",
        ONE,
        "A registration's state and its last verification outcome",
        web.RegistrationStatus,
        errors=(401, 404),
    ),
    Route(
        "DELETE",
        ONE,
        "Cancel the registration",
        web.CancelResponse,
        202,
        web.CancelRequest,
        WEB_ERRORS,
        body_required=False,
        idempotency_key=True,
    ),
    Route(
        "POST",
        ONE + "/reflect",
        "【情報を反映する】: the card's facts, or the seed's error before the read",
        web.ReflectResponse,
        errors=WEB_ERRORS,
    ),
    Route(
        "POST",
        ONE + "/confirm",
        "【マイナンバーカードの確認へ】: confirm and get the signing link",
        web.SignLinkResponse,
        request=web.ConfirmRequest,
        errors=WEB_ERRORS,
        idempotency_key=True,
    ),
    Route(
        "POST",
        ONE + "/sign-link",
        "A fresh signing link for the current challenge (sign again)",
        web.SignLinkResponse,
        errors=WEB_ERRORS,
    ),
    Route(
        "POST",
        ONE + "/complete",
        "【完了する】: activate, or the seed's error verbatim",
        web.CompleteResponse,
        errors=WEB_ERRORS,
        idempotency_key=True,
    ),
    Route(
        "GET",
        LINK,
        "What this one-time link is for (and the challenge for a signing link)",
        bridge.LinkInfo,
        errors=LINK_ERRORS,
        tag="card-bridge",
        security=False,
        query=(OS_QUERY,),
        extra={"description": LANDING},
    ),
    Route(
        "POST",
        LINK + "/card-info",
        "The card-info application's four facts (券面事項入力補助AP)",
        bridge.CardInfoAccepted,
        request=bridge.CardInfoRequest,
        errors=(400, 413, 415, 422, *LINK_ERRORS),
        tag="card-bridge",
        security=False,
    ),
    Route(
        "GET",
        LINK + "/challenge",
        "The challenge the card signs",
        bridge.ChallengeResponse,
        errors=LINK_ERRORS,
        tag="card-bridge",
        security=False,
    ),
    Route(
        "POST",
        LINK + "/signature",
        "The signing certificate and the signature over the challenge",
        bridge.SignatureAccepted,
        202,
        bridge.SignatureRequest,
        (400, 413, 415, 422, *LINK_ERRORS),
        tag="card-bridge",
        security=False,
    ),
    Route(
        "GET",
        LINK + "/qr.svg",
        "The link as a QR code (PC/tablet flow)",
        None,
        errors=LINK_ERRORS,
        tag="card-bridge",
        security=False,
        media_type="image/svg+xml",
        query=(OS_QUERY,),
    ),
    Route(
        "GET",
        LINK + "/qr.png",
        "The link as a QR code, PNG",
        None,
        errors=LINK_ERRORS,
        tag="card-bridge",
        security=False,
        media_type="image/png",
        query=(OS_QUERY,),
    ),
    *XID_ROUTES,
    Route(
        "PUT",
        "/v1/webhook",
        "Register or replace the webhook endpoint: the signing secret, shown once (a new PUT rotates it)",
        hooks.WebhookSecret,
        request=hooks.PutWebhookRequest,
        errors=(400, 401, 413, 415, 422),
    ),
    Route(
        "GET",
        "/v1/webhook",
        "The endpoint's URL, state and last delivery (never the secret)",
        hooks.WebhookStatus,
        errors=(401, 404),
    ),
    Route("DELETE", "/v1/webhook", "Remove the endpoint", None, 204, errors=(401, 404)),
    Route(
        "POST",
        "/v1/webhook/test",
        "Send a test event (webhook.test) through the delivery path",
        hooks.WebhookTestSent,
        202,
        errors=(401, 404),
    ),
    Route(
        "GET",
        "/v1/events",
        "This facility's events in commit order after the cursor, long-polled",
        hooks.FeedPage,
        errors=(400, 401),
        extra={"parameters": FEED_PARAMETERS},
    ),
    *OPS_ROUTES,
    Route("GET", "/openapi.json", "This document", None, tag="meta", security=False),
    Route("GET", "/healthz", "Liveness and the outbox backlog", None, tag="meta", security=False),
    *CONSOLE_ROUTES,
    Route(
        "GET",
        "/metrics",
        "Prometheus metrics (text exposition format; see the README's Metrics section)",
        None,
        tag="meta",
        security=False,
        media_type="text/plain",
    ),
]


WEBHOOK_SUMMARIES = {
    "registration.challenge_issued": "A challenge to sign was issued (confirmed, or after a failure)",
    "registration.signature_verified": "The card's signature passed: 【完了する】 may activate",
    "registration.verification_failed": "The signature failed, with the code and the seed's message",
    "registration.activated": "The account was activated",
    "registration.expired": "The registration expired before activation",
    "registration.cancelled": "The registration was cancelled",
    "registration.event_rejected": "A step was refused, with the code and the message",
}
WEBHOOKS = (
    *(
        Webhook(event_type(model), WEBHOOK_SUMMARIES[event_type(model)], model)
        for model in hooks.FACILITY_EVENT_MODELS
    ),
    Webhook("webhook.test", "A test event the facility asked for (POST /v1/webhook/test)", hooks.WebhookTest),
)


@cache
def openapi_document() -> dict[str, Any]:
    return document(
        ROUTES,
        title="Honnin: facility API, card bridge, xID app API and operator API",
        version=__version__,
        webhooks=WEBHOOKS,
    )
