"""A dialog as its UAC sees it (RFC 3261 section 12): identifiers, sequence numbers, the
remote target and the route set, and the requests sent inside it."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.sip import Request, Response
from engine.sip.message import parse_address


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From header value, tag included
    remote_uri: str  # the To header value of the 2xx, tag included
    remote_target: str  # the Contact URI of the 2xx (section 12.1.2)
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 1
    remote_seq: int | None = None

    @classmethod
    def from_2xx(cls, call_id: str, local_tag: str, local_uri: str, local_seq: int,
                 request_uri: str, response: Response) -> Dialog:  # fmt: skip
        """The dialog a 2xx to our INVITE makes: the INVITE's Call-ID, From tag, From value,
        CSeq number and Request-URI (kept by the caller, not parsed again), and the 2xx."""
        lines = response.lines("contact")
        if len(lines) == 1 and "," not in lines[0] and lines[0] != "*":  # the usual one Contact
            contact = parse_address(lines[0])
        else:
            contact = response.contact
        return cls(
            call_id=call_id,
            local_tag=local_tag,
            remote_tag=response.to_tag or "",
            local_uri=local_uri,
            remote_uri=response.get("to"),
            remote_target=contact.uri if contact else request_uri,
            # The UAC's route set is the Record-Route of the 2xx in reverse (12.1.2).
            route_set=[f"<{r.uri}>" for r in reversed(response.record_routes)],
            local_seq=local_seq,
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
