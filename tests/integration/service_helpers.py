"""Reading a systemd unit as systemd does, for the tests of the summaryd user unit.

``settings``/``setting``/``command``/``unit_environment`` parse the rendered
unit's text; shared by ``test_service_unit.py`` (the unit's text),
``test_service_run.py`` (the daemon run as the unit says) and
``test_service_install.py`` (``install-service --env``).
"""

from __future__ import annotations

import shlex

# -- reading a unit, as systemd does for what this unit uses -------------------


def settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every setting, in order."""
    out = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def setting(text: str, section: str, key: str) -> str:
    (value,) = [v for s, k, v in settings(text) if s == section and k == key]
    return value


def command(value: str) -> tuple[str, list[str]]:
    """An Exec*= value: its prefix characters ("-", ":", ...) and argv."""
    i = 0
    while value[i] in "-@:+!":
        i += 1
    argv = [w.replace("%%", "%") for w in shlex.split(value[i:])]
    return value[:i], argv


def unit_environment(text: str) -> dict[str, str]:
    env = {}
    for _, _, value in (s for s in settings(text) if s[:2] == ("Service", "Environment")):
        for word in shlex.split(value):
            k, _, v = word.partition("=")
            env[k] = v.replace("%%", "%")
    return env
