"""Patch-level memorisation: how close a real image's local patches are to patches of the generated set.

A diffusion model trained long on few images recombines *parts* of its training slices more often than it
reproduces whole slices, so whole-image distances miss much of the trace. `patch_copy_score` compares
every body patch of a real image with the generated images' patches at the same or an adjacent grid
location and averages the nearest distances. It uses no other real image and no reference set, so an
image's score does not depend on how the other real images were sampled. On bench v3 (chosen on dev,
16 px patches at 128 px won a small grid): dev AUC 0.995, test 0.991, where whole-image scores reach
0.83-0.91 on dev.

Invariance: generators are trained with flips, so every generated image is matched in both orientations
(`mirror=True`): the score of a real image is the same whether a generated image or its mirror image is in
the set. Small shifts are absorbed by the location window (+/- one grid step of 8 px at 128 px); a shift
moves a patch's content by less than half a patch only up to 4 px at 128 px (8 px at 256 px).

Scale: both searches are map-reduces over chunks of the generated images, each real patch keeping a running
minimum, so memory is bounded by the chunk sizes and the real images, not by the number of generated images.
Up to `APPROX_PATCH_PAIRS` patch comparisons the search is exact (chunks of `CHUNK` images). Above it, faiss:
per equal chunk of at most `APPROX_CHUNK` images (uint8 at 128 px in both orientations, held as 8 px tiles), one
inverted file (8-bit scalar codes of `DIM` principal axes) holds each patch once, in the list (grid place, nearest
of `N_LISTS` centroids); a real body patch probes its `N_PROBE` nearest centroids' lists at every place of its
window, and its `REFINE` best candidates' exact distances are recomputed from their raw grey levels. The real
images are read once, a chunk at a time, like the generated ones (either side may be an `ImageRows`). Each distance
found is an actual candidate's, so a score is never below the exact one (beyond float32 rounding); it is above
where the nearest patch is missed: on v3's test folder (forced) by at most 0.0155, 0.006 on average, rank
correlation 0.999 (v3s: 0.016, 0.0065, 0.999), test AUC unchanged (32 axes: 0.014 / 0.0054 and 0.015 / 0.0059;
24 re-ranked candidates instead of 32 cost v3 one AUC pair), and a run led by this column makes the same calls
on both (`tests/test_membership_streaming.py` holds the scores to 0.02). An exact search is out of reach at
scale: 10k generated x 4k real images are 1.5e11 patch pairs, 7.6e13 flops at 256 dimensions (~13 CPU min of
sgemm at ~100 GFLOP/s per core here), and even at 32 principal axes the top-k reduction over 1.5e11 distances
costs more than the faiss scan. Measured at 10k generated x 4k real stand-ins (CPU seconds, rendering
excluded; `make bench`'s cell, one search thread at load 7 on 2 cores): 61 s (before the threads, the einsum re-rank
and the uniform codes: 85-92 s), of which the faiss list scan is ~37 s (it scans ~15k codes per real patch: at a
grid place the patches crowd a third of the shared centroids, whose lists hold ~60 patches on average but the
crowded ones thousands), the centroid assignment ~6 s and the re-rank ~10 s; peak RSS 1.03 GB. Of those, ~56 s
(projection, assignment, scan, re-rank) run on every core when the machine is not busy and ~10 s (reading and
downsampling, the body mask, the principal axes and k-means) on one, so on 2 idle cores the cell should take about
10 + 56 / 2 + the decoding (the stand-ins' rendering: 12 s) = ~50 s of wall time (an estimate: every measurement
here ran on a busy machine).

`patch_distances(..., reference=...)` returns the same statistic against any image set; against real
images disjoint from the scored scans it is the score's generator-free control.
"""

from __future__ import annotations

import numpy as np


