"""`--out` and the license cache on an object store: a local S3-compatible server (moto) that
the tests start (tests/conftest.py `s3`), the build writing through pyarrow's S3 filesystem, the same bytes as a build
into a folder, the lock, and the commit record."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from corpus_core.errors import ConfigError
from corpus_core.locations import Store
from pipeline.outdir import LOCK, MARKER, RemoteLock, RemoteOutDir
from pipeline.progress import Progress
from pipeline.run import build
from tests.conftest import S3_BUCKET
from tests.pipeline.test_build import config_for, make_sources

# what differs between two builds of the same input by design: the time and the place
DIFFERS = {"manifest/run.json", "report.html"}


def objects(url: str) -> dict[str, bytes]:
    store = Store(url)
    return {entry.name: store.read_bytes(entry.name) for entry in store.list(recursive=True) if entry.is_file}


def folder_files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def both(tmp_path_factory, s3, ray_local):
    """The same sources built into a folder (in-process) and onto the object store (on Ray, its
    license cache on the store too)."""
    root = tmp_path_factory.mktemp("objstore")
    sources = make_sources(root / "src")
    local = config_for(sources, workers=1, executor="local", partitions=3)
    build(local, root / "out", Progress(quiet=True))
    remote = config_for(sources, workers=2, partitions=3)
    remote = dataclasses.replace(remote, cache_dir=str(root / "cache"), execution=dataclasses.replace(
        remote.execution, license_cache=s3("license-cache"), work_dir=str(root / "work")))
    run = build(remote, s3("corpus"), Progress(quiet=True))
    return root, remote, run


def test_a_build_on_an_object_store_has_the_local_build_s_bytes(both, s3):
    root, _, run = both
    local = folder_files(root / "out")
    remote = objects(s3("corpus"))
    assert MARKER in remote and not any(name.startswith(LOCK) for name in remote)  # the lock is gone
    marker = json.loads(remote.pop(MARKER))
    assert marker["state"] == "published"
    assert sorted(marker["files"]) == sorted(remote) == sorted(set(local) - {MARKER, LOCK})
    assert any(name.startswith("shards/") for name in remote)
    same = set(remote) - DIFFERS
    assert {name: remote[name] for name in same} == {name: local[name] for name in same}
    # what run.json records: the URL without its keys or query
    assert run["out_dir"] == f"s3://{S3_BUCKET}/corpus"
    assert json.loads(remote["manifest/run.json"])["out_dir"] == run["out_dir"]
    assert "test:test" not in remote["manifest/run.json"].decode()
    assert not (root / "work" / "_work").exists()  # the work folder went when the build succeeded


def test_the_license_cache_on_the_object_store_is_filled_and_the_local_one_is_not(both, s3):
    root, _, _ = both
    cached = [name for name in objects(s3("license-cache")) if name.endswith(".json")]
    assert len(cached) >= 5  # every license file and header the sources hold, scanned once
    assert list((root / "cache" / "license-cache").glob("*/*.json")) == []  # only ScanCode's own scratch is local


def test_a_rebuild_replaces_its_own_objects_deletes_its_stale_ones_and_keeps_foreign_ones(both, s3):
    root, config, _ = both
    store = Store(s3("corpus"))
    store.write_bytes("shards/part-99999.parquet", b"stale")
    marker = json.loads(store.read_bytes(MARKER))
    # a build cut short in its publishing: its marker lists a file the next build does not write
    store.write_bytes(MARKER, json.dumps({**marker, "state": "publishing",
                                          "files": marker["files"] + ["shards/part-99999.parquet"]}).encode())
    store.write_bytes("notes/keep.txt", b"someone else's")
    build(dataclasses.replace(config, execution=dataclasses.replace(config.execution, executor="local")),
          s3("corpus"), Progress(quiet=True))
    after = objects(s3("corpus"))
    assert "shards/part-99999.parquet" not in after
    assert after["notes/keep.txt"] == b"someone else's"
    assert json.loads(after[MARKER])["state"] == "published"
    assert "notes/keep.txt" not in json.loads(after[MARKER])["files"]


def test_a_foreign_prefix_is_refused_without_force(tmp_path, s3):
    store = Store(s3("foreign"))
    store.write_bytes("data/x.csv", b"a,b\n")
    with pytest.raises(ConfigError, match="holds objects no build made"):
        RemoteOutDir(s3("foreign"), tmp_path)
    with RemoteOutDir(s3("foreign"), tmp_path, force=True):
        pass
    assert store.read_bytes("data/x.csv") == b"a,b\n"


def test_a_second_build_stops_while_the_first_holds_the_lock(tmp_path, s3):
    first = RemoteOutDir(s3("locked"), tmp_path)
    try:
        with pytest.raises(ConfigError, match="another build is writing into s3://corpus-test/locked"):
            RemoteOutDir(s3("locked"), tmp_path)
        # the refused build took its own lock object back: only the first one's is left
        assert len([e for e in Store(s3("locked")).list(LOCK) if e.is_file]) == 1
    finally:
        first.release()
    with RemoteOutDir(s3("locked"), tmp_path):  # released: the next build goes on
        pass
    assert [e for e in Store(s3("locked")).list(LOCK) if e.is_file] == []


def test_a_crashed_build_s_lock_lapses_after_its_lease(tmp_path, s3, monkeypatch):
    store = Store(s3("crashed"))
    store.write_bytes(MARKER, b'{"format": 1, "state": "published", "files": []}')
    store.write_bytes(f"{LOCK}/dead", b'{"host": "gone", "pid": 1}')  # never beats again
    with pytest.raises(ConfigError, match="gone"):
        RemoteOutDir(s3("crashed"), tmp_path)
    monkeypatch.setattr(RemoteLock, "LEASE_S", 1.0)
    time.sleep(2.1)  # the store's clock counts whole seconds
    with RemoteOutDir(s3("crashed"), tmp_path):
        assert store.read_bytes(f"{LOCK}/dead") is None


def test_a_running_build_keeps_its_lock_alive(tmp_path, s3, monkeypatch):
    monkeypatch.setattr(RemoteLock, "BEAT_S", 0.5)
    monkeypatch.setattr(RemoteLock, "LEASE_S", 2.0)
    with RemoteOutDir(s3("beating"), tmp_path):
        time.sleep(3.5)  # past a lease: only the beats keep the lock live
        with pytest.raises(ConfigError, match="another build"):
            RemoteOutDir(s3("beating"), tmp_path)


def test_commands_that_read_a_local_build_refuse_a_url(capsys, s3):
    from pipeline.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["audit", s3("corpus")])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "is an object store: this command reads a local build" in err and "test:test" not in err


def test_the_trainer_reads_the_build_from_the_object_store(both, s3):
    from trainer.data import ShardLoader

    root, _, _ = both
    remote = [doc["id"] for doc, _ in ShardLoader(s3("corpus")).documents(epochs=1)]
    local = [doc["id"] for doc, _ in ShardLoader(str(root / "out")).documents(epochs=1)]
    assert remote == local and len(remote) >= 5


def test_a_build_that_lost_its_lease_publishes_and_deletes_nothing(tmp_path, s3):
    store = Store(s3("lapsed"))
    staging = tmp_path / "staging"
    (staging / "shards").mkdir(parents=True)
    (staging / "shards" / "part-00000.parquet").write_bytes(b"new")
    with RemoteOutDir(s3("lapsed"), tmp_path / "work") as out:
        store.write_bytes("old.txt", b"listed by the previous build")
        store.write_bytes(MARKER, json.dumps({"format": 1, "state": "published", "files": ["old.txt"]}).encode())
        out._lock.last_beat -= RemoteLock.LEASE_S  # no beat reached the store for a whole lease
        with pytest.raises(ConfigError, match="lost the lock"):
            out.publish(staging)
    assert store.read_bytes("old.txt") is not None and store.read_bytes("shards/part-00000.parquet") is None


def test_the_marker_never_names_the_lock_or_itself_for_deletion(tmp_path, s3):
    store = Store(s3("selfnamed"))
    store.write_bytes(MARKER, json.dumps({"format": 1, "files": [MARKER, f"{LOCK}/x", "../up", "ok.txt"]}).encode())
    with RemoteOutDir(s3("selfnamed"), tmp_path) as out:
        assert out.previous_files() == ["ok.txt"]


def test_builds_into_two_urls_sharing_a_work_folder_do_not_run_at_once(tmp_path, s3):
    with RemoteOutDir(s3("one"), tmp_path / "shared"):
        with pytest.raises(ConfigError, match="execution.work_dir"):
            RemoteOutDir(s3("two"), tmp_path / "shared")
        assert [e for e in Store(s3("two")).list(LOCK) if e.is_file] == []  # its lock object taken back
    with RemoteOutDir(s3("two"), tmp_path / "shared"):
        pass


def test_an_out_url_of_no_object_store_is_refused(tmp_path):
    from pipeline.outdir import claim_out

    with pytest.raises(ConfigError, match="not a folder, nor an object store"):
        claim_out("https://example.org/corpus", ())
    assert not (tmp_path / "https:").exists()


def test_the_trainer_waits_for_a_build_being_published(both, s3):
    from trainer.data import ShardError, ShardLoader

    store = Store(s3("corpus"))
    published = store.read_bytes(MARKER)
    store.write_bytes(MARKER, json.dumps({**json.loads(published), "state": "publishing"}).encode())
    try:
        with pytest.raises(ShardError, match="being published"):
            ShardLoader(s3("corpus"))
    finally:
        store.write_bytes(MARKER, published)
    assert ShardLoader(s3("corpus")).index
