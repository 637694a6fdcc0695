"""HTML → plain text for the classifier."""

from __future__ import annotations

import pytest

from dmzwatch.poller.text import html_to_text, one_line, plain_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("Plain words", "Plain words"),
        ("Tom &amp; Jerry&nbsp;&mdash; &#8220;quoted&#8221;", "Tom & Jerry — “quoted”"),
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("<p>Spaced   out\n words</p>", "Spaced out words"),
        ("<b>bold</b><i>italic</i> and <a href='x'>link</a>", "bolditalic and link"),
        ("first<br>second<br/>third", "first\nsecond\nthird"),
        ("Dateline<br/><br/>Body text", "Dateline\n\nBody text"),
        ("<ul><li>one</li><li>two</li></ul>after", "one\ntwo\n\nafter"),
        ("<h2>Head</h2>Text<div>Block</div>", "Head\n\nText\n\nBlock"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>end", "a b c\n\nend"),
        ("<P CLASS=x>Upper<P>case", "Upper\n\ncase"),
        ("<p>broken <b>markup</p> still", "broken markup\n\nstill"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_scripts_styles_and_embeds_are_dropped() -> None:
    html = (
        "<style>p{color:red}</style><p>Kept</p><script>alert('x')</script>"
        "<noscript>no js</noscript><iframe src='x'>frame</iframe><svg><text>g</text></svg>"
    )
    assert html_to_text(html) == "Kept"


def test_comments_are_dropped() -> None:
    assert html_to_text("before<!-- hidden -->after") == "beforeafter"


def test_invisible_characters_are_removed() -> None:
    assert html_to_text("zero\u200bwidth soft\u00adhyphen") == "zerowidth softhyphen"


def test_marker_characters_in_the_input_cannot_forge_breaks() -> None:
    assert html_to_text("a\ue000b<b>c</b>") == "abc"


def test_plain_text_keeps_blank_lines_as_paragraphs() -> None:
    assert plain_text("a  b\n\n\n c\nd") == "a b\n\nc d"


def test_one_line() -> None:
    assert one_line("  A\n title\u200b  here ") == "A title here"
