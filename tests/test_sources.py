import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.paper.sources import open_source, read_demo, read_figshare, read_kaggle
from tests.conftest import make_slices, write_figshare_mat, write_kaggle


def test_kaggle_reader(kaggle_dir):
    source = read_kaggle(kaggle_dir)
    slices = list(source.iterate())
    assert source.count == 9 and [s.index for s in slices] == list(range(9))
    assert [s.label for s in slices] == [1, 2, 3] * 3
    assert slices[0].image.dtype == np.int16 and slices[0].mask.dtype == bool


def test_kaggle_limit(kaggle_dir):
    assert read_kaggle(kaggle_dir, limit=4).count == 4


def test_kaggle_lengths_differ(tmp_path):
    images, masks, _ = make_slices(3)
    folder = write_kaggle(tmp_path, images, masks[:2], [1, 2, 3])
    with pytest.raises(UserError, match="differ in length"):
        read_kaggle(folder)


def test_kaggle_missing_files_name_them_and_the_download(tmp_path):
    with pytest.raises(UserError, match=r"lacks images.npy, masks.npy.*awsaf49/brain-tumor"):
        read_kaggle(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        read_kaggle(tmp_path / "nowhere")


def test_figshare_reader_transposes_and_keeps_patient(tmp_path):
    images, masks, _ = make_slices(2, size=32)
    images[0] = np.arange(32 * 32, dtype=np.int16).reshape(32, 32)
    for number, (image, mask) in enumerate(zip(images, masks), start=1):
        write_figshare_mat(tmp_path / f"{number}.mat", image, mask, number, f"P{number:03d}")
    slices = list(read_figshare(tmp_path).iterate())
    assert [s.index for s in slices] == [0, 1]
    np.testing.assert_array_equal(slices[0].image, images[0])
    np.testing.assert_array_equal(slices[1].mask, masks[1])
    assert slices[1].label == 2 and slices[1].patient_id == "P002"


def test_figshare_files_sorted_numerically(tmp_path):
    images, masks, _ = make_slices(3, size=16)
    for number in (10, 2, 1):
        write_figshare_mat(tmp_path / f"{number}.mat", images[0], masks[0], 1, "X")
    assert [s.index for s in read_figshare(tmp_path).iterate()] == [0, 1, 9]


def test_figshare_without_cjdata(tmp_path):
    import h5py

    with h5py.File(tmp_path / "1.mat", "w") as file:
        file["other"] = np.zeros(3)
    with pytest.raises(UserError, match="no 'cjdata'"):
        list(read_figshare(tmp_path).iterate())


def test_figshare_not_hdf5(tmp_path):
    (tmp_path / "1.mat").write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
    with pytest.raises(UserError, match="MATLAB v7.3"):
        list(read_figshare(tmp_path).iterate())


def test_figshare_empty_folder(tmp_path):
    with pytest.raises(UserError, match="no N.mat files.*1512427"):
        read_figshare(tmp_path)


def test_demo_source_is_real_mri_with_masks():
    source = read_demo(limit=6)
    assert source.is_demo and source.count == 6
    slices = list(source.iterate())
    for item in slices:
        assert item.image.ndim == 2 and item.image.shape == item.mask.shape
        assert item.mask.any() and item.label in (1, 2, 3) and item.patient_id.startswith("demo-")
        assert item.image[item.mask].mean() > 0  # the tumour mask lies inside the brain
    assert len({s.image.shape for s in read_demo().iterate()}) == 3  # three slice directions


def test_auto_source(tmp_path, kaggle_dir, monkeypatch, capsys):
    assert open_source("auto", kaggle_dir).name == "kaggle"
    with pytest.raises(UserError, match="no brain tumour data found"):
        open_source("auto", tmp_path / "empty")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert open_source("auto", None, limit=2).name == "demo"
    assert "DEMO source" in capsys.readouterr().out
