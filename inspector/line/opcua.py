"""The station as an OPC UA server (asyncua), shaped by OPC 40100-1 (Machine Vision).

Address space, in the namespace ``urn:inspector:line``, under ``Objects/VisionSystem``::

    VisionSystem
      StationName                      String
      VisionStateMachine
        CurrentState                   String  40100-1's state: Preoperational, Ready,
                                               SingleExecution, Error, Halted
        State                          String  Inspector's own: starting, ready, busy,
                                               result (awaits its ack), error, offline
        Reason                         String  why busy, in error, or offline
        StartSingleJob(TriggerId) -> (Accepted, ResultId, Reason)
      RecipeManagement
        Products                       String[]  the products that can be selected
        ActiveProduct                  String
        PrepareRecipe(Product) -> (Accepted, Reason)
        GetRecipeList() -> Products     looks at the recipes folder again
      ResultManagement
        LastResult                     ResultId, Verdict, DefectCount, AnomalyScore
                                       (NaN when the recipe is not taught), CreationTime,
                                       ImageName, Product, Error, TriggerId, ProcessingTime
        AcknowledgeResult(ResultId) -> (Accepted, Reason)
        PassCount, FailCount, ErrorCount, RefusedCount   UInt32
    ResultReadyEventType (a BaseEventType) from VisionSystem: the LastResult fields.

Where it differs from OPC 40100-1: there is no nodeset of the companion specification
(the names are its concepts in our own namespace, plain objects and variables, not its
types); recipes are selected by product name (``PrepareRecipe`` takes the product, not a
``RecipeIdExternalDataType``), and there is no separate job: the recipe that is prepared
is the one in use. ``StartSingleJob`` returns the result id at once (40100-1 reports it
only with the result); ``AcknowledgeResult`` is ours (40100-1 leaves the handshake to
the PLC). The result's verdict is text (PASS / FAIL / ERROR) rather than its
``ResultState`` number, and there is no ``ResultContent``.

Security: with the server's certificate and key configured, Basic256Sha256 endpoints that
sign, or sign and encrypt, every message (``security``; sign_and_encrypt by default); without
them only ``NoSecurity``, which outside the loopback refuses a username (its password would
travel in the clear). A client whose application certificate is not in ``trusted_clients``
(where that folder is given) cannot open a session, and a client may log in with a
certificate of that folder. A client of a ``NoSecurity`` channel is refused where no
``none`` endpoint is offered (asyncua keeps that channel open for discovery). Anonymous
access is allowed only where configured (by default only on the loopback); otherwise a
username and password (whose value comes from an environment variable) or a trusted
certificate are required.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import math
import threading
from collections.abc import Callable

from asyncua import Server, ua, uamethod
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_session import InternalSession
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from inspector.errors import InspectorError
from inspector.line.config import (
    OpcUaConfig,
    password_exposure,
    read_certificate,
    read_private_key,
    read_trusted_clients,
)
from inspector.line.messages import LineResult, Status
from inspector.line.station import Station

log = logging.getLogger(__name__)

NAMESPACE = "urn:inspector:line"

CURRENT_STATE = {  # Inspector's state -> OPC 40100-1's
    "starting": "Preoperational",
    "ready": "Ready",
    "busy": "SingleExecution",
    "result": "SingleExecution",
    "error": "Error",
    "offline": "Halted",
}

MAX_TEXT = 200  # a method's text argument (a trigger id, a product, a result id)


def _text_problem(name: str, args: tuple) -> str | None:
    """What is wrong with a method's arguments, if anything: one text of ``MAX_TEXT``
    characters at most (a client that sends a number, an array or nothing is refused)."""
    if len(args) != 1:
        return f"{name}: one argument expected, got {len(args)}"
    value = args[0]
    if not isinstance(value, str):
        return f"{name} must be text, got {type(value).__name__}"
    if len(value) > MAX_TEXT:
        return f"{name} is {len(value)} characters long ({MAX_TEXT} at most)"
    return None


def _same(given: str | None, expected: str | None) -> bool:
    """Equal, in a time that does not tell how much of ``given`` was right."""
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


RESULT_FIELDS = (
    ("ResultId", ua.VariantType.String),
    ("Verdict", ua.VariantType.String),
    ("DefectCount", ua.VariantType.UInt32),
    ("AnomalyScore", ua.VariantType.Double),
    ("CreationTime", ua.VariantType.DateTime),
    ("ImageName", ua.VariantType.String),
    ("Product", ua.VariantType.String),
    ("Error", ua.VariantType.String),
    ("TriggerId", ua.VariantType.String),
    ("ProcessingTime", ua.VariantType.Double),  # the pipeline's own time, ms
)


def _result_values(result: LineResult) -> dict[str, object]:
    return {
        "ResultId": result.id,
        "Verdict": result.verdict,
        "DefectCount": result.defects,
        "AnomalyScore": math.nan if result.anomaly_score is None else float(result.anomaly_score),
        "CreationTime": dt.datetime.fromisoformat(result.time),
        "ImageName": result.image,
        "Product": result.product,
        "Error": result.error or "",
        "TriggerId": result.trigger or "",
        "ProcessingTime": float(result.inspect_ms),
    }


def _argument(name: str, kind: ua.VariantType, *, array: bool = False) -> ua.Argument:
    """A method's argument, named, as a client's browser shows it."""
    argument = ua.Argument()
    argument.Name = name
    argument.DataType = ua.NodeId(kind.value)
    argument.ValueRank = 1 if array else -1
    argument.ArrayDimensions = [0] if array else []
    return argument


SECURITY_POLICIES = {
    "none": ua.SecurityPolicyType.NoSecurity,
    "sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "sign_and_encrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


class _Identity:
    """The server's certificate and key (DER) and the trusted clients' certificates by
    their SHA-256 fingerprint, read (and checked) once at start."""

    def __init__(self, config: OpcUaConfig) -> None:
        self.certificate = self.private_key = None
        self.application_uri: str | None = None
        if config.certificate is not None and config.private_key is not None:
            certificate = read_certificate(config.certificate)
            key = read_private_key(config.private_key)
            if certificate.public_key() != key.public_key():
                raise InspectorError(f"{config.private_key}: is not the key of {config.certificate}")
            self.certificate = certificate.public_bytes(serialization.Encoding.DER)
            self.private_key = key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            with contextlib.suppress(x509.ExtensionNotFound):  # clients check it against the certificate's
                names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                self.application_uri = next(iter(names.get_values_for_type(x509.UniformResourceIdentifier)), None)
        self.trusted: dict[str, x509.Certificate] = {}
        if config.trusted_clients is not None:
            for certificate in read_trusted_clients(config.trusted_clients):
                self.trusted[_fingerprint(certificate.public_bytes(serialization.Encoding.DER))] = certificate

    def trusted_client(self, der: bytes | None) -> x509.Certificate | None:
        """The trusted certificate these DER bytes are, if it is valid today."""
        certificate = self.trusted.get(_fingerprint(der)) if der else None
        now = dt.datetime.now(dt.timezone.utc)
        if certificate is None or not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            return None
        return certificate

    async def validate_client(self, certificate: x509.Certificate, _description) -> None:
        """A client's application certificate, when it opens a session."""
        if self.trusted_client(certificate.public_bytes(serialization.Encoding.DER)) is None:
            log.warning("OPC UA: refused a client certificate that is not trusted: %s", certificate.subject)
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)


