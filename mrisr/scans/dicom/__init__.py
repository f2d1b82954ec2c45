"""DICOM in and out: a single image, a Siemens mosaic, a multi-frame file or a folder holding one series.

- datasets.py: one file read safely (no preamble, empty or malformed numbers, missing decoders).
- reading.py, series.py, frames.py, mosaic.py: each kind read as a Scan with its geometry.
- writing.py: the output, each source header with the finer grid's geometry; derived.py: the pixels'
  own attributes (bits, statistics, overlays, icon, ImageType, UIDs); vendors.py and siemens_csa.py:
  the vendors' private copies of geometry and slice numbering.
"""
