"""Through-plane super-resolution: the slice profile, the geometry of the thin volume, the network's
consistency, the plane batching, a short training that beats cubic spline, and upscale.py self."""

import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.scans.geometry import tiling_affine
from mrisr.scans.through_plane import (
    SliceProfile,
    apply_network,
    degrade,
    make_plan,
    network_input,
    spline_upsample,
    sub_slices_to_fine,
)
from tests.conftest import run_script, write_nifti


def test_a_box_profile_of_f_slices_is_the_slab_average():
    fine = np.random.default_rng(0).random((24, 5, 3))
    for factor in (2, 3, 4, 8):
        thick = degrade(fine, 0, SliceProfile(factor))
        expected = fine.reshape(24 // factor, factor, 5, 3).mean(axis=1)
        np.testing.assert_allclose(thick, expected, rtol=1e-6)
    # along another axis, and with a start offset (another phase of the thick grid)
    np.testing.assert_allclose(degrade(fine, 2, SliceProfile(3), start=0)[..., 0], fine.mean(axis=2), rtol=1e-6)
    np.testing.assert_allclose(degrade(fine, 0, SliceProfile(4), start=1, count=2)[1], fine[5:9].mean(axis=0),
                               rtol=1e-6)


def test_profiles_with_a_gap_and_gaussian_profiles():
    offsets, weights = SliceProfile(4, 3.0).taps()  # 3 mm thick every 4 mm: a 1-slice gap
    assert offsets.tolist() == [0, 1, 2, 3] and weights.tolist() == pytest.approx([1 / 6, 1 / 3, 1 / 3, 1 / 6])
    assert SliceProfile(4, 3.0).projection().tolist() == pytest.approx([1 / 6, 1 / 3, 1 / 3, 1 / 6])
    offsets, weights = SliceProfile(4, 4.0, "gaussian").taps()
    assert weights.sum() == pytest.approx(1) and weights.tolist() == pytest.approx(weights[::-1].tolist())
    centre = (4 - 1) / 2
    half = weights.max() / 2  # the full width at half maximum is the thickness, up to the sampling
    above = offsets[weights >= half * 0.98]
    assert above.min() - 0.5 <= centre - 2 + 0.5 and above.max() + 0.5 >= centre + 2 - 0.5
    assert SliceProfile(4, 8.0, "gaussian").projection() is None  # reaches far outside its slab
    for bad in (dict(factor=1), dict(factor=4, thickness=0.0), dict(factor=4, kind="triangle")):
        with pytest.raises(UserError):
            SliceProfile(**bad)


def oblique_affine(seed=0):
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.9, 1.1, 1.3])
    affine[:3, 3] = rng.normal(scale=50, size=3)
    return affine


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_thin_voxels_tile_each_thick_voxel_and_restore_the_original_affine(axis, factor):
    original = oblique_affine(axis + 10 * factor)
    to_thick = np.eye(4)
    to_thick[axis, axis] = factor
    to_thick[axis, 3] = (factor - 1) / 2  # a thick voxel at the centre of the F thin slices it averages
    thick_affine = original @ to_thick
    factors = [1, 1, 1]
    factors[axis] = factor
    thin = tiling_affine(thick_affine, factors)
    np.testing.assert_allclose(thin, original, atol=1e-12)
    # voxel centres: thin k lies at thick coordinate (k + 0.5) / F - 0.5 along the axis
    for k in range(2 * factor):
        index = np.array([1.0, 2.0, 3.0, 1.0])
        index[axis] = k
        thick_index = index.copy()
        thick_index[axis] = (k + 0.5) / factor - 0.5
        np.testing.assert_allclose(thin @ index, thick_affine @ thick_index, atol=1e-9)


