"""Sign-in with an identity provider (docs/identity.md, docs/api.md section 4):
POST /api/sessions/oidc exchanges a provider's access token, a JWT checked
against the JWKS file auth.jwks_file, for a boxoffice session.

The tests are the provider: they make RSA, P-256 and Ed25519 keys with
python3-cryptography, write the JWKS, reload the workers with it and sign
tokens. A good token of each algorithm signs in (the same subject is the
same user every time, made at the first sign-in), and its session opens
that user's balance. The classic attacks are each refused and make no
user: "alg": "none", HS256 keyed with the RSA public key, a wrong issuer,
a wrong audience, expired, not yet valid, an unknown "kid", and a key
taken out of the JWKS followed by a reload.

Data: users made here have subjects under "test-provider-"; they and their
identities are deleted when the module ends.
"""

import base64
import json
import os
import time

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from harness import StackTest, get_stack

ISSUER = "https://id.example.test/realms/boxoffice"
AUDIENCE = "boxoffice-api"


def tearDownModule():
    get_stack().psql(
        "CREATE TEMP TABLE gone AS SELECT user_id FROM identities"
        " WHERE subject LIKE 'test-provider-%';"
        " DELETE FROM identities WHERE user_id IN (SELECT user_id FROM gone);"
        " DELETE FROM users WHERE id IN (SELECT user_id FROM gone);")


