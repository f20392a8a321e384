import Foundation
import NIOSSL

/// The certificate chain and private key `sluice serve` answers HTTPS with, read from PEM files
/// once, at start-up (a renewed certificate takes a restart). Everything that can be checked
/// before the first client is: that both files read, that they hold what they should, that the
/// key belongs to the certificate and that the certificate has not expired. Clients need TLS 1.2
/// or later. An error names the file; it never quotes what the key file holds.
public struct ServerTLS: Sendable {
    public let certificatePath: String
    public let keyPath: String
    /// When the first certificate of the chain (the server's own) stops being valid.
    public let validUntil: Date
    let configuration: TLSConfiguration

    public init(certificatePath: String, keyPath: String, now: Date = Date()) throws(ServerTLSError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        let certificateBytes = Array(try Self.read(certificatePath, "certificate"))
        let chain = (try? NIOSSLCertificate.fromPEMBytes(certificateBytes)) ?? []
        guard let leaf = chain.first else {
            throw ServerTLSError(
                "\(certificatePath): holds no readable PEM certificate (expected '-----BEGIN CERTIFICATE-----' blocks, the server's own first)")
        }
        validUntil = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        guard validUntil > now else {
            throw ServerTLSError("\(certificatePath): the certificate expired on \(Self.shown(validUntil)); renew it")
        }
        let keyBytes = Array(try Self.read(keyPath, "private key"))
        guard let key = try? NIOSSLPrivateKey(bytes: keyBytes, format: .pem) else {
            throw ServerTLSError(
                "\(keyPath): holds no PEM private key that can be read without a passphrase (an encrypted key must be decrypted first, e.g. openssl pkey -in KEY -out KEY.plain)"
            )
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        // swift-nio-ssl's server default still accepts TLS 1.0 and 1.1.
        configuration.minimumTLSVersion = .tlsv12
        self.configuration = configuration
        // BoringSSL checks that the key and the certificate belong together here.
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerTLSError(
                "\(keyPath): this private key does not belong to the first certificate in \(certificatePath) (which must be the server's own, before any intermediates)"
            )
        }
    }

    private static func read(_ path: String, _ what: String) throws(ServerTLSError) -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "it can't be read" : "no such file"
            throw ServerTLSError("\(path): the TLS \(what) file can't be opened: \(reason)")
        }
    }

    private static func shown(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// Why the TLS files can't be used; the message starts with the file it is about.
public struct ServerTLSError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}
