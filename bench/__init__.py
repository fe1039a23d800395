"""gcseg's benchmark suite: `python -m bench run` (every bench/bench_*.py) -> metrics/bench.json,
`python -m bench report` -> BENCHMARKS.md. Speed targets live here, never in unit tests."""
