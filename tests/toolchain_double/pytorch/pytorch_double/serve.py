"""Double of ``trtllm-serve`` on the PyTorch backend (TOOLCHAIN DOUBLE, no model is run).

Accepts the flags trtbuild emits, as serve.py@00209af1 declares them: MODEL, ``--host``, ``--port``,
``--config`` (alias ``--extra_llm_api_options``); any other flag exits 2 as click would. Then it checks what
the real server would need before loading: MODEL is a Hugging Face checkpoint directory (config.json,
readable safetensors headers, a tokenizer, ``hf_quant_config.json`` parseable when present), and the config
file is a mapping whose every key is in the recorded TorchLlmArgs (trtbuild's ``llmapi_spec.py`` and its
JSON, copied under ``vendor/`` when the image is built). It answers GET /health with 200 until stopped.
``TOOLCHAIN_DOUBLE_SERVE_CHECK_ONLY=1``: exit 0 after the checks instead of serving.
The config must be JSON-compatible YAML (what trtbuild writes); the double has no YAML parser.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vendor"))  # trtbuild/recipe/llmapi_spec.py + its JSON, copied at build time


def die(msg: str, code: int = 1) -> None:
    print(f"trtllm-serve (TOOLCHAIN DOUBLE): {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def check_checkpoint(model: Path) -> None:
    if not (model / "config.json").is_file():
        die(f"{model}: no config.json (not a Hugging Face checkpoint)")
    shards = sorted(model.glob("*.safetensors"))
    if not shards:
        die(f"{model}: no *.safetensors weights")
    for shard in shards:
        with shard.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            json.loads(fh.read(n))
    if not any((model / t).is_file() for t in ("tokenizer.json", "tokenizer.model")):
        die(f"{model}: no tokenizer")
    if (model / "hf_quant_config.json").is_file():
        json.loads((model / "hf_quant_config.json").read_text())


def check_config(path: Path) -> dict:
    from trtbuild.recipe.llmapi_spec import check_config as spec_check
    from trtbuild.recipe.llmapi_spec import families

    text = "".join(line for line in path.read_text().splitlines(True) if not line.startswith("#"))
    config = json.loads(text)
    if not isinstance(config, dict):
        die("Configuration file root must be a mapping.")
    problems = spec_check(config, os.environ.get("TOOLCHAIN_DOUBLE_LLM_API_SPEC", families()[-1]))
    if problems:
        die("; ".join(f"{p.path}: {p.message}" for p in problems))
    return config


def main() -> int:
    p = argparse.ArgumentParser(prog="trtllm-serve")
    p.add_argument("model")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--config", "--extra_llm_api_options", dest="config")
    a = p.parse_args()
    check_checkpoint(Path(a.model))
    config = check_config(Path(a.config)) if a.config else {}
    print(f"trtllm-serve (TOOLCHAIN DOUBLE) {a.model} config keys {sorted(config)}", flush=True)
    if os.environ.get("TOOLCHAIN_DOUBLE_SERVE_CHECK_ONLY") == "1":
        return 0

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    print(f"serving on {a.host}:{a.port}", flush=True)
    http.server.HTTPServer((a.host, a.port), Health).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
