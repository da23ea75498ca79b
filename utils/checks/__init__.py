"""The lab checks: plain functions called in the cell right after each TODO.

Success prints one short ``[ok] ...`` line; failure raises :class:`CheckError` (an
``AssertionError``) whose message says what is wrong in the learner's words. In
Jupyter, a failed check shows its message alone, without a traceback.

One module per notebook:

- :mod:`utils.checks.tensors` -- ``notebooks/01_tensors_gradienttape.ipynb``
- :mod:`utils.checks.layers` -- ``notebooks/02_custom_dense_layer.ipynb``
- :mod:`utils.checks.cnn` -- ``notebooks/03_cnn_mnist.ipynb``
- :mod:`utils.checks.music` -- ``notebooks/04_music_lstm.ipynb`` (called as ``checks.music.sampling(...)``)
- :mod:`utils.checks.vae` -- ``notebooks/05_vae.ipynb`` (``checks.vae.kl_term(...)``)
- :mod:`utils.checks.gan` -- ``notebooks/06_gan.ipynb`` (``checks.gan.train_step(...)``)
- :mod:`utils.checks.attention` -- ``notebooks/07_attention_transformer.ipynb`` (``checks.attention.causal_mask(...)``)
"""

from utils.checks import attention, gan, music, vae
from utils.checks._core import CheckError, TodoNotDone
from utils.checks.cnn import baseline_model, cnn_model, compile_wiring, normalized_images, train_step
from utils.checks.layers import conv_output_length, dense_layer, identity_model, subclass_model
from utils.checks.tensors import chain_rule, computation_graph, derivative, image_batch, sgd_step

__all__ = [
    "CheckError",
    "attention",
    "baseline_model",
    "cnn_model",
    "compile_wiring",
    "normalized_images",
    "train_step",
    "TodoNotDone",
    "chain_rule",
    "computation_graph",
    "conv_output_length",
    "dense_layer",
    "derivative",
    "identity_model",
    "gan",
    "music",
    "vae",
    "image_batch",
    "sgd_step",
    "subclass_model",
]
