"""Models the notebooks build and reuse.

``char_lstm`` is the character model of ``notebooks/04_music_lstm.ipynb``.
``mnist_cnn`` is the CNN of ``notebooks/03_cnn_mnist.ipynb`` (written out there as the
solution of its TODO; ``tests/test_models.py`` keeps the two identical). The GAN
notebook reuses it as the classifier behind its sample-quality scores.
"""

from __future__ import annotations

from typing import Any


def mnist_cnn(num_classes: int = 10) -> Any:
    """Two 5x5 convolution blocks (batch norm, ReLU, 2x2 max-pooling), a 128-unit hidden
    layer and ``num_classes`` logits: 332,546 parameters, 99.4-99.5 % on MNIST after six
    epochs on a laptop CPU.

    Introduced in ``notebooks/03_cnn_mnist.ipynb``.

    >>> mnist_cnn().count_params()
    332546
    """
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(24, 5, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.Conv2D(48, 5, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.Dropout(0.25),
            layers.Dense(num_classes),
        ],
        name="mnist_cnn",
    )


def char_lstm(
    vocab_size: int, embedding_dim: int = 64, rnn_units: int = 256, dropout: float = 0.0, recurrent_dropout: float = 0.0
) -> Any:
    """Embedding -> Dropout -> LSTM (every step's output) -> Dropout -> Dense logits: the
    character model of ``notebooks/04_music_lstm.ipynb`` (written out there as the
    solution of its TODO; ``tests/test_models.py`` keeps the two identical).
    ``recurrent_dropout`` drops units of the LSTM's state between steps, with one mask per
    sequence (variational dropout).

    >>> char_lstm(83).count_params()
    355347
    >>> [layer.recurrent_dropout for layer in char_lstm(83, recurrent_dropout=0.25).layers if hasattr(layer, "cell")]
    [0.25]
    """
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            layers.Embedding(vocab_size, embedding_dim),
            layers.Dropout(dropout / 2),
            layers.LSTM(rnn_units, return_sequences=True, recurrent_dropout=recurrent_dropout),
            layers.Dropout(dropout),
            layers.Dense(vocab_size),
        ],
        name="char_lstm",
    )
