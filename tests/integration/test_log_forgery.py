"""Issue 10, item 8: nothing a client controls forges a log line or a field.
A valid token whose `sub` carries a newline and a whole fake JSON line, control
bytes, the characters that readers take for line breaks (NEL, U+2028, U+2029),
a bidirectional override and " key=value" text connects and leaves; the node's
log must still hold one well-formed line per event in both formats, with the
account read back exactly, and no forged line or field (docs/configuration.md,
"Logs")."""

import json
import re

import pytest

from harness import join, new_room, poll

FAKE = '{"time":"2026-01-01T00:00:00.000Z","level":"error","node":"forged","event":"forged","msg":"x"}'
EVIL_SUB = ("evil\n" + FAKE + "\r\n\u2028" + FAKE + "\u2029" + FAKE + "\x85" + FAKE
            + "\x1b[2J\x07" + "\u202e\u061c" + ' code=1 conn=forged "q" \\ end:')

# time level node event (key=value | key="quoted value")*: msg
TEXT_LINE = re.compile(r'^(\S+Z) (\w+) +(\S+) (\w+)((?: \w+=(?:"(?:[^"\\]|\\.)*"|[^ "]+))*): (.*)$')
TEXT_FIELD = re.compile(r' (\w+)=("(?:[^"\\]|\\.)*"|[^ "]+)')
TEXT_ESCAPE = re.compile(r'\\(x[0-9a-f]{2}|u[0-9a-f]{4}|.)')


def unescape_text(value):
    """A text log value as it was before escaping and quoting."""
    if value.startswith('"'):
        value = value[1:-1]

    def one(m):
        e = m.group(1)
        return chr(int(e[1:], 16)) if e[0] in "xu" and len(e) > 1 else e
    return TEXT_ESCAPE.sub(one, value)


def run_one_connection(nodes, log_format):
    """A node logging in log_format; the evil account connects and leaves.
    Returns the node once its conn_close line is written."""
    n = nodes.start({"SIGNAL_LOG_FORMAT": log_format, "SIGNAL_NODE_ID": "logs-node"})
    room = new_room()
    m = join(n, room, EVIL_SUB, name=EVIL_SUB)
    m.close()
    poll(lambda: "conn_close" in n.stderr(), what="a conn_close line")
    return n, room


def lines(node):
    # splitlines() breaks at \n, \r, NEL, U+2028, U+2029 and more, as many readers do.
    return node.stderr().splitlines()


def test_json_log_has_one_well_formed_line_per_event(nodes):
    n, room = run_one_connection(nodes, "json")
    events = []
    for line in lines(n):
        try:
            events.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line that is not JSON: {line!r}\n{n.stderr()!r}")
    assert all(e["node"] == "logs-node" and e["event"] != "forged" for e in events), events
    conns = [e for e in events if e["event"] in ("conn_open", "conn_close")]
    assert [e["event"] for e in conns] == ["conn_open", "conn_close"], conns
    for e in conns:
        assert e["account"] == EVIL_SUB, e
        assert e["room"] == room and e["level"] == "info", e


def test_text_log_has_no_forged_line_or_field(nodes):
    n, room = run_one_connection(nodes, "text")
    parsed = []
    for line in lines(n):
        m = TEXT_LINE.match(line)
        assert m, f"a log line that does not read as one event: {line!r}\n{n.stderr()!r}"
        parsed.append((m.group(4), {k: unescape_text(v) for k, v in TEXT_FIELD.findall(m.group(5))}))
    assert all(event != "forged" for event, _ in parsed), parsed
    conns = [(event, f) for event, f in parsed if event in ("conn_open", "conn_close")]
    assert [event for event, _ in conns] == ["conn_open", "conn_close"], conns
    assert set(conns[0][1]) == {"room", "account", "conn"}, conns[0]
    assert set(conns[1][1]) == {"room", "account", "conn", "code", "duration_ms"}, conns[1]
    for _, f in conns:
        assert f["account"] == EVIL_SUB and f["room"] == room, f
    assert conns[1][1]["code"] == "1000"
