"""One set of options across the command line: the same name means the same thing, with the same choices
and a help text, in every command that takes it (read from the real app, so a new command is checked too)."""

from __future__ import annotations

import enum
import typing

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from layout_factory import make_layout
from synthscope.cli import app

runner = CliRunner()
COMMANDS = typer.main.get_command(app).commands


def _options(name: str) -> list:
    """The command's options (typer's own click options: `param_type_name` says which kind a parameter is)."""
    return [param for param in COMMANDS[name].params if param.param_type_name == "option"]


def _choices(option) -> list[str] | None:
    """The values an option accepts, when they are a fixed list (an Enum, or a list of one)."""
    if hasattr(getattr(option, "type", None), "choices"):   # click's own options
        return list(option.type.choices)
    annotation = option.type_descriptor.annotation           # typer's (it vendors click)
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return [member.value for member in candidate]
    return None


def _option(command: str, flag: str):
    (found,) = [option for option in _options(command) if flag in option.opts]
    return found


def test_every_command_takes_cache_dir():
    """The README says every command takes --cache-dir; info, validate, evaluate, extractors and lab refused it."""
    lacking = sorted(name for name in COMMANDS if not any("--cache-dir" in o.opts for o in _options(name)))
    assert not lacking, f"commands without --cache-dir: {lacking}"


def test_every_seed_says_what_it_seeds():
    silent = sorted(name for name in COMMANDS for option in _options(name)
                    if "--seed" in option.opts and not (option.help or "").strip())
    assert not silent, f"--seed without help in: {silent}"


def test_device_is_the_same_choice_everywhere():
    """demo and lab took --device as free text ('tpu' got as far as training)."""
    for name in COMMANDS:
        for option in _options(name):
            if "--device" in option.opts:
                assert _choices(option) == ["auto", "cpu", "cuda"], f"{name} --device is free text"
                assert option.help


def test_membership_score_help_describes_every_score():
    option = _option("membership", "--score")
    missing = [value for value in _choices(option) if value not in option.help]
    assert not missing, f"--score help omits {missing}"


def test_lab_refuses_an_unknown_device_before_creating_anything(tmp_path):
    out = tmp_path / "bench"
    result = runner.invoke(app, ["lab", str(tmp_path), "--out", str(out), "--device", "tpu"])
    assert result.exit_code == 2 and "'tpu' is not one of" in result.output
    assert not out.exists()


@pytest.mark.parametrize("flags,expected", [
    (["--models", "dcgan", "--models", "vae"], ("dcgan", "vae")),          # repeated, as every list option
    (["--models", "dcgan,vae,upconv"], ("dcgan", "vae", "upconv")),         # the older comma form still works
    (["--models", "dcgan,vae", "--models", "diffusion"], ("dcgan", "vae", "diffusion")),
    ([], ("dcgan", "vae", "diffusion", "upconv")),
])
def test_lab_models_repeat_the_flag_or_take_a_comma_list(tmp_path, monkeypatch, flags, expected):
    import synthscope.lab as lab

    seen = {}

    def build(images, ids, out, config, **kwargs):
        seen["models"], seen["device"] = config.models, config.device
        raise lab.LabError("stopped by the test after reading the options")

    monkeypatch.setattr(lab, "build_benchmark", build)
    monkeypatch.setattr(lab, "load_real_folder",
                        lambda path, groups=None: (np.zeros((4, 256, 256), np.uint8), list("abcd"), None, []))
    result = runner.invoke(app, ["lab", str(tmp_path / "real"), "--out", str(tmp_path / "bench"), "--device", "cpu", *flags])
    assert "stopped by the test" in result.output, result.output
    assert seen == {"models": expected, "device": "cpu"}


def test_lab_names_an_unknown_model(tmp_path):
    result = runner.invoke(app, ["lab", str(tmp_path / "real"), "--out", str(tmp_path / "bench"), "--models", "dcgan",
                                 "--models", "stylegan"])
    assert result.exit_code == 2 and "unknown model(s) stylegan" in result.output


def test_info_validate_and_evaluate_take_cache_dir(tmp_path):
    from synthscope.data import load_dataset
    from synthscope.submission import expected_ids

    root = make_layout(tmp_path, "2025-st1-test", n=2)
    cache = tmp_path / "elsewhere"
    result = runner.invoke(app, ["info", str(root), "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    run, truth = tmp_path / "run.csv", tmp_path / "truth.csv"
    ids = expected_ids(load_dataset(root), "membership")
    run.write_text("\n".join(f"{i},1" for i in ids))
    truth.write_text("image_id,used\n" + "\n".join(f"{i},{n % 2}" for n, i in enumerate(ids)))
    for args in (["validate", str(run), "--dataset", str(root)], ["evaluate", str(run), "--truth", str(truth)]):
        result = runner.invoke(app, [*args, "--cache-dir", str(cache), *(["--n-boot", "100"] if "evaluate" in args else [])])
        assert result.exit_code == 0, result.output
    assert not cache.exists(), "commands that only read create no cache dir"


def test_validate_on_a_score_file_says_what_it_is(tmp_path):
    """It once said '13 malformed lines' (735 on a real benchmark)."""
    from synthscope.data import load_dataset
    from synthscope.score_files import write_score_file
    from synthscope.submission import expected_ids

    root = make_layout(tmp_path, "2025-st1-test", n=3)
    ids = expected_ids(load_dataset(root), "membership")
    scores = write_score_file(tmp_path / "scores.csv", pd.DataFrame(
        {"image_id": ids, "group": "generated", "column": "images:patches",
         "score": np.arange(len(ids), dtype=float), "rank": np.arange(len(ids), 0, -1)}))
    result = runner.invoke(app, ["validate", str(scores), "--dataset", str(root)])
    assert result.exit_code == 0, result.output
    assert "a membership score file (written by `membership --scores`), not a run file" in result.output
    assert "malformed" not in result.output and f"VALID: {len(ids)} line(s)" in result.output
    truth = tmp_path / "truth.csv"
    truth.write_text("image_id,used\n" + "\n".join(f"{i},1" for i in ids))
    result = runner.invoke(app, ["evaluate", str(scores), "--truth", str(truth)])
    assert result.exit_code == 2 and "score file" in result.output and "malformed" not in result.output
