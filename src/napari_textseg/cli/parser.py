"""The argument parser: every command and option, with no heavy import (the handlers load later)."""

from __future__ import annotations

import argparse

from napari_textseg import __version__
from napari_textseg.engine.text.backends import AUTO, BACKENDS

__all__ = ["build_parser"]


def _embedding_options(command: argparse.ArgumentParser) -> None:
    """Where the encoder runs and whether slice embeddings are kept on disk (segment, label)."""
    command.add_argument(
        "--runtime",
        choices=("auto", "torch", "openvino"),
        default="auto",
        help="where LiteMedSAM's image encoder runs: auto (default: OpenVINO on a CPU when "
        "installed, else PyTorch), torch, or openvino",
    )
    command.add_argument(
        "--precision",
        choices=("f32", "bf16"),
        default="f32",
        help="encoder precision: f32 (default, equal to PyTorch) or bf16 (OpenVINO only: about "
        "2x faster again, masks move by a few pixels)",
    )
    command.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="folder of the slice-embedding cache (default: the user cache folder)",
    )
    command.add_argument(
        "--no-cache", action="store_true", help="keep slice embeddings in memory only"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-textseg",
        description="Point-click and text-prompted 3D segmentation in napari. "
        "Without a subcommand, opens napari with the plugin's widgets.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    view = sub.add_parser("view", help="open files in napari with the plugin's widgets")
    view.add_argument("files", nargs="+", help="NIfTI or TIFF files, or DICOM series folders")
    view.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    view.set_defaults(handler="viewer:view")

    demo = sub.add_parser("demo", help="open the sample abdominal CT with the plugin's widgets")
    demo.add_argument(
        "--screenshot", metavar="PNG", help="save a screenshot of the window and exit"
    )
    demo.add_argument(
        "--window", default="1400x850", metavar="WxH", help=argparse.SUPPRESS
    )  # screenshot size
    demo.add_argument(
        "--stacked", action="store_true", help=argparse.SUPPRESS
    )  # the four separate docks, stacked
    demo.add_argument(
        "--section",
        default="prompts",
        choices=("prompts", "propagation", "text", "compare"),
        help=argparse.SUPPRESS,
    )  # the TextSeg tab in front (screenshots)
    demo.add_argument(
        "--phantom",
        action="store_true",
        help="a synthetic CT phantom with the phantom SAM loaded: the whole workflow offline",
    )
    demo.set_defaults(handler="viewer:demo")

    ph = sub.add_parser(
        "phantom", help="write a synthetic phantom and its reference labels, for the phantom models"
    )
    ph.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="folder for the image and its labels"
    )
    ph.add_argument(
        "--kind", choices=("ct", "nuclei"), default="ct", help="CT abdomen (NIfTI) or nuclei (TIFF)"
    )
    ph.add_argument("--seed", type=int, default=1, help="which phantom (default 1, the demo's)")
    ph.set_defaults(handler="info:phantom")

    info = sub.add_parser(
        "info", help="print shape, spacing, orientation, modality, intensity range"
    )
    info.add_argument("file", help="NIfTI or TIFF file, or DICOM series folder")
    info.set_defaults(handler="info:info")

    seg = sub.add_parser(
        "segment", help="box- or click-prompted 3D segmentation (LiteMedSAM, SAM, SAM2)"
    )
    seg.add_argument("image", help="NIfTI or TIFF file, or DICOM series folder")
    seg.add_argument(
        "--point", action="append", default=[], metavar="Z,Y,X", help="positive click (voxels)"
    )
    seg.add_argument(
        "--negative", action="append", default=[], metavar="Z,Y,X", help="negative click"
    )
    seg.add_argument(
        "--box", action="append", default=[], metavar="Z,Y0,X0,Y1,X1", help="box on a slice"
    )
    seg.add_argument("--propagate", action="store_true", help="propagate through the volume")
    seg.add_argument(
        "--memory", choices=("fifo", "ranked"), default="fifo", help="memory-bank policy (SAM2)"
    )
    seg.add_argument(
        "--projection",
        choices=("box", "point"),
        default="box",  # = PropagationSettings()
        help="SAM propagation: prompt each slice with its neighbour's deepest point and box "
        "(default), "
        "or the point alone (no box to take in an adjacent organ)",
    )
    seg.add_argument(
        "--memory-size", type=int, default=6, metavar="N", help="memories kept (SAM2, at most 6)"
    )
    seg.add_argument("--direction", choices=("both", "forward", "backward"), default="both")
    seg.add_argument(
        "--stop-empty",
        type=int,
        default=2,
        metavar="N",
        help="stop after N consecutive empty slices (0: never)",
    )
    seg.add_argument("--slice-range", metavar="LO,HI", help="propagate only within these slices")
    seg.add_argument(
        "--offload", action="store_true", help="keep memories in host RAM (long volumes)"
    )
    seg.add_argument(
        "--roi-mm",
        type=float,
        metavar="SIZE",
        help="tumour ROI mode: box of SIZE mm around the clicks",
    )
    seg.add_argument(
        "--roi",
        action="store_true",
        help="box ROI mode: crop every slice to 3x the box (at least 64 px) around it, so a small "
        "lesion "
        "fills the model's input (off by default: docs/segmentation.md has the figures)",
    )
    seg.add_argument(
        "--confine", metavar="LABELS", help="a label file on the same grid to confine the result to"
    )
    seg.add_argument(
        "--confine-label",
        action="append",
        default=[],
        metavar="V",
        help="label value(s) in --confine",
    )
    seg.add_argument("--fill-holes", action="store_true", help="fill enclosed holes")
    seg.add_argument(
        "--keep-clicked", action="store_true", help="keep only components holding a positive click"
    )
    seg.add_argument(
        "--model",
        help="model id (see 'models list'; default litemedsam, installed with the "
        "plugin: a box model, give --box)",
    )
    seg.add_argument(
        "--checkpoint", metavar="FILE", help="a local checkpoint file (nninteractive: its folder)"
    )
    seg.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    seg.add_argument(
        "--scribble",
        action="append",
        default=[],
        metavar="LABELS",
        help="nninteractive: scribbles as a label file on the image's grid (1 positive, "
        "2 negative)",
    )
    seg.add_argument(
        "--lasso",
        action="append",
        default=[],
        metavar="LABELS",
        help="nninteractive: lasso regions as a label file on the image's grid (1 positive, "
        "2 negative)",
    )
    seg.add_argument(
        "--no-autozoom", action="store_true", help="nninteractive: no AutoZoom (on by default)"
    )
    seg.add_argument(
        "--server",
        metavar="URL",
        help="nninteractive: segment on an nnInteractive server (nninteractive-client)",
    )
    seg.add_argument("--value", type=int, default=1, help="label value of the object (default 1)")
    seg.add_argument("--name", default="object", help="label name for the sidecar")
    seg.add_argument(
        "-o", "--output", required=True, metavar="OUT", help=".nii.gz, .nii, .tif or .tiff"
    )
    _embedding_options(seg)
    seg.set_defaults(handler="segment:segment")

    lab = sub.add_parser(
        "label", help="text-prompted organ labelling (VoxTell, Medical-SAM3, or CLIP + SAM)"
    )
    lab.add_argument("image", help="NIfTI or TIFF file, or DICOM series folder")
    lab.add_argument(
        "--text",
        action="append",
        required=True,
        metavar="NAME",
        help="a target (repeat, or comma-separate): liver, 'left kidney', LK, ...",
    )
    lab.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="NAME:Z,Y,X",
        help="text + click: a click on target NAME (then CLIP is not needed for it)",
    )
    lab.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="NAME:Z,Y0,X0,Y1,X1",
        help="text + box: a box round target NAME on slice Z (how a box model, the default "
        "litemedsam, names organs without CLIP)",
    )
    lab.add_argument(
        "--allow-any-name",
        action="store_true",
        help="label a target the organ vocabulary does not know as typed (CLIP reads free text); "
        "without it, 'livr' gets 'did you mean liver?' and 'kidney' asks which one",
    )
    lab.add_argument(
        "--backend",
        default=AUTO,
        choices=[AUTO, *BACKENDS],
        help="auto (default): the most accurate installed backend with its weights "
        "(VoxTell, then Medical-SAM3 on a GPU), else clip-sam (training-free)",
    )
    lab.add_argument(
        "--weights",
        metavar="PATH",
        help="a local VoxTell model folder or Medical-SAM3 3-D checkpoint (instead of the "
        "download)",
    )
    lab.add_argument(
        "--allow-cpu",
        action="store_true",
        help="run Medical-SAM3 on a CPU anyway (minutes per four-slice clip)",
    )
    lab.add_argument(
        "--model", help="clip-sam: SAM/SAM2 model id (see 'models list'), or sam3 / medical_sam3"
    )
    lab.add_argument("--checkpoint", metavar="FILE", help="a local SAM/SAM2 checkpoint file")
    lab.add_argument("--clip", help="CLIP model id (default none: every target then needs --point)")
    lab.add_argument("--clip-checkpoint", metavar="FILE", help="a local open_clip checkpoint file")
    lab.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    lab.add_argument(
        "-o", "--output", required=True, metavar="OUT", help=".nii.gz, .nii, .tif or .tiff"
    )
    _embedding_options(lab)
    lab.set_defaults(handler="segment:label")

    bat = sub.add_parser("batch", help="label a cohort on Dask distributed (resumable)")
    bat.add_argument(
        "source",
        help="manifest .csv (columns image[, reference, case]) or a glob such as 'scans/*.nii.gz'",
    )
    what = bat.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="NAME",
        help="targets (repeat or comma-separate)",
    )
    what.add_argument(
        "--prompts",
        metavar="FILE",
        help='JSON: {"case": [{"name": "liver", "boxes": [[z,y0,x0,y1,x1]], "points": [[z,y,x]], '
        '"negative": [], "propagate": true}]} (boxes for the default litemedsam)',
    )
    bat.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="one <case>.nii.gz each, results.csv"
    )
    bat.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing Dask scheduler (default: a LocalCluster)",
    )
    bat.add_argument("--workers", type=int, metavar="N", help="LocalCluster worker processes")
    bat.add_argument(
        "--model",
        help="model id (see 'models list'; default for --prompts: litemedsam, a box model)",
    )
    bat.add_argument("--checkpoint", metavar="FILE", help="a local SAM/SAM2 checkpoint file")
    bat.add_argument("--clip", help="CLIP model id, for --text")
    bat.add_argument("--clip-checkpoint", metavar="FILE", help="a local open_clip checkpoint file")
    bat.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    bat.add_argument(
        "--tolerance-mm", type=float, default=2.0, metavar="T", help="NSD tolerance with references"
    )
    bat.set_defaults(handler="batch:batch")

    ev = sub.add_parser(
        "evaluate", help="Dice, IoU, HD95, NSD per label (or instance F1) vs a reference"
    )
    ev.add_argument("prediction", help="predicted label map (NIfTI, TIFF)")
    ev.add_argument("reference", help="reference label map on the same grid")
    ev.add_argument(
        "--labels",
        action="append",
        default=[],
        metavar="V|NAME",
        help="labels to score (repeat or comma-separate; values or names); default: all",
    )
    ev.add_argument(
        "--tolerance-mm", type=float, default=2.0, metavar="T", help="NSD tolerance (default 2 mm)"
    )
    ev.add_argument(
        "--instances",
        action="store_true",
        help="label values are instances (microscopy): report F1 at --iou and true-positive Dice",
    )
    ev.add_argument("--iou", type=float, default=0.5, help="instance match threshold (default 0.5)")
    ev.add_argument(
        "--name",
        metavar="NAME",
        help="the prediction is one object (any label value): score it as the reference's label "
        "NAME "
        "(e.g. kidney_left, 'left kidney')",
    )
    out = ev.add_mutually_exclusive_group()
    out.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    out.add_argument("--csv", metavar="OUT", help="also write the report as CSV")
    ev.set_defaults(handler="evaluate:evaluate")

    vol = sub.add_parser("volumes", help="volume of every label (mL for mm grids)")
    vol.add_argument("labels", help="label map (NIfTI, TIFF)")
    vol.add_argument("--csv", metavar="OUT", help="also write the table as CSV")
    vol.set_defaults(handler="info:volumes")

    dseg = sub.add_parser(
        "export-seg", help="write a label map as DICOM-SEG for its DICOM source series"
    )
    dseg.add_argument("labels", help="label map on the series' grid (NIfTI, TIFF)")
    dseg.add_argument(
        "--source", required=True, metavar="DICOM_DIR", help="the DICOM series folder"
    )
    dseg.add_argument("-o", "--output", required=True, metavar="OUT.dcm")
    dseg.set_defaults(handler="export:export_seg")

    nn = sub.add_parser(
        "export-nnunet", help="write annotated volumes as an nnU-Net v2 raw dataset"
    )
    nn.add_argument(
        "--case",
        nargs=2,
        action="append",
        required=True,
        metavar=("IMAGE", "LABELS"),
        help="an image and its label map (repeat for more cases)",
    )
    nn.add_argument("-o", "--output", required=True, metavar="ROOT", help="nnUNet_raw folder")
    nn.add_argument("--id", type=int, required=True, help="dataset id, 1..999")
    nn.add_argument("--name", required=True, help="dataset name (letters, digits, _ and -)")
    nn.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    nn.set_defaults(handler="export:export_nnunet")

    cache = sub.add_parser("cache", help="list or clear the slice-embedding cache")
    csub = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    for action, text in (
        ("list", "the cached images, their model, size and when last used"),
        ("clear", "delete every cached embedding"),
    ):
        csub.add_parser(action, help=text).add_argument(
            "--cache-dir", metavar="DIR", help="the cache folder (default: the user cache folder)"
        )
    cache.set_defaults(handler="cache:cache")

    models = sub.add_parser("models", help="list, download and locate model checkpoints")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    msub.add_parser("list", help="the known models and whether they are downloaded")
    mpath = msub.add_parser("path", help="the cache folder, or where a model's checkpoint lives")
    mpath.add_argument("model", nargs="?", help="model id")
    mdown = msub.add_parser("download", help="fetch, verify and cache a checkpoint")
    mdown.add_argument("model", help="model id (see 'models list')")
    mdown.add_argument("--accept-license", action="store_true", help="accept the model's licence")
    mdown.add_argument("--quiet", action="store_true", help="no progress bar")
    mverify = msub.add_parser("verify", help="load a checkpoint strictly into its architecture")
    mverify.add_argument("model", help="model id naming the architecture")
    mverify.add_argument(
        "--checkpoint", metavar="FILE", help="a local file instead of the cached one"
    )
    mverify.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    models.set_defaults(handler="models:models")
    return parser
