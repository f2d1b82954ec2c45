"""The through-plane training of `upscale.py self` as shipped up to commit 3067425, kept runnable for
benchmarks/through_plane_speed.py's comparison (not used by the package): a per-sample Python loop
of patches, and `model.fit` re-entered on a NumPy round of 16 batches, with the cosine over the time.

Its `train_network` returns (model, (seconds, steps, final loss)).
"""

import time

import numpy as np

from mrisr.errors import UserError
from mrisr.scans.through_plane import degrade, network_input


class PatchSampler:
    """Training pairs from the in-plane slices of a normalised volume: a patch degraded along one of
    its in-plane axes by the slice profile (every phase of the thick grid, both axes, flips), as
    network input, and the patch's sub-slices as target."""

    def __init__(self, planes, profile, thick_length=12, width=48, seed=0, pitch_ratios=(1.0, 1.0)):
        shortest = min(int(planes.shape[1] * pitch_ratios[0]), int(planes.shape[2] * pitch_ratios[1]))
        thick_length = max(3, min(thick_length, (shortest - 1) // profile.factor))
        self.profile, self.thick_length, self.width = profile, thick_length, width
        self.rng = np.random.default_rng(seed)
        # Each orientation: planes whose first axis is the one to degrade, resampled (when the thin
        # pitch differs from the in-plane pixel) so that one pixel is one thin slice.
        self.stacks = []
        for axis, ratio in zip((1, 2), pitch_ratios):
            stack = np.moveaxis(planes, axis, 1)
            if abs(ratio - 1.0) > 0.02:
                from scipy.ndimage import zoom

                stack = zoom(stack, (1, ratio, 1), order=3).astype(np.float32)
            self.stacks.append(stack)
        offsets, _ = profile.taps()
        self.reach = int(max(abs(offsets.min()), abs(offsets.max())) + profile.factor)
        fine_length = thick_length * profile.factor
        self.stacks = [s for s in self.stacks if s.shape[1] >= fine_length + 1 and s.shape[2] >= 8]
        if not self.stacks:
            raise UserError(f"the slices ({planes.shape[1]}x{planes.shape[2]}) are too small to learn x"
                            f"{profile.factor} from (at least {fine_length + 1} pixels are needed)")
        # Slices with some content: at least 5% of the pixels above a tenth of the range.
        self.useful = [np.flatnonzero((s > 0.1).mean(axis=(1, 2)) > 0.05) for s in self.stacks]
        self.useful = [u if u.size else np.arange(len(s)) for u, s in zip(self.useful, self.stacks)]

    def batch(self, count):
        factor, length = self.profile.factor, self.thick_length
        inputs = np.empty((count, length, self.width, 1 + factor), np.float32)
        targets = np.empty((count, length, self.width, factor), np.float32)
        thick_planes, fine_planes = [], []
        for _ in range(count):
            which = self.rng.integers(len(self.stacks))
            stack = self.stacks[which]
            plane = stack[self.rng.choice(self.useful[which])]
            width = min(self.width, plane.shape[1])
            for attempt in range(8):  # prefer patches with content
                start = int(self.rng.integers(0, plane.shape[0] - length * factor + 1))
                column = int(self.rng.integers(0, plane.shape[1] - width + 1))
                fine = plane[:, column:column + width]
                if fine[start:start + length * factor].mean() > 0.05 or attempt == 7:
                    break
            if self.rng.random() < 0.5:
                fine = fine[:, ::-1]
            thick = degrade(fine, 0, self.profile, start, length)
            target = fine[start:start + length * factor]
            if width < self.width:  # narrow slices: pad the patch by reflection
                thick = np.pad(thick, ((0, 0), (0, self.width - width)), mode="reflect")
                target = np.pad(target, ((0, 0), (0, self.width - width)), mode="reflect")
            if self.rng.random() < 0.5:  # flip along the slice axis: the profile is symmetric
                thick, target = thick[::-1], target[::-1]
            thick_planes.append(thick)
            fine_planes.append(target)
        inputs[:] = network_input(np.stack(thick_planes), factor)
        targets[:] = np.stack(fine_planes).reshape(count, length, factor, self.width).transpose(0, 1, 3, 2)
        return inputs, targets



def train_network(volume01, axis, profile, minutes=5.0, pitch_ratios=(1.0, 1.0), batch_size=16, seed=0,
                  precision="mixed_bfloat16", progress=True, learning_rate=1e-3, max_steps=None):
    """Train a through-plane network on the volume's own in-plane slices for `minutes` (cosine
    learning rate over that time, L1 loss after the consistency projection), or until `max_steps`
    steps when given (rounded up to whole rounds of 16 batches). Returns (model, report)."""
    import keras
    from tqdm import tqdm

    from mrisr.core.callbacks import TimeLimit, TrainingDiverged, check_finite_epoch
    from mrisr.nets.models import through_plane_network

    keras.utils.set_random_seed(seed)
    planes = np.moveaxis(volume01, axis, 0)
    sampler = PatchSampler(planes, profile, seed=seed, pitch_ratios=pitch_ratios)
    model = through_plane_network(profile.factor, profile.projection(), dtype=precision)
    limit = TimeLimit(minutes, cosine_from=learning_rate)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mean_absolute_error")
    started, steps, loss = time.monotonic(), 0, float("nan")
    bar = tqdm(total=round(60 * minutes), desc="learning from the volume", unit="s", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}")
    round_size = batch_size * 16
    while not limit.reached and (max_steps is None or steps < max_steps):
        inputs, targets = sampler.batch(round_size)
        history = model.fit(inputs, targets, batch_size=batch_size, epochs=1, verbose=0, callbacks=[limit])
        loss = float(history.history["loss"][-1])
        steps += round_size // batch_size
        try:
            check_finite_epoch({"loss": loss}, steps, [model])
        except TrainingDiverged:
            bar.close()
            raise
        bar.n = min(bar.total, time.monotonic() - started)
        bar.set_postfix_str(f"L1 {loss:.4f}")
        bar.refresh()
    bar.close()
    return model, (time.monotonic() - started, steps, loss)
