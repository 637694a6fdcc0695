"""The MinHash of ``signature`` (scheme 2): the documented hashes, the same in one call for a
batch as one by one and in every process, and estimates that track the true Jaccard."""

import hashlib
import os
import random
import subprocess
import sys
import zlib

import numpy as np
import pytest
from datasketch import MinHash

from dmzwatch.dedup import signature
from dmzwatch.dedup.signature import (
    BANDS,
    NUM_PERM,
    ROWS,
    SEED,
    SIGNATURE_BYTES,
    Signer,
    permutations,
    shingles,
    similarities,
    similarity,
)
from tests.stories import labelled_articles

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
K = 0x9E3779B97F4A7C15


def fmix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    return x ^ (x >> 33)


def shingle_hash(shingle: bytes) -> int:
    """The module docstring's definition, in plain integers."""
    words = [zlib.crc32(w) for w in shingle.split(b" ")]
    w0, w1, w2 = (fmix64(w) for w in words + [1 << 32] * (3 - len(words)))
    return fmix64((((w0 * K + w1) & M64) * K + w2) & M64) >> 32


def reference_signature(title: str, text: str) -> tuple[bytes, tuple[bytes, ...]] | None:
    items = shingles(title, text)
    if not items:
        return None
    a, b = permutations()
    hashed = [shingle_hash(s) for s in items]
    values = [
        min((int(ai) * h + int(bi)) & M32 for h in hashed) for ai, bi in zip(a, b, strict=True)
    ]
    packed = b"".join((v & 0xFFFF).to_bytes(2, "little") for v in values)
    bands = tuple(
        bytes([band])
        + (fmix64(values[band * ROWS] | values[band * ROWS + 1] << 32) & M32).to_bytes(4, "little")
        for band in range(BANDS)
    )
    return packed, bands


WORDS = ["kim", "purge", "élite", "ＡＢＣ", "summit", "x", "defector", "ß", "0", "party", "the"]


def articles(seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = [(i["title"], i["text"]) for i in labelled_articles(copies=3, seed=seed)]
    out += [
        (" ".join(rng.choices(WORDS, k=rng.randint(0, 8))), " ".join(rng.choices(WORDS, k=k)))
        for k in (rng.randint(0, 90) for _ in range(150))
    ]
    out += [("", ""), ("the of", "said"), ("Kim", ""), ("", "kim jong"), ("a b c", "")]
    return out


def test_permutations_are_datasketchs() -> None:
    a, b = permutations()
    expected = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32").permutations
    assert np.array_equal(a, expected[0]) and np.array_equal(b, expected[1])


@pytest.mark.parametrize("seed", [1, 2])
def test_signatures_are_the_documented_hashes(seed: int) -> None:
    signer = Signer()
    for title, text in articles(seed):
        sig = signer.sign(title, text)
        expected = reference_signature(title, text)
        if expected is None:
            assert sig is None, (title, text)
        else:
            assert sig is not None and (sig.packed, sig.bands) == expected, (title, text)


@pytest.mark.parametrize("chunk", [1, 7, 64, signature.CHUNK_ROWS])
def test_sign_many_is_sign_one_by_one(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # small chunks put many articles' shingles across chunk boundaries
    items = articles(3)
    items.insert(5, ("w " * 5000, "v " * 100))  # one article longer than a chunk
    items.insert(9, ("", ""))
    one_by_one = [Signer().sign(title, text) for title, text in items]
    monkeypatch.setattr(signature, "CHUNK_ROWS", chunk)
    assert Signer().sign_many(items) == one_by_one
    assert Signer().sign_many([]) == []
    assert Signer().sign_many([("", ""), ("the", "")]) == [None, None]


def test_values_are_those_of_the_shingle_set() -> None:
    signer = Signer()
    for title, text in articles(4)[:60]:
        items = shingles(title, text)
        sig = signer.sign(title, text)
        if sig is not None:
            values = signer.values(items)
            assert sig.packed == (values & 0xFFFF).astype("<u2").tobytes()
            assert np.array_equal(values, signer.values(items[::-1] + items))


TITLE = "Kim Jong Un purges senior general, state media say"
TEXT = (
    "SEOUL (Korea Wire) -- North Korea has removed a senior general from the Central Military "
    "Commission, state media reported on Tuesday, the latest in a series of purges."
)
# sha256 of packed + bands of Signer().sign(TITLE, TEXT) under scheme 2 (changing it means a
# new scheme: stored signatures would no longer compare)
RECORDED = "a0aee149d25fc2ec33d311f8445da02936eff85353362fd660828868ea6347ca"


def digest_of_fixed_article() -> str:
    sig = Signer().sign(TITLE, TEXT)
    assert sig is not None
    return hashlib.sha256(sig.packed + b"".join(sig.bands)).hexdigest()


def test_a_fixed_articles_signature_is_recorded_and_the_same_in_another_process() -> None:
    assert digest_of_fixed_article() == RECORDED
    code = (
        "from tests.unit.dedup.test_signature_scheme import digest_of_fixed_article as d; "
        "print(d())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert other.stdout.strip() == RECORDED


def test_estimates_track_the_true_jaccard_of_random_sets() -> None:
    """Two sets sharing ``common`` shingles: the estimated similarity is within sampling error
    of the true Jaccard (the standard error with 128 values is at most 0.044), unbiased, and its
    spread is the binomial one. The words come from a small vocabulary, so distinct shingles
    often share words, in another order or place: a mix that loses a word or the order would
    make them collide and the estimates too high."""
    signer = Signer()
    rng = random.Random(7)
    vocabulary = [f"w{n}" for n in range(25)]

    def shingle() -> bytes:
        return " ".join(rng.choices(vocabulary, k=rng.choice((1, 2, 3, 3, 3)))).encode()

    errors, variances = [], []
    for _ in range(400):
        size_a, size_b = rng.randint(5, 120), rng.randint(5, 120)
        common = rng.randint(0, min(size_a, size_b))
        shared = {shingle() for _ in range(common)}
        own = [shingle() for _ in range(size_a - common)]
        left = shared | set(own)
        right = shared | {shingle() for _ in range(size_b - common)}
        if rng.random() < 0.5:  # the other's shingles are this one's words in another order
            right = shared | {b" ".join(rng.sample(s.split(), k=len(s.split()))) for s in own}
        true = len(left & right) / len(left | right)
        packed = [
            (signer.values(sorted(s)) & 0xFFFF).astype("<u2").tobytes() for s in (left, right)
        ]
        assert len(packed[0]) == SIGNATURE_BYTES
        estimate = similarity(*packed)
        errors.append(estimate - true)
        variances.append(true * (1 - true) / NUM_PERM)
    assert max(map(abs, errors)) < 0.2
    assert abs(sum(errors) / len(errors)) < 0.01
    spread = sum(e * e for e in errors) / sum(variances)
    assert 0.7 < spread < 1.4, spread


def test_similarities_are_each_pairs_similarity() -> None:
    rng = random.Random(5)
    base = rng.randbytes(SIGNATURE_BYTES)
    other = rng.randbytes(SIGNATURE_BYTES)
    right = [
        bytes(a if rng.random() < share else b for a, b in zip(base, other, strict=True))
        for share in (0.0, 0.3, 0.9, 1.0)
    ]
    right += [b"", base[:-2], base + b"xx"]  # malformed: 0
    left = [base] * len(right)
    left[0] = b"short"
    scores = similarities(left, right)
    assert scores == [similarity(a, b) for a, b in zip(left, right, strict=True)]
    assert scores[0] == 0 and scores[3] == 1.0 and 0 < scores[1] < scores[2] < 1
    assert similarities([], []) == []