def test_spline_interpolation_keeps_polynomials_and_the_network_input_layout():
    thick = np.tile(np.arange(16.0)[:, None], (1, 3))  # linear along the slice axis
    thin = spline_upsample(thick, 0, 4)
    inner = slice(24, 40)  # away from the ends, whose boundary condition is not linear
    np.testing.assert_allclose(thin[inner, 0], ((np.arange(64) + 0.5) / 4 - 0.5)[inner], atol=1e-3)
    samples = np.random.default_rng(0).random((9, 2))  # an interpolating spline: through every sample
    np.testing.assert_allclose(spline_upsample(samples, 0, 3)[1::3], samples, atol=1e-5)
    planes = np.random.default_rng(1).random((2, 6, 5)).astype(np.float32)
    features = network_input(planes, 3)
    assert features.shape == (2, 6, 5, 4)
    np.testing.assert_array_equal(features[..., 0], planes)
    spline = np.stack([spline_upsample(p, 0, 3) for p in planes])
    np.testing.assert_allclose(sub_slices_to_fine(features[..., 1:]), spline, atol=1e-5)


def test_the_network_output_averages_back_to_each_thick_slice():
    from mrisr.nets.models import through_plane_network

    for profile in (SliceProfile(4), SliceProfile(4, 3.0)):
        model = through_plane_network(4, profile.projection(), channels=8, blocks=1)
        for layer in model.layers:  # a correction that is not zero
            if layer.weights:
                layer.set_weights([np.random.default_rng(2).normal(0, 0.1, w.shape) for w in layer.get_weights()])
        planes = np.random.default_rng(3).random((2, 7, 9)).astype(np.float32)
        output = np.asarray(model(network_input(planes, 4)))
        fine = sub_slices_to_fine(output)  # (2, 28, 9)
        again = degrade(fine, 1, profile)
        np.testing.assert_allclose(again, planes, atol=1e-5)


def test_planes_in_batches_give_the_result_of_one_batch():
    from mrisr.nets.models import through_plane_network

    model = through_plane_network(2, SliceProfile(2).projection(), channels=8, blocks=1)
    volume = np.random.default_rng(4).random((9, 7, 6)).astype(np.float32)
    whole = apply_network(model, volume, 1, 2, batch_planes=100, progress=False)
    batched = apply_network(model, volume, 1, 2, batch_planes=2, progress=False)
    assert whole.shape == (9, 14, 6)
    np.testing.assert_allclose(batched, whole, atol=1e-6)


def test_the_self_ensemble_averages_the_flipped_volumes_turned_back_and_stays_consistent():
    from mrisr.nets.models import through_plane_network

    profile = SliceProfile(3)
    model = through_plane_network(3, profile.projection(), channels=8, blocks=1)
    for layer in model.layers:  # a correction that is not zero, and not symmetric
        if layer.weights:
            layer.set_weights([np.random.default_rng(5).normal(0, 0.2, w.shape) for w in layer.get_weights()])
    volume = np.random.default_rng(6).random((8, 5, 7)).astype(np.float32)  # slice axis 1: 5 thick slices
    plain = apply_network(model, volume, 1, 3, progress=False)
    expected = np.zeros_like(plain)
    for flips in [(), (1,), (0, 2), (0, 1, 2)]:  # in the volume's own axes: the slice axis is 1
        expected += np.flip(apply_network(model, np.flip(volume, flips).copy(), 1, 3, progress=False), flips)
    ensembled = apply_network(model, volume, 1, 3, progress=False, self_ensemble=True)
    np.testing.assert_allclose(ensembled, expected / 4, atol=1e-5)
    assert np.abs(ensembled - plain).max() > 1e-3  # the flips see other outputs: the mean is not the plain one
    np.testing.assert_allclose(degrade(ensembled, 1, profile), volume, atol=1e-5)  # each thick slice kept


