"""The tasks of a study, each run in a worker process (a local one, or a Dask worker on any machine where
the package is installed): they take and return plain, picklable values and never raise for a bad
scan: its one-line reason comes back instead.

- `survey`: read a scan and plan it (axis, factor, profile): its protocol, or why it is skipped.
- `learn_protocol`: one network learned on several scans of one protocol, saved as a start.
- `upscale`: one scan made finer (learning from it, from the shipped start or its protocol's network),
  written with its record, and its picture for the report.
"""

import os
import time
from pathlib import Path

from mrisr.core.files import load_json, save_json
from mrisr.errors import RunFailed, UserError
from mrisr.scans.records import input_checksum, read_record

PICTURES = Path(".mrisr") / "pictures"


def picture_path(output_dir, name):
    """Where the report's picture of the scan `name` is kept."""
    return Path(output_dir) / PICTURES / (name.replace("/", "__") + ".png")


def set_threads(threads):
    """Give this worker process `threads` CPU threads (its share of the machine; None: MRISR_THREADS where a
    Dask worker was started with it, else all): the math libraries' variables, and TensorFlow's thread
    pools where it has not started yet."""
    from mrisr.core.quiet import hide_in_workers

    hide_in_workers()
    threads = threads or int(os.environ.get("MRISR_THREADS", 0) or 0)
    if not threads:
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already runs in this process: its pools stay as they are
            pass


def _failed(error):
    """A scan's failure in one line; a scan that is already nearly isotropic is skipped instead."""
    from mrisr.scans.through_plane import NearlyIsotropic

    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    if isinstance(error, NearlyIsotropic):
        return {"status": "skipped", "reason": "already nearly isotropic: " + reason.split(": ", 1)[-1]}
    return {"status": "failed", "reason": reason}


def survey(path, options):
    """{"status": "planned", "protocol": key, ...} of a scan, {"status": "skipped", "reason"} for one that
    is already isotropic, {"status": "failed", "reason"} for one that cannot be read or planned."""
    from mrisr.core.quiet import hide_in_workers
    from mrisr.scans.scan import read_scan
    from mrisr.scans.through_plane import make_plan

    hide_in_workers()
    try:
        scan = read_scan(path, say=lambda line: None)
        plan = make_plan(scan, options.get("axis"), options.get("scale"), options.get("slice_thickness"),
                         options.get("profile") or "box")
    except (UserError, RunFailed, OSError, MemoryError) as error:
        return _failed(error)
    spacing = tuple(round(float(v), 2) for v in scan.spacing) if scan.spacing is not None else None
    key = f"{scan.kind} {'x'.join(map(str, scan.data.shape))} {spacing} axis {plan.axis} x{plan.profile.factor} " \
          f"{plan.profile.kind} {plan.profile.thickness:.2f}"
    return {"status": "planned", "protocol": key, "factor": plan.profile.factor, "axis": plan.axis}


def learn_protocol(paths, options, weights_path, threads=None):
    """One network learned on the in-plane slices of several scans of one protocol (their volumes side by
    side), from the shipped start, with the study's budget of learning; saved as a start for each scan.
    Returns {"status": "learned", "steps", "held_out_gain"} or {"status": "failed", "reason"}."""
    import numpy as np

    from mrisr.scans.scan import read_scan
    from mrisr.scans.through_plane import Recipe, choose_start, make_plan, normalise, save_start, train_network

    set_threads(threads)
    made = {"scans": [str(path) for path in paths], "sha256": [input_checksum(path) for path in paths],
            "options": {key: str(value) for key, value in sorted(options.items())}}
    made_path = Path(weights_path).with_suffix("").with_suffix(".json")
    if Path(weights_path).is_file() and made_path.is_file() and load_json(made_path).get("made") == made:
        return {"status": "learned", **load_json(made_path)["result"], "kept": True}  # learned by an earlier run
    try:
        volumes, plan = [], None
        for path in paths:
            scan = read_scan(path, say=lambda line: None)
            plan = make_plan(scan, options.get("axis"), options.get("scale"), options.get("slice_thickness"),
                             options.get("profile") or "box")
            volumes.append(normalise(scan.data)[0])
        recipe = Recipe() if options.get("steps") is None else Recipe(steps=options["steps"])
        start = choose_start(options.get("start") or "pretrained", plan.profile, recipe, say=lambda line: None)
        model, report = train_network(np.concatenate(volumes, axis=plan.axis), plan.axis, plan.profile, recipe,
                                      options.get("minutes") or 10.0, plan.pitch_ratios,
                                      precision=options.get("precision") or "auto", progress=False,
                                      say=lambda line: None, start=start)
        save_start(model, weights_path)
    except (UserError, RunFailed, OSError, MemoryError) as error:
        return _failed(error)
    result = {"steps": report.steps, "held_out_gain": round(report.held_out_gain, 3),
              "seconds": round(report.seconds, 1)}
    save_json(made_path, {"made": made, "result": result})
    return {"status": "learned", **result}


