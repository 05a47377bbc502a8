"""Benchmark (GPU): training throughput and MFU of the bundled model against Hugging Face
transformers' GPTBigCodeForCausalLM with the same configuration, batch and GPU.

    make corpus && .venv/bin/python bench/train.py [--preset 125m] [--batch 8] [--seq 2048] [--steps 20]

Both run a full training step (forward, backward, fused AdamW, bf16 autocast) on batches
from the build's shards (packed, FIM 0.5); the first --warmup steps are not timed, then
the median step time over --steps gives tokens/s. MFU = tokens/s x (6N + 12 L H Q T) /
the GPU's dense bf16 peak (989e12 for H100 SXM and H200). `--compile` also times our model
under torch.compile. The attention kernel SDPA picks for MQA shapes is reported.
Without CUDA it says so and exits 0: CI has no GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
from report import publish  # bench/report.py

from trainer.model import GPTBigCode, attention_backend, preset
from trainer.train import Batches, TrainConfig, peak_flops

ROOT = Path(__file__).resolve().parents[1]


def time_steps(model, optimizer, batches: Batches, steps: int, warmup: int, hf: bool) -> float:
    times = []
    for step in range(warmup + steps):
        x, y, mask = (t.cuda(non_blocking=True) for t in batches.next())
        torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if hf:
                loss = model(input_ids=x, labels=None).logits.float()
                loss = torch.nn.functional.cross_entropy(loss.view(-1, loss.size(-1)), y.reshape(-1))
            else:
                _, loss = model(x, y, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "out" / "corpus"))
    parser.add_argument("--preset", default="125m")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/train.py needs a CUDA GPU; none here (CI has none either).")
        return
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

    from trainer.export import hf_config

    config = TrainConfig(data=args.data, seq_len=args.seq, micro_batch=args.batch, holdout=0.0)
    batches = Batches(config, 0, 1, "train")
    vocab = int(batches.loader.index["vocab_size"])
    model_config = preset(args.preset, vocab_size=vocab, block_size=args.seq)
    tokens = args.batch * args.seq
    peak = peak_flops("cuda")
    results = {"gpu": torch.cuda.get_device_name(), "preset": args.preset, "batch": args.batch, "seq": args.seq,
               "attention_backend": attention_backend()}

    def run(name: str, model, hf: bool) -> None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
        seconds = time_steps(model, optimizer, batches, args.steps, args.warmup, hf)
        flops = GPTBigCode.flops_per_token(ours_raw, args.seq)
        results[name] = {"tokens_per_s": round(tokens / seconds),
                         "mfu": round(tokens / seconds * flops / peak, 4) if peak else None,
                         "step_ms": round(seconds * 1000, 1)}

    ours_raw = GPTBigCode(model_config).cuda()
    results["parameters"] = ours_raw.num_parameters()
    run("ours", ours_raw, hf=False)
    if args.compile:
        run("ours_compiled", torch.compile(ours_raw), hf=False)
    hf_model = GPTBigCodeForCausalLM(GPTBigCodeConfig(**{
        **hf_config(model_config), "attn_implementation": "sdpa"})).cuda()
    run("transformers_gpt_bigcode", hf_model, hf=True)
    best = max(v["tokens_per_s"] for k, v in results.items() if k.startswith("ours") and isinstance(v, dict))
    results["ours_vs_transformers"] = round(best / results["transformers_gpt_bigcode"]["tokens_per_s"], 2)
    publish("train", {**results, "config": dataclasses.asdict(model_config)})


if __name__ == "__main__":
    main()
