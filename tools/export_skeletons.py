#!/usr/bin/env python3
"""Export the reference PyTorch models to ONNX and strip them into committed skeletons.

CI cannot install torch, so this script is run by hand (with torch, torchvision and
transformers installed) and its outputs are committed:

    models/<name>.skeleton.onnx   the exact graph torch.onnx.export produced, with every
                                  large float initializer reduced to name/dtype/dims
    models/<name>.weights.json    for each stripped initializer, how tools/materialize.py
                                  regenerates it (seeded numpy, scales chosen from the graph)

Float initializers are stripped when their role in the graph is a weight (conv/linear
weight or bias, embedding table, norm parameters), whatever their size. Everything else
is kept verbatim: integer initializers and small (<= SMALL_NUMEL elements) float ones
are shape constants, axes, indices or scalars. A large float initializer in an unknown
role is an error, so no weight is silently committed.

Usage:
    python tools/export_skeletons.py [--out models] [--only resnet50,mobilenetv2,bert]
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import math
import os
import sys
from collections.abc import Callable

import onnx
from onnx import TensorProto

# Kept in sync with tools/materialize.py (it refuses specs with another format version).
FORMAT_VERSION = 1
SMALL_NUMEL = 64
OPSET = 17
# Seed recorded in each side file; materialize.py derives one stream per initializer from it.
WEIGHT_SEED = 20240601

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- export


def _randomize_parameters(module, seed: int) -> None:
    """Give every float parameter and buffer distinct random values before export.

    The TorchScript exporter deduplicates initializers with equal values: freshly
    initialised models have all-zero biases and all-one norm weights, which would turn
    into shared initializers behind Identity nodes, unlike an export of trained weights.
    The values themselves are discarded by stripping.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, t in list(module.named_parameters()) + list(module.named_buffers()):
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)


def _export(module, args: tuple, input_names, output_names, dynamic_axes) -> onnx.ModelProto:
    import torch

    module.eval()
    buf = io.BytesIO()
    torch.onnx.export(
        module,
        args,
        buf,
        dynamo=False,
        opset_version=OPSET,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
    )
    return onnx.load_from_string(buf.getvalue())


def export_resnet50() -> onnx.ModelProto:
    import torch
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    _randomize_parameters(model, 1)
    x = torch.randn(1, 3, 224, 224)
    return _export(
        model, (x,), ["input"], ["output"], {"input": {0: "batch"}, "output": {0: "batch"}}
    )


def export_mobilenetv2() -> onnx.ModelProto:
    import torch
    import torchvision

    model = torchvision.models.mobilenet_v2(weights=None)
    _randomize_parameters(model, 2)
    x = torch.randn(1, 3, 224, 224)
    return _export(
        model, (x,), ["input"], ["output"], {"input": {0: "batch"}, "output": {0: "batch"}}
    )


BERT_CONFIG = dict(
    vocab_size=1000,
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=512,
    max_position_embeddings=128,
)


