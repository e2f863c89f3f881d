"""The optional Dask engine: map chunks of images onto a `dask.distributed` cluster.

Without `--workers` or `--scheduler` (or `$SYNTHSCOPE_SCHEDULER`) nothing here imports Dask and every
command runs in its own process as before. With them, `open_engine` starts a `LocalCluster` (`workers`
processes of one thread each) or connects to a running scheduler, and `use_engine` makes it the engine
that `synthscope.cache.embed_dataset` maps its chunks onto, so `embed`, `membership`, `controls`,
`attribute` and `prepare` compute their features on the cluster without any change of their own.

The content-addressed embedding cache is the shared store: every task decodes its chunk of images,
embeds it and writes one shard (atomically, checksummed) into the cache; only counts travel back to the
client, which reads the vectors from the cache. So the cache must sit on a filesystem every worker sees:
`open_engine` checks, before any work, that each worker can read a file the client wrote there and can
write a file itself, and fails with one message naming the worker otherwise. A worker that dies mid-run
loses only its running chunk, which the scheduler gives to another worker; Ctrl-C cancels the cluster's
tasks and keeps every shard already written.
"""

from __future__ import annotations

import contextlib
import logging
import contextvars
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

ENV_SCHEDULER = "SYNTHSCOPE_SCHEDULER"


class EngineError(RuntimeError):
    """The cluster cannot be used (Dask missing, no scheduler at the address, a worker that cannot reach
    the cache); the message says what to do."""


