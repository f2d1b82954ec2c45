"""Evaluation: predictions of a test set, their files, and metrics beside bicubic."""

import csv
import dataclasses
from pathlib import Path

import numpy as np

from mrisr.core.files import atomic_write, check_output_path
from mrisr.core.messages import inform
from mrisr.errors import RunFailed, UserError
from mrisr.nets.metrics import bicubic_upscale, score_images
from mrisr.paper.crops import read_crops


@dataclasses.dataclass
class Evaluation:
    crop_indices: np.ndarray
    predictions: np.ndarray
    model_scores: object
    bicubic_scores: object
    out_dir: Path

    def summary(self, name="model"):
        m, b = self.model_scores, self.bicubic_scores
        wins = float(np.mean(m.psnr > b.psnr)) * 100
        return (
            f"{len(self.crop_indices)} test samples\n"
            f"  {name:<10} PSNR {m.mean_psnr:6.2f} dB (median {np.median(m.psnr):.2f})   SSIM {m.mean_ssim:.4f}\n"
            f"  {'bicubic':<10} PSNR {b.mean_psnr:6.2f} dB (median {np.median(b.psnr):.2f})   SSIM {b.mean_ssim:.4f}\n"
            f"  {name} minus bicubic: {m.mean_psnr - b.mean_psnr:+.2f} dB; beats bicubic on {wins:.0f}% of images"
        )


def check_model_fits(model, input_shape, output_shape, name):
    """Raise UserError when the model's input or output shape does not fit the crops."""
    def fits(expected, actual):
        return len(expected) == len(actual) and all(a is None or a == e for e, a in zip(expected, actual))

    model_in, model_out = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    if not fits(input_shape, model_in):
        raise UserError(f"{name} takes inputs of shape {model_in}, but the crops are {tuple(input_shape)}")
    if model_in[0] is not None and not fits(output_shape, model_out):
        raise UserError(f"{name} makes outputs of shape {model_out}, but the targets are {tuple(output_shape)}")


def check_output_shape(model, inputs, output_shape, name):
    """Raise UserError unless the model maps one of `inputs` to `output_shape` (fully convolutional
    networks accept any size: a model of another scale only shows in its output)."""
    produced = tuple(np.asarray(model.predict(inputs[:1], verbose=0)).shape[1:])
    if produced != tuple(output_shape):
        low = inputs.shape[1]
        raise UserError(f"{name} makes {produced[0]}x{produced[1]} images from the {low}x{low} inputs (x"
                        f"{produced[0] // low}), but the targets are {output_shape[0]}x{output_shape[1]} "
                        f"(x{output_shape[0] // low}): give the `scale` and `pairs` the model was trained with")


def finite_or_fail(predictions, name="the model"):
    """Clip predictions to [0, 1]; a NaN or infinite prediction is never clipped into a number."""

    predictions = np.asarray(predictions)
    if not np.isfinite(predictions).all():
        count = int(np.count_nonzero(~np.isfinite(predictions)))
        raise RunFailed(f"{name} gives {count} NaN or infinite output value(s): a diverged or corrupt model; "
                        "refusing to use its outputs")
    return np.clip(predictions, 0.0, 1.0)


def predict(model, inputs, batch_size=256, self_ensemble=False):
    """Predict in large batches, clipped to [0, 1] (RunFailed on a non-finite output). With
    `self_ensemble` (square inputs), the mean of the predictions of the eight flips and 90-degree
    rotations of each input, each turned back."""
    if not self_ensemble:
        return finite_or_fail(model.predict(inputs, batch_size=batch_size, verbose=0), model.name)
    total = 0.0
    for flip in (False, True):
        for turns in range(4):
            variant = np.rot90(inputs[:, :, ::-1] if flip else inputs, turns, axes=(1, 2))
            output = np.rot90(np.asarray(model.predict(np.ascontiguousarray(variant), batch_size=batch_size,
                                                       verbose=0)), -turns, axes=(1, 2))
            total = total + (output[:, :, ::-1] if flip else output)
    return finite_or_fail(total / 8.0, model.name)


