/* auth.h: what each route needs from its caller, checked before its handler runs. */
#ifndef BOXOFFICE_AUTH_H
#define BOXOFFICE_AUTH_H

struct req;

/*
 * What a route needs from its caller; each route in route.c names one.
 * Each level is one case of auth_check(), which is also where a level
 * for an operator's credential would go.
 */
enum auth_need {
	AUTH_NONE,	/* anyone */
	AUTH_LOOPBACK,	/* a client on a loopback address (metrics scrapes) */
	AUTH_TOKEN,	/* any genuine token, or a session; the SQL keeps to its
			   user's rows */
	AUTH_QUEUE,	/* a queue token, WAITING or ACTIVE */
	AUTH_ACTIVE,	/* an ACTIVE token whose turn is on, of the request's
			   concertId if it names one */
	AUTH_USER,	/* any genuine token, or a session, of the path's userId */
	AUTH_SESSION,	/* a session token, not signed out, of an account not
			   disabled */
	AUTH_PROVIDER,	/* an identity provider's access token (a JWT checked
			   against auth.jwks_file) in Authorization; its
			   subject is left in r->subject */
	AUTH_SIGNED_IN,	/* a signed-in user: a session as AUTH_SESSION, or an
			   operator's user token; of the body's userId if it
			   names one (else 403 USER_MISMATCH). The request acts
			   for r->token.user */
	AUTH_DOOR	/* a door token (boxofficectl door-token) in the
			   Authorization header; r->token.concert is the
			   concert whose tickets it checks */
};

/*
 * Sessions (AUTH_TOKEN, AUTH_USER, AUTH_SESSION, AUTH_SIGNED_IN) are read from the
 * Authorization header or, without one, from the session cookie
 * (AUTH_SESSION_COOKIE). A cookie is sent by the browser whoever asks, so
 * a request that changes state (any method but GET and HEAD) with a
 * cookie credential must come from our own origin: Sec-Fetch-Site
 * same-origin or none, or an Origin naming the request's Host; else 403
 * CROSS_SITE.
 */
#define AUTH_SESSION_COOKIE "boxoffice_session"

/* What auth_check() found. */
enum auth_result {
	AUTH_PASS,		/* r->token holds the verified token, if one was needed */
	AUTH_DENIED,		/* the error answer is set */
	AUTH_TURN_ENDED		/* AUTH_ACTIVE: a genuine ACTIVE token whose turn has
				   ended; r->token holds it, 401 TOKEN_REVOKED is set */
};

/*
 * Check that r's caller meets need, reading r->authorization,
 * r->remote_addr and the validated fields r->f. A token is verified into
 * r->token; every token failure and refusal is answered here.
 */
enum auth_result auth_check(struct req *r, enum auth_need need);

#endif
