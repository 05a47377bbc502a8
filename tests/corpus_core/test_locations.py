"""Object store locations: what is recorded and printed of a URL (never its keys), and what
is refused before any work."""

from __future__ import annotations

import pytest

from corpus_core.errors import ConfigError
from corpus_core.locations import Store, identity, is_url, shown


@pytest.mark.parametrize(("url", "recorded"), [
    ("s3://AKIAEXAMPLE:ab/cd+ef@bucket/corpus?endpoint_override=h:9000&scheme=http", "s3://bucket/corpus"),
    ("gs://key:secret@bucket/p", "gs://bucket/p"),
    ("abfs://container@account.dfs.core.windows.net/corpus", "abfs://container@account.dfs.core.windows.net/corpus"),
    ("abfs://container:password@account.dfs.core.windows.net/c", "abfs://container@account.dfs.core.windows.net/c"),
    ("hdfs://user@namenode:8020/corpus", "hdfs://user@namenode:8020/corpus"),
    ("s3://bucket/a@b/c", "s3://bucket/a@b/c"),  # an `@` in the path is not a key
    ("/data/out", "/data/out"),
])
def test_a_location_is_recorded_without_keys_or_query(url, recorded):
    assert shown(url) == recorded


def test_two_endpoints_with_the_same_bucket_are_told_apart_without_keys():
    one, two = identity("s3://k:s@b/p?endpoint_override=a:1"), identity("s3://b/p?endpoint_override=b:2")
    assert one != two and "k:s" not in one


def test_which_urls_are_object_stores():
    assert is_url("s3://b/p") and is_url("GS://b/p") and not is_url("https://host/x") and not is_url("/s3/x")


def test_an_unparsable_url_s_error_keeps_its_keys_to_itself():
    with pytest.raises(ConfigError) as err:
        Store("s3://AKIAEXAMPLE:se/cret@bucket/p?endpoint_override=h:1")  # a raw `/` in the secret
    assert "se/cret" not in str(err.value) and "endpoint_override" not in str(err.value)
    assert "percent-encoded" in str(err.value)


def test_a_bucket_s_top_and_unknown_schemes_are_refused():
    with pytest.raises(ConfigError, match="inside the bucket"):
        Store("s3://bucket")
    with pytest.raises(ConfigError, match="not a local path, nor an object store"):
        Store("https://example.org/corpus")


def test_a_local_store_writes_whole_files_under_its_root(tmp_path):
    store = Store(tmp_path / "cache")
    store.write_bytes("ab/x.json", b"{}")
    assert store.read_bytes("ab/x.json") == b"{}" and store.read_bytes("ab/none.json") is None
    assert [e.name for e in store.list(recursive=True) if e.is_file] == ["ab/x.json"]
    assert sorted(p.name for p in (tmp_path / "cache" / "ab").iterdir()) == ["x.json"]  # no temporary left
    assert Store("/").path("x") == "/x"
