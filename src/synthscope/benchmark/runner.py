"""`make bench`: run every benchmark section, write bench/report.md and bench/report.json.

Measures; asserts nothing about time. Sections needing ../shared skip with a clear reason.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from synthscope.benchmark.base import BenchContext, BenchSection, cpu_count, peak_rss_mb
from synthscope.outputs import atomic_write_text

# Order matters only for reading the report.
SECTIONS = (
    "synthscope.benchmark.speed_features",
    "synthscope.benchmark.speed_scale",
    "synthscope.benchmark.scale_audit",
    "synthscope.benchmark.scale_patches",
    "synthscope.benchmark.quality_attribution",
    "synthscope.benchmark.quality_open_set",
    "synthscope.benchmark.quality_robustness",
    "synthscope.benchmark.quality_same_architecture",
    "synthscope.benchmark.quality_membership",
)
#: sections outside the core (the dashboard's latency) come in by name with `--section MODULE`, so the
#: core never imports the dashboard; the Makefile's bench target passes it

REPO_ROOT = Path(__file__).resolve().parents[3]


def _default_shared_dir() -> Path | None:
    candidate = Path(os.environ.get("SYNTHSCOPE_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return candidate if (candidate / "bench").is_dir() else None


def _machine_line() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}, {gpu}")


def run_sections(ctx: BenchContext, only: list[str] | None = None,
                 extra: list[str] | None = None) -> list[tuple[str, BenchSection, float]]:
    results = []
    for module_name in SECTIONS + tuple(extra or ()):
        short = module_name.rsplit(".", 1)[-1]
        if only and short not in only:
            continue
        print(f"[bench] {short} ...", flush=True)
        start = time.perf_counter()
        try:
            section = importlib.import_module(module_name).run(ctx)
        except Exception:  # one broken section must not hide the others' numbers
            section = BenchSection(title=short, markdown="", skipped="failed:\n```\n" + traceback.format_exc() + "```")
        elapsed = time.perf_counter() - start
        print(f"[bench] {short}: {'skipped: ' + section.skipped.splitlines()[0] if section.skipped else 'done'} "
              f"({elapsed:.1f} s)", flush=True)
        results.append((short, section, elapsed))
    return results


def _kept_sections(out_dir: Path, rerun: set[str]) -> dict[str, dict]:
    """Sections of the previous report that this run did not redo (a run with `--only`), so one section can
    be re-measured without losing the others' numbers. Each keeps the time stamp of the run that made it."""
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    if not json_path.is_file():
        return {}
    try:
        previous = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return {}
    markdown_by_title = _sections_of_markdown(md_path.read_text()) if md_path.is_file() else {}
    kept = {}
    for short, entry in previous.get("sections", {}).items():
        if short in rerun:
            continue
        markdown = entry.get("markdown", markdown_by_title.get(entry.get("title")))
        if markdown is None:
            continue  # an old report without this section's text: nothing honest to keep
        kept[short] = dict(entry, markdown=markdown,
                           generated=entry.get("generated", previous.get("generated", "an earlier run")))
    return kept


def _sections_of_markdown(text: str) -> dict[str, str]:
    """'## title' -> the section's body, without its time line (it is written again from the JSON)."""
    sections, title, body = {}, None, []
    for line in text.splitlines():
        if line.startswith("## "):
            if title is not None:
                sections[title] = "\n".join(body).strip()
            title, body = line[3:].strip(), []
        elif title is not None and not line.startswith(("_Section time:", "_Kept from the run of")):
            body.append(line)
    if title is not None:
        sections[title] = "\n".join(body).strip()
    return sections


def _newer(entry: dict, than: dict | None) -> bool:
    """Stamps read "YYYY-MM-DD HH:MM UTC", so they sort as text; a stamp-less entry is the oldest."""
    def stamp(item):
        value = (item or {}).get("generated", "")
        return value if value[:2] == "20" else ""
    return than is None or stamp(entry) > stamp(than)


