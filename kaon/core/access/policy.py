"""Who may do what: Neutron's policy rules (:mod:`kaon.core.access.policy_rules`),
overridable by a ``policy.yaml`` in oslo.policy's syntax, enforced here.

oslo.policy parses the defaults and the operator's file (its rule language,
its file format, its check classes, ``field:`` registered as Neutron does).
Evaluating them goes through kaon's own compiled form of the same check tree:
oslo.policy's ``Enforcer.enforce`` costs about 300 µs per check on this
project's machines (it inspects each check's signature on every call and
looks for the policy file again), and a port create asks several; a compiled
check costs a few microseconds. Figures and the reasoning:
``docs/design/policy.md``.

Three questions are asked of the table:

- :meth:`Policy.enforce`: may this context do this action to this target
  (``create_network`` with the new network's project, ``update_port`` with
  the port and its network's owner)? 403 ``PolicyNotAuthorized`` if not.
- :meth:`Policy.check_attributes`: the attribute rules of a create or update
  (``create_port:mac_address``), for what the request sets: on create only
  values other than the attribute's default (Neutron's
  ``_is_attribute_explicitly_set``), on update everything named.
- :meth:`Policy.hidden`: the attributes whose ``get_<resource>:<attr>`` rule
  the caller fails, stripped from what it reads. Evaluated once per caller
  (roles, project) against the caller's own project and remembered: the
  defaults for these rules do not depend on the resource read (admin or
  service).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from oslo_policy import policy as oslo

from kaon import errors
from kaon.core.access.policy_rules import DEFAULTS
from kaon.model.attrs import MISSING, Resource

if TYPE_CHECKING:
    from kaon.core.context import Context

LOG = logging.getLogger("kaon.policy")

Creds = Mapping[str, Any]
Target = Mapping[str, Any]
Compiled = Callable[[Target, Creds], bool]
# (attribute, its rule if any, [(sub-attribute key, its rule)])
AttrRules = list[tuple[str, str | None, list[tuple[str, str]]]]


@oslo.register("field")
class FieldCheck(oslo.Check):
    """Neutron's ``field:<resource>:<attribute>=<value>`` (``~`` before the
    value: a regular expression). The target's ``<resource>:<attribute>``
    (a parent's attribute, as a port's target carries its network's
    ``networks:shared``) is read first, then its ``<attribute>``."""

    def __init__(self, kind: str, match: str) -> None:
        super().__init__(kind, match)
        resource, _, rest = match.partition(":")
        field, _, value = rest.rpartition("=")
        self.keys = (f"{resource}:{field}", field)
        self.regex = re.compile(value[1:]) if value.startswith("~") else None
        self.value: Any = {"True": True, "False": False}.get(value, value)

    def __call__(self, target: Any, creds: Any, enforcer: Any, current_rule: str | None = None) -> bool:
        return field_matches(self, target)


def field_matches(check: FieldCheck, target: Target) -> bool:
    for key in check.keys:
        if key in target:
            value = target[key]
            if check.regex is not None:
                return value is not None and check.regex.match(str(value)) is not None
            if isinstance(check.value, bool):
                return value is check.value
            return str(value) == check.value
    return False


class Policy:
    """The rule table of one server: defaults, then the operator's overrides."""

    def __init__(self, overrides: Mapping[str, str] | None = None, source: str = "") -> None:
        self.source = source
        texts = dict(DEFAULTS)
        texts.update(overrides or {})
        self.texts = texts
        parsed = oslo.Rules.from_dict(texts)
        self._compiled: dict[str, Compiled] = {}
        for name, check in parsed.items():
            self._compiled[name] = self._compile(check)
        # Answers that depend only on the caller (roles, project), and the
        # attribute rules of each (resource, action), worked out once.
        self._attr_rules: dict[tuple[str, str], AttrRules] = {}
        self._by_caller: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def from_file(cls, path: str | None) -> Policy:
        if not path:
            return cls()
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        try:
            overrides = oslo.parse_file_contents(text)
        except ValueError as exc:
            raise errors.KaonError(f"policy file {path}: {exc}") from None
        if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
            raise errors.KaonError(f"policy file {path}: expected a mapping of rule name to check string")
        LOG.info("policy: %d rule(s) from %s", len(overrides), path)
        return cls(overrides, source=path)

    def has(self, name: str) -> bool:
        return name in self._compiled

    # -- compiling oslo.policy's check tree --------------------------------
    def _compile(self, check: Any) -> Compiled:
        """oslo.policy's check tree as nested closures. Its public names are
        used where it exports them; ``@`` and ``!`` (always, never) and the
        generic ``key:value`` check are recognised by their syntax."""
        if isinstance(check, oslo.NotCheck):
            inner = self._compile(check.rule)
            return lambda t, c: not inner(t, c)
        if isinstance(check, oslo.AndCheck):
            parts = [self._compile(r) for r in check.rules]
            return lambda t, c: all(p(t, c) for p in parts)
        if isinstance(check, oslo.OrCheck):
            parts = [self._compile(r) for r in check.rules]
            return lambda t, c: any(p(t, c) for p in parts)
        if isinstance(check, oslo.RuleCheck):
            name = check.match
            # Resolved when asked: rules may refer to rules defined later.
            return lambda t, c: name in self._compiled and self._compiled[name](t, c)
        if isinstance(check, FieldCheck):
            return lambda t, c: field_matches(check, t)
        if isinstance(check, oslo.Check) and check.kind == "role":
            return _role_check(check.match)
        if isinstance(check, oslo.Check) and type(check).__name__ == "GenericCheck":
            return _generic_check(check.kind, check.match)
        if str(check) in ("@", "!"):
            always = str(check) == "@"
            return lambda t, c: always
        # Anything else registered with oslo.policy (http: ...): its own code.
        return lambda t, c: bool(check(t, dict(c), None))

    # -- questions ---------------------------------------------------------
    def allowed(self, ctx: Context, action: str, target: Target) -> bool:
        rule = self._compiled.get(action) or self._compiled["default"]
        return rule(target, creds_of(ctx))

    def enforce(self, ctx: Context, action: str, target: Target, attribute: bool = False) -> None:
        """403 unless allowed. Attribute rules are reported as Neutron
        reports them, ``(rule:create_port:mac_address) is disallowed by policy``."""
        if not self.allowed(ctx, action, target):
            raise errors.PolicyNotAuthorized(action=f"rule:{action}" if attribute else action)

    def check_attributes(self, ctx: Context, resource: Resource, action: str, values: Mapping[str, Any],
                         target: Target) -> None:
        """The ``<action>_<resource>:<attr>`` rules for what ``values`` set,
        against ``target`` (the item's owner and parents) with the new values."""
        built: Target | None = None
        for attr_name, rule, sub_rules in self._attribute_rules(resource, action):
            if attr_name not in values:
                continue
            value = values[attr_name]
            if action == "create" and not _explicit(resource, attr_name, value):
                continue
            if built is None:
                built = {**target, **values}
            if rule is not None:
                self.enforce(ctx, rule, built, attribute=True)
            for key, sub_rule in sub_rules:
                if _any_entry_has(value, key):
                    self.enforce(ctx, sub_rule, built, attribute=True)

    def hidden(self, ctx: Context, resource: Resource) -> frozenset[str]:
        key = ("hidden", resource.name, ctx.roles, ctx.project_id, ctx.user_id)
        found = self._by_caller.get(key)
        if found is None:
            creds = creds_of(ctx)
            target = {"project_id": ctx.project_id, "tenant_id": ctx.project_id}
            found = frozenset(a.name for a in resource.attrs
                              if self.has(f"get_{resource.name}:{a.name}")
                              and not self._compiled[f"get_{resource.name}:{a.name}"](target, creds))
            self._remember(key, found)
        return found

    def role_rule(self, rule: str, roles: frozenset[str]) -> bool:
        """A rule that only looks at roles (``context_is_admin``,
        ``service_api``), as Neutron sets ``context.is_admin``."""
        key = ("role", rule, roles)
        found = self._by_caller.get(key)
        if found is None:
            creds = {"roles": [r.lower() for r in roles], "project_id": None, "tenant_id": None, "user_id": None}
            check = self._compiled.get(rule)
            found = bool(check is not None and check({}, creds))
            self._remember(key, found)
        return bool(found)

    def _remember(self, key: tuple[Any, ...], value: Any) -> None:
        if len(self._by_caller) > 10_000:  # many distinct callers: start again rather than grow
            self._by_caller.clear()
        self._by_caller[key] = value

    def _attribute_rules(self, resource: Resource, action: str) -> AttrRules:
        """Each attribute with a rule or sub-attribute rules, in the
        resource's attribute order."""
        found = self._attr_rules.get((resource.name, action))
        if found is None:
            prefix = f"{action}_{resource.name}:"
            found = []
            for attr in resource.attrs:
                rule = prefix + attr.name
                subs = sorted((n[len(rule) + 1:], n) for n in self.texts if n.startswith(rule + ":"))
                if self.has(rule) or subs:
                    found.append((attr.name, rule if self.has(rule) else None, subs))
            self._attr_rules[(resource.name, action)] = found
        return found


