"""api_ioc_test.py: GET /api/ioc/parse (api_ioc.c), what the web UI's search box asks about
the text typed: refanged, typed and canonical as the library stores it; keywords are no error;
bad input is a 400 naming value; a token is needed.

    api_ioc_test.py TQHOST
"""

import os
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tqapi import Server, Tally  # noqa: E402


def main():
    T = Tally()
    work = tempfile.mkdtemp(prefix="tq-ioc-")
    srv = Server(sys.argv[1], work, env={"TQHOST_LOGIN_DELAY": "1"})
    try:
        srv.add_user("ro", "read-only")
        tok = srv.login("ro")

        def parse(v):
            return srv.call("GET", "/api/ioc/parse?value=" + urllib.parse.quote(v, safe=""),
                            token=tok)

        cases = [
            ("1.2.3.4", "IP Address", "1.2.3.4", False),
            ("1.2.3[.]4", "IP Address", "1.2.3.4", True),
            ("  45.83.122.166 ", "IP Address", "45.83.122.166", False),
            ("hxxp://evil[.]example/a", "URL", None, True),
            ("Evil.Example.COM", "FQDN", "evil.example.com", False),
            ("bad[at]evil[.]com", "Email Address", "bad@evil.com", True),
            ("D41D8CD98F00B204E9800998ECF8427E", "MD5", "d41d8cd98f00b204e9800998ecf8427e", False),
            ("cve-2021-44228", "CVE", "CVE-2021-44228", False),
            ("2001:DB8::1", "IPv6 Address", "2001:db8::1", False),
        ]
        for v, typ, canon, defanged in cases:
            st, b, _ = parse(v)
            d = (b or {}).get("data") or {}
            T.check("%r: %s%s" % (v, typ, " -> " + canon if canon else ""),
                    st == 200 and d.get("type") == typ and (canon is None or
                                                            d.get("canonical") == canon)
                    and d.get("value") == v, (st, b))
            T.check("%r: defanged=%s" % (v, defanged), d.get("defanged") is defanged, d)
        st, b, _ = parse("hxxp://evil[.]example/a")
        T.check("a defanged URL comes back refanged", b["data"]["refanged"] ==
                "http://evil.example/a" and b["data"]["canonical"].startswith("http://evil.example"),
                b)
        for v in ("emotet loader", "1.2.3.999", "<img src=x onerror=alert(1)>"):
            st, b, _ = parse(v)
            d = (b or {}).get("data") or {}
            T.check("%r: 200, type null, a reason, the value echoed as given" % v,
                    st == 200 and d.get("type") is None and d.get("canonical") is None and
                    d.get("reason") and d.get("value") == v, (st, b))
        st, b, _ = parse("1.2.3.999")
        T.check("an IP-like value says why it is not one", "999" in b["data"]["reason"], b)
        st, b, _ = srv.call("GET", "/api/ioc/parse", token=tok)
        T.check("no value: 400 naming value", st == 400 and "value" in b["data"]["errors"], (st, b))
        st, b, _ = srv.call("GET", "/api/ioc/parse?value=", token=tok)
        T.check("an empty value: 400 naming value", st == 400 and "value" in b["data"]["errors"],
                (st, b))
        st, b, _ = parse("a" * 5000)
        T.check("a 5000-byte value: 400 naming value", st == 400 and "value" in b["data"]["errors"],
                (st, b))
        st, b, _ = srv.call("GET", "/api/ioc/parse?value=%00abc", token=tok)
        T.check("an encoded NUL: refused or cut, never a 5xx", st in (200, 400), (st, b))
        st, b, _ = srv.call("GET", "/api/ioc/parse?value=1.2.3.4")
        T.check("without a token: 401", st == 401, (st, b))
    finally:
        T.check("the server stops cleanly", srv.stop() == 0)
    T.done()


if __name__ == "__main__":
    main()
