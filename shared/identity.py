"""Article identity: canonical URLs, content fingerprints and the stable ``article_id``.

This is part of the Article contract (DESIGN.md): ``article_id`` derives from the canonical URL,
else the GUID, else a hash of the normalised content, so every stage and every replica computes
the same id for the same article.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

# Parameters that identify a campaign or a click, never the document.
TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "ga_", "_hs")
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "_ga",
        "_gl",
        "vero_id",
        "wickedid",
        "ocid",
        "cmpid",
        "ito",
        "rss",
        "s_cid",
        "ncid",
        "sr_share",
        "at_medium",
        "at_campaign",
        "xtor",
        "smid",
        "spm",
        "share",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WORDS = re.compile(r"\w+")


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str | None:
    """The canonical form of ``url``, or None when it is not an absolute http(s) URL.

    Lower-case scheme and host, no default port, no fragment, no tracking parameters, the
    remaining query sorted and percent-encoding normalised. Path case is kept (servers may
    distinguish it).

    Most feed links are plain ASCII URLs that w3lib would leave as they are but for the case of
    the host, the port, the fragment and the query; those are done here directly (a tenth of
    the cost), and every other URL goes through w3lib
    (tests/unit/poller/test_speed_parity_identity.py checks that both give the same).
    """
    url = url.strip()
    simple = _SIMPLE_URL.match(url)
    if simple is not None:
        fast = _simple_canonical(*simple.group("scheme", "host", "port", "path", "query"))
        if fast is not None:
            return fast
    return _w3lib_canonical(url)


# A URL whose parts canonicalisation leaves as they are, except the case of the scheme and host,
# a default port, the fragment and the order and tracking parameters of a plain query.
_SIMPLE_URL = re.compile(
    r"(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?)://"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)\.?"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>/[A-Za-z0-9._~!$&'()*+,:=@/-]*)?"
    r"(?:\?(?P<query>[A-Za-z0-9._~=&-]*))?"
    r"(?:#.*)?\Z",
    re.DOTALL,
)
# The host of an http(s) URL with no user part and no IPv6 literal.
_SIMPLE_HOST = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9.-]*)(?::[0-9]*)?(?:[/?#]|\Z)")
_SIMPLE_PAIR = re.compile(r"[A-Za-z0-9._~-]+(?:=[A-Za-z0-9._~-]*)?\Z")


def _simple_canonical(
    scheme: str, host: str, port: str | None, path: str | None, query: str | None
) -> str | None:
    """canonical_url of a URL matching _SIMPLE_URL, or None to leave it to w3lib."""
    scheme = scheme.lower()
    netloc = host.lower()
    if port is not None:
        number = int(port)
        if number > 65535:
            return None
        if number != _DEFAULT_PORTS[scheme]:
            netloc = f"{netloc}:{number}"
    if path is None:
        path = "/"
    elif "/." in path:
        return None  # dot segments: w3lib resolves them
    if not query:
        return f"{scheme}://{netloc}{path}"
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue
        if _SIMPLE_PAIR.match(item) is None:
            return None
        name, _, value = item.partition("=")
        if not _is_tracking(name):
            pairs.append((name, value))
    if not pairs:
        return f"{scheme}://{netloc}{path}"
    pairs.sort()
    return f"{scheme}://{netloc}{path}?" + "&".join(f"{k}={v}" for k, v in pairs)


def _w3lib_canonical(url: str) -> str | None:
    """canonical_url of any URL, by way of w3lib."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    try:
        port = parts.port
    except ValueError:
        return None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    )
    path = parts.path or "/"
    try:
        return canonicalize_url(urlunsplit((scheme, netloc, path, query, "")))
    except ValueError:  # w3lib refuses what urlsplit let through
        return None


def outlet(url: str | None) -> str:
    """The outlet domain of ``url`` (``www.`` dropped), or ``unknown``."""
    if not url:
        return "unknown"
    simple = _SIMPLE_HOST.match(url)
    if simple is not None:  # what urlsplit would find, without its cost
        return simple.group(1).lower().removeprefix("www.") or "unknown"
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.") or "unknown"


def normalised_text(*parts: str) -> str:
    """Case-folded words only: punctuation, accents and spacing differences vanish.

    The definition is :func:`_normalised_unicode` (NFKC, case folding, the ``\\w+`` runs joined
    by one space); ASCII text, nearly all of it, takes :func:`_normalised_ascii`, which gives
    the same (tests/unit/shared/test_identity_fastpath.py)."""
    joined = " ".join(parts)
    if joined.isascii():
        return _normalised_ascii(joined).decode("ascii")
    return _normalised_unicode(joined)


def normalised_words(text: str) -> list[bytes]:
    """The words of ``normalised_text(text)``, UTF-8 encoded."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_FOLD).split()
    return _normalised_unicode(text).encode("utf-8").split()


def content_fingerprint(title: str, text: str) -> str:
    """A hash of the normalised title and body: equal for verbatim copies of one article.

    Stored and compared across versions: it must stay the hash of ``normalised_text``."""
    joined = f"{title} {text}"
    if joined.isascii():
        return _digest_bytes(_normalised_ascii(joined))
    return _digest(_normalised_unicode(joined))


def _normalised_unicode(text: str) -> str:
    """``normalised_text`` of one string, by definition."""
    return " ".join(_WORDS.findall(unicodedata.normalize("NFKC", text).casefold()))


# For ASCII, NFKC changes nothing, case folding is lower-casing A-Z and ``\w`` is [A-Za-z0-9_]:
# one byte translation lower-cases and blanks every other character, then runs of blanks close.
_ASCII_WORD = frozenset(string.ascii_lowercase + string.digits + "_")
_ASCII_FOLD = bytes(
    ord(chr(c).lower()) if chr(c).lower() in _ASCII_WORD else 32 for c in range(256)
)
_BLANKS = re.compile(rb"  +")


def _normalised_ascii(text: str) -> bytes:
    """``normalised_text`` of an ASCII string, as bytes."""
    return _BLANKS.sub(b" ", text.encode("ascii").translate(_ASCII_FOLD)).strip()


def article_id(canonical: str | None, feed_id: str, guid: str | None, title: str, text: str) -> str:
    """The stable id: from the canonical URL, else the feed's GUID, else the content.

    GUIDs are only unique within a feed in practice (many feeds number their items), so a
    GUID-derived id is scoped by the feed.
    """
    if canonical:
        return "u" + _digest(canonical)
    if guid and guid.strip():
        return "g" + _digest(f"{feed_id}\n{guid.strip()}")
    return "c" + content_fingerprint(title, text)


def _digest(value: str) -> str:
    return _digest_bytes(value.encode("utf-8"))


def _digest_bytes(value: bytes) -> str:
    return hashlib.blake2b(value, digest_size=12).hexdigest()
