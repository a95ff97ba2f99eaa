#!/usr/bin/env python3
"""lib_copies_test.py (integration.lib_copies): the lib modules of an installed package live
inside its plugin folder (plugins/NAME/lib/), so that installing another plugin that brings an
incompatible version of the same module leaves the first plugin working, and the shared
plugins/lib/ is never written by an install. Also: require finds the plugin's own copy before
the shared folder's; a package named "lib" is refused; a symlink in an installed plugin's lib/
refuses the load naming it; `plugin pack` of an installed plugin packs its own copies.

Usage: lib_copies_test.py TQHOST SRCDIR"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Tally  # noqa: E402

TQ, SRC = (os.path.abspath(a) for a in sys.argv[1:3])
t = Tally()
W = tempfile.mkdtemp(prefix="lib_copies.")
PLUG = os.path.join(W, "plugins")
os.makedirs(os.path.join(PLUG, "lib", "tm"))
SHARED = os.path.join(PLUG, "lib", "tm", "x.lua")
open(SHARED, "w").write('return { a = function() return "shared" end }\n')
open(os.path.join(W, "host.yaml"), "w").write("{}\n")  # its own host configuration: built-ins
ENV = dict(os.environ, TQHOST_CONFIG=os.path.join(W, "host.yaml"), TQHOST_PLUGINS=PLUG, TQHOST_SCHEMAS=os.path.join(SRC, "schemas"),
           TQHOST_DB=os.path.join(W, "lib.db"), TQHOST_KEY_FILE=os.path.join(W, "lib.key"),
           TQHOST_TRUSTED_KEYS=os.path.join(W, "keys"))


def tq(*argv):
    p = subprocess.run([TQ] + list(argv), capture_output=True, env=ENV, cwd=W)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


MANIFEST = """name: %s
label: %s
version: %s
script: operation.lua
requires: { lib: [tm] }
operations:
  - { name: look, entry: look, object_types: [indicator], indicator_types: [FQDN] }
"""


def package(name, version, call, module):
    """A plugin NAME whose script calls m.CALL() of module tm.x (given as its text)."""
    root = os.path.join(W, "src-%s-%s" % (name, version))
    pdir = os.path.join(root, "plugins", name)
    os.makedirs(pdir)
    os.makedirs(os.path.join(root, "plugins", "lib", "tm"))
    open(os.path.join(pdir, "manifest.yaml"), "w").write(MANIFEST % (name, name, version))
    open(os.path.join(pdir, "operation.lua"), "w").write(
        'local m = require "tm.x"\n'
        'return { look = function(obj, ctx) ctx:attribute("got", m.%s()) end }\n' % call)
    open(os.path.join(root, "plugins", "lib", "tm", "x.lua"), "w").write(module)
    out = os.path.join(W, "%s-%s.tqp" % (name, version))
    rc, _, err = tq("plugin", "pack", pdir, "-o", out)
    if rc != 0:
        raise RuntimeError("pack: " + err)
    return out


def got(name):
    rc, out, err = tq("--json", "op", "run", name + ":look", "example.com", "--type", "FQDN")
    try:
        attrs = json.loads(out)["changes"]["attributes"]
        return rc, [a["value"] for a in attrs if a["name"] == "got"]
    except (ValueError, KeyError, TypeError):
        return rc, err.strip()[-300:]


try:
    check = t.check
    check("init", tq("init")[0] == 0)
    a = package("plug-a", "1.0.0", "a", 'return { a = function() return "a1" end }\n')
    b = package("plug-b", "1.0.0", "b", 'return { b = function() return "b2" end }\n')
    rc, out, err = tq("plugin", "install", a, "--allow-unsigned")
    check("install plug-a (tm.x with a())", rc == 0, err)
    check("plug-a's module is inside its folder",
          open(os.path.join(PLUG, "plug-a", "lib", "tm", "x.lua")).read().find("a1") > 0)
    check("plug-a runs on its own copy, not the shared lib/'s", got("plug-a") == (0, ["a1"]),
          got("plug-a"))
    rc, out, err = tq("plugin", "install", b, "--allow-unsigned")
    check("install plug-b (tm.x with b() only: incompatible)", rc == 0, err)
    check("plug-a still works after plug-b brought another tm.x", got("plug-a") == (0, ["a1"]),
          got("plug-a"))
    check("plug-b works on its own tm.x", got("plug-b") == (0, ["b2"]), got("plug-b"))
    check("the shared plugins/lib/ was not written by either install",
          open(SHARED).read() == 'return { a = function() return "shared" end }\n')
    # an upgrade of plug-a with a new module: plug-b untouched
    a2 = package("plug-a", "2.0.0", "a", 'return { a = function() return "a2" end }\n')
    rc, out, err = tq("plugin", "install", a2, "--allow-unsigned")
    check("upgrade plug-a to 2.0.0: it runs on its new module, plug-b on its own",
          rc == 0 and got("plug-a") == (0, ["a2"]) and got("plug-b") == (0, ["b2"]),
          (err, got("plug-a"), got("plug-b")))
    # pack of the installed plugin takes its own copies
    out = os.path.join(W, "repack.tqp")
    rc, _, err = tq("plugin", "pack", os.path.join(PLUG, "plug-a"), "-o", out)
    names = tarfile.open(out).getnames() if rc == 0 else []
    body = tarfile.open(out).extractfile("lib/tm/x.lua").read() if "lib/tm/x.lua" in names else b""
    check("plugin pack of the installed plugin packs its own lib/tm/x.lua once",
          names.count("lib/tm/x.lua") == 1 and b"a2" in body, (names, err))
    # hostile: a package named lib; a symlink in an installed plugin's lib/
    files = {"manifest.yaml": (MANIFEST % ("lib", "lib", "1.0.0")).encode(),
             "operation.lua": b"return { look = function() end }\n"}
    files["MANIFEST.sha256"] = "".join("%s  %s\n" % (hashlib.sha256(files[n]).hexdigest(), n)
                                       for n in sorted(files)).encode()
    bad = os.path.join(W, "lib.tqp")
    with tarfile.open(bad, "w:gz") as tf:
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    rc, _, err = tq("plugin", "install", bad, "--allow-unsigned")
    check("a package named 'lib' is refused", rc != 0 and "'lib' is not a plugin name" in err, err)
    check("the shared lib/ is intact after it",
          os.path.isfile(SHARED) and not os.path.exists(os.path.join(PLUG, "lib", "manifest.yaml")))
    evil = os.path.join(PLUG, "plug-b", "lib", "tm", "evil.lua")
    os.symlink("/etc/passwd", evil)
    rc, res = got("plug-b")
    check("a symlink planted in plug-b's lib/: its runs refused naming it, nothing of the "
          "target shown", rc != 0 and "evil.lua" in str(res) and "root:" not in str(res), res)
    os.unlink(evil)
    check("the symlink removed: plug-b runs again", got("plug-b") == (0, ["b2"]), got("plug-b"))
finally:
    pass
if t.failed == 0:
    shutil.rmtree(W, ignore_errors=True)
else:
    print("  work folder kept: " + W)
t.done()
