"""The same sentence-transformers model run by ONNX Runtime: exported once, cached, checked against torch.

``pip install 'refmatch[onnx]'``. The first use exports the whole sentence-transformers
pipeline (transformer, pooling, normalisation) from torch to ONNX, checks on a fixed set
of texts that ONNX Runtime gives the torch vectors (cosine at least ``MIN_COSINE``), and
stores it, with the fast tokenizer and what the pipeline needs, in a folder of the
encoder cache named by the model's content. Later processes load that folder with ONNX
Runtime and ``tokenizers`` only: neither torch nor transformers is imported, so a server
worker starts in a fraction of the time and each text costs less CPU.

The export is written to a temporary folder and renamed into place, so two processes
exporting at once, or one killed half-way, never leave a broken model behind. Nothing
touches the network: the model must already be on disk (a path, the packaged default or
a hub name in the local hub cache).

``onnx`` (fp32) gives torch's vectors, so it shares their embedding cache and indexes
(its name is the model's). ``onnx-int8`` (dynamic int8 quantisation) is faster but moves
the vectors, so its name differs (``<model>+onnx-int8``): its vectors are never mixed with
the fp32 ones in a cache or an index, and switching to it re-embeds everything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from refmatch.domain.errors import ConfigError
from refmatch.embed.base import CPU_BATCH, MIN_COSINE, PROBES, encoder_name, normalize
from refmatch.embed.pipeline import TokenRecipe, embed_in_batches

RECIPE = 1  # bump when the export below changes what it writes


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "refmatch" / "encoders"


def _fingerprint(model: str, backend: str) -> str:
    """Names the export by the model's files (a local folder) or its name, and by the recipe."""
    h = hashlib.sha256(f"{RECIPE}\0{backend}\0".encode())
    from refmatch.embed.st import resolve_model

    path = Path(resolve_model(model))
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = f.relative_to(path).as_posix()
            if rel.split("/")[0] in ("onnx", "openvino") or rel.startswith("."):
                continue  # other exports some hub folders carry: not what we export from
            h.update(rel.encode() + b"\0")
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    else:
        h.update(f"name:{model}".encode())
    return h.hexdigest()[:16]


def export_folder(model: str, backend: str, cache_dir: Path) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(model).name or model)[:40]
    return cache_dir / f"{slug}-{backend}-{_fingerprint(model, backend)}"


