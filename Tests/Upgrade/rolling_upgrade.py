"""A rolling upgrade, with real binaries: the released `quad` serves a PostgreSQL server; the new
`quad` starts beside it on the same database (applying its newer migrations under the old one's
feet); both take writes and serve reads and subscriptions at once; then the old one stops and the
new one carries on. Clients are grpcio stubs generated from Protos/ (the new contracts, which the
old server must accept).

Checks, one "ok ..." line each:
- the new instance applied only migrations newer than the old one's, and the old one keeps
  writing and reading after them;
- a student registered through either instance reads the same through both, and a card issued
  through one is known to the other's scans context (its card directory follows the log);
- a subscriber on each instance sees every acknowledged write's event, once, in position order,
  and the two see the same log;
- after the old instance stops, the new one's subscriber keeps receiving.

Usage: rolling_upgrade.py OLD_QUAD NEW_QUAD"""
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import grpc_tools
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def stubs():
    out = tempfile.mkdtemp(prefix="quad-upgrade-py-")
    includes = ["-I" + os.path.join(ROOT, "Protos"), "-I" + os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")]
    files = ["quad/v1/options.proto", "quad/events/v1/events.proto", "campus/students/v1/students.proto",
             "campus/scans/v1/scans.proto"]
    rc = protoc.main(["protoc"] + includes + ["--python_out=" + out, "--grpc_python_out=" + out] + files)
    if rc != 0:
        raise SystemExit("grpc_tools.protoc failed with %d" % rc)
    sys.path.insert(0, out)
    from campus.scans.v1 import scans_pb2, scans_pb2_grpc
    from campus.students.v1 import students_pb2, students_pb2_grpc
    from quad.events.v1 import events_pb2, events_pb2_grpc
    return students_pb2, students_pb2_grpc, scans_pb2, scans_pb2_grpc, events_pb2, events_pb2_grpc


st, st_rpc, sc, sc_rpc, ev, ev_rpc = stubs()


class Postgres:
    """A throw-away PostgreSQL cluster on a Unix socket; as root, run by the `postgres` user
    (PostgreSQL refuses root)."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        if not bins:
            raise SystemExit("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
        self.bin = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="quad-upgrade-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            p = pwd.getpwnam(self.user)
            os.chown(self.dir, p.pw_uid, p.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])
        self.run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"),
                  "-o", "-c listen_addresses='' -c unix_socket_directories=%s -c max_connections=200" % self.dir, "start"])
        self.conninfo = "host=%s port=5432 user=postgres dbname=postgres" % self.dir

    def run(self, argv):
        if self.user:
            argv = ["runuser", "-u", self.user, "--"] + argv
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C"))

    def sql(self, statement):
        psql = os.path.join(self.bin, "psql")
        out = subprocess.run([psql, "-XAtq", "-h", self.dir, "-U", "postgres", "-d", "postgres", "-c", statement],
                             check=True, capture_output=True, text=True)
        return out.stdout.split()

    def stop(self):
        try:
            self.run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Quad:
    """`quad serve` on a free port against `conninfo`."""

    def __init__(self, binary, conninfo, name, contexts):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix="quad-upgrade-%s-" % name, suffix=".log", delete=False)
        self.process = subprocess.Popen([binary, "serve", "--port", "0", "--database-url", conninfo, "--contexts", contexts],
                                        stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"serving .* on 0\.0\.0\.0:(\d+)", line)
        if not match:
            self.stop()
            raise SystemExit("%s did not start: %r\n%s" % (name, line, open(self.log.name).read()[-3000:]))
        self.port = int(match.group(1))
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        self.students = st_rpc.StudentsStub(self.channel)
        self.scans = sc_rpc.ScansStub(self.channel)
        self.events = ev_rpc.EventsStub(self.channel)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise SystemExit("%s did not drain within 60 s of SIGTERM" % self.name)


class Subscriber(threading.Thread):
    """Follows the log through one instance from its start, keeping (position, type, stream id)."""

    def __init__(self, quad):
        super().__init__(daemon=True)
        self.quad = quad
        self.seen = []
        self.error = None
        self.lock = threading.Lock()
        self.call = None

    def run(self):
        try:
            self.call = self.quad.events.Subscribe(ev.SubscribeRequest(start=ev.SubscribeRequest.START_FIRST), timeout=300)
            for e in self.call:
                with self.lock:
                    self.seen.append((e.cursor.position, e.event_type, e.stream_id))
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED and e.code() != grpc.StatusCode.UNAVAILABLE:
                self.error = e

    def positions(self):
        with self.lock:
            return list(self.seen)

    def wait_for(self, count, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if len(self.positions()) >= count:
                return self.positions()
            time.sleep(0.05)
        raise SystemExit("subscriber on %s saw %d events, expected %d (error %s)" % (self.quad.name, len(self.positions()), count, self.error))


def register(quad, sid):
    s = quad.students.RegisterStudent(st.RegisterStudentRequest(
        student_id=sid, given_name="Given " + sid, family_name="Family", email="%s@uni.example.edu" % sid.lower(),
        program="CS-BSC", enrolled_on="2026-09-01"), timeout=30)
    assert s.version == 1, s
    s = quad.students.IssueCard(st.IssueCardRequest(student_id=sid, card_id="CARD-" + sid), timeout=30)
    assert s.card_id == "CARD-" + sid, s


def scan(quad, sid, n):
    return quad.scans.RecordScan(sc.RecordScanRequest(
        scan_id="scan-%s-%d-%s" % (sid, n, quad.name), card_id="CARD-" + sid, location="library",
        direction=sc.DIRECTION_IN, device_id="door-1", scanned_at=Timestamp(seconds=int(time.time()))), timeout=30)


def known_card(quad, sid, n):
    """Records scans until the instance's card directory names the student (it follows the log)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        s = scan(quad, sid, n)
        n += 1
        if s.student_id == sid:
            return n
        time.sleep(0.1)
    raise SystemExit("%s never learned card CARD-%s" % (quad.name, sid))


def main():
    old_binary, new_binary = sys.argv[1], sys.argv[2]
    pg = Postgres()
    old = new = None
    try:
        old = Quad(old_binary, pg.conninfo, "old", "students,scans")
        before = set(pg.sql("SELECT version FROM quad_schema_migrations"))
        writes = 0
        for i in range(10):
            register(old, "O%03d" % i)
            writes += 2
        sub_old = Subscriber(old)
        sub_old.start()

        # The new one also serves contexts the old one did not have (their tables are new).
        new = Quad(new_binary, pg.conninfo, "new", "students,scans,accounts,cards")
        after = set(pg.sql("SELECT version FROM quad_schema_migrations"))
        added = sorted(int(v) for v in after - before)
        assert before <= after and added, (before, after)
        assert min(added) > 0, added
        print("ok the new instance applied migrations %s beside the running old one (which had %d)" % (added, len(before)))
        sub_new = Subscriber(new)
        sub_new.start()

        # Both instances write at once, each on its own students and the other's.
        failures = []

        def load(quad, prefix):
            nonlocal writes
            try:
                for i in range(15):
                    register(quad, "%s%03d" % (prefix, i))
                    writes += 2
            except Exception as e:  # noqa: BLE001 (reported below)
                failures.append("%s: %s" % (quad.name, e))

        threads = [threading.Thread(target=load, args=(old, "A")), threading.Thread(target=load, args=(new, "B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
        print("ok both instances took writes at once after the new migrations (%d events so far)" % writes)

        for sid in ["O000", "A014", "B014"]:
            a = old.students.GetStudent(st.GetStudentRequest(student_id=sid), timeout=30)
            b = new.students.GetStudent(st.GetStudentRequest(student_id=sid), timeout=30)
            assert (a.given_name, a.email, a.card_id, a.version) == (b.given_name, b.email, b.card_id, b.version), (a, b)
            assert a.given_name == "Given " + sid and a.card_id == "CARD-" + sid, a
        print("ok students registered through either instance read the same through both")

        # The old instance updates a student the new one registered (whose personal fields the
        # new one sealed in the log), and the new one updates one the old registered.
        for quad, other, sid in [(old, new, "B005"), (new, old, "A005")]:
            u = quad.students.UpdateStudent(st.UpdateStudentRequest(
                student_id=sid, expected_version=2, family_name="Renamed", update_mask={"paths": ["family_name"]}), timeout=30)
            writes += 1
            for q in (quad, other):
                g = q.students.GetStudent(st.GetStudentRequest(student_id=sid), timeout=30)
                assert (g.given_name, g.family_name, g.email, g.version) == ("Given " + sid, "Renamed", "%s@uni.example.edu" % sid.lower(), 3), (q.name, g)
        print("ok each instance updates students the other registered; both read the result the same")

        n = known_card(old, "B003", 0)
        writes += n
        m = known_card(new, "A003", 0)
        writes += m
        print("ok each instance's scans context knows the cards issued through the other")

        a, b = sub_old.wait_for(writes), sub_new.wait_for(writes)
        for seen in (a, b):
            positions = [p for p, _, _ in seen]
            assert positions == sorted(set(positions)), "out of order or repeated"
        assert a[:writes] == b[:writes], "the two subscribers saw different logs"
        print("ok both subscribers saw all %d events once, in position order, the same log" % writes)

        old.stop()
        old = None
        for i in range(5):
            register(new, "N%03d" % i)
            writes += 2
        b = sub_new.wait_for(writes)
        assert len(b) == writes, len(b)
        print("ok the old instance stopped; the new one kept writing, and its subscriber received all %d" % writes)
        if sub_new.error or sub_old.error:
            raise SystemExit("subscriber error: %s %s" % (sub_old.error, sub_new.error))
    finally:
        for q in (old, new):
            if q:
                q.stop()
        pg.stop()
    print("rolling upgrade: passed")


if __name__ == "__main__":
    main()
