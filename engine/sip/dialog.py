"""A dialog as its UAC sees it (RFC 3261 section 12): identifiers, sequence numbers, the
remote target and the route set, and the requests sent inside it."""

from __future__ import annotations

from engine.sip import Request, Response


class Dialog:
    """What requests inside the dialog repeat (Route, Max-Forwards, From, To, Call-ID) is
    written once, as `head`."""

    __slots__ = (
        "call_id",
        "head",
        "local_seq",
        "local_tag",
        "local_uri",
        "remote_seq",
        "remote_tag",
        "remote_target",
        "remote_uri",
        "route_set",
    )

    def __init__(
        self,
        call_id: str,
        local_tag: str,
        remote_tag: str,
        local_uri: str,
        remote_uri: str,
        remote_target: str,
        route_set: list[str] | None = None,
        local_seq: int = 1,
        remote_seq: int | None = None,
    ):
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri  # our From header value, tag included
        self.remote_uri = remote_uri  # the To header value of the 2xx, tag included
        self.remote_target = remote_target  # the Contact URI of the 2xx (section 12.1.2)
        self.route_set = route_set or []
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        routes = "".join(f"Route: {route}\r\n" for route in self.route_set)
        self.head = (
            f"{routes}Max-Forwards: 70\r\nFrom: {local_uri}\r\nTo: {remote_uri}\r\n"
            f"Call-ID: {call_id}\r\n"
        )

    @classmethod
    def from_2xx(
        cls,
        call_id: str,
        local_tag: str,
        local_uri: str,
        local_seq: int,
        request_uri: str,
        response: Response,
    ) -> Dialog:
        """The dialog a 2xx to our INVITE makes: the INVITE's Call-ID, From tag, From value,
        CSeq number and Request-URI (kept by the caller, not parsed again), and the 2xx."""
        lines = response.lines("contact")
        if len(lines) == 1 and lines[0][:1] == "<":  # the usual one Contact, in angles
            # The parser has checked the value: the URI is all up to the first '>'.
            line = lines[0]
            target = line[1 : line.index(">")]
        else:
            contact = response.contact
            target = contact.uri if contact else request_uri
        routes = response.lines("record-route")
        return cls(
            call_id,
            local_tag,
            response.to_tag or "",
            local_uri,
            response.get("to") or "",
            target,
            # The UAC's route set is the Record-Route of the 2xx in reverse (12.1.2).
            [f"<{r.uri}>" for r in reversed(response.record_routes)] if routes else [],
            local_seq,
        )

    def matches(self, request: Request) -> bool:
        """Whether a request from the peer belongs here: Call-ID and both tags (12.2.2)."""
        return (
            request.call_id == self.call_id
            and request.to_tag == self.local_tag
            and request.from_tag == self.remote_tag
        )

    def next_seq(self) -> int:
        """The CSeq number of our next request in the dialog (section 12.2.1.1)."""
        self.local_seq += 1
        return self.local_seq

    def headers(self, method: str, seq: int | None = None) -> list[tuple[str, str]]:
        """Headers of a request inside the dialog (the Via is the sender's); a new CSeq unless
        `seq` is given (ACK)."""
        if seq is None:
            seq = self.next_seq()
        return [
            *(("Route", route) for route in self.route_set),
            ("Max-Forwards", "70"),
            ("From", self.local_uri),
            ("To", self.remote_uri),
            ("Call-ID", self.call_id),
            ("CSeq", f"{seq} {method}"),
        ]
