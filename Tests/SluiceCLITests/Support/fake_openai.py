"""A provider on 127.0.0.1 that refuses every key, the way OpenAI does, and repeats the key it
was sent in its answer (as a careless or hostile server might). Prints its port, then serves
until killed."""
import http.server
import json
import signal

# A parent that ignores SIGTERM passes that on; this server must stop when told to.
signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        sent = self.headers.get("Authorization", "")
        body = json.dumps({"error": {
            "message": "Incorrect API key provided: " + sent.removeprefix("Bearer "),
            "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Authorization", sent)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
