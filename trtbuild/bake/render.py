"""Render ``dockerfiles/*.Dockerfile.j2`` (jinja2, StrictUndefined) and lay out a build context.

Context layout (what ``--context-only`` hands to BuildKit, Kaniko, ...)::

    Dockerfile
    engine/                 config.json + rank<N>.engine (hard links when possible, else copies)
    tokenizer/              tokenizer files (the artifact's tokenizer/ or --tokenizer)
    trtbuild-artifact.json  artifact hash, name and metadata (no provenance: it may name hosts)
    model_repo/             triton, filled on this host from --triton-templates, or
    model_repo_fill/        triton, values.json + fill_model_repo.py, filled inside the image at build time
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtbuild.bake.engine import TOKENIZER_SUBDIR
from trtbuild.errors import InputError

TEMPLATES = {"trtllm-serve": "trtllm-serve.Dockerfile.j2", "triton": "triton.Dockerfile.j2"}
# PyTorch-backend artifacts (a serve config + its HF checkpoint): trtbuild.bake.pytorch
PYTORCH_TEMPLATES = {
    "trtllm-serve-pytorch": "trtllm-serve-pytorch.Dockerfile.j2",
    "triton-llmapi": "triton-llmapi.Dockerfile.j2",
}
IMAGE_ROOT = "/opt/trtbuild"
ENGINE_PATH = f"{IMAGE_ROOT}/engine"
TOKENIZER_PATH = f"{IMAGE_ROOT}/tokenizer"
MODEL_REPO_PATH = f"{IMAGE_ROOT}/model_repo"
ARTIFACT_JSON = "trtbuild-artifact.json"


def dockerfiles_dir() -> Path:
    """``$TRTBUILD_DOCKERFILES``, else ``dockerfiles/`` of the source tree trtbuild runs from, else of the
    current directory (a CI job in a checkout after a non-editable ``pip install .``)."""
    from trtbuild.settings import dockerfiles_candidates

    candidates = dockerfiles_candidates()
    for path in candidates:
        if (path / TEMPLATES["trtllm-serve"]).is_file():
            return path
    raise InputError(
        f"Dockerfile templates not found (looked in {', '.join(map(str, candidates))})",
        hint="set TRTBUILD_DOCKERFILES to the dockerfiles/ directory of trtbuild",
    )


@dataclass(frozen=True)
class HealthCheck:
    interval: str = "30s"
    timeout: str = "5s"
    start_period: str = "600s"  # large engines take minutes to deserialise and allocate the KV cache
    retries: int = 3


def _environment(directory: Path) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


def _template_line(exc: BaseException) -> str:
    """``file:line`` of the template frames an UndefinedError came through, outermost first (jinja
    rewrites tracebacks so template frames carry template file names and lines)."""
    tb = exc.__traceback__
    frames: list[str] = []
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.endswith(".j2"):
            frame = f"{Path(name).name}:{tb.tb_lineno}"
            if not frames or frames[-1] != frame:
                frames.append(frame)
        tb = tb.tb_next
    return " -> ".join(frames)


def render_dockerfile(template: str, variables: dict[str, Any], directory: Path | None = None) -> str:
    """The Dockerfile text; a variable the template needs but was not given is a plain InputError."""
    import jinja2

    files = {**TEMPLATES, **PYTORCH_TEMPLATES}
    if template not in files:
        raise InputError(f"unknown template {template!r}", hint=f"use one of {', '.join(TEMPLATES)}")
    directory = directory or dockerfiles_dir()
    try:
        return _environment(directory).get_template(files[template]).render(**variables)
    except jinja2.UndefinedError as exc:
        where = _template_line(exc) or files[template]
        raise InputError(
            f"{where}: template variable missing: {exc.message}",
            hint="the template and trtbuild bake disagree; pass the value or fix the template",
        ) from None
    except jinja2.TemplateError as exc:
        raise InputError(f"{files[template]}: cannot render: {exc}", hint="fix the template syntax") from None


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _staged_source(path: Path, root: Path) -> Path:
    """The regular file to stage for ``path``: itself, or the target of a symbolic link that stays inside
    ``root``. A link leaving ``root``, a link to a directory and a special file are refused: the image must
    hold exactly the directory's own bytes."""
    fix = "replace it by a copy of its target (cp -L), or pass a directory of regular files"
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root.resolve()):
            raise InputError(f"{path} is a symbolic link to {target}, outside {root}", hint=fix)
        if not target.is_file():
            raise InputError(f"{path} is a symbolic link to {target}, not to a regular file", hint=fix)
        return target
    if not path.is_file():
        raise InputError(f"{path} is not a regular file", hint="remove it from the directory")
    return path


def stage_tree(src: Path, dst: Path, *, skip: tuple[str, ...] = ()) -> int:
    """Mirror ``src`` into ``dst`` with hard links (copies across filesystems); returns bytes staged.
    Symbolic links must stay inside ``src`` and point to files (their target's bytes are staged)."""
    total = 0
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in skip]
        for name in dirs:
            if (Path(root) / name).is_symlink():
                raise InputError(
                    f"{Path(root) / name} is a symbolic link to a directory",
                    hint="replace it by a copy of that directory, or pass a directory of regular files",
                )
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            if rel == Path(".") and name in skip:
                continue
            source = _staged_source(Path(root) / name, Path(src))
            _link_or_copy(source, dst / rel / name)
            total += source.stat().st_size
    return total


def prepare_context_dir(context: Path, engine_dir: Path | None = None) -> Path:
    """An empty directory to write the context into (an existing non-empty one is refused, not overwritten).

    The one thing it may already hold is ``engine/`` when that is where the artifact was pulled to.
    """
    context = Path(context)
    in_place = engine_dir is not None and Path(engine_dir).resolve() == (context / "engine").resolve()
    entries = [p.name for p in context.iterdir()] if context.is_dir() else []
    if context.exists() and (not context.is_dir() or set(entries) - ({"engine"} if in_place else set())):
        raise InputError(
            f"{context}: exists and is not an empty directory",
            hint="pass a new or empty directory to --context-only",
        )
    context.mkdir(parents=True, exist_ok=True)
    return context


def stage_engine(engine_dir: Path, context: Path, tokenizer_dir: Path | None) -> None:
    """Put the engine into ``context/engine`` and the tokenizer into ``context/tokenizer``.

    When the engine was pulled straight into ``context/engine``, its ``tokenizer/`` is moved out in place.
    """
    engine_dst, tok_dst = context / "engine", context / "tokenizer"
    in_place = engine_dir.resolve() == engine_dst.resolve()
    source_tok = tokenizer_dir or (engine_dir / TOKENIZER_SUBDIR)
    if not source_tok.is_dir():
        raise InputError(
            f"{engine_dir}: the artifact has no {TOKENIZER_SUBDIR}/ directory",
            hint="pass --tokenizer DIR (the model's tokenizer files)",
        )
    if in_place:
        if tokenizer_dir is None:
            (engine_dst / TOKENIZER_SUBDIR).rename(tok_dst)
        else:
            stage_tree(tokenizer_dir, tok_dst)
            shutil.rmtree(engine_dst / TOKENIZER_SUBDIR, ignore_errors=True)
        return
    stage_tree(engine_dir, engine_dst, skip=(TOKENIZER_SUBDIR,))
    stage_tree(source_tok, tok_dst)


def write_artifact_json(context: Path, artifact: dict[str, Any]) -> Path:
    path = context / ARTIFACT_JSON
    path.write_text(json.dumps(artifact, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    return path
