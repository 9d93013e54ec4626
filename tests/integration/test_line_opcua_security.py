"""The OPC UA server's certificate security on the loopback, checked with real asyncua
clients: Basic256Sha256 SignAndEncrypt, certificate login for trusted clients only, no
NoSecurity session where none is offered, and the configuration's errors named."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from inspector.errors import InspectorError
from inspector.line.config import ConfigError, OpcUaConfig, parse_config
from inspector.line.opcua import NAMESPACE, OpcUaOutput
from tests.line_helpers import LineData, free_port, wait_for

CLIENT_URI = "urn:example.org:FreeOpcUa:opcua-asyncio"  # asyncua's client's own
SERVER_URI = "urn:inspector:test-station"
DAY = dt.timedelta(days=1)


def _certificate(key, name: str, uri: str, usage, *, valid: tuple[dt.timedelta, dt.timedelta] = (-DAY, 30 * DAY)):
    """A self-signed OPC UA application certificate."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    usages = x509.KeyUsage(
        digital_signature=True, content_commitment=True, key_encipherment=True, data_encipherment=True,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + valid[0])
        .not_valid_after(now + valid[1])
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")]), False
        )
        .add_extension(usages, False)
        .add_extension(x509.ExtendedKeyUsage([usage]), False)
        .sign(key, hashes.SHA256())
    )


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class Pki:
    """The server's and two clients' certificates and keys; only ``trusted`` is trusted."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.trusted_dir = root / "trusted"
        self.trusted_dir.mkdir()
        keys = {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("server", "a", "b")}
        self.keys = keys
        server = _certificate(keys["server"], "station", SERVER_URI, ExtendedKeyUsageOID.SERVER_AUTH)
        # the server's certificate in PEM, its key in DER: both are read
        self.certificate = self._write("server.pem", server.public_bytes(serialization.Encoding.PEM))
        self.private_key = self._write(
            "server.key",
            keys["server"].private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        for name in ("a", "b"):
            cert = _certificate(keys[name], f"plc-{name}", CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH)
            self._write(f"{name}.der", cert.public_bytes(serialization.Encoding.DER))
            self._write(f"{name}-key.pem", _pem_key(keys[name]))  # asyncua goes by the suffix
        (self.trusted_dir / "plc-a.der").write_bytes((root / "a.der").read_bytes())
        (self.trusted_dir / "README.txt").write_text("only the certificates here are trusted")

    def _write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    def config(self, **options) -> OpcUaConfig:
        settings = {
            "port": free_port(),
            "anonymous": False,
            "certificate": self.certificate,
            "private_key": self.private_key,
            "trusted_clients": self.trusted_dir,
        }
        return OpcUaConfig(**(settings | options))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def served(tmp_path):
    data = LineData(tmp_path, parts=2)
    started = []

    def start(config: OpcUaConfig):
        station = data.station().start()
        server = OpcUaOutput(station, config).start()
        started.append((station, server))
        wait_for(lambda: station.handshake.status().state == "ready", what="the station ready")
        data.drop(0)
        return server

    yield start
    for station, server in started:
        station.stop()
        server.close()
        station.store.close()


async def _secure_client(pki: Pki, endpoint: str, who: str, *, login: str | None = None, mode=None) -> Client:
    """A client whose application certificate is ``who``'s, logging in with ``login``'s
    certificate (none: anonymously)."""
    client = Client(endpoint)
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(pki.root / f"{who}.der"),
        str(pki.root / f"{who}-key.pem"),
        mode=mode or ua.MessageSecurityMode.SignAndEncrypt,
    )
    if login is not None:
        await client.load_client_certificate(str(pki.root / f"{login}.der"))
        await client.load_private_key(pki.root / f"{login}-key.pem")
    return client


async def _trigger(client: Client) -> tuple:
    async with client:
        idx = await client.get_namespace_index(NAMESPACE)
        machine = await client.nodes.objects.get_child([f"{idx}:VisionSystem", f"{idx}:VisionStateMachine"])
        return tuple(await machine.call_method(f"{idx}:StartSingleJob", "plc-1"))


async def _refused(client: Client) -> str:
    try:
        async with client:
            return "got in: " + str(await client.nodes.objects.read_browse_name())
    except (ua.UaError, OSError, TimeoutError, asyncio.TimeoutError) as exc:
        return f"refused: {type(exc).__name__} {exc}"


def test_a_trusted_client_logs_in_with_its_certificate_over_sign_and_encrypt_and_triggers(pki, served):
    server = served(pki.config())

    async def line():
        endpoints = await Client(server.endpoint).connect_and_get_server_endpoints()
        client = await _secure_client(pki, server.endpoint, "a", login="a")
        return endpoints, await _trigger(client)

    endpoints, (accepted, result_id, reason) = asyncio.run(line())
    assert [(e.SecurityMode, e.SecurityPolicyUri) for e in endpoints] == [
        (ua.MessageSecurityMode.SignAndEncrypt, SecurityPolicyBasic256Sha256.URI)
    ]
    assert endpoints[0].Server.ApplicationUri == SERVER_URI  # the certificate's, as clients check
    assert accepted and result_id and not reason


def test_a_username_travels_encrypted_and_sign_only_is_offered_when_configured(pki, served, monkeypatch):
    server = served(pki.config(username="plc", password="s3cret", security=("sign",)))

    async def line(password: str):
        client = await _secure_client(pki, server.endpoint, "a", mode=ua.MessageSecurityMode.Sign)
        client.set_user("plc")
        client.set_password(password)
        return await _trigger(client) if password == "s3cret" else await _refused(client)

    assert asyncio.run(line("s3cret"))[0] is True
    assert asyncio.run(line("wrong")).startswith("refused")


def test_an_untrusted_certificate_is_refused_for_the_channel_and_for_login(pki, served):
    server = served(pki.config())

    async def line():
        untrusted_channel = await _refused(await _secure_client(pki, server.endpoint, "b", login="b"))
        untrusted_login = await _refused(await _secure_client(pki, server.endpoint, "a", login="b"))
        anonymous = await _refused(await _secure_client(pki, server.endpoint, "a"))
        return untrusted_channel, untrusted_login, anonymous

    untrusted_channel, untrusted_login, anonymous = asyncio.run(line())
    assert untrusted_channel.startswith("refused") and "Untrusted" in untrusted_channel
    assert untrusted_login.startswith("refused") and "AccessDenied" in untrusted_login
    assert anonymous.startswith("refused")  # anonymous access is off in this configuration


def test_a_no_security_client_is_refused_where_only_sign_and_encrypt_is_offered(pki, served, monkeypatch):
    server = served(pki.config(anonymous=True))

    assert asyncio.run(_refused(Client(server.endpoint))).startswith("refused")
    # a client that ignores the endpoints offered and asks for a session on the
    # NoSecurity channel every server keeps open for discovery
    monkeypatch.setattr(Client, "find_endpoint", staticmethod(lambda endpoints, mode, uri: endpoints[0]))
    said = asyncio.run(_refused(Client(server.endpoint)))
    assert said.startswith("refused") and "SecurityModeRejected" in said


def test_a_username_without_a_certificate_outside_the_loopback_is_refused_at_start(pki, tmp_path):
    station = LineData(tmp_path, parts=1).station()
    for config in (
        OpcUaConfig(host="0.0.0.0", port=free_port(), anonymous=False, username="plc", password="s3cret"),
        pki.config(host="0.0.0.0", username="plc", password="s3cret", security=("none", "sign_and_encrypt")),
    ):
        with pytest.raises(InspectorError, match="the password would travel in the clear"):
            OpcUaOutput(station, config).start(timeout=10)
    station.store.close()


def _opcua(tmp_path: Path, opcua: dict):
    return parse_config(
        {"recipes": "recipes", "source": {"kind": "trigger", "folder": "incoming"}, "opcua": opcua}, base=tmp_path
    ).opcua


def test_a_certificate_configuration_relative_to_the_file_defaults_to_sign_and_encrypt(pki, tmp_path):
    config = _opcua(
        pki.root,
        {"host": "0.0.0.0", "certificate": "server.pem", "private_key": "server.key", "trusted_clients": "trusted"},
    )
    assert config.certificate == pki.certificate and config.trusted_clients == pki.trusted_dir
    assert config.modes == ("sign_and_encrypt",) and config.anonymous is False
    assert _opcua(tmp_path, {}).modes == ("none",)


def _bad_files(root: Path, pki: Pki) -> None:
    root.mkdir(exist_ok=True)
    (root / "garbage.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
    (root / "huge.der").write_bytes(b"\0" * (65 * 1024))
    expired = _certificate(
        pki.keys["server"], "old", SERVER_URI, ExtendedKeyUsageOID.SERVER_AUTH, valid=(-9 * DAY, -DAY)
    )
    (root / "expired.pem").write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    (root / "locked.key").write_bytes(
        pki.keys["server"].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    (root / "ec.key").write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1())))
    (root / "empty").mkdir(exist_ok=True)


KEYS = {"certificate": "../server.pem", "private_key": "../server.key"}


@pytest.mark.parametrize(
    ("opcua", "said"),
    [
        ({"security": "sign_and_encrypt", **KEYS}, "opcua.security: must be a non-empty list of none, sign"),
        ({"security": ["tls"], **KEYS}, "opcua.security[0]: must be one of none, sign, sign_and_encrypt, got 'tls'"),
        ({"security": ["sign"]}, "opcua.security: sign and sign_and_encrypt need opcua.certificate"),
        ({"certificate": "../server.pem"}, "opcua.private_key: missing (required with opcua.certificate)"),
        ({"certificate": "nowhere.pem", "private_key": "../server.key"}, "opcua.certificate: "),
        ({"certificate": "garbage.pem", "private_key": "../server.key"}, "not a PEM or DER certificate"),
        ({"certificate": "huge.der", "private_key": "../server.key"}, "opcua.certificate: "),
        ({"certificate": "expired.pem", "private_key": "../server.key"}, "the certificate expired on"),
        ({"certificate": "../server.pem", "private_key": "locked.key"}, "opcua.private_key: "),
        ({"certificate": "../server.pem", "private_key": "ec.key"}, "needs an RSA key"),
        ({"certificate": "../server.pem", "private_key": "../a-key.pem"}, "opcua.private_key: is not the key of"),
        ({"trusted_clients": "../trusted"}, "opcua.trusted_clients: needs opcua.certificate"),
        ({"trusted_clients": "empty", **KEYS}, "no client certificates"),
        ({"trusted_clients": "../trusted", "security": ["none"], **KEYS}, "opcua.trusted_clients: needs"),
        ({"host": "0.0.0.0", "username": "plc", "password_env": "HOME"}, "the password would travel in the clear"),
        (
            {"host": "0.0.0.0", "username": "plc", "password_env": "HOME", "security": ["none", "sign"], **KEYS},
            "opcua: a username outside the loopback needs certificate",
        ),
        ({"host": "0.0.0.0", **KEYS}, "opcua: anonymous access is off"),
    ],
)
def test_bad_security_settings_are_named(pki, opcua, said):
    _bad_files(pki.root / "bad", pki)
    with pytest.raises(ConfigError) as raised:
        _opcua(pki.root / "bad", opcua)
    assert said in str(raised.value)
    if "huge" in str(opcua) or "locked" in str(opcua):
        assert ("too large" if "huge" in str(opcua) else "the key is encrypted") in str(raised.value)
