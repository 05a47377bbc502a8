"""Experiment: does FIM training teach infilling? A tiny model trained briefly with
fim_rate=0.5 against the same model trained with fim_rate=0, on held-out single-line
infilling, greedy, with PSM and SPM prompts. CPU is enough (a few minutes).

    .venv/bin/python bench/fim.py [--steps 1500] [--seed 0]

Corpus: generated Python-like functions whose lines follow from their context (a name
carries the constant a later line uses, a loop variable is reused), so a line can be
inferred from the code around it. A 512-token byte-level BPE is trained on them with the
stage's own `train_tokenizer`. Training samples are 128-token packed blocks with FIM per
document (trainer/fim.py), batch 16, AdamW 1e-3 with cosine decay.
Evaluation: 300 held-out functions, from (operation, name, constant) combinations that
never occur in training; in each, one line (not the first) is the middle: the
tokens that lie wholly inside that line, newline included; prefix and suffix are the
tokens before and after. The prompt is PSM or SPM; generation is greedy until
<|endoftext|>; exact match means the generated ids equal the middle's ids.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch
from report import publish  # bench/report.py

from stages.tokenize import EOS, train_tokenizer
from trainer.fim import FimConfig, fim_sample, psm_prompt, spm_prompt
from trainer.model import GPTBigCode, preset
from trainer.train import TrainConfig, lr_at

NAMES = ["values", "items", "rows", "points", "scores", "weights", "prices", "counts", "sizes", "levels",
         "rates", "totals", "marks", "ticks", "bytes", "steps"]
OPS = [("scale", "*"), ("shift", "+"), ("drop", "-")]


def held_out(op_name: str, data: str, k: int) -> bool:
    """A fifth of the (operation, name, constant) combinations never appear in training."""
    return (hash_of(f"{op_name}:{data}:{k}") % 5) == 0


def hash_of(text: str) -> int:
    import hashlib

    return int(hashlib.md5(text.encode()).hexdigest(), 16)


def function(rng: random.Random, want_held_out: bool) -> str:
    while True:
        op_name, op = rng.choice(OPS)
        k = rng.randint(2, 9)
        data = rng.choice(NAMES)
        if held_out(op_name, data, k) == want_held_out:
            break
    acc = rng.choice(["total", "result", "acc"])
    var = data[0]
    lines = [
        f"def {op_name}_{data}_by_{k}({data}):",
        f"    {acc} = 0",
        f"    for {var} in {data}:",
        f"        {acc} += {var} {op} {k}",
        f"    return {acc}",
    ]
    if rng.random() < 0.5:
        lines.insert(1, f'    """{op_name.capitalize()} each of the {data} by {k}."""')
    return "\n".join(lines) + "\n"


def middle_split(tokenizer, text: str, line: int) -> tuple[list[int], list[int], list[int]]:
    """(prefix, middle, suffix) ids: the middle is the tokens wholly inside the line's span."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    starts = [i for i in range(len(text)) if i == 0 or text[i - 1] == "\n"]
    a = starts[line]
    b = starts[line + 1] if line + 1 < len(starts) else len(text)
    inside = [i for i, (s, e) in enumerate(encoding.offsets) if s >= a and e <= b]
    if not inside:
        return [], [], []
    lo, hi = inside[0], inside[-1] + 1
    ids = encoding.ids
    return ids[:lo], ids[lo:hi], ids[hi:]


def train_model(stream: np.ndarray, vocab: int, fim_rate: float, steps: int, seed: int) -> GPTBigCode:
    torch.manual_seed(seed)
    model = GPTBigCode(preset("tiny", vocab_size=vocab, block_size=256))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    rng = np.random.default_rng(seed)
    length, batch = 129, 16
    fim = FimConfig(fim_rate=fim_rate, fim_spm_rate=0.5)
    schedule = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=0, max_steps=steps)  # cosine, no warmup
    for step in range(steps):
        rows, masks = [], []
        for _ in range(batch):
            start = int(rng.integers(0, len(stream) - length))
            ids, mask = fim_sample(stream[start:start + length], rng, fim)
            rows.append(ids)
            masks.append(mask)
        ids, mask = torch.from_numpy(np.stack(rows)), torch.from_numpy(np.stack(masks))
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, schedule)
        _, loss = model(ids[:, :-1], ids[:, 1:], mask[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model.eval()


def exact_match(model: GPTBigCode, cases: list[tuple[list[int], list[int], list[int]]], mode: str) -> float:
    hits = 0
    for prefix, middle, suffix in cases:
        prompt = psm_prompt(prefix, suffix) if mode == "psm" else spm_prompt(prefix, suffix)
        out = model.generate(torch.tensor([prompt]), max_new_tokens=len(middle) + 8, stop=EOS)[0, len(prompt):]
        generated = out.tolist()
        if generated and generated[-1] == EOS:
            generated = generated[:-1]
        hits += generated == middle
    return round(hits / len(cases), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    train_docs = [function(rng, want_held_out=False) for _ in range(4000)]
    held_out = [function(rng, want_held_out=True) for _ in range(300)]
    tokenizer = train_tokenizer(iter(train_docs), vocab_size=512)
    tokenizer.encode_special_tokens = True
    stream = np.concatenate([np.asarray(tokenizer.encode(d, add_special_tokens=False).ids + [EOS], dtype=np.int64)
                             for d in train_docs])
    cases = []
    case_rng = random.Random(args.seed + 1)
    for doc in held_out:
        line = case_rng.randrange(1, doc.count("\n"))
        prefix, middle, suffix = middle_split(tokenizer, doc, line)
        if middle:
            cases.append((prefix, middle, suffix))
    results = {}
    for fim_rate in (0.5, 0.0):
        started = time.perf_counter()
        model = train_model(stream, tokenizer.get_vocab_size(), fim_rate, args.steps, args.seed)
        with torch.no_grad():
            results[f"fim_rate_{fim_rate}"] = {
                "psm_exact_match": exact_match(model, cases, "psm"),
                "spm_exact_match": exact_match(model, cases, "spm"),
                "train_seconds": round(time.perf_counter() - started, 1)}
    publish("fim", {"held_out_cases": len(cases), "steps": args.steps, "batch": 16, "block": 128,
                    "model": "tiny (2 layers, 4 heads, 128 wide)", "vocab": tokenizer.get_vocab_size(), **results})


if __name__ == "__main__":
    main()
