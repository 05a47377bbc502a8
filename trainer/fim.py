"""Fill-in-the-middle, as StarCoder's Megatron applied it: per document inside a packed sample.

A sample is `length` token ids from the loader's packed stream (documents back to back,
each ending in <|endoftext|>). It is cut at every <|endoftext|>; each document (without its
<|endoftext|>) is, with probability `fim_rate`, split at two random points into prefix,
middle, suffix and emitted as
    PSM  <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
or, with probability `fim_spm_rate` of those, in StarCoder's SPM variant
    SPM  <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle
and gets its <|endoftext|> back. The three sentinels make the sample longer: it is cut
back to `length`; a sample that came out shorter is padded with <fim_pad>, whose targets
the loss mask leaves out.

Split points are token positions (a token-level split), not characters. Token level needs
no tokenizer in the loader workers and no re-encoding, and the model always sees a middle
that starts and ends on token boundaries, which is also how a prompt is built from token
ids at inference. A character-level split (Megatron's: detokenize, split, re-encode each
part) also teaches the model to complete a token cut in half, at the cost of re-encoding
every document in the loader; with a byte-level BPE over code the difference is small.
The random draws come from a generator seeded by the sample's identity (seed and loader
state), so a resumed run applies the same transform to the same sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corpus_core.tokens import EOS, FIM_MIDDLE, FIM_PAD, FIM_PREFIX, FIM_SUFFIX


@dataclass(frozen=True)
class FimConfig:
    fim_rate: float = 0.5  # share of documents transformed
    fim_spm_rate: float = 0.5  # share of transformed documents in SPM order (the rest PSM)


def permute(doc: np.ndarray, rng: np.random.Generator, config: FimConfig) -> np.ndarray:
    """One document's ids (no <|endoftext|>), transformed or not."""
    if rng.random() >= config.fim_rate:
        return doc
    lo, hi = sorted(int(i) for i in rng.integers(0, len(doc) + 1, size=2))
    prefix, middle, suffix = doc[:lo], doc[lo:hi], doc[hi:]
    if rng.random() < config.fim_spm_rate:
        parts = ([FIM_PREFIX, FIM_SUFFIX], suffix, [FIM_MIDDLE], prefix, middle)
    else:
        parts = ([FIM_PREFIX], prefix, [FIM_SUFFIX], suffix, [FIM_MIDDLE], middle)
    return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])


def fim_sample(sample: np.ndarray, rng: np.random.Generator, config: FimConfig) -> tuple[np.ndarray, np.ndarray]:
    """(ids, loss_mask) of the same length as `sample`: each document FIM-transformed,
    truncated or padded with <fim_pad> (mask 0 on the padding)."""
    length = len(sample)
    if config.fim_rate <= 0:
        return sample.astype(np.int64), np.ones(length, dtype=np.int64)
    ends = np.flatnonzero(sample == EOS)
    pieces, start = [], 0
    for end in ends:
        pieces += [permute(sample[start:end], rng, config), np.asarray([EOS], dtype=np.int64)]
        start = end + 1
    if start < length:  # the last document goes on in the next sample: transformed as it is here
        pieces.append(permute(sample[start:], rng, config))
    out = np.concatenate(pieces)[:length] if pieces else np.empty(0, dtype=np.int64)
    mask = np.ones(length, dtype=np.int64)
    if len(out) < length:
        mask[len(out):] = 0
        out = np.concatenate([out, np.full(length - len(out), FIM_PAD, dtype=np.int64)])
    return out, mask


def psm_prompt(prefix: list[int], suffix: list[int]) -> list[int]:
    return [FIM_PREFIX, *prefix, FIM_SUFFIX, *suffix, FIM_MIDDLE]


def spm_prompt(prefix: list[int], suffix: list[int]) -> list[int]:
    return [FIM_PREFIX, FIM_SUFFIX, *suffix, FIM_MIDDLE, *prefix]
