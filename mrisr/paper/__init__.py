"""The paper's pipeline: its data sources (sources.py), the crop recipe (extraction.py), crop folders
(crops.py), training pairs (pairs.py), splits (splits.py), training batches (datasets.py), the CNN and GAN
runs (training.py, cnn_callbacks.py, gan_model.py, gan.py), what a model was trained on (provenance.py, names.py),
evaluation beside bicubic (evaluation.py), the default recipes (recipes.py), shipping weights (shipping.py),
and the figures (plots.py, figures.py)."""
