"""`make bench`'s runner: one report (markdown + the same numbers as JSON); quality sections say why
they skip when the shared benchmarks are absent, as on a user's machine."""

from __future__ import annotations

import json

import pytest

from synthscope.benchmark.runner import SECTIONS, main


def test_runner_writes_both_reports_and_quality_sections_skip_without_shared(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["--out", str(out), "--quick", "--shared-dir", str(tmp_path / "no-shared"),
                 "--only", "quality_attribution", "quality_membership"]) == 0
    report = (out / "report.md").read_text()
    payload = json.loads((out / "report.json").read_text())
    assert set(payload["sections"]) == {"quality_attribution", "quality_membership"}
    assert "absent (quality sections skipped)" in report
    assert "Quality skipped: ../shared/bench/v1/subtask2 not found." in report
    assert "Quality skipped: no ../shared/bench/v1, v2 or v3 subtask1 folder found." in report
    # membership speed still runs without the data: 10k generated x 4k real, numbers in both files
    speed = payload["sections"]["quality_membership"]["data"]["speed"]
    assert speed["score_10k_x_4k_d4096_s"] > 0 and f"{speed['score_10k_x_4k_d4096_s']:.2f}" in report
    assert "wrote" in capsys.readouterr().out
    # the core's sections, by name: speed first, quality last (a new section must not drop one)
    names = [name.rsplit(".", 1)[1] for name in SECTIONS]
    assert names[0] == "speed_features" and names[-5:] == ["quality_attribution", "quality_open_set",
                                                           "quality_robustness", "quality_same_architecture",
                                                           "quality_membership"]
    assert {"speed_scale", "scale_audit"} <= set(names)
    # the dashboard's section comes in by name (--section): the core lists no dashboard module
    assert not any(name.startswith("synthscope_dashboard") for name in SECTIONS)


def test_a_partial_rerun_keeps_the_other_sections_with_their_date(tmp_path):
    """`--only X` re-measures X and keeps every other section of the previous report, marked as kept, so a
    slow section can be redone without losing (or silently re-dating) the others' numbers."""
    out = tmp_path / "bench"
    no_shared = str(tmp_path / "no-shared")
    assert main(["--out", str(out), "--quick", "--shared-dir", no_shared,
                 "--only", "quality_attribution", "quality_membership"]) == 0
    first = json.loads((out / "report.json").read_text())
    assert main(["--out", str(out), "--quick", "--shared-dir", no_shared, "--only", "quality_attribution"]) == 0
    report = (out / "report.md").read_text()
    payload = json.loads((out / "report.json").read_text())
    assert set(payload["sections"]) == {"quality_attribution", "quality_membership"}
    kept = payload["sections"]["quality_membership"]
    assert kept["data"] == first["sections"]["quality_membership"]["data"]
    assert kept["markdown"] == first["sections"]["quality_membership"]["markdown"]
    assert report.count("_Kept from the run of") == 1
    # the report's order is the sections' order, not the order of the runs
    assert report.index("## Sub-task 2") < report.index("## Sub-task 1")
    assert "1 section(s) kept from earlier runs" in report


def test_sections_re_run_elsewhere_are_merged_in_when_newer(tmp_path):
    """A section re-run into another folder (`--out elsewhere --only X`) comes back with `--merge-from`: it
    replaces the older copy, keeps its own date, and nothing is run or lost."""
    out, elsewhere = tmp_path / "bench", tmp_path / "elsewhere"
    no_shared = str(tmp_path / "no-shared")
    assert main(["--out", str(out), "--quick", "--shared-dir", no_shared,
                 "--only", "quality_attribution", "quality_open_set"]) == 0
    original = json.loads((out / "report.json").read_text())
    # the elsewhere run is newer: age the original's stamps
    for entry in original["sections"].values():
        entry["generated"] = "2020-01-01 00:00 UTC"
    (out / "report.json").write_text(json.dumps(original))
    assert main(["--out", str(elsewhere), "--quick", "--shared-dir", no_shared, "--only", "quality_attribution"]) == 0
    newer = json.loads((elsewhere / "report.json").read_text())["sections"]["quality_attribution"]

    assert main(["--out", str(out), "--shared-dir", no_shared, "--merge-from", str(elsewhere)]) == 0
    merged = json.loads((out / "report.json").read_text())["sections"]
    assert set(merged) == {"quality_attribution", "quality_open_set"}
    assert merged["quality_attribution"]["generated"] == newer["generated"] != "2020-01-01 00:00 UTC"
    assert merged["quality_open_set"]["generated"] == "2020-01-01 00:00 UTC"   # kept, not re-run
    assert merged["quality_open_set"]["data"] == original["sections"]["quality_open_set"]["data"]
    report = (out / "report.md").read_text()
    assert report.count("_Kept from the run of") == 2
    assert f"_Kept from the run of {newer['generated']}" in report
    # an older copy elsewhere does not replace a newer one here
    stale = json.loads((elsewhere / "report.json").read_text())
    stale["sections"]["quality_attribution"]["generated"] = "2019-01-01 00:00 UTC"
    stale["sections"]["quality_attribution"]["markdown"] = "stale numbers"
    (elsewhere / "report.json").write_text(json.dumps(stale))
    assert main(["--out", str(out), "--shared-dir", no_shared, "--merge-from", str(elsewhere)]) == 0
    assert "stale numbers" not in (out / "report.md").read_text()
    # a mistyped folder is an error, not "nothing newer there"; the report stays as it was
    before = (out / "report.json").read_bytes()
    with pytest.raises(SystemExit):
        main(["--out", str(out), "--shared-dir", no_shared, "--merge-from", str(tmp_path / "typo")])
    assert (out / "report.json").read_bytes() == before
