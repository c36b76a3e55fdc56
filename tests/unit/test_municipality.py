"""The municipality from a certificate's address: codes, the forms an address takes, and refusals."""

from __future__ import annotations

import pytest

from orchestrator.municipality import (
    by_code,
    check_digit,
    is_valid_code,
    municipalities,
    resolve,
    with_check_digit,
)
from orchestrator.municipality.index import _forms
from orchestrator.municipality.text import fold


def flags(address: str, *substituted: str) -> str:
    """The certificate's substitute flags: 1 at each position holding one of `substituted`."""
    return "".join("1" if ch in substituted else "0" for ch in address)


def code_of(address: str, substituted: str = "") -> tuple[str, str] | None:
    found = resolve(address, substituted)
    return (found.code, found.name) if found else None


# --- codes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["131016", "011002", "011011", "141003", "141011", "271004", "132110", "221384", "472018"],
)
def test_known_codes_carry_the_published_check_digit(code) -> None:
    assert with_check_digit(code[:5]) == code
    assert is_valid_code(code)


def test_the_check_digit_rule_at_its_edges() -> None:
    assert check_digit("01101") == "1", "a remainder of 0 gives 11, written 1"
    assert check_digit("13211") == "0", "a remainder of 1 gives 10, written 0"
    assert not is_valid_code("131017")
    assert not is_valid_code("13101")
    assert not is_valid_code("１３１０１６")
    with pytest.raises(ValueError, match="five ASCII digits"):
        check_digit("1310")


def test_every_row_of_the_table_is_valid_and_found_by_its_code() -> None:
    table = municipalities()
    assert len(table) == 1912
    assert all(is_valid_code(m.code) for m in table)
    assert all(by_code(m.code) is m for m in table)
    assert by_code("131017") is None


def test_the_table_is_of_2024_or_later_hamamatsu_has_three_wards() -> None:
    wards = sorted((m.code, m.ward) for m in municipalities() if m.city == "浜松市" and m.ward)
    assert wards == [("221384", "中央区"), ("221392", "浜名区"), ("221406", "天竜区")]
    designated = {m.city for m in municipalities() if m.ward}
    assert len(designated) == 20
    assert all(any(m.city == city and not m.ward for m in municipalities()) for city in designated)


def test_no_municipality_name_begins_another_so_only_flags_make_an_address_ambiguous() -> None:
    table = municipalities()
    designated = {(m.prefecture, m.city) for m in table if m.ward}
    forms = sorted(
        (fold(form), whole, m.code)
        for m in table
        for form, whole in _forms(m, (m.prefecture, m.city) in designated)
    )
    clashes = [
        (a, b)
        for i, (a, whole, code) in enumerate(forms)
        if not whole
        for b, _, other in forms[i + 1 : i + 40]
        if b.startswith(a) and other != code
    ]
    assert clashes == []


# --- names the brief and the data pin down --------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("東京都千代田区千代田1-1", ("131016", "東京都千代田区")),
        ("北海道札幌市", ("011002", "北海道札幌市")),
        ("北海道札幌市中央区北1条西2丁目", ("011011", "北海道札幌市中央区")),
        ("神奈川県横浜市", ("141003", "神奈川県横浜市")),
        ("神奈川県横浜市鶴見区鶴見中央3-20-1", ("141011", "神奈川県横浜市鶴見区")),
        ("大阪府大阪市", ("271004", "大阪府大阪市")),
        ("東京都小平市小川町2-1333", ("132110", "東京都小平市")),
        ("東京都品川区広町2-1-10", ("131091", "東京都品川区")),  # the seed's screen
    ],
)
def test_known_municipalities(address, expected) -> None:
    assert code_of(address) == expected


# --- ヶ / ケ / が -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("茨城県龍ケ崎市3710", "082082"),
        ("茨城県龍ヶ崎市3710", "082082"),
        ("茨城県龍が崎市3710", "082082"),
        ("茨城県龍ｹ崎市3710", "082082"),
        ("埼玉県鶴ヶ島市大字三ツ木16-1", "112411"),
        ("埼玉県鶴ケ島市大字三ツ木16-1", "112411"),
        ("千葉県袖ケ浦市坂戸市場1-1", "122297"),
        ("千葉県袖ヶ浦市坂戸市場1-1", "122297"),
        ("青森県西津軽郡鰺ヶ沢町本町209-2", "023213"),
        ("青森県西津軽郡鰺ケ沢町本町209-2", "023213"),
        ("岐阜県不破郡関ヶ原町大字関ケ原894-58", "213624"),
        ("神奈川県横浜市保土ヶ谷区川辺町2-9", "141062"),
        ("茨城県かすみケうら市上土田461", "082309"),
    ],
)
def test_every_form_of_the_small_ke(written, code) -> None:
    assert code_of(written)[0] == code


