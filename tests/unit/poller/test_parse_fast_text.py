"""html_to_text's tag-stripping path gives what the HTML5 parser gives, and stays linear."""

from __future__ import annotations

import random
import time

import pytest

from dmzwatch.poller import text
from dmzwatch.poller.text import html_to_text

FRAGMENTS = [
    '<p>Officials met. <a href="/x?a=1&amp;b=2">More</a></p><p>No statement.</p>',
    "<p>One<br>two<br/><br />three</p>",
    "<ul><li>a</li><li>b &amp; c</li></ul><p>after</p>",
    "<div><h2>Head</h2>body &nbsp; text &copy 2026 &#x2019;s &#150;</div>",
    '<p title="a>b">quoted &gt; attribute</p>',
    "<b>bold <i>nested</b> crossed</i> tail",
    "<p>para<p>implicit close</p></p>",
    "<blockquote><p>q</p></blockquote>text",
    '<img src="x" alt="not text"> caption',
    "text with a < b and c > d",
    "<p>unclosed <b",
    "<table><tr><td>cell</td><td>two</td></tr></table>",
    "<p>x</p><script>evil()</script><style>p{}</style>",
    "<!-- comment --><p>after comment</p>",
    "<P CLASS=x>Upper case</P><BR>next",
    "<p>\u00a0spaces\u200b and zero width\u00ad</p>",
    "<p>a</p>\n\n<p>b</p>",
    "&lt;p&gt;escaped twice&lt;/p&gt;",
    "<span>a</span><span>b</span> <span>c</span>",
    "<p>tab\tand\r\nnewlines</p>",
]
TAGS = ["p", "b", "i", "a", "br", "li", "ul", "div", "span", "em", "h3", "blockquote", "font"]
WORDS = ["alpha", "&amp;", "&nbsp;", "&eacute;", " ", "\n", "beta", "&#233;", "x&y", "&copy"]


def lexbor_text(html: str) -> str:
    """html_to_text with the tag-stripping path turned off."""
    original = text._inline_text
    text._inline_text = lambda _html: None  # type: ignore[assignment]
    try:
        return html_to_text(html)
    finally:
        text._inline_text = original  # type: ignore[assignment]


def random_fragment(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 25)):
        roll = rng.random()
        tag = rng.choice(TAGS)
        if roll < 0.3:
            parts.append(f"<{tag}>")
        elif roll < 0.5:
            parts.append(f"</{tag}>")
        elif roll < 0.55:
            parts.append(f"<{tag} class=\"c\" title='t>'>")
        else:
            parts.append(rng.choice(WORDS))
    return "".join(parts)


@pytest.mark.parametrize("html", FRAGMENTS)
def test_fast_text_equals_the_html5_parser(html: str) -> None:
    assert html_to_text(html) == lexbor_text(html)


def test_random_fragments_of_safe_tags_equal_the_html5_parser() -> None:
    rng = random.Random(4)
    for _ in range(2000):
        html = random_fragment(rng)
        assert html_to_text(html) == lexbor_text(html), html


@pytest.mark.parametrize("unit", ['<p x="a" ', "<p ", '<a "', "<b>"])
def test_many_unclosed_tags_cost_linear_time(unit: str) -> None:
    started = time.perf_counter()
    html_to_text(unit * 60_000)
    assert time.perf_counter() - started < 1.0
