"""Benchmark: peak memory of upscale.py's fixed-size tile path (the paper's CNN and generator) on
large images, and of the whole file path (upscale_pixels) on a large image.

Each size runs in its own process; the figure is the growth of the peak resident memory (ru_maxrss)
over the process's peak after the model is built and warmed up, so it is what the image costs.
The tiles are made, predicted and blended one batch at a time, so the growth should follow the
output image (two float32 accumulators and one float64 slice), not the tile count.
Usage: python3 -m benchmarks.upscale_memory [--sizes 1000,2000,4000] [--model generator|cnn]
"""

import argparse
import resource
import subprocess
import sys
import time

import numpy as np


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child(size, model_name):
    from mrisr.nets import models
    from mrisr.scans.upscaling import FixedSizeUpscaler, upscale_pixels

    model = models.paper_generator() if model_name == "generator" else models.paper_cnn()
    upscaler = FixedSizeUpscaler(model, model_name)
    upscale_pixels(upscaler, np.random.default_rng(0).random((1, 256, 256)))  # warm-up, full tile batches
    image = (np.random.default_rng(1).random((1, size, size)) * 4000).astype(np.int16)
    baseline = peak_mib()
    started = time.perf_counter()
    output = upscale_pixels(upscaler, image)
    seconds = time.perf_counter() - started
    tiles = len(upscaler._starts(size)) ** 2
    output_mib = output.nbytes / 2**20
    print(f"{size}x{size}\t{tiles}\t{peak_mib() - baseline:.0f}\t{output_mib:.0f}\t{seconds:.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,2000,4000")
    parser.add_argument("--model", choices=("generator", "cnn"), default="generator",
                        help="the paper generator (default) or the 200M-parameter paper CNN (slow, 2.4 GB)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.model)
        return
    print(f"paper {args.model}, int16 image, x2 through upscale_pixels (the path of upscale.py)")
    print(f"{'image':>10} {'tiles':>8} {'peak growth MiB':>16} {'output MiB':>11} {'seconds':>8}")
    for size in [int(s) for s in args.sizes.split(",")]:
        result = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", str(size)],
                                capture_output=True, text=True, check=True)
        image, tiles, growth, output, seconds = result.stdout.strip().splitlines()[-1].split("\t")
        print(f"{image:>10} {tiles:>8} {growth:>16} {output:>11} {seconds:>8}", flush=True)


if __name__ == "__main__":
    main()
