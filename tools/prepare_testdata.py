#!/usr/bin/env python3
"""Prepare the model test data that Sinter's tests compare against onnxruntime.

The single entry point CI calls (through `cargo xtask`). Needs only the packages in
tools/requirements.txt (onnx, onnxruntime, numpy, Pillow) and pip to fetch one wheel.

For each model it writes:

    OUT_DIR/<model>/model.onnx
    OUT_DIR/<model>/model.json                      manifest, see write_model()
    OUT_DIR/<model>/<case>/inputs/<input>.npy
    OUT_DIR/<model>/<case>/outputs/<output>.npy     onnxruntime CPU results (the oracle)

Models:
    ppocr_det     ch_PP-OCRv4_det_infer.onnx from the rapidocr_onnxruntime 1.4.4 wheel
    ppocr_cls     ch_ppocr_mobile_v2.0_cls_infer.onnx (models/ copy if present, else wheel)
    resnet50, mobilenetv2, bert
                  materialized from models/<name>.skeleton.onnx (seeded random weights)

File names are the tensor names with every character outside [A-Za-z0-9._-] replaced by
'_'. A stamp file records what the data was built from; a rerun with the same inputs
returns at once.

Usage:
    python tools/prepare_testdata.py OUT_DIR [--cache-dir DIR] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
MODELS = os.path.join(REPO, "models")

# Bump when the layout or the content of the generated data changes in a way the input
# hashes below do not capture.
DATA_VERSION = "sinter-testdata-1"
STAMP = "stamp.json"

WHEEL_REQ = "rapidocr-onnxruntime==1.4.4"
WHEEL_FILE = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
WHEEL_SHA256 = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
OCR_MODELS = {
    "ppocr_det": (
        "ch_PP-OCRv4_det_infer.onnx",
        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    ),
    "ppocr_cls": (
        "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    ),
}
SKELETON_MODELS = ["resnet50", "mobilenetv2", "bert"]
ALL_MODELS = ["ppocr_det", "ppocr_cls", *SKELETON_MODELS]

# One build shape per model: every case of a model has these input shapes.
DET_SHAPE = [1, 3, 320, 320]
CLS_SHAPE = [1, 3, 48, 192]
IMAGENET_SHAPE = [1, 3, 224, 224]
BERT_SEQ = 16
RANDOM_CASES = ["case0", "case1", "case2"]


class PrepareError(Exception):
    pass


def log(msg: str) -> None:
    print(f"prepare_testdata: {msg}", flush=True)


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------ model sources


def fetch_wheel(cache_dir: str) -> str:
    """Download the rapidocr wheel (no dependencies, not installed) into cache_dir."""
    path = os.path.join(cache_dir, WHEEL_FILE)
    if os.path.exists(path) and sha256_file(path) == WHEEL_SHA256:
        return path
    os.makedirs(cache_dir, exist_ok=True)
    log(f"downloading {WHEEL_REQ} into {cache_dir}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        cache_dir,
        WHEEL_REQ,
    ]
    try:
        subprocess.run(cmd, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise PrepareError(f"pip download {WHEEL_REQ} failed: {e}") from e
    if not os.path.exists(path):
        raise PrepareError(f"pip download did not produce {path}")
    digest = sha256_file(path)
    if digest != WHEEL_SHA256:
        raise PrepareError(f"{path}: sha256 {digest}, expected {WHEEL_SHA256}")
    return path


def ocr_model_bytes(key: str, cache_dir: str) -> tuple[bytes, str]:
    """The OCR model's bytes and a description of where they came from."""
    filename, sha = OCR_MODELS[key]
    bundled = os.path.join(MODELS, filename)
    if os.path.exists(bundled):
        with open(bundled, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != sha:
            log(f"warning: {bundled} differs from the {WHEEL_REQ} copy; using it anyway")
        return data, f"models/{filename}"
    wheel = fetch_wheel(cache_dir)
    member = f"rapidocr_onnxruntime/models/{filename}"
    try:
        with zipfile.ZipFile(wheel) as z:
            data = z.read(member)
    except (zipfile.BadZipFile, KeyError) as e:
        raise PrepareError(f"{wheel}: cannot read {member}: {e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha:
        raise PrepareError(f"{member}: sha256 {digest}, expected {sha}")
    return data, f"{WHEEL_FILE}:{member}"


# ------------------------------------------------------------------------------ inputs


def _font(size: int, cjk: bool = False):
    """A TrueType font: DejaVuSans (or a CJK font) when installed, else Pillow's bundled one."""
    from PIL import ImageFont

    names = (
        [
            "NotoSansCJK-Regular.ttc",
            "NotoSansSC-Regular.otf",
            "wqy-microhei.ttc",
            "wqy-zenhei.ttc",
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        ]
        if cjk
        else ["DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]
    )
    for name in names:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    if cjk:
        return None
    return ImageFont.load_default(size=size)


DET_LINES = [
    ("Sinter inference runtime", 44),
    ("ONNX -> builder -> plan", 36),
    ("Invoice No. 2024-0613", 30),
    ("Total: 1,234.56 EUR", 40),
    ("The quick brown fox jumps", 28),
    ("over the lazy dog 0123456789", 28),
]
CJK_LINE = ("文字识别测试 你好世界", 40)


def render_document(width: int, height: int):
    """Black text lines on white, like a scanned page (RGB PIL image)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    y = 30
    lines = list(DET_LINES)
    cjk_font = _font(CJK_LINE[1], cjk=True)
    if cjk_font is not None:
        lines.insert(2, CJK_LINE)
    for i, (text, size) in enumerate(lines):
        font = cjk_font if (text, size) == CJK_LINE else _font(size)
        draw.text((30 + 15 * (i % 3), y), text, fill="black", font=font)
        y += int(size * 1.9)
    return img


def render_random_document(rng, width: int, height: int):
    """A seeded random page: random words at random sizes, positions and gray levels on a
    light background with mild noise. Unlike white noise, it gives the detector a
    non-trivial probability map to compare."""
    import numpy as np
    from PIL import Image, ImageDraw

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.,:-/"
    bg = int(rng.integers(200, 256))
    img = Image.new("RGB", (width, height), (bg, bg, bg))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(6, 12))):
        size = int(rng.integers(16, 56))
        words = [
            "".join(rng.choice(list(alphabet), size=int(rng.integers(2, 10))))
            for _ in range(int(rng.integers(1, 5)))
        ]
        ink = int(rng.integers(0, 90))
        xy = (int(rng.integers(0, width // 2)), int(rng.integers(0, height - size)))
        draw.text(xy, " ".join(words), fill=(ink, ink, ink), font=_font(size))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, 6.0, size=(height, width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def render_line(text: str, size: int):
    """One tightly cropped text line (RGB PIL image), as the detector would cut it out."""
    from PIL import Image, ImageDraw

    font = _font(size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    pad = max(2, size // 6)
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), "white")
    ImageDraw.Draw(img).text((pad - left, pad - top), text, fill="black", font=font)
    return img


def det_preprocess(img, shape):
    """rapidocr DetPreProcess with the side limit replaced by the fixed build shape:
    BGR, resize to (H, W) (multiples of 32), (x/255 - 0.5)/0.5, HWC -> NCHW."""
    import numpy as np
    from PIL import Image

    _, _, h, w = shape
    arr = np.asarray(
        img.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32
    )[:, :, ::-1]
    arr = (arr * (1.0 / 255.0) - 0.5) / 0.5
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None]).astype(np.float32)


def cls_preprocess(img, shape):
    """rapidocr TextClassifier.resize_norm_img: keep the aspect ratio at height 48, width
    at most 192, (x/255 - 0.5)/0.5, zero-pad on the right."""
    import numpy as np
    from PIL import Image

    _, c, img_h, img_w = shape
    w, h = img.size
    resized_w = min(img_w, int(math.ceil(img_h * w / float(h))))
    arr = np.asarray(
        img.convert("RGB").resize((resized_w, img_h), Image.Resampling.BILINEAR), dtype=np.float32
    )
    arr = arr[:, :, ::-1].transpose(2, 0, 1) / 255.0
    arr = (arr - 0.5) / 0.5
    out = np.zeros((c, img_h, img_w), dtype=np.float32)
    out[:, :, :resized_w] = arr
    return out[None]


def _rng(model: str, case: str):
    import numpy as np

    key = int.from_bytes(hashlib.sha256(f"{model}/{case}".encode()).digest()[:8], "little")
    return np.random.default_rng(key)


def image_cases(model: str, input_name: str, shape) -> dict[str, dict]:
    import numpy as np

    return {
        case: {input_name: _rng(model, case).standard_normal(shape).astype(np.float32)}
        for case in RANDOM_CASES
    }


def bert_cases(vocab: int) -> dict[str, dict]:
    import numpy as np

    cases = {}
    for i, case in enumerate(RANDOM_CASES):
        rng = _rng("bert", case)
        ids = rng.integers(0, vocab, size=(1, BERT_SEQ), dtype=np.int64)
        mask = np.ones((1, BERT_SEQ), dtype=np.int64)
        if i == 1:
            # Padded sequence: the last 5 positions are masked out (and hold token 0).
            mask[0, BERT_SEQ - 5 :] = 0
            ids[0, BERT_SEQ - 5 :] = 0
        cases[case] = {"input_ids": ids, "attention_mask": mask}
    return cases


# ------------------------------------------------------------------------------ writing


def run_oracle(model_bytes: bytes, cases: dict[str, dict]):
    import onnxruntime as ort

    so = ort.SessionOptions()
    # No graph rewrites: the oracle evaluates the graph as written.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    results = {
        case: dict(zip(out_names, sess.run(out_names, feeds), strict=True))
        for case, feeds in cases.items()
    }
    return [i.name for i in sess.get_inputs()], out_names, results


def _unique_files(names: list[str], what: str) -> dict[str, str]:
    files = {n: sanitize(n) + ".npy" for n in names}
    if len(set(files.values())) != len(files):
        raise PrepareError(f"{what} names collide after sanitising: {names}")
    return files


def write_model(
    out_dir: str,
    key: str,
    model_bytes: bytes,
    source: str,
    cases: dict[str, dict],
    notes: dict | None = None,
) -> dict:
    """Write one model's directory; returns summary statistics of its outputs."""
    import numpy as np

    t0 = time.time()
    in_names, out_names, results = run_oracle(model_bytes, cases)
    first = next(iter(cases.values()))
    if set(first) != set(in_names):
        raise PrepareError(f"{key}: feeds {sorted(first)} do not match model inputs {in_names}")
    in_files = _unique_files(in_names, f"{key} input")
    out_files = _unique_files(out_names, f"{key} output")

    mdir = os.path.join(out_dir, key)
    if os.path.exists(mdir):
        shutil.rmtree(mdir)
    os.makedirs(mdir)
    with open(os.path.join(mdir, "model.onnx"), "wb") as f:
        f.write(model_bytes)

    stats = {}
    for case, feeds in cases.items():
        for sub in ("inputs", "outputs"):
            os.makedirs(os.path.join(mdir, case, sub))
        for name in in_names:
            arr = feeds[name]
            if list(arr.shape) != list(first[name].shape) or arr.dtype != first[name].dtype:
                raise PrepareError(
                    f"{key}/{case}: input {name} differs in shape or dtype from the first case"
                )
            np.save(os.path.join(mdir, case, "inputs", in_files[name]), arr, allow_pickle=False)
        for name in out_names:
            arr = np.asarray(results[case][name])
            if not np.all(np.isfinite(arr)):
                raise PrepareError(f"{key}/{case}: onnxruntime output {name} is not finite")
            np.save(os.path.join(mdir, case, "outputs", out_files[name]), arr, allow_pickle=False)
            stats[f"{case}/{name}"] = (float(arr.min()), float(arr.max()), float(arr.std()))

    first_out = results[next(iter(cases))]
    manifest = {
        "model": "model.onnx",
        "source": source,
        "oracle": f"onnxruntime {importlib.metadata.version('onnxruntime')} "
        "CPUExecutionProvider, ORT_DISABLE_ALL",
        "shapes": {n: list(first[n].shape) for n in in_names},
        "inputs": [
            {
                "name": n,
                "file": f"inputs/{in_files[n]}",
                "dtype": str(first[n].dtype),
                "shape": list(first[n].shape),
            }
            for n in in_names
        ],
        "outputs": [
            {
                "name": n,
                "file": f"outputs/{out_files[n]}",
                "dtype": str(np.asarray(first_out[n]).dtype),
                "shape": list(np.asarray(first_out[n]).shape),
            }
            for n in out_names
        ],
        "cases": list(cases),
    }
    if notes:
        manifest["notes"] = notes
    with open(os.path.join(mdir, "model.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    log(f"{key}: {len(cases)} cases, {time.time() - t0:.1f}s")
    return stats


def prepare_ocr(out_dir: str, cache_dir: str) -> dict:
    stats = {}
    det, det_src = ocr_model_bytes("ppocr_det", cache_dir)
    # case0 is white noise; case1 and case2 are random synthetic pages (white noise alone
    # leaves the sigmoid output at ~0 everywhere, which would compare almost nothing).
    cases = image_cases("ppocr_det", "x", DET_SHAPE)
    for case in ("case1", "case2"):
        page = render_random_document(_rng("ppocr_det", case), 480, 480)
        cases[case] = {"x": det_preprocess(page, DET_SHAPE)}
    cases["text"] = {"x": det_preprocess(render_document(640, 640), DET_SHAPE)}
    stats["ppocr_det"] = write_model(
        out_dir,
        "ppocr_det",
        det,
        det_src,
        cases,
        {
            "case0": "N(0, 1) noise",
            "case1": "seeded random 480x480 page of random words, resized to 320x320, "
            "rapidocr det normalisation",
            "case2": "as case1, another seed",
            "text": "rendered 640x640 page of black text lines, resized to 320x320, "
            "rapidocr det normalisation",
        },
    )

    cls, cls_src = ocr_model_bytes("ppocr_cls", cache_dir)
    line = render_line("Sinter OCR 42", 40)
    cases = image_cases("ppocr_cls", "x", CLS_SHAPE)
    cases["text"] = {"x": cls_preprocess(line, CLS_SHAPE)}
    cases["text_rot180"] = {"x": cls_preprocess(line.rotate(180), CLS_SHAPE)}
    stats["ppocr_cls"] = write_model(
        out_dir,
        "ppocr_cls",
        cls,
        cls_src,
        cases,
        {
            "case0": "N(0, 1) noise",
            "text": "upright rendered text line, rapidocr cls preprocessing (label 0 expected)",
            "text_rot180": "the same line rotated by 180 degrees (label 180 expected)",
        },
    )
    return stats


def prepare_skeleton(out_dir: str, key: str) -> dict:
    sys.path.insert(0, TOOLS)
    try:
        import materialize
    finally:
        sys.path.remove(TOOLS)
    skeleton = os.path.join(MODELS, f"{key}.skeleton.onnx")
    try:
        model = materialize.materialize(skeleton)
    except materialize.MaterializeError as e:
        raise PrepareError(str(e)) from e
    if key == "bert":
        with open(materialize.weights_json_for(skeleton)) as f:
            vocab = int(json.load(f)["bert_config"]["vocab_size"])
        cases = bert_cases(vocab)
    else:
        cases = image_cases(key, model.graph.input[0].name, IMAGENET_SHAPE)
    return {
        key: write_model(
            out_dir, key, model.SerializeToString(), f"models/{key}.skeleton.onnx", cases
        )
    }


# ------------------------------------------------------------------------------- stamp


def stamp_content() -> dict:
    """Everything the generated data depends on."""
    files = [os.path.join(TOOLS, "prepare_testdata.py"), os.path.join(TOOLS, "materialize.py")]
    for key in SKELETON_MODELS:
        files += [
            os.path.join(MODELS, f"{key}.skeleton.onnx"),
            os.path.join(MODELS, f"{key}.weights.json"),
        ]
    for filename, _ in OCR_MODELS.values():
        if os.path.exists(os.path.join(MODELS, filename)):
            files.append(os.path.join(MODELS, filename))
    versions = {}
    for pkg in ("onnx", "onnxruntime", "numpy", "Pillow"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError as e:
            raise PrepareError(f"missing Python package {pkg} (see tools/requirements.txt)") from e
    return {
        "version": DATA_VERSION,
        "wheel": WHEEL_FILE,
        "packages": versions,
        "files": {os.path.relpath(p, REPO): sha256_file(p) for p in files},
        "models": ALL_MODELS,
    }


def up_to_date(out_dir: str, content: dict) -> bool:
    try:
        with open(os.path.join(out_dir, STAMP)) as f:
            if json.load(f) != content:
                return False
    except (OSError, ValueError):
        return False
    for key in ALL_MODELS:
        try:
            with open(os.path.join(out_dir, key, "model.json")) as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            return False
        try:
            paths = [manifest["model"]] + [
                os.path.join(case, t["file"])
                for case in manifest["cases"]
                for t in manifest["inputs"] + manifest["outputs"]
            ]
        except (KeyError, TypeError):
            return False
        if not all(os.path.exists(os.path.join(out_dir, key, p)) for p in paths):
            return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out_dir")
    ap.add_argument(
        "--cache-dir", help="where the downloaded wheel is kept (default OUT_DIR/_downloads)"
    )
    ap.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    args = ap.parse_args(argv)
    out_dir = os.path.abspath(args.out_dir)
    cache_dir = os.path.abspath(args.cache_dir or os.path.join(out_dir, "_downloads"))

    try:
        content = stamp_content()
        if not args.force and up_to_date(out_dir, content):
            log(f"{out_dir} is up to date")
            return 0
        t0 = time.time()
        os.makedirs(out_dir, exist_ok=True)
        stamp_path = os.path.join(out_dir, STAMP)
        if os.path.exists(stamp_path):
            os.remove(stamp_path)
        stats = prepare_ocr(out_dir, cache_dir)
        for key in SKELETON_MODELS:
            stats.update(prepare_skeleton(out_dir, key))
        for key, per_case in stats.items():
            for what, (lo, hi, std) in per_case.items():
                log(f"  {key}/{what}: min {lo:.4g} max {hi:.4g} std {std:.4g}")
        # Written last, atomically: an interrupted run leaves no stamp and is redone.
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".stamp")
        with os.fdopen(fd, "w") as f:
            json.dump(content, f, indent=1)
        os.replace(tmp, stamp_path)
        log(f"wrote {out_dir} in {time.time() - t0:.1f}s")
    except (PrepareError, OSError) as e:
        print(f"prepare_testdata: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
