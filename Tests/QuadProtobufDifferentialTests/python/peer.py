#!/usr/bin/env python3
"""Python protobuf (upb) as an independent peer for the Swift differential tests.

Messages are built from a FileDescriptorSet (protoc --include_imports), not from generated code.

  peer.py FDS echo DIR          for each DIR/<Type>__<n>.bin|.json written by Swift: parse the binary,
                                write <n>.py.bin (Python's encoding) and <n>.py.json (Python's JSON),
                                and check that Swift's JSON parses to the same message (<n>.jsoncheck)
  peer.py FDS generate DIR N S  write N random messages of each type (seed S) as py__<Type>__<i>.bin/.json
  peer.py FDS compare DIR       check every py__*.swift.bin / .swift.json (Swift's re-encodings)
                                parses to the message Python generated
"""
import glob
import os
import random
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor as FD

fds = descriptor_pb2.FileDescriptorSet()
with open(sys.argv[1], "rb") as f:
    fds.ParseFromString(f.read())
pool = descriptor_pool.DescriptorPool()
for fp in fds.file:
    pool.Add(fp)


def cls(name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def split(path):
    base = os.path.basename(path)
    type_name, rest = base.split("__", 1)
    return type_name, rest.split(".")[0]


def echo(d):
    count = 0
    for path in sorted(glob.glob(os.path.join(d, "*__*.bin"))):
        if path.endswith(".py.bin"):
            continue
        type_name, n = split(path)
        stem = os.path.join(d, f"{type_name}__{n}")
        m = cls(type_name)()
        with open(path, "rb") as f:
            m.ParseFromString(f.read())
        with open(stem + ".py.bin", "wb") as f:
            f.write(m.SerializeToString(deterministic=True))
        with open(stem + ".py.json", "w") as f:
            f.write(json_format.MessageToJson(m, descriptor_pool=pool))
        if os.path.exists(stem + ".json"):
            j = cls(type_name)()
            with open(stem + ".json") as f:
                try:
                    json_format.Parse(f.read(), j, descriptor_pool=pool)
                    verdict = "ok" if j == m else "differs: " + describe_difference(m, j)
                except Exception as e:  # noqa: BLE001 - report any parse failure to the Swift side
                    verdict = f"parse error: {e}"
            with open(stem + ".jsoncheck", "w") as f:
                f.write(verdict)
        count += 1
    print(f"echo: {count} messages")


def describe_difference(a, b):
    """The fields whose values differ, each shown both ways (shortened)."""
    names = sorted({fd.name for fd, _ in a.ListFields()} | {fd.name for fd, _ in b.ListFields()})
    out = []
    for n in names:
        va, vb = getattr(a, n), getattr(b, n)
        if va != vb:
            out.append(f"{n}: binary={str(va)[:300]!r} json={str(vb)[:300]!r}")
    return "; ".join(out) or f"{a} vs {b}"


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def scalar(self, fd):
        r = self.r
        t = fd.type
        edge = r.random() < 0.2
        if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
            return r.choice([0, -1, 1, -2**31, 2**31 - 1]) if edge else r.randint(-2**31, 2**31 - 1)
        if t in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
            return r.choice([0, -1, 1, -2**63, 2**63 - 1]) if edge else r.randint(-2**63, 2**63 - 1)
        if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
            return r.choice([0, 1, 2**32 - 1]) if edge else r.randint(0, 2**32 - 1)
        if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
            return r.choice([0, 1, 2**64 - 1]) if edge else r.randint(0, 2**64 - 1)
        if t == FD.TYPE_DOUBLE:
            return r.choice([0.0, -0.0, float("inf"), float("-inf"), 1e308]) if edge else r.uniform(-1e9, 1e9)
        if t == FD.TYPE_FLOAT:
            return r.choice([0.0, 1.5, float("inf")]) if edge else float(r.randint(-10**6, 10**6)) / 64
        if t == FD.TYPE_BOOL:
            return r.random() < 0.5
        if t == FD.TYPE_STRING:
            return r.choice(["", "quad", "Ünïcödé", "日本", "🎓", "a\"b\\c\n", "x" * r.randint(0, 300)])
        if t == FD.TYPE_BYTES:
            return bytes(r.randint(0, 255) for _ in range(r.randint(0, 40)))
        if t == FD.TYPE_ENUM:
            values = [v.number for v in fd.enum_type.values]
            if fd.enum_type.is_closed:
                return r.choice(values)
            return r.choice(values + [r.randint(5, 1000)])
        raise ValueError(t)

    def fill(self, m, depth):
        r = self.r
        desc = m.DESCRIPTOR
        oneof_done = set()
        for fd in desc.fields:
            if fd.message_type and fd.message_type.full_name.startswith("google.protobuf."):
                continue  # well-known types come from the Swift side
            if fd.containing_oneof is not None and not fd.containing_oneof.name.startswith("_"):
                if fd.containing_oneof.name in oneof_done or r.random() < 0.6:
                    continue
                oneof_done.add(fd.containing_oneof.name)
            if r.random() < 0.4:
                continue
            if fd.message_type and fd.message_type.GetOptions().map_entry:
                kf, vf = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
                target = getattr(m, fd.name)
                for _ in range(r.randint(0, 3)):
                    k = self.scalar(kf)
                    if vf.message_type:
                        if depth > 0:
                            self.fill(target[k], depth - 1)
                    else:
                        target[k] = self.scalar(vf)
                continue
            if fd.is_repeated:
                target = getattr(m, fd.name)
                for _ in range(r.randint(0, 3)):
                    if fd.message_type:
                        if depth > 0:
                            self.fill(target.add(), depth - 1)
                    else:
                        target.append(self.scalar(fd))
            elif fd.message_type:
                if depth > 0:
                    sub = getattr(m, fd.name)
                    sub.SetInParent()
                    self.fill(sub, depth - 1)
            else:
                setattr(m, fd.name, self.scalar(fd))
        return m


def generate(d, n, seed):
    g = Gen(seed)
    names = ["quad.test.v1.Everything", "quad.test.v1.Legacy", "quad.test.v1.Everything.Nested"]
    for name in names:
        for i in range(n):
            m = g.fill(cls(name)(), 2)
            if name == "quad.test.v1.Legacy":
                m.id = g.r.randint(-2**63, 2**63 - 1)  # required
            stem = os.path.join(d, f"py__{name}__{i}")
            with open(stem + ".bin", "wb") as f:
                f.write(m.SerializeToString())
            with open(stem + ".json", "w") as f:
                f.write(json_format.MessageToJson(m, descriptor_pool=pool))
    print(f"generate: {n * len(names)} messages")


def compare(d):
    failures = 0
    checked = 0
    for path in sorted(glob.glob(os.path.join(d, "py__*.bin"))):
        if path.endswith(".swift.bin"):
            continue
        name = os.path.basename(path).split("__")[1]
        stem = path[:-4]
        original = cls(name)()
        with open(path, "rb") as f:
            original.ParseFromString(f.read())
        for suffix, parse in ((".swift.bin", "binary"), (".swift.json", "json")):
            got = cls(name)()
            with open(stem + suffix, "rb") as f:
                data = f.read()
            if parse == "binary":
                got.ParseFromString(data)
            else:
                json_format.Parse(data.decode(), got, descriptor_pool=pool)
            checked += 1
            if got != original:
                failures += 1
                print(f"MISMATCH {stem}{suffix}:\nexpected {original}\ngot {got}")
    print(f"compare: {checked} checked, {failures} failed")
    sys.exit(1 if failures else 0)


mode = sys.argv[2]
if mode == "echo":
    echo(sys.argv[3])
elif mode == "generate":
    generate(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
elif mode == "compare":
    compare(sys.argv[3])
else:
    sys.exit(f"unknown mode {mode}")
