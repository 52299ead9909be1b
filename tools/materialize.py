#!/usr/bin/env python3
"""Rebuild a runnable ONNX model from a committed skeleton and its weight spec.

models/<name>.skeleton.onnx holds the exported graph with stripped initializers (name,
dtype and dims only); models/<name>.weights.json says how to regenerate each one (see
tools/export_skeletons.py for the scale policy). Weights are drawn with numpy from a
stream seeded by the spec's seed and the initializer's name, so the result does not
depend on initializer order and is the same on every machine.

Needs only numpy and onnx (onnxruntime for --check).

Usage:
    python tools/materialize.py models/resnet50.skeleton.onnx -o /tmp/resnet50.onnx [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

FORMAT_VERSION = 1

_NP_DTYPES = {"float": np.float32, "float16": np.float16, "double": np.float64}


class MaterializeError(Exception):
    pass


def weights_json_for(skeleton_path: str) -> str:
    suffix = ".skeleton.onnx"
    if not skeleton_path.endswith(suffix):
        raise MaterializeError(f"{skeleton_path}: expected a '*{suffix}' file")
    return skeleton_path[: -len(suffix)] + ".weights.json"


def _rng(seed: int, name: str) -> np.random.Generator:
    name_key = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, name_key])


def _channel_gain(rng, spec: dict, dims: list[int]) -> np.ndarray:
    lo, hi = spec["gain"]
    axis = spec["gain_axis"]
    if not 0 <= axis < len(dims):
        raise MaterializeError(f"{spec['name']}: gain_axis {axis} out of range for dims {dims}")
    shape = [1] * len(dims)
    shape[axis] = dims[axis]
    return rng.uniform(lo, hi, size=dims[axis]).reshape(shape)


def generate(spec: dict, seed: int) -> np.ndarray:
    """Draw one initializer's values (float64) according to its spec."""
    name, kind, dims = spec["name"], spec["kind"], [int(d) for d in spec["dims"]]
    rng = _rng(seed, name)
    if kind in ("conv_weight", "linear_weight"):
        fan_in = int(spec["fan_in"])
        if fan_in <= 0:
            raise MaterializeError(f"{name}: fan_in must be positive, got {fan_in}")
        std = math.sqrt(float(spec["variance_scale"]) / fan_in)
        w = rng.standard_normal(dims) * std
        return w * _channel_gain(rng, spec, dims)
    if kind in ("bias", "embedding", "layernorm_beta", "bn_beta", "bn_mean"):
        return rng.standard_normal(dims) * float(spec["std"])
    if kind in ("layernorm_gamma", "bn_gamma", "bn_var"):
        return rng.uniform(float(spec["low"]), float(spec["high"]), size=dims)
    raise MaterializeError(f"{name}: unknown initializer kind {kind!r}")


def _has_data(t: TensorProto) -> bool:
    return bool(
        t.raw_data
        or t.float_data
        or t.int32_data
        or t.int64_data
        or t.double_data
        or t.uint64_data
        or t.string_data
        or t.data_location == TensorProto.EXTERNAL
        or math.prod(t.dims) == 0
    )


def materialize(skeleton_path: str, weights_path: str | None = None) -> onnx.ModelProto:
    """Load a skeleton and fill every stripped initializer from its spec."""
    weights_path = weights_path or weights_json_for(skeleton_path)
    model = onnx.load(skeleton_path)
    with open(weights_path) as f:
        side = json.load(f)
    if side.get("format_version") != FORMAT_VERSION:
        raise MaterializeError(
            f"{weights_path}: format_version {side.get('format_version')!r}, "
            f"expected {FORMAT_VERSION}"
        )
    seed = int(side["seed"])
    specs = {s["name"]: s for s in side["initializers"]}
    if len(specs) != len(side["initializers"]):
        raise MaterializeError(f"{weights_path}: duplicate initializer names")

    filled = set()
    inits = model.graph.initializer
    for i, t in enumerate(inits):
        spec = specs.get(t.name)
        if spec is None:
            if not _has_data(t):
                raise MaterializeError(
                    f"{skeleton_path}: initializer {t.name!r} has no data and no spec"
                )
            continue
        if _has_data(t):
            raise MaterializeError(f"{skeleton_path}: initializer {t.name!r} has data and a spec")
        dtype_name = TensorProto.DataType.Name(t.data_type).lower()
        if list(t.dims) != list(spec["dims"]) or dtype_name != spec["dtype"]:
            raise MaterializeError(
                f"{t.name!r}: skeleton has {dtype_name}{list(t.dims)}, spec has "
                f"{spec['dtype']}{spec['dims']}"
            )
        np_dtype = _NP_DTYPES.get(dtype_name)
        if np_dtype is None:
            raise MaterializeError(f"{t.name!r}: unsupported dtype {dtype_name}")
        values = generate(spec, seed).astype(np_dtype)
        inits[i].CopyFrom(numpy_helper.from_array(values, t.name))
        filled.add(t.name)
    missing = set(specs) - filled
    if missing:
        raise MaterializeError(
            f"{weights_path}: specs for initializers not in the graph: {sorted(missing)}"
        )
    model.doc_string = f"materialized from {os.path.basename(skeleton_path)} (seed {seed})"
    onnx.checker.check_model(model)
    return model


def check(model: onnx.ModelProto, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Run onnxruntime on a random input and return (min, max, std) of each output."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else None for d in inp.shape]
        if inp.type == "tensor(float)":
            shape = [s if s is not None else 1 for s in shape]
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
        elif inp.type == "tensor(int64)":
            shape = [s if s is not None else (1 if i == 0 else 16) for i, s in enumerate(shape)]
            if "mask" in inp.name:
                feeds[inp.name] = np.ones(shape, np.int64)
            else:
                feeds[inp.name] = rng.integers(0, 1000, size=shape, dtype=np.int64)
        else:
            raise MaterializeError(f"--check: no random feed for input type {inp.type}")
    outs = sess.run(None, feeds)
    result = {}
    for meta, val in zip(sess.get_outputs(), outs, strict=True):
        v = np.asarray(val, np.float64)
        if not np.all(np.isfinite(v)):
            raise MaterializeError(f"output {meta.name} is not finite")
        result[meta.name] = (float(v.min()), float(v.max()), float(v.std()))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("skeleton", help="models/<name>.skeleton.onnx")
    ap.add_argument("-w", "--weights", help="weight spec (default: sibling .weights.json)")
    ap.add_argument("-o", "--output", help="write the materialized model here")
    ap.add_argument("--check", action="store_true", help="run onnxruntime on a random input")
    args = ap.parse_args(argv)
    try:
        model = materialize(args.skeleton, args.weights)
        if args.output:
            onnx.save(model, args.output)
        if args.check:
            for name, (lo, hi, std) in check(model).items():
                print(f"{name}: min {lo:.4g} max {hi:.4g} std {std:.4g}")
    except (MaterializeError, OSError, ValueError, KeyError) as e:
        print(f"materialize: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
