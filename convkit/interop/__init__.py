"""Weights from PyTorch and Keras into convkit networks (transfer learning from public model zoos).

    model = convkit.models.resnet18(input_shape=(224, 224, 3))
    convkit.interop.load_torch_state_dict(model, "resnet18-f37072fd.pth")      # torchvision's checkpoint
    convkit.interop.load_torch_state_dict(model, "model.safetensors")
    convkit.interop.load_keras_weights(keras_like_model, "lenet.weights.h5")

Loading never runs code from a file: PyTorch files go through torch.load(weights_only=True), safetensors
files are parsed with NumPy (convkit.interop._safetensors), Keras files read as HDF5 arrays with h5py.
"""
from ._keras import load_keras_weights
from ._safetensors import read_safetensors
from ._torch import LoadResult, load_torch_state_dict

__all__ = ["LoadResult", "load_keras_weights", "load_torch_state_dict", "read_safetensors"]
