"""What each network is trained with unless told otherwise, in one place (CNN.py, the benchmarks and
the Makefile's recipes start from it): the paper's Adam 1e-5 with its inverse-time decay for the paper's
CNN; Adam 5e-4 with a cosine to 1% for the fully convolutional networks. Plain values, no Keras."""

from mrisr.nets.architectures import ARCHITECTURES

PAPER_RECIPE = {"learning_rate": 1e-5, "lr_schedule": "inverse-time"}
NETWORK_RECIPE = {"learning_rate": 5e-4, "lr_schedule": "cosine"}


def architecture_defaults(arch):
    """The learning rate and schedule `arch` trains with by default."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return dict(PAPER_RECIPE if arch == "paper" else NETWORK_RECIPE)
