# trtbuild as a tool image: the init container of docs/deploy.md (`trtbuild pull --resolve ...`), CI jobs
# that pull, push, resolve or bake. Build it from the repository root:
#
#   docker build -f dockerfiles/trtbuild.Dockerfile -t registry.example.com/tools/trtbuild:0.1.0 .
#
# It installs this checkout (not editable) with the PostgreSQL driver; boto3 (S3) is a core dependency.
# No GPU library is needed to pull or resolve an engine (pass --trtllm and the GPU facts, or mount
# nvidia-smi through the NVIDIA runtime). Runs as the non-root UID 10001, like the serving images.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

WORKDIR /src
COPY pyproject.toml README.md ./
COPY registry ./registry
COPY trtbuild ./trtbuild
COPY recipes/toolchains.toml ./recipes/toolchains.toml
COPY dockerfiles/_common.j2 dockerfiles/trtllm-serve.Dockerfile.j2 dockerfiles/triton.Dockerfile.j2 ./dockerfiles/
# A venv, so the same lines work on python:*-slim and on a Debian/Ubuntu base's system Python (PEP 668),
# which needs python3-venv for ensurepip.
RUN python3 -c "import ensurepip" 2>/dev/null \
 || (apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/*)
RUN python3 -m venv /opt/trtbuild \
 && /opt/trtbuild/bin/pip install --no-cache-dir --disable-pip-version-check ".[postgres]" \
 && cd / && rm -rf /src \
 && /opt/trtbuild/bin/trtbuild --version \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin trtbuild
ENV PATH=/opt/trtbuild/bin:$PATH

USER 10001
WORKDIR /home/trtbuild
ENTRYPOINT ["trtbuild"]
CMD ["--help"]
