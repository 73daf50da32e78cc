"""negrl: post-training language models with negative samples (see README.md)."""

from negrl import processes as _processes  # noqa: F401  (registers the process-group teardown at exit)
