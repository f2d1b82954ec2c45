"""Upscale a whole MRI image or volume with a trained model, or make a thick-slice volume's slices
finer with a network learned from the volume itself.

    python3 upscale.py mri-x2 scan.nii.gz scan_x2.nii.gz             # shipped weights, real MRI, x2
    python3 upscale.py CNN_models/CNN_edsr_L1_consistent_x2_model.keras slice.dcm slice_x2.dcm
    python3 upscale.py bicubic image.png image_x2.png
    python3 upscale.py self thick.nii.gz thin.nii.gz            # across slices, learned from thick.nii.gz
"""

import argparse
import math
import sys
import time

from mrisr.commands.cli import add_precision_option, check_numbers, script_main
from mrisr.errors import UserError
from mrisr.scans.through_plane import Recipe

DEFAULT_STEPS = Recipe.steps


def build_parser():
    parser = argparse.ArgumentParser(
        description="Upscale an image (PNG/JPEG/TIFF), a .npy array (2-D image or 3-D volume), a DICOM file or a "
        "NIfTI volume (slice by slice) with a model trained by CNN.py or GAN.py, or with bicubic interpolation. "
        "Or, with MODEL 'self', make the slices of a thick-slice volume (NIfTI, a folder of DICOM slices, a 3-D "
        ".npy) finer: a network learns from the volume's own in-plane detail how the scanner blurred the slice "
        "axis, and undoes it. The output keeps the input's intensity range and data type; DICOM and NIfTI outputs "
        "keep the header with the voxel size divided by the scale. The input is never overwritten (an output "
        "that names the input is refused) and the output is written whole or not at all. NaN and infinite input "
        "values are kept in place (counted in a warning); a model that outputs NaN is refused.")
    parser.add_argument("model", metavar="MODEL",
                        help="shipped weights by short name: mri-x2 or mri-x4 (trained on real T1 brain MRI, "
                        "figshare brain tumour data set, CC BY 4.0) or demo-x2 (DEMO, MNI152 template); or a .keras "
                        "model file (fully convolutional networks work on any size; the paper's "
                        "fixed 25x25 models run on overlapping tiles; a model saved by 'self' with --save-model "
                        "upscales across slices), 'bicubic', or 'self' (across slices, learned from INPUT)")
    parser.add_argument("input", metavar="INPUT", help="the file to upscale (with 'self': NIfTI, a folder of "
                        "DICOM slices of one series, or a 3-D .npy)")
    parser.add_argument("output", metavar="OUTPUT",
                        help="the file to write: the input's kind (same suffix family) or .npy; for a DICOM "
                        "series a new folder")
    parser.add_argument("--axis", type=int, default=None, choices=(0, 1, 2),
                        help="for volumes: the axis the slices run along (slice by slice: default 2, axial in a "
                        "RAS-oriented NIfTI; with 'self': the axis to make finer, default the one with the largest "
                        "voxel size; needed for .npy)")
    parser.add_argument("--scale", type=int, default=None,
                        help="with 'bicubic': the factor (default 2); with a model: must match the model's; with "
                        "'self': thin slices per thick slice (default: the slice spacing over the in-plane pixel "
                        "size, rounded; needed for .npy)")
    parser.add_argument("--tile", type=int, default=192,
                        help="tile side in input pixels for fully convolutional models (default 192); bounds "
                        "memory on large slices, the result does not depend on it")
    self_options = parser.add_argument_group("across slices ('self', or a model saved by it)")
    self_options.add_argument("--slice-thickness", type=float, default=None, metavar="MM",
                              help="the slices' thickness in mm (default: DICOM's SliceThickness, else the slice "
                              "spacing; thinner than the spacing means a gap between slices)")
    self_options.add_argument("--profile", choices=("box", "gaussian"), default="box",
                              help="the scanner's slice profile: box (default) or gaussian (its full width at half "
                              "maximum is the thickness)")
    self_options.add_argument("--steps", type=int, default=None,
                              help=f"training steps of the network learned by 'self' (default {DEFAULT_STEPS}; "
                              "the gain keeps growing with them: docs/upscaling.md)")
    self_options.add_argument("--minutes", type=float, default=10.0,
                              help="the most time learning may take (default 10): fewer steps are planned, and said, "
                              "when this machine would not make --steps in time")
    self_options.add_argument("--save-model", default=None, metavar="PATH",
                              help="also save the network learned by 'self' (.keras), to apply it again later as "
                              "MODEL")
    self_options.add_argument("--volume-index", type=int, default=None,
                              help="for a 4-D NIfTI: the volume to upscale (from 0)")
    add_precision_option(parser, "upscaling and learning", "float32 for a model, auto for 'self'")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    check_numbers(args, positive=("slice_thickness", "minutes", "steps"))
    upscale_command(args.model, args.input, args.output, axis=args.axis, scale=args.scale, tile=args.tile,
                    slice_thickness=args.slice_thickness, profile=args.profile, steps=args.steps, minutes=args.minutes,
                    save_model=args.save_model, volume_index=args.volume_index, quiet=args.quiet,
                    mixed_precision=args.mixed_precision)


