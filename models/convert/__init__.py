"""Converters that turn weights shipped in other frameworks' formats into ONNX models.

They run once, when a model pack is installed, so that gates only ever load ONNX with
onnxruntime and need none of the original frameworks at run time.
"""

from models.convert.dlib_resnet import (
    ConversionInfo,
    DlibFormatError,
    convert_dlib_resnet,
)

__all__ = ["ConversionInfo", "DlibFormatError", "convert_dlib_resnet"]
