from datetime import date

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from portal.rules.ids import (
    DIGITS,
    PROVINCE_CODES,
    USCC_AUTHORITIES,
    USCC_CHARSET,
    birth_date_from_id,
    is_valid_bank_card,
    is_valid_resident_id,
    is_valid_uscc,
    luhn_check_digit,
    mask_bank_card,
    mask_phone,
    mask_resident_id,
    normalize_resident_id,
    org_code_check_char,
    resident_id_check_char,
    sex_from_id,
    uscc_check_char,
)

REAL_ID = "11010519491231002X"  # the GB 11643 example
REAL_USCC = "91350100M000100Y43"

# resident ID


def test_real_resident_ids_are_valid():
    assert is_valid_resident_id(REAL_ID)
    assert is_valid_resident_id("440524188001010014")  # GB 11643 example, male


def test_lower_case_x_and_surrounding_space_are_accepted():
    assert is_valid_resident_id("11010519491231002x")
    assert is_valid_resident_id(f"  {REAL_ID}\n")
    assert normalize_resident_id(" 11010519491231002x ") == REAL_ID
    assert normalize_resident_id(None) == ""


def test_check_char():
    assert resident_id_check_char("11010519491231002") == "X"
    assert resident_id_check_char("44052418800101001") == "4"
    with pytest.raises(ValueError):
        resident_id_check_char("1101051949123100")
    with pytest.raises(ValueError):
        resident_id_check_char("1101051949123100X")


def test_birth_date_and_sex():
    assert birth_date_from_id(REAL_ID) == date(1949, 12, 31)
    assert sex_from_id(REAL_ID) == "F"  # 17th digit 2
    assert sex_from_id("440524188001010014") == "M"  # 17th digit 1
    with pytest.raises(ValueError):
        birth_date_from_id("110105194902300000")  # 30 February
    with pytest.raises(ValueError):
        sex_from_id("123")


@pytest.mark.parametrize(
    "value",
    [
        "110105194912310021",  # wrong check character
        "11010519491231002Y",
        "10010519491231002X",  # province 10 does not exist
        "990105194912310026",  # province 99 does not exist
        "110105194902300000",  # 30 February
        "110105194913010000",  # month 13
        "1101051949123100",  # too short
        "11010519491231002X0",  # too long
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width
        "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",  # Arabic-Indic digits
        "1101051949 231002X",
        "",
        None,
        11010519491231002,
    ],
)
def test_invalid_resident_ids(value):
    assert not is_valid_resident_id(value)


def test_future_birth_date_is_invalid():
    first17 = "11010520300101001"
    value = first17 + resident_id_check_char(first17)
    assert not is_valid_resident_id(value, today=date(2026, 1, 1))
    assert is_valid_resident_id(value, today=date(2030, 1, 1))


def test_born_today_is_valid():
    first17 = "11010520260305001"
    assert is_valid_resident_id(first17 + resident_id_check_char(first17), today=date(2026, 3, 5))


@st.composite
def resident_ids(draw):
    province = draw(st.sampled_from(sorted(PROVINCE_CODES)))
    area = draw(st.text(DIGITS, min_size=4, max_size=4))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)))
    sequence = draw(st.text(DIGITS, min_size=3, max_size=3))
    first17 = f"{province}{area}{born:%Y%m%d}{sequence}"
    return first17 + resident_id_check_char(first17)


@settings(max_examples=100)
@given(resident_ids())
def test_generated_resident_id_is_valid(value):
    assert is_valid_resident_id(value)
    assert is_valid_resident_id(value.lower())


@settings(max_examples=200)
@given(resident_ids(), st.integers(0, 17), st.sampled_from(DIGITS + "X"))
def test_any_single_character_change_invalidates_an_id(value, position, char):
    assume(value[position] != char)
    changed = value[:position] + char + value[position + 1 :]
    assert not is_valid_resident_id(changed)


# USCC and organisation code


def test_real_usccs_are_valid():
    assert is_valid_uscc(REAL_USCC)
    assert is_valid_uscc("914403001922038216")
    assert is_valid_uscc("91440300708461136T")
    assert is_valid_uscc(REAL_USCC.lower())


def test_uscc_check_chars():
    assert uscc_check_char(REAL_USCC[:17]) == "3"
    assert org_code_check_char("M000100Y") == "4"
    assert org_code_check_char("D2143569") == "X"  # the GB 11714 example


def test_org_code_check_char_maps_11_to_zero():
    assert org_code_check_char("00000001") == "9"  # 11 - 2
    assert org_code_check_char("00000000") == "0"  # 11 - 0 = 11 -> '0'


def test_check_char_input_is_validated():
    with pytest.raises(ValueError):
        uscc_check_char("91350100M000100Y")  # 16 chars
    with pytest.raises(ValueError):
        uscc_check_char("91350100M000100I4")  # I is not in the charset
    with pytest.raises(ValueError):
        org_code_check_char("m000100y")


@pytest.mark.parametrize(
    "value",
    [
        "91350100M000100Y44",  # wrong USCC check
        "91350100M000100Y53",  # wrong organisation-code check
        "91350100M000100Y4",  # too short
        "91350100M000100Y430",  # too long
        "9135010OM000100Y43",  # letter O
        "９１３５０１００Ｍ０００１００Ｙ４３",  # full-width
        "",
        None,
    ],
)
def test_invalid_usccs(value):
    assert not is_valid_uscc(value)


