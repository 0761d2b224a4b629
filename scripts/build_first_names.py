"""Build ``src/failwell/kb/data/first_names.txt`` from Faker's per-locale first names.

The blameless check needs to know that "Oluwaseun" or "Bartłomiej" at the start of a sentence
is a person. Faker (MIT) carries first names for some seventy locales; the Latin-script ones
are collected once here and shipped as a plain word list, so nothing is imported at run time.

    pip install faker && python scripts/build_first_names.py
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import faker.providers.person as person
from faker.providers.lorem.en_US import Provider as LoremEN

OUT = Path(__file__).resolve().parents[1] / "src/failwell/kb/data/first_names.txt"
LATIN = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿĀ-ſ'-]{2,}$")


def main() -> None:
    names: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        for attr in [a for a in dir(provider)
                     if a.startswith(("first_names", "first_romanized_names"))]:
            value = getattr(provider, attr, ())
            if not isinstance(value, dict | list | tuple | set | frozenset):
                continue  # a property on some providers
            names.update(n.strip() for n in (value.keys() if isinstance(value, dict) else value))
    # names that are also everyday English words ("will", "may", "hope", "from") would make
    # "Will the model..." a person; Faker's own list of common English words removes them
    common = set(LoremEN.word_list)
    kept = sorted({n.lower() for n in names if LATIN.match(n)} - common)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("# first names from Faker's person providers (MIT); "
                   "scripts/build_first_names.py\n" + "\n".join(kept) + "\n", encoding="utf-8")
    print(f"{len(kept)} names -> {OUT}")


if __name__ == "__main__":
    main()
