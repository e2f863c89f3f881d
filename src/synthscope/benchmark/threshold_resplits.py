"""Threshold rules on scan-disjoint re-splits of a labelled pool (issue 19, item 5): how the default cut compares
with others where the test labels of no benchmark are read.

The pool is every real image of one sub-task 1 benchmark (v3 and v3s hold the same 127 images and 400 generated
images) with its scan. A re-split sends a third of each class's scans to dev and the rest to the scored folder,
cut at random to a share used (30, 50 or 70 %), and draws `n_generated` images per folder from the generated pool
(both folders' draws pooled, as `run_membership` scores them). Each rule sees dev scores and labels and the scored
folder's scores; its kappa on the scored folder is paired with the reference rule's on the same re-split.

The patch score of any generated subset is computed from one table: per (real image, generated image, grid place)
the nearest squared patch distance over that image's window and both orientations (`patch_distance_table`); the
score of a subset is then a minimum over the subset, exactly `patches.patch_distances(..., method="exact")`.

    python -m synthscope.benchmark.threshold_resplits --bench ../shared/bench/v3 --repeats 200 --seed 2

(seed 2 is the confirmation run in docs/design.md, third round: about 3 CPU minutes.)

    python -m synthscope.benchmark.threshold_resplits --bench ../shared/bench/v3 --repeats 200 --seed 3 --scores 0,0.2

compares patch scores instead: the default rule on the raw patch score and on the score with its typicality term
(`patch_tables.patch_typicality`) at each weight, paired on the same re-splits.

    python -m synthscope.benchmark.threshold_resplits --bench ../shared/bench/v3 --repeats 100 --seed 500 --pooling

compares pooling the scores within scan groups found without labels before the default cut (`pooling_rules`; seed
500 was the screen, 200 re-splits at seed 600 the confirmation of `scan_smoothed`, docs/design.md fifth round).

    python -m synthscope.benchmark.threshold_resplits --bench ../shared/bench/v3 --repeats 60 --seed 700 --cuts

compares threshold rules on the scores as the default run cuts them, scan-smoothed (`cut_rules`: the low cluster's
mode + c sigma, Gaussian mixtures, bands around other prevalence estimates, asymmetric bands; seed 700 was the
screen, 200 re-splits at seed 800 the check of the best one, docs/design.md sixth round: none became the default).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

#: scored folder's share used, and generated images per folder, of the cells compared
SHARES, GENERATED = (0.3, 0.5, 0.7), (20, 50)


@dataclass
class PatchPool:
    """A labelled pool with its per-generated-image patch distance table."""
    table: np.ndarray          # [n_real, n_generated, places] nearest squared patch distance, float32
    weights: np.ndarray        # [n_real, places] each place's weight in the image's mean (body patches)
    used: np.ndarray           # [n_real] 1 = used
    scans: np.ndarray          # [n_real] scan of each real image
    typicality: np.ndarray | None = None   # [n_real] `patch_typicality` against the pool's other label-free groups
    pixels: np.ndarray | None = None       # [n_real, 64 * 64] grey levels: scan groups found without labels

    def scores(self, rows, generated, typicality: float = 0.0) -> np.ndarray:
        """`patch_copy_score` of the real images `rows` against the generated images `generated`, plus
        `typicality` x the images' patch typicality (the run's "images:patches" column at that weight)."""
        best = self.table[np.ix_(np.asarray(rows), np.asarray(generated))].min(axis=1)
        raw = _patch_score(best, self.weights[rows])
        return raw if not typicality else raw + typicality * self.typicality[rows]

    def pair_scores(self, rows, generated) -> np.ndarray:
        """[len(rows), len(generated)]: each real image's patch score against each generated image on its own."""
        squared = self.table[np.ix_(np.asarray(rows), np.asarray(generated))]
        return _patch_score(squared, self.weights[rows][:, None, :])


