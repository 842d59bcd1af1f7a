"""Which environment values are secret, so that none reaches a log, an error, the catalog, the store or an
image. Every ``build --env`` value is secret unless marked plain (``--env-plain``); the standard credential
variables are secret always, however they are passed, and so is the password inside any URL value.

Masking replaces each secret value (4 characters or longer; shorter ones cannot be told from ordinary text)
by ``***`` wherever it appears in a step's command line and output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping

# Always secret, by name.
CREDENTIAL_NAMES = frozenset(
    {
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HUGGINGFACE_HUB_TOKEN",
        "HF_HUB_TOKEN",
        "NGC_API_KEY",
        "NGC_CLI_API_KEY",
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "DATABASE_URL",
        "TRTBUILD_DB_URL",
        "TRTBUILD_STORE_URL",
        "DOCKER_AUTH_CONFIG",
    }
)
# AWS_* variables that configure where and how, not who: not secret.
_AWS_PUBLIC = frozenset(
    {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_DEFAULT_OUTPUT",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CA_BUNDLE",
        "AWS_RETRY_MODE",
        "AWS_MAX_ATTEMPTS",
    }
)
_CREDENTIAL_WORDS = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL")
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:([^/@\s]+)@")


def is_credential(name: str, value: str = "") -> bool:
    """A standard credential variable (HF_TOKEN, AWS_* keys, *_TOKEN, *_PASSWORD ...) or a URL with a
    password in it."""
    upper = name.upper()
    if upper in CREDENTIAL_NAMES or _CREDENTIAL_WORDS.search(upper):
        return True
    if upper.startswith("AWS_") and upper not in _AWS_PUBLIC and not upper.startswith("AWS_ENDPOINT_URL"):
        return True
    return bool(_URL_PASSWORD.match(value))


def secret_names(env: Mapping[str, str], plain: Collection[str] = ()) -> tuple[str, ...]:
    """The names in ``env`` whose values are masked: all but those marked plain, credentials always."""
    return tuple(sorted(k for k, v in env.items() if k not in plain or is_credential(k, v)))


def secret_values(env: Mapping[str, str], names: Collection[str]) -> tuple[str, ...]:
    """The values to mask for ``names`` of ``env``: each value, and the password inside a URL value."""
    out: set[str] = set()
    for name in names:
        value = env.get(name) or ""
        out.add(value)
        found = _URL_PASSWORD.match(value)
        if found:
            out.add(found.group(1))
    return tuple(sorted((v for v in out if v), key=len, reverse=True))


def environ_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of this process's credential variables: a step may print them even when not passed to it
    (the local runner inherits the environment; fetch uses HF_TOKEN)."""
    environ = os.environ if environ is None else environ
    return secret_values(environ, [k for k, v in environ.items() if is_credential(k, v)])