def upscale_command(model, input_path, output_path, axis=None, scale=None, tile=192, slice_thickness=None,
                    profile="box", steps=None, minutes=10.0, save_model=None, volume_index=None, quiet=False,
                    mixed_precision=None):
    """Upscale a file in-plane with `model`, or across its slices (`model` 'self' or a network saved
    by it); checks everything it can before the work. UserError for bad input."""
    if scale is not None and scale < 2:
        raise UserError("--scale must be at least 2")
    if tile < 16 or tile > 8192:
        raise UserError("--tile must be between 16 and 8192")
    if not (0 < minutes <= 24 * 60) or (slice_thickness is not None and not 0 < slice_thickness < math.inf):
        raise UserError("--minutes must be above 0 and at most 1440 (a day), --slice-thickness a finite number "
                        "above 0")
    if steps is not None and not 1 <= steps <= 10 ** 7:
        raise UserError(f"--steps must be a whole number from 1 to 10000000, got {steps}")
    from mrisr.core.files import check_output_path
    from mrisr.core.precision import choose_policy

    check_output_path(output_path, inputs=[input_path])
    if model == "self" or is_through_plane_model(model):
        return across_slices(model, input_path, output_path, axis, scale, slice_thickness, profile, steps, minutes,
                             save_model, volume_index, quiet, choose_policy(mixed_precision or "auto"))
    if save_model or slice_thickness or volume_index is not None or steps is not None:
        raise UserError("--save-model, --slice-thickness, --steps and --volume-index are for upscaling across slices "
                        "(MODEL 'self')")
    precision = choose_policy(mixed_precision) if model != "bicubic" else "float32"
    return slice_by_slice(model, input_path, output_path, axis, scale, tile, quiet, precision)


def is_through_plane_model(model):
    import zipfile

    if model in ("bicubic", "self") or not zipfile.is_zipfile(model):
        return False
    with zipfile.ZipFile(model) as archive:
        return b'"through_plane_x' in archive.read("config.json") if "config.json" in archive.namelist() else False


