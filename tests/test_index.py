"""Vector indexes: the NumPy reference, the FAISS planner, and index files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from refmatch.domain.errors import InvalidInput, StaleIndex, StorageError
from refmatch.index import FaissIndex, NumpyIndex, VectorIndex, load_index, save_index
from refmatch.index import faiss_index as faiss_index_module
from refmatch.index import files as files_module


def clustered(n: int, dim: int, *, seed: int = 0, noise: float = 1.5) -> np.ndarray:
    """Normalised points around n/100 random centres: embedding-like, not trivially easy."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(10, n // 100), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)]
    x = x + noise * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sqlite_like_ids(n: int, seed: int = 0) -> np.ndarray:
    """Sparse, shuffled positive ids, as after deletions in SQLite."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(1, 3 * n + 1, 3, dtype=np.int64))


def recall_at(ref_ids: np.ndarray, got_ids: np.ndarray) -> float:
    hits = [
        len(set(r[r >= 0]) & set(g[g >= 0])) / max(1, (r >= 0).sum()) for r, g in zip(ref_ids, got_ids, strict=True)
    ]
    return float(np.mean(hits))


# ------------------------------------------------------------------ fixtures

N_SMALL, DIM_SMALL = 3000, 32
N_HNSW, DIM_HNSW = 20_000, 128


@pytest.fixture(scope="module")
def small():
    x = clustered(N_SMALL + 40, DIM_SMALL, seed=1)
    return sqlite_like_ids(N_SMALL, seed=1), x[:N_SMALL], x[N_SMALL:]


@pytest.fixture(scope="module")
def big():
    """One HNSW build (~2 s) shared by the recall tests."""
    x = clustered(N_HNSW + 100, DIM_HNSW, seed=2)
    ids, data, queries = sqlite_like_ids(N_HNSW, seed=2), x[:N_HNSW], x[N_HNSW:]
    hnsw = FaissIndex.build(ids, data, hnsw_threshold=1000)
    ref = NumpyIndex(DIM_HNSW)
    ref.add(ids, data)
    return ids, data, queries, hnsw, ref


def make(kind: str, dim: int):
    if kind == "numpy":
        return NumpyIndex(dim)
    return FaissIndex(dim, kind=kind)


KINDS = ["numpy", "flat", "hnsw"]


# ------------------------------------------------------------------ exactness and recall


def test_both_satisfy_the_protocol():
    assert isinstance(NumpyIndex(4), VectorIndex)
    assert isinstance(FaissIndex(4), VectorIndex)


@pytest.mark.parametrize("nq", [1, 40])  # per-query in place, and batch gather
@pytest.mark.parametrize("fraction", [None, 0.05, 0.6])
def test_flat_matches_numpy_exactly(small, nq, fraction):
    ids, data, queries = small
    ref = NumpyIndex(DIM_SMALL)
    ref.add(ids, data)
    flat = FaissIndex.build(ids, data)
    assert flat.kind == "flat"
    allowed = None
    if fraction is not None:
        allowed = np.random.default_rng(3).choice(ids, int(fraction * len(ids)), replace=False)
    ref_s, ref_i = ref.search(queries[:nq], 10, allowed)
    got_s, got_i = flat.search(queries[:nq], 10, allowed)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_allclose(got_s, ref_s, rtol=0, atol=1e-5)
    assert flat.last_plan == ("flat" if fraction is None else "exact-gather")
    assert got_s.dtype == np.float32 and got_i.dtype == np.int64
    assert (np.diff(got_s, axis=1) <= 0).all()


@pytest.mark.parametrize(
    ("fraction", "plans"),
    [
        (0.01, {"exact-gather"}),
        (0.10, {"exact-gather"}),
        (0.50, {"hnsw-filtered", "hnsw-filtered+exact"}),
        (1.00, {"hnsw", "hnsw+exact"}),
        (None, {"hnsw", "hnsw+exact"}),
    ],
)
def test_hnsw_recall_at_10(big, fraction, plans):
    ids, _, queries, hnsw, ref = big
    assert hnsw.kind == "hnsw"
    allowed = None
    if fraction is not None:
        rng = np.random.default_rng(4)
        allowed = rng.choice(ids, int(fraction * len(ids)), replace=False)
    _, ref_i = ref.search(queries, 10, allowed)
    _, got_i = hnsw.search(queries, 10, allowed)
    assert hnsw.last_plan in plans
    assert recall_at(ref_i, got_i) >= 0.98
    if allowed is not None:
        assert np.isin(got_i, allowed).all()


def test_hnsw_filtered_falls_back_to_exact_when_short(big, monkeypatch):
    ids, _, queries, _, ref = big
    index = FaissIndex.build(ids[:3000], big[1][:3000], hnsw_threshold=0, exact_fraction=0.0)
    monkeypatch.setattr(faiss_index_module, "_EF_OVERSAMPLE", 1e-9)  # efSearch -> 1
    allowed = ids[:3000:150]  # 20 eligible, scattered over the graph
    ref = NumpyIndex(DIM_HNSW)
    ref.add(ids[:3000], big[1][:3000])
    _, got_i = index.search(queries[:20], 10, allowed)
    _, ref_i = ref.search(queries[:20], 10, allowed)
    assert index.last_plan == "hnsw-filtered+exact"
    assert (got_i >= 0).all()
    assert recall_at(ref_i, got_i) >= 0.98


@pytest.mark.parametrize("scale", [1, 10**9])  # dense ids: direct table; sparse: binary search
def test_id_lookup_dense_and_sparse(small, scale):
    ids, data, queries = small
    ids = ids * scale
    ref, flat = NumpyIndex(DIM_SMALL), FaissIndex(DIM_SMALL)
    for index in (ref, flat):
        index.add(ids, data)
    assert (flat._map().table is None) == (scale > 1)
    rng = np.random.default_rng(5)
    picked = rng.choice(ids, 200, replace=False)
    allowed = np.concatenate([picked, picked[:50], [-7, 3 * scale + 1, 2**62]])  # repeats and strangers
    ref_s, ref_i = ref.search(queries, 10, allowed)
    got_s, got_i = flat.search(queries, 10, allowed)
    np.testing.assert_array_equal(got_i, ref_i)
    assert all(len(set(row)) == 10 for row in got_i)
    np.testing.assert_array_equal(flat.reconstruct(ids[[5, 1]]), data[[5, 1]])
    with pytest.raises(InvalidInput, match="already in the index"):
        flat.add(ids[:1], data[:1])


# ------------------------------------------------------------------ k results and padding


@pytest.mark.parametrize("kind", KINDS)
def test_k_results_whenever_k_allowed(small, kind):
    ids, data, queries = small
    index = make(kind, DIM_SMALL)
    index.add(ids, data)
    absent = np.array([2, 5, 10**9], dtype=np.int64)  # never stored
    exactly_k = np.concatenate([ids[:10], absent])
    scores, got = index.search(queries[:6], 10, exactly_k)
    assert (got >= 0).all() and np.isfinite(scores).all()
    assert {frozenset(row) for row in got} == {frozenset(ids[:10])}

    scores, got = index.search(queries[:6], 10, np.concatenate([ids[:7], absent]))
    assert (got[:, :7] >= 0).all() and (got[:, 7:] == -1).all()
    assert np.isfinite(scores[:, :7]).all() and np.isneginf(scores[:, 7:]).all()

    scores, got = index.search(queries[:3], 5, np.array([], dtype=np.int64))
    assert (got == -1).all() and np.isneginf(scores).all()
    scores, got = index.search(queries[:3], 5, absent)
    assert (got == -1).all()

    scores, got = index.search(queries[:2], len(ids) + 5)
    assert (got[:, : len(ids)] >= 0).all() and (got[:, len(ids) :] == -1).all()
    assert np.isneginf(scores[:, len(ids) :]).all()


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index_pads(kind):
    index = make(kind, 8)
    scores, got = index.search(np.ones((2, 8), dtype=np.float32), 3)
    assert got.shape == (2, 3) and (got == -1).all() and np.isneginf(scores).all()


def test_empty_allowed_makes_no_faiss_call(small):
    ids, data, queries = small
    index = FaissIndex.build(ids, data)
    _, got = index.search(queries[:1], 4, np.array([], dtype=np.int64))
    assert index.last_plan == "empty" and (got == -1).all()


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("kind", KINDS)
def test_rejects_bad_input(kind):
    index = make(kind, 4)
    vecs = np.eye(4, dtype=np.float32)
    index.add(np.array([1, 2, 3, 4]), vecs)
    with pytest.raises(InvalidInput, match="already in the index"):
        index.add(np.array([9, 3]), vecs[:2])
    with pytest.raises(InvalidInput, match="duplicate ids within the call"):
        index.add(np.array([7, 7]), vecs[:2])
    with pytest.raises(InvalidInput, match=r"shape \(n, 4\)"):
        index.add(np.array([8]), np.ones((1, 5), dtype=np.float32))
    with pytest.raises(InvalidInput, match=r"shape \(nq, 4\)"):
        index.search(np.ones((1, 3), dtype=np.float32), 2)
    with pytest.raises(InvalidInput, match="k must be"):
        index.search(vecs[:1], 0)
    with pytest.raises(InvalidInput, match=">= 0"):
        index.add(np.array([-1]), vecs[:1])
    with pytest.raises(InvalidInput, match="integers"):
        index.add(np.array([1.5]), vecs[:1])
    with pytest.raises(InvalidInput, match="NaN"):
        index.add(np.array([11]), np.full((1, 4), np.nan, dtype=np.float32))
    assert len(index) == 4  # nothing half-added


# ------------------------------------------------------------------ remove, reconstruct, views


@pytest.mark.parametrize("kind", KINDS)
def test_remove_then_search_never_returns_removed(small, kind):
    ids, data, queries = small
    index = make(kind, DIM_SMALL)
    index.add(ids, data)
    gone = ids[::2]
    assert index.remove(np.concatenate([gone, [10**9]])) == len(gone)
    assert index.remove(gone) == 0
    assert len(index) == len(ids) - len(gone)
    assert set(index.ids().tolist()) == set(ids[1::2].tolist())
    if kind != "numpy":
        assert index.kind == kind
    for allowed in (None, ids[:300], ids[: len(ids) // 2 + 200]):
        _, got = index.search(queries, 10, allowed)
        assert not np.isin(got, gone).any()
        assert (got >= 0).all()
    with pytest.raises(InvalidInput):
        index.reconstruct(gone[:1])
    index.add(gone[:5], data[::2][:5])  # ids can come back
    np.testing.assert_array_equal(index.reconstruct(gone[:5]), data[::2][:5])


@pytest.mark.parametrize("kind", KINDS)
def test_reconstruct(small, kind):
    ids, data, _ = small
    index = make(kind, DIM_SMALL)
    index.add(ids, data)
    order = np.array([17, 3, 2999, 0])
    np.testing.assert_array_equal(index.reconstruct(ids[order]), data[order])
    with pytest.raises(InvalidInput, match="123456789"):
        index.reconstruct(np.array([ids[0], 123456789]))


def test_vectors_view_is_zero_copy_and_read_only(small):
    ids, data, _ = small
    index = FaissIndex.build(ids, data)
    view_ids, matrix = index.vectors_view()
    assert matrix.shape == (len(ids), DIM_SMALL) and not matrix.flags.owndata
    assert not matrix.flags.writeable
    np.testing.assert_array_equal(view_ids, ids)
    np.testing.assert_array_equal(matrix, data)


def test_build_picks_kind_and_add_keeps_it(small):
    ids, data, _ = small
    assert FaissIndex.build(ids, data, hnsw_threshold=len(ids)).kind == "flat"
    assert FaissIndex.build(ids[:50], data[:50], kind="hnsw").kind == "hnsw"
    index = FaissIndex.build(ids[:100], data[:100], hnsw_threshold=200)
    index.add(ids[100:], data[100:])
    assert index.kind == "flat" and len(index) == len(ids)
    hnsw = FaissIndex.build(ids[:100], data[:100], hnsw_threshold=10)
    hnsw.add(ids[100:300], data[100:300])
    assert hnsw.kind == "hnsw" and len(hnsw) == 300


# ------------------------------------------------------------------ files


@pytest.mark.parametrize("threshold", [10**6, 100])
def test_save_load_roundtrip(tmp_path, small, threshold):
    ids, data, queries = small
    index = FaissIndex.build(ids, data, hnsw_threshold=threshold, ef_search=80)
    path = save_index(index, tmp_path, "advocates", {"model": "fake", "data_version": 7})
    assert path == tmp_path / "advocates.faiss"
    loaded, manifest = load_index(tmp_path, "advocates")
    assert manifest["model"] == "fake" and manifest["data_version"] == 7
    assert (manifest["kind"], manifest["dim"], manifest["count"]) == (index.kind, DIM_SMALL, len(ids))
    assert manifest["faiss_version"] == faiss.__version__
    assert loaded.kind == index.kind and loaded.ef_search == 80
    for allowed in (None, ids[:50]):
        np.testing.assert_array_equal(loaded.search(queries, 10, allowed)[1], index.search(queries, 10, allowed)[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["advocates.faiss", "advocates.manifest.json"]


@pytest.mark.parametrize("threshold", [10**6, 100])
def test_memory_mapped_load_reads_the_same_and_refuses_changes(tmp_path, small, threshold):
    ids, data, queries = small
    index = FaissIndex.build(ids, data, hnsw_threshold=threshold)
    save_index(index, tmp_path, "advocates", {})
    mapped, _ = load_index(tmp_path, "advocates", mmap=True)
    assert mapped.read_only and not load_index(tmp_path, "advocates")[0].read_only
    np.testing.assert_array_equal(mapped.reconstruct(ids[:20]), index.reconstruct(ids[:20]))
    for allowed in (None, ids[:50]):
        np.testing.assert_array_equal(mapped.search(queries, 10, allowed)[1], index.search(queries, 10, allowed)[1])
    with pytest.raises(InvalidInput, match="read-only"):
        mapped.add(np.array([10**6]), data[:1])
    with pytest.raises(InvalidInput, match="read-only"):
        mapped.remove(ids[:1])

    # a save replaces the file; the mapping keeps reading the vectors it was made from
    before = mapped.reconstruct(ids[:5])
    save_index(FaissIndex.build(ids, data[::-1].copy(), hnsw_threshold=threshold), tmp_path, "advocates", {})
    np.testing.assert_array_equal(mapped.reconstruct(ids[:5]), before)
    assert not np.array_equal(load_index(tmp_path, "advocates", mmap=True)[0].reconstruct(ids[:5]), before)


def test_load_refuses_missing_and_mismatched(tmp_path, small):
    ids, data, _ = small
    with pytest.raises(StaleIndex, match="missing"):
        load_index(tmp_path, "advocates")
    save_index(FaissIndex.build(ids, data), tmp_path, "advocates", {})
    manifest_path = tmp_path / "advocates.manifest.json"
    good = json.loads(manifest_path.read_text())

    manifest_path.write_text(json.dumps({**good, "count": 5}))
    with pytest.raises(StaleIndex, match="count=5"):
        load_index(tmp_path, "advocates")
    manifest_path.write_text("{not json")
    with pytest.raises(StaleIndex, match="unreadable manifest"):
        load_index(tmp_path, "advocates")
    manifest_path.write_text(json.dumps(good))
    with open(tmp_path / "advocates.faiss", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00garbage")
    with pytest.raises(StaleIndex, match="checksum"):
        load_index(tmp_path, "advocates")
    with pytest.raises(InvalidInput):
        save_index(FaissIndex(4), tmp_path, "../escape", {})


def _old_pair(tmp_path: Path, small):
    ids, data, queries = small
    old = FaissIndex.build(ids[:1000], data[:1000])
    save_index(old, tmp_path, "advocates", {"data_version": 1})
    new = FaissIndex.build(ids, data)
    return old, new, queries


def _assert_old_pair_loads(tmp_path: Path, old: FaissIndex, queries: np.ndarray) -> None:
    loaded, manifest = load_index(tmp_path, "advocates")
    assert manifest["data_version"] == 1 and len(loaded) == 1000
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], old.search(queries, 5)[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["advocates.faiss", "advocates.manifest.json"]


def test_crash_while_writing_index_keeps_old_pair(tmp_path, small, monkeypatch):
    old, new, queries = _old_pair(tmp_path, small)

    def torn_write(index, path):
        with open(path, "wb") as fh:
            fh.write(b"IxM2" + b"\x00" * 4096)  # a partial file, then the "crash"
        raise OSError("disk full")

    import faiss

    monkeypatch.setattr(faiss, "write_index", torn_write)
    with pytest.raises(StorageError, match="disk full"):
        save_index(new, tmp_path, "advocates", {"data_version": 2})
    _assert_old_pair_loads(tmp_path, old, queries)


def test_crash_before_rename_keeps_old_pair(tmp_path, small, monkeypatch):
    old, new, queries = _old_pair(tmp_path, small)

    def no_rename(src, dst):
        raise OSError("crash before rename")

    monkeypatch.setattr(files_module.os, "replace", no_rename)
    with pytest.raises(StorageError, match="crash before rename"):
        save_index(new, tmp_path, "advocates", {"data_version": 2})
    monkeypatch.undo()
    _assert_old_pair_loads(tmp_path, old, queries)


def test_crash_between_renames_is_detected(tmp_path, small, monkeypatch):
    _, new, _ = _old_pair(tmp_path, small)
    real_replace = os.replace
    calls = []

    def replace_once(src, dst):
        calls.append(dst)
        if len(calls) > 1:
            raise OSError("crash between renames")
        real_replace(src, dst)

    monkeypatch.setattr(files_module.os, "replace", replace_once)
    with pytest.raises(StorageError, match="between renames"):
        save_index(new, tmp_path, "advocates", {"data_version": 2})
    monkeypatch.undo()
    with pytest.raises(StaleIndex, match="checksum"):
        load_index(tmp_path, "advocates")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["advocates.faiss", "advocates.manifest.json"]
    save_index(new, tmp_path, "advocates", {"data_version": 2})  # a rerun heals it
    assert load_index(tmp_path, "advocates")[1]["data_version"] == 2
