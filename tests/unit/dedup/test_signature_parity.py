"""The numpy MinHash of ``signature`` gives exactly datasketch's values (the definition)."""

import random

import numpy as np
import pytest
from datasketch import MinHash

from dmzwatch.dedup.signature import NUM_PERM, SEED, Signer, permutations, shingles
from tests.stories import labelled_articles


def reference(items: list[bytes]) -> np.ndarray:
    minhash = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32")
    minhash.update_batch(items)
    return np.asarray(minhash.hashvalues, dtype=np.uint32)


def test_permutations_are_datasketchs() -> None:
    a, b = permutations()
    expected = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32").permutations
    assert np.array_equal(a, expected[0]) and np.array_equal(b, expected[1])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_values_equal_datasketch_on_articles_and_random_words(seed: int) -> None:
    signer = Signer()
    rng = random.Random(seed)
    texts = [(i["title"], i["text"]) for i in labelled_articles(copies=3, seed=seed)]
    words = ["kim", "purge", "élite", "ＡＢＣ", "summit", "x", "defector", "ß", "0", "party"]
    texts += [
        (" ".join(rng.choices(words, k=8)), " ".join(rng.choices(words, k=rng.randint(1, 90))))
        for _ in range(200)
    ]
    for title, text in texts:
        items = shingles(title, text)
        assert np.array_equal(signer.values(items), reference(items)), (title, text)