def save_rgba_png(path, image):
    """Write a float RGBA (or RGB) image in [0, 1] as an 8-bit RGBA PNG (atomically)."""
    from PIL import Image


    image = np.asarray(image)
    if image.shape[-1] == 3:
        image = np.concatenate([image, np.ones(image.shape[:-1] + (1,))], axis=-1)
    picture = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), "RGBA")
    atomic_write(path, lambda temporary: picture.save(temporary, format="PNG"))


def score_beside_bicubic(model, test_set, self_ensemble=False):
    """Predict a set of pairs and score the predictions and bicubic on the same inputs (the metrics
    protocol): (predictions, bicubic images, model scores, bicubic scores)."""
    predictions = predict(model, test_set.inputs, self_ensemble=self_ensemble)
    bicubic = bicubic_upscale(test_set.inputs, test_set.targets.shape[1])
    return predictions, bicubic, score_images(test_set.targets, predictions), score_images(test_set.targets, bicubic)


def evaluate(model, test_set, out_dir, name="model", write_images=True, self_ensemble=False):
    """Predict the test crops, score them and bicubic, write testing_sample_{k}.png and metrics.csv."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions, _, model_scores, bicubic_scores = score_beside_bicubic(model, test_set, self_ensemble)
    if write_images:
        for k, image in enumerate(predictions):
            save_rgba_png(out_dir / f"testing_sample_{k}.png", image)
    def write_metrics(temporary):
        with open(temporary, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(("test_sample", "crop_index", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim"))
            for k, index in enumerate(test_set.indices):
                writer.writerow((k, int(index), f"{model_scores.psnr[k]:.4f}", f"{model_scores.ssim[k]:.5f}",
                                 f"{bicubic_scores.psnr[k]:.4f}", f"{bicubic_scores.ssim[k]:.5f}"))

    atomic_write(out_dir / "metrics.csv", write_metrics)
    return Evaluation(test_set.indices, predictions, model_scores, bicubic_scores, out_dir)


def evaluate_model_file(model_path, crops_folder, split_options, name, description=None, pairs=None, scale=None,
                        out_dir=None, self_ensemble=False, allow_overlap=False):
    """What `CNN.py evaluate` and `GAN.py evaluate` do: load the crops and the model, take the test set
    from the model's training record (or the split options; see provenance.choose_test_set), check the
    shapes, evaluate and print the summary."""
    from mrisr.nets.loading import load_model
    from mrisr.nets.shipped import SHIPPED, resolve_model
    from mrisr.paper.pairs import make_pairs
    from mrisr.paper.provenance import choose_test_set, read_data_record, recorded_pairs

    shipped = SHIPPED.get(str(model_path))
    model_path = Path(resolve_model(model_path))
    if not model_path.is_file():
        raise UserError(f"model file {model_path} does not exist")
    if not out_dir:  # beside the model, or here for shipped weights (never inside the installation)
        out_dir = Path(shipped.short_name if shipped else model_path.parent / model_path.stem)
        out_dir = out_dir.with_name(out_dir.name + "_testing_predictions")
    out_dir = Path(out_dir)
    check_output_path(out_dir / "metrics.csv")
    data = read_data_record(model_path)
    pairs, scale = recorded_pairs(data, pairs, scale)
    crops = read_crops(crops_folder)
    test, split_description = choose_test_set(crops, data, split_options, allow_overlap)
    test = make_pairs(test, pairs, scale)
    model = load_model(model_path)
    check_model_fits(model, test.inputs.shape[1:], test.targets.shape[1:], model_path.name)
    check_output_shape(model, test.inputs, test.targets.shape[1:], model_path.name)
    result = evaluate(model, test, out_dir, self_ensemble=self_ensemble)
    inform(f"{model_path}{description or ''} on the test set ({split_description}; {pairs} pairs):")
    inform(result.summary(name))
    inform(f"Wrote {len(result.crop_indices)} predictions and metrics.csv to {out_dir}/")
    return result
