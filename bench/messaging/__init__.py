"""The messaging benchmark (issue 10 section 10): see README.md and BENCHMARKS.md."""
