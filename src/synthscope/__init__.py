"""synthscope: fingerprints of generative models in synthetic lung-CT images.

The public API, importable from `synthscope` alone (loaded on first use, so `import synthscope` stays
light)::

    import synthscope as ss
    test = ss.load_dataset("bench/subtask1/test"); dev = ss.load_dataset("bench/subtask1/dev")
    run = ss.run_membership(test, dev)                       # sub-task 1, gated by a leakage test
    ss.write_membership_run("run.csv", run.predictions, expected_ids=ss.expected_ids(test, "membership"))
    ss.evaluate_membership(run, ss.read_ground_truth("bench/subtask1/test_ground_truth.csv"))
    clusters = ss.run_attribution(ss.load_dataset("bench/subtask2/test"), k=4)   # sub-task 2
    clusters.write("run2.csv")

The CLI (`synthscope ...`), the dashboard and `make bench` call these same functions. The names are
listed, with their types, in `__init__.pyi`.
"""

from __future__ import annotations

import lazy_loader

__version__ = "0.1.0"

# The public names are the imports of __init__.pyi, which type checkers and IDEs read too: one list.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
