"""Training data: the split's pairs as shuffled, optionally augmented batches (shared by the CNN and the GAN).

One loader for every Keras backend: a keras.utils.PyDataset over NumPy arrays. Its order is a function of
the seed and the epoch alone, so that a run on several devices sees the batches one device sees
(TensorFlow's tf.data reshuffle advances with every iterator Keras makes, which differs between one
device and a distribution strategy). It costs nothing measurable: 2 to 5 ms a batch of 32 augmented
pairs, against 0.5 to 3 s for a training step on this CPU (benchmarks/loader.py).
"""


import keras
import numpy as np

from mrisr.errors import UserError


class PairBatches(keras.utils.PyDataset):
    """Batches of (input, target) pairs from NumPy arrays: reshuffled every epoch when a seed is given,
    each pair optionally turned by the same random flip and 90-degree rotation (square crops). The
    order and the turns are functions of (seed, epoch, batch), however often Keras reads a batch.

    For several devices: `multiple` trims the epoch's last, smaller batch to a multiple of it (the
    devices share a batch only in equal parts; at most multiple - 1 pairs an epoch are left out), and
    `shard=(k, n)` gives process k of n its k-th equal part of every batch (several machines)."""

    def __init__(self, inputs, targets, batch_size, shuffle_seed=None, augment=False, multiple=1, shard=(0, 1)):
        super().__init__()
        self.inputs, self.targets, self.batch_size, self.augment = inputs, targets, batch_size, augment
        self.seed = shuffle_seed
        self.shard = shard
        self.full_batches, rest = divmod(len(inputs), batch_size)
        self.last_batch = rest - rest % multiple
        self.epoch = 0
        self.order = self.epoch_order()
        if len(self) == 0:
            raise UserError(f"{len(inputs)} pairs cannot be shared equally by {multiple} devices: use fewer devices")

    def __len__(self):
        return self.full_batches + (self.last_batch > 0)

    def epoch_order(self):
        if self.seed is None:
            return np.arange(len(self.inputs))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.inputs))

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self.epoch_order()

    def __getitem__(self, index):
        size = self.batch_size if index < self.full_batches else self.last_batch
        rows = self.order[index * self.batch_size:index * self.batch_size + size]
        part, parts = self.shard
        low, high = self.inputs[rows], self.targets[rows]
        if self.augment:
            low, high = low.copy(), high.copy()
            rng = np.random.default_rng([0 if self.seed is None else self.seed, self.epoch, index, 1])
            for k, (turns, flip) in enumerate(zip(rng.integers(0, 4, len(rows)), rng.random(len(rows)) < 0.5)):
                low[k], high[k] = (np.rot90(image, turns) for image in (low[k], high[k]))
                if flip:
                    low[k], high[k] = low[k][:, ::-1], high[k][:, ::-1]
        share = len(rows) // parts
        return low[part * share:(part + 1) * share], high[part * share:(part + 1) * share]


def make_dataset(inputs, targets, batch_size, shuffle_seed=None, augment=False, multiple=1, shard=(0, 1)):
    """Batches over in-memory arrays: shuffled each epoch when a seed is given, optionally augmented
    by flips and rotations, cut for several devices (see PairBatches)."""
    return PairBatches(inputs, targets, batch_size, shuffle_seed, augment, multiple, shard)


def prepare_training(crop_set, split, batch_size, seed=None, limit=None, augment=False, multiple=1, shard=(0, 1)):
    """Seed everything; the training and validation crops (training cut to `limit`) and the shuffled
    training batches (cut for several devices: see PairBatches)."""
    seed = 0 if seed is None else seed
    keras.utils.set_random_seed(seed)
    train = crop_set.subset(split.train)
    validation = crop_set.subset(split.validation)
    if limit is not None:
        train = train.subset(train.indices[:limit])
    if len(train) == 0 or len(validation) == 0:
        raise UserError(f"the split leaves {len(train)} training and {len(validation)} validation crops: "
                        "both must be at least 1")
    return train, validation, make_dataset(train.inputs, train.targets, batch_size, seed, augment, multiple, shard)
