"""boxoffice_dev.tokens: queue and user tokens signed as the workers sign them.

For tests and benchmarks that need a token without asking the API for it
(a forged one, one of another user, thousands at once). The format is
src/token.c's for the kinds w (WAITING), a (ACTIVE), u (user) and d (door, of a
concert, with the all-zero UUID as its user):

    v1.KIND.USER.CONCERT.NUMBER.IAT.EXP.MAC

where MAC is the HMAC-SHA256 of everything before it under the token key,
in base64url without padding. A session token (kind s) names a session
instead of a concert and a queue number:

    v1.s.USER.SESSION.IAT.EXP.MAC
"""

import base64
import hashlib
import hmac
import os
import time


def b64url(raw):
    """raw bytes as base64url text without padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(key, claims):
    return claims + "." + b64url(hmac.new(key, claims.encode(), hashlib.sha256).digest())


def sign(key, kind, user, concert=0, number=0, iat=None, exp=None):
    """A token of kind for user, signed with key (bytes); iat defaults to
    now and exp to ten minutes after now."""
    now = int(time.time())
    iat = now if iat is None else iat
    exp = now + 600 if exp is None else exp
    return _mac(key, "v1.%s.%s.%d.%d.%d.%d" % (kind, user, concert, number, iat, exp))


def sign_session(key, user, session=None, iat=None, exp=None):
    """A session token of user (a fresh random session id unless given)."""
    now = int(time.time())
    iat = now if iat is None else iat
    exp = now + 600 if exp is None else exp
    session = session or os.urandom(16).hex()
    return _mac(key, "v1.s.%s.%s.%d.%d" % (user, session, iat, exp))
