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
        "with the in-plane voxel size divided by the scale. The input is never overwritten (an output that "
        "names the input is refused) and the output is written whole or not at all. NaN and infinite input "
        "values are kept in place (counted in a warning); a model that outputs NaN is refused.")
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
    if args.tile < 16 or args.tile > 8192:
        raise UserError("--tile must be between 16 and 8192")
    from mrisr.medical_io import check_output, read_image, write_image
    from mrisr.storage import check_output_path
    from mrisr.upscaling import check_memory, intensity_range, load_upscaler, output_bytes, upscale_pixels

    # Everything that can be checked before the work: the output is not the input, can be written,
    # is of a kind the input can be written as, and the result fits in memory.
    check_output_path(args.output, inputs=[args.input])
    source = read_image(args.input, axis=args.axis)
    check_output(source, args.output)
    if args.scale is not None:
        check_memory(output_bytes(source.pixels, args.scale), f"upscaling {args.input} by {args.scale}")
    upscaler = load_upscaler(args.model, args.scale, args.tile)
    check_memory(output_bytes(source.pixels, upscaler.scale), f"upscaling {args.input} by {upscaler.scale}")
    _, _, non_finite = intensity_range(source.pixels)
    started = time.perf_counter()
    pixels = upscale_pixels(upscaler, source.pixels, progress=not args.quiet and source.slice_count > 1)
    path = write_image(source, pixels, args.output, upscaler.scale)
    shape_in, shape_out = source.pixels.shape[1:3], pixels.shape[1:3]
    print(f"{args.input} ({source.kind}, {source.slice_count} slice(s) of {shape_in[0]}x{shape_in[1]}, "
          f"{source.pixels.dtype}) -> {path} ({shape_out[0]}x{shape_out[1]}, x{upscaler.scale} with "
          f"{upscaler.name}{'' if args.model == 'bicubic' else ' from ' + args.model}) in "
          f"{time.perf_counter() - started:.1f} s")
    if non_finite:
        print(f"warning: {non_finite} NaN or infinite input value(s): left out of the intensity range, "
              f"treated as the minimum by the model, and kept as they were in the {upscaler.scale}x"
              f"{upscaler.scale} output pixels each covers", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
