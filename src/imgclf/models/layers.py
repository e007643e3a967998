"""Custom Keras layers that saved models may contain.

`keras.models.load_model(..., safe_mode=True)` refuses `Lambda` layers (they carry code), so
preprocessing that Keras has no layer for is a small registered layer here; loaders pass
`CUSTOM_OBJECTS` so the class is found without importing the modules that build models.
"""

import keras


@keras.saving.register_keras_serializable(package="imgclf")
class ReverseChannels(keras.layers.Layer):
    """RGB → BGR (or back): the channel flip of Keras' "caffe" preprocessing, as a safe layer."""

    def call(self, inputs: keras.KerasTensor) -> keras.KerasTensor:
        return keras.ops.flip(inputs, axis=-1)


CUSTOM_OBJECTS = {"ReverseChannels": ReverseChannels}
