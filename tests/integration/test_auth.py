"""docs/configuration.md, "JWT", and docs/protocol.md, "The token" and "The account
object": JWT checks (claims, leeway, iss/aud, algorithms, RS/ES keys), the identity
they yield, token expiry while connected (4001), and signal-token."""

import json
import os
import subprocess
import time

import pytest

from harness import (SECRET, T, b64url, b64url_json, claims_for, join, jwt_decode_unverified, make_jwt,
                     new_account, new_room, run_signal_token, token)
from wsclient import HandshakeError


def connects(node, room, tok):
    """True if tok opens room (welcome received), False on 401; anything else fails."""
    try:
        c = node.ws(node.route(room, f"tk={tok}"))
    except HandshakeError as e:
        assert e.status == 401, e.response
        assert e.body == b"Unauthorized"
        return False
    w = c.recv_json(T)
    assert w["type"] == "webrtc", w
    c.close()
    return True


# -- claims and leeway on the default node (HS256, leeway 60 s) ----------------

@pytest.mark.parametrize("case,ok", [
    ("exp-30s-ago", True),      # inside the 60 s leeway
    ("exp-120s-ago", False),
    ("nbf-past", True),
    ("nbf-in-30s", True),       # inside the leeway
    ("nbf-in-300s", False),
    ("no-exp", False),
    ("no-sub", False),
    ("sub-empty", False),
    ("sub-number", False),
    ("exp-string", False),
    ("aud-unchecked", True),    # no SIGNAL_JWT_AUDIENCE: aud is not checked
    ("iss-unchecked", True),
    ("header-without-typ", True),
    ("header-with-kid", True),
    ("extra-claims", True),
])
def test_claims(node, case, ok):
    room = new_room()
    sub = new_account()
    now = int(time.time())
    c = claims_for(sub, [room])
    header = None
    if case == "exp-30s-ago":
        c["exp"] = now - 30
    elif case == "exp-120s-ago":
        c["exp"] = now - 120
    elif case == "nbf-past":
        c["nbf"] = now - 100
    elif case == "nbf-in-30s":
        c["nbf"] = now + 30
    elif case == "nbf-in-300s":
        c["nbf"] = now + 300
    elif case == "no-exp":
        del c["exp"]
    elif case == "no-sub":
        del c["sub"]
    elif case == "sub-empty":
        c["sub"] = ""
    elif case == "sub-number":
        c["sub"] = 12345
    elif case == "exp-string":
        c["exp"] = str(now + 3600)
    elif case == "aud-unchecked":
        c["aud"] = "some-audience"
    elif case == "iss-unchecked":
        c["iss"] = "some-issuer"
    elif case == "header-without-typ":
        header = {"alg": "HS256"}
    elif case == "header-with-kid":
        header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    elif case == "extra-claims":
        c.update({"iat": now, "jti": "x", "roles": ["a"], "custom": {"n": 1}})
    assert connects(node, room, make_jwt(c, header=header)) is ok


def test_tampered_payload_401(node):
    room = new_room()
    tok = token(new_account(), [new_room()])
    h, _, s = tok.split(".")
    forged = b64url_json(claims_for(new_account(), [room]))  # same signature, other claims
    assert not connects(node, room, f"{h}.{forged}.{s}")


@pytest.mark.parametrize("variant", ["none", "None", "NONE", "none-with-sig", "no-alg", "alg-null"])
def test_alg_none_refused(node, variant):
    room = new_room()
    c = claims_for(new_account(), [room])
    if variant in ("none", "None", "NONE"):
        tok = f"{b64url_json({'alg': variant, 'typ': 'JWT'})}.{b64url_json(c)}."
    elif variant == "none-with-sig":
        real = make_jwt(c)
        tok = f"{b64url_json({'alg': 'none'})}.{b64url_json(c)}.{real.split('.')[2]}"
    elif variant == "no-alg":
        tok = make_jwt(c, header={"typ": "JWT"})
    else:
        tok = make_jwt(c, header={"alg": None, "typ": "JWT"})
    assert not connects(node, room, tok)


