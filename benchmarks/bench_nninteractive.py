"""nnInteractive's network on a CPU: one forward pass of the released architecture (nnU-Net
ResEnc-L: 6 stages of 32-320 features, blocks 1,3,4,6,6,6; 8 input channels), built from
self-written plans with random weights (the released weights cannot be downloaded here;
the time does not depend on them), eager PyTorch f32 at the released 192^3 patch and at
96^3, and OpenVINO f32 and bf16 at 96^3 (ratios against eager at 96^3, in the same run).

    python benchmarks/bench_nninteractive.py [--json OUT] [--skip-192]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def released_network() -> torch.nn.Module:
    from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet

    return ResidualEncoderUNet(
        input_channels=8,
        n_stages=6,
        features_per_stage=[32, 64, 128, 256, 320, 320],
        conv_op=torch.nn.Conv3d,
        kernel_sizes=[[3, 3, 3]] * 6,
        strides=[[1, 1, 1]] + [[2, 2, 2]] * 5,
        n_blocks_per_stage=[1, 3, 4, 6, 6, 6],
        num_classes=2,
        n_conv_per_stage_decoder=[1] * 5,
        conv_bias=True,
        norm_op=torch.nn.InstanceNorm3d,
        norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=torch.nn.LeakyReLU,
        nonlin_kwargs={"inplace": True},
        deep_supervision=False,
    ).eval()


def _time(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-192", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    net = released_network()
    params = sum(p.numel() for p in net.parameters())
    result: dict = {"parameters": params, "threads": torch.get_num_threads()}
    small = torch.randn(1, 8, 96, 96, 96)
    with torch.inference_mode():
        result["eager_f32_96_s"] = _time(lambda: net(small), 2)
        if not args.skip_192:
            big = torch.randn(1, 8, 192, 192, 192)
            start = time.perf_counter()
            net(big)
            result["eager_f32_192_s"] = time.perf_counter() - start
    try:
        import openvino as ov

        start = time.perf_counter()
        model = ov.convert_model(net, example_input=small)
        result["openvino_convert_s"] = time.perf_counter() - start
        core = ov.Core()
        for precision in ("f32", "bf16"):
            compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
            seconds = _time(lambda c=compiled: c(small.numpy()), 2)
            ref = net(small).detach().numpy()
            out = compiled(small.numpy())[0]
            result[f"openvino_{precision}_96_s"] = seconds
            result[f"openvino_{precision}_speedup"] = result["eager_f32_96_s"] / seconds
            result[f"openvino_{precision}_max_abs_diff"] = float(np.abs(out - ref).max())
    except Exception as err:  # conversion can fail on a new torch: say so, keep the eager figures
        result["openvino_error"] = f"{type(err).__name__}: {err}"
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
