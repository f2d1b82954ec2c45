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


CNN_ARCHITECTURES = {"paper": paper_cnn}


def build_cnn(arch="paper", input_size=25, output_size=50, channels=4):
    try:
        builder = CNN_ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(CNN_ARCHITECTURES)}") from None
    return builder(input_size, output_size, channels)