def blob_volume(size=40, seed=0):
    """A piecewise-constant volume of random ellipsoids, lightly smoothed: isotropic structure."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*3 * [np.arange(size)], indexing="ij"), axis=-1).astype(np.float32)
    volume = np.zeros((size,) * 3, np.float32)
    for _ in range(40):
        centre = rng.uniform(0, size, 3)
        radii = rng.uniform(2, 8, 3)
        inside = (((grid - centre) / radii) ** 2).sum(axis=-1) < 1
        volume[inside] += rng.uniform(0.2, 1.0)
    return gaussian_filter(volume, 0.7)


@pytest.mark.slow
def test_a_short_training_on_a_synthetic_volume_beats_cubic_spline():
    from mrisr.scans.through_plane import Recipe, normalise, train_network

    truth = blob_volume()
    profile = SliceProfile(4)
    thick = degrade(truth, 2, profile)
    volume01, low, span = normalise(thick)
    said = []
    model, report = train_network(volume01, 2, profile, Recipe(steps=128), minutes=30, precision="float32",
                                  progress=False, say=said.append)
    ours = apply_network(model, volume01, 2, 4, progress=False) * span + low
    spline = spline_upsample(thick, 2, 4)

    def psnr(volume):
        return 10 * np.log10((truth.max() - truth.min()) ** 2 / np.mean((volume - truth) ** 2))

    assert report.steps == report.planned_steps == 128 and not said  # a number of steps, not a time
    assert psnr(ours) > psnr(spline) + 0.5, (psnr(ours), psnr(spline))
    # the held-out slices tell the same: the network beats the spline there, and is used alone
    assert report.held_out_network > report.held_out_spline and report.blend_weight == 1.0


def test_the_sampler_holds_out_slices_and_its_pairs_are_consistent():
    from mrisr.scans.through_plane import PatchSampler

    planes = np.random.default_rng(7).random((40, 60, 50)).astype(np.float32)
    planes[:, :, :5] = 0  # some background
    for profile in (SliceProfile(4), SliceProfile(4, 3.0), SliceProfile(3, 3.0, "gaussian")):
        sampler = PatchSampler(planes, profile, thick_length=6, width=20, seed=1)
        assert len(sampler.held_out) == 5 and not set(sampler.held_out) & set(sampler.training)
        inputs, targets = sampler.batch(64)
        assert inputs.shape == (64, 6, 20, 1 + profile.factor) and targets.shape == (64, 6, 20, profile.factor)
        if profile.projection() is not None and profile.kind == "box" and profile.thickness == profile.factor:
            # a box of F slices: each thick value is the mean of its sub-slices
            np.testing.assert_allclose(inputs[..., 0], targets.mean(axis=-1), atol=1e-6)
        # the spline channels are the spline of the thick rows
        fine_spline = sub_slices_to_fine(inputs[..., 1:])
        expected = np.stack([spline_upsample(plane, 0, profile.factor) for plane in inputs[..., 0]])
        np.testing.assert_allclose(fine_spline, expected, atol=1e-5)
    # patches come only from the slices asked for
    sampler = PatchSampler(np.stack([np.full((30, 30), k / 40, np.float32) for k in range(40)]), SliceProfile(2),
                           thick_length=4, width=8, seed=0)
    inputs, _ = sampler.batch(32, sampler.held_out)
    assert set(np.round(inputs[:, 0, 0, 0] * 40).astype(int)) <= set(sampler.held_out)


class FixedModel:
    """Stands in for a network in the held-out check: its output is given."""

    def __init__(self, output):
        self.output = output

    def predict(self, inputs, batch_size=None, verbose=0):
        return self.output(inputs)


def test_the_held_out_check_keeps_a_network_that_beats_the_spline_and_blends_one_that_does_not():
    from mrisr.scans.through_plane import PatchSampler, held_out_check

    planes = blob_volume(40, seed=3)
    sampler = PatchSampler(planes / planes.max(), SliceProfile(4), thick_length=6, width=24, seed=0)
    inputs, targets = sampler.batch(256, sampler.held_out, np.random.default_rng(1))
    # the truth itself: far better than the spline, used alone
    network, spline, weight = held_out_check(FixedModel(lambda x: targets), sampler)
    assert network > spline + 10 and weight == 1.0
    # the spline plus noise: worse than the spline; the least-squares weight of pure noise is about 0
    noise = np.random.default_rng(2).normal(0, 0.05, targets.shape)
    network, spline, weight = held_out_check(FixedModel(lambda x: x[..., 1:] + noise), sampler)
    assert network < spline and weight < 0.05
    # halfway between the spline and the truth, plus noise of the same size as the remaining error:
    # worse than the spline alone, and the best blend weighs it about 0.5 * |gain|^2 / (|gain|^2 + |noise|^2)
    error = targets - inputs[..., 1:]
    noise = np.random.default_rng(3).normal(0, 1.5 * np.std(error), targets.shape)
    network, spline, weight = held_out_check(FixedModel(lambda x: x[..., 1:] + 0.5 * error + noise), sampler)
    expected = 0.5 * np.sum(error ** 2) / (0.25 * np.sum(error ** 2) + np.sum(noise ** 2))
    assert network < spline and weight == pytest.approx(expected, abs=0.05)


def test_the_output_of_self_averages_back_to_each_thick_slice_without_clipping():
    """The thin slices of a network (no blend) average back exactly to their thick slice, beyond the
    input's range where a thin slice is brighter than the slab; integers up to rounding, never wrapped."""
    from mrisr.nets.models import through_plane_network
    from mrisr.scans.through_plane import normalise, thin_output, upscale_volume

    profile = SliceProfile(4)
    model = through_plane_network(4, profile.projection(), channels=8, blocks=1)
    for layer in model.layers:  # a correction that is not zero
        if layer.weights:
            layer.set_weights([np.random.default_rng(2).normal(0, 0.05, w.shape) for w in layer.get_weights()])
    thick = degrade(blob_volume(24, seed=2), 2, profile)  # (24, 24, 6)
    for dtype, scale, offset, tolerance in ((np.float32, 1.0, 0.0, 1e-4), (np.int16, 1000.0, 0.0, 0.5),
                                            (np.int32, 1e6, 2**31 - 1 - 1e6 * thick.max(), 0.5)):
        data = np.rint(thick.astype(np.float64) * scale + offset).astype(dtype)
        assert data.min() >= 0
        volume = FakeVolume(data.shape, (1.0, 1.0, 4.0))
        volume.data = data
        plan = make_plan(volume, axis=2, factor=4)
        thin, _, report, _ = upscale_volume(volume, plan, model=model, progress=False)
        assert thin.dtype == dtype and report is None
        if dtype == np.int32:  # near the type's maximum: clipped there, never wrapped to negative values
            assert thin.min() > 0 and thin.max() == np.iinfo(np.int32).max
            continue
        back = degrade(thin.astype(np.float64), 2, profile)
        assert np.abs(back - data).max() <= tolerance * max(1.0, np.abs(data).max() * 1e-6)
        assert thin.max() > data.max()  # brighter than any slab average: not clipped to the input's range
        assert thin.min() >= 0  # a magnitude image (no negative value) gets none, its slabs still averaging back
        raw = thin_output(model, normalise(data)[0], 2, 4, *normalise(data)[1:], np.float64, self_ensemble=True,
                          progress=False)
        assert raw.min() < -0.01 * data.max()  # the network alone would give negative values here


