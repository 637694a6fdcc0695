"""``normalised_text``, ``normalised_words`` and ``content_fingerprint`` take a fast path for ASCII
text: they must give exactly what the definition gives (fingerprints are stored and compared
across versions), on every character and on random and tricky text."""

import hashlib
import random
import re
import sys
import unicodedata

import pytest

from dmzwatch.shared import identity
from dmzwatch.shared.identity import content_fingerprint, normalised_text, normalised_words

_WORDS = re.compile(r"\w+")


def reference_text(*parts: str) -> str:
    """The definition, as it was before the fast path."""
    text = unicodedata.normalize("NFKC", " ".join(parts)).casefold()
    return " ".join(_WORDS.findall(text))


def reference_fingerprint(title: str, text: str) -> str:
    return hashlib.blake2b(reference_text(title, text).encode("utf-8"), digest_size=12).hexdigest()


def check(title: str, text: str) -> None:
    expected = reference_text(title, text)
    assert normalised_text(title, text) == expected, (title, text)
    assert normalised_text(title + " " + text) == expected, (title, text)
    assert content_fingerprint(title, text) == reference_fingerprint(title, text), (title, text)
    for part in (title, text):
        assert normalised_words(part) == [w.encode() for w in reference_text(part).split()], part


ASCII = [chr(c) for c in range(128)]
# Combining marks, Hangul jamo (compose into syllables), ligatures and full-width forms (NFKC),
# letters whose case folding differs from lower-casing or changes length (ß, ẞ, İ, ς, ﬀ, Kelvin
# sign), digits and letters of other scripts, every kind of space and separator, marks of \w.
TRICKY = [
    "e\u0301",
    "\u0301",
    "\u0308",
    "\u0345",
    "\u1100",
    "\u1161",
    "\u11a8",
    "한국",
    "ﬁ",
    "ﬀ",
    "Ａ",
    "Ｂ",
    "１",
    "＿",
    "ß",
    "ẞ",
    "İ",
    "ı",
    "ς",
    "Σ",
    "\u212a",
    "\u00b5",
    "ǅ",
    "Ⅻ",
    "①",
    "²",
    "½",
    "\u00a0",
    "\u2002",
    "\u3000",
    "\u2028",
    "\u2029",
    "\u0085",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1f",
    "_",
    "-",
    "'",
    "٣",
    "中文",
    "ℌ",
    "ｶ",
    "ﾞ",
    "\U0001d400",
    "\U0001f600",
    "é",
    "ÉCOLE",
    "Ǆ",
    "ŉ",
]


def test_every_ascii_character_and_pair() -> None:
    for a in ASCII:
        check(a, "")
        check("", a)
        check(a, "".join(f"{a}{b}x{b}" for b in ASCII))


@pytest.mark.parametrize("seed", range(6))
def test_random_ascii_text(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "_normalised_unicode", None)  # ASCII never gets there
    rng = random.Random(seed)
    pieces = [*ASCII, "Kim", "SEOUL", "said", "  ", " \t\n", "__", "--", "x_y", "9a"]
    for _ in range(400):
        title = "".join(rng.choices(pieces, k=rng.randint(0, 30)))
        text = "".join(rng.choices(pieces, k=rng.randint(0, 400)))
        check(title, text)


@pytest.mark.parametrize("seed", range(6))
def test_random_tricky_text(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [*ASCII, *TRICKY, "Kim", "of", " "]
    for _ in range(400):
        title = "".join(rng.choices(pieces, k=rng.randint(0, 30)))
        text = "".join(rng.choices(pieces, k=rng.randint(0, 300)))
        check(title, text)
        check(title.encode("ascii", "ignore").decode(), text)  # one part ASCII, one not


def test_every_code_point_alone_and_beside_others() -> None:
    points = [chr(c) for c in range(sys.maxunicode + 1)]  # lone surrogates too (not \w)
    for first in range(0, len(points), 2000):
        chunk = points[first : first + 2000]
        check(" ".join(chunk), "".join(chunk))


def test_known_fingerprints_are_unchanged() -> None:
    # recorded with the implementation before the fast path (ids of stored articles)
    assert content_fingerprint("Kim meets Moon", "They met.  Today!") == "dd7247763b04f1d9c2990a72"
    assert content_fingerprint("Élite ﬁnal ẞ", "Ｋｉｍ  e\u0301") == "a7001db63337223399cef877"
