"""The project's own Keras layers (registered, so that saved models load them by name): the 'bone'
colour map and its inverse, the sub-pixel shuffle, OpenCV's cubic upscaling as a convolution, a global
affine, per-image min-max normalisation, and the projection of through-plane sub-slices."""

import keras
from keras import layers, ops


def _bone_keys_and_colours():
    import numpy as np

    from mrisr.nets.imaging import bone_table

    table = bone_table()[:, :3].astype(np.float32) / 255.0
    return table.sum(axis=1), table


@keras.saving.register_keras_serializable(package="mrisr")
class BoneToGrey(layers.Layer):
    """RGB(A) coloured with the 'bone' map, values in [0, 1] -> the grey value (N, H, W, 1).

    Each pixel snaps to the nearest colour-map entry by its channel sum (strictly increasing
    along the map), exactly as imaging.bone_rgba_to_grey. Not differentiable (inputs need not be).
    """

    def call(self, rgba):
        keys, _ = _bone_keys_and_colours()
        total = ops.sum(rgba[..., :3], axis=-1, keepdims=True)
        index = ops.argmin(ops.abs(total - ops.cast(ops.convert_to_tensor(keys), total.dtype)), axis=-1)
        return ops.expand_dims((ops.cast(index, rgba.dtype) + 0.5) / 256.0, -1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)


@keras.saving.register_keras_serializable(package="mrisr")
class GreyToBone(layers.Layer):
    """Grey (N, H, W, 1) -> RGBA coloured with the 'bone' map, interpolated linearly between the
    table's entries (exact at their centres) and clipped to the map; alpha 1."""

    def call(self, grey):
        _, colours = _bone_keys_and_colours()
        colours = ops.cast(ops.convert_to_tensor(colours), grey.dtype)
        position = ops.clip(grey[..., 0] * 256.0 - 0.5, 0.0, 255.0)
        lower = ops.minimum(ops.cast(ops.floor(position), "int32"), 254)
        fraction = ops.expand_dims(position - ops.cast(lower, grey.dtype), -1)
        rgb = ops.take(colours, lower, axis=0) * (1.0 - fraction) + ops.take(colours, lower + 1, axis=0) * fraction
        return ops.concatenate([rgb, ops.ones_like(grey)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (4,)


def depth_to_space(features, scale):
    """Sub-pixel shuffle as TensorFlow's depth_to_space (NHWC): (H, W, s * s * C) -> (H * s, W * s, C),
    output[h * s + i, w * s + j, c] = input[h, w, (i * s + j) * C + c]."""
    shape = ops.shape(features)
    height, width, channels = shape[1], shape[2], features.shape[-1] // (scale * scale)
    blocks = ops.reshape(features, (-1, height, width, scale, scale, channels))
    blocks = ops.transpose(blocks, (0, 1, 3, 2, 4, 5))
    return ops.reshape(blocks, (-1, height * scale, width * scale, channels))


def cubic_phase_kernel(scale):
    """The (5, 5, 1, scale**2) convolution kernel of OpenCV's cubic upscaling by an integer scale:
    output phase (py, px) of a pixel is a 5x5 weighted sum of its replicate-padded neighbourhood."""
    import numpy as np

    from mrisr.nets.imaging import cubic_weights

    size = 12  # large enough that the middle pixel's taps touch no border
    weights = cubic_weights(size, size * scale)
    middle = size // 2
    taps = np.stack([weights[middle * scale + phase, middle - 2: middle + 3] for phase in range(scale)])
    kernel = np.einsum("yi,xj->ijyx", taps, taps).reshape(5, 5, 1, scale * scale)
    return kernel.astype(np.float32)


@keras.saving.register_keras_serializable(package="mrisr")
class CubicUpsample(layers.Layer):
    """OpenCV-exact cubic upscaling of one channel by an integer scale, as a fixed convolution and
    depth_to_space (tf.image.resize's bicubic does not compile under XLA; this does)."""

    def __init__(self, scale=2, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, image):
        top, bottom = image[:, :1], image[:, -1:]
        image = ops.concatenate([top, top, image, bottom, bottom], axis=1)
        left, right = image[:, :, :1], image[:, :, -1:]
        image = ops.concatenate([left, left, image, right, right], axis=2)
        kernel = ops.cast(ops.convert_to_tensor(cubic_phase_kernel(self.scale)), image.dtype)
        phases = ops.conv(image, kernel, strides=1, padding="valid")
        return depth_to_space(phases, self.scale)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.scale, None if w is None else w * self.scale, c)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="mrisr")