def test_a_time_limit_shorter_than_the_steps_plans_fewer_and_says_so():
    from mrisr.scans.through_plane import Recipe, normalise, say_quality, train_network

    volume01, _, _ = normalise(degrade(blob_volume(24), 2, SliceProfile(2)))
    said = []
    model, report = train_network(volume01, 2, SliceProfile(2), Recipe(steps=5000, channels=8, blocks=1),
                                  minutes=0.001, precision="float32", progress=False, say=said.append)
    assert report.planned_steps == report.steps == 0 and "holds about 0 of the 5000 steps" in said[0]
    say_quality(report, said.append)
    assert any("only 0 training steps" in line for line in said)


def test_the_learning_rate_reaches_its_floor_at_the_last_step_or_at_the_time_limit(monkeypatch):
    import keras

    from mrisr.core.callbacks import TimeLimit
    from mrisr.scans.through_plane import Recipe, normalise, train_network

    volume01, _, _ = normalise(degrade(blob_volume(24), 2, SliceProfile(2)))

    def train(steps, minutes):
        model, report = train_network(volume01, 2, SliceProfile(2), Recipe(steps=steps, channels=8, blocks=1),
                                      minutes=minutes, precision="float32", progress=False, say=lambda line: None)
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)), report

    # The steps end first: the rate of the last step is Keras's CosineDecay over the steps, to 1% of 1e-3.
    rate, report = train(20, minutes=60)
    assert report.steps == 20 and not report.stopped_by_time
    assert rate == pytest.approx(float(keras.optimizers.schedules.CosineDecay(1e-3, 20, alpha=0.01)(19)), rel=1e-5)

    # The time ends first: a clock that advances one second each time it is read (at the limit's creation,
    # then at every step's start and end) over a limit of 120 s less the precision trial's real seconds:
    # at most 60 steps, and at least 5 unless the trial took over 110 s. The last step starts within 2 s
    # of the limit, so the rate is near its floor though the share of the 1000 steps made is small.
    seconds = iter(range(1_000_000))
    monkeypatch.setattr(TimeLimit, "clock", staticmethod(lambda: float(next(seconds))))
    rate, report = train(1000, minutes=2)
    assert report.stopped_by_time and 5 <= report.steps <= 60
    last_progress = (2 * report.steps - 1) / (2 * report.steps)  # the least it can be
    assert rate <= 1e-3 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * last_progress))) * (1 + 1e-5)
    assert rate < 0.02 * 1e-3


