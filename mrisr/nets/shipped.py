"""The weights that ship with the project: their short names, where they are, and where they came from."""

import dataclasses
from pathlib import Path

from mrisr.errors import UserError

DATA_ATTRIBUTION = "Jun Cheng, brain tumor dataset, figshare, 2017, doi 10.6084/m9.figshare.1512427.v5"
DATA_LICENCE = "CC BY 4.0"


@dataclasses.dataclass(frozen=True)
class ShippedWeights:
    short_name: str
    file_name: str
    scale: int
    description: str


SHIPPED = {
    weights.short_name: weights for weights in (
        ShippedWeights("mri-x2", "mri_x2.keras", 2,
                       "edsr trained on real T1 brain MRI (figshare brain tumour data set, CC BY 4.0)"),
        ShippedWeights("mri-x4", "mri_x4.keras", 4,
                       "edsr trained on real T1 brain MRI (figshare brain tumour data set, CC BY 4.0)"),
        ShippedWeights("demo-x2", "demo_espcn_x2.keras", 2,
                       "DEMO weights: espcn trained 2 minutes on the MNI152 template, no patient data"),
    )
}


def pretrained_folder():
    """The folder of the shipped weights: `mrisr/weights` in an installed package (pyproject.toml maps
    the checkout's `pretrained/` there), else the checkout's `pretrained/`."""
    package = Path(__file__).resolve().parents[1]  # mrisr/
    installed = package / "weights"
    return installed if installed.is_dir() else package.parent / "pretrained"


def resolve_model(spec):
    """The file a model argument names: a short name of shipped weights (`mri-x2`, `mri-x4`,
    `demo-x2`) becomes its file; anything else is returned as given."""
    weights = SHIPPED.get(str(spec))
    if weights is None:
        return spec
    path = pretrained_folder() / weights.file_name
    if not path.is_file():
        raise UserError(f"the shipped weights {spec} ({path}) are missing from this installation: reinstall the "
                        "package, or retrain them (make pretrained-mri)")
    return str(path)


def describe_model(spec):
    """How the output names the weights it used: the short name, the file and what they are."""
    weights = SHIPPED.get(str(spec))
    if weights is None:
        return str(spec)
    return f"{weights.short_name} ({resolve_model(spec)}: {weights.description})"
