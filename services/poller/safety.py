"""Defences against hostile feeds, applied before anything trusts the bytes.

- :class:`DeadlineNetwork`: no connect, TLS handshake, read or write outlasts the fetch's total
  deadline (a server sending one byte a second defeats per-read timeouts, in the headers as well
  as the body). It wraps any ``httpcore.NetworkBackend``; the fetcher's wraps the address
  check of :mod:`dmzwatch.poller.ssrf`, so name resolution is inside the deadline too.
- :class:`BoundedInflater`: gzip/deflate decoding whose output is capped *while* inflating.
- :func:`defuse_xml`: every DOCTYPE and markup declaration in the prolog is cut out, so no entity
  is ever defined, expanded or fetched (billion laughs, quadratic blowup, XXE). feedparser alone
  is not enough: it re-inserts "safe" entity declarations for its loose parser, and a 100 KB
  entity value referenced 100,000 times is "safe" by its test.
"""

from __future__ import annotations

import re
import ssl
import threading
import typing
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.entities import html5

import httpcore

from dmzwatch.shared.clock import Clock

# Characters XML 1.0 forbids anywhere; one stray \x0c sends every XML parser to its loose mode.
# (A regex, not str.translate: translate with a table costs ~70 ms per MB of non-ASCII text.)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_XML_DECL = re.compile(r"<\?xml\s[^>]*\?>")
_FIRST_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)")
_PREDEFINED = frozenset({"amp", "lt", "gt", "quot", "apos"})
_NAMED_REF = re.compile(r"&(?!(?:amp|lt|gt|quot|apos);)([A-Za-z_:][\w.:-]{0,63});")
_BARE_AMPERSAND = re.compile(r"&(?![A-Za-z_:][\w.:-]{0,63};|#[0-9]{1,7};|#[xX][0-9A-Fa-f]{1,6};)")
_ENTITY_NAME = re.compile(r"<!ENTITY\s+(%\s+)?([^\s\"'>]+)")
# Any "&" that is not a predefined or numeric reference: every match of _NAMED_REF and of
# _BARE_AMPERSAND is one of these, so a body without any needs none of the reference passes.
_ODD_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});)")


@dataclass(frozen=True, slots=True)
class Defused:
    """An XML document with its prolog declarations removed, as UTF-8 bytes with a declaration.

    ``removed_entities`` names the entities the document tried to declare (none were expanded);
    ``root`` is the name of the first element, None when there is none.
    """

    data: bytes
    removed_doctype: bool
    removed_entities: tuple[str, ...]
    root: str | None


def _skip_quoted(text: str, i: int) -> int:
    """Index after the quoted string starting at ``text[i]`` (or the end of the text)."""
    end = text.find(text[i], i + 1)
    return len(text) if end < 0 else end + 1


def _declaration_end(text: str, i: int) -> int:
    """Index after the markup declaration ``<!…>`` that starts at ``i``, internal subset included.

    Quoted literals, comments and processing instructions may hold ``>`` and ``]``, so they are
    skipped as units; an unterminated declaration runs to the end of the text.
    """
    depth = 0
    j = i + 2
    n = len(text)
    while j < n:
        ch = text[j]
        if ch in "\"'":
            j = _skip_quoted(text, j)
        elif text.startswith("<!--", j):
            end = text.find("-->", j + 4)
            j = n if end < 0 else end + 3
        elif text.startswith("<?", j):
            end = text.find("?>", j + 2)
            j = n if end < 0 else end + 2
        elif ch == "[":
            depth += 1
            j += 1
        elif ch == "]":
            depth = max(0, depth - 1)
            j += 1
        elif ch == ">" and depth == 0:
            return j + 1
        else:
            j += 1
    return n


def _outside_cdata(
    text: str, pattern: re.Pattern[str], replacement: str | Callable[[re.Match[str]], str]
) -> str:
    """``pattern.sub(replacement, …)`` applied only outside CDATA sections.

    Found with ``str.find`` rather than a lazy regex, which is quadratic on a document of
    many unterminated ``<![CDATA[`` openers.
    """
    if "<![CDATA[" not in text:
        return pattern.sub(replacement, text)
    parts: list[str] = []
    i = 0
    while True:
        start = text.find("<![CDATA[", i)
        if start < 0:
            parts.append(pattern.sub(replacement, text[i:]))
            return "".join(parts)
        end = text.find("]]>", start + 9)
        end = len(text) if end < 0 else end + 3
        parts.append(pattern.sub(replacement, text[i:start]))
        parts.append(text[start:end])
        i = end


def _numeric_reference(match: re.Match[str]) -> str:
    value = html5.get(match.group(1) + ";")
    if value is None:
        return match.group(0)
    return "".join(f"&#{ord(ch)};" for ch in value)


