"""Every network of the project, built by name."""

import keras
from keras import layers


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
            layers.Dense(output_size * output_size * channels, activation="sigmoid"),
            layers.Reshape((output_size, output_size, channels)),
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
        + [layers.Conv2D(channels, 5, padding="same", activation="sigmoid")],
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
        [keras.Input(shape=(size, size, channels))] + modules + [layers.Flatten(), layers.Dense(1, activation="sigmoid")],
        name="paper_discriminator",
    )


CNN_ARCHITECTURES = {"paper": paper_cnn}


def _build(registry, kind, name, *sizes):
    try:
        builder = registry[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(registry)}") from None
    return builder(*sizes)


def build_cnn(arch="paper", input_size=25, output_size=50, channels=4):
    return _build(CNN_ARCHITECTURES, "architecture", arch, input_size, output_size, channels)


GENERATORS = {"paper": paper_generator}


def build_generator(name="paper", input_size=25, output_size=50, channels=4):
    return _build(GENERATORS, "generator", name, input_size, output_size, channels)
