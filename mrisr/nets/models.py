"""Every network of the project, built by name."""

import keras
from keras import layers

from mrisr.core.precision import is_mixed, output_dtype
from mrisr.nets.architectures import ARCHITECTURES, GENERATORS
from mrisr.nets.layers import (
    BoneToGrey,
    CubicUpsample,
    DepthToSpace,
    GlobalAffine,
    GreyToBone,
    MinMaxNormalise,
    SubSliceOutput,
)


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


ARCHITECTURE_BUILDERS = dict(zip(ARCHITECTURES, (paper_cnn, espcn, edsr, edsr_global, edsr_minmax), strict=True))


def _build(registry, kind, name, *sizes):
    try:
        builder = registry[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(registry)}") from None
    return builder(*sizes)


def build_cnn(arch="paper", input_size=25, output_size=50, channels=4):
    return _build(ARCHITECTURE_BUILDERS, "architecture", arch, input_size, output_size, channels)


GENERATOR_BUILDERS = dict(zip(GENERATORS, (paper_generator, espcn, edsr), strict=True))


def build_generator(name="paper", input_size=25, output_size=50, channels=4):
    return _build(GENERATOR_BUILDERS, "generator", name, input_size, output_size, channels)


# --- through-plane networks (upscale.py self) -------------------------------------------------


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