def test_account_from_claims(node):
    room = new_room()
    a = join(node, room, new_account("a"), name="Anna", nick="nn", profile={"k": [1, 2]}, updated_at="2020-02-02T02:02:02Z")
    b = join(node, room, new_account("b"))
    a.expect_joined(b)
    a.send("offer", {})
    assert b.expect_signal("offer", a)["senderInfo"] == {
        "id": a.sub, "name": "Anna", "nick": "nn", "profile": {"k": [1, 2]}, "updatedAt": "2020-02-02T02:02:02Z"}
    # no name/nick/profile/updated_at at all
    c = join(node, room, new_account("c"), name=None)
    a.expect_joined(c)
    b.expect_joined(c)
    c.send("offer", {})
    assert a.expect_signal("offer", c)["senderInfo"] == {"id": c.sub, "name": None, "nick": None, "profile": {},
                                                         "updatedAt": None}


def test_token_rooms_case_insensitive(node):
    room = new_room()
    m = join(node, room, rooms=[new_room(), room.upper()])
    assert m.welcome["data"]["roomId"] == room


# -- a node with iss/aud configured --------------------------------------------

@pytest.fixture(scope="module")
def iss_aud_node(module_nodes):
    return module_nodes.start({"SIGNAL_JWT_ISSUER": "https://issuer.test", "SIGNAL_JWT_AUDIENCE": "signal"})


@pytest.mark.parametrize("iss,aud,ok", [
    ("https://issuer.test", "signal", True),
    ("https://issuer.test", ["other", "signal"], True),
    ("https://issuer.test", None, False),
    (None, "signal", False),
    ("https://evil.test", "signal", False),
    ("https://issuer.test", "other", False),
    ("https://issuer.test", ["other", "more"], False),
    ("https://issuer.test/", "signal", False),
])
def test_issuer_audience(iss_aud_node, iss, aud, ok):
    room = new_room()
    extra = {}
    if iss is not None:
        extra["iss"] = iss
    if aud is not None:
        extra["aud"] = aud
    assert connects(iss_aud_node, room, make_jwt(claims_for(new_account(), [room], **extra))) is ok


# -- other HMAC sizes ----------------------------------------------------------

def test_hs512_node_accepts_only_hs512(nodes):
    n = nodes.start({"SIGNAL_JWT_ALG": "HS512"})
    room = new_room()
    c = claims_for(new_account(), [room])
    assert connects(n, room, make_jwt(c, alg="HS512"))
    assert not connects(n, room, make_jwt(c, alg="HS256"))
    assert not connects(n, room, make_jwt(c, alg="HS384"))
    assert not connects(n, room, make_jwt(c, alg="HS512", key="other"))


def test_secret_is_raw_bytes(nodes):
    """The secret is used as given (not base64-decoded)."""
    secret = "c2VjcmV0LWJ1dC1sb29rcy1saWtlLWJhc2U2NA=="
    n = nodes.start({"SIGNAL_JWT_SECRET": secret})
    room = new_room()
    assert connects(n, room, make_jwt(claims_for(new_account(), [room]), key=secret))


# -- token expiry while connected ------------------------------------------------

def test_token_expiry_closes_4001(nodes):
    n = nodes.start({"SIGNAL_JWT_LEEWAY_S": "0"})
    room = new_room()
    # with leeway 0 an expired token is refused at once
    assert not connects(n, room, make_jwt(claims_for(new_account(), [room], exp_in=-2)))
    stay = join(n, room, new_account("stay"))
    c = claims_for(new_account("short"), [room], exp_in=None)
    c["exp"] = exp = int(time.time()) + 2
    short = join(n, room, c["sub"], claims=c)
    stay.expect_joined(short)
    short.send("offer", {"alive": True})
    stay.expect_signal("offer", short)
    info = short.c.recv_close(timeout=15)
    assert info.code == 4001, info
    assert info.messages == [], info
    assert time.time() >= exp - 1, "closed before the token expired"
    stay.expect_left(short)
    # the member with a long token is not affected
    other = join(n, room)
    stay.expect_joined(other)
    other.send("offer", {})
    stay.expect_signal("offer", other)


# -- RS256 / ES256 ----------------------------------------------------------------

