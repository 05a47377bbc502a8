"""The trainer on CPU, in seconds: MQA against a reference, the FIM layout, overfitting a
batch, exact resume, and the export into Hugging Face's GPTBigCode."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from corpus_core.tokens import EOS, FIM_MIDDLE, FIM_PAD, FIM_PREFIX, FIM_SUFFIX  # noqa: E402
from tests.trainer.conftest import small  # noqa: E402
from trainer.data import LoaderState, ShardLoader  # noqa: E402
from trainer.fim import FimConfig, fim_sample, permute  # noqa: E402
from trainer.model import GPTBigCode, MultiQueryAttention, preset  # noqa: E402
from trainer.train import Batches, TrainConfig, lr_at, make_optimizer, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

SENTINELS = {FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX}


def test_mqa_equals_multi_head_attention_with_one_shared_key_value_head():
    torch.manual_seed(0)
    config = preset("tiny", vocab_size=50)
    attention = MultiQueryAttention(config).eval()
    x = torch.randn(2, 9, config.n_embd)
    T, C, H, D = 9, config.n_embd, config.n_head, config.head_dim
    q, k, v = attention.c_attn(x).split((C, D, D), dim=2)
    heads = []
    causal = torch.ones(T, T).tril().bool()
    for h in range(H):
        scores = q[:, :, h * D:(h + 1) * D] @ k.transpose(1, 2) / math.sqrt(D)  # every head uses the same k, v
        heads.append(scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v)
    reference = attention.c_proj(torch.cat(heads, dim=-1))
    assert torch.allclose(attention(x), reference, atol=1e-5)
    assert attention.c_attn.out_features == C + 2 * D  # the fused projection d -> d + 2 * head_dim


def test_fim_layout_and_invariants():
    doc = np.arange(100, 140, dtype=np.int64)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        out = permute(doc, rng, FimConfig(fim_rate=1.0, fim_spm_rate=0.5))
        assert sorted(t for t in out if t not in SENTINELS) == list(doc)  # the tokens are the input's
        if out[1] == FIM_SUFFIX:  # SPM: <pre> <suf> suffix <mid> prefix middle
            mid_at = list(out).index(FIM_MIDDLE)
            suffix, rest = out[2:mid_at], out[mid_at + 1:]
            assert np.array_equal(np.concatenate([rest, suffix]), doc)
        else:  # PSM: <pre> prefix <suf> suffix <mid> middle
            suf_at, mid_at = list(out).index(FIM_SUFFIX), list(out).index(FIM_MIDDLE)
            prefix, suffix, middle = out[1:suf_at], out[suf_at + 1:mid_at], out[mid_at + 1:]
            assert out[0] == FIM_PREFIX and np.array_equal(np.concatenate([prefix, middle, suffix]), doc)
    assert np.array_equal(permute(doc, np.random.default_rng(0), FimConfig(fim_rate=0.0)), doc)
    rates = [permute(doc, np.random.default_rng(s), FimConfig(0.5, 0.5))[0] == FIM_PREFIX for s in range(400)]
    assert 0.4 < np.mean(rates) < 0.6


def test_fim_sample_is_per_document_fixed_length_and_masks_padding():
    sample = np.array([5, 6, 7, EOS, 8, 9, EOS, 10, 11], dtype=np.int64)
    ids, mask = fim_sample(sample, np.random.default_rng(1), FimConfig(fim_rate=1.0))
    assert len(ids) == len(sample) and mask.tolist() == [1] * len(sample)
    assert ids[0] == FIM_PREFIX  # each document transformed on its own, <|endoftext|> kept after it
    short = np.array([5, 6, EOS], dtype=np.int64)
    ids, mask = fim_sample(short, np.random.default_rng(1), FimConfig(fim_rate=0.0))
    assert ids.tolist() == [5, 6, EOS]
    # a sample that comes out shorter than asked (the end of the data) is padded, pad masked
    from trainer import fim
    padded, mask = fim.fim_sample(np.array([5, EOS], dtype=np.int64), np.random.default_rng(0),
                                  FimConfig(fim_rate=1.0))
    assert len(padded) == 2 and (mask[padded == FIM_PAD] == 0).all()


def test_lr_schedule():
    config = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert lr_at(0, config) == pytest.approx(0.1) and lr_at(9, config) == pytest.approx(1.0)
    assert lr_at(60, config) == pytest.approx(0.55) and lr_at(110, config) == pytest.approx(0.1)


def test_a_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = GPTBigCode(preset("tiny", vocab_size=64, block_size=32))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randint(0, 64, (4, 32))
    first = None
    for _ in range(150):
        _, loss = model(x[:, :-1], x[:, 1:])
        first = first or loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first > 3.5 and loss.item() < 0.3


def test_resume_gives_bit_identical_next_steps(shards, tmp_path):
    logs_whole, logs_resumed = [], []
    train(small(shards, tmp_path / "whole"), log=logs_whole.append)
    train(small(shards, tmp_path / "cut", max_steps=3), log=lambda line: None)
    with open(tmp_path / "cut" / "log.jsonl", "a") as log:  # logged after the checkpoint, then a crash
        log.write(json.dumps({"step": 4, "loss": 99.0}) + "\n" + '{"step": 5, "lo')  # cut short
    train(small(shards, tmp_path / "cut"), log=logs_resumed.append)  # resumes from step 3
    assert logs_resumed[0] == f"resumed from {tmp_path / 'cut' / 'ckpt.pt'} at step 3"

    def losses(lines):
        rows = [json.loads(line) for line in lines if line.startswith("{")]
        return {r["step"]: (r.get("loss"), r.get("grad_norm")) for r in rows if "loss" in r}
    whole, resumed = losses(logs_whole), losses(logs_resumed)
    assert [whole[s] for s in (4, 5, 6)] == [resumed[s] for s in (4, 5, 6)]

    def log_file(run):
        return [(r["step"], r.get("loss"), r.get("eval_loss"))
                for r in map(json.loads, (tmp_path / run / "log.jsonl").read_text().splitlines())]
    assert log_file("cut") == log_file("whole")  # each step once, the crashed run's row gone
    assert [step for step, _, _ in log_file("whole")] == [1, 2, 3, 3, 4, 5, 6, 6]  # eval at 3 and 6
    a = torch.load(tmp_path / "whole" / "ckpt.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_export_loads_in_transformers_with_the_same_logits_and_tokens(shards, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPTBigCodeForCausalLM

    from trainer.export import export, load_checkpoint

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train(small(shards, tmp_path / "run", max_steps=2), log=lambda line: None)
    model = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    export(model, tmp_path / "hf", shards / "tokenizer.json")
    assert {"tokenizer_config.json", "special_tokens_map.json"} <= {p.name for p in (tmp_path / "hf").iterdir()}
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    assert isinstance(hf, GPTBigCodeForCausalLM) and hf.config.multi_query and hf.config.eos_token_id == EOS
    x = torch.randint(0, 300, (2, 20))
    with torch.no_grad():
        assert torch.allclose(model(x)[0], hf(x).logits, atol=1e-5)

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert tokenizer.eos_token == tokenizer.bos_token == "<|endoftext|>" and tokenizer.eos_token_id == EOS
    fim = ["<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"]
    assert tokenizer.convert_tokens_to_ids(fim) == [FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD]
    assert set(fim) <= set(tokenizer.all_special_tokens)
    text = "def f(x1, y22):\n\treturn x1 * 333  # é\n"
    prompt = f"<fim_prefix>{text}<fim_suffix>pass<fim_middle>"
    build_tokenizer = Tokenizer.from_file(str(shards / "tokenizer.json"))
    assert tokenizer(prompt)["input_ids"] == build_tokenizer.encode(prompt).ids  # the build's encoding, as is
    assert tokenizer(prompt)["input_ids"][0] == FIM_PREFIX and tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_export_refuses_a_tokenizer_that_is_not_the_models(shards, tmp_path):
    from trainer.export import export

    small_vocab = GPTBigCode(preset("tiny", vocab_size=100))  # the build's tokenizer has 300 tokens
    with pytest.raises(ValueError, match="more than the model's vocab_size 100"):
        export(small_vocab, tmp_path / "hf", shards / "tokenizer.json")


def torchrun(config: TrainConfig, workdir, ranks: int = 2) -> list[dict]:
    """Runs `python -m trainer.train` under torchrun with `ranks` CPU processes (gloo);
    returns rank 0's logged figures."""
    defaults = TrainConfig()
    lines = ["[train]"]
    for key, value in dataclasses.asdict(config).items():
        if value != getattr(defaults, key):
            lines.append(f"{key} = {json.dumps(value)}")
    toml = workdir / f"train-{len(list(workdir.glob('train-*.toml')))}.toml"
    toml.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(ranks), "-m", "trainer.train", str(toml)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_distributed_training_averages_disjoint_rank_slices_and_resumes_exactly(shards, tmp_path):
    config = small(shards, tmp_path / "whole", max_steps=4, eval_every=2, checkpoint_every=2)
    logged = torchrun(config, tmp_path)
    saved = torch.load(tmp_path / "whole" / "ckpt.pt", weights_only=False)
    assert saved["world_size"] == 2 and len(saved["loaders"]) == 2 and saved["step"] == 4
    assert [row["step"] for row in logged if "loss" in row] == [1, 2, 3, 4]
    assert [row["step"] for row in logged if "eval_loss" in row] == [2, 4]

    # the same steps in one process: rank r's batches from its slice, the mean of both ranks'
    # losses (DDP averages the gradients of the per-rank means)
    torch.manual_seed(config.seed)
    vocab = int(ShardLoader(str(shards)).index["vocab_size"])
    model = GPTBigCode(preset(config.model, vocab_size=vocab))
    optimizer = make_optimizer(model, config, "cpu")
    ranks = [Batches(config, rank, 2, "train") for rank in range(2)]
    losses = []
    for step in range(config.max_steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        loss = sum(model(*batches.next())[1] for batches in ranks) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    assert [row["loss"] for row in logged if "loss" in row] == pytest.approx(losses, abs=2e-4)
    reference = model.state_dict()
    assert all(torch.allclose(saved["model"][k], reference[k], atol=1e-5) for k in reference)
    assert [LoaderState.from_dict(s) for s in saved["loaders"]] == [batches.state for batches in ranks]

    cut = dataclasses.replace(config, out_dir=str(tmp_path / "cut"), max_steps=2)
    torchrun(cut, tmp_path)
    resumed = torchrun(dataclasses.replace(cut, max_steps=4), tmp_path)
    assert [row["loss"] for row in resumed if "loss" in row] == [row["loss"] for row in logged[-3:] if "loss" in row]
    again = torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=False)
    assert all(torch.equal(again["model"][k], saved["model"][k]) for k in reference)
    assert again["loaders"] == saved["loaders"]


