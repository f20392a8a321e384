import Foundation
import SluiceServer
import SluiceTestSupport
import Testing

/// `sluice serve` over HTTPS: a client that checks the certificate (Python's ssl, against the
/// certificate openssl made) reaches the API; plain HTTP on that port gets no answer; and TLS
/// files that can't work are refused at start-up with the file named.
struct TLSTests {
    /// A live server over a copy of the example project, answering HTTPS with a certificate
    /// openssl made for 127.0.0.1 (in the project folder, which the caller removes).
    func httpsServer() async throws -> (live: LiveServer, certificate: TestCertificate) {
        let project = try exampleProject()
        do {
            let certificate = try await TestCertificate.make(in: project)
            let tls = try ServerTLS(certificatePath: certificate.certificate.path, keyPath: certificate.key.path)
            return (try await LiveServer.start(project: project) { $0.tls = tls }, certificate)
        } catch {
            try? FileManager.default.removeItem(at: project)
            throw error
        }
    }

    @Test func aClientThatChecksTheCertificateReachesTheAPIAndPlainHTTPGetsNoAnswer() async throws {
        let (live, certificate) = try await httpsServer()
        defer { try? FileManager.default.removeItem(at: live.project) }
        let token = try await live.token("acme")
        let script = """
            import http.client, json, socket, ssl, sys
            port, cafile, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
            context = ssl.create_default_context(cafile=cafile)  # checks the chain and that it is for 127.0.0.1
            for path, headers in [("/healthz", {}), ("/v1/orgs/acme/runs", {"Authorization": "Bearer " + token})]:
                connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=\(patience))
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                print(path, response.status, json.loads(response.read()).get("status", "-"), connection.sock.version())
                connection.close()
            plain = socket.create_connection(("127.0.0.1", port), timeout=\(patience))
            plain.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            answer = b""
            try:
                while True:
                    part = plain.recv(4096)
                    if not part:
                        break
                    answer += part
            except OSError:
                pass
            print("plain", answer.startswith(b"HTTP/"))
            """
        let lines = try await python(script, arguments: [String(live.port), certificate.certificate.path, token])
            .split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(lines)")
        #expect(lines.first?.hasPrefix("/healthz 200 ok TLSv1.") == true, "\(lines)")
        #expect(lines.dropFirst().first?.hasPrefix("/v1/orgs/acme/runs 200 - TLSv1.") == true, "\(lines)")
        #expect(lines.last == "plain False", "plain HTTP must get no HTTP answer: \(lines)")
        try await live.stop()
    }

    /// swift-nio-ssl's server default takes TLS 1.0 and 1.1; Sluice asks for 1.2 or later.
    /// openssl s_client, told to speak only 1.1 (at security level 0, so the client itself
    /// allows it), gets no session; with 1.2 it does.
    @Test func tlsOlderThan12IsRefused() async throws {
        let (live, _) = try await httpsServer()
        defer { try? FileManager.default.removeItem(at: live.project) }
        let script = """
            import subprocess, sys
            for version in ["-tls1_1", "-tls1_2"]:
                answer = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:" + sys.argv[1], version,
                                         "-cipher", "DEFAULT@SECLEVEL=0"], input=b"", capture_output=True, timeout=\(patience))
                text = answer.stdout.decode(errors="replace")
                # s_client prints its session block even after a failed handshake; "New, (NONE)" says it failed.
                protocol = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("Protocol  :")]
                print(version, "no session" if "New, (NONE)" in text or not protocol else protocol[0])
            """
        let lines = try await python(script, arguments: [String(live.port)]).split(separator: "\n").map(String.init)
        #expect(lines == ["-tls1_1 no session", "-tls1_2 TLSv1.2"], "\(lines)")
        try await live.stop()
    }

    @Test func filesThatCannotWorkAreRefusedWithTheFileNamed() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try await TestCertificate.make(in: folder)
        let other = try await TestCertificate.make(in: folder, name: "other")
        let keyText = try String(contentsOf: server.key, encoding: .utf8)
        let cert = server.certificate.path, key = server.key.path
        let missing = folder.appendingPathComponent("missing.pem").path

        func refusal(_ certificate: String, _ key: String, now: Date = Date()) -> String {
            do {
                let tls = try ServerTLS(certificatePath: certificate, keyPath: key, now: now)
                return "accepted, valid until \(tls.validUntil)"
            } catch {
                return error.description
            }
        }
        #expect(refusal(missing, key) == "\(missing): the TLS certificate file can't be opened: no such file")
        #expect(refusal(cert, missing) == "\(missing): the TLS private key file can't be opened: no such file")
        #expect(
            refusal(key, key) == "\(key): holds no readable PEM certificate (expected '-----BEGIN CERTIFICATE-----' blocks, the server's own first)")
        #expect(
            refusal(cert, cert)
                == "\(cert): holds no PEM private key that can be read without a passphrase (an encrypted key must be decrypted first, e.g. openssl pkey -in KEY -out KEY.plain)"
        )
        #expect(
            refusal(cert, other.key.path)
                == "\(other.key.path): this private key does not belong to the first certificate in \(cert) (which must be the server's own, before any intermediates)"
        )
        // openssl made it valid for two days.
        let expired = refusal(cert, key, now: Date().addingTimeInterval(3 * 86_400))
        #expect(expired.hasPrefix("\(cert): the certificate expired on 20") && expired.hasSuffix("; renew it"), "\(expired)")
        #expect(refusal(cert, key).hasPrefix("accepted"))

        // What the key file holds never shows, whatever is wrong.
        let secretLines = keyText.split(separator: "\n").filter { !$0.hasPrefix("-----") }
        for message in [refusal(key, key), refusal(cert, key, now: Date().addingTimeInterval(3 * 86_400)), refusal(other.certificate.path, key)] {
            for line in secretLines { #expect(!message.contains(line)) }
        }
    }
}