# --- old and new kanji ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "code", "name"),
    [
        ("東京都西多摩郡檜原村467-1", "133078", "東京都檜原村"),
        ("東京都西多摩郡桧原村467-1", "133078", "東京都檜原村"),
        ("茨城県竜ケ崎市3710", "082082", "茨城県龍ケ崎市"),
        ("長野県下伊那郡天竜村平岡878", "204137", "長野県天龍村"),
        ("青森県西津軽郡鯵ヶ沢町本町209-2", "023213", "青森県鰺ヶ沢町"),
        ("北海道岩見澤市鳩が丘1-1-1", "012106", "北海道岩見沢市"),
        ("青森県上北郡野邊地町字野辺地123-1", "024015", "青森県野辺地町"),
        ("青森県上北郡野邉地町字野辺地123-1", "024015", "青森県野辺地町"),
        ("神奈川県平\ufa10市浅間町9-1", "142034", "神奈川県平塚市"),  # 塚 U+FA10
        ("香川県髙松市番町1-8-15", "372013", "香川県高松市"),
        ("長\ufa11県長\ufa11市魚の町4-1", "422011", "長崎県長崎市"),  # 﨑 U+FA11
        ("静岡縣濱松市中央区元城町103-2", "221384", "静岡県浜松市中央区"),
        ("廣島縣廣島市中區國泰寺町1-6-34", "341011", "広島県広島市中区"),
        ("高知県高岡郡檮原町梼原1444-1", "394050", "高知県梼原町"),
        ("福岡県糟屋郡須惠町大字須恵771", "403440", "福岡県須恵町"),
        ("長野県木曾郡木曾町福島2326-6", "204323", "長野県木曽町"),
    ],
)
def test_old_and_variant_kanji(written, code, name) -> None:
    assert code_of(written) == (code, name)


# --- 代替文字 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "substitutes", "code"),
    [
        ("東京都西多摩郡〓原村467-1", "〓", "133078"),
        ("長崎県長〓市魚の町4-1", "〓", "422011"),
        ("茨城県■ケ崎市3710", "■", "082082"),
        ("東京都千代田区千代田1-1", "代", "131016"),  # a substitute that happens to be the right one
        ("北海道＊幌市中央区北1条西2丁目", "＊", "011011"),
    ],
)
def test_a_substituted_character_matches_any_character(address, substitutes, code) -> None:
    assert code_of(address, flags(address, substitutes))[0] == code


def test_a_substitute_character_not_flagged_is_only_itself() -> None:
    assert resolve("東京都西多摩郡〓原村467-1") is None
    assert resolve("茨城県■ケ崎市3710", "0" * 11) is None


def test_a_substituted_character_in_the_street_part_changes_nothing() -> None:
    address = "東京都品川区広〓2-1-10"
    assert code_of(address, flags(address, "〓"))[0] == "131091"


@pytest.mark.parametrize(
    ("address", "substitutes"),
    [
        ("東京都〓〓市中町1-1", "〓"),  # 府中市, 調布市, 町田市, … and 北区 followed by 市
        ("北海道〓〓郡〓〓町", "〓"),
        ("〓〓〓府中市宮西町2-24", "〓"),  # 東京都 or 広島県
        ("長〓県長〓市魚の町4-1", "〓"),  # 長崎県長崎市 or 長野県長野市
    ],
)
def test_substitutes_that_leave_more_than_one_municipality_give_none(address, substitutes) -> None:
    assert resolve(address, flags(address, substitutes)) is None


@pytest.mark.parametrize("bad_flags", ["0101", "0" * 30, "000000200000", "00000x000000"])
def test_flags_that_cannot_belong_to_the_address_give_none(bad_flags) -> None:
    assert resolve("東京都千代田区千代田1", bad_flags) is None


