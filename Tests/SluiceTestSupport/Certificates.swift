import Foundation

/// A self-signed certificate for 127.0.0.1 and its private key, made by the `openssl` command
/// (an implementation independent of the server's): PEM files in `folder`.
public struct TestCertificate: Sendable {
    public let certificate: URL
    public let key: URL

    /// `name` keeps several in one folder apart.
    public static func make(in folder: URL, name: String = "server") async throws -> TestCertificate {
        let certificate = folder.appendingPathComponent("\(name).pem"), key = folder.appendingPathComponent("\(name)-key.pem")
        let arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key.path, "-out", certificate.path, "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ]
        let status = try await onItsOwnThread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl"] + arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        guard status == 0 else { throw CertificateError(description: "openssl req exited with \(status)") }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)
        return TestCertificate(certificate: certificate, key: key)
    }

    struct CertificateError: Error, CustomStringConvertible { let description: String }
}
