"""Every error in two languages: `message` in Japanese for the person, `message_en` for logs and
integrators, and the seed's 原因・対処法 as a `remedy` detail after the errors seed 000 §3 lists.

Handlers raise errors in whichever language they have: the seed's words (Japanese, kept byte for
byte) or Honnin's own (English). `bilingual` makes the pair: a Japanese message stays `message`
and its code's English goes to `message_en`; an English one moves to `message_en` and its code's
Japanese becomes `message`. A test holds this table to every code the code base can answer with.
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator import messages
from schemas.privacy import INDIVIDUAL_NUMBER_REFUSED

INDIVIDUAL_NUMBER_JA = INDIVIDUAL_NUMBER_REFUSED.split(" ", 1)[0]  # its Japanese sentence

GENERIC = "処理を完了できませんでした。時間をおいて、もう一度お試しください。"
_ENGLISH = re.compile(r"[A-Za-z]{2,}[ ,]+[A-Za-z]{2,}")  # two English words in a row
_FROM_PAGE = "施設のページから、もう一度やり直してください。"
_NEW_LINK = "施設のページに表示されている新しいリンクを開いてください。"

JA: dict[str, str] = {
    # the seed's own words, should one of these codes come with English
    "card_info_not_read": messages.CARD_INFO_NOT_READ,
    "identity_mismatch": messages.IDENTITY_MISMATCH,
    "verification_in_progress": messages.VERIFICATION_PENDING,
    "signature_not_submitted": messages.SIGNATURE_NOT_SUBMITTED,
    # the facility API
    "unauthorized": "認証に失敗しました。施設のシステム管理者にお問い合わせください。",
    "not_found": "指定された登録またはページが見つかりません。",
    "request_id_reused": "この申込番号は別の登録に使われています。",
    "registration_id_taken": "この登録番号は既に使われています。",
    "registration_ended": "この登録は既に終了しています。" + _FROM_PAGE,
    "not_signable": "現在、署名できる状態ではありません。画面の案内に沿って操作してください。",
    "not_activated": "アカウントの登録が完了していません。",
    "not_yet_accepted": "前の手順が完了していません。画面の案内に沿って操作してください。",
    "unknown_registration": "指定された登録が見つかりません。",
    "event_not_accepted": "この操作は、現在の登録の状態では行えません。",
    "rejected": "この操作は受け付けられませんでした。",
    "duplicate": "この操作は既に受け付けています。",
    "idempotency_conflict": "この再送キーは別の操作に使われています。",
    "invalid_idempotency_key": "再送キー（Idempotency-Key）の形式が正しくありません。",
    "step_not_in_profile": "この登録では、この手順は行えません。",
    "unknown_profile": "この登録の種類は利用できません。",
    "stale_verification": "この確認結果は最新ではありません。",
    "not_parked": "再実行できる確認がありません。",
    "stale_delivery": "このメール送信結果は最新ではありません。",
    "registration_unavailable": (
        "この登録は現在読み込めません。時間をおいて、もう一度お試しください（運用担当者に通知されています）。"
    ),
    "corrupt_row": "この登録は現在読み込めません。運用担当者にお問い合わせください。",
    "quarantined": "この登録は現在読み込めません。運用担当者にお問い合わせください。",
    # the card bridge (the phone app's links)
    "unknown_link": "このリンクは無効です。" + _FROM_PAGE,
    "link_expired": "このリンクは有効期限が切れています。" + _FROM_PAGE,
    "link_used": "このリンクは既に使用されています。" + _FROM_PAGE,
    "link_superseded": "新しい署名用のリンクが発行されています。" + _NEW_LINK,
    "wrong_step": "このリンクは別の手順のためのものです。" + _NEW_LINK,
    "challenge_not_issued": (
        "まだ署名できません。施設のページで【マイナンバーカードの確認へ】を押してください。"
    ),
    "unknown_os": "端末の種類（os）は ios か android を指定してください。",
    # the facility API's outbound channel (webhooks, the event feed)
    "no_webhook": "Webhook の送信先が登録されていません。",
    "webhook_url_invalid": "Webhook の送信先 URL の形式が正しくありません（https://ホスト名/…）。",
    "webhook_https_required": "Webhook の送信先には https の URL を指定してください。",
    "webhook_address_refused": "この送信先には Webhook を送れません（内部・予約済みのアドレス）。",
    "webhook_url_unresolvable": "Webhook の送信先のホスト名を解決できません。",
    "invalid_cursor": "カーソル（after）が正しくありません。前回の応答の cursor を指定してください。",
    "invalid_limit": "件数（limit）の指定が正しくありません。",
    "invalid_wait": "待ち時間（wait）の指定が正しくありません。",
    # the operator API (/ops/v1)
    "operator_unauthorized": "運用担当者の認証に失敗しました（運用担当者のトークンが必要です）。",
    "invalid_query": "検索条件の指定が正しくありません。",
    "invalid_request": "要求の内容が正しくありません。",
    "no_selection": "再実行する対象（登録、デッドレター、コード、期間）を指定してください。",
    # the xID app API
    "not_enabled": "お住まいの自治体は、ID有効化の後に表示されます。",
    "invalid_device_key": "端末の鍵の形式が正しくありません。",
    "link_unknown": "このリンクは無効です。",
    # bodies and the HTTP edge
    "invalid_body": "入力内容に誤りがあります。入力項目をご確認ください。",
    "unsupported_media_type": "送信されたデータの形式に対応していません。",
    "unsupported_charset": "送信されたデータの文字コードに対応していません。",
    "invalid_encoding": "送信されたデータの文字コードに対応していません。",
    "malformed_json": "送信されたデータの形式が正しくありません。",
    "duplicate_key": "送信されたデータの形式が正しくありません。",
    "malformed_body": "送信されたデータを読み取れませんでした。",
    "body_too_large": "送信されたデータが大きすぎます。",
    "timeout": "処理に時間がかかっています。時間をおいて、もう一度お試しください。",
    "header_timeout": "通信に時間がかかりすぎました。もう一度お試しください。",
    "header_too_large": "送信された要求が大きすぎます。",
    "too_many_headers": "送信された要求が大きすぎます。",
    "bad_request": "送信された要求の形式が正しくありません。",
    "method_not_allowed": "この操作には対応していません。",
    "client_disconnected": "通信が切断されました。",
    "internal_error": GENERIC,
    # Honnin's own errors (orchestrator.errors) as the middleware answers them
    "store_unavailable": GENERIC,
    "bus_unavailable": GENERIC,
    "unroutable": GENERIC,
    "version_conflict": GENERIC,
    "retry_later": GENERIC,
    "retryable": GENERIC,
    "permanent": "この操作は受け付けられませんでした。",
    "error": GENERIC,
    "configuration": GENERIC,
    "poison_message": "この操作は受け付けられませんでした。",
    "duplicate_event": "この操作は既に受け付けています。",
    "mail_temporary": GENERIC,
    "mail_permanent": "メールを送信できませんでした。",
}

EN: dict[str, str] = {
    # the seed's errors and Honnin's Japanese words, in English for logs and integrators
    "card_info_not_read": "the card has not been read yet: read it with the app, then press 情報を反映する",
    "identity_mismatch": "the entered user information and the card's information do not match",
    "verification_in_progress": "the card's verification is not finished yet: try again shortly",
    "signature_not_submitted": "the card's verification is not finished: sign with the app",
    "not_yet_accepted": "an earlier step is not done yet",
    "unusable_certificate": "not a usable JPKI signing certificate",
    "malformed_certificate": "the certificate cannot be parsed (Code: 33)",
    "signature_not_over_challenge": "the signature is not over this registration's challenge (Code: 50)",
    "terms_outdated": "the terms were updated: update the app and accept the current terms",
    "certificate_changed": "the card that signed is not the card whose facts were shown",
    "email_not_confirmed": "the e-mail address is not confirmed yet: open the mailed link first",
    "link_expired": "this link has expired",
    "link_voided": "this link was replaced by a newer one",
    "link_used": "this link has been used already",
    "link_unknown": "no such link",
    "registration_ended": "the registration has ended",
}

VERIFICATION_EN: dict[str, str] = {
    "21": "the signing certificate has expired",
    "22": "the signing certificate is not valid yet",
    "23": "the signing certificate has been revoked",
    "25": "the signing certificate is on hold",
    "30": "the certificate does not chain to a trusted root",
    "31": "the certificate path is invalid",
    "32": "the certificate's key usage does not allow signing",
    "33": "the certificate cannot be parsed",
    "34": "not a JPKI signing certificate",
    "40": "no revocation data: try again later",
    "41": "the revocation data is out of date: try again later",
    "42": "the revocation source cannot be reached: try again later",
    "43": "the revocation source refuses the verifier: try again later",
    "44": "a verification step failed: try again later",
    "50": "the signature is not over this registration's challenge",
}

REMEDY_EN: dict[str, str] = {
    messages.RENEW_CARD: "renew the My Number Card (at the municipality's office), then sign again",
    messages.TRY_AGAIN_LATER: "wait a while, then sign again",
    "再度、アプリからマイナンバーカードを読み取り、②の「情報を反映する」を押してください。": (
        "read the card with the app again, then press ② 情報を反映する"
    ),
    "本人確認の際に使用したマイナンバーカードであるか、ご確認の上、再度、署名確認を行ってください。": (
        "check that this is the card read for identity verification, then sign again"
    ),
}


def is_english(message: str) -> bool:
    """Honnin's own English words, as opposed to the seed's (or Honnin's) Japanese ones."""
    return _ENGLISH.search(message) is not None


def english_of(code: str, message: str) -> str:
    """The English for a Japanese message: by its code; a verification code by its meaning."""
    if code in VERIFICATION_EN:
        return f"the card may have been revoked (Code: {code}): {VERIFICATION_EN[code]}"
    return EN.get(code) or f"see the code: {code}"


def bilingual(code: str, message: str) -> tuple[str, str]:
    """(`message` in Japanese, `message_en`) for an error with this code and text."""
    if is_english(message):
        if code in VERIFICATION_EN:  # a verifier's error: the seed's words for its code
            return messages.possibly_revoked(code), message
        return JA.get(code, GENERIC), message
    return message, english_of(code, message)


def remedy_detail(message: str) -> dict[str, Any] | None:
    """The `details` entry with the seed's 原因・対処法 for this (Japanese) message, if it has one."""
    found = messages.remedy_for(message)
    if found is None:
        return None
    detail: dict[str, Any] = {"type": "remedy", "cause": found.cause, "remedy": found.remedy}
    detail.update(note=found.note, remedy_en=REMEDY_EN[found.remedy])
    return {key: value for key, value in detail.items() if value is not None}


def invalid_body_ja(details: list[dict[str, Any]]) -> str:
    """A 422 in Japanese: the individual number's refusal said first when it is the reason."""
    refused = any(str(d.get("msg", "")).find(INDIVIDUAL_NUMBER_JA) >= 0 for d in details)
    return (INDIVIDUAL_NUMBER_JA if refused else "") + JA["invalid_body"]


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None, *, message_en: str | None = None
) -> dict[str, Any]:
    """The one error shape: `code`, `message` (Japanese), `message_en`, `details` (a list; the
    seed's remedy, when there is one, is its entry of `type` `remedy`). With `message_en` given,
    `message` is taken as the Japanese."""
    japanese, english = (message, message_en) if message_en is not None else bilingual(code, message)
    listed = list(details or [])
    remedy = remedy_detail(japanese)
    if remedy is not None:
        listed.append(remedy)
    return {"code": code, "message": japanese, "message_en": english, "details": listed}