def enforce_owned(ctx: Context, action: str, project_id: str, **parents: Any) -> None:
    """``action`` on an item of ``project_id``; ``parents`` add what the rule
    may look at beyond it (``**{"network:tenant_id": ...}``)."""
    _current.enforce(ctx, action, {"project_id": project_id, "tenant_id": project_id, **parents})


def creds_of(ctx: Context) -> dict[str, Any]:
    return {"roles": [r.lower() for r in ctx.roles], "project_id": ctx.project_id,
            "tenant_id": ctx.project_id, "user_id": ctx.user_id}


def _role_check(match: str) -> Compiled:
    if "%(" in match:
        def dynamic(t: Target, c: Creds) -> bool:
            try:
                return (match % t).lower() in c["roles"]
            except KeyError:
                return False
        return dynamic
    role = match.lower()
    return lambda t, c: role in c["roles"]


def _generic_check(kind: str, match: str) -> Compiled:
    """oslo.policy's GenericCheck: ``<creds key>:<value or %(target key)s>``,
    a dotted key walks into the credentials, a list matches any element."""
    path = kind.split(".")

    def check(t: Target, c: Creds) -> bool:
        try:
            wanted = match % t if "%(" in match else match
        except KeyError:
            return False
        return _find(c, path, wanted)

    return check


