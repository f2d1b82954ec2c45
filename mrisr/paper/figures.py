"""The paper's visual comparison figures (its figures 6 and 10): test samples as rows, models as
columns, from the models' recorded test set."""

from pathlib import Path

from mrisr.core.files import check_output_path
from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.paper.crops import read_crops
from mrisr.paper.names import GENERATOR, cnn_model_path


def experiment_models(experiment, models_dir):
    """(label, path) of the models an experiment's figure shows: the four CNN loss setups, or the generator."""
    from mrisr.nets.losses import LOSS_LABELS, LOSS_SETUPS

    models_dir = Path(models_dir)
    if experiment == "CNN":
        return [(LOSS_LABELS[setup], cnn_model_path(models_dir, setup)) for setup in LOSS_SETUPS]
    return [("Generator", models_dir / GENERATOR)]


def visual_predictions(experiment, crops_folder, models_dir, samples, split_options, out_dir, with_bicubic=False,
                       allow_overlap=False, say=inform):
    """Draw `samples` (test-sample numbers) of the first model's recorded test set (no model may have
    trained on them) through every model of `experiment` ("CNN" or "GAN"); returns the figure's path."""
    from mrisr.nets.loading import load_model
    from mrisr.nets.metrics import bicubic_upscale, psnr
    from mrisr.paper.evaluation import check_model_fits, predict
    from mrisr.paper.plots import plot_image_grid
    from mrisr.paper.provenance import check_overlap, choose_test_set, read_data_record

    models = experiment_models(experiment, models_dir)
    missing = [str(path) for _, path in models if not path.is_file()]
    if missing:
        raise UserError(f"missing model(s): {', '.join(missing)} (train them with {experiment}.py train)")
    figure_path = Path(out_dir) / f"{experiment}_visual_predictions.png"
    check_output_path(figure_path)
    crops = read_crops(crops_folder)
    records = [read_data_record(model_path) for _, model_path in models]
    test, _ = choose_test_set(crops, records[0], split_options, allow_overlap, say)
    for record in records[1:]:
        if record is not None:
            check_overlap(test, test.indices, record, allow_overlap, say)
    if max(samples) >= len(test):
        raise UserError(f"`samples`: the test set has {len(test)} samples (0 to {len(test) - 1})")
    test = test.subset(test.indices[samples])
    columns, predictions = ["X (input)"], [list(test.inputs)]
    for label, path in models:
        model = load_model(path)
        check_model_fits(model, crops.inputs.shape[1:], crops.targets.shape[1:], path.name)
        columns.append(label)
        predictions.append(list(predict(model, test.inputs)))
    if with_bicubic:
        columns.append("Bicubic")
        predictions.append(list(bicubic_upscale(test.inputs, test.targets.shape[1])))
    columns.append("Y (target)")
    predictions.append(list(test.targets))
    rows = [[column[r] for column in predictions] for r in range(len(samples))]
    notes = None
    if with_bicubic:
        notes = [[""] + [f"{psnr(test.targets[r], image):.2f} dB" for image in row[1:-1]] + [""]
                 for r, row in enumerate(rows)]
    row_titles = [f"sample {k} (crop {i})" for k, i in zip(samples, test.indices)]
    title = ("CNN predictions by loss setup" if experiment == "CNN" else "GAN generator predictions") + \
        " on test samples"
    plot_image_grid(rows, columns, figure_path, title, row_titles, notes)
    return figure_path
