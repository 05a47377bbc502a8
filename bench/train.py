"""Benchmark (GPU): training throughput and MFU of the bundled model against Hugging Face
transformers' GPTBigCodeForCausalLM with the same configuration, batch and GPU.

    make corpus && .venv/bin/python bench/train.py [--preset 125m] [--batch 8] [--seq 2048] [--steps 20]

Both run a full training step (forward, backward, fused AdamW, bf16 autocast) on batches
from the build's shards (packed, FIM 0.5); the first --warmup steps are not timed, then
the median step time over --steps gives tokens/s. MFU = tokens/s x (6N + 12 L H Q T) /
the GPU's dense bf16 peak (989e12 for H100 SXM and H200). `--compile` also times our model
under torch.compile. The attention kernel SDPA picks for MQA shapes is reported.
Without CUDA it says so and exits 0: CI has no GPU. `--device cpu` runs the same code on
the CPU (no MFU, no autocast) as a smoke run; tests/trainer runs `measure` that way.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from trainer.model import GPTBigCode, attention_backend, preset
from trainer.train import Batches, TrainConfig, peak_flops

ROOT = Path(__file__).resolve().parents[1]


def time_steps(model, optimizer, batches: Batches, steps: int, warmup: int, hf: bool, device: str) -> float:
    """Median seconds of one full training step (forward, backward, clip, AdamW)."""
    cuda = device.startswith("cuda")
    times = []
    for step in range(warmup + steps):
        x, y, mask = (t.to(device, non_blocking=True) for t in batches.next())
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            if hf:
                logits = model(input_ids=x).logits.float()
                loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
            else:
                _, loss = model(x, y, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(data: str, preset_name: str = "125m", batch: int = 8, seq: int = 2048, steps: int = 20,
            warmup: int = 5, compile_too: bool = False, device: str = "cuda") -> dict:
    """Tokens/s (and MFU on a known GPU) of ours, optionally compiled, and of transformers'
    GPTBigCodeForCausalLM with the same configuration and batches."""
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

    from trainer.export import hf_config

    config = TrainConfig(data=data, seq_len=seq, micro_batch=batch, holdout=0.0)
    batches = Batches(config, 0, 1, "train")
    vocab = int(batches.loader.index["vocab_size"])
    model_config = preset(preset_name, vocab_size=vocab, block_size=seq)
    tokens = batch * seq
    peak = peak_flops(device)
    cuda = device.startswith("cuda")
    results = {"device": torch.cuda.get_device_name() if cuda else "cpu", "preset": preset_name, "batch": batch,
               "seq": seq, "steps": steps, "attention_backend": attention_backend() if cuda else "math (cpu)"}
    ours = GPTBigCode(model_config).to(device)
    results["parameters"] = ours.num_parameters()
    flops = ours.flops_per_token(seq)

    def run(name: str, model, hf: bool) -> None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=cuda)
        seconds = time_steps(model, optimizer, batches, steps, warmup, hf, device)
        results[name] = {"tokens_per_s": round(tokens / seconds), "step_ms": round(seconds * 1000, 1),
                         "mfu": round(tokens / seconds * flops / peak, 4) if peak else None}

    run("ours", ours, hf=False)
    if compile_too:
        run("ours_compiled", torch.compile(ours), hf=False)
    hf_model = GPTBigCodeForCausalLM(GPTBigCodeConfig(**{**hf_config(model_config), "attn_implementation": "sdpa"}))
    run("transformers_gpt_bigcode", hf_model.to(device), hf=True)
    best = max(results[name]["tokens_per_s"] for name in ("ours", "ours_compiled") if name in results)
    results["ours_vs_transformers"] = round(best / results["transformers_gpt_bigcode"]["tokens_per_s"], 2)
    results["config"] = dataclasses.asdict(model_config)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "out" / "corpus"))
    parser.add_argument("--preset", default="125m")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the same code (no MFU), e.g. "
                        "--device cpu --preset tiny --seq 256")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/train.py needs a CUDA GPU; none here (CI has none either). --device cpu runs it on the CPU.")
        return
    from report import publish  # bench/report.py

    name = "train" if args.device.startswith("cuda") else "train-cpu"
    publish(name, measure(args.data, args.preset, args.batch, args.seq, args.steps, args.warmup, args.compile,
                          args.device))


if __name__ == "__main__":
    main()
