"""A station's configuration file (``station.yaml``): read as untrusted input, checked
field by field, every problem named by its dotted path (as recipes are: see
``recipe/checks.py``).

Example::

    version: 1
    recipes: recipes/            # a folder of recipe files; products by their names
    product: Label               # the product active at start (default: the first)
    database: results.db         # default: the data folder's
    source:
      kind: trigger              # trigger | watch | camera
      capture: folder            # trigger: the next file of a folder, or a camera's next frame
      folder: incoming/
      timeout: 5                 # seconds to take a part's image
    handshake:
      acknowledge: false         # stay on each result until the line acknowledges it
      timeout: 30                # seconds from a trigger to its result, else an ERROR result
    mqtt:
      host: 127.0.0.1
      port: 1883
      qos: 1
    opcua:
      host: 127.0.0.1
      port: 4840
      certificate: pki/station.der   # the server's own certificate and key (PEM or DER)
      private_key: pki/station.key
      security: [sign_and_encrypt]   # none | sign | sign_and_encrypt (default with a
                                     # certificate: sign_and_encrypt, else none)
      trusted_clients: pki/trusted/  # client certificates allowed to connect and log in

Relative paths are taken from the configuration file's folder. Passwords are never in
the file: ``password_env`` names the environment variable that holds one. Certificate
and key files are read as untrusted input: regular files of ``MAX_KEY_FILE_BYTES`` at
most, parsed, never executed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from inspector.errors import InspectorError
from inspector.recipe.checks import Checker

CONFIG_VERSION = 1
MAX_CONFIG_BYTES = 64 * 1024  # a station's configuration is a page of YAML
MAX_KEY_FILE_BYTES = 64 * 1024  # a certificate (with its chain) or a key is a few kB
MAX_TRUSTED_CLIENTS = 1000
CERTIFICATE_SUFFIXES = (".der", ".pem", ".crt", ".cer")

SourceKind = Literal["trigger", "watch", "camera"]
CaptureKind = Literal["folder", "camera"]
SecurityMode = Literal["none", "sign", "sign_and_encrypt"]
SECURITY_MODES = ("none", "sign", "sign_and_encrypt")


class ConfigError(InspectorError):
    """A station configuration that cannot be used; the message names every bad field."""


@dataclass(frozen=True)
class SourceConfig:
    kind: SourceKind
    capture: CaptureKind = "folder"
    folder: Path | None = None
    camera: str | None = None
    timeout: float = 5.0
    settle: float = 1.0
    sort: bool = False
    every: int = 1


@dataclass(frozen=True)
class HandshakeConfig:
    acknowledge: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    qos: int = 1
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive: int = 30
    buffer: int = 100_000  # results kept while the broker cannot be reached


@dataclass(frozen=True)
class OpcUaConfig:
    host: str = "127.0.0.1"
    port: int = 4840
    anonymous: bool = True
    username: str | None = None
    password: str | None = None
    certificate: Path | None = None
    private_key: Path | None = None
    security: tuple[SecurityMode, ...] = ()  # empty: sign_and_encrypt with a certificate, else none
    trusted_clients: Path | None = None

    @property
    def modes(self) -> tuple[SecurityMode, ...]:
        """The message security the server offers."""
        return self.security or (("sign_and_encrypt",) if self.certificate is not None else ("none",))


@dataclass(frozen=True)
class StationConfig:
    recipes: Path
    source: SourceConfig
    product: str | None = None
    database: str | None = None
    device: str = "auto"
    save_frames: str = "fail"
    save_overlays: bool = True
    handshake: HandshakeConfig = HandshakeConfig()
    mqtt: MqttConfig | None = None
    opcua: OpcUaConfig | None = None


def topic_name_problem(station: str) -> str | None:
    """Why a station name cannot be a level of an MQTT topic, or None."""
    if any(c in station for c in "+#/\x00") or not station.strip():
        return f"{station!r} cannot be part of an MQTT topic (no /, + or #)"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key_file(path: Path) -> bytes:
    """A certificate's or key's bytes: a regular file of ``MAX_KEY_FILE_BYTES`` at most."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise ConfigError(f"{path}: {info.st_size} bytes is too large ({MAX_KEY_FILE_BYTES} at most)")
        with path.open("rb") as file:
            return file.read(MAX_KEY_FILE_BYTES + 1)[:MAX_KEY_FILE_BYTES]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _pem(data: bytes) -> bool:
    return data.lstrip().startswith(b"-----BEGIN")


