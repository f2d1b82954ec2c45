"""A study run: its scans found, the ones already done (output and record matching the input and the
settings) left as they are, the rest sent to workers, each bad scan one line that stops nothing, a
progress bar, and the report.

Workers: `workers` local processes (the machine's cores shared among them, one process per GPU where
there are GPUs), through Python's process pool; or the workers of a Dask distributed cluster at
`scheduler` (`tcp://host:8786`; `pip install "mrisr[study]"`), wherever they run. Each scan is one task;
with `learn="protocol"`, the scans of one protocol (the same kind, matrix, voxel sizes and plan) first
learn one network together, then each is fine-tuned from it.
"""

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

from mrisr.core.files import remove_stale_temporaries_under
from mrisr.core.messages import LOGGER, inform
from mrisr.errors import UserError
from mrisr.scans.records import input_checksum, is_done, read_record
from mrisr.studies import work
from mrisr.studies.inputs import find_scans, write_description

LEARNING = ("scan", "protocol")
PROTOCOL_SCANS = 4  # the scans of a protocol its network learns from


@dataclasses.dataclass
class StudyResult:
    kind: str  # bids, folder or list
    results: list  # one dict a scan: status done, kept (done before), skipped or failed, with its name
    seconds: float
    report: Path

    @property
    def failed(self):
        return [result for result in self.results if result["status"] == "failed"]


def gpu_count():
    """NVIDIA GPUs on this machine (nvidia-smi's list), without starting any framework."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listed.stdout.splitlines()) if listed.returncode == 0 else 0


def default_workers():
    """One worker per GPU where there are GPUs; else one per 2 cores, at least 1 (learning is most
    efficient with two threads or more each)."""
    return gpu_count() or max(1, (os.cpu_count() or 2) // 2)


class LocalWorkers:
    """`count` worker processes of this machine, each with its share of the cores (or one GPU)."""

    def __init__(self, count):
        self.count = count
        gpus = gpu_count()
        self.threads = max(1, (os.cpu_count() or 1) // count)
        self.describe = (f"{count} local worker(s), " + ("one GPU each" if gpus >= count else
                                                         f"{self.threads} CPU thread(s) each"))
        context = multiprocessing.get_context("spawn")  # TensorFlow does not survive a fork
        self.pool = concurrent.futures.ProcessPoolExecutor(count, mp_context=context, initializer=_start_worker,
                                                           initargs=(context.Value("i", 0), gpus, os.getpid()))

    def submit(self, function, *arguments):
        return self.pool.submit(function, *arguments)

    def first_done(self, futures):
        return concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED).done

    def wait(self, future):
        return future.result()

    def close(self, cancel=False):
        """Shut the pool; with `cancel` (an interrupt), stop the workers in the middle of their scans too
        (their temporaries are swept by the next run) rather than let them finish unseen."""
        if cancel:
            running = getattr(self.pool, "_processes", None) or {}  # the pool's own processes (no public list)
            for process in list(running.values()):
                process.terminate()
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class DaskWorkers:
    """The workers of a Dask distributed cluster (each with the threads its machine gives it)."""

    def __init__(self, address):
        try:
            from distributed import Client
        except ImportError:
            raise UserError("a scheduler address needs Dask: pip install \"mrisr[study]\" (dask[distributed])") \
                from None
        try:
            self.client = Client(address, timeout="30s")
        except (OSError, TimeoutError) as error:
            raise UserError(f"cannot reach the Dask scheduler at {address}: {error}") from None
        workers = self.client.scheduler_info().get("workers", {})
        self.threads = None
        self.describe = f"the Dask cluster at {address} ({len(workers)} worker(s) now)"

    def submit(self, function, *arguments):
        return self.client.submit(function, *arguments, pure=False)

    def first_done(self, futures):
        from distributed import wait

        return wait(list(futures), return_when="FIRST_COMPLETED").done

    def wait(self, future):
        return future.result()

    def close(self, cancel=False):
        self.client.close()


def _start_worker(counter, gpus, parent):
    """A local worker's start: the next GPU of the machine its only one (CUDA_VISIBLE_DEVICES), where there
    are GPUs; and a watch on the study's process, so that a worker whose study was killed (even by SIGKILL,
    which no cleanup sees) stops within seconds instead of finishing its scan for no one."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mrisr-watch-study").start()
    if gpus:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % gpus)


def settings_of(options, learn, fine_tune_steps):
    """What a scan's record holds as its settings (a rerun with others redoes the scan)."""
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in sorted(options.items())
                if value is not None}
    settings["learn"] = learn
    if learn == "protocol":
        settings["fine_tune_steps"] = fine_tune_steps
    return settings


