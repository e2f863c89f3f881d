"""Run files from the curation, through the core's validated writers (`synthscope.submission`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from synthscope.submission import SubmissionError, validate_run, write_attribution_run, write_membership_run


@dataclass
class RunCheck:
    ok: bool
    errors: list[str] = field(default_factory=list)


def write_run(path: Path, kind: str, ids_to_value: pd.Series, k: int | None = None) -> RunCheck:
    """Write a run file ("membership" | "attribution") atomically, then validate what was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "membership":
            write_membership_run(path, ids_to_value)
        elif kind == "attribution":
            write_attribution_run(path, ids_to_value, k=k)
        else:
            raise ValueError(f"unknown run kind {kind!r}")
    except SubmissionError as error:   # the writer refused: nothing was written
        return RunCheck(False, [str(error)])
    return validate_run_file(path, kind, ids_to_value.index.astype(str).tolist(), k)


def validate_run_file(path: Path, kind: str, expected_ids: list[str], k: int | None = None) -> RunCheck:
    result = validate_run(path, kind, expected_ids, **({"k": k} if kind == "attribution" else {}))
    return RunCheck(bool(result.ok), list(result.errors))
