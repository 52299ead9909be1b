#!/usr/bin/env python3
"""Time onnxruntime on a model and fixed inputs; print one JSON object.

The onnxruntime side of `cargo xtask compare`: the same inputs (.npy files written by
xtask), the same warm-up and iteration counts, and the same thread count as the Sinter
side. The session uses ORT_ENABLE_ALL graph optimizations, `intra_op_num_threads=N`,
`inter_op_num_threads=1` and sequential execution on the CPU execution provider.

Usage:
    python tools/ort_bench.py MODEL.onnx --input NAME=FILE.npy [...] --threads N
                              [--warmup W] [--iterations I]

Output (stdout), latencies in milliseconds, quantiles by nearest rank:
    {"onnxruntime": "1.x", "threads": N, "warmup": W, "iterations": I,
     "session_ms": ..., "latency_ms": {"min", "mean", "median", "p90", "p99", "max"}}
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time


class BenchError(Exception):
    pass


def quantile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank quantile of sorted, non-empty samples (the rule `sinter bench` uses)."""
    rank = math.ceil(q * len(sorted_ms))
    return sorted_ms[min(max(rank, 1), len(sorted_ms)) - 1]


def stats(samples_ms: list[float]) -> dict[str, float]:
    s = sorted(samples_ms)
    return {
        "min": s[0],
        "mean": sum(s) / len(s),
        "median": quantile(s, 0.5),
        "p90": quantile(s, 0.9),
        "p99": quantile(s, 0.99),
        "max": s[-1],
    }


def positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def non_negative(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {n}")
    return n


def load_inputs(specs: list[str], session) -> dict:
    import numpy as np

    expected = {i.name: i for i in session.get_inputs()}
    feeds = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise BenchError(f"--input '{spec}' must look like NAME=FILE.npy")
        if name not in expected:
            raise BenchError(f"the model has no input '{name}'; its inputs are: {', '.join(expected)}")
        if name in feeds:
            raise BenchError(f"input '{name}' given twice")
        try:
            feeds[name] = np.ascontiguousarray(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as e:
            raise BenchError(f"reading {path}: {e}") from e
    missing = [n for n in expected if n not in feeds]
    if missing:
        raise BenchError(f"no --input for model input(s): {', '.join(missing)}")
    return feeds


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--threads", type=positive, required=True)
    p.add_argument("--warmup", type=non_negative, default=5)
    p.add_argument("--iterations", type=positive, default=50)
    a = p.parse_args(argv)

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    try:
        session = ort.InferenceSession(a.model, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise BenchError(f"loading {a.model}: {e}") from e
    session_ms = (time.perf_counter() - t0) * 1e3
    feeds = load_inputs(a.input, session)

    for _ in range(a.warmup):
        session.run(None, feeds)
    samples = []
    for _ in range(a.iterations):
        t = time.perf_counter_ns()
        session.run(None, feeds)
        samples.append((time.perf_counter_ns() - t) / 1e6)

    print(
        json.dumps(
            {
                "onnxruntime": ort.__version__,
                "threads": a.threads,
                "warmup": a.warmup,
                "iterations": a.iterations,
                "session_ms": session_ms,
                "latency_ms": stats(samples),
            }
        )
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
