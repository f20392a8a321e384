import Foundation
import SluiceServer
import SluiceTestSupport
import Testing

/// Connections that are opened and left (idle, or half-open: the client sends nothing) can't
/// take the server from other clients: past the per-client and total limits they are closed as
/// they are accepted, not held.
struct ConnectionLimitTests {
    /// Opens `count` connections from `source` (another loopback address than the test's own
    /// requests come from) that send nothing, and waits until the server has closed all but
    /// `held` of them. Prints how many it closed, then the status of `GET /healthz` from
    /// 127.0.0.1 asked while the connections are still open, then (with `reopen`) the status of
    /// a request from `source` after the held connections were closed by the client.
    static func flood(port: Int, source: String, count: Int, held: Int, reopen: Bool) -> String {
        """
        import http.client, select, socket, time
        def healthz(source=None):
            connection = http.client.HTTPConnection("127.0.0.1", \(port), timeout=\(patience),
                                                    source_address=(source, 0) if source else None)
            connection.request("GET", "/healthz")
            return connection.getresponse().status
        def closed_by_server(sock):
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            try:
                return sock.recv(1) == b""
            except OSError:  # a reset is a close too
                return True
        sockets = []
        for _ in range(\(count)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("\(source)", 0))
            sock.connect(("127.0.0.1", \(port)))
            sockets.append(sock)
        deadline = time.monotonic() + \(patience)
        closed = set()
        while time.monotonic() < deadline:
            closed |= {index for index, sock in enumerate(sockets) if index not in closed and closed_by_server(sock)}
            if len(closed) >= \(count - held):
                break
            time.sleep(0.05)
        print(len(closed))
        print(healthz())
        # The held connections are still open: the server has not closed them.
        print(sum(1 for index, sock in enumerate(sockets) if index not in closed and not closed_by_server(sock)))
        if \(reopen ? "True" : "False"):
            for sock in sockets:
                sock.close()
            # Once they are gone, the same client is admitted again (retrying while the server
            # sees the closes).
            status = None
            while time.monotonic() < deadline:
                try:
                    status = healthz("\(source)")
                    break
                except (ConnectionError, http.client.RemoteDisconnected):
                    time.sleep(0.05)
            print(status)
        """
    }

    @Test func oneClientsIdleConnectionsPastItsLimitAreClosedAndOthersAreStillAnswered() async throws {
        let live = try await LiveServer.start(project: try exampleProject()) { configuration in
            configuration.maxConnectionsPerClient = 8
            // The held connections must outlast the test, not be closed as idle.
            configuration.idleTimeout = TestTime.never
        }
        defer { try? FileManager.default.removeItem(at: live.project) }
        let lines = try await python(Self.flood(port: live.port, source: "127.0.0.2", count: 40, held: 8, reopen: true))
            .split(separator: "\n").map(String.init)
        #expect(lines == ["32", "200", "8", "200"], "closed by the server, /healthz from another client, held open, the client again: \(lines)")
        // 32, and any of the client's retries that came before the server saw its closes.
        let metrics = try await live.get("/metrics", token: try await live.token(nil)).text
        let refused = metrics.split(separator: "\n").first { $0.hasPrefix(#"sluice_connections_refused_total{limit="per_client"} "#) }
            .flatMap { Int($0.split(separator: " ").last ?? "") }
        #expect((refused ?? 0) >= 32, "\(metrics)")
        try await live.stop()
    }

    @Test func connectionsPastTheServersLimitAreClosedWhateverTheirClient() async throws {
        let live = try await LiveServer.start(project: try exampleProject()) { configuration in
            configuration.maxConnections = 10
            configuration.maxConnectionsPerClient = nil
            configuration.idleTimeout = TestTime.never
        }
        defer { try? FileManager.default.removeItem(at: live.project) }
        // Ten held from one address take the server's ten; the test's own /healthz is then
        // refused too, which is what the total limit is for (a client limit keeps one client
        // from doing this alone).
        let script = Self.flood(port: live.port, source: "127.0.0.2", count: 14, held: 10, reopen: true)
            .replacingOccurrences(
                of: "print(healthz())",
                with: """
                    try:
                        print(healthz())
                    except (ConnectionError, http.client.RemoteDisconnected):
                        print("closed")
                    """)
        let lines = try await python(script).split(separator: "\n").map(String.init)
        #expect(lines == ["4", "closed", "10", "200"], "\(lines)")
        try await live.stop()
    }
}
