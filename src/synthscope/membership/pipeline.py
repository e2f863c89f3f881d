"""Whole data sets: pair dev groups with test groups, score, fit on dev, predict test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence
import numpy as np
import pandas as pd

from synthscope.membership.columns import MembershipResult, default_ensemble_columns, score_membership
from synthscope.membership.registration import IMAGE_SCORES, registered_copy_score
from synthscope.membership.scores import SCORES, rank_ensemble
from synthscope.membership.spaces import DEFAULT_SPACES, dataset_space_features
from synthscope.membership.thresholds import ThresholdFit, fit_threshold
from synthscope.membership.verdicts import LeakageVerdict, best_baseline, leakage_test, rank_test, with_baseline_caveat


REFERENCES = ("pool", "dev")


@dataclass
class GroupRun:
    group: str                          # the scored group (e.g. folder_1)
    dev_group: str | None               # the dev group its threshold and column choice come from
    result: MembershipResult            # scores of the group's real images
    dev_result: MembershipResult | None
    primary: str                        # the score column behind the predictions
    threshold: ThresholdFit
    predictions: pd.Series              # image_id -> 0/1
    verdict: LeakageVerdict             # the gate: dev rank test when dev labels exist, else data-copying test
    copying_verdict: LeakageVerdict     # label-free data-copying test on the scored group itself
    #: the generator-free baseline that separates the labels best (dev labels, else own labels), or None
    baseline: tuple[str, LeakageVerdict] | None = None


def _group_number(name: str) -> str | None:
    import re

    match = re.search(r"(\d+)$", str(name))
    return match.group(1) if match else None


def pair_groups(test_groups: Sequence[str], dev_groups: Sequence[str]) -> dict[str, str]:
    """Dev group for each test group: same name, else same trailing number (model_2 <-> folder_2), else the
    single dev group when there is only one."""
    pairs = {}
    for group in test_groups:
        if group in dev_groups:
            pairs[group] = group
            continue
        number = _group_number(group)
        matches = [d for d in dev_groups if number is not None and _group_number(d) == number]
        if len(matches) == 1:
            pairs[group] = matches[0]
        elif len(dev_groups) == 1:
            pairs[group] = dev_groups[0]
        else:
            raise ValueError(f"cannot tell which dev group pairs with test group {group!r}; dev groups: "
                             f"{', '.join(dev_groups)} (name them alike, e.g. model_2 and folder_2)")
    return pairs


def _space_matrix(dataset, spaces, cache, device, progress) -> dict[str, np.ndarray]:
    return {s: dataset_space_features(dataset, s, cache=cache, device=device, progress=progress) for s in spaces}


def _group_rows(dataset, group: str) -> tuple[np.ndarray, np.ndarray]:
    m = dataset.manifest
    in_group = (m["group"] == group).to_numpy()
    real = np.flatnonzero(in_group & (m["role"] == "real").to_numpy())
    gen = np.flatnonzero(in_group & (m["role"] == "generated").to_numpy())
    if len(real) == 0 or len(gen) == 0:
        raise ValueError(f"group {group!r} needs both real and generated images (has {len(real)} real, "
                         f"{len(gen)} generated)")
    return real, gen


def _used_labels(dataset, rows) -> np.ndarray | None:
    labels = dataset.manifest["label"].to_numpy()[rows]
    if not np.isin(labels, ["used", "not_used"]).all():
        return None
    return (labels == "used").astype(int)


def run_membership(dataset, dev=None, *, spaces: Sequence[str] = DEFAULT_SPACES, scores: Sequence[str] = SCORES,
                   primary: str = "ensemble", objective: str = "f1", prevalence: float | None = None,
                   reference: str = "pool", alpha: float = 0.05, cache=None, device: str = "auto",
                   progress: bool = False, features=None, dev_features=None, **scorer_params) -> list[GroupRun]:
    """Membership for every group of `dataset` (e.g. a test folder), with thresholds fit on `dev`.

    primary: a score column ("ensemble", "pixels-norm:distance", ...) or "auto" = the column with the
    highest AUC on the dev labels (the dev verdict is then Bonferroni-corrected for the choice).
    reference: "pool" = calibrate each group against its own real images leave-one-out; "dev" = against
    the paired dev group's real images (and the dev group against this group's real images), no labels used.
    `features` / `dev_features` ({space: matrix row-aligned with the manifest}) skip the extractors.
    Labels of `dataset` are used only when no dev is given and they exist (then it is evaluated on itself).
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}")
    if dev is None and reference == "dev":
        raise ValueError("reference='dev' needs a dev data set")
    features = features or _space_matrix(dataset, spaces, cache, device, progress)
    if dev is not None:
        dev_features = dev_features or _space_matrix(dev, spaces, cache, device, progress)
    feature_scores = [s for s in scores if s not in IMAGE_SCORES]
    unknown = [s for s in scores if s not in SCORES + IMAGE_SCORES]
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; choose from {', '.join(SCORES + IMAGE_SCORES)}")
    with_registered = "registered" in scores

    def score_group(data, feats, real_rows, gen_rows, ref, ids, used, chosen):
        real = {s: feats[s][real_rows] for s in spaces}
        gen = {s: feats[s][gen_rows] for s in spaces}
        result = score_membership(real, gen, ref, ids=ids, scores=feature_scores or ("distance",), used=used,
                                  primary="ensemble", alpha=alpha, **scorer_params)
        if not feature_scores:
            result.scores = result.scores.drop(columns=[c for c in result.scores.columns if c != "ensemble"])
        if with_registered:
            # candidates are searched in 64 px standardised pixels whatever the spaces, so the column
            # means the same in every configuration
            result.scores.insert(len(result.scores.columns) - 1, "images:registered", registered_copy_score(
                data.images(real_rows), data.images(gen_rows)))
            result.scores["ensemble"] = rank_ensemble(result.scores,
                                                      default_ensemble_columns(result.scores.columns))
            if used is not None:
                result.verdicts = {c: rank_test(result.scores[c].to_numpy(), used, alpha=alpha)
                                   for c in result.scores.columns}
        if chosen is not None:
            if chosen not in result.scores.columns:
                raise ValueError(f"unknown score column {chosen!r}; available: {', '.join(result.scores.columns)}")
            result.primary = chosen
            if used is not None:
                result.verdict = result.verdicts[chosen]
        return result

    groups = sorted(dataset.manifest.loc[dataset.manifest["role"] == "real", "group"].unique())
    pairs = pair_groups(groups, sorted(dev.manifest["group"].unique())) if dev is not None else {}
    runs = []
    for group in groups:
        real_rows, gen_rows = _group_rows(dataset, group)
        ids = dataset.manifest["image_id"].to_numpy()[real_rows]
        real = {s: features[s][real_rows] for s in spaces}
        gen = {s: features[s][gen_rows] for s in spaces}
        dev_result, dev_group = None, pairs.get(group)
        if dev is not None:
            dev_real_rows, dev_gen_rows = _group_rows(dev, dev_group)
            dev_used = _used_labels(dev, dev_real_rows)
            if dev_used is None or dev_used.min() == dev_used.max():
                raise ValueError(f"dev group {dev_group!r} needs real images labelled both used and not used")
            dev_real = {s: dev_features[s][dev_real_rows] for s in spaces}
            dev_gen = {s: dev_features[s][dev_gen_rows] for s in spaces}
            dev_result = score_group(dev, dev_features, dev_real_rows, dev_gen_rows,
                                     real if reference == "dev" else None,
                                     dev.manifest["image_id"].to_numpy()[dev_real_rows], dev_used, None)
            chosen = primary
            n_tests = 1
            if primary == "auto":
                chosen = max(dev_result.verdicts, key=lambda c: dev_result.verdicts[c].statistic)
                n_tests = len(dev_result.verdicts)
            if chosen not in dev_result.scores.columns:
                raise ValueError(f"unknown score column {chosen!r}; available: {', '.join(dev_result.scores.columns)}")
            gate = with_baseline_caveat(
                rank_test(dev_result.scores[chosen].to_numpy(), dev_used, alpha=alpha, n_tests=n_tests),
                dev_result.best_baseline)
            baseline = dev_result.best_baseline
            threshold = fit_threshold(dev_result.scores[chosen].to_numpy(), dev_used, objective)
            result = score_group(dataset, features, real_rows, gen_rows, dev_real if reference == "dev" else None,
                                 ids, None, chosen)
            copying = result.verdict
        else:
            own_used = _used_labels(dataset, real_rows)
            chosen = "ensemble" if primary == "auto" else primary
            result = score_group(dataset, features, real_rows, gen_rows, None, ids, None, chosen)
            copying = leakage_test(real=real[spaces[0]], generated=gen[spaces[0]], alpha=alpha)
            gate, baseline = copying, None
            if own_used is not None and own_used.min() != own_used.max():
                baseline = best_baseline(result.baseline, own_used, alpha=alpha)
                gate = with_baseline_caveat(rank_test(result.scores[chosen].to_numpy(), own_used, alpha=alpha),
                                            baseline)
            threshold = fit_threshold(result.scores[chosen].to_numpy(), None, prevalence=prevalence)
        values = result.scores[chosen].to_numpy()
        if dev is not None and prevalence is not None:
            threshold = fit_threshold(values, None, prevalence=prevalence)
        predictions = pd.Series((values >= threshold.threshold).astype(int), index=pd.Index(ids, name="image_id"),
                                name="used")
        runs.append(GroupRun(group, dev_group, result, dev_result, chosen, threshold, predictions, gate, copying,
                             baseline))
    return runs

