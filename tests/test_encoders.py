"""Encoder backends: torch (the reference) and the same model on ONNX Runtime, exported once and cached.

The fast tests check the settings, the names vectors go by and a damaged cache. The
e2e-marked ones export the real model into a temporary cache and hold ONNX to torch.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from refmatch.app.service import Service
from refmatch.cli import cli
from refmatch.config import load_settings
from refmatch.domain.errors import ConfigError
from refmatch.embed.backends import encoder_name, make_encoder
from refmatch.embed.onnx import MIN_COSINE, OnnxEncoder, export, export_folder
from refmatch.embed.st import SentenceTransformerEncoder
from tests import e2e_demo


def test_backend_is_checked_with_the_setting_named():
    with pytest.raises(ConfigError, match="REFMATCH_ENCODER_BACKEND: must be one of torch, onnx, onnx-int8"):
        load_settings({"encoder_backend": "tensorrt"})
    with pytest.raises(ConfigError, match="runs on the CPU only; use torch for REFMATCH_DEVICE=cuda"):
        load_settings({"encoder_backend": "onnx", "device": "cuda"})
    assert load_settings({}, env={"REFMATCH_ENCODER_BACKEND": "onnx"}).encoder_backend == "onnx"


def test_only_int8_vectors_go_by_another_name():
    assert encoder_name("all-MiniLM-L6-v2", "torch") == "all-MiniLM-L6-v2"
    assert encoder_name("all-MiniLM-L6-v2", "onnx") == "all-MiniLM-L6-v2"  # the same vectors: one cache, one index
    assert encoder_name("all-MiniLM-L6-v2", "onnx-int8") == "all-MiniLM-L6-v2+onnx-int8"


def test_settings_choose_the_encoder_and_nothing_loads(tmp_path):
    torch_encoder = make_encoder(load_settings({"batch_size": 8}))
    assert isinstance(torch_encoder, SentenceTransformerEncoder) and torch_encoder.batch_size == 8
    onnx = make_encoder(load_settings({"encoder_backend": "onnx-int8", "encoder_cache": str(tmp_path)}))
    assert isinstance(onnx, OnnxEncoder)
    assert (onnx.name, onnx.cache_dir, onnx._model) == ("all-MiniLM-L6-v2+onnx-int8", tmp_path, None)
    service = Service(load_settings({"db": ":memory:", "encoder_backend": "onnx-int8"}))
    assert service.model_name == "all-MiniLM-L6-v2+onnx-int8"  # before the encoder is made


def test_precision_is_for_torch_on_a_gpu_and_bf16_goes_by_its_own_name():
    with pytest.raises(ConfigError, match="REFMATCH_PRECISION: must be one of fp32, fp16, bf16, got 'int4'"):
        load_settings({"precision": "int4"})
    with pytest.raises(ConfigError, match=r"REFMATCH_PRECISION=fp16 is for a GPU \(REFMATCH_DEVICE=cuda\): on cpu"):
        load_settings({"precision": "fp16"})
    with pytest.raises(ConfigError, match="is for REFMATCH_ENCODER_BACKEND=torch; onnx runs in its own precision"):
        load_settings({"precision": "bf16", "encoder_backend": "onnx"})
    cpu_bf16 = make_encoder(load_settings({"precision": "bf16"}))
    assert (cpu_bf16.name, cpu_bf16.pipeline) == ("all-MiniLM-L6-v2+bf16", True)  # a CPU with bf16 instructions
    with pytest.raises(ConfigError, match=r"REFMATCH_BATCH_SIZE: must be 0 \(automatic\) or more"):
        load_settings({"batch_size": -1})
    half = make_encoder(load_settings({"device": "cuda", "precision": "fp16", "batch_size": 512}))
    assert isinstance(half, SentenceTransformerEncoder) and half._model is None  # nothing loads (no GPU here)
    assert (half.name, half.precision, half.pipeline, half.batch_size) == ("all-MiniLM-L6-v2", "fp16", True, 512)
    bf16 = load_settings({"device": "cuda:0", "precision": "bf16"})
    in_memory = load_settings({"db": ":memory:", "device": "cuda:0", "precision": "bf16"})
    assert make_encoder(bf16).name == Service(in_memory).model_name == "all-MiniLM-L6-v2+bf16"
    assert SentenceTransformerEncoder().pipeline is False  # the CPU keeps sentence-transformers' own encode


def test_cli_offers_the_backends():
    result = CliRunner().invoke(cli, ["index", "status", "--encoder-backend", "tensorrt"])
    assert result.exit_code == 2
    assert "'tensorrt' is not one of 'torch', 'onnx', 'onnx-int8'" in result.output


def test_a_damaged_export_says_where_it_is_and_what_to_do(tmp_path):
    model = tmp_path / "model"  # a local model folder: the export is named by its content
    model.mkdir()
    (model / "config.json").write_text("{}")
    folder = export_folder(str(model), "onnx", tmp_path / "cache")
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"model": str(model), "backend": "onnx"}))
    (folder / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"cannot load the ONNX export in .*; delete it to export again"):
        OnnxEncoder(str(model), cache_dir=tmp_path / "cache").encode(["hello"])
    (model / "config.json").write_text('{"changed": true}')  # another model: another folder
    assert export_folder(str(model), "onnx", tmp_path / "cache") != folder


def test_export_refuses_torch(tmp_path):
    with pytest.raises(ConfigError, match="cannot export for 'torch'"):
        export("all-MiniLM-L6-v2", "torch", tmp_path)
    with pytest.raises(ConfigError, match="not an ONNX backend"):
        OnnxEncoder(backend="torch")


# -- the real model ----------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="module")
def demo_texts() -> list[str]:
    import csv
    from importlib import resources

    folder = resources.files("refmatch") / "demo_data"
    with (folder / "accounts.csv").open(encoding="utf-8") as f:
        texts = [r["profile"] for r in csv.DictReader(f) if r["profile"]][:150]
    with (folder / "needs.csv").open(encoding="utf-8") as f:
        texts += [r["need"] for r in csv.DictReader(f)][:150]
    return texts


@pytest.mark.e2e
def test_onnx_gives_torchs_vectors(cache, demo_texts):
    onnx = OnnxEncoder(cache_dir=cache, batch_size=32)
    got = onnx.encode(demo_texts + ["", "  padded  ", "word " * 400])
    want = SentenceTransformerEncoder().encode(demo_texts + ["", "  padded  ", "word " * 400])
    assert got.shape == want.shape == (len(demo_texts) + 3, 384) and got.dtype == np.float32
    cosines = np.sum(got * want, axis=1)
    assert cosines.min() >= MIN_COSINE, cosines.min()
    assert onnx.meta["cosine_to_torch"]["min"] >= MIN_COSINE  # checked at export, on the probe texts
    assert onnx.encode([]).shape == (0, 384)
    assert [p.name.split("-onnx-")[0] for p in cache.iterdir()] == ["all-MiniLM-L6-v2"]  # no temporary left


@pytest.mark.e2e
def test_a_later_process_loads_the_export_without_torch(cache):
    OnnxEncoder(cache_dir=cache).encode(["export first"])
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    code = (
        "import sys; from refmatch.embed.onnx import OnnxEncoder; from refmatch.app.runtime import limit_threads; "
        "limit_threads(1); "  # as a server worker does before it loads the model
        f"e = OnnxEncoder(cache_dir={str(cache)!r}); v = e.encode(['hello world']); "
        "print(v.shape, e._model.get_session_options().intra_op_num_threads, "
        "sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 384) 1 []"  # one thread: the worker's share, not every core spinning
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == before  # loaded, not exported again


@pytest.mark.e2e
def test_int8_is_its_own_model(cache, demo_texts):
    int8 = OnnxEncoder(backend="onnx-int8", cache_dir=cache)
    got = int8.encode(demo_texts[:50])
    want = SentenceTransformerEncoder().encode(demo_texts[:50])
    cosines = np.sum(got * want, axis=1)
    assert 0.8 < cosines.mean() < MIN_COSINE  # close, but not the same vectors: hence the name
    assert int8.name == "all-MiniLM-L6-v2+onnx-int8"
    assert int8.folder is not None and "onnx-int8" in int8.folder.name


@pytest.mark.e2e
def test_the_demo_matches_the_same_on_onnx_and_refuses_int8_vectors(demo_build, tmp_path, cache):
    folder = e2e_demo.demo_copy(demo_build, tmp_path)  # indexes built with torch
    conn = sqlite3.connect(folder / "demo.db")
    profile, industry = conn.execute(
        "SELECT profile, industry FROM accounts WHERE profile != '' ORDER BY id LIMIT 1 OFFSET 7"
    ).fetchone()
    need = conn.execute("SELECT text FROM needs ORDER BY id LIMIT 1 OFFSET 11").fetchone()[0]
    conn.close()

    def match(*extra: str) -> subprocess.CompletedProcess:  # ad-hoc text: the encoder embeds it at query time
        env = {**e2e_demo.demo_env(folder), "REFMATCH_ENCODER_CACHE": str(cache)}
        args = ["match", "--text", profile, "--industry", industry, "--need", need, "-k", "5", "--format", "json"]
        return subprocess.run(
            [sys.executable, "-m", "refmatch", *args, *extra], capture_output=True, text=True, env=env, timeout=300
        )

    by_torch, by_onnx = match(), match("--encoder-backend", "onnx")
    assert by_torch.returncode == by_onnx.returncode == 0, by_onnx.stderr
    results = [json.loads(p.stdout) for p in (by_torch, by_onnx)]
    ranked = [[(m["advocate"]["external_id"], round(m["score"], 4)) for m in r["matches"]] for r in results]
    assert ranked[0] == ranked[1] and len(ranked[0]) == 5
    int8 = match("--encoder-backend", "onnx-int8")
    assert int8.returncode == 2 and "Traceback" not in int8.stderr  # StaleIndex: the vectors of another model
    assert "built with model 'all-MiniLM-L6-v2' but the model is 'all-MiniLM-L6-v2+onnx-int8'" in int8.stderr


@pytest.mark.e2e
def test_the_tokenizing_pipeline_gives_sentence_transformers_vectors(demo_texts):
    texts = demo_texts + ["", "  padded  ", "UPPER case", "word " * 400]
    want = SentenceTransformerEncoder().encode(texts)
    got = SentenceTransformerEncoder(batch_size=16, pipeline=True, workers=3).encode(texts)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5


@pytest.mark.e2e
def test_half_precision_is_checked_against_fp32_when_it_loads(demo_texts, monkeypatch):
    want = SentenceTransformerEncoder().encode(demo_texts[:40])
    fp16 = SentenceTransformerEncoder(precision="fp16", workers=1)  # on the CPU here: slow, but the same code
    assert np.sum(fp16.encode(demo_texts[:40]) * want, axis=1).min() >= MIN_COSINE
    assert fp16.precision_check["min"] >= MIN_COSINE and fp16.name == "all-MiniLM-L6-v2"
    bf16 = SentenceTransformerEncoder(precision="bf16", workers=1)
    cosines = np.sum(bf16.encode(demo_texts[:40]) * want, axis=1)
    assert 0.99 < cosines.min() and bf16.name == "all-MiniLM-L6-v2+bf16"  # close, but its own vectors
    monkeypatch.setattr("refmatch.embed.st.MIN_COSINE", 1.01)  # a model that fp16 would move
    with pytest.raises(ConfigError, match=r"REFMATCH_PRECISION=fp16: .* does not give its fp32 vectors .*use bf16"):
        SentenceTransformerEncoder(precision="fp16").encode(["anything"])
