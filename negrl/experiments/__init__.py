"""The experiment harness: paper reproductions, comparisons, sweeps, BCPG-NSA rounds, the demo and diagnostics.

Not public API: names here change with the experiments. It imports the library (``negrl``); nothing in the
library imports it (``tests/test_layering.py`` enforces that). Config loading (YAML + ``--set``) lives here, in
``negrl.experiments.config``.
"""
