"""Identifiers: resident ID (GB 11643), USCC (GB 32100 with GB 11714 inside), bank cards; masking.

Only ASCII characters are accepted: full-width and other Unicode digits are invalid.
"""

from datetime import date

DIGITS = "0123456789"

# GB/T 2260 province-level prefixes (incl. 71 Taiwan, 81 Hong Kong, 82 Macao).
PROVINCE_CODES = frozenset(
    str(n)
    for n in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    )
)

_ID_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))  # 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, ...
_ID_CHECK = "10X98765432"  # indexed by the weighted sum mod 11

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
USCC_AUTHORITIES = "123456789ANY"  # 登记管理部门码 of GB 32100
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CHARSET = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # value = index: A=10 ... Z=35
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _ascii_digits(s: str) -> bool:
    return bool(s) and all(c in DIGITS for c in s)


# Resident identity card number (GB 11643)


def normalize_resident_id(s: str | None) -> str:
    """``s`` stripped and upper-cased (a trailing 'x' becomes 'X'); '' for None."""
    return (s or "").strip().upper()


def resident_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17 or not _ascii_digits(first17):
        raise ValueError("need 17 ASCII digits")
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def birth_date_from_id(s: str) -> date:
    """Birth date encoded in characters 7-14; ValueError when it is not a real date."""
    s = normalize_resident_id(s)
    if len(s) != 18 or not _ascii_digits(s[6:14]):
        raise ValueError("not an 18-character resident ID")
    return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))


def sex_from_id(s: str) -> str:
    """'M' when the 17th digit is odd, else 'F'."""
    s = normalize_resident_id(s)
    if len(s) != 18 or not _ascii_digits(s[16]):
        raise ValueError("not an 18-character resident ID")
    return "M" if int(s[16]) % 2 else "F"


def is_valid_resident_id(s: str | None, today: date | None = None) -> bool:
    """Province prefix, real birth date not after ``today``, and MOD 11-2 check character."""
    if not isinstance(s, str):
        return False
    s = normalize_resident_id(s)
    if len(s) != 18 or not _ascii_digits(s[:17]) or s[:2] not in PROVINCE_CODES:
        return False
    try:
        born = birth_date_from_id(s)
    except ValueError:
        return False
    return born <= (today or date.today()) and resident_id_check_char(s[:17]) == s[17]


# Unified social credit code (GB 32100) and organisation code (GB 11714)


def normalize_uscc(s: str | None) -> str:
    """``s`` stripped and upper-cased; '' for None."""
    return (s or "").strip().upper()


def org_code_check_char(first8: str) -> str:
    """GB 11714 check character for an 8-character organisation-code body."""
    if len(first8) != 8 or any(c not in _ORG_CHARSET for c in first8):
        raise ValueError("need 8 ASCII digits or upper-case letters")
    total = sum(_ORG_CHARSET.index(c) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def uscc_check_char(first17: str) -> str:
    """GB 32100 check character (mod 31) for the first 17 characters."""
    if len(first17) != 17 or any(c not in USCC_CHARSET for c in first17):
        raise ValueError("need 17 characters from the USCC character set")
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def is_valid_uscc(s: str | None) -> bool:
    """Authority code, 6-digit region code, organisation-code check and the USCC check."""
    if not isinstance(s, str):
        return False
    s = normalize_uscc(s)
    if len(s) != 18 or any(c not in USCC_CHARSET for c in s):
        return False
    if s[0] not in USCC_AUTHORITIES or not _ascii_digits(s[2:8]):
        return False
    return org_code_check_char(s[8:16]) == s[16] and uscc_check_char(s[:17]) == s[17]


# Bank cards (ISO/IEC 7812, Luhn)


def luhn_check_digit(partial: str) -> str:
    """The Luhn digit to append to the ASCII digits ``partial``."""
    if not _ascii_digits(partial):
        raise ValueError("need ASCII digits")
    total = 0
    for i, c in enumerate(reversed(partial)):
        n = int(c)
        if i % 2 == 0:  # doubled: rightmost digit of partial sits next to the check digit
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return str(-total % 10)


def is_valid_bank_card(s: str | None) -> bool:
    """16-19 ASCII digits whose last digit is the Luhn check digit."""
    if not isinstance(s, str) or not 16 <= len(s) <= 19 or not _ascii_digits(s):
        return False
    return luhn_check_digit(s[:-1]) == s[-1]


# Masking for screens, exports and the public verification page


def _mask(s: str | None, head: int, tail: int, min_len: int) -> str:
    """Keep ``head`` and ``tail`` characters if ``s`` has ``min_len`` or more, else all stars."""
    if s is None:
        return ""
    s = "".join(str(s).split())
    if len(s) < min_len:
        return "*" * len(s)
    return s[:head] + "*" * (len(s) - head - tail) + s[len(s) - tail :]


def mask_resident_id(s: str | None) -> str:
    """``1529**********1234``: first 4 and last 4 kept (all stars when shorter than 15)."""
    return _mask(s, 4, 4, 15)


def mask_bank_card(s: str | None) -> str:
    """``622202*********0123``: first 6 and last 4 kept, length kept (all stars below 16)."""
    return _mask(s, 6, 4, 16)


def mask_phone(s: str | None) -> str:
    """``138****5678``: first 3 and last 4 kept (all stars when shorter than 11)."""
    return _mask(s, 3, 4, 11)
