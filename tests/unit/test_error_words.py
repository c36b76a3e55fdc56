"""Every error a person can see has Japanese words, the English beside them, and the seed's remedy."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

from adapters.http import words
from orchestrator import errors, messages

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("adapters", "honnin", "orchestrator", "schemas") for p in (ROOT / d).rglob("*.py")]
MESSAGE_MODULES = {"messages", "words", "messages_xid"}  # names whose attributes are Japanese texts


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _status(node: ast.expr) -> int:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, int) else 0


def _japanese_constant(node: ast.expr | None) -> bool:
    """`messages.X`, `words.X` or a call of one: the seed's (or Honnin's) Japanese texts."""
    if isinstance(node, ast.Call):
        node = node.func
    owner = node.value if isinstance(node, ast.Attribute) else None
    return isinstance(owner, ast.Name) and owner.id in MESSAGE_MODULES


def raised_codes() -> list[tuple[str, str | None, bool, str]]:
    """(code, literal message, message is a Japanese constant, where) of every error the code base
    builds with a literal code: HttpError, error_response, Rejection, JsonTextError, Verdict."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            args = list(node.args)
            keywords = {k.arg: k.value for k in node.keywords}
            http = name in {"HttpError", "error_response", "_error_body"}
            if len(args) >= 3 and (http or (name == "Verdict" and _status(args[0]) >= 400)):
                code, message = args[1], args[2]
            elif name in {"error_body", "bilingual"} and len(args) >= 2:
                code, message = args[0], args[1]
            elif name in {"Rejection", "JsonTextError"} and args:
                code, message = args[0], args[1] if len(args) > 1 else keywords.get("message")
            elif name == "Rejection" and "code" in keywords:
                code, message = keywords["code"], keywords.get("message")
            else:
                continue
            literal = _literal(code)
            if literal is not None:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.append((literal, _literal(message), _japanese_constant(message), where))
    return found


def test_the_scan_finds_the_errors_it_is_meant_to_find() -> None:
    codes = {code for code, *_ in raised_codes()}
    assert {"unknown_link", "link_expired", "not_found", "invalid_body", "event_not_accepted"} <= codes
    assert {"malformed_json", "header_timeout", "link_used", "terms_outdated"} <= codes


@pytest.mark.parametrize(("code", "literal", "japanese", "where"), raised_codes())
def test_every_raised_error_has_words_in_both_languages(
    code: str, literal: str | None, japanese: bool, where: str
) -> None:
    if literal is not None and words.is_english(literal):
        assert code in words.JA, f"{where}: {code} needs Japanese words"
    elif japanese or literal is not None:
        assert code in words.EN or code in words.VERIFICATION_EN, f"{where}: {code} needs English words"
    else:  # a message from a variable: either language may come, both must be there
        assert code in words.JA or code in words.EN, where


def _subclasses(cls: type) -> list[type]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def _every_error() -> list[type]:
    """Every HonninError subclass the code base defines (each module imported first)."""
    for package in ("adapters", "orchestrator", "honnin", "schemas"):
        for module in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            importlib.import_module(module.name)
    return _subclasses(errors.HonninError)


@pytest.mark.parametrize("error", _every_error(), ids=lambda e: e.__name__)
def test_every_honnin_error_the_middleware_may_answer_has_japanese_words(error: type) -> None:
    japanese, english = words.bilingual(error.code, "something failed here")
    assert english == "something failed here"
    assert error.code in words.JA or error.code in words.VERIFICATION_EN, error.code
    assert japanese != words.GENERIC or words.JA.get(error.code) == words.GENERIC


def test_a_verifiers_error_in_english_is_the_seeds_message_for_its_code() -> None:
    assert words.bilingual("43", "the platform refused the credentials")[0] == messages.possibly_revoked("43")


def test_verification_codes_are_all_explained() -> None:
    from adapters.ca_revocation import chain, pipeline, revocation

    constants = [
        value
        for module in (chain, pipeline, revocation)
        for name, value in vars(module).items()
        if name.startswith("CODE_") and isinstance(value, str) and value.isdigit()
    ]
    assert set(constants) <= set(words.VERIFICATION_EN)
    assert {"21", "23", "40", "50"} <= set(constants)


