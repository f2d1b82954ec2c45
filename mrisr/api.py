"""The Python API: upscale arrays, NIfTI images and files, read crops, evaluate a model.

    import mrisr

    bigger = mrisr.upscale(image)                                 # 2-D array, shipped weights mri-x2
    volume_x4 = mrisr.upscale(volume, model="mri-x4", axis=2)      # 3-D array, slices along axis 2
    nifti_x2 = mrisr.upscale(nibabel.load("scan.nii.gz"))          # a NIfTI image, header and affine kept
    mrisr.upscale_file("scan.nii.gz", "scan_x2.nii.gz")            # any file upscale.py reads
    thin = mrisr.upscale_file("thick.nii.gz", "thin.nii.gz", model="self")  # across slices
    study = mrisr.upscale_study("bids_dataset", "derivatives/mrisr")       # every scan of a study
"""


import numpy as np

from mrisr.errors import UserError
from mrisr.paper.splits import SplitOptions
from mrisr.scans.geometry import check_affine, tiling_affine
from mrisr.scans.values import check_values


def load_upscaler(model="mri-x2", scale=None, tile=192):
    """An upscaler to reuse across calls: shipped weights by short name (`mri-x2`, `mri-x4`,
    `demo-x2`), a .keras file trained here, or `bicubic`."""
    from mrisr.scans import upscaling

    return upscaling.load_upscaler(str(model), scale, tile)


def upscale(data, model="mri-x2", scale=None, axis=2, tile=192, progress=False):
    """Upscale an image in-plane, or each slice of a volume.

    `data`: a 2-D array (one image), a 3-D array (slices along `axis`) or a nibabel NIfTI image
    (returns a new image with the in-plane voxel size divided by the scale, the affine moved so the
    new voxels tile the old ones, the header and data type kept). Arrays come back in their data
    type and intensity range; NaN and infinite values stay where they were. `model`: as in
    load_upscaler, or an upscaler it returned."""
    from mrisr.scans.upscaling import Upscaler, check_options, upscale_pixels

    if isinstance(model, Upscaler):
        check_options(scale, tile)
        if scale is not None and scale != model.scale:
            raise UserError(f"this upscaler upscales by {model.scale}, not by scale {scale}")
        upscaler = model
    else:
        upscaler = load_upscaler(model, scale, tile)
    if axis not in (0, 1, 2):
        raise UserError(f"axis must be 0, 1 or 2, not {axis!r}")
    if hasattr(data, "affine") and hasattr(data, "dataobj"):
        return _upscale_nifti(data, upscaler, axis, progress)
    if isinstance(data, np.ma.MaskedArray):
        return _upscale_masked(data, upscaler, axis, progress)
    pixels = np.asarray(data)
    check_values(pixels, "the array")
    if pixels.ndim == 2:
        return upscale_pixels(upscaler, pixels[None], progress=progress)[0]
    if pixels.ndim != 3:
        raise UserError(f"expected a 2-D image or a 3-D volume, not an array of shape {pixels.shape}")
    upscaled = upscale_pixels(upscaler, np.moveaxis(pixels, axis, 0), progress=progress)
    return np.moveaxis(upscaled, 0, axis)


def _upscale_masked(data, upscaler, axis, progress):
    """A masked array: the masked values left out of the intensity range (filled with the smallest
    unmasked value for the network), and masked in each of the output pixels they cover."""
    mask = np.ma.getmaskarray(data)
    if mask.all():
        raise UserError("every value of the masked array is masked: nothing to upscale")
    filled = data.filled(data.min()) if mask.any() else np.asarray(data)
    upscaled = upscale(filled, upscaler, axis=axis, progress=progress)
    for dimension in range(mask.ndim):
        if mask.ndim == 2 or dimension != axis:
            mask = np.repeat(mask, upscaler.scale, axis=dimension)
    return np.ma.MaskedArray(upscaled, mask=mask)


def _upscale_nifti(image, upscaler, axis, progress):
    """A NIfTI image upscaled in-plane: the stored values and their scaling, its class (NIfTI-1 or -2),
    header and codes kept (nifti.finer_nifti)."""
    from mrisr.scans.nifti import finer_nifti, stored_values

    data, scaling = stored_values(image)
    check_values(data, "the NIfTI image")
    if data.ndim not in (2, 3):
        raise UserError(f"expected a 2-D or 3-D NIfTI image, not {data.ndim}-D")
    check_affine(image.affine, "the NIfTI image")
    upscaled = upscale(data, upscaler, axis=axis, progress=progress)
    factors = [upscaler.scale] * data.ndim
    if data.ndim == 3:
        factors[axis] = 1
    return finer_nifti(image, upscaled, tiling_affine(image.affine, factors), scaling)


def upscale_file(input_path, output_path, model="mri-x2", scale=None, axis=None, tile=192, progress=False,
                 **across_slices):
    """Do what `upscale.py MODEL INPUT OUTPUT` does and return the output path: PNG/JPEG/TIFF, .npy,
    DICOM and NIfTI in-plane; with `model="self"` (or a network saved by it) across the slices of a
    thick-slice volume, where `across_slices` takes slice_thickness, profile, steps, minutes, save_model,
    self_ensemble and start ("pretrained" or "scratch") as the command's options do; `volume_index`
    picks a volume of a 4-D NIfTI for either."""
    from mrisr.scans.upscale_file import upscale_file as upscale_whole_file

    return upscale_whole_file(str(model), str(input_path), str(output_path), axis=axis, scale=scale, tile=tile,
                              progress=progress, **across_slices)


def upscale_study(input_path, output_dir, **options):
    """Do what `upscale.py study INPUT OUTPUT_DIR` does and return a StudyResult (`.results`: one dict a
    scan, `.failed`, `.report`): `options` as the command's (participants, suffixes, workers, scheduler,
    learn "scan" or "protocol", fine_tune_steps, network, and every option of 'self': axis, scale,
    slice_thickness, profile, steps, minutes, start, precision, self_ensemble; progress, say)."""
    from mrisr.studies.engine import run_study

    return run_study(input_path, output_dir, **options)


def read_crops(folder, limit=None):
    """A crop folder made by extract_crops.py, as a CropSet (inputs and targets float32 RGBA in [0, 1])."""
    from mrisr.paper import crops

    return crops.read_crops(folder, limit)


def evaluate(model, crops_folder, pairs=None, scale=None, out_dir=None, self_ensemble=False):
    """What `CNN.py evaluate` does: the model's recorded test set (or the paper's split of other
    crops) scored beside bicubic; returns an Evaluation (per-image and mean PSNR/SSIM)."""
    from mrisr.paper.evaluation import evaluate_model_file

    return evaluate_model_file(str(model), crops_folder, SplitOptions(), "model", pairs=pairs, scale=scale,
                               out_dir=out_dir, self_ensemble=self_ensemble)
