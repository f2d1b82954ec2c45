"""Studies: every scan of a BIDS dataset, a folder or a list made finer across its slices, on local
worker processes or a Dask cluster, resumable, each output with its record, and a report.

- inputs.py: the scans of a study and where each output goes (BIDS derivatives, or the same names).
- work.py: the tasks a worker runs (survey a scan, learn a protocol's network, upscale a scan).
- engine.py: `run_study`, the workers (local or Dask), what is done already, the progress.
- report.py: report.html.
"""
