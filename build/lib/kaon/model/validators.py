"""Input converters: each takes a client value and returns the stored value
or raises :class:`InvalidValue` with Neutron's reason text. The caller adds
the attribute name ("Invalid input for name. Reason: ...")."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

import netaddr

Converter = Callable[[Any], Any]


class InvalidValue(ValueError):
    pass


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes", "on", "t", "y"):
            return True
        if low in ("false", "0", "no", "off", "f", "n"):
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidValue(f"'{value}' cannot be converted to boolean")


def string(max_len: int | None = 255) -> Converter:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidValue(f"'{value}' is not a valid string")
        if max_len is not None and len(value) > max_len:
            raise InvalidValue(f"'{value}' exceeds maximum length of {max_len}")
        return value

    return check


def string_or_none(max_len: int = 255) -> Converter:
    inner = string(max_len)
    return lambda v: None if v is None else inner(v)


def uuid_str(value: Any) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidValue(f"'{value}' is not a valid UUID")


def uuid_or_none(value: Any) -> str | None:
    return None if value is None else uuid_str(value)


def uuid_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise InvalidValue(f"'{value}' is not a list")
    out = [uuid_str(v) for v in value]
    if len(set(out)) != len(out):
        raise InvalidValue(f"Duplicate items in the list: '{', '.join(out)}'")
    return out


# The widest values the database's integer columns hold (PostgreSQL's
# integer and bigint; SQLite would store more, PostgreSQL answers an error).
DB_INT_MAX = 2**31 - 1
DB_BIGINT_MAX = 2**63 - 1


def _whole_number(value: Any) -> int:
    """An integer, from an int, a whole float (2.0) or a decimal string;
    booleans and fractions (1.5) refused rather than truncated."""
    if isinstance(value, bool):
        raise InvalidValue(f"'{value}' is not an integer")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidValue(f"'{value}' is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidValue(f"'{value}' is not an integer") from None


def _non_negative(high: int) -> Converter:
    def check(value: Any) -> int:
        number = _whole_number(value)
        if number < 0:
            raise InvalidValue(f"'{value}' should be non-negative")
        if number > high:
            raise InvalidValue(f"'{value}' is not in range 0 through {high}")
        return number

    return check


# For integer columns, and for bigint columns (segmentation ids, revisions).
non_negative_int = _non_negative(DB_INT_MAX)
non_negative_bigint = _non_negative(DB_BIGINT_MAX)


def filter_int(value: Any) -> int:
    """A filter value for an integer column: out of the column's range can
    match nothing, and PostgreSQL would refuse to compare it."""
    number = _whole_number(value)
    if not -DB_INT_MAX - 1 <= number <= DB_INT_MAX:
        raise InvalidValue(f"'{value}' is out of range")
    return number


def filter_bigint(value: Any) -> int:
    number = _whole_number(value)
    if not -DB_BIGINT_MAX - 1 <= number <= DB_BIGINT_MAX:
        raise InvalidValue(f"'{value}' is out of range")
    return number


def int_in(low: int, high: int) -> Converter:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise InvalidValue(f"'{value}' is not an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidValue(f"'{value}' is not an integer") from None
        if not low <= number <= high:
            raise InvalidValue(f"'{value}' is not in range {low} through {high}")
        return number

    return check


def one_of(*choices: Any) -> Converter:
    def check(value: Any) -> Any:
        if value not in choices:
            raise InvalidValue(f"'{value}' is not in {list(choices)}")
        return value

    return check


def ip_address(value: Any) -> str:
    """A plain IP address, canonicalised; prefixes and fancy forms refused."""
    if isinstance(value, str) and value and value.strip() == value and "/" not in value:
        try:
            addr = netaddr.IPAddress(value, flags=netaddr.INET_PTON if ":" not in value else 0)
            return str(addr)
        except (netaddr.AddrFormatError, ValueError):
            pass
    raise InvalidValue(f"'{value}' is not a valid IP address")


def ip_or_none(value: Any) -> str | None:
    return None if value is None else ip_address(value)


def cidr(value: Any) -> str:
    """A subnet in CIDR form; host bits must be clear ("10.0.0.1/24" is refused
    with Neutron's hint to use the network address)."""
    if not isinstance(value, str) or "/" not in value:
        raise InvalidValue(f"'{value}' is not a valid IP subnet")
    try:
        net = netaddr.IPNetwork(value)
        netaddr.IPAddress(value.split("/")[0])
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise InvalidValue(f"'{value}' is not a valid IP subnet") from None
    if str(net.cidr) != str(net):
        raise InvalidValue(f"'{value}' isn't a recommended CIDR, '{net.cidr}' is recommended")
    return str(net.cidr)


def subnet_cidr(value: Any) -> str:
    """A subnet's CIDR, canonicalised: host bits are dropped ("10.0.0.5/24"
    becomes "10.0.0.0/24"), as Neutron does; forms netaddr would have to
    guess at ("10.0.0/24", "10.0.0.0") are refused."""
    if isinstance(value, str) and "/" in value and value.strip() == value:
        try:
            net = netaddr.IPNetwork(value)
            if net.version == 6 or str(net) == value:
                return str(net.cidr)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            pass
    raise InvalidValue(f"'{value}' is not a valid IP subnet")


def ip_or_cidr(value: Any) -> str:
    if isinstance(value, str) and "/" in value:
        try:
            return str(netaddr.IPNetwork(value))
        except (netaddr.AddrFormatError, ValueError):
            raise InvalidValue(f"'{value}' is not a valid IP subnet") from None
    return ip_address(value)


_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


def mac_address(value: Any) -> str:
    """A MAC in colon form, lower case. Like neutron-lib, only the all-zero
    and broadcast addresses are refused."""
    if isinstance(value, str) and _MAC.match(value):
        mac = value.lower().replace("-", ":")
        if mac not in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
            return mac
    raise InvalidValue(f"'{value}' is not a valid MAC address")


def list_of(item: Converter, max_len: int | None = None, unique: bool = True) -> Converter:
    def check(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise InvalidValue(f"'{value}' is not a list")
        out = [item(v) for v in value]
        if unique:
            seen: list[Any] = []
            for v in out:
                if v in seen:
                    raise InvalidValue(f"Duplicate items in the list: '{v}'")
                seen.append(v)
        if max_len is not None and len(out) > max_len:
            raise InvalidValue(f"list exceeds maximum length of {max_len}")
        return out

    return check


def timestamp(value: Any) -> dt.datetime:
    """An ISO 8601 instant as the naive UTC datetime kaon stores."""
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue(f"'{value}' is not a valid ISO 8601 timestamp") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def dict_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidValue(f"'{value}' is not a dictionary")
    return value


def has_nul(raw: bytes, decoded: Any) -> bool:
    """Whether a JSON body holds a NUL character in a key or a string
    (JSON can only spell one as an escape, so most bodies are cleared by a
    byte search; PostgreSQL cannot store NUL in text)."""
    if b"\\u0000" not in raw:
        return False
    stack = [decoded]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
