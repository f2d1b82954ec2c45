"""Every network of the project, built by name."""

import keras
from keras import layers, ops

from mrisr.core.precision import is_mixed, output_dtype


def sigmoid_output(layer_class, *arguments, **keywords):
    """A layer ending in a sigmoid: one layer in float32, as the paper built it; under a mixed
    precision policy the layer without its activation, then the sigmoid in float32."""
    if not is_mixed():
        return [layer_class(*arguments, activation="sigmoid", **keywords)]
    return [layer_class(*arguments, **keywords), layers.Activation("sigmoid", dtype="float32")]


def paper_cnn(input_size=25, output_size=50, channels=4):
    """The paper's CNN: four convolutions, a 10,000-unit sigmoid dense layer, reshaped to 50x50x4.

    200,387,120 parameters at the paper's sizes.
    """
    return keras.Sequential(
        [
            keras.Input(shape=(input_size, input_size, channels)),
            layers.Conv2D(128, 10, padding="same", activation="relu"),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Flatten(),
            *sigmoid_output(layers.Dense, output_size * output_size * channels),
            layers.Reshape((output_size, output_size, channels), **output_dtype()),
        ],
        name="paper_cnn",
    )


def paper_generator(input_size=25, output_size=50, channels=4):
    """The paper's GAN generator: 25x25x4 to 50x50x4 through one 2x upsampling."""
    if output_size != 2 * input_size:
        raise ValueError("the paper's generator upsamples by exactly 2")

    def block(filters, kernel):
        return [layers.Conv2D(filters, kernel, padding="same"), layers.BatchNormalization(momentum=0.9),
                layers.ReLU()]

    return keras.Sequential(
        [keras.Input(shape=(input_size, input_size, channels))]
        + block(64, 3) + [layers.Dropout(0.4)]
        + block(32, 5) + [layers.UpSampling2D(2)]
        + block(16, 5) + block(8, 5)
        + sigmoid_output(layers.Conv2D, channels, 5, padding="same"),
        name="paper_generator",
    )


def paper_discriminator(size=50, channels=4, strides=(1, 1, 1, 1)):
    """The paper's discriminator: four Conv2D(5x5) + LeakyReLU(0.2) + Dropout(0.4) modules, one sigmoid unit.

    The paper's text has stride 1 throughout; the authors' code used strides 1, 2, 2, 2.
    """
    modules = []
    for filters, stride in zip((8, 16, 32, 64), strides):
        modules += [layers.Conv2D(filters, 5, strides=stride, padding="same"), layers.LeakyReLU(0.2),
                    layers.Dropout(0.4)]
    return keras.Sequential(
        [keras.Input(shape=(size, size, channels))] + modules + [layers.Flatten(), *sigmoid_output(layers.Dense, 1)],
        name="paper_discriminator",
    )


# --- fully convolutional networks (beyond the paper) ---------------------------------------------
#
# The crops are the 'bone' colour map of one grey value, so these networks work on that grey
# channel: BoneToGrey inverts the colour map exactly on the way in, GreyToBone colours the
# output (piecewise linear through the map's table, so the loss is differentiable). The grey
# network inside is a Keras model named "grey_network" that upscale.py uses on plain grey images.


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


