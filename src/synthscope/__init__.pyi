"""The public API of synthscope, for type checkers and IDEs, and the list `__init__.py` loads lazily
(`lazy_loader.attach_stub` reads the imports below: a name added here is public and importable).
"""

# data
from .data import (
    load_dataset as load_dataset,
    Dataset as Dataset,
    DatasetError as DatasetError,
    read_ground_truth as read_ground_truth,
)
from .datatree import load_datasets as load_datasets

# embeddings and projections
from .features import get_extractor as get_extractor, list_extractors as list_extractors
from .cache import (
    embed_dataset as embed_dataset,
    embed_arrays as embed_arrays,
    EmbeddingCache as EmbeddingCache,
    CacheStats as CacheStats,
)
from .projection import project as project

# sub-task 2
from .attribution import (
    run_attribution as run_attribution,
    AttributionOptions as AttributionOptions,
    AttributionRun as AttributionRun,
    evaluate_attribution as evaluate_attribution,
    cluster_fingerprints as cluster_fingerprints,
    cross_validated_subsets as cross_validated_subsets,
)

# sub-task 1
from .membership import (
    run_membership as run_membership,
    MembershipOptions as MembershipOptions,
    MembershipRun as MembershipRun,
    evaluate_membership as evaluate_membership,
    evaluate_dev as evaluate_dev,
    run_controls as run_controls,
    ControlOptions as ControlOptions,
    ControlsReport as ControlsReport,
    dataset_space_features as dataset_space_features,
    SPACES as SPACES,
    DEFAULT_SPACES as DEFAULT_SPACES,
)

# metrics
from .metrics import (
    membership_report as membership_report,
    attribution_report as attribution_report,
    subset_accuracy_report as subset_accuracy_report,
)

# run and score files
from .submission import (
    write_membership_run as write_membership_run,
    write_attribution_run as write_attribution_run,
    write_subset_run as write_subset_run,
    read_run as read_run,
    validate_run as validate_run,
    expected_ids as expected_ids,
)
from .score_files import (
    write_score_file as write_score_file,
    read_score_file as read_score_file,
    validate_score_file as validate_score_file,
)

# data with real ground truth: the demo, and the lab on the user's own images
from .demo import build_demo as build_demo
from .lab import (
    LabConfig as LabConfig,
    build_benchmark as build_benchmark,
    load_real_folder as load_real_folder,
)

__version__: str
