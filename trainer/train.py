"""The training loop, flat (nanoGPT style): shards in, checkpoints and logs out.

    corpus train configs/train-tiny.toml            # or: make train
    torchrun --nproc_per_node 8 -m trainer.train configs/train.toml   # DDP

Each step: `grad_accum` micro-batches of `micro_batch` x `seq_len` tokens from the shard
loader (packed, FIM-transformed per document), bf16 autocast on GPU, gradient clipping,
fused AdamW (betas 0.9/0.95, weight decay on matrices only), cosine schedule with linear
warmup. Logs loss, tokens/s and MFU; evaluates on held-out documents (md5 of the id) every
`eval_every` steps; every figure also goes to out_dir/log.jsonl. Checkpoints hold the
model, optimizer, schedule step, both configs and every rank's loader state, so a resumed
run continues the same run exactly (and log.jsonl loses the rows past the checkpoint).

Distributed (torchrun): every rank reads its own contiguous slice of each epoch (the
loader's split), DDP averages gradients on the last micro-batch of a step, the logged and
eval losses are means over ranks, and rank 0 writes the checkpoint. NCCL on GPUs, gloo on
CPU (how the tests run it). A checkpoint resumes with as many ranks as wrote it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.data import LoaderState, ShardError, ShardLoader
from trainer.fim import FimConfig, fim_sample
from trainer.model import GPTBigCode, preset

# dense bf16 peak FLOP/s by a part of the device name (for MFU), the first that matches:
# the PCIe and NVL H100s run lower clocks than the SXM one
PEAK_FLOPS = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "A100": 312e12,
              "L40S": 362e12, "A10": 125e12}


@dataclass(frozen=True)
class TrainConfig:
    data: str = "out/corpus"  # a build or shard directory, or a URL
    out_dir: str = "out/train"
    model: str = "tiny"  # a preset of trainer/model.py
    model_overrides: dict = field(default_factory=dict)  # e.g. {n_layer = 4}
    seq_len: int = 256
    micro_batch: int = 8
    grad_accum: int = 1
    max_steps: int = 200
    lr: float = 3e-4
    min_lr: float = 3e-5
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    fim_rate: float = 0.5
    fim_spm_rate: float = 0.5
    holdout: float = 0.02  # share of documents (by md5 of id) kept for eval
    eval_every: int = 100
    eval_batches: int = 4
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    compile: bool = False  # torch.compile the model
    device: str = "auto"  # auto: cuda if available, else cpu


def load_train_config(path: str | Path) -> TrainConfig:
    data = tomllib.loads(Path(path).read_text()).get("train", {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(data) - known
    if unknown:
        from corpus_core.errors import ConfigError

        raise ConfigError(f"unknown keys in [train]: {sorted(unknown)}")
    base = Path(path).resolve().parent
    for key in ("data", "out_dir"):
        if key in data and "://" not in data[key] and not os.path.isabs(data[key]):
            data[key] = str((base / data[key]).resolve())
    return TrainConfig(**data)


def lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: GPTBigCode, config: TrainConfig, device: str) -> torch.optim.AdamW:
    """Weight decay on matrices (2-d parameters) only: not on biases, LayerNorms or... the
    embeddings are matrices and decay, as in nanoGPT."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                             fused=device.startswith("cuda"))


class Batches:
    """Micro-batches (x, y, mask) of FIM-transformed packed samples, with the loader state
    after each, for one rank; `split` is "train" or "eval" (documents by md5 of their id)."""

    def __init__(self, config: TrainConfig, rank: int, world_size: int, split: str,
                 state: LoaderState | None = None):
        self.config, self.split = config, split
        options = {"seed": config.seed, "rank": rank, "world_size": world_size, "columns": ("id", "input_ids"),
                   "holdout": config.holdout, "split": split}
        self.loader = ShardLoader(config.data, **options)
        self.fim = FimConfig(config.fim_rate, config.fim_spm_rate)
        if self.loader.grouped:  # repository documents: FIM inside each file (StarCoder2), by the loader
            self.loader = ShardLoader(config.data, **options, fim=self.fim)
            self.fim = FimConfig(0.0, config.fim_spm_rate)  # blocks are not transformed a second time
        self.state = state or LoaderState()
        self._stream = self.loader.blocks(config.seq_len + 1, self.state)

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, masks = [], []
        for _ in range(self.config.micro_batch):
            before = self.state
            block, self.state = next(self._stream)
            rng = np.random.default_rng([self.config.seed, before.epoch, before.position, before.offset])
            ids, mask = fim_sample(block, rng, self.fim)
            rows.append(ids)
            masks.append(mask)
        ids = torch.from_numpy(np.stack(rows))
        mask = torch.from_numpy(np.stack(masks))
        return ids[:, :-1], ids[:, 1:], mask[:, 1:]


