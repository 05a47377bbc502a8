"""The partitioned corpus work of corpus_core/partitions.py: a task's shuffle, and connected
components over partitions, checked against a union-find on random graphs."""

from __future__ import annotations

import random

import duckdb
import pytest

from corpus_core import partitions
from corpus_core.partitions import PartitionPlan
from pipeline.executor import LocalExecutor


def union_find_labels(edges: list[tuple[int, int]]) -> dict[int, int]:
    """Every node with an edge and the smallest node of its component."""
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for x, y in edges:
        low, high = sorted((root(x), root(y)))
        parent[high] = low
    return {node: root(node) for node in parent}


def random_graph(seed: int) -> list[tuple[int, int]]:
    """Chains, stars and isolated pairs over shuffled node numbers (so that a chain's
    smallest node sits anywhere in it), a few components joined by a random edge or two."""
    rng = random.Random(seed)
    nodes = list(range(5000))
    rng.shuffle(nodes)
    take = iter(nodes)
    edges: list[tuple[int, int]] = []
    for _ in range(6):  # chains
        chain = [next(take) for _ in range(rng.randint(2, 120))]
        edges += list(zip(chain, chain[1:], strict=False))
    for _ in range(6):  # stars
        center = next(take)
        edges += [(center, next(take)) for _ in range(rng.randint(1, 60))]
    for _ in range(40):  # isolated pairs
        edges.append((next(take), next(take)))
    touched = sorted({node for edge in edges for node in edge})
    edges += [tuple(rng.sample(touched, 2)) for _ in range(3)]  # bridges between components
    edges += [(y, x) for x, y in rng.sample(edges, 5)]  # an edge given both ways
    return [(x, y) for x, y in edges]


def components(tmp_path, edges: list[tuple[int, int]], count: int) -> tuple[dict[int, int], int]:
    folder = tmp_path / f"cc-{count}"
    folder.mkdir()
    plan = PartitionPlan(count)
    db = duckdb.connect()
    db.execute("CREATE TABLE edges (a BIGINT, b BIGINT)")
    db.executemany("INSERT INTO edges VALUES (?, ?)", edges)
    partitions.shuffle(db, "SELECT a AS x, b AS y FROM edges UNION ALL SELECT b, a FROM edges", "x", folder,
                       "links", plan, 0)
    rounds = partitions.connected_components(LocalExecutor(), folder, plan, "links")
    labels = dict(db.sql(" UNION ALL ".join(f"SELECT node, label FROM {partitions.component_labels(folder, rounds, n)}"
                                            for n in range(count))).fetchall())
    return labels, rounds


@pytest.mark.parametrize("seed", [1, 2])
def test_components_over_partitions_are_a_union_find(tmp_path, seed):
    edges = random_graph(seed)
    expected = union_find_labels(edges)
    assert len(set(expected.values())) > 40  # the premise: many components, some large
    found = {}
    for count in (1, 2, 5):
        labels, rounds = components(tmp_path, edges, count)
        assert labels == expected, count
        found[count] = rounds
    assert len(set(found.values())) == 1  # the rounds, too, are the same over partition counts
    assert 3 <= found[1] <= 10  # a chain of 120 in random order: plain propagation would need ~60


def test_a_long_chain_settles_in_few_rounds(tmp_path):
    """A 2000-node chain in random order settles in a dozen rounds, not the ~1000 that plain
    min-label propagation needs."""
    rng = random.Random(5)
    chain = list(range(2000))
    rng.shuffle(chain)
    edges = list(zip(chain, chain[1:], strict=False))
    labels, rounds = components(tmp_path, edges, 3)
    assert labels == dict.fromkeys(range(2000), 0)
    assert rounds <= 12


def test_finished_rounds_are_not_run_again(tmp_path):
    """A rerun (resume) finds every round's counts and runs no task; the labels stay."""
    edges = random_graph(4)
    labels, rounds = components(tmp_path, edges, 4)
    folder, plan = tmp_path / "cc-4", PartitionPlan(4)
    ran = LocalExecutor()
    assert partitions.connected_components(ran, folder, plan, "links") == rounds
    assert ran.usage.tasks == 0
    # the edges of finished steps are gone (never the input), the last round's labels stay
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["links"]
    assert {p.name.rsplit("-", 1)[0] for p in folder.glob("labels-*")} == {f"labels-{rounds}"}


def test_a_shuffle_cuts_rows_by_key_and_a_rerun_replaces_its_file(tmp_path):
    plan = PartitionPlan(4)
    db = duckdb.connect()
    query = "SELECT range AS key, range * 10 AS value FROM range(3)"  # 3 keys: some partitions stay empty
    assert partitions.shuffle(db, query, "key", tmp_path, "cut", plan, 0) == 3
    assert partitions.shuffle(db, query, "key", tmp_path, "cut", plan, 0) == 3  # the rerun of task 0
    assert partitions.shuffle(db, "SELECT 7::BIGINT AS key, 70::BIGINT AS value", "key", tmp_path, "cut", plan, 1) == 1
    found = {}
    for number in range(4):
        rows = db.sql(f"SELECT * FROM {partitions.shuffled(tmp_path, 'cut', number)}").fetchall()
        for key, value in rows:
            assert db.sql(f"SELECT {plan.of(str(key) + '::BIGINT')}").fetchall()[0][0] == number
            found[key] = value
    assert found == {0: 0, 1: 10, 2: 20, 7: 70}  # each row once (no `part` column), the rerun's not doubled
    assert sorted(path.name for path in (tmp_path / "cut").iterdir()) == ["from-00000.parquet", "from-00001.parquet"]


def test_a_task_database_spills_under_a_spill_folder_that_does_not_exist_yet(tmp_path):
    """A build's tasks spill under _work/<fp>/duckdb-tasks/, which nothing makes before the
    first spill (a 5-million-document build failed there): a sort past the memory cap works."""
    spill = tmp_path / "work" / "duckdb-tasks"
    plan = PartitionPlan(count=2, memory_limit="100MB", spill=str(spill))
    with partitions.task_database(plan) as db:
        (rows,) = db.sql("""SELECT count(DISTINCT s) FROM (SELECT md5(i::VARCHAR) || repeat('x', 100) AS s
                            FROM range(1500000) t(i))""").fetchall()[0]
    assert rows == 1_500_000
    assert [p.name for p in spill.iterdir()] == [f"corpus-duckdb-{__import__('socket').gethostname()}-"
                                                 f"{__import__('os').getpid()}"]  # where it spilled