def read_certificate(path: Path, *, check_dates: bool = True) -> x509.Certificate:
    """A certificate from a PEM or DER file (the first of a PEM chain).

    Raises:
        ConfigError: unreadable, too large, not a certificate, or (with ``check_dates``)
            not valid today.
    """
    data = _key_file(path)
    try:
        certificate = x509.load_pem_x509_certificate(data) if _pem(data) else x509.load_der_x509_certificate(data)
    except ValueError:
        raise ConfigError(f"{path}: not a PEM or DER certificate") from None
    if check_dates:
        now = dt.datetime.now(dt.timezone.utc)
        if certificate.not_valid_after_utc < now:
            raise ConfigError(f"{path}: the certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}")
        if certificate.not_valid_before_utc > now:
            raise ConfigError(f"{path}: the certificate is valid only from {certificate.not_valid_before_utc:%Y-%m-%d}")
    return certificate


def read_private_key(path: Path) -> rsa.RSAPrivateKey:
    """An unencrypted RSA key (2048 to 4096 bits, as Basic256Sha256 wants) from a PEM or
    DER file.

    Raises:
        ConfigError: unreadable, too large, not a key, encrypted, or not such an RSA key.
    """
    data = _key_file(path)
    load = serialization.load_pem_private_key if _pem(data) else serialization.load_der_private_key
    try:
        key = load(data, password=None)
    except TypeError:
        raise ConfigError(f"{path}: the key is encrypted; give it unencrypted, readable only by the station") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{path}: not a PEM or DER private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{path}: Basic256Sha256 needs an RSA key, got {type(key).__name__}")
    if not 2048 <= key.key_size <= 4096:
        raise ConfigError(f"{path}: Basic256Sha256 needs an RSA key of 2048 to 4096 bits, got {key.key_size}")
    return key


def read_trusted_clients(folder: Path) -> list[x509.Certificate]:
    """The certificates (``*.der``, ``*.pem``, ``*.crt``, ``*.cer``) of a folder, not of its
    subfolders; their dates are checked when a client presents one.

    Raises:
        ConfigError: not a folder, none or too many certificates, or one that is not one.
    """
    try:
        entries = sorted(p for p in folder.iterdir() if p.suffix.lower() in CERTIFICATE_SUFFIXES)
    except OSError as exc:
        raise ConfigError(f"{folder}: not a readable folder ({exc.strerror or exc})") from None
    if not entries:
        raise ConfigError(f"{folder}: no client certificates ({', '.join(CERTIFICATE_SUFFIXES)}) in it")
    if len(entries) > MAX_TRUSTED_CLIENTS:
        raise ConfigError(f"{folder}: {len(entries)} certificates ({MAX_TRUSTED_CLIENTS} at most)")
    return [read_certificate(path, check_dates=False) for path in entries]


def password_exposure(config: OpcUaConfig) -> str | None:
    """Why the configured user's password could travel in the clear, or None: outside the
    loopback a username needs the server's certificate and no NoSecurity endpoint."""
    if config.username is None or is_loopback(config.host):
        return None
    if config.certificate is None or "none" in config.modes:
        return (
            "a username outside the loopback needs certificate and private_key, and no 'none' in security: "
            "the password would travel in the clear"
        )
    return None


def _path(check: Checker, data: dict, key: str, where: str, base: Path, *, required: bool = False) -> Path | None:
    text = check.text(data, key, where, required=required, max_length=4096)
    if text is None:
        return None
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path


def _password(check: Checker, data: dict, where: str) -> str | None:
    if "password" in data:
        check.fail(f"{where}.password", "never in the file: name an environment variable with password_env")
    name = check.text(data, "password_env", where, max_length=200)
    if name is None:
        return None
    value = os.environ.get(name)
    if value is None:
        check.fail(f"{where}.password_env", f"the environment variable {name} is not set")
    return value


