"""Benchmarks: corrupting clean photographs, restoring them, measuring, plotting.

Library functions (metrics, corruptions) are importable; the commands are
`python -m code_cli.bench` (restoration table), `python -m code_cli.bench.prior_eval`
(the embedded prior's model-card figures) and `python -m code_cli.bench.make_examples`.
"""
