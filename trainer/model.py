"""A GPTBigCode-style decoder (SantaCoder/StarCoder's architecture), one readable file.

Token and learned absolute position embeddings, pre-LayerNorm blocks, multi-query attention
(every query head shares one key/value head: the fused projection maps d to d + 2 * head_dim,
laid out [q | k | v] as in Hugging Face's GPTBigCode), a GELU (tanh) MLP of 4d, a final
LayerNorm and an output head tied to the token embedding; GPT-2 initialisation.

Attention is `scaled_dot_product_attention(is_causal=True)` with the single K/V head
expanded as a view (no copy): on CUDA in bf16/fp16 it runs the fused flash or
memory-efficient kernel; fp32 or an explicit mask would fall back to the math path, which
is why the training loop autocasts to bf16 on GPU and never passes a mask (padding is
handled by the loss mask instead). `attention_backend()` reports which one runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 49_152  # the tokenizer's, special tokens included
    block_size: int = 2048  # context length: learned positions 0..block_size-1
    n_layer: int = 12
    n_head: int = 12  # query heads; there is one key/value head (multi-query)
    n_embd: int = 768  # d; head_dim = d / n_head
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, dict] = {
    "tiny": dict(block_size=256, n_layer=2, n_head=4, n_embd=128),  # CPU tests, seconds
    "small": dict(block_size=512, n_layer=6, n_head=8, n_embd=384),  # CPU experiments, minutes
    "125m": dict(block_size=2048, n_layer=12, n_head=12, n_embd=768),  # SantaCoder-like width, ~125M with 49k vocab
    "350m": dict(block_size=2048, n_layer=24, n_head=16, n_embd=1024),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"model preset {name!r}: one of {', '.join(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides})


class MultiQueryAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.n_head, self.head_dim, self.n_embd = config.n_head, config.head_dim, config.n_embd
        self.c_attn = nn.Linear(config.n_embd, config.n_embd + 2 * config.head_dim)  # [q | k | v]
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split((self.n_embd, self.head_dim, self.head_dim), dim=2)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, 1, T, self.head_dim).expand(B, self.n_head, T, self.head_dim)  # (B, H, T, hd), a view
        v = v.view(B, 1, T, self.head_dim).expand(B, self.n_head, T, self.head_dim)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = MultiQueryAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPTBigCode(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied head counted once

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                loss_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids; targets (B, T) next ids; loss_mask (B, T), 0 where a target
        (padding) must not count. Returns logits (B, T, vocab) and the mean loss."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens, the model's block_size is {self.config.block_size}")
        positions = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(positions))  # (B, T, C)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab)
        if targets is None:
            return logits, None
        losses = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
        if loss_mask is None:
            return logits, losses.mean()
        mask = loss_mask.reshape(-1).float()
        return logits, (losses * mask).sum() / mask.sum().clamp(min=1)

    def flops_per_token(self, seq_len: int) -> int:
        """6N + 12 * L * H * Q * T, as in PaLM's MFU (N without the position table)."""
        n = self.num_parameters() - self.wpe.weight.numel()
        c = self.config
        return 6 * n + 12 * c.n_layer * c.n_head * c.head_dim * seq_len

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, stop: int | None = None) -> torch.Tensor:
        """Greedy continuation of idx (1, T); stops after `stop` (e.g. <|endoftext|>)."""
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]
            logits, _ = self(context)
            next_id = logits[:, -1, :].argmax(dim=-1, keepdim=True)
            idx = torch.cat((idx, next_id), dim=1)
            if stop is not None and int(next_id) == stop:
                break
        return idx


def attention_backend(device: str = "cuda", dtype: torch.dtype = torch.bfloat16) -> str:
    """Which SDPA kernel runs for MQA shapes on `device`: tried in order flash,
    memory-efficient, math, each alone."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(2, 8, 128, 64, device=device, dtype=dtype)
    kv = torch.randn(2, 1, 128, 64, device=device, dtype=dtype).expand(2, 8, 128, 64)
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                          ("math", SDPBackend.MATH)):
        try:
            with sdpa_kernel(backend):
                F.scaled_dot_product_attention(q, kv, kv, is_causal=True)
            return name
        except RuntimeError:
            continue
    return "none"