def upscale(scan, options, settings, output_dir, start=None, steps=None, threads=None, command=None):
    """Make one scan's slices finer and write it with its record (mrisr.scans.upscale_file.across_slices):
    learning from `start` (None: the study's own choice, pretrained or scratch; a Path: its protocol's
    network, fine-tuned for `steps`). A scan whose protocol network does not beat the spline on its
    held-out slices learns on its own. Returns the result the report shows."""
    from mrisr.scans.upscale_file import across_slices

    set_threads(threads)
    started = time.perf_counter()
    lines = []
    try:
        def run(begin, step_count):
            across_slices(options.get("network") or "self", scan.path, scan.output, options.get("axis"),
                          options.get("scale"), options.get("slice_thickness"), options.get("profile") or "box",
                          step_count, options.get("minutes") or 10.0, None, None, options.get("precision") or "auto",
                          options.get("self_ensemble", True), False, lines.append, begin, settings, command,
                          sources=scan.sources)
            return read_record(scan.output)

        own_steps = options.get("steps")
        record = run(start or options.get("start") or "pretrained", steps if start is not None else own_steps)
        own = False
        beaten = record and record.get("learning", {}).get("held_out_gain_db", 1) <= 0
        if isinstance(start, Path) and beaten:
            lines.append("the protocol's network did not beat the cubic spline on this scan's held-out slices: "
                         "learning on its own")
            record, own = run(options.get("start") or "pretrained", options.get("steps")), True
        picture = draw_picture(scan, output_dir)
    except (UserError, RunFailed, OSError, MemoryError) as error:
        return {**_failed(error), "name": scan.name}
    learning = record.get("learning", {})
    return {"status": "done", "name": scan.name, "output": str(scan.output), "seconds": round(time.perf_counter()
            - started, 1), "held_out_gain": learning.get("held_out_gain_db"), "steps": learning.get("steps"),
            "start": learning.get("start"), "learned_on_its_own": own, "factor": record.get("plan", {}).get("factor"),
            "axis": record.get("plan", {}).get("axis"),
            "warnings": [line for line in lines if line.startswith("warning")], "picture": str(picture)}


def draw_picture(scan, output_dir):
    """The report's picture of a scan: one plane of each orientation through its middle, as the thick input
    (each slice repeated), the cubic spline along the slices and the output. Written under .mrisr/pictures."""
    import numpy as np

    from mrisr.paper.plots import _pyplot, save_figure
    from mrisr.scans.scan import read_scan
    from mrisr.scans.through_plane import spline_upsample

    record = read_record(scan.output)
    axis, factor = record["plan"]["axis"], record["plan"]["factor"]
    thick = read_scan(scan.path, say=lambda line: None).data.astype(np.float32)
    output = read_scan(scan.output, say=lambda line: None)
    thin = output.data.astype(np.float32)
    sizes = output.spacing or (1.0, 1.0, 1.0)
    low, high = np.percentile(thick, [0.5, 99.5])
    views = {"thick input": np.repeat(thick, factor, axis=axis), "cubic spline": spline_upsample(thick, axis, factor),
             "output": thin}
    plt = _pyplot()
    figure, axes = plt.subplots(3, 3, figsize=(7.5, 7.5))
    for column, (title, volume) in enumerate(views.items()):
        for row, plane_axis in enumerate(range(3)):
            plane = np.take(volume, volume.shape[plane_axis] // 2, axis=plane_axis)
            across, down = [a for a in range(3) if a != plane_axis]  # rot90: `down` runs up the rows
            axes[row, column].imshow(np.rot90(plane), cmap="gray", vmin=low, vmax=high,
                                     aspect=sizes[down] / sizes[across], interpolation="nearest")
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if row == 0:
                axes[row, column].set_title(title, fontsize=11)
            if column == 0:
                axes[row, column].set_ylabel("a slice (thin)" if plane_axis == axis else
                                             f"across the slices\n(plane {volume.shape[plane_axis] // 2} of axis "
                                             f"{plane_axis})", fontsize=9)
    figure.tight_layout()
    return save_figure(figure, picture_path(output_dir, scan.name), dpi=80)
