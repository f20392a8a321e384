import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The keyring on disk: a JSON file readable and writable by its owner only (mode 0600),
/// replaced atomically (temporary file, fsync, rename) and changed under an exclusive lock,
/// so a crash or two `sluice keys rotate` at once never leave half a keyring.
///
/// ```json
/// {"format": "sluice-keyring", "format_version": 1, "keys": [
///   {"version": 1, "status": "retired", "created_at": "…", "retired_at": "…", "usable_until": "…",
///    "material": "<base64, 32 bytes>", "check": "<hex, 8 bytes>"},
///   {"version": 2, "status": "active", "created_at": "…", "material": "…", "check": "…"}]}
/// ```
public struct KeyringFile: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    static let formatName = "sluice-keyring"
    static let formatVersion = 1
    /// Far above any real keyring (a key is ~250 bytes of JSON); a bigger file is not one.
    static let maximumSize = 1 << 20

    public var exists: Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    // MARK: Reading

    /// Reads and checks the keyring: it must exist, be a regular file of mode 0600 (or
    /// stricter), parse, and every key must match its check value.
    public func load() throws(SecretsError) -> Keyring {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let error = errno
            if error == ENOENT {
                throw SecretsError(
                    .keyringMissing,
                    "no keyring at \(path): create one with `sluice keys init`, point --keyring or SLUICE_KEYRING at yours, or derive the key from SLUICE_KEY_PASSPHRASE and SLUICE_KEY_SALT"
                )
            }
            if error == EACCES {
                throw SecretsError(.keyringPermissions, "keyring \(path) can't be read: permission denied")
            }
            throw SecretsError(.keyringUnavailable, "keyring \(path) can't be opened: \(String(cString: strerror(error)))")
        }
        defer { close(fd) }
        // Check the file that was opened, not the path, so a swap between the two can't slip by.
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SecretsError(.keyringUnavailable, "keyring \(path) can't be inspected: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SecretsError(.keyringUnavailable, "keyring \(path) is not a regular file")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw SecretsError(
                .keyringPermissions,
                "keyring \(path) has mode \(String(mode, radix: 8, uppercase: false).leftPadded(to: 4)); it must be readable by its owner only: chmod 600 \(path)"
            )
        }
        guard Int(info.st_size) <= Self.maximumSize else {
            throw SecretsError(.keyringCorrupt, "keyring \(path) is \(info.st_size) bytes, far more than a keyring; it is not one")
        }
        let bytes = try Self.readAll(fd, path: path)
        return try decode(bytes)
    }

    private static func readAll(_ fd: Int32, path: String) throws(SecretsError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SecretsError(.keyringUnavailable, "keyring \(path) can't be read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > maximumSize {
                throw SecretsError(.keyringCorrupt, "keyring \(path) is larger than any keyring; it is not one")
            }
        }
        return bytes
    }

    func decode(_ bytes: [UInt8]) throws(SecretsError) -> Keyring {
        let origin = Keyring.Origin.file(path)
        func corrupt(_ detail: String) -> SecretsError {
            SecretsError(.keyringCorrupt, "keyring \(path) is corrupt: \(detail)")
        }
        guard !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else { throw corrupt("the file is empty") }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw corrupt("not valid JSON (\((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "parse error"))")
        }
        guard let document = json as? [String: Any] else { throw corrupt("expected a JSON object at the top") }
        guard document["format"] as? String == Self.formatName else { throw corrupt("\"format\" is not \"\(Self.formatName)\"") }
        guard let version = document["format_version"] as? Int else { throw corrupt("\"format_version\" is missing") }
        guard version == Self.formatVersion else {
            throw corrupt("format_version \(version) is not one this Sluice reads (it reads \(Self.formatVersion))")
        }
        guard let keys = document["keys"] as? [[String: Any]] else { throw corrupt("\"keys\" is not a list of objects") }
        var entries: [KeyringEntry] = []
        for (index, object) in keys.enumerated() {
            let place = "keys[\(index)]"
            guard let number = object["version"] as? Int, number > 0, number <= Int(UInt32.max) else {
                throw corrupt("\(place).version is not a positive whole number")
            }
            guard let statusText = object["status"] as? String, let status = KeyringEntry.Status(rawValue: statusText) else {
                throw corrupt("\(place).status is not \"active\" or \"retired\"")
            }
            func date(_ field: String, required: Bool) throws(SecretsError) -> Date? {
                guard let text = object[field] as? String else {
                    if required || object[field] != nil { throw corrupt("\(place).\(field) is not a timestamp") }
                    return nil
                }
                guard let date = Timestamp.parse(text) else { throw corrupt("\(place).\(field) is not an ISO 8601 timestamp") }
                return date
            }
            let created = try date("created_at", required: true)!
            let retiredAt = try date("retired_at", required: status == .retired)
            let usableUntil = try date("usable_until", required: status == .retired)
            guard let materialText = object["material"] as? String,
                var material = Data(base64Encoded: materialText), material.count == 32
            else {
                throw corrupt("\(place).material is not 32 bytes of base64")
            }
            let key = SymmetricKey(data: material)
            material.resetBytes(in: 0..<material.count)
            let kek = KeyEncryptionKey(version: UInt32(number), key: key)
            guard let check = object["check"] as? String, check == kek.checkHex else {
                throw corrupt("key version \(number) does not match its check value (the key material was altered)")
            }
            entries.append(KeyringEntry(key: kek, status: status, createdAt: created, retiredAt: retiredAt, usableUntil: usableUntil))
        }
        do {
            return try Keyring(entries: entries, origin: origin)
        } catch {
            throw corrupt(error.message)
        }
    }

    // MARK: Writing

    /// Writes a new keyring with one key. Refuses to replace an existing file.
    public func create(at now: Date) throws(SecretsError) -> Keyring {
        try withLock { () throws(SecretsError) -> Keyring in
            guard !exists else {
                throw SecretsError(.keyringExists, "a keyring exists at \(path) already; `sluice keys rotate` adds a key to it")
            }
            let keyring = Keyring.generate(at: now, origin: .file(path))
            try write(keyring)
            return keyring
        }
    }

    /// Adds a new active key and retires the current one for `grace`, under the lock, and
    /// returns the keyring as written.
    public func rotate(at now: Date, grace: Duration) throws(SecretsError) -> Keyring {
        try withLock { () throws(SecretsError) -> Keyring in
            let rotated = try load().rotated(at: now, grace: grace)
            try write(rotated)
            return rotated
        }
    }

    func encode(_ keyring: Keyring) -> Data {
        var keys: [[String: Any]] = []
        for entry in keyring.entries {
            var object: [String: Any] = [
                "version": Int(entry.version),
                "status": entry.status.rawValue,
                "created_at": Timestamp.precise(entry.createdAt),
                "material": entry.key.key.withUnsafeBytes { Data($0).base64EncodedString() },
                "check": entry.key.checkHex,
            ]
            if let retired = entry.retiredAt { object["retired_at"] = Timestamp.precise(retired) }
            if let until = entry.usableUntil { object["usable_until"] = Timestamp.precise(until) }
            keys.append(object)
        }
        let document: [String: Any] = ["format": Self.formatName, "format_version": Self.formatVersion, "keys": keys]
        // Sorted keys and fixed options keep the file diffable by a person.
        return (try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }

    /// Temporary file (0600, created exclusively) in the same folder, fsync, rename over the
    /// keyring, fsync the folder: readers see the old keyring or the new one, never a mix.
    func write(_ keyring: Keyring) throws(SecretsError) {
        let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SecretsError(.keyringUnavailable, "can't create the folder \(folder) for keyring \(path): \(error.localizedDescription)")
        }
        var contents = encode(keyring)
        defer { contents.resetBytes(in: 0..<contents.count) }
        let temporary = "\(folder)/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SecretsError(.keyringUnavailable, "can't write keyring \(path): \(String(cString: strerror(errno)))")
        }
        var written = false
        defer {
            if !written { unlink(temporary) }
        }
        // The umask can only take bits away from 0600, but be explicit about the mode.
        let failure: String? = contents.withUnsafeBytes { buffer in
            if fchmod(fd, 0o600) != 0 { return "fchmod: \(String(cString: strerror(errno)))" }
            var offset = 0
            while offset < buffer.count {
                let count = posixWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += count
            }
            if fsync(fd) != 0 { return "fsync: \(String(cString: strerror(errno)))" }
            return nil
        }
        close(fd)
        if let failure { throw SecretsError(.keyringUnavailable, "can't write keyring \(path): \(failure)") }
        guard rename(temporary, path) == 0 else {
            throw SecretsError(.keyringUnavailable, "can't replace keyring \(path): \(String(cString: strerror(errno)))")
        }
        written = true
        let folderFD = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderFD >= 0 {
            _ = fsync(folderFD)
            close(folderFD)
        }
    }

    /// Runs `body` holding an exclusive lock on `<keyring>.lock` (created 0600 if missing).
    func withLock<Result>(_ body: () throws(SecretsError) -> Result) throws(SecretsError) -> Result {
        let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SecretsError(.keyringUnavailable, "can't lock keyring \(path) (\(lockPath)): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw SecretsError(.keyringUnavailable, "can't lock keyring \(path): \(String(cString: strerror(errno)))")
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

/// `write(2)`; a free function because `KeyringFile.write(_:)` shadows the name inside the type.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