def export(model: str, backend: str, cache_dir: Path) -> Path:
    """The cached export of ``model`` for ``backend``, exporting it first if it is not there."""
    if backend not in ("onnx", "onnx-int8"):
        raise ConfigError(f"REFMATCH_ENCODER_BACKEND: cannot export for {backend!r}")
    target = export_folder(model, backend, cache_dir)
    if (target / "meta.json").is_file():
        return target
    try:
        import onnx  # noqa: F401 - torch.onnx.export writes through onnx and onnxscript
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"REFMATCH_ENCODER_BACKEND={backend} needs ONNX Runtime: pip install 'refmatch[onnx]' ({exc})"
        ) from None
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    work.chmod(0o755)  # readable by the other users of a shared cache, like any folder made here
    try:
        meta = _export_into(model, backend, work)
        (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(work, target)
        except OSError:
            if not (target / "meta.json").is_file():  # not another process's finished export: a real error
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _export_into(model: str, backend: str, folder: Path) -> dict[str, Any]:
    import torch

    from refmatch.embed.st import SentenceTransformerEncoder

    reference = SentenceTransformerEncoder(model, device="cpu")
    st = reference._load().float().eval()
    tokenizer = st.tokenizer
    recipe = TokenRecipe.of(st)
    inputs = list(recipe.inputs)

    class Pipeline(torch.nn.Module):  # tokens in, the sentence embedding out (pooling and all)
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
        ) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            return self.st(features)["sentence_embedding"]

    sample = tokenizer(list(PROBES[:3]), padding=True, truncation=True, max_length=64, return_tensors="pt")
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", max=int(st.max_seq_length))
    fp32 = folder / "model-fp32.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own notes on torch internals: nothing a user can act on
        torch.onnx.export(
            Pipeline().eval(),
            tuple(sample[n] for n in inputs),
            str(fp32),
            input_names=inputs,
            output_names=["sentence_embedding"],
            dynamic_shapes={n: {0: batch, 1: tokens} for n in inputs},
            dynamo=True,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    if backend == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.disable(logging.WARNING)  # its advice to pre-process is for vision models: not ours to act on
        try:
            quantize_dynamic(str(fp32), str(folder / "model.onnx"), weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        fp32.unlink()
    else:
        fp32.rename(folder / "model.onnx")
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    meta: dict[str, Any] = {
        "model": model,
        "backend": backend,
        "recipe": RECIPE,
        **recipe.meta(),
        "dim": reference.dim,
        "torch": torch.__version__,
    }
    got = OnnxEncoder.from_folder(folder, meta, threads=1).encode(list(PROBES))
    cosines = np.sum(got * reference.encode(list(PROBES)), axis=1)
    meta["cosine_to_torch"] = {"min": round(float(cosines.min()), 6), "mean": round(float(cosines.mean()), 6)}
    if backend == "onnx" and cosines.min() < MIN_COSINE:
        raise ConfigError(
            f"the ONNX export of {model!r} does not reproduce torch's vectors (cosine {cosines.min():.5f} "
            f"< {MIN_COSINE}); use REFMATCH_ENCODER_BACKEND=torch"
        )
    return meta


class OnnxEncoder:
    """Encoder over an exported folder; the folder is made on first use (see the module docstring)."""

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        backend: str = "onnx",
        cache_dir: str | Path | None = None,
        batch_size: int = 0,
        threads: int | None = None,
    ):
        if backend not in ("onnx", "onnx-int8"):
            raise ConfigError(f"REFMATCH_ENCODER_BACKEND: not an ONNX backend: {backend!r}")
        self.model = model
        self.backend = backend
        self.name = encoder_name(model, backend)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.batch_size = batch_size or CPU_BATCH
        self.threads = threads
        self.folder: Path | None = None
        self.meta: dict[str, Any] = {}
        self._model: Any = None  # the ONNX Runtime session once loaded (the readiness check reads it)
        self._tokenizer: Any = None
        self.recipe: TokenRecipe | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a worker process) as its recipe: the copy opens the export itself."""
        return {**self.__dict__, "_model": None, "_tokenizer": None, "recipe": None, "folder": None, "meta": {}}

    @classmethod
    def from_folder(cls, folder: Path, meta: dict[str, Any], threads: int | None = None) -> OnnxEncoder:
        encoder = cls(meta["model"], meta["backend"], folder.parent, threads=threads)
        encoder._open(folder, meta)
        return encoder

    def _open(self, folder: Path, meta: dict[str, Any]) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        threads = self.threads if self.threads is not None else int(os.environ.get("OMP_NUM_THREADS") or 0)
        options.intra_op_num_threads = max(0, threads)  # 0: ONNX Runtime's own choice (the physical cores)
        options.inter_op_num_threads = 1
        if threads:  # sharing the cores with other processes: do not spin waiting for work
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        recipe = TokenRecipe.from_meta(meta)
        tokenizer = recipe.configure(Tokenizer.from_file(str(folder / "tokenizer.json")))
        self.folder, self.meta, self.recipe, self._tokenizer, self._model = folder, meta, recipe, tokenizer, session

    def _load(self) -> Any:
        if self._model is None:
            folder = export(self.model, self.backend, self.cache_dir)
            try:
                meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
                self._open(folder, meta)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - a damaged cache reads the same to a user
                raise ConfigError(f"cannot load the ONNX export in {folder}: {exc}; delete it to export again") from exc
        return self._model

    @property
    def dim(self) -> int:
        self._load()
        return int(self.meta["dim"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        session = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        recipe, tokenizer = self.recipe, self._tokenizer
        assert recipe is not None  # set with the session

        def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
            (vectors,) = session.run(None, inputs)
            return vectors

        vectors = embed_in_batches(
            recipe.clean(texts),
            batch_size=self.batch_size,
            tokenize=lambda batch: recipe.tokenize(tokenizer, batch),
            run=run,
            gather=np.concatenate,
        )
        return normalize(vectors)
