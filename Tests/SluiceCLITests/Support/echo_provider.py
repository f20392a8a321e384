"""A provider and an HTTP source on 127.0.0.1 that repeat the key they were sent wherever a
careless or hostile server might: in a refusal's message (past where messages are cut), in its
error type and code, in the data rows of a page, in a row that is bad, and in pieces. Prints
its port, then serves until killed."""
import http.server
import json
import signal

signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.path.startswith("/rows"):
            status, body = 200, {"data": [
                {"id": "r1", "note": "your key is " + key, "amount": "1"},
                {"id": "r2", "note": key[:30] + " and " + key[-20:], "amount": "2"},
                {"id": "r3", "note": "bad amount", "amount": "not a number " + key},
            ]}
        else:
            padding = "x" * 47
            status, body = 401, {"error": {
                "message": "Incorrect API key provided: " + padding + key + " " + key[5:40],
                "type": "invalid_request_error_" + key, "code": key[:33]}}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Echo", key)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
