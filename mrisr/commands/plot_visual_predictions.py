"""The paper's visual comparison figures (its figures 6 and 10): test samples as rows, models as columns.

    python3 plot_visual_predictions.py CNN      # X, MSE, SSIM, SSIM and MSE, SSIM then MSE, Y
    python3 plot_visual_predictions.py GAN      # X, generator, Y
"""

import argparse
import sys
from pathlib import Path

from mrisr.commands.cli import add_split_options, parse_int_list, script_main, split_options
from mrisr.errors import UserError


def build_parser():
    parser = argparse.ArgumentParser(
        description="Draw three test samples as rows: for CNN the columns X (input), MSE, SSIM, SSIM and MSE, "
        "SSIM then MSE, Y (target); for GAN the columns X, generator, Y. Saved as PNG.")
    parser.add_argument("model", choices=("CNN", "GAN"), help="which experiment's models to show")
    parser.add_argument("--samples", default="0,1,2",
                        help="test-sample numbers k (rows), as in testing_sample_k (default 0,1,2)")
    parser.add_argument("--models-dir", default=None,
                        help="folder of the trained models (default CNN_models or GAN_models)")
    add_split_options(parser, evaluating=True)
    parser.add_argument("--with-bicubic", action="store_true",
                        help="add a bicubic column and write each panel's PSNR against Y")
    parser.add_argument("--out-dir", default="VisualResults", help="where the figure goes (default VisualResults)")
    return parser


@script_main
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if "--test-split-model" not in (argv if argv is not None else sys.argv[1:]):
        args.test_split_model = args.model
    samples = parse_int_list(args.samples, "--samples", minimum=0)
    options = split_options(args)
    from mrisr.core.files import check_output_path
    from mrisr.nets.loading import load_model
    from mrisr.nets.losses import LOSS_LABELS, LOSS_SETUPS
    from mrisr.nets.metrics import bicubic_upscale, psnr
    from mrisr.paper.crops import read_crops
    from mrisr.paper.evaluation import check_model_fits, predict
    from mrisr.paper.plots import plot_image_grid
    from mrisr.paper.provenance import check_overlap, choose_test_set, read_data_record

    models_dir = Path(args.models_dir or f"{args.model}_models")
    if args.model == "CNN":
        models = [(LOSS_LABELS[setup], models_dir / f"CNN_{setup}_model.keras") for setup in LOSS_SETUPS]
    else:
        models = [("Generator", models_dir / "generator.keras")]
    missing = [str(path) for _, path in models if not path.is_file()]
    if missing:
        raise UserError(f"missing model(s): {', '.join(missing)} (train them with {args.model}.py train)")

    figure_path = Path(args.out_dir) / f"{args.model}_visual_predictions.png"
    check_output_path(figure_path)
    crops = read_crops(args.crops)
    # The test set of the first model's training record (or the split options); no model may have
    # been trained on any of its crops.
    records = [read_data_record(model_path) for _, model_path in models]
    test, _ = choose_test_set(crops, records[0], options, args.allow_overlap)
    for record in records[1:]:
        if record is not None:
            check_overlap(test, test.indices, record, args.allow_overlap, print)
    if max(samples) >= len(test):
        raise UserError(f"--samples: the test set has {len(test)} samples (0 to {len(test) - 1})")
    test = test.subset(test.indices[samples])
    columns, predictions = ["X (input)"], [list(test.inputs)]
    for label, path in models:
        model = load_model(path)
        check_model_fits(model, crops.inputs.shape[1:], crops.targets.shape[1:], path.name)
        columns.append(label)
        predictions.append(list(predict(model, test.inputs)))
    if args.with_bicubic:
        columns.append("Bicubic")
        predictions.append(list(bicubic_upscale(test.inputs, test.targets.shape[1])))
    columns.append("Y (target)")
    predictions.append(list(test.targets))
    rows = [[column[r] for column in predictions] for r in range(len(samples))]
    notes = None
    if args.with_bicubic:
        notes = [[""] + [f"{psnr(test.targets[r], image):.2f} dB" for image in row[1:-1]] + [""]
                 for r, row in enumerate(rows)]
    row_titles = [f"sample {k} (crop {i})" for k, i in zip(samples, test.indices)]
    title = ("CNN predictions by loss setup" if args.model == "CNN" else "GAN generator predictions") + \
        " on test samples"
    plot_image_grid(rows, columns, figure_path, title, row_titles, notes)
    print(f"Wrote {figure_path}")


if __name__ == "__main__":
    sys.exit(main())