def test_a_checkpoint_resumes_only_with_the_ranks_that_wrote_it(shards, tmp_path):
    train(small(shards, tmp_path / "run", max_steps=2), log=lambda line: None)
    saved = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    saved["world_size"], saved["loaders"] = 2, saved["loaders"] * 2
    torch.save(saved, tmp_path / "run" / "ckpt.pt")
    with pytest.raises(ValueError, match="written by 2 ranks; resume it with as many"):
        train(small(shards, tmp_path / "run", max_steps=3), log=lambda line: None)


def test_the_gpu_benchmark_runs_the_same_code_on_cpu(shards):
    """bench/train.py needs a GPU for its figures; its code path runs here, so it does not rot."""
    pytest.importorskip("transformers")
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "bench" / "train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.measure(str(shards), "tiny", batch=2, seq=32, steps=2, warmup=1, device="cpu")
    vocab = int(ShardLoader(str(shards)).index["vocab_size"])
    assert results["parameters"] == GPTBigCode(preset("tiny", vocab_size=vocab, block_size=32)).num_parameters()
    for name in ("ours", "transformers_gpt_bigcode"):
        assert results[name]["tokens_per_s"] > 0 and results[name]["mfu"] is None  # no peak for a CPU
    assert results["ours_vs_transformers"] > 0 and results["device"] == "cpu"


