/* main.c: the boxoffice FastCGI worker: settings, signals and the accept loop. */
#include "config.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "db.h"
#include "dispatch.h"
#include "gate.h"
#include "http.h"
#include "jwt.h"
#include "lcache.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "queue.h"
#include "route.h"
#include "token.h"

static volatile sig_atomic_t want_reload;
static volatile sig_atomic_t want_stop;

static void
on_reload(int sig)
{
	(void)sig;
	want_reload = 1;
}

/*
 * Finish the current request first. Installed without SA_RESTART, so a
 * worker blocked in accept() wakes up; libfcgi's shutdown flag makes the
 * accept give up instead of retrying. The process then leaves main()
 * normally, closing its connections.
 */
static void
on_stop(int sig)
{
	(void)sig;
	want_stop = 1;
	FCGX_ShutdownPending();
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* SA_RESTART: a signal must never break the read of a request body. */
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_reload;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_stop;
	sa.sa_flags = 0;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);	/* multiwatch's default "graceful" */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/*
 * Load settings from path into cfg. At start a bad file is fatal; on reload
 * it is logged and the settings in force stay. Returns 0 or -1.
 */
static int
load(const char *path, int first)
{
	static struct config fresh;
	struct jwt_keys *jwks = NULL;
	char err[512];

	if (config_load(path, &fresh, err, sizeof(err)) != 0) {
		log_msg("%s%s", first ? "" : "reload refused: ", err);
		return -1;
	}
	/*
	 * The identity provider's keys likewise: read first, put in force
	 * only with the rest. An empty auth.jwks_file turns JWT sign-in off.
	 */
	if (fresh.jwks_file[0] != '\0' &&
	    (jwks = jwt_keys_read(fresh.jwks_file, err, sizeof(err))) == NULL) {
		if (!first) {
			log_msg("reload refused: %s", err);
			return -1;
		}
		log_msg("JWKS not loaded (sign-in with the identity provider is off): %s", err);
	}
	/*
	 * Keys are part of the settings: a reload whose keys cannot be read is
	 * refused whole, so a rotation after a key theft never half-happens.
	 * At start the worker runs without keys (token checks answer 503).
	 */
	if (token_load_keys(fresh.key_file, fresh.key_file_old, err, sizeof(err)) != 0) {
		if (!first) {
			log_msg("reload refused: %s", err);
			jwt_keys_free(jwks);
			return -1;
		}
		log_msg("token keys not loaded (token checks answer 503): %s", err);
	}
	/*
	 * Connections stay open unless what they were opened with changed: a
	 * reload that only moves a lever (pool size, routing, admission pace)
	 * must not make every worker reconnect and prepare again at once, to
	 * a database that may be the overloaded part. Changed ones reconnect
	 * lazily, on their next use.
	 */
	if (first || db_conn_settings_differ(&cfg, &fresh))
		db_close_all();
	if (first || cache_conn_settings_differ(&cfg, &fresh))
		cache_close();
	cfg = fresh;
	jwt_keys_use(jwks);
	log_open(cfg.access_log);
	lcache_clear();
	queue_configure();
	if (!first)
		log_msg("configuration reloaded from %s", path);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: boxoffice [-t] [-p POOL] -c CONFIG\n"
		"  A FastCGI worker: run it under spawn-fcgi (and multiwatch).\n"
		"  -c CONFIG  settings file (INI)\n"
		"  -p POOL    serve only one pool's routes: queue, signin or booking\n"
		"             (default all: every route, sized by http.workers)\n"
		"  -t         check the settings file and exit\n");
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	FCGX_Request fcgx;
	struct req r;
	int opt, check_only = 0, pool = POOL_ALL;

	while ((opt = getopt(argc, argv, "c:p:th")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'p':
			if ((pool = pool_parse(optarg)) < 0) {
				fprintf(stderr, "boxoffice: unknown pool '%s'\n", optarg);
				usage();
				return 2;
			}
			break;
		case 't':
			check_only = 1;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (path == NULL) {
		usage();
		return 2;
	}
	if (load(path, 1) != 0)
		return 1;
	if (check_only) {
		printf("%s: ok\n", path);
		return 0;
	}
	install_signals();
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fcgx, 0, 0) != 0) {
		log_msg("FastCGI initialisation failed");
		return 1;
	}

	metrics_attach(path);
	gate_attach(path);
	metrics_add(M_WORKER_STARTS, 1);
	pool_join(path, (enum pool_class)pool);

	while (!want_stop) {
		if (!pool_active()) {
			/* Outside the pool: wait (a signal cuts it short), then look
			 * at the settings again. */
			sleep(1);
			if (want_reload) {
				want_reload = 0;
				(void)load(path, 0);
			}
			continue;
		}
		if (FCGX_Accept_r(&fcgx) < 0) {
			if (want_stop)
				break;
			if (errno == EINTR)
				continue;
			log_msg("FastCGI accept failed: %s", strerror(errno));
			break;
		}
		if (want_reload) {
			want_reload = 0;
			(void)load(path, 0);
		}
		pool_busy(true);
		http_req_begin(&r, &fcgx);
		dispatch(&r);
		metrics_request(route_index(r.route), r.method, r.status, http_elapsed_ms(&r));
		http_req_end(&r);
		FCGX_Finish_r(&fcgx);
		pool_busy(false);
	}
	db_close_all();
	cache_close();
	return 0;
}
