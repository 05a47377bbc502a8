"""The fast encoder (tiktoken) gives exactly HF `encode_batch`'s ids, and is refused where that
is not proven (stages/tokenize.py's docstring has the argument)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import tiktoken
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from stages.tokenize import (
    SPLIT_PATTERN,
    TextEncoder,
    TokenizeConfig,
    byte_level_chars,
    encode_files,
    header_ids,
    new_tokenizer,
    train_tokenizer,
)

ROOT = Path(__file__).resolve().parents[2]
MULTILINGUAL = (ROOT / "tests/data/tokenize/multilingual.txt").read_bytes().decode()  # bytes: keep its CRLFs


def real_text() -> list[str]:
    """Code and prose of several languages shipped with the project (~0.7 MB)."""
    paths = [*sorted((ROOT / "tests/data/comments").iterdir()), *sorted((ROOT / "stages").glob("*.py")),
             *sorted((ROOT / "tests/data/license_headers").iterdir()), *sorted((ROOT / "docs").glob("*.md"))]
    texts = [p.read_bytes().decode() for p in paths if p.is_file()]
    assert len(texts) > 60 and sum(map(len, texts)) > 300_000
    return texts + [MULTILINGUAL]


# characters of every kind GPT-2's split tells apart: letters of several scripts, numbers of
# several kinds (Nd, Nl, No), marks, symbols, apostrophes, each Unicode whitespace, emoji,
# private use, unassigned and noncharacter code points
ALPHABET = ("abcxyzABCXYZ0123456789'''\"`.,;:!?-_=+*/\\()[]{}<>@#$%^&|~ éüßØœĞİışŁ ΑΩαω ЖжЯя אשת ابت ١٢٣ "
            "०१२ अआक् ไทย 中文字 ひらカタ 한글 ²³¹½ Ⅻⅻ ①② \u0301\u0308\u20dd ∀∑√ €£¥ 🚀👍🏽\u200d❤️🇩🇪 𝟘𝟙 𐌰 𓀀 "
            "\ue000\U000f0000\u0378\ufffe\U0010ffff\u200b\u200c\u200d\u2060\ufeff\u00ad")
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
              "\u1680", "\u2000", "\u2003", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u180e"]


def generated_text(count: int, seed: int = 0) -> list[str]:
    """Random strings of those characters, words, contractions and whitespace runs."""
    rng = random.Random(seed)
    words = ["it's", "IT'S", "we'll", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "don't", "x'sy", "''s"]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randrange(1, 60)):
            kind = rng.random()
            if kind < 0.5:
                parts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 12))))
            elif kind < 0.8:
                parts.append(rng.choice(WHITESPACE) * rng.choice([1, 1, 1, 2, 3, 5, 17]))
            else:
                parts.append(rng.choice(words))
        texts.append("".join(parts))
    return texts


EDGES = ["", " ", "  ", "\n", "a", "'s", " 's", "  's", "\t's", "é", "🚀", " " * 5000, "\n" * 3000, "\r\n" * 1000,
         " \t" * 2000 + "x", "a" * 20_000, "ab" * 10_000, "é" * 5000, "🚀" * 2000, "1" * 10_000, "!" * 10_000,
         " x" * 5000, "x " * 5000 + " ", "\u3000" * 100 + "字", "<|endoftext|>", "<fim_prefix>x<fim_suffix>"]


@pytest.fixture(scope="module")
def trained() -> Tokenizer:
    """A tokenizer trained the stage's way on part of the real text and generated text."""
    texts = real_text()
    return train_tokenizer(iter(texts[::2] + generated_text(300, seed=1)), vocab_size=3000)


def hf_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    tokenizer.encode_special_tokens = True
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def test_the_fast_path_gives_hf_ids_on_real_and_generated_text(trained):
    encoder = TextEncoder.of(trained)
    assert encoder.fast is not None and encoder.why_not is None
    assert trained.get_vocab_size() == 3000
    texts = real_text() + generated_text(1500) + EDGES
    expected = hf_ids(trained, texts)
    assert encoder.encode(texts) == expected
    assert sum(map(len, expected)) > 150_000  # enough tokens that a difference would show
    # merges of many lengths were exercised: multi-byte tokens well beyond the first merges
    assert max(i for ids in expected for i in ids) > 2900


@pytest.mark.parametrize("threads", ["1", "3"])
def test_the_stage_functions_give_the_same_ids_either_way(trained, threads, monkeypatch):
    monkeypatch.setenv("RAYON_NUM_THREADS", threads)  # the encoder's threads, as encode_batch's
    rows = [{"repo": f"o/r{i}", "path": f"d/é{i}.py", "stars": i or None, "id": f"id{i}", "content": text}
            for i, text in enumerate(real_text()[:40] + generated_text(40, seed=2) + EDGES)]
    config = TokenizeConfig(metadata_probability=0.5)
    fast, slow = TextEncoder.of(trained), TextEncoder(trained)
    assert fast.fast is not None and slow.fast is None
    assert encode_files(fast, rows, config) == encode_files(slow, rows, config) == encode_files(trained, rows, config)
    assert header_ids(fast, rows) == header_ids(slow, rows)


def test_a_tiny_trained_tokenizer_takes_the_fast_path_too():
    tiny = train_tokenizer(iter(["aaaa bbbb aaaa", "x'sx 's"] * 3), vocab_size=290)
    encoder = TextEncoder.of(tiny)
    assert encoder.fast is not None
    texts = generated_text(200, seed=3) + EDGES
    assert encoder.encode(texts) == hf_ids(tiny, texts)


