"""Feed bytes and markup → the plain text the classifier reads.

- :func:`decode_document`: bytes to text. BOM, then the XML declaration, then the HTTP charset,
  then UTF-8, then windows-1252, so that parsers always get text and a feed that lies about its
  encoding still reads right.
- :func:`html_to_text`: HTML parsed by selectolax's Lexbor engine (a WHATWG HTML5 parser in C),
  which copes with the broken fragments feeds carry and decodes every entity.

Pure functions; nothing here raises on bad input.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from html import unescape

from selectolax.lexbor import LexborHTMLParser

# Longest BOMs first: the UTF-32-LE BOM begins with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# XML 1.0 appendix F: a document without a BOM that starts "<?" in a 16-bit encoding.
_BOMLESS = ((b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be"))
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
# Labels mapped to the superset that real publishers actually emit under them (as the WHATWG
# Encoding Standard does): a "gb2312" feed routinely contains GBK characters, "euc-kr" ones
# UHC, and "iso-8859-1" ones windows-1252 quotes.
_SUPERSETS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "big5": "big5hkscs",
    "iso-8859-9": "cp1254",
    "tis-620": "cp874",
}
_SINGLE_BYTE_LATIN = frozenset({"cp1252", "iso8859-1", "iso8859-15"})
# Undeclared non-UTF-8 bytes: a detector's guess is taken only for scripts that windows-1252
# would garble beyond use; among Latin code pages it guesses no better than windows-1252.
_DETECTABLE = frozenset(
    codecs.lookup(name).name
    for name in (
        "cp1251", "koi8-r", "koi8-u", "iso8859-5", "cp866", "mac-cyrillic", "cp949", "johab",
        "gb18030", "big5hkscs", "cp950", "euc-jp", "cp932", "iso2022-jp", "cp1253",
        "iso8859-7", "cp1255", "iso8859-8", "cp1256", "iso8859-6", "cp874",
    )
)  # fmt: skip
# Elements whose text is never prose: code, styling, embedded objects.
_DROPPED = ["script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math"]
_HAS_DROPPED = re.compile(r"<(?:" + "|".join(_DROPPED) + r")\b", re.IGNORECASE)
# Elements that end a paragraph, those that only end a line, and table cells (a space).
# fmt: off
_BLOCKS = frozenset({
    "p", "div", "section", "article", "header", "footer", "aside", "nav", "main", "blockquote",
    "pre", "figure", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table",
    "hr", "address", "details", "summary", "form", "fieldset",
})
# fmt: on
_LINES = frozenset({"br", "li", "dt", "dd", "tr"})
# Elements whose text the HTML5 tree builder keeps in source order, unmoved and undropped: a
# fragment made only of these is reduced by stripping its tags (~10 µs), not by building a
# tree (~70 µs), with the same result (tests/unit/poller/test_parse_fast_text.py).
# fmt: off
_INLINE_SAFE = frozenset({
    "a", "abbr", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br",
    "center", "cite", "code", "dd", "del", "details", "dfn", "div", "dl", "dt", "em",
    "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "i", "img", "ins", "kbd", "li", "main", "mark", "nav", "ol", "p", "picture", "q", "s", "samp",
    "section", "small", "source", "span", "strike", "strong", "sub", "summary", "sup", "time",
    "tt", "u", "ul", "var", "wbr",
})
# fmt: on
_ANY_TAG = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9]*)(?=[\s/>])(?:[^<>"']|"[^"]*"|'[^']*')*>""")
# Splits a fragment into text, then per tag: the tag, its "/" (or ""), its name, the text after.
_SPLIT_TAGS = re.compile("(" + _ANY_TAG.pattern + ")")
_TAG = re.compile(
    # [^<>] rather than [^>]: a tag never runs past the next "<", so a fragment of many
    # unclosed tags costs linear time, not quadratic (5 s for 270 KB before).
    r"<(/?)(" + "|".join(sorted(_BLOCKS | _LINES | {"td", "th"})) + r")(?=[\s/>])[^<>]*>",
    re.IGNORECASE,
)
# Private-use characters mark breaks while the HTML's own whitespace is collapsed; any that the
# input itself contained are removed first so they cannot forge breaks.
_PARA, _LINE = "\ue000", "\ue001"
# The break an _INLINE_SAFE element makes where its tags are stripped ("" for none).
_INLINE_MARKS = {
    name: _PARA if name in _BLOCKS else _LINE if name in _LINES else "" for name in _INLINE_SAFE
}
_INVISIBLE_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")
_DOUBLE_LINE = re.compile("\ue001{2,}")  # <br><br> is how many feeds write a paragraph
_MANY_PARAS = re.compile("\ue000[\ue000\ue001]*|\ue001+\ue000[\ue000\ue001]*")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded document: its text, the codec used, and a warning when the bytes misled."""

    text: str
    encoding: str
    warning: str | None = None


def _codec(label: str) -> str | None:
    """The Python codec for an encoding label, through the superset table; None if unknown."""
    name = label.strip().lower()
    name = _SUPERSETS.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _try(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        return None


def _mostly_utf8(body: bytes) -> str | None:
    """UTF-8 with a few bad bytes replaced, if the valid multi-byte characters outnumber them.

    Valid UTF-8 sequences almost never occur by chance in windows-1252 text, so a document with
    many of them and a stray bad byte is UTF-8 that was damaged, not windows-1252.
    """
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - body.decode("utf-8", errors="ignore").count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - bad
    return text if non_ascii > bad else None


def _detected(body: bytes) -> tuple[str | None, str]:
    """The text and codec a detector finds in undeclared bytes, if of a :data:`_DETECTABLE`
    script (the detector is imported here: only such bodies pay for it)."""
    from charset_normalizer import from_bytes

    best = from_bytes(body[:65536]).best()  # a sample: bounded time on a hostile 10 MB body
    codec = _codec(best.encoding) if best is not None else None
    if codec is not None and codec in _DETECTABLE:
        return _try(body, codec), codec
    return None, "cp1252"


def decode_document(body: bytes, content_type: str | None = None) -> Decoded:
    """Decode feed bytes; never raises. The BOM wins, then the declaration, then HTTP charset.

    The XML declaration is preferred to the HTTP charset (RFC 7303 says the opposite) because the
    declaration is written by the software that wrote the bytes, while charset headers are often a
    web server's default. A declared single-byte Latin encoding whose bytes are valid, non-ASCII
    UTF-8 is taken as UTF-8: that is the commonest lie in the wild.
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom) :].decode(codec, errors="replace"), codec)
    for prefix, codec in _BOMLESS:
        if body.startswith(prefix):
            return Decoded(body.decode(codec, errors="replace"), codec)

    labels: list[str] = []
    declared = _DECLARED.match(body[:1024])
    if declared:
        labels.append(declared.group(1).decode("ascii"))
    if content_type and (charset := _CHARSET.search(content_type)):
        labels.append(charset.group(1))

    unknown: list[str] = []
    failed: list[str] = []
    for label in labels:
        known = _codec(label)
        if known is None:
            unknown.append(label)
            continue
        if known.startswith(("utf-16", "utf-32")):
            # The declaration was readable as ASCII, so the bytes are not 16- or 32-bit.
            continue
        if known in _SINGLE_BYTE_LATIN and not body.isascii() and _try(body, "utf-8") is not None:
            return Decoded(body.decode("utf-8"), "utf-8")
        decoded = _try(body, known)
        if decoded is not None:
            return Decoded(decoded, known)
        failed.append(label)

    text = _try(body, "utf-8")
    codec, guessed = "utf-8", text is None
    if text is None:
        text = _mostly_utf8(body)
    if text is None and not labels:
        text, codec = _detected(body)
    if text is None:
        text, codec = _try(body, "cp1252"), "cp1252"
    if text is None:
        text, codec = body.decode("latin-1"), "latin-1"
    warning = None
    if unknown:
        warning = f"unknown encoding {unknown[0]!r} declared; decoded as {codec}"
    elif failed:
        warning = f"bytes are not valid {failed[0]}; decoded as {codec}"
    elif guessed:
        warning = f"bytes are not valid UTF-8 and no encoding is declared; decoded as {codec}"
    return Decoded(text, codec, warning)


