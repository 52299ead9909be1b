"""Plans built on x86_64 run on aarch64 with the same results.

For each model, on this (x86_64) machine, build three plans from the same ONNX file:
`--target x86_64` (tactics timed here), `--target aarch64` and `--target generic` (both
with heuristic tactics, so their bytes after the header are expected to be identical:
weight packing is the same on every target). Run the x86_64 and generic plans with the
x86_64 `sinter run`, the aarch64 plan with the aarch64 `sinter run` under qemu, on the
cached oracle inputs of every case, and compare element-wise within the FP32 tolerance
|a - b| <= 1e-4 + 1e-3 |b|. The aarch64 plan runs once per kernel tier (SINTER_CPU=neon,
then scalar); for each tier T:
  T vs x86 same plan     aarch64 plan on aarch64 vs generic plan on x86_64
  T vs x86 timed plan    aarch64 plan on aarch64 vs x86_64 plan on x86_64
  T vs onnxruntime       against the stored onnxruntime outputs
and "x86 vs onnxruntime" for the x86_64 plan.
Prints max abs/rel errors per model and case; exits non-zero on any mismatch.

Usage: python cross_check.py --x86 SINTER --arm SINTER_AARCH64 --qemu "qemu-aarch64 -L /"
           --models .cache/testdata --work DIR [--case all|case0|...] MODEL...
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ATOL, RTOL = 1e-4, 1e-3
HEADER = 128


def sanitize(name):
    # As `sinter run --output-dir` names files (crates/cli/src/run.rs).
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"cross-check: {' '.join(map(str, cmd))} failed:\n{p.stdout}{p.stderr}")
    return p.stdout


def errors(got, want):
    """(max abs error, max rel error where |want| >= 1e-2, max of |a-b| / (atol + rtol |b|):
    at most 1 when every element is within tolerance)."""
    if got.shape != want.shape:
        sys.exit(f"cross-check: shape {got.shape} != {want.shape}")
    got, want = got.astype(np.float64), want.astype(np.float64)
    diff = np.abs(got - want)
    big = np.abs(want) >= 1e-2
    rel = diff[big] / np.abs(want[big])
    ratio = diff / (ATOL + RTOL * np.abs(want))
    return float(diff.max(initial=0.0)), float(rel.max(initial=0.0)), float(ratio.max(initial=0.0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--x86", required=True)
    ap.add_argument("--arm", required=True)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--models", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--case", default="all", help="a case directory, or all cases in model.json")
    ap.add_argument("--tiers", default="neon,scalar", help="aarch64 kernel tiers to run (SINTER_CPU)")
    ap.add_argument("model", nargs="+")
    a = ap.parse_args()
    qemu = shlex.split(a.qemu)
    failed = False
    rows = []
    for model in a.model:
        d = a.models / model
        spec = json.loads((d / "model.json").read_text())
        shapes = ",".join(f"{n}:{'x'.join(map(str, s))}" for n, s in spec["shapes"].items())
        work = a.work / model
        work.mkdir(parents=True, exist_ok=True)
        plans = {}
        for target in ("x86_64", "aarch64", "generic"):
            plans[target] = work / f"{target}.plan"
            run([a.x86, "build", d / spec["model"], "-o", plans[target], "--shapes", shapes, "--target", target])
        body = {t: p.read_bytes()[HEADER:] for t, p in plans.items()}
        same = body["generic"] == body["aarch64"]
        print(f"cross-check: {model}: the aarch64 plan is {'identical to' if same else 'NOT identical to'} the generic "
              f"plan after the header; the x86_64 plan (tactics timed here) "
              f"{'is identical too' if body['x86_64'] == body['aarch64'] else 'differs'}", flush=True)
        cases = spec.get("cases", ["case0"]) if a.case == "all" else [a.case]
        for c in cases:
            case = d / c
            inputs = [f"--input={i['name']}={case / i['file']}" for i in spec["inputs"]]
            tiers = a.tiers.split(",")
            outs = {k: work / c / k for k in ("x86_64", "generic", *tiers)}
            t0 = time.monotonic()
            run([a.x86, "run", plans["x86_64"], "--output-dir", outs["x86_64"], *inputs])
            run([a.x86, "run", plans["generic"], "--output-dir", outs["generic"], *inputs])
            t1 = time.monotonic()
            for tier in tiers:
                env = dict(os.environ, SINTER_CPU=tier)
                run([*qemu, a.arm, "run", plans["aarch64"], "--output-dir", outs[tier], *inputs], env=env)
            t2 = time.monotonic()
            print(f"cross-check: {model} {c}: x86_64 runs {t1 - t0:.1f} s, aarch64 runs under qemu "
                  f"({', '.join(tiers)}) {t2 - t1:.1f} s", flush=True)
            for o in spec["outputs"]:
                f = sanitize(o["name"]) + ".npy"
                got = {k: np.load(v / f) for k, v in outs.items()}
                ort = np.load(case / o["file"])
                checks = [("x86 vs onnxruntime", got["x86_64"], ort)]
                for tier in tiers:
                    checks += [
                        (f"{tier} vs x86 {'same' if same else 'generic'} plan", got[tier], got["generic"]),
                        (f"{tier} vs x86 timed plan", got[tier], got["x86_64"]),
                        (f"{tier} vs onnxruntime", got[tier], ort),
                    ]
                for label, x, want in checks:
                    ea, er, ratio = errors(x, want)
                    failed |= not ratio <= 1.0
                    rows.append((f"{model}/{c}", o["name"], label, ea, er, ratio))
    print(f"{'model/case':<18} {'output':<22} {'comparison':<25} {'max abs err':>11} {'max rel err':>11} {'err/tol':>8}")
    for m, o, label, ea, er, ratio in rows:
        verdict = "ok" if ratio <= 1.0 else "FAIL"
        print(f"{m:<18} {o[:22]:<22} {label:<25} {ea:11.2e} {er:11.2e} {ratio:8.3f} {verdict}")
    print("(max rel err over elements with |reference| >= 1e-2; err/tol = max |a-b| / (1e-4 + 1e-3 |b|), <= 1 passes)")
    if failed:
        sys.exit(f"cross-check: outputs differ beyond |a-b| <= {ATOL} + {RTOL}|b|")
    print("cross-check: all outputs within tolerance")


if __name__ == "__main__":
    main()
