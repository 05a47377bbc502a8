"""MinHash arithmetic: equal to datasketch's, batched; band keys; the LSH parameters."""

from __future__ import annotations

import hashlib
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


PINNED_TEXTS = [
    "def add(a, b):\n    return a + b  # sum\n",
    "déf naïve_x(a1, b):\n  return a1+b  # ok ünïcödé 😀 \ud800x",
    "one two",
    "",
    " ".join(f"w{i % 97}_{i % 13}" for i in range(20000)),  # longer than a chunk of shingles
]


def test_signatures_and_band_keys_keep_their_exact_values():
    """The values signed before the arithmetic was made faster (commit 6fc2911): any change
    would make new signatures miss every near duplicate signed before it."""
    shingles = [minhash.shingle_hashes(minhash.tokens(text), 5) for text in PINNED_TEXTS]
    assert [hashes.tolist() for hashes in shingles[:4]] == [
        [2601755144, 2997239199, 2551994462, 2983820407],
        [1552436692, 2572562930, 3667892254, 766791317, 1889878140, 1060171592],
        [3535533548], []]
    signature = minhash.signatures(shingles, 16, 1)
    assert signature[:3].tolist() == [
        [232684664, 454319461, 1597771558, 946724635, 1191219687, 49012971, 410244830, 270728266, 1090215799,
         2435538834, 999733580, 733526104, 178066499, 857033816, 57930958, 779436707],
        [10727077, 1311588210, 527459687, 166381872, 298126593, 77213509, 1553839090, 45219129, 16557803, 495421643,
         410719686, 27955120, 177217236, 1943383278, 989493921, 527015396],
        [1126438338, 3533420997, 1870637254, 3187781000, 1910014410, 682496577, 2659781438, 4272933136, 4210624727,
         4250407472, 2449363870, 1101629496, 716881329, 2491313050, 2512042926, 2223573976]]
    assert (signature[3] == 0xFFFFFFFF).all()  # no shingles: the empty signature
    assert minhash.band_keys(signature, 4, 4)[:3].tolist() == [
        [2267981578097904669, 853382818273634684, -8899098523889290342, -1873779768933841743],
        [5633978144915967940, 4530180286888325871, -5918248915290700505, -4792681091946077999],
        [8385159079757809330, -34138424846577793, -7092727400676755414, 7742952947781178036]]
    wide = minhash.signatures(shingles, 256, 42)
    digest = hashlib.sha256(wide.tobytes() + minhash.band_keys(wide, 25, 10).tobytes()).hexdigest()
    assert digest == "13a28e7fcc9443e611aaf68bf36ac6e81354e49ca3530c764976bbde3916da17"
    assert hashlib.sha256(b"".join(hashes.tobytes() for hashes in shingles)).hexdigest() == (
        "dd35ef1a0ab8120c4d6435ef478083f9e54eb12a74ec92010ab644688c076f58")