def _host(check: Checker, data: dict, where: str) -> str:
    return check.text(data, "host", where, "127.0.0.1", max_length=253)


def _source(check: Checker, data: Any, base: Path) -> SourceConfig:
    where = "source"
    if data is None:
        check.fail(where, "missing (required)")
        return SourceConfig("trigger")
    d = check.section(data, where, {"kind", "capture", "folder", "camera", "timeout", "settle", "sort", "every"})
    kind = check.text(d, "kind", where, "trigger", required=True, choices=("trigger", "watch", "camera"))
    capture = check.text(d, "capture", where, "folder", choices=("folder", "camera"))
    folder = _path(check, d, "folder", where, base)
    camera = d.get("camera")
    if camera is not None and (not isinstance(camera, (str, int)) or isinstance(camera, bool)):
        check.fail(f"{where}.camera", f"a device index or a URL, got {camera!r}")
        camera = None
    wants_folder = kind == "watch" or (kind == "trigger" and capture == "folder")
    if wants_folder and folder is None:
        needs = "a hot folder" if kind == "watch" else "a folder capture"
        check.fail(f"{where}.folder", f"missing (required for {needs})")
    if not wants_folder and camera is None:
        check.fail(f"{where}.camera", "missing (required for a camera)")
    return SourceConfig(
        kind=kind,
        capture=capture,
        folder=folder,
        camera=None if camera is None else str(camera),
        timeout=check.number(d, "timeout", where, 5.0, low=0.01, high=3600),
        settle=check.number(d, "settle", where, 1.0, low=0, high=3600),
        sort=check.flag(d, "sort", where, False),
        every=check.number(d, "every", where, 1, low=1, high=10_000, integer=True),
    )


def _mqtt(check: Checker, data: Any) -> MqttConfig | None:
    if data is None:
        return None
    where = "mqtt"
    d = check.section(
        data, where, {"host", "port", "qos", "client_id", "username", "password", "password_env", "keepalive", "buffer"}
    )
    return MqttConfig(
        host=_host(check, d, where),
        port=check.number(d, "port", where, 1883, low=1, high=65535, integer=True),
        qos=check.number(d, "qos", where, 1, low=0, high=2, integer=True),
        client_id=check.text(d, "client_id", where, max_length=200),
        username=check.text(d, "username", where, max_length=200),
        password=_password(check, d, where),
        keepalive=check.number(d, "keepalive", where, 30, low=5, high=3600, integer=True),
        buffer=check.number(d, "buffer", where, 100_000, low=1, high=10_000_000, integer=True),
    )


def _security(check: Checker, d: dict, where: str) -> tuple[SecurityMode, ...]:
    value = d.get("security")
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        check.fail(f"{where}.security", f"must be a non-empty list of {', '.join(SECURITY_MODES)}, got {value!r:.80}")
        return ()
    modes = []
    for i, mode in enumerate(value):
        if mode not in SECURITY_MODES:
            check.fail(f"{where}.security[{i}]", f"must be one of {', '.join(SECURITY_MODES)}, got {mode!r:.80}")
        else:
            modes.append(mode)
    return tuple(dict.fromkeys(modes))


def _read(check: Checker, field: str, read: Callable[[Path], Any], path: Path | None) -> Any:
    """What ``read`` makes of the file a field names, or None (and the field's problem)."""
    if path is None:
        return None
    try:
        return read(path)
    except ConfigError as exc:
        check.fail(field, str(exc))
        return None


def _opcua_identity(check: Checker, d: dict, where: str, base: Path) -> dict:
    """The server's certificate and key, the security it offers and the clients it trusts."""
    paths = {key: _path(check, d, key, where, base) for key in ("certificate", "private_key", "trusted_clients")}
    certificate = _read(check, f"{where}.certificate", read_certificate, paths["certificate"])
    key = _read(check, f"{where}.private_key", read_private_key, paths["private_key"])
    _read(check, f"{where}.trusted_clients", read_trusted_clients, paths["trusted_clients"])
    if certificate is not None and key is not None and certificate.public_key() != key.public_key():
        check.fail(f"{where}.private_key", f"is not the key of {where}.certificate")
    for given, missing in (("certificate", "private_key"), ("private_key", "certificate")):
        if paths[given] is not None and paths[missing] is None:
            check.fail(f"{where}.{missing}", f"missing (required with {where}.{given})")
    security = _security(check, d, where)
    if paths["certificate"] is None and {"sign", "sign_and_encrypt"} & set(security):
        check.fail(f"{where}.security", f"sign and sign_and_encrypt need {where}.certificate and private_key")
    if paths["trusted_clients"] is not None and (paths["certificate"] is None or security == ("none",)):
        check.fail(
            f"{where}.trusted_clients",
            f"needs {where}.certificate and private_key, and sign or sign_and_encrypt in {where}.security: "
            "clients prove their certificates over a signed channel",
        )
    return {**paths, "security": security}