class DepthToSpace(layers.Layer):
    """Sub-pixel shuffle: (H, W, C * s * s) -> (H * s, W * s, C)."""

    def __init__(self, scale=2, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, features):
        return depth_to_space(features, self.scale)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        s = self.scale
        return (n, None if h is None else h * s, None if w is None else w * s, c // (s * s))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="mrisr")
class GlobalAffine(layers.Layer):
    """Per-image gain and offset applied to an image: image * (1 + gain) + offset, predicted by a
    small perceptron from globally pooled features and the image's own minimum, maximum, mean and
    standard deviation. Starts as the identity (zero-initialised last layer)."""

    def __init__(self, hidden=32, **kwargs):
        super().__init__(**kwargs)
        self.hidden = int(hidden)

    def build(self, input_shapes):
        _, feature_shape = input_shapes
        self.hidden_layer = layers.Dense(self.hidden, activation="relu", name="hidden")
        self.hidden_layer.build((None, 2 * feature_shape[-1] + 4))
        self.gain_offset = layers.Dense(2, kernel_initializer="zeros", name="gain_offset")
        self.gain_offset.build((None, self.hidden))

    def call(self, inputs):
        image, features = inputs
        axes = (1, 2, 3)
        statistics = ops.stack([ops.min(image, axes), ops.max(image, axes), ops.mean(image, axes),
                                ops.std(image, axes)], axis=-1)
        pooled = ops.concatenate([ops.mean(features, axis=(1, 2)), ops.max(features, axis=(1, 2)), statistics], -1)
        gain_offset = self.gain_offset(self.hidden_layer(pooled))[:, None, None, :]
        return image * (1.0 + gain_offset[..., :1]) + gain_offset[..., 1:]

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="mrisr")
class MinMaxNormalise(layers.Layer):
    """Scale each image to [0, 1] by its own minimum and maximum, as the paper's crops were made."""

    def call(self, image):
        low = ops.min(image, axis=(1, 2, 3), keepdims=True)
        high = ops.max(image, axis=(1, 2, 3), keepdims=True)
        return (image - low) / ops.maximum(high - low, 1e-6)


@keras.saving.register_keras_serializable(package="mrisr")
class SubSliceOutput(layers.Layer):
    """The sub-slices of each thick slice: the cubic-spline values plus the network's correction, then
    projected so that the slice profile's weighted sum of each thick slice's sub-slices equals its
    thick value (the smallest such change; inputs: (..., 1 + F) = thick value and F spline values)."""

    def __init__(self, profile=None, **kwargs):
        super().__init__(**kwargs)
        self.profile = None if profile is None else [float(w) for w in profile]

    def call(self, inputs, correction):
        inputs = keras.ops.cast(inputs, "float32")
        output = inputs[..., 1:] + keras.ops.cast(correction, "float32")
        if self.profile is None:
            return output
        weights = keras.ops.convert_to_tensor(self.profile, "float32")
        mismatch = inputs[..., :1] - keras.ops.sum(output * weights, axis=-1, keepdims=True)
        return output + weights * mismatch / float(sum(w * w for w in self.profile))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] - 1,)

    def get_config(self):
        return {**super().get_config(), "profile": self.profile}
