#!/usr/bin/env python3
"""Fails on any wire- or JSON-breaking change to the campus contracts.

Compares the released contracts (a FileDescriptorSet committed in Protos/released/) with the
.proto files as they are now, as `buf breaking` does with its WIRE_JSON rules: a message, enum,
service or method removed; a field or enum value removed without reserving its number and name,
renumbered, renamed (JSON uses names), given another type, cardinality or oneof; a reserved
number or name used again; a method's types or streaming changed. Events are messages like the
others, so they are held to the same rules (they are kept forever).

usage: check-contracts.py RELEASED.binpb CURRENT.binpb [PACKAGE_PREFIX]
"""
import sys

from google.protobuf import descriptor_pb2

LABEL_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED


def load(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    return fds


def index(fds, prefix):
    """Full name -> descriptor, for messages (nested included), enums and services of the
    files whose package starts with `prefix`."""
    messages, enums, services = {}, {}, {}

    def walk_enum(scope, e):
        enums[f"{scope}.{e.name}"] = e

    def walk_message(scope, m):
        name = f"{scope}.{m.name}"
        messages[name] = m
        for n in m.nested_type:
            walk_message(name, n)
        for e in m.enum_type:
            walk_enum(name, e)

    for f in fds.file:
        if not f.package.startswith(prefix):
            continue
        scope = "." + f.package if f.package else ""
        for m in f.message_type:
            walk_message(scope, m)
        for e in f.enum_type:
            walk_enum(scope, e)
        for s in f.service:
            services[f"{scope}.{s.name}"] = s
    return messages, enums, services


def reserved(d):
    numbers = [(r.start, r.end) for r in d.reserved_range]  # end exclusive for messages
    return numbers, set(d.reserved_name)


def in_ranges(n, ranges, inclusive_end=False):
    return any(start <= n < end or (inclusive_end and n == end) for start, end in ranges)


def oneof_name(m, field):
    if not field.HasField("oneof_index") or field.proto3_optional:
        return None
    return m.oneof_decl[field.oneof_index].name


def check_message(name, old, new, problems):
    new_by_number = {f.number: f for f in new.field}
    old_by_number = {f.number: f for f in old.field}
    new_ranges, new_names = reserved(new)
    old_ranges, old_names = reserved(old)
    for f in old.field:
        g = new_by_number.get(f.number)
        if g is None:
            if not in_ranges(f.number, new_ranges) or f.name not in new_names:
                problems.append(f"{name}: field {f.name} = {f.number} was removed without reserving its number and name")
            continue
        if g.name != f.name or g.json_name != f.json_name:
            problems.append(f"{name}: field {f.number} was renamed from {f.name} to {g.name} (breaks JSON)")
        if g.type != f.type or g.type_name != f.type_name:
            old_type = f.type_name or descriptor_pb2.FieldDescriptorProto.Type.Name(f.type)
            new_type = g.type_name or descriptor_pb2.FieldDescriptorProto.Type.Name(g.type)
            problems.append(f"{name}: field {f.name} = {f.number} changed type from {old_type} to {new_type}")
        if (g.label == LABEL_REPEATED) != (f.label == LABEL_REPEATED):
            problems.append(f"{name}: field {f.name} = {f.number} changed between repeated and singular")
        if oneof_name(old, f) != oneof_name(new, g):
            problems.append(f"{name}: field {f.name} = {f.number} moved into or out of a oneof")
    old_by_name = {f.name: f for f in old.field}
    for g in new.field:
        if g.number in old_by_number:
            continue
        if in_ranges(g.number, old_ranges):
            problems.append(f"{name}: field {g.name} reuses reserved number {g.number}")
        elif g.name in old_names:
            problems.append(f"{name}: field {g.name} = {g.number} reuses a reserved name")
        elif g.name in old_by_name:
            problems.append(f"{name}: field {g.name} was renumbered from {old_by_name[g.name].number} to {g.number}")


def check_enum(name, old, new, problems):
    new_by_number = {}
    for v in new.value:
        new_by_number.setdefault(v.number, []).append(v.name)
    new_ranges = [(r.start, r.end) for r in new.reserved_range]  # end inclusive for enums
    new_names = set(new.reserved_name)
    old_ranges = [(r.start, r.end) for r in old.reserved_range]
    old_numbers = {v.number for v in old.value}
    for v in old.value:
        names = new_by_number.get(v.number)
        if names is None:
            if not in_ranges(v.number, new_ranges, inclusive_end=True) or v.name not in new_names:
                problems.append(f"{name}: value {v.name} = {v.number} was removed without reserving its number and name")
        elif v.name not in names:
            problems.append(f"{name}: value {v.number} was renamed from {v.name} to {names[0]} (breaks JSON)")
    for v in new.value:
        if v.number not in old_numbers and in_ranges(v.number, old_ranges, inclusive_end=True):
            problems.append(f"{name}: value {v.name} reuses reserved number {v.number}")


def check_service(name, old, new, problems):
    methods = {m.name: m for m in new.method}
    for m in old.method:
        n = methods.get(m.name)
        if n is None:
            problems.append(f"{name}: method {m.name} was removed")
            continue
        if (n.input_type, n.output_type) != (m.input_type, m.output_type):
            problems.append(f"{name}.{m.name}: changed types from ({m.input_type}) returns ({m.output_type}) to ({n.input_type}) returns ({n.output_type})")
        if (n.client_streaming, n.server_streaming) != (m.client_streaming, m.server_streaming):
            problems.append(f"{name}.{m.name}: changed streaming")


def fields(data):
    """(number, wire type, value) of each field in protobuf bytes (varints and length-delimited
    values only, which is all the event option holds)."""
    i = 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 2:
            n = varint()
            yield number, wire, data[i:i + n]
            i += n
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"wire type {wire} in an option")


