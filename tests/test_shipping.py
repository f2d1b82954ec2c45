"""Shipping weights: the best candidate on validation, checked against the crops and the paper's test
split, saved without its optimizer beside its history and provenance, with no local path left."""

import csv
import json

import numpy as np
import pytest

from mrisr.core.files import load_json
from mrisr.errors import UserError
from mrisr.nets.loading import load_model
from mrisr.paper.crops import read_crops
from mrisr.paper.shipping import consistent_scores, ship_weights
from mrisr.paper.splits import fixed_test_split
from mrisr.paper.training import CNNSettings, train_cnn
from tests.conftest import make_crop_folder


def write_test_split(folder, indices):
    with open(folder / "paper_test_split.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(("model", "test_sample", "crop_index"))
        writer.writerows(("CNN", k, index) for k, index in enumerate(indices))
    return folder / "paper_test_split.csv"


def candidate(crops, split, folder, epochs, seed):
    settings = CNNSettings(loss_setup="L1", arch="espcn", pairs="consistent", scale=2, epochs=epochs, batch_size=8,
                           learning_rate=1e-3, lr_schedule="constant", seed=seed, xla=False)
    return train_cnn(crops, split, settings, folder, verbose=0).model_path


def test_the_best_candidate_on_validation_is_shipped_with_its_provenance(tmp_path):
    folder = make_crop_folder(tmp_path / "crops", count=30)
    crops = read_crops(folder)
    test_indices = sorted(crops.indices)[:6]
    test_split = write_test_split(folder, test_indices)
    split = fixed_test_split(crops.indices, np.array(test_indices), crops.labels)
    candidates = [candidate(crops, split, tmp_path / "a", 1, 0), candidate(crops, split, tmp_path / "b", 6, 1)]
    validation = [consistent_scores(load_model(path), crops, split.validation, 2)[0]["psnr"] for path in candidates]

    record = ship_weights(candidates, folder, 2, test_split, tmp_path / "shipped" / "mri_x2.keras",
                         say=lambda line: None)
    best = int(np.argmax(validation))
    assert record["validation"]["psnr"] == pytest.approx(validation[best], abs=1e-3)
    assert record["chosen_on_validation_from"] == [path.name for path in candidates]
    assert record["data"]["test_crops"] == 6 and record["data"]["train_crops"] == len(split.train)
    shipped = load_model(tmp_path / "shipped" / "mri_x2.keras")
    np.testing.assert_array_equal(shipped.get_weights()[0], load_model(candidates[best]).get_weights()[0])
    history = tmp_path / "shipped" / "mri_x2_history.json"
    assert load_json(history)["provenance"]["data"]["licence"] == "CC BY 4.0"
    assert str(folder.resolve()) not in json.dumps(load_json(history))  # no path of this machine


def test_a_candidate_that_saw_the_test_split_is_refused(tmp_path):
    folder = make_crop_folder(tmp_path / "crops", count=30)
    crops = read_crops(folder)
    test_split = write_test_split(folder, sorted(crops.indices)[:6])
    other = fixed_test_split(crops.indices, np.array(sorted(crops.indices)[-6:]), crops.labels)
    with pytest.raises(UserError, match="did not hold out the paper's test split"):
        ship_weights([candidate(crops, other, tmp_path / "a", 1, 0)], folder, 2, test_split,
                     tmp_path / "shipped.keras", say=lambda line: None)
