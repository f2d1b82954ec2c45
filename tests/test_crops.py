import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrisr.errors import UserError
from mrisr.nets.imaging import bone_rgba_to_grey, bone_table, min_max_normalise, resize_cubic
from mrisr.paper.crops import read_crops
from mrisr.paper.extraction import bounding_box, crop_window, extract_crops, make_crop_pair
from mrisr.paper.sources import read_kaggle
from tests.conftest import SHARED_CROPS, interrupt_after, make_slices, write_kaggle


def test_bounding_box_inclusive():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    assert bounding_box(mask) == (2, 3, 4, 8)
    assert bounding_box(np.zeros((4, 4), dtype=bool)) is None


def test_crop_window_anchored_at_top_left():
    # side = max(4 - 2, 8 - 3) = 5; rows 2-1 .. 2+5+1, columns 3-1 .. 3+5+1
    assert crop_window((2, 3, 4, 8), (100, 100), margin=1) == (1, 8, 2, 9)
    # Clipped to the image.
    assert crop_window((2, 3, 4, 8), (6, 100), margin=20) == (0, 6, 0, 28)
    # Centred: the 2-row box sits in the middle of the 5-row square.
    assert crop_window((2, 3, 4, 8), (100, 100), margin=0, centre=True) == (1, 6, 3, 8)


def test_make_crop_pair_follows_the_recipe():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 1000, (80, 80)).astype(np.int16)
    mask = np.zeros((80, 80), dtype=bool)
    mask[30:40, 25:50] = True
    (small, large), box = make_crop_pair(image, mask, sizes=(25, 50), margin=20)
    assert box == (30, 25, 39, 49)
    region = image[10:74, 5:69].astype(float)  # side 24, margin 20
    np.testing.assert_allclose(small, min_max_normalise(resize_cubic(region, (25, 25))))
    np.testing.assert_allclose(large, min_max_normalise(resize_cubic(region, (50, 50))))
    assert small.min() == 0 and large.max() == 1
    assert make_crop_pair(image, np.zeros_like(mask)) == (None, None)


