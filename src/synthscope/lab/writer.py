"""Writing a lab benchmark in the ImageCLEFmedical GANs 2024 layout, with its ground truth and README."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from synthscope.runtime import choose_threads

from synthscope.lab.models import IMAGE_SIZE, LabError, resolve_device
from synthscope.lab.splits import LabConfig, LabResult, RealSplits, split_real_pool
from synthscope.lab.training import TrainedGenerator, TrainingSummary, train_generator


def _save_png(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image, mode="L").save(path, format="PNG")


def _write_images(folder: Path, names: Sequence[str], images: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in zip(names, images):
        _save_png(folder / f"{name}.png", img)


def build_benchmark(images: np.ndarray, source_ids: Sequence[str], out_dir: str | Path, config: LabConfig | None = None,
                    *, groups: Sequence | None = None, progress: Callable[[str], None] | None = None,
                    description: str = "a folder of real images") -> LabResult:
    """Train the zoo on disjoint subsets of ``images`` (uint8 [n,256,256]) and write the benchmark to
    ``out_dir`` (which must not exist or be empty). ``groups`` keeps near-duplicates (slices of one
    patient) together; without it every image is its own group."""
    config = config or LabConfig()
    config.validate()
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise LabError(f"images must be uint8 [n, {IMAGE_SIZE}, {IMAGE_SIZE}], got {images.dtype} {images.shape}")
    source_ids = [str(s) for s in source_ids]
    if len(source_ids) != len(images):
        raise LabError(f"{len(source_ids)} source ids for {len(images)} images")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise LabError(f"{out_dir} exists and is not empty; the lab writes only into a new or empty folder")
    say = progress or (lambda message: None)
    groups = np.arange(len(images)) if groups is None else np.asarray(groups)
    splits = split_real_pool(groups, config)
    device = resolve_device(config.device)
    if device.type == "cpu":
        torch.set_num_threads(config.threads or choose_threads())
    t_start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, dict[str, int]] = {}
    summaries: list[TrainingSummary] = []
    generators: dict[str, TrainedGenerator] = {}
    for k, model in enumerate(config.models):
        train_idx = splits.train[model]
        say(f"training {model} on {len(train_idx)} images for {config.steps[model]} steps "
            f"at {config.resolution_of(model)} px on {device}")
        g = train_generator(model, images[train_idx], steps=config.steps[model], resolution=config.resolution_of(model),
                            batch_size=config.batch_size, device=device, seed=config.seed * 1000 + k)
        generators[model] = g
        summaries.append(g.summary)
        seeds[model] = {"train": config.seed * 1000 + k}
        log_dir = out_dir / "training_logs" / model
        log_dir.mkdir(parents=True, exist_ok=True)
        g.history.to_csv(log_dir / "losses.csv", index=False)
        (log_dir / "summary.json").write_text(json.dumps(asdict(g.summary), indent=1))
        say(f"  {model}: {g.summary.seconds:.1f} s, final losses {g.summary.final_losses}")

    def sample(model: str, n: int, purpose: str, offset: int) -> np.ndarray:
        s = config.seed * 1000 + 100 * (config.models.index(model) + 1) + offset
        seeds[model][purpose] = s
        return generators[model].sample(n, seed=s)

    st1 = out_dir / "subtask1"
    truth_rows, source_rows = [], []
    shuffle_rng = np.random.default_rng([config.seed, 3001])
    for i, model in enumerate(config.models[: config.membership_models], 1):
        say(f"writing sub-task 1 folders of {model} (model_{i} / folder_{i})")
        dev = st1 / "dev" / f"model_{i}"
        _write_images(dev / "generated", [f"generated_{i}_{k:06d}" for k in range(1, config.n_generated_dev + 1)],
                      sample(model, config.n_generated_dev, "subtask1_dev", 11))
        for label, idx in (("real_used", splits.used_dev[model]), ("real_not_used", splits.not_used_dev[model])):
            names = [f"{label}_{i}_{k:06d}" for k in range(1, len(idx) + 1)]
            _write_images(dev / label, names, images[idx])
            source_rows += [(n, source_ids[j]) for n, j in zip(names, idx)]
        test = st1 / "test" / f"folder_{i}"
        _write_images(test / "generated", [f"generated_{i}_{k:06d}" for k in range(1, config.n_generated_test + 1)],
                      sample(model, config.n_generated_test, "subtask1_test", 12))
        unknown = [(j, 1) for j in splits.used_test[model]] + [(j, 0) for j in splits.not_used_test[model]]
        unknown = [unknown[p] for p in shuffle_rng.permutation(len(unknown))]
        names = [f"real_unknown_{i}_{k:06d}" for k in range(1, len(unknown) + 1)]
        _write_images(test / "real_unknown", names, images[[j for j, _ in unknown]])
        truth_rows += [(n, used) for n, (_, used) in zip(names, unknown)]
        source_rows += [(n, source_ids[j]) for n, (j, _) in zip(names, unknown)]
    st1_truth = None
    if config.membership_models:
        st1_truth = st1 / "test_ground_truth.csv"
        pd.DataFrame(truth_rows, columns=["image_id", "used"]).to_csv(st1_truth, index=False)
        pd.DataFrame(source_rows, columns=["image_id", "pool_id"]).to_csv(st1 / "real_source.csv", index=False)

    st2 = out_dir / "subtask2"
    seen = config.models[: len(config.models) - config.unseen_models]
    pool_images, pool_labels = [], []
    diversity: dict[str, tuple[float, float]] = {}
    for j, model in enumerate(config.models, 1):
        if model in seen:
            say(f"writing sub-task 2 dev folder model_{j} ({model})")
            _write_images(st2 / "dev" / f"model_{j}", [f"model_{j}_{k:04d}" for k in range(1, config.n_attribution_dev + 1)],
                          sample(model, config.n_attribution_dev, "subtask2_dev", 21))
        pool_images.append(sample(model, config.n_attribution_test, "subtask2_test", 22))
        diversity[model] = (_diversity(pool_images[-1]), _diversity(images[splits.train[model]]))
        pool_labels += [f"model_{j}"] * config.n_attribution_test
    say("writing sub-task 2 test folder generated_unknown")
    order = shuffle_rng.permutation(len(pool_labels))
    pool = np.concatenate(pool_images)[order]
    names = [f"generated_unknown_{k:05d}" for k in range(1, len(order) + 1)]
    _write_images(st2 / "test" / "generated_unknown", names, pool)
    st2_truth = st2 / "test_ground_truth.csv"
    pd.DataFrame({"image_id": names, "model": [pool_labels[p] for p in order]}).to_csv(st2_truth, index=False)
    model_key = st2 / "model_key.csv"
    pd.DataFrame({"model": [f"model_{j}" for j in range(1, len(config.models) + 1)],
                  "architecture": list(config.models)}).to_csv(model_key, index=False)

    seconds = time.perf_counter() - t_start
    record = {
        "config": asdict(config),
        "real_pool": description,
        "splits": {name: {m: [source_ids[j] for j in idx] for m, idx in getattr(splits, name).items()}
                   for name in ("train", "used_dev", "used_test", "not_used_dev", "not_used_test")},
        "sample_seeds": seeds,
        "training": [asdict(s) for s in summaries],
        "diversity": {m: {"generated": g, "training_set": r} for m, (g, r) in diversity.items()},
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    (out_dir / "config.json").write_text(json.dumps(record, indent=1))
    (out_dir / "README.md").write_text(_readme(config, splits, summaries, description, seconds, device, diversity))
    say(f"benchmark written to {out_dir} in {seconds:.0f} s")
    return LabResult(
        root=out_dir,
        subtask1_dev=st1 / "dev" if config.membership_models else None,
        subtask1_test=st1 / "test" if config.membership_models else None,
        subtask1_truth=st1_truth, subtask2_dev=st2 / "dev", subtask2_test=st2 / "test",
        subtask2_truth=st2_truth, model_key=model_key, training=summaries, seconds=seconds,
    )


def _diversity(images: np.ndarray) -> float:
    """Mean per-pixel standard deviation across images at 64 px (grey levels): near 0 = mode collapse."""
    x = F.interpolate(torch.from_numpy(np.ascontiguousarray(images)).float().unsqueeze(1), size=(64, 64), mode="area")
    return round(float(x.std(0).mean()), 2)


def _readme(config: LabConfig, splits: RealSplits, summaries: list[TrainingSummary], description: str,
            seconds: float, device: torch.device, diversity: dict[str, tuple[float, float]]) -> str:
    n_mem = config.membership_models
    seen = config.models[: len(config.models) - config.unseen_models]
    lines = [
        "# Generator-lab benchmark (written by `synthscope lab`)",
        "",
        f"Real images: {description}. Every model below was really trained on its own training set, so the",
        "ground truth of both sub-tasks is a fact of this run, not a simulation. All parameters, splits and",
        "seeds are in `config.json`; losses per model in `training_logs/<model>/`.",
        "",
        "## Layout (ImageCLEFmedical GANs 2024 style)",
        "```",
    ]
    for i, m in enumerate(config.models[:n_mem], 1):
        nu, nt = len(splits.used_dev[m]), len(splits.not_used_dev[m])
        tu, tn = len(splits.used_test[m]), len(splits.not_used_test[m])
        lines += [
            f"subtask1/dev/model_{i}/generated/generated_{i}_000001..{config.n_generated_dev:06d}.png   model {i} = {m}",
            f"subtask1/dev/model_{i}/real_used/ ({nu})  real_not_used/ ({nt})",
            f"subtask1/test/folder_{i}/generated/ ({config.n_generated_test})  real_unknown/ ({tu + tn} = {tu} used + {tn} not used, shuffled)",
        ]
    if n_mem:
        lines += ["subtask1/test_ground_truth.csv   image_id, used (1 = in that model's training set)",
                  "subtask1/real_source.csv         image_id -> pool_id (the source image)"]
    for j, m in enumerate(config.models, 1):
        if m in seen:
            lines.append(f"subtask2/dev/model_{j}/model_{j}_0001..{config.n_attribution_dev:04d}.png   ({m})")
    lines += [
        f"subtask2/test/generated_unknown/generated_unknown_00001..{config.n_attribution_test * len(config.models):05d}.png"
        f"   {config.n_attribution_test} per model x {len(config.models)} models, shuffled",
        "subtask2/test_ground_truth.csv   image_id, model"
        + (f"  ({', '.join(f'model_{j}' for j in range(len(seen) + 1, len(config.models) + 1))} absent from dev)"
           if config.unseen_models else ""),
        "subtask2/model_key.csv           model -> architecture",
        "```",
        "",
        "## Splits",
        f"Each model trained on its own {config.train_size}-image set (whole groups; no image or group in two",
        "training sets). Not-used images come from groups no model trained on. Used and not-used sets are each",
        "cut into a dev and a test half along group lines, so dev and test real images are disjoint and",
        "no group straddles them. Generated images of dev and test are different draws (different seeds).",
        "",
        "## Models",
        "Diversity = mean per-pixel standard deviation across images at 64 px, of the model's sub-task 2 test",
        "samples and of its training set; a generated value far below the training set's means mode collapse.",
        "",
        "| model | architecture | train imgs | resolution | steps | train s | final losses | diversity gen / train |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        losses = ", ".join(f"{k} {v:.3g}" for k, v in s.final_losses.items())
        gen_div, real_div = diversity[s.model]
        lines.append(f"| {s.model} | {s.architecture} | {s.n_train} | {s.resolution} px | {s.steps} | {s.seconds:.0f} "
                     f"| {losses} | {gen_div:.1f} / {real_div:.1f} |")
    res = sorted({config.resolution_of(m) for m in config.models})
    lines += [
        "",
        "## Honest notes",
        f"- The models train and sample at a low internal resolution ({', '.join(f'{r} px' for r in res)}) to fit a",
        "  CPU budget; their outputs are upsampled bilinearly to 256x256 before quantisation",
        "  (uint8 = round((clip(x, -1, 1) + 1) * 127.5)). That shared upsampling is a fingerprint common to",
        "  every model here and makes all images smoother than real 256 px CT.",
        f"- Training is brief (total {seconds:.0f} s on {device}, {torch.get_num_threads()} threads); short-trained",
        "  models memorise little, so sub-task 1 signal may be weak or absent. Test for leakage before claiming any.",
        "- Each model trained on a different image set, so sub-task 2 clusters can also differ in content.",
        "",
    ]
    return "\n".join(lines)

