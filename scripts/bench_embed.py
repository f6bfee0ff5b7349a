#!/usr/bin/env python3
"""Embedding throughput and latency of the real model, per encoder backend, with each backend's cosine to torch.

    python scripts/bench_embed.py --n 2000 --threads 2                  # torch, onnx and onnx-int8 on the CPU
    python scripts/bench_embed.py --device cuda --n 100000 \
        --backends torch,torch:pipeline,torch:fp16,torch:bf16              # a GPU: the pipeline, half precision

A backend is one of torch (sentence-transformers' own encode, the reference), onnx,
onnx-int8, or torch:pipeline / torch:fp16 / torch:bf16 (refmatch's tokenizing pipeline, in
fp32 or half precision; what REFMATCH_DEVICE=cuda and REFMATCH_PRECISION run). --tokenize-workers
sets the pipeline's tokenizing threads (default: the cores but one). --tokenize N measures the
pipeline's tokenizing alone on 0 (inline) to N threads: what it can feed a GPU at most.

Texts are the demo's real profiles and needs (refmatch/demo_data), cycled to --n, so
lengths are what refmatch embeds. Each backend runs in a child process of its own (so
load time and peak memory are its own), through the encoder the product uses
(refmatch.embed.backends.make_encoder), with OMP_NUM_THREADS=--threads for torch and ONNX
Runtime alike. The ONNX exports go to a temporary cache unless --cache names one, so
the first load of an ONNX backend includes its export; --warm-cache measures a load
from a finished export instead. Prints one JSON line per backend: load time, batch
throughput (texts/s), single-text latency (p50/p99 ms over --queries texts), peak RSS,
and the cosine of its vectors to torch's (min and mean); then the ratios to torch.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def demo_texts() -> list[str]:
    folder = ROOT / "refmatch" / "demo_data"
    with (folder / "accounts.csv").open(encoding="utf-8") as f:
        texts = [r["profile"] for r in csv.DictReader(f) if r["profile"]]
    with (folder / "needs.csv").open(encoding="utf-8") as f:
        texts += [r["need"] for r in csv.DictReader(f)]
    return texts


def one(args: argparse.Namespace) -> None:
    """In the child: load, embed --n texts, time single texts, save the vectors for the parent."""
    from refmatch.config import load_settings
    from refmatch.embed.backends import make_encoder
    from refmatch.embed.st import SentenceTransformerEncoder

    backend, _, variant = args.one.partition(":")
    source = demo_texts()
    texts = [source[i % len(source)] + ("" if i < len(source) else f" ({i // len(source)})") for i in range(args.n)]
    if variant:  # the pipeline, in the precision named (on a CPU too, where settings would refuse half precision)
        precision = "fp32" if variant == "pipeline" else variant
        encoder = SentenceTransformerEncoder(
            args.model, args.device, args.batch_size, precision=precision, pipeline=True, workers=args.tokenize_workers
        )
    else:
        settings = {"model": args.model, "device": args.device, "batch_size": args.batch_size}
        encoder = make_encoder(load_settings({**settings, "encoder_backend": backend, "encoder_cache": args.cache}))
    t = time.perf_counter()
    encoder.encode(texts[:8])
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    vectors = encoder.encode(texts)
    seconds = time.perf_counter() - t
    lat = []
    for q in source[: args.queries]:
        t = time.perf_counter()
        encoder.encode([q])
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    np.save(args.out, vectors)
    device_name = args.device
    if args.device.startswith("cuda"):
        import torch

        device_name = torch.cuda.get_device_name(0)
    print(json.dumps({
        "bench": "embed", "backend": args.one, "device": device_name, "threads": args.threads,
        "batch_size": encoder.batch_size, "card": getattr(encoder, "card", {}),
        "texts": len(texts), "dim": int(vectors.shape[1]), "load_s": round(load_s, 2),
        "texts_per_s": round(len(texts) / seconds, 1), "seconds": round(seconds, 2),
        "query_p50_ms": round(statistics.median(lat), 2), "query_p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))  # fmt: skip


def tokenize_only(args: argparse.Namespace) -> None:
    """The pipeline's tokenizing alone (the model's run does nothing): the most texts/s it can feed a GPU."""
    from tokenizers import Tokenizer

    from refmatch.embed.pipeline import TokenRecipe, embed_in_batches
    from refmatch.embed.st import SentenceTransformerEncoder

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # as the encoder runs it: parallel by our threads only
    model = SentenceTransformerEncoder(args.model)._load()
    recipe = TokenRecipe.of(model)
    tokenizer = recipe.configure(Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str()))
    source = demo_texts()
    texts = recipe.clean([source[i % len(source)] for i in range(args.n)])
    batch_size = args.batch_size or 512  # what a card is given (no card here to size it)
    for workers in sorted({0, *range(1, args.tokenize + 1)}):
        t = time.perf_counter()
        embed_in_batches(
            texts,
            batch_size=batch_size,
            tokenize=lambda batch: recipe.tokenize(tokenizer, batch),
            run=lambda inputs: np.zeros((len(inputs["input_ids"]), 1), dtype=np.float32),
            gather=np.concatenate,
            workers=workers,
        )
        seconds = time.perf_counter() - t
        print(json.dumps({"bench": "tokenize", "workers": workers, "texts": len(texts), "batch_size": batch_size,
                          "texts_per_s": round(len(texts) / seconds)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends", default="torch,onnx,onnx-int8", help="comma-separated; torch first is the reference"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=2000, help="texts to embed in the throughput run")
    parser.add_argument("--batch-size", type=int, default=0, help="texts per batch [0: 64 on a CPU, sized for a GPU]")
    parser.add_argument("--threads", type=int, default=2, help="threads of torch and ONNX Runtime (OMP_NUM_THREADS)")
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="model name or path")
    parser.add_argument("--tokenize-workers", type=int, help="the pipeline's tokenizing threads [the cores but one]")
    parser.add_argument("--queries", type=int, default=100, help="single-text encodes to time")
    parser.add_argument("--cache", default="", help="ONNX export cache (default: a temporary one)")
    parser.add_argument("--warm-cache", action="store_true", help="export first, so load_s is a load from the cache")
    parser.add_argument("--tokenize", type=int, default=0, metavar="N",
                        help="only the pipeline's tokenizing, on 0 (inline) to N threads; no model runs")  # fmt: skip
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child's backend
    parser.add_argument("--out", help=argparse.SUPPRESS)  # where the child saves its vectors
    args = parser.parse_args()
    if args.tokenize:
        tokenize_only(args)
        return
    if args.one:
        one(args)
        return

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or str(Path(tmp) / "encoders")
        passed = ["--device", args.device, "--n", str(args.n), "--batch-size", str(args.batch_size)]
        passed += ["--threads", str(args.threads), "--model", args.model, "--queries", str(args.queries)]
        passed += ["--cache", cache]
        if args.tokenize_workers is not None:
            passed += ["--tokenize-workers", str(args.tokenize_workers)]
        for backend in backends:
            if args.warm_cache and backend.startswith("onnx"):
                warm = [*passed[:2], "--n", "8", *passed[4:], "--queries", "1"]
                subprocess.run([sys.executable, __file__, *warm, "--one", backend, "--out", f"{tmp}/warm.npy"],
                               env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            out = f"{tmp}/{backend.replace(':', '-')}.npy"
            proc = subprocess.run(
                [sys.executable, __file__, *passed, "--one", backend, "--out", out],
                env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            results[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
            results[backend]["vectors"] = np.load(out)
    reference = results.get("torch", {}).get("vectors")
    for r in results.values():
        vectors = r.pop("vectors")
        if reference is not None:
            cosines = np.sum(vectors * reference, axis=1)
            r["cosine_to_torch"] = {"min": round(float(cosines.min()), 5), "mean": round(float(cosines.mean()), 5)}
        print(json.dumps(r))
    if "torch" in results:
        base = results["torch"]
        for backend, r in results.items():
            if backend != "torch":
                print(json.dumps({
                    "ratio": f"{backend}/torch", "texts_per_s": round(r["texts_per_s"] / base["texts_per_s"], 2),
                    "query_p50_speedup": round(base["query_p50_ms"] / r["query_p50_ms"], 2),
                    "load_s": round(r["load_s"] / base["load_s"], 2),
                    "peak_rss": round(r["peak_rss_mb"] / base["peak_rss_mb"], 2),
                }))  # fmt: skip


if __name__ == "__main__":
    main()
