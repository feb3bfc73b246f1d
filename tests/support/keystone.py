"""A real Keystone for tests: installed once per machine, served per test module.

Keystone is not a dependency of ryu-sched, and its own requirements would clash with the
controller's, so it lives in a virtualenv of its own, created once per machine
(``RYU_SCHED_KEYSTONE_VENV``, default ``/var/cache/ryu-sched-test/keystone-venv``; ``.ci/run``
creates it up front with ``python -m tests.support.keystone --install``, about a minute).

With the virtualenv comes a bootstrapped Keystone state, made once: SQLite, fernet tokens,
``keystone-manage db_sync``, ``fernet_setup``, ``credential_setup`` and ``bootstrap`` (the
admin project and user, the roles admin, member and reader, admin implying member implying
reader, the identity endpoints). :class:`KeystoneServer` copies it into a work directory,
points the identity endpoints at its own free port of 127.0.0.1 and serves it with the
standard library's WSGI server (``tests/support/keystone_wsgi.py``); stopped by its pid.
(Each ``keystone-manage`` run costs seconds of imports: making the state per test module
would add half a minute.)
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.controller import ControllerProcess, free_port, wait_until

KEYSTONE_REQUIREMENT = "keystone==30.0.0"
VENV_ENV = "RYU_SCHED_KEYSTONE_VENV"
DEFAULT_VENV = Path("/var/cache/ryu-sched-test/keystone-venv")
SERVE_SCRIPT = Path(__file__).with_name("keystone_wsgi.py")
DOMAIN = "Default"
REGION = "RegionOne"
ADMIN_PASSWORD = "admin-secret"
TEMPLATE = "ryu-sched-keystone-state"
# The identity endpoints of the template, rewritten for each server's port.
PLACEHOLDER_URL = "http://127.0.0.1:1/v3"


class KeystoneUnavailable(RuntimeError):
    """Keystone could not be installed or started here."""


def venv_path() -> Path:
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def ensure_venv(path: Path | None = None) -> Path:
    """The Keystone virtualenv, created (``pip install keystone``) with its bootstrapped
    state if it is not there yet.

    A marker file names the installed requirement; an interrupted or older install is
    redone. A lock file keeps concurrent test runs from installing twice.
    """
    path = path or venv_path()
    marker = path / ".ryu-sched-ready"
    state = path / TEMPLATE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.parent / f".{path.name}.lock", "w")
    except OSError as exc:
        raise KeystoneUnavailable(f"cannot create {path} ({exc}); set {VENV_ENV} to a "
                                  "writable place") from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = marker.exists() and marker.read_text().strip() == KEYSTONE_REQUIREMENT
        if not installed:
            shutil.rmtree(path, ignore_errors=True)
            env = _clean_env()
            steps = [[sys.executable, "-m", "venv", str(path)],
                     [str(path / "bin" / "python"), "-m", "pip", "install", "-q",
                      "--disable-pip-version-check", KEYSTONE_REQUIREMENT]]
            for step in steps:
                result = subprocess.run(step, capture_output=True, text=True, env=env,
                                        check=False)
                if result.returncode != 0:
                    shutil.rmtree(path, ignore_errors=True)
                    raise KeystoneUnavailable(
                        f"{' '.join(step)} failed ({result.returncode}):\n"
                        + (result.stdout + result.stderr)[-3000:])
            marker.write_text(KEYSTONE_REQUIREMENT + "\n")
        if not (state / ".complete").exists():
            _bootstrap(path, state)
            (state / ".complete").write_text("bootstrapped\n")
    return path


def _write_config(state: Path) -> Path:
    """keystone.conf for the state in ``state`` (database, keys, log)."""
    config = state / "keystone.conf"
    config.write_text(textwrap.dedent(f"""\
        [DEFAULT]
        log_file = {state / 'keystone.log'}
        [database]
        connection = sqlite:///{state / 'keystone.sqlite'}
        [token]
        provider = fernet
        [fernet_tokens]
        key_repository = {state / 'fernet-keys'}
        [credential]
        key_repository = {state / 'credential-keys'}
        [cache]
        enabled = false
        [identity]
        # bcrypt's cheapest cost: these passwords protect nothing, hashing them is time
        password_hash_rounds = 4
        """))
    return config


def _manage(venv: Path, config: Path, *args: str) -> None:
    command = [str(venv / "bin" / "keystone-manage"), "--config-file", str(config), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=_clean_env(),
                            check=False)
    if result.returncode != 0:
        raise KeystoneUnavailable(f"keystone-manage {args[0]} failed:\n"
                                  + (result.stdout + result.stderr)[-3000:]
                                  + _log_tail(config.parent / "keystone.log"))


def _log_tail(log: Path) -> str:
    try:
        return "\n--- keystone.log ---\n" + log.read_text(errors="replace")[-3000:]
    except FileNotFoundError:
        return ""


def _bootstrap(venv: Path, state: Path) -> None:
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    config = _write_config(state)
    owner = ("--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid()))
    _manage(venv, config, "db_sync")
    _manage(venv, config, "fernet_setup", *owner)
    _manage(venv, config, "credential_setup", *owner)
    _manage(venv, config, "bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
            "--bootstrap-admin-url", PLACEHOLDER_URL,
            "--bootstrap-internal-url", PLACEHOLDER_URL,
            "--bootstrap-public-url", PLACEHOLDER_URL,
            "--bootstrap-region-id", REGION)


def _clean_env() -> dict[str, str]:
    """The environment without this checkout on PYTHONPATH nor OpenStack client settings."""
    return {k: v for k, v in os.environ.items()
            if k != "PYTHONPATH" and not k.startswith("OS_")}


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A Keystone user's password credentials, scoped to a project."""

    auth_url: str
    username: str
    password: str
    project: str

    def cli_env(self) -> dict[str, str]:
        """The environment the ``openstack`` CLI reads its credentials from."""
        return {**_clean_env(), "OS_AUTH_URL": self.auth_url, "OS_AUTH_TYPE": "password",
                "OS_IDENTITY_API_VERSION": "3", "OS_USERNAME": self.username,
                "OS_PASSWORD": self.password, "OS_PROJECT_NAME": self.project,
                "OS_USER_DOMAIN_NAME": DOMAIN, "OS_PROJECT_DOMAIN_NAME": DOMAIN,
                "OS_REGION_NAME": REGION, "OS_INTERFACE": "public"}

    def sdk(self) -> Any:
        """An openstacksdk connection that finds its endpoints in Keystone's catalog."""
        import openstack

        return openstack.connect(
            auth_type="password", auth_url=self.auth_url, username=self.username,
            password=self.password, project_name=self.project,
            user_domain_name=DOMAIN, project_domain_name=DOMAIN, region_name=REGION,
            interface="public", identity_api_version="3")

    def token(self) -> str:
        return str(self.sdk().auth_token)