class _Users:
    """Who may log in: the configured user, a trusted certificate, and, where allowed, anyone.

    asyncua passes the channel's client certificate as ``certificate`` for every token but
    a certificate token, whose own certificate it passes; anonymous tokens never get here
    where anonymous access is off (they are not among the server's identity tokens)."""

    def __init__(self, config: OpcUaConfig, identity: _Identity) -> None:
        self.config, self.identity = config, identity

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:
        if username is not None:
            if self.config.username is not None and _same(username, self.config.username) & _same(
                password, self.config.password
            ):
                return User(role=UserRole.User, name=username)
            return None
        trusted = self.identity.trusted_client(certificate) if self.identity.trusted else None
        if trusted is not None:
            return User(role=UserRole.User, name=_common_name(trusted))
        return User(role=UserRole.User) if self.config.anonymous else None


class _SecureChannelSession(InternalSession):
    """A session that is activated only over a signed channel. asyncua lets any client
    open a NoSecurity channel (for discovery) and would activate a session on it even where
    no ``none`` endpoint is offered; such a channel has no client certificate (None or
    empty)."""

    def activate_session(self, params, peer_certificate):
        if not peer_certificate:
            raise ServiceError(ua.StatusCodes.BadSecurityModeRejected)
        return super().activate_session(params, peer_certificate)


