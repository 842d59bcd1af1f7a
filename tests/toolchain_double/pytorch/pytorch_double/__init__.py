"""TOOLCHAIN DOUBLE of a PyTorch-backend TensorRT-LLM release image (test stand-in, not NVIDIA software)."""
