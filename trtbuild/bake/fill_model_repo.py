#!/usr/bin/env python3
"""Fill a Triton TensorRT-LLM model repository from the backend's own templates (standard library only).

Runs on the build host (``trtbuild bake --triton-templates``) or inside the serving image at build time,
where the Triton TensorRT-LLM image ships the templates of its exact backend version in
``/app/all_models/inflight_batcher_llm`` (tensorrtllm_backend dockerfile/Dockerfile.triton.trt_llm_backend
@0046c234e13012b7fa2ec0e8fbbf0705c6c6e434: ``COPY .../triton_backend/all_models all_models`` into /app).
Using the templates of the base keeps the tensor names in config.pbtxt in step with its model.py files.

Placeholders are ``${name}`` and are substituted like the backend's tools/fill_template.py
(string.Template.safe_substitute). A placeholder left in a ``string_value: "${name}"`` parameter is how
upstream marks an optional parameter as unset (the backend checks for the literal ``${...}`` or fails to
parse it and falls back to its default); any other leftover would break the config, so it is an error.

usage: fill_model_repo.py TEMPLATES_DIR VALUES_JSON OUT_DIR
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from string import Template

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
UNSET_PARAMETER = re.compile(r'string_value:\s*"\$\{(\w+)\}"')


class FillError(Exception):
    pass


def leftover_placeholders(text: str) -> list[str]:
    """Placeholders that are not optional string parameters (and so would make Triton reject the config)."""
    allowed = {m.start(1) for m in UNSET_PARAMETER.finditer(text)}
    return sorted({m.group(1) for m in PLACEHOLDER.finditer(text) if m.start(1) not in allowed})


def fill(templates: Path, values: dict, out: Path) -> list[Path]:
    """Copy each model directory of ``values["models"]`` from ``templates`` to ``out`` and fill its config."""
    substitutions = {str(k): str(v) for k, v in values["substitutions"].items()}
    written: list[Path] = []
    problems: list[str] = []
    for model in values["models"]:
        src = templates / model
        if not (src / "config.pbtxt").is_file():
            raise FillError(
                f"{src}/config.pbtxt not found: {templates} is not an inflight_batcher_llm template "
                "directory (all_models/inflight_batcher_llm of the TensorRT-LLM backend); if the base image "
                "does not ship them, pass trtbuild bake --triton-templates DIR with a copy of that "
                "backend release's templates"
            )
        dst = out / model
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
        (dst / "1").mkdir(exist_ok=True)
        config = dst / "config.pbtxt"
        text = Template(config.read_text("utf-8")).safe_substitute(substitutions)
        config.write_text(text, "utf-8")
        written.append(config)
        for name in leftover_placeholders(text):
            problems.append(f"{model}/config.pbtxt needs ${{{name}}}")
    if problems:
        raise FillError(
            "the backend templates use placeholders trtbuild did not fill: "
            + "; ".join(problems)
            + " (pass --triton-param NAME=VALUE for each)"
        )
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    templates, values_path, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    try:
        values = json.loads(values_path.read_text("utf-8"))
        for config in fill(templates, values, out):
            print(f"filled {config}")
    except (FillError, OSError, ValueError, KeyError) as exc:
        print(f"fill_model_repo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
