#!/usr/bin/env python3
"""Generate the golden cases of Sinter's IR ops (crates/ir/tests/data/ort_cases.json).

Each case is one ONNX node run on deterministic inputs by an outside oracle:
onnxruntime, or the onnx reference evaluator where onnxruntime has no kernel or
disagrees with the spec, or a numpy transcription of the spec. The Rust test
crates/ir/tests/ort_cases.rs runs the same node through the IR and compares.

Inputs are either a pattern (see `pat`, which the Rust test re-implements) or
explicit values. The tolerance of a case is relative and absolute:
|got - want| <= tol * (1 + |want|); 1e-5 for f32 outputs, 2e-3 for f16, 0 for integers.

Needs only tools/requirements.txt (numpy, onnx, onnxruntime); run it through
`cargo xtask ir-cases`, or by hand:

    python tools/gen_ir_cases.py crates/ir/tests/data/ort_cases.json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as TP
from onnx import helper
from onnx.reference import ReferenceEvaluator

# Dtype names as the IR spells them (`DType::name`).
NP = {'f32': np.float32, 'f16': np.float16, 'u8': np.uint8, 'i8': np.int8, 'i32': np.int32, 'i64': np.int64}
ONNX_TYPE = {'f32': TP.FLOAT, 'f16': TP.FLOAT16, 'u8': TP.UINT8, 'i8': TP.INT8, 'i32': TP.INT32, 'i64': TP.INT64}
TOLERANCE = {'f32': 1e-5, 'f16': 2e-3}

# Oracles. REF_NO_KERNEL and REF_SPEC first check that onnxruntime really fails or
# differs, so that a newer onnxruntime that fixes it is noticed.
ORT = 'onnxruntime'
REF_NO_KERNEL = 'onnx.reference: onnxruntime has no kernel for it'
REF_SPEC = 'onnx.reference: onnxruntime disagrees with the spec here'


def pat(dtype: str, shape: list[int], seed: int) -> np.ndarray:
    """The deterministic input `(i * 7 + seed * 3) % 11` mapped per dtype: floats to
    `(v - 5) / 4`, u8 to `20 v`, signed integers to `v - 5`."""
    v = (np.arange(int(np.prod(shape, dtype=np.int64))) * 7 + seed * 3) % 11
    if dtype in ('f32', 'f16'):
        a = (v - 5) * 0.25
    elif dtype == 'u8':
        a = v * 20
    else:
        a = v - 5
    return a.astype(NP[dtype]).reshape(shape)


def P(dtype, shape, seed):
    """A pattern input."""
    return {'dtype': dtype, 'shape': list(shape), 'pat': seed}


def V(dtype, shape, values):
    """An input with explicit values."""
    return {'dtype': dtype, 'shape': list(shape), 'values': list(values)}


def array(spec) -> np.ndarray:
    if 'pat' in spec:
        return pat(spec['dtype'], spec['shape'], spec['pat'])
    return np.array(spec['values'], dtype=NP[spec['dtype']]).reshape(spec['shape'])


def typed_attr(v):
    """An attribute as {type: value}; Python ints and floats decide the ONNX type."""
    if isinstance(v, str):
        return {'string': v}
    if isinstance(v, float):
        return {'float': v}
    if isinstance(v, int):
        return {'int': v}
    if all(isinstance(x, int) for x in v):
        return {'ints': list(v)}
    return {'floats': [float(x) for x in v]}


def number(dtype: str, x):
    return float(x) if dtype in ('f32', 'f16') else int(x)


def model(op, opset, attrs, inputs):
    """A one-node model: pattern inputs are graph inputs, explicit values initializers."""
    names, graph_inputs, inits = [], [], []
    for k, spec in enumerate(inputs):
        if spec is None:
            names.append('')
            continue
        name = f'i{k}'
        names.append(name)
        if 'pat' in spec:
            graph_inputs.append(helper.make_tensor_value_info(name, ONNX_TYPE[spec['dtype']], spec['shape']))
        else:
            arr = array(spec)
            inits.append(helper.make_tensor(name, ONNX_TYPE[spec['dtype']], spec['shape'], arr.ravel().tolist()))
    node = helper.make_node(op, names, ['y'], **attrs)
    g = helper.make_graph([node], 'g', graph_inputs, [helper.make_empty_tensor_value_info('y')], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = 7
    feeds = {f'i{k}': array(s) for k, s in enumerate(inputs) if s is not None and 'pat' in s}
    return m, feeds


def run_ort(m, feeds):
    ort.set_default_logger_severity(3)  # no opset warnings
    s = ort.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider'])
    return s.run(None, feeds)[0]


CASES: list[dict] = []


def case(name, op, opset, attrs, inputs, note='', oracle=ORT):
    """Runs one node through its oracle and records it. `oracle` is ORT, REF_NO_KERNEL,
    REF_SPEC or a numpy function of the input arrays."""
    m, feeds = model(op, opset, attrs, inputs)
    if callable(oracle):
        y = oracle(*[array(s) for s in inputs if s is not None])
        oracle_name = f'numpy: {oracle.__doc__.strip()}'
    elif oracle == ORT:
        y = run_ort(m, feeds)
        oracle_name = f'onnxruntime {ort.__version__}'
    else:
        y = ReferenceEvaluator(m).run(None, feeds)[0]
        try:
            y_ort = run_ort(m, feeds)
        except Exception:  # noqa: BLE001 - any failure is "no kernel"
            y_ort = None
        if oracle == REF_NO_KERNEL and y_ort is not None:
            sys.exit(f'{name}: onnxruntime {ort.__version__} now runs it; make onnxruntime its oracle')
        agrees = y_ort is not None and y_ort.shape == y.shape and np.allclose(y_ort, y, rtol=1e-5, atol=1e-5)
        if oracle == REF_SPEC and agrees:
            sys.exit(f'{name}: onnxruntime {ort.__version__} no longer disagrees with the spec; recheck its oracle')
        oracle_name = oracle.replace('onnx.reference', f'onnx.reference {onnx.__version__}')
    dtype = next(k for k, v in NP.items() if v == y.dtype)
    CASES.append({
        'name': name,
        'op': op,
        'opset': opset,
        'attrs': {k: typed_attr(v) for k, v in attrs.items()},
        'inputs': inputs,
        'output': {'dtype': dtype, 'shape': list(y.shape), 'values': [number(dtype, x) for x in y.ravel()]},
        'tolerance': TOLERANCE.get(dtype, 0.0),
        'oracle': oracle_name,
        **({'note': note} if note else {}),
    })


def lrn_np(x, size=4, alpha=1e-4, beta=0.75, bias=1.0):
    """LRN as the spec writes it: the window [c - floor((size-1)/2), c + ceil((size-1)/2)] over channels"""
    c = x.shape[1]
    sq = np.zeros_like(x, dtype=np.float64)
    for i in range(c):
        lo, hi = max(0, i - (size - 1) // 2), min(c, i + int(np.ceil((size - 1) / 2)) + 1)
        sq[:, i] = (x[:, lo:hi].astype(np.float64) ** 2).sum(axis=1)
    return (x / (bias + alpha / size * sq) ** beta).astype(np.float32)


def all_cases():
    F = 'f32'
    # --- Conv
    case('conv_strides_asymmetric_pads_bias', 'Conv', 13, dict(strides=[2, 2], pads=[1, 0, 2, 1]),
         [P(F, [1, 2, 5, 6], 0), P(F, [3, 2, 3, 3], 1), P(F, [3], 2)])
    case('conv_dilations_groups', 'Conv', 11, dict(dilations=[2, 1], pads=[1, 1, 1, 1], group=2),
         [P(F, [1, 4, 6, 6], 0), P(F, [4, 2, 3, 3], 1)])
    case('conv_depthwise_same_upper_strided', 'Conv', 13, dict(auto_pad='SAME_UPPER', strides=[2, 2], group=3),
         [P(F, [2, 3, 6, 5], 0), P(F, [3, 1, 3, 3], 1), P(F, [3], 4)])
    case('conv_same_lower', 'Conv', 13, dict(auto_pad='SAME_LOWER'), [P(F, [1, 1, 4, 4], 0), P(F, [1, 1, 2, 2], 1)])
    case('conv_valid_strided', 'Conv', 13, dict(auto_pad='VALID', strides=[2, 2]),
         [P(F, [1, 1, 5, 6], 0), P(F, [2, 1, 3, 3], 1)])
    case('conv_1d', 'Conv', 13, dict(strides=[2], pads=[1, 2], dilations=[2]), [P(F, [1, 2, 9], 0), P(F, [2, 2, 3], 1)])
    case('conv_3d', 'Conv', 13, dict(strides=[1, 2, 1], pads=[0, 1, 0, 1, 0, 0]),
         [P(F, [1, 2, 3, 4, 4], 0), P(F, [2, 2, 2, 2, 2], 1), P(F, [2], 2)])
    case('conv_pointwise', 'Conv', 13, dict(), [P(F, [2, 3, 2, 3], 0), P(F, [4, 3, 1, 1], 1)])
    case('conv_f16', 'Conv', 13, dict(pads=[1, 1, 1, 1]), [P('f16', [1, 2, 3, 3], 0), P('f16', [2, 2, 3, 3], 1)])
    # --- ConvTranspose
    case('conv_transpose_output_padding', 'ConvTranspose', 13,
         dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
         [P(F, [1, 2, 3, 3], 0), P(F, [2, 3, 3, 3], 1), P(F, [3], 2)])
    case('conv_transpose_group_dilations', 'ConvTranspose', 13, dict(group=2, dilations=[2, 2], strides=[1, 2]),
         [P(F, [1, 4, 3, 3], 0), P(F, [4, 1, 2, 2], 1)])
    case('conv_transpose_output_shape', 'ConvTranspose', 13, dict(strides=[2, 2], output_shape=[6, 8]),
         [P(F, [1, 1, 3, 3], 0), P(F, [1, 2, 3, 3], 1)])
    case('conv_transpose_same_upper', 'ConvTranspose', 13, dict(strides=[2, 2], auto_pad='SAME_UPPER'),
         [P(F, [1, 1, 3, 3], 0), P(F, [1, 1, 3, 3], 1)])
    case('conv_transpose_1d', 'ConvTranspose', 13, dict(strides=[3], pads=[1, 0]),
         [P(F, [2, 1, 4], 0), P(F, [1, 2, 3], 1)])
    case('conv_transpose_3d', 'ConvTranspose', 13, dict(strides=[2, 1, 2]),
         [P(F, [1, 1, 2, 2, 3], 0), P(F, [1, 2, 2, 3, 2], 1)])
    # --- Pools
    case('max_pool_ceil_mode', 'MaxPool', 12, dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
         [P(F, [1, 1, 6, 6], 0)])
    case('max_pool_dilations_pads', 'MaxPool', 12, dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1]),
         [P(F, [1, 2, 5, 5], 0)])
    case('max_pool_u8_same_upper', 'MaxPool', 12, dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad='SAME_UPPER'),
         [P('u8', [1, 1, 5, 5], 0)])
    case('max_pool_1d_f16', 'MaxPool', 12, dict(kernel_shape=[3], strides=[2], pads=[1, 1]), [P('f16', [1, 2, 7], 0)])
    case('average_pool_pads_exclude_pad', 'AveragePool', 11,
         dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
         [P(F, [1, 2, 4, 5], 0)])
    case('average_pool_pads_include_pad', 'AveragePool', 11,
         dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1), [P(F, [1, 2, 4, 5], 0)])
    case('average_pool_ceil_include_pad', 'AveragePool', 19,
         dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0], count_include_pad=1, ceil_mode=1),
         [P(F, [1, 1, 6, 6], 0)], 'partial windows count only the padded input')
    case('average_pool_same_lower', 'AveragePool', 19, dict(kernel_shape=[2, 3], auto_pad='SAME_LOWER'),
         [P(F, [1, 1, 4, 5], 0)])
    case('average_pool_3d', 'AveragePool', 19, dict(kernel_shape=[2, 2, 2], strides=[1, 2, 2]),
         [P(F, [1, 1, 3, 4, 4], 0)])
    case('lp_pool_p3', 'LpPool', 18, dict(kernel_shape=[2, 2], p=3, strides=[1, 2]), [P(F, [1, 1, 4, 5], 0)])
    case('lp_pool_p2_pads', 'LpPool', 18, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), [P(F, [1, 1, 3, 3], 0)])
    case('global_average_pool', 'GlobalAveragePool', 13, dict(), [P(F, [2, 3, 3, 4], 0)])
    case('global_max_pool', 'GlobalMaxPool', 13, dict(), [P(F, [2, 3, 5], 0)])
    case('global_lp_pool', 'GlobalLpPool', 13, dict(p=2), [P(F, [1, 2, 2, 3], 0)])
    # --- Matrix products
    case('matmul_batch_broadcast', 'MatMul', 13, dict(), [P(F, [2, 1, 3, 4], 0), P(F, [3, 4, 5], 1)])
    case('matmul_vector_matrix', 'MatMul', 13, dict(), [P(F, [4], 0), P(F, [2, 4, 3], 1)])
    case('matmul_matrix_vector', 'MatMul', 13, dict(), [P(F, [2, 3, 4], 0), P(F, [4], 1)])
    case('matmul_large', 'MatMul', 13, dict(), [P(F, [9, 300], 0), P(F, [300, 11], 1)],
         'a long inner dimension (k = 300)')
    case('matmul_i32', 'MatMul', 13, dict(), [P('i32', [2, 3, 4], 0), P('i32', [4, 2], 1)])
    case('matmul_i64', 'MatMul', 13, dict(), [P('i64', [3, 2], 0), P('i64', [1, 2, 3], 1)])
    case('matmul_f16', 'MatMul', 13, dict(), [P('f16', [3, 4], 0), P('f16', [4, 2], 1)])
    case('gemm_trans_alpha_beta_row_bias', 'Gemm', 13, dict(transA=1, transB=1, alpha=0.5, beta=2.0),
         [P(F, [4, 3], 0), P(F, [5, 4], 1), P(F, [1, 5], 2)])
    case('gemm_column_bias', 'Gemm', 13, dict(), [P(F, [3, 4], 0), P(F, [4, 2], 1), P(F, [3, 1], 2)])
    case('gemm_scalar_bias_trans_b', 'Gemm', 13, dict(transB=1, beta=-1.0),
         [P(F, [2, 3], 0), P(F, [4, 3], 1), V(F, [], [1.5])])
    case('gemm_no_bias', 'Gemm', 13, dict(alpha=2.0), [P(F, [2, 3], 0), P(F, [3, 2], 1)])
    case('gemm_i64', 'Gemm', 13, dict(transA=1), [P('i64', [3, 2], 0), P('i64', [3, 2], 1), P('i64', [2], 2)],
         oracle=REF_NO_KERNEL)
    case('matmul_integer_zero_points', 'MatMulInteger', 10, dict(),
         [P('u8', [3, 4], 0), P('u8', [4, 2], 1), V('u8', [], [12]), V('u8', [2], [100, 3])])
    # --- Normalizations
    case('batch_norm', 'BatchNormalization', 15, dict(epsilon=1e-3),
         [P(F, [2, 3, 2, 2], 0), P(F, [3], 1), P(F, [3], 2), P(F, [3], 3), V(F, [3], [0.5, 1.0, 2.0])])
    case('batch_norm_opset7', 'BatchNormalization', 7, dict(),
         [P(F, [1, 2, 3], 0), P(F, [2], 1), P(F, [2], 2), P(F, [2], 3), V(F, [2], [0.25, 4.0])])
    case('instance_norm', 'InstanceNormalization', 6, dict(epsilon=1e-2),
         [P(F, [2, 3, 2, 3], 0), P(F, [3], 1), P(F, [3], 2)])
    case('lrn_size3', 'LRN', 13, dict(size=3, alpha=0.1, beta=0.6, bias=2.0), [P(F, [1, 5, 2, 2], 0)])
    case('lrn_size4', 'LRN', 13, dict(size=4), [P(F, [1, 5, 3], 0)], oracle=lrn_np)
    # --- Resize
    def S(v):  # scales
        return V(F, [len(v)], v)

    def Z(v):  # sizes
        return V('i64', [len(v)], v)

    def X(shape):
        return P(F, shape, 0)

    case('resize_nearest_half_pixel_round_prefer_ceil', 'Resize', 13,
         dict(mode='nearest', nearest_mode='round_prefer_ceil'),
         [X([1, 1, 3, 4]), None, S([1.0, 1.0, 1.7, 0.6])])
    case('resize_nearest_asymmetric_floor_sizes', 'Resize', 13,
         dict(mode='nearest', coordinate_transformation_mode='asymmetric', nearest_mode='floor'),
         [X([1, 1, 3, 4]), None, None, Z([1, 1, 5, 7])])
    case('resize_nearest_align_corners_ceil', 'Resize', 13,
         dict(mode='nearest', coordinate_transformation_mode='align_corners', nearest_mode='ceil'),
         [X([1, 2, 2, 3]), None, S([1.0, 1.0, 2.0, 2.0])])
    case('resize_nearest_tf_half_pixel_for_nn', 'Resize', 11,
         dict(mode='nearest', coordinate_transformation_mode='tf_half_pixel_for_nn'),
         [X([1, 1, 2, 5]), V(F, [0], []), S([1.0, 1.0, 2.5, 0.6])])
    case('resize_nearest_i64', 'Resize', 13, dict(mode='nearest'), [P('i64', [1, 2, 3], 0), None, S([1.0, 2.0, 1.5])],
         oracle=REF_NO_KERNEL)
    case('resize_linear_half_pixel_down', 'Resize', 13, dict(mode='linear'),
         [X([1, 1, 4, 6]), None, S([1.0, 1.0, 0.5, 0.7])])
    case('resize_linear_pytorch_half_pixel_sizes', 'Resize', 13,
         dict(mode='linear', coordinate_transformation_mode='pytorch_half_pixel'),
         [X([1, 2, 3, 4]), None, None, Z([1, 2, 1, 7])])
    case('resize_linear_align_corners_up', 'Resize', 13,
         dict(mode='linear', coordinate_transformation_mode='align_corners'),
         [X([1, 1, 3, 3]), None, S([1.0, 1.0, 1.5, 2.0])])
    case('resize_linear_3d_asymmetric', 'Resize', 13, dict(mode='linear', coordinate_transformation_mode='asymmetric'),
         [X([1, 1, 2, 3, 3]), None, S([1.0, 1.0, 2.0, 1.0, 1.5])])
    case('resize_linear_1d', 'Resize', 13, dict(mode='linear'), [X([2, 5]), None, S([1.0, 1.6])])
    case('resize_cubic_half_pixel', 'Resize', 13, dict(mode='cubic'), [X([1, 1, 4, 4]), None, S([1.0, 1.0, 1.5, 0.75])])
    case('resize_cubic_exclude_outside_a05', 'Resize', 13, dict(mode='cubic', cubic_coeff_a=-0.5, exclude_outside=1),
         [X([1, 1, 4, 4]), None, S([1.0, 1.0, 2.0, 0.5])])
    case('resize_cubic_asymmetric_sizes', 'Resize', 13, dict(mode='cubic', coordinate_transformation_mode='asymmetric'),
         [X([1, 1, 3, 5]), None, None, Z([1, 1, 5, 3])])
    case('resize_tf_crop_and_resize_extrapolation', 'Resize', 13,
         dict(mode='linear', coordinate_transformation_mode='tf_crop_and_resize', extrapolation_value=9.0),
         [X([1, 1, 4, 4]), V(F, [8], [0, 0, -0.2, 0.3, 1, 1, 0.8, 1.4]), None, Z([1, 1, 3, 4])], oracle=REF_SPEC)
    case('resize_tf_crop_and_resize_nearest', 'Resize', 13,
         dict(mode='nearest', coordinate_transformation_mode='tf_crop_and_resize'),
         [X([1, 1, 3, 4]), V(F, [8], [0, 0, 0.1, -0.5, 1, 1, 0.9, 0.7]), None, Z([1, 1, 2, 3])])
    case('resize_linear_antialias', 'Resize', 18, dict(mode='linear', antialias=1),
         [X([1, 1, 6, 8]), None, S([1.0, 1.0, 0.5, 0.3])])
    case('resize_cubic_antialias', 'Resize', 18, dict(mode='cubic', antialias=1),
         [X([1, 1, 5, 8]), None, S([1.0, 1.0, 0.6, 0.4])])
    case('resize_axes_sizes_not_larger', 'Resize', 18,
         dict(mode='nearest', axes=[3, 2], keep_aspect_ratio_policy='not_larger'),
         [X([1, 1, 4, 6]), None, None, Z([4, 3])])
    case('resize_axes_sizes_not_smaller', 'Resize', 18,
         dict(mode='linear', axes=[3, 2], keep_aspect_ratio_policy='not_smaller'),
         [X([1, 1, 4, 6]), None, None, Z([4, 3])])
    case('resize_half_pixel_symmetric', 'Resize', 19,
         dict(mode='linear', coordinate_transformation_mode='half_pixel_symmetric'),
         [X([1, 1, 3, 4]), None, S([1.0, 1.0, 1.8, 0.6])])
    case('resize_opset10_nearest_down', 'Resize', 10, dict(mode='nearest'), [X([1, 1, 4, 6]), S([1.0, 1.0, 0.6, 0.5])])
    case('resize_opset10_linear_up', 'Resize', 10, dict(mode='linear'), [X([1, 1, 2, 3]), S([1.0, 1.0, 2.0, 1.5])])
    case('upsample7_nearest_attr', 'Upsample', 7, dict(mode='nearest', scales=[1.0, 1.0, 2.0, 3.0]), [X([1, 1, 2, 2])])
    case('upsample9_linear', 'Upsample', 9, dict(mode='linear'), [X([1, 1, 2, 3]), S([1.0, 1.0, 2.0, 2.0])])


def dump(doc: dict) -> str:
    """JSON with one line per case field, so that a regenerated file diffs by case."""
    head = {k: v for k, v in doc.items() if k != 'cases'}
    lines = ['{']
    for k, v in head.items():
        lines.append(f'  {json.dumps(k)}: {json.dumps(v)},')
    lines.append('  "cases": [')
    for i, c in enumerate(doc['cases']):
        fields = [f'    {json.dumps(k)}: {json.dumps(v)}' for k, v in c.items()]
        lines.append('   {\n' + ',\n'.join(fields) + '\n   }' + (',' if i + 1 < len(doc['cases']) else ''))
    lines.append('  ]')
    lines.append('}')
    return '\n'.join(lines) + '\n'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('out', help='the JSON file to write')
    args = ap.parse_args()
    all_cases()
    names = [c['name'] for c in CASES]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f'duplicate case names: {sorted(dup)}')
    doc = {
        'about': 'Golden cases of the IR ops, written by tools/gen_ir_cases.py (`cargo xtask ir-cases`); '
                 'do not edit by hand. Inputs with "pat": s hold (i * 7 + s * 3) % 11 mapped per dtype '
                 '(floats (v - 5) / 4, u8 20 v, signed integers v - 5); null inputs are omitted optional ones. '
                 'A value passes when |got - want| <= tolerance * (1 + |want|).',
        'versions': {'onnxruntime': ort.__version__, 'onnx': onnx.__version__, 'numpy': np.__version__},
        'cases': CASES,
    }
    text = dump(doc)
    assert json.loads(text) == json.loads(json.dumps(doc)), 'dump() must write the same JSON as json.dumps'
    with open(args.out, 'w') as f:
        f.write(text)
    print(f'{len(CASES)} cases -> {args.out}')


if __name__ == '__main__':
    main()
