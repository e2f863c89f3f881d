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

The CLI (`synthscope ...`), the dashboard and `make bench` call these same functions.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # data
    "load_dataset": "synthscope.data", "Dataset": "synthscope.data", "DatasetError": "synthscope.data",
    "read_ground_truth": "synthscope.data", "load_datasets": "synthscope.datatree",
    # embeddings and projections
    "get_extractor": "synthscope.features", "list_extractors": "synthscope.features",
    "embed_dataset": "synthscope.cache", "embed_arrays": "synthscope.cache",
    "EmbeddingCache": "synthscope.cache", "CacheStats": "synthscope.cache", "project": "synthscope.projection",
    # sub-task 2
    "run_attribution": "synthscope.attribution", "AttributionOptions": "synthscope.attribution",
    "AttributionRun": "synthscope.attribution", "evaluate_attribution": "synthscope.attribution",
    "cluster_fingerprints": "synthscope.attribution", "cross_validated_subsets": "synthscope.attribution",
    # sub-task 1
    "run_membership": "synthscope.membership", "MembershipOptions": "synthscope.membership",
    "MembershipRun": "synthscope.membership", "evaluate_membership": "synthscope.membership",
    "evaluate_dev": "synthscope.membership", "run_controls": "synthscope.membership",
    "ControlOptions": "synthscope.membership", "ControlsReport": "synthscope.membership",
    "dataset_space_features": "synthscope.membership", "SPACES": "synthscope.membership",
    "DEFAULT_SPACES": "synthscope.membership",
    # metrics
    "membership_report": "synthscope.metrics", "attribution_report": "synthscope.metrics",
    "subset_accuracy_report": "synthscope.metrics",
    # run and score files
    "write_membership_run": "synthscope.submission", "write_attribution_run": "synthscope.submission",
    "write_subset_run": "synthscope.submission", "read_run": "synthscope.submission",
    "validate_run": "synthscope.submission", "expected_ids": "synthscope.submission",
    "write_score_file": "synthscope.score_files", "read_score_file": "synthscope.score_files",
    "validate_score_file": "synthscope.score_files",
    # data with real ground truth: the demo, and the lab on the user's own images
    "build_demo": "synthscope.demo",
    "LabConfig": "synthscope.lab", "build_benchmark": "synthscope.lab", "load_real_folder": "synthscope.lab",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synthscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
