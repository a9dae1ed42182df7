"""mmw's Airflow connections: a server's sftp login from the connection its config names.

The DAG's fetch task hands `sftp_credentials` to mmw_tasks.pipeline.fetch_job, which calls it
for its server: the login goes to the fetch as plain data and never to XCom or a log. Airflow
puts the plugins folder on the path of every one of its processes, so the DAG files import this
module as they import mmw_airflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmw_tasks.fetch.sftp import CredentialsDict


def _flag(extra: dict[str, Any], key: str, default: bool) -> bool:
    v = extra.get(key, default)
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")


def sftp_credentials(config: str, server: str) -> CredentialsDict | None:
    """Plain login details for a server's sftp source from its Airflow connection (`connection_id`):
    login, password, and the SSH extras key_file, private_key, private_key_passphrase, host_key,
    known_hosts, allow_agent, look_for_keys. `no_host_key_check` is ignored: host keys are always
    checked. None for a local source, or an sftp one without a connection_id."""
    from mmw_tasks.config import load_site

    srv = next(s for s in load_site(config).servers if s.name == server)
    if not srv.source.startswith("sftp://") or not srv.connection_id:
        return None
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(srv.connection_id)
    extra = conn.extra_dejson or {}
    return {
        "username": conn.login or None,
        "password": conn.password or None,
        "key_file": extra.get("key_file"),
        "private_key": extra.get("private_key"),
        "passphrase": extra.get("private_key_passphrase"),
        "host_key": extra.get("host_key"),
        "known_hosts": extra.get("known_hosts"),
        "allow_agent": _flag(extra, "allow_agent", False),
        "look_for_keys": _flag(extra, "look_for_keys", False),
    }