def _patch_score(squared: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Minus the weighted mean patch distance over the last axis (places), from squared distances."""
    return -(np.sqrt(np.maximum(squared, 0.0)) * weights).sum(axis=-1)


def patch_distance_table(real_images: np.ndarray, generated: np.ndarray, *, chunk: int = 25):
    """Per (real image, generated image, grid place) the squared distance of the real patch to the nearest patch of
    that generated image (or its mirror image) within the place's window, and the body weights [n_real, places]."""
    from synthscope.membership.patches import (
        BODY_STD, PATCH, PATCH_NEIGHBOURS, PATCH_SIZE, PATCH_STRIDE, _body, _grid_patches, _windows,
    )

    real, real_std, side = _grid_patches(np.asarray(real_images), PATCH_SIZE, PATCH, PATCH_STRIDE)
    body = _body(real_std, BODY_STD)
    windows = _windows(side, PATCH_NEIGHBOURS)
    real_sq = np.einsum("nld,nld->nl", real, real)
    table = np.empty((len(real), len(generated), side * side), dtype=np.float32)
    for start in range(0, len(generated), chunk):
        block = np.asarray(generated[start:start + chunk])
        ref, _, _ = _grid_patches(np.concatenate([block, block[:, :, ::-1]]), PATCH_SIZE, PATCH, PATCH_STRIDE)
        ref_sq = np.einsum("nld,nld->nl", ref, ref)
        for place, window in enumerate(windows):
            d2 = (ref_sq[:, window][None] - 2.0 * np.einsum("nd,gwd->ngw", real[:, place], ref[:, window])
                  + real_sq[:, place][:, None, None])
            table[:, start:start + len(block), place] = d2.reshape(len(real), 2, len(block), len(window)).min(axis=(1, 3))
    return table, body / body.sum(axis=1, keepdims=True)


def read_pool(bench: Path, scan_groups: Path):
    """Every real image of a sub-task 1 benchmark (dev labels and test ground truth, uint8 [n, H, W]), its label
    (1 = used) and scan, and every generated image of both folders: (real, used, scans, generated)."""
    from synthscope.data import load_dataset, read_ground_truth

    root = Path(bench) / "subtask1"
    scan_of = pd.read_csv(scan_groups).set_index("id")["group"]
    source = pd.read_csv(root / "real_source.csv").set_index("image_id")["pool_id"]
    truth = read_ground_truth(root / "test_ground_truth.csv")
    images, used, scans, generated = [], [], [], []
    for folder in (root / "dev" / "model_1", root / "test" / "folder_1"):
        data = load_dataset(folder)
        role = data.manifest["role"].to_numpy()
        real = np.flatnonzero(role == "real")
        ids = data.manifest["image_id"].to_numpy()[real]
        images.append(data.images(real))
        used += [int(label == "used") if folder.parent.name == "dev" else int(truth[i])
                 for label, i in zip(data.manifest["label"].to_numpy()[real], ids)]
        scans += [scan_of[f"real_{int(source[i]):04d}"] for i in ids]
        generated.append(data.images(np.flatnonzero(role == "generated")))
    return np.concatenate(images), np.array(used), np.array(scans), np.concatenate(generated)


def load_pool(bench: Path, scan_groups: Path, *, typicality: bool = False, pixels: bool = False) -> PatchPool:
    """`read_pool` with the patch distance table of every real image against every generated image (and, when
    `typicality`, each real image's patch typicality against the pool's other scans, found without labels as
    `run_membership` finds them: `near_duplicate_groups` on 64 px grey levels)."""
    real, used, scans, generated = read_pool(bench, scan_groups)
    pool = PatchPool(*patch_distance_table(real, generated), used, scans)
    if pixels:
        from synthscope.membership.neighbours import downsampled_pixels

        pool.pixels = downsampled_pixels(real, 64)
    if typicality:
        from synthscope.membership.neighbours import downsampled_pixels
        from synthscope.membership.patch_tables import patch_typicality
        from synthscope.membership.scores import near_duplicate_groups

        pool.typicality = patch_typicality(real, near_duplicate_groups(downsampled_pixels(real, 64)))
    return pool


def resplit(pool: PatchPool, rng: np.random.Generator, share: float, n_generated: int, typicality: float = 0.0):
    """One scan-disjoint re-split: (dev scores, dev labels, scored scores, scored labels)."""
    dev, scored, generated = resplit_rows(pool, rng, share, n_generated)
    used = pool.used
    return pool.scores(dev, generated, typicality), used[dev], pool.scores(scored, generated, typicality), used[scored]


def resplit_rows(pool: PatchPool, rng: np.random.Generator, share: float, n_generated: int):
    """The rows of one scan-disjoint re-split: (dev real rows, scored real rows, generated images drawn)."""
    used, scans = pool.used, pool.scans
    dev_scans = np.concatenate([rng.permutation(s)[:round(len(s) / 3)]
                                for s in (np.unique(scans[used == c]) for c in (0, 1))])
    dev = np.flatnonzero(np.isin(scans, dev_scans))
    rest = np.flatnonzero(~np.isin(scans, dev_scans))
    yes, no = rest[used[rest] == 1], rest[used[rest] == 0]
    if len(yes) * (1 - share) / share <= len(no):          # the largest folder at this share
        no = rng.choice(no, round(len(yes) * (1 - share) / share), replace=False)
    else:
        yes = rng.choice(yes, round(len(no) * share / (1 - share)), replace=False)
    generated = rng.choice(pool.table.shape[1], 2 * n_generated, replace=False)
    return dev, np.r_[yes, no], generated


def _resplits(pool: PatchPool, repeats: int, seed: int, shares, generated):
    """(generated per folder, share used, repeat, (dev rows, scored rows, generated drawn)) for every re-split of
    every cell; each cell has its own seed, so adding a cell or a rule leaves the others' draws as they were."""
    for n_generated in generated:
        for share in shares:
            rng = np.random.default_rng([seed, n_generated, int(round(share * 10))])
            for repeat in range(repeats):
                yield n_generated, share, repeat, resplit_rows(pool, rng, share, n_generated)


def compare_scores(pool: PatchPool, weights=(0.0, 0.2), *, repeats: int = 200, seed: int = 0, shares=SHARES,
                   generated=GENERATED) -> pd.DataFrame:
    """The default threshold rule (`banded_two_means`) on the patch score at each typicality weight, on the same
    re-splits (one draw of dev, scored folder and generated images serves every weight): one row per (cell,
    re-split, score) with its kappa and test AUC; `summary(..., reference="typicality 0")` pairs them."""
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    from synthscope.membership.thresholds import banded_two_means

    rows = []
    for n_generated in generated:
        for share in shares:
            rng = np.random.default_rng([seed, n_generated, int(round(share * 10))])
            for repeat in range(repeats):
                state = rng.bit_generator.state
                for weight in weights:
                    rng.bit_generator.state = state        # the same re-split for every weight
                    d, dy, x, y = resplit(pool, rng, share, n_generated, weight)
                    t = banded_two_means(x, d, dy).threshold
                    rows.append((n_generated, share, repeat, f"typicality {weight:g}",
                                 cohen_kappa_score(y, (x >= t).astype(int)), roc_auc_score(y, x)))
    return pd.DataFrame(rows, columns=["generated", "share", "repeat", "rule", "kappa", "auc"])


#: how a folder's scores may be pooled within its label-free scan groups before the cut (`scan_pooled`)
POOL_STATISTICS = ("mean", "median", "max", "q75")


def scan_pooled(scores, groups, weight: float = 1.0, statistic: str = "mean") -> np.ndarray:
    """Each score moved toward its scan group's `statistic`: (1 - weight) x score + weight x the group's mean or
    median. Slices of one scan share their membership when generators are trained on whole scans, and the
    groups (`near_duplicate_groups`, neighbouring slices found without labels) let a folder's own images vote
    together; weight 0 leaves the scores as they are, 1 gives every image its group's value."""
    if statistic not in POOL_STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; choose from {', '.join(POOL_STATISTICS)}")
    if not 0 <= weight <= 1:
        raise ValueError("weight must be in [0, 1]")
    scores = np.asarray(scores, dtype=float)
    groups = np.asarray(groups)
    if groups.shape != scores.shape:
        raise ValueError("scores and groups differ in length")
    if not weight:
        return scores
    by = pd.Series(scores).groupby(groups)
    pooled = (by.transform(lambda v: v.quantile(0.75)) if statistic == "q75" else by.transform(statistic)).to_numpy()
    return (1 - weight) * scores + weight * pooled


def pooling_rules() -> dict[str, Callable]:
    """Scan pooling before the default cut (issue 19, fifth round): rule name -> f(dev scores, dev labels, dev
    groups, scores, groups) -> (0/1 calls, the scores ranked for the AUC); groups are found without labels on each
    folder's own images. "raw" is today's default (`banded_two_means` of the scores as they are)."""
    from synthscope.membership.thresholds import banded_two_means, group_label_agreement, scan_smoothed

    def pooled(weight, statistic="mean", dev_too=True):
        def rule(d, dy, dg, x, xg):
            px = scan_pooled(x, xg, weight, statistic)
            pd_ = scan_pooled(d, dg, weight, statistic) if dev_too else d
            return (px >= banded_two_means(px, pd_, dy).threshold).astype(int), px
        return rule

    def cut_on_means(d, dy, dg, x, xg):         # the cut fitted on group means, applied to each image's own score
        t = banded_two_means(scan_pooled(x, xg), scan_pooled(d, dg), dy).threshold
        return (x >= t).astype(int), x

    def gated(rule, alpha=0.05):                 # pool only when dev's labels follow dev's label-free groups
        def inner(d, dy, dg, x, xg):
            if group_label_agreement(dy, dg, n_permutations=999)[1] < alpha:
                return rule(d, dy, dg, x, xg)
            return pooled(0.0)(d, dy, dg, x, xg)
        return inner

    def local(k, weight=1.0):                   # the mean over each image and its k nearest slices of its group
        def rule(d, dy, dg, x, xg, dn, xn):
            px = (1 - weight) * x + weight * x[xn[:, :k + 1]].mean(axis=1)
            pd_ = (1 - weight) * d + weight * d[dn[:, :k + 1]].mean(axis=1)
            return (px >= banded_two_means(px, pd_, dy).threshold).astype(int), px
        return rule

    def smoothed(k):                             # the library's `scan_smoothed` (the finalist, k = 1)
        def rule(d, dy, dg, x, xg, dp, xp):
            px, pd_ = scan_smoothed(x, xp, xg, k), scan_smoothed(d, dp, dg, k)
            return (px >= banded_two_means(px, pd_, dy).threshold).astype(int), px
        return rule

    def gated_smoothed(k, alpha=0.05):
        def rule(d, dy, dg, x, xg, dp, xp):
            if group_label_agreement(dy, dg, n_permutations=999)[1] < alpha:
                return smoothed(k)(d, dy, dg, x, xg, dp, xp)
            return pooled(0.0)(d, dy, dg, x, xg)
        return rule

    rules = {"raw": pooled(0.0)}
    for statistic in ("mean", "median"):
        for weight in (0.5, 0.75, 1.0):
            rules[f"{statistic} {weight:g}"] = pooled(weight, statistic)
    rules["mean 1 scored only"] = pooled(1.0, dev_too=False)
    rules["cut on means"] = cut_on_means
    rules["gated mean 1"] = gated(pooled(1.0))
    for statistic in ("max", "q75"):             # second batch: upper statistics (used scans' best slices)
        for weight in (0.5, 1.0):
            rules[f"{statistic} {weight:g}"] = pooled(weight, statistic)
    for k in (1, 2, 4):
        rules[f"local {k}"] = local(k)
    rules["local 2 w0.5"] = local(2, 0.5)
    rules = {name: (rule if name.startswith("local") else _plain(rule)) for name, rule in rules.items()}
    # confirmation: the finalist through the library function, with and without the dev gate (pixels, not
    # neighbour indices, as its last two arguments)
    rules["smoothed 1"], rules["gated smoothed 1"], rules["smoothed 2"] = smoothed(1), gated_smoothed(1), smoothed(2)
    return rules


def _plain(rule):
    return lambda d, dy, dg, x, xg, dn, xn: rule(d, dy, dg, x, xg)


def _group_neighbours(pixels: np.ndarray, groups: np.ndarray, k: int = 4) -> np.ndarray:
    """[n, k + 1]: each image itself, then its k nearest images (64 px) of its own group (itself again where the
    group is smaller)."""
    d2 = ((pixels[:, None, :] - pixels[None, :, :]) ** 2).sum(axis=2)
    d2[groups[:, None] != groups[None, :]] = np.inf
    np.fill_diagonal(d2, -1.0)
    order = np.argsort(d2, axis=1)[:, :k + 1]
    own = np.arange(len(pixels))[:, None]
    return np.where(np.isfinite(np.take_along_axis(d2, order, axis=1)), order, own)


def compare_pooling(pool: PatchPool, rules: dict[str, Callable], *, repeats: int = 200, seed: int = 0,
                    shares=SHARES, generated=GENERATED) -> pd.DataFrame:
    """Kappa and AUC of every pooling rule (`pooling_rules`) on `repeats` re-splits per cell, scan groups found
    without labels on each folder's own 64 px images (`near_duplicate_groups`, as `run_membership` finds them);
    one row per (cell, re-split, rule), plus the share of the scored folder's groups that mix both classes."""
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    from synthscope.membership.scores import near_duplicate_groups

    rows = []
    for n_generated, share, repeat, (dev, scored, drawn) in _resplits(pool, repeats, seed, shares, generated):
        d, dy, x, y = pool.scores(dev, drawn), pool.used[dev], pool.scores(scored, drawn), pool.used[scored]
        dg, xg = near_duplicate_groups(pool.pixels[dev]), near_duplicate_groups(pool.pixels[scored])
        mixed = pd.Series(y).groupby(xg).nunique().gt(1).mean()
        dn, xn = _group_neighbours(pool.pixels[dev], dg), _group_neighbours(pool.pixels[scored], xg)
        for name, rule in rules.items():
            near = (pool.pixels[dev], pool.pixels[scored]) if name.endswith("smoothed 1") or name.endswith(
                "smoothed 2") else (dn, xn)
            calls, ranked = rule(d, dy, dg, x, xg, *near)
            rows.append((n_generated, share, repeat, name, cohen_kappa_score(y, calls),
                         roc_auc_score(y, ranked), mixed, len(np.unique(xg))))
    return pd.DataFrame(rows, columns=["generated", "share", "repeat", "rule", "kappa", "auc", "mixed_groups",
                                       "n_groups"])


def _null_mode(x: np.ndarray, lower: float = 0.5) -> tuple[float, float]:
    """(mode, sigma) of the low (not-used) cluster: the KDE mode of the lower `lower` share of the scores and the
    half-normal MAD of the scores below it (the upper side is mixed with used images)."""
    from scipy.stats import gaussian_kde

    low = np.sort(x)[:max(4, int(round(len(x) * lower)))]
    grid = np.linspace(low.min(), low.max(), 512)
    mode = grid[np.argmax(gaussian_kde(low)(grid))]
    left = x[x <= mode]
    return float(mode), float(max(1.4826 * np.median(mode - left) if len(left) >= 3 else np.std(low), 1e-12))


def _mixture_cut(x: np.ndarray, components: int = 2) -> tuple[float, float]:
    """(cut, share above it) of a Gaussian mixture of the scores: where the lowest (not-used) component's posterior
    falls below 0.5, searched between the lowest and the next component's mean."""
    from sklearn.mixture import GaussianMixture

    g = GaussianMixture(components, random_state=0, n_init=2).fit(x[:, None])
    means = np.sort(g.means_.ravel())
    low = int(np.argmin(g.means_.ravel()))
    grid = np.linspace(means[0], means[1], 1001)
    below = np.flatnonzero(g.predict_proba(grid[:, None])[:, low] < 0.5)
    t = float(grid[below[0]]) if len(below) else float(means[1])
    return t, float((x >= t).mean())


def quantile_cut(x, share: float) -> float:
    """The cut that calls the top `share` of the folder's scores used."""
    from synthscope.membership.thresholds import fit_threshold

    return fit_threshold(x, None, prevalence=share).threshold


def band_around(x, estimate: float, below: float | None = None) -> float:
    """The folder's two-means cut kept within the default band around an estimated share used (`below` under it
    when given), as `banded_two_means` keeps it around the adjusted count."""
    from synthscope.membership.thresholds import PREVALENCE_BAND, two_means_within

    return two_means_within(x, estimate - (PREVALENCE_BAND if below is None else below),
                            estimate + PREVALENCE_BAND).threshold


def cut_rules() -> dict[str, Callable]:
    """Threshold rules screened on scan-smoothed scores (issue 19, sixth round: few generated images): rule name
    -> f(dev scores, dev labels, scores) -> threshold. "band" is the default (`banded_two_means`); "tail c" cuts
    at the low cluster's mode + c sigma (`_null_mode`); "mixture k" where a k-component Gaussian mixture's lowest
    component falls below posterior 0.5; "... in band" keeps a rule's share called used within the default band
    of the adjusted count; "min(band, ...)" takes the lower (more used) of two cuts; "band around ..." centres the
    band on another prevalence estimate."""
    from synthscope.membership.thresholds import PREVALENCE_BAND, _two_means, adjusted_count, banded_two_means

    def band(d, dy, x):
        return banded_two_means(x, d, dy).threshold

    def tail(c):
        def rule(d, dy, x):
            mode, sigma = _null_mode(x)
            return mode + c * sigma
        return rule

    def mixture(k):
        return lambda d, dy, x: _mixture_cut(x, k)[0]

    def in_band(rule):
        def inner(d, dy, x):
            estimate = adjusted_count(d, dy, x)
            share = float(np.clip((x >= rule(d, dy, x)).mean(), max(0.0, estimate - PREVALENCE_BAND),
                                  min(1.0, estimate + PREVALENCE_BAND)))
            return quantile_cut(x, share)
        return inner

    def lower_of(rule):
        return lambda d, dy, x: min(rule(d, dy, x), band(d, dy, x))

    def around(estimate, below=PREVALENCE_BAND):
        return lambda d, dy, x: band_around(x, estimate(d, dy, x), below)

    rules = {"band": band, "two_means": lambda d, dy, x: _two_means(x).threshold}
    for c in (2, 3, 4):
        rules[f"tail {c}"] = tail(c)
        rules[f"tail {c} in band"] = in_band(tail(c))
        rules[f"min(band, tail {c})"] = lower_of(tail(c))
    for k in (2, 3):
        rules[f"mixture {k}"] = mixture(k)
        rules[f"mixture {k} in band"] = in_band(mixture(k))
        rules[f"min(band, mixture {k})"] = lower_of(mixture(k))
    for below in (0.05, 0.10):                    # a band narrower below the count than above it
        rules[f"band {below:g} below"] = around(adjusted_count, below)
    rules["mixture 3 in band if count >= 0.6"] = lambda d, dy, x: (
        in_band(mixture(3))(d, dy, x) if adjusted_count(d, dy, x) >= 0.6 else band(d, dy, x))
    rules["band around mixture 2"] = around(lambda d, dy, x: _mixture_cut(x, 2)[1])
    rules["band around mean(count, mixture 2)"] = around(
        lambda d, dy, x: 0.5 * (_mixture_cut(x, 2)[1] + adjusted_count(d, dy, x)))
    return rules


def compare_cuts(pool: PatchPool, rules: dict[str, Callable], *, neighbours: int = 1, repeats: int = 200,
                 seed: int = 0, shares=SHARES, generated=GENERATED) -> pd.DataFrame:
    """Kappa of every threshold rule (`cut_rules`) on the scores as the default run cuts them: each folder's patch
    scores scan-smoothed over `neighbours` nearest slices of its own label-free scan groups (dev's within dev's,
    as `run_membership` does; the dev gate, which passed on 99.5-100 % of these re-splits, is not re-run). One row
    per (cell, re-split, rule) with the share called used and the true share; "true_prevalence" (labels read) is
    the ceiling of any prevalence estimate."""
    resplits = smoothed_resplits(pool, neighbours, repeats, seed, shares, generated)
    return cut_table((cell, {name: rule(d, pool.used[dev], x) for name, rule in rules.items()}, x, pool.used[scored])
                     for cell, (dev, scored, _), d, x in resplits)


def smoothed_resplits(pool: PatchPool, neighbours: int, repeats: int, seed: int, shares, generated):
    """`_resplits`' re-splits with both folders' patch scores as the default run cuts them: ((generated, share,
    repeat), (dev rows, scored rows, generated drawn), dev scores, scored scores), each folder's scores
    scan-smoothed over `neighbours` nearest slices of its own label-free scan groups (0: as they are)."""
    from synthscope.membership.scores import near_duplicate_groups
    from synthscope.membership.thresholds import scan_smoothed

    for n_generated, share, repeat, (dev, scored, drawn) in _resplits(pool, repeats, seed, shares, generated):
        d, x = pool.scores(dev, drawn), pool.scores(scored, drawn)
        if neighbours:
            dp, xp = pool.pixels[dev], pool.pixels[scored]
            d = scan_smoothed(d, dp, near_duplicate_groups(dp), neighbours)
            x = scan_smoothed(x, xp, near_duplicate_groups(xp), neighbours)
        yield (n_generated, share, repeat), (dev, scored, drawn), d, x


def cut_table(resplit_cuts) -> pd.DataFrame:
    """One row per (cell, re-split, rule) from (cell, {rule: threshold}, scores, labels) per re-split: kappa, the
    share called used and the true share, with the labelled ceiling "true_prevalence" (the true share's quantile)."""
    from sklearn.metrics import cohen_kappa_score

    rows = []
    for cell, cuts, x, y in resplit_cuts:
        for name, t in {**cuts, "true_prevalence": np.quantile(x, 1 - y.mean())}.items():
            calls = (x >= t).astype(int)
            rows.append((*cell, name, cohen_kappa_score(y, calls), calls.mean(), y.mean()))
    return pd.DataFrame(rows, columns=["generated", "share", "repeat", "rule", "kappa", "called", "true"])


def default_rules() -> dict[str, Callable]:
    """rule name -> f(dev_scores, dev_used, scores) -> threshold (used when score >= threshold)."""
    from synthscope.membership.thresholds import banded_two_means, fit_threshold

    return {
        "two_means_band": lambda d, dy, x: banded_two_means(x, d, dy).threshold,
        "two_means_band_x": lambda d, dy, x: banded_two_means(x, d, dy, cut="x").threshold,
        "two_means": lambda d, dy, x: fit_threshold(x, None, label_free="two_means").threshold,
        "dev_f1": lambda d, dy, x: fit_threshold(d, dy, "f1").threshold,
    }


def compare(pool: PatchPool, rules: dict[str, Callable], *, repeats: int = 200, seed: int = 0,
            shares=SHARES, generated=GENERATED) -> pd.DataFrame:
    """Kappa of every rule on `repeats` re-splits per cell; one row per (cell, re-split, rule). The true
    prevalence's quantile ("true_prevalence", labels read) is the ceiling of any prevalence estimate."""
    from sklearn.metrics import cohen_kappa_score

    rows = []
    for n_generated in generated:
        for share in shares:
            rng = np.random.default_rng([seed, n_generated, int(round(share * 10))])
            for repeat in range(repeats):
                d, dy, x, y = resplit(pool, rng, share, n_generated)
                cuts = {name: rule(d, dy, x) for name, rule in rules.items()}
                cuts["true_prevalence"] = np.quantile(x, 1 - y.mean())
                for name, t in cuts.items():
                    rows.append((n_generated, share, repeat, name, cohen_kappa_score(y, (x >= t).astype(int))))
    return pd.DataFrame(rows, columns=["generated", "share", "repeat", "rule", "kappa"])


def summary(kappas: pd.DataFrame, reference: str = "two_means_band", *, n_boot: int = 2000,
            seed: int = 0) -> pd.DataFrame:
    """Per rule and cell: mean kappa with a bootstrap CI over re-splits, worst decile, and the paired gain over
    `reference` with its CI."""
    rng = np.random.default_rng(seed)
    wide = kappas.pivot_table(index=["generated", "share", "repeat"], columns="rule", values="kappa")
    out = []
    for (n_generated, share), cell in wide.groupby(level=["generated", "share"]):
        draws = rng.integers(0, len(cell), size=(n_boot, len(cell)))
        for rule in cell.columns:
            v, gain = cell[rule].to_numpy(), (cell[rule] - cell[reference]).to_numpy()
            low, high = np.quantile(v[draws].mean(axis=1), [0.025, 0.975])
            g_low, g_high = np.quantile(gain[draws].mean(axis=1), [0.025, 0.975])
            out.append((n_generated, share, rule, v.mean(), low, high, np.quantile(v, 0.1), gain.mean(), g_low, g_high))
    return pd.DataFrame(out, columns=["generated", "share", "rule", "kappa", "ci_low", "ci_high", "worst_decile",
                                      "gain", "gain_low", "gain_high"])


def resplit_parser(description: str, repeats: int) -> argparse.ArgumentParser:
    """The options every re-split harness takes: the benchmark, its scan groups, how many re-splits, the seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bench", type=Path, required=True, help="a sub-task 1 benchmark (e.g. ../shared/bench/v3)")
    parser.add_argument("--scan-groups", type=Path, default=None,
                        help="pool id -> scan CSV (default: data/iqoth256/near_duplicate_groups.csv beside bench/)")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None) -> None:
    parser = resplit_parser(__doc__.split("\n\n")[0], repeats=200)
    parser.add_argument("--out", type=Path, default=None, help="write every kappa as CSV")
    parser.add_argument("--scores", type=str, default=None,
                        help="compare patch scores instead of threshold rules: typicality weights, e.g. 0,0.2")
    parser.add_argument("--cuts", action="store_true",
                        help="compare threshold rules on scan-smoothed scores, as the default run cuts them (`cut_rules`)")
    parser.add_argument("--pooling", action="store_true",
                        help="compare scan pooling of the scores before the default cut (`pooling_rules`)")
    args = parser.parse_args(argv)
    groups = args.scan_groups or args.bench.parent.parent / "data" / "iqoth256" / "near_duplicate_groups.csv"
    if args.cuts:
        kappas = compare_cuts(load_pool(args.bench, groups, pixels=True), cut_rules(), repeats=args.repeats,
                              seed=args.seed)
        reference = "band"
    elif args.pooling:
        kappas = compare_pooling(load_pool(args.bench, groups, pixels=True), pooling_rules(), repeats=args.repeats,
                                 seed=args.seed)
        reference = "raw"
    elif args.scores:
        weights = [float(w) for w in args.scores.split(",")]
        kappas = compare_scores(load_pool(args.bench, groups, typicality=True), weights, repeats=args.repeats,
                                seed=args.seed)
        reference = f"typicality {weights[0]:g}"
    else:
        kappas = compare(load_pool(args.bench, groups), default_rules(), repeats=args.repeats, seed=args.seed)
        reference = "two_means_band"
    if args.out:
        kappas.to_csv(args.out, index=False)
    print(summary(kappas, reference).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
