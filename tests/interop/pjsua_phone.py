"""A phone made of PJSIP (its Python binding, pjsua2), run as its own process so that its
threads and any crash stay out of pytest: `python -m tests.interop.pjsua_phone SETTINGS`.

SETTINGS is JSON: the Kamailio to register at (`host`, `port`, `transport`), the account
(`user`, `password`) and how the phone behaves:

- `answer`: "answer" (after `answer_after` seconds of ringing), "busy" (486), "ring" (rings
  until the caller gives up);
- `refer`: the status it answers a REFER with: 202 follows it (the phone calls the target
  itself, as real phones do), 603 refuses it;
- `hold`: put the call on hold (re-INVITE, `a=sendonly`) as soon as it is established.

It reports what happens as JSON lines on stdout (`{"event": ..., ...}`) and stops on `quit`
or the end of stdin. PJSIP's own log goes to the file `log` names.
"""

from __future__ import annotations

import json
import os
import re
import select
import sys
import time

import pjsua2 as pj

TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}


def say(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def header(message: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*?)\r?$", message, re.MULTILINE | re.IGNORECASE)
    return match.group(1) if match else ""


class Phone(pj.Account):
    def __init__(self, settings: dict):
        super().__init__()
        self.settings = settings
        self.calls: list[Call] = []  # pjsua2 objects live as long as Python holds them
        self.due: list[tuple[float, object]] = []  # (when, action): run by the main loop

    def onRegState(self, prm) -> None:
        say("registration", code=prm.code, reason=prm.reason, expires=prm.expiration)

    def onIncomingCall(self, prm) -> None:
        call = Call(self, prm.callId)
        self.calls.append(call)
        message = prm.rdata.wholeMsg
        info = call.getInfo()
        say(
            "incoming",
            call=prm.callId,
            remote=info.remoteUri,
            local=info.localUri,
            referred_by=header(message, "Referred-By"),
            request_uri=message.split(" ", 2)[1],
        )
        how = self.settings.get("answer", "answer")
        op = pj.CallOpParam()
        if how == "busy":
            op.statusCode = 486
            call.hangup(op)
            return
        op.statusCode = 180
        call.answer(op)
        if how == "answer":
            self.later(self.settings.get("answer_after", 0), call.answer_ok)

    def later(self, seconds: float, action) -> None:
        self.due.append((time.monotonic() + seconds, action))


class Call(pj.Call):
    def __init__(self, phone: Phone, call_id: int = pj.PJSUA_INVALID_ID, role: str = "callee"):
        super().__init__(phone, call_id)
        self.phone = phone
        self.role = role
        self.held = False

    def answer_ok(self) -> None:
        op = pj.CallOpParam()
        op.statusCode = 200
        try:
            self.answer(op)
        except pj.Error as error:  # the caller gave up meanwhile
            say("answer_failed", reason=error.info())

    def onCallState(self, prm) -> None:
        info = self.getInfo()
        say(
            "call_state",
            role=self.role,
            state=info.stateText,
            code=info.lastStatusCode,
            remote=info.remoteUri,
        )
        if (
            info.state == pj.PJSIP_INV_STATE_CONFIRMED
            and self.phone.settings.get("hold")
            and self.role == "callee"
            and not self.held
        ):
            self.held = True
            self.phone.later(0.2, self.hold)

    def hold(self) -> None:
        self.setHold(pj.CallOpParam(True))
        say("hold_sent")

    def onCallMediaState(self, prm) -> None:
        info = self.getInfo()
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO:
                say("media", role=self.role, status=media.status, dir=media.dir)

    def onCallTsxState(self, prm) -> None:
        """The answer to our hold re-INVITE, as it came (its SDP's direction)."""
        event = prm.e.body.tsxState
        tsx = event.tsx
        if (
            self.held
            and tsx.method == "INVITE"
            and tsx.role == pj.PJSIP_ROLE_UAC
            and tsx.statusCode == 200
            and event.type == pj.PJSIP_EVENT_RX_MSG
        ):
            message = event.src.rdata.wholeMsg
            say(
                "hold_answer",
                code=tsx.statusCode,
                directions=re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)", message, re.M),
                sdp=message.partition("\r\n\r\n")[2],
            )

    def onCallTransferRequest(self, prm) -> None:
        code = self.phone.settings.get("refer", 202)
        say("transfer_request", target=prm.dstUri, answered=code)
        prm.statusCode = code
        if code == 202:
            follow = Call(self.phone, role="transfer")
            self.phone.calls.append(follow)
            prm.newCall = follow

    def onCallTransferStatus(self, prm) -> None:
        say("transfer_status", code=prm.statusCode, reason=prm.reason, final=prm.finalNotify)


def main() -> None:
    settings = json.loads(sys.argv[1])
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0  # everything happens in libHandleEvents, in this thread
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.userAgent = f"interop-pjsua2/{endpoint.libVersion().full}"
    config.logConfig.level = 5
    config.logConfig.consoleLevel = 0  # stdout carries our JSON lines only
    config.logConfig.filename = settings["log"]
    config.medConfig.noVad = True
    endpoint.libInit(config)
    transport = pj.TransportConfig()
    transport.port = 0
    transport.boundAddress = "127.0.0.1"
    endpoint.transportCreate(TRANSPORTS[settings.get("transport", "udp")], transport)
    endpoint.libStart()
    endpoint.audDevManager().setNullDev()

    where = f"{settings['host']}:{settings['port']}"
    account = pj.AccountConfig()
    account.idUri = f"sip:{settings['user']}@{where}"
    account.regConfig.registrarUri = f"sip:{where};transport={settings.get('transport', 'udp')}"
    account.regConfig.timeoutSec = 300
    account.sipConfig.authCreds.append(
        pj.AuthCredInfo("digest", "*", settings["user"], 0, settings["password"])
    )
    account.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    account.mediaConfig.transportConfig.port = settings.get("rtp_port", 0)
    account.natConfig.contactRewriteUse = 0
    account.natConfig.viaRewriteUse = 0
    phone = Phone(settings)
    phone.create(account)
    say("started", version=endpoint.libVersion().full)

    while True:
        endpoint.libHandleEvents(20)
        now = time.monotonic()
        for item in [item for item in phone.due if item[0] <= now]:
            phone.due.remove(item)
            item[1]()
        if select.select([sys.stdin], [], [], 0)[0]:
            line = sys.stdin.readline()
            if not line or line.strip() == "quit":
                break
    endpoint.hangupAllCalls()
    for _ in range(25):
        endpoint.libHandleEvents(20)
    phone.shutdown()
    endpoint.libDestroy()
    say("stopped")
    os._exit(0)  # no pjsua2 destructors after libDestroy


if __name__ == "__main__":
    main()
