#!/usr/bin/env python3
"""Drive headless Chromium over --remote-debugging-pipe (the DevTools
protocol, Python's standard library only): open a page, record every
network request and every console error or uncaught exception, sort and
filter its tables, click the first `a.org` link and report where it led.

usage: cdp_check.py CHROMIUM PROFILE_DIR URL
Prints one JSON object.
"""
import json
import os
import subprocess
import sys
import time

chromium, profile, url = sys.argv[1], sys.argv[2], sys.argv[3]
cmd_r, cmd_w = os.pipe()
res_r, res_w = os.pipe()


def child_fds():
    a, b = os.dup(cmd_r), os.dup(res_w)
    os.dup2(a, 3)
    os.dup2(b, 4)


proc = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
     "--no-first-run", "--disable-background-networking", "--disable-component-update",
     "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND",
     "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"],
    pass_fds=(3, 4), preexec_fn=child_fds,
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(cmd_r)
os.close(res_w)
reader = os.fdopen(res_r, "rb")
writer = os.fdopen(cmd_w, "wb")
buf = b""
next_id = [0]
events = []


def read_message():
    global buf
    while b"\0" not in buf:
        chunk = os.read(res_r, 65536)
        if not chunk:
            raise SystemExit("chromium closed the pipe")
        buf += chunk
    msg, buf = buf.split(b"\0", 1)
    return json.loads(msg)


def send(method, params=None, session=None):
    next_id[0] += 1
    msg = {"id": next_id[0], "method": method, "params": params or {}}
    if session:
        msg["sessionId"] = session
    writer.write(json.dumps(msg).encode() + b"\0")
    writer.flush()
    while True:
        m = read_message()
        if m.get("id") == next_id[0]:
            if "error" in m:
                raise SystemExit(f"{method}: {m['error']}")
            return m.get("result", {})
        events.append(m)


def wait_for(method, timeout=30):
    deadline = time.time() + timeout
    for i, m in enumerate(events):
        if m.get("method") == method:
            del events[i]
            return m
    while time.time() < deadline:
        m = read_message()
        if m.get("method") == method:
            return m
        events.append(m)
    raise SystemExit(f"timed out waiting for {method}")


def evaluate(session, expr):
    r = send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
    return r.get("result", {}).get("value")


target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
for domain in ["Network", "Runtime", "Log", "Page"]:
    send(domain + ".enable", {}, session)
events.clear()
send("Page.navigate", {"url": url}, session)
wait_for("Page.loadEventFired")
out = {"title": evaluate(session, "document.title")}
out["rows"] = evaluate(session, "document.querySelectorAll('#orgs tbody tr').length")
out["first_before_sort"] = evaluate(session, "document.querySelector('#orgs tbody tr td').textContent")
evaluate(session, "document.querySelector('#orgs th').click(); document.querySelector('#orgs th').click()")
out["first_after_sort"] = evaluate(session, "document.querySelector('#orgs tbody tr td').textContent")
out["visible_after_filter"] = evaluate(session, """(function(){var i=document.querySelector('input[data-filter=orgs]');
 i.value=document.querySelector('#orgs tbody tr td').textContent; i.dispatchEvent(new Event('input'));
 var n=Array.prototype.filter.call(document.querySelectorAll('#orgs tbody tr'),function(r){return !r.hidden;}).length;
 i.value=''; i.dispatchEvent(new Event('input')); return n;})()""")
out["clicked"] = evaluate(session, "document.querySelector('#orgs tbody tr a.org').textContent")
evaluate(session, "document.querySelector('#orgs tbody tr a.org').click()")
wait_for("Page.loadEventFired")
out["location"] = evaluate(session, "location.href")
out["org_name"] = evaluate(session, "(document.getElementById('org-name')||{}).textContent")
time.sleep(0.3)
# Drain what arrived meanwhile.
send("Runtime.evaluate", {"expression": "1"}, session)
out["requests"] = [m["params"]["request"]["url"] for m in events
                   if m.get("method") == "Network.requestWillBeSent"]
errors = []
for m in events:
    method = m.get("method")
    p = m.get("params", {})
    if method == "Runtime.exceptionThrown":
        errors.append(p.get("exceptionDetails", {}).get("text", "exception"))
    elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        errors.append(json.dumps(p.get("args")))
    elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
        errors.append(p["entry"].get("text", "error"))
out["errors"] = errors
try:
    send("Browser.close")
except SystemExit:
    pass
proc.wait(timeout=30)
print(json.dumps(out))
