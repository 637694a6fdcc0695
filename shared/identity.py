"""Article identity: canonical URLs, content fingerprints and the stable ``article_id``.

This is part of the Article contract (DESIGN.md): ``article_id`` derives from the canonical URL,
else the GUID, else a hash of the normalised content, so every stage and every replica computes
the same id for the same article.
"""

from __future__ import annotations

import hashlib
import re
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
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        return None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    )
    path = parts.path or "/"
    return canonicalize_url(urlunsplit((scheme, netloc, path, query, "")))


def outlet(url: str | None) -> str:
    """The outlet domain of ``url`` (``www.`` dropped), or ``unknown``."""
    if not url:
        return "unknown"
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.") or "unknown"


def normalised_text(*parts: str) -> str:
    """Case-folded words only: punctuation, accents and spacing differences vanish."""
    text = unicodedata.normalize("NFKC", " ".join(parts)).casefold()
    return " ".join(_WORDS.findall(text))


def content_fingerprint(title: str, text: str) -> str:
    """A hash of the normalised title and body: equal for verbatim copies of one article."""
    return _digest(normalised_text(title, text))


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
    return hashlib.blake2b(value.encode("utf-8"), digest_size=12).hexdigest()