def write_report(results, ctx: BenchContext, keep_previous: bool = False,
                 extra: list[str] | None = None, merge_from: list[Path] | None = None) -> tuple[Path, Path]:
    """`merge_from`: other report folders (e.g. a section re-run elsewhere with `--out`); each of their
    sections replaces this report's when it is newer, and keeps its own date."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rerun = {short for short, _, _ in results}
    kept = _kept_sections(ctx.out_dir, rerun) if keep_previous or merge_from else {}
    previous_order = list(kept)
    for source in merge_from or ():
        for short, entry in _kept_sections(Path(source), rerun).items():
            if _newer(entry, kept.get(short)):
                kept[short] = entry
    lines = [
        "# synthscope benchmark report",
        "",
        f"Generated by `make bench` on {stamp}"
        + (f"; {len(kept)} section(s) kept from earlier runs, each marked with its date." if kept else "."),
        f"Machine: {_machine_line()}.",
        f"Shared benchmark data: {ctx.shared_dir or 'absent (quality sections skipped)'}."
        + (" Quick mode (smaller sizes)." if ctx.quick else ""),
        f"Peak RSS of the whole run: {peak_rss_mb():.0f} MiB.",
        "",
    ]
    payload = {"generated": stamp, "machine": _machine_line(), "quick": ctx.quick, "sections": {}}
    fresh = {short: {"title": section.title, "skipped": section.skipped, "seconds": round(elapsed, 2),
                     "data": section.data, "markdown": section.markdown.rstrip(), "generated": stamp}
             for short, section, elapsed in results}
    order = [name.rsplit(".", 1)[-1] for name in SECTIONS + tuple(extra or ())]
    order += [name for name in previous_order if name not in order]   # sections this run does not name
    everything = {**kept, **fresh}
    for short in sorted(everything, key=lambda name: order.index(name) if name in order else len(order)):
        entry = everything[short]
        lines += [f"## {entry['title']}", "", f"_Section time: {entry['seconds']:.1f} s._", ""]
        if short in kept:
            lines += [f"_Kept from the run of {entry['generated']}; not re-run this time._", ""]
        if entry["skipped"]:
            lines += [f"Skipped: {entry['skipped']}", ""]
        else:
            lines += [entry["markdown"], ""]
        payload["sections"][short] = entry
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = ctx.out_dir / "report.md", ctx.out_dir / "report.json"
    for path, text in ((md_path, "\n".join(lines)),
                       (json_path, json.dumps(payload, indent=2, default=_json_default))):
        atomic_write_text(path, text)
    return md_path, json_path


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench")
    parser.add_argument("--shared-dir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", help="section names, e.g. speed_features; the report keeps the "
                        "other sections of the previous report in --out, each marked with its date")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--section", action="append", default=[],
                        help="extra section module by name (e.g. synthscope_dashboard.bench_section)")
    parser.add_argument("--merge-from", action="append", type=Path, default=[], metavar="DIR",
                        help="another report folder: its sections replace --out's where newer (each keeps its "
                        "date); with no --only, nothing is run")
    args = parser.parse_args(argv)
    missing = [str(folder) for folder in args.merge_from if not (folder / "report.json").is_file()]
    if missing:   # a mistyped folder must not pass as "nothing newer there"
        parser.error(f"--merge-from: no report.json in {', '.join(missing)}")
    merge_only = bool(args.merge_from) and args.only is None
    shared = args.shared_dir or _default_shared_dir()
    if shared is not None and not (shared / "bench").is_dir():
        print(f"[bench] no benchmark data under {shared} (expected {shared / 'bench'}): quality sections skip")
        shared = None
    with tempfile.TemporaryDirectory(prefix="synthscope-bench-cache-") as cache_dir:
        # An isolated cache: numbers are cold-cache numbers and the user's cache is untouched.
        os.environ["SYNTHSCOPE_CACHE_DIR"] = cache_dir
        ctx = BenchContext(shared_dir=shared, cache_dir=Path(cache_dir), out_dir=args.out,
                           quick=args.quick, device=args.device)
        results = [] if merge_only else run_sections(ctx, args.only, args.section)
        md_path, json_path = write_report(results, ctx, keep_previous=bool(args.only),
                                               extra=args.section, merge_from=args.merge_from)
    print(md_path.read_text())
    print(f"[bench] wrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
