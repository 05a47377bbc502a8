"""Export a checkpoint in Hugging Face's GPTBigCode layout: config.json (`multi_query: true`)
and model.safetensors, which `transformers.AutoModelForCausalLM.from_pretrained` loads and
runs with the same logits. Parameter names map one to one (`transformer.` prefix); the
output head is tied to `transformer.wte`, so it is not stored twice. With the build's
tokenizer.json, also tokenizer_config.json and special_tokens_map.json, so that
`AutoTokenizer.from_pretrained` knows `<|endoftext|>` as bos/eos and the FIM and metadata
tokens as special, as StarCoder's own export does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from corpus_core.tokens import EOS, SPECIAL_TOKENS
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
        _check_tokenizer(Path(tokenizer), model.config.vocab_size)
        shutil.copyfile(tokenizer, out / "tokenizer.json")
        for name, content in hf_tokenizer_files(model.config).items():
            (out / name).write_text(json.dumps(content, indent=2) + "\n")
    return out


def hf_tokenizer_files(config: ModelConfig) -> dict[str, dict]:
    """tokenizer_config.json and special_tokens_map.json for the build's tokenizer.json: the
    generic fast tokenizer class loads tokenizer.json as it is (no re-derived pre-tokenizer)."""
    eos = SPECIAL_TOKENS[EOS]
    special = {"bos_token": eos, "eos_token": eos, "unk_token": eos,
               "additional_special_tokens": [token for token in SPECIAL_TOKENS if token != eos]}
    return {
        "tokenizer_config.json": {"tokenizer_class": "PreTrainedTokenizerFast", **special,
                                  "model_max_length": config.block_size, "add_prefix_space": False,
                                  "clean_up_tokenization_spaces": False},
        "special_tokens_map.json": special,
    }


def _check_tokenizer(path: Path, vocab_size: int) -> None:
    """The tokenizer must be the model's: StarCoder's special tokens at their ids, no id past
    the embedding table."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    wrong = [token for number, token in enumerate(SPECIAL_TOKENS) if tokenizer.token_to_id(token) != number]
    if wrong:
        raise ValueError(f"{path}: special tokens {wrong} are not at StarCoder's ids (corpus_core/tokens.py)")
    if tokenizer.get_vocab_size() > vocab_size:
        raise ValueError(f"{path}: {tokenizer.get_vocab_size()} tokens, more than the model's vocab_size {vocab_size}")


def load_checkpoint(path: str | Path) -> GPTBigCode:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model = GPTBigCode(ModelConfig(**saved["model_config"]))
    model.load_state_dict(saved["model"])
    return model.eval()
