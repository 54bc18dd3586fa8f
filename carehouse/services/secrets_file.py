"""Generated passwords of the embedded setup, kept in a 0600 file under CAREHOUSE_HOME."""

from __future__ import annotations

import json
import os
import secrets

from carehouse.core.settings import ROLES, Settings


def ensure_secrets(settings: Settings) -> dict[str, str]:
    """Generate any missing password once; existing ones are never rotated silently."""
    path = settings.secrets_file
    current: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in (*ROLES, "patient_key_salt") if name not in current]
    if missing:
        current.update({name: secrets.token_urlsafe(24) for name in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # Created 0600 before any secret is written into it.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(current, handle)
        tmp.replace(path)
    path.chmod(0o600)
    return current
