"""The run: config, stage order (flow.py), execution on Ray, resume, CLI and report."""
