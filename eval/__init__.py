"""Benchmark evaluation of negrl policies (a consumer of ``negrl``; ``negrl`` never imports ``eval``)."""
