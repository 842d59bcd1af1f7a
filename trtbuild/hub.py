"""The one way trtbuild talks to the Hugging Face Hub (``huggingface_hub``, imported when used): a commit for
a branch (lock), a snapshot of a pinned commit (fetch), the config files of a pinned commit (validate).

Every failure becomes a trtbuild error: a repository, revision or file the Hub does not have is invalid
input (exit 2); anything else (no network, a proxy, the Hub down, huggingface_hub 1.x/2.x raising its HTTP
client's own errors: requests, httpx or httpx2) is ``HubUnavailable`` (exit 1), never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from trtbuild.errors import InputError, TrtbuildError

T = TypeVar("T")
# Exceptions of these top-level modules are network or Hub failures (HTTP clients huggingface_hub uses).
_NETWORK_MODULES = {"huggingface_hub", "httpx", "httpx2", "httpcore", "requests", "urllib3", "hf_xet"}
CONFIG_FILES = ("config.json",)  # what the model checks of validate read


class HubUnavailable(TrtbuildError):
    """The Hub could not be asked (network, proxy, outage). Exit code 1: not the input's fault."""


def call(what: str, fn: Callable[[], T], *, offline_hint: str) -> T:
    """Run one Hub request; map its errors (``what``: "hf://org/repo@rev", named in every message)."""
    from huggingface_hub import errors as hf

    try:
        return fn()
    except (hf.RevisionNotFoundError, hf.RepositoryNotFoundError, hf.GatedRepoError) as exc:
        kind = {
            hf.RevisionNotFoundError: "revision not found",
            hf.GatedRepoError: "gated repository: access not granted to this token",
        }.get(type(exc), "repository not found (or gated and no HF_TOKEN set)")
        raise InputError(
            f"{what}: {kind}",
            hint="check model.source and model.revision; for gated repos set HF_TOKEN in the environment",
        ) from None
    except hf.LocalEntryNotFoundError as exc:  # before EntryNotFoundError: it is one (and an OSError)
        raise HubUnavailable(
            f"cannot reach the Hugging Face Hub for {what}: {_first_line(exc)}", hint=offline_hint
        ) from None
    except hf.EntryNotFoundError:
        raise InputError(
            f"{what}: file not found in that revision", hint="check model.source and model.revision"
        ) from None
    except Exception as exc:
        if not isinstance(exc, OSError) and type(exc).__module__.split(".")[0] not in _NETWORK_MODULES:
            raise
        raise HubUnavailable(
            f"cannot reach the Hugging Face Hub for {what}: {type(exc).__name__}: {_first_line(exc)}",
            hint=offline_hint,
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def commit_of(repo_id: str, revision: str | None) -> str | None:
    """The commit sha a branch or tag of ``repo_id`` points to now (None if the Hub reports none)."""
    from huggingface_hub import HfApi

    info = call(
        f"hf://{repo_id}@{revision or 'main'}",
        lambda: HfApi().model_info(repo_id, revision=revision or "main"),
        offline_hint="run trtbuild lock on a machine with Hub access (HF_ENDPOINT for a mirror), or pin "
        "model.revision to a commit sha",
    )
    return info.sha


def download_snapshot(repo_id: str, revision: str, dest: Path, allow_patterns: list[str]) -> Path:
    """The files of ``repo_id`` at commit ``revision`` that match ``allow_patterns``, into ``dest``."""
    from huggingface_hub import snapshot_download

    return Path(
        call(
            f"hf://{repo_id}@{revision}",
            lambda: snapshot_download(
                repo_id, revision=revision, local_dir=dest, allow_patterns=allow_patterns
            ),
            offline_hint="check network access to the Hub (or pre-fetch and use a file:// source)",
        )
    )


def download_config(repo_id: str, revision: str) -> Path:
    """The config files of ``repo_id`` at commit ``revision`` into the Hugging Face cache (no weights);
    the path of config.json."""
    from huggingface_hub import hf_hub_download

    paths = [
        call(
            f"hf://{repo_id}@{revision}/{name}",
            lambda name=name: hf_hub_download(repo_id, name, revision=revision),  # type: ignore[misc]
            offline_hint="run validate where the Hub (or HF_ENDPOINT's mirror) is reachable, or without "
            "--fetch-config",
        )
        for name in CONFIG_FILES
    ]
    return Path(paths[0])
