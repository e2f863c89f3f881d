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
        pool = scorer.score_pool(features)
        table = pool.scores
        details[space] = {"eps": pool.eps, "intrinsic_dim": pool.intrinsic_dim,
                          "near_duplicate_radius": pool.near_duplicate_radius}
        baselines[f"{space}:pool_baseline"] = pool.pool_baseline
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



# --------------------------------------------------------------------------------------------------
# Choosing the column on a small dev set without the winner's curse
# --------------------------------------------------------------------------------------------------

#: the default column, then the order of preference among the rest (ties in the challenge go to the earlier
#: one). `images:patches` leads because it was the best column on every visible benchmark with leakage and on
#: repeated scan-disjoint re-splits of the v3 pool (docs/design.md, "Column choice"); the argmax of 23 dev AUCs
#: on ~40 images is a winner's curse that picked `images:registered` on a hidden set (test AUC 0.70 vs 0.97).
DEFAULT_COLUMN_ORDER = ("images:patches", "images:registered", "ensemble")
#: group-bootstrap resamples of the paired AUC difference; enough for p-values down to alpha / 25
CHALLENGE_RESAMPLES = 2000


@dataclass
class ColumnChoice:
    column: str                  # the column behind the predictions
    default: str                 # the column the rule starts from
    challenger: str | None       # the best other column on dev (None when there is none)
    challenger_p: float          # its one-sided paired group-bootstrap p-value (before Bonferroni)
    n_challengers: int
    overturned: bool             # the challenger replaced the default
    message: str


def paired_auc_pvalues(scores: pd.DataFrame, used, reference: str, *, groups=None,
                       n_boot: int = CHALLENGE_RESAMPLES, seed: int = 0) -> dict[str, float]:
    """One-sided p-value per column of "its AUC is not above `reference`'s", from a bootstrap that resamples
    whole groups (scans: neighbouring slices share their membership) and pairs the columns on each resample."""
    used = np.asarray(used).astype(int)
    groups = np.arange(len(used)) if groups is None else pd.factorize(np.asarray(groups))[0]
    n_groups = groups.max() + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)   # [B, G]
    weights = counts[:, groups].astype(float)                                            # [B, n]
    pos, neg = np.flatnonzero(used == 1), np.flatnonzero(used == 0)
    wp, wn = weights[:, pos], weights[:, neg]
    norm = wp.sum(1) * wn.sum(1)
    valid = norm > 0

    def boot_auc(values):
        v = np.asarray(values, dtype=float)
        wins = (v[pos][:, None] > v[neg][None, :]) + 0.5 * (v[pos][:, None] == v[neg][None, :])
        return np.einsum("bi,ij,bj->b", wp, wins, wn)[valid] / norm[valid]

    base = boot_auc(scores[reference].to_numpy())
    return {c: float((np.sum(boot_auc(scores[c].to_numpy()) - base <= 0) + 1) / (valid.sum() + 1))
            for c in scores.columns if c != reference}


def choose_column(scores: pd.DataFrame, used, *, groups=None, order=DEFAULT_COLUMN_ORDER, alpha: float = 0.05,
                  n_boot: int = CHALLENGE_RESAMPLES, seed: int = 0) -> ColumnChoice:
    """The default column (the first of `order` among the columns) unless dev evidence is strong: the best
    other column by dev AUC replaces it only when its paired, group-aware bootstrap beats the default at
    alpha, Bonferroni-corrected for the challengers. Labels are the dev labels, never the scored folder's."""
    from sklearn.metrics import roc_auc_score

    columns = list(scores.columns)
    default = next((c for c in order if c in columns), columns[0])
    others = [c for c in columns if c != default]
    if not others:
        return ColumnChoice(default, default, None, 1.0, 0, False, f"{default} (the only column)")
    used = np.asarray(used).astype(int)
    aucs = {c: roc_auc_score(used, scores[c]) for c in columns}
    rank = {c: (order.index(c) if c in order else len(order)) for c in others}
    challenger = max(others, key=lambda c: (aucs[c], -rank[c]))
    p = paired_auc_pvalues(scores[[default, challenger]], used, default, groups=groups, n_boot=n_boot,
                           seed=seed)[challenger]
    overturned = aucs[challenger] > aucs[default] and p * len(others) < alpha
    column = challenger if overturned else default
    what = (f"dev AUC {aucs[default]:.3f} for the default {default}; best challenger {challenger} {aucs[challenger]:.3f}, "
            f"paired scan-group bootstrap p = {min(1.0, p * len(others)):.2g} (Bonferroni x{len(others)})")
    message = (f"{challenger}, which overturned the default on dev ({what})" if overturned else
               f"the default column, kept because dev evidence against it is not strong ({what})")
    return ColumnChoice(column, default, challenger, p, len(others), overturned, message)