def _unmarked(text: str) -> str:
    if _PARA in text or _LINE in text:
        return text.replace(_PARA, "").replace(_LINE, "")
    return text


def _finish(marked: str) -> str:
    """Collapse whitespace in text whose breaks are marked, then render the marks.

    Written with ``str.split`` and ``str.replace`` rather than regex substitutions: they are an
    order of magnitude faster on short strings, and this runs on every field of every entry.
    """
    if not marked.isascii() and has_invisible(marked):  # (an O(1) test on ASCII text)
        marked = _INVISIBLE.sub("", marked)
    text = " ".join(marked.split())
    if _PARA not in text and _LINE not in text:
        return text
    lines = _LINE in text
    for mark in (_PARA, _LINE) if lines else (_PARA,):
        text = text.replace(" " + mark, mark).replace(mark + " ", mark)
    if lines and _LINE + _LINE in text:
        text = _DOUBLE_LINE.sub(_PARA, text)
    if lines:
        if _PARA + _PARA in text or _PARA + _LINE in text or _LINE + _PARA in text:
            text = _MANY_PARAS.sub(_PARA, text)
    else:
        while _PARA + _PARA in text:  # a run of n marks is one after log2(n) passes
            text = text.replace(_PARA + _PARA, _PARA)
    text = text.strip(_PARA + _LINE).replace(_PARA, "\n\n")
    return text.replace(_LINE, "\n") if lines else text