def espcn_network(scale=2, filters=64):
    """ESPCN-style grey network: three convolutions at low resolution, a sub-pixel shuffle, plus
    the cubic upscaling of the input (the network learns the residual)."""
    grey = keras.Input(shape=(None, None, 1), name="grey")
    x = layers.Conv2D(filters, 5, padding="same", activation="relu")(grey)
    x = layers.Conv2D(filters // 2, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(scale * scale, 3, padding="same")(x)
    residual = DepthToSpace(scale)(x)
    output = layers.Add(**output_dtype())([CubicUpsample(scale, **output_dtype())(grey), residual])
    return keras.Model(grey, output, name="grey_network")


def edsr_network(scale=2, filters=64, blocks=8, global_affine=False, min_max=False):
    """EDSR-style grey network: residual blocks without batch normalisation (residuals scaled by
    0.1), a sub-pixel shuffle, plus the cubic upscaling of the input. With global_affine, a
    per-image gain and offset from pooled features (for separately normalised pairs)."""
    grey = keras.Input(shape=(None, None, 1), name="grey")
    head = layers.Conv2D(filters, 3, padding="same")(grey)
    x = head
    for _ in range(blocks):
        y = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        y = layers.Conv2D(filters, 3, padding="same")(y)
        x = layers.Add()([x, layers.Rescaling(0.1)(y)])
    body = layers.Add()([head, layers.Conv2D(filters, 3, padding="same")(x)])
    x = layers.Conv2D(scale * scale, 3, padding="same")(body)
    output = layers.Add(**output_dtype())([CubicUpsample(scale, **output_dtype())(grey), DepthToSpace(scale)(x)])
    if global_affine:
        output = GlobalAffine()([output, body])
    if min_max:
        output = MinMaxNormalise()(output)
    return keras.Model(grey, output, name="grey_network")


def on_bone_crops(network, channels=4, name=None):
    """Wrap a grey network for bone-coloured RGBA crops: BoneToGrey -> network -> GreyToBone."""
    if channels == 1:
        return network
    if channels not in (3, 4):
        raise ValueError(f"the colour-map wrapper needs 1, 3 or 4 channels, not {channels}")
    crops = keras.Input(shape=(None, None, channels), name="crops")
    rgba = GreyToBone(**output_dtype())(network(BoneToGrey()(crops)))
    output = rgba if channels == 4 else layers.Lambda(lambda x: x[..., :3])(rgba)
    return keras.Model(crops, output, name=name or network.name)


def integer_scale(input_size, output_size):
    if output_size % input_size:
        raise ValueError(f"the fully convolutional networks upscale by an integer factor; "
                         f"{input_size} -> {output_size} is not one")
    return output_size // input_size


def espcn(input_size=25, output_size=50, channels=4):
    return on_bone_crops(espcn_network(integer_scale(input_size, output_size)), channels, "espcn")


def edsr(input_size=25, output_size=50, channels=4):
    return on_bone_crops(edsr_network(integer_scale(input_size, output_size)), channels, "edsr")


def edsr_global(input_size=25, output_size=50, channels=4):
    return on_bone_crops(edsr_network(integer_scale(input_size, output_size), global_affine=True),
                         channels, "edsr_global")


def edsr_minmax(input_size=25, output_size=50, channels=4):
    return on_bone_crops(edsr_network(integer_scale(input_size, output_size), min_max=True), channels, "edsr_minmax")


def grey_network(model):
    """The grey network inside a model built here, or None (the paper's networks have none)."""
    try:
        return model.get_layer("grey_network")
    except ValueError:
        return None


CNN_ARCHITECTURES = {"paper": paper_cnn, "espcn": espcn, "edsr": edsr, "edsr_global": edsr_global,
                     "edsr_minmax": edsr_minmax}


def _build(registry, kind, name, *sizes):
    try:
        builder = registry[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(registry)}") from None
    return builder(*sizes)


def build_cnn(arch="paper", input_size=25, output_size=50, channels=4):
    return _build(CNN_ARCHITECTURES, "architecture", arch, input_size, output_size, channels)


GENERATORS = {"paper": paper_generator, "espcn": espcn, "edsr": edsr}


def build_generator(name="paper", input_size=25, output_size=50, channels=4):
    return _build(GENERATORS, "generator", name, input_size, output_size, channels)


# --- through-plane networks (upscale.py self) -------------------------------------------------


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


def through_plane_network(factor, profile=None, channels=64, blocks=4, dtype=None):
    """A residual CNN on planes that contain the slice axis, on the thick grid: each position holds a
    thick value and its `factor` cubic-spline sub-slice values as channels; out come the `factor`
    sub-slices (spline + correction, projected onto the thick value by `profile` when given).
    `dtype` is a Keras dtype policy for the convolutions (e.g. "mixed_bfloat16"); the output is float32."""
    inputs = keras.Input((None, None, 1 + factor), name="thick_and_spline")
    features = layers.Conv2D(channels, 3, padding="same", dtype=dtype)(inputs)
    x = features
    for _ in range(blocks):
        y = layers.Conv2D(channels, 3, padding="same", activation="relu", dtype=dtype)(x)
        y = layers.Conv2D(channels, 3, padding="same", dtype=dtype)(y)
        x = layers.Add(dtype=dtype)([x, y])
    x = layers.Add(dtype=dtype)([x, features])
    correction = layers.Conv2D(factor, 3, padding="same", dtype="float32", kernel_initializer="zeros")(x)
    output = SubSliceOutput(profile, dtype="float32", name="sub_slices")(inputs, correction)
    return keras.Model(inputs, output, name=f"through_plane_x{factor}")