def FakeVolume(shape, spacing, thickness=None):
    """A Scan of zeros with these voxel sizes (a NIfTI), or none (a .npy)."""
    from pathlib import Path

    from mrisr.scans.kinds import Scan

    affine = None if spacing is None else np.diag(list(spacing) + [1.0])
    return Scan("nifti" if spacing else "npy", np.zeros(shape, np.int16), Path("volume"), affine, thickness)


def test_the_plan_reads_the_geometry_and_refuses_what_it_cannot_do():
    plan = make_plan(FakeVolume((64, 64, 20), (0.5, 0.5, 6.0)))
    assert plan.axis == 2 and plan.profile.factor == 12 and plan.profile.thickness == pytest.approx(12)
    plan = make_plan(FakeVolume((64, 20, 64), (1.0, 5.0, 1.0), thickness=4.0))  # DICOM: a 1 mm gap
    assert plan.axis == 1 and plan.profile.factor == 5 and plan.profile.thickness == pytest.approx(4.0)
    plan = make_plan(FakeVolume((64, 64, 20), (0.9, 0.9, 3.0)))  # ratio 3.33: factor 3, thin pitch 1 mm
    assert plan.profile.factor == 3 and plan.pitch_ratios == pytest.approx((0.9, 0.9))
    assert "resampled" in plan.description
    with pytest.raises(UserError, match="nearly isotropic"):
        make_plan(FakeVolume((30, 30, 30), (1.0, 1.0, 1.2)))
    assert make_plan(FakeVolume((30, 30, 30), (1.0, 1.0, 1.0)), axis=0, factor=2).profile.factor == 2
    with pytest.raises(UserError, match="only 1.40 times"):
        make_plan(FakeVolume((30, 30, 30), (1.0, 1.0, 1.4)), axis=2)
    with pytest.raises(UserError, match="give `axis` and `scale`"):
        make_plan(FakeVolume((30, 30, 30), None))
    with pytest.raises(UserError, match="at least 4 are needed"):
        make_plan(FakeVolume((30, 30, 3), (1.0, 1.0, 4.0)))


