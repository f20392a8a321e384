"""An HTTP source on 127.0.0.1 that is slow on purpose: GET /events?page=N answers page N of
PAGES pages of ROWS events each (the rows CLITestSupport's events pipeline reads from its CSV)
after DELAY seconds, and an empty page after the last, so that an ingest of it takes about
PAGES * DELAY seconds and writes a batch after every page. Prints its port, then serves until
killed. Arguments: PAGES ROWS DELAY."""
import http.server
import json
import signal
import sys
import time
import urllib.parse

signal.signal(signal.SIGTERM, signal.SIG_DFL)
pages, rows, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        page = int(query.get("page", ["1"])[0])
        data = []
        if 1 <= page <= pages:
            time.sleep(delay)
            for index in range((page - 1) * rows, page * rows):
                day = f"2026-03-0{index % 7 + 1}"
                data.append({"event_id": f"e{index}", "ts": f"{day}T10:00:00Z", "day": day, "org": f"org{index % 13}",
                             "amount": index % 5 + 1})
        body = json.dumps({"data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
