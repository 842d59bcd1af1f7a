"""The build host: fingerprint (GPU, SM, driver, CUDA, toolchain versions) and doctor."""
