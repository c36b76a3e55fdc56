"""The words the seed manuals show the person, verbatim; the web shows them as they are."""

from __future__ import annotations

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
