"""Training data: the split's pairs as shuffled, optionally augmented batches (shared by the CNN and the GAN)."""

import keras

from mrisr.cli import UserError


def augment_pair(low, high):
    """The same random flip and 90-degree rotation of an input and its target (square crops)."""
    import tensorflow as tf

    turns = tf.random.uniform((), 0, 4, dtype=tf.int32)
    low, high = tf.image.rot90(low, turns), tf.image.rot90(high, turns)
    flip = tf.random.uniform(()) < 0.5
    return (tf.cond(flip, lambda: tf.image.flip_left_right(low), lambda: low),
            tf.cond(flip, lambda: tf.image.flip_left_right(high), lambda: high))


def make_dataset(inputs, targets, batch_size, shuffle_seed=None, augment=False):
    """A tf.data pipeline over in-memory arrays: shuffled each epoch when a seed is given,
    optionally augmented by flips and rotations, prefetched."""
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