def export_bert() -> onnx.ModelProto:
    import torch
    from transformers import BertConfig, BertModel

    class Wrapper(torch.nn.Module):
        """Positional (input_ids, attention_mask) -> tuple, as torch.onnx.export needs."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
            return out.last_hidden_state, out.pooler_output

    cfg = BertConfig(**BERT_CONFIG, attn_implementation="eager")
    model = Wrapper(BertModel(cfg))
    _randomize_parameters(model, 3)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, BERT_CONFIG["vocab_size"], (1, 16), generator=gen)
    mask = torch.ones(1, 16, dtype=torch.int64)
    mask[0, 12:] = 0
    seq_axes = {0: "batch", 1: "sequence"}
    return _export(
        model,
        (ids, mask),
        ["input_ids", "attention_mask"],
        ["last_hidden_state", "pooler_output"],
        {
            "input_ids": seq_axes,
            "attention_mask": seq_axes,
            "last_hidden_state": seq_axes,
            "pooler_output": {0: "batch"},
        },
    )


# ----------------------------------------------------------------------- weight specs


class SpecError(Exception):
    pass


def _consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = collections.defaultdict(list)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name:
                uses[name].append((node, i))
    return uses


def _ends_residual_branch(conv: onnx.NodeProto, uses, inits) -> bool:
    """True when the conv output goes only into an Add with another activation: the last
    conv of a residual branch, or a projection shortcut. Those convs get a small gain so
    the residual stream of a deep network stays bounded, as a trained network's last-BN
    gammas do. A conv whose output is also used elsewhere (the input of the next block,
    e.g. MobileNetV2's non-residual projections) is the stream itself and keeps the
    normal gain."""
    consumers = uses.get(conv.output[0], [])
    return bool(consumers) and all(
        node.op_type == "Add" and not any(i in inits for i in node.input) for node, _ in consumers
    )


def _attr_int(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def weight_spec(graph: onnx.GraphProto, init: TensorProto, uses, inits) -> dict | None:
    """How materialize.py regenerates one float initializer, or None when its role is not
    a known weight role (then it is kept verbatim if small, and rejected otherwise).

    Policy (activations of order 1 through the network):
      conv weights: He-normal N(0, 2/fan_in) times a per-output-channel gain U(0.5, 1.5)
        (a folded BatchNorm's gamma/sqrt(var)), U(0.2, 0.5) for convs that end a residual
        branch; linear weights N(0, 1/fan_in) (LeCun: keeps logits and attention scores
        of order 1);
      biases: N(0, 0.05); embeddings N(0, 0.02); norm gamma U(0.8, 1.2), beta N(0, 0.05);
      BatchNorm (when not folded): gamma U(0.5, 1.5), beta N(0, 0.1), mean N(0, 0.1),
        var U(0.5, 1.5).
    """
    dims = list(init.dims)
    users = uses.get(init.name, [])
    if not users:
        raise SpecError(f"initializer {init.name!r} has no consumer")
    node, idx = users[0]
    op = node.op_type
    kinds = {(n.op_type, i) for n, i in users}
    if len(kinds) > 1:
        raise SpecError(f"initializer {init.name!r} used in different roles: {sorted(kinds)}")

    if op in ("Conv", "ConvTranspose") and idx == 1:
        group = _attr_int(node, "group", 1)
        if op == "Conv":
            fan_in = math.prod(dims[1:])
            out_axis = 0
        else:  # ConvTranspose weight: [C_in, C_out/group, k...]
            fan_in = (dims[0] // group) * math.prod(dims[2:])
            out_axis = 1
        residual = _ends_residual_branch(node, uses, inits)
        return {
            "kind": "conv_weight",
            "fan_in": fan_in,
            "variance_scale": 2.0,
            "gain": [0.2, 0.5] if residual else [0.5, 1.5],
            "gain_axis": out_axis,
            "residual_branch_end": residual,
        }
    if op in ("Conv", "ConvTranspose") and idx == 2:
        return {"kind": "bias", "std": 0.05}
    if op == "Gemm" and idx == 1:
        trans_b = _attr_int(node, "transB", 0)
        fan_in = dims[1] if trans_b else dims[0]
        return {
            "kind": "linear_weight",
            "fan_in": fan_in,
            "variance_scale": 1.0,
            "gain": [1.0, 1.0],
            "gain_axis": 0 if trans_b else 1,
        }
    if op == "Gemm" and idx == 2:
        return {"kind": "bias", "std": 0.05}
    if op == "MatMul" and idx == 1 and len(dims) == 2:
        # y = x @ W with W [in, out]: unit-variance inputs give unit-variance outputs.
        return {
            "kind": "linear_weight",
            "fan_in": dims[0],
            "variance_scale": 1.0,
            "gain": [1.0, 1.0],
            "gain_axis": 1,
        }
    if op == "Add" and len(dims) == 1:
        return {"kind": "bias", "std": 0.05}
    if op == "Gather" and idx == 0:
        return {"kind": "embedding", "std": 0.02}
    if op == "LayerNormalization" and idx == 1:
        return {"kind": "layernorm_gamma", "low": 0.8, "high": 1.2}
    if op == "LayerNormalization" and idx == 2:
        return {"kind": "layernorm_beta", "std": 0.05}
    if op == "BatchNormalization" and 1 <= idx <= 4:
        return [
            {"kind": "bn_gamma", "low": 0.5, "high": 1.5},
            {"kind": "bn_beta", "std": 0.1},
            {"kind": "bn_mean", "std": 0.1},
            {"kind": "bn_var", "low": 0.5, "high": 1.5},
        ][idx - 1]
    return None


# --------------------------------------------------------------------------- stripping


def strip(model: onnx.ModelProto, name: str) -> tuple[onnx.ModelProto, dict]:
    graph = model.graph
    uses = _consumers(graph)
    inits = {t.name for t in graph.initializer}
    specs = []
    kept = 0
    for t in graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            raise SpecError(f"{t.name!r} uses external data")
        is_float = t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)
        # Weights are recognised by role, not size: a 32-channel conv bias is a weight,
        # while small tensors in other roles (shapes, axes, scalars) are kept verbatim.
        spec = weight_spec(graph, t, uses, inits) if is_float else None
        if spec is None:
            if is_float and math.prod(t.dims) > SMALL_NUMEL:
                raise SpecError(
                    f"no weight policy for float initializer {t.name!r} {list(t.dims)} "
                    f"used as {sorted((n.op_type, i) for n, i in uses.get(t.name, []))}"
                )
            kept += 1
            continue
        specs.append(
            {
                "name": t.name,
                "dtype": TensorProto.DataType.Name(t.data_type).lower(),
                "dims": list(t.dims),
                **spec,
            }
        )
        # Only name/dtype/dims remain: the skeleton is not a runnable model until
        # materialize.py refills the data.
        data_type, dims = t.data_type, list(t.dims)
        t.Clear()
        t.name = specs[-1]["name"]
        t.data_type = data_type
        t.dims.extend(dims)

    # Constant nodes stay as exported; make sure no weight hides in one.
    big_constants = [
        n.output[0]
        for n in graph.node
        if n.op_type == "Constant"
        and any(
            a.type == onnx.AttributeProto.TENSOR
            and (
                (
                    a.t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)
                    and math.prod(a.t.dims) > SMALL_NUMEL
                )
                or a.t.ByteSize() > 4096
            )
            for a in n.attribute
        )
    ]
    if big_constants:
        raise SpecError(f"large Constant nodes would stay in the skeleton: {big_constants}")

    side = {
        "format_version": FORMAT_VERSION,
        "model": name,
        "seed": WEIGHT_SEED,
        "kept_verbatim": kept,
        "initializers": specs,
    }
    model.doc_string = (
        f"Sinter test skeleton '{name}': initializer data stripped, regenerate with "
        "tools/materialize.py from the sibling .weights.json"
    )
    return model, side


def ops_histogram(model: onnx.ModelProto) -> list[tuple[str, int]]:
    c = collections.Counter(n.op_type for n in model.graph.node)
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


def _versions() -> dict:
    import torch

    out = {"torch": torch.__version__, "onnx": onnx.__version__}
    for mod in ("torchvision", "transformers"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return out


EXPORTERS: dict[str, Callable[[], onnx.ModelProto]] = {
    "resnet50": export_resnet50,
    "mobilenetv2": export_mobilenetv2,
    "bert": export_bert,
}

REQUIRED_BERT_OPS = {
    "Gather",
    "Erf",
    "Softmax",
    "MatMul",
    "Where",
    "Equal",
    "Expand",
    "ConstantOfShape",
    "Range",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=os.path.join(REPO, "models"), help="output directory")
    ap.add_argument("--only", default=",".join(EXPORTERS), help="comma-separated model names")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    versions = _versions()

    for name in [n for n in args.only.split(",") if n]:
        if name not in EXPORTERS:
            ap.error(f"unknown model {name!r}; known: {', '.join(EXPORTERS)}")
        model = EXPORTERS[name]()
        onnx.checker.check_model(model)
        hist = ops_histogram(model)
        if name == "bert":
            ops = {op for op, _ in hist}
            missing = REQUIRED_BERT_OPS - ops
            if missing or not ({"LayerNormalization"} <= ops or {"ReduceMean", "Sqrt"} <= ops):
                raise SpecError(f"BERT export lacks expected ops: {sorted(missing)}")
        skeleton, side = strip(model, name)
        side["exported_with"] = versions
        side["opset"] = OPSET
        side["inputs"] = [
            {
                "name": i.name,
                "dtype": TensorProto.DataType.Name(i.type.tensor_type.elem_type).lower(),
                "shape": [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim],
            }
            for i in skeleton.graph.input
        ]
        if name == "bert":
            side["bert_config"] = BERT_CONFIG
        onnx_path = os.path.join(args.out, f"{name}.skeleton.onnx")
        json_path = os.path.join(args.out, f"{name}.weights.json")
        onnx.save(skeleton, onnx_path)
        with open(json_path, "w") as f:
            json.dump(side, f, indent=1)
            f.write("\n")
        n_params = sum(math.prod(s["dims"]) for s in side["initializers"])
        print(
            f"== {name}: {onnx_path} {os.path.getsize(onnx_path)} bytes, "
            f"{json_path} {os.path.getsize(json_path)} bytes"
        )
        print(
            f"   {len(skeleton.graph.node)} nodes, {len(side['initializers'])} stripped "
            f"initializers ({n_params} values), {side['kept_verbatim']} kept verbatim"
        )
        print("   ops: " + ", ".join(f"{op} {n}" for op, n in hist))
    return 0


if __name__ == "__main__":
    sys.exit(main())
