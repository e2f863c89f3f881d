"""`make bench`: sections that measure quality and speed; see `synthscope.benchmark.runner`."""
