"""The shard writer's placement: `next_fit` (running sums over windows) places every file
where the rule, applied one file at a time, places it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.shards import Cursor, ShardConfig, next_fit


def one_at_a_time(sizes, counts, config: ShardConfig, tokenized: bool) -> list[tuple[int, int]]:
    """The rule as written in docs/FORMATS.md: a file opens a new shard when the open one holds
    files and would pass a target with it."""
    shard = row = held_bytes = held_tokens = 0
    placed = []
    for size, count in zip(sizes, counts, strict=True):
        if row and (held_bytes + size > config.target_bytes or row >= config.max_rows
                    or (tokenized and held_tokens + count > config.target_tokens)):
            shard, row, held_bytes, held_tokens = shard + 1, 0, 0, 0
        placed.append((shard, row))
        row, held_bytes, held_tokens = row + 1, held_bytes + size, held_tokens + count
    return placed


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 5000), max_size=3000), seed=st.integers(0, 2**16),
       target_bytes=st.integers(1, 200_000), max_rows=st.integers(1, 3000), target_tokens=st.integers(1, 50_000),
       tokenized=st.booleans(), batch=st.integers(1, 4000))
def test_next_fit_places_as_the_rule_one_file_at_a_time(sizes, seed, target_bytes, max_rows, target_tokens,
                                                         tokenized, batch):
    counts = np.random.default_rng(seed).integers(0, 2000, len(sizes)).tolist()
    config = ShardConfig(target_bytes=target_bytes, max_rows=max_rows, target_tokens=target_tokens)
    cursor, placed = Cursor(), []
    for start in range(0, len(sizes), batch):  # batches carry the open shard over, as the stream does
        shards, rows = next_fit(np.array(sizes[start:start + batch], np.int64),
                                np.array(counts[start:start + batch], np.int32), cursor, config, tokenized)
        placed += list(zip(shards.tolist(), rows.tolist(), strict=True))
    assert placed == one_at_a_time(sizes, counts, config, tokenized)


@pytest.mark.parametrize(("files_per_shard", "batch", "tokenized"), [(3000, 65_536, True), (3000, 65_536, False),
                                                                     (50_000, 7_000, True), (2, 1_000, False)])
def test_next_fit_over_many_files_and_batches(files_per_shard, batch, tokenized):
    """Shards of thousands of files across batches, and of two: windows that fill without a
    shard closing, shards that outlive a batch, and windows at their floor."""
    rng = np.random.default_rng(files_per_shard + batch)
    sizes = np.maximum(1, rng.lognormal(np.log(2500), 1.3, 200_000)).astype(np.int64)
    counts = (sizes // 3).astype(np.int32)
    mean = int(sizes.mean())
    config = ShardConfig(target_bytes=mean * files_per_shard, max_rows=files_per_shard * 2,
                         target_tokens=mean // 3 * files_per_shard)
    cursor, placed = Cursor(), []
    for start in range(0, len(sizes), batch):
        shards, rows = next_fit(sizes[start:start + batch], counts[start:start + batch], cursor, config, tokenized)
        placed += list(zip(shards.tolist(), rows.tolist(), strict=True))
    assert placed == one_at_a_time(sizes.tolist(), counts.tolist(), config, tokenized)
    assert placed[-1][0] > 2  # many shards


def test_a_file_past_the_target_gets_a_shard_of_its_own_and_shards_fill_to_the_target():
    config = ShardConfig(target_bytes=100, max_rows=3, target_tokens=10**9)
    shards, rows = next_fit(np.array([500, 10, 10, 10, 10, 90, 5]), np.zeros(7, np.int64), Cursor(), config, False)
    assert shards.tolist() == [0, 1, 1, 1, 2, 2, 3]  # 500 alone; then max_rows 3; then 10 + 90; 5 would pass 100
    assert rows.tolist() == [0, 0, 1, 2, 0, 1, 0]
