"""The optional Dask engine: the same answer on 1 process and on a 2-worker LocalCluster, also after a
worker is killed mid-run; Ctrl-C cancels the cluster's tasks and keeps finished shards; the cache must be
shared; without --workers/--scheduler Dask is never imported.

One LocalCluster (2 worker processes, 1 thread each) serves the whole module: starting one costs seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from layout_factory import make_layout
from synthscope.cache import CacheStats, EmbeddingCache, embed_dataset
from synthscope.cli import app
from synthscope.data import load_dataset
from synthscope.features import get_extractor

pytest.importorskip("distributed", reason="the Dask engine is the optional extra synthscope[dask]")

from synthscope.engine import Engine, EngineError, _probe_cache, check_shared_cache, use_engine  # noqa: E402

#: fingerprint features are sums of a few thousand float32 terms; threads in another order move the last bits
FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def engine():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    client = Client(cluster)
    engine = Engine(client, cluster, "a test cluster of 2 workers")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def images_tree(tmp_path_factory) -> Path:
    """A 2025 sub-task 1 dev tree of 60 synthetic slices."""
    return make_layout(tmp_path_factory.mktemp("engine-data"), "2025-st1-dev", n=20)


def _embed(tree: Path, cache_dir: Path, engine=None, *, progress=False, chunk_size=8, stats=None):
    dataset = load_dataset(tree)
    with use_engine(engine):
        return embed_dataset(dataset, get_extractor("fingerprint"), cache=EmbeddingCache(cache_dir),
                             progress=progress, chunk_size=chunk_size, stats=stats)


def _n_shards(cache_dir: Path) -> int:
    return len(list(Path(cache_dir, "embeddings").glob("*/shard-*.json")))


def test_two_workers_embed_what_one_process_embeds(engine, images_tree, tmp_path):
    local = _embed(images_tree, tmp_path / "local")
    stats = CacheStats()
    distributed = _embed(images_tree, tmp_path / "cluster", engine, stats=stats)
    assert stats.n_computed == 60 and stats.n_cached == 0
    assert _n_shards(tmp_path / "cluster") == 60 // 8 + 1           # one shard per chunk, written by the workers
    np.testing.assert_allclose(distributed, local, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    again = CacheStats()                                            # the workers' shards are ordinary cache hits
    np.testing.assert_array_equal(_embed(images_tree, tmp_path / "cluster", stats=again), distributed)
    assert again.n_computed == 0


def test_membership_and_attribute_run_files_are_byte_identical_through_a_scheduler(engine, tmp_path):
    """The CLI's --scheduler, against the module's cluster: the run files equal the 1-process ones byte for byte."""
    from test_cli_membership import make_tree

    dev, test, _ = make_tree(tmp_path / "st1", leak=True)
    st2 = make_layout(tmp_path / "st2", "2024-st2-test", n=12)
    address = engine.client.scheduler.address
    runs = {}
    for mode, extra in (("local", []), ("cluster", ["--scheduler", address])):
        cache = tmp_path / f"cache-{mode}"          # a cache each, so the cluster computes every feature itself
        runs[mode] = (tmp_path / f"membership-{mode}.csv", tmp_path / f"attribute-{mode}.csv")
        for args in (["membership", test, "--dev", dev, "--out", runs[mode][0]],
                     ["attribute", st2, "--k", 3, "--out", runs[mode][1]]):
            result = CliRunner().invoke(app, [str(a) for a in args] + ["--cache-dir", str(cache)] + extra)
            assert result.exit_code == 0, result.output
        if mode == "cluster":
            assert f"computing on the cluster at {address}" in result.output
            assert _n_shards(cache) >= 5                     # every space of membership + the attribution view
    for local, cluster in zip(runs["local"], runs["cluster"]):
        assert local.read_bytes() == cluster.read_bytes()


@pytest.mark.slow
def test_v3_membership_run_file_is_byte_identical_on_the_cluster(engine, shared_dir, tmp_path):
    v3 = shared_dir / "bench" / "v3" / "subtask1"
    if not v3.is_dir():
        pytest.skip(f"benchmark v3 not found at {v3}")
    address = engine.client.scheduler.address
    files = []
    # every default feature space, computed by the cluster; the image scores (registered, patches) are left
    # out: they are computed from the images in the client whatever the engine, and cost minutes here
    scores = [arg for name in ("distance", "adjusted", "gan_leaks", "domias", "copies") for arg in ("--score", name)]
    for mode, extra in (("local", []), ("cluster", ["--scheduler", address])):
        out = tmp_path / f"v3-{mode}.csv"
        result = CliRunner().invoke(app, ["membership", str(v3 / "test"), "--dev", str(v3 / "dev"), "--out", str(out),
                                          "--cache-dir", str(tmp_path / f"cache-{mode}")] + scores + extra)
        assert result.exit_code == 0, result.output
        files.append(out.read_bytes())
    assert files[0] == files[1]


def test_interrupt_cancels_the_clusters_tasks_and_keeps_finished_shards(engine, images_tree, tmp_path):
    def interrupt(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _embed(images_tree, tmp_path / "cache", engine, progress=interrupt, chunk_size=2)
    deadline = time.monotonic() + 30
    while any(engine.client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(engine.client.processing().values()), "cancelled tasks still run on the cluster"
    time.sleep(2.0)        # a chunk a worker was running when the interrupt came finishes and writes; no other starts
    kept = _n_shards(tmp_path / "cache")
    time.sleep(2.0)
    assert _n_shards(tmp_path / "cache") == kept, "chunks still start after the interrupt"
    stats = CacheStats()
    _embed(images_tree, tmp_path / "cache", chunk_size=2, stats=stats)
    assert stats.n_cached == 2 * kept and stats.n_computed == 60 - 2 * kept
    assert 1 <= kept <= 15                  # of 30 chunks: the finished ones are kept, the queued ones never ran


def test_a_worker_that_cannot_see_or_write_the_cache_is_named(engine, tmp_path):
    answers = engine.client.run(_probe_cache, str(tmp_path / "absent-marker"), "token")
    assert len(answers) == 2 and all("not the filesystem the client writes to" in a for a in answers.values())
    version = Path("/proc/version").read_text()       # readable everywhere, and no file can be created beside it
    answers = engine.client.run(_probe_cache, "/proc/version", version)
    assert all("cannot write into /proc" in a for a in answers.values())
    check_shared_cache(engine, tmp_path / "shared-cache")          # a folder every worker here sees: fine


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = CliRunner().invoke(app, ["embed", str(make_layout(tmp_path, "2025-st1-dev", n=1)),
                                          "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "no Dask scheduler answers at tcp://127.0.0.1:9" in result.output
    result = CliRunner().invoke(app, ["embed", str(tmp_path), "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2 and "not both" in result.output


def test_without_workers_or_scheduler_dask_is_never_imported(images_tree, tmp_path):
    code = ("import sys; from typer.testing import CliRunner; from synthscope.cli import app; "
            f"r = CliRunner().invoke(app, ['embed', {str(images_tree)!r}, '-e', 'pixels', '--cache-dir', "
            f"{str(tmp_path)!r}]); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('dask', 'distributed', 'synthscope.engine') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("SYNTHSCOPE_SCHEDULER", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_worker_killed_mid_run_is_replaced_and_the_result_is_the_same(engine, images_tree, tmp_path):
    """Runs last in the module: it kills one of the cluster's workers (the nanny starts a new one)."""
    expected = _embed(images_tree, tmp_path / "reference")
    killed = []

    def kill_a_busy_worker(done, total):
        if done == 0 or killed:
            return
        busy = [worker for worker, keys in engine.client.processing().items() if keys]
        assert busy, "no chunk was running when the first one finished: the test could not kill mid-run"
        pid = engine.client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    stats = CacheStats()
    got = _embed(images_tree, tmp_path / "cache", engine, progress=kill_a_busy_worker, chunk_size=4, stats=stats)
    assert killed and stats.n_computed == 60
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)                                   # it really died
    np.testing.assert_allclose(got, expected, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    np.testing.assert_array_equal(got, _embed(images_tree, tmp_path / "cache"))   # and the cache holds exactly that


def test_the_dashboards_feature_loading_runs_on_the_scheduler_with_progress_from_the_workers(engine, tmp_path,
                                                                                             monkeypatch):
    from synthscope.datatree import load_datasets
    from synthscope_dashboard.workspace import _attribution_from

    tree = make_layout(tmp_path / "st2", "2024-st2-test", n=12)
    datasets, _ = load_datasets(tree)
    monkeypatch.setenv("SYNTHSCOPE_SCHEDULER", engine.client.scheduler.address)
    calls = []
    cache = EmbeddingCache(tmp_path / "cache")
    data = _attribution_from(datasets, "fingerprint", cache, str(tree), progress=lambda *args: calls.append(args))
    n = sum(len(dataset.manifest) for dataset in datasets)
    assert data.features.shape[0] == n
    assert _n_shards(tmp_path / "cache") >= 1                        # written by the workers
    done = [call[0] for call in calls]
    assert done[0] == 0 and done[-1] == n and done == sorted(done)    # counted as the workers finish
    monkeypatch.delenv("SYNTHSCOPE_SCHEDULER")
    local = _attribution_from(datasets, "fingerprint", EmbeddingCache(tmp_path / "local"), str(tree))
    np.testing.assert_allclose(data.features, local.features, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
