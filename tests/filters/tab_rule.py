"""A quality rule declared in a file of its own, as a user would add one: the registry
test imports it and checks it reaches the config, the reasons, the docs and a build."""

from filters.quality import quality_rule, threshold


@quality_rule("tab_indented", "more than `max_tab_lines` lines start with a tab",
              threshold("max_tab_lines", 100, "lines starting with a tab"))
def max_tab_lines(record, measures, settings) -> bool:
    lines = sum(1 for line in (record.content or "").splitlines() if line.startswith("\t"))
    return settings.max_tab_lines is None or lines <= settings.max_tab_lines