#: working resolution, patch side and stride (pixels at that resolution), search radius in grid steps, and
#: the grey-level std (0..1) below which a patch counts as flat background and is left out
PATCH_SIZE, PATCH, PATCH_STRIDE, PATCH_NEIGHBOURS, BODY_STD = 128, 16, 8, 1, 0.05
#: images per chunk when cutting patches (bounds memory: 256 images x 225 patches x 256 floats = 59 MB)
CHUNK = 256
#: real patches x candidate patches beyond which the nearest-patch search is approximate (faiss)
APPROX_PATCH_PAIRS = 5e10
#: generated images per chunk of the approximate search (uint8 at 128 px in 2 orientations: 10,240 x 32 KB = 335 MB,
#: and its inverted file, 10,240 x 2 x 225 patches x 32 bytes = 147 MB); the images are cut in equal chunks
APPROX_CHUNK = 10_240
#: approximate search: centroids per grid place, the centroids' lists probed at each place of a window, and the
#: candidates per real patch whose exact distances are computed
N_LISTS, N_PROBE, REFINE = 1024, 8, 32
#: principal axes of the codes searched (24 vs 32: ~25 % less to scan and to project; on v3 / v3s max score
#: difference 0.0155 / 0.016 vs 0.014 / 0.015, test AUC unchanged), and real patches searched and re-ranked at a
#: time (bounds the candidates' grey levels in memory: 2,048 x REFINE x 256 float32 = 67 MB)
DIM, QUERY_BLOCK = 24, 2048


def _grid_raw(images: np.ndarray, size: int, patch: int, stride: int):
    """Grey-level patches (0..1) [n, L, patch*patch] on the grid, and the grid side."""
    from synthscope.membership.neighbours import downsampled_pixels

    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images [n, H, W], got {images.dtype} {images.shape}")
    if patch > size or stride < 1:
        raise ValueError("need patch <= size and stride >= 1")
    x = downsampled_pixels(images, size).reshape(len(images), size, size)
    starts = range(0, size - patch + 1, stride)
    return np.stack([x[:, i:i + patch, j:j + patch].reshape(len(x), -1) for i in starts for j in starts], axis=1), \
        len(starts)


def _grid_patches(images: np.ndarray, size: int, patch: int, stride: int):
    """Unit-norm (standardised) patches [n, L, patch*patch], their grey-level std [n, L], and the grid side."""
    p, side = _grid_raw(images, size, patch, stride)
    std = p.std(axis=-1)
    unit = (p - p.mean(axis=-1, keepdims=True)) / np.maximum(std[..., None], 1e-3) / patch
    return unit.astype(np.float32), std, side


def _windows(side: int, neighbours: int) -> list[np.ndarray]:
    """Per grid location, the locations within `neighbours` steps (the candidates' places)."""
    out = []
    for loc in range(side * side):
        i, j = divmod(loc, side)
        out.append(np.array([a * side + b for a in range(max(0, i - neighbours), min(side, i + neighbours + 1))
                             for b in range(max(0, j - neighbours), min(side, j + neighbours + 1))]))
    return out


def _oriented(images: np.ndarray, mirror: bool) -> np.ndarray:
    return np.concatenate([images, images[:, :, ::-1]]) if mirror else images


def _exact_nearest(real: np.ndarray, reference: np.ndarray, windows, size, patch, stride, mirror,
                   chunk: int) -> np.ndarray:
    """Squared nearest distance per real patch [n_real, L]: a running minimum over chunks of the reference."""
    best = np.full(real.shape[:2], np.inf, dtype=np.float32)
    real_sq = np.einsum("nld,nld->nl", real, real)
    for start in range(0, len(reference), chunk):
        ref, _, _ = _grid_patches(_oriented(reference[start:start + chunk], mirror), size, patch, stride)
        ref_sq = np.einsum("nld,nld->nl", ref, ref)
        for loc, window in enumerate(windows):
            cand = ref[:, window].reshape(-1, ref.shape[-1])
            cand_sq = ref_sq[:, window].ravel()
            d2 = cand_sq[None, :] - 2.0 * (real[:, loc] @ cand.T)
            np.minimum(best[:, loc], d2.min(axis=1) + real_sq[:, loc], out=best[:, loc])
    return best


def _unit_patches(block: np.ndarray, patch: int) -> np.ndarray:
    """Unit-norm patches [n, patch*patch] of uint8 blocks [n, patch, patch] (as `_grid_patches` standardises)."""
    p = block.reshape(len(block), patch * patch).astype(np.float32) / 255
    std = p.std(axis=1, keepdims=True)
    return (p - p.mean(axis=1, keepdims=True)) / np.maximum(std, 1e-3) / patch


def _position_patches(images128: np.ndarray, top: int, left: int, patch: int, mirror: bool) -> np.ndarray:
    """Unit-norm patches of uint8 images at one grid place [n (x2 with the mirror images), patch*patch]; the
    mirror image's patch at this place is the flipped patch at the mirrored place of the original."""
    out = [_unit_patches(images128[:, top:top + patch, left:left + patch], patch)]
    if mirror:
        size = images128.shape[2]
        mirrored_left = size - patch - left
        out.append(_unit_patches(images128[:, top:top + patch, mirrored_left:mirrored_left + patch][:, :, ::-1], patch))
    return np.concatenate(out)