def run_study(input_path, output_dir, participants=None, suffixes=None, workers=None, scheduler=None, learn="scan",
              fine_tune_steps=1000, progress=True, say=inform, command=None, **options):
    """Upscale every scan of a study across its slices (see the module); returns a StudyResult. Bad scans
    are listed with their reason, never stop the others."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from mrisr.studies.report import write_report

    if learn not in LEARNING:
        raise UserError(f"the learning must be one of {', '.join(LEARNING)}, not {learn!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UserError(f"the workers must be a whole number of at least 1, got {workers!r}")
    started = time.perf_counter()
    output_dir = Path(output_dir)
    kind, scans = find_scans(input_path, output_dir, participants, suffixes)
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries_under(output_dir)  # what a killed run was writing
    if kind == "bids":
        write_description(output_dir, input_path, command)
    settings = settings_of(options, learn, fine_tune_steps)
    results, pending = {}, []
    for scan in scans:
        if is_done(scan.output, input_checksum(scan.path), settings):
            record = read_record(scan.output)
            results[scan.name] = {"status": "kept", "name": scan.name, "output": str(scan.output),
                                  "held_out_gain": record.get("learning", {}).get("held_out_gain_db"),
                                  "warnings": record.get("warnings", []), "seconds": record.get("seconds"),
                                  "picture": str(work.picture_path(output_dir, scan.name))}
        else:
            pending.append(scan)
    engine = DaskWorkers(scheduler) if scheduler else LocalWorkers(workers or default_workers())
    say(f"{len(scans)} scan(s) in {input_path} ({kind}); {len(scans) - len(pending)} done before, {len(pending)} to "
        f"do on {engine.describe}")
    bar = tqdm(total=len(scans), initial=len(scans) - len(pending), desc="study", unit="scan",
               disable=not progress)
    lines_above_the_bar = logging_redirect_tqdm([LOGGER]) if progress else contextlib.nullcontext()
    try:
        with lines_above_the_bar:  # the library's lines written above the bar, as the command shows them
            for result in _run(engine, pending, options, settings, output_dir, learn, fine_tune_steps, command,
                               say):
                results[result["name"]] = result
                if result["status"] in ("failed", "skipped"):
                    say(f"{result['status']}: {result['name']}: {result['reason']}")
                bar.update(1)
                bar.set_postfix(failed=sum(r["status"] == "failed" for r in results.values()))
        engine.close()
    except BaseException:
        engine.close(cancel=True)
        raise
    finally:
        bar.close()
    remove_stale_temporaries_under(output_dir)  # a killed run's worker may have died only after the start
    ordered = [results[scan.name] for scan in scans]
    report = write_report(output_dir, ordered, input_path, engine.describe, time.perf_counter() - started)
    return StudyResult(kind, ordered, time.perf_counter() - started, report)


def _run(engine, scans, options, settings, output_dir, learn, fine_tune_steps, command, say):
    """Yield each scan's result as it comes: per scan, or per protocol (survey every scan, learn one network
    for each protocol of two scans or more, fine-tune each scan from its protocol's network)."""
    threads = engine.threads

    def upscale(scan, start=None, steps=None):
        return engine.submit(work.upscale, scan, options, settings, output_dir, start, steps, threads, command)

    if learn == "scan":
        pending = {upscale(scan): ("scan", scan) for scan in scans}
    else:
        pending = {engine.submit(work.survey, scan.path, options): ("survey", scan) for scan in scans}
    groups, surveys = {}, len(scans) if learn == "protocol" else 0
    while pending:
        for future in engine.first_done(pending):
            role, payload = pending.pop(future)
            outcome = _result(engine, future, payload if role != "learn" else None)
            if role == "scan":
                yield outcome
            elif role == "survey":
                surveys -= 1
                if outcome["status"] == "planned":
                    groups.setdefault(outcome["protocol"], []).append(payload)
                else:
                    yield {**outcome, "name": payload.name}
                if surveys == 0:
                    pending.update(_start_protocols(engine, groups, options, output_dir, fine_tune_steps, threads,
                                                    upscale, say))
            else:
                weights, members = payload
                if outcome["status"] != "learned":
                    say(f"the protocol's network could not learn ({outcome.get('reason')}): its scans learn each "
                        "on its own")
                for scan in members:
                    pending[upscale(scan, weights if outcome["status"] == "learned" else None,
                                    fine_tune_steps if outcome["status"] == "learned" else None)] = ("scan", scan)


def _start_protocols(engine, groups, options, output_dir, fine_tune_steps, threads, upscale, say):
    """The first tasks of each protocol: a network learned from some of its scans (two scans or more), or
    the scan itself (one scan alone)."""
    started = {}
    for key, members in sorted(groups.items()):
        members = sorted(members, key=lambda scan: scan.name)
        if len(members) < 2:
            started[upscale(members[0])] = ("scan", members[0])
            continue
        weights = output_dir / ".mrisr" / "protocols" / (hashlib.sha256(key.encode()).hexdigest()[:16]
                                                         + ".weights.h5")
        say(f"protocol {key}: {len(members)} scans; one network learns from {min(len(members), PROTOCOL_SCANS)} of "
            f"them, then each scan is fine-tuned from it for {fine_tune_steps} steps")
        task = engine.submit(work.learn_protocol, [scan.path for scan in members[:PROTOCOL_SCANS]], options, weights,
                             threads)
        started[task] = ("learn", (weights, members))
    return started


def _result(engine, future, scan):
    """A task's result; a worker that died or a task that raised is the scan's failure, in one line."""
    try:
        return engine.wait(future)
    except Exception as error:  # a lost worker (Dask's KilledWorker, a broken pool), an unexpected error
        name = scan.name if scan is not None else "a protocol"
        return {"status": "failed", "name": name,
                "reason": f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:200]}"}
