"""The trainer on a CUDA GPU: the fused attention kernel for MQA shapes, agreement with the
CPU, bf16 training with fused AdamW and its MFU. Skipped without CUDA (CI has none); run
them on a GPU machine with `.venv/bin/python -m pytest tests/trainer/test_gpu.py`."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from tests.trainer.conftest import small  # noqa: E402
from trainer.model import GPTBigCode, attention_backend, preset  # noqa: E402
from trainer.train import peak_flops, train  # noqa: E402


def test_mqa_runs_a_fused_attention_kernel_forward_and_backward():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    assert attention_backend() in ("flash", "efficient")
    model = GPTBigCode(preset("tiny", vocab_size=300)).cuda()
    x = torch.randint(0, 300, (2, 129), device="cuda")
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):  # the math path would raise
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


def test_the_gpu_computes_what_the_cpu_computes_in_float32():
    torch.manual_seed(0)
    model = GPTBigCode(preset("tiny", vocab_size=300)).eval()
    x = torch.randint(0, 300, (2, 64))
    with torch.no_grad():
        on_cpu = model(x)[0]
        on_gpu = model.cuda()(x.cuda())[0].cpu()
    assert torch.allclose(on_cpu, on_gpu, atol=1e-3)


def test_training_on_the_gpu_lowers_the_loss_and_reports_mfu(shards, tmp_path):
    lines = []
    train(small(shards, tmp_path / "gpu", device="cuda", max_steps=30, log_every=10, eval_every=0, lr=3e-3,
                checkpoint_every=30), log=lines.append)
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    assert [row["step"] for row in rows] == [10, 20, 30]
    assert rows[-1]["loss"] < rows[0]["loss"]
    if peak_flops("cuda"):  # a GPU of the peak table (H100, H200, A100, ...)
        assert 0 < rows[-1]["mfu"] < 1
    saved = torch.load(tmp_path / "gpu" / "ckpt.pt", weights_only=False)
    assert saved["step"] == 30 and saved["model"]["wte.weight"].device.type == "cuda"
