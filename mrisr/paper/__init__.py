"""The paper's pipeline: its data sources (sources.py), crops (crops.py), splits (splits.py), training
batches (datasets.py), the CNN and GAN runs (training.py, gan.py), what a model was trained on
(provenance.py, names.py), evaluation beside bicubic (evaluation.py), and the figures (plots.py,
figures.py)."""
