"""Digest authentication of our requests (RFC 3261 section 22, RFC 7616, RFC 8760).

HA1 = H(username:realm:password); HA2 = H(method:digest-uri); with qop=auth the response is
H(HA1:nonce:nc:cnonce:qop:HA2), without qop H(HA1:nonce:HA2). SHA-256 is preferred when the
PBX offers it beside MD5. Whether to answer a challenge at all is the user agent's decision
(only for our own transaction, from the configured PBX, for the expected realm): see ua.py.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from engine.sip.message import Challenge

#: Algorithms we answer, best first; "-sess" variants hash the nonces into HA1.
ALGORITHMS = {
    "SHA-256": hashlib.sha256,
    "SHA-256-sess": hashlib.sha256,
    "MD5": hashlib.md5,
    "MD5-sess": hashlib.md5,
}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    auth_username: str | None = None  # when the PBX wants another name for auth than for SIP
    realm: str | None = None  # when set, a challenge for any other realm is not answered

    @property
    def login(self) -> str:
        return self.auth_username or self.username


_BY_UPPER = {name.upper(): name for name in ALGORITHMS}


def algorithm_of(challenge: Challenge) -> str | None:
    """The challenge's algorithm as we spell it, or None when we do not know it."""
    return _BY_UPPER.get(challenge.algorithm.upper())


def choose(challenges: list[Challenge]) -> Challenge | None:
    """The challenge to answer: Digest, with the best algorithm we know."""
    usable = [c for c in challenges if c.scheme.lower() == "digest" and algorithm_of(c)]
    ranking = list(ALGORITHMS)
    usable.sort(key=lambda c: ranking.index(algorithm_of(c) or ""))
    return usable[0] if usable else None


def digest_response(
    algorithm: str,
    login: str,
    realm: str,
    password: str,
    nonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The `response` of a digest answer; the PBX side (engine/sim/pbx.py) checks with it."""
    digest = ALGORITHMS[algorithm]

    def h(text: str | bytes) -> str:
        return digest(text if isinstance(text, bytes) else text.encode()).hexdigest()

    ha1 = h(f"{login}:{realm}:{password}")
    if algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}:{h(body)}") if qop == "auth-int" else h(f"{method}:{uri}")
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return h(f"{ha1}:{nonce}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class DigestClient:
    """Answers challenges for one account, counting nonce uses (nc) as RFC 7616 wants.

    Only the current nonce's count is kept: a PBX sends a new nonce whenever it likes (every
    challenge, for some), and an answer is only ever owed to the newest; a count per nonce
    would grow for as long as the account is used. A nonce seen again after another starts
    from 1 (the PBX has long let it go stale)."""

    credentials: Credentials
    _nonce: str | None = None
    _count: int = 0

    def authorization(
        self,
        challenge: Challenge,
        method: str,
        uri: str,
        body: bytes = b"",
        cnonce: str | None = None,
    ) -> str:
        """The value of an Authorization or Proxy-Authorization header answering `challenge`
        (`cnonce` is drawn at random unless given)."""
        algorithm = algorithm_of(challenge)
        assert algorithm is not None, "an algorithm we know: `choose` picked the challenge"
        realm = challenge.realm or ""
        nonce = challenge.params.get("nonce", "")
        qops = [q.strip() for q in challenge.params.get("qop", "").split(",") if q.strip()]
        qop = "auth" if "auth" in qops else ("auth-int" if "auth-int" in qops else None)
        cnonce = cnonce or secrets.token_hex(8)
        parts = [
            f"username={_quote(self.credentials.login)}",
            f"realm={_quote(realm)}",
            f"nonce={_quote(nonce)}",
            f"uri={_quote(uri)}",
        ]
        nc = ""
        if qop:
            if nonce != self._nonce:
                self._nonce, self._count = nonce, 0
            self._count += 1
            nc = f"{self._count:08x}"
        response = digest_response(
            algorithm,
            self.credentials.login,
            realm,
            self.credentials.password,
            nonce,
            method,
            uri,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            body=body,
        )
        parts.append(f"response={_quote(response)}")
        if qop:
            parts += [f"qop={qop}", f"nc={nc}", f"cnonce={_quote(cnonce)}"]
        parts.append(f"algorithm={algorithm}")
        if "opaque" in challenge.params:
            parts.append(f"opaque={_quote(challenge.params['opaque'])}")
        return "Digest " + ", ".join(parts)
