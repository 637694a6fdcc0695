"""html_to_text's single-pass tag-stripping path (``_inline_text``) gives what the HTML5 parser
gives, on random fragments of which most take that path."""

from __future__ import annotations

import random

from dmzwatch.poller import text
from dmzwatch.poller.text import html_to_text

TAGS = ["p", "b", "a", "br", "li", "div", "span", "h2", "blockquote", "dd", "hr", "img", "wbr"]
ODD_TAGS = ["table", "td", "tr", "script", "P", "Br", "LI", "x-y", "p/", "b2"]
ATTRIBUTES = ["", ' class="c"', " title='t>'", ' href="/x?a=1&amp;b=2"', " data-x=y", ' a="<"']
WORDS = ["alpha", " ", "\n", "&amp;", "&nbsp;", "&#233;", "&copy", "x&y", "\u200b", "\ue000", "\t"]


def lexbor_text(html: str) -> str:
    original = text._inline_text
    text._inline_text = lambda _html: None  # type: ignore[assignment]
    try:
        return html_to_text(html)
    finally:
        text._inline_text = original  # type: ignore[assignment]


def fragment(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 30)):
        roll = rng.random()
        tag = rng.choice(ODD_TAGS if rng.random() < 0.03 else TAGS)
        attribute = rng.choice(ATTRIBUTES) if rng.random() < 0.3 else ""
        if roll < 0.25:
            parts.append(f"<{tag}{attribute}>")
        elif roll < 0.45:
            parts.append(f"</{tag}>")
        elif roll < 0.47:
            parts.append(rng.choice(["<", ">", "<!-- c -->", "<br/>", "\x00"]))
        else:
            parts.append(rng.choice(WORDS))
    return "".join(parts)


def test_the_stripping_path_equals_the_html5_parser() -> None:
    rng = random.Random(11)
    fast = 0
    for _ in range(4000):
        html = fragment(rng)
        fast += text._inline_text(html) is not None
        assert html_to_text(html) == lexbor_text(html), repr(html)
    assert fast > 1000  # the path under test is taken


def reference_finish(marked: str) -> str:
    """_finish as first written: every step on every text."""
    para, line = text._PARA, text._LINE
    marked = text._INVISIBLE.sub("", marked)
    out = " ".join(marked.split())
    for mark in (para, line):
        out = out.replace(" " + mark, mark).replace(mark + " ", mark)
    out = text._DOUBLE_LINE.sub(para, out)
    out = text._MANY_PARAS.sub(para, out).strip(para + line)
    return out.replace(para, "\n\n").replace(line, "\n")


def test_finish_skips_only_steps_with_nothing_to_do() -> None:
    rng = random.Random(5)
    pieces = ["a", "bc", " ", "\n", "\t", "\u200b", "\u00a0", text._PARA, text._LINE]
    for _ in range(20000):
        marked = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert text._finish(marked) == reference_finish(marked), repr(marked)


def test_has_invisible_agrees_with_the_invisible_pattern() -> None:
    rng = random.Random(11)
    pieces = [
        "a",
        " ",
        "\u00e9",
        text._PARA,
        text._LINE,
        *text._INVISIBLE_CHARS,
        "\u200e",
        "\ufffe",
    ]
    for _ in range(20000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        assert text.has_invisible(value) == (text._INVISIBLE.search(value) is not None), repr(value)


def test_one_line_leaves_a_markup_text_without_newlines_unchanged() -> None:
    # entry_from_dict folds a title with one_line only when it holds a newline.
    from dmzwatch.poller.entry import markup_text

    rng = random.Random(12)
    for _ in range(5000):
        value = fragment(rng)
        for kind in ("text/html", "text/plain"):
            out = markup_text(value, kind)
            if "\n" not in out:
                assert text.one_line(out) == out, (kind, repr(value))
