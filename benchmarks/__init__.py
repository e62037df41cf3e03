"""opentac benchmarks: ``make bench`` (``python -m benchmarks``) writes docs/performance.md."""