def event_option(m):
    """(stream_type, superseded_by) from `option (quad.v1.event)`, or None."""
    for number, wire, value in fields(m.options.SerializeToString()):
        if number == 51001 and wire == 2:
            stream_type = superseded_by = ""
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    stream_type = v.decode()
                elif n == 2 and w == 2:
                    superseded_by = v.decode()
            return stream_type, superseded_by
    return None


def check_superseded(messages, problems):
    """An event's `superseded_by` names another event of the same stream type."""
    events = {name.lstrip("."): event_option(m) for name, m in messages.items() if event_option(m)}
    for name, (stream_type, successor) in sorted(events.items()):
        if not successor:
            continue
        if successor not in events:
            problems.append(f"event {name} is superseded_by {successor}, which is not an event")
        elif events[successor][0] != stream_type:
            problems.append(f"event {name} (stream type {stream_type}) is superseded_by {successor} of stream type {events[successor][0]}")
        elif successor == name:
            problems.append(f"event {name} is superseded_by itself")


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    prefix = sys.argv[3] if len(sys.argv) == 4 else "campus."
    old_m, old_e, old_s = index(load(sys.argv[1]), prefix)
    new_m, new_e, new_s = index(load(sys.argv[2]), prefix)
    problems = []
    for kind, old, new, check in (("message", old_m, new_m, check_message), ("enum", old_e, new_e, check_enum),
                                  ("service", old_s, new_s, check_service)):
        for name, d in sorted(old.items()):
            if name not in new:
                problems.append(f"{kind} {name.lstrip('.')} was removed")
            else:
                check(name.lstrip("."), d, new[name], problems)
    check_superseded(new_m, problems)
    for p in problems:
        print(f"check-contracts: breaking: {p}", file=sys.stderr)
    if problems:
        print(f"check-contracts: {len(problems)} breaking change(s) against the released contracts", file=sys.stderr)
        return 1
    print(f"check-contracts: no breaking change ({len(old_m)} messages, {len(old_e)} enums, {len(old_s)} services released)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