def defuse_xml(text: str) -> Defused:
    """Cut the DOCTYPE and any other markup declarations out of the prolog; never raises.

    Also, outside CDATA sections: references to the removed entities are dropped, HTML named
    entities (``&nbsp;``) become numeric references and a bare ``&`` becomes ``&amp;``, because
    each of those otherwise makes the whole document ill-formed for a strict XML parser.
    Characters XML forbids are removed. Line numbers are kept, so parser errors point at the
    source. The result starts with ``<?xml version="1.0" encoding="utf-8"?>``.
    """
    text = text.lstrip("\ufeff")
    if _ILLEGAL.search(text):
        text = _ILLEGAL.sub("", text)
    # Junk before the document (a PHP warning, often itself with <br /> tags) is dropped: up to
    # a late XML declaration if there is one, else up to the first tag.
    late = _XML_DECL.search(text, 0, 4096)
    first = late.start() if late else text.find("<")
    lead_newlines = text.count("\n", 0, max(first, 0))
    text = text[first:] if first >= 0 else ""
    declaration = _XML_DECL.match(text)
    if declaration:
        lead_newlines += declaration.group(0).count("\n")
        text = text[declaration.end() :]

    # Walk the prolog: comments and PIs stay, every <!…> declaration goes.
    kept: list[str] = []
    removed_doctype = False
    entities: list[str] = []
    root: str | None = None
    i = 0
    while True:
        nxt = text.find("<", i)
        if nxt < 0:
            break
        if element := _FIRST_ELEMENT.match(text, nxt):
            root = element.group(1)
            break
        if text.startswith("<!--", nxt):
            end = text.find("-->", nxt + 4)
            end = len(text) if end < 0 else end + 3
        elif text.startswith("<?", nxt):
            end = text.find("?>", nxt + 2)
            end = len(text) if end < 0 else end + 2
        elif text.startswith("<!", nxt):
            end = _declaration_end(text, nxt)
            chunk = text[nxt:end]
            removed_doctype = removed_doctype or chunk[2:9].upper() == "DOCTYPE"
            entities.extend((m.group(1) or "") + m.group(2) for m in _ENTITY_NAME.finditer(chunk))
            kept.append(text[i:nxt] + "\n" * chunk.count("\n"))
            i = end
            continue
        else:
            end = nxt + 1
        kept.append(text[i:end])
        i = end
    kept.append(text[i:])
    body = "".join(kept)

    names = tuple(dict.fromkeys(e.replace(" ", "") for e in entities if e not in _PREDEFINED))
    # References to the removed entities are dropped, except HTML names (&nbsp;), which some
    # feeds declare for themselves: those become their HTML characters below.
    dropped = {n for n in names if not n.startswith("%") and n + ";" not in html5}
    # One search first: most feeds have no "&" these passes would change, so none is run.
    if _ODD_AMPERSAND.search(body):
        if dropped:
            body = _outside_cdata(
                body, _NAMED_REF, lambda m: "" if m.group(1) in dropped else m.group(0)
            )
        body = _outside_cdata(body, _NAMED_REF, _numeric_reference)
        body = _outside_cdata(body, _BARE_AMPERSAND, "&amp;")
    head = '<?xml version="1.0" encoding="utf-8"?>' + "\n" * lead_newlines
    return Defused((head + body).encode("utf-8"), removed_doctype, names, root)


class DeadlineNetwork(httpcore.NetworkBackend):
    """Wraps a network backend so that no network operation outlasts the current deadline.

    The deadline is per thread (set by :meth:`deadline` around one fetch), so one instance
    serves a client shared by many fetching threads; a pooled connection reused by another
    thread obeys that thread's deadline.
    """

    def __init__(self, inner: httpcore.NetworkBackend, clock: Clock) -> None:
        self._inner = inner
        self._clock = clock
        self._local = threading.local()

    @contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        """Within the block, operations of this thread end by monotonic time ``at``."""
        self._local.at = at
        try:
            yield
        finally:
            self._local.at = None

    def bound(self, timeout: float | None, error: type[Exception]) -> float | None:
        """``timeout`` shortened to what is left of the deadline; raises ``error`` when none is."""
        at: float | None = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - self._clock.monotonic()
        if left <= 0:
            raise error("total deadline of the fetch exceeded")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self.bound(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, network: DeadlineNetwork) -> None:
        self._inner = inner
        self._network = network

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._network.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._network.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._network.bound(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, timeout), self._network
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class BodyError(Exception):
    """A response body that cannot be decoded (unsupported or truncated encoding)."""


class BodyTooLarge(BodyError):
    """A response body that would decode to more than the room left for it."""


class BoundedInflater:
    """Content-Encoding decoder whose output is bounded *while* inflating (httpx's is not: one
    64 KB chunk of a gzip bomb becomes 64 MB before any check could run)."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        if encoding in ("", "identity"):
            self._wbits: int | None = None
        elif encoding in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif encoding == "deflate":
            self._wbits = zlib.MAX_WBITS
        else:
            raise BodyError(f"unsupported Content-Encoding {encoding!r}")
        self._z = zlib.decompressobj(self._wbits) if self._wbits is not None else None
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """Decoded bytes of ``data``; raises :class:`BodyTooLarge` rather than produce more
        than ``room`` bytes, and ``zlib.error`` for corrupt data."""
        out = data if self._z is None else self._inflate(data, room)
        if len(out) > room:
            raise BodyTooLarge(f"decoded body is over {room} bytes")
        return out

    def _inflate(self, data: bytes, room: int) -> bytes:
        assert self._z is not None
        assert self._wbits is not None
        parts: list[bytes] = []
        produced = 0
        while data and produced <= room:
            try:
                out = self._z.decompress(data, room - produced + 1)
            except zlib.error:
                if self._started or self._wbits != zlib.MAX_WBITS:
                    raise
                # "deflate" is zlib-wrapped by the standard, but some servers send it raw.
                self._wbits = -zlib.MAX_WBITS
                self._z = zlib.decompressobj(self._wbits)
                continue
            self._started = True
            parts.append(out)
            produced += len(out)
            data = self._z.unconsumed_tail
            if self._z.eof and self._z.unused_data.startswith(b"\x1f\x8b"):
                # Concatenated gzip members: each one is a new stream. Other trailing bytes
                # (padding some servers add) are ignored, as every HTTP client does.
                data = self._z.unused_data
                self._z = zlib.decompressobj(self._wbits)
        return b"".join(parts)

    def finish(self) -> None:
        """Called after the last chunk; raises :class:`BodyError` if the stream was cut short."""
        if self._z is not None and self._started and not self._z.eof:
            raise BodyError(f"{self._encoding} body ended early (truncated)")