def test_generate_is_greedy_crops_to_the_context_and_stops():
    torch.manual_seed(0)
    model = GPTBigCode(preset("tiny", vocab_size=50, block_size=8)).eval()
    prompt = torch.randint(0, 50, (1, 10))  # longer than the context: the last 8 tokens are used
    out = model.generate(prompt, 4)
    assert out.shape == (1, 14) and torch.equal(out[:, :10], prompt)
    with torch.no_grad():
        assert int(out[0, 10]) == int(model(prompt[:, -8:])[0][0, -1].argmax())
        assert int(out[0, 11]) == int(model(out[:, 3:11])[0][0, -1].argmax())
    stopped = model.generate(prompt, 4, stop=int(out[0, 10]))
    assert torch.equal(stopped, out[:, :11])  # the stop token is the last one emitted


def test_bad_input_to_the_trainer_is_one_line_not_a_traceback(shards, tmp_path, capsys):
    from trainer.train import main

    assert main([str(tmp_path / "missing.toml")]) == 2
    assert capsys.readouterr().err.startswith("trainer: error: [Errno 2] No such file or directory")
    (tmp_path / "typo.toml").write_text('[train]\nmax_step = 3\n')
    assert main([str(tmp_path / "typo.toml")]) == 2
    assert capsys.readouterr().err == "trainer: error: unknown keys in [train]: ['max_step']\n"
    (tmp_path / "nowhere.toml").write_text('[train]\ndata = "nothing"\nout_dir = "run"\n')
    assert main([str(tmp_path / "nowhere.toml")]) == 2
    assert "no index.json here or in shards/" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_the_peak_for_mfu_is_the_detected_gpus(monkeypatch):
    from trainer import train as loop

    for name, peak in (("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H200", 989e12),
                       ("NVIDIA A100-SXM4-80GB", 312e12), ("Tesla T4", None)):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args, name=name: name)
        assert loop.peak_flops("cuda:0") == peak
    assert loop.peak_flops("cpu") is None
