#!/usr/bin/env python3
"""Embedding throughput and latency of the real model on a device (cpu or cuda).

    python scripts/bench_embed.py --device cpu --n 2000
    python scripts/bench_embed.py --device cuda --n 50000 --batch-size 256 --model PATH

Texts are the demo's real profiles and needs (refmatch/demo_data), cycled to --n, so
lengths are what refmatch embeds. Uses refmatch.embed.st.SentenceTransformerEncoder, the
encoder the product uses; imports nothing else of refmatch, so it runs on a machine that
has only torch and sentence-transformers. Prints JSON lines: load time, batch
throughput (texts/s) and single-query latency (p50/p99 ms).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refmatch.embed.st import SentenceTransformerEncoder  # noqa: E402


def demo_texts() -> list[str]:
    folder = ROOT / "refmatch" / "demo_data"
    with (folder / "accounts.csv").open(encoding="utf-8") as f:
        texts = [r["profile"] for r in csv.DictReader(f) if r["profile"]]
    with (folder / "needs.csv").open(encoding="utf-8") as f:
        texts += [r["need"] for r in csv.DictReader(f)]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=2000, help="texts to embed in the throughput run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="model name or path")
    parser.add_argument("--fp16", action="store_true", help="run the model in half precision (GPU)")
    parser.add_argument("--queries", type=int, default=100, help="single-text encodes to time")
    args = parser.parse_args()

    source = demo_texts()
    texts = [source[i % len(source)] + ("" if i < len(source) else f" ({i // len(source)})") for i in range(args.n)]
    encoder = SentenceTransformerEncoder(args.model, device=args.device, batch_size=args.batch_size)
    t = time.perf_counter()
    model = encoder._load()
    model.half() if args.fp16 else model.float()
    encoder.encode(texts[:64])
    load_s = time.perf_counter() - t

    t = time.perf_counter()
    vectors = encoder.encode(texts)
    seconds = time.perf_counter() - t
    lat = []
    for q in source[: args.queries]:
        t = time.perf_counter()
        encoder.encode([q[:200]])
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    device_name = args.device
    if args.device.startswith("cuda"):
        import torch

        device_name = torch.cuda.get_device_name(0)
    print(json.dumps({
        "bench": "embed", "device": device_name, "fp16": args.fp16, "batch_size": args.batch_size,
        "texts": len(texts), "dim": int(vectors.shape[1]), "load_s": round(load_s, 2),
        "texts_per_s": round(len(texts) / seconds, 1), "seconds": round(seconds, 2),
        "query_p50_ms": round(statistics.median(lat), 2), "query_p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
