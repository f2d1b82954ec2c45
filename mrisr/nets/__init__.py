"""The networks and what they compute with: every architecture (models.py), the project's layers
(layers.py), losses and metrics (losses.py, metrics.py), OpenCV-exact resizing and the bone colour map
(imaging.py), safe loading of a .keras file (loading.py), the shipped weights' names and provenance
(shipped.py)."""
