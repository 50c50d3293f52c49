"""models.mapping.projection: PCA and t-SNE layouts, placing new codes, inverting positions."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ConfigError
from models.mapping.projection import PCAProjector, TSNEProjector


def blobs(n_per: int = 25, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = np.concatenate([rng.normal(3.0 * c, 0.3, (n_per, d)) for c in range(4)])
    return Z, np.repeat(np.arange(4), n_per)


def test_pca_matches_sklearn_and_inverts_in_plane():
    from sklearn.decomposition import PCA

    Z, _ = blobs()
    emb = PCAProjector().fit(Z)
    ref = PCA(2).fit(Z)
    # same axes up to sign
    assert np.allclose(np.abs(emb.points), np.abs(ref.transform(Z)), atol=1e-8)
    assert np.allclose(emb.transform(Z[:5]), emb.points[:5])
    # inverse of a point's position is the code's projection onto the PCA plane
    assert np.allclose(emb.inverse(emb.points[:5]), ref.inverse_transform(ref.transform(Z[:5])), atol=1e-8)


def test_pca_align_to_keeps_the_old_picture():
    Z, _ = blobs()
    old = PCAProjector().fit(Z).points
    flipped = old * np.array([-1.0, 1.0])
    emb = PCAProjector(align_to=flipped).fit(Z + 1e-3)
    assert np.abs(emb.points - flipped).max() < 0.05
    # transform and inverse stay consistent with the rotated axes
    assert np.allclose(emb.transform(Z[:3] + 1e-3), emb.points[:3])
    assert np.allclose(emb.transform(emb.inverse(emb.points[:3])), emb.points[:3])


def test_tsne_reports_partials_separates_blobs_and_places_new_points():
    Z, lab = blobs()
    seen = []
    emb = TSNEProjector(n_iter=100, early_exaggeration_iter=50, callbacks_every_iters=25).fit(
        Z, callback=lambda it, pts: seen.append((it, pts.shape))
    )
    # iteration 0 is the starting layout, reported before openTSNE runs
    assert [it for it, _ in seen] == [0, 25, 50, 75, 100, 125, 150]
    assert all(shape == (100, 2) for _, shape in seen)
    # blobs stay apart: each point's nearest neighbour on the map is of its own blob
    d = np.linalg.norm(emb.points[:, None] - emb.points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (lab[d.argmin(1)] == lab).mean() > 0.95
    # a new code of blob 2 lands nearest to blob 2's points
    new = emb.transform(Z[lab == 2][:1] + 0.01)
    nearest = np.linalg.norm(emb.points - new, axis=1).argmin()
    assert lab[nearest] == 2


def test_tsne_stops_when_asked_and_inverse_is_idw():
    Z, _ = blobs()
    calls = []
    emb = TSNEProjector(n_iter=500, callbacks_every_iters=10).fit(
        Z, callback=lambda it, pts: calls.append(it), should_stop=lambda: len(calls) >= 3
    )
    assert calls == [0, 10, 20]
    assert emb.points.shape == (100, 2)
    # on a point: its own code; between two points: a weighted mean of nearby codes
    assert np.allclose(emb.inverse(emb.points[7:8]), Z[7:8])
    mid = (emb.points[0] + emb.points[1]) / 2
    z = emb.inverse(mid[None])[0]
    _, idx = emb.nearest(mid[None], k=8)
    lo, hi = Z[idx[0]].min(0), Z[idx[0]].max(0)
    assert np.all(z >= lo - 1e-9) and np.all(z <= hi + 1e-9)


def test_tsne_init_and_restore_keep_layout():
    Z, _ = blobs()
    first = TSNEProjector(n_iter=50, early_exaggeration_iter=25).fit(Z)
    restored = TSNEProjector().restore(Z, first.points)
    assert np.array_equal(restored.points, first.points)
    assert restored.transform(Z[:2]).shape == (2, 2)
    again = TSNEProjector(n_iter=30, early_exaggeration_iter=0, init=first.points).fit(Z + 1e-3)
    # started from the old layout (rescaled), so the geometry is kept: distances correlate
    a = np.linalg.norm(first.points[:, None] - first.points[None], axis=-1).ravel()
    b = np.linalg.norm(again.points[:, None] - again.points[None], axis=-1).ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.9


def test_errors():
    with pytest.raises(ConfigError):
        TSNEProjector().fit(np.zeros((3, 2)))


def test_tsne_in_a_child_matches_in_process_and_transforms_lazily():
    """The default runs openTSNE in a child (the GUI keeps the GIL); same seed, same layout."""
    Z, lab = blobs()
    child = TSNEProjector(n_iter=60, early_exaggeration_iter=30)
    inline = TSNEProjector(n_iter=60, early_exaggeration_iter=30, isolate=False)
    assert child.isolate and not inline.isolate
    a, b = child.fit(Z), inline.fit(Z)
    assert np.allclose(a.points, b.points, atol=1e-6)
    # the child's openTSNE embedding stays pickled until a transform needs it
    assert a._tsne_obj is None and isinstance(a._state, bytes)
    new = a.transform(Z[lab == 1][:2] + 0.01)
    assert np.allclose(new, b.transform(Z[lab == 1][:2] + 0.01), atol=1e-6)
    assert a._tsne_obj is not None


def test_tsne_child_errors_and_early_stop():
    from models.errors import LatentExplorerError
    from models.mapping.tsne_job import TSNEInterrupted, run_in_child

    Z, _ = blobs()
    # a stop before the first partial layout ends the child: nothing to keep
    with pytest.raises(TSNEInterrupted):
        TSNEProjector(n_iter=500).fit(Z, callback=lambda it, pts: None, should_stop=lambda: True)
    # an error in the child reaches the caller with its message
    with pytest.raises(LatentExplorerError, match="unknown job"):
        run_in_child("nonsense", {})


def test_tsne_shows_its_start_before_openTSNE_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first partial is the PCA start, handed over before any openTSNE work (and is where it starts)."""
    from models.mapping import tsne_job
    from models.mapping.projection import tsne_start
    from models.threads import cpu_count

    Z, _ = blobs()
    events: list[str] = []
    real_fit = tsne_job.tsne_fit

    def spy_fit(X, **kw):  # noqa: ANN001, ANN003, ANN202 - a spy on the real function
        events.append("openTSNE")
        return real_fit(X, **kw)

    monkeypatch.setattr(tsne_job, "tsne_fit", spy_fit)
    first: list[np.ndarray] = []

    def cb(it: int, pts: np.ndarray) -> None:
        events.append(f"partial {it}")
        if it == 0:
            first.append(pts)

    emb = TSNEProjector(n_iter=20, early_exaggeration_iter=0, callbacks_every_iters=10, isolate=False).fit(
        Z, callback=cb)
    assert events[:2] == ["partial 0", "openTSNE"]
    start = first[0]
    # openTSNE's own pca initialisation (principal plane, std 1e-4, 1% jitter), value for value,
    # so the layout reached is the one openTSNE's own fit reaches
    import openTSNE

    assert start.shape == (100, 2) and np.std(start[:, 0]) == pytest.approx(1e-4, rel=0.01)
    np.testing.assert_allclose(start, openTSNE.initialization.pca(Z, random_state=0), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(start, tsne_start(Z))  # deterministic
    # openTSNE started from that very layout: zero iterations give it back
    again = TSNEProjector(n_iter=0, early_exaggeration_iter=0, isolate=False).fit(Z)
    np.testing.assert_allclose(again.points, start, atol=1e-12)
    # and the whole fit is openTSNE's own, point for point
    own = openTSNE.TSNE(perplexity=30.0, n_iter=20, early_exaggeration_iter=0, random_state=0,
                        neighbors="exact", n_jobs=cpu_count()).fit(Z)
    np.testing.assert_allclose(emb.points, np.asarray(own), atol=1e-9)


def test_tsne_first_partial_of_a_previous_layout_and_in_a_child() -> None:
    Z, _ = blobs()
    old = np.random.default_rng(1).normal(size=(100, 2)) * 5.0
    seen: list[tuple[int, np.ndarray]] = []
    TSNEProjector(n_iter=10, early_exaggeration_iter=0, callbacks_every_iters=10, init=old).fit(
        Z, callback=lambda it, pts: seen.append((it, pts)))
    it0, pts0 = seen[0]
    # the previous picture, only rescaled: the same shape at openTSNE's starting scale
    assert it0 == 0 and np.allclose(pts0 * (np.std(old[:, 0]) / 1e-4), old)
    assert [it for it, _ in seen] == [0, 10]
    # a stop asked right after the start is shown still ends the child cleanly
    from models.mapping.tsne_job import TSNEInterrupted

    shown: list[int] = []
    with pytest.raises(TSNEInterrupted):
        TSNEProjector(n_iter=500).fit(Z, callback=lambda it, pts: shown.append(it), should_stop=lambda: bool(shown))
    assert shown == [0]


def test_tsne_uses_every_core_by_default() -> None:
    from models.threads import cpu_count

    assert TSNEProjector().n_jobs == cpu_count()
    assert TSNEProjector(n_jobs=1).n_jobs == 1
