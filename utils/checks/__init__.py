"""The lab checks: plain functions called in the cell right after each TODO, always as
``checks.<lesson>.<name>(...)``.

Success prints one short ``[ok] ...`` line; failure raises :class:`CheckError` (an
``AssertionError``) whose message says what is wrong in the learner's words. In
Jupyter, a failed check shows its message alone, without a traceback.

One module per notebook; what they share is in :mod:`utils.checks._core`:

- :mod:`utils.checks.tensors` -- ``notebooks/01_tensors_gradienttape.ipynb`` (``checks.tensors.derivative(...)``)
- :mod:`utils.checks.layers` -- ``notebooks/02_custom_dense_layer.ipynb`` (``checks.layers.dense_layer(...)``)
- :mod:`utils.checks.cnn` -- ``notebooks/03_cnn_mnist.ipynb`` (``checks.cnn.train_step(...)``)
- :mod:`utils.checks.music` -- ``notebooks/04_music_lstm.ipynb`` (``checks.music.sampling(...)``)
- :mod:`utils.checks.vae` -- ``notebooks/05_vae.ipynb`` (``checks.vae.kl_term(...)``)
- :mod:`utils.checks.gan` -- ``notebooks/06_gan.ipynb`` (``checks.gan.train_step(...)``)
- :mod:`utils.checks.attention` -- ``notebooks/07_attention.ipynb`` (``checks.attention.causal_mask(...)``)
- :mod:`utils.checks.transformers` -- ``notebooks/08_transformers.ipynb`` (``checks.transformers.encoder_block(...)``)
"""

from utils.checks import attention, cnn, gan, layers, music, tensors, transformers, vae
from utils.checks._core import CheckError, TodoNotDone

__all__ = ["CheckError", "TodoNotDone", "attention", "cnn", "gan", "layers", "music", "tensors", "transformers", "vae"]
