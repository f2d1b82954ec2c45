import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.paper.splits import (
    fixed_test_split,
    make_split,
    paper_split,
    patient_split,
    patients_shared,
    read_test_split_file,
    write_splits_csv,
)


def labelled(counts=(708, 1426, 930), seed=0):
    labels = np.concatenate([np.full(n, label) for label, n in zip((1, 2, 3), counts)])
    order = np.random.default_rng(seed).permutation(len(labels))  # classes interleaved in index order
    return np.arange(len(labels)), labels[order]


def test_paper_split_sizes_for_the_papers_class_counts():
    indices, labels = labelled()
    split = paper_split(indices, labels)
    assert split.sizes() == (2450, 305, 309)
    # Per class, in index order: the first 80% of class 1's indices are its training crops.
    class_one = np.sort(indices[labels == 1])
    np.testing.assert_array_equal(split.train[: int(0.8 * 708)], class_one[:566])
    np.testing.assert_array_equal(split.validation[:70], class_one[566:636])
    all_parts = np.concatenate([split.train, split.validation, split.test])
    assert sorted(all_parts.tolist()) == indices.tolist()


def test_paper_split_is_deterministic_and_seed_shuffles():
    indices, labels = labelled()
    a, b = paper_split(indices, labels), paper_split(indices, labels)
    np.testing.assert_array_equal(a.test, b.test)
    shuffled = paper_split(indices, labels, seed=1)
    assert shuffled.sizes() == a.sizes()
    assert not np.array_equal(np.sort(shuffled.test), np.sort(a.test))
    np.testing.assert_array_equal(shuffled.test, paper_split(indices, labels, seed=1).test)


def test_unlabelled_split_is_seeded_random_with_a_warning(capsys):
    split = make_split(np.arange(3064))
    assert "warning: the crops are unlabelled" in capsys.readouterr().out
    assert split.sizes() == (2451, 306, 307)
    np.testing.assert_array_equal(make_split(np.arange(3064)).test, split.test)
    assert not np.array_equal(make_split(np.arange(3064), seed=5).test, split.test)


def test_patient_split_keeps_patients_apart():
    rng = np.random.default_rng(0)
    patients = np.repeat([f"P{i}" for i in range(60)], rng.integers(5, 20, size=60))
    labels = np.array([int(p[1:]) % 3 + 1 for p in patients])
    indices = np.arange(len(patients))
    split = patient_split(indices, labels, patients, seed=0)
    parts = [set(patients[split.part(name)]) for name in ("train", "validation", "test")]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    train, validation, test = split.sizes()
    assert 0.7 < train / len(indices) < 0.9 and validation > 0 and test > 0
    assert patients_shared(split, indices, patients) == (0, len(parts[2]))
    slice_split = paper_split(indices, labels, seed=1)  # slices shuffled: patients leak
    shared, total = patients_shared(slice_split, indices, patients)
    assert 0 < shared <= total


def test_by_patient_needs_ids():
    with pytest.raises(UserError, match="patient ids"):
        make_split(np.arange(10), np.ones(10, int), by_patient=True)


def test_fixed_test_split(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("model,test_sample,crop_index\nCNN,0,5\nCNN,1,3\nGAN,0,7\n")
    assert read_test_split_file(path, "CNN").tolist() == [3, 5]
    assert read_test_split_file(path, "GAN").tolist() == [7]
    split = fixed_test_split(np.arange(20), read_test_split_file(path, "CNN"))
    assert split.test.tolist() == [3, 5] and split.sizes() == (16, 2, 2)
    assert not set(split.train) & {3, 5} and not set(split.validation) & {3, 5}
    with pytest.raises(UserError, match="does not exist"):
        read_test_split_file(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("index\n1\n")
    with pytest.raises(UserError, match="crop_index"):
        read_test_split_file(tmp_path / "bad.csv")
    with pytest.raises(UserError, match="not among the crops"):
        fixed_test_split(np.arange(4), np.array([9]))


def test_write_splits_csv(tmp_path):
    indices, labels = labelled((10, 10, 10))
    write_splits_csv(tmp_path / "splits.csv", paper_split(indices, labels))
    lines = (tmp_path / "splits.csv").read_text().splitlines()
    assert lines[0] == "crop_index,split" and len(lines) == 31
    assert lines[1].split(",")[0] == "0"