def _working(images, rows: np.ndarray, size: int, chunk: int, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 images at the working resolution [len(rows), size, size] (into `out` when given), decoded `chunk` rows
    at a time (block means of whole-factor downsampling in integers, rounded half up; other sizes through
    `downsampled_pixels`)."""
    from synthscope.membership.neighbours import downsampled_pixels

    out = np.empty((len(rows), size, size), dtype=np.uint8) if out is None else out
    for s in range(0, len(rows), chunk):
        block = np.asarray(images[rows[s:s + chunk]])
        n, height, width = block.shape
        if height % size == 0 and width % size == 0:
            fh, fw = height // size, width // size
            # the block's fh x fw strided views added (a reduction over the small axes was 5x slower)
            total = np.zeros((n, size, size), dtype=np.uint16 if fh * fw * 255 < 2 ** 16 else np.uint32)
            for i in range(fh):
                for j in range(fw):
                    total += block[:, i::fh, j::fw]
            out[s:s + chunk] = (2 * total.astype(np.uint32) + fh * fw) // (2 * fh * fw)
        else:
            out[s:s + chunk] = np.rint(downsampled_pixels(block, size) * 255).astype(np.uint8).reshape(-1, size, size)
    return out


def _raw_projection(raw: np.ndarray, axes: np.ndarray, patch: int):
    """Projections on `axes` of the unit-norm patches of uint8 patches `raw` [n, patch*patch] (computed from the raw
    grey levels: (raw @ axes / 255 - mean * sum(axes)) / (std' * patch), std' = max(std, 1e-3)), with each patch's
    mean and std' (0..1) and its unit patch's squared norm (1, or less for a flat patch)."""
    f = raw.astype(np.float32)
    d = f.shape[1]
    # integer sums: exact (in float32 while d * 255^2 < 2^24, i.e. up to 16 x 16 patches), so the variance of a
    # near-flat patch does not cancel to a smaller one
    exact32 = d * 255 ** 2 < 2 ** 24
    total = f.sum(axis=1, dtype=np.float32 if exact32 else np.float64).astype(np.float64)
    squares = np.einsum("nd,nd->n", f, f, dtype=np.float32 if exact32 else np.float64).astype(np.float64)
    mean = (total / (d * 255)).astype(np.float32)
    var = (d * squares - total ** 2) / (d * d * 255.0 ** 2)
    std = np.sqrt(np.maximum(var, 0)).astype(np.float32)
    clipped = np.maximum(std, 1e-3)
    x = (f @ axes / 255 - mean[:, None] * axes.sum(axis=0)) / (clipped[:, None] * patch)
    return np.ascontiguousarray(x, dtype=np.float32), mean, clipped, (std / clipped) ** 2


def _approx_nearest(real_images, reference, windows, size, patch, stride, mirror, chunk, query, *,
                    generated_chunk=None, n_lists=None, n_probe=None, refine=None, dim=None,
                    seed=0) -> np.ndarray:
    """Squared nearest distance per real patch [n_real, L] with faiss, for the patches where `query` [n_real, L]
    is True (inf elsewhere).

    A map-reduce over equal chunks of at most `generated_chunk` reference images, each held at the working
    resolution as uint8 in both orientations. Per chunk, one inverted file holds every patch of the chunk once,
    projected on the `dim` first principal axes, in the list (grid place, nearest of `n_lists` centroids); a real
    patch at a location probes its `n_probe` nearest centroids' lists at every place of the location's window, and
    the exact distances of the `refine` candidates found update a running minimum per real patch. One projection
    and one k-means (over patches of reference images sampled across the set) serve every place, so each patch is
    projected and assigned once per chunk, from its raw grey levels (`_raw_projection`); a candidate's exact
    distance is one product of its raw grey levels (gathered as whole tiles) with the real unit patch, centred
    through the patch's mean. Memory: the real images and one reference chunk at the working resolution (16 KB per
    image and orientation) and its index (~7 KB per image and orientation), and the candidates of `QUERY_BLOCK` real
    patches per thread, not the number of reference images. Threads (`runtime.choose_threads`: every core, one on a
    busy machine): the places are projected and assigned, and the locations searched, one per thread (each with one
    OpenMP and BLAS thread; numpy and faiss release the GIL); a location writes only its own column, so the distances
    do not depend on the number of threads."""
    from concurrent.futures import ThreadPoolExecutor

    import faiss
    from threadpoolctl import threadpool_limits

    from synthscope.runtime import choose_threads

    threads = choose_threads()                    # threads on a busy machine mostly wait for each other
    faiss.omp_set_num_threads(threads)            # (k-means); below, one OpenMP and BLAS thread per worker thread
    generated_chunk = generated_chunk or APPROX_CHUNK
    n_lists, n_probe, refine, dim = (N_LISTS if n_lists is None else n_lists, N_PROBE if n_probe is None else n_probe,
                                     REFINE if refine is None else refine, DIM if dim is None else dim)
    side = int(round(np.sqrt(len(windows))))
    n_places = side * side
    starts = np.arange(0, size - patch + 1, stride)
    real128 = real_images if isinstance(real_images, np.ndarray) and real_images.dtype == np.uint8 \
        and real_images.shape[1:] == (size, size) \
        else _working(real_images, np.arange(len(real_images)), size, chunk)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(reference), min(len(reference), 2000), replace=False))
    picked128 = _working(reference, picked, size, chunk)
    sample = np.concatenate([_position_patches(picked128, top, left, patch, mirror)
                             for top in starts[::4] for left in starts[::4]])
    sample = sample[rng.choice(len(sample), min(len(sample), 50_000), replace=False)]
    del picked128
    _, vectors = np.linalg.eigh(sample.T.astype(np.float64) @ sample)       # principal axes, largest last
    axes = np.ascontiguousarray(vectors[:, ::-1][:, :min(dim, sample.shape[1])], dtype=np.float32)
    sample = np.ascontiguousarray(sample @ axes)
    kmeans = faiss.Kmeans(axes.shape[1], max(1, min(n_lists, len(sample) // 39)), niter=10, seed=seed,
                          verbose=False)
    kmeans.train(sample)
    quantizer = faiss.IndexFlatL2(kmeans.d)
    quantizer.add(kmeans.centroids)
    # 8 bits per axis, one range for all axes (a quarter of the bytes to scan; candidates re-ranked; the per-axis
    # ranges of QT_8bit cost the scan 20 % more here for the same candidates)
    codec = faiss.ScalarQuantizer(kmeans.d, faiss.ScalarQuantizer.QT_8bit_uniform)
    codec.train(sample)
    del sample
    k = kmeans.k
    probes = min(n_probe, k)
    # the window's places, padded with -1 (no list) where a window is cut by the image border
    width = max(len(w) for w in windows)
    padded = np.full((len(windows), width), -1, dtype=np.int64)
    for loc, window in enumerate(windows):
        padded[loc, :len(window)] = window
    best = np.full((len(real_images), n_places), np.inf, dtype=np.float32)
    assigned: dict[int, tuple] = {}                   # location -> its real patches' order and centroids (the same
                                                      # every chunk; 4 + 2 x probes bytes a patch)

    def real_patches(loc):
        rows = np.flatnonzero(query[:, loc])
        top, left = starts[loc // side], starts[loc % side]
        q = _unit_patches(real128[:, top:top + patch, left:left + patch][rows], patch)
        projected = np.ascontiguousarray(q @ axes)
        if loc not in assigned:
            lists = quantizer.search(projected, probes)[1]
            order = np.lexsort(lists.T[::-1])         # queries probing the same lists one after the other (cache)
            assigned[loc] = order.astype(np.int32), lists[order].astype(np.int16 if k < 2 ** 15 else np.int64)
        order, lists = assigned[loc]
        places = padded[loc]
        window_lists = np.where(places[None, :, None] >= 0, places[None, :, None] * k + lists[:, None, :].astype(np.int64),
                                -1).reshape(len(rows), -1)
        q = q[order]
        no_distances = np.zeros(window_lists.shape, dtype=np.float32)   # coarse distances: unused (no residuals)
        return rows[order], q, np.einsum("nd,nd->n", q, q), np.ascontiguousarray(projected[order]), window_lists, \
            no_distances

    # each chunk is held as tiles (stride-aligned squares of side t, contiguous): a patch on the grid is r x r whole
    # tiles, so a candidate's grey levels are r^2 contiguous runs to gather, in "tile order" (`perm`: tile order ->
    # the patch's row-major pixels; the axes and the real patches are permuted alike, dot products are unchanged)
    t = int(np.gcd.reduce([patch, stride, size]))
    r, tiles_side = patch // t, size // t
    a, b, u, v = np.meshgrid(*[np.arange(r)] * 2, *[np.arange(t)] * 2, indexing="ij")
    perm = ((a * t + u) * patch + b * t + v).ravel()
    axes_t = np.ascontiguousarray(axes[perm])
    place_tiles = np.array([[(starts[place // side] // t + i) * tiles_side + starts[place % side] // t + j
                             for i in range(r) for j in range(r)] for place in range(n_places)])

    def as_tiles(images):
        m = len(images)
        return images.reshape(m, tiles_side, t, tiles_side, t).transpose(0, 1, 3, 2, 4).reshape(m, -1, t * t)

    n_chunks = -(-len(reference) // generated_chunk)
    bounds = np.linspace(0, len(reference), n_chunks + 1).round().astype(int)
    # places are projected and locations searched on `threads` threads (numpy and faiss release the GIL)
    with ThreadPoolExecutor(threads, initializer=faiss.omp_set_num_threads, initargs=(1,)) as pool, \
            threadpool_limits(1, user_api="blas"):
        for g0, g1 in zip(bounds[:-1], bounds[1:]):
            n = int((1 + mirror) * (g1 - g0))
            tiles = np.empty((n, tiles_side * tiles_side, t * t), dtype=np.uint8)
            for s0 in range(g0, g1, chunk):
                block = _working(reference, np.arange(s0, min(s0 + chunk, g1)), size, chunk)
                tiles[s0 - g0:s0 - g0 + len(block)] = as_tiles(block)
                if mirror:
                    tiles[g1 - g0 + s0 - g0:g1 - g0 + s0 - g0 + len(block)] = as_tiles(block[:, :, ::-1])
            flat_tiles = tiles.reshape(-1, t * t)
            index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(kmeans.d), kmeans.d, n_places * k,
                                                  faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_L2,
                                                  False)
            index.sq = codec
            index.is_trained = True
            stats = np.empty((3, n_places, n), dtype=np.float32)  # per place and image: mean, std', |unit|^2

            def project(place):
                raw = tiles[:, place_tiles[place]].reshape(n, -1)
                x, *stats_place = _raw_projection(raw, axes_t, patch)
                stats[:, place] = stats_place
                return x, np.ascontiguousarray(quantizer.search(x, 1)[1][:, 0] + place * k)

            for p0 in range(0, n_places, 4 * threads):   # added in place order (ids place * n + image), a few
                for x, lists in pool.map(project, range(p0, min(p0 + 4 * threads, n_places))):   # places in flight
                    index.add_core(n, faiss.swig_ptr(x), None, faiss.swig_ptr(lists))
            index.nprobe = width * probes

            def search(loc):
                rows, q, q_sq, projected, lists, distances = real_patches(loc)
                q_sum = q.sum(axis=1)
                q = q[:, perm]
                for b0 in range(0, len(rows), QUERY_BLOCK):   # bounds the candidates' pixels: block x refine x d
                    b = slice(b0, b0 + QUERY_BLOCK)
                    _, found = index.search_preassigned(projected[b], refine, lists[b], distances[b])
                    missing = found < 0                   # fewer candidates than `refine` in the lists probed
                    place, image = np.divmod(np.where(missing, 0, found), n)
                    mean, std, unit_sq = stats[:, place, image]
                    which = image[..., None] * tiles.shape[1] + place_tiles[place]
                    cand = np.take(flat_tiles, which.ravel(), axis=0).reshape(*found.shape, -1)
                    # the candidate's unit patch . q = (raw - 255 mean) . q / (255 patch std'), by one product of the
                    # raw grey levels (exact integers in float32) and the sum of q (not exactly 0 in float32); einsum
                    # casts the uint8 levels a buffer at a time (2.4x faster than a float32 copy and a batched matmul)
                    raw_dot = np.einsum("nkd,nd->nk", cand, q[b], dtype=np.float32, casting="unsafe")
                    dot = (raw_dot - 255 * mean * q_sum[b, None]) / (255 * patch * std)
                    d2 = np.where(missing, np.inf, q_sq[b, None] + unit_sq - 2.0 * dot)
                    best[rows[b], loc] = np.minimum(best[rows[b], loc], d2.min(axis=1))   # one column per location

            # locations are independent (each writes its own column of `best`): one per thread
            list(pool.map(search, [loc for loc in range(n_places) if query[:, loc].any()]))
            del index, tiles, flat_tiles, stats           # before the next chunk's are made
    return best


def patch_pairs(n_real: int, n_reference: int, *, size: int = PATCH_SIZE, patch: int = PATCH,
                stride: int = PATCH_STRIDE, neighbours: int = PATCH_NEIGHBOURS, mirror: bool = True) -> float:
    """Patch comparisons of an exact search: real patches x the candidates in their windows (what `method="auto"`
    compares with APPROX_PATCH_PAIRS)."""
    side = len(range(0, size - patch + 1, stride))
    windows = _windows(side, neighbours)
    return float((n_real * side * side) * (n_reference * (1 + mirror) * np.mean([len(w) for w in windows])))


def patch_distances(real_images: np.ndarray, reference: np.ndarray, *, size: int = PATCH_SIZE,
                    patch: int = PATCH, stride: int = PATCH_STRIDE, neighbours: int = PATCH_NEIGHBOURS,
                    body_std: float = BODY_STD, mirror: bool = True, chunk: int = CHUNK,
                    method: str = "auto") -> np.ndarray:
    """Mean over each real image's body patches of the distance to the nearest patch of `reference`
    (any image, either orientation when `mirror`, at grid locations within `neighbours` steps) [n_real].
    Patches are standardised, so the distance ignores local brightness and contrast (0 = same pattern,
    sqrt(2) = uncorrelated). `method`: "exact", "approx" (faiss) or "auto" (approx above APPROX_PATCH_PAIRS)."""
    from synthscope.membership.rows import ImageRows

    # ImageRows (either side): decoded a chunk at a time as the search slices it, never all at once
    real_images = real_images if isinstance(real_images, ImageRows) else np.asarray(real_images)
    if not isinstance(reference, ImageRows):
        reference = np.asarray(reference)
    if method not in ("auto", "exact", "approx"):
        raise ValueError("method must be auto, exact or approx")
    if len(reference) == 0 or len(real_images) == 0:
        raise ValueError("patch distances need at least one real and one reference image")
    side = len(range(0, size - patch + 1, stride))
    windows = _windows(side, neighbours)
    n_pairs = patch_pairs(len(real_images), len(reference), size=size, patch=patch, stride=stride,
                          neighbours=neighbours, mirror=mirror)
    approx = method == "approx" or (method == "auto" and n_pairs > APPROX_PATCH_PAIRS)
    out = np.empty(len(real_images), dtype=np.float64)
    if approx:                                  # only the body patches are searched; one read of the real images
        body, real_working = [], np.empty((len(real_images), size, size), dtype=np.uint8)
        for s in range(0, len(real_images), chunk):
            block = np.asarray(real_images[s:s + chunk])
            body.append(_body(_grid_raw(block, size, patch, stride)[0].std(axis=-1), body_std))
            _working(block, np.arange(len(block)), size, chunk, out=real_working[s:s + chunk])
        body = np.concatenate(body)
        best = _approx_nearest(real_working, reference, windows, size, patch, stride, mirror, chunk, body)
        distance = np.sqrt(np.maximum(np.where(body, best, 0.0), 0.0))
        return (distance * body).sum(axis=1) / body.sum(axis=1)
    for start in range(0, len(real_images), chunk):
        real, real_std, _ = _grid_patches(real_images[start:start + chunk], size, patch, stride)
        best = _exact_nearest(real, reference, windows, size, patch, stride, mirror, chunk)
        distance = np.sqrt(np.maximum(best, 0.0))
        body = _body(real_std, body_std)
        out[start:start + chunk] = (distance * body).sum(axis=1) / body.sum(axis=1)
    return out


def _body(real_std: np.ndarray, body_std: float) -> np.ndarray:
    """The patches an image's score averages [n, L]: textured ones, or every patch of an image without texture."""
    body = real_std > body_std
    body[~body.any(axis=1)] = True
    return body


def patch_copy_score(real_images: np.ndarray, gen_images: np.ndarray, **options) -> np.ndarray:
    """Minus `patch_distances` to the generated images: higher = more of the image's local patterns are in
    the generated set = more likely used for training."""
    return -patch_distances(real_images, gen_images, **options)