def to_device(tensor: torch.Tensor, device: str) -> torch.Tensor:
    """To the GPU from pinned memory without blocking the host (a copy from pageable memory
    waits for the GPU's queue to drain), so the next micro-batch is queued while the GPU
    works; on CPU, as is."""
    if not device.startswith("cuda"):
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


def peak_flops(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_FLOPS.items() if key in name), None)


def save_checkpoint(path: Path, model: GPTBigCode, optimizer: Any, step: int, config: TrainConfig,
                    loaders: list[LoaderState]) -> None:
    """Everything a resumed run needs, written atomically; `loaders` holds each rank's state."""
    raw = model.module if hasattr(model, "module") else model
    raw = getattr(raw, "_orig_mod", raw)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": raw.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "model_config": raw.config.to_dict(), "train_config": dataclasses.asdict(config),
                "world_size": len(loaders), "loaders": [state.to_dict() for state in loaders]}, tmp)
    os.replace(tmp, path)


def forget_log_after(path: Path, step: int) -> None:
    """Drops the rows of steps after `step` (logged before a crash, redone by the resume), and
    a last line the crash cut short."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    path.write_text("".join(kept))


def setup_distributed(config: TrainConfig) -> tuple[int, int, str]:
    """(rank, world_size, device). Started by torchrun (RANK in the environment): one process
    group, NCCL with a GPU per process (LOCAL_RANK), gloo on CPU; otherwise one process."""
    device = config.device if config.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    if "RANK" not in os.environ:
        return 0, 1, device
    cuda = device.startswith("cuda")
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    return torch.distributed.get_rank(), torch.distributed.get_world_size(), device


def mean_over_ranks(value: float, world_size: int, device: str) -> float:
    """A per-rank figure (a loss) averaged over all ranks; a collective when distributed."""
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)  # NCCL reduces on the GPU
    torch.distributed.all_reduce(tensor)
    return float(tensor.item()) / world_size


def all_states(state: LoaderState, world_size: int) -> list[LoaderState]:
    """Every rank's loader state, in rank order (a collective when distributed)."""
    if world_size == 1:
        return [state]
    gathered: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(gathered, state.to_dict())
    return [LoaderState.from_dict(entry) for entry in gathered]