def test_extract_writes_bone_pngs_and_csv(tmp_path):
    images, masks, boxes = make_slices(5)
    masks[3][:] = False  # an empty mask is skipped and counted
    source = read_kaggle(write_kaggle(tmp_path / "data", images, masks, [1, 2, 3, 1, 2]))
    summary = extract_crops(source, tmp_path / "out", progress=False)
    assert summary.written == 4 and summary.skipped_empty == 1
    small = np.asarray(Image.open(tmp_path / "out/down-scaled_cropped_images/0.png"))
    large = np.asarray(Image.open(tmp_path / "out/original_cropped_images/0.png"))
    assert small.shape == (25, 25, 4) and large.shape == (50, 50, 4) and small.dtype == np.uint8
    assert (small[..., 3] == 255).all()
    table = {tuple(row) for row in bone_table()[:, :3]}
    assert {tuple(p) for p in large[..., :3].reshape(-1, 3)} <= table  # every pixel on the colour map
    # The PNG holds the recipe's grey crop, up to the colour map's 256 levels.
    (_, expected_large), _ = make_crop_pair(images[0], masks[0])
    np.testing.assert_allclose(bone_rgba_to_grey(large), expected_large, atol=1 / 256 + 1e-9)
    with open(tmp_path / "out/crops.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["crop_index"]) for r in rows] == [0, 1, 2, 4]
    assert rows[1]["label"] == "2" and rows[1]["source"] == "kaggle"
    assert tuple(int(rows[2][k]) for k in ("ymin", "xmin", "ymax", "xmax")) == boxes[2]
    assert not (tmp_path / "out/original_cropped_images/3.png").exists()


def test_read_crops_pairs_by_numeric_index(tmp_path):
    images, masks, _ = make_slices(12)
    source = read_kaggle(write_kaggle(tmp_path / "data", images, masks, [1, 2, 3] * 4))
    extract_crops(source, tmp_path, progress=False)
    crops = read_crops(tmp_path)
    # Directory order would give 0, 1, 10, 11, 2, ...: pairing is by number.
    assert crops.indices.tolist() == list(range(12))
    assert crops.labels.tolist() == [1, 2, 3] * 4
    (_, large), _ = make_crop_pair(images[10], masks[10])
    np.testing.assert_allclose(bone_rgba_to_grey(crops.targets[10]), large, atol=1 / 256 + 1e-9)
    assert crops.inputs.dtype == np.float32 and crops.inputs.max() <= 1.0
    sub = crops.subset([11, 2])
    assert sub.indices.tolist() == [11, 2] and sub.labels.tolist() == [3, 3]


def test_read_crops_accepts_original_spelling_and_no_csv(tmp_path):
    images, masks, _ = make_slices(3)
    extract_crops(read_kaggle(write_kaggle(tmp_path / "d", images, masks, [1, 2, 3])), tmp_path / "c",
                  progress=False)
    (tmp_path / "c/down-scaled_cropped_images").rename(tmp_path / "c/downscaled_cropped_images")
    (tmp_path / "c/crops.csv").unlink()
    crops = read_crops(tmp_path / "c")
    assert len(crops) == 3 and crops.labels is None


def test_read_crops_errors(tmp_path):
    images, masks, _ = make_slices(3)
    extract_crops(read_kaggle(write_kaggle(tmp_path / "d", images, masks, [1, 2, 3])), tmp_path / "c",
                  progress=False)
    (tmp_path / "c/original_cropped_images/1.png").unlink()
    with pytest.raises(UserError, match=r"down-scaled_cropped_images/1.png has no partner"):
        read_crops(tmp_path / "c")
    (tmp_path / "c/down-scaled_cropped_images/1.png").unlink()
    (tmp_path / "c/original_cropped_images/2.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image"):
        read_crops(tmp_path / "c")
    with pytest.raises(UserError, match="not a crop folder"):
        read_crops(tmp_path / "d")


@pytest.mark.skipif(not SHARED_CROPS.is_dir(), reason="the shared real crops are not here")
def test_shared_real_crops_load():
    crops = read_crops(SHARED_CROPS)
    assert len(crops) == 3064 and crops.indices.tolist() == list(range(3064))
    assert crops.inputs.shape == (3064, 25, 25, 4) and crops.targets.shape == (3064, 50, 50, 4)
    assert crops.labels is None
    np.testing.assert_array_equal(crops.targets[..., 3], 1.0)


def crop_files(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def test_a_folder_with_crops_is_refused_and_overwrite_replaces_it_whole(tmp_path):
    images, masks, _ = make_slices(6)
    extract_crops(read_kaggle(write_kaggle(tmp_path / "d", images, masks, [1, 2, 3] * 2)), tmp_path / "c",
                  progress=False)
    before = {name: (tmp_path / "c" / name).read_bytes() for name in crop_files(tmp_path / "c")}
    fewer = read_kaggle(write_kaggle(tmp_path / "e", images[:2], masks[:2], [1, 2]))
    with pytest.raises(UserError, match="already holds crops .* `overwrite`"):
        extract_crops(fewer, tmp_path / "c", progress=False)
    assert {name: (tmp_path / "c" / name).read_bytes() for name in crop_files(tmp_path / "c")} == before
    summary = extract_crops(fewer, tmp_path / "c", progress=False, overwrite=True)
    assert summary.written == 2 and summary.replaced == 13  # 6 + 6 PNGs and crops.csv
    assert crop_files(tmp_path / "c") == ["crops.csv", "down-scaled_cropped_images/0.png",
                                          "down-scaled_cropped_images/1.png", "original_cropped_images/0.png",
                                          "original_cropped_images/1.png"]
    assert read_crops(tmp_path / "c").indices.tolist() == [0, 1]


def test_an_interrupted_extraction_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    import mrisr.paper.extraction

    images, masks, _ = make_slices(6)
    source = read_kaggle(write_kaggle(tmp_path / "d", images, masks, [1, 2, 3] * 2))
    extract_crops(source, tmp_path / "c", progress=False)
    before = {name: (tmp_path / "c" / name).read_bytes() for name in crop_files(tmp_path / "c")}
    monkeypatch.setattr(mrisr.paper.extraction, "save_crop_png",
                        interrupt_after(5)(mrisr.paper.extraction.save_crop_png))
    with pytest.raises(KeyboardInterrupt):
        extract_crops(source, tmp_path / "c", progress=False, overwrite=True)
    assert {name: (tmp_path / "c" / name).read_bytes() for name in crop_files(tmp_path / "c")} == before
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["crops.csv", "down-scaled_cropped_images",
                                                                  "original_cropped_images"]


def test_slices_with_nan_in_the_crop_window_are_skipped_and_counted(tmp_path):
    images, masks, boxes = make_slices(4)
    images = [image.astype(np.float32) for image in images]
    top, left = boxes[1][:2]
    images[1][top, left] = np.nan  # inside the tumour's box, so inside the crop window
    summary = extract_crops(read_kaggle(write_kaggle(tmp_path / "d", images, masks, [1, 2, 3, 1])), tmp_path / "c",
                            progress=False)
    assert summary.skipped_non_finite == 1 and summary.written == 3
    assert not (tmp_path / "c/original_cropped_images/1.png").exists()
    crops = read_crops(tmp_path / "c")
    assert np.isfinite(crops.targets).all() and crops.targets[..., :3].std(axis=(1, 2, 3)).min() > 0


def test_crop_folders_with_mixed_sizes_or_a_malformed_csv_are_refused(tmp_path):
    images, masks, _ = make_slices(4)
    extract_crops(read_kaggle(write_kaggle(tmp_path / "d", images, masks, [1, 2, 3, 1])), tmp_path / "c",
                  progress=False)
    csv_path = tmp_path / "c/crops.csv"
    good = csv_path.read_text()
    csv_path.write_text(good.replace("\n2,", "\nx2,", 1))
    with pytest.raises(UserError, match="line 4: crop_index 'x2' is not a whole number"):
        read_crops(tmp_path / "c")
    csv_path.write_text(good)
    Image.new("RGBA", (30, 30)).save(tmp_path / "c/original_cropped_images/2.png")
    with pytest.raises(UserError, match="2.png is 30x30 but .* crops of one size"):
        read_crops(tmp_path / "c")


def test_fingerprints_follow_the_pixels_not_the_file_names(tmp_path):
    import shutil

    images, masks, _ = make_slices(3)
    extract_crops(read_kaggle(write_kaggle(tmp_path / "d", images, masks, [1, 2, 3])), tmp_path / "c",
                  progress=False)
    shutil.copytree(tmp_path / "c", tmp_path / "copy")
    first, copy = read_crops(tmp_path / "c"), read_crops(tmp_path / "copy")
    assert first.fingerprint == copy.fingerprint and first.digests.tolist() == copy.digests.tolist()
    assert len(set(first.digests.tolist())) == 3
    (tmp_path / "copy/crops.csv").unlink()
    for folder in ("down-scaled_cropped_images", "original_cropped_images"):
        (tmp_path / "copy" / folder / "0.png").rename(tmp_path / "copy" / folder / "7.png")
    moved = read_crops(tmp_path / "copy")
    assert moved.fingerprint != first.fingerprint  # index 0 is now 7
    assert moved.digests[moved.indices.tolist().index(7)] == first.digests[0]
