"""`FusedLSTM`: `keras.layers.LSTM` with torch's fused kernel on CPU, shared by every recurrent
family (lstm, bilstm, cnn_lstm).

Stock Keras routes an LSTM to a fused kernel only on CUDA; on CPU under torch it steps through
time in Python (about 4.5x slower, DESIGN.md). `FusedLSTM` keeps `keras.layers.LSTM`'s weights
and serialisation, and only swaps the inner loop for `torch._VF.lstm` when it is safe to do so.
A model saved under torch therefore loads and predicts identically under TensorFlow and JAX,
where `FusedLSTM` simply is a `keras.layers.LSTM`.
"""

from __future__ import annotations

import keras
from keras import activations

from deepcast import _backend


@keras.saving.register_keras_serializable(package="deepcast")
class FusedLSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` that takes torch's fused LSTM kernel on CPU too.

    Same arguments, weights and config as `keras.layers.LSTM`:

    >>> layer = FusedLSTM(64, return_sequences=True, dropout=0.1)
    >>> layer(keras.ops.zeros((8, 48, 3))).shape
    (8, 48, 64)
    """

    # Rows per forecasting call (_backend.predict_rows): past ~128 rows a call's time steps
    # spill out of the CPU caches (benchmarks/predict_rows.py).
    predict_rows = 128

    def call(self, sequences, initial_state=None, mask=None, training=False):
        plain = initial_state is None and not self.stateful and not self.return_state
        if not (plain and self._fusable(mask)):
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )
        # RNN.call's generic bookkeeping (state lists, casts, dropout-mask caching) is ~5% of a
        # CPU training step; from a zero state without a mask the fused kernel needs none of it.
        zeros = keras.ops.zeros((sequences.shape[0], self.units), dtype=self.compute_dtype)
        last, outputs, _ = self.inner_loop(sequences, [zeros, zeros], None, training=training)
        self.cell.reset_dropout_mask()  # a fresh dropout mask for every batch, as in RNN.call
        return outputs if self.return_sequences else last

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._fusable(mask):
            return super().inner_loop(sequences, initial_state, mask=mask, training=training)
        if training and self.dropout:
            # Keras' input dropout: one mask per sequence, shared by every time step.
            step_mask = self.cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * keras.ops.expand_dims(step_mask, axis=1)
        return _fused_torch_lstm(
            sequences,
            initial_state,
            self.cell.kernel,
            self.cell.recurrent_kernel,
            self.cell.bias,
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
        )

    def _fusable(self, mask) -> bool:
        """The fused kernel computes exactly this layer only in the standard configuration."""
        return (
            _backend.name() == "torch"
            and mask is None
            and not self.recurrent_dropout
            and not self.unroll
            and self.use_bias
            and self.cell.activation is activations.tanh
            and self.cell.recurrent_activation is activations.sigmoid
        )


def _fused_torch_lstm(
    sequences, initial_state, kernel, recurrent_kernel, bias, return_sequences, go_backwards
):
    import torch

    x = keras.ops.convert_to_tensor(sequences)  # [B, T, F]
    if go_backwards:
        x = torch.flip(x, dims=[1])
    h0, c0 = (keras.ops.convert_to_tensor(s).unsqueeze(0) for s in initial_state)  # [1, B, U]
    # Keras and torch share the gate order (i, f, c, o); torch stores the weights transposed
    # and has a second bias, which we leave at zero.
    w_ih = keras.ops.convert_to_tensor(kernel).T  # [4U, F]
    w_hh = keras.ops.convert_to_tensor(recurrent_kernel).T  # [4U, U]
    b_ih = keras.ops.convert_to_tensor(bias)  # [4U]
    b_hh = torch.zeros_like(b_ih)
    outputs, h, c = torch._VF.lstm(
        x, (h0, c0), (w_ih, w_hh, b_ih, b_hh), True, 1, 0.0, torch.is_grad_enabled(), False, True
    )  # outputs [B, T, U]; h, c [1, B, U]
    last = outputs[:, -1]
    if not return_sequences:
        outputs = last.unsqueeze(1)
    return last, outputs, [h.squeeze(0), c.squeeze(0)]
