"""Swap gendered words in text ("women's chess club" -> "men's chess club"), keeping case."""

from __future__ import annotations

import re

_MALE_FEMALE = {
    "he": "she", "him": "her", "his": "her", "himself": "herself", "man": "woman",
    "men": "women", "men's": "women's", "man's": "woman's", "male": "female",
    "males": "females", "boy": "girl", "boys": "girls", "father": "mother",
    "fathers": "mothers", "son": "daughter", "sons": "daughters", "brother": "sister",
    "brothers": "sisters", "husband": "wife", "mr": "ms", "mr.": "ms.", "gentleman": "lady",
    "gentlemen": "ladies", "king": "queen", "fraternity": "sorority", "actor": "actress",
    "waiter": "waitress", "boyfriend": "girlfriend", "uncle": "aunt", "nephew": "niece",
    "masculine": "feminine", "chairman": "chairwoman", "sportsman": "sportswoman",
}
SWAPS: dict[str, str] = {**_MALE_FEMALE, **{f: m for m, f in _MALE_FEMALE.items()}}
SWAPS["her"] = "his"  # ambiguous (him/his); the possessive is the commoner use in CVs
SWAPS["hers"] = "his"

_PATTERN = re.compile(
    r"(?<![\w'])(" + "|".join(re.escape(w) for w in sorted(SWAPS, key=len, reverse=True))
    + r")(?![\w'])",
    re.IGNORECASE,
)


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_gender_terms(text: str, extra: dict[str, str] | None = None) -> str:
    """Replace every gendered word with its counterpart (both directions at once)."""
    table = {**SWAPS, **(extra or {})}
    return _PATTERN.sub(lambda m: _match_case(table[m.group(0).lower()], m.group(0)), text)