def _find(value: Any, path: list[str], wanted: str) -> bool:
    if not path:
        return wanted == str(value)
    if not isinstance(value, Mapping) or path[0] not in value:
        return False
    inner = value[path[0]]
    if isinstance(inner, list):
        return any(_find(v, path[1:], wanted) for v in inner)
    return _find(inner, path[1:], wanted)


def _explicit(resource: Resource, name: str, value: Any) -> bool:
    """Neutron's _is_attribute_explicitly_set on create: given, and not the
    attribute's default (clients such as openstacksdk send defaults)."""
    attr = resource.by_name.get(name)
    if attr is None or attr.default is MISSING:
        return True
    default = attr.default() if callable(attr.default) else attr.default
    return bool(value != default)


def _any_entry_has(value: Any, key: str) -> bool:
    entries = value if isinstance(value, list) else [value]
    return any(isinstance(e, Mapping) and key in e for e in entries)


# -- the server's table ----------------------------------------------------
_current = Policy()
RELOAD_INTERVAL = 1.0  # seconds between looks at the policy file


class _Watch:
    """The file the table came from: an operator's edit takes effect within
    a second, without a restart, as Neutron rereads a changed policy file.
    A file that no longer parses is logged and the table in force stays."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp = _stamp(path)
        self.next_look = time.monotonic() + RELOAD_INTERVAL

    def look(self) -> None:
        self.next_look = time.monotonic() + RELOAD_INTERVAL
        stamp = _stamp(self.path)
        if stamp == self.stamp:
            return
        self.stamp = stamp
        try:
            pol = Policy.from_file(self.path) if stamp is not None else Policy()
        except (OSError, errors.KaonError) as exc:
            LOG.error("policy: %s not reloaded, the rules in force stay: %s", self.path, exc)
            return
        global _current
        _current = pol


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


_watch: _Watch | None = None


def current() -> Policy:
    if _watch is not None and time.monotonic() >= _watch.next_look:
        _watch.look()
    return _current


def install(pol: Policy) -> Policy:
    """Make ``pol`` the table every check consults (and stop following a
    policy file: :func:`load` follows the one it read)."""
    global _current, _watch
    _current, _watch = pol, None
    return pol


def policy_path(cfg: Any) -> str | None:
    """``[oslo_policy] policy_file`` (Neutron's option, default policy.yaml):
    an absolute path, or a name looked up next to the configuration files
    (oslo.config's rule). None when no such file exists."""
    configured = cfg.get("oslo_policy", "policy_file")
    name = os.path.expanduser(configured or "policy.yaml")
    if os.path.isabs(name):
        candidates: Iterable[str] = (name,)
    else:
        candidates = [os.path.join(os.path.dirname(os.path.abspath(f)), name) for f in cfg.files]
    for path in candidates:
        if os.path.isfile(path):
            return path
    if configured:
        LOG.warning("policy: [oslo_policy] policy_file %s not found; using the defaults", configured)
    return None


def load(cfg: Any) -> Policy:
    """The server's table from its configuration, followed for changes."""
    global _watch
    path = policy_path(cfg)
    pol = install(Policy.from_file(path))
    if path is not None:
        _watch = _Watch(path)
    return pol