def _mark(match: re.Match[str]) -> str:
    """A tag with its break marker: before an opening tag, after a closing one.

    Markers are text, and text inside table structure is moved out of the table by the HTML5
    tree builder ("foster parenting"), so they go where text is allowed: before ``<table>``,
    after ``</table>``, and inside cells rather than around rows.
    """
    tag = match.group(0)
    name = match.group(2).lower()
    if name in _BLOCKS:
        return tag + _PARA if match.group(1) else _PARA + tag
    if name in _LINES and not match.group(1):
        return tag + _LINE if name == "tr" else _LINE + tag
    return tag + " " if name in ("td", "th") and not match.group(1) else tag


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: scripts and styles dropped, entities decoded, whitespace
    collapsed, paragraphs separated by ``"\\n\\n"`` and line breaks kept as ``"\\n"``."""
    if not html:
        return ""
    html = _unmarked(html)
    if "<" not in html:
        # Most titles and many summaries: no parser needed (Lexbor costs ~35 µs a document).
        return _finish(unescape(html)) if "&" in html else _finish(html)
    inline = _inline_text(html)
    if inline is not None:
        return inline
    # Breaks are marked in the source text (one C-level regex pass) rather than by selecting
    # nodes after parsing, which costs twice as much.
    marked = _TAG.sub(_mark, html)
    tree = LexborHTMLParser(marked)
    if _HAS_DROPPED.search(html):
        tree.strip_tags(_DROPPED)
    root = tree.body
    return "" if root is None else _finish(root.text(deep=True))


def _inline_text(html: str) -> str | None:
    """html_to_text of a fragment whose every ``<`` opens a well-formed tag of an element in
    _INLINE_SAFE, by stripping its tags (a paragraph or line mark where one was); None for any
    other fragment. One split and one pass over the tags: this runs on most summaries."""
    if "\x00" in html:
        return None  # the HTML parser replaces NUL; unescape would not
    parts = _SPLIT_TAGS.split(html)
    if len(parts) // 4 != html.count("<"):
        return None
    out = [parts[0]]
    for i in range(1, len(parts), 4):
        name = parts[i + 2].lower()
        mark = _INLINE_MARKS.get(name)
        if mark is None:
            return None
        if mark:
            if ">" in parts[i][:-1]:
                return None  # a ">" quoted in the tag: where the break goes is the parser's call
            if mark == _PARA or not parts[i + 1]:  # a line break at a start tag only
                out.append(mark)
        out.append(parts[i + 3])
    text = "".join(out)
    return _finish(unescape(text) if "&" in text else text)


def plain_text(text: str) -> str:
    """Tidy text that is already plain: blank lines become paragraph breaks, other runs of
    whitespace a single space."""
    if not text:
        return ""
    text = _unmarked(text)
    return _finish(_BLANK_LINE.sub(_PARA, text) if "\n" in text else text)


def one_line(text: str) -> str:
    """Text on one line (for titles and names): every run of whitespace becomes one space."""
    if not text.isascii() and has_invisible(text):
        text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


def has_invisible(text: str) -> bool:
    """Whether ``text`` holds a character :data:`_INVISIBLE` matches. Six substring tests
    rather than the regex search: a quarter of its cost on the marked, non-ASCII text of every
    HTML summary (tests/unit/poller/test_speed_parity_text.py checks they agree)."""
    for char in _INVISIBLE_CHARS:  # noqa: SIM110 - a loop: any() and its generator cost double
        if char in text:
            return True
    return False
