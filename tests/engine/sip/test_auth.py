"""Digest answers checked against the worked examples of RFC 2617 and RFC 7616."""

import re

from engine.sip.auth import Credentials, DigestClient, choose
from engine.sip.message import parse_challenge


def fields(header: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="?([^",]*)"?', header.removeprefix("Digest ")))


def test_rfc_2617_md5_example():
    client = DigestClient(Credentials("Mufasa", "Circle Of Life"))
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    answer = fields(client.authorization(challenge, "GET", "/dir/index.html", cnonce="0a4f113b"))
    assert answer["response"] == "6629fae49393a05397450978507c4ef1"
    assert (answer["qop"], answer["nc"], answer["opaque"]) == (
        "auth",
        "00000001",
        "5ccc069c403ebaf9f0171e9517f40e41",
    )


def test_rfc_7616_sha256_and_md5_examples():
    client = DigestClient(Credentials("Mufasa", "Circle of Life"))
    common = (
        'realm="http-auth@example.org", qop="auth, auth-int", '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    sha = parse_challenge(f"Digest {common}, algorithm=SHA-256")
    md5 = parse_challenge(f"Digest {common}, algorithm=MD5")
    assert choose([md5, sha]) is sha  # SHA-256 preferred when both are offered
    answer = fields(client.authorization(sha, "GET", "/dir/index.html", cnonce=cnonce))
    assert answer["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert answer["algorithm"] == "SHA-256"
    client = DigestClient(Credentials("Mufasa", "Circle of Life"))
    answer = fields(client.authorization(md5, "GET", "/dir/index.html", cnonce=cnonce))
    assert answer["response"] == "8ca523f5e9506fed4657c9700eebdbec"


def test_nonce_count_rises_per_nonce_and_auth_username_is_used():
    client = DigestClient(Credentials("101", "pw", auth_username="tenant-101"))
    challenge = parse_challenge('Digest realm="pbx", nonce="n1", qop="auth"')
    first = fields(client.authorization(challenge, "INVITE", "sip:1@pbx"))
    second = fields(client.authorization(challenge, "INVITE", "sip:1@pbx"))
    assert (first["nc"], second["nc"]) == ("00000001", "00000002")
    assert first["username"] == "tenant-101"
    assert first["cnonce"] != second["cnonce"]


def test_without_qop_the_rfc_2069_form():
    client = DigestClient(Credentials("u", "p"))
    answer = fields(
        client.authorization(parse_challenge('Digest realm="r", nonce="n"'), "REGISTER", "sip:pbx")
    )
    assert "qop" not in answer and "nc" not in answer
    assert len(answer["response"]) == 32


def test_unknown_schemes_and_algorithms_are_not_chosen():
    assert choose([parse_challenge('Basic realm="x"')]) is None
    assert choose([parse_challenge('Digest realm="x", nonce="n", algorithm=SHA-512-256')]) is None
    lower = parse_challenge('Digest realm="x", nonce="n", algorithm=sha-256')
    assert choose([lower]) is lower


def test_only_the_current_nonces_count_is_kept():
    """A PBX may send a new nonce with every challenge: the client must not keep a count
    for each one it ever saw."""
    import pickle

    client = DigestClient(Credentials("101", "pw"))

    def nc(nonce: str) -> str:
        challenge = parse_challenge(f'Digest realm="pbx", nonce="{nonce}", qop="auth"')
        return fields(client.authorization(challenge, "INVITE", "sip:1@pbx"))["nc"]

    assert [nc("n0001"), nc("n0001"), nc("n0002"), nc("n0001")] == [
        "00000001",
        "00000002",
        "00000001",
        "00000001",  # n0001 was forgotten for n0002
    ]
    size = len(pickle.dumps(client))
    for number in range(1000):
        nc(f"n{number:04d}")
    assert len(pickle.dumps(client)) == size
