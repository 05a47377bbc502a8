"""The stage base classes count and route drops; a Filter is a pure predicate."""

from __future__ import annotations

from corpus_core.records import FileRecord
from corpus_core.stage import Filter


class NoTodo(Filter):
    name = "no_todo"

    def keep(self, record):
        return True if "TODO" not in record.content else (False, "has_todo")


def test_filter_counts_and_routes_drops():
    records = [FileRecord("r", f"{i}.py", 10, content=c) for i, c in enumerate(["ok", "TODO x", "fine"])]
    records.append(FileRecord("r", "gone.bin", 3, decision="dropped", reason="binary"))
    stage = NoTodo()
    out = list(stage.run(records))
    assert [r.reason for r in out] == [None, "has_todo", None, "binary"]
    assert out[1].content is None  # a dropped record carries no content onward
    assert (stage.stats.files_in, stage.stats.kept, dict(stage.stats.dropped)) == (3, 2, {"has_todo": 1})


class NoTabs(Filter):
    name = "no_tabs"

    def keep(self, record):
        count = record.content.count("\t")
        return True if not count else (False, "has_tabs", f"{count} tabs")


def test_a_filter_may_give_a_detail_with_its_reason():
    (record,) = NoTabs().run([FileRecord("r", "t.py", 4, content="\t\ta\t")])
    assert (record.decision, record.reason, record.detail) == ("dropped", "has_tabs", "3 tabs")