def _openssl(*args, input=None):
    p = subprocess.run(["openssl", *args], input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, f"openssl {args}: {p.stderr.decode()}"
    return p.stdout


@pytest.fixture(scope="module")
def keys(tmp_base):
    d = os.path.join(tmp_base, "keys")
    os.makedirs(d, exist_ok=True)
    k = {}
    for name, opts in (("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("rsa2", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                       ("ec2", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                       ("ec384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"])):
        priv = os.path.join(d, f"{name}.pem")
        pub = os.path.join(d, f"{name}.pub.pem")
        _openssl("genpkey", *opts, "-out", priv)
        _openssl("pkey", "-in", priv, "-pubout", "-out", pub)
        k[name] = (priv, pub)
    cert = os.path.join(d, "rsa.cert.pem")
    _openssl("req", "-x509", "-new", "-key", k["rsa"][0], "-subj", "/CN=signal-test", "-days", "2", "-out", cert)
    k["rsa-cert"] = (k["rsa"][0], cert)
    return k


def _der_to_raw(der, size):
    """ECDSA-Sig-Value (DER) -> r || s, each size bytes (JWS form)."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(size, b"\0")
        i += 2 + n
    return out


def openssl_jwt(claims, alg, priv, header=None):
    hdr = header or {"alg": alg, "typ": "JWT"}
    signing_input = f"{b64url_json(hdr)}.{b64url_json(claims)}".encode()
    digest = {"256": "-sha256", "384": "-sha384", "512": "-sha512"}[alg[2:]]
    sig = _openssl("dgst", digest, "-sign", priv, input=signing_input)
    if alg.startswith("ES"):
        sig = _der_to_raw(sig, {"256": 32, "384": 48, "512": 66}[alg[2:]])
    return f"{signing_input.decode()}.{b64url(sig)}"


def mint(minter, alg, priv, claims):
    if minter == "openssl":
        return openssl_jwt(claims, alg, priv)
    args = ["--alg", alg, "--key", priv, "--sub", claims["sub"], "--rooms", ",".join(claims["rooms"]),
            "--exp", str(claims["exp"])]
    if claims.get("name") is not None:
        args += ["--name", claims["name"]]
    return run_signal_token(*args)


@pytest.mark.parametrize("minter", ["openssl", "signal-token"])
@pytest.mark.parametrize("alg,keyname", [("RS256", "rsa"), ("ES256", "ec"), ("RS256", "rsa-cert")])
def test_asymmetric_end_to_end(nodes, keys, minter, alg, keyname):
    priv, pub = keys[keyname]
    n = nodes.start({"SIGNAL_JWT_ALG": alg, "SIGNAL_JWT_KEY_FILE": pub})
    room = new_room()
    ca = claims_for(new_account("a"), [room])
    cb = claims_for(new_account("b"), [room])
    a = n.connect(room, mint(minter, alg, priv, ca))
    wa = a.recv_json(T)
    assert wa["data"]["userId"] == ca["sub"]
    b = n.connect(room, mint(minter, alg, priv, cb), via="bearer")
    wb = b.recv_json(T)
    assert [p["accountId"] for p in wb["data"]["participants"]] == [ca["sub"]]
    assert a.recv_json(T)["data"]["type"] == "user-joined"
    b.send_json({"type": "offer", "data": {"alg": alg}})
    got = a.recv_json(T)["data"]
    assert got["type"] == "offer" and got["data"] == {"alg": alg} and got["senderAccountId"] == cb["sub"]


@pytest.mark.parametrize("alg,keyname,other", [("RS256", "rsa", "rsa2"), ("ES256", "ec", "ec2")])
def test_asymmetric_refusals(nodes, keys, alg, keyname, other):
    priv, pub = keys[keyname]
    n = nodes.start({"SIGNAL_JWT_ALG": alg, "SIGNAL_JWT_KEY_FILE": pub})
    room = new_room()
    c = claims_for(new_account(), [room])
    assert connects(n, room, openssl_jwt(c, alg, priv))
    # signed by another key of the same kind
    assert not connects(n, room, openssl_jwt(c, alg, keys[other][0]))
    # alg confusion: HS256 keyed with the public key file
    with open(pub, "rb") as f:
        pem = f.read()
    assert not connects(n, room, make_jwt(c, key=pem, alg="HS256"))
    assert not connects(n, room, make_jwt(c, key=pem.strip(), alg="HS256"))
    assert not connects(n, room, make_jwt(c, key=SECRET, alg="HS256"))
    # the other asymmetric family, and other sizes of the same family
    wrong = "ES256" if alg == "RS256" else "RS256"
    assert not connects(n, room, openssl_jwt(c, wrong, keys["ec" if wrong == "ES256" else "rsa"][0]))
    if alg == "RS256":
        assert not connects(n, room, openssl_jwt(c, "RS512", priv))
    else:
        assert not connects(n, room, openssl_jwt(c, "ES384", keys["ec384"][0]))
    # alg none, right claims
    assert not connects(n, room, f"{b64url_json({'alg': 'none'})}.{b64url_json(c)}.")
    # signature of a real token, header says HS256
    real = openssl_jwt(c, alg, priv)
    h2 = b64url_json({"alg": "HS256", "typ": "JWT"})
    assert not connects(n, room, f"{h2}.{real.split('.', 1)[1]}")


# -- signal-token -------------------------------------------------------------------

def test_signal_token_hs256(node):
    room = new_room()
    other = new_room()
    sub = new_account("tool")
    tok = run_signal_token("--secret", SECRET, "--sub", sub, "--name", "Tool User", "--nick", "tooly",
                           "--rooms", f"{other},{room}", "--ttl", "600", "--profile", '{"avatar":"t.png"}',
                           "--updated-at", "2024-01-01T00:00:00Z")
    a = node.connect(room, tok)
    w = a.recv_json(T)
    assert w["data"]["userId"] == sub
    b = join(node, room)
    assert b.welcome["data"]["participants"] == [{
        "identity": "Tool User", "name": "tooly", "accountId": sub,
        "account": {"id": sub, "name": "Tool User", "nick": "tooly", "profile": {"avatar": "t.png"},
                    "updatedAt": "2024-01-01T00:00:00Z"},
        "joinedAt": b.welcome["data"]["participants"][0]["joinedAt"]}]
    # wrong secret: refused
    bad = run_signal_token("--secret", "other-secret", "--sub", sub, "--rooms", room, "--ttl", "600")
    assert not connects(node, room, bad)


def test_signal_token_claims(node):
    room = new_room()
    sub = new_account("tool")
    now = int(time.time())
    # --no-exp: exp is required by the node
    assert not connects(node, room, run_signal_token("--secret", SECRET, "--sub", sub, "--rooms", room, "--no-exp"))
    # --exp in the past beyond the leeway
    assert not connects(node, room, run_signal_token("--secret", SECRET, "--sub", sub, "--rooms", room,
                                                     "--exp", str(now - 600)))
    # --nbf in the future beyond the leeway
    assert not connects(node, room, run_signal_token("--secret", SECRET, "--sub", sub, "--rooms", room,
                                                     "--ttl", "600", "--nbf", str(now + 600)))
    # --claim adds any claim
    tok = run_signal_token("--secret", SECRET, "--sub", sub, "--ttl", "600", "--claim", f"rooms={json.dumps([room])}")
    assert connects(node, room, tok)
    # the claims are what was asked for
    tok = run_signal_token("--secret", SECRET, "--sub", sub, "--rooms", room, "--ttl", "600", "--iss", "I", "--aud", "A")
    hdr, payload = jwt_decode_unverified(tok)
    assert hdr["alg"] == "HS256"
    assert payload["sub"] == sub and payload["rooms"] == [room] and payload["iss"] == "I" and payload["aud"] == "A"
    assert now + 590 <= payload["exp"] <= now + 700


def test_signal_token_iss_aud(iss_aud_node):
    room = new_room()
    sub = new_account()
    ok = run_signal_token("--secret", SECRET, "--sub", sub, "--rooms", room, "--ttl", "600",
                          "--iss", "https://issuer.test", "--aud", "signal")
    assert connects(iss_aud_node, room, ok)
    bad = run_signal_token("--secret", SECRET, "--sub", sub, "--rooms", room, "--ttl", "600",
                           "--iss", "https://issuer.test", "--aud", "nope")
    assert not connects(iss_aud_node, room, bad)