class OpcUaOutput:
    """Serves the station over OPC UA until :meth:`close`.

    Args:
        station: the running station.
        config: where to listen and who may connect.
        on_connection: told the server's state ("listening on ...", or why it cannot).
    """

    def __init__(
        self, station: Station, config: OpcUaConfig, *, on_connection: Callable[[str], None] | None = None
    ) -> None:
        self.station, self.config = station, config
        self.on_connection = on_connection or (lambda text: None)
        self.endpoint = f"opc.tcp://{config.host}:{config.port}/inspector/"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._ready = threading.Event()
        self._problem: str | None = None
        self._identity: _Identity | None = None  # read at start
        self._thread = threading.Thread(target=self._main, name="inspector-opcua", daemon=True)
        self.nodes: dict[str, object] = {}

    def start(self, timeout: float = 30.0) -> OpcUaOutput:
        """Serve; the certificate, key and trusted clients are read (and checked) first.

        Raises:
            InspectorError: a password that would travel in the clear, a certificate or key
                that cannot be used, or a server that does not start (each said).
        """
        exposure = password_exposure(self.config)
        if exposure is not None:
            raise InspectorError(f"OPC UA server at {self.endpoint}: {exposure}")
        try:
            self._identity = _Identity(self.config)
        except InspectorError as exc:
            raise InspectorError(f"OPC UA server at {self.endpoint}: {exc}") from None
        self._thread.start()
        if not self._ready.wait(timeout):
            raise InspectorError(f"OPC UA server at {self.endpoint}: did not start in {timeout:g} s")
        if self._problem is not None:
            raise InspectorError(f"OPC UA server at {self.endpoint}: {self._problem}")
        self.on_connection(f"listening on {self.endpoint}")
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # the port is taken, the address is not this machine's
            log.debug("OPC UA server failed", exc_info=True)
            self._problem = getattr(exc, "strerror", None) or str(exc) or repr(exc)
            self._ready.set()

    # -- the address space -----------------------------------------------------------------

    async def _build(self, server: Server) -> None:
        idx = await server.register_namespace(NAMESPACE)
        self.namespace = idx
        system = await server.nodes.objects.add_object(idx, "VisionSystem")
        await system.add_property(idx, "StationName", self.station.name)
        machine = await system.add_object(idx, "VisionStateMachine")
        recipes = await system.add_object(idx, "RecipeManagement")
        results = await system.add_object(idx, "ResultManagement")
        last = await results.add_object(idx, "LastResult")
        nodes = self.nodes
        nodes["CurrentState"] = await machine.add_variable(idx, "CurrentState", "Preoperational")
        nodes["State"] = await machine.add_variable(idx, "State", "starting")
        nodes["Reason"] = await machine.add_variable(idx, "Reason", "")
        nodes["Products"] = await recipes.add_variable(
            idx, "Products", ua.Variant([], ua.VariantType.String, is_array=True)
        )
        nodes["ActiveProduct"] = await recipes.add_variable(idx, "ActiveProduct", "")
        for name, kind in RESULT_FIELDS:
            default = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) if kind == ua.VariantType.DateTime else None
            nodes[name] = await last.add_variable(idx, name, ua.Variant(default or ua.get_default_value(kind), kind))
        for name in ("PassCount", "FailCount", "ErrorCount", "RefusedCount"):
            nodes[name] = await results.add_variable(idx, name, ua.Variant(0, ua.VariantType.UInt32))
        accepted, reason = _argument("Accepted", ua.VariantType.Boolean), _argument("Reason", ua.VariantType.String)
        await machine.add_method(
            idx,
            "StartSingleJob",
            self._trigger,
            [_argument("TriggerId", ua.VariantType.String)],
            [accepted, _argument("ResultId", ua.VariantType.String), reason],
        )
        await recipes.add_method(
            idx, "PrepareRecipe", self._select, [_argument("Product", ua.VariantType.String)], [accepted, reason]
        )
        await recipes.add_method(
            idx, "GetRecipeList", self._products, [], [_argument("Products", ua.VariantType.String, array=True)]
        )
        await results.add_method(
            idx,
            "AcknowledgeResult",
            self._acknowledge,
            [_argument("ResultId", ua.VariantType.String)],
            [accepted, reason],
        )
        event_type = await server.create_custom_event_type(idx, "ResultReadyEventType", properties=list(RESULT_FIELDS))
        self._events = await server.get_event_generator(event_type, system)

    # -- methods (on the server's loop) ------------------------------------------------------

    @uamethod
    async def _trigger(self, _parent, *args):
        problem = _text_problem("TriggerId", args)
        if problem is not None:
            return False, "", problem
        reply = self.station.trigger(args[0] or None)
        return reply.accepted, reply.result_id or "", reply.reason or ""

    @uamethod
    async def _select(self, _parent, *args):
        problem = _text_problem("Product", args)
        if problem is not None:
            return False, problem
        # opening a recipe's pipeline can take seconds: not on the server's loop
        reply = await asyncio.get_running_loop().run_in_executor(None, self.station.select, args[0])
        return reply.accepted, reply.reason or ""

    @uamethod
    async def _products(self, _parent):
        products = await asyncio.get_running_loop().run_in_executor(None, self.station.products)
        return ua.Variant(list(products), ua.VariantType.String, is_array=True)

    @uamethod
    async def _acknowledge(self, _parent, *args):
        problem = _text_problem("ResultId", args)
        if problem is not None:
            return False, problem
        reply = self.station.acknowledge(args[0] or None)
        return reply.accepted, reply.reason or ""

    # -- updates from the station's threads ---------------------------------------------------

    def _post(self, item) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the server is gone
                self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def _write(self, name: str, value, kind: ua.VariantType | None = None, *, array: bool = False) -> None:
        variant = ua.Variant(value, kind, is_array=array) if kind is not None else ua.Variant(value)
        await self.nodes[name].write_value(variant)

    async def _show_status(self, status: Status) -> None:
        await self._write("State", status.state)
        await self._write("CurrentState", CURRENT_STATE.get(status.state, "Error"))
        await self._write("Reason", status.reason or "")
        await self._write("ActiveProduct", status.product or "")
        await self._write("Products", list(status.products), ua.VariantType.String, array=True)
        for name, key in (("PassCount", "PASS"), ("FailCount", "FAIL"), ("ErrorCount", "ERROR")):
            await self._write(name, status.counts.get(key, 0), ua.VariantType.UInt32)
        await self._write("RefusedCount", status.counts.get("refused", 0), ua.VariantType.UInt32)

    async def _show_result(self, result: LineResult) -> None:
        values = _result_values(result)
        for name, kind in RESULT_FIELDS:
            await self._write(name, values[name], kind)
        for name, value in values.items():
            setattr(self._events.event, name, value)
        self._events.event.Severity = 500 if result.verdict != "PASS" else 100
        await self._events.trigger(message=f"result {result.id}: {result.verdict}")

    async def _secure(self, server: Server) -> None:
        """The endpoints' message security, the server's certificate, who may log in how."""
        config, identity = self.config, self._identity
        if identity.certificate is not None:
            await server.load_certificate(identity.certificate, format="der")
            await server.load_private_key(identity.private_key, format="der")
            if identity.application_uri:
                await server.set_application_uri(identity.application_uri)
        server.set_security_policy([SECURITY_POLICIES[mode] for mode in config.modes])
        tokens = [ua.UserNameIdentityToken] if config.username is not None else []
        tokens += [ua.X509IdentityToken] if identity.trusted else []
        tokens += [ua.AnonymousIdentityToken] if config.anonymous else []
        server.set_identity_tokens(tokens)
        if identity.trusted:
            server.set_certificate_validator(identity.validate_client)
        if "none" not in config.modes:
            iserver = server.iserver

            def create_session(name, user=None, external=False):
                user = user or User(role=UserRole.Anonymous)
                return _SecureChannelSession(
                    iserver, iserver.aspace, iserver.subscription_service, name, user=user, external=external
                )

            iserver.create_session = create_session

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        server = Server(user_manager=_Users(self.config, self._identity))
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"Inspector station {self.station.name}")
        await self._secure(server)
        await self._build(server)
        async with server:
            self.station.handshake.subscribe(
                result=lambda r: self._post(("result", r)), status=lambda s: self._post(("status", s))
            )
            self._ready.set()
            while True:
                item = await self._queue.get()
                if item is None:
                    break
                kind, value = item
                try:
                    await (self._show_result(value) if kind == "result" else self._show_status(value))
                except Exception:  # one bad value must not end the server
                    log.exception("OPC UA: showing a %s failed", kind)

    def close(self) -> None:
        """Show the last state (offline), then stop serving."""
        if self._thread.is_alive():
            self._post(("status", self.station.handshake.status()))
            self._post(None)
            self._thread.join(timeout=10)
