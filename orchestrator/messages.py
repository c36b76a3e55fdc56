"""The words the seed manuals show the person, verbatim; the web shows them as they are."""

from __future__ import annotations

import re
from dataclasses import dataclass

CARD_INFO_NOT_READ = (
    "情報の取得に失敗しました。アプリで読み取りが完了してから「情報を反映する」を押してください。"
)
CARD_INFO_REFLECTED = "マイナンバーカードの読み取りが完了しました。"
IDENTITY_MISMATCH = "入力された利用者情報と読み取られたカードの情報が一致しません"
_POSSIBLY_REVOKED = "失効済みのマイナンバーカードの可能性があります。(Code: {code})"

CODE_EXPIRED = "21"
CODE_REVOKED = "23"
CODE_IDENTITY_MISMATCH = "identity_mismatch"

VERIFICATION_PENDING = "マイナンバーカードの確認が完了していません。しばらくしてから再度お試しください。"
CARD_NOT_READ_YET = (
    "マイナンバーカードの読み取りが完了していません。"
    "アプリで読み取りを行い、「情報を反映する」を押してから「マイナンバーカードの確認へ」を押してください。"
)
SIGNATURE_NOT_SUBMITTED = "マイナンバーカードの確認が完了していません。アプリで署名を行ってください。"


def possibly_revoked(code: str) -> str:
    """「失効済み…(Code: XX)」: 21 expired, 23 revoked, anything else temporary."""
    return _POSSIBLY_REVOKED.format(code=code)


def message_for_failure(code: str) -> str:
    """What the web shows for a verification failure with this code."""
    if code == CODE_IDENTITY_MISMATCH:
        return IDENTITY_MISMATCH
    return possibly_revoked(code)


@dataclass(frozen=True)
class Remedy:
    """Seed 000 §3's 原因・対処法 for one error, verbatim: the cause (when the seed names one),
    what to do, and the seed's ※ note."""

    remedy: str
    cause: str | None = None
    note: str | None = None


# Seed 000 §3, 原因・対処法 (「証明書の失効されています。」 is the seed's wording, kept as it is).
RENEW_CARD = "マイナンバーカードを更新※の上、再度、署名確認を行ってください。"
RENEW_CARD_NOTE = "※マイナンバーカードの更新については、お住まいの市区町村窓口へお問い合わせください。"
TRY_AGAIN_LATER = "時間をおいて、再度、署名確認を行ってください。"
_REMEDIES = {
    CARD_INFO_NOT_READ: Remedy(
        cause="マイナンバーカードの情報取得ができませんでした。",
        remedy="再度、アプリからマイナンバーカードを読み取り、②の「情報を反映する」を押してください。",
    ),
    IDENTITY_MISMATCH: Remedy(
        cause="本人確認の際に読み取った情報と異なるマイナンバーカードを使用されている可能性がございます。",
        remedy="本人確認の際に使用したマイナンバーカードであるか、ご確認の上、再度、署名確認を行ってください。",
    ),
    possibly_revoked(CODE_EXPIRED): Remedy(
        cause="証明書の有効期限が切れています。", remedy=RENEW_CARD, note=RENEW_CARD_NOTE
    ),
    possibly_revoked(CODE_REVOKED): Remedy(
        cause="証明書の失効されています。", remedy=RENEW_CARD, note=RENEW_CARD_NOTE
    ),
}
_ANY_CODE = re.compile(re.escape(_POSSIBLY_REVOKED).replace(re.escape("{code}"), r"[A-Za-z0-9_]{1,32}"))


def remedy_for(message: str) -> Remedy | None:
    """The seed's 原因・対処法 for one of its §3 errors, found by the error's own text; any
    「失効済み…(Code: XX)」 other than 21 and 23 is the seed's 「上記以外」: try again later."""
    found = _REMEDIES.get(message)
    if found is None and _ANY_CODE.fullmatch(message):
        return Remedy(remedy=TRY_AGAIN_LATER)
    return found
