"""Groups heaptrack's peak heap consumers by owner, per idle client (bench/idle-heap.sh).

Usage: idle-heap.py PEAKS.txt CLIENTS. Only allocation sites called at least once per two
clients count as per-client; the owner is read from the innermost frames of each site.
"""
import re
import sys
from collections import defaultdict

# (pattern in the innermost frames, owner), first match wins. With LTO, tokio::spawn and
# most constructors are inlined into their callers, so the caller names the owner.
RULES = [
    (r"create_session", "engineioxide: session (outgoing queue's first block, channels)"),
    (r"^[^|]*MapIntoResponseFuture", "engineioxide: websocket task (spawned by the request)"),
    (r"^[^|]*engineioxide::transport::ws::new_req", "engineioxide: websocket writer task"),
    (r"tungstenite|^[^|]*engineioxide::transport::ws::on_init", "tungstenite: websocket stream, buffers, split lock"),
    (r"url_params|map_request|http\.\.request\.\.Parts|http::uri|Uri\$u20\$as", "request head Engine.IO keeps (URI, headers)"),
    (r"serve_connection|hyper", "hyper: connection and upgrade"),
    (r"^[^|]*meshchat::", "meshchat: peer state, membership, peer table"),
    (r"socketioxide", "socketioxide: socket, handlers, extensions, rooms"),
    (r"tokio::", "tokio: tasks and timers"),
]


def size(text):
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text.rstrip("B"))


def sites(path):
    lines = open(path).read().split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^(\S+) consumed over (\d+) calls from:", line)
        if not m:
            continue
        frames = []
        for follow in lines[i + 1 :]:
            if not follow.startswith(" "):
                break
            t = follow.strip()
            if t.startswith(("in /", "at ")):
                continue
            if re.match(r"(alloc::|core::|std::|hashbrown::|<alloc|<core|__rust|malloc|realloc|calloc)", t):
                continue
            frames.append(t)
        yield size(m.group(1)), int(m.group(2)), frames


def main():
    path, clients = sys.argv[1], int(sys.argv[2])
    owners = defaultdict(float)
    for bytes_, calls, frames in sites(path):
        if calls < clients / 2:
            continue
        inner = "|".join(frames[:4])
        owner = next((o for p, o in RULES if re.search(p, inner)), "other")
        owners[owner] += bytes_ / clients
    total = sum(owners.values())
    print(f"| owner | bytes per idle client at {clients:,} |")
    print("|---|---:|")
    for owner, b in sorted(owners.items(), key=lambda kv: -kv[1]):
        print(f"| {owner} | {b:,.0f} |")
    print(f"| **heap per client, all owners** | **{total:,.0f}** |")


main()
