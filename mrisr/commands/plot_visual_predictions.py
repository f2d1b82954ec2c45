"""The paper's visual comparison figures (its figures 6 and 10): test samples as rows, models as columns.

    python3 plot_visual_predictions.py CNN      # X, MSE, SSIM, SSIM and MSE, SSIM then MSE, Y
    python3 plot_visual_predictions.py GAN      # X, generator, Y
"""

import argparse
import sys

from mrisr.commands.cli import add_split_options, add_standard_options, parse_int_list, script_main, split_options


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
    add_standard_options(parser)
    return parser


@script_main
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if "--test-split-model" not in (argv if argv is not None else sys.argv[1:]):
        args.test_split_model = args.model
    samples = parse_int_list(args.samples, "--samples", minimum=0)
    from mrisr.paper.figures import visual_predictions

    figure = visual_predictions(args.model, args.crops, args.models_dir or f"{args.model}_models", samples,
                                split_options(args), args.out_dir, args.with_bicubic, args.allow_overlap)
    print(f"Wrote {figure}")


if __name__ == "__main__":
    sys.exit(main())