def test_upscale_self_on_a_nifti_volume_and_the_saved_network(tmp_path, capsys):
    import nibabel

    truth = blob_volume(32, seed=1)
    thick = degrade(truth, 1, SliceProfile(2))
    data = np.rint(thick * 1000).astype(np.int16)
    affine = oblique_affine(5) @ np.diag([1.0, 2.0, 1.0, 1.0])
    write_nifti(tmp_path / "thick.nii.gz", data, (1.0, 2.0, 1.0), affine)
    code, out, err = run_script("upscale", ["self", str(tmp_path / "thick.nii.gz"), str(tmp_path / "thin.nii.gz"),
                                            "--steps", "20", "--mixed-precision", "float32", "--save-model",
                                            str(tmp_path / "net.keras"), "--quiet"], capsys)
    assert code == 0, err
    assert "axis 1: 16 slices x2 -> 32" in out and "learned from the volume" in out and "20 steps" in out
    assert "held-out slices of this volume" in out and "warning: only 20 training steps" in out
    assert "starting from the network pretrained for x2 on real T1 slices (through_plane_x2.weights.h5)" in out
    result = nibabel.load(tmp_path / "thin.nii.gz")
    assert result.shape == (32, 32, 32) and result.get_data_dtype() == np.int16
    np.testing.assert_allclose(result.affine, tiling_affine(affine, (1, 2, 1)), atol=1e-5)
    assert result.header.get_zooms() == pytest.approx(tuple(np.linalg.norm(result.affine[:3, :3], axis=0)))
    assert result.header.get_zooms()[1] == pytest.approx(np.linalg.norm(affine[:3, 1]) / 2)
    values = np.asarray(result.dataobj)
    from mrisr.scans.records import input_checksum, read_record

    record = read_record(tmp_path / "thin.nii.gz")  # beside it, thin.json: what made it
    assert record["input"]["sha256"] == input_checksum(tmp_path / "thick.nii.gz")
    assert record["settings"]["steps"] == 20 and record["settings"]["precision"] == "float32"
    assert record["plan"]["axis"] == 1 and record["plan"]["factor"] == 2 and record["learning"]["steps"] == 20
    assert record["learning"]["start"] == "through_plane_x2.weights.h5"
    assert record["command"].startswith("upscale.py self")
    assert any("only 20 training steps" in warning for warning in record["warnings"])
    assert "held-out" in result.header["descrip"].item().decode()
    code, out, err = run_script("upscale", [str(tmp_path / "net.keras"), str(tmp_path / "thick.nii.gz"),
                                            str(tmp_path / "again.npy"), "--quiet", "--no-record"], capsys)
    assert code == 0 and "with " in out and not (tmp_path / "again.json").exists(), err
    if "blends" not in out:  # the saved network alone gives the same thin volume
        np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), values)
        # once, without the self-ensemble: another thin volume, each thick slice still its slab's average
        code, out, err = run_script("upscale", [str(tmp_path / "net.keras"), str(tmp_path / "thick.nii.gz"),
                                                str(tmp_path / "once.npy"), "--no-self-ensemble", "--quiet"], capsys)
        once = np.load(tmp_path / "once.npy")
        assert code == 0 and not np.array_equal(once, values), err
        np.testing.assert_allclose(degrade(once.astype(np.float64), 1, SliceProfile(2)), data, atol=1.0)