def slice_by_slice(model, input_path, output_path, axis, scale, tile, quiet, precision="float32"):
    from mrisr.nets.shipped import describe_model
    from mrisr.scans.medical_io import check_output, read_image, write_image
    from mrisr.scans.upscaling import check_memory, intensity_range, load_upscaler, output_bytes, upscale_pixels

    # Everything that can be checked before the work: the output is not the input, can be written,
    # is of a kind the input can be written as, and the result fits in memory.
    axis = 2 if axis is None else axis
    source = read_image(input_path, axis=axis)
    check_output(source, output_path)
    if scale is not None:
        check_memory(output_bytes(source.pixels, scale), f"upscaling {input_path} by {scale}")
    upscaler = load_upscaler(model, scale, tile, precision)
    check_memory(output_bytes(source.pixels, upscaler.scale), f"upscaling {input_path} by {upscaler.scale}")
    _, _, non_finite = intensity_range(source.pixels)
    started = time.perf_counter()
    pixels = upscale_pixels(upscaler, source.pixels, progress=not quiet and source.slice_count > 1)
    path = write_image(source, pixels, output_path, upscaler.scale)
    shape_in, shape_out = source.pixels.shape[1:3], pixels.shape[1:3]
    print(f"{input_path} ({source.kind}, {source.slice_count} slice(s) of {shape_in[0]}x{shape_in[1]}, "
          f"{source.pixels.dtype}) -> {path} ({shape_out[0]}x{shape_out[1]}, x{upscaler.scale} with "
          f"{upscaler.name}{'' if model == 'bicubic' else ' from ' + describe_model(model)}) in "
          f"{time.perf_counter() - started:.1f} s")
    warn_non_finite(non_finite, "each covers")


def warn_non_finite(count, where):
    if count:
        print(f"warning: {count} NaN or infinite input value(s): left out of the intensity range, treated as the "
              f"minimum by the model, and kept as they were in the output pixels {where}", file=sys.stderr)


def across_slices(model_name, input_path, output_path, axis, scale, slice_thickness, profile, steps, minutes,
                  save_model_path, volume_index, quiet, precision="auto"):
    import dataclasses

    from mrisr.core.model_files import save_model
    from mrisr.nets.loading import load_model
    from mrisr.scans.through_plane import make_plan, upscale_volume
    from mrisr.scans.upscaling import check_memory
    from mrisr.scans.volumes import check_volume_output, read_volume, write_volume

    volume = read_volume(input_path, volume_index)
    check_volume_output(volume, output_path)
    model = None
    factor = scale
    if model_name != "self":
        model = load_model(model_name)
        trained_factor = int(model.input_shape[-1]) - 1
        if factor is not None and factor != trained_factor:
            raise UserError(f"{model_name} makes {trained_factor} thin slices per thick slice, not --scale {factor}")
        factor = trained_factor
    elif save_model_path:
        check_output_path_for_model(save_model_path, input_path)
    plan = make_plan(volume, axis, factor, slice_thickness, profile)
    check_memory(volume.data.size * plan.profile.factor * (8 + volume.data.dtype.itemsize) + volume.data.size * 8,
                 f"upscaling {input_path} across slices by {plan.profile.factor}")
    print(f"{input_path} ({volume.kind}, {'x'.join(map(str, volume.data.shape))}, {volume.data.dtype}): "
          f"{plan.description}")
    started = time.perf_counter()
    recipe = Recipe() if steps is None else dataclasses.replace(Recipe(), steps=steps)
    data, model, report, non_finite = upscale_volume(volume, plan, recipe, minutes, model, precision,
                                                     progress=not quiet)
    path = write_volume(volume, data, output_path, plan.axis, plan.profile.factor)
    learned = (f"learned from the volume in {report.seconds / 60:.1f} min ({report.steps} steps of "
               f"{1000 * report.step_seconds:.0f} ms, {report.precision})" if report else f"with {model_name}")
    print(f"-> {path} ({'x'.join(map(str, data.shape))}, {data.dtype}), {learned}; "
          f"{time.perf_counter() - started:.0f} s in all")
    if save_model_path and report is not None:
        save_model(model, save_model_path, include_optimizer=False)
        print(f"Saved the network to {save_model_path}")
    warn_non_finite(non_finite, "across the slices each covers")


def check_output_path_for_model(path, input_path):
    from pathlib import Path

    from mrisr.core.files import check_output_path

    if not str(path).endswith(".keras"):
        raise UserError(f"--save-model needs a .keras file name, not {Path(path).name}")
    check_output_path(path, inputs=[input_path])


if __name__ == "__main__":
    sys.exit(main())
