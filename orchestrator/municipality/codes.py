"""The 全国地方公共団体コード: JIS X 0402's five digits and 総務省's check digit."""

from __future__ import annotations

WEIGHTS = (6, 5, 4, 3, 2)


def check_digit(code5: str) -> str:
    """総務省's rule: the digits times 6, 5, 4, 3, 2, summed; eleven less the sum's remainder by
    eleven; its last digit (so a remainder of 0 gives 1 and of 1 gives 0)."""
    if len(code5) != 5 or not code5.isascii() or not code5.isdigit():
        raise ValueError("a JIS X 0402 code has five ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(code5, WEIGHTS, strict=True))
    return str((11 - total % 11) % 10)


def with_check_digit(code5: str) -> str:
    return code5 + check_digit(code5)


def is_valid_code(code: str) -> bool:
    """Six ASCII digits whose last is the check digit of the first five."""
    return len(code) == 6 and code.isascii() and code.isdigit() and check_digit(code[:5]) == code[5]
