"""MinHash arithmetic: equal to datasketch's, batched; band keys; the LSH parameters."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from stages import minhash


def test_tokens_are_unicode_word_runs_and_shingles_overlap():
    assert minhash.tokens("déf naïve_x(a1, b):\n  return a1+b  # ok") == [
        "déf", "naïve_x", "a1", "b", "return", "a1", "b", "ok"]
    words = [f"w{i}" for i in range(12)]
    assert len(minhash.shingle_hashes(words, 5)) == 8
    assert len(minhash.shingle_hashes(words[:3], 5)) == 1  # fewer tokens than a shingle: one shingle
    assert len(minhash.shingle_hashes([], 5)) == 0
    # a shingle's hash depends on its tokens' order
    assert minhash.shingle_hashes(["a", "b"], 2)[0] != minhash.shingle_hashes(["b", "a"], 2)[0]


def test_signatures_equal_datasketch_for_every_document_of_a_batch(monkeypatch):
    monkeypatch.setattr(minhash, "CHUNK_SHINGLES", 50)  # force groups, flushes and a chunked document
    rng = random.Random(7)
    documents = [[f"t{rng.randrange(40)}" for _ in range(size)] for size in (30, 0, 7, 120, 49, 1, 60)]
    shingles = [minhash.shingle_hashes(words, 5) for words in documents]
    batch = minhash.signatures(shingles, num_perm=128, seed=3)
    for words, hashes, signature in zip(documents, shingles, batch, strict=True):
        reference = MinHash(num_perm=128, seed=3, hashfunc=int)
        reference.update_batch(hashes.tolist())
        assert np.array_equal(signature, reference.hashvalues), len(words)


def test_estimate_tracks_the_exact_jaccard():
    rng = random.Random(1)
    base = [f"t{rng.randrange(5000)}" for _ in range(600)]
    for changed in (0, 60, 150, 300):
        other = list(base)
        for position in rng.sample(range(len(base)), changed):
            other[position] = f"new{position}"
        left, right = (minhash.shingle_hashes(words, 5) for words in (base, other))
        exact = len(set(left) & set(right)) / len(set(left) | set(right))
        estimate = minhash.jaccard_estimate(*minhash.signatures([left, right], 256, 1)[:, None, :])[0]
        assert abs(estimate - exact) < 0.08, (changed, exact, estimate)


def test_band_keys_equal_exactly_when_the_band_is_equal():
    rng = np.random.default_rng(0)
    signature = rng.integers(0, 2**32, size=(3, 20), dtype=np.uint32)
    signature[1] = signature[0]
    signature[1, 7] += 1  # band 1 of rows 5..9 differs, the others are equal
    signature[2] = np.tile(signature[0, :5], 4)  # every band of row 2 holds band 0's values
    keys = minhash.band_keys(signature, bands=4, rows=5)
    assert keys.dtype == np.int64 and keys.shape == (3, 4)
    assert list(keys[0] == keys[1]) == [True, False, True, True]
    assert len(set(keys[2])) == 4  # equal values in different bands give different keys
    with pytest.raises(ValueError, match="need 25 values"):
        minhash.band_keys(signature, bands=5, rows=5)


def test_optimal_bands_are_datasketchs():
    lsh = MinHashLSH(threshold=0.7, num_perm=256)
    assert minhash.optimal_bands(0.7, 256) == (lsh.b, lsh.r) == (25, 10)
