#!/usr/bin/env python3
"""record_echo.py: an API that echoes every credential it is sent, for plugin_record_test.sh.
GET and POST answer 200 with a JSON object holding the request's path, headers and body, the
X-Api-Key as sent, upper-cased, reversed and percent-encoded, and a Set-Cookie header; so a
recording that keeps any of them in clear is caught. Prints "echo listening on
127.0.0.1:PORT" once it accepts connections."""
import http.server
import json
import sys
import urllib.parse


class Echo(http.server.BaseHTTPRequestHandler):
    def answer(self, body_in):
        key = self.headers.get("X-Api-Key", "")
        body = json.dumps({
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body_in,
            "key": key,
            "KEY": key.upper(),
            "yek": key[::-1],
            "key_encoded": urllib.parse.quote(key, safe=""),
            "note": "your key is " + key + " and your cookie " + self.headers.get("Cookie", ""),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "sess=" + key + "; HttpOnly")
        self.send_header("X-Echo-Key", key)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer("")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.answer(self.rfile.read(n).decode("utf-8", "replace"))

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
print(f"echo listening on 127.0.0.1:{srv.server_address[1]}", flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