def b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def uint(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Key:
    """A signing key of the test provider and its public JWK."""

    def __init__(self, kind, kid):
        self.kind, self.kid = kind, kid
        if kind == "RS256":
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": uint(pub.n), "e": uint(pub.e)}
        elif kind == "ES256":
            self.priv = ec.generate_private_key(ec.SECP256R1())
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "EC", "crv": "P-256", "x": b64u(pub.x.to_bytes(32, "big")),
                        "y": b64u(pub.y.to_bytes(32, "big"))}
        else:
            self.priv = ed25519.Ed25519PrivateKey.generate()
            raw = self.priv.public_key().public_bytes(serialization.Encoding.Raw,
                                                      serialization.PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        self.jwk.update({"kid": kid, "use": "sig", "alg": kind})

    def public_pem(self):
        return self.priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data):
        if self.kind == "RS256":
            return self.priv.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.kind == "ES256":
            r, s = decode_dss_signature(self.priv.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.priv.sign(data)


def token(key, sub, header=None, sign=None, **claims):
    """A compact JWS: the key's header and signature unless replaced."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300}
    body.update(claims)
    head = {"alg": key.kind, "typ": "JWT", "kid": key.kid}
    head.update(header or {})
    signing = (b64u(json.dumps(head).encode()) + "." + b64u(json.dumps(body).encode()))
    sig = (sign or key.sign)(signing.encode())
    return signing + "." + b64u(sig)


class TestProviderSignIn(StackTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.keys = {k: Key(k, "kid-%s-%s" % (k.lower(), os.urandom(3).hex()))
                    for k in ("RS256", "ES256", "EdDSA")}
        cls.jwks = cls.stack.path("conf", "provider-jwks.json")
        cls.write_jwks(list(cls.keys.values()))
        cls.stack.reload({("auth", "jwks_file"): cls.jwks, ("auth", "jwt_issuer"): ISSUER,
                          ("auth", "jwt_audience"): AUDIENCE})

    @classmethod
    def tearDownClass(cls):
        cls.stack.reload({("auth", "jwks_file"): "", ("auth", "jwt_issuer"): "",
                          ("auth", "jwt_audience"): ""})
        super().tearDownClass()

    @classmethod
    def write_jwks(cls, keys):
        tmp = cls.jwks + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"keys": [k.jwk for k in keys]}, f)
        os.replace(tmp, cls.jwks)

    def exchange(self, tok):
        return self.http("POST", "/api/sessions/oidc",
                         headers={"Authorization": "Bearer " + tok})

    def users(self):
        return int(self.stack.psql("SELECT count(*) FROM users")[0][0])

    def signed_in(self, tok, deadline=10):
        """Exchange tok, waiting for the workers to have read the JWKS."""
        end = time.time() + deadline
        while True:
            st, hdr, body = self.exchange(tok)
            if st == 201 or time.time() > end:
                return st, hdr, body
            time.sleep(0.2)

    def test_a_good_token_of_each_algorithm_signs_in_one_user_per_subject(self):
        for alg, key in self.keys.items():
            with self.subTest(alg=alg):
                sub = "test-provider-%s-%s" % (alg.lower(), os.urandom(4).hex())
                st, hdr, b = self.signed_in(token(key, sub))
                self.assertEqual(st, 201, b)
                self.assertIn("boxoffice_session=", hdr.get("set-cookie", ""))
                self.assertIn("HttpOnly", hdr.get("set-cookie", ""))
                user = b["userId"]
                self.assertEqual(self.stack.psql(
                    "SELECT user_id FROM identities WHERE issuer = '%s' AND subject = '%s'"
                    % (ISSUER, sub))[0][0], user)
                # the same subject is the same user, and no new one is made
                n = self.users()
                st, _, again = self.exchange(token(key, sub))
                self.assertEqual(st, 201, again)
                self.assertEqual(again["userId"], user)
                self.assertEqual(self.users(), n)
                # the session is a credential of that user, and only of it
                st, _, bal = self.http("GET", "/api/users/%s/balance" % user,
                                       headers={"Authorization": "Bearer " + b["token"]})
                self.assertEqual(st, 200, bal)
                self.assertEqual(bal["balance"], 0)
                # the access token itself is not a boxoffice credential
                self.assertEqual(self.http("GET", "/api/users/%s/balance" % user,
                                           headers={"Authorization": "Bearer " +
                                                    token(key, sub)})[0], 401)

    def test_attacks_are_refused_and_make_no_user(self):
        rsa_key = self.keys["RS256"]
        self.assertEqual(self.signed_in(token(rsa_key, "test-provider-warm"))[0], 201)
        now = int(time.time())

        def hs256_with_public_key(data):
            h = hmac.HMAC(rsa_key.public_pem(), hashes.SHA256())
            h.update(data)
            return h.finalize()
        unknown = Key("RS256", "kid-nobody-knows")
        cases = [
            ("alg none, no signature",
             token(rsa_key, "test-provider-none", header={"alg": "none"},
                   sign=lambda d: b""), "TOKEN_INVALID"),
            ("alg none, kid dropped",
             token(rsa_key, "test-provider-none2", header={"alg": "none", "kid": None},
                   sign=lambda d: b""), "TOKEN_INVALID"),
            ("HS256 keyed with the public key",
             token(rsa_key, "test-provider-hs", header={"alg": "HS256"},
                   sign=hs256_with_public_key), "TOKEN_INVALID"),
            ("an RSA header on the EC key",
             token(self.keys["ES256"], "test-provider-mix", header={"alg": "RS256"}),
             "TOKEN_INVALID"),
            ("a wrong issuer", token(rsa_key, "test-provider-iss",
                                     iss="https://evil.example.test"), "TOKEN_INVALID"),
            ("a wrong audience", token(rsa_key, "test-provider-aud", aud="another-api"),
             "TOKEN_INVALID"),
            ("expired", token(rsa_key, "test-provider-exp", iat=now - 3600, exp=now - 600),
             "TOKEN_EXPIRED"),
            ("not yet valid", token(rsa_key, "test-provider-nbf", nbf=now + 600),
             "TOKEN_INVALID"),
            ("issued in the future", token(rsa_key, "test-provider-iat", iat=now + 600),
             "TOKEN_INVALID"),
            ("an unknown kid", token(unknown, "test-provider-kid"), "TOKEN_INVALID"),
            ("a forged signature", token(rsa_key, "test-provider-forged",
                                         sign=unknown.sign), "TOKEN_INVALID"),
            ("no sub", token(rsa_key, None), "TOKEN_INVALID"),
        ]
        n = self.users()
        for what, tok, code in cases:
            with self.subTest(attack=what):
                resp = self.exchange(tok)
                self.assertJsonError(resp, 401, code)
                self.assertNotIn("set-cookie", resp[1])
        self.assertEqual(self.users(), n, "a refused token made a user")

    def test_a_key_taken_out_of_the_jwks_stops_at_the_reload(self):
        old = self.keys["RS256"]
        new = Key("RS256", "kid-rotated-%s" % os.urandom(3).hex())
        sub = "test-provider-rotation-%s" % os.urandom(4).hex()
        self.assertEqual(self.signed_in(token(old, sub))[0], 201)
        try:
            self.write_jwks([new, self.keys["ES256"], self.keys["EdDSA"]])
            self.stack.reload()
            self.assertEqual(self.signed_in(token(new, sub))[0], 201)
            self.assertJsonError(self.exchange(token(old, sub)), 401, "TOKEN_INVALID")
        finally:
            self.write_jwks(list(self.keys.values()))
            self.stack.reload()
            self.assertEqual(self.signed_in(token(old, sub))[0], 201)

    def test_a_jwks_that_cannot_be_read_keeps_the_keys_in_force(self):
        key = self.keys["EdDSA"]
        sub = "test-provider-broken-%s" % os.urandom(4).hex()
        try:
            with open(self.jwks, "w") as f:
                f.write('{"keys": [{"kty": "RSA", "kid": "broken"')
            self.stack.reload()
            time.sleep(1)
            self.assertEqual(self.signed_in(token(key, sub))[0], 201)
        finally:
            self.write_jwks(list(self.keys.values()))
            self.stack.reload()
