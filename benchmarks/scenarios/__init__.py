"""The scenario benchmark's parts; ``benchmarks/scenarios.py`` is the command."""
