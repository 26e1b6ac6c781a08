#!/usr/bin/python3
# Fake instance metadata service for Vigil's tests (never a real network): answers the AWS IMDSv2
# token flow and metadata GETs, dual stack on [::]:PORT (so 169.254.169.254 and fd00:ec2::254 on the
# test namespace's loopback both reach it).
#   PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds: 1..21600) -> a fresh token
#   GET /latest/meta-data/...  -> 200 text; with X-aws-ec2-metadata-token it must be a token it issued (else 401)
#   GET anything else          -> 200 "ok"
# Usage: fake_imds.py PORT TOKEN   (TOKEN: the token to issue, so a test can look for it in output)
import http.server, socket, sys

PORT, TOKEN = int(sys.argv[1]), sys.argv[2]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if self.path != "/latest/api/token" or not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.reply(400, "bad token request")
        self.reply(200, TOKEN)

    def do_GET(self):
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token is not None and token != TOKEN:
            return self.reply(401, "unauthorized")
        if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
            return self.reply(200, '{"Code":"Success","AccessKeyId":"ASIAFAKE","SecretAccessKey":"fake-secret","Token":"fake-session"}')
        if self.path.startswith("/latest/"):
            return self.reply(200, "ami-id\ninstance-id\n")
        self.reply(200, "ok")

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

Server(("::", PORT), Handler).serve_forever()
