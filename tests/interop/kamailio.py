"""Kamailio as the tenant's PBX: registrar (usrloc in memory) and digest-authenticating proxy
that record-routes, so REFER and NOTIFY travel in dialog through it and the customer's phone
that follows our REFER calls the operator through it too.

It always listens on UDP (the phones, and the OPTIONS that says it is up); over TCP or TLS
it also listens on a port of that transport, where the tenant's SIP account (our engine) points,
and bridges the two (record-routing twice, one entry per side). For TLS it holds a certificate
for `localhost` signed by the test's CA (tests/kamailio.py makes both).

The credentials are plain text in an htable filled when Kamailio starts (no database): user
name -> password. REGISTER is challenged with 401, INVITE and in-dialog REFER from a known
user with 407. An extension that is known but not registered gets 480, an unknown one 404.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path

from tests.kamailio import TLS_CONFIG, Certificate

MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
REALM = "interop.test"

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:{udp_port}
alias=udp:127.0.0.1:{udp_port}
{stream}mpath="{modules}"
{tls}
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "htable.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 300)
modparam("htable", "htable", "users=>size=4;")

# The credentials, plain text: filled when the htable module starts.
event_route[htable:mod-init] {{
{users}
}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check("17895", "7")) {{
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "OK");  # what the test waits for at start
        exit;
    }}
    if (has_totag()) {{
        route(IN_DIALOG);
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    t_check_trans();  # a retransmission: answered again, and the script ends here
    if (is_method("REGISTER")) {{
        route(REGISTRAR);
        exit;
    }}
    if (is_method("INVITE")) {{
        xlog("L_NOTICE", "interop: $rm from $fU over $pr\n");
        if (!pv_proxy_authenticate("{realm}", "$sht(users=>$au)", "0")) {{
            proxy_challenge("{realm}", "0");
            exit;
        }}
        consume_credentials();
        record_route();
        if (!lookup("location")) {{
            if ($sht(users=>$rU) != $null) {{
                sl_send_reply("480", "Temporarily Unavailable");
            }} else {{
                sl_send_reply("404", "Not Found");
            }}
            exit;
        }}
        route(RELAY);
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}

route[IN_DIALOG] {{
    if (loose_route()) {{
        if (is_method("REFER") && $sht(users=>$fU) != $null) {{
            # the trunk's REFER is challenged like its INVITE
            if (!pv_proxy_authenticate("{realm}", "$sht(users=>$au)", "0")) {{
                xlog("L_NOTICE", "interop: $rm from $fU challenged\n");
                proxy_challenge("{realm}", "0");
                exit;
            }}
            xlog("L_NOTICE", "interop: $rm from $fU authenticated\n");
            consume_credentials();
        }}
        route(RELAY);
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    sl_send_reply("404", "Not Here");
}}

route[REGISTRAR] {{
    if ($sht(users=>$au) == $null || !pv_www_authenticate("{realm}", "$sht(users=>$au)", "0")) {{
        www_challenge("{realm}", "0");
        exit;
    }}
    consume_credentials();
    if (!save("location")) {{
        sl_reply_error();
    }}
}}

route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
}}
"""


#: What a TCP or TLS listener adds to the configuration (the trunk's side).
STREAM = """tcp_children=2
disable_tcp=no
listen={transport}:127.0.0.1:{port}
alias={transport}:127.0.0.1:{port}
alias={transport}:localhost:{port}
"""
TLS = """enable_tls=yes
loadmodule "tls.so"
modparam("tls", "config", "{tls_config}")
"""


def free_port(transport: str = "udp") -> int:
    """A port the kernel has just given out and taken back (free again at once)."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def version() -> str:
    first = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, check=True)
    return first.stdout.splitlines()[0].removeprefix("version: ").strip()


class Kamailio:
    """`kamailio -DD -E -f cfg` in the foreground, its configuration written into `directory`;
    `users` are the credentials it knows (user name -> password)."""

    def __init__(
        self,
        directory: Path,
        users: dict[str, str],
        transport: str = "udp",
        certificate: Certificate | None = None,
        ca_pem: str = "",
    ):
        """`certificate`: the server's, for TLS (tests/kamailio.py's `make_server_certificate`
        for `localhost`); `ca_pem`: the CA that signed it, which the tenant uploads."""
        self.transport = transport
        self.ca_pem = ca_pem if transport == "tls" else ""
        self.udp_port = free_port("udp")
        # The trunk's side: the host the SIP account names (the TLS certificate's name).
        self.host = "localhost" if transport == "tls" else "127.0.0.1"
        self.port = self.udp_port if transport == "udp" else free_port("tcp")
        self.directory = directory
        fill = "\n".join(
            f'    $sht(users=>{user}) = "{password}";' for user, password in users.items()
        )
        stream = tls = ""
        if transport != "udp":
            stream = STREAM.format(transport=transport, port=self.port)
        if transport == "tls":
            assert certificate is not None, "Kamailio over TLS needs its certificate"
            (directory / "server.pem").write_text(certificate.cert_pem)
            (directory / "server.key").write_text(certificate.key_pem)
            tls_config = directory / "tls.cfg"
            tls_config.write_text(
                TLS_CONFIG.format(key=directory / "server.key", cert=directory / "server.pem")
            )
            tls = TLS.format(tls_config=tls_config)
        self.config = directory / "kamailio.cfg"
        self.config.write_text(
            CONFIG.format(
                udp_port=self.udp_port,
                stream=stream,
                tls=tls,
                modules=MODULES,
                realm=REALM,
                users=fill,
            )
        )
        self.log_path = directory / "kamailio.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Kamailio:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it answers OPTIONS."""
        check = subprocess.run(
            ["kamailio", "-c", "-f", str(self.config)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr[-3000:]
        self.log = self.log_path.open("ab")  # a restart adds to it
        self.process = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(self.config), "-Y", str(self.directory)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self.answers_options():
            assert self.process.poll() is None, f"Kamailio exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"Kamailio silent:\n{self.output()}"

    def answers_options(self) -> bool:
        branch, call_id = uuid.uuid4().hex, uuid.uuid4().hex
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            request = (
                f"OPTIONS sip:127.0.0.1:{self.udp_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@127.0.0.1>;tag={branch[:8]}\r\n"
                f"To: <sip:127.0.0.1:{self.udp_port}>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            probe.settimeout(0.2)
            probe.sendto(request.encode(), ("127.0.0.1", self.udp_port))
            try:
                return probe.recv(4096).startswith(b"SIP/2.0 200")
            except OSError:  # nothing yet, or the port refused
                return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None:
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def logged(self, what: str) -> bool:
        """Whether the configuration's `xlog` said `what` ("interop: ..." lines)."""
        return f"interop: {what}" in self.log_path.read_text(errors="replace")
