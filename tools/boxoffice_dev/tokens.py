"""boxoffice_dev.tokens: queue and user tokens signed as the workers sign them.

For tests and benchmarks that need a token without asking the API for it
(a forged one, one of another user, thousands at once). The format is
src/token.c's for the kinds w (WAITING), a (ACTIVE) and u (user):

    v1.KIND.USER.CONCERT.NUMBER.IAT.EXP.MAC

where MAC is the HMAC-SHA256 of everything before it under the token key,
in base64url without padding.
"""

import base64
import hashlib
import hmac
import time


def b64url(raw):
    """raw bytes as base64url text without padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(key, kind, user, concert=0, number=0, iat=None, exp=None):
    """A token of kind for user, signed with key (bytes); iat defaults to
    now and exp to ten minutes after now."""
    now = int(time.time())
    iat = now if iat is None else iat
    exp = now + 600 if exp is None else exp
    claims = "v1.%s.%s.%d.%d.%d.%d" % (kind, user, concert, number, iat, exp)
    return claims + "." + b64url(hmac.new(key, claims.encode(), hashlib.sha256).digest())
