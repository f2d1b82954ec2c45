"""The record of what made an output: a JSON file beside it with its name's stem (BIDS's sidecar rule:
`thin.nii.gz` -> `thin.json`, a DICOM series folder `thin` -> `thin.json`).

It holds the input (path, file count, SHA-256 of its bytes), the project's version, the command and
the settings, what was planned (axis, factor, slice thickness and profile), what learning made (the
start, steps, minutes, precision, the held-out check against the cubic spline), the warnings said, the
machine and the time. A study counts a scan as done when its output and its record exist and the
record's input checksum and settings are the input's and the settings asked for now.
"""

import hashlib
import time
from pathlib import Path

from mrisr.core.files import full_suffix, load_json, save_json
from mrisr.core.machine import describe_machine
from mrisr.errors import UserError
from mrisr.version import __version__

KEY = "MrisrRecord"


def record_path(output_path):
    """The record beside an output: its name with the full suffix replaced by .json."""
    output_path = Path(output_path)
    suffix = full_suffix(output_path)
    stem = output_path.name[:-len(suffix)] if suffix else output_path.name
    return output_path.with_name(stem + ".json")


def input_files(path):
    """The files an input is made of: the file itself, or a folder's files (not hidden), by name."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [path]


def input_checksum(path):
    """SHA-256 of an input's files (a folder's: each file's name and bytes, in name order)."""
    digest = hashlib.sha256()
    for file in input_files(path):
        if Path(path).is_dir():
            digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def make_record(input_path, settings, plan=None, report=None, warnings=(), seconds=None, command=None,
                checksum=None, sources=None, network=None):
    """The record (a dict, BIDS sidecar keys beside this project's own) of an output made from `input_path`
    with `settings` (the options as given), `plan` (through_plane.Plan), `report` (TrainingReport, None
    when a saved `network` was applied)."""

    record = {"settings": dict(settings), "version": __version__, "command": command,
              "input": {"path": str(input_path), "files": len(input_files(input_path)),
                        "sha256": checksum or input_checksum(input_path)},
              "warnings": list(warnings), "machine": describe_machine(),
              "seconds": None if seconds is None else round(seconds, 1),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if plan is not None:
        record["plan"] = {"axis": plan.axis, "factor": plan.profile.factor, "profile": plan.profile.kind,
                          "thickness_thin_slices": round(float(plan.profile.thickness), 4),
                          "description": plan.description}
    if report is not None:
        record["learning"] = {"start": report.start, "steps": report.steps, "minutes": round(report.seconds / 60, 2),
                              "precision": report.precision, "stopped_by_time": report.stopped_by_time,
                              "held_out_network_db": round(report.held_out_network, 3),
                              "held_out_spline_db": round(report.held_out_spline, 3),
                              "held_out_gain_db": round(report.held_out_gain, 3),
                              "blend_weight": round(report.blend_weight, 4)}
    if network is not None:
        record["network"] = str(network)
    sidecar = {"Description": "Thin slices made by mrisr's upscale.py self" if plan is not None else
               "Made by mrisr's upscale.py", "Sources": list(sources or [str(input_path)]),
               "GeneratedBy": [{"Name": "mrisr", "Version": __version__}], KEY: record}
    return sidecar


def write_record(output_path, record):
    save_json(record_path(output_path), record)


def read_record(output_path):
    """The record beside an output, None where there is none or it cannot be read."""
    path = record_path(output_path)
    if not path.is_file():
        return None
    try:
        return load_json(path).get(KEY)
    except (UserError, AttributeError):
        return None


def is_done(output_path, checksum, settings):
    """Whether `output_path` and its record exist, the record made from an input of `checksum` with
    `settings`."""
    record = read_record(output_path)
    return bool(record) and Path(output_path).exists() and record.get("input", {}).get("sha256") == checksum \
        and record.get("settings") == dict(settings)