@dataclass
class Engine:
    """A connected `dask.distributed.Client` (and the LocalCluster it started, if any)."""

    client: Any
    cluster: Any = None
    description: str = ""
    #: (extractor key) -> how many chunks/images were mapped, for reports and tests
    mapped: dict[str, int] = field(default_factory=dict)

    @property
    def n_workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def map_chunks(self, function: Callable, chunks: Sequence[Any], *, weights: Sequence[int] | None = None,
                   progress: Any = True, description: str = "chunks", **common: Any) -> list[Any]:
        """`[function(chunk, **common) for chunk in chunks]` on the cluster, results in chunk order.

        Progress counts finished chunks across all workers (a tqdm bar, or a callable(done, total) over
        `weights`, e.g. images per chunk). Ctrl-C (or any error) cancels the tasks not yet finished and
        re-raises; what finished tasks wrote stays written.
        """
        from dask.distributed import as_completed
        from tqdm.auto import tqdm

        weights = list(weights) if weights is not None else [1] * len(chunks)
        total = int(sum(weights))
        report = progress if callable(progress) else None
        futures = [self.client.submit(function, chunk, **common, key=f"{description}-{uuid.uuid4().hex}",
                                      pure=False, retries=2)
                   for chunk in chunks]
        position = {future.key: index for index, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        done = 0
        if report is not None:
            report(0, total)
        try:
            with tqdm(total=len(futures), unit="chunk", desc=description, dynamic_ncols=True,
                      disable=report is not None or not progress) as bar:
                for future in as_completed(futures):
                    index = position[future.key]
                    results[index] = future.result()
                    done += weights[index]
                    bar.update(1)
                    bar.set_postfix_str(f"{done:,} of {total:,} images on {self.description}", refresh=False)
                    if report is not None:
                        report(done, total)
        except BaseException:
            self.client.cancel(futures, force=True)
            raise
        return results

    def embed_files(self, chunks: Sequence[tuple[list[str], list[str]]], extractor, *, cache_dir, size_policy: str,
                    batch_size: int, device: str = "auto", progress: Any = True) -> list[int]:
        """Each (paths, keys) chunk decoded, embedded and written to the cache as one shard by a worker."""
        return self.map_chunks(embed_chunk, chunks, weights=[len(keys) for _, keys in chunks], progress=progress,
                               description=f"embed {extractor.name}", extractor=extractor_spec(extractor),
                               cache_dir=str(cache_dir), size_policy=size_policy, batch_size=batch_size, device=device)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def scheduler_address(scheduler: str | None = None) -> str | None:
    """`--scheduler`, else `$SYNTHSCOPE_SCHEDULER`, else None."""
    return scheduler or os.environ.get(ENV_SCHEDULER) or None


def wanted(workers: int | None = None, scheduler: str | None = None) -> bool:
    """Whether the options ask for the Dask engine at all (cheap: imports nothing)."""
    return bool(workers) or scheduler_address(scheduler) is not None


def _import_distributed():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise EngineError("--workers/--scheduler need Dask: pip install 'synthscope[dask]'") from None
    import dask.distributed

    return dask.distributed


@contextlib.contextmanager
def open_engine(workers: int | None = None, scheduler: str | None = None, *, cache_dir: str | Path | None = None,
                check_cache: bool = True) -> Iterator[Engine | None]:
    """The engine the options ask for, or None (and no Dask import) when they ask for none.

    workers: start a LocalCluster of that many processes, one thread each (one extractor per core).
    scheduler: the address of a running scheduler (`tcp://host:8786`); `$SYNTHSCOPE_SCHEDULER` when None.
    Both given is an error. With `check_cache`, every worker must see and write `cache_dir` (default:
    this process's cache dir) before any work is sent.
    """
    address = scheduler_address(scheduler)
    if workers and address:
        raise EngineError(f"give --workers (start a local cluster) or --scheduler / ${ENV_SCHEDULER} "
                          f"(use a running one: {address}), not both")
    if not workers and address is None:
        yield None
        return
    if workers is not None and workers < 1:
        raise EngineError(f"--workers must be at least 1, got {workers}")
    distributed = _import_distributed()
    cluster = None
    try:
        if workers:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
            description = f"a local cluster of {workers} worker process{'es' if workers > 1 else ''}"
        else:
            try:
                client = distributed.Client(address)
            except (OSError, TimeoutError) as error:
                raise EngineError(f"no Dask scheduler answers at {address} ({error}); start one with "
                                  "`dask scheduler` or give --workers N for a local cluster") from None
            n = len(client.scheduler_info(n_workers=-1)["workers"])
            description = f"the cluster at {address} ({n} worker{'s' if n != 1 else ''} now)"
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    engine = Engine(client, cluster, description)
    try:
        if check_cache:
            check_shared_cache(engine, cache_dir)
        with use_engine(engine):
            yield engine
    finally:
        engine.close()


def check_shared_cache(engine: Engine, cache_dir: str | Path | None = None) -> None:
    """Every worker must read a marker the client wrote into the cache dir and create a file there itself:
    the cache is where workers put their results, so a worker on another filesystem, or one that may not
    write, would compute and lose its chunks. One EngineError naming each worker that fails."""
    from synthscope.outputs import atomic_write_text
    from synthscope.runtime import default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    probe_dir = root / "embeddings"
    probe_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    marker = probe_dir / f".synthscope-cluster-check-{token}"
    atomic_write_text(marker, token)
    try:
        answers = engine.client.run(_probe_cache, str(marker), token)
    finally:
        marker.unlink(missing_ok=True)
    problems = [f"{worker}: {problem}" for worker, problem in sorted(answers.items()) if problem]
    if not answers:
        raise EngineError(f"{engine.description} has no workers")
    if problems:
        raise EngineError(f"the cache dir {root} must be on a filesystem every worker sees and may write "
                          "(set --cache-dir or $SYNTHSCOPE_CACHE_DIR to a shared folder; README, 'Large "
                          "datasets'); " + "; ".join(problems))


def _probe_cache(marker: str, token: str) -> str | None:
    """On a worker: None when it reads the client's marker and can create a file beside it, else why not."""
    import tempfile

    path = Path(marker)
    try:
        if path.read_text() != token:
            return f"{path} holds something else: not the client's cache dir"
    except OSError as error:
        return f"cannot read {path} ({error.strerror or error}): not the filesystem the client writes to"
    try:
        handle, probe = tempfile.mkstemp(prefix=".synthscope-worker-check-", dir=path.parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        return f"cannot write into {path.parent} ({error.strerror or error})"
    return None


# -- the engine a computation should use ------------------------------------------------------

_ACTIVE: contextvars.ContextVar[Engine | None] = contextvars.ContextVar("synthscope_engine", default=None)


def active_engine() -> Engine | None:
    """The engine set by `use_engine` around the current computation, or None (compute in-process)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def use_engine(engine: Engine | None) -> Iterator[Engine | None]:
    token = _ACTIVE.set(engine)
    try:
        yield engine
    finally:
        _ACTIVE.reset(token)


# -- tasks that run on workers ----------------------------------------------------------------

_WORKER_EXTRACTORS: dict[Any, Any] = {}


def worker_extractor(spec: Any, device: str = "auto"):
    """On a worker: the extractor for `spec`, built once per worker process. `spec` is a registry spec
    (name, options, config_key) or an Extractor object (pickled from the client)."""
    from synthscope.features.base import Extractor

    if isinstance(spec, Extractor):
        extractor = spec
    else:
        name, options, key = spec
        cache_key = (name, tuple(options), key, device)
        extractor = _WORKER_EXTRACTORS.get(cache_key)
        if extractor is None:
            from synthscope.features import get_extractor

            extractor = get_extractor(name, **dict(options))
            if extractor.config_key() != key:
                raise EngineError(f"extractor {name!r} on this worker has configuration {extractor.config_key()}, "
                                  f"the client's is {key}: install the same synthscope and weights on every "
                                  "worker")
            _WORKER_EXTRACTORS[cache_key] = extractor
    if device != "auto" and hasattr(extractor, "set_device"):
        extractor.set_device(device)
    return extractor


def extractor_spec(extractor) -> Any:
    """What a worker needs to rebuild `extractor`: its registry spec when it came from `get_extractor`
    (small, and the worker loads its own weights), else the object itself."""
    spec = getattr(extractor, "registry_spec", None)
    if spec is not None:
        name, options = spec
        return (name, tuple(sorted(options.items())), extractor.config_key())
    return extractor


def embed_chunk(chunk: tuple[list[str], list[str]], *, extractor: Any, cache_dir: str, size_policy: str,
                batch_size: int, device: str = "auto") -> int:
    """On a worker: decode one chunk of image files, embed it batch by batch, write it to the cache as one
    shard. chunk = (paths, keys). Returns the number of rows written."""
    from synthscope.cache import EmbeddingCache, compute_batches
    from synthscope.imageio import load_images

    paths, keys = chunk
    model = worker_extractor(extractor, device)
    vectors = compute_batches(model, lambda rows: load_images([paths[i] for i in rows], size_policy, workers=1),
                              len(paths), batch_size)
    EmbeddingCache(cache_dir).add(model, keys, vectors, merge=False)
    return len(keys)
