"""Training data: the split's pairs as shuffled, optionally augmented batches (shared by the CNN and the GAN).

On TensorFlow a tf.data pipeline; on the other Keras backends (JAX, PyTorch) a keras.utils.PyDataset
over NumPy arrays, which needs no TensorFlow.
"""

import math

import keras
import numpy as np

from mrisr.cli import UserError


def augment_pair(low, high):
    """The same random flip and 90-degree rotation of an input and its target (square crops)."""
    import tensorflow as tf

    turns = tf.random.uniform((), 0, 4, dtype=tf.int32)
    low, high = tf.image.rot90(low, turns), tf.image.rot90(high, turns)
    flip = tf.random.uniform(()) < 0.5
    return (tf.cond(flip, lambda: tf.image.flip_left_right(low), lambda: low),
            tf.cond(flip, lambda: tf.image.flip_left_right(high), lambda: high))


class PairBatches(keras.utils.PyDataset):
    """Batches of (input, target) pairs from NumPy arrays: reshuffled every epoch when a seed is given,
    each pair optionally turned by the same random flip and 90-degree rotation (square crops)."""

    def __init__(self, inputs, targets, batch_size, shuffle_seed=None, augment=False):
        super().__init__()
        self.inputs, self.targets, self.batch_size, self.augment = inputs, targets, batch_size, augment
        self.rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
        self.augment_rng = np.random.default_rng(0 if shuffle_seed is None else shuffle_seed + 1)
        self.order = np.arange(len(inputs))
        self.on_epoch_end()

    def __len__(self):
        return math.ceil(len(self.inputs) / self.batch_size)

    def on_epoch_end(self):
        if self.rng is not None:
            self.order = self.rng.permutation(len(self.inputs))

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        low, high = self.inputs[rows], self.targets[rows]
        if self.augment:
            low, high = low.copy(), high.copy()
            for k, (turns, flip) in enumerate(zip(self.augment_rng.integers(0, 4, len(rows)),
                                                 self.augment_rng.random(len(rows)) < 0.5)):
                low[k], high[k] = (np.rot90(image, turns) for image in (low[k], high[k]))
                if flip:
                    low[k], high[k] = low[k][:, ::-1], high[k][:, ::-1]
        return low, high


def batches_per_epoch(dataset):
    """How many batches an epoch of a dataset made by make_dataset has."""
    return len(dataset) if isinstance(dataset, PairBatches) else int(dataset.cardinality())


def make_dataset(inputs, targets, batch_size, shuffle_seed=None, augment=False):
    """Batches over in-memory arrays: shuffled each epoch when a seed is given, optionally augmented
    by flips and rotations. On TensorFlow a prefetched tf.data pipeline, else PairBatches."""
    if keras.backend.backend() != "tensorflow":
        return PairBatches(inputs, targets, batch_size, shuffle_seed, augment)
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(inputs), seed=shuffle_seed, reshuffle_each_iteration=True)
    if augment:
        dataset = dataset.map(augment_pair, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def prepare_training(crop_set, split, batch_size, seed=None, limit=None, augment=False):
    """Seed everything; the training and validation crops (training cut to `limit`) and the shuffled
    training pipeline."""
    seed = 0 if seed is None else seed
    keras.utils.set_random_seed(seed)
    train = crop_set.subset(split.train)
    validation = crop_set.subset(split.validation)
    if limit is not None:
        train = train.subset(train.indices[:limit])
    if len(train) == 0 or len(validation) == 0:
        raise UserError(f"the split leaves {len(train)} training and {len(validation)} validation crops: "
                        "both must be at least 1")
    return train, validation, make_dataset(train.inputs, train.targets, batch_size, shuffle_seed=seed,
                                           augment=augment)