@pytest.mark.slow
def test_where_bfloat16_is_emulated_self_measures_it_slower_and_learns_in_float32(tmp_path):
    """TensorFlow without oneDNN runs bfloat16 through its emulation, as on a CPU without AVX-512 BF16:
    the trial of upscale.py self measures that and keeps float32 (a real measurement, not a mock)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    write_nifti(tmp_path / "thick.nii.gz", degrade(blob_volume(24), 2, SliceProfile(2)), (1.0, 1.0, 2.0))
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(root / "upscale.py"), "self", str(tmp_path / "thick.nii.gz"),
                             str(tmp_path / "thin.nii.gz"), "--steps", "5", "--quiet"], capture_output=True, text=True,
                            env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("precision:"))
    assert line.startswith("precision: float32, the faster here") and "mixed bfloat16" in line
    assert "5 steps" in result.stdout and "float32)" in result.stdout


# --- the start: the network learning begins from ------------------------------------------------


def test_learning_begins_from_a_start_file_and_one_for_another_network_is_refused(tmp_path):
    from mrisr.scans.through_plane import Recipe, normalise, save_start, train_network

    volume01 = normalise(degrade(blob_volume(24), 2, SliceProfile(2)))[0]
    small = Recipe(steps=0, channels=8, blocks=1)

    def network(seed, start=None, recipe=small):
        return train_network(volume01, 2, SliceProfile(2), recipe, seed=seed, precision="float32", progress=False,
                             say=lambda line: None, start=start)[0]

    first = network(seed=1)
    save_start(first, tmp_path / "start.weights.h5")
    started = network(seed=2, start=tmp_path / "start.weights.h5")
    for mine, theirs in zip(started.get_weights(), first.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    # the same seed without the start: other weights (so the equality above is the file's doing)
    assert any(not np.array_equal(a, b) for a, b in zip(network(seed=2).get_weights(), first.get_weights()))
    with pytest.raises(UserError, match="does not hold the weights of this network"):
        network(seed=2, start=tmp_path / "start.weights.h5", recipe=Recipe(steps=0, channels=16, blocks=1))


def test_self_begins_from_the_shipped_start_where_one_ships_and_says_which():
    from mrisr.scans.through_plane import Recipe, choose_start

    said = []
    path = choose_start("pretrained", SliceProfile(4), say=said.append)
    assert path.name == "through_plane_x4.weights.h5" and path.is_file()
    assert "starting from the network pretrained for x4 on real T1 slices" in said[-1]
    assert choose_start("pretrained", SliceProfile(16), say=said.append) is None
    assert "no pretrained network ships for x16" in said[-1]
    assert choose_start("scratch", SliceProfile(4), say=said.append) is None and "from the volume alone" in said[-1]
    # only for the network and the profile it learned: the default width and depth, a box of touching slices
    assert choose_start("pretrained", SliceProfile(4), Recipe(channels=16), say=said.append) is None
    assert choose_start("pretrained", SliceProfile(4, 3.0), say=said.append) is None  # a gap
    assert choose_start("pretrained", SliceProfile(4, 4.0, "gaussian"), say=said.append) is None
    with pytest.raises(UserError, match="the start must be one of pretrained, scratch"):
        choose_start("imagenet", SliceProfile(4))


@pytest.mark.backend  # the .weights.h5 starts, saved under TensorFlow, load the same under JAX and PyTorch
@pytest.mark.parametrize("factor", [2, 3, 4, 5, 6])
def test_each_shipped_start_beats_the_spline_on_a_volume_it_never_saw_before_any_step(factor):
    """The starts learned from real T1 tumour crops; on the MNI152 template's slices, degraded as a
    scanner would along a row, each already restores them better than the cubic spline and than a
    network from random weights (its last layer starts at zero: the spline made consistent with the
    thick values)."""
    import nibabel

    from mrisr.nets.models import through_plane_network
    from mrisr.paper.sources import demo_data_path
    from mrisr.scans.through_plane import PatchSampler, Recipe, held_out_check, load_start, normalise, start_weights

    recipe, profile = Recipe(), SliceProfile(factor)
    template = normalise(np.asarray(nibabel.load(str(demo_data_path())).dataobj, np.float32))[0]
    sampler = PatchSampler(np.moveaxis(template, 2, 0), profile, recipe.thick_length, recipe.width)
    model = through_plane_network(factor, profile.projection(), recipe.channels, recipe.blocks)
    unstarted = held_out_check(model, sampler)[0]
    load_start(model, start_weights(profile))
    network, spline, weight = held_out_check(model, sampler)
    assert network > max(spline, unstarted) + 0.5 and weight == 1.0, (network, spline, unstarted)