def _with_uscc_check(first17):
    return first17 + uscc_check_char(first17)


def test_org_code_check_is_enforced_even_with_right_uscc_check():
    assert not is_valid_uscc(_with_uscc_check("91350100M000100Y5"))


def test_authority_and_region_code_are_checked():
    assert not is_valid_uscc(_with_uscc_check("B1350100M000100Y4"))  # no authority B
    assert not is_valid_uscc(_with_uscc_check("913501A0M000100Y4"))  # letter in region code
    assert is_valid_uscc(_with_uscc_check("Y1350100M000100Y4"))


@st.composite
def usccs(draw):
    authority = draw(st.sampled_from(USCC_AUTHORITIES))
    category = draw(st.sampled_from(USCC_CHARSET))
    region = draw(st.text(DIGITS, min_size=6, max_size=6))
    body = draw(st.text(USCC_CHARSET, min_size=8, max_size=8))
    return _with_uscc_check(authority + category + region + body + org_code_check_char(body))


@settings(max_examples=100)
@given(usccs())
def test_generated_uscc_is_valid(value):
    assert is_valid_uscc(value)


@settings(max_examples=200)
@given(usccs(), st.integers(0, 17), st.sampled_from(USCC_CHARSET))
def test_any_single_character_change_invalidates_a_uscc(value, position, char):
    assume(value[position] != char)
    assert not is_valid_uscc(value[:position] + char + value[position + 1 :])


# bank cards


def test_known_luhn_numbers():
    assert is_valid_bank_card("4111111111111111")
    assert is_valid_bank_card("6011111111111117")
    assert luhn_check_digit("411111111111111") == "1"
    assert luhn_check_digit("7992739871") == "3"  # the textbook example


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",  # wrong check digit
        "411111111111116",  # 15 digits (valid Luhn, too short)
        "41111111111111111113",  # 20 digits
        "4111 1111 1111 1111",
        "411111111111111a",
        "４１１１１１１１１１１１１１１１",  # full-width
        "",
        None,
    ],
)
def test_invalid_bank_cards(value):
    assert not is_valid_bank_card(value)


def test_luhn_needs_digits():
    with pytest.raises(ValueError):
        luhn_check_digit("12a")
    with pytest.raises(ValueError):
        luhn_check_digit("")


cards = st.builds(
    lambda partial: partial + luhn_check_digit(partial),
    st.text(DIGITS, min_size=15, max_size=18),
)


@settings(max_examples=100)
@given(cards)
def test_generated_card_is_valid(value):
    assert is_valid_bank_card(value)


@settings(max_examples=200)
@given(cards, st.integers(0, 18), st.sampled_from(DIGITS))
def test_any_single_digit_change_invalidates_a_card(value, position, digit):
    assume(position < len(value) and value[position] != digit)
    assert not is_valid_bank_card(value[:position] + digit + value[position + 1 :])


# masking


def test_mask_examples():
    assert mask_resident_id("152901199001011234") == "1529**********1234"
    assert mask_bank_card("6222021234567890123") == "622202*********0123"
    assert mask_phone("13812345678") == "138****5678"


def test_mask_keeps_length_of_a_16_digit_card():
    assert mask_bank_card("6222021234560123") == "622202******0123"


@pytest.mark.parametrize("mask", [mask_resident_id, mask_bank_card, mask_phone])
def test_masking_short_or_missing_input_reveals_nothing(mask):
    assert mask(None) == ""
    assert mask("") == ""
    assert mask("1234567") == "*******"
    assert mask("12345678") == "********"


def test_masking_ignores_whitespace():
    assert mask_phone(" 138 1234 5678 ") == "138****5678"


@settings(max_examples=100)
@given(st.text(DIGITS + "X", min_size=15, max_size=18))
def test_mask_resident_id_never_reveals_the_middle(value):
    masked = mask_resident_id(value)
    assert len(masked) == len(value)
    assert set(masked[4:-4]) == {"*"}
    assert masked[:4] + masked[-4:] == value[:4] + value[-4:]


@settings(max_examples=100)
@given(st.text(DIGITS, max_size=14))
def test_mask_short_resident_id_is_all_stars(value):
    assert mask_resident_id(value) == "*" * len(value)


@settings(max_examples=100)
@given(st.text(DIGITS, min_size=16, max_size=19))
def test_mask_bank_card_never_reveals_the_middle(value):
    masked = mask_bank_card(value)
    assert len(masked) == len(value)
    assert set(masked[6:-4]) == {"*"}
    assert masked[:6] + masked[-4:] == value[:6] + value[-4:]


@settings(max_examples=100)
@given(st.text(DIGITS, min_size=11, max_size=13))
def test_mask_phone_never_reveals_the_middle(value):
    masked = mask_phone(value)
    assert len(masked) == len(value)
    assert set(masked[3:-4]) == {"*"}


@settings(max_examples=100)
@given(st.one_of(st.none(), st.text(st.characters(blacklist_characters="*"), max_size=25)))
def test_masking_never_returns_a_non_empty_raw_value(value):
    for mask in (mask_resident_id, mask_bank_card, mask_phone):
        masked = mask(value)
        assert not masked or masked != "".join(value.split())
