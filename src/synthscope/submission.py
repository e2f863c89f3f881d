"""Run files for the ImageCLEFmedical GANs tasks: write (atomically, only when valid), read, validate.

Formats (no header, one line per image, comma-separated, every id exactly once, no blank lines):
- membership (sub-task 1): `<image_id>,<0|1>` per real test image; 1 = used for training.
- attribution (sub-task 2): `<image_id>,<cluster>` with integer clusters 0..k-1, all k used.
- subset (2025 sub-task 2): `<image_id>,<subset_label>`.
Files are written without a trailing newline, so strict validators that split on "\\n" see no blank line.

Reading is as lenient as the organisers' validators and no more: their 2023 validator
(github.com/ImageCLEF/2023_ImageCLEFmed_GANs_submission_validators, task1/validator.py) reads lines
with Python's csv module and strips each token, so spaces around an id or a value, a final line
break and Windows line endings are accepted there; `validate_run` accepts them too, with a warning
(stricter tools may not), and rejects what the organisers reject. The writers stay strict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from synthscope.outputs import atomic_write_text

__all__ = [
    "KINDS",
    "SubmissionError",
    "ValidationResult",
    "expected_ids",
    "read_run",
    "validate_run",
    "validate_series",
    "write_attribution_run",
    "write_membership_run",
    "write_subset_run",
]

KINDS = ("membership", "attribution", "subset")
_INT = re.compile(r"^-?\d+$")
_MAX_LISTED = 10


class SubmissionError(ValueError):
    """Content that would make an invalid run file, or a run file that cannot be parsed."""


@dataclass
class ValidationResult:
    ok: bool
    errors: list[str]
    warnings: list[str] = field(default_factory=list)
    n_lines: int = 0

    def format(self) -> str:
        head = f"VALID: {self.n_lines} line(s)" if self.ok else f"INVALID: {len(self.errors)} problem(s)"
        return "\n".join([head] + [f"  error: {e}" for e in self.errors] + [f"  warning: {w}" for w in self.warnings])


#: a first line whose id is one of these is read as a header, which run files must not have
HEADER_NAMES = ("image_id", "id", "image", "filename", "name")

def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")


def _listed(items: Iterable, limit: int = _MAX_LISTED) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _value_problem(kind: str, value: str, k: Optional[int], allowed_labels) -> Optional[str]:
    if kind == "membership":
        return None if value in ("0", "1") else f"label {value!r} is not 0 or 1"
    if kind == "attribution":
        if not _INT.match(value):
            return f"cluster {value!r} is not an integer"
        cluster = int(value)
        if cluster < 0:
            return f"cluster {cluster} is negative"
        if k is not None and cluster >= k:
            return f"cluster {cluster} is outside 0..{k - 1}"
        return None
    if not value:
        return "empty subset label"
    if allowed_labels is not None and value not in allowed_labels:
        return f"subset label {value!r} is not one of {_listed(sorted(allowed_labels))}"
    return None


def _id_problem(image_id: str) -> Optional[str]:
    if not image_id:
        return "empty image id"
    if image_id != image_id.strip():
        return f"image id {image_id!r} has surrounding spaces"
    if any(c in image_id for c in ",\n\r\t"):
        return f"image id {image_id!r} contains a comma, tab or line break"
    if Path(image_id).suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        return f"image id {image_id!r} has a file extension (ids are file names without extension)"
    return None


def _check_rows(
    rows: list[tuple[int, str, str]],
    kind: str,
    expected: Optional[set[str]],
    k: Optional[int],
    exact_k: bool,
    allowed_labels,
) -> list[str]:
    """Errors for (line number, id, value) rows; shared by the writers and the validator."""
    errors = []
    bad_values, bad_ids = [], []
    seen: dict[str, int] = {}
    duplicates = []
    for line, image_id, value in rows:
        problem = _id_problem(image_id)
        if problem:
            bad_ids.append(f"line {line}: {problem}")
        problem = _value_problem(kind, value, k, allowed_labels)
        if problem:
            bad_values.append(f"line {line}: {problem}")
        if image_id in seen:
            duplicates.append(f"{image_id} (lines {seen[image_id]} and {line})")
        else:
            seen[image_id] = line
    for group in (bad_ids, bad_values):
        if group:
            errors.append(_listed(group) if len(group) <= _MAX_LISTED else f"{len(group)} bad lines: {_listed(group)}")
    if duplicates:
        errors.append(f"{len(duplicates)} id(s) appear more than once: {_listed(duplicates)}")
    if expected is not None:
        missing = sorted(expected - set(seen))
        unexpected = sorted(set(seen) - expected)
        if missing:
            errors.append(f"{len(missing)} expected id(s) missing: {_listed(missing)}")
        if unexpected:
            errors.append(f"{len(unexpected)} id(s) not in the data set: {_listed(unexpected)}")
    if kind == "attribution" and k is not None and exact_k and not bad_values:
        used = {int(value) for _, _, value in rows}
        unused = sorted(set(range(k)) - used)
        if unused:
            errors.append(f"k={k} clusters required but cluster(s) {_listed(unused)} are never used")
    elif kind == "attribution" and k is None and exact_k and not bad_values and rows:
        # No k given: the run says how many clusters it has, and they must be numbered 0..k-1.
        used = sorted({int(value) for _, _, value in rows})
        if used != list(range(len(used))):
            errors.append(f"clusters must be numbered 0..k-1 with k = {len(used)} distinct clusters; got "
                          f"{_listed(used)} (pass k / --k, and --allow-unused-clusters, if some are meant to be empty)")
    if not rows:
        errors.insert(0, "no lines")
    return errors


def _rows_from_series(series: pd.Series, kind: str) -> list[tuple[int, str, str]]:
    rows = []
    for line, (image_id, value) in enumerate(series.items(), start=1):
        if kind in ("membership", "attribution"):
            if isinstance(value, bool) or (hasattr(value, "dtype") and value.dtype == bool):
                text = str(int(value))
            elif isinstance(value, (int,)) or (hasattr(value, "is_integer") and float(value).is_integer()):
                text = str(int(value))
            else:
                text = str(value)
        else:
            text = str(value)
        rows.append((line, str(image_id), text))
    return rows


def validate_series(
    series: pd.Series,
    kind: str,
    expected_ids: Optional[Iterable[str]] = None,
    k: Optional[int] = None,
    *,
    exact_k: bool = True,
    allowed_labels: Optional[Iterable[str]] = None,
) -> ValidationResult:
    """Validate in-memory content (ids as index) against the run-file rules."""
    _check_kind(kind)
    if not isinstance(series, pd.Series):
        raise TypeError("pass a pandas Series indexed by image_id")
    if series.isna().any():
        missing = series.index[series.isna()].tolist()
        return ValidationResult(False, [f"{len(missing)} id(s) have no value: {_listed(missing)}"], n_lines=len(series))
    rows = _rows_from_series(series, kind)
    expected = None if expected_ids is None else {str(i) for i in expected_ids}
    allowed = None if allowed_labels is None else {str(a) for a in allowed_labels}
    errors = _check_rows(rows, kind, expected, k, exact_k, allowed)
    return ValidationResult(not errors, errors, n_lines=len(rows))


def _atomic_write_text(path: Path, text: str) -> None:
    # the mode any new file gets here (0644 under umask 022), never mkstemp's 0600
    atomic_write_text(Path(path).expanduser(), text)


def _write(path, series: pd.Series, kind: str, **checks) -> Path:
    result = validate_series(series, kind, **checks)
    if not result.ok:
        raise SubmissionError(f"refusing to write an invalid {kind} run file {path}:\n  " + "\n  ".join(result.errors))
    rows = _rows_from_series(series, kind)
    _atomic_write_text(Path(path), "\n".join(f"{image_id},{value}" for _, image_id, value in rows))
    return Path(path)


def write_membership_run(path, ids_to_label: pd.Series, *, expected_ids: Optional[Iterable[str]] = None) -> Path:
    """Sub-task 1 run: one `<image_id>,<0|1>` line per real image (1 = used for training)."""
    return _write(path, ids_to_label, "membership", expected_ids=expected_ids)


def write_attribution_run(
    path, ids_to_cluster: pd.Series, k: Optional[int] = None, *, exact_k: bool = True, expected_ids: Optional[Iterable[str]] = None
) -> Path:
    """Sub-task 2 run: `<image_id>,<cluster>` with clusters 0..k-1 (all k used unless exact_k=False)."""
    return _write(path, ids_to_cluster, "attribution", k=k, exact_k=exact_k, expected_ids=expected_ids)


def write_subset_run(
    path, ids_to_subset: pd.Series, *, allowed_labels: Optional[Iterable[str]] = None, expected_ids: Optional[Iterable[str]] = None
) -> Path:
    """2025 sub-task 2 run: `<image_id>,<subset_label>`."""
    return _write(path, ids_to_subset, "subset", allowed_labels=allowed_labels, expected_ids=expected_ids)


def _parse_lines(path: Path, kind: str) -> tuple[list[tuple[int, str, str]], list[str], list[str]]:
    """(rows with stripped tokens, format errors, warnings) of a run file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise SubmissionError(f"cannot read run file {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [], ["not UTF-8 text"], []
    errors, warnings = [], []
    if text.startswith("\ufeff"):
        errors.append("starts with a byte-order mark")  # the organisers read it as part of the first id
        text = text[1:]
    if "\r" in text:
        # Python's universal newlines (what the organisers' validator reads through) end a line at \r\n or \r
        crlf = text.count("\r\n")
        bare = text.count("\r") - crlf
        if crlf:
            warnings.append("Windows line endings (CRLF); the organisers' validator accepts them, some tools do not")
        if bare:
            warnings.append(f"old Mac line endings (a bare CR) at {bare} line end(s); the organisers' validator "
                            "splits lines there too, most tools do not")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n") if text else []
    if len(lines) > 1 and lines[-1] == "":
        lines = lines[:-1]  # one final newline is not a blank line (csv.reader sees none either)
        warnings.append("ends with a line break; the organisers' validator accepts it, the task's rules ask for none")
    rows, blank, malformed, spaced, rewritten = [], [], [], [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            blank.append(number)
            continue
        parts = line.split(",")
        if len(parts) != 2:
            malformed.append(f"line {number}: expected '<image_id>,<value>', got {line[:80]!r}")
            continue
        # The organisers strip every token (str.strip), so do we; and say so.
        image_id, value = parts[0].strip(), parts[1].strip()
        if (image_id, value) != (parts[0], parts[1]):
            spaced.append(number)
        if kind in ("membership", "attribution"):
            try:
                canonical = str(int(value))  # their test: int(token), so "01" and "+1" are 1
            except ValueError:
                canonical = value
            if canonical != value:
                rewritten.append(f"line {number}: {value!r} read as {canonical}")
                value = canonical
        rows.append((number, image_id, value))
    if spaced:
        warnings.append(f"spaces around an id or a value on {len(spaced)} line(s) ({_listed(spaced)}); ignored, "
                        "as the organisers' validator strips them, but stricter tools may not")
    if rewritten:
        warnings.append(f"{len(rewritten)} value(s) not written as plain integers: {_listed(rewritten)}")
    if blank:
        errors.append(f"blank line(s) at {_listed(blank)}")
    if malformed:
        errors.append(_listed(malformed) if len(malformed) <= _MAX_LISTED else f"{len(malformed)} malformed lines: {_listed(malformed)}")
    if rows and rows[0][0] == 1 and rows[0][1].strip().lower() in HEADER_NAMES:
        errors.append(f"line 1 looks like a header ({rows[0][1]},{rows[0][2]}); run files have no header")
        rows = rows[1:]
    return rows, errors, warnings


def validate_run(
    path,
    kind: str,
    expected_ids: Optional[Iterable[str]] = None,
    k: Optional[int] = None,
    *,
    exact_k: bool = True,
    allowed_labels: Optional[Iterable[str]] = None,
) -> ValidationResult:
    """Check a run file against the rules; every problem is listed with line numbers."""
    _check_kind(kind)
    rows, errors, warnings = _parse_lines(Path(path), kind)
    expected = None if expected_ids is None else {str(i) for i in expected_ids}
    allowed = None if allowed_labels is None else {str(a) for a in allowed_labels}
    errors += _check_rows(rows, kind, expected, k, exact_k, allowed)
    return ValidationResult(ok=not errors, errors=errors, warnings=warnings, n_lines=len(rows))


def read_run(path, kind: str) -> pd.Series:
    """A run file as a Series indexed by image_id (int values, or str for subset runs); raises on bad format."""
    _check_kind(kind)
    rows, errors, _ = _parse_lines(Path(path), kind)
    errors += _check_rows(rows, kind, None, None, False, None)
    if errors:
        raise SubmissionError(f"{path} is not a valid {kind} run file:\n  " + "\n  ".join(errors))
    ids = [image_id for _, image_id, _ in rows]
    values = [value for _, _, value in rows]
    if kind == "subset":
        series = pd.Series(values, index=ids, dtype=object, name="subset")
    else:
        series = pd.Series([int(v) for v in values], index=ids, dtype="int64", name="used" if kind == "membership" else "cluster")
    series.index.name = "image_id"
    return series


def expected_ids(dataset, kind: str) -> list[str]:
    """The ids a run for `dataset` must list: real images for membership, generated images otherwise."""
    _check_kind(kind)
    role = "real" if kind == "membership" else "generated"
    return dataset.manifest.loc[dataset.manifest["role"] == role, "image_id"].tolist()


def default_kind(dataset) -> str:
    """membership for sub-task 1 trees, subset for 2025 sub-task 2, attribution otherwise."""
    if dataset.task == "membership":
        return "membership"
    return "subset" if dataset.layout.startswith("2025-st2") else "attribution"
