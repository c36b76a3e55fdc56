"""AMQP topic matching: words split by '.', '*' is one word, '#' zero or more."""

from __future__ import annotations

from functools import lru_cache


def matches(binding: str, routing_key: str) -> bool:
    return _match(tuple(binding.split(".")), tuple(routing_key.split(".")))


@lru_cache(maxsize=4096)
def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])
