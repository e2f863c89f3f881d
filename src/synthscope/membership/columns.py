"""Every space x score column at once (score_membership), the rank ensemble and its columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence
import numpy as np
import pandas as pd

from synthscope.membership.scores import MembershipScorer, SCORES, rank_ensemble
from synthscope.membership.verdicts import LeakageVerdict, _strongest, leakage_test, rank_test


#: scores the default ensemble averages: those that need no reference disjoint from the scored scans
#: (GAN-Leaks and DOMIAS are kept as columns but reversed on whole-scan splits, see the module notes)
ENSEMBLE_SCORES = ("distance", "adjusted", "registered")


@dataclass
class MembershipResult:
    scores: pd.DataFrame            # index = real image ids; columns "space:score" and "ensemble"
    primary: str                    # the column predictions and the verdict use
    verdict: LeakageVerdict         # for `primary`
    verdicts: dict[str, LeakageVerdict] = field(default_factory=dict)   # per column, when labels exist
    reference: str = "leave-one-out"   # which reference calibrated the scores
    details: dict[str, dict] = field(default_factory=dict)              # per space: eps, intrinsic dim
    #: generator-free baseline per space ("space:pool_baseline"): never a candidate for `primary`
    baseline: pd.DataFrame | None = None
    baseline_verdicts: dict[str, LeakageVerdict] = field(default_factory=dict)

    @property
    def best_baseline(self) -> tuple[str, LeakageVerdict] | None:
        """The baseline column that separates the labels best (None without labels)."""
        return _strongest(self.baseline_verdicts)

    @property
    def primary_scores(self) -> np.ndarray:
        return self.scores[self.primary].to_numpy()


def score_membership(real: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray],
                     reference: Mapping[str, np.ndarray] | None = None, *, ids: Sequence[str] | None = None,
                     scores: Sequence[str] = SCORES, used=None, primary: str = "ensemble",
                     ensemble_columns: Sequence[str] | None = None, alpha: float = 0.05,
                     **scorer_params) -> MembershipResult:
    """Score one pool of real images against one generated set, in every space given.

    real / generated / reference: {space name: feature matrix}, rows aligned with `ids`. `used` (0/1 per
    real image) is only for the verdict -- pass dev labels, never test labels you mean to predict.
    Without labels the verdict is the data-copying test in the first space (against `reference` as the
    held-out set when given).
    """
    if not real:
        raise ValueError("no feature spaces given")
    missing = [s for s in real if s not in generated or (reference is not None and s not in reference)]
    if missing:
        raise ValueError(f"space(s) {missing} lack generated or reference features")
    n = len(next(iter(real.values())))
    ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    if len(ids) != n or any(len(x) != n for x in real.values()):
        raise ValueError("every real feature matrix must have one row per id")
    columns, details, baselines = {}, {}, {}
    for space, features in real.items():
        scorer = MembershipScorer(scores=scores, **scorer_params).fit(
            generated[space], None if reference is None else reference[space])
        table = scorer.score(features)
        details[space] = {"eps": scorer.eps_, "intrinsic_dim": scorer.intrinsic_dim_,
                          "near_duplicate_radius": scorer.near_duplicate_radius_}
        baselines[f"{space}:pool_baseline"] = scorer.pool_baseline_
        for name in table.columns:
            columns[f"{space}:{name}"] = table[name].to_numpy()
    index = pd.Index(ids, name="image_id")
    frame = pd.DataFrame(columns, index=index)
    baseline = pd.DataFrame(baselines, index=index)
    frame["ensemble"] = rank_ensemble(frame, ensemble_columns or default_ensemble_columns(frame.columns))
    if primary not in frame.columns:
        raise ValueError(f"primary column {primary!r} not among {list(frame.columns)}")
    verdicts = {}
    if used is not None:
        used = np.asarray(used).astype(int)
        verdicts = {c: rank_test(frame[c].to_numpy(), used, alpha=alpha) for c in frame.columns}
        baseline_verdicts = {c: rank_test(baseline[c].to_numpy(), used, alpha=alpha) for c in baseline.columns}
        verdict = verdicts[primary]
    else:
        baseline_verdicts = {}
        space = next(iter(real))
        verdict = leakage_test(real=real[space], generated=generated[space],
                               heldout=None if reference is None else reference[space], alpha=alpha)
    return MembershipResult(frame, primary, verdict, verdicts,
                            "leave-one-out" if reference is None else "reference set", details,
                            baseline, baseline_verdicts)


def default_ensemble_columns(columns: Sequence[str]) -> list[str]:
    """The "space:score" columns whose score is in `ENSEMBLE_SCORES` (all columns when none is)."""
    chosen = [c for c in columns if c != "ensemble" and c.rsplit(":", 1)[-1] in ENSEMBLE_SCORES]
    return chosen or [c for c in columns if c != "ensemble"]

