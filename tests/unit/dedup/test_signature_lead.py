"""``shingles`` normalises only a prefix of long texts: it must give the lead of the whole text."""

import random

import pytest

from dmzwatch.dedup.signature import LEAD_CHARS, LEAD_WORDS, SHINGLE_WORDS, STOP_WORDS, shingles
from dmzwatch.shared.identity import normalised_text

# Characters whose normalisation joins or splits across a cut: combining marks, Hangul jamo
# (compose into syllables), ligatures and full-width forms (NFKC), ß and İ (case folding).
TRICKY = ["e\u0301", "\u1100\u1161\u11a8", "ﬁ", "ＡＢ", "ß", "İ", "\u0345", "한국", "o\u0308"]
PLAIN = ["kim", "purge", "the", "of", "said", "party", "summit", "x", "0", "élite"]


def reference(title: str, text: str) -> list[bytes]:
    """The definition: the whole text normalised, stop words dropped, the first LEAD_WORDS."""
    out: set[str] = set()
    title_words = [w for w in normalised_text(title).split() if w not in STOP_WORDS]
    lead = [w for w in normalised_text(text).split() if w not in STOP_WORDS][:LEAD_WORDS]
    for words in (title_words, lead):
        if 0 < len(words) < SHINGLE_WORDS:
            out.add(" ".join(words))
        for i in range(len(words) - SHINGLE_WORDS + 1):
            out.add(" ".join(words[i : i + SHINGLE_WORDS]))
    return sorted(s.encode() for s in out)


@pytest.mark.parametrize("seed", range(5))
def test_lead_of_long_texts_is_the_whole_texts(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        words = rng.choices(PLAIN + TRICKY, k=rng.randint(100, 900))
        text = rng.choice([" ", "  ", ", ", "\u0301 "]).join(words)
        assert len(text) > LEAD_CHARS or len(words) < 300
        assert shingles("a title", text) == reference("a title", text), text[:80]


@pytest.mark.parametrize("last", ["summit", "e\u0301\u0301\u0308", "\u1100\u1161\u11a8", "ﬁnal"])
@pytest.mark.parametrize("shift", range(-12, 13))
def test_a_cut_near_the_last_lead_word_changes_nothing(last: str, shift: int) -> None:
    # the first prefix ends in or near the lead's last word (and the marks or jamo after it)
    lead = " ".join(f"w{n}" for n in range(LEAD_WORDS - 1)) + " " + last * 3
    pad = LEAD_CHARS - len(lead) + shift
    text = "of " * (pad // 3) + " " * (pad % 3) + lead + "\u0301\u1161 kim purge " * 200
    assert shingles("", text) == reference("", text)


def test_short_lead_in_a_long_text_reads_on() -> None:
    # stop words only at first: the lead is found beyond the first prefixes
    text = "the of said " * 1500 + " ".join(f"w{n}" for n in range(100))
    assert len(text) > 16 * LEAD_CHARS
    assert shingles("", text) == reference("", text)
    assert len(shingles("", text)) == LEAD_WORDS - SHINGLE_WORDS + 1