class KeystoneServer:
    def __init__(self, workdir: Path, venv: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.venv = venv
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.config_path = self.workdir / "keystone.conf"
        self.log_path = self.workdir / "keystone.log"
        self._admin_sdk: Any = None

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    @property
    def admin(self) -> Credentials:
        return Credentials(self.auth_url, "admin", ADMIN_PASSWORD, "admin")

    @property
    def identity(self) -> Any:
        """openstacksdk's identity proxy as the admin (one connection, reused)."""
        if self._admin_sdk is None:
            self._admin_sdk = self.admin.sdk()
        return self._admin_sdk.identity

    def prepare(self) -> None:
        """The machine's bootstrapped state, copied, its identity endpoints on our port."""
        template = self.venv / TEMPLATE
        for name in ("keystone.sqlite", "fernet-keys", "credential-keys"):
            source, target = template / name, self.workdir / name
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)
        self.config_path = _write_config(self.workdir)
        with sqlite3.connect(self.workdir / "keystone.sqlite") as db:
            db.execute("UPDATE endpoint SET url = ? WHERE url = ?",
                       (self.auth_url, PLACEHOLDER_URL))

    def start(self, timeout: float = 60.0) -> None:
        self.prepare()
        out = open(self.workdir / "keystone.out", "ab")
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "python"), str(SERVE_SCRIPT), str(self.port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**_clean_env(), "OS_KEYSTONE_CONFIG_FILES": str(self.config_path)})
        out.close()
        wait_until(self._answers, timeout, 0.1, f"Keystone at {self.auth_url}")

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            out = (self.workdir / "keystone.out").read_text(errors="replace")[-3000:]
            raise KeystoneUnavailable(f"Keystone exited with {self.proc.returncode}:\n{out}"
                                      + _log_tail(self.log_path))
        try:
            with urllib.request.urlopen(self.auth_url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> KeystoneServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- identities and the catalog ----------------------------------------------------

    def add_user(self, username: str, project: str, role: str,
                 password: str | None = None) -> Credentials:
        """A user with ``role`` on ``project`` (both created when missing)."""
        identity = self.identity
        domain = identity.find_domain(DOMAIN, ignore_missing=False)
        proj = identity.find_project(project, domain_id=domain.id) or \
            identity.create_project(name=project, domain_id=domain.id)
        password = password or f"{username}-secret"
        user = identity.find_user(username, domain_id=domain.id) or \
            identity.create_user(name=username, password=password, domain_id=domain.id,
                                 default_project_id=proj.id)
        role_obj = identity.find_role(role) or identity.create_role(name=role)
        identity.assign_project_role_to_user(proj, user, role_obj)
        return Credentials(self.auth_url, username, password, project)

    def project_id(self, name: str) -> str:
        return str(self.identity.find_project(name, ignore_missing=False).id)

    def register_service(self, service_type: str, name: str, url: str) -> None:
        """``service_type`` at ``url`` in the catalog, on every interface."""
        identity = self.identity
        service = identity.create_service(type=service_type, name=name, is_enabled=True)
        for interface in ("public", "internal", "admin"):
            identity.create_endpoint(service_id=service.id, interface=interface, url=url,
                                     region_id=REGION)


class KeystoneController(ControllerProcess):
    """The controller with ``auth_strategy = keystone`` against ``keystone``; its service
    user (``neutron`` in project ``service``, roles admin and service) validates tokens."""

    def __init__(self, workdir: Path, keystone: KeystoneServer | None,
                 authtoken: dict[str, Any] | None = None, **kwargs: Any) -> None:
        options = {"auth_strategy": "keystone", **kwargs.pop("options", {})}
        super().__init__(workdir, options=options, **kwargs)
        self.keystone = keystone
        self.authtoken = authtoken

    def keystone_authtoken(self) -> dict[str, Any]:
        assert self.keystone is not None, "no Keystone: give the [keystone_authtoken] options"
        service = self.keystone.add_user("neutron", "service", "admin")
        self.keystone.add_user("neutron", "service", "service")
        return {
            "www_authenticate_uri": self.keystone.auth_url,
            "auth_url": self.keystone.auth_url,
            "auth_type": "password",
            "username": service.username,
            "password": service.password,
            "project_name": service.project,
            "user_domain_name": DOMAIN,
            "project_domain_name": DOMAIN,
            "region_name": REGION,
            "http_connect_timeout": 10,
        }

    def write_config(self) -> None:
        super().write_config()
        section = self.authtoken if self.authtoken is not None else self.keystone_authtoken()
        self.authtoken = section
        lines = ["", "[keystone_authtoken]"] + [f"{k} = {v}" for k, v in section.items()]
        with open(self.config_path, "a") as config:
            config.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", action="store_true",
                        help="create the Keystone virtualenv now (once per machine)")
    args = parser.parse_args()
    if args.install:
        started = time.monotonic()
        path = ensure_venv()
        print(f"Keystone virtualenv ready at {path} ({KEYSTONE_REQUIREMENT}, "
              f"{time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
