#!/usr/bin/env python3
"""stub_api.py: the API of a `tqhost plugin new` skeleton on loopback, for plugin_new_test.sh:
GET /v1/lookup?value=V with X-Api-Key KEY answers {"verdict", "score", "tags"}; 401 without
the key, 404 for 10.0.0.1. Prints "stub listening on 127.0.0.1:PORT" once it accepts."""
import http.server
import json
import sys
import urllib.parse

KEY = sys.argv[1] if len(sys.argv) > 1 else "stub-key"


class Stub(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if self.headers.get("X-Api-Key") != KEY:
            code, body = 401, {"error": "bad key"}
        elif u.path != "/v1/lookup" or "value" not in q:
            code, body = 400, {"error": "bad request"}
        elif q["value"][0] == "10.0.0.1":
            code, body = 404, {"error": "not found"}
        else:
            code, body = 200, {"verdict": "malicious", "score": 8, "tags": ["stub-tag"]}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
print(f"stub listening on 127.0.0.1:{srv.server_address[1]}", flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