def train(config: TrainConfig, log=print, resume: bool = True) -> dict[str, Any]:
    """Train (or resume from out_dir/ckpt.pt); returns the last step's figures (rank 0 logs)."""
    rank, world_size, device = setup_distributed(config)
    try:
        return _train(config, log, resume, rank, world_size, device)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train(config: TrainConfig, log, resume: bool, rank: int, world_size: int, device: str) -> dict[str, Any]:
    ddp = world_size > 1
    loader = ShardLoader(config.data)
    vocab = int(loader.index.get("vocab_size") or 0)
    if not vocab:
        raise ValueError(f"{config.data}: the shards carry no tokens (build with [tokenize] enabled)")
    torch.manual_seed(config.seed)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "ckpt.pt"
    model_config = preset(config.model, vocab_size=vocab, **config.model_overrides)
    if config.seq_len > model_config.block_size:
        model_config = dataclasses.replace(model_config, block_size=config.seq_len)
    model = GPTBigCode(model_config).to(device)
    optimizer = make_optimizer(model, config, device)
    step, state = 0, None
    if resume and checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device, weights_only=False)
        if saved.get("world_size", 1) != world_size:
            raise ValueError(f"{checkpoint_path} was written by {saved.get('world_size', 1)} ranks; resume it with "
                             f"as many (each rank continues its own slice of the data), not {world_size}")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        loaders = saved.get("loaders") or [saved["loader"]]  # "loader": checkpoints before DDP resume
        step, state = saved["step"], LoaderState.from_dict(loaders[rank])
        if rank == 0:
            log(f"resumed from {checkpoint_path} at step {step}")
            forget_log_after(out / "log.jsonl", step)
    train_batches = Batches(config, rank, world_size, "train", state)
    if config.compile:
        model = torch.compile(model)
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)
    raw = model.module if ddp else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else torch.autocast(
        "cpu", enabled=False)
    tokens_per_step = config.micro_batch * config.seq_len * config.grad_accum * world_size
    flops_per_token = getattr(raw, "_orig_mod", raw).flops_per_token(config.seq_len)
    peak = peak_flops(device)
    figures: dict[str, Any] = {}

    def record(row: dict[str, Any]) -> None:
        """Logged, and appended to out_dir/log.jsonl (a resumed run appends after its step)."""
        line = json.dumps(row)
        log(line)
        with open(out / "log.jsonl", "a") as handle:
            handle.write(line + "\n")

    started = time.perf_counter()
    while step < config.max_steps:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        total = torch.zeros((), device=device)  # read (a host sync) only when logged
        for micro in range(config.grad_accum):
            x, y, mask = (to_device(t, device) for t in train_batches.next())
            if ddp:  # gradients are averaged over ranks on the last micro-batch only
                model.require_backward_grad_sync = micro == config.grad_accum - 1
            with autocast:
                _, loss = model(x, y, mask)
            (loss / config.grad_accum).backward()
            total += loss.detach() / config.grad_accum
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if step % config.log_every == 0 or step == config.max_steps:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - started
            tokens_per_s = tokens_per_step * config.log_every / elapsed if step % config.log_every == 0 else None
            mfu = tokens_per_s * flops_per_token / (peak * world_size) if tokens_per_s and peak else None
            figures = {"step": step, "loss": round(mean_over_ranks(total.item(), world_size, device), 4),
                       "lr": lr_at(step - 1, config), "grad_norm": round(float(norm), 4),
                       "tokens_per_s": round(tokens_per_s or 0), "mfu": round(mfu, 4) if mfu else None}
            if rank == 0:
                record(figures)
            started = time.perf_counter()
        if config.eval_every and config.holdout > 0 and step % config.eval_every == 0:
            figures["eval_loss"] = evaluate(raw, config, device, autocast, rank, world_size)
            if rank == 0:
                record({"step": step, "eval_loss": figures["eval_loss"]})
        if step % config.checkpoint_every == 0 or step == config.max_steps:
            states = all_states(train_batches.state, world_size)
            if rank == 0:
                save_checkpoint(checkpoint_path, model, optimizer, step, config, states)
    if ddp:
        torch.distributed.barrier()  # rank 0's last checkpoint is written before any rank returns
    return figures


@torch.no_grad()
def evaluate(model: GPTBigCode, config: TrainConfig, device: str, autocast: Any, rank: int = 0,
             world_size: int = 1) -> float:
    """Mean loss over `eval_batches` micro-batches of held-out documents per rank (each rank
    its own slice of them), averaged over ranks."""
    model.eval()
    batches = Batches(config, rank, world_size, "eval")
    losses = []
    for _ in range(config.eval_batches):
        x, y, mask = (to_device(t, device) for t in batches.next())
        with autocast:
            losses.append(model(x, y, mask)[1].item())
    model.train()
    return round(mean_over_ranks(float(np.mean(losses)), world_size, device), 4)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m trainer.train CONFIG.toml", file=sys.stderr)
        return 2
    from corpus_core.errors import ConfigError

    try:
        train(load_train_config(args[0]))
    except (ConfigError, ShardError, ValueError, OSError) as err:  # bad input: one line, no traceback
        print(f"trainer: error: {err}", file=sys.stderr)
        return 2
    if "RANK" in os.environ:
        # Under torchrun, leave without interpreter shutdown. A process group that DDP has
        # used outlives destroy_process_group() (torch 2.13, gloo), and its worker thread can
        # still be releasing a finished collective's tensor, which needs the GIL, while Python
        # shuts down: the finished, checkpointed process then aborts ("terminate called
        # without an active exception") about one run in ten on CPU.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
