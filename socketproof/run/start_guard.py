"""The web UI's start endpoint takes only what its form shows; start-up credentials go only to
the start-up target.

Locust's POST /swarm sets any parsed option it is sent, shown in the form or not, and the web UI
has no login unless one is configured. So (issue 24, finding 1) two rules hold for every start:

- a field the start form does not show (`tokens_file`, `insecure`, `header`...) is refused:
  options outside the form are set at start-up only;
- credentials given at start-up (secret options, credential headers and query values, a tokens
  file, a login endpoint's tokens, the signing key, a client certificate) are used only while
  the host and the token URL are the start-up ones. A form that points either elsewhere while
  such a credential is in play is refused, with the reason in the log and in the form. Typing
  the credential into the form for the new host is the way to use one there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from client.urls import same_target
from socketproof.target.handshake_extras import is_secret_name

LOCUST_FIELDS = frozenset({"user_count", "spawn_rate", "host", "run_time", "user_classes", "shape_class", "profile"})
"""The fields of Locust's own start form (the rest are the extra options it shows)."""


@dataclasses.dataclass(frozen=True)
class StartupTarget:
    """Where the start-up credentials may go, and which are in play."""

    hosts: frozenset[str]
    """Normalised (same_target) hosts of the start-up run: --host, the embedded server, a fault proxy."""
    token_url: str = ""
    secret_fields: tuple[str, ...] = ()
    """Secret options given at start-up (form field names): in play unless the form types a value."""
    fixed_credentials: tuple[str, ...] = ()
    """Credentials the form cannot replace (--header NAME, --tokens-file...), named as options."""
    token_body_given: bool = False
    """--token-body (often a password) came from start-up: it goes only to the start-up --token-url."""

    def credentials_in_play(self, form: Mapping[str, str]) -> list[str]:
        typed = {name for name in self.secret_fields if str(form.get(name, "") or "")}
        return [*("--" + name.replace("_", "-") for name in self.secret_fields if name not in typed),
                *self.fixed_credentials]


def refusal(form: Mapping[str, str], shown: Collection[str], target: StartupTarget) -> str | None:
    """Why a start form must be refused (one line), or None to let it start."""
    unknown = sorted(name for name in form if name not in LOCUST_FIELDS and name not in shown)
    if unknown:
        return (f"the start form has no field {', '.join(unknown)}: options outside the form are set at "
                "start-up only (command line, locust.conf or SOCKETPROOF_* variables)")
    host = str(form.get("host", "") or "").replace("<", "").replace(">", "")  # as Locust stores it
    in_play = target.credentials_in_play(form)
    if host and same_target(host) not in target.hosts and in_play:
        return (f"host {host} is not the start-up target: the start-up credentials ({', '.join(in_play)}) go only "
                "there. Type them into the form for this host, or start Socketproof with --host for it")
    token_url = str(form.get("token_url", target.token_url) or "")
    if target.token_body_given and not str(form.get("token_body", "") or "") and \
            same_target(token_url) != same_target(target.token_url):
        return (f"--token-url {token_url} is not the start-up one: the start-up --token-body goes only to "
                f"{target.token_url}. Type a token body into the form for this URL, or restart with it")
    return None


def startup_target(hosts: Collection[str], parsed: Any, given_secrets: Collection[str], deployment: Any
                   ) -> StartupTarget:
    """What init knows: the run's hosts, the secret options given, the deployment built from the options."""
    fixed: list[str] = []
    extras = deployment.extras
    fixed.extend(f"--header {name}" for name, value in extras.headers.items() if value and is_secret_name(name))
    fixed.extend(f"--query {name}" for name, value in extras.query.items() if value and is_secret_name(name))
    for option in ("tokens_file", "token_url", "jwt_private_key", "client_cert"):
        if str(getattr(parsed, option, "") or ""):
            fixed.append("--" + option.replace("_", "-"))
    return StartupTarget(
        hosts=frozenset(same_target(host) for host in hosts if host),
        token_url=str(getattr(parsed, "token_url", "") or ""),
        secret_fields=tuple(name for name in sorted(given_secrets) if name != "token_body"),
        fixed_credentials=tuple(fixed),
        token_body_given="token_body" in given_secrets,
    )

