"""MinHash signatures and LSH band keys for near-duplicate detection, vectorized over batches.

The arithmetic is datasketch's, applied to many documents at once:

- tokens: maximal runs of Unicode word characters (`\\w+`: letters, digits, underscore),
  case kept; everything else separates tokens. Language-agnostic, and what BigCode's
  near-dedup split on. A file with fewer than `min_tokens` tokens gets no signature.
- shingles: every run of `shingle_size` consecutive tokens (one shingle of all tokens
  when a file has fewer). Each token is hashed once (crc32 of its UTF-8 bytes); a
  shingle's hash mixes its tokens' hashes in order (64-bit polynomial, MurmurHash3's
  64-bit finalizer) down to 32 bits.
- signature: datasketch's `affine32` MinHash: each 32-bit shingle hash goes through
  MurmurHash3's 32-bit finalizer, then through `num_perm` affine permutations
  `a * h + b mod 2**32` whose (a, b) come from `datasketch.MinHash(num_perm, seed)`; the
  minimum per permutation is the signature. `signature_of` equals
  `datasketch.MinHash(num_perm, seed, hashfunc=int).update_batch(shingle_hashes)`
  (tests/stages/test_minhash.py checks it, and pins today's exact values); here the
  minimum runs over a whole batch of documents in a few numpy passes instead of one
  Python call per shingle.
- bands: the first `bands * rows` signature values cut into `bands` bands of `rows`
  values; each band mixed into one signed 64-bit key. Two files share a key in some
  band with probability 1 - (1 - J**rows)**bands for Jaccard similarity J.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

WORD = re.compile(r"\w+")
MAX_HASH = np.uint32(0xFFFFFFFF)
CHUNK_SHINGLES = 8192  # shingles permuted at once: CHUNK_SHINGLES * num_perm * 4 bytes of scratch

_MIX = np.uint64(0x100000001B3)  # FNV's 64-bit prime as the polynomial's base
_M64 = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_M32 = (np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35))


# ASCII's word characters (what `\w` matches there) kept, every other byte a space
ASCII_WORD_BYTES = bytes(b if chr(b).isalnum() or chr(b) == "_" else 32 for b in range(128)) + b" " * 128


def tokens(text: str) -> list[str]:
    if text.isascii():  # translate and split run in C without a regex step per character: 2x faster
        return text.encode("ascii").translate(ASCII_WORD_BYTES).decode("ascii").split()
    return WORD.findall(text)


def _fmix(h: np.ndarray, shifts: tuple, multipliers: tuple) -> np.ndarray:
    """MurmurHash3's finalizer (wrapping multiplication in h's own width)."""
    for shift, multiplier in zip(shifts, multipliers, strict=False):
        h = h ^ (h >> shift)
        h = h * multiplier
    return h ^ (h >> shifts[-1])


def _fmix64(h: np.ndarray) -> np.ndarray:
    return _fmix(h, (np.uint64(33),) * 3, _M64)


def _fmix32(h: np.ndarray) -> np.ndarray:
    return _fmix(h, (np.uint32(16), np.uint32(13), np.uint32(16)), _M32)


def shingle_hashes(words: Sequence[str], shingle_size: int) -> np.ndarray:
    """32-bit hashes (as uint32) of the shingles of one token list; empty for no tokens."""
    if not words:
        return np.empty(0, dtype=np.uint32)
    unique = dict.fromkeys(words)
    hashed = dict(zip(unique, map(zlib.crc32, [word.encode("utf-8", "surrogatepass") for word in unique]),
                      strict=True))
    token_hash = np.fromiter(map(hashed.__getitem__, words), dtype=np.uint64, count=len(words))
    count = max(len(words) - shingle_size + 1, 1)
    mixed = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(min(shingle_size, len(words))):
            mixed = mixed * _MIX + token_hash[offset:offset + count]
        return (_fmix64(mixed) >> np.uint64(32)).astype(np.uint32)


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a, b), each (num_perm,) uint32."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def signatures(shingles: Sequence[np.ndarray], num_perm: int, seed: int) -> np.ndarray:
    """MinHash signatures of many documents, (len(shingles), num_perm) uint32. All the
    documents' shingles are permuted as one stream, CHUNK_SHINGLES at a time, into a
    (num_perm, chunk) scratch laid out so that each document's minimum is a reduction along
    contiguous memory (10x faster than shingles-by-permutations); a document cut by a
    chunk's end takes the minimum of its parts."""
    a, b = permutations(num_perm, seed)
    minimum = np.full((num_perm, len(shingles)), MAX_HASH, dtype=np.uint32)
    lengths = np.fromiter(map(len, shingles), dtype=np.intp, count=len(shingles))
    if not lengths.any():
        return minimum.T.copy()
    with np.errstate(over="ignore"):
        hashes = _fmix32(np.concatenate(shingles).astype(np.uint32, copy=False))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    scratch = np.empty((num_perm, min(CHUNK_SHINGLES, len(hashes))), dtype=np.uint32)
    for low in range(0, len(hashes), CHUNK_SHINGLES):
        high = min(low + CHUNK_SHINGLES, len(hashes))
        permuted = scratch[:, : high - low]
        np.multiply(a[:, None], hashes[low:high], out=permuted)  # wraps mod 2**32
        np.add(permuted, b[:, None], out=permuted)
        inside = np.arange(np.searchsorted(ends, low, side="right"), np.searchsorted(starts, high, side="left"))
        inside = inside[lengths[inside] > 0]  # the documents with shingles in [low, high)
        parts = np.minimum.reduceat(permuted, np.maximum(starts[inside], low) - low, axis=1)
        minimum[:, inside] = np.minimum(minimum[:, inside], parts)
    return np.ascontiguousarray(minimum.T)


def band_keys(signature: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents, bands) int64: each band's `rows` values mixed into one key."""
    if bands * rows > signature.shape[1]:
        raise ValueError(f"{bands} bands of {rows} rows need {bands * rows} values, the signature has "
                         f"{signature.shape[1]}")
    values = signature[:, : bands * rows].astype(np.uint64).reshape(len(signature), bands, rows)
    key = np.zeros((len(signature), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for row in range(rows):
            key = key * _MIX + values[:, :, row]
        # the band's index goes in too, so equal values in different bands give different keys
        key = _fmix64(key + np.arange(bands, dtype=np.uint64))
    return key.view(np.int64)


def jaccard_estimate(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Fraction of equal signature values, row by row: datasketch's `MinHash.jaccard`."""
    return (left == right).mean(axis=1)


def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's choice of (bands, rows): the least weighted false positive and false
    negative probability mass around `threshold`, equal weights."""
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, 0.5, 0.5)
    return int(bands), int(rows)
