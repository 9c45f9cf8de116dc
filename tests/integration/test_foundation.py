"""Foundation: the stack, the API's error contract, workers, logs, reload,
and the failure behaviour of health. Runs against the real servers.

Order (load_tests below): plain API checks first, then data, logs, worker
kills and reload; the tests that stop servers are marked destructive, so
the runner runs them after every module's other tests. Every test that
stops something starts it again and waits for a healthy stack.
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from harness import SEED, StackTest, destructive, stackmod, user_uuid


class TestApiBasics(StackTest):

    def test_health_all_up(self):
        st, hdr, body = self.get("/api/health")
        self.assertEqual(st, 200, body)
        self.assertIn("json", hdr.get("content-type", ""))
        self.assertEqual(body.get("status"), "ok", body)
        for part in ("primary", "replica", "redis"):
            self.assertEqual(body.get(part), "up", "%s: %r" % (part, body))

    def test_ping(self):
        st, hdr, body = self.get("/api/ping")
        self.assertEqual(st, 200, body)

    def test_unknown_route_is_404_json(self):
        self.assertJsonError(self.get("/api/no-such-thing"), 404)
        self.assertJsonError(self.get("/api/concerts/1/nothing/here"), 404)

    def test_wrong_method_is_405_json(self):
        self.assertJsonError(self.http("POST", "/api/ping", body={}), 405)
        self.assertJsonError(self.http("DELETE", "/api/concerts"), 405)
        self.assertJsonError(self.get("/api/queues/token"), 405)

    def test_malformed_json_is_400_bad_json(self):
        for raw in ('{"concertId": 1, "userId": ', "not json", "[1,2,3]", '{"a":1} trailing'):
            resp = self.http("POST", "/api/queues/token", body=raw,
                             headers={"Content-Type": "application/json"})
            self.assertJsonError(resp, 400, "BAD_JSON")

    def test_wrong_content_type_is_415_json(self):
        body = json.dumps({"concertId": 1, "userId": user_uuid(1)})
        resp = self.http("POST", "/api/queues/token", body=body,
                         headers={"Content-Type": "text/plain"})
        self.assertJsonError(resp, 415)

    def test_body_over_worker_max_body_is_413_json(self):
        # [http] max_body defaults to 8192; nginx lets up to 16k through.
        pad = "x" * 10000
        body = json.dumps({"concertId": 1, "userId": user_uuid(1), "pad": pad})
        self.assertGreater(len(body), 8192)
        self.assertLess(len(body), 16 * 1024)
        resp = self.http("POST", "/api/queues/token", body=body,
                         headers={"Content-Type": "application/json"})
        self.assertJsonError(resp, 413)

    def test_body_over_nginx_limit_is_413_json(self):
        body = json.dumps({"concertId": 1, "userId": user_uuid(1), "pad": "y" * 40000})
        resp = self.http("POST", "/api/queues/token", body=body,
                         headers={"Content-Type": "application/json"})
        self.assertJsonError(resp, 413)

    def _raw(self, request):
        """Send raw bytes to nginx; returns (status, content-type, body)."""
        c = socket.create_connection(("127.0.0.1", self.stack.http_port), timeout=10)
        try:
            c.sendall(request)
            out = b""
            while True:
                d = c.recv(65536)
                if not d:
                    break
                out += d
        finally:
            c.close()
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        ctype = [h.split(":", 1)[1].strip() for h in lines[1:]
                 if h.lower().startswith("content-type:")]
        return int(lines[0].split()[1]), (ctype or [""])[0], body

    def test_requests_nginx_rejects_get_json_errors(self):
        cases = [
            (b"GET /api/reservations/abc%00 HTTP/1.1\r\nHost: x\r\n", 400),
            (b"GET /api/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n", 414),
            (b"GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n", 400),
            (b"GET /api/ping HTTP/1.1\r\n", 400),                     # no Host
            (b"BLAH\r\n", 400),
            (b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n", 400),
        ]
        for req, want in cases:
            st, ctype, body = self._raw(req + b"Connection: close\r\n\r\n")
            self.assertEqual(st, want, req[:60])
            self.assertIn("json", ctype, req[:60])
            self.assertJsonError((st, {"content-type": ctype}, json.loads(body)), want)

    def test_metrics_from_loopback(self):
        st, hdr, body = self.get("/metrics")
        self.assertNotEqual(st, 403, "nginx must let 127.0.0.1 reach /metrics")
        self.assertEqual(st, 200, body)
        self.assertIn("text/plain", hdr.get("content-type", ""))
        self.assertRegex(body.decode("utf-8", "replace") if isinstance(body, bytes) else "",
                         r"(?m)^# (HELP|TYPE) ")


class TestData(StackTest):

    def test_migrations_recorded_and_rerun_harmless(self):
        s = self.stack
        rows = s.psql("SELECT count(*) FROM schema_migrations")
        n = int(rows[0][0])
        sql_files = [f for f in os.listdir(os.path.join(s.srcdir, "sql")) if f.endswith(".sql")]
        self.assertEqual(n, len(sql_files), "one schema_migrations row per sql/*.sql")
        before = s.psql("SELECT count(*) FROM users")
        rc, out = s.migrate()
        self.assertEqual(rc, 0, out)
        self.assertEqual(int(s.psql_value("SELECT count(*) FROM schema_migrations")), n)
        self.assertEqual(s.psql("SELECT count(*) FROM users"), before)

    def test_demo_data_sizes(self):
        s = self.stack
        c, sch, seats, users = SEED["concerts"], SEED["schedules"], SEED["seats"], SEED["users"]
        self.assertEqual(int(s.psql_value("SELECT count(*) FROM concerts")), c)
        self.assertEqual(int(s.psql_value("SELECT count(*) FROM schedules")), c * sch)
        self.assertEqual(int(s.psql_value("SELECT count(*) FROM seats")), c * sch * seats)
        self.assertEqual(int(s.psql_value("SELECT count(*) FROM users")), users)
        self.assertEqual(s.psql_value("SELECT min(id) FROM concerts"), "1")
        self.assertEqual(s.psql_value("SELECT min(id) FROM schedules"), "1")
        self.assertEqual(s.psql_value("SELECT min(number) FROM seats"), "1")

    def test_demo_user_uuids(self):
        s = self.stack
        self.assertEqual(user_uuid(1), "00000000-0000-4000-8000-000000000001")
        self.assertEqual(s.psql_value("SELECT count(*) FROM users WHERE id = '%s'"
                                      % user_uuid(1)), "1")
        last = SEED["users"]
        self.assertEqual(s.psql_value("SELECT count(*) FROM users WHERE id = '%s'"
                                      % user_uuid(last)), "1")

    def test_replica_streams_seeded_data(self):
        s = self.stack
        self.assertEqual(s.replication_state(), "streaming")
        self.assertEqual(s.psql_value("SELECT pg_is_in_recovery()", which="replica"), "t")
        s.wait_replica_caught_up()
        for table in ("concerts", "schedules", "seats", "users"):
            self.assertEqual(s.psql_value("SELECT count(*) FROM %s" % table, which="replica"),
                             s.psql_value("SELECT count(*) FROM %s" % table), table)

    def test_replica_receives_new_writes(self):
        s = self.stack
        s.psql("CREATE TABLE IF NOT EXISTS it_replication_probe (v text)")
        mark = uuid.uuid4().hex
        s.psql("INSERT INTO it_replication_probe VALUES ('%s')" % mark)
        try:
            self.wait_for(lambda: s.psql(
                "SELECT 1 FROM it_replication_probe WHERE v = '%s'" % mark, which="replica"),
                timeout=10, msg="the row on the replica")
        finally:
            s.psql("DROP TABLE it_replication_probe")


class TestAccessLog(StackTest):

    def _lines_with(self, needle):
        try:
            with open(self.stack.access_log, errors="replace") as f:
                return [line for line in f if needle in line]
        except FileNotFoundError:
            return []

    def test_one_line_per_request(self):
        tag = "/api/it-log-%s" % uuid.uuid4().hex
        secret = "it-secret-%s" % uuid.uuid4().hex
        workers = set(self.stack.worker_pids())
        for _ in range(3):
            st, _, _ = self.get(tag, headers={"Authorization": "Bearer " + secret})
            self.assertEqual(st, 404)
        lines = self.wait_for(lambda: len(self._lines_with(tag)) >= 3 and self._lines_with(tag),
                              timeout=5, msg="3 access log lines")
        time.sleep(0.2)
        lines = self._lines_with(tag)
        self.assertEqual(len(lines), 3, lines)
        for line in lines:
            self.assertRegex(line, r"\bGET\b")
            self.assertRegex(line, r"\b404\b")
            self.assertRegex(line, r"\d+(\.\d+)?\s*(ms|us|µs|s)\b", "no duration: " + line)
            pids = {int(p) for p in re.findall(r"\b\d{2,7}\b", line)}
            self.assertTrue(pids & workers, "no worker pid in %r (workers %s)" % (line, workers))
        with open(self.stack.access_log, errors="replace") as f:
            self.assertNotIn(secret, f.read(), "the Authorization value leaked into the log")

    def test_status_and_method_logged(self):
        tag = "it-%s" % uuid.uuid4().hex
        self.http("POST", "/api/queues/token?%s" % tag, body="{bad",
                  headers={"Content-Type": "application/json",
                           "Authorization": "Bearer " + tag + "-token"})
        self.get("/api/ping?%s" % tag)
        time.sleep(0.3)
        with open(self.stack.access_log, errors="replace") as f:
            text = f.read()
        self.assertNotIn(tag + "-token", text)
        posts = [line for line in text.splitlines() if "POST" in line and "/api/queues/token" in line]
        self.assertTrue(any(re.search(r"\b400\b", line) for line in posts), posts[-3:])


class TestWorkers(StackTest):

    def test_killed_worker_is_respawned(self):
        s = self.stack
        before = s.wait_workers()
        victim = s.kill_worker(before[0])
        after = s.wait_respawn(victim)
        self.assertEqual(len(after), s.processes)
        self.assertNotIn(victim, after)
        self.assertEqual(self.get("/api/ping")[0], 200)

    def _pids_serving(self, n):
        """The worker pids that answered n concurrent pings (from the access log)."""
        start = os.path.getsize(self.stack.access_log)
        res = self.concurrently(lambda i: self.get("/api/ping")[0], n, threads=16)
        self.assertEqual(res.count(200), n, res)
        time.sleep(0.2)
        with open(self.stack.access_log, errors="replace") as f:
            f.seek(start)
            lines = [line for line in f if "GET /api/ping " in line]
        self.assertGreaterEqual(len(lines), n)
        return {int(m) for m in re.findall(r"pid=(\d+)", "".join(lines))}

    def test_pool_size_lever(self):
        """The worker count goes down and up with a reload, no restart."""
        s = self.stack
        started = set(s.wait_workers())
        try:
            s.set_workers(2)
            # Busy workers notice the new size after their next request.
            self._pids_serving(4 * s.processes)
            serving = self._pids_serving(300)
            self.assertLessEqual(len(serving), 2, serving)
            s.set_workers(4)
            time.sleep(1.5)     # idle workers look at the settings every second
            serving = self._pids_serving(600)
            self.assertGreater(len(serving), 2, serving)
            self.assertTrue(serving <= started, "a worker was restarted: %s" % (serving - started))
        finally:
            s.set_workers(4)

    def test_requests_survive_repeated_kills(self):
        s = self.stack
        s.wait_workers()
        stop = threading.Event()
        kills = []

        def killer():
            while not stop.is_set() and len(kills) < 12:
                try:
                    kills.append(s.kill_worker(sig=signal.SIGKILL))
                except (stackmod.StackError, ProcessLookupError):
                    pass
                stop.wait(0.08)

        t = threading.Thread(target=killer)
        t.start()
        try:
            results = self.concurrently(lambda i: self.get("/api/ping", timeout=20)[0], 200,
                                        threads=20)
        finally:
            stop.set()
            t.join()
        s.wait_workers(timeout=30)
        self.assertGreater(len(kills), 0)
        bad = [r for r in results if r != 200]
        self.assertEqual(bad, [], "%d of 200 pings failed while %d workers were killed"
                         % (len(bad), len(kills)))


class TestReload(StackTest):

    def _post_small(self):
        body = json.dumps({"concertId": 1, "userId": user_uuid(1), "pad": "z" * 100})
        return self.http("POST", "/api/queues/token", body=body,
                         headers={"Content-Type": "application/json"})

    def _reload_everywhere(self, over):
        """Reload with over, and wait until every worker has taken it: each
        refuses a small body while max_body is 64, then takes it again."""
        s = self.stack
        s.reload({**over, ("http", "max_body"): "64"})
        self.wait_for(lambda: all(self._post_small()[0] == 413 for _ in range(3 * s.workers)),
                      timeout=10, interval=0.1, msg="max_body=64 in force in every worker")
        s.reload({("http", "max_body"): "8192"})
        self.wait_for(lambda: all(self._post_small()[0] != 413 for _ in range(3 * s.workers)),
                      timeout=10, interval=0.1, msg="max_body=8192 back in every worker")

    def test_sighup_changes_setting_without_failing_requests(self):
        s = self.stack
        pids = s.wait_workers()
        stop = threading.Event()
        statuses = []

        def load():
            while not stop.is_set():
                try:
                    statuses.append(self.get("/api/ping", timeout=10)[0])
                except OSError as e:
                    statuses.append(e)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            self._reload_everywhere({})
        finally:
            s.overrides.pop(("http", "max_body"), None)
            s.write_config()
            stop.set()
            for t in threads:
                t.join()
        self.assertGreater(len(statuses), 10)
        bad = [x for x in statuses if x != 200]
        self.assertEqual(bad, [], "requests failed during reload")
        self.assertEqual(s.worker_pids(), pids, "workers restarted instead of reloading")

    def test_usr2_to_multiwatch_reaches_workers(self):
        s = self.stack
        pids = s.wait_workers()
        os.kill(s.pids["multiwatch"], signal.SIGUSR2)
        time.sleep(0.5)
        self.assertEqual(self.get("/api/ping")[0], 200)
        self.assertEqual(s.worker_pids(), pids, "USR2 must reload, not restart workers")

    def test_bad_config_on_reload_keeps_old_settings(self):
        s = self.stack
        pids = s.wait_workers()
        # out of bounds (1..1000000); written past the stack's own check
        s.reload({("queue", "max_active"): "0"}, check=False)
        try:
            time.sleep(0.5)
            for _ in range(2 * s.workers):
                self.assertEqual(self.get("/api/ping")[0], 200)
            self.assertEqual(s.worker_pids(), pids)
        finally:
            s.overrides.pop(("queue", "max_active"), None)
            s.reload()

    def _connections(self):
        """(PostgreSQL backend pids, Redis client ids) the workers hold
        open, after enough health checks that every worker has used both."""
        s = self.stack
        for _ in range(4 * s.workers):
            self.get("/api/health")
        pids = {r[0] for r in s.psql("SELECT pid FROM pg_stat_activity "
                                     "WHERE application_name = 'boxoffice'")}
        ids = set()
        for line in s.redis("CLIENT", "LIST").splitlines():
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if not f.get("cmd", "").startswith("client"):
                ids.add(f["id"])
        return pids, ids

    def test_reload_keeps_connections_unless_their_settings_change(self):
        # a lever moved under load must not make every worker reconnect and
        # prepare again at once; a new DSN or session setting must reach all
        s = self.stack
        s.wait_workers()
        pg0, redis0 = self._connections()
        self.assertTrue(pg0 and redis0)
        try:
            self._reload_everywhere({("queue", "max_active"): "777"})
            pg1, redis1 = self._connections()
            self.assertLessEqual(pg0, pg1, "a reload of a lever closed database connections")
            self.assertLessEqual(redis0, redis1, "a reload of a lever closed Redis connections")

            self._reload_everywhere({("database", "statement_timeout_ms"): "1500",
                                     ("redis", "timeout_ms"): "300"})

            def all_new():
                pg2, redis2 = self._connections()
                return not (pg2 & pg1) and not (redis2 & redis1)
            self.wait_for(all_new, timeout=10, interval=0.2,
                          msg="connections opened again with the new settings")
        finally:
            for k in (("queue", "max_active"), ("database", "statement_timeout_ms"),
                      ("redis", "timeout_ms")):
                s.overrides.pop(k, None)
            s.reload()

    def test_stack_refuses_settings_the_workers_would(self):
        # ./dev reload --set stores its overrides; a mistyped one must not
        # stick and break the next ./dev up
        s = self.stack
        with open(s.conf_file) as f:
            before = f.read()
        over = dict(s.overrides)
        for bad, why in ((("http", "no_such_setting"), "unknown setting http.no_such_setting"),
                         (("queue", "max_active"), "not an integer")):
            with self.subTest(bad=bad):
                with self.assertRaises(stackmod.StackError) as cm:
                    s.reload({bad: "x"})
                self.assertIn(why, str(cm.exception))
                with open(s.conf_file) as f:
                    self.assertEqual(f.read(), before)
                self.assertEqual(s.overrides, over)
                self.assertFalse(os.path.exists(s.conf_file + ".tmp"))


class TestServerConfigs(StackTest):

    def test_lighttpd_config_passes_syntax_check(self):
        with tempfile.TemporaryDirectory(prefix="boxoffice-lighttpd-") as d:
            ok, out = stackmod.lighttpd_check(d, self.stack.srcdir)
            self.assertTrue(ok, out)

    def test_lighttpd_serves_the_api_through_the_same_workers(self):
        s = self.stack
        port = s.start_lighttpd()
        try:
            st, _, body = s.http("GET", "/api/ping", port=port)
            self.assertEqual(st, 200, body)
            st, _, body = s.http("GET", "/api/health", port=port)
            self.assertEqual((st, body.get("status")), (200, "ok"), body)
            self.assertJsonError(s.http("GET", "/api/no-such-thing", port=port), 404)
            self.assertJsonError(s.http("POST", "/api/queues/token", body="{bad",
                                        headers={"Content-Type": "application/json"},
                                        port=port), 400, "BAD_JSON")
        finally:
            s.stop_lighttpd()

    def test_nginx_production_rendering_passes_nginx_t(self):
        s = self.stack
        with tempfile.TemporaryDirectory(prefix="boxoffice-nginx-") as d:
            prefix, main = s.render_nginx(prefix=d, http_port=stackmod.free_port(),
                                          rate_limits=True, tag="-check")
            res = subprocess.run([stackmod.NGINX, "-t", "-p", prefix + "/", "-c", main],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(res.returncode, 0, res.stdout.decode())

    def test_rate_limit_gives_429_json_when_on(self):
        s = self.stack
        port = s.start_extra_nginx(rate_limits=True)
        try:
            body = {"concertId": 999999, "userId": user_uuid(1)}
            statuses = []
            last429 = None
            for _ in range(30):
                r = s.http("POST", "/api/queues/token", body=body, port=port)
                statuses.append(r[0])
                if r[0] == 429:
                    last429 = r
            self.assertIsNotNone(last429, "no 429 in %s" % statuses)
            self.assertJsonError(last429, 429)
            # the dev stack (rate limits off) never limits
            for _ in range(30):
                self.assertNotEqual(s.http("POST", "/api/queues/token", body=body)[0], 429)
        finally:
            s.stop_extra_nginx()

    def test_static_files_served(self):
        www = os.path.join(self.stack.srcdir, "www")
        files = sorted(f for f in (os.listdir(www) if os.path.isdir(www) else [])
                       if os.path.isfile(os.path.join(www, f)))
        self.assertIn("index.html", files, "www/ must hold the site")
        st, hdr, body = self.get("/" + files[0])
        self.assertEqual(st, 200)
        with open(os.path.join(www, files[0]), "rb") as f:
            expected = f.read()
        if not isinstance(body, bytes):          # parsed as JSON
            body = json.dumps(body).encode()
            expected = json.dumps(json.loads(expected)).encode()
        self.assertEqual(body, expected)


@destructive
class TestFailures(StackTest):
    """Stops servers (destructive: runs after the other tests), restores
    everything."""

    def test_health_replica_down_is_degraded_200(self):
        s = self.stack
        s.stop_server("replica")
        try:
            def down():
                r = self.get("/api/health", timeout=10)
                return r if r[2].get("replica") == "down" else None
            st, _, body = self.wait_for(down, timeout=15, interval=0.2, msg="replica down")
            self.assertEqual(st, 200, body)
            self.assertEqual(body.get("primary"), "up")
            self.assertEqual(body.get("redis"), "up")
            self.assertEqual(body.get("status"), "degraded", body)
        finally:
            self.restore_server("replica")

    def test_health_primary_down_is_503_fast(self):
        s = self.stack
        s.stop_server("primary")
        try:
            worst = 0.0
            for _ in range(2 * s.workers):
                t0 = time.time()
                st, _, body = self.get("/api/health", timeout=10)
                worst = max(worst, time.time() - t0)
                self.assertEqual(st, 503, body)
                self.assertEqual(body.get("primary"), "down", body)
            self.assertLess(worst, 2.0, "health took %.2fs with the primary down" % worst)
            self.assertEqual(self.get("/api/ping")[0], 200)
        finally:
            self.restore_server("primary")
        st, _, body = self.get("/api/health")
        self.assertEqual((st, body.get("primary")), (200, "up"))

    def test_workers_unreachable_gives_json_502(self):
        s = self.stack
        s.stop_workers()
        try:
            resp = self.get("/api/ping")
            self.assertIn(resp[0], (502, 503, 504))
            self.assertJsonError(resp, resp[0])
        finally:
            s.start_workers()
        self.assertEqual(self.get("/api/ping")[0], 200)


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in (TestApiBasics, TestData, TestAccessLog, TestWorkers, TestReload,
                TestServerConfigs, TestFailures):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite
