"""Upscale a whole MRI image or volume with a trained model.

    python3 upscale.py pretrained/demo_espcn_x2.keras scan.nii.gz scan_x2.nii.gz
    python3 upscale.py CNN_models/CNN_edsr_L1_model.keras slice.dcm slice_x2.dcm
    python3 upscale.py bicubic image.png image_x2.png
"""

import argparse
import sys
import time

from mrisr.cli import UserError, script_main


def build_parser():
    parser = argparse.ArgumentParser(
        description="Upscale an image (PNG/JPEG/TIFF), a .npy array (2-D image or 3-D volume), a DICOM file or a "
        "NIfTI volume (slice by slice) with a model trained by CNN.py or GAN.py, or with bicubic interpolation. "
        "The output keeps the input's intensity range and data type; DICOM and NIfTI outputs keep the header "
        "with the in-plane voxel size divided by the scale.")
    parser.add_argument("model", metavar="MODEL",
                        help="a .keras model file (fully convolutional networks work on any size; the paper's "
                        "fixed 25x25 models run on overlapping tiles), or 'bicubic'")
    parser.add_argument("input", metavar="INPUT", help="the file to upscale")
    parser.add_argument("output", metavar="OUTPUT",
                        help="the file to write: the input's kind (same suffix family) or .npy")
    parser.add_argument("--axis", type=int, default=2, choices=(0, 1, 2),
                        help="for volumes (NIfTI, 3-D .npy): the axis the slices run along (default 2; "
                        "axial in a RAS-oriented NIfTI)")
    parser.add_argument("--scale", type=int, default=None,
                        help="with 'bicubic': the factor (default 2); with a model: must match the model's")
    parser.add_argument("--tile", type=int, default=192,
                        help="tile side in input pixels for fully convolutional models (default 192); bounds "
                        "memory on large slices, the result does not depend on it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.scale is not None and args.scale < 2:
        raise UserError("--scale must be at least 2")
    if args.tile < 16:
        raise UserError("--tile must be at least 16")
    from mrisr.medical_io import check_output, read_image, write_image
    from mrisr.upscaling import load_upscaler, upscale_pixels

    source = read_image(args.input, axis=args.axis)
    check_output(source, args.output)
    upscaler = load_upscaler(args.model, args.scale, args.tile)
    started = time.perf_counter()
    pixels = upscale_pixels(upscaler, source.pixels, progress=not args.quiet and source.slice_count > 1)
    path = write_image(source, pixels, args.output, upscaler.scale)
    shape_in, shape_out = source.pixels.shape[1:3], pixels.shape[1:3]
    print(f"{args.input} ({source.kind}, {source.slice_count} slice(s) of {shape_in[0]}x{shape_in[1]}, "
          f"{source.pixels.dtype}) -> {path} ({shape_out[0]}x{shape_out[1]}, x{upscaler.scale} with "
          f"{upscaler.name}) in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
