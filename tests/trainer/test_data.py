"""The shard loader: verification, epoch order, the split over ranks and workers, resume."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from itertools import islice

import numpy as np
import pytest

from corpus_core.records import SourceSpec
from pipeline.config import BuildConfig, ExecutionConfig
from pipeline.progress import Progress
from pipeline.run import build
from stages.dedup import NearDedupConfig
from stages.shards import ShardConfig
from stages.tokenize import TokenizeConfig
from tests.conftest import LENIENT, program
from trainer.data import LoaderState, ShardError, ShardLoader

DOCS = 53


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    dataset = root / "files.jsonl"
    dataset.write_text("".join(
        json.dumps({"repo": f"o/r{i}", "path": "m.py", "content": program(500 + i, lines=5 + i % 9),
                    "license": "MIT"}) + "\n" for i in range(DOCS)))
    config = BuildConfig(**LENIENT, sources=(SourceSpec(str(dataset)),), near_dedup=NearDedupConfig(enabled=False),
                         tokenize=TokenizeConfig(vocab_size=300), shards=ShardConfig(target_tokens=2500),
                         execution=ExecutionConfig(executor="local"))
    build(config, root / "out", Progress(quiet=True))
    return root / "out"


def ids_of(loader: ShardLoader, epoch: int = 0) -> list[str]:
    return [doc["id"] for doc, _ in loader.documents(LoaderState(epoch), epochs=1)]


def test_the_corpus_has_several_shards(corpus):
    index = json.loads((corpus / "index.json").read_text())
    assert index["totals"]["rows"] == DOCS and len(index["shards"]) >= 4


@pytest.mark.parametrize("world_size, workers", [(1, 1), (2, 1), (3, 2), (4, 3), (60, 1)])
def test_ranks_and_workers_cover_each_document_once_per_epoch(corpus, world_size, workers):
    every = ShardLoader(corpus).documents_per_epoch
    for epoch in (0, 1):
        seen = Counter()
        sizes = []
        for rank in range(world_size):
            for worker in range(workers):
                ids = ids_of(ShardLoader(corpus, seed=3, rank=rank, world_size=world_size, worker=worker,
                                         num_workers=workers), epoch)
                seen.update(ids)
                sizes.append(len(ids))
        assert len(seen) == every == DOCS and set(seen.values()) == {1}
        assert max(sizes) - min(sizes) <= 1  # balanced to one document


def test_order_depends_on_seed_and_epoch_only(corpus):
    first = ids_of(ShardLoader(corpus, seed=1))
    assert first == ids_of(ShardLoader(corpus, seed=1))
    assert first != ids_of(ShardLoader(corpus, seed=2))
    assert first != ids_of(ShardLoader(corpus, seed=1), epoch=1)
    assert sorted(first) == sorted(ids_of(ShardLoader(corpus, seed=1), epoch=1))


def test_resume_mid_epoch_continues_exactly(corpus):
    stream = list(islice(ShardLoader(corpus, seed=5, rank=1, world_size=2).documents(), 40))  # into epoch 1
    assert stream[-1][1].epoch == 1
    for cut in (0, 6, 25, 26, 27, 39):
        _, state = stream[cut]
        expected = [doc["id"] for doc, _ in stream[cut + 1:]]
        resumed = islice(ShardLoader(corpus, seed=5, rank=1, world_size=2).documents(state), len(expected))
        assert [doc["id"] for doc, _ in resumed] == expected


def test_blocks_pack_documents_back_to_back_and_resume_exactly(corpus):
    loader = ShardLoader(corpus, seed=2)
    docs = [doc["input_ids"] for doc, _ in loader.documents(epochs=2)]
    per_epoch = sum(len(d) for d in docs) // 2
    blocks = list(islice(loader.blocks(37), per_epoch // 37 + 40))
    stream = np.concatenate([block for block, _ in blocks])
    assert np.array_equal(stream, np.concatenate(docs)[:len(stream)])  # documents in order, nothing lost
    assert blocks[-1][1].epoch == 1  # the blocks cross an epoch boundary
    for cut in (0, 1, 17, 99, per_epoch // 37 - 1, per_epoch // 37, per_epoch // 37 + 3):
        _, state = blocks[cut]
        expected = [block for block, _ in blocks[cut + 1:cut + 30]]
        resumed = [block for block, _ in islice(ShardLoader(corpus, seed=2).blocks(37, state), len(expected))]
        assert all(np.array_equal(a, b) for a, b in zip(expected, resumed, strict=True))
    assert LoaderState.from_dict(blocks[5][1].to_dict()) == blocks[5][1]


def test_a_corrupted_shard_is_refused(corpus, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(corpus, copy)
    victim = sorted((copy / "shards").glob("part-*.parquet"))[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=rf"{victim.name}: .* corrupt or changed; refusing to train on it"):
        ids_of(ShardLoader(copy))
    with pytest.raises(ShardError, match="no index.json"):
        ShardLoader(tmp_path)
    with pytest.raises(ShardError, match="not the expected tokenizer"):
        ShardLoader(corpus, expect_tokenizer="0" * 64)


def test_urls_local_file_and_fsspec(corpus):
    import fsspec

    expected = ids_of(ShardLoader(corpus / "shards"))  # the shard folder: its index is beside it
    assert ids_of(ShardLoader(f"file://{corpus}")) == expected
    memory = fsspec.filesystem("memory")
    memory.pipe("/build/index.json", (corpus / "index.json").read_bytes())
    for path in (corpus / "shards").iterdir():
        memory.pipe(f"/build/shards/{path.name}", path.read_bytes())
    assert ids_of(ShardLoader("memory://build")) == expected
    assert ids_of(ShardLoader("memory://build/shards/")) == expected


def test_an_older_build_with_its_index_among_the_shards_still_loads(corpus, tmp_path):
    """Builds before index format 3 wrote shards/index.json, its names relative to shards/."""
    old = tmp_path / "old"
    shutil.copytree(corpus / "shards", old / "shards")
    index = json.loads((corpus / "index.json").read_text())
    del index["shard_dir"]
    (old / "shards" / "index.json").write_text(json.dumps({**index, "format": 2}))
    expected = ids_of(ShardLoader(corpus, seed=4))
    assert ids_of(ShardLoader(old, seed=4)) == ids_of(ShardLoader(old / "shards", seed=4)) == expected
    assert ShardLoader(old).index["tokenizer_sha256"] == index["tokenizer_sha256"]


def test_torch_dataloader_workers_resume_from_their_states(corpus):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from trainer.data import TokenBlocks

    def run(states, count):
        data = DataLoader(TokenBlocks(str(corpus), 16, seed=4, num_workers=2, states=states), batch_size=None,
                          num_workers=2)
        return list(islice(data, count))

    whole = run(None, 20)
    first = run(None, 8)
    states = {item["worker"]: item["state"] for item in first}
    rest = run(states, 12)
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(whole[8:], rest, strict=True))
