"""Monitoring: /metrics, the alert rules, a real Prometheus and the dashboard.

Against the shared test stack:

* `promtool check metrics` accepts a real scrape of /metrics;
* `promtool check rules` and `promtool test rules` pass on
  conf/prometheus/alerts.yml and alerts_test.yml, and every alert has a
  firing and a not-firing case there and a section in docs/monitoring.md;
* a real Prometheus (tools/monitoring.py: 1 s scrapes, free loopback ports,
  storage inside the stack's temporary directory) with the PostgreSQL and
  Redis exporters scrapes every target, evaluates every rule, turns an
  alert pending when an exporter stops, and counts exactly the requests
  this test sends per route;
* scrapes answered by different workers agree (the counters are shared);
* the Grafana dashboard is valid JSON whose every query runs and names
  metrics that exist.

Skipped, with the reason, when Prometheus, promtool or the exporters are not
installed (./dev installs them). Everything is bounded in time and stopped
at the end.
"""

import concurrent.futures
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
import monitoring as mon  # tools/monitoring.py, on the path the runner sets
from harness import StackTest, srcdir  # noqa: F401

SCRAPE_INTERVAL = 1.0
PROM_DIR = os.path.join(srcdir(), "conf", "prometheus")
ALERTS = os.path.join(PROM_DIR, "alerts.yml")
ALERTS_TEST = os.path.join(PROM_DIR, "alerts_test.yml")
DASHBOARD = os.path.join(srcdir(), "conf", "grafana", "dashboards", "boxoffice.json")
GRAFANA_PROV = os.path.join(srcdir(), "conf", "grafana", "provisioning")
DOC = os.path.join(srcdir(), "docs", "monitoring.md")

