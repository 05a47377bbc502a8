"""Stages over records: ingest, language, dedup, shard writing (and, to come, license and tokenize)."""
