"""Benchmark: milliseconds to upscale one 512x512 slice x2, for every architecture and bicubic.

Speed does not depend on the weights, so each network is built fresh (random weights) and run
through the same path as upscale.py (mrisr.upscaling): whole slice for the fully convolutional
networks with the default tile of 192 input pixels (so a 512x512 slice is 9 tiles), overlapping
25x25 tiles for the paper's fixed-size CNN and generator. Warm-up first, then the median of
--repeats runs. Usage: python3 -m benchmarks.upscale_speed [--repeats 5] [--size 512]
"""

import argparse

import numpy as np

from benchmarks.machine import matmul_gflops, median_seconds


def upscalers(tile):
    from mrisr.nets import models
    from mrisr.scans.upscaling import BicubicUpscaler, ConvolutionalUpscaler, FixedSizeUpscaler, receptive_margin

    yield "bicubic (NumPy, OpenCV kernel)", "-", BicubicUpscaler(2)
    for arch in ("espcn", "edsr"):
        model = models.build_cnn(arch, 25, 50, 4)
        network = models.grey_network(model)
        yield (f"{arch} (tiles of {tile})", f"{model.count_params():,}",
               ConvolutionalUpscaler(network, 2, arch, tile, receptive_margin(network)))
    for name, model in (("paper generator", models.paper_generator()), ("paper CNN", models.paper_cnn())):
        yield f"{name} (25x25 tiles, blended)", f"{model.count_params():,}", FixedSizeUpscaler(model, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=512, help="slice side (default 512)")
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("--skip-paper-cnn", action="store_true", help="leave out the 200M-parameter paper CNN")
    args = parser.parse_args()
    slice_ = np.random.default_rng(0).random((args.size, args.size))
    print(f"float32 matmul limit of this machine: {matmul_gflops():.0f} GFLOP/s")
    print(f"{'method':<38} {'parameters':>12} {'ms per ' + str(args.size) + 'x' + str(args.size) + ' slice':>22}")
    for name, parameters, upscaler in upscalers(args.tile):
        if args.skip_paper_cnn and name.startswith("paper CNN"):
            continue
        output = upscaler.upscale(slice_)  # warm-up: tracing and first allocation
        assert output.shape == (2 * args.size, 2 * args.size)
        seconds = median_seconds(lambda: upscaler.upscale(slice_), args.repeats, warmups=0)
        print(f"{name:<38} {parameters:>12} {1000 * seconds:>22.1f}", flush=True)


if __name__ == "__main__":
    main()
