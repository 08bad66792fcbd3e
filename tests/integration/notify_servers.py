"""Receivers for the notification tests, all on loopback and started by the
test: a throwaway CA and server certificate (cryptography), an SMTP relay
with STARTTLS and AUTH (aiosmtpd), an HTTPS webhook receiver that verifies
the HMAC signature and timestamp, and an HTTPS Web Push service that checks
the VAPID JWT (ES256, aud = its origin) and decrypts the aes128gcm body
(http_ece) with the subscriber's private key. Each records what it got."""
import base64
import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import ssl
import threading
import time
from email import message_from_bytes

import http_ece
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

SMTP_USER = "docket-relay"
SMTP_PASSWORD = "relay secret 42"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- certificates ---------------------------------------------------------

def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it.
    Returns (ca_path, cert_path, key_path)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Docket test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    ca_path = directory / "ca.pem"
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def server_context(cert_path, key_path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


# ---- SMTP -----------------------------------------------------------------

class SmtpRelay:
    """aiosmtpd with STARTTLS required before AUTH (PLAIN/LOGIN) and mail."""

    def __init__(self, cert_path, key_path):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages = []  # (envelope rcpt list, email.message.Message)
        self.lock = threading.Lock()
        relay = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with relay.lock:
                    relay.messages.append((list(envelope.rcpt_tos),
                                           message_from_bytes(envelope.original_content)))
                return "250 OK queued"

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (getattr(auth_data, "login", None) == SMTP_USER.encode()
                  and getattr(auth_data, "password", None) == SMTP_PASSWORD.encode())
            return AuthResult(success=ok)

        from conftest import free_port
        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port,
            tls_context=server_context(cert_path, key_path), require_starttls=True,
            authenticator=authenticate, auth_required=True, auth_require_tls=True)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def message_ids(self):
        with self.lock:
            return [message["Message-ID"] for _, message in self.messages]


# ---- HTTPS receivers --------------------------------------------------------

class HttpsReceiver:
    """A threading HTTPS server; `handle(path, headers, body)` returns a status."""

    def __init__(self, cert_path, key_path, handle):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status = receiver.handle(self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.handle = handle
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = server_context(cert_path, key_path)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.origin = "https://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class WebhookReceiver(HttpsReceiver):
    """Verifies Docket-Signature (v1=HMAC-SHA256(secret, "<ts>.<body>")) and
    that Docket-Timestamp is within 5 minutes; answers `status` (settable)."""

    def __init__(self, cert_path, key_path):
        super().__init__(cert_path, key_path, self._handle)
        self.secret = None
        self.status = 200
        self.deliveries = []  # (delivery header, parsed body, answered status)
        self.rejected = []    # reasons for requests that failed verification
        self.lock = threading.Lock()

    def _handle(self, path, headers, body):
        timestamp = headers.get("Docket-Timestamp", "")
        signature = headers.get("Docket-Signature", "")
        expected = "v1=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
        with self.lock:
            if not hmac.compare_digest(expected, signature):
                self.rejected.append("bad signature %r" % signature)
                return 401
            if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
                self.rejected.append("stale timestamp %r" % timestamp)
                return 401
            status = self.status
            self.deliveries.append((headers.get("Docket-Delivery"), json.loads(body), status))
            return status


class PushService(HttpsReceiver):
    """A push service: POST /push/<name> for subscriptions made with
    `subscribe(name)`. Checks the VAPID JWT and decrypts the payload."""

    def __init__(self, cert_path, key_path):
        super().__init__(cert_path, key_path, self._handle)
        self.vapid_key = None  # base64url applicationServerKey (GET /api/v1/push/vapid)
        self.subscribers = {}  # name -> (private key, auth secret)
        self.received = []     # (name, headers dict, decrypted payload dict)
        self.rejected = []
        self.status = 201
        self.lock = threading.Lock()

    def subscribe(self, name):
        private = ec.generate_private_key(ec.SECP256R1())
        auth = bytes(range(16))
        self.subscribers[name] = (private, auth)
        public = private.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": "%s/push/%s" % (self.origin, name),
                "keys": {"p256dh": b64url(public), "auth": b64url(auth)}}

    def _check_vapid(self, authorization):
        scheme, _, params = authorization.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        if scheme != "vapid" or fields.get("k") != self.vapid_key:
            return "vapid scheme or key k=%r" % fields.get("k")
        header, claims, signature = fields["t"].split(".")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                              b64url_decode(self.vapid_key))
        raw = b64url_decode(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                   int.from_bytes(raw[32:], "big"))
        public.verify(der, (header + "." + claims).encode(), ec.ECDSA(hashes.SHA256()))
        if json.loads(b64url_decode(header)) .get("alg") != "ES256":
            return "alg"
        body = json.loads(b64url_decode(claims))
        if body.get("aud") != self.origin or body.get("exp", 0) <= time.time():
            return "aud/exp %r" % body
        return None

    def _handle(self, path, headers, body):
        name = path.rsplit("/", 1)[-1]
        with self.lock:
            if name not in self.subscribers:
                return 404
            try:
                problem = self._check_vapid(headers.get("Authorization", ""))
            except Exception as error:  # a bad signature raises
                problem = "vapid: %r" % error
            if problem is None and headers.get("Content-Encoding") != "aes128gcm":
                problem = "content-encoding"
            if problem is not None:
                self.rejected.append(problem)
                return 403
            private, auth = self.subscribers[name]
            payload = http_ece.decrypt(body, private_key=private, auth_secret=auth,
                                       version="aes128gcm")
            self.received.append((name, dict(headers), json.loads(payload)))
            return self.status