def _opcua(check: Checker, data: Any, base: Path) -> OpcUaConfig | None:
    if data is None:
        return None
    where = "opcua"
    d = check.section(
        data,
        where,
        {
            "host", "port", "anonymous", "username", "password", "password_env", "certificate", "private_key",
            "security", "trusted_clients",
        },
    )  # fmt: skip
    host = _host(check, d, where)
    username = check.text(d, "username", where, max_length=200)
    password = _password(check, d, where)
    anonymous = check.flag(d, "anonymous", where, is_loopback(host))
    identity = _opcua_identity(check, d, where, base)
    if not anonymous and identity["trusted_clients"] is None and (username is None or password is None):
        check.fail(
            where,
            "anonymous access is off (the default outside the loopback): give username and password_env, "
            "or trusted_clients, or anonymous: true",
        )
    if username is not None and password is None and "password_env" not in d:
        check.fail(f"{where}.password_env", "missing (required with a username)")
    config = OpcUaConfig(
        host=host,
        port=check.number(d, "port", where, 4840, low=1, high=65535, integer=True),
        anonymous=anonymous,
        username=username,
        password=password,
        **identity,
    )
    exposure = password_exposure(config)
    if exposure is not None:
        check.fail(where, exposure)
    return config


def parse_config(raw: Any, *, base: Path, origin: str = "station configuration") -> StationConfig:
    """Check a configuration's YAML values; ConfigError names every bad field."""
    check = Checker()
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: must be a mapping of settings, got {type(raw).__name__}")
    top = check.section(
        raw,
        "",
        {
            "version", "recipes", "product", "database", "device", "source", "handshake", "mqtt", "opcua",
            "save_frames", "save_overlays",
        },
    )  # fmt: skip
    version = top.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        check.fail("version", f"this Inspector reads version {CONFIG_VERSION}, got {version!r}")
    recipes = _path(check, top, "recipes", "", base, required=True)
    shake = check.section(top.get("handshake"), "handshake", {"acknowledge", "timeout"})
    config = StationConfig(
        recipes=recipes or base,
        source=_source(check, top.get("source"), base),
        product=check.text(top, "product", "", max_length=200),
        database=check.text(top, "database", "", max_length=4096),
        device=check.text(top, "device", "", "auto", choices=("auto", "cpu", "cuda", "mps")),
        save_frames=check.text(top, "save_frames", "", "fail", choices=("fail", "all", "none")),
        save_overlays=check.flag(top, "save_overlays", "", True),
        handshake=HandshakeConfig(
            acknowledge=check.flag(shake, "acknowledge", "handshake", False),
            timeout=check.number(shake, "timeout", "handshake", 30.0, low=0.1, high=86_400),
        ),
        mqtt=_mqtt(check, top.get("mqtt")),
        opcua=_opcua(check, top.get("opcua"), base),
    )
    if config.database and "://" not in config.database and not Path(config.database).is_absolute():
        config = replace(config, database=str(base / config.database))
    if check.problems:
        raise ConfigError(f"{origin}: " + "; ".join(check.problems))
    return config


def load_config(path: str | os.PathLike) -> StationConfig:
    """Read and check a station's configuration file.

    Raises:
        ConfigError: the file is missing, too large, not YAML, or has bad fields (each
            named).
    """
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: not a regular file; not read")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {info.st_size} bytes is too large for a station configuration")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such station configuration") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not a usable configuration: {str(exc)[:200]}") from None
    return parse_config(raw, base=path.resolve().parent, origin=str(path))
