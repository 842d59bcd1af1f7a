"""Pre-bake engines into serving images: trtllm-serve or Triton with the TensorRT-LLM backend.

Public API: :func:`bake` (build an image), :func:`prepare` (write the build context only), with
:class:`BakeRequest`, :class:`ServeOptions`, :class:`TritonOptions`. Docker and jinja2 load lazily.
"""

from trtbuild.bake.pipeline import BakeRequest, BakeResult, bake, prepare
from trtbuild.bake.serve import ServeOptions
from trtbuild.bake.triton_repo import TritonOptions

__all__ = ["BakeRequest", "BakeResult", "ServeOptions", "TritonOptions", "bake", "prepare"]