def test_the_split_pattern_splits_as_hf_on_every_kind_of_character():
    """Which strings are one piece for HF's ByteLevel regex (Oniguruma) and for SPLIT_PATTERN
    (tiktoken's engine): a string is one piece for tiktoken when it encodes to the one token
    made for it. Every 13th code point of planes 0-2, and the characters above."""
    chars = sorted({chr(c) for c in range(0, 0x30000, 13) if not 0xD800 <= c < 0xE000} | set(ALPHABET)
                   | {c for w in WHITESPACE for c in w})
    strings = [s for c in chars for s in ("a" + c, "1" + c, "!" + c, " " + c, c + c, c + "a", c + " a", "  " + c)]
    ranks = {bytes([b]): b for b in range(256)}
    for s in strings:
        ranks.setdefault(s.encode(), len(ranks))
    encoding = tiktoken.Encoding("one-piece", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens={})
    split = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    differ = [s for s in strings if (len(split.pre_tokenize_str(s)) == 1) != (len(encoding.encode_ordinary(s)) == 1)]
    assert differ == []
    assert len(strings) > 100_000


def test_byte_level_chars_are_hf_bytelevel_alphabet():
    chars = byte_level_chars()
    assert sorted(chars) == sorted(pre_tokenizers.ByteLevel.alphabet())
    assert sorted(chars.values()) == list(range(256))
    assert chars["Ġ"] == ord(" ") and chars["Ċ"] == ord("\n") and chars["a"] == ord("a")


def with_spec(tokenizer: Tokenizer, change) -> Tokenizer:
    spec = json.loads(tokenizer.to_str())
    change(spec)
    return Tokenizer.from_str(json.dumps(spec))


def bpe(merges: list[tuple[str, str]]) -> Tokenizer:
    """A byte-level BPE over the 256 bytes with these merges (made by hand, not trained)."""
    vocab = {c: i for i, c in enumerate(pre_tokenizers.ByteLevel.alphabet())}
    for first, second in merges:
        vocab.setdefault(first + second, len(vocab))
    tokenizer = new_tokenizer()
    tokenizer.model = models.BPE(vocab=vocab, merges=merges)
    return tokenizer


@pytest.mark.parametrize(("name", "change", "why"), [
    ("normalizer", lambda s: s.update(normalizer={"type": "NFKC"}), "the tokenizer has a normalizer"),
    ("digits", lambda s: s.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, s["pre_tokenizer"]]}), "its pre-tokenizer is not ByteLevel"),
    ("prefix space", lambda s: s["pre_tokenizer"].update(add_prefix_space=True), "its pre-tokenizer is not"),
    ("dropout", lambda s: s["model"].update(dropout=0.1), "its BPE sets dropout"),
    ("byte fallback", lambda s: s["model"].update(byte_fallback=True), "its BPE sets byte_fallback"),
    ("ignore merges", lambda s: s["model"].update(ignore_merges=True), "its BPE sets ignore_merges"),
    ("added token", lambda s: s["added_tokens"].append({
        "id": 3000, "content": "def", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
        "special": False}), "added tokens that are not special"),
    ("ids out of merge order", lambda s: s["model"]["vocab"].update(
        {k: (2 * 297 - v if 295 <= v < 300 else v) for k, v in s["model"]["vocab"].items()}), "an id out of order"),
])
def test_the_fallback_is_taken_where_equality_is_not_proven(trained, name, change, why):
    changed = with_spec(trained, change)
    encoder = TextEncoder.of(changed)
    assert encoder.fast is None and why in encoder.why_not
    texts = real_text()[:5] + generated_text(30, seed=4)
    if name != "dropout":  # dropout draws at random: no two encodings need agree
        assert encoder.encode(texts) == hf_ids(changed, texts)


def test_merge_lists_rank_bpe_would_encode_differently_are_refused():
    """"abc" is made from "a"+"bc" but "ab" merges first: HF leaves "ab","c", while rank-BPE
    (tiktoken) would join them since "abc" is a token. Also a token made twice, and a merge of
    a token made later."""
    off_list = bpe([("a", "b"), ("b", "c"), ("a", "bc")])
    assert hf_ids(off_list, ["abc"]) == [[off_list.token_to_id("ab"), off_list.token_to_id("c")]]
    encoder = TextEncoder.of(off_list)
    assert encoder.fast is None and encoder.why_not == "token 'abc' does not encode to itself"
    assert encoder.encode(["abc", "xabcx"]) == hf_ids(off_list, ["abc", "xabcx"])

    twice = bpe([("b", "c"), ("a", "b"), ("a", "bc"), ("ab", "c")])
    assert "merge 3 ('ab' 'c') makes a token made before" in TextEncoder.of(twice).why_not
    later = bpe([("a", "b"), ("ab", "cd"), ("c", "d")])
    assert "merge 1 ('ab' 'cd') joins a token no earlier merge made" in TextEncoder.of(later).why_not
    chained = bpe([("b", "c"), ("a", "bc"), ("a", "b")])  # the same tokens, in an order rank-BPE agrees with
    assert TextEncoder.of(chained).fast is not None
    assert TextEncoder.of(chained).encode(["abc", "ab", "abcbc"]) == hf_ids(chained, ["abc", "ab", "abcbc"])


def test_a_tokenizer_without_byte_level_bpe_falls_back():
    wordpiece = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.Lowercase()
    assert TextEncoder.of(wordpiece).why_not == "the tokenizer has a normalizer"
    wordpiece.normalizer = None
    wordpiece.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    assert TextEncoder.of(wordpiece).why_not == "its model is WordPiece, not BPE"
