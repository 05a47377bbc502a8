"""Export a checkpoint in Hugging Face's GPTBigCode layout: config.json (`multi_query: true`)
and model.safetensors, which `transformers.GPTBigCodeForCausalLM.from_pretrained` loads and
runs with the same logits. Parameter names map one to one (`transformer.` prefix); the
output head is tied to `transformer.wte`, so it is not stored twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from trainer.model import GPTBigCode, ModelConfig


def hf_config(config: ModelConfig) -> dict:
    return {
        "architectures": ["GPTBigCodeForCausalLM"], "model_type": "gpt_bigcode", "multi_query": True,
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_embd": config.n_embd,
        "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": 4 * config.n_embd,
        "activation_function": "gelu_pytorch_tanh", "layer_norm_epsilon": config.layer_norm_epsilon,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": 0.02,
        "scale_attn_weights": True, "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 0,
        "torch_dtype": "float32",
    }


def export(model: GPTBigCode, out_dir: str | Path, tokenizer: str | Path | None = None) -> Path:
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"transformer.{name}": tensor.detach().contiguous().cpu()
               for name, tensor in model.state_dict().items() if not name.startswith("lm_head.")}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(hf_config(model.config), indent=2) + "\n")
    if tokenizer:
        shutil.copyfile(tokenizer, out / "tokenizer.json")
    return out


def load_checkpoint(path: str | Path) -> GPTBigCode:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model = GPTBigCode(ModelConfig(**saved["model_config"]))
    model.load_state_dict(saved["model"])
    return model.eval()
