#!/usr/bin/env python3
"""echo_server.py: answers every GET with the request's headers as JSON
({"path": ..., "headers": {lower-case name: value}}), for hostile_test.sh. Binds 127.0.0.1 on a
free port and prints "echo listening on 127.0.0.1:PORT" once it accepts connections."""
import http.server
import json
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
print(f"echo listening on 127.0.0.1:{srv.server_address[1]}", flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
