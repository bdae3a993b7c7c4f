"""Kamailio as a real TLS peer in tests, and the certificates it needs.

Kamailio (Debian's `kamailio` with `kamailio-tls-modules`, which `./dev test` installs) runs
as a subprocess with a configuration written into the test's tmp dir, bound to 127.0.0.1 on
free ports: a stateful proxy that takes SIP over TLS and relays it over UDP to a SIPp that
plays the PBX (Debian's SIPp has no TLS), recording the route so that what SIPp sends back
in the dialog comes to us over our TLS connection. The CA and the server certificate are
made here with the `cryptography` package.
"""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Certificate:
    cert_pem: str
    key_pem: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "AutoCall test CA") -> Certificate:
    """A self-signed CA, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pems(cert, key)


def make_server_certificate(ca: Certificate, host_name: str) -> Certificate:
    """A server certificate for `host_name` signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return _pems(cert, key)


def _pems(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Certificate:
    return Certificate(
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        cert,
        key,
    )


CONFIG = """#!KAMAILIO
# A TLS front for the tests: everything from TLS goes over UDP to the PBX (SIPp).
debug=2
log_stderror=yes
children=2
tcp_children=2
disable_tcp=no
enable_tls=yes
auto_aliases=no
alias="{host_name}"
listen=udp:127.0.0.1:{udp_port}
listen=tls:127.0.0.1:{tls_port}
mpath="{modules}"

loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "textops.so"

modparam("tls", "config", "{tls_config}")
modparam("rr", "enable_double_rr", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    xlog("L_INFO", "KAMAILIO $rm over $pr from $si:$sp\\n");
    if (has_totag()) {{
        # In the dialog: by the route set when there is one, else to the Request-URI (the
        # tests' PBX does not copy Record-Route into its answers).
        loose_route();
        t_relay();
        exit;
    }}
    if (is_method("CANCEL")) {{
        t_relay();
        exit;
    }}
    if ($pr == "tls") {{
        if (is_method("INVITE|SUBSCRIBE|REFER")) {{
            record_route();
        }}
        $du = "sip:127.0.0.1:{pbx_port};transport=udp";
        t_relay();
        exit;
    }}
    sl_send_reply("403", "Only from TLS");
}}
"""

TLS_CONFIG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {key}
certificate = {cert}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


class Kamailio:
    """One Kamailio process: TLS on `tls_port` (certificate `server`), relaying to the PBX
    at 127.0.0.1:`pbx_port` over UDP."""

    def __init__(self, workdir: Path, server: Certificate, pbx_port: int, host_name: str):
        binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
        assert Path(binary).exists(), "Kamailio is not installed: ./dev test installs it"
        assert (MODULES / "tls.so").exists(), "kamailio-tls-modules is not installed"
        self.workdir = workdir
        self.tls_port = free_tcp_port()
        udp_port = free_tcp_port()
        (workdir / "server.pem").write_text(server.cert_pem)
        (workdir / "server.key").write_text(server.key_pem)
        tls_config = workdir / "tls.cfg"
        tls_config.write_text(
            TLS_CONFIG.format(key=workdir / "server.key", cert=workdir / "server.pem")
        )
        config = workdir / "kamailio.cfg"
        config.write_text(
            CONFIG.format(
                host_name=host_name,
                udp_port=udp_port,
                tls_port=self.tls_port,
                modules=MODULES,
                tls_config=tls_config,
                pbx_port=pbx_port,
            )
        )
        self.log_path = workdir / "kamailio.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                "-f",
                str(config),
                "-DD",
                "-E",
                "-m",
                "64",
                "-M",
                "8",
                "-w",
                str(workdir),
                "-Y",
                str(workdir),
                "-P",
                str(workdir / "kamailio.pid"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"Kamailio did not start: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
