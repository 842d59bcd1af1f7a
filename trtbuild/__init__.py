"""trtbuild: reproducible, content-addressed TensorRT-LLM engine builds for NVIDIA Hopper GPUs."""

__version__ = "0.1.0"
