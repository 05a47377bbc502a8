"""Per-file filters (quality, comment ratio, opt-out) and the PII redaction transform.

Each filter subclasses corpus_core.stage.Filter and is listed in pipeline/flow.py.
"""
