"""A small Neutron v2.0 client for the lab (httpx), and where its credentials come from.

``resolve_client`` picks, in order:

1. a cloud named by ``--os-cloud`` or ``OS_CLOUD``, from ``clouds.yaml``
   (``--os-client-config-file``, ``OS_CLIENT_CONFIG_FILE``, the state
   directory, ``./``, ``~/.config/openstack``, ``/etc/openstack``);
2. ``OS_AUTH_URL``/``OS_USERNAME``/``OS_PASSWORD``... (an openrc file);
3. a server with ``auth_strategy = noauth``: no token at all (the server
   treats the caller as admin);
4. otherwise the ``kaon-admin`` cloud of the state directory's clouds.yaml
   (what ``kaon up`` writes).

The server's URL and auth strategy come from ``<state_path>/server.json``
(written by every ``kaon server``) or else from its config files. With a
token the network endpoint comes from the token's catalog.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

DEFAULT_CLOUD = "kaon-admin"


class ApiError(RuntimeError):
    """The API answered with an error (``status``) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NeutronClient:
    """``get``/``post``/``put``/``delete`` on ``/v2.0/...``; errors raise :class:`ApiError`."""

    def __init__(self, network_url: str, token: str | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> None:
        self.network_url = network_url.rstrip("/")
        hdrs = dict(headers or {})
        if token:
            hdrs["X-Auth-Token"] = token
        self._http = httpx.Client(base_url=self.network_url, headers=hdrs, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        url = "/v2.0/" + path.lstrip("/")
        try:
            resp = self._http.request(method, url, json=body, params=params)
        except httpx.HTTPError as exc:
            raise ApiError(f"{method} {self.network_url}{url}: {exc}") from exc
        if resp.status_code >= 400:
            raise ApiError(f"{method} {url}: {resp.status_code} {_message(resp)}", resp.status_code)
        return resp.json() if resp.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str, missing_ok: bool = True) -> None:
        try:
            self.request("DELETE", path)
        except ApiError as exc:
            if not (missing_ok and exc.status == 404):
                raise

    def identity_get(self, path: str, **params: Any) -> Any:
        """GET ``<network_url>/identity/v3/<path>`` with this client's token (kaon's identity service
        is mounted there unless its ``identity_url`` says otherwise); None when there is none."""
        try:
            resp = self._http.get("/identity/v3/" + path.lstrip("/"), params=params or None)
        except httpx.HTTPError:
            return None
        return resp.json() if resp.status_code == 200 else None

    def find(self, collection: str, name_or_id: str, **filters: Any) -> dict[str, Any]:
        """One resource of ``collection`` (e.g. "networks") by id, else by unique name."""
        key = collection.replace("-", "_")
        try:
            return self.get(f"{collection}/{name_or_id}")[key[:-1]]
        except ApiError as exc:
            if exc.status not in (400, 404):
                raise
        found = self.get(collection, name=name_or_id, **filters)[key]
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise ApiError(f"{what} {collection} named or with id {name_or_id!r}", 404 if not found else 409)
        return found[0]


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
    return json.dumps(body)[:300]


# ------------------------------------------------------------------ credentials
def server_facts(state_dir: Path | None, config_files: Sequence[str]) -> dict[str, Any]:
    """``network_url`` and ``auth_strategy`` of the server, from server.json or its config."""
    candidates = []
    facts: dict[str, Any] = {}
    if config_files:
        from kaon.config import load_config

        cfg = load_config(list(config_files))
        facts = {"network_url": cfg.default.public_url, "auth_strategy": cfg.default.auth_strategy}
        candidates.append(Path(cfg.default.state_path) / "server.json")
    if state_dir is not None:
        candidates.append(Path(state_dir) / "server.json")
    for path in candidates:
        if path.exists():
            return {**facts, **json.loads(path.read_text()), "state_path": str(path.parent)}
    return facts


def clouds_yaml_paths(state_dir: Path | None, explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    paths = [Path(os.environ["OS_CLIENT_CONFIG_FILE"])] if os.environ.get("OS_CLIENT_CONFIG_FILE") else []
    if state_dir is not None:
        paths.append(Path(state_dir) / "clouds.yaml")
    paths += [Path("clouds.yaml"), Path.home() / ".config/openstack/clouds.yaml",
              Path("/etc/openstack/clouds.yaml")]
    return paths


def load_cloud(name: str, paths: Sequence[Path]) -> dict[str, Any]:
    for path in paths:
        if path.exists():
            clouds = (yaml.safe_load(path.read_text()) or {}).get("clouds", {})
            if name in clouds:
                return dict(clouds[name])
    raise ApiError(f"cloud {name!r} not found in {', '.join(str(p) for p in paths)}")


def _env_cloud() -> dict[str, Any] | None:
    env = os.environ
    if not (env.get("OS_AUTH_URL") and env.get("OS_USERNAME") and env.get("OS_PASSWORD")):
        return None
    return {"auth": {"auth_url": env["OS_AUTH_URL"], "username": env["OS_USERNAME"],
                     "password": env["OS_PASSWORD"], "project_name": env.get("OS_PROJECT_NAME", ""),
                     "user_domain_name": env.get("OS_USER_DOMAIN_NAME", "Default"),
                     "project_domain_name": env.get("OS_PROJECT_DOMAIN_NAME", "Default")},
            "region_name": env.get("OS_REGION_NAME"), "interface": env.get("OS_INTERFACE", "public")}


def password_token(cloud: Mapping[str, Any], timeout: float = 30.0) -> tuple[str, list[dict[str, Any]]]:
    """Keystone v3 password authentication: (token, catalog)."""
    auth = cloud["auth"]
    url = str(auth["auth_url"]).rstrip("/")
    url = url if url.endswith("/v3") else url + "/v3"
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": auth["password"],
            "domain": {"name": auth.get("user_domain_name", "Default")}}}},
        "scope": {"project": {"name": auth["project_name"],
                              "domain": {"name": auth.get("project_domain_name", "Default")}}},
    }}
    try:
        resp = httpx.post(url + "/auth/tokens", json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ApiError(f"POST {url}/auth/tokens: {exc}") from exc
    if resp.status_code != 201:
        raise ApiError(f"POST {url}/auth/tokens: {resp.status_code} {_message(resp)}", resp.status_code)
    return resp.headers["X-Subject-Token"], resp.json()["token"].get("catalog", [])


def network_endpoint(catalog: Sequence[Mapping[str, Any]], interface: str = "public",
                     region: str | None = None) -> str | None:
    for service in catalog:
        if service.get("type") != "network":
            continue
        for ep in service.get("endpoints", []):
            if ep.get("interface") == interface and (not region or ep.get("region") == region):
                return str(ep["url"])
    return None


def client_for_cloud(cloud: Mapping[str, Any], network_url: str | None = None) -> NeutronClient:
    token, catalog = password_token(cloud)
    url = network_url or network_endpoint(catalog, cloud.get("interface") or "public", cloud.get("region_name"))
    if not url:
        raise ApiError("the token's catalog has no network endpoint")
    return NeutronClient(url, token=token)


def resolve_client(state_dir: Path | None = None, config_files: Sequence[str] = (), *,
                   cloud: str | None = None, clouds_yaml: str | None = None,
                   network_url: str | None = None) -> NeutronClient:
    """A client for the kaon server the lab belongs to (see the module docstring)."""
    facts = server_facts(state_dir, config_files)
    url = network_url or facts.get("network_url")
    server_state = Path(facts["state_path"]) if "state_path" in facts else state_dir
    name = cloud or os.environ.get("OS_CLOUD")
    if name:
        return client_for_cloud(load_cloud(name, clouds_yaml_paths(server_state, clouds_yaml)), network_url)
    env = _env_cloud()
    if env is not None:
        return client_for_cloud(env, network_url)
    if facts.get("auth_strategy") == "noauth":
        if not url:
            raise ApiError("cannot tell where the kaon server is (no server.json, no --config-file)")
        return NeutronClient(url)
    return client_for_cloud(load_cloud(DEFAULT_CLOUD, clouds_yaml_paths(server_state, clouds_yaml)),
                            network_url)