# --- with or without the 郡 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("with_county", "without", "code"),
    [
        ("東京都西多摩郡檜原村467-1", "東京都檜原村467-1", "133078"),
        ("北海道虻田郡ニセコ町字富士見47", "北海道ニセコ町字富士見47", "013951"),
        ("北海道上川郡東川町東町1-16-1", "北海道東川町東町1-16-1", "014583"),
        ("北海道中川郡池田町西1条7-11", "北海道池田町西1条7-11", "016446"),
        ("長野県北安曇郡池田町大字池田3203-1", "長野県池田町大字池田3203-1", "204811"),
        ("群馬県邑楽郡千代田町赤岩1895-1", "群馬県千代田町赤岩1895-1", "105236"),
        ("東京都三宅島三宅村阿古497", "東京都三宅村阿古497", "133817"),
    ],
)
def test_an_address_with_or_without_its_county(with_county, without, code) -> None:
    assert code_of(with_county)[0] == code
    assert code_of(without)[0] == code


def test_the_wrong_county_is_refused() -> None:
    assert resolve("北海道中川郡東川町東町1-16-1") is None, "東川町 is in 上川郡"


@pytest.mark.parametrize(
    ("address", "code"), [("奈良県大和郡山市北郡山町248-4", "292036"), ("福島県郡山市朝日1-23-7", "072036")]
)
def test_cities_with_gun_in_their_own_name(address, code) -> None:
    assert code_of(address)[0] == code


# --- width and spaces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "東京都千代田区千代田１－１",
        "東京都　千代田区　千代田1-1",
        " 東京都 千代田区千代田 1-1 ",
        "東京都千代田区\u3000千代田\uff11",
    ],
)
def test_full_and_half_width_and_spaces(written) -> None:
    assert code_of(written)[0] == "131016"


def test_half_width_katakana_with_voiced_marks_and_flags_after_spaces() -> None:
    assert code_of("北海道虻田郡ﾆｾｺ町")[0] == "013951"
    assert code_of("山梨県南ｱﾙﾌﾟｽ市小笠原376")[0] == "192082"
    spaced = "東京都　西多摩郡　〓原村"
    assert code_of(spaced, flags(spaced, "〓"))[0] == "133078"


# --- what follows the municipality ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("東京都千代田区永田町一丁目7番1号", "131016"),
        ("大阪府大阪市北区中之島1丁目3番20号", "271276"),
        ("東京都北区王子本町1-15-22", "131172"),
        ("北海道札幌市北区北8条西2丁目", "011029"),
        ("岐阜県揖斐郡池田町六之井1468-1", "214043"),
        ("静岡県駿東郡清水町堂庭210-1", "223417"),
        ("大阪府堺市堺区南瓦町3-1", "271411"),
        ("埼玉県さいたま市浦和区常盤6-4-4", "111074"),
    ],
)
def test_the_street_part_after_the_municipality_is_ignored(address, code) -> None:
    assert code_of(address)[0] == code


# --- designated cities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "code", "name"),
    [
        ("神奈川県横浜市中区港町1-1", "141046", "神奈川県横浜市中区"),
        ("静岡県浜松市中央区元城町103-2", "221384", "静岡県浜松市中央区"),
        ("静岡県浜松市浜名区貴布祢3000", "221392", "静岡県浜松市浜名区"),
        ("静岡県浜松市天竜区二俣町二俣481", "221406", "静岡県浜松市天竜区"),
        ("熊本県熊本市中央区手取本町1-1", "431010", "熊本県熊本市中央区"),
        ("福岡県北九州市小倉北区城内1-1", "401064", "福岡県北九州市小倉北区"),
    ],
)
def test_a_designated_city_resolves_to_its_ward(address, code, name) -> None:
    assert code_of(address) == (code, name)


@pytest.mark.parametrize(
    "address",
    [
        "静岡県浜松市中区元城町103-2",  # wards abolished on 2024-01-01
        "静岡県浜松市浜北区西美薗6",
        "静岡県浜松市東区流通元町20-3",
        "神奈川県横浜市未来区1-1",
        "神奈川県横浜市港町1-1",  # the ward left out
    ],
)
def test_a_designated_city_with_no_known_ward_after_it_gives_none(address) -> None:
    assert resolve(address) is None


# --- unknown --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "",
        "   ",
        "東京都",
        "千代田区千代田1-1",  # no prefecture
        "府中市宮西町2-24",  # 東京都 or 広島県
        "東京都横浜市中区",  # a city of another prefecture
        "埼玉県浦和市高砂3-15-1",  # merged into さいたま市 in 2001
        "北海道色丹郡色丹村",  # in 総務省's list, not in Japan Post's: no one is registered there
        "1600 Pennsylvania Avenue NW, Washington",
    ],
)
def test_an_unknown_address_gives_none(address) -> None:
    assert resolve(address) is None
