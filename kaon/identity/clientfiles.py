"""Client credentials of an all-in-one node: passwords, clouds.yaml, openrc.

``STATE/passwords.json`` holds the bootstrap accounts' passwords (made at
random on first start unless given); ``clouds.yaml``, ``admin-openrc`` and
``demo-openrc`` let ``openstack --os-cloud kaon-admin`` or
``. admin-openrc`` work at once. Every file is mode 0600: they hold
passwords.
"""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path

import orjson
import yaml

PASSWORDS_FILE = "passwords.json"
USERS = ("admin", "demo", "alt_demo", "demo_reader")

# cloud name -> (user, project); openrc file name -> cloud
CLOUDS = {
    "kaon-admin": ("admin", "admin"),
    "kaon-demo": ("demo", "demo"),
    "kaon-alt-demo": ("alt_demo", "alt_demo"),
}
OPENRC = {"admin-openrc": "kaon-admin", "demo-openrc": "kaon-demo"}


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600) by renaming a temporary file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ensure_passwords(
    state_dir: Path, admin_password: str | None = None, demo_password: str | None = None
) -> dict[str, str]:
    """The bootstrap passwords: stored ones, overridden by those given, the
    rest generated; written back to ``STATE/passwords.json``."""
    path = Path(state_dir) / PASSWORDS_FILE
    stored: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
    given = {"admin": admin_password, "demo": demo_password}
    passwords = {}
    for user in USERS:
        passwords[user] = given.get(user) or stored.get(user) or secrets.token_urlsafe(18)
    if passwords != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, orjson.dumps(passwords, option=orjson.OPT_INDENT_2).decode() + "\n")
    return passwords


def auth_url_of(identity_url: str) -> str:
    url = identity_url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def _cloud(auth_url: str, user: str, project: str, password: str, region: str) -> dict[str, object]:
    return {
        "auth": {
            "auth_url": auth_url,
            "username": user,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": region,
        "interface": "public",
        "identity_api_version": 3,
    }


def _openrc(auth_url: str, user: str, project: str, password: str, region: str) -> str:
    env = {
        "OS_AUTH_URL": auth_url,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_AUTH_TYPE": "password",
        "OS_USERNAME": user,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": project,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": region,
        "OS_INTERFACE": "public",
    }
    lines = ["# kaon credentials; use with: . ./<this file>"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def write_client_files(
    state_dir: Path, identity_url: str, passwords: dict[str, str], region: str = "RegionOne"
) -> dict[str, Path]:
    """Write clouds.yaml, admin-openrc and demo-openrc; returns their paths."""
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    auth_url = auth_url_of(identity_url)
    clouds = {
        name: _cloud(auth_url, user, project, passwords[user], region)
        for name, (user, project) in CLOUDS.items()
    }
    written = {"clouds.yaml": state / "clouds.yaml"}
    _write_private(written["clouds.yaml"], yaml.safe_dump({"clouds": clouds}, sort_keys=False))
    for filename, cloud in OPENRC.items():
        user, project = CLOUDS[cloud]
        written[filename] = state / filename
        _write_private(written[filename], _openrc(auth_url, user, project, passwords[user], region))
    return written
