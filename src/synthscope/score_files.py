"""Per-image score files.

Sub-task 1 (membership): `image_id,group,column,score,rank` (higher score = more likely used).

Beside the binary run file, analysts rank, plot and combine scores; a 0/1 file alone hides that. The
file has a header, one row per real image, blocks of groups in the run's order, each block by rank
(1 = the most likely used image of its group; tied scores share the best rank). `group` names the
folder and `column` the score column behind it: groups can be scored by different columns, whose
scales differ, so scores compare only within one group (ranks always do).

Sub-task 2 (attribution): `image_id,prediction,confidence,novelty`, one row per image in the run
file's order: the run's cluster or subset, its confidence (2025 subsets: calibrated probability;
clusters: assignment margin) and novelty (with dev: 1 - conformal p-value, "none of these" above
1 - alpha; label-free: local outlier factor). An empty field = not assessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from synthscope.outputs import atomic_write_text
from synthscope.submission import SubmissionError, ValidationResult, _atomic_write_text

SCORE_FILE_COLUMNS = ("image_id", "group", "column", "score", "rank")
#: the header before groups and columns were written (still read)
LEGACY_SCORE_FILE_COLUMNS = ("image_id", "score", "rank")


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    order = {g: i for i, g in enumerate(pd.unique(table["group"]))} if "group" in table else {}
    keyed = table.assign(_block=table["group"].map(order) if order else 0)
    return keyed.sort_values(["_block", "rank", "image_id"], kind="stable").drop(columns="_block")


def score_file_problems(table: pd.DataFrame, expected_ids: Optional[Iterable[str]] = None) -> list[str]:
    problems = []
    missing_columns = [c for c in SCORE_FILE_COLUMNS if c not in table.columns]
    if missing_columns:
        return [f"missing column(s) {', '.join(missing_columns)}; the header must be {','.join(SCORE_FILE_COLUMNS)}"]
    ids = table["image_id"].astype(str)
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        problems.append(f"{len(duplicated)} image id(s) appear more than once, e.g. {duplicated[0]}")
    if (ids.str.strip() == "").any():
        problems.append("an image id is empty")
    for name in ("image_id", "group", "column"):
        if table[name].astype(str).str.contains(r"[,\r\n]").any():
            problems.append(f"a {name} holds a comma or a line break, which a CSV row cannot carry unquoted")
    scores = pd.to_numeric(table["score"], errors="coerce")
    if not np.isfinite(scores.to_numpy(dtype=float)).all():
        problems.append("every score must be a finite number")
    ranks = pd.to_numeric(table["rank"], errors="coerce")
    if ranks.isna().any() or (ranks != ranks.round()).any() or (ranks < 1).any() or (ranks > len(table)).any():
        problems.append(f"every rank must be a whole number from 1 to {len(table)}")
    if expected_ids is not None:
        expected = {str(i) for i in expected_ids}
        extra, absent = set(ids) - expected, expected - set(ids)
        if extra:
            problems.append(f"{len(extra)} id(s) are not real images of the data set, e.g. {sorted(extra)[0]}")
        if absent:
            problems.append(f"{len(absent)} real image(s) have no score, e.g. {sorted(absent)[0]}")
    return problems


def write_score_file(path, table: pd.DataFrame, *, expected_ids: Optional[Iterable[str]] = None) -> Path:
    """Write `table` (image_id, group, column, score, rank) as a score file; refuse an invalid one."""
    problems = score_file_problems(table, expected_ids)
    if problems:
        raise SubmissionError("score file not written: " + "; ".join(problems))
    rows = _ordered(table)
    lines = [",".join(SCORE_FILE_COLUMNS)] + [
        f"{image_id},{group},{column},{float(score):.9g},{int(rank)}"
        for image_id, group, column, score, rank in zip(rows["image_id"].astype(str), rows["group"].astype(str),
                                                         rows["column"].astype(str), rows["score"], rows["rank"])]
    path = Path(path)
    _atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def read_score_file(path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path} is not a file")
    try:
        table = pd.read_csv(path, dtype={"image_id": str, "group": str, "column": str}, keep_default_na=False,
                            na_values={"score": [""], "rank": [""]})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise SubmissionError(f"{path} is not a readable CSV: {error}") from None
    if list(table.columns) == list(LEGACY_SCORE_FILE_COLUMNS):   # written before groups and columns
        table.insert(1, "group", "")
        table.insert(2, "column", "")
        return table
    if list(table.columns) != list(SCORE_FILE_COLUMNS):
        raise SubmissionError(f"{path}: the header must be {','.join(SCORE_FILE_COLUMNS)}, found "
                              f"{','.join(map(str, table.columns))}")
    table[["group", "column"]] = table[["group", "column"]].fillna("").astype(str)
    return table


def validate_score_file(path, expected_ids: Optional[Iterable[str]] = None) -> ValidationResult:
    try:
        table = read_score_file(path)
    except SubmissionError as error:
        return ValidationResult(False, [str(error)], [], 0)
    problems = score_file_problems(table, expected_ids)
    return ValidationResult(not problems, problems, [], len(table))


ATTRIBUTION_SCORE_COLUMNS = ("image_id", "prediction", "confidence", "novelty")


def _number(value) -> str:
    value = float(value)
    return f"{value:.6f}" if np.isfinite(value) else ""


def write_attribution_scores(path, table: pd.DataFrame) -> Path:
    """Write `table` (image_id, prediction, confidence, novelty; `AttributionRun.scores_table()`) as the
    sub-task 2 scores file, atomically; refuse duplicate ids or fields a CSV row cannot carry. The CLI's
    `attribute --scores` and the dashboard's export both come here, so their bytes are equal."""
    missing = [c for c in ATTRIBUTION_SCORE_COLUMNS if c not in table.columns]
    if missing:
        raise SubmissionError(f"scores not written: missing column(s) {', '.join(missing)}")
    ids, predictions = table["image_id"].astype(str), table["prediction"].astype(str)
    problems = []
    if ids.duplicated().any():
        problems.append(f"image id {ids[ids.duplicated()].iloc[0]} appears more than once")
    for name, values in (("image_id", ids), ("prediction", predictions)):
        if values.str.contains(r"[,\r\n]").any():
            problems.append(f"a {name} holds a comma or a line break")
    if problems:
        raise SubmissionError("scores not written: " + "; ".join(problems))
    lines = [",".join(ATTRIBUTION_SCORE_COLUMNS)] + [
        f"{image_id},{prediction},{_number(confidence)},{_number(novelty)}"
        for image_id, prediction, confidence, novelty in zip(ids, predictions, table["confidence"], table["novelty"])]
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")
