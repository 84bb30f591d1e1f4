"""Never print credentials: values of credential-like environment variables are masked."""

from __future__ import annotations

import re

_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE_KEY)", re.I)
MASK = "***"


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_env(env: dict[str, str]) -> dict[str, str]:
    return {k: (MASK if is_secret(k) and v else v) for k, v in env.items()}


def redact_text(text: str, env: dict[str, str]) -> str:
    """Masks any secret value that appears verbatim in text (e.g. a token echoed in a command line)."""
    for k, v in env.items():
        if is_secret(k) and v and len(v) >= 4:
            text = text.replace(v, MASK)
    return text
