"""Upscaling whole files, the work of `upscale.py` and `mrisr.upscale_file`: in-plane, slice by slice,
with a trained model (or bicubic); or across the slices of a thick-slice volume with a network learned
from it ('self') or saved by it. Everything that can be checked is checked before the work."""

import dataclasses
import time
from pathlib import Path

from mrisr.core.files import check_output_path
from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.scans.records import make_record, write_record
from mrisr.scans.values import intensity_range
from mrisr.version import __version__

LEARNING = ("steps", "minutes", "start", "profile", "slice_thickness", "save_model")


def upscale_file(model, input_path, output_path, axis=None, scale=None, tile=192, precision=None,
                 slice_thickness=None, profile=None, steps=None, minutes=None, save_model=None, volume_index=None,
                 self_ensemble=True, progress=True, say=inform, start=None, record=True, command=None):
    """Upscale a file in-plane with `model`, or across its slices (`model` 'self' or a network saved
    by it; `self_ensemble`: applied to four flips of the volume, averaged; `start`: 'self' begins from
    the shipped pretrained network for the factor (default), or from random weights with "scratch";
    `profile` "box" (default) or "gaussian"; `minutes` of learning, default 10). `precision`: a Keras
    dtype policy or "auto" (default: float32 in-plane, auto for 'self'). `volume_index`: the volume of
    a 4-D NIfTI. `record`: across slices, write the record of what made the output beside it
    (records.py); `command`: the command line to record. Returns the output path; UserError for bad
    input, before any work where it can be known."""
    from mrisr.scans.through_plane import PROFILES, STARTS
    from mrisr.scans.upscaling import check_options

    model = str(model)
    check_options(scale, tile)
    _check_number("minutes", minutes, 0, 24 * 60, "above 0 and at most 1440 (a day)", exclusive_low=True)
    _check_number("slice thickness", slice_thickness, 0, float("inf"), "a finite number above 0", exclusive_low=True)
    _check_number("steps", steps, 1, 10 ** 7, "a whole number from 1 to 10000000", whole=True)
    _check_number("volume index", volume_index, 0, float("inf"), "a whole number from 0", whole=True)
    _check_number("axis", axis, 0, 2, "0, 1 or 2", whole=True)
    if profile is not None and profile not in PROFILES:
        raise UserError(f"the slice profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if start is not None and start not in STARTS:
        raise UserError(f"the start must be one of {', '.join(STARTS)}, not {start!r}")
    check_output_path(output_path, inputs=[input_path])
    given = {name: value for name, value in zip(LEARNING, (steps, minutes, start, profile, slice_thickness,
                                                             save_model)) if value is not None}
    settings = {"model": model if model == "self" else Path(model).name, "axis": axis, "scale": scale,
                "volume_index": volume_index, "precision": None if precision is None else str(precision),
                "self_ensemble": self_ensemble, **given}
    settings.pop("save_model", None)
    recorded = settings if record else None
    if model == "self":
        return across_slices(model, input_path, output_path, axis, scale, slice_thickness, profile or "box", steps,
                             10.0 if minutes is None else float(minutes), save_model, volume_index, precision or "auto",
                             self_ensemble, progress, say, start or "pretrained", recorded, command)
    if is_through_plane_model(model):
        if given:
            raise UserError(f"{model} is a network saved by 'self': it applies what it learned (its factor and slice "
                            f"profile); {', '.join(name.replace('_', ' ') for name in given)} are for learning with "
                            "MODEL 'self'")
        return across_slices(model, input_path, output_path, axis, scale, volume_index=volume_index,
                             precision=precision or "auto", self_ensemble=self_ensemble, progress=progress, say=say,
                             record=recorded, command=command)
    if given or not self_ensemble:
        raise UserError("saving a model, a slice thickness or profile, steps, minutes, turning the self-ensemble off "
                        "and a start are for upscaling across slices (MODEL 'self')")
    return in_plane(model, input_path, output_path, axis, scale, tile, precision or "float32", progress, say,
                    volume_index)


def _check_number(name, value, low, high, rule, whole=False, exclusive_low=False):
    """UserError unless `value` is None or a number (a whole one with `whole`) inside [low, high]."""
    import numbers

    if value is None:
        return
    kind = numbers.Integral if whole else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not (low < value if exclusive_low else low <= value) \
            or not value <= high:
        raise UserError(f"the {name} must be {rule}, got {value!r}")


def is_through_plane_model(model):
    """Whether `model` names a .keras file of a network saved by 'self': its Keras config says a model
    named through_plane_xF (read from the file's config.json, without building it)."""
    import json
    import zipfile

    if model in ("bicubic", "self") or not Path(model).is_file() or not zipfile.is_zipfile(model):
        return False
    try:
        with zipfile.ZipFile(model) as archive:
            if "config.json" not in archive.namelist():
                return False
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise UserError(f"cannot read {model} as a Keras model: {error}") from None
    name = config.get("config", {}).get("name", "") if isinstance(config, dict) else ""
    return str(name).startswith("through_plane_x")


def in_plane_view(scan, axis):
    """(planes (slices, height, width[, channels]), the axis the slices run along or None, factors of
    an upscale by 1 to fill in) of a scan for slice-by-slice upscaling."""
    import numpy as np

    data = scan.data
    if scan.kind == "picture" or data.ndim == 2:
        return data[None], None
    if data.ndim == 4 and scan.kind == "nifti":
        raise UserError(f"{scan.path} is 4-D ({data.shape[3]} volumes): choose one with `volume_index`")
    if data.ndim != 3:
        raise UserError(f"{scan.path} is {data.ndim}-D: in-plane upscaling takes a 2-D image or a 3-D volume")
    if scan.slice_axis is not None:
        if axis not in (None, scan.slice_axis):
            raise UserError(f"a {scan.describe().split(',')[0]} is upscaled within its slices (axis "
                            f"{scan.slice_axis}), not along axis {axis}")
        axis = scan.slice_axis
    axis = 2 if axis is None else axis
    return np.moveaxis(data, axis, 0), axis


def in_plane(model, input_path, output_path, axis=None, scale=None, tile=192, precision="float32", progress=True,
             say=inform, volume_index=None):
    """Upscale each slice of a file with a model (or bicubic) and write it as the output asks."""
    import numpy as np

    from mrisr.nets.shipped import describe_model
    from mrisr.scans.scan import check_output, output_kind, read_scan, write_scan
    from mrisr.scans.upscaling import check_memory, load_upscaler, output_bytes, upscale_pixels

    scan = read_scan(input_path, volume_index, say=say)
    output_kind(scan, output_path)
    planes, slice_axis = in_plane_view(scan, axis)
    if scale is not None:
        check_memory(output_bytes(planes, scale), f"upscaling {input_path} by {scale}")
    upscaler = load_upscaler(model, scale, tile, precision if model != "bicubic" else "float32", say)
    s = upscaler.scale
    check_memory(output_bytes(planes, s), f"upscaling {input_path} by {s}")
    if slice_axis is None:
        factors = (s, s)
    else:
        factors = [s, s, s]
        factors[slice_axis] = 1
    description = f"upscaled x{s} in-plane ({upscaler.name}, mrisr {__version__})"
    check_output(scan, output_path, factors, description)
    _, _, non_finite = intensity_range(planes)
    started = time.perf_counter()
    upscaled = upscale_pixels(upscaler, planes, progress=progress and len(planes) > 1)
    data = upscaled[0] if slice_axis is None else np.moveaxis(upscaled, 0, slice_axis)
    path = write_scan(scan, data, output_path, factors, description, say)
    say(f"{input_path} ({scan.describe()}) -> {path} ({'x'.join(map(str, data.shape))}, x{s} with "
        f"{upscaler.name}{'' if model == 'bicubic' else ' from ' + describe_model(model)}) in "
        f"{time.perf_counter() - started:.1f} s")
    warn_non_finite(non_finite, "each covers", say)
    return Path(path)


def warn_non_finite(count, where, say=inform):
    if count:
        say(f"warning: {count} NaN or infinite input value(s): left out of the intensity range, treated as the "
            f"minimum by the model, and kept as they were in the output pixels {where}")


def across_slices(model_name, input_path, output_path, axis=None, scale=None, slice_thickness=None, profile="box",
                  steps=None, minutes=10.0, save_model_path=None, volume_index=None, precision="auto",
                  self_ensemble=True, progress=True, say=inform, start="pretrained", record=None, command=None,
                  sources=None):
    """Make the slices of a thick-slice volume finer (through_plane.py) and write it as the output asks,
    with the record of what made it beside it (`record`: the settings to record, None: no record;
    `sources`: what the record names as the source, default the input's path)."""
    from mrisr.core.model_files import save_model
    from mrisr.nets.loading import load_model
    from mrisr.scans.scan import check_output, output_kind, read_scan, write_scan
    from mrisr.scans.through_plane import Recipe, make_plan, upscale_volume
    from mrisr.scans.upscaling import check_memory

    said = []

    def say_and_keep(line):
        said.append(line)
        say(line)

    scan = read_scan(input_path, volume_index, say=say_and_keep)
    if scan.data.ndim == 4:
        raise UserError(f"{input_path} is 4-D ({scan.data.shape[3]} volumes): choose one with `volume_index`")
    if scan.kind == "dicom" and scan.data.ndim == 2:
        raise UserError(f"{input_path} is a single DICOM image: give the folder of the series' slices (or a "
                        "multi-frame file)")
    output_kind(scan, output_path)
    model = None
    factor = scale
    if model_name != "self":
        model = load_model(model_name)
        trained_factor = int(model.input_shape[-1]) - 1
        if factor is not None and factor != trained_factor:
            raise UserError(f"{model_name} makes {trained_factor} thin slices per thick slice, not `scale` {factor}")
        factor = trained_factor
    elif save_model_path:
        if not str(save_model_path).endswith(".keras"):
            raise UserError(f"`save_model_path` needs a .keras file name, not {Path(save_model_path).name}")
        check_output_path(save_model_path, inputs=[input_path, output_path])
    plan = make_plan(scan, axis, factor, slice_thickness, profile, profile_known=model is None)
    check_memory(scan.data.size * plan.profile.factor * (8 + scan.data.dtype.itemsize) + scan.data.size * 8,
                 f"upscaling {input_path} across slices by {plan.profile.factor}")
    factors = [1, 1, 1]
    factors[plan.axis] = plan.profile.factor
    check_output(scan, output_path, factors, f"through-plane x{plan.profile.factor}")
    say_and_keep(f"{input_path} ({scan.describe()}): {plan.description}")
    started = time.perf_counter()
    recipe = Recipe() if steps is None else dataclasses.replace(Recipe(), steps=steps)
    data, model, report, non_finite = upscale_volume(scan, plan, recipe, minutes, model, precision, progress,
                                                     say=say_and_keep, self_ensemble=self_ensemble, start=start)
    how = (f"{report.steps} steps learned from the volume, held-out {report.held_out_gain:+.2f} dB over the cubic "
           "spline" if report else f"the network {Path(model_name).name}")
    description = f"through-plane x{plan.profile.factor} ({how}; mrisr {__version__})"
    warn_non_finite(non_finite, "across the slices each covers", say_and_keep)
    path = write_scan(scan, data, output_path, factors, description, say_and_keep)
    seconds = time.perf_counter() - started
    learned = (f"learned from the volume in {report.seconds / 60:.1f} min ({report.steps} steps of "
               f"{1000 * report.step_seconds:.0f} ms, {report.precision})" if report else f"with {model_name}")
    say(f"-> {path} ({'x'.join(map(str, data.shape))}, {data.dtype}), {learned}; {seconds:.0f} s in all")
    if record is not None:
        write_record(path, make_record(input_path, record, plan, report,
                                       [line for line in said if line.startswith("warning")], seconds, command,
                                       sources=sources, network=None if report else model_name))
    if save_model_path and report is not None:
        save_model(model, save_model_path, include_optimizer=False)
        say(f"Saved the network to {save_model_path}")
    return Path(path)
