"""Whole scans in and out: the Scan type and its kinds (kinds.py), reading and writing every format
(scan.py, nifti.py, pictures.py, dicom/), the one geometry (geometry.py), values (values.py), in-plane
upscaling through tiles (upscaling.py), thin slices across a thick volume (through_plane/),
each output's record (records.py), and the file-level work of upscale.py (upscale_file.py)."""