# PromQL words that look like metric names but are not.
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "atan2",
}
# Series Prometheus makes itself.
BUILTIN_SERIES = {"ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds",
                  "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                  "scrape_series_added"}

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """Prometheus text format -> ({(name, frozenset(labels)): value}, {family: type})."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError("unparsable exposition line: %r" % line)
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples, types


def metric_names(expr):
    """The metric names a PromQL expression selects (a lexical scan)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                 # strings
    e = re.sub(r"\{[^}]*\}", " ", e)                               # matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                              # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+\S+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word in PROMQL_WORDS or re.match(r"^\d", word):
            continue
        names.add(word)
    return names


def rule_exprs(path):
    """[(alert name, expr)] of a rules file, read without a YAML library:
    single-line `expr: ...` or a block `expr: |` of indented lines."""
    out, name, lines = [], None, open(path).read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*- (?:alert|record): (\S+)", line)
        if m:
            name = m.group(1)
        m = re.match(r"^(\s*)expr: (.*)$", line)
        if m:
            indent, rest = len(m.group(1)), m.group(2).strip()
            if rest in ("|", ">", "|-", ">-"):
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or
                                          len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                out.append((name, " ".join(block)))
                continue
            out.append((name, rest))
        i += 1
    return out


def grafana_expr(expr):
    """A dashboard query with Grafana's variables replaced, as Grafana sends it."""
    for var, value in (("$__rate_interval", "1m"), ("$__interval", "15s"),
                       ("$__range", "1h"), ("$instance", ".*"), ("$concert", ".*")):
        expr = expr.replace(var, value)
    return expr


class MonitoringTest(StackTest):
    mon = None

    @classmethod
    def setUpClass(cls):
        missing = mon.missing_binaries()
        if missing:
            raise unittest.SkipTest(
                "monitoring tests need %s; install them with `apt-get install %s` "
                "(./dev does)" % (", ".join(missing), " ".join(mon.PACKAGES)))
        super().setUpClass()
        cls.mondir = tempfile.mkdtemp(prefix="monitoring-", dir=cls.stack.dir)
        cls.mon = mon.Monitoring.for_stack(
            cls.stack, cls.mondir, scrape_interval="%gs" % SCRAPE_INTERVAL,
            retention="1h", die_with_parent=True,
            log=lambda m: print("[monitoring] " + m, file=sys.stderr, flush=True))
        try:
            cls.mon.start(timeout=30)
        except BaseException:
            cls.mon.stop()
            shutil.rmtree(cls.mondir, ignore_errors=True)
            raise
        cls._targets_ok = False

    @classmethod
    def tearDownClass(cls):
        if cls.mon is not None:
            try:
                cls.mon.stop()
            finally:
                shutil.rmtree(cls.mondir, ignore_errors=True)
        super().tearDownClass()

    # -------------------------------------------------------------- helpers
    def targets_up(self):
        """Wait (once) until Prometheus has scraped every target; Prometheus
        starts scraping about 5 s after it starts."""
        if not type(self)._targets_ok:
            try:
                self.mon.wait_targets_up(timeout=25)
            except mon.MonitoringError as e:
                self.fail("%s\n%s" % (e, self.mon.tail_log("prometheus")))
            type(self)._targets_ok = True

    def scrape(self):
        st, hdr, body = self.get("/metrics", timeout=10)
        self.assertEqual(st, 200, body)
        self.assertTrue(hdr.get("content-type", "").startswith("text/plain; version=0.0.4"),
                        hdr)
        return body.decode("utf-8")

    def scrape_samples(self):
        return parse_exposition(self.scrape())[0]

    @staticmethod
    def requests_key(route, method, status):
        return ("boxoffice_http_requests_total",
                frozenset({("route", route), ("method", method), ("status", status)}))

    def prom_count(self, route, method, status, at=None):
        expr = ('sum(boxoffice_http_requests_total{job="boxoffice", route="%s", method="%s", '
                'status="%s"})' % (route, method, status))
        return self.mon.value(expr, at=at)

    def wait_prom_counts(self, want, timeout=15):
        """Wait until Prometheus's latest sample of each (route, method,
        status) equals want[...]; returns the time it did."""
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = {k: self.prom_count(*k) for k in want}
            if got == want:
                return time.time()
            time.sleep(0.2)
        self.fail("Prometheus did not catch up with /metrics in %ss: want %r, got %r"
                  % (timeout, want, got))

    # ---------------------------------------------------------- promtool
    def test_alert_rules_pass_promtool_check(self):
        rc, out = mon.promtool("check", "rules", ALERTS)
        self.assertEqual(rc, 0, out)
        n = len(re.findall(r"^\s*- alert: ", open(ALERTS).read(), re.M))
        self.assertIn("SUCCESS: %d rules found" % n, out)

    def test_alert_rules_pass_their_unit_tests(self):
        rc, out = mon.promtool("test", "rules", ALERTS_TEST, timeout=60)
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS", out)

    def test_every_alert_is_tested_firing_and_silent_and_documented(self):
        alerts = re.findall(r"^\s*- alert: (\S+)", open(ALERTS).read(), re.M)
        self.assertGreaterEqual(len(alerts), 10)
        self.assertEqual(len(alerts), len(set(alerts)), "duplicate alert names")
        firing, silent, current = set(), set(), None
        for line in open(ALERTS_TEST).read().splitlines():
            if line.lstrip().startswith("#"):
                continue
            m = re.search(r"alertname: (\w+)", line)
            if m:
                current = m.group(1)
            if re.search(r"exp_alerts: \[\]", line):
                silent.add(current)
            elif re.match(r"^\s*exp_alerts:\s*$", line):
                firing.add(current)
        self.assertEqual(sorted(set(alerts) - firing), [], "alerts never tested firing")
        self.assertEqual(sorted(set(alerts) - silent), [], "alerts never tested silent")
        self.assertEqual(sorted((firing | silent) - set(alerts)), [], "tests of unknown alerts")

        doc = open(DOC).read()
        text = open(ALERTS).read()
        headings = {h.strip().lower() for h in re.findall(r"^#+\s+`?(\w+)`?\s*$", doc, re.M)}
        for name in alerts:
            block = text.split("- alert: %s\n" % name, 1)[1].split("- alert:", 1)[0]
            self.assertRegex(block, r"severity: (critical|warning)\n", name)
            self.assertIn("summary:", block, name)
            self.assertIn('runbook: "docs/monitoring.md#%s"' % name.lower(), block, name)
            self.assertIn(name.lower(), headings, "docs/monitoring.md has no section %s" % name)

    def test_metrics_pass_promtool_check_metrics(self):
        text = self.scrape()
        rc, out = mon.promtool("check", "metrics", input=text.encode("utf-8"), timeout=30)
        self.assertEqual((rc, out.strip()), (0, ""), "promtool check metrics:\n" + out)
        samples, types = parse_exposition(text)
        for fam in ("boxoffice_http_requests_total", "boxoffice_worker_starts_total",
                    "boxoffice_db_query_duration_seconds", "boxoffice_redis_breaker_open",
                    "boxoffice_queue_events_total"):
            self.assertIn(fam, types, "no TYPE line for %s" % fam)
        self.assertGreater(samples[("boxoffice_worker_starts_total", frozenset())], 0)

    def test_prometheus_config_renders_and_checks(self):
        rc, out = mon.promtool("check", "config", self.mon.config_file)
        self.assertEqual(rc, 0, out)
        # several nginx hosts, for a scaled-out deployment
        out_file = os.path.join(self.mondir, "several.yml")
        mon.render_config(srcdir(), out_file, ["127.0.0.1:8080", "127.0.0.2:8080"],
                          "127.0.0.1:9187", "127.0.0.1:9188", "127.0.0.1:9121",
                          "127.0.0.1:9090", scrape_interval="15s")
        rc, out = mon.promtool("check", "config", out_file)
        self.assertEqual(rc, 0, out)
        self.assertIn("'127.0.0.2:8080'", open(out_file).read())

    # -------------------------------------------------------- Prometheus
    def test_prometheus_scrapes_every_target_and_evaluates_every_rule(self):
        self.targets_up()
        got = {(t["job"], t["role"]) for t in self.mon.targets() if t["health"] == "up"}
        self.assertEqual(got, {("boxoffice", None), ("postgres", "primary"),
                               ("postgres", "replica"), ("redis", None), ("prometheus", None)})
        self.assertEqual(self.mon.value('pg_up{job="postgres", role="primary"}'), 1)
        self.assertEqual(self.mon.value('pg_up{job="postgres", role="replica"}'), 1)
        self.assertEqual(self.mon.value('redis_up{job="redis"}'), 1)
        self.assertEqual(self.mon.value('pg_replication_slots_active{job="postgres", '
                                        'role="primary", slot_name="boxoffice_replica"}'), 1)
        self.assertGreater(self.mon.value('boxoffice_worker_starts_total{job="boxoffice"}'), 0)

        alerts = set(re.findall(r"^\s*- alert: (\S+)", open(ALERTS).read(), re.M))
        deadline = time.time() + 10
        while True:
            rules = [r for g in self.mon.api("rules")["groups"] for r in g["rules"]]
            bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules
                   if r.get("health") != "ok"]
            if not bad or time.time() > deadline:
                break
            time.sleep(0.3)
        self.assertEqual({r["name"] for r in rules}, alerts)
        self.assertEqual(bad, [], "rules that do not evaluate")
        # the stack is healthy: none of these may even be pending
        active = {(a["labels"]["alertname"], a["state"]) for a in self.mon.api("alerts")["alerts"]}
        for name in ("BoxofficeDown", "BoxofficePrimaryDown", "BoxofficeReplicaDown",
                     "BoxofficeRedisDown", "BoxofficeExporterDown",
                     "BoxofficeReplicaNotStreaming"):
            self.assertNotIn(name, {a for a, _ in active}, active)

    def test_prometheus_alert_turns_pending_when_an_exporter_stops(self):
        self.targets_up()
        pid = self.mon.pids["redis_exporter"]
        mon.procs.terminate(pid, timeout=5, group=False)
        self.mon.pids.pop("redis_exporter", None)
        try:
            q = 'ALERTS{alertname="BoxofficeExporterDown", job="redis"}'
            self.wait_for(lambda: self.mon.query(q), timeout=15, interval=0.3,
                          msg="BoxofficeExporterDown pending for the stopped Redis exporter")
            res = self.mon.query(q)
            self.assertEqual(res[0]["metric"]["alertstate"], "pending")   # for: 2m
            self.assertEqual(res[0]["metric"]["severity"], "warning")
        finally:
            self.mon.start(timeout=30)           # starts the exporter again
        self.wait_for(lambda: self.mon.value('up{job="redis"}') == 1, timeout=15,
                      interval=0.3, msg="the Redis exporter scraped again")
        self.wait_for(lambda: not self.mon.query(q), timeout=15, interval=0.3,
                      msg="BoxofficeExporterDown gone once the exporter is back")

    def test_prometheus_counts_the_requests_sent_per_route(self):
        self.targets_up()
        reservation = "/api/reservations/00000000-0000-4000-8000-00000000abcd"
        # (method, path, body, route label, status label, how many)
        plan = [
            ("GET", "/api/ping", None, "/api/ping", "200", 37),
            ("GET", "/api/monitoring-test/nowhere", None, "unmatched", "404", 23),
            ("POST", "/api/queues/token", {}, "/api/queues/token", "400", 17),
            ("GET", reservation, None, "/api/reservations/{reservationId}", "401", 13),
            ("DELETE", reservation, None, "/api/reservations/{reservationId}", "401", 11),
        ]
        keys = [(route, method, status) for method, _, _, route, status, _ in plan]

        def send(item):
            method, path, body, _, status, _ = item
            st, _, resp = self.http(method, path, body=body, timeout=10)
            self.assertEqual(st, int(status), "%s %s: %r" % (method, path, resp))

        # One of each first: a series Prometheus sees appear has no
        # increase yet; from then on every request counts.
        for item in plan:
            send(item)
        direct = self.scrape_samples()
        before = {k: direct[self.requests_key(*k)] for k in keys}
        t0 = self.wait_prom_counts(before)

        jobs = [item for item in plan for _ in range(item[5])]
        results = self.concurrently(lambda i: send(jobs[i]), len(jobs), threads=8)
        errors = [r for r in results if isinstance(r, BaseException)]
        self.assertEqual(errors, [])

        direct = self.scrape_samples()
        after = {k: direct[self.requests_key(*k)] for k in keys}
        sent = {k: float(item[5]) for k, item in zip(keys, plan)}
        self.assertEqual({k: after[k] - before[k] for k in keys}, sent,
                         "/metrics did not count every request once")
        t1 = self.wait_prom_counts(after)

        # Exact: the stored samples at both ends of the window.
        for k in keys:
            self.assertEqual(self.prom_count(*k, at=t1) - self.prom_count(*k, at=t0), sent[k], k)
        # increase() over the window: extrapolated by at most the scrape
        # interval at either end.
        window = math.ceil(t1 - t0) + 2
        for k in keys:
            inc = self.mon.value(
                'sum(increase(boxoffice_http_requests_total{job="boxoffice", route="%s", '
                'method="%s", status="%s"}[%ds]))' % (k + (window,)), at=t1)
            hi = sent[k] * window / (window - 2 * SCRAPE_INTERVAL)
            self.assertTrue(sent[k] - 0.5 <= inc <= hi + 0.5,
                            "%s: increase %.2f over %ds, sent %d" % (k, inc, window, sent[k]))
        # Prometheus's own scrapes reach the workers through nginx too.
        scrapes = self.mon.value('count_over_time(up{job="boxoffice"}[%ds])' % window, at=t1)
        served = (self.prom_count("/metrics", "GET", "200", at=t1)
                  - (self.prom_count("/metrics", "GET", "200", at=t1 - window) or 0))
        self.assertGreaterEqual(served, scrapes - 1)

    def test_scrapes_through_different_workers_agree(self):
        for _ in range(5):
            self.get("/api/ping")
        metrics_key = self.requests_key("/metrics", "GET", "200")

        def shared(samples):
            """Everything no scrape changes: worker starts and the requests
            of every route but /metrics (no other traffic meanwhile)."""
            return {k: v for k, v in samples.items()
                    if k[0] == "boxoffice_worker_starts_total"
                    or (k[0] == "boxoffice_http_requests_total" and k != metrics_key
                        and ("route", "/metrics") not in k[1])}

        def one(_):
            t_start = time.time()
            samples = self.scrape_samples()
            return t_start, time.time(), samples

        log_size = os.path.getsize(self.stack.access_log)
        first = self.scrape_samples()
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
            burst1 = list(ex.map(one, range(48)))
            burst2 = list(ex.map(one, range(48)))
        time.sleep(0.3)
        last = self.scrape_samples()

        scrapes = [first] + [s for _, _, s in burst1 + burst2] + [last]
        want = shared(first)
        self.assertIn(("boxoffice_worker_starts_total", frozenset()), want)
        for s in scrapes:
            self.assertEqual(shared(s), want, "a worker reports other totals")
        # /metrics requests only grow, whichever worker answers
        timed = burst1 + burst2
        for a_start, a_end, a in timed:
            for b_start, _, b in timed:
                if b_start > a_end:
                    self.assertGreaterEqual(b[metrics_key], a[metrics_key])
        self.assertGreaterEqual(min(s[metrics_key] for _, _, s in burst2),
                                max(s[metrics_key] for _, _, s in burst1))
        # every scrape was counted, by whichever worker answered it
        self.assertGreaterEqual(last[metrics_key], first[metrics_key] + 1 + len(timed))

        # and they were answered by several workers
        with open(self.stack.access_log, "rb") as f:
            f.seek(log_size)
            lines = f.read().decode("utf-8", "replace").splitlines()
        pids = {m.group(1) for m in (re.search(r" pid=(\d+) GET /metrics 200 ", line)
                                     for line in lines) if m}
        self.assertGreaterEqual(len(pids), 2, "all scrapes went to one worker: %s" % pids)

    # ----------------------------------------------------------- Grafana
    def test_dashboard_is_valid_and_its_queries_run_on_real_metrics(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        self.assertEqual(dash["uid"], "boxoffice-overview")
        self.assertIsInstance(dash["schemaVersion"], int)
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        panels = dash["panels"]
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")

        cells = set()
        exprs = []
        for p in panels:
            g = p["gridPos"]
            self.assertTrue(0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, "panel %r overlaps another" % p["title"])
                    cells.add((x, y))
            if p["type"] == "row":
                continue
            self.assertTrue(p.get("title"))
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                             p["title"])
            self.assertTrue(p["targets"], p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
                exprs.append((p["title"], t["expr"]))
        for v in variables.values():
            if v["type"] == "query":
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                m = re.match(r"^label_values\((.*),\s*\w+\)$", q)
                self.assertTrue(m, q)
                exprs.append(("variable " + v["name"], m.group(1)))

        # Every query runs, and names only metrics that exist: those
        # Prometheus has scraped from the stack and the exporters, and the
        # families /metrics declares (some have no series until used).
        self.targets_up()
        known = set(self.mon.api("label/__name__/values")) | BUILTIN_SERIES
        for fam, typ in parse_exposition(self.scrape())[1].items():
            known.add(fam)
            if typ == "histogram":
                known.update(fam + s for s in ("_bucket", "_sum", "_count"))
        for title, expr in exprs + rule_exprs(ALERTS):
            q = grafana_expr(expr)
            try:
                self.mon.query(q)
            except mon.MonitoringError as e:
                self.fail("%s: %s does not run: %s" % (title, q, e))
            names = metric_names(q)
            self.assertTrue(names, "%s: no metric in %s" % (title, q))
            self.assertEqual(sorted(names - known), [],
                             "%s: unknown metrics in %s" % (title, q))

        # Provisioning: the data source and the dashboard folder.
        with open(os.path.join(GRAFANA_PROV, "datasources", "boxoffice.yml")) as f:
            ds = f.read()
        for want in ("apiVersion: 1", "type: prometheus", "uid: boxoffice-prometheus",
                     "url: ${BOXOFFICE_PROMETHEUS_URL}"):
            self.assertIn(want, ds)
        with open(os.path.join(GRAFANA_PROV, "dashboards", "boxoffice.yml")) as f:
            prov = f.read()
        for want in ("apiVersion: 1", "type: file", "path: ${BOXOFFICE_GRAFANA_DASHBOARDS}"):
            self.assertIn(want, prov)


if __name__ == "__main__":
    unittest.main()