def test_an_english_message_moves_to_message_en_and_the_code_says_it_in_japanese() -> None:
    body = words.error_body("link_expired", "this link has expired: start again from the facility's page")
    assert body == {
        "code": "link_expired",
        "message": "このリンクは有効期限が切れています。施設のページから、もう一度やり直してください。",
        "message_en": "this link has expired: start again from the facility's page",
        "details": [],
    }


def test_the_seeds_messages_stay_byte_for_byte_and_get_english_beside_them() -> None:
    for code, text in (
        ("identity_mismatch", messages.IDENTITY_MISMATCH),
        ("23", messages.possibly_revoked("23")),
        ("card_info_not_read", messages.CARD_INFO_NOT_READ),
        ("verification_in_progress", messages.VERIFICATION_PENDING),
    ):
        body = words.error_body(code, text)
        assert body["message"] == text
        assert words.is_english(body["message_en"]), body
    assert "(Code: 23)" in words.error_body("23", messages.possibly_revoked("23"))["message_en"]


def test_an_unknown_code_with_english_words_still_gets_japanese() -> None:
    body = words.error_body("something_new", "something went wrong here")
    assert body["message"] == words.GENERIC
    assert body["message_en"] == "something went wrong here"


def test_a_mixed_message_is_english_and_a_japanese_one_with_a_code_is_not() -> None:
    assert words.is_english("お住まいの自治体 is known once the ID is enabled (ID有効化)")
    assert not words.is_english(messages.possibly_revoked("21"))
    assert not words.is_english(messages.CARD_NOT_READ_YET)


def _remedy(code: str, text: str) -> dict[str, str]:
    [detail] = [d for d in words.error_body(code, text)["details"] if d["type"] == "remedy"]
    return detail


@pytest.mark.parametrize("code", ["21", "23"])
def test_codes_21_and_23_say_renew_the_card_with_the_seeds_note(code: str) -> None:
    detail = _remedy(code, messages.possibly_revoked(code))
    assert detail["remedy"] == "マイナンバーカードを更新※の上、再度、署名確認を行ってください。"
    assert detail["note"] == messages.RENEW_CARD_NOTE
    assert messages.RENEW_CARD_NOTE == (
        "※マイナンバーカードの更新については、お住まいの市区町村窓口へお問い合わせください。"
    )
    causes = {"21": "証明書の有効期限が切れています。", "23": "証明書の失効されています。"}
    assert detail["cause"] == causes[code]
    assert words.is_english(detail["remedy_en"])


OTHER_CODES = ["22", "25", "30", "33", "34", "40", "41", "42", "43", "44", "50", "unknown"]


@pytest.mark.parametrize("code", OTHER_CODES)
def test_every_other_code_says_try_again_later(code: str) -> None:
    detail = _remedy(code, messages.possibly_revoked(code))
    assert detail == {
        "type": "remedy",
        "remedy": "時間をおいて、再度、署名確認を行ってください。",
        "remedy_en": "wait a while, then sign again",
    }


def test_identity_mismatch_and_the_card_info_error_carry_the_seeds_cause_and_remedy() -> None:
    mismatch = _remedy("identity_mismatch", messages.IDENTITY_MISMATCH)
    assert mismatch["cause"] == (
        "本人確認の際に読み取った情報と異なるマイナンバーカードを使用されている可能性がございます。"
    )
    assert mismatch["remedy"] == (
        "本人確認の際に使用したマイナンバーカードであるか、ご確認の上、再度、署名確認を行ってください。"
    )
    card = _remedy("card_info_not_read", messages.CARD_INFO_NOT_READ)
    assert card["remedy"] == (
        "再度、アプリからマイナンバーカードを読み取り、②の「情報を反映する」を押してください。"
    )


def test_errors_outside_the_seeds_table_carry_no_remedy() -> None:
    for code, text in (
        ("verification_in_progress", messages.VERIFICATION_PENDING),
        ("not_found", "no such registration"),
        ("invalid_body", "invalid body: x: y"),
    ):
        assert words.error_body(code, text)["details"] == []


def test_validation_details_come_first_and_the_individual_number_is_named_in_japanese() -> None:
    refusal = "Value error, 個人番号（マイナンバー）は受け付けていません。"
    details = [{"loc": "card.name", "type": "value_error", "msg": refusal}]
    japanese = words.invalid_body_ja(details)
    assert japanese.startswith("個人番号（マイナンバー）は受け付けていません。")
    missing = [{"loc": "x", "type": "missing", "msg": "Field required"}]
    assert words.invalid_body_ja(missing) == words.JA["invalid_body"]
