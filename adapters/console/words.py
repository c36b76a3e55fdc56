"""The console's labels, Japanese first and English beside it."""

from __future__ import annotations

STATES = {
    "new": ("新規", "new"),
    "info_entered": ("情報入力済み", "info entered"),
    "card_read": ("カード読取済み", "card read"),
    "confirmed": ("確認済み", "confirmed"),
    "signature_verified": ("署名検証済み", "signature verified"),
    "id_enabled": ("ID有効化済み", "ID enabled"),
    "email_pending": ("メール確認待ち", "e-mail pending"),
    "email_confirmed": ("メール確認済み", "e-mail confirmed"),
    "activated": ("有効化済み", "activated"),
    "expired": ("期限切れ", "expired"),
    "cancelled": ("取消", "cancelled"),
}
VERIFICATIONS = {
    "pending": ("検証中", "pending"),
    "retrying": ("再試行待ち", "retrying"),
    "passed": ("成功", "passed"),
    "failed": ("失敗", "failed"),
    "parked": ("保留", "parked"),
}
OUTCOMES = {
    "would_replay": ("再実行される", "would replay"),
    "replayed": ("再実行した", "replayed"),
    "handled": ("処理した", "handled"),
    "queued": ("キューに戻した", "queued"),
    "dead_lettered_again": ("再びデッドレター", "dead-lettered again"),
    "skipped": ("対象外", "skipped"),
    "not_found": ("見つからない", "not found"),
    "failed": ("失敗", "failed"),
}


def _both(table: dict[str, tuple[str, str]], key: str) -> str:
    ja, en = table.get(key, (key, key))
    return f"{ja} · {en}"


def state(value: str) -> str:
    return _both(STATES, value)


def verification(value: str) -> str:
    return _both(VERIFICATIONS, value)


def outcome(value: str) -> str:
    return _both(OUTCOMES, value)


def code(value: str) -> str:
    return f"Code {value}"
